import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as CliOutput from "effect/cli/CliOutput"
import * as Command from "effect/cli/Command"
import * as TerminalCapabilities from "effect/cli/TerminalCapabilities"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as References from "effect/References"
import * as Runtime from "effect/Runtime"
import { cli } from "./Cli.js"
import { errorDocument } from "./errorDocument.js"
import { formatter } from "./Formatter.js"
import { argvFlag, argvJson } from "./GlobalFlags.js"
import { toUsageError, usagePresenter } from "./UsageError.js"
import { version } from "./version.js"

// runMain only sets the exit code; a library that leaves a timer armed (proxmox-api keeps its 60 s request timer after
// a failed fetch) would keep the process alive. Exit as soon as the program is done.
const exitWhenDone: Runtime.Teardown = (exit, onExit) =>
  Runtime.defaultTeardown(exit, (code) => {
    onExit(code)
    process.exit(code)
  })

const argv = process.argv.slice(2)
// Libraries log notices (fallbacks, host keys) that the CLI already shows in its own words: only --verbose (or an
// explicit --log-level) lets the raw log lines through, on stderr: stdout is for what the command prints (a --json
// document or stream, a kubeconfig).
const verbose = argvFlag(argv, "verbose")
const json = argvJson(argv)

// Under --json, a failed command that printed no result prints its error as one JSON object on stdout (the text
// still goes to stderr). Whether stdout got anything is seen through the Console the commands print with. The commands
// that stream events (apply, reprovision, destroy, demo) end their stream themselves, also when they fail
// (render/EventStream.ts), so a failure of theirs always printed something.
let printedToStdout = false
const console: Console.Console = Object.assign(Object.create(globalThis.console) as Console.Console, {
  log: (...args: ReadonlyArray<unknown>) => {
    printedToStdout = true
    globalThis.console.log(...args)
  }
})

Command.run(cli, { version }).pipe(
  Effect.mapError(toUsageError),
  Effect.tapCause((cause) =>
    json && !printedToStdout && !Cause.hasInterruptsOnly(cause)
      ? Effect.sync(() => globalThis.console.log(JSON.stringify(errorDocument(cause))))
      : Effect.void
  ),
  Effect.provideService(CliOutput.Presenter, usagePresenter(argv, json)),
  // colours as effect/cli's own default formatter would have them
  Effect.provideServiceEffect(
    CliOutput.Formatter,
    Effect.map(TerminalCapabilities.TerminalCapabilities, (caps) => formatter(caps.canColor))
  ),
  Effect.provideService(Console.Console, console),
  Effect.provideService(References.MinimumLogLevel, verbose ? "Debug" : "Error"),
  Effect.provideService(Logger.LogToStderr, true),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({ teardown: exitWhenDone })
)
