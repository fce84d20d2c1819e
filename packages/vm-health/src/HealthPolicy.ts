import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { InvalidPolicy, VmHealthError } from "./VmHealthError.js"

/**
 * What to do with a VM in an unhealthy state:
 *
 * - `start` / `resume` / `recreate`: classify it `Unhealthy` with that remediation;
 * - `degraded`: classify it `Unhealthy` with remediation `none` (keep the VM, report it);
 * - `keep`: classify it `Unknown` (reason `kept-by-policy`): neither act nor call it unhealthy.
 *
 * Each state allows only the actions that make sense for it (Proxmox refuses `start` on a running VM and `resume` on
 * a stopped one), and a VM under a lock is never recreated.
 *
 * @since 0.1.0
 * @category models
 */
export type PolicyAction = "start" | "resume" | "recreate" | "degraded" | "keep"

/** `status: stopped`, no lock. @since 0.1.0 @category models */
export const StoppedAction = Schema.Literals(["start", "recreate", "degraded", "keep"])
/** `qmpstatus` `paused`, `prelaunch` or `suspended` (guest S3 sleep). @since 0.1.0 @category models */
export const PausedAction = Schema.Literals(["resume", "recreate", "degraded", "keep"])
/** Hibernated (`status: stopped` + `lock: suspended`): under a lock, so never `recreate`. @since 0.1.0 @category models */
export const HibernatedAction = Schema.Literals(["resume", "start", "degraded", "keep"])
/** `qmpstatus` `io-error`, `internal-error`, `guest-panicked` or `watchdog`. @since 0.1.0 @category models */
export const CrashedAction = Schema.Literals(["recreate", "degraded", "keep"])
/** Guest agent configured but not answering a ping after the grace period. @since 0.1.0 @category models */
export const AgentAction = Schema.Literals(["recreate", "degraded", "keep"])

const GraceSeconds = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))

const fields = {
  graceSeconds: GraceSeconds,
  stopped: StoppedAction,
  paused: PausedAction,
  prelaunch: PausedAction,
  suspended: PausedAction,
  hibernated: HibernatedAction,
  crashed: CrashedAction,
  agentNotResponding: AgentAction
}

/**
 * How `classifyVm` treats each unhealthy state, and how long a freshly created or started VM is left alone.
 * `HealthPolicy.defaults` follows the seed tool (stopped or paused → recreate, anything it did not know → keep);
 * see the README for the full table.
 *
 * @since 0.1.0
 * @category models
 */
export class HealthPolicy extends Schema.Class<HealthPolicy>("@homelab/vm-health/HealthPolicy")(fields) {
  /**
   * The default policy: grace 300 s; stopped → recreate; paused → recreate; prelaunch → keep; suspended → keep;
   * hibernated → resume; crashed → degraded; agent not answering → degraded.
   */
  static readonly defaults: HealthPolicy = new HealthPolicy({
    graceSeconds: 300,
    stopped: "recreate",
    paused: "recreate",
    prelaunch: "keep",
    suspended: "keep",
    hibernated: "resume",
    crashed: "degraded",
    agentNotResponding: "degraded"
  })

  /**
   * The defaults with some entries replaced. Throws on an out-of-range `graceSeconds` (a programming error); use
   * `decodeHealthPolicy` for values from a config file.
   */
  static fromPartial(overrides: Partial<HealthPolicy>): HealthPolicy {
    return new HealthPolicy({ ...HealthPolicy.defaults, ...overrides })
  }
}

const PolicyOverrides = Schema.Struct({
  graceSeconds: Schema.optionalKey(GraceSeconds),
  stopped: Schema.optionalKey(StoppedAction),
  paused: Schema.optionalKey(PausedAction),
  prelaunch: Schema.optionalKey(PausedAction),
  suspended: Schema.optionalKey(PausedAction),
  hibernated: Schema.optionalKey(HibernatedAction),
  crashed: Schema.optionalKey(CrashedAction),
  agentNotResponding: Schema.optionalKey(AgentAction)
})

const decodeOverrides = Schema.decodeUnknownEffect(PolicyOverrides)

/**
 * Decodes a (partial) policy from untrusted input, e.g. the `health:` section of the config file, filling missing
 * entries from `HealthPolicy.defaults`. Unknown keys are rejected so that a typo does not silently fall back to a
 * default. Fails with `VmHealthError` / `InvalidPolicy`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decodeHealthPolicy = (input: unknown): Effect.Effect<HealthPolicy, VmHealthError> =>
  decodeOverrides(input ?? {}, { onExcessProperty: "error", errors: "all" }).pipe(
    Effect.map((overrides) => HealthPolicy.fromPartial(overrides)),
    Effect.mapError((error) => new VmHealthError({ reason: new InvalidPolicy({ issue: error.message }) }))
  )
