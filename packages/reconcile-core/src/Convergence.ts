import { type Action, describeAction, type Layer, layerOf, vmOf } from "./Action.js"
import type { Plan } from "./Plan.js"

/**
 * Why a node is not converged, one reason per thing that is not as homelab.yaml asks:
 *
 * - `planned`: an action of this plan makes it so (before apply);
 * - `blocked`: it cannot be made so without the user (a stranger holds the name, protection, a failed preflight, a
 *   node out of reach, a k3s identity conflict);
 * - `deferred`: a later run makes it so without the user (a recreate beyond the per-run limit, a VM still starting
 *   or under a passing lock, another run's create);
 * - `failed`: the action that should have made it so failed (after apply);
 * - `skipped`: that action did not run because one it waited for failed;
 * - `unconfirmed`: a destructive action that was not confirmed (`--yes`), or one waiting for it; or an orphan that
 *   is left running because the run was not allowed to prune (`--prune`).
 * - `pending`: the VM's configuration is as homelab.yaml asks, but part of it takes effect only when the VM restarts,
 *   and `vm.restart: never` leaves that to the user. Not converged: the running VM is not yet what the file says.
 */
export interface Reason {
  readonly code: string
  readonly status: "planned" | "blocked" | "deferred" | "failed" | "skipped" | "unconfirmed" | "pending"
  readonly layer: Layer
  readonly vm?: string | undefined
  readonly message: string
  readonly hint?: string | undefined
  /** The action behind a `planned`, `failed`, `skipped` or `unconfirmed` reason. */
  readonly actionId?: string | undefined
}

/**
 * One node, judged by the one definition of converged: the image is on the node, each desired VM exists once, is
 * ours and healthy, and (with `k3s:`) is a Ready member with the right role (and the pinned version); and no VM of
 * ours runs there that homelab.yaml no longer asks for (an orphan). `converged` is true exactly when there is no
 * reason.
 *
 * Orphans: a VM carrying the ownership tag whose name homelab.yaml asks for on no node keeps its node from being
 * converged. Without `--prune` it is left running and reported as `unconfirmed` (like a recreate without `--yes`:
 * the run would do it if allowed), so `plan --detailed-exitcode` exits 2 and `apply` exits 6 when orphans are all
 * that is left; with `--prune` it is a planned `DestroyVm`. A protected orphan is `blocked` (remove the protection,
 * or the ownership tag to keep it outside homelab), a locked one `deferred`. An orphan on a node homelab.yaml does
 * not list makes that node part of the plan. A VM without the ownership tag is never an orphan: it is not ours.
 */
export interface NodeConvergence {
  readonly node: string
  readonly converged: boolean
  readonly reasons: ReadonlyArray<Reason>
}

/**
 * Every selected node, judged. A node homelab.yaml does not list is in the plan only for the orphans on it: judged
 * while one of them is left (not converged: it holds a VM of ours homelab.yaml does not ask for), and once none is
 * (`apply --prune` removed them) it is no node of the lab: listed in `tornDown`, not in `nodes` as converged.
 */
export interface Convergence {
  readonly nodes: ReadonlyArray<NodeConvergence>
  readonly converged: boolean
  /** Nodes homelab.yaml does not list on which nothing of ours is left (their VMs pruned by this run). */
  readonly tornDown?: ReadonlyArray<string> | undefined
}

/** What happened to one action of a plan when it was applied. */
export interface ActionOutcome {
  readonly id: string
  readonly action: Action
  readonly status: "done" | "failed" | "skipped" | "unconfirmed"
  /** What it did, or why it failed or did not run. */
  readonly detail: string
  /** For a failure: what to do about it. */
  readonly hint?: string | undefined
  /** The VM's IP, when the action saw it. */
  readonly ip?: string | undefined
  /** Done, but these changes wait for a restart of the VM (`vm.restart: never`). */
  readonly pending?: ReadonlyArray<string> | undefined
  /**
   * Done, but the VM it created (or finished) still differs from homelab.yaml in these settings, compared the way the
   * plan compares a VM (`memory 16384 → 20480 MiB`): the node is not converged (a `failed` reason).
   */
  readonly differs?: ReadonlyArray<string> | undefined
}

const judge = (plan: Plan, reasons: ReadonlyArray<Reason & { readonly node: string }>): Convergence => {
  const unlisted = new Set(plan.unlisted ?? [])
  const judged = plan.nodes.map((node) => {
    const mine = reasons.filter((r) => r.node === node).map(({ node: _n, ...r }) => r)
    return { node, converged: mine.length === 0, reasons: mine }
  })
  const tornDown = judged.filter((n) => n.converged && unlisted.has(n.node))
  const nodes = judged.filter((n) => !tornDown.includes(n))
  return { nodes, converged: nodes.every((n) => n.converged), tornDown: tornDown.map((n) => n.node) }
}

const findingReasons = (plan: Plan) =>
  plan.findings
    .filter((f) => f.effect !== "info")
    .map((f) => ({
      node: f.node,
      code: f.code,
      status:
        f.effect === "blocked"
          ? ("blocked" as const)
          : f.effect === "pending"
            ? ("pending" as const)
            : f.effect === "unconfirmed"
              ? ("unconfirmed" as const)
              : ("deferred" as const),
      layer: f.layer,
      vm: f.vm,
      message: f.message,
      hint: f.hint
    }))

/** Before apply: every planned action and every finding that keeps a node from converging. */
export const assess = (plan: Plan): Convergence =>
  judge(plan, [
    ...plan.actions.map((a) => ({
      node: a.node,
      code: `plan.${a._tag}`,
      status: "planned" as const,
      layer: layerOf(a),
      vm: vmOf(a),
      message: `${describeAction(a)}: ${a.reason}`,
      actionId: a.id
    })),
    ...findingReasons(plan)
  ])

/** What is left of a done action: changes that wait for a restart, settings that still differ from homelab.yaml. */
const leftOver = (o: ActionOutcome): Array<Reason & { readonly node: string }> => [
  ...((o.pending ?? []).length === 0
    ? []
    : [
        {
          node: o.action.node,
          code: "vm.pending-restart",
          status: "pending" as const,
          layer: layerOf(o.action),
          vm: vmOf(o.action),
          message: `VM ${vmOf(o.action)}: ${(o.pending ?? []).join("; ")}: waits for a restart (vm.restart: never)`,
          hint: (o.pending ?? []).some((p) => p.startsWith("cloud-init "))
            ? "restart the VM from PVE (`qm reboot`, or a stop and a start: PVE regenerates its cloud-init drive when it starts it; not a reboot inside the guest, which reads the drive it has), or set vm.restart: rolling"
            : "restart the VM, or set vm.restart: rolling",
          actionId: o.id
        }
      ]),
  ...((o.differs ?? []).length === 0
    ? []
    : [
        {
          node: o.action.node,
          code: "vm.differs-after-create",
          status: "failed" as const,
          layer: layerOf(o.action),
          vm: vmOf(o.action),
          message: `VM ${vmOf(o.action)}: ${(o.differs ?? []).length} setting(s) differ from homelab.yaml once it was provisioned: ${(o.differs ?? []).join("; ")}`,
          hint: "`homelab apply` changes them in place (`homelab plan` shows how); if this run created the VM, homelab should have set them: please report it",
          actionId: o.id
        }
      ])
]

/**
 * After apply: a node is converged when it had nothing but planned actions and every one of them is done (each action
 * checks its own result: a create waits for the IP and compares the new VM with homelab.yaml, a join waits for the
 * Ready Node). Findings are the plan's, except the quorum guard's refusals, which `reconcile` asks again at the end of
 * the run (`recheckQuorum`) and passes in `plan.findings`.
 */
export const settle = (plan: Plan, outcomes: ReadonlyArray<ActionOutcome>): Convergence =>
  judge(plan, [
    ...outcomes.flatMap(
      (o): Array<Reason & { readonly node: string }> =>
        o.status === "done"
          ? leftOver(o)
          : [
              {
                node: o.action.node,
                code: `${o.status}.${o.action._tag}`,
                status: o.status,
                layer: layerOf(o.action),
                vm: vmOf(o.action),
                message:
                  o.status === "failed"
                    ? `${describeAction(o.action)} failed: ${o.detail}`
                    : `${describeAction(o.action)}: ${o.detail}`,
                hint: o.hint,
                actionId: o.id
              }
            ]
    ),
    ...plan.actions
      .filter((a) => !outcomes.some((o) => o.id === a.id))
      .map((a) => ({
        node: a.node,
        code: `skipped.${a._tag}`,
        status: "skipped" as const,
        layer: layerOf(a),
        vm: vmOf(a),
        message: `${describeAction(a)}: not run`,
        actionId: a.id
      })),
    ...findingReasons(plan)
  ])

/**
 * What a plan means for scripts (Terraform's convention): `converged` (nothing to do, nothing blocked), `changes`
 * (actions, deferred work or restarts pending, nothing blocked), or `blocked` (some node cannot converge without the
 * user).
 */
export const planVerdict = (convergence: Convergence): "converged" | "changes" | "blocked" => {
  const reasons = convergence.nodes.flatMap((n) => n.reasons)
  if (reasons.length === 0) return "converged"
  return reasons.some((r) => r.status === "blocked") ? "blocked" : "changes"
}

/**
 * What an apply achieved: `converged` (every selected node), `unconfirmed` (what is left is only destructive work
 * that was not confirmed), `pending-restart` (what is left is only changes that wait for VM restarts, with
 * `vm.restart: never`), `k3s` (what is left is only k3s membership), or `not-converged`.
 */
export const applyVerdict = (
  convergence: Convergence
): "converged" | "unconfirmed" | "pending-restart" | "k3s" | "not-converged" => {
  const reasons = convergence.nodes.flatMap((n) => n.reasons)
  if (reasons.length === 0) return "converged"
  if (reasons.every((r) => r.status === "unconfirmed")) return "unconfirmed"
  if (reasons.every((r) => r.status === "pending")) return "pending-restart"
  if (reasons.every((r) => r.layer === "k3s")) return "k3s"
  return "not-converged"
}
