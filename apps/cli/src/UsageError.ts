import * as Console from "effect/Console"
import * as CliError from "effect/cli/CliError"
import * as CliOutput from "effect/cli/CliOutput"
import type * as HelpDoc from "effect/cli/HelpDoc"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import type { ErrorDocument } from "./CommandFailed.js"
import { ExitCode } from "./ExitCode.js"

/**
 * The command line itself is wrong: an unknown subcommand or flag, a missing argument. Exit code 2, as the README's
 * table says; the parser already printed the help and the error, so the runtime reports nothing more.
 */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  commandPath: Schema.Array(Schema.String),
  problems: Schema.Array(Schema.String)
}) {
  override readonly [Runtime.errorExitCode] = ExitCode.Changes
  override readonly [Runtime.errorReported] = false

  override get message(): string {
    return this.problems.join("\n")
  }

  /** The `--json` form: `code: "usage"` and where to find the right usage. */
  get document(): ErrorDocument {
    return {
      error: {
        code: "usage",
        message: this.message,
        hint: `see \`${this.commandPath.join(" ")} --help\``,
        node: null,
        exitCode: ExitCode.Changes
      }
    }
  }
}

/** A parse failure of `effect/cli` (its `ShowHelp` carrying errors) as a `UsageError`; anything else unchanged. */
export const toUsageError = <E>(error: E): E | UsageError =>
  CliError.isCliError(error) && error._tag === "ShowHelp" && error.errors.length > 0
    ? new UsageError({ commandPath: error.commandPath, problems: error.errors.map((e) => e.message) })
    : error

const flagNames = (doc: HelpDoc.HelpDoc): { readonly withValue: Set<string> } => {
  const withValue = new Set<string>()
  for (const flag of [...doc.flags, ...(doc.inheritedFlags ?? []), ...(doc.globalFlags ?? [])]) {
    if (flag.type === "boolean") continue
    for (const name of [flag.name, ...flag.aliases]) {
      const bare = name.replace(/^-+/u, "")
      withValue.add(`--${bare}`)
      withValue.add(`-${bare}`)
    }
  }
  return { withValue }
}

/**
 * `effect/cli` runs `--help` before it looks at parse errors, so `homelab bogus --help` printed the root help and
 * exited 0. For a help request, this finds the first word after the command path in `argv` that is neither a flag,
 * a flag's value, nor an argument the command takes: when the command has subcommands, that word is an unknown one.
 */
export const unknownSubcommandIn = (
  argv: ReadonlyArray<string>,
  commandPath: ReadonlyArray<string>,
  doc: HelpDoc.HelpDoc
): string | undefined => {
  const subcommands = (doc.subcommands ?? []).flatMap((group) => group.commands)
  if (subcommands.length === 0 || (doc.args ?? []).length > 0) return undefined
  const { withValue } = flagNames(doc)
  let depth = 1 // commandPath[0] is the program itself
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string
    if (token === "--") return undefined
    if (token.startsWith("-") && token !== "-") {
      if (!token.includes("=") && withValue.has(token)) i++
      continue
    }
    if (depth < commandPath.length && token === commandPath[depth]) {
      depth++
      continue
    }
    return subcommands.some((sub) => sub.name === token || sub.alias === token) ? undefined : token
  }
  return undefined
}

/**
 * The usage error of a command that takes a subcommand and was given none (bare `homelab`, bare `homelab config`):
 * `effect/cli` shows such a command's help as if asked for it, and exits 0.
 */
export const missingSubcommand = (commandPath: ReadonlyArray<string>, doc: HelpDoc.HelpDoc): CliError.ValidationError =>
  new CliError.ValidationError({
    message: `Missing subcommand for "${commandPath.join(" ")}": give one of ${(doc.subcommands ?? [])
      .flatMap((group) => group.commands.map((command) => command.name))
      .join(", ")}`
  })

/**
 * The CLI's presenter: the default one, except that (1) a help request naming an unknown subcommand, and a command
 * that takes a subcommand given none, are usage errors (help, the error, exit 2) instead of help with exit 0, and
 * (2) under `--json` a usage error goes to stderr only, so stdout carries nothing but the JSON error object.
 */
export const usagePresenter = (argv: ReadonlyArray<string>, json: boolean): CliOutput.Presenter => ({
  present: (event) =>
    Effect.gen(function* () {
      // "Implicit" help: the command has no handler of its own, only subcommands, and none was given
      if (event._tag === "Help" && event.reason === "Implicit" && (event.helpDoc.subcommands ?? []).length > 0) {
        const error = missingSubcommand(event.commandPath, event.helpDoc)
        yield* usagePresenter(argv, json).present({
          _tag: "InvalidInvocation",
          commandPath: event.commandPath,
          helpDoc: event.helpDoc,
          errors: [error]
        })
        return yield* Effect.die(new UsageError({ commandPath: event.commandPath, problems: [error.message] }))
      }
      if (event._tag === "Help" && event.reason === "Requested") {
        const unknown = unknownSubcommandIn(argv, event.commandPath, event.helpDoc)
        if (unknown !== undefined) {
          const error = new CliError.UnknownSubcommand({
            subcommand: unknown,
            parent: event.commandPath,
            suggestions: []
          })
          yield* usagePresenter(argv, json).present({
            _tag: "InvalidInvocation",
            commandPath: event.commandPath,
            helpDoc: event.helpDoc,
            errors: [error]
          })
          // The presenter cannot fail; the run ends here with exit code 2 (reported already, so not logged).
          return yield* Effect.die(new UsageError({ commandPath: event.commandPath, problems: [error.message] }))
        }
      }
      if (event._tag === "InvalidInvocation" && json) {
        const formatter = yield* CliOutput.Formatter
        return yield* Console.error(formatter.formatErrors(event.errors))
      }
      return yield* CliOutput.defaultPresenter.present(event)
    })
})
