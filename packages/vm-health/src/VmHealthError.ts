import * as Schema from "effect/Schema"

/**
 * A health policy (usually from the user's config file) did not decode: a field has a value that is not allowed for
 * it (e.g. `paused: start`, `graceSeconds: -1`). `issue` is the schema's description of what is wrong.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPolicy extends Schema.TaggedError<InvalidPolicy>()("InvalidPolicy", {
  issue: Schema.String
}) {
  override get message(): string {
    return `invalid health policy: ${this.issue}`
  }
}

/**
 * A sizing ratio is outside (0, 1] or not a number.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRatio extends Schema.TaggedError<InvalidRatio>()("InvalidRatio", {
  ratio: Schema.Literals(["cpuRatio", "memoryRatio"]),
  value: Schema.Number
}) {
  override get message(): string {
    return `${this.ratio} must be in (0, 1], got ${this.value}`
  }
}

/**
 * Observed input (VM facts, node facts, node capacity) did not decode: `input` names which, `issue` says why.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  input: Schema.String,
  issue: Schema.String
}) {
  override get message(): string {
    return `invalid ${this.input}: ${this.issue}`
  }
}

/**
 * The one public error of `@homelab/vm-health`. Classification and preflight are total; only decoding untrusted input
 * and sizing with out-of-range ratios can fail. Handle a reason with
 * `Effect.catchReason("VmHealthError", "InvalidPolicy", …)`.
 *
 * @since 0.1.0
 * @category errors
 */
export class VmHealthError extends Schema.TaggedError<VmHealthError>()("VmHealthError", {
  reason: Schema.Union([InvalidPolicy, InvalidRatio, InvalidInput])
}) {
  override get message(): string {
    return this.reason.message
  }
}
