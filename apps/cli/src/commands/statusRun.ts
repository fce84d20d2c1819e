// What `status` runs (and `demo` reuses), loaded only when it runs.
import type { ProxmoxError } from "@homelab/proxmox-client"
import {
  desiredFromConfig,
  healthPolicyFromConfig,
  type StatusReport,
  status as statusOf,
  type VmStatusRow
} from "@homelab/reconcile-core"
import type { SshError } from "@homelab/ssh"
import { Console, Effect } from "effect"
import pc from "picocolors"
import { CommandFailed } from "../CommandFailed.js"
import { toCommandFailed } from "../describeError.js"
import { ExitCode } from "../ExitCode.js"
import { type LoadedConfig, loadConfig } from "../LoadedConfig.js"
import { root } from "../Root.js"
import { convergenceJson, renderConvergence } from "../render/PlanView.js"
import { noticeLine } from "../render/Progress.js"
import { type Notice, proxmoxLayer } from "../Session.js"

export type StatusRow = VmStatusRow

/** One row per VM in homelab.yaml, and the convergence verdict (read-only; the same observation and plan as apply). */
export const collectStatus = Effect.fn("collectStatus")(function* (
  loaded: LoadedConfig,
  onNotice: (n: Notice) => void
) {
  const layer = yield* proxmoxLayer(loaded, onNotice)
  const desired = desiredFromConfig(loaded.config, { sshKeys: loaded.sshKeys })
  const policy = healthPolicyFromConfig(loaded.config)
  const program = statusOf(desired, { policy }).pipe(Effect.provide(layer))
  return yield* toCommandFailed(
    program as Effect.Effect<StatusReport, ProxmoxError | SshError | CommandFailed>,
    desired
  )
})

const paint = (health: string) =>
  health === "healthy"
    ? pc.green(health)
    : health.startsWith("unhealthy") ||
        health === "missing" ||
        health === "duplicate" ||
        health === "unreachable" ||
        health === "not ours"
      ? pc.red(health)
      : pc.yellow(health)

/** The transport column: the same names as `--json` (`rest`, `ssh`), with why SSH is used. */
const transportCell = (t: VmStatusRow["transport"]) => (t === "ssh" ? "ssh (fallback)" : t)

/** The status table: node, VM, VMID, state, health, IP, transport (and k3s), then what is not converged and why. */
export const renderStatus = (report: StatusReport | ReadonlyArray<VmStatusRow>): string => {
  const rows = "rows" in report ? report.rows : report
  const withK3s = rows.some((r) => r.k3s !== undefined)
  const header = ["NODE", "VM", "VMID", "STATE", "HEALTH", "IP", "TRANSPORT", ...(withK3s ? ["K3S"] : [])]
  const cells = rows.map((r) => [
    r.node,
    r.vm,
    String(r.vmid ?? "-"),
    r.state,
    r.health,
    r.ip ?? "-",
    transportCell(r.transport),
    ...(withK3s ? [r.k3s ?? "-"] : [])
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? "").length)))
  const line = (c: ReadonlyArray<string>, colour = false) =>
    c
      .map((v, i) =>
        colour && i === 4 ? paint(v) + " ".repeat((widths[i] ?? 0) - v.length) : v.padEnd(widths[i] ?? 0)
      )
      .join("  ")
      .trimEnd()
  const table = [pc.bold(line(header)), ...cells.map((c) => line(c, true))]
  if (!("rows" in report)) return table.join("\n")
  const verdict = report.convergence.converged
    ? [pc.green("Converged: every node holds the image and a healthy VM (and a Ready k3s member, as configured).")]
    : ["", pc.bold("Not converged:"), ...renderConvergence(report.convergence, { after: true })]
  return [...table, ...verdict].join("\n")
}

/** The `--json` document of `homelab status`. */
export const statusJson = (report: StatusReport, notices: ReadonlyArray<Notice>) => ({
  vms: report.rows,
  convergence: convergenceJson(report.convergence),
  notices: notices.map((n) => n.event)
})

export const status = () =>
  Effect.gen(function* () {
    const flags = yield* root
    const loaded = yield* loadConfig(flags.config, process.env)
    const notices: Array<Notice> = []
    const report = yield* collectStatus(loaded, (n) => {
      notices.push(n)
      if (!flags.json) process.stdout.write(`${noticeLine(n)}\n`)
    })
    yield* Console.log(flags.json ? JSON.stringify(statusJson(report, notices), null, 2) : renderStatus(report))
    if (!report.convergence.converged) {
      const bad = report.convergence.nodes.filter((n) => !n.converged)
      return yield* new CommandFailed({
        userMessage: `${bad.length} of ${report.convergence.nodes.length} node(s) not converged: ${bad.map((n) => n.node).join(", ")}`,
        exitCode: ExitCode.NotConverged
      })
    }
  })
