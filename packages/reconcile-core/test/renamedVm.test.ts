import { assert, describe, it } from "@effect/vitest"
import type { VmPending } from "@homelab/proxmox-client"
import type { Observed } from "../src/Observed.js"
import { k3sDesired, k3sObserved, names, observedVm, planOf, readyCluster, steps } from "./k3sFixture.js"

const vms = names(3, 2)
const uuidOf = (name: string) => `5e1f0c3a-0000-4000-8000-0000000000${String(10 + vms.indexOf(name))}`
const configWithUuid = (uuid: string): VmPending => ({
  digest: "d",
  current: { smbios1: `uuid=${uuid.toUpperCase()}`, cores: "4" },
  pending: {},
  deletes: []
})

/** Every VM as the fixture has it, but a1 renamed by hand to `box` (same VMID, same machine: its Node is still a1). */
const renamed = (over: { readonly uuid?: string; readonly tags?: ReadonlyArray<string> } = {}): Observed => {
  const base = k3sObserved(
    vms,
    readyCluster(vms, {}, (n) => ({ systemUUID: uuidOf(n) })),
    {
      vms: vms.map((n) =>
        n === "a1" ? observedVm(vms, n, { name: "box", ...(over.tags ? { tags: over.tags } : {}) }) : observedVm(vms, n)
      )
    }
  )
  const a1 = base.vms.find((v) => v.name === "box")
  assert.ok(a1 !== undefined)
  return { ...base, configs: new Map([[a1.vmid, configWithUuid(over.uuid ?? uuidOf("a1"))]]) }
}

describe("a VM of ours renamed by hand while its k3s Node runs on", () => {
  it("no second VM is created for that Node and its Node is not removed: a blocked finding names the VM, the Node and the fix", () => {
    const p = planOf(k3sDesired(vms), renamed())
    assert.deepStrictEqual(steps(p), [])
    const finding = p.findings.find((f) => f.code === "vm.renamed")
    assert.deepStrictEqual(
      [finding?.effect, finding?.layer, finding?.node, finding?.vm, finding?.vmid],
      ["blocked", "vm", "pve-a1", "a1", 1004]
    )
    assert.strictEqual(
      finding?.message,
      "VM 1004 box on pve-a1 is the machine of k3s Node a1 (its SMBIOS UUID is the Node's system UUID): a1 renamed by hand? Not creating a second VM for that Node"
    )
    assert.strictEqual(
      finding?.hint,
      "rename it back (`qm set 1004 --name a1` on pve-a1) and run apply again; or, to replace it, `homelab apply --prune` removes VM 1004 box and the next run creates a1"
    )
  })

  it("a Node whose machine is gone (no VM has its system UUID) is stale: the VM is created and rejoins, as before", () => {
    const p = planOf(k3sDesired(vms), renamed({ uuid: "5e1f0c3a-0000-4000-8000-00000000ffff" }))
    assert.deepStrictEqual(steps(p), ["CreateVm:a1", "JoinK3s:a1"])
    assert.isUndefined(p.findings.find((f) => f.code === "vm.renamed"))
  })

  it("a VM that is not ours (no ownership tag) holding the Node's system UUID is not taken for ours", () => {
    const p = planOf(k3sDesired(vms), renamed({ tags: [] }))
    assert.deepStrictEqual(steps(p), ["CreateVm:a1", "JoinK3s:a1"])
  })
})
