import type { Finding } from "./Action.js"
import type { Desired } from "./Desired.js"
import type { K3sFacts, ObservedVm } from "./Observed.js"

/**
 * An embedded etcd that lost its quorum for good (k3s.md §5.2 "Quorum rule"): server VMs of homelab.yaml are gone
 * (no VM: destroyed, their disks with them) and the server VMs that still run k3s, with those merely down (stopped,
 * paused, their k3s stopped) counted as if they were back, are fewer than ⌊n/2⌋+1 of the n servers, so their
 * apiservers answer nothing (`etcdserver: request timed out`, `context deadline exceeded`). No member can be added or
 * removed until `k3s server --cluster-reset` on a survivor makes it a one-member cluster.
 */
export interface QuorumLost {
  /** The server VM the reset is to run on (the first survivor in homelab.yaml's order). */
  readonly survivor: { readonly vm: string; readonly vmid: number; readonly node: string; readonly ip: string }
  /** Every server VM that runs a k3s server whose apiserver does not answer. */
  readonly survivors: ReadonlyArray<string>
  /** Server VMs of homelab.yaml that have no VM any more. */
  readonly lost: ReadonlyArray<string>
  /**
   * Server VMs of homelab.yaml that are merely down (stopped, paused, their k3s stopped or failing): bringing them
   * back would still leave etcd short of its quorum, so homelab leaves them down (their etcd data must not come back
   * after the reset).
   */
  readonly down: ReadonlyArray<string>
  /** What the survivor's apiserver answered. */
  readonly error: string
}

/** An apiserver that runs but has no etcd quorum behind it (k3s's and etcd's own words). */
const etcdUnavailable = /etcdserver: request timed out|context deadline exceeded|etcdserver: no leader|leader changed/

/** A survivor that runs a k3s server whose apiserver did not answer. */
interface Survivor {
  readonly name: string
  readonly vm: ObservedVm
  readonly ip: string
  readonly error: string
}

const list = (names: ReadonlyArray<string>) =>
  names.length <= 1 ? (names[0] ?? "") : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`

/**
 * The `Unavailable` facts of a cluster that lost its quorum for good, or undefined when it did not: only when every
 * server VM that runs k3s answered with an etcd error, and the server VMs that have no VM any more leave the
 * survivors short of ⌊n/2⌋+1 even with every server VM of ours that is merely down (`others`: stopped, paused, k3s
 * stopped or failing) back. While bringing those back would be enough, the plan does that instead.
 */
export const quorumLostOf = (
  desired: Desired,
  vms: ReadonlyArray<ObservedVm>,
  survivors: ReadonlyArray<Survivor>,
  others: ReadonlyArray<string>
): K3sFacts | undefined => {
  const first = survivors[0]
  if (first === undefined || !survivors.every((s) => etcdUnavailable.test(s.error))) return undefined
  const servers = desired.nodes.flatMap((n) => n.vms.filter((vm) => vm.role === "server").map((vm) => vm.name))
  const lost = servers.filter(
    (name) =>
      !vms.some(
        (o) =>
          o.name === name &&
          o.type === "qemu" &&
          o.tags.includes(desired.ownershipTag) &&
          !o.tags.includes(desired.pendingTag)
      )
  )
  const n = survivors.length + others.length + lost.length
  if (lost.length === 0 || survivors.length + others.length >= Math.floor(n / 2) + 1) return undefined
  const quorumLost: QuorumLost = {
    survivor: { vm: first.name, vmid: first.vm.vmid, node: first.vm.node, ip: first.ip },
    survivors: survivors.map((s) => s.name),
    lost,
    down: others,
    error: first.error
  }
  return {
    _tag: "Unavailable",
    code: "k3s.quorum-lost",
    quorumLost,
    message: quorumLostMessage(quorumLost),
    hint: quorumLostHint(quorumLost)
  }
}

/** What the plan says once, up front. */
export const quorumLostMessage = (q: QuorumLost): string => {
  const n = q.survivors.length + q.down.length + q.lost.length
  const needed = Math.floor(n / 2) + 1
  const gone = q.lost.length === 1 ? "is gone" : "are gone"
  const left = q.survivors.length === 1 ? `only ${q.survivors[0]} survives` : `only ${list(q.survivors)} survive`
  const short =
    q.down.length === 0
      ? `, short of the ${needed} a quorum needs`
      : `; ${list(q.down)} ${q.down.length === 1 ? "is" : "are"} down (its VM or its k3s does not run), and with ${q.down.length === 1 ? "it" : "them"} back only ${q.survivors.length + q.down.length} would run, still short of the ${needed} a quorum needs`
  const notStarted = q.down.length === 0 ? "" : `, nor start ${list(q.down)} (that would not bring the quorum back)`
  return `etcd has lost quorum: of its ${n} k3s servers, ${list(q.lost)} ${gone} (no VM: their etcd data went with their disks) and ${left}${short}; its API answers nothing (${q.error.replace(/^.*?(etcdserver: [^\n]*|context deadline exceeded).*$/s, "$1")}). No server can join or leave the cluster until etcd is recovered, so homelab does not recreate ${list(q.lost)} (a join could only hang or fail)${notStarted}`
}

/** The recovery: the reset on the survivor, then `homelab apply`. */
export const quorumLostHint = (q: QuorumLost): string => {
  const running = q.survivors.filter((s) => s !== q.survivor.vm)
  const others = [...running, ...q.down]
  const keep = [
    ...(running.length === 0 ? [] : [`stop k3s on ${list(running)} before the reset`]),
    ...(q.down.length === 0
      ? []
      : [`leave ${list(q.down)} down (homelab does not start ${q.down.length === 1 ? "it" : "them"})`])
  ]
  return [
    `recover on ${q.survivor.vm} (${q.survivor.ip}): \`sudo systemctl stop k3s && sudo k3s server --cluster-reset\` — k3s makes ${q.survivor.vm} a one-member etcd cluster that keeps its data (Nodes, workloads, secrets) and exits with "Managed etcd cluster membership has been reset, restart without --cluster-reset flag now"; then \`sudo systemctl start k3s\` there`,
    ...(others.length === 0
      ? []
      : [
          `the other members' etcd data must not come back: ${keep.length === 1 ? `${keep[0]} and` : `${keep.join(", ")}, and`} rebuild ${others.length === 1 ? "it" : "them"} afterwards (${others.map((o) => `\`homelab reprovision ${o}\``).join(", ")}: a new disk, without the old /var/lib/rancher/k3s/server/db)`
        ]),
    `then \`homelab apply\` rebuilds ${list(q.lost)} on new disks (a member's old etcd data must be gone before it rejoins) and joins ${q.lost.length === 1 ? "it" : "them"} one at a time behind the quorum guard`
  ].join("; ")
}

/** The finding of a lost server VM that the plan leaves alone while the quorum is lost (the cause said once above). */
export const notRecreated = (q: QuorumLost, node: string, vm: string): Finding => ({
  code: "k3s.quorum-lost",
  effect: "blocked",
  layer: "vm",
  node,
  vm,
  message: `not recreating k3s server ${vm}: etcd has lost quorum (above), so it could not join`,
  hint: `after the reset on ${q.survivor.vm}, \`homelab apply\` rebuilds it`
})

/**
 * The finding of a server VM that is down (`layer` `vm`: its VM; `k3s`: its k3s unit), which the plan leaves down
 * while the quorum is lost (the cause said once above).
 */
export const notStarted = (q: QuorumLost, node: string, vm: string, vmid: number, layer: "vm" | "k3s"): Finding => ({
  code: "k3s.quorum-lost",
  effect: "blocked",
  layer,
  node,
  vm,
  vmid,
  message: `not starting ${layer === "vm" ? "k3s server" : "k3s on"} ${vm}: etcd has lost quorum (above), and it would not bring the quorum back`,
  hint: `after the reset on ${q.survivor.vm}, \`homelab reprovision ${vm}\` rebuilds it (its old etcd data must not come back)`
})

/** The finding said once, up front, on the survivor's node. */
export const quorumLostFinding = (q: QuorumLost): Finding => ({
  code: "k3s.quorum-lost",
  effect: "blocked",
  layer: "k3s",
  node: q.survivor.node,
  vm: q.survivor.vm,
  vmid: q.survivor.vmid,
  message: quorumLostMessage(q),
  hint: quorumLostHint(q)
})
