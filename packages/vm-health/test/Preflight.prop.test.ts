import { assert, describe, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import { NodeFacts, PreflightOptions, preflight, VmRequest } from "../src/index.js"

const MiB = 1024 * 1024

const MemoryCase = Schema.Struct({
  totalMiB: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1_048_576 })),
  guests: Schema.Array(
    Schema.Struct({
      vmid: Schema.Int.check(Schema.isBetween({ minimum: 100, maximum: 110 })),
      maxmemMiB: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65_536 })),
      template: Schema.Boolean
    })
  ),
  adjustment: Schema.Literals([0, 0.5, 0.75, 1, 1.25, 2]),
  memoryMiB: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 262_144 })),
  vmid: Schema.Int.check(Schema.isBetween({ minimum: 100, maximum: 110 })),
  cores: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 64 })),
  cpus: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 64 }))
})

const setup = (c: typeof MemoryCase.Type) => {
  const node = new NodeFacts({
    node: "pve",
    cpus: c.cpus,
    memoryBytes: c.totalMiB * MiB,
    bridges: [{ name: "vmbr0", active: true }],
    storages: [{ name: "local-lvm", enabled: true, active: true, content: ["images", "iso"], availBytes: 1e15 }],
    guests: c.guests.map((g) => ({ vmid: g.vmid, maxmemBytes: g.maxmemMiB * MiB, template: g.template }))
  })
  const request = new VmRequest({
    vmid: c.vmid,
    cores: c.cores,
    memoryMiB: c.memoryMiB,
    bridges: ["vmbr0"],
    diskStorage: "local-lvm",
    diskBytes: 10 * 1024 * MiB,
    imageStorage: "local-lvm",
    imageContent: "iso",
    downloadImage: false
  })
  return preflight(node, request, new PreflightOptions({ memoryAdjustment: c.adjustment }))
}

describe("preflight properties", () => {
  it.prop(
    "memory.insufficient ⇔ total × adjustment − Σ maxmem(other, non-template guests) < requested (adjustment > 0)",
    [MemoryCase],
    ([c]) => {
      // Reference computed in whole MiB (every adjustment above is exact in binary), independent of the implementation.
      const assignedMiB = c.guests
        .filter((g) => !g.template && g.vmid !== c.vmid)
        .reduce((sum, g) => sum + g.maxmemMiB, 0)
      const reservableMiB = c.totalMiB * c.adjustment - assignedMiB
      const expected = c.adjustment > 0 && reservableMiB < c.memoryMiB
      const report = setup(c)
      assert.strictEqual(
        report.findings.some((f) => f.code === "memory.insufficient"),
        expected
      )
    },
    { arbitrary: { runs: 1_000 } }
  )

  it.prop(
    "cpu.insufficient ⇔ cores > cpus; ok ⇔ no error finding; every finding names the node",
    [MemoryCase],
    ([c]) => {
      const report = setup(c)
      assert.strictEqual(
        report.findings.some((f) => f.code === "cpu.insufficient"),
        c.cores > c.cpus
      )
      assert.strictEqual(
        report.ok,
        report.findings.every((f) => f.severity === "warning")
      )
      for (const finding of report.findings) {
        assert.strictEqual(finding.node, "pve")
        assert.include(finding.message, "pve")
      }
    },
    { arbitrary: { runs: 500 } }
  )
})
