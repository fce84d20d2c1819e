import { assert, describe, it } from "@effect/vitest"
import type { VmPending } from "@homelab/proxmox-client"
import { agentOff } from "../src/agentOff.js"

const config = (agent?: string): VmPending => ({
  digest: "d",
  current: agent === undefined ? { cores: "2" } : { cores: "2", agent },
  pending: {},
  deletes: []
})

describe("agentOff", () => {
  it("on: 1, enabled=1, with other options in any order", () => {
    for (const agent of ["1", "enabled=1", "1,fstrim_cloned_disks=1", "type=virtio,enabled=1", "on", "yes"])
      assert.isUndefined(agentOff(config(agent)), agent)
  })
  it("off: no agent key, 0, enabled=0, options without enabled", () => {
    assert.deepStrictEqual(agentOff(config()), { agent: "unset" })
    for (const agent of ["0", "enabled=0", "0,type=isa", "type=virtio"])
      assert.deepStrictEqual(agentOff(config(agent)), { agent }, agent)
  })
  it("config not read: nothing said", () => {
    assert.isUndefined(agentOff(undefined))
  })
})
