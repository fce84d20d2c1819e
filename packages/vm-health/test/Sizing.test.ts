import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { MemoryStepMiB, MinMemoryMiB, sizeVm, VmSize } from "../src/index.js"

const MiB = 1024 * 1024
const GiB = 1024 * MiB

describe("sizeVm", () => {
  const cases: ReadonlyArray<{
    readonly name: string
    readonly cpus: number
    readonly memoryBytes: number
    readonly cpuRatio: number
    readonly memoryRatio: number
    readonly cores: number
    readonly memoryMiB: number
  }> = [
    {
      name: "half of an 8-thread 32 GiB node",
      cpus: 8,
      memoryBytes: 32 * GiB,
      cpuRatio: 0.5,
      memoryRatio: 0.5,
      cores: 4,
      memoryMiB: 16384
    },
    { name: "the whole node", cpus: 6, memoryBytes: 16 * GiB, cpuRatio: 1, memoryRatio: 1, cores: 6, memoryMiB: 16384 },
    {
      name: "floors cores",
      cpus: 6,
      memoryBytes: 16 * GiB,
      cpuRatio: 0.75,
      memoryRatio: 0.5,
      cores: 4,
      memoryMiB: 8192
    },
    {
      name: "at least one core",
      cpus: 2,
      memoryBytes: 16 * GiB,
      cpuRatio: 0.1,
      memoryRatio: 0.5,
      cores: 1,
      memoryMiB: 8192
    },
    {
      name: "a node reporting 0 CPUs still gets 1 core",
      cpus: 0,
      memoryBytes: 16 * GiB,
      cpuRatio: 1,
      memoryRatio: 0.5,
      cores: 1,
      memoryMiB: 8192
    },
    // 32047.55 MiB (a real node's memory.total) × 0.5 = 16023.78 MiB → 15872 (62 × 256)
    {
      name: "rounds memory down to 256 MiB",
      cpus: 8,
      memoryBytes: 33_604_296_704,
      cpuRatio: 0.5,
      memoryRatio: 0.5,
      cores: 4,
      memoryMiB: 15872
    },
    {
      name: "at least 512 MiB",
      cpus: 2,
      memoryBytes: 1 * GiB,
      cpuRatio: 0.5,
      memoryRatio: 0.25,
      cores: 1,
      memoryMiB: 512
    },
    {
      name: "at least 512 MiB even on a tiny node",
      cpus: 1,
      memoryBytes: 256 * MiB,
      cpuRatio: 1,
      memoryRatio: 1,
      cores: 1,
      memoryMiB: 512
    },
    // 0.29 × 100 = 28.999999999999996 in binary floating point
    {
      name: "absorbs floating-point error",
      cpus: 100,
      memoryBytes: 100 * 256 * MiB,
      cpuRatio: 0.29,
      memoryRatio: 0.29,
      cores: 29,
      memoryMiB: 29 * 256
    }
  ]
  for (const c of cases) {
    it.effect(c.name, () =>
      Effect.gen(function* () {
        const size = yield* sizeVm(
          { cpus: c.cpus, memoryBytes: c.memoryBytes },
          { cpuRatio: c.cpuRatio, memoryRatio: c.memoryRatio }
        )
        assert.deepStrictEqual(size, new VmSize({ cores: c.cores, memoryMiB: c.memoryMiB }))
      })
    )
  }

  for (const [ratio, value] of [
    ["cpuRatio", 0],
    ["cpuRatio", 1.5],
    ["memoryRatio", -0.5],
    ["memoryRatio", Number.NaN]
  ] as const) {
    it.effect(`rejects ${ratio} = ${value}`, () =>
      Effect.gen(function* () {
        const ratios = { cpuRatio: 0.5, memoryRatio: 0.5, [ratio]: value }
        const error = yield* Effect.flip(sizeVm({ cpus: 8, memoryBytes: 32 * GiB }, ratios))
        assert.strictEqual(error._tag, "VmHealthError")
        assert.strictEqual(error.reason._tag, "InvalidRatio")
        assert.strictEqual(error.reason._tag === "InvalidRatio" && error.reason.ratio, ratio)
        assert.strictEqual(error.message, `${ratio} must be in (0, 1], got ${value}`)
      })
    )
  }

  it.effect("rejects a nonsensical capacity", () =>
    Effect.gen(function* () {
      const ratios = { cpuRatio: 0.5, memoryRatio: 0.5 }
      const cpus = yield* Effect.flip(sizeVm({ cpus: 2.5, memoryBytes: GiB }, ratios))
      assert.strictEqual(cpus.reason._tag, "InvalidInput")
      assert.strictEqual(cpus.message, "invalid NodeCapacity: cpus must be an integer ≥ 0, got 2.5")
      const memory = yield* Effect.flip(sizeVm({ cpus: 2, memoryBytes: Number.POSITIVE_INFINITY }, ratios))
      assert.strictEqual(memory.message, "invalid NodeCapacity: memoryBytes must be a finite number ≥ 0, got Infinity")
    })
  )

  it.effect("the error can be handled by reason", () =>
    sizeVm({ cpus: 8, memoryBytes: GiB }, { cpuRatio: 2, memoryRatio: 0.5 }).pipe(
      Effect.catchReason("VmHealthError", "InvalidRatio", (reason) => Effect.succeed(`bad ${reason.ratio}`)),
      Effect.map((result) => assert.strictEqual(result, "bad cpuRatio"))
    )
  )

  const Ratio = Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 1, exclusiveMinimum: true }))
  it.effect.prop(
    "cores in [1, max(1, cpus)], memory a multiple of 256 MiB in [512, max(512, share)]",
    {
      cpus: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 512 })),
      memoryMiB: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 4_194_304 })),
      cpuRatio: Ratio,
      memoryRatio: Ratio
    },
    ({ cpuRatio, cpus, memoryMiB, memoryRatio }) =>
      Effect.gen(function* () {
        const size = yield* sizeVm({ cpus, memoryBytes: memoryMiB * MiB }, { cpuRatio, memoryRatio })
        assert.isTrue(size.cores >= 1 && size.cores <= Math.max(1, cpus))
        assert.isTrue(size.cores <= Math.max(1, cpus * cpuRatio + 1e-6))
        assert.strictEqual(size.memoryMiB % MemoryStepMiB, 0)
        assert.isTrue(size.memoryMiB >= MinMemoryMiB)
        assert.isTrue(size.memoryMiB <= Math.max(MinMemoryMiB, memoryMiB * memoryRatio + 1e-6))
        // never more than one step below the exact share (unless the 512 MiB floor applies)
        assert.isTrue(size.memoryMiB === MinMemoryMiB || size.memoryMiB > memoryMiB * memoryRatio - MemoryStepMiB)
      }),
    { arbitrary: { runs: 1_000 } }
  )
})
