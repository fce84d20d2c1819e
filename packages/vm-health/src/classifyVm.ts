import { HealthPolicy, type PolicyAction } from "./HealthPolicy.js"
import {
  type Blocker,
  type Evidence,
  type HealthReport,
  Healthy,
  Unhealthy,
  type UnhealthyReason,
  Unknown,
  type UnknownReason
} from "./HealthReport.js"
import type { VmFacts } from "./VmFacts.js"

const crashedStates: ReadonlySet<string> = new Set(["io-error", "internal-error", "guest-panicked", "watchdog"])
const transitionalStates: ReadonlySet<string> = new Set([
  "shutdown",
  "inmigrate",
  "postmigrate",
  "finish-migrate",
  "restore-vm",
  "save-vm",
  "debug",
  "colo",
  "stopped"
])

const label = (facts: VmFacts): string =>
  `VM ${facts.vmid}${facts.name === undefined ? "" : ` (${facts.name})`} on node ${facts.node}`

const evidenceOf = (facts: VmFacts): Record<string, string | number | boolean> => {
  const evidence: Record<string, string | number | boolean> = { status: facts.status }
  if (facts.qmpstatus !== undefined) evidence.qmpstatus = facts.qmpstatus
  if (facts.lock !== undefined) evidence.lock = facts.lock
  if (facts.uptimeSeconds !== undefined) evidence.uptime = facts.uptimeSeconds
  evidence.agentConfigured = facts.agentConfigured
  if (facts.agentAnswering !== undefined) evidence.agentAnswering = facts.agentAnswering
  evidence.owned = facts.owned
  evidence.protection = facts.protection
  evidence.template = facts.template
  if (facts.secondsSinceCreation !== undefined) evidence.secondsSinceCreation = facts.secondsSinceCreation
  if (facts.secondsSinceStart !== undefined) evidence.secondsSinceStart = facts.secondsSinceStart
  return evidence
}

const blockersOf = (facts: VmFacts): Array<Blocker> => {
  const blockers: Array<Blocker> = []
  if (!facts.owned) blockers.push("unowned")
  if (facts.protection) blockers.push("protected")
  return blockers
}

const unknown = (facts: VmFacts, reason: UnknownReason, detail: string, evidence: Evidence): Unknown =>
  new Unknown({
    vmid: facts.vmid,
    node: facts.node,
    ...(facts.name === undefined ? {} : { name: facts.name }),
    reason,
    message: `${label(facts)}: ${detail}; keeping it`,
    evidence
  })

/** Running, in QEMU's `running` state (or not known otherwise), and its guest agent answered a ping. */
const answering = (facts: VmFacts): boolean =>
  facts.status === "running" &&
  (facts.qmpstatus === undefined || facts.qmpstatus === "running") &&
  facts.agentAnswering === true

/** Why the VM is within the grace period, or `undefined` when it is not. */
const graceDetail = (facts: VmFacts, graceSeconds: number): string | undefined => {
  if (facts.status === "running" && facts.uptimeSeconds !== undefined && facts.uptimeSeconds < graceSeconds) {
    return `uptime ${facts.uptimeSeconds} s < grace ${graceSeconds} s`
  }
  if (facts.secondsSinceStart !== undefined && facts.secondsSinceStart < graceSeconds) {
    return `started ${facts.secondsSinceStart} s ago (grace ${graceSeconds} s)`
  }
  if (facts.secondsSinceCreation !== undefined && facts.secondsSinceCreation < graceSeconds) {
    return `created ${facts.secondsSinceCreation} s ago (grace ${graceSeconds} s)`
  }
  return undefined
}

const decide = (
  facts: VmFacts,
  reason: UnhealthyReason,
  action: PolicyAction,
  detail: string,
  evidence: Evidence
): HealthReport => {
  const withPolicy = { ...evidence, state: reason, policy: action }
  // Belt and braces: the policy types already rule out `recreate` for locked states.
  if (action === "keep" || (action === "recreate" && facts.lock !== undefined)) {
    return unknown(facts, "kept-by-policy", `${detail}; policy: ${action}`, withPolicy)
  }
  const remediation = action === "degraded" ? "none" : action
  const blockedBy = remediation === "none" ? [] : blockersOf(facts)
  const outcome =
    remediation === "none"
      ? "degraded, report only"
      : blockedBy.length === 0
        ? `remediation: ${remediation}`
        : `remediation ${remediation} not allowed (${blockedBy.join(", ")}), report only`
  return new Unhealthy({
    vmid: facts.vmid,
    node: facts.node,
    ...(facts.name === undefined ? {} : { name: facts.name }),
    reason,
    message: `${label(facts)} is ${detail}; ${outcome}`,
    evidence: withPolicy,
    remediation,
    blockedBy
  })
}

/**
 * Classifies one VM from observed facts. Pure and total: the same facts and policy always give the same report.
 *
 * Rules, first match wins:
 *
 * 1. a template → `Unknown` `template` (never remediated);
 * 2. `status: unknown` → `Unknown` `status-unknown`;
 * 3. a lock, except `suspended` on a stopped VM → `Unknown` `locked` (an operation is in progress; never recreate
 *    under a lock);
 * 4. within the grace period (running with `uptime` < grace, or created/started less than grace ago) →
 *    `Unknown` `starting`, unless it runs and its guest agent answers (that VM has started: rule 8 judges it);
 * 5. `status: stopped` + `lock: suspended` (hibernated) → `policy.hibernated` (resume | start | degraded | keep);
 * 6. `status: stopped` → `policy.stopped`;
 * 7. running, by `qmpstatus`: `paused` / `prelaunch` / `suspended` → that policy entry; `io-error`, `internal-error`,
 *    `guest-panicked`, `watchdog` → `policy.crashed`; passing states → `Unknown` `transitional`; unknown strings →
 *    `Unknown` `unrecognized-state`;
 * 8. running (or `qmpstatus` not given) with the guest agent configured and a failed ping →
 *    `policy.agentNotResponding`; otherwise `Healthy`.
 *
 * An `Unhealthy` report of a VM that is unowned or protected keeps its remediation but lists the blockers in
 * `blockedBy`; `remediationToApply` then returns `undefined`.
 *
 * @since 0.1.0
 * @category classification
 */
export const classifyVm = (facts: VmFacts, policy: HealthPolicy = HealthPolicy.defaults): HealthReport => {
  const evidence = evidenceOf(facts)
  if (facts.template) return unknown(facts, "template", "is a template", evidence)
  if (facts.status === "unknown") return unknown(facts, "status-unknown", "PVE reports no status yet", evidence)
  const hibernated = facts.lock === "suspended" && facts.status === "stopped"
  if (facts.lock !== undefined && !hibernated) {
    return unknown(facts, "locked", `locked (${facts.lock}): an operation is in progress`, evidence)
  }
  const grace = graceDetail(facts, policy.graceSeconds)
  if (grace !== undefined && !answering(facts)) {
    return unknown(facts, "starting", grace, { ...evidence, graceSeconds: policy.graceSeconds })
  }
  if (hibernated) {
    return decide(facts, "hibernated", policy.hibernated, "hibernated (stopped with lock suspended)", evidence)
  }
  if (facts.status === "stopped") return decide(facts, "stopped", policy.stopped, "stopped", evidence)

  const qmp = facts.qmpstatus
  switch (qmp) {
    case "paused":
      return decide(facts, "paused", policy.paused, "paused (qmpstatus=paused)", evidence)
    case "prelaunch":
      return decide(facts, "prelaunch", policy.prelaunch, "in prelaunch (qmpstatus=prelaunch)", evidence)
    case "suspended":
      return decide(facts, "suspended", policy.suspended, "suspended to RAM (qmpstatus=suspended)", evidence)
    case undefined:
    case "running":
      break
    default: {
      if (crashedStates.has(qmp)) {
        return decide(facts, "crashed", policy.crashed, `crashed (qmpstatus=${qmp})`, evidence)
      }
      if (transitionalStates.has(qmp)) {
        return unknown(facts, "transitional", `in a passing run state (qmpstatus=${qmp})`, evidence)
      }
      return unknown(facts, "unrecognized-state", `in an unrecognized run state (qmpstatus=${qmp})`, evidence)
    }
  }

  if (facts.agentConfigured && facts.agentAnswering === false) {
    return decide(
      facts,
      "agent-not-responding",
      policy.agentNotResponding,
      "running but its guest agent does not answer",
      evidence
    )
  }
  return new Healthy({
    vmid: facts.vmid,
    node: facts.node,
    ...(facts.name === undefined ? {} : { name: facts.name }),
    message: `${label(facts)} is running${facts.agentAnswering === true ? " and its guest agent answers" : ""}`,
    evidence
  })
}
