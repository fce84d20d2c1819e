import { evaluateMembership } from "@homelab/k3s-join"
import { ProxmoxApi } from "@homelab/proxmox-client"
import { classifyVm, type HealthPolicy, VmFacts } from "@homelab/vm-health"
import * as Effect from "effect/Effect"
import { describeAction, layerOf, vmOf } from "./Action.js"
import { assess, type Convergence } from "./Convergence.js"
import type { Desired } from "./Desired.js"
import { inSafetyProtect } from "./inSafetyProtect.js"
import { RebuildTag } from "./Marks.js"
import { observe } from "./Observe.js"
import { type Plan, plan } from "./Plan.js"

/** One VM of homelab.yaml, as `homelab status` shows it. */
export interface VmStatusRow {
  readonly node: string
  readonly vm: string
  readonly vmid: number | undefined
  /** PVE's state (`running`, `stopped`, `paused`, …), `missing`, or `unknown` when the node is out of reach. */
  readonly state: string
  /** `healthy`, `missing`, `provisioning`, `unhealthy: <why>`, `not ours`, `duplicate`, `starting`, `unreachable`, … */
  readonly health: string
  /** What apply would do about it, or why nothing can be done (the plan's finding). */
  readonly detail: string
  readonly ip: string | undefined
  /** How the node is driven: `rest`, `ssh` (after a fallback), or `unreachable`. */
  readonly transport: "rest" | "ssh" | "unreachable"
  /**
   * k3s membership (`agent Ready`, `absent`, `server NotReady`, `agent Ready, cordoned`, …); undefined without a
   * `k3s:` section.
   */
  readonly k3s?: string | undefined
  /**
   * Why apply never destroys, recreates or modifies this VM: `pve` (PVE's protection flag), `safety.protect` (named by
   * name or VM id in homelab.yaml), or both; undefined when it is not protected.
   */
  readonly protected?: ReadonlyArray<"pve" | "safety.protect"> | undefined
}

export interface StatusReport {
  readonly rows: ReadonlyArray<VmStatusRow>
  readonly plan: Plan
  /** The one convergence verdict (`homelab status` exits 0 only when every node is converged). */
  readonly convergence: Convergence
}

/**
 * Read-only: observe every VM of homelab.yaml in detail, plan as apply would, and describe each VM with the plan's
 * verdict on it (what apply would do, or what blocks it).
 */
export const status = Effect.fn("status")(function* (
  desired: Desired,
  options: { readonly policy: HealthPolicy; readonly only?: ReadonlyArray<string> | undefined }
) {
  const api = yield* ProxmoxApi
  const observed = yield* observe(desired, { only: options.only, allDetails: true })
  const p = plan(desired, observed, { policy: options.policy, only: options.only })
  const convergence = assess(p)
  const k3sNodes = observed.k3s?._tag === "Nodes" ? observed.k3s.nodes : undefined

  const rows: Array<VmStatusRow> = []
  for (const node of desired.nodes.filter((n) => p.nodes.includes(n.name))) {
    const observedNode = observed.nodes.get(node.name)
    const transport = observedNode?.problem !== undefined ? "unreachable" : api.transportOf(node.name)
    for (const vm of node.vms) {
      const action = p.actions.find((a) => layerOf(a) === "vm" && vmOf(a) === vm.name)
      const join = p.actions.find((a) => layerOf(a) === "k3s" && vmOf(a) === vm.name)
      const findings = p.findings.filter((f) => f.vm === vm.name || (f.vm === undefined && f.node === node.name))
      const blocker = findings.find((f) => f.effect !== "info")
      const detail =
        blocker?.message ?? (action ? `apply: ${describeAction(action)}` : join ? `apply: ${describeAction(join)}` : "")
      const membership = (ip: string | undefined): string | undefined => {
        if (desired.k3s === undefined) return undefined
        if (k3sNodes === undefined) return "unknown"
        const m = evaluateMembership(k3sNodes, { name: vm.name, role: vm.role, ip })
        switch (m._tag) {
          case "Absent":
            return "absent"
          case "Member":
            return `${m.node.role} Ready${m.node.unschedulable === true ? ", cordoned" : ""}`
          case "NotReady":
            return `${m.node.role} ${m.node.ready === "False" ? "NotReady" : `Ready=${m.node.ready}`}${m.node.unschedulable === true ? ", cordoned" : ""}`
          case "Mismatch":
            return `mismatch: ${m.mismatches.map((x) => x.field).join(", ")}`
        }
      }
      if (observedNode === undefined || !observedNode.online || observedNode.problem !== undefined) {
        rows.push({
          node: node.name,
          vm: vm.name,
          vmid: undefined,
          state: "unknown",
          health: observedNode === undefined ? "node missing" : !observedNode.online ? "node offline" : "unreachable",
          detail: blocker?.message ?? "",
          ip: undefined,
          transport,
          k3s: membership(undefined)
        })
        continue
      }
      const matches = observed.vms.filter((o) => o.name === vm.name)
      const match = matches[0]
      if (match === undefined) {
        rows.push({
          node: node.name,
          vm: vm.name,
          vmid: action !== undefined && "vmid" in action ? action.vmid : undefined,
          state: "missing",
          health: action?._tag === "AwaitCreate" ? "being created" : "missing",
          detail: blocker !== undefined ? `blocked: ${blocker.message}` : action ? "apply creates it" : detail,
          ip: undefined,
          transport,
          k3s: membership(undefined)
        })
        continue
      }
      const details = observed.vmDetails.get(match.vmid)
      const tags = details?.tags ?? match.tags
      const owned = match.type === "qemu" && tags.includes(desired.ownershipTag)
      const ip = observed.ips?.get(match.vmid)
      const report = classifyVm(
        new VmFacts({
          vmid: match.vmid,
          node: match.node,
          name: vm.name,
          status:
            details?.status ??
            (match.status === "stopped" ? "stopped" : match.status === "unknown" ? "unknown" : "running"),
          ...(details?.qmpstatus !== undefined ? { qmpstatus: details.qmpstatus } : {}),
          ...((details?.lock ?? match.lock) !== undefined ? { lock: (details?.lock ?? match.lock) as string } : {}),
          uptimeSeconds: details?.uptimeSeconds ?? match.uptimeSeconds,
          agentConfigured: details?.agentConfigured ?? false,
          ...(details?.agentAnswering !== undefined ? { agentAnswering: details.agentAnswering } : {}),
          owned,
          protection: details?.protection ?? false,
          template: match.template,
          ...(details?.secondsSinceCreation !== undefined ? { secondsSinceCreation: details.secondsSinceCreation } : {})
        }),
        options.policy
      )
      // The plan judges a running VM of ours by PVE's state (and its k3s Node), as apply does, not by its guest agent
      // or uptime: a silent agent is shown, and does not make the VM unhealthy here either — unless
      // `health.agentMissing: recreate` asks for the agent to be judged.
      const silent = details?.agentConfigured === true && details.agentAnswering === false
      const judgedRunning =
        owned &&
        !(silent && options.policy.agentNotResponding === "recreate") &&
        matches.length === 1 &&
        match.node === node.name &&
        report._tag !== "Healthy" &&
        (details?.lock ?? match.lock) === undefined &&
        (details?.status ?? match.status) === "running" &&
        (details?.qmpstatus ?? "running") === "running" &&
        !tags.includes(RebuildTag) &&
        !tags.includes(desired.pendingTag)
      const health = judgedRunning
        ? silent
          ? "healthy (guest agent silent)"
          : "healthy"
        : matches.length > 1
          ? "duplicate"
          : !owned
            ? "not ours"
            : match.node !== node.name
              ? "elsewhere"
              : tags.includes(RebuildTag)
                ? "being rebuilt"
                : tags.includes(desired.pendingTag)
                  ? "provisioning"
                  : report._tag === "Unknown"
                    ? report.reason
                    : report._tag === "Unhealthy"
                      ? `unhealthy: ${report.reason}`
                      : "healthy"
      const protectedBy = [
        ...(details?.protection === true ? (["pve"] as const) : []),
        ...(inSafetyProtect(desired, vm.name, match.vmid) ? (["safety.protect"] as const) : [])
      ]
      rows.push({
        node: match.node,
        vm: vm.name,
        vmid: match.vmid,
        state: details?.qmpstatus ?? details?.status ?? match.status,
        health,
        detail:
          detail !== ""
            ? detail
            : judgedRunning
              ? `VM ${match.vmid} runs${silent ? `; its guest agent does not answer (up ${details?.uptimeSeconds ?? match.uptimeSeconds} s)` : ""}`
              : report.message,
        ip,
        transport,
        k3s: membership(ip),
        ...(protectedBy.length > 0 ? { protected: protectedBy } : {})
      })
    }
  }
  return { rows, plan: p, convergence } satisfies StatusReport
})
