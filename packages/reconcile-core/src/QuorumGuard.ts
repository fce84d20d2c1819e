import {
  type ClusterFacts,
  type ClusterNode,
  K3sJoin,
  membersOfNode,
  type QuorumAction,
  type QuorumAtRisk,
  type QuorumVerdict,
  quorumCheck
} from "@homelab/k3s-join"
import type { SshTarget } from "@homelab/ssh"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import { type Action, describeAction, type Finding, vmOf } from "./Action.js"
import type { ActionOutcome } from "./Convergence.js"
import type { Desired } from "./Desired.js"
import type { Observed } from "./Observed.js"

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
 * Whether taking VM `vm` down may take an etcd member with it, so that the guard must be asked: its Node is a server
 * (Ready or not: a NotReady Node only says its kubelet posts no Ready status, while its k3s, and the etcd member in it,
 * may run on), or the members list one of its name. Judged by etcd membership, never by Node readiness; the guard
 * itself (`quorumFinding`) then counts the member's vote.
 */
export const holdsEtcdMember = (
  facts: ClusterFacts | undefined,
  nodes: ReadonlyArray<ClusterNode> | undefined,
  vm: string
): boolean =>
  (nodes ?? facts?.nodes ?? []).some((n) => n.name === vm && n.role === "server") ||
  (facts !== undefined && membersOfNode(facts, vm).length > 0)

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

/** The actions that bring a server that is down back: its VM made, started, resumed or finished, or k3s started on it. */
const bringsBack = new Set<Action["_tag"]>([
  "CreateVm",
  "RecreateVm",
  "AwaitCreate",
  "FinishVm",
  "StartVm",
  "ResumeVm",
  "JoinK3s",
  "InitK3s",
  "StartK3s"
])

/**
 * The plan's quorum refusals (`k3s.quorum`) said as what the run will do, once the whole plan is known: when every
 * server that is down (the reason of the refusal) is one this same plan brings back (rebuilds, starts, resumes,
 * finishes, or starts k3s on), and that would be enough for quorum, "bring it back first" is what the run does
 * itself. The refused action is then left to the next run (`k3s.quorum-later`, `deferred`, same layer), the message
 * naming the plan's action for each such server. The end of the run asks again (`recheckQuorum`): the refusal stands
 * if they are not back. Any other finding, and a refusal that needs the user (a server the plan leaves down, too few
 * servers), is returned as it is.
 */
export const quorumAfterPlan = (
  findings: ReadonlyArray<Finding>,
  actions: ReadonlyArray<Action>,
  facts: ClusterFacts | undefined
): Array<Finding> => {
  /** The servers each refusal the run lifts itself waits for, by refused VM. */
  const lifted = new Map<string, ReadonlyArray<string>>()
  const said = findings.map((f) => {
    if (f.code !== "k3s.quorum" || f.quorum === undefined || f.vm === undefined || facts === undefined) return f
    const { action, context } = f.quorum
    const verdict = quorumCheck(facts, f.vm, action)
    if (verdict.ok) return f
    const down = verdict.members
      .filter((m) => (m.node !== verdict.node || m.node === undefined) && !m.healthy && !m.learner)
      .map((m) => m.node ?? m.member)
    if (down.length === 0 || verdict.healthyOthers + down.length < verdict.needed) return f
    const back = down.map((vm) => actions.find((a) => bringsBack.has(a._tag) && vmOf(a) === vm))
    if (back.some((a) => a === undefined)) return f
    lifted.set(f.vm, down)
    const list = verdict.members.map((m) => `${m.member} ${m.state}`).join(", ")
    const why = context === undefined ? "" : ` (${context})`
    const first = down.map((vm, i) => `${vm} back first (${describeAction(back[i] as Action)})`).join(", ")
    return {
      ...f,
      code: "k3s.quorum-later",
      effect: "deferred" as const,
      message: `not ${verbs[action]} k3s server ${f.vm} this run: ${action} of ${f.vm} would leave ${verdict.healthyOthers} of ${verdict.voters} etcd members healthy, quorum needs ${verdict.needed} (${list})${why}; this run brings ${first}`,
      hint: `run apply again once ${readyServers(down)}: the next run can ${action} ${f.vm} (one server out at a time)`
    }
  })
  // The rollout that stops at such a server waits for the next run too.
  return said.map((f) => {
    const down = f.waitsFor === undefined ? undefined : lifted.get(f.waitsFor)
    return down === undefined || f.waitsFor === undefined
      ? f
      : { ...f, effect: "deferred" as const, hint: rolloutGoesOn(f.waitsFor, `once ${readyServers(down)}`) }
  })
}

const readyServers = (names: ReadonlyArray<string>): string =>
  `${names.join(", ")} ${names.length === 1 ? "is a Ready server" : "are Ready servers"}`

const rolloutGoesOn = (stoppedAt: string, when?: string): string =>
  `run apply again${when === undefined ? "" : ` ${when}`}: the next run upgrades ${stoppedAt} and goes on from there`

/** The hint of `k3s.upgrade-waits` while the member the rollout stops at needs the user. */
export const rolloutWaitsHint = (stoppedAt: string): string =>
  `fix what keeps ${stoppedAt} from upgrading; the next run goes on from there`

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
export const recheckQuorum = (findings: ReadonlyArray<Finding>, now: QuorumAtEnd): Array<Finding> => {
  const asked = findings.map((f) => askAgain(f, now))
  // The rollout that stops at a refused server waits as that server now does: for the user, or for the next run.
  const effects = new Map(
    findings.flatMap((f, i) =>
      f.quorum !== undefined && f.vm !== undefined ? [[f.vm, asked[i]?.effect] as const] : []
    )
  )
  return asked.map((f) => {
    const effect = f.waitsFor === undefined ? undefined : effects.get(f.waitsFor)
    if (effect === undefined || f.waitsFor === undefined) return f
    return effect === "deferred"
      ? { ...f, effect, hint: rolloutGoesOn(f.waitsFor) }
      : { ...f, effect: "blocked" as const, hint: rolloutWaitsHint(f.waitsFor) }
  })
}

/** One finding asked again at the end of the run: a quorum refusal with the members as they are now. */
const askAgain = (f: Finding, now: QuorumAtEnd): Finding => {
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
}

/**
 * The k3s servers the end of the run reads the cluster through, best first: the configured `k3s.server`; else the
 * server VM the plan read it through, the other server VMs that were Ready then, and the server VMs this run brought
 * up (at the IP the run saw). Server VMs the quorum guard refused (in the plan's `findings`) are left out (one may be
 * paused, and not answer).
 */
export const serversAtEnd = (
  desired: Desired,
  observed: Observed,
  findings: ReadonlyArray<Finding>,
  outcomes: ReadonlyArray<ActionOutcome>,
  /** Who to log in as on a server VM (the user its guest has now). */
  userOf: (vm: string) => string = () => desired.k3s?.vmUser ?? "root"
): Array<SshTarget> => {
  const k3s = desired.k3s
  if (k3s === undefined) return []
  if (k3s.server !== undefined) return [{ host: k3s.server.host, port: k3s.server.port, user: k3s.server.user }]
  const servers = new Set(desired.nodes.flatMap((n) => n.vms.filter((vm) => vm.role === "server").map((vm) => vm.name)))
  const facts = observed.k3s?._tag === "Nodes" ? observed.k3s : undefined
  const learned = new Map(
    outcomes.flatMap((o) => {
      const vm = vmOf(o.action)
      return o.status === "done" && o.ip !== undefined && vm !== undefined ? [[vm, o.ip] as const] : []
    })
  )
  const ready = (facts?.nodes ?? []).flatMap((n) => {
    const ip = n.internalIPs.find((a) => !a.includes(":")) ?? n.internalIPs[0]
    return n.role === "server" && n.ready === "True" && !n.deleting && ip !== undefined ? [[n.name, ip] as const] : []
  })
  const candidates = [
    ...(facts?.via === undefined ? [] : [[facts.via.vm, facts.via.ip] as const]),
    ...ready,
    ...learned
  ]
  const seen = new Set(findings.flatMap((f) => (f.quorum !== undefined && f.vm !== undefined ? [f.vm] : [])))
  return candidates.flatMap(([vm, ip]) => {
    if (!servers.has(vm) || seen.has(vm)) return []
    seen.add(vm)
    return [{ host: learned.get(vm) ?? ip, port: k3s.vmSshPort, user: userOf(vm) }]
  })
}

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
 * the verdict) unless enough other members stay healthy. The verdict carries the facts it was made from (`facts`),
 * for a caller's own check of the same moment.
 */
export const checkQuorumNow = (server: SshTarget, node: string, action: QuorumAction) =>
  Effect.gen(function* () {
    const k3s = yield* K3sJoin
    const facts = yield* k3s.clusterFacts(server)
    return { ...quorumCheck(facts, node, action), facts }
  })

/**
 * What apply says when k3s-join's guard refused the join of a server VM whose k3s runs (a NotReady Node re-joined with
 * other flags, another version or token): the install would restart its k3s, and its etcd member with it, while too
 * few other members are healthy. The refusal is that VM's own (its join fails, the other nodes go on); its VM is in
 * place, so only k3s work is left, as for a server the plan's guard keeps up. Its k3s runs on as it was, the new
 * install's restart pending: the next run's join restarts it, behind the guard again.
 */
export const rejoinRefusal = (
  vm: string,
  refused: QuorumAtRisk
): { readonly message: string; readonly hint: string } => {
  const others = refused.members.filter((m) => m.node !== vm)
  const down = others.filter((m) => m.state !== "Ready" && m.state !== "learner").map((m) => m.node ?? m.member)
  const first =
    down.length > 0
      ? `bring ${down.join(", ")} back to Ready first (or, if gone for good, remove its stale member)`
      : `the cluster needs more healthy servers before k3s on ${vm} can restart`
  return {
    message: `not re-joining k3s server ${vm}: its k3s would restart with the new install, and ${refused.detail}`,
    hint: `${first}, then run apply again: k3s on ${vm} runs on as it was and its restart is pending; the next run restarts it behind the quorum guard (one server out at a time)`
  }
}

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
