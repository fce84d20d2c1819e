import {
  type Action,
  type AdoptionPlan,
  type AdoptOutcome,
  describeAction,
  describeChange,
  isDestructive
} from "@homelab/reconcile-core"
import pc from "picocolors"

/** An action as `plan` prints it: one line, and for an in-place update one `~` line per setting. */
const actionLines = (action: Action, indent: string): Array<string> => {
  const what = describeAction(action)
  if (action._tag === "UpdateVm") {
    return [
      `${indent}${what}`,
      ...action.changes.map((c) => `${indent}  ${pc.yellow("~")} ${action.name}  ${describeChange(c)}`)
    ]
  }
  return [
    `${indent}${isDestructive(action) ? pc.red(`${what} (destructive: apply asks first)`) : what}  ${pc.dim(`— ${action.reason}`)}`
  ]
}

/**
 * What `adopt` found, as a person reads it: each VM it would adopt (node, VMID, name, state, its tags) against what
 * homelab.yaml asks — what the next `apply` changes in place, with the same lines `plan` prints — then what it will
 * not adopt and why, what is ours already, and names with no VM.
 */
export const renderAdoption = (planned: AdoptionPlan, ownershipTag: string): string => {
  const lines: Array<string> = []
  const width = Math.max(
    4,
    ...planned.adoptions.map((a) => a.node.length),
    ...planned.refused.map((r) => r.node.length)
  )
  if (planned.adoptions.length > 0) {
    lines.push(
      pc.bold(
        `Found ${planned.adoptions.length} VM(s) that homelab.yaml asks for, on the node it names, without the tag '${ownershipTag}':`
      )
    )
    for (const a of planned.adoptions) {
      const state = [a.status, ...(a.protected ? [pc.yellow("protected")] : [])].join(", ")
      const tags = a.tags.length === 0 ? "none" : a.tags.join(";")
      lines.push(
        `  ${a.node.padEnd(width)}  VM ${a.vmid} ${a.name} (${state}; tags: ${tags}${a.role === undefined ? "" : `; role in homelab.yaml: ${a.role}`})`
      )
      const indent = " ".repeat(width + 4)
      if (a.protected) {
        lines.push(
          `${indent}${pc.yellow("protected:")} once adopted, homelab reports its drift and never changes, restarts or deletes it while it stays protected`
        )
      }
      if (a.actions.length === 0 && a.findings.length === 0) {
        lines.push(`${indent}${pc.green("as homelab.yaml asks: apply will change nothing")}`)
      } else if (a.actions.length > 0) {
        lines.push(`${indent}once adopted, apply will:`)
        for (const action of a.actions) lines.push(...actionLines(action, `${indent}  `))
      }
      for (const f of a.findings) {
        lines.push(
          `${indent}${f.effect === "blocked" ? pc.red("✗") : pc.yellow("…")} ${f.message} ${pc.dim(`[${f.code}]`)}`
        )
        if (f.hint !== undefined) lines.push(`${indent}  ${pc.dim(`fix: ${f.hint}`)}`)
      }
    }
  }
  if (planned.refused.length > 0) {
    lines.push("", pc.bold("Not adopted:"))
    for (const r of planned.refused) {
      lines.push(`  ${pc.red("✗")} ${r.node.padEnd(width)}  ${r.message} ${pc.dim(`[${r.code}]`)}`)
      lines.push(`    ${" ".repeat(width)}  ${pc.dim(`fix: ${r.hint}`)}`)
    }
  }
  if (planned.owned.length > 0) {
    lines.push("", `Already ours: ${planned.owned.map((o) => `VM ${o.vmid} ${o.name} on ${o.node}`).join(", ")}.`)
  }
  for (const a of planned.absent) {
    lines.push("", `No VM named ${a.name} exists: nothing to adopt (homelab apply creates it on ${a.node}).`)
  }
  if (lines.length === 0)
    lines.push("Nothing to adopt: no VM of homelab.yaml is held by a VM without the ownership tag.")
  return lines.join("\n")
}

/** One line per adopted (or failed) VM. */
export const renderOutcomes = (outcomes: ReadonlyArray<AdoptOutcome>): string =>
  outcomes
    .map((o) =>
      o.status === "adopted"
        ? `  ${pc.green("✓")} ${o.detail}`
        : `  ${pc.red("✗")} ${o.detail}${o.hint === undefined ? "" : `\n      ${pc.dim(`fix: ${o.hint}`)}`}`
    )
    .join("\n")

/** The `--json` document of `homelab adopt`. */
export const adoptionJson = (planned: AdoptionPlan, outcomes: ReadonlyArray<AdoptOutcome> | undefined) => ({
  adoptions: planned.adoptions.map((a) => ({
    node: a.node,
    name: a.name,
    vmid: a.vmid,
    role: a.role ?? null,
    status: a.status,
    tags: a.tags,
    protected: a.protected,
    applyWill: a.actions.map((action) => ({
      action: action._tag,
      description: describeAction(action),
      ...(action._tag === "UpdateVm" ? { changes: action.changes } : {})
    })),
    findings: a.findings
  })),
  refused: planned.refused,
  owned: planned.owned,
  absent: planned.absent,
  ...(outcomes === undefined ? {} : { outcomes })
})
