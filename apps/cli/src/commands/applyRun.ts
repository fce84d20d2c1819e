// What `plan`, `apply` and `reprovision` run, loaded only when one of them runs (the definitions in applyCommand.ts
// are all that `homelab --help` loads).
import * as fs from "node:fs/promises"
import * as path from "node:path"
import {
  checkSavedConfig,
  desiredFromConfig,
  readSavedPlan,
  type SavedPlanError,
  savePlan
} from "@homelab/reconcile-core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import { CommandFailed } from "../CommandFailed.js"
import { describeSavedPlanError } from "../describeError.js"
import { ExitCode } from "../ExitCode.js"
import type { LoadedConfig } from "../LoadedConfig.js"
import { loadConfig, reasonOf, warnConfig } from "../LoadedConfig.js"
import { meantNames } from "../meantNames.js"
import { root } from "../Root.js"
import { withEventStream } from "../render/EventStream.js"
import { version } from "../version.js"
import { finishApply, finishPlan, type RunReport, runOnce } from "../Workflow.js"
import { nodesOf } from "./applyCommand.js"

/** Writes the plan of `run` to `file` with the facts it relied on (`homelab plan --out FILE`). */
const writePlan = (
  file: string,
  loaded: LoadedConfig,
  run: RunReport,
  options: { readonly only: ReadonlyArray<string> | undefined; readonly prune: boolean }
) =>
  Effect.tryPromise({
    try: async () => {
      const saved = savePlan({
        desired: desiredFromConfig(loaded.config, { sshKeys: loaded.sshKeys }),
        observed: run.report.observed,
        plan: run.report.plan,
        configSha256: loaded.sha256,
        options,
        createdAt: new Date(),
        generator: `homelab ${version}`
      })
      // written whole or not at all: a temporary file next to it, renamed over it
      const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`)
      await fs.writeFile(temporary, `${JSON.stringify(saved, null, 2)}\n`)
      await fs.rename(temporary, file)
      return saved
    },
    catch: (e) =>
      new CommandFailed({
        userMessage: `cannot write the plan to ${file}: ${(e as Error).message}`,
        exitCode: ExitCode.Error,
        hint: "check that the folder exists and is writable"
      })
  })

export const plan = ({
  only,
  prune,
  out,
  detailedExitcode
}: {
  readonly only: Option.Option<string>
  readonly prune: boolean
  readonly out: Option.Option<string>
  readonly detailedExitcode: boolean
}) =>
  Effect.gen(function* () {
    const flags = yield* root
    const loaded = yield* loadConfig(flags.config, process.env)
    yield* warnConfig(loaded)
    const options = { only: nodesOf(only), prune, yes: false, dryRun: true, json: flags.json, verbose: flags.verbose }
    const run = yield* runOnce(loaded, options)
    if (Option.isSome(out)) {
      const saved = yield* writePlan(out.value, loaded, run, { only: options.only, prune })
      if (!flags.json) {
        yield* Console.log(
          `\nSaved the plan (${saved.actions.length} change(s)) to ${out.value}: \`homelab apply ${out.value}\` applies exactly it, or refuses if the lab changed since.`
        )
      }
    }
    yield* finishPlan(run, { json: flags.json, detailedExitcode })
  })

/** Reads a saved plan and checks it was made from this homelab.yaml (`homelab apply FILE`). */
const loadSavedPlan = (file: string, loaded: LoadedConfig) =>
  Effect.gen(function* () {
    const text = yield* Effect.tryPromise({
      try: () => fs.readFile(file, "utf8"),
      catch: (e) =>
        new CommandFailed({
          userMessage: `cannot read the saved plan ${file}: ${reasonOf(e)}`,
          exitCode: ExitCode.Usage,
          code: "plan-unreadable",
          hint: "pass a file written by `homelab plan --out FILE`"
        })
    })
    const checked = Result.flatMap(readSavedPlan(text, file), (saved) =>
      Result.map(checkSavedConfig(saved, loaded.sha256, file, loaded.path), () => saved)
    )
    if (Result.isFailure(checked)) return yield* describeSavedPlanError(checked.failure as SavedPlanError)
    return checked.success
  })

export const apply = ({
  only,
  prune,
  yes,
  dryRun,
  planFile
}: {
  readonly only: Option.Option<string>
  readonly prune: boolean
  readonly yes: boolean
  readonly dryRun: boolean
  readonly planFile: Option.Option<string>
}) =>
  Effect.gen(function* () {
    const flags = yield* root
    return yield* withEventStream(flags.json, (events) =>
      Effect.gen(function* () {
        if (Option.isSome(planFile) && (Option.isSome(only) || prune)) {
          return yield* new CommandFailed({
            userMessage: `apply ${planFile.value}: a saved plan carries its own --only and --prune; drop them, or make the plan again with them`,
            exitCode: ExitCode.Usage
          })
        }
        const loaded = yield* loadConfig(flags.config, process.env)
        yield* warnConfig(loaded, events)
        const common = { yes, dryRun, json: flags.json, events, verbose: flags.verbose }
        if (Option.isSome(planFile)) {
          const saved = yield* loadSavedPlan(planFile.value, loaded)
          const options = {
            ...common,
            only: saved.options.only ?? undefined,
            prune: saved.options.prune,
            saved: { plan: saved, source: planFile.value }
          }
          const report = yield* runOnce(loaded, options)
          return yield* finishApply(report, options)
        }
        const options = { ...common, only: nodesOf(only), prune }
        const report = yield* runOnce(loaded, options)
        yield* finishApply(report, options)
      })
    )
  })

export const reprovision = ({ node, yes }: { readonly node: string; readonly yes: boolean }) =>
  Effect.gen(function* () {
    const flags = yield* root
    return yield* withEventStream(flags.json, (events) =>
      Effect.gen(function* () {
        const loaded = yield* loadConfig(flags.config, process.env)
        yield* warnConfig(loaded, events)
        // a node rebuilds each of its VMs; a VM's name only that VM (a node that runs several)
        const known = loaded.config.nodes.find((n) => n.name === node)
        const holder = known ?? loaded.config.nodes.find((n) => n.vms.some((v) => v.name === node))
        if (holder === undefined) {
          const nodes = loaded.config.nodes.map((n) => n.name)
          const vms = loaded.config.nodes.flatMap((n) => n.vms.map((v) => v.name))
          const meant = meantNames([node], [...nodes, ...vms])
          return yield* new CommandFailed({
            userMessage: `reprovision ${node}: no such node or VM in ${loaded.path} (nodes: ${nodes.join(", ")}; VMs: ${vms.join(", ")})${meant === undefined ? "" : `; did you mean \`homelab reprovision ${meant.join(" ")}\`?`}`,
            exitCode: ExitCode.Usage
          })
        }
        const vms = known === undefined ? [node] : known.vms.map((v) => v.name)
        const options = {
          only: [holder.name],
          reprovision: vms,
          yes,
          dryRun: false,
          json: flags.json,
          events,
          verbose: flags.verbose
        }
        const report = yield* runOnce(loaded, options)
        yield* finishApply(report, options)
      })
    )
  })
