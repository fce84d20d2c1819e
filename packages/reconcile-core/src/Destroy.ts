import type { ProxmoxApi, ProxmoxError } from "@homelab/proxmox-client"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type { Action } from "./Action.js"
import { apply } from "./Apply.js"
import { assess, settle } from "./Convergence.js"
import type { Desired } from "./Desired.js"
import { guestRefs } from "./GuestUser.js"
import { observe } from "./Observe.js"
import { type DestroyOptions, planDestroy } from "./PlanDestroy.js"
import type { ReconcileEvent, ReconcileOptions, ReconcileReport } from "./Reconcile.js"

export interface DestroyRunOptions
  extends DestroyOptions,
    Pick<ReconcileOptions, "timeouts" | "progressInterval" | "onEvent"> {
  /** Carry out the plan; otherwise only observe and plan (`homelab destroy --dry-run`). */
  readonly apply: boolean
  /**
   * Asked once, after the plan, with every action (all of them destructive): go on? Default: no. Declined actions
   * are reported as `unconfirmed` and nothing is touched.
   */
  readonly confirm?: ((actions: ReadonlyArray<Action>) => Effect.Effect<boolean>) | undefined
}

/**
 * `homelab destroy` in one call: observe every VM of ours on the nodes in scope (with its protection and lock), plan
 * the teardown (`planDestroy`: each VM's k3s Node cordoned, drained and removed before the VM is stopped and destroyed
 * with purge; protected VMs and VMs without the ownership tag listed, never touched), ask `confirm`, and run it with
 * the same executor, events and per-node verdict as apply: a node is "converged" when nothing of ours that was to go
 * is left (protected VMs are kept on purpose and do not count). Fails only when the cluster cannot be observed.
 */
export const destroy = Effect.fn("destroy")(function* (desired: Desired, options: DestroyRunOptions) {
  const emit = options.onEvent ?? (() => Effect.void)
  // The etcd members too when a VM of ours in scope is a server (the quorum guard), or has no Node and may be a member
  // no Node owns (its Node force-deleted: its teardown cannot remove that member, `planDestroy` says so).
  const observed = yield* observe(desired, { only: options.only, owned: true, allDetails: true })
  const p = planDestroy(desired, observed, options)
  const planned = assess(p)
  yield* emit({ _tag: "Planned", plan: p, convergence: planned })
  const finish = (report: ReconcileReport) => Effect.as(emit({ _tag: "Finished", report }), report)
  if (!options.apply || p.actions.length === 0) {
    return yield* finish({ observed, plan: p, planned, outcomes: [], convergence: planned, applied: options.apply })
  }
  const confirmed = options.confirm === undefined ? false : yield* options.confirm(p.actions)
  const outcomes = yield* apply(p.actions, desired, {
    onEvent: emit,
    unconfirmed: confirmed ? [] : p.actions.map((a) => a.id),
    timeouts: options.timeouts,
    progressInterval: options.progressInterval,
    guests: guestRefs(desired.ownershipTag, observed.vms)
  })
  return yield* finish({ observed, plan: p, planned, outcomes, convergence: settle(p, outcomes), applied: true })
})

/** `destroy` as a stream of its events, ending with `Finished`. */
export const destroyStream = (
  desired: Desired,
  options: Omit<DestroyRunOptions, "onEvent">
): Stream.Stream<ReconcileEvent, ProxmoxError, ProxmoxApi> =>
  Stream.callback<ReconcileEvent, ProxmoxError, ProxmoxApi>((queue) =>
    destroy(desired, { ...options, onEvent: (event) => Queue.offer(queue, event).pipe(Effect.asVoid) }).pipe(
      Effect.andThen(Queue.end(queue))
    )
  )
