import type { ProxmoxError } from "@homelab/proxmox-client"
import {
  type ApplyResult,
  apply,
  type Desired,
  desiredFromConfig,
  healthPolicyFromConfig,
  isDestructive,
  observe,
  type Plan,
  plan
} from "@homelab/reconcile-core"
import type { SshError } from "@homelab/ssh"
import { Console, Effect } from "effect"
import { Prompt } from "effect/cli"
import { CommandFailed } from "./CommandFailed.js"
import { toCommandFailed } from "./describeError.js"
import { ExitCode } from "./ExitCode.js"
import type { LoadedConfig } from "./LoadedConfig.js"
import { planJson, renderPlan, summary } from "./render/PlanView.js"
import { type ProgressSink, plainProgress, ttyProgress } from "./render/Progress.js"
import { type Notice, proxmoxLayer } from "./Session.js"

export interface RunOptions {
  readonly only?: ReadonlyArray<string> | undefined
  readonly reprovision?: ReadonlyArray<string> | undefined
  readonly yes: boolean
  readonly dryRun: boolean
  readonly json: boolean
  readonly verbose: boolean
}

export interface RunReport {
  readonly plan: Plan
  readonly result?: ApplyResult | undefined
  readonly skippedForConfirmation: number
  readonly notices: ReadonlyArray<Notice>
}

const isTty = () => process.stdout.isTTY === true && process.stdin.isTTY === true && process.env.CI !== "true"

const checkOnly = (loaded: LoadedConfig, only: ReadonlyArray<string> | undefined) => {
  const unknown = (only ?? []).filter((n) => !loaded.config.nodes.some((node) => node.name === n))
  return unknown.length === 0
    ? Effect.void
    : Effect.fail(
        new CommandFailed({
          userMessage: `--only ${unknown.join(",")}: no such node in ${loaded.path} (nodes: ${loaded.config.nodes.map((n) => n.name).join(", ")})`,
          exitCode: ExitCode.Changes
        })
      )
}

/** Plan (and unless `dryRun`, apply) one homelab.yaml. Prints as it goes; returns what happened. */
export const runOnce = Effect.fn("runOnce")(function* (loaded: LoadedConfig, options: RunOptions) {
  yield* checkOnly(loaded, options.only)
  const notices: Array<Notice> = []
  const sink: ProgressSink = options.json
    ? { event: () => {}, notice: () => {}, line: () => {}, done: () => {} }
    : !options.verbose && isTty()
      ? ttyProgress(process.stdout)
      : plainProgress((line) => process.stdout.write(`${line}\n`), options.verbose)
  const onNotice = (n: Notice) => {
    notices.push(n)
    sink.notice(n)
  }
  const layer = yield* proxmoxLayer(loaded, onNotice)
  const desired: Desired = desiredFromConfig(loaded.config, { sshKeys: loaded.sshKeys })
  const policy = healthPolicyFromConfig(loaded.config)
  const planOptions = { policy, only: options.only, reprovision: options.reprovision }

  const program = Effect.gen(function* () {
    const observed = yield* observe(desired, planOptions)
    const p = plan(desired, observed, planOptions)
    if (!options.json) {
      sink.line(renderPlan(p, { nodes: loaded.config.nodes.map((n) => n.name) }))
    }
    if (options.dryRun || p.actions.length === 0) return { plan: p, skippedForConfirmation: 0, notices } as RunReport

    let actions = p.actions
    const destructive = actions.filter(isDestructive)
    let skipped = 0
    if (destructive.length > 0 && !options.yes) {
      const confirmed = isTty()
        ? yield* Prompt.run(
            Prompt.Confirm({
              message: `Delete and recreate ${destructive.length} VM(s): ${destructive.map((a) => (a._tag === "RecreateVm" ? `${a.vmid} ${a.spec.name}` : "")).join(", ")}?`,
              initial: false
            })
          ).pipe(Effect.orElseSucceed(() => false))
        : false
      if (!confirmed) {
        skipped = destructive.length
        actions = actions.filter((a) => !isDestructive(a))
        sink.line(
          `Not recreating ${skipped} VM(s) without confirmation${isTty() ? "" : " (not interactive)"}: re-run with --yes to allow it.`
        )
      }
    }
    const result = yield* apply(actions, desired, { onEvent: (e) => Effect.sync(() => sink.event(e)) })
    return { plan: p, result, skippedForConfirmation: skipped, notices } as RunReport
  }).pipe(Effect.provide(layer), Effect.ensuring(Effect.sync(() => sink.done())))
  return yield* toCommandFailed(program as Effect.Effect<RunReport, ProxmoxError | SshError | CommandFailed>)
})

/** Exit status of an apply: nodes blocked or failed → Partial; destructive actions refused → NeedsConfirmation. */
export const finishApply = (report: RunReport, options: Pick<RunOptions, "json" | "dryRun">) =>
  Effect.gen(function* () {
    const failed = report.result?.outcomes.filter((o) => o.status === "failed") ?? []
    const blocking = report.plan.findings.filter((f) => f.severity === "error")
    if (options.json) {
      yield* Console.log(
        JSON.stringify(
          {
            plan: planJson(report.plan),
            outcomes: report.result?.outcomes.map((o) => ({
              action: o.action._tag,
              node: o.action.node,
              status: o.status,
              detail: o.detail,
              ip: o.ip
            })),
            skippedForConfirmation: report.skippedForConfirmation,
            notices: report.notices.map((n) => n.event)
          },
          null,
          2
        )
      )
    } else if (report.result !== undefined) {
      const done = report.result.outcomes.filter((o) => o.status === "done").length
      yield* Console.log(`\nApplied ${done} of ${report.plan.actions.length} change(s).`)
    }
    if (options.dryRun) {
      if (blocking.length > 0)
        return yield* new CommandFailed({ userMessage: summary(report.plan), exitCode: ExitCode.Error })
      if (report.plan.actions.length > 0)
        return yield* new CommandFailed({ userMessage: summary(report.plan), exitCode: ExitCode.Changes })
      return
    }
    if (failed.length > 0 || blocking.length > 0) {
      const nodes = [...new Set([...failed.map((o) => o.action.node), ...blocking.map((f) => f.node)])]
      return yield* new CommandFailed({
        userMessage: `${nodes.length} node(s) did not converge: ${nodes.join(", ")} (see above); the others did.`,
        exitCode: ExitCode.Partial
      })
    }
    if (report.skippedForConfirmation > 0) {
      return yield* new CommandFailed({
        userMessage: `${report.skippedForConfirmation} destructive action(s) need confirmation: re-run with --yes.`,
        exitCode: ExitCode.NeedsConfirmation
      })
    }
  })
