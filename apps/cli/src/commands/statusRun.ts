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
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import pc from "picocolors"
import { stringify } from "yaml"
import { CommandFailed } from "../CommandFailed.js"
import { toCommandFailed } from "../describeError.js"
import { ExitCode } from "../ExitCode.js"
import { type LoadedConfig, loadConfig, warnConfig } from "../LoadedConfig.js"
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

/** The health column, with `, protected` for a VM apply never destroys or changes (the reason is in `--json`). */
const healthCell = (r: VmStatusRow) => (r.protected === undefined ? r.health : `${r.health}, protected`)

/** The transport column: the same names as `--json` (`rest`, `ssh`), with why SSH is used. */
const transportCell = (t: VmStatusRow["transport"]) => (t === "ssh" ? "ssh (fallback)" : t)

/**
 * The status table: node, VM, VMID, state, health, IP, transport (and k3s), then what is not converged and why.
 * `wide` adds what apply would do about each VM (or what blocks it).
 */
export const renderStatus = (report: StatusReport | ReadonlyArray<VmStatusRow>, wide = false): string => {
  const rows = "rows" in report ? report.rows : report
  const withK3s = rows.some((r) => r.k3s !== undefined)
  const header = [
    "NODE",
    "VM",
    "VMID",
    "STATE",
    "HEALTH",
    "IP",
    "TRANSPORT",
    ...(withK3s ? ["K3S"] : []),
    ...(wide ? ["DETAIL"] : [])
  ]
  const cells = rows.map((r) => [
    r.node,
    r.vm,
    String(r.vmid ?? "-"),
    r.state,
    healthCell(r),
    r.ip ?? "-",
    transportCell(r.transport),
    ...(withK3s ? [r.k3s ?? "-"] : []),
    ...(wide ? [r.detail || "-"] : [])
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? "").length)))
  const line = (c: ReadonlyArray<string>, row?: VmStatusRow) =>
    c
      .map((v, i) =>
        row !== undefined && i === 4
          ? paint(row.health) + v.slice(row.health.length) + " ".repeat((widths[i] ?? 0) - v.length)
          : v.padEnd(widths[i] ?? 0)
      )
      .join("  ")
      .trimEnd()
  const table = [pc.bold(line(header)), ...cells.map((c, i) => line(c, rows[i]))]
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

/** The format `homelab status` prints: `-o json|yaml|wide`, `--json` (= `-o json`), or the table. */
type StatusFormat = "table" | "json" | "yaml" | "wide"

export const status = ({ output }: { readonly output: Option.Option<"json" | "yaml" | "wide"> }) =>
  Effect.gen(function* () {
    const flags = yield* root
    if (flags.json && Option.isSome(output) && output.value !== "json") {
      return yield* new CommandFailed({
        userMessage: `--json and -o ${output.value} contradict each other: --json is -o json; choose one`,
        exitCode: ExitCode.Usage
      })
    }
    const format: StatusFormat = Option.getOrElse(output, (): StatusFormat => (flags.json ? "json" : "table"))
    const document = format === "json" || format === "yaml"
    const loaded = yield* loadConfig(flags.config, process.env)
    yield* warnConfig(loaded)
    const notices: Array<Notice> = []
    const report = yield* collectStatus(loaded, (n) => {
      notices.push(n)
      if (!document) process.stdout.write(`${noticeLine(n)}\n`)
    })
    yield* Console.log(
      format === "json"
        ? JSON.stringify(statusJson(report, notices), null, 2)
        : format === "yaml"
          ? stringify(statusJson(report, notices)).trimEnd()
          : renderStatus(report, format === "wide")
    )
    if (!report.convergence.converged) {
      const bad = report.convergence.nodes.filter((n) => !n.converged)
      return yield* new CommandFailed({
        userMessage: `${bad.length} of ${report.convergence.nodes.length} node(s) not converged: ${bad.map((n) => n.node).join(", ")}`,
        exitCode: ExitCode.NotConverged
      })
    }
  })
