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
    // a one-line error: as effect/cli prints it
    const refused = new CommandFailed({ userMessage: "Proxmox: refused", exitCode: ExitCode.Proxmox })
    for (const colors of [false, true]) {
      assert.strictEqual(
        formatter(colors).formatError(asUserError(refused)),
        CliOutput.defaultFormatter({ colors }).formatError(asUserError(refused))
      )
    }
  })

  it("indents every line of a multi-line message, not only the first (blank lines stay blank)", () => {
    const lines = new CommandFailed({
      userMessage: "homelab.yaml: 2 problems\nhomelab.yaml:1:1 nodes: expected a list\n\n  nested: detail",
      exitCode: ExitCode.Config,
      hint: "fix it"
    })
    assert.strictEqual(
      formatter(false).formatError(asUserError(lines)),
      "\nERROR\n  homelab.yaml: 2 problems\n  homelab.yaml:1:1 nodes: expected a list\n\n    nested: detail\n  hint: fix it"
    )
    assert.strictEqual(
      formatter(true).formatError(asUserError(config)),
      "\n\u001b[1m\u001b[31mERROR\u001b[0m\n  homelab.yaml: bad\n  hint: fix it\u001b[0m"
    )
    const pending = new CommandFailed({
      userMessage: "2 change(s):\n[pve] create",
      exitCode: ExitCode.Changes,
      code: "changes"
    })
    assert.strictEqual(
      formatter(false).formatError(asUserError(pending)),
      "\nCHANGES PENDING\n  2 change(s):\n  [pve] create"
    )
    // usage errors too (effect/cli's own messages: "Did you mean" under an unknown subcommand)
    const unknown = new CliError.UnknownSubcommand({ subcommand: "plna", parent: ["homelab"], suggestions: ["plan"] })
    assert.strictEqual(
      formatter(false).formatErrors([unknown]),
      '\nERROR\n  Unknown subcommand "plna" for "homelab"\n\n    Did you mean this?\n      plan'
    )
  })
})
