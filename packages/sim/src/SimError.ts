import * as Schema from "effect/Schema"

export class ScenarioInvalid extends Schema.TaggedError<ScenarioInvalid>()("ScenarioInvalid", {
  message: Schema.String
}) {}

export class StartFailed extends Schema.TaggedError<StartFailed>()("StartFailed", {
  message: Schema.String
}) {}

export const SimErrorReason = { ScenarioInvalid, StartFailed }

/** The one public error of @homelab/sim. */
export class SimError extends Schema.TaggedError<SimError>()("SimError", {
  reason: Schema.Union([ScenarioInvalid, StartFailed])
}) {
  override get message(): string {
    return `${this.reason._tag}: ${this.reason.message}`
  }
}
