import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { CommandFailed } from "../CommandFailed.js"
import { ExitCode } from "../ExitCode.js"
import { loadConfig } from "../LoadedConfig.js"
import { root } from "../Root.js"
import { finishApply, runOnce } from "../Workflow.js"

export const onlyFlag = Flag.String("only").pipe(
  Flag.withDescription("Only these nodes (comma-separated names from homelab.yaml)"),
  Flag.optional
)

export const nodesOf = (only: Option.Option<string>) =>
  Option.isSome(only)
    ? only.value
        .split(",")
        .map((n) => n.trim())
        .filter((n) => n !== "")
    : undefined

export const planCommand = Command.make("plan", { only: onlyFlag }, ({ only }) =>
  Effect.gen(function* () {
    const flags = yield* root
    const loaded = yield* loadConfig(flags.config, process.env)
    const options = { only: nodesOf(only), yes: false, dryRun: true, json: flags.json, verbose: flags.verbose }
    const report = yield* runOnce(loaded, options)
    yield* finishApply(report, options)
  })
).pipe(
  Command.withDescription(
    "Show what apply would do, with a reason per action (exit 0: no changes, 2: changes pending, 1: problems)"
  )
)

export const applyCommand = Command.make(
  "apply",
  {
    only: onlyFlag,
    yes: Flag.Boolean("yes").pipe(
      Flag.withAlias("y"),
      Flag.withDescription("Allow destructive actions (recreating unhealthy VMs) without asking"),
      Flag.withDefault(false)
    ),
    dryRun: Flag.Boolean("dry-run").pipe(Flag.withDescription("Plan only; change nothing"), Flag.withDefault(false))
  },
  ({ only, yes, dryRun }) =>
    Effect.gen(function* () {
      const flags = yield* root
      const loaded = yield* loadConfig(flags.config, process.env)
      const options = { only: nodesOf(only), yes, dryRun, json: flags.json, verbose: flags.verbose }
      const report = yield* runOnce(loaded, options)
      yield* finishApply(report, options)
    })
).pipe(
  Command.withDescription(
    "Make every node hold the image and a healthy VM; asks before recreating a VM unless --yes (refuses when not interactive)"
  )
)

export const reprovisionCommand = Command.make(
  "reprovision",
  {
    node: Argument.String("node").pipe(Argument.withDescription("The node whose VM(s) to rebuild")),
    yes: Flag.Boolean("yes").pipe(Flag.withAlias("y"), Flag.withDescription("Do not ask"), Flag.withDefault(false))
  },
  ({ node, yes }) =>
    Effect.gen(function* () {
      const flags = yield* root
      const loaded = yield* loadConfig(flags.config, process.env)
      const known = loaded.config.nodes.find((n) => n.name === node)
      if (known === undefined) {
        return yield* new CommandFailed({
          userMessage: `reprovision ${node}: no such node in ${loaded.path} (nodes: ${loaded.config.nodes.map((n) => n.name).join(", ")})`,
          exitCode: ExitCode.Changes
        })
      }
      const vms = known.vms.map((v) => v.name)
      const options = { only: [node], reprovision: vms, yes, dryRun: false, json: flags.json, verbose: flags.verbose }
      const report = yield* runOnce(loaded, options)
      yield* finishApply(report, options)
    })
).pipe(Command.withDescription("Delete and recreate a node's VM on purpose (asks first unless --yes)"))
