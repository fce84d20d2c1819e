import {
  type ClusterFacts,
  K3sJoin,
  membersOfNode,
  type QuorumAction,
  type QuorumVerdict,
  quorumCheck
} from "@homelab/k3s-join"
import type { SshTarget } from "@homelab/ssh"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type { Action, Finding } from "./Action.js"

/**
 * The etcd quorum guard, for every action that takes a server VM out of service (rebuild, rolling restart, upgrade,
 * destroy, prune): at plan time from the observed members and Nodes (`quorumFinding`), and again just before the
 * server goes down (`checkQuorumNow`), since the cluster may have changed meanwhile. One server at a time, always
 * (`oneAtATime` chains them).
 */

/** A server VM the guard is asked about. */
export interface GuardedServer {
  /** The PVE node of the VM, for the finding. */
  readonly node: string
  /** The VM name, which is its k3s Node name. */
  readonly vm: string
  readonly vmid?: number | undefined
}

const verbs: Record<QuorumAction, string> = {
  rebuild: "rebuilding",
  restart: "restarting",
  upgrade: "upgrading",
  destroy: "destroying",
  prune: "pruning",
  remove: "removing"
}

/** What a refusal adds to the finding: why the action was wanted, and the layer it leaves unconverged. */
export interface RefusalContext {
  /** Why the action was wanted, e.g. `it needs rebuilding: …` (said in parentheses after the guard's reason). */
  readonly context?: string | undefined
  /**
   * `vm` when the refused action was the VM's own remedy (a stopped or paused server that needs rebuilding): the VM is
   * not in place. Default `k3s`: the VM runs, only its k3s work waits.
   */
  readonly layer?: "vm" | "k3s" | undefined
}

/**
 * The finding that refuses taking `server` out of service (`action`) when the other healthy etcd members would be
 * fewer than ⌊n/2⌋+1; undefined when it is safe (or the VM has no voting member, like an agent). Without the members
 * (`facts` undefined: they could not be read) it refuses too: nothing is taken down blind. The message names every
 * member and its state, and which server to bring back first. The finding carries `quorum` (the action and its
 * context), so the end of the run can ask again (`recheckQuorum`).
 */
export const quorumFinding = (
  facts: ClusterFacts | undefined,
  server: GuardedServer,
  action: QuorumAction,
  unreadable = "the etcd members could not be read",
  refusal: RefusalContext = {}
): Finding | undefined => {
  const why = refusal.context === undefined ? "" : ` (${refusal.context})`
  const base = {
    effect: "blocked" as const,
    layer: refusal.layer ?? ("k3s" as const),
    node: server.node,
    vm: server.vm,
    vmid: server.vmid,
    quorum: { action, context: refusal.context }
  }
  if (facts === undefined) {
    return {
      ...base,
      code: "k3s.quorum-unknown",
      message: `not ${verbs[action]} k3s server ${server.vm}: ${unreadable}, so etcd's quorum cannot be checked${why}`,
      hint: "check that a Ready server answers `curl -sk https://127.0.0.1:6443/db/info` (k3s v1.27.14 or later), then run again"
    }
  }
  const verdict = quorumCheck(facts, server.vm, action)
  if (verdict.ok) return undefined
  return {
    ...base,
    code: "k3s.quorum",
    message: `not ${verbs[action]} k3s server ${server.vm}: ${verdict.reason}${why}`,
    hint: hintOf(verdict)
  }
}

/**
 * The members and Nodes as the guard must see them once servers this plan joins first are in: each a Ready Node with
 * a voting member (a server join ends once k3s promoted its learner). The actions that take servers out wait for
 * those joins (a failed join skips them), and the guard asks again just before each one.
 */
export const withJoined = (facts: ClusterFacts, servers: ReadonlyArray<string>): ClusterFacts => {
  const joining = servers.filter((name) => !facts.nodes.some((n) => n.name === name))
  return {
    nodes: [
      ...facts.nodes,
      ...joining.map((name) => ({
        name,
        roleLabels: ["control-plane" as const, "etcd" as const],
        role: "server" as const,
        ready: "True" as const,
        readyDetail: "",
        internalIPs: [],
        kubeletVersion: undefined,
        systemUUID: undefined,
        deleting: false,
        etcdMemberName: `${name}-00000000`
      }))
    ],
    members: [
      ...facts.members,
      ...joining.map((name) => ({
        id: `planned-${name}`,
        name: `${name}-00000000`,
        peerURL: undefined,
        clientURL: undefined,
        isLearner: false
      }))
    ]
  }
}

/** The members and Nodes once `server` left the cluster for good (its Node and etcd member removed). */
export const withoutServer = (facts: ClusterFacts, server: string): ClusterFacts => {
  const gone = new Set(membersOfNode(facts, server).map((m) => m.id))
  return {
    nodes: facts.nodes.filter((n) => n.name !== server),
    members: facts.members.filter((m) => !gone.has(m.id))
  }
}

const hintOf = (verdict: QuorumVerdict): string => {
  const others = verdict.members.filter((m) => m.node !== verdict.node || m.node === undefined)
  const down = others.filter((m) => !m.healthy && !m.learner).map((m) => m.node ?? m.member)
  const learners = others.filter((m) => m.learner).map((m) => m.node ?? m.member)
  const back =
    down.length > 0
      ? `bring ${down.join(", ")} back to Ready first (or, if gone for good, remove its stale member); homelab takes one server out at a time`
      : undefined
  const wait =
    learners.length > 0
      ? `${learners.join(", ")} ${learners.length === 1 ? "is a new etcd member" : "are new etcd members"} (a learner, without a vote until k3s promotes it, within a minute or so): run apply again then`
      : undefined
  return (
    [back, wait].filter((h) => h !== undefined).join("; ") ||
    `the cluster needs more healthy servers before ${verdict.node} can go down (run 3 servers for one at a time)`
  )
}

const done: Record<QuorumAction, string> = {
  rebuild: "rebuilt",
  restart: "restarted",
  upgrade: "upgraded",
  destroy: "destroyed",
  prune: "pruned",
  remove: "removed"
}

/** The cluster as the end of the run reads it: its members and Nodes, or why they could not be read. */
export type QuorumAtEnd = { readonly facts: ClusterFacts } | { readonly unreadable: string }

/**
 * The plan's quorum refusals asked again at the end of the run, when the run may have changed the cluster (a server
 * it refused because another one was down may be safe to take out now that the run rebuilt that one). Every other
 * finding is returned as it is. A refusal that still holds is said again with the members as they are now; one that
 * no longer holds becomes `deferred` (the VM was left as it was this run; the next run does it), on the same layer;
 * when the members could not be read again, the plan's refusal stands, saying so.
 */
export const recheckQuorum = (findings: ReadonlyArray<Finding>, now: QuorumAtEnd): Array<Finding> =>
  findings.map((f) => {
    if (f.quorum === undefined || f.vm === undefined) return f
    const { action, context } = f.quorum
    if (!("facts" in now)) {
      return {
        ...f,
        message: `${f.message}; the etcd members could not be read again at the end of the run (${now.unreadable})`
      }
    }
    const server = { node: f.node, vm: f.vm, vmid: f.vmid }
    const refused = quorumFinding(now.facts, server, action, undefined, {
      context,
      layer: f.layer === "vm" ? "vm" : "k3s"
    })
    if (refused !== undefined) return refused
    const verdict = quorumCheck(now.facts, f.vm, action)
    const { quorum: _q, ...rest } = f
    return {
      ...rest,
      code: "k3s.quorum-later",
      effect: "deferred" as const,
      message: `k3s server ${f.vm} was not ${done[action]} this run: the quorum guard refused it when the run was planned${context === undefined ? "" : ` (${context})`}; now ${verdict.reason}`,
      hint: `run apply again: the next run can take ${f.vm} out of service (one server at a time)`
    }
  })

/**
 * `recheckQuorum` with the members and Nodes read now, through the first of `servers` that answers (with
 * `K3sJoin`); nothing is read when no finding is a quorum refusal.
 */
export const quorumAtEnd = (findings: ReadonlyArray<Finding>, servers: ReadonlyArray<SshTarget>) =>
  Effect.gen(function* () {
    if (!findings.some((f) => f.quorum !== undefined)) return [...findings]
    const k3s = yield* Effect.serviceOption(K3sJoin)
    if (Option.isNone(k3s)) return recheckQuorum(findings, { unreadable: "no k3s client in this run" })
    const problems: Array<string> = []
    for (const server of servers) {
      const read = yield* Effect.result(k3s.value.clusterFacts(server))
      if (Result.isSuccess(read)) return recheckQuorum(findings, { facts: read.success })
      problems.push(`${server.host}: ${read.failure.message}`)
    }
    return recheckQuorum(findings, {
      unreadable: problems.length === 0 ? "no Ready server to ask" : problems.join("; ")
    })
  })

/**
 * The guard just before a server goes down: reads the members and Nodes through `server` and refuses (fails with
 * the verdict) unless enough other members stay healthy.
 */
export const checkQuorumNow = (server: SshTarget, node: string, action: QuorumAction) =>
  Effect.gen(function* () {
    const k3s = yield* K3sJoin
    const facts = yield* k3s.clusterFacts(server)
    return quorumCheck(facts, node, action)
  })

/**
 * Make groups of actions run one group at a time, in the order given: the first action of each group also waits
 * (`after`) for the last action of the group before. A failure in a group skips every later group (the executor
 * skips what waits for a failed action): "a failure stops the rollout". Groups are lists of action ids, e.g. a
 * server's rebuild and its rejoin, or one server's upgrade.
 */
export const oneAtATime = (
  actions: ReadonlyArray<Action>,
  groups: ReadonlyArray<ReadonlyArray<string>>
): Array<Action> => {
  const waitFor = new Map<string, string>()
  groups.forEach((group, i) => {
    const previous = groups[i - 1]
    const first = group[0]
    const last = previous?.[previous.length - 1]
    if (first !== undefined && last !== undefined) waitFor.set(first, last)
  })
  return actions.map((a) => {
    const extra = waitFor.get(a.id)
    return extra === undefined || a.after.includes(extra) ? a : { ...a, after: [...a.after, extra] }
  })
}
