import { ProxmoxApi, type ProxmoxError } from "@homelab/proxmox-client"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import { type Action, isDestructive } from "./Action.js"
import { type ApplyEvent, type ApplyOptions, apply } from "./Apply.js"
import { type ActionOutcome, assess, type Convergence, settle } from "./Convergence.js"
import type { Desired } from "./Desired.js"
import { guestRefs, readGuestUsers } from "./GuestUser.js"
import { membershipAtEnd, membershipContext, runningServers } from "./MembershipAtEnd.js"
import { type ObserveOptions, observe } from "./Observe.js"
import type { Observed } from "./Observed.js"
import { type Plan, type PlanOptions, plan } from "./Plan.js"
import { quorumAtEnd, serversAtEnd } from "./QuorumGuard.js"
import { type SavedPlan, SavedPlanError, SavedPlanStale, savedPlanChanges } from "./SavedPlan.js"
import { DefaultTimeouts } from "./Timeouts.js"

export interface ReconcileOptions extends PlanOptions, Pick<ApplyOptions, "timeouts" | "progressInterval"> {
  /** Apply the plan (`homelab apply`); otherwise only observe and plan (`homelab plan`). */
  readonly apply: boolean
  /**
   * Asked once, after the plan, when it holds destructive actions (recreates): run them? Default: no. Declined
   * actions, and what waits for them, are reported as `unconfirmed`.
   */
  readonly confirm?: ((destructive: ReadonlyArray<Action>) => Effect.Effect<boolean>) | undefined
  readonly onEvent?: ((event: ReconcileEvent) => Effect.Effect<void>) | undefined
  /**
   * Apply this saved plan (`homelab apply FILE`): the plan made now must be it — the same facts and the same actions
   * (see `SavedPlan`) — or the run fails with `SavedPlanError` before anything is changed. `source` names the file.
   */
  readonly saved?: { readonly plan: SavedPlan; readonly source: string } | undefined
}

/** What one reconcile saw, planned, did and left: the same convergence verdict the CLI turns into an exit code. */
export interface ReconcileReport {
  readonly observed: Observed
  readonly plan: Plan
  /** The plan's verdict, before anything ran. */
  readonly planned: Convergence
  /** Empty when only planned. */
  readonly outcomes: ReadonlyArray<ActionOutcome>
  /**
   * After apply (`settle`), with the plan's quorum refusals asked again at the end of the run (`recheckQuorum`),
   * and its "membership unknown" findings too when the run brought server VMs back (`recheckMembership`); the plan's
   * verdict when only planned.
   */
  readonly convergence: Convergence
  readonly applied: boolean
}

/** Everything a reconcile reports as it goes, in order: the plan, each action's steps, and the report. */
export type ReconcileEvent =
  | { readonly _tag: "Planned"; readonly plan: Plan; readonly convergence: Convergence }
  | ApplyEvent
  | { readonly _tag: "Finished"; readonly report: ReconcileReport }

/**
 * The whole workflow in one call: observe (one node's failure is that node's), plan the image, VM and k3s layers
 * together, ask `confirm` for destructive actions, apply (each node's chain on its own; k3s joins as soon as their
 * VM has its IP), and judge every selected node by the one definition of converged. Fails only when the cluster
 * cannot be observed at all (`/cluster/resources` answered by no node), or when a saved plan (`saved`) is no longer
 * the plan.
 */
export const reconcile = Effect.fn("reconcile")(function* (desired: Desired, options: ReconcileOptions) {
  const emit = options.onEvent ?? (() => Effect.void)
  const observeOptions: ObserveOptions = {
    only: options.only,
    reprovision: options.reprovision,
    agentChecks: options.policy.agentNotResponding === "recreate",
    // --prune: the etcd members too when an orphan is a server, or has no Node and may be a member no Node owns
    prune: options.prune
  }
  const observed = yield* observe(desired, observeOptions)
  const p = plan(desired, observed, options)
  if (options.saved !== undefined) {
    const changes = savedPlanChanges(options.saved.plan, { desired, observed, plan: p })
    if (changes.length > 0) {
      return yield* new SavedPlanError({ reason: new SavedPlanStale({ changes }), source: options.saved.source })
    }
  }
  const planned = assess(p)
  yield* emit({ _tag: "Planned", plan: p, convergence: planned })
  if (!options.apply || p.actions.length === 0) {
    const report: ReconcileReport = {
      observed,
      plan: p,
      planned,
      outcomes: [],
      convergence: planned,
      applied: options.apply
    }
    yield* emit({ _tag: "Finished", report })
    return report
  }
  const destructive = p.actions.filter(isDestructive)
  const confirmed =
    destructive.length === 0 || (options.confirm === undefined ? false : yield* options.confirm(destructive))
  const guests = guestRefs(desired.ownershipTag, observed.vms)
  const outcomes = yield* apply(p.actions, desired, {
    onEvent: emit,
    unconfirmed: confirmed ? [] : destructive.map((a) => a.id),
    timeouts: options.timeouts,
    progressInterval: options.progressInterval,
    guests,
    observedAt: observed.at
  })
  // Who to log in as on each server VM now (this run may have restarted one with a new vm.user), when the end of the
  // run reads the cluster.
  const k3s = desired.k3s
  const users =
    k3s !== undefined && p.findings.some((f) => f.quorum !== undefined || f.code === "k3s.unavailable")
      ? yield* readGuestUsers(
          yield* ProxmoxApi,
          guests,
          desired.nodes.flatMap((n) => n.vms.filter((vm) => vm.role === "server").map((vm) => vm.name)),
          k3s.vmUser
        )
      : new Map<string, string>()
  const userOf = (vm: string) => users.get(vm) ?? k3s?.vmUser ?? "root"
  // The plan's quorum refusals are asked again: the run may have brought back the server they waited for.
  const servers = serversAtEnd(desired, observed, p.findings, outcomes, userOf)
  const rechecked = yield* quorumAtEnd(p.findings, servers)
  // So are its "membership unknown" findings, when it brought server VMs back (after a power cut, say).
  const findings = yield* membershipAtEnd(rechecked, {
    ...membershipContext(desired, observed, outcomes),
    servers: [...servers, ...runningServers(desired, observed, servers, userOf)],
    wait: options.timeouts?.k3sReady ?? desired.timeouts?.k3sReady ?? DefaultTimeouts.k3sReady,
    onWait: (wait) => emit({ _tag: "Settling", wait }),
    progressInterval: options.progressInterval,
    startedUnits: outcomes.flatMap((o) =>
      o.action._tag === "StartK3s" && o.status === "done" && k3s !== undefined
        ? [{ vm: o.action.vm, host: { host: o.action.ip, port: k3s.vmSshPort, user: userOf(o.action.vm) } }]
        : []
    )
  })
  const report: ReconcileReport = {
    observed,
    plan: p,
    planned,
    outcomes,
    convergence: settle({ ...p, findings }, outcomes),
    applied: true
  }
  yield* emit({ _tag: "Finished", report })
  return report
})

/**
 * `reconcile` as a stream of its events, ending with `Finished` (for progress displays and NDJSON event logs).
 * Interrupting the stream interrupts the run; what it was doing is finished by the next run (the marks in the VMs'
 * tags say what).
 */
export const reconcileStream = (
  desired: Desired,
  options: Omit<ReconcileOptions, "onEvent">
): Stream.Stream<ReconcileEvent, ProxmoxError | SavedPlanError, ProxmoxApi> =>
  Stream.callback<ReconcileEvent, ProxmoxError | SavedPlanError, ProxmoxApi>((queue) =>
    reconcile(desired, { ...options, onEvent: (event) => Queue.offer(queue, event).pipe(Effect.asVoid) }).pipe(
      Effect.andThen(Queue.end(queue))
    )
  )
