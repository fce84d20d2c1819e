import * as Schema from "effect/Schema"

/**
 * Stable finding codes (for JSON output, tests and documentation). See the README for each code's fix hint.
 *
 * @since 0.1.0
 * @category models
 */
export const FindingCode = Schema.Literals([
  "bridge.missing",
  "bridge.inactive",
  "storage.missing",
  "storage.disabled",
  "storage.inactive",
  "storage.content",
  "storage.full",
  "memory.insufficient",
  "cpu.insufficient",
  "balloon.too-large",
  "image.unreachable",
  "privilege.missing"
])

/**
 * @since 0.1.0
 * @category models
 */
export type FindingCode = typeof FindingCode.Type

/**
 * `error` blocks creating the VM on that node; `warning` does not.
 *
 * @since 0.1.0
 * @category models
 */
export const Severity = Schema.Literals(["error", "warning"])

/**
 * @since 0.1.0
 * @category models
 */
export type Severity = typeof Severity.Type

/**
 * One problem found by `preflight`: a stable `code`, its `severity`, the `node` and the `object` it concerns
 * (`bridge vmbr0`, `storage local-lvm`, `/vms/105`, …), a `message` naming both, and a `fix` an operator can act on.
 *
 * @since 0.1.0
 * @category models
 */
export class PreflightFinding extends Schema.Class<PreflightFinding>("@homelab/vm-health/PreflightFinding")({
  code: FindingCode,
  severity: Severity,
  node: Schema.String,
  object: Schema.String,
  message: Schema.String,
  fix: Schema.String
}) {}

/**
 * All findings for one node. `ok` is `true` when no finding is an error (warnings do not block creation).
 *
 * @since 0.1.0
 * @category models
 */
export class PreflightReport extends Schema.Class<PreflightReport>("@homelab/vm-health/PreflightReport")({
  node: Schema.String,
  findings: Schema.Array(PreflightFinding)
}) {
  /** No finding is an error: the VM may be created on this node. */
  get ok(): boolean {
    return this.findings.every((finding) => finding.severity !== "error")
  }

  /** The findings that block creation. */
  get errors(): ReadonlyArray<PreflightFinding> {
    return this.findings.filter((finding) => finding.severity === "error")
  }

  /** The findings that do not block creation. */
  get warnings(): ReadonlyArray<PreflightFinding> {
    return this.findings.filter((finding) => finding.severity === "warning")
  }
}
