// What `status` runs (and `demo` reuses), loaded only when it runs.
import { type ClusterNode, evaluateMembership, K3sJoin, type K3sJoinError } from "@homelab/k3s-join"
import { ProxmoxApi, type ProxmoxError } from "@homelab/proxmox-client"
import { desiredFromConfig, healthPolicyFromConfig, observe } from "@homelab/reconcile-core"
import type { SshError } from "@homelab/ssh"
import { classifyVm, VmFacts } from "@homelab/vm-health"
import { Console, Effect } from "effect"
import pc from "picocolors"
import type { CommandFailed } from "../CommandFailed.js"
import { toCommandFailed } from "../describeError.js"
import { type LoadedConfig, loadConfig } from "../LoadedConfig.js"
import { root } from "../Root.js"
import { noticeLine } from "../render/Progress.js"
import { type Notice, proxmoxLayer } from "../Session.js"

export interface StatusRow {
  readonly node: string
  readonly vm: string
  readonly vmid: number | undefined
  readonly state: string
  readonly health: string
  readonly detail: string
  readonly ip: string | undefined
  readonly transport: string
  /** k3s membership (`agent Ready`, `absent`, `server NotReady`, …); undefined without a `k3s:` section. */
  readonly k3s?: string | undefined
}

/** One row per VM in homelab.yaml: where it is, its state, its health verdict and its IP. Read-only. */
export const collectStatus = Effect.fn("collectStatus")(function* (
  loaded: LoadedConfig,
  onNotice: (n: Notice) => void
) {
  const layer = yield* proxmoxLayer(loaded, onNotice)
  const desired = desiredFromConfig(loaded.config, { sshKeys: loaded.sshKeys })
  const policy = healthPolicyFromConfig(loaded.config)
  const program = Effect.gen(function* () {
    const api = yield* ProxmoxApi
    const observed = yield* observe(desired)
    const k3sNodes: ReadonlyArray<ClusterNode> | string | undefined =
      desired.k3s === undefined
        ? undefined
        : yield* (yield* K3sJoin)
            .clusterNodes({
              host: desired.k3s.server.host,
              port: desired.k3s.server.port,
              user: desired.k3s.server.user
            })
            .pipe(Effect.catch((e: K3sJoinError) => Effect.succeed(`unknown (${e.reason._tag})`)))
    const membership = (name: string, role: "server" | "agent", ip: string | undefined): string | undefined => {
      if (k3sNodes === undefined) return undefined
      if (typeof k3sNodes === "string") return k3sNodes
      const m = evaluateMembership(k3sNodes, { name, role, ip })
      switch (m._tag) {
        case "Absent":
          return "absent"
        case "Member":
          return `${m.node.role} Ready`
        case "NotReady":
          return `${m.node.role} ${m.node.ready === "False" ? "NotReady" : `Ready=${m.node.ready}`}`
        case "Mismatch":
          return `mismatch: ${m.mismatches.map((x) => x.field).join(", ")}`
      }
    }
    const wanted = desired.nodes.flatMap((n) => n.vms.map((vm) => ({ node: n.name, vm })))
    return yield* Effect.forEach(
      wanted,
      ({ node, vm }) =>
        Effect.gen(function* () {
          const matches = observed.vms.filter((o) => o.name === vm.name)
          const match = matches[0]
          if (match === undefined) {
            return {
              node,
              vm: vm.name,
              vmid: undefined,
              state: "missing",
              health: "missing",
              detail: "apply creates it",
              ip: undefined,
              transport: api.transportOf(node)
            } satisfies StatusRow
          }
          const [status, config] = yield* Effect.all(
            [api.vmStatus(match.node, match.vmid), api.vmConfig(match.node, match.vmid)],
            { concurrency: 2 }
          )
          const running = status.status === "running" && (status.qmpstatus ?? "running") === "running"
          const agentAnswering =
            running && status.agent
              ? yield* api.agentPing(match.node, match.vmid).pipe(
                  Effect.as(true),
                  Effect.orElseSucceed(() => false)
                )
              : undefined
          const ip = agentAnswering
            ? yield* api.vmIpv4(match.node, match.vmid).pipe(Effect.orElseSucceed(() => undefined))
            : undefined
          const owned = match.tags.includes(desired.ownershipTag)
          const report = classifyVm(
            new VmFacts({
              vmid: match.vmid,
              node: match.node,
              name: vm.name,
              status: status.status,
              ...(status.qmpstatus !== undefined ? { qmpstatus: status.qmpstatus } : {}),
              ...(status.lock !== undefined ? { lock: status.lock } : {}),
              uptimeSeconds: status.uptime,
              agentConfigured: status.agent,
              ...(agentAnswering !== undefined ? { agentAnswering } : {}),
              owned,
              protection: config.raw.protection === "1",
              template: status.template
            }),
            policy
          )
          return {
            node: match.node,
            vm: vm.name,
            vmid: match.vmid,
            state: status.qmpstatus ?? status.status,
            health:
              matches.length > 1
                ? "duplicate"
                : !owned
                  ? "not ours"
                  : report._tag === "Unknown"
                    ? report.reason
                    : report._tag === "Unhealthy"
                      ? `unhealthy: ${report.reason}`
                      : "healthy",
            detail: report.message,
            ip,
            transport: api.transportOf(match.node),
            k3s: membership(vm.name, vm.role, ip)
          } satisfies StatusRow
        }),
      { concurrency: 8 }
    )
  }).pipe(Effect.provide(layer))
  return yield* toCommandFailed(
    program as Effect.Effect<ReadonlyArray<StatusRow>, ProxmoxError | SshError | CommandFailed>
  )
})

const paint = (health: string) =>
  health === "healthy"
    ? pc.green(health)
    : health.startsWith("unhealthy") || health === "missing" || health === "duplicate"
      ? pc.red(health)
      : pc.yellow(health)

/** The status table: node, VM, vmid, state, health, IP, transport. */
export const renderStatus = (rows: ReadonlyArray<StatusRow>): string => {
  const withK3s = rows.some((r) => r.k3s !== undefined)
  const header = ["NODE", "VM", "VMID", "STATE", "HEALTH", "IP", "TRANSPORT", ...(withK3s ? ["K3S"] : [])]
  const cells = rows.map((r) => [
    r.node,
    r.vm,
    String(r.vmid ?? "-"),
    r.state,
    r.health,
    r.ip ?? "-",
    r.transport === "ssh" ? "ssh (fallback)" : "api",
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
  return [pc.bold(line(header)), ...cells.map((c) => line(c, true))].join("\n")
}

export const status = () =>
  Effect.gen(function* () {
    const flags = yield* root
    const loaded = yield* loadConfig(flags.config, process.env)
    const notices: Array<Notice> = []
    const rows = yield* collectStatus(loaded, (n) => {
      notices.push(n)
      if (!flags.json) process.stdout.write(`${noticeLine(n)}\n`)
    })
    if (flags.json) {
      yield* Console.log(JSON.stringify({ vms: rows, notices: notices.map((n) => n.event) }, null, 2))
      return
    }
    yield* Console.log(renderStatus(rows))
  })
