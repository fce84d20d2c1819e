import * as Schema from "effect/Schema"

/**
 * The persistent `lock:` values Proxmox VE writes into a VM config (§5 of the PVE reference). Any other string is
 * accepted as well: an unknown lock is still a lock.
 *
 * @since 0.1.0
 * @category models
 */
export const KnownLocks = [
  "backup",
  "clone",
  "create",
  "migrate",
  "rollback",
  "snapshot",
  "snapshot-delete",
  "suspending",
  "suspended",
  "destroyed",
  "import"
] as const

/**
 * The QEMU run states `qmpstatus` can report for a running VM, plus `stopped` (which PVE reports for stopped VMs).
 *
 * @since 0.1.0
 * @category models
 */
export const KnownQmpStatuses = [
  "running",
  "paused",
  "prelaunch",
  "suspended",
  "shutdown",
  "inmigrate",
  "postmigrate",
  "finish-migrate",
  "restore-vm",
  "save-vm",
  "debug",
  "colo",
  "watchdog",
  "io-error",
  "internal-error",
  "guest-panicked",
  "stopped"
] as const

const NonNegative = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * What the caller observed about one VM, filled from `GET /nodes/{node}/qemu/{vmid}/status/current` (`status`,
 * `qmpstatus`, `lock`, `uptime`, `agent`, `template`), the VM config (`protection`, `tags`, `meta: ctime=…`), a
 * guest-agent ping, and the reconciler's own records. Plain data; classification never performs I/O.
 *
 * - `status`: PVE's `status` (`running` | `stopped`), or `unknown` when `/cluster/resources` had no stats yet.
 * - `qmpstatus`: QEMU's run state; leave it out when not known (a `running` VM is then judged by `status` alone).
 * - `lock`: the persistent config lock, if any.
 * - `uptimeSeconds`: PVE's `uptime` (meaningful only while running).
 * - `agentConfigured`: the config enables the QEMU guest agent (`agent: 1` in the status).
 * - `agentAnswering`: result of an `agent/ping`; leave it out when the agent was not probed.
 * - `owned`: the VM carries this reconciler's ownership tag.
 * - `protection`: the config has `protection: 1`.
 * - `template`: the VM is a template.
 * - `secondsSinceCreation` / `secondsSinceStart`: seconds between the VM's creation (`meta: ctime=`) or the last
 *   start/resume this reconciler issued and the moment of observation; leave out when unknown.
 *
 * @since 0.1.0
 * @category models
 */
export class VmFacts extends Schema.Class<VmFacts>("@homelab/vm-health/VmFacts")({
  vmid: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
  node: Schema.String,
  name: Schema.optional(Schema.String),
  status: Schema.Literals(["running", "stopped", "unknown"]),
  qmpstatus: Schema.optional(Schema.String),
  lock: Schema.optional(Schema.String),
  uptimeSeconds: Schema.optional(NonNegative),
  agentConfigured: Schema.Boolean,
  agentAnswering: Schema.optional(Schema.Boolean),
  owned: Schema.Boolean,
  protection: Schema.Boolean,
  template: Schema.Boolean,
  secondsSinceCreation: Schema.optional(Schema.Finite),
  secondsSinceStart: Schema.optional(Schema.Finite)
}) {}
