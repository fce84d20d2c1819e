#!/usr/bin/env node
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect, Runtime } from "effect"
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

Command.run(cli, { version }).pipe(Effect.provide(NodeServices.layer), NodeRuntime.runMain({ teardown: exitWhenDone }))
