// What `plan`, `apply` and `reprovision` run, loaded only when one of them runs (the definitions in applyCommand.ts
// are all that `homelab --help` loads).
import type { Option } from "effect"
import { Effect } from "effect"
import { CommandFailed } from "../CommandFailed.js"
import { ExitCode } from "../ExitCode.js"
import { loadConfig } from "../LoadedConfig.js"
import { root } from "../Root.js"
import { finishApply, finishPlan, runOnce } from "../Workflow.js"
import { nodesOf } from "./applyCommand.js"

export const plan = ({
  only,
  prune,
  detailedExitcode
}: {
  readonly only: Option.Option<string>
  readonly prune: boolean
  readonly detailedExitcode: boolean
}) =>
  Effect.gen(function* () {
    const flags = yield* root
    const loaded = yield* loadConfig(flags.config, process.env)
    const options = { only: nodesOf(only), prune, yes: false, dryRun: true, json: flags.json, verbose: flags.verbose }
    const run = yield* runOnce(loaded, options)
    yield* finishPlan(run, { json: flags.json, detailedExitcode })
  })

export const apply = ({
  only,
  prune,
  yes,
  dryRun
}: {
  readonly only: Option.Option<string>
  readonly prune: boolean
  readonly yes: boolean
  readonly dryRun: boolean
}) =>
  Effect.gen(function* () {
    const flags = yield* root
    const loaded = yield* loadConfig(flags.config, process.env)
    const options = { only: nodesOf(only), prune, yes, dryRun, json: flags.json, verbose: flags.verbose }
    const report = yield* runOnce(loaded, options)
    yield* finishApply(report, options)
  })

export const reprovision = ({ node, yes }: { readonly node: string; readonly yes: boolean }) =>
  Effect.gen(function* () {
    const flags = yield* root
    const loaded = yield* loadConfig(flags.config, process.env)
    const known = loaded.config.nodes.find((n) => n.name === node)
    if (known === undefined) {
      return yield* new CommandFailed({
        userMessage: `reprovision ${node}: no such node in ${loaded.path} (nodes: ${loaded.config.nodes.map((n) => n.name).join(", ")})`,
        exitCode: ExitCode.Usage
      })
    }
    const vms = known.vms.map((v) => v.name)
    const options = { only: [node], reprovision: vms, yes, dryRun: false, json: flags.json, verbose: flags.verbose }
    const report = yield* runOnce(loaded, options)
    yield* finishApply(report, options)
  })
