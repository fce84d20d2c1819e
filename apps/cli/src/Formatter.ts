import * as CliOutput from "effect/cli/CliOutput"
import pc from "picocolors"
import { CommandFailed } from "./CommandFailed.js"

/**
 * The CLI's formatter: effect/cli's default (help, usage errors, version), except that a `CommandFailed` whose exit is
 * not an error is headed on stderr by the state it reports, in yellow (`CHANGES PENDING`, `NEEDS CONFIRMATION`,
 * `PENDING RESTART`; see `CommandFailed.heading`) instead of a red `ERROR`.
 */
export const formatter = (colors: boolean): CliOutput.Formatter => {
  const base = CliOutput.defaultFormatter({ colors })
  const c = pc.createColors(colors)
  return {
    ...base,
    formatError: (error) => {
      const failed = error._tag === "UserError" ? error.cause : undefined
      if (!(failed instanceof CommandFailed) || failed.isError) return base.formatError(error)
      // formatCliError is the message with control characters escaped, as formatError prints it under ERROR
      return `\n${c.bold(c.yellow(failed.heading))}\n  ${base.formatCliError(error)}`
    }
  }
}
