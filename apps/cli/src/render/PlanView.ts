import { type Action, describeAction, type Finding, isDestructive } from "@homelab/reconcile-core"

/** A plan of any phase: actions with reasons, and findings. */
export interface PlanLike {
  readonly actions: ReadonlyArray<Action>
  readonly findings: ReadonlyArray<Finding>
}

import pc from "picocolors"

const mark = (f: Finding): string =>
  f.severity === "error" ? pc.red("✗") : f.severity === "warning" ? pc.yellow("!") : pc.dim("·")

/** The plan as a person reads it: actions per node with their reasons, then what is left alone and why. */
export const renderPlan = (
  plan: PlanLike,
  context: { readonly nodes: ReadonlyArray<string>; readonly title?: string; readonly noChanges?: string }
): string => {
  const lines: Array<string> = []
  const width = Math.max(4, ...context.nodes.map((n) => n.length))
  if (plan.actions.length === 0) {
    lines.push(pc.green(context.noChanges ?? "No changes: every node holds the image and a healthy VM."))
  } else {
    lines.push(pc.bold(context.title ?? "Plan:"))
    let previous = ""
    for (const action of plan.actions) {
      const node = action.node === previous ? "" : action.node
      previous = action.node
      const what = describeAction(action)
      lines.push(
        `  ${node.padEnd(width)}  ${isDestructive(action) ? pc.red(`${what} (destructive)`) : what}  ${pc.dim(`— ${action.reason}`)}`
      )
    }
  }
  if (plan.findings.length > 0) {
    lines.push("", pc.bold("Left alone:"))
    for (const f of plan.findings) {
      lines.push(`  ${mark(f)} ${f.node.padEnd(width)}  ${f.message} ${pc.dim(`[${f.code}]`)}`)
      if (f.hint) lines.push(`    ${" ".repeat(width)}  ${pc.dim(`fix: ${f.hint}`)}`)
    }
  }
  lines.push("", summary(plan))
  return lines.join("\n")
}

export const summary = (plan: PlanLike): string => {
  const destructive = plan.actions.filter(isDestructive).length
  const errors = plan.findings.filter((f) => f.severity === "error").length
  const parts = [`${plan.actions.length} change(s)`]
  if (destructive > 0) parts.push(`${destructive} destructive`)
  if (errors > 0) parts.push(`${errors} problem(s) blocking work`)
  return `${parts.join(", ")}.`
}

/** Plain data for `--json`: secrets are Redacted inside actions and print as "<redacted>". */
export const planJson = (plan: PlanLike) => ({
  changes: plan.actions.length,
  destructive: plan.actions.filter(isDestructive).length,
  actions: plan.actions.map((a: Action) => ({ ...a, description: describeAction(a), destructive: isDestructive(a) })),
  findings: plan.findings
})
