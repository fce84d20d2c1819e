import { Schema } from "effect"
import { CliError } from "effect/cli"
import * as Runtime from "effect/Runtime"

/**
 * The one error the CLI shows to users: a message written for a person, and the exit code.
 * Every library error is mapped to it in `toCommandFailed` (see `describeError.ts`); nothing else decides
 * exit codes or wording.
 */
export class CommandFailed extends Schema.TaggedError<CommandFailed>()("CommandFailed", {
  userMessage: Schema.String,
  exitCode: Schema.Int
}) {
  override get message(): string {
    return this.userMessage
  }
  override get [CliError.userMessage](): string {
    return this.userMessage
  }
  override get [Runtime.errorExitCode](): number {
    return this.exitCode
  }
}
