import { assert, describe, it } from "@effect/vitest"
import * as CliError from "effect/cli/CliError"
import * as CliOutput from "effect/cli/CliOutput"
import { CommandFailed } from "../src/CommandFailed.js"
import { ExitCode } from "../src/ExitCode.js"
import { formatter } from "../src/Formatter.js"

/** What effect/cli hands the formatter when a command fails with `error`. */
const asUserError = (error: CommandFailed) =>
  new CliError.UserError({ cause: error, userMessage: error[CliError.userMessage] })

describe("formatter", () => {
  const changes = new CommandFailed({ userMessage: "4 change(s).", exitCode: ExitCode.Changes, code: "changes" })
  const config = new CommandFailed({ userMessage: "homelab.yaml: bad\nhint: fix it", exitCode: ExitCode.Config })

  it("heads a non-error exit by its state, in yellow; an error as effect/cli does", () => {
    assert.strictEqual(formatter(false).formatError(asUserError(changes)), "\nCHANGES PENDING\n  4 change(s).")
    assert.strictEqual(
      formatter(true).formatError(asUserError(changes)),
      "\n\u001b[1m\u001b[33mCHANGES PENDING\u001b[39m\u001b[22m\n  4 change(s)."
    )
    for (const colors of [false, true]) {
      assert.strictEqual(
        formatter(colors).formatError(asUserError(config)),
        CliOutput.defaultFormatter({ colors }).formatError(asUserError(config))
      )
    }
    assert.strictEqual(formatter(false).formatError(asUserError(config)), "\nERROR\n  homelab.yaml: bad\nhint: fix it")
  })
})
