import * as Schema from "effect/Schema"

/**
 * The observed values a verdict rests on (`status`, `qmpstatus`, `lock`, `uptime`, …), for plans and reports.
 *
 * @since 0.1.0
 * @category models
 */
export const Evidence = Schema.Record(Schema.String, Schema.Union([Schema.String, Schema.Number, Schema.Boolean]))

/**
 * @since 0.1.0
 * @category models
 */
export type Evidence = typeof Evidence.Type

/**
 * Why a VM is unhealthy. One code per state of the policy table.
 *
 * @since 0.1.0
 * @category models
 */
export const UnhealthyReason = Schema.Literals([
  "stopped",
  "paused",
  "prelaunch",
  "suspended",
  "hibernated",
  "crashed",
  "agent-not-responding"
])

/**
 * @since 0.1.0
 * @category models
 */
export type UnhealthyReason = typeof UnhealthyReason.Type

/**
 * Why a VM is left alone without a verdict:
 *
 * - `template`: templates are never remediated;
 * - `status-unknown`: PVE has no status for it yet (`/cluster/resources` before the next broadcast);
 * - `locked`: an operation holds the config lock (`create`, `clone`, `migrate`, `backup`, `snapshot`, …);
 * - `starting`: created or started less than the grace period ago;
 * - `transitional`: QEMU reports a passing run state (`inmigrate`, `postmigrate`, `shutdown`, `save-vm`, …);
 * - `unrecognized-state`: a `qmpstatus` this package does not know;
 * - `kept-by-policy`: the state is unhealthy but the policy says `keep` (the state is in the evidence).
 *
 * @since 0.1.0
 * @category models
 */
export const UnknownReason = Schema.Literals([
  "template",
  "status-unknown",
  "locked",
  "starting",
  "transitional",
  "unrecognized-state",
  "kept-by-policy"
])

/**
 * @since 0.1.0
 * @category models
 */
export type UnknownReason = typeof UnknownReason.Type

/**
 * The action a planner may take for an unhealthy VM. `none` is the policy action `degraded`: report, do not act.
 *
 * @since 0.1.0
 * @category models
 */
export const Remediation = Schema.Literals(["start", "resume", "recreate", "none"])

/**
 * @since 0.1.0
 * @category models
 */
export type Remediation = typeof Remediation.Type

/**
 * Why a remediation must not be carried out: the VM does not carry our ownership tag, or has `protection: 1`.
 *
 * @since 0.1.0
 * @category models
 */
export const Blocker = Schema.Literals(["unowned", "protected"])

/**
 * @since 0.1.0
 * @category models
 */
export type Blocker = typeof Blocker.Type

const common = {
  vmid: Schema.Int,
  node: Schema.String,
  name: Schema.optional(Schema.String),
  message: Schema.String,
  evidence: Evidence
}

/**
 * The VM is running and (if the guest agent is configured and was probed) its agent answers.
 *
 * @since 0.1.0
 * @category models
 */
export class Healthy extends Schema.TaggedClass<Healthy>()("Healthy", common) {}

/**
 * The VM is in a bad state. `remediation` is what the policy asks for; `blockedBy` lists why it must not be carried
 * out (empty: allowed). Use `remediationToApply` to get the action a planner may take.
 *
 * @since 0.1.0
 * @category models
 */
export class Unhealthy extends Schema.TaggedClass<Unhealthy>()("Unhealthy", {
  ...common,
  reason: UnhealthyReason,
  remediation: Remediation,
  blockedBy: Schema.Array(Blocker)
}) {
  /** `true` when there is a remediation and nothing blocks it. */
  get allowed(): boolean {
    return this.remediation !== "none" && this.blockedBy.length === 0
  }
}

/**
 * No verdict: keep the VM as it is. `reason` says why.
 *
 * @since 0.1.0
 * @category models
 */
export class Unknown extends Schema.TaggedClass<Unknown>()("Unknown", {
  ...common,
  reason: UnknownReason
}) {}

/**
 * The result of `classifyVm`.
 *
 * @since 0.1.0
 * @category models
 */
export const HealthReport = Schema.Union([Healthy, Unhealthy, Unknown])

/**
 * @since 0.1.0
 * @category models
 */
export type HealthReport = Healthy | Unhealthy | Unknown

/**
 * The action a planner may carry out for this report: the remediation of an `Unhealthy` report when it is allowed,
 * otherwise `undefined` (keep the VM; report it if it is `Unhealthy`).
 *
 * @since 0.1.0
 * @category getters
 */
export const remediationToApply = (report: HealthReport): "start" | "resume" | "recreate" | undefined =>
  report._tag === "Unhealthy" && report.remediation !== "none" && report.blockedBy.length === 0
    ? report.remediation
    : undefined
