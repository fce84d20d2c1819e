import {
  type Action,
  type Convergence,
  describeAction,
  describeChange,
  describeCluster,
  type Finding,
  isDestructive,
  needsRestart,
  type Plan,
  type Reason
} from "@homelab/reconcile-core"
import pc from "picocolors"

const mark = (f: Finding): string =>
  f.effect === "blocked"
    ? pc.red("✗")
    : f.effect === "deferred"
      ? pc.yellow("…")
      : f.effect === "pending"
        ? pc.yellow("↻")
        : f.effect === "unconfirmed"
          ? pc.yellow("?")
          : pc.dim("·")

const statusWords: Record<Reason["status"], string> = {
  planned: "planned",
  blocked: "blocked",
  deferred: "next run",
  failed: "failed",
  skipped: "skipped",
  unconfirmed: "needs --yes",
  pending: "needs a restart"
}

/** Findings, one line each (and the fix below it). */
const renderFindings = (findings: ReadonlyArray<Finding>, width: number): Array<string> =>
  findings.flatMap((f) => [
    `  ${mark(f)} ${f.node.padEnd(width)}  ${f.message} ${pc.dim(`[${f.code}]`)}`,
    ...(f.hint ? [`    ${" ".repeat(width)}  ${pc.dim(`fix: ${f.hint}`)}`] : [])
  ])

/**
 * The VMs of `node` whose planned update changes settings that take effect only at a restart the plan does not make
 * (`vm.restart: never`): apply changes them and ends with the node not converged (`needs a restart`, exit 8).
 */
const restartLeft = (plan: Plan, node: string): Array<string> =>
  plan.actions.flatMap((a) => {
    if (a._tag !== "UpdateVm" || a.node !== node) return []
    if (plan.actions.some((r) => r._tag === "RestartVm" && r.vmid === a.vmid)) return []
    const fields = a.changes.filter(needsRestart).map((c) => c.field)
    return fields.length === 0 ? [] : [`${a.name} (${fields.join(", ")})`]
  })

/** Whether `reason`, one of `node`'s, is one of `findings` (shown in full, with its fix, under "Left alone"). */
export const listedIn = (findings: ReadonlyArray<Finding>, node: string, reason: Reason): boolean =>
  findings.some((f) => f.node === node && f.code === reason.code && f.message === reason.message)

const statusOf = (r: Reason): string => (r.code === "vm.orphan" ? "needs --prune" : statusWords[r.status])

/**
 * What the convergence verdict says in one line per node. Before apply (with the plan), a node whose changes are all
 * planned is shown as converging, unless apply would leave a change waiting for a VM restart (`vm.restart: never`):
 * then it says so, as the apply will end. A reason that is one of the findings `listed` above (under "Left alone")
 * is not repeated: the node's line points there.
 */
export const renderConvergence = (
  convergence: Convergence,
  options: {
    readonly after: boolean
    readonly plan?: Plan | undefined
    readonly listed?: ReadonlyArray<Finding> | undefined
  }
): Array<string> => {
  const width = Math.max(4, ...convergence.nodes.map((n) => n.node.length))
  const lines: Array<string> = []
  for (const n of convergence.nodes) {
    if (n.converged) {
      lines.push(`  ${pc.green("✓")} ${n.node.padEnd(width)}  converged`)
      continue
    }
    const planned = n.reasons.every((r) => r.status === "planned")
    if (!options.after && planned) {
      const left = options.plan === undefined ? [] : restartLeft(options.plan, n.node)
      lines.push(
        left.length === 0
          ? `  ${pc.cyan("→")} ${n.node.padEnd(width)}  converges with ${n.reasons.length} change(s)`
          : `  ${pc.yellow("↻")} ${n.node.padEnd(width)}  ${n.reasons.length} change(s), then not converged: ${left.join(", ")} ${left.length > 1 ? "wait" : "waits"} for a restart (vm.restart: never)`
      )
      continue
    }
    const above = n.reasons.filter((r) => listedIn(options.listed ?? [], n.node, r))
    const see = above.length === 0 ? "" : ` ${[...new Set(above.map(statusOf))].join(", ")} (see Left alone)`
    lines.push(`  ${pc.red("✗")} ${n.node.padEnd(width)}  not converged:${see}`)
    for (const r of n.reasons) {
      if (above.includes(r)) continue
      lines.push(`      ${pc.dim(`[${statusOf(r)}]`)} ${r.message}`)
      if (r.hint !== undefined && r.status !== "planned") lines.push(`      ${pc.dim(`fix: ${r.hint}`)}`)
    }
  }
  return lines
}

/**
 * The plan as a person reads it: per node its actions (image, VMs, k3s joins) with their reasons, what is left alone
 * and why, then each node's verdict.
 */
export const renderPlan = (plan: Plan, convergence: Convergence): string => {
  const lines: Array<string> = []
  const width = Math.max(4, ...plan.nodes.map((n) => n.length))
  if (plan.actions.length === 0 && convergence.converged) {
    lines.push(pc.green("No changes: every node is converged (image, VM, k3s membership as configured)."))
    // What is worth knowing without keeping anything from converging (a Node cordoned by hand, say).
    const notes = plan.findings.filter((f) => f.effect === "info")
    if (notes.length > 0) lines.push("", pc.bold("Notes:"), ...renderFindings(notes, width))
    return lines.join("\n")
  }
  if (plan.actions.length > 0) {
    lines.push(pc.bold("Plan:"))
    for (const node of plan.nodes) {
      const mine = plan.actions.filter((a) => a.node === node)
      mine.forEach((action: Action, i) => {
        const what = describeAction(action)
        const head = `  ${(i === 0 ? node : "").padEnd(width)}  `
        if (action._tag === "UpdateVm") {
          // Terraform style: one line per setting, with what the change means for the running VM.
          lines.push(`${head}${what}`)
          for (const change of action.changes) {
            lines.push(`${" ".repeat(head.length + 2)}${pc.yellow("~")} ${action.name}  ${describeChange(change)}`)
          }
          return
        }
        lines.push(
          `${head}${isDestructive(action) ? pc.red(`${what} (destructive)`) : what}  ${pc.dim(`— ${action.reason}`)}`
        )
      })
    }
  } else {
    lines.push(pc.yellow("No changes this run can make."))
  }
  if (plan.findings.length > 0) lines.push("", pc.bold("Left alone:"), ...renderFindings(plan.findings, width))
  if (plan.cluster !== undefined) lines.push("", `${pc.bold("k3s cluster:")} ${describeCluster(plan.cluster)}`)
  lines.push(
    "",
    pc.bold("Nodes:"),
    ...renderConvergence(convergence, { after: false, plan, listed: plan.findings }),
    "",
    summary(plan, convergence)
  )
  return lines.join("\n")
}

export const summary = (plan: Plan, convergence: Convergence): string => {
  const destructive = plan.actions.filter(isDestructive).length
  const blocked = convergence.nodes.filter((n) => n.reasons.some((r) => r.status === "blocked")).length
  const deferred = convergence.nodes.filter(
    (n) => n.reasons.some((r) => r.status === "deferred") && !n.reasons.some((r) => r.status === "blocked")
  ).length
  const parts = [`${plan.actions.length} change(s)`]
  if (destructive > 0) parts.push(`${destructive} destructive`)
  if (blocked > 0) parts.push(`${blocked} node(s) blocked`)
  if (deferred > 0) parts.push(`${deferred} node(s) waiting for a later run`)
  const restarts = convergence.nodes.filter(
    (n) => n.reasons.some((r) => r.status === "pending") || restartLeft(plan, n.node).length > 0
  ).length
  if (restarts > 0) parts.push(`${restarts} node(s) with changes waiting for a VM restart`)
  const orphans = plan.findings.filter((f) => f.code === "vm.orphan").length
  if (orphans > 0) parts.push(`${orphans} orphan(s) left in place (--prune removes them)`)
  return `${parts.join(", ")}.`
}

/** Plain data for `--json`: secrets are Redacted inside actions and print as "<redacted>". */
export const planJson = (plan: Plan) => ({
  ...(plan.cluster !== undefined ? { cluster: plan.cluster } : {}),
  changes: plan.actions.length,
  destructive: plan.actions.filter(isDestructive).length,
  actions: plan.actions.map((a: Action) => ({ ...a, description: describeAction(a), destructive: isDestructive(a) })),
  findings: plan.findings
})

/**
 * The convergence verdict for `--json`: per node, converged or the reasons; and the nodes homelab.yaml no longer lists
 * whose VMs of ours this run removed (`tornDown`: no nodes of the lab, so not among `nodes`).
 */
export const convergenceJson = (convergence: Convergence) => ({
  converged: convergence.converged,
  nodes: convergence.nodes.map((n) => ({ node: n.node, converged: n.converged, reasons: n.reasons })),
  tornDown: [...(convergence.tornDown ?? [])]
})

/** The line naming the nodes homelab.yaml no longer lists whose VMs of ours are gone (`apply --prune`), if any. */
export const tornDownLine = (convergence: Convergence): string | undefined => {
  const gone = convergence.tornDown ?? []
  return gone.length === 0
    ? undefined
    : `Torn down: ${gone.join(", ")} (not in homelab.yaml; no VM of ours is left on ${gone.length > 1 ? "them" : "it"}).`
}
