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
  /**
   * The server VM the reset is to run on: the first survivor in homelab.yaml's order; when no server VM runs k3s, one
   * of those merely down (see `quorumLostOf`), and `down` says how it is down.
   */
  readonly survivor: {
    readonly vm: string
    readonly vmid: number
    readonly node: string
    /** Undefined while its VM does not run (no guest agent to ask). */
    readonly ip?: string | undefined
    /** How the survivor is down, when no server VM runs k3s: what is to be done before the reset. */
    readonly down?: SurvivorDown | undefined
    /** Its VM's lock (`down` `locked`). */
    readonly lock?: string | undefined
    /** What to fix first (`down` `k3s failing`): the cause its journal shows. */
    readonly fix?: string | undefined
  }
  /** Every server VM that runs a k3s server whose apiserver does not answer. */
  readonly survivors: ReadonlyArray<string>
  /** Server VMs of homelab.yaml that have no VM any more. */
  readonly lost: ReadonlyArray<string>
  /**
   * Server VMs of homelab.yaml made again (marked to rejoin) that run no k3s yet: the members their old VMs were are
   * still counted by etcd, their data gone with the old disks.
   */
  readonly remade?: ReadonlyArray<string> | undefined
  /**
   * Server VMs of homelab.yaml that are merely down (stopped, paused, their k3s stopped or failing), the survivor
   * aside: bringing them back would still leave etcd short of its quorum, so homelab leaves them down (their etcd data
   * must not come back after the reset).
   */
  readonly down: ReadonlyArray<string>
  /** What the survivor's apiserver answered; undefined when no server VM runs k3s. */
  readonly error?: string | undefined
}

/**
 * How the server VM the reset is to run on is down when no server VM runs k3s: its VM stopped or paused (to start or
 * resume by hand), its k3s stopped (the reset runs as it is), its VM locked (a backup, say: to let finish first), or
 * its k3s failing at every start on a cause that stays (to fix first).
 */
export type SurvivorDown = "stopped" | "paused" | "k3s stopped" | "locked" | "k3s failing"

/** A server VM of homelab.yaml that is merely down, and how. */
export interface DownServer {
  readonly name: string
  readonly vm: ObservedVm
  /** `vm`: its VM stopped, paused or locked; `k3s stopped`: its unit stopped; `k3s failing`: on a cause that stays. */
  readonly how: "vm" | "k3s stopped" | "k3s failing"
  readonly ip?: string | undefined
  /** `k3s failing`: what to fix, as its journal shows it. */
  readonly fix?: string | undefined
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

/** How a down server VM is down, for the reset to run on it; undefined when its VM is in no state to start from. */
const howDown = (d: DownServer): SurvivorDown | undefined =>
  d.how === "k3s stopped"
    ? "k3s stopped"
    : d.how === "k3s failing"
      ? "k3s failing"
      : d.vm.lock !== undefined
        ? "locked"
        : d.vm.status === "stopped"
          ? "stopped"
          : d.vm.status === "paused" || d.vm.status === "suspended"
            ? "paused"
            : undefined

/** Which down server the reset is to run on first: one brought up by hand, then one locked, then one failing. */
const preference = (how: SurvivorDown): number => (how === "locked" ? 1 : how === "k3s failing" ? 2 : 0)

/**
 * The `Unavailable` facts of a cluster that lost its quorum for good, or undefined when it did not: only when every
 * server VM that runs k3s answered with an etcd error (or none runs k3s), and the server VMs that have no VM any more
 * or were made again (`remade`, still without k3s) leave the survivors short of ⌊n/2⌋+1 even with every server VM of
 * ours that is merely down (`others`: stopped, paused, k3s stopped or failing) back. While bringing those back would be
 * enough, the plan does that instead. With no survivor, the reset is to run on the first of `others` in homelab.yaml's
 * order that can be brought up by hand (its VM stopped or paused, or its k3s stopped), else the first whose VM is
 * locked, else the first whose k3s fails at every start.
 */
export const quorumLostOf = (
  desired: Desired,
  vms: ReadonlyArray<ObservedVm>,
  survivors: ReadonlyArray<Survivor>,
  others: ReadonlyArray<DownServer>,
  remade: ReadonlyArray<string> = []
): K3sFacts | undefined => {
  if (!survivors.every((s) => etcdUnavailable.test(s.error))) return undefined
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
  // a VM made again whose make did not finish (still marked pending) is one of `lost` already
  const madeAgain = remade.filter((name) => !lost.includes(name))
  const gone = lost.length + madeAgain.length
  const n = survivors.length + others.length + gone
  if (gone === 0 || survivors.length + others.length >= Math.floor(n / 2) + 1) return undefined
  const first = survivors[0]
  const order = (name: string) => servers.indexOf(name)
  const downFirst = others
    .flatMap((d) => {
      const how = howDown(d)
      return how === undefined ? [] : [{ d, how }]
    })
    .sort((a, b) => preference(a.how) - preference(b.how) || order(a.d.name) - order(b.d.name))[0]
  const survivor =
    first !== undefined
      ? { vm: first.name, vmid: first.vm.vmid, node: first.vm.node, ip: first.ip }
      : downFirst !== undefined
        ? {
            vm: downFirst.d.name,
            vmid: downFirst.d.vm.vmid,
            node: downFirst.d.vm.node,
            ...(downFirst.d.ip === undefined ? {} : { ip: downFirst.d.ip }),
            down: downFirst.how,
            ...(downFirst.how === "locked" ? { lock: downFirst.d.vm.lock } : {}),
            ...(downFirst.how === "k3s failing" && downFirst.d.fix !== undefined ? { fix: downFirst.d.fix } : {})
          }
        : undefined
  if (survivor === undefined) return undefined
  const quorumLost: QuorumLost = {
    survivor,
    survivors: survivors.map((s) => s.name),
    lost,
    ...(madeAgain.length === 0 ? {} : { remade: madeAgain }),
    down: others.map((d) => d.name).filter((name) => name !== survivor.vm),
    ...(first === undefined ? {} : { error: first.error })
  }
  return {
    _tag: "Unavailable",
    code: "k3s.quorum-lost",
    quorumLost,
    message: quorumLostMessage(quorumLost),
    hint: quorumLostHint(quorumLost)
  }
}

/** The server VMs that are down, the survivor first when it is one of them. */
const allDown = (q: QuorumLost): ReadonlyArray<string> =>
  q.survivor.down === undefined ? q.down : [q.survivor.vm, ...q.down]

const isAre = (names: ReadonlyArray<string>, one: string, more: string) => (names.length === 1 ? one : more)

/** What the plan says once, up front. */
export const quorumLostMessage = (q: QuorumLost): string => {
  const remade = q.remade ?? []
  const down = allDown(q)
  const n = q.survivors.length + down.length + q.lost.length + remade.length
  const needed = Math.floor(n / 2) + 1
  const gone = [
    ...(q.lost.length === 0
      ? []
      : [
          `${list(q.lost)} ${isAre(q.lost, "is", "are")} gone (no VM: ${isAre(q.lost, "its", "their")} etcd data went with ${isAre(q.lost, "its disk", "their disks")})`
        ]),
    ...(remade.length === 0
      ? []
      : [
          `${list(remade)} ${isAre(remade, "was", "were")} made again and ${isAre(remade, "has", "have")} not joined (etcd still counts ${isAre(remade, "its old member, whose data", "their old members, whose data")} went with the old ${isAre(remade, "disk", "disks")})`
        ])
  ].join(", ")
  const left =
    q.survivors.length === 0
      ? "no server VM runs k3s"
      : q.survivors.length === 1
        ? `only ${q.survivors[0]} survives`
        : `only ${list(q.survivors)} survive`
  const short =
    down.length === 0
      ? `, short of the ${needed} a quorum needs`
      : `; ${list(down)} ${isAre(down, "is", "are")} down (its VM or its k3s does not run), and with ${isAre(down, "it", "them")} back only ${q.survivors.length + down.length} would run, still short of the ${needed} a quorum needs`
  const answer =
    q.error === undefined
      ? ""
      : `; its API answers nothing (${q.error.replace(/^.*?(etcdserver: [^\n]*|context deadline exceeded).*$/s, "$1")})`
  const withheld = [
    ...(q.lost.length === 0 ? [] : [`recreate ${list(q.lost)}`]),
    ...(remade.length === 0 ? [] : [`join ${list(remade)}`])
  ].join(", nor ")
  const notStarted = down.length === 0 ? "" : `, nor start ${list(down)} (that would not bring the quorum back)`
  return `etcd has lost quorum: of its ${n} k3s servers, ${gone} and ${left}${short}${answer}. No server can join or leave the cluster until etcd is recovered, so homelab does not ${withheld} (a join could only hang or fail)${notStarted}`
}

/** The recovery: the reset on the survivor (brought up by hand first when it is down), then `homelab apply`. */
export const quorumLostHint = (q: QuorumLost): string => {
  const s = q.survivor
  const remade = q.remade ?? []
  const running = q.survivors.filter((name) => name !== s.vm)
  const others = [...running, ...q.down]
  const keep = [
    ...(running.length === 0 ? [] : [`stop k3s on ${list(running)} before the reset`]),
    ...(q.down.length === 0
      ? []
      : [`leave ${list(q.down)} down (homelab does not start ${isAre(q.down, "it", "them")})`])
  ]
  const bring =
    s.down === "stopped"
      ? `start ${s.vm} by hand (\`qm start ${s.vmid}\` on ${s.node}: homelab starts nothing while the quorum is lost; its k3s starts with it and waits for etcd)`
      : s.down === "paused"
        ? `resume ${s.vm} by hand (\`qm resume ${s.vmid}\` on ${s.node}: homelab starts nothing while the quorum is lost)`
        : s.down === "locked"
          ? `let what locks ${s.vm} finish (VM ${s.vmid} on ${s.node} is locked: ${s.lock ?? "a lock"}), then start it by hand if it does not run (\`qm start ${s.vmid}\` on ${s.node}: homelab starts nothing while the quorum is lost)`
          : s.down === "k3s failing"
            ? `fix k3s on ${s.vm} first: it stops at every start on a cause that stays${s.fix === undefined ? "" : ` (${s.fix})`}`
            : undefined
  const newest =
    s.down === undefined || q.down.length === 0
      ? ""
      : ` (etcd's newest data is on the server that went down last: if that is ${q.down.length === 1 ? q.down[0] : `one of ${list(q.down)}`}, recover there instead and leave ${s.vm} down)`
  const joined = [...q.lost, ...remade]
  return [
    ...(bring === undefined ? [] : [bring]),
    `${bring === undefined ? "" : "then "}recover on ${s.ip === undefined ? s.vm : `${s.vm} (${s.ip})`}${newest}: \`sudo systemctl stop k3s && sudo k3s server --cluster-reset\` — k3s makes ${s.vm} a one-member etcd cluster that keeps its data (Nodes, workloads, secrets) and exits with "Managed etcd cluster membership has been reset, restart without --cluster-reset flag now"; then \`sudo systemctl start k3s\` there`,
    ...(others.length === 0
      ? []
      : [
          `the other members' etcd data must not come back: ${keep.length === 1 ? `${keep[0]} and` : `${keep.join(", ")}, and`} rebuild ${isAre(others, "it", "them")} afterwards (${others.map((o) => `\`homelab reprovision ${o}\``).join(", ")}: a new disk, without the old /var/lib/rancher/k3s/server/db)`
        ]),
    `then \`homelab apply\` ${q.lost.length === 0 ? "" : `rebuilds ${list(q.lost)} on new disks (a member's old etcd data must be gone before it rejoins) and `}joins ${remade.length === 0 ? isAre(joined, "it", "them") : list(joined)} one at a time behind the quorum guard`
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
