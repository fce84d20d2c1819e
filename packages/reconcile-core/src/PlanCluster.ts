import type { ClusterFacts, ClusterNode } from "@homelab/k3s-join"
import type { Finding, K3sVia } from "./Action.js"
import type { Desired } from "./Desired.js"
import type { Observed } from "./Observed.js"
import { noEtcdOf } from "./PlanNoEtcd.js"

/**
 * The k3s cluster that will exist once the plan ran: servers and agents (ours from homelab.yaml, plus Nodes that are
 * not ours), whether its datastore is embedded etcd, and where it comes from.
 */
export interface ClusterSummary {
  readonly servers: number
  readonly agents: number
  /** Embedded etcd (known from the members, or because the plan starts the cluster with `--cluster-init`). */
  readonly etcd: boolean | undefined
  /** The configured `k3s.server` the VMs join, when there is one. */
  readonly external?: string | undefined
  /** The VM that starts the cluster this run (there is none yet). */
  readonly init?: string | undefined
  /**
   * The VM of ours the cluster was read through when homelab.yaml no longer names it (an orphan: the lab was renamed,
   * say): the cluster runs there, and the VMs homelab.yaml names join it through that VM.
   */
  readonly through?: string | undefined
}

/**
 * How phase 3 reaches the cluster, from what was observed:
 *
 * - `external`: the configured `k3s.server`;
 * - `vms`: a server VM of ours that answered (`via`), or another Ready one (an orphan's last: after a rename, the new
 *   VMs join through an old one);
 * - `init`: there is no cluster yet: `init` (the first VM with role `server`, in config order) starts it and every
 *   other VM joins through it;
 * - `unknown`: the cluster could not be read (`Unavailable`).
 */
export interface ClusterContext {
  readonly mode: "external" | "vms" | "init" | "unknown"
  readonly init?: { readonly vm: string; readonly node: string } | undefined
  /** The cluster's Nodes (empty when it is to be started); undefined when unknown. */
  readonly nodes: ReadonlyArray<ClusterNode> | undefined
  /** Nodes and etcd members for the quorum guard; undefined when the members were not (or could not be) read. */
  readonly facts: ClusterFacts | undefined
  /** Why the members are missing, for the guard's finding. */
  readonly membersProblem: string
  /**
   * The server a k3s step of `vm` goes through: a Ready server VM other than `vm` (and other than those in `avoid`,
   * servers the plan takes down) when there is one.
   */
  readonly viaFor: (vm: string, avoid?: ReadonlySet<string>) => K3sVia | undefined
  readonly summary: ClusterSummary
  /** Said about the cluster as a whole: an even number of etcd servers. */
  readonly findings: ReadonlyArray<Finding>
}

/**
 * The cluster phase 3 works with; see `ClusterContext`. `leaving`: k3s Nodes the plan removes (orphans pruned with
 * `--prune`), left out of the cluster it will have (`summary`, the even-servers finding).
 */
export const clusterContext = (
  desired: Desired,
  observed: Observed,
  leaving: ReadonlySet<string> = new Set()
): ClusterContext | undefined => {
  const k3s = desired.k3s
  if (k3s === undefined) return undefined
  const desiredVms = desired.nodes.flatMap((n) => n.vms.map((vm) => ({ ...vm, node: n.name })))
  const ours = new Set(desiredVms.map((vm) => vm.name))
  const facts = observed.k3s
  const nodes = facts?._tag === "Nodes" ? facts.nodes : facts?._tag === "Absent" ? [] : undefined
  const mode: ClusterContext["mode"] =
    k3s.server !== undefined
      ? "external"
      : facts?._tag === "Nodes"
        ? "vms"
        : facts?._tag === "Absent"
          ? "init"
          : "unknown"
  const firstServer = desiredVms.find((vm) => vm.role === "server")
  const init =
    mode === "init" && firstServer !== undefined ? { vm: firstServer.name, node: firstServer.node } : undefined

  // Ready server VMs of ours, the one that answered first.
  const ready = (nodes ?? [])
    .filter((n) => n.role === "server" && n.ready === "True" && !n.deleting && ours.has(n.name))
    .map((n) => ({ vm: n.name, ip: n.internalIPs.find((ip) => !ip.includes(":")) ?? n.internalIPs[0] }))
  // Then Ready servers of other VMs of ours (orphans, which homelab.yaml no longer names: after a rename, the cluster's
  // only servers until the new VMs joined).
  const owned = new Set(
    observed.vms.flatMap((vm) =>
      vm.name !== undefined && vm.tags.includes(desired.ownershipTag) && !ours.has(vm.name) ? [vm.name] : []
    )
  )
  const readyOrphans = (nodes ?? [])
    .filter((n) => n.role === "server" && n.ready === "True" && !n.deleting && owned.has(n.name))
    .map((n) => ({ vm: n.name, ip: n.internalIPs.find((ip) => !ip.includes(":")) ?? n.internalIPs[0] }))
  const via = facts?._tag === "Nodes" ? facts.via : undefined
  const servers: Array<K3sVia> = [
    ...(via === undefined ? [] : [via]),
    ...[...ready, ...readyOrphans].filter((r) => r.vm !== via?.vm)
  ]
  const viaFor = (vm: string, avoid: ReadonlySet<string> = new Set()): K3sVia | undefined => {
    if (mode === "external" || mode === "unknown") return undefined
    if (init !== undefined) return { vm: init.vm }
    return servers.find((s) => s.vm !== vm && !avoid.has(s.vm)) ?? servers.find((s) => s.vm !== vm) ?? servers[0]
  }

  const members = facts?._tag === "Nodes" ? facts.members : undefined
  const others = (nodes ?? []).filter((n) => !ours.has(n.name) && !leaving.has(n.name))
  const servers_ =
    desiredVms.filter((vm) => vm.role === "server").length +
    others.filter((n) => n.role === "server").length +
    (mode === "external" && nodes === undefined ? 1 : 0)
  const agents = desiredVms.filter((vm) => vm.role === "agent").length + others.filter((n) => n.role === "agent").length
  const etcd =
    mode === "init"
      ? true
      : members !== undefined
        ? members.length > 0
        : (nodes ?? []).some((n) => n.roleLabels.includes("etcd"))
          ? true
          : // servers and none with the etcd role: SQLite or an external datastore (`k3s.no-etcd`)
            nodes !== undefined && noEtcdOf(nodes, k3s.server?.host) !== undefined
            ? false
            : undefined
  const summary: ClusterSummary = {
    servers: servers_,
    agents,
    etcd,
    ...(k3s.server !== undefined ? { external: k3s.server.host } : {}),
    ...(init !== undefined ? { init: init.vm } : {}),
    ...(via !== undefined && !ours.has(via.vm) ? { through: via.vm } : {})
  }
  const findings: Array<Finding> = []
  if (etcd !== false && servers_ >= 2 && servers_ % 2 === 0) {
    findings.push({
      code: "k3s.even-servers",
      effect: "info",
      layer: "k3s",
      node: firstServer?.node ?? desired.nodes[0]?.name ?? "",
      message: `the cluster will have ${servers_} servers: etcd needs a majority up, so ${servers_} servers survive no more failures than ${servers_ - 1}`,
      hint: "run an odd number of servers (1, 3 or 5): give one more VM role: server, or make one an agent"
    })
  }
  return {
    mode,
    init,
    nodes,
    facts: members === undefined || nodes === undefined ? undefined : { nodes, members },
    membersProblem:
      facts?._tag === "Nodes" && facts.membersError !== undefined
        ? `the etcd members could not be read (${facts.membersError})`
        : "the etcd members were not read",
    viaFor,
    summary,
    findings
  }
}

/** "3 servers (etcd), 2 agents", as `plan` shows the cluster. */
export const describeCluster = (summary: ClusterSummary): string => {
  const s = `${summary.servers} server${summary.servers === 1 ? "" : "s"}${summary.etcd === true ? " (etcd)" : ""}`
  const a = `${summary.agents} agent${summary.agents === 1 ? "" : "s"}`
  const from =
    summary.init !== undefined
      ? `; started on ${summary.init}`
      : summary.external !== undefined
        ? `; joined through ${summary.external}`
        : summary.through !== undefined
          ? `; running on VMs homelab.yaml no longer names: joined through ${summary.through}`
          : ""
  return `${s}, ${a}${from}`
}
