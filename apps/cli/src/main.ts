import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect, References, Runtime } from "effect"
import { Command } from "effect/cli"
import { cli } from "./Cli.js"
import { version } from "./version.js"

// runMain only sets the exit code; a library that leaves a timer armed (proxmox-api keeps its 60 s request timer after
// a failed fetch) would keep the process alive. Exit as soon as the program is done.
const exitWhenDone: Runtime.Teardown = (exit, onExit) =>
  Runtime.defaultTeardown(exit, (code) => {
    onExit(code)
    process.exit(code)
  })

// Libraries log notices (fallbacks, host keys) that the CLI already shows in its own words: only --verbose (or an
// explicit --log-level) lets the raw log lines through.
const verbose = process.argv.includes("--verbose")

Command.run(cli, { version }).pipe(
  Effect.provideService(References.MinimumLogLevel, verbose ? "Debug" : "Error"),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain({ teardown: exitWhenDone })
)
