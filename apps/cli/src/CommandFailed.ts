import * as CliError from "effect/cli/CliError"
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import { ExitCode } from "./ExitCode.js"

/** A stable, machine-readable name per exit code, for `error.code` in `--json` output. */
const codeOfExit: Record<number, string> = {
  [ExitCode.Error]: "error",
  [ExitCode.Changes]: "usage",
  [ExitCode.Config]: "config",
  [ExitCode.Proxmox]: "proxmox",
  [ExitCode.Partial]: "not-converged",
  [ExitCode.NeedsConfirmation]: "needs-confirmation",
  [ExitCode.Join]: "k3s-join",
  [ExitCode.PendingRestart]: "pending-restart",
  [ExitCode.PlanStale]: "plan-stale",
  [ExitCode.Interrupted]: "interrupted"
}

/**
 * The heading of a failure's text on stderr: `ERROR`, except for the exits that report a state the user acts on, where
 * nothing failed: changes pending (`plan --detailed-exitcode`), destructive work or orphans left for a confirmation
 * (`--yes`, `--prune`), and changes waiting for a VM restart. Keyed by `error.code`.
 */
const headingOfCode: Record<string, string> = {
  changes: "CHANGES PENDING",
  "needs-confirmation": "NEEDS CONFIRMATION",
  "pending-restart": "PENDING RESTART"
}

/** What `--json` prints on stdout when a command fails: one object, the same facts as the text on stderr. */
export interface ErrorDocument {
  readonly error: {
    readonly code: string
    readonly message: string
    readonly hint: string | null
    readonly node: string | null
    readonly exitCode: number
  }
}

/**
 * The one error the CLI shows to users: a message written for a person, and the exit code.
 * Every library error is mapped to it in `toCommandFailed` (see `describeError.ts`); nothing else decides
 * exit codes or wording. `code`, `hint` and `node` are what `--json` reports next to the message; a hint may also be
 * written into `userMessage` as a last `hint: …` line (it is then taken from there).
 */
export class CommandFailed extends Schema.TaggedError<CommandFailed>()("CommandFailed", {
  userMessage: Schema.String,
  exitCode: Schema.Int,
  /** Stable machine-readable kind (default: named after the exit code, e.g. `config`, `proxmox`). */
  code: Schema.optional(Schema.String),
  /** What to do about it. */
  hint: Schema.optional(Schema.String),
  /** The PVE node it is about, when it is about one. */
  node: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return this.userMessage
  }
  override get [CliError.userMessage](): string {
    return this.hint === undefined ? this.userMessage : `${this.userMessage}\nhint: ${this.hint}`
  }
  override get [Runtime.errorExitCode](): number {
    return this.exitCode
  }

  /** What stderr heads the text with: `ERROR`, or the state a non-error exit reports (`CHANGES PENDING`, …). */
  get heading(): string {
    return headingOfCode[this.code ?? codeOfExit[this.exitCode] ?? "error"] ?? "ERROR"
  }

  /** Whether this exit reports an error (not only a state the user acts on, such as changes pending). */
  get isError(): boolean {
    return this.heading === "ERROR"
  }

  /** The `--json` form of this error. */
  get document(): ErrorDocument {
    const split = /\nhint: ([^\n]*)$/u.exec(this.userMessage)
    const hint = this.hint ?? split?.[1]
    const message =
      this.hint === undefined && split !== null ? this.userMessage.slice(0, split.index) : this.userMessage
    return {
      error: {
        code: this.code ?? codeOfExit[this.exitCode] ?? "error",
        message,
        hint: hint ?? null,
        node: this.node ?? null,
        exitCode: this.exitCode
      }
    }
  }
}
