import { assert, describe, it } from "@effect/vitest"
import type { VmPending } from "@homelab/proxmox-client"
import { agentOffNote } from "../src/agentOff.js"

const vm = { vmid: 2004, name: "k3s-vm-fun-goal", node: "fun-goal" }
const config = (current: Record<string, string>, pending: Record<string, string> = {}, deletes: Array<string> = []) =>
  ({ digest: "d", current, pending, deletes }) as VmPending

describe("agentOffNote", () => {
  it("notes an agent turned off, in effect or pending; says nothing of one that is on, or of a VM made without the setting", () => {
    assert.include(
      agentOffNote(config({ agent: "enabled=0,fstrim_cloned_disks=1" }), vm)?.message,
      "runs with its guest agent off (agent: enabled=0,fstrim_cloned_disks=1)"
    )
    assert.include(
      agentOffNote(config({ agent: "1" }, { agent: "0" }), vm)?.message,
      "turns its guest agent off at its next restart (agent: 0, held by PVE until then)"
    )
    assert.isUndefined(agentOffNote(config({ agent: "1,type=virtio" }), vm))
    assert.include(
      agentOffNote(config({ agent: "0" }, { agent: "1" }), vm)?.message,
      "runs with its guest agent off (agent: 0)",
      "off until the restart that turns it on"
    )
    assert.isUndefined(agentOffNote(config({}), vm), "made without an agent setting: left unsaid")
    assert.isUndefined(
      agentOffNote(config({ agent: "1" }, {}, ["agent"]), vm),
      "the setting removed at the next restart: made without"
    )
  })
})
