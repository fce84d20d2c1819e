import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { InvalidInput, InvalidRatio, VmHealthError } from "./VmHealthError.js"

/**
 * The smallest memory `sizeVm` returns, in MiB.
 *
 * @since 0.1.0
 * @category constants
 */
export const MinMemoryMiB = 512

/**
 * `sizeVm` rounds memory down to a multiple of this many MiB (keeps sizes tidy and stable when the node's reported
 * total wobbles by a few MiB between kernels).
 *
 * @since 0.1.0
 * @category constants
 */
export const MemoryStepMiB = 256

/**
 * A node's capacity: logical CPUs (`cpuinfo.cpus`) and total memory in bytes (`memory.total`).
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeCapacity {
  readonly cpus: number
  readonly memoryBytes: number
}

/**
 * The share of the node a VM gets; each ratio in (0, 1].
 *
 * @since 0.1.0
 * @category models
 */
export interface SizingRatios {
  readonly cpuRatio: number
  readonly memoryRatio: number
}

/**
 * The computed VM size.
 *
 * @since 0.1.0
 * @category models
 */
export class VmSize extends Schema.Class<VmSize>("@homelab/vm-health/VmSize")({
  cores: Schema.Int,
  memoryMiB: Schema.Int
}) {}

// Absorbs binary floating-point error (0.29 × 100 = 28.999999999999996) before flooring.
const epsilon = 1e-9
const floor = (x: number): number => Math.floor(x + epsilon)

/**
 * Sizes a VM from its node's capacity:
 *
 * - `cores` = ⌊cpus × cpuRatio⌋, at least 1;
 * - `memoryMiB` = ⌊memory MiB × memoryRatio⌋ rounded down to a multiple of 256 MiB (`MemoryStepMiB`), at least 512
 *   (`MinMemoryMiB`) — even on a node with less memory; preflight reports that case as `memory.insufficient`.
 *
 * Fails with `VmHealthError` / `InvalidRatio` when a ratio is outside (0, 1], and `InvalidInput` when the capacity is
 * not a non-negative integer CPU count and a non-negative finite byte count.
 *
 * @since 0.1.0
 * @category sizing
 */
export const sizeVm = (capacity: NodeCapacity, ratios: SizingRatios): Effect.Effect<VmSize, VmHealthError> => {
  for (const ratio of ["cpuRatio", "memoryRatio"] as const) {
    const value = ratios[ratio]
    if (!(value > 0 && value <= 1)) {
      return Effect.fail(new VmHealthError({ reason: new InvalidRatio({ ratio, value }) }))
    }
  }
  if (!Number.isInteger(capacity.cpus) || capacity.cpus < 0) {
    return Effect.fail(
      new VmHealthError({
        reason: new InvalidInput({ input: "NodeCapacity", issue: `cpus must be an integer ≥ 0, got ${capacity.cpus}` })
      })
    )
  }
  if (!Number.isFinite(capacity.memoryBytes) || capacity.memoryBytes < 0) {
    return Effect.fail(
      new VmHealthError({
        reason: new InvalidInput({
          input: "NodeCapacity",
          issue: `memoryBytes must be a finite number ≥ 0, got ${capacity.memoryBytes}`
        })
      })
    )
  }
  const cores = Math.max(1, floor(capacity.cpus * ratios.cpuRatio))
  const steps = floor(((capacity.memoryBytes / (1024 * 1024)) * ratios.memoryRatio) / MemoryStepMiB)
  const memoryMiB = Math.max(MinMemoryMiB, steps * MemoryStepMiB)
  return Effect.succeed(new VmSize({ cores, memoryMiB }))
}
