import { type Convergence, describeAction, type Finding, type Plan } from "@homelab/reconcile-core"
import pc from "picocolors"

const mark = (f: Finding): string =>
  f.effect === "blocked" ? pc.red("✗") : f.effect === "deferred" ? pc.yellow("…") : pc.dim("·")

/**
 * The teardown plan as a person reads it before confirming: per node what goes and why, what is never touched (VMs
 * without the ownership tag, protected VMs) and what cannot go this run, with what to do about it.
 */
export const renderDestroyPlan = (plan: Plan, _convergence: Convergence): string => {
  const width = Math.max(4, ...plan.nodes.map((n) => n.length))
  const lines: Array<string> = []
  if (plan.actions.length === 0) {
    const kept = plan.findings.some((f) => f.code === "vm.protected")
    const held = plan.findings.some((f) => f.code === "vm.destroy-held")
    lines.push(
      held
        ? pc.yellow("Nothing is destroyed this run: see what holds it back below.")
        : pc.green(
            kept
              ? "Nothing of ours to destroy but protected VMs, which are never touched."
              : "Nothing of ours to destroy."
          )
    )
  } else {
    lines.push(pc.bold("Destroy:"))
    for (const node of plan.nodes) {
      plan.actions
        .filter((a) => a.node === node)
        .forEach((a, i) => {
          lines.push(
            `  ${(i === 0 ? node : "").padEnd(width)}  ${pc.red(describeAction(a))}  ${pc.dim(`— ${a.reason}`)}`
          )
        })
    }
  }
  // Every server of the k3s cluster goes: the cluster goes with them, said right under what is destroyed.
  const clusterGoes = plan.findings.find((f) => f.code === "k3s.cluster-goes")
  if (clusterGoes !== undefined) lines.push("", `${pc.bold(pc.red("k3s:"))} ${pc.red(clusterGoes.message)}`)
  // A guest left alone (not ours, protected, a template) is never touched; other info findings are notes (an --only
  // name with nothing there) and are not counted as guests.
  const info = plan.findings.filter((f) => f.effect === "info" && f !== clusterGoes)
  const kept = info.filter((f) => f.vmid !== undefined)
  const notes = info.filter((f) => f.vmid === undefined)
  const held = plan.findings.filter((f) => f.effect !== "info")
  if (kept.length > 0) {
    lines.push("", pc.bold("Never touched:"))
    for (const f of kept) lines.push(`  ${mark(f)} ${f.node.padEnd(width)}  ${f.message}`)
  }
  if (notes.length > 0) {
    lines.push("", pc.bold("Notes:"))
    for (const f of notes) lines.push(`  ${mark(f)} ${f.node.padEnd(width)}  ${f.message}`)
  }
  if (held.length > 0) {
    lines.push("", pc.bold("Not this run:"))
    for (const f of held) {
      lines.push(`  ${mark(f)} ${f.node.padEnd(width)}  ${f.message} ${pc.dim(`[${f.code}]`)}`)
      if (f.hint !== undefined) lines.push(`    ${" ".repeat(width)}  ${pc.dim(`fix: ${f.hint}`)}`)
    }
  }
  const vms = plan.actions.filter((a) => a._tag === "DestroyVm").length
  const images = plan.actions.filter((a) => a._tag === "DeleteImage").length
  lines.push(
    "",
    `${vms} VM(s) to destroy${clusterGoes !== undefined ? " (and the k3s cluster with them)" : ""}${images > 0 ? `, ${images} image(s) to delete` : ""}${kept.length > 0 ? `; ${kept.length} guest(s) left untouched` : ""}${held.length > 0 ? `; ${held.length} held back` : ""}.`
  )
  return lines.join("\n")
}
