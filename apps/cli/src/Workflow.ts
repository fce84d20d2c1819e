import type { ProxmoxError } from "@homelab/proxmox-client"
import {
  type ApplyOutcome,
  type ApplyResult,
  apply,
  applyK3s,
  type Desired,
  desiredFromConfig,
  healthPolicyFromConfig,
  isDestructive,
  type K3sPlan,
  observe,
  type Plan,
  plan,
  planK3sPhase
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
  /** Phase 3 (k3s membership), when homelab.yaml has a `k3s:` section. */
  readonly k3s?: { readonly plan: K3sPlan; readonly outcomes: ReadonlyArray<ApplyOutcome> } | undefined
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
    const nodeNames = loaded.config.nodes.map((n) => n.name)
    const k3sPhase = (applyNow: boolean) =>
      Effect.gen(function* () {
        if (desired.k3s === undefined) return undefined
        const k3sPlan = yield* planK3sPhase(desired, desired.k3s, { only: options.only })
        sink.line(
          renderPlan(k3sPlan, {
            nodes: nodeNames,
            title: "k3s membership:",
            noChanges: "k3s: every VM is a Ready member with the right role."
          })
        )
        if (!applyNow || k3sPlan.actions.length === 0) return { plan: k3sPlan, outcomes: [] }
        const outcomes = yield* applyK3s(k3sPlan.actions, desired.k3s, {
          onEvent: (e) => Effect.sync(() => sink.event(e)),
          indexOffset: 1000
        })
        return { plan: k3sPlan, outcomes }
      })

    if (options.dryRun || p.actions.length === 0) {
      const k3s = yield* k3sPhase(!options.dryRun)
      return { plan: p, skippedForConfirmation: 0, notices, k3s } as RunReport
    }

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
    const k3s = yield* k3sPhase(true)
    return { plan: p, result, skippedForConfirmation: skipped, notices, k3s } as RunReport
  }).pipe(Effect.provide(layer), Effect.ensuring(Effect.sync(() => sink.done())))
  return yield* toCommandFailed(program as Effect.Effect<RunReport, ProxmoxError | SshError | CommandFailed>)
})

/** Exit status of an apply: nodes blocked or failed → Partial; destructive actions refused → NeedsConfirmation. */
export const finishApply = (report: RunReport, options: Pick<RunOptions, "json" | "dryRun">) =>
  Effect.gen(function* () {
    const failed = report.result?.outcomes.filter((o) => o.status === "failed") ?? []
    const joinsFailed = report.k3s?.outcomes.filter((o) => o.status === "failed") ?? []
    const blocking = report.plan.findings.filter((f) => f.severity === "error")
    if (options.json) {
      yield* Console.log(
        JSON.stringify(
          {
            plan: planJson(report.plan),
            k3s:
              report.k3s === undefined
                ? undefined
                : {
                    plan: planJson(report.k3s.plan),
                    outcomes: report.k3s.outcomes.map((o) => ({
                      action: o.action._tag,
                      node: o.action.node,
                      status: o.status,
                      detail: o.detail
                    }))
                  },
            outcomes: report.result?.outcomes.map((o) => ({
              action: o.action._tag,
              node: o.action.node,
              status: o.status,
              detail: o.detail,
              ip: o.ip
            })),
            skippedForConfirmation: report.skippedForConfirmation,
            notices: report.notices.map((n) => n.event)
          }
          // one line: a JSON document that is also an NDJSON line (homelab demo --json prints several)
        )
      )
    } else if (report.result !== undefined || (report.k3s?.outcomes.length ?? 0) > 0) {
      const outcomes = [...(report.result?.outcomes ?? []), ...(report.k3s?.outcomes ?? [])]
      const done = outcomes.filter((o) => o.status === "done").length
      const planned = report.plan.actions.length + (report.k3s?.plan.actions.length ?? 0)
      yield* Console.log(`\nApplied ${done} of ${planned} change(s).`)
    }
    if (options.dryRun) {
      if (blocking.length > 0)
        return yield* new CommandFailed({ userMessage: summary(report.plan), exitCode: ExitCode.Error })
      if (report.plan.actions.length > 0)
        return yield* new CommandFailed({ userMessage: summary(report.plan), exitCode: ExitCode.Changes })
      return
    }
    // Under --json the details are in the JSON report on stdout, not "above" on stderr.
    const seeAbove = options.json ? "" : " (see above)"
    if (failed.length > 0 || blocking.length > 0) {
      const nodes = [...new Set([...failed.map((o) => o.action.node), ...blocking.map((f) => f.node)])]
      return yield* new CommandFailed({
        userMessage: `${nodes.length} node(s) did not converge: ${nodes.join(", ")}${seeAbove}; the others did.`,
        exitCode: ExitCode.Partial
      })
    }
    if (joinsFailed.length > 0) {
      return yield* new CommandFailed({
        userMessage: `${joinsFailed.length} k3s join(s) failed: ${joinsFailed.map((o) => (o.action._tag === "JoinK3s" ? o.action.vm : o.action.node)).join(", ")}${seeAbove}; the other VMs are members.`,
        exitCode: ExitCode.Join
      })
    }
    if (report.skippedForConfirmation > 0) {
      return yield* new CommandFailed({
        userMessage: `${report.skippedForConfirmation} destructive action(s) need confirmation: re-run with --yes.`,
        exitCode: ExitCode.NeedsConfirmation
      })
    }
  })
