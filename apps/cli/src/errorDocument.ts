import * as Cause from "effect/Cause"
import * as Runtime from "effect/Runtime"
import { CommandFailed, type ErrorDocument } from "./CommandFailed.js"
import { ExitCode } from "./ExitCode.js"
import { UsageError } from "./UsageError.js"

/**
 * The `--json` error object of a failed command: its `CommandFailed` or `UsageError` as the user sees it, or anything
 * else as an internal error (a bug).
 */
export const errorDocument = (cause: Cause.Cause<unknown>): ErrorDocument => {
  const error = Cause.squash(cause)
  if (error instanceof CommandFailed || error instanceof UsageError) return error.document
  return {
    error: {
      code: "internal",
      message: `${error instanceof Error ? error.message : String(error)} (a bug in homelab: please report it)`,
      hint: "run again with --verbose for the details",
      node: null,
      exitCode: Runtime.getErrorExitCode(error) === ExitCode.Interrupted ? ExitCode.Interrupted : ExitCode.Error
    }
  }
}
