import { assert, describe, it } from "@effect/vitest"
import { cpuModelFinding } from "../src/cpuModelFinding.js"

const models = ["host", "kvm64", "x86-64-v2-AES", "x86-64-v3", "EPYC-Rome", "custom-fast"]
const want = (cpuType: string) => ({ cpuType, node: "pve", vm: "k3s-vm-pve" })

describe("cpuModelFinding", () => {
  it("nothing when the node lists the model (built-in or custom), or when its models were not read", () => {
    assert.isUndefined(cpuModelFinding(models, want("x86-64-v2-AES")))
    assert.isUndefined(cpuModelFinding(models, want("custom-fast")))
    assert.isUndefined(cpuModelFinding(undefined, want("hosst")))
  })

  it("a model the node lacks is blocked, with the close one when there is one, and the common ones it lists", () => {
    const typo = cpuModelFinding(models, { ...want("epyc-rome"), vmid: 4242 })
    assert.deepInclude(typo, { code: "vm.cpu-model", effect: "blocked", layer: "vm", node: "pve", vmid: 4242 })
    assert.include(typo?.message ?? "", "(did you mean EPYC-Rome?)")
    const far = cpuModelFinding(models, want("SapphireRapids"))
    assert.strictEqual(
      far?.message,
      "vm.cpuType SapphireRapids is not a CPU model of node pve: PVE would refuse k3s-vm-pve"
    )
    assert.include(far?.hint ?? "", ": host, x86-64-v2-AES, x86-64-v3, …)")
    assert.include(
      cpuModelFinding(models, want("custom-slow"))?.hint ?? "",
      "custom-NAME and defined in /etc/pve/virtual-guest/cpu-models.conf"
    )
  })
})
