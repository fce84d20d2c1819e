// What `destroy` runs, loaded only when it runs.
import { applyVerdict } from "@homelab/reconcile-core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import { CommandFailed } from "../CommandFailed.js"
import { ExitCode } from "../ExitCode.js"
import { loadConfig, warnConfig } from "../LoadedConfig.js"
import { root } from "../Root.js"
import { type EventStream, withEventStream } from "../render/EventStream.js"
import { summaryEvent } from "../render/Events.js"
import { renderConvergence } from "../render/PlanView.js"
import { countNodes, finishPlan, type RunReport, runOnce, unconverged } from "../Workflow.js"
import { nodesOf } from "./applyCommand.js"

/**
 * The exit of `homelab destroy`: none when everything of ours in scope is gone, 2 when `--only` names no node of
 * homelab.yaml or of the PVE cluster, 6 when not confirmed, otherwise 5.
 */
/** `--only` named something that is no node at all (a typo): nothing was planned, on any node. */
const unknownNodes = (run: RunReport): CommandFailed | undefined => {
  const unknown = run.report.plan.findings.filter((f) => f.code === "node.unknown")
  return unknown.length === 0
    ? undefined
    : new CommandFailed({
        userMessage: `${unknown.map((f) => f.message).join("\n")}\nNothing was destroyed: check the names given to --only.`,
        exitCode: ExitCode.Usage
      })
}

const destroyFailure = (run: RunReport): CommandFailed | undefined => {
  const { report } = run
  const unknown = unknownNodes(run)
  if (unknown !== undefined) return unknown
  const verdict = applyVerdict(report.convergence)
  if (verdict === "converged") return undefined
  const { bad, total } = countNodes(report.convergence)
  const nodes = `${bad} of ${total} node(s) still hold VMs of ours: ${unconverged(report.convergence).join(", ")}`
  if (verdict === "unconfirmed") {
    return new CommandFailed({
      userMessage: `${nodes}\nNothing was destroyed without confirmation: re-run with --yes.`,
      exitCode: ExitCode.NeedsConfirmation
    })
  }
  return new CommandFailed({ userMessage: nodes, exitCode: ExitCode.NotConverged })
}

/**
 * `homelab destroy`: the summary (text, or under `--json` the NDJSON `summary` line) and the exit code (0 everything
 * of ours in scope is gone, 5 not, 6 not confirmed).
 */
export const finishDestroy = (
  run: RunReport,
  options: { readonly json: boolean; readonly events: EventStream | undefined; readonly dryRun: boolean }
) =>
  Effect.gen(function* () {
    if (options.dryRun) {
      const unknown = unknownNodes(run)
      if (unknown !== undefined) return yield* unknown
      return yield* finishPlan(run, options)
    }
    const { report } = run
    if (!options.json && report.outcomes.length > 0) {
      const destroyed = report.outcomes.filter((o) => o.status === "done" && o.action._tag === "DestroyVm").length
      const vms = report.plan.actions.filter((a) => a._tag === "DestroyVm").length
      yield* Console.log(`\nDestroyed ${destroyed} of ${vms} VM(s).`)
      if (!report.convergence.converged) {
        // only the nodes where something is left: a node whose VMs are gone has nothing to say here
        const left = { ...report.convergence, nodes: report.convergence.nodes.filter((n) => !n.converged) }
        yield* Console.log(["", "Left:", ...renderConvergence(left, { after: true })].join("\n"))
      }
    }
    const failure = destroyFailure(run)
    if (options.json) options.events?.emit(summaryEvent(run, failure))
    if (failure !== undefined) return yield* failure
  })

export const destroy = (input: {
  readonly only: Option.Option<string>
  readonly yes: boolean
  readonly images: boolean
  readonly keepImage: boolean
  readonly dryRun: boolean
}) =>
  Effect.gen(function* () {
    const flags = yield* root
    return yield* withEventStream(flags.json, (events) =>
      Effect.gen(function* () {
        if (input.images && input.keepImage) {
          return yield* new CommandFailed({
            userMessage: "--images and --keep-image contradict each other: choose one (--keep-image is the default)",
            exitCode: ExitCode.Usage
          })
        }
        const loaded = yield* loadConfig(flags.config, process.env)
        yield* warnConfig(loaded, events)
        const options = {
          only: nodesOf(input.only),
          yes: input.yes,
          dryRun: input.dryRun,
          json: flags.json,
          events,
          verbose: flags.verbose,
          destroy: { images: input.images }
        }
        const run = yield* runOnce(loaded, options)
        yield* finishDestroy(run, options)
      })
    )
  })
