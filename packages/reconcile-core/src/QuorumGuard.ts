import { type ClusterFacts, K3sJoin, type QuorumAction, type QuorumVerdict, quorumCheck } from "@homelab/k3s-join"
import type { SshTarget } from "@homelab/ssh"
import * as Effect from "effect/Effect"
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

/**
 * The finding that refuses taking `server` out of service (`action`) when the other healthy etcd members would be
 * fewer than ⌊n/2⌋+1; undefined when it is safe (or the VM has no voting member, like an agent). Without the members
 * (`facts` undefined: they could not be read) it refuses too: nothing is taken down blind. The message names every
 * member and its state, and which server to bring back first.
 */
export const quorumFinding = (
  facts: ClusterFacts | undefined,
  server: GuardedServer,
  action: QuorumAction,
  unreadable = "the etcd members could not be read"
): Finding | undefined => {
  const base = {
    effect: "blocked" as const,
    layer: "k3s" as const,
    node: server.node,
    vm: server.vm,
    vmid: server.vmid
  }
  if (facts === undefined) {
    return {
      ...base,
      code: "k3s.quorum-unknown",
      message: `not ${verbs[action]} k3s server ${server.vm}: ${unreadable}, so etcd's quorum cannot be checked`,
      hint: "check that a Ready server answers `curl -sk https://127.0.0.1:6443/db/info` (k3s v1.27.14 or later), then run again"
    }
  }
  const verdict = quorumCheck(facts, server.vm, action)
  if (verdict.ok) return undefined
  return {
    ...base,
    code: "k3s.quorum",
    message: `not ${verbs[action]} k3s server ${server.vm}: ${verdict.reason}`,
    hint: hintOf(verdict)
  }
}

const hintOf = (verdict: QuorumVerdict): string => {
  const down = verdict.members.filter((m) => !m.healthy && m.node !== verdict.node).map((m) => m.node ?? m.member)
  return down.length > 0
    ? `bring ${down.join(", ")} back to Ready first (or, if gone for good, remove its stale member); homelab takes one server out at a time`
    : `the cluster needs more healthy servers before ${verdict.node} can go down (run 3 servers for one at a time)`
}

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
