import type { ProxmoxError } from "@homelab/proxmox-client"
import {
  type Action,
  type ApplyEvent,
  applyVerdict,
  type Convergence,
  type Desired,
  desiredFromConfig,
  destroy,
  healthPolicyFromConfig,
  planVerdict,
  type ReconcileEvent,
  type ReconcileReport,
  reconcile,
  type SavedPlan,
  type SavedPlanError
} from "@homelab/reconcile-core"
import type { SshError } from "@homelab/ssh"
import * as Console from "effect/Console"
import * as Prompt from "effect/cli/Prompt"
import * as Effect from "effect/Effect"
import { CommandFailed } from "./CommandFailed.js"
import { toCommandFailed } from "./describeError.js"
import { ExitCode } from "./ExitCode.js"
import { isInteractive } from "./isInteractive.js"
import type { LoadedConfig } from "./LoadedConfig.js"
import { meantNames } from "./meantNames.js"
import { renderDestroyPlan } from "./render/DestroyView.js"
import type { EventStream } from "./render/EventStream.js"
import {
  actionEvent,
  confirmationEvent,
  type EventLine,
  interruptedEvent,
  noticeEvent,
  planEvent,
  summaryEvent
} from "./render/Events.js"
import {
  convergenceJson,
  listedIn,
  planJson,
  renderConvergence,
  renderPlan,
  summary,
  tornDownLine
} from "./render/PlanView.js"
import { type ProgressSink, plainProgress } from "./render/Progress.js"
import { type Notice, proxmoxLayer } from "./Session.js"

export interface RunOptions {
  readonly only?: ReadonlyArray<string> | undefined
  readonly reprovision?: ReadonlyArray<string> | undefined
  readonly yes: boolean
  readonly dryRun: boolean
  readonly json: boolean
  /**
   * With `json`: stream the run as NDJSON events into it (`apply`, `reprovision`, `destroy`, `demo`; see
   * render/EventStream.ts) instead of printing one document at the end (`plan`).
   */
  readonly events?: EventStream | undefined
  readonly verbose: boolean
  /** `plan --detailed-exitcode`: 0 nothing to do, 2 changes pending, 1 blocked. */
  readonly detailedExitcode?: boolean | undefined
  /** `--prune`: remove orphans (VMs of ours homelab.yaml no longer asks for), their k3s Node first. */
  readonly prune?: boolean | undefined
  /** `homelab destroy`: tear down every VM of ours in scope instead of converging (`images`: the image too). */
  readonly destroy?: { readonly images: boolean } | undefined
  /** `homelab apply FILE`: apply that saved plan, or refuse it when the lab moved (`only` and `prune` come from it). */
  readonly saved?: { readonly plan: SavedPlan; readonly source: string } | undefined
}

/** What one run did, for the summary and the exit code. */
export interface RunReport {
  readonly report: ReconcileReport
  readonly notices: ReadonlyArray<Notice>
}

/** A sink that writes nothing: `--json` prints its document at the end. */
const silent: ProgressSink = { event: () => {}, notice: () => {}, line: () => {}, done: () => {} }

/** `--only` given but naming no node (`--only ""` from an empty variable, `--only ,`): a usage error, never "all". */
const checkOnlyGiven = (loaded: LoadedConfig, only: ReadonlyArray<string> | undefined) =>
  only !== undefined && only.length === 0
    ? Effect.fail(
        new CommandFailed({
          userMessage: `--only names no node (it is empty): give node names from ${loaded.path}, comma-separated (nodes: ${loaded.config.nodes.map((n) => n.name).join(", ")}), or leave --only out for every node`,
          exitCode: ExitCode.Usage
        })
      )
    : Effect.void

const checkOnly = (loaded: LoadedConfig, only: ReadonlyArray<string> | undefined) => {
  const names = loaded.config.nodes.map((n) => n.name)
  const unknown = (only ?? []).filter((n) => !names.includes(n))
  const meant = meantNames(only ?? [], names)
  return unknown.length === 0
    ? Effect.void
    : Effect.fail(
        new CommandFailed({
          userMessage: `--only ${unknown.join(",")}: no such node in ${loaded.path} (nodes: ${names.join(", ")})${meant === undefined ? "" : `; did you mean --only ${meant.join(",")}?`}`,
          exitCode: ExitCode.Usage
        })
      )
}

/** The actions that destroy something: a run asks before them (`--yes` without a terminal). */
const DESTRUCTIVE: ReadonlySet<Action["_tag"]> = new Set(["RecreateVm", "DestroyVm", "DeleteImage"])

/** Actions started and not finished: what an interruption leaves in flight. */
const inFlight = () => {
  const running = new Map<string, { node: string; description: string; step: string; destructive: boolean }>()
  return {
    track: (e: ApplyEvent) => {
      switch (e._tag) {
        case "ActionStarted":
          running.set(e.id, {
            node: e.action.node,
            description: e.description,
            step: "",
            destructive: DESTRUCTIVE.has(e.action._tag)
          })
          break
        case "ActionProgress": {
          const r = running.get(e.id)
          if (r) r.step = e.step
          break
        }
        case "ActionDone":
        case "ActionFailed":
        case "ActionSkipped":
          running.delete(e.id)
          break
      }
    },
    lines: () => [...running.values()].map((r) => `  [${r.node}] ${r.description}${r.step ? ` (${r.step})` : ""}`),
    /** A destructive action was in flight: the next run may have it still to do, and asks first again. */
    destructive: () => [...running.values()].some((r) => r.destructive),
    entries: () =>
      [...running.entries()].map(([id, r]) => ({ id, node: r.node, description: r.description, step: r.step }))
  }
}

/**
 * Plan (and unless `dryRun`, apply) one homelab.yaml through reconcile-core's one call; this only renders, asks and
 * keeps what the exit code needs. Prints as it goes.
 */
export const runOnce = Effect.fn("runOnce")(function* (loaded: LoadedConfig, options: RunOptions) {
  // destroy also takes nodes homelab.yaml no longer lists (they may still run VMs of ours)
  yield* checkOnlyGiven(loaded, options.only)
  if (options.destroy === undefined) yield* checkOnly(loaded, options.only)
  const notices: Array<Notice> = []
  const stream = options.json ? options.events : undefined
  const emit = (line: EventLine) => stream?.emit(line)
  const sink: ProgressSink = options.json
    ? stream !== undefined
      ? { ...silent, event: (e) => emit(actionEvent(e)), notice: (n) => emit(noticeEvent(n)) }
      : silent
    : !options.verbose && isInteractive()
      ? (yield* Effect.promise(() => import("./render/TtyProgress.js"))).ttyProgress(process.stdout)
      : plainProgress((line) => process.stdout.write(`${line}\n`), options.verbose)
  const onNotice = (n: Notice) => {
    notices.push(n)
    sink.notice(n)
  }
  const layer = yield* proxmoxLayer(loaded, onNotice)
  const desired: Desired = desiredFromConfig(loaded.config, { sshKeys: loaded.sshKeys })
  const policy = healthPolicyFromConfig(loaded.config)
  const flight = inFlight()

  const promptContext = yield* Effect.context<Prompt.Environment>()
  const confirm = (destructive: ReadonlyArray<Action>) =>
    Effect.gen(function* () {
      if (options.yes) {
        emit(confirmationEvent(destructive, true, "--yes"))
        return true
      }
      // --json never prompts: its stdout is for the machine (pass --yes)
      const interactive = isInteractive() && !options.json
      const list = destructive.map(destructiveWords).join(", ")
      const confirmed = interactive
        ? yield* Prompt.run(
            Prompt.Confirm({
              message: `${capitalised(list)}: ${destructive.length} destructive change(s). Go ahead?`,
              initial: false
            })
          ).pipe(Effect.orElseSucceed(() => false))
        : false
      if (!confirmed) {
        sink.line(
          `Not making ${destructive.length} destructive change(s) without confirmation${interactive ? "" : " (not interactive)"}: re-run with --yes to allow it.`
        )
      }
      emit(confirmationEvent(destructive, confirmed, interactive ? "answer" : "not interactive"))
      return confirmed
    }).pipe(Effect.provideContext(promptContext))

  const onEvent = (event: ReconcileEvent) =>
    Effect.sync(() => {
      if (event._tag === "Planned") {
        emit(planEvent(event.plan, event.convergence))
        if (!options.json)
          sink.line(
            options.destroy !== undefined
              ? renderDestroyPlan(event.plan, event.convergence)
              : renderPlan(event.plan, event.convergence)
          )
      } else if (event._tag !== "Finished") {
        flight.track(event)
        sink.event(event)
      }
    })
  const common = { apply: !options.dryRun, confirm, onEvent }
  const run =
    options.destroy !== undefined
      ? destroy(desired, { ...common, only: options.only, images: options.destroy.images })
      : reconcile(desired, {
          ...common,
          policy,
          only: options.only,
          reprovision: options.reprovision,
          prune: options.prune,
          saved: options.saved
        })
  const program = run.pipe(
    Effect.map((report): RunReport => ({ report, notices })),
    Effect.onInterrupt(() =>
      Effect.sync(() => {
        sink.done()
        emit(interruptedEvent(flight.entries()))
        const lines = flight.lines()
        process.stderr.write(
          lines.length === 0
            ? "\nInterrupted. Nothing was in flight; run the command again to go on.\n"
            : `\nInterrupted while these were in flight:\n${lines.join("\n")}\nThe next \`${resumeCommand(options)}\` finds what each one left (its marks are on the VMs) and finishes it.${flight.destructive() ? " Whatever it has still to destroy, it asks about first (`--yes` where no one can answer)." : ""}\n`
        )
      })
    ),
    Effect.provide(layer),
    Effect.ensuring(Effect.sync(() => sink.done()))
  )
  return yield* toCommandFailed(
    program as Effect.Effect<RunReport, ProxmoxError | SshError | SavedPlanError | CommandFailed>,
    desired
  )
})

/**
 * The command that finishes what an interrupted run left: the same teardown again (`destroy` with its scope: a plain
 * `apply` would uncordon a half torn-down VM homelab.yaml still asks for, and `destroy` without `--only` would take
 * every node), and `apply --prune` for a prune (a plain `apply` leaves the orphan).
 */
const resumeCommand = (options: RunOptions): string =>
  options.destroy !== undefined
    ? `homelab destroy${options.only === undefined ? "" : ` --only ${options.only.join(",")}`}${options.destroy.images ? " --images" : ""}`
    : `homelab apply${options.prune === true ? " --prune" : ""}`

/** A destructive action in a few words, for the confirmation prompt. */
const destructiveWords = (a: Action): string => {
  switch (a._tag) {
    case "RecreateVm":
      return `recreate VM ${a.vmid} ${a.spec.name}`
    case "DestroyVm":
      return `${a.purpose === "prune" ? "delete orphan" : "destroy"} VM ${a.vmid} ${a.name}`
    case "DeleteImage":
      return `delete ${a.volid} on ${a.node}`
    default:
      return a.id
  }
}

const capitalised = (text: string) => text.charAt(0).toUpperCase() + text.slice(1)

/** `node (first reason)` per unconverged node. */
export const unconverged = (convergence: Convergence): Array<string> =>
  convergence.nodes
    .filter((n) => !n.converged)
    .map(
      (n) =>
        `${n.node} (${n.reasons[0]?.message ?? "?"}${n.reasons.length > 1 ? `; +${n.reasons.length - 1} more` : ""})`
    )

/** `node (the VMs waiting for a restart)` per unconverged node: their findings are shown in full on stdout. */
const waitingForRestart = (convergence: Convergence): Array<string> =>
  convergence.nodes
    .filter((n) => !n.converged)
    .map((n) => {
      const vms = [...new Set(n.reasons.map((r) => r.vm ?? r.message))]
      return `${n.node} (${vms.join(", ")} ${vms.length > 1 ? "wait" : "waits"} for a restart)`
    })

/**
 * `node (first blocked reason)` per node that cannot converge without the user: only its `blocked` reasons count
 * (before apply every node with planned changes is unconverged too, and a planned change blames nobody).
 */
const blockedNodes = (convergence: Convergence): Array<string> =>
  convergence.nodes.flatMap((n) => {
    const blocked = n.reasons.filter((r) => r.status === "blocked")
    return blocked.length === 0
      ? []
      : [`${n.node} (${blocked[0]?.message}${blocked.length > 1 ? `; +${blocked.length - 1} more` : ""})`]
  })

export const countNodes = (convergence: Convergence) => {
  const bad = convergence.nodes.filter((n) => !n.converged).length
  return { bad, total: convergence.nodes.length, good: convergence.nodes.length - bad }
}

/** The JSON document of a run (`plan --json`, `apply --json`): one line, also an NDJSON line. */
const runJson = (run: RunReport) => ({
  plan: planJson(run.report.plan),
  outcomes: run.report.applied
    ? run.report.outcomes.map((o) => ({
        id: o.id,
        action: o.action._tag,
        node: o.action.node,
        status: o.status,
        detail: o.detail,
        ...(o.hint !== undefined ? { hint: o.hint } : {}),
        ip: o.ip
      }))
    : undefined,
  convergence: convergenceJson(run.report.convergence),
  notices: run.notices.map((n) => n.event)
})

/**
 * The exit of `homelab plan` (Terraform's convention): 1 when some node is blocked; with `detailedExitcode`, 2 when
 * changes are pending; otherwise none.
 */
export const planFailure = (run: RunReport, detailedExitcode: boolean): CommandFailed | undefined => {
  const verdict = planVerdict(run.report.planned)
  const text = summary(run.report.plan, run.report.planned)
  if (verdict === "blocked") {
    const blocked = blockedNodes(run.report.planned)
    return new CommandFailed({
      userMessage: `${text} ${blocked.length} node(s) cannot converge without you: ${blocked.join(", ")}`,
      exitCode: ExitCode.Error,
      code: "blocked"
    })
  }
  if (verdict === "changes" && detailedExitcode) {
    return new CommandFailed({ userMessage: text, exitCode: ExitCode.Changes, code: "changes" })
  }
  return undefined
}

/**
 * Prints the JSON at the end of a run: with `events`, the `summary` line of the NDJSON stream; otherwise the one
 * document (`plan --json`).
 */
const printJson = (run: RunReport, failure: CommandFailed | undefined, options: Pick<RunOptions, "json" | "events">) =>
  !options.json
    ? Effect.void
    : options.events !== undefined
      ? Effect.sync(() => options.events?.emit(summaryEvent(run, failure)))
      : Console.log(JSON.stringify(runJson(run)))

/** `homelab plan`: prints the plan's JSON (the text went out as it was planned) and maps the verdict (Terraform). */
export const finishPlan = (run: RunReport, options: Pick<RunOptions, "json" | "events" | "detailedExitcode">) =>
  Effect.gen(function* () {
    const failure = planFailure(run, options.detailedExitcode === true)
    yield* printJson(run, failure, options)
    if (failure !== undefined) return yield* failure
  })

/**
 * The exit of `homelab apply`, from the one convergence verdict: none only when every selected node is converged at
 * the end; 6 when only unconfirmed destructive work is left; 7 when only k3s work is left; 8 when only changes
 * waiting for a restart are left; otherwise 5, naming every node that did not converge and why.
 */
export const applyFailure = (run: RunReport): CommandFailed | undefined => {
  const { report } = run
  const verdict = applyVerdict(report.convergence)
  if (verdict === "converged") return undefined
  const { bad, good, total } = countNodes(report.convergence)
  const others = good === 0 ? "" : `; the other ${good} converged.`
  const nodes = `${bad} of ${total} node(s) did not converge: ${unconverged(report.convergence).join(", ")}${others}`
  switch (verdict) {
    case "unconfirmed": {
      const reasons = report.convergence.nodes.flatMap((n) => n.reasons)
      const orphans = reasons.filter((r) => r.code === "vm.orphan").length
      const declined = reasons.length - orphans
      return new CommandFailed({
        userMessage: [
          nodes,
          ...(declined > 0 ? ["Destructive action(s) need confirmation: re-run with --yes."] : []),
          ...(orphans > 0
            ? [
                `${orphans} orphan(s) (VMs of ours homelab.yaml no longer asks for) left in place: \`homelab apply --prune\` removes them.`
              ]
            : [])
        ].join("\n"),
        exitCode: ExitCode.NeedsConfirmation
      })
    }
    case "pending-restart":
      return new CommandFailed({
        userMessage: `${bad} of ${total} node(s) did not converge: ${waitingForRestart(report.convergence).join(", ")}${others}\nEvery change is applied; some take effect only when their VM restarts (vm.restart: never): restart those VMs from PVE (\`qm reboot\`, or a stop and a start; a reboot inside the guest does not read a new cloud-init drive), or set vm.restart: rolling.`,
        exitCode: ExitCode.PendingRestart
      })
    case "k3s":
      return new CommandFailed({
        userMessage: `${nodes}\nEvery VM is in place; only k3s work is left (membership, an upgrade, or a server the quorum guard keeps up).`,
        exitCode: ExitCode.Join
      })
    case "not-converged":
      return new CommandFailed({ userMessage: nodes, exitCode: ExitCode.NotConverged })
  }
}

/** `homelab apply`: the summary (text, or the NDJSON `summary` line) and the exit code (`applyFailure`). */
export const finishApply = (
  run: RunReport,
  options: Pick<RunOptions, "json" | "events" | "dryRun" | "detailedExitcode">
) =>
  Effect.gen(function* () {
    if (options.dryRun) return yield* finishPlan(run, options)
    const { report } = run
    if (!options.json) {
      if (report.outcomes.length > 0) {
        const done = report.outcomes.filter((o) => o.status === "done").length
        yield* Console.log(`\nApplied ${done} of ${report.plan.actions.length} change(s).`)
      }
      // Nothing applied and every reason one of the plan's findings: the plan above said it all (each finding with
      // its fix, and each node's verdict), so it is not said again.
      const told =
        report.outcomes.length === 0 &&
        report.convergence.nodes.every((n) => n.reasons.every((r) => listedIn(report.plan.findings, n.node, r)))
      if (!report.convergence.converged && !told) {
        yield* Console.log(["", "Not converged:", ...renderConvergence(report.convergence, { after: true })].join("\n"))
      } else if (report.outcomes.length > 0 && report.convergence.nodes.length > 0) {
        yield* Console.log(`Converged: ${report.convergence.nodes.map((n) => n.node).join(", ")}.`)
      }
      // a node homelab.yaml no longer lists, whose VMs of ours this run removed: no node of the lab, said as what it is
      const gone = tornDownLine(report.convergence)
      if (gone !== undefined) yield* Console.log(gone)
    }
    const failure = applyFailure(run)
    yield* printJson(run, failure, options)
    if (failure !== undefined) return yield* failure
  })
