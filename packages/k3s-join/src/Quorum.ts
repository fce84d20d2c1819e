/**
 * The etcd quorum guard: facts about an embedded-etcd cluster (its members from the k3s supervisor's `/db/info` and
 * its Nodes) and a pure check of whether taking one server out of service keeps ⌊n/2⌋+1 healthy members.
 *
 * @since 0.2.0
 */
import * as Result from "effect/Result"
import type { ClusterNode } from "./ClusterNode.js"

/**
 * An etcd member as `/db/info` lists it. The 64-bit `id` is kept as text.
 *
 * @since 0.2.0
 * @category models
 */
export interface EtcdMember {
  readonly id: string
  readonly name: string
  readonly peerURL: string | undefined
  readonly clientURL: string | undefined
  readonly isLearner: boolean
}

/**
 * Decodes the k3s supervisor's `/db/info` (etcd's `MemberListResponse`). Member IDs are 64-bit numbers: they are
 * read as text before JSON parsing, never as JavaScript numbers.
 *
 * @since 0.2.0
 * @category decoding
 */
export const decodeDbInfo = (json: string): Result.Result<ReadonlyArray<EtcdMember>, string> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(json.replace(/"(ID|member_id|cluster_id)":(\d+)/g, '"$1":"$2"'))
  } catch (e) {
    return Result.fail(`not JSON: ${(e as Error).message}`)
  }
  const members = (parsed as { members?: unknown } | null)?.members
  if (!Array.isArray(members)) return Result.fail("no members list")
  const out: Array<EtcdMember> = []
  for (const m of members as Array<Record<string, unknown>>) {
    if (m === null || typeof m !== "object") return Result.fail("a member is not an object")
    const urls = (k: string) =>
      Array.isArray(m[k]) ? (m[k] as Array<unknown>).filter((x) => typeof x === "string") : []
    out.push({
      id: typeof m.ID === "string" ? m.ID : String(m.ID ?? ""),
      name: typeof m.name === "string" ? m.name : "",
      peerURL: urls("peerURLs")[0] as string | undefined,
      clientURL: urls("clientURLs")[0] as string | undefined,
      isLearner: m.isLearner === true
    })
  }
  return Result.succeed(out)
}

/**
 * What the guard decides on: the cluster's Nodes and its etcd members, read at the same time.
 *
 * @since 0.2.0
 * @category models
 */
export interface ClusterFacts {
  readonly nodes: ReadonlyArray<ClusterNode>
  readonly members: ReadonlyArray<EtcdMember>
}

/** etcd member names are `<node name>-<8 hex>` */
const isMemberOfNode = (member: string, node: string) =>
  member.length === node.length + 9 && member.startsWith(`${node}-`) && /^[0-9a-f]{8}$/.test(member.slice(-8))

/**
 * The Node an etcd member belongs to: by the `etcd.k3s.cattle.io/node-name` annotation, else by the member's name.
 *
 * @since 0.2.0
 * @category quorum
 */
export const nodeOfMember = (facts: ClusterFacts, member: EtcdMember): ClusterNode | undefined =>
  facts.nodes.find((n) => n.etcdMemberName === member.name) ??
  facts.nodes.find((n) => n.etcdMemberName === undefined && isMemberOfNode(member.name, n.name))

/**
 * The etcd members of a Node (normally one; a stale one may be left by a rebuilt server).
 *
 * @since 0.2.0
 * @category quorum
 */
export const membersOfNode = (facts: ClusterFacts, node: string): ReadonlyArray<EtcdMember> =>
  facts.members.filter((m) => {
    const owner = nodeOfMember(facts, m)
    return owner !== undefined ? owner.name === node : isMemberOfNode(m.name, node)
  })

/** The host of a member's peer URL (`https://10.0.10.11:2380`, `https://[fd00::11]:2380`), lowercased. */
const peerHost = (peerURL: string | undefined): string | undefined => {
  if (peerURL === undefined) return undefined
  try {
    return new URL(peerURL).hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase()
  } catch {
    return undefined
  }
}

/**
 * The etcd members a server about to join as `node` (from `ip`) would collide with and that no Node owns (k3s.md
 * §5.3): named after it (`<node>-<8 hex>`) or registered with `ip` as their peer address. k3s removes a member only
 * through its Node, so such a member stays until someone removes it with etcdctl; the join would fail with `duplicate
 * node name found` (or `Peer URLs already exists`). A member a Node owns is not here: deleting that Node removes it.
 * Nor is a learner: a server joining right now has one before its Node registers (`joiningMembersOf`).
 *
 * @since 0.6.3
 * @category quorum
 */
export const orphanMembersOf = (
  facts: ClusterFacts,
  node: string,
  ip?: string | undefined
): ReadonlyArray<EtcdMember> => facts.members.filter((m) => !m.isLearner && withoutNodeOf(facts, m, node, ip))

/** A member no Node owns, named after `node` or registered with `ip` as its peer address. */
const withoutNodeOf = (facts: ClusterFacts, m: EtcdMember, node: string, ip: string | undefined): boolean =>
  nodeOfMember(facts, m) === undefined &&
  (isMemberOfNode(m.name, node) || (ip !== undefined && peerHost(m.peerURL) === ip.toLowerCase()))

/**
 * The etcd members of `node` (by its name, or `ip` as their peer address) that no Node owns because they are joining
 * right now: learners (k3s.md §3.5). A joining server's k3s adds its member as a learner before its Node registers,
 * and the etcd leader promotes it once caught up; such a member is not stale (`orphanMembersOf` leaves it out), and
 * removing it would break a join that is going well. Its Node follows within a minute or so.
 *
 * @since 0.11.0
 * @category quorum
 */
export const joiningMembersOf = (
  facts: ClusterFacts,
  node: string,
  ip?: string | undefined
): ReadonlyArray<EtcdMember> => facts.members.filter((m) => m.isLearner && withoutNodeOf(facts, m, node, ip))

/**
 * Why nothing is done to `node` while its etcd `members` are joining (`joiningMembersOf`): the words of a plan that
 * waits for it and of `removeServer`'s refusal.
 *
 * @since 0.11.0
 * @category quorum
 */
export const memberJoining = (node: string, members: ReadonlyArray<EtcdMember>): string =>
  `${node} is joining etcd right now: ${members.map((m) => `${m.name} (ID ${memberIdHex(m.id)}${m.peerURL === undefined ? "" : `, peer ${m.peerURL}`})`).join(", ")} ${members.length === 1 ? "is a learner" : "are learners"} that k3s promotes once caught up, and ${node}'s Node registers after that; ${members.length === 1 ? "it is" : "they are"} not stale (do not remove ${members.length === 1 ? "it" : "them"})`

/**
 * Why server `node` cannot be taken out of the cluster (`removeServer`, before a rebuild or a removal) while etcd lists
 * `members` of its name that no Node owns (`orphanMembersOf`): deleting its Node is how k3s removes a member, and
 * there is none for them, so they would stay. The words of `removeServer`'s refusal and of a plan that holds such a
 * step back.
 *
 * @since 0.7.0
 * @category quorum
 */
export const memberWithoutNode = (node: string, members: ReadonlyArray<EtcdMember>): string =>
  `etcd still lists ${members.length === 1 ? "the member" : "the members"} ${members.map((m) => `${m.name} (ID ${memberIdHex(m.id)})`).join(", ")} of ${node}, and no Node owns ${members.length === 1 ? "it" : "them"} (deleted with its finalizers removed, say): k3s removes a member only through its Node, so ${node} cannot be taken out of the cluster (${members.length === 1 ? "that member" : "those members"} would stay)`

/**
 * etcd's member ID in hex, as `etcdctl member list` shows it and `etcdctl member remove` takes it (`/db/info` gives it
 * in decimal); the ID as it is when it is not a decimal number.
 *
 * @since 0.6.3
 * @category quorum
 */
export const memberIdHex = (id: string): string => (/^\d+$/.test(id) ? BigInt(id).toString(16) : id)

/**
 * One member's state for the guard: healthy when it votes and its Node is Ready (and not being deleted).
 *
 * @since 0.2.0
 * @category models
 */
export interface MemberHealth {
  readonly member: string
  readonly node: string | undefined
  readonly healthy: boolean
  readonly learner: boolean
  /** `Ready`, `NotReady (Unknown)`, `no Node`, `learner`, `deleting` */
  readonly state: string
}

/**
 * @since 0.2.0
 * @category quorum
 */
export const memberHealth = (facts: ClusterFacts): ReadonlyArray<MemberHealth> =>
  facts.members.map((m) => {
    const node = nodeOfMember(facts, m)
    const state = m.isLearner
      ? "learner"
      : node === undefined
        ? "no Node"
        : node.deleting
          ? "deleting"
          : node.ready === "True"
            ? "Ready"
            : `NotReady (${node.ready})`
    return { member: m.name, node: node?.name, healthy: state === "Ready", learner: m.isLearner, state }
  })

/**
 * What is about to happen to a server: all of them take its member out of service for a while (`remove`, `destroy`
 * and `prune` for good).
 *
 * @since 0.2.0
 * @category models
 */
export type QuorumAction = "rebuild" | "restart" | "upgrade" | "destroy" | "prune" | "remove"

/**
 * The guard's answer, with everything a message needs.
 *
 * @since 0.2.0
 * @category models
 */
export interface QuorumVerdict {
  readonly ok: boolean
  readonly node: string
  readonly action: QuorumAction
  /** voting members (learners do not vote) */
  readonly voters: number
  /** ⌊voters/2⌋+1 */
  readonly needed: number
  /** healthy voting members other than the node's own */
  readonly healthyOthers: number
  readonly members: ReadonlyArray<MemberHealth>
  /** one sentence: why it is safe, or what to fix first */
  readonly reason: string
}

/**
 * Whether taking `node` out of service (`action`) keeps etcd's quorum: the other healthy voting members must number at
 * least ⌊n/2⌋+1 of the n voting members — the node's own member counts in n until it is removed, and is down during
 * the action whatever its state now. A node without an etcd member (an agent, or a server whose member is already
 * gone) does not affect quorum.
 *
 * @since 0.2.0
 * @category quorum
 */
export const quorumCheck = (facts: ClusterFacts, node: string, action: QuorumAction): QuorumVerdict => {
  const health = memberHealth(facts)
  const own = new Set(membersOfNode(facts, node).map((m) => m.name))
  const voters = health.filter((h) => !h.learner)
  const needed = Math.floor(voters.length / 2) + 1
  const others = voters.filter((h) => !own.has(h.member))
  const healthyOthers = others.filter((h) => h.healthy).length
  const list = health.map((h) => `${h.member} ${h.state}`).join(", ")
  const base = { node, action, voters: voters.length, needed, healthyOthers, members: health }
  if (own.size === 0 || ![...own].some((m) => voters.some((v) => v.member === m)))
    return { ...base, ok: true, reason: `${node} has no voting etcd member; etcd quorum is not affected` }
  if (healthyOthers >= needed)
    return {
      ...base,
      ok: true,
      reason: `${healthyOthers} of ${voters.length} etcd members stay healthy while ${node} is out (quorum ${needed}): ${list}`
    }
  const down = others.filter((h) => !h.healthy).map((h) => h.node ?? h.member)
  return {
    ...base,
    ok: false,
    reason: `${action} of ${node} would leave ${healthyOthers} of ${voters.length} etcd members healthy, quorum needs ${needed} (${list})${down.length > 0 ? `: bring ${down.join(", ")} back (or remove ${down.length === 1 ? "its" : "their"} stale member${down.length === 1 ? "" : "s"}) first` : ""}`
  }
}
