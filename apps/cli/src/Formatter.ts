import type * as CliError from "effect/cli/CliError"
import * as CliOutput from "effect/cli/CliOutput"
import pc from "picocolors"
import { CommandFailed } from "./CommandFailed.js"

/**
 * A message's lines after the first, indented as deep as the formatter indents the first (two spaces under its
 * heading); blank lines stay blank.
 */
const indentRest = (message: string): string => message.replace(/\n(?=[^\n])/gu, "\n  ")

/** `error` with its message's later lines indented (what effect/cli's formatter reads: `message`, `_tag`). */
const indented = <E extends CliError.CliError>(error: E): E =>
  Object.create(error, { message: { value: indentRest(error.message) } }) as E

/**
 * The CLI's formatter: effect/cli's default (help, usage errors, version), except that
 * - every line of a multi-line message is indented under its heading, not only the first;
 * - a `CommandFailed` whose exit is not an error is headed on stderr by the state it reports, in yellow
 *   (`CHANGES PENDING`, `NEEDS CONFIRMATION`, `PENDING RESTART`; see `CommandFailed.heading`) instead of a red `ERROR`.
 */
export const formatter = (colors: boolean): CliOutput.Formatter => {
  const base = CliOutput.defaultFormatter({ colors })
  const c = pc.createColors(colors)
  return {
    ...base,
    formatErrors: (errors) => base.formatErrors(errors.map(indented)),
    formatError: (error) => {
      const failed = error._tag === "UserError" ? error.cause : undefined
      if (!(failed instanceof CommandFailed) || failed.isError) return base.formatError(indented(error))
      // formatCliError is the message with control characters escaped, as formatError prints it under ERROR
      return `\n${c.bold(c.yellow(failed.heading))}\n  ${indentRest(base.formatCliError(error))}`
    }
  }
}
