import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import {
  classifyVm,
  HealthPolicy,
  NodeFacts,
  PreflightOptions,
  preflight,
  remediationToApply,
  sizeVm,
  VmFacts,
  VmRequest
} from "../src/index.js"

// Keeps the README's quick start honest: same calls, same claimed results.
describe("README quick start", () => {
  it("classifies a paused VM", () => {
    const report = classifyVm(
      new VmFacts({
        vmid: 105,
        node: "pve",
        name: "k3s-pve",
        status: "running",
        qmpstatus: "paused",
        uptimeSeconds: 4000,
        agentConfigured: true,
        agentAnswering: false,
        owned: true,
        protection: false,
        template: false
      }),
      HealthPolicy.fromPartial({ paused: "resume" })
    )
    assert.strictEqual(report._tag, "Unhealthy")
    assert.strictEqual(report.message, "VM 105 (k3s-pve) on node pve is paused (qmpstatus=paused); remediation: resume")
    assert.strictEqual(remediationToApply(report), "resume")
  })

  it("preflights a stock PVE 8 node", () => {
    const node = new NodeFacts({
      node: "pve",
      pveMajor: 8,
      cpus: 8,
      memoryBytes: 32 * 1024 ** 3,
      bridges: [{ name: "vmbr0", active: true }],
      storages: [
        { name: "local", enabled: true, active: true, content: ["iso", "vztmpl", "backup"], availBytes: 80e9 },
        { name: "local-lvm", enabled: true, active: true, content: ["rootdir", "images"], availBytes: 200e9 }
      ],
      guests: [{ vmid: 100, maxmemBytes: 8 * 1024 ** 3, template: false }]
    })
    const request = new VmRequest({
      vmid: 105,
      cores: 4,
      memoryMiB: 8192,
      bridges: ["vmbr0"],
      diskStorage: "local-lvm",
      diskBytes: 32 * 1024 ** 3,
      imageStorage: "local",
      imageContent: "import",
      downloadImage: true
    })
    const checked = preflight(node, request, new PreflightOptions({ memoryAdjustment: 1 }))
    assert.isFalse(checked.ok)
    assert.strictEqual(checked.errors.length, 1)
    assert.match(
      checked.errors[0]?.fix ?? "",
      /^add `import` to the content of storage 'local' \(Datacenter → Storage → Edit\)/
    )
  })

  it.effect("sizes a VM", () =>
    Effect.gen(function* () {
      const size = yield* sizeVm({ cpus: 8, memoryBytes: 32 * 1024 ** 3 }, { cpuRatio: 0.5, memoryRatio: 0.5 })
      assert.strictEqual(size.cores, 4)
      assert.strictEqual(size.memoryMiB, 16384)
    })
  )
})
