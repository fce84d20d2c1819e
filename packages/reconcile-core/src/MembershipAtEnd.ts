import { type ClusterNode, evaluateMembership, K3sJoin } from "@homelab/k3s-join"
import type { SshTarget } from "@homelab/ssh"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import { type Action, describeAction, type Finding, vmOf } from "./Action.js"
import type { WaitProgress } from "./Apply.js"
import { agentOff } from "./agentOff.js"
import type { ActionOutcome } from "./Convergence.js"
import type { Desired } from "./Desired.js"
import { RejoinTag } from "./Marks.js"
import type { K3sFacts, Observed } from "./Observed.js"
import { type K3sCandidate, planMembership } from "./PlanK3s.js"
import { smbiosUuid } from "./smbiosUuid.js"

/**
 * The plan's "membership unknown" findings (`k3s.unavailable`: the cluster could not be read, its server VMs were
 * down) asked again at the end of a run that brought server VMs back (started or resumed them): a VM that is now a
 * Ready member with the right role (and identity, and the pinned version) is converged; any other is said as it is now.
 */

/** The cluster's Nodes as the end of the run reads them, or why they could not be read. */
export type MembershipNow = { readonly nodes: ReadonlyArray<ClusterNode> } | { readonly unreadable: string }

/** What the end of the run knows about the VMs whose membership the plan could not tell. */
export interface MembershipContext {
  /** Each VM of a `k3s.unavailable` finding that runs now, as phase 3 judges it (name, role, IP, system UUID). */
  readonly candidates: ReadonlyMap<string, K3sCandidate>
  /** The server VMs this run started or resumed, or whose stopped k3s unit it started. */
  readonly broughtBack: ReadonlyArray<string>
  /** `k3s.version`, when pinned: a Ready member on another version is not converged (the next run upgrades it). */
  readonly version?: string | undefined
  /**
   * The server VMs whose k3s this run started and that stopped again on a cause that stays (the journal line since
   * that start, e.g. a bad token or a duplicate etcd member): they will not come up by waiting.
   */
  readonly failedStarts?: ReadonlyMap<string, FailedStart> | undefined
}

/** A k3s unit this run started that failed again on a cause that stays. */
export interface FailedStart {
  /** The VM's IP, where its journal is. */
  readonly ip: string
  /** `systemctl is-active` when it was seen failing (`failed`, `activating`, …). */
  readonly state: string
  /** The journal line that says why. */
  readonly line: string
}

const isUnknown = (f: Finding): boolean => f.code === "k3s.unavailable" && f.vm !== undefined

const membershipOf = (nodes: ReadonlyArray<ClusterNode>, vm: K3sCandidate) =>
  evaluateMembership(nodes, { name: vm.name, role: vm.role, ip: vm.ip, systemUUID: vm.systemUUID })

/**
 * The plan's `k3s.unavailable` findings judged again with the Nodes read at the end of the run, by the plan's own
 * membership evaluation (`planMembership`); every other finding, and those of VMs that do not run (not in
 * `candidates`), are returned as they are. A Ready member with the right role, identity and version is dropped (its
 * node may converge); one that is not Ready, not a member or on another version is said as it is now and left to the
 * next run (`deferred`, k3s layer); a Node that does not match its VM is the plan's finding for it (`blocked`). When
 * the Nodes could not be read again, the finding stands, saying the servers were brought back and the cluster did not
 * answer yet.
 */
export const recheckMembership = (
  findings: ReadonlyArray<Finding>,
  now: MembershipNow,
  context: MembershipContext
): Array<Finding> => {
  const back = context.broughtBack.join(", ")
  return findings.flatMap((f): Array<Finding> => {
    const vm = f.vm === undefined ? undefined : context.candidates.get(f.vm)
    if (!isUnknown(f) || vm === undefined) return [f]
    const failed = context.failedStarts?.get(vm.name)
    if (failed !== undefined) {
      return [
        {
          code: "k3s.start-failed",
          effect: "blocked",
          layer: "k3s",
          node: f.node,
          vm: vm.name,
          vmid: vm.vmid,
          message: `k3s on ${vm.name} (${failed.ip}) did not come up after this run started it: it stopped (${failed.state}) on a cause that stays: ${failed.line}`,
          hint: `fix what the line says (\`journalctl -u k3s\` on ${failed.ip}), then run apply again: it starts k3s there once the cause is gone`
        }
      ]
    }
    if (!("nodes" in now)) {
      return [
        {
          ...f,
          message: `membership of ${vm.name} unknown: this run brought ${back} back, but the k3s cluster did not answer yet at the end of the run (${now.unreadable})`,
          hint: "k3s forms etcd's quorum again once enough of its servers run, which can take a few minutes: run apply again (`homelab status` shows the Nodes)"
        }
      ]
    }
    const later = (code: string, message: string, hint: string): Array<Finding> => [
      { code, effect: "deferred", layer: "k3s", node: f.node, vm: vm.name, vmid: vm.vmid, message, hint }
    ]
    const step = planMembership(vm, now.nodes)
    switch (step._tag) {
      case "Finding":
        return [step.finding]
      case "Join": {
        const membership = membershipOf(now.nodes, vm)
        const what =
          membership._tag === "NotReady"
            ? `k3s Node ${vm.name} is not Ready yet (${membership.node.ready}${membership.node.readyDetail === "" ? "" : `: ${membership.node.readyDetail}`})`
            : membership._tag === "Absent"
              ? `${vm.name} is not a member of the k3s cluster`
              : step.reason
        return later(
          "k3s.join-later",
          `${what} now that this run brought ${back} back: the next run joins it (${step.reason})`,
          "run apply again: it joins the VM (or starts its k3s) and waits until its Node is Ready"
        )
      }
      default: {
        const running = step.node.kubeletVersion
        if (context.version === undefined || running === context.version) return []
        return later(
          "k3s.upgrade-later",
          `${vm.name} is a Ready ${vm.role} again now that this run brought ${back} back, on ${running ?? "an unknown version"} (k3s.version asks ${context.version}): the next run upgrades it`,
          "run apply again: it upgrades the cluster one node at a time"
        )
      }
    }
  })
}

/** The actions after which the end of the run asks the cluster again (`membershipContext`'s "brought back"). */
const bringsBack = new Set<Action["_tag"]>(["StartVm", "ResumeVm", "StartK3s"])

/**
 * The plan's "membership unknown" findings (`k3s.unavailable`) said as what the run does, once the whole plan is
 * known: when the cluster cannot be read because server VMs of ours are down (a power cut) or run with their k3s unit
 * stopped, and this same plan brings every one of them back (starts or resumes the VM, starts its k3s), bringing them
 * back is not for the user: the run does it and reads the cluster again at its end (`membershipAtEnd`). Such a
 * finding is then `deferred` (what the end of the run cannot confirm is left to the next run), its message naming the
 * plan's action for each server and its hint saying that nothing needs doing by hand. A server the plan leaves down
 * (locked, say), a unit whose start would fail again, or any other finding keeps the plan's word.
 */
export const membershipAfterPlan = (
  findings: ReadonlyArray<Finding>,
  actions: ReadonlyArray<Action>,
  k3s: K3sFacts | undefined
): Array<Finding> => {
  if (k3s?._tag !== "Unavailable" || k3s.code !== undefined || (k3s.failing?.length ?? 0) > 0) return [...findings]
  const servers = [...new Set([...(k3s.down ?? []), ...(k3s.stopped ?? []).map((s) => s.vm)])]
  if (servers.length === 0) return [...findings]
  const back = servers.map((vm) => actions.find((a) => bringsBack.has(a._tag) && vmOf(a) === vm))
  if (back.some((a) => a === undefined)) return [...findings]
  const list = servers.map((vm, i) => `${vm} (${describeAction(back[i] as Action)})`).join(", ")
  return findings.map((f) =>
    isUnknown(f) && f.effect === "blocked"
      ? {
          ...f,
          effect: "deferred" as const,
          message: `${f.message}; this run brings ${list} back and reads the cluster again at its end`,
          hint: "nothing to do by hand: apply brings them back, then waits (up to timeouts.k3sReady) for the cluster to answer and the Nodes to be Ready; a VM that is not a Ready member by then is left to the next run"
        }
      : f
  )
}

/** How a run asks at its end: through which servers, and how long it waits for the Nodes it brought back. */
export interface MembershipAtEndOptions extends MembershipContext {
  /** The k3s servers to read the Nodes through, best first (the first that answers is used). */
  readonly servers: ReadonlyArray<SshTarget>
  /** How long to wait for the cluster to answer and for the brought-back VMs' Nodes to be Ready (`timeouts.k3sReady`). */
  readonly wait: Duration.Duration
  /** Told what the wait waits for, once it has lasted `progressInterval`, then every `progressInterval`. */
  readonly onWait?: ((wait: WaitProgress) => Effect.Effect<void>) | undefined
  /** Default 5 seconds. */
  readonly progressInterval?: Duration.Input | undefined
  /**
   * The server VMs whose stopped k3s unit this run started (`StartK3s`), and how to reach them over SSH: while one is
   * not Ready, its unit is asked too, and a start that failed on a cause that stays ends the wait for it at once.
   */
  readonly startedUnits?: ReadonlyArray<{ readonly vm: string; readonly host: SshTarget }> | undefined
}

/**
 * `recheckMembership` with the Nodes read now, through the first of `servers` that answers (with `K3sJoin`). Nothing
 * is read unless the plan had a `k3s.unavailable` finding and the run brought a server VM back. The servers it brought
 * back start their k3s and need a moment (etcd's quorum, then the kubelet's first status): while the cluster does not
 * answer, or the Node of a VM it brought back is there but not Ready yet, it reads again (every 0.5 s, growing to 5 s)
 * until `wait` runs out, then judges what it read last. A converged run never gets here.
 */
export const membershipAtEnd = (findings: ReadonlyArray<Finding>, options: MembershipAtEndOptions) =>
  Effect.gen(function* () {
    const unknown = findings.filter((f) => isUnknown(f) && options.candidates.has(f.vm ?? ""))
    if (options.broughtBack.length === 0 || unknown.length === 0) return [...findings]
    const k3s = yield* Effect.serviceOption(K3sJoin)
    if (Option.isNone(k3s)) return recheckMembership(findings, { unreadable: "no k3s client in this run" }, options)
    const readNodes = Effect.gen(function* () {
      const problems: Array<string> = []
      for (const server of options.servers) {
        const read = yield* Effect.result(k3s.value.clusterNodes(server))
        if (Result.isSuccess(read)) return { nodes: read.success } as MembershipNow
        problems.push(`${server.host}: ${read.failure.message}`)
      }
      return { unreadable: problems.length === 0 ? "no server to ask" : problems.join("; ") } as MembershipNow
    })
    /** The brought-back VMs whose Node is there but not Ready yet. */
    const notReady = (nodes: ReadonlyArray<ClusterNode>): ReadonlyArray<string> =>
      unknown.flatMap((f) => {
        const vm = options.candidates.get(f.vm ?? "")
        return vm !== undefined && options.broughtBack.includes(vm.name) && membershipOf(nodes, vm)._tag === "NotReady"
          ? [vm.name]
          : []
      })
    /** The started k3s units that failed again on a cause that stays: not waited for any longer. */
    const failedStarts = new Map<string, FailedStart>()
    /** The brought-back VMs still waited for: every one while the cluster does not answer, else those not Ready. */
    const waited = (now: MembershipNow): ReadonlyArray<string> =>
      ("nodes" in now ? notReady(now.nodes) : options.broughtBack).filter((vm) => !failedStarts.has(vm))
    /**
     * Still coming up: the cluster does not answer, or a brought-back VM's Node is there but not Ready yet (and not
     * every VM waited for has had its k3s fail on a cause that stays).
     */
    const starting = (now: MembershipNow): boolean =>
      (!("nodes" in now) || notReady(now.nodes).length > 0) && waited(now).length > 0
    /** What the wait is for, in words, from the last read. */
    const waitingFor = (now: MembershipNow): string => {
      if (!("nodes" in now)) return "the k3s cluster to answer (its server VMs were brought back)"
      const names = waited(now)
      return `the k3s Node${names.length === 1 ? "" : "s"} of ${names.join(", ")} to be Ready`
    }
    /** The units this run started, of the VMs still waited for: one that failed on a cause that stays is not. */
    const checkUnits = (now: MembershipNow) =>
      Effect.forEach(
        (options.startedUnits ?? []).filter((u) => waited(now).includes(u.vm)),
        ({ vm, host }) =>
          Effect.gen(function* () {
            const unit = yield* Effect.result(k3s.value.unitStatus(host, "server"))
            const failure = Result.isSuccess(unit) ? unit.success.failure : undefined
            if (Result.isSuccess(unit) && failure?.permanent === true)
              failedStarts.set(vm, { ip: host.host, state: unit.success.state, line: failure.line })
          }),
        { concurrency: "unbounded", discard: true }
      )
    const judged = (now: MembershipNow) => recheckMembership(findings, now, { ...options, failedStarts })
    const started = yield* Clock.currentTimeMillis
    const limitMs = Duration.toMillis(options.wait)
    const deadline = started + limitMs
    let interval = 500
    let now = yield* readNodes
    if (!starting(now) || options.servers.length === 0) return judged(now)
    yield* checkUnits(now)
    if (!starting(now)) return judged(now)
    // the wait is reported once it has lasted one interval, then every interval, as an action's waits are
    const every = Duration.fromInputUnsafe(options.progressInterval ?? Duration.seconds(5))
    const onWait = options.onWait
    const ticker =
      onWait === undefined
        ? undefined
        : yield* Effect.forkChild(
            Effect.forever(
              Effect.sleep(every).pipe(
                Effect.andThen(Clock.currentTimeMillis),
                Effect.flatMap((at) => onWait({ what: waitingFor(now), elapsedMs: at - started, limitMs }))
              )
            )
          )
    while (starting(now)) {
      const left = deadline - (yield* Clock.currentTimeMillis)
      if (left <= 0) break
      yield* Effect.sleep(Duration.millis(Math.min(interval, left)))
      interval = Math.min(interval * 1.5, 5000)
      now = yield* readNodes
      if (starting(now)) yield* checkUnits(now)
    }
    if (ticker !== undefined) yield* Fiber.interrupt(ticker)
    return judged(now)
  })

/**
 * What the end of the run knows about the VMs whose membership the plan could not tell: the VMs this run started or
 * resumed (or started k3s on), and each desired VM that runs now (the plan saw it running, or this run brought it back) with its IP.
 */
export const membershipContext = (
  desired: Desired,
  observed: Observed,
  outcomes: ReadonlyArray<ActionOutcome>
): MembershipContext => {
  const back = outcomes.filter((o) => o.action._tag === "StartVm" || o.action._tag === "ResumeVm")
  // a server VM whose stopped k3s unit this run started counts as brought back: its Node is waited for alike
  const started = outcomes.filter((o) => o.action._tag === "StartK3s" && o.status === "done")
  const broughtBack = [...back, ...started].flatMap((o) => {
    const vm = vmOf(o.action)
    return o.status === "done" && vm !== undefined ? [vm] : []
  })
  const candidates = new Map<string, K3sCandidate>()
  for (const node of desired.nodes) {
    for (const vm of node.vms) {
      const seen = observed.vms.find(
        (o) => o.name === vm.name && o.node === node.name && o.type === "qemu" && o.tags.includes(desired.ownershipTag)
      )
      // a VM this run was to bring back and did not: its membership is as unknown as the plan said
      if (seen === undefined || back.some((o) => vmOf(o.action) === vm.name && o.status !== "done")) continue
      const outcome = back.find((o) => vmOf(o.action) === vm.name)
      if (outcome === undefined && seen.status !== "running") continue
      const config = observed.configs?.get(seen.vmid)
      candidates.set(vm.name, {
        name: vm.name,
        node: node.name,
        vmid: seen.vmid,
        role: vm.role,
        ip: outcome?.ip ?? observed.ips?.get(seen.vmid),
        rebuilt: seen.tags.includes(RejoinTag),
        systemUUID: smbiosUuid(config),
        agentOff: agentOff(config)
      })
    }
  }
  return { broughtBack, candidates, version: desired.k3s?.version }
}

/** The server VMs of ours that ran when the plan was made (with an IP), after `first`: more servers to ask. */
export const runningServers = (
  desired: Desired,
  observed: Observed,
  first: ReadonlyArray<SshTarget>,
  /** Who to log in as on a server VM (the user its guest has now). */
  userOf: (vm: string) => string = () => desired.k3s?.vmUser ?? "root"
): Array<SshTarget> => {
  const k3s = desired.k3s
  if (k3s === undefined || k3s.server !== undefined) return []
  return desired.nodes.flatMap((node) =>
    node.vms.flatMap((vm) => {
      const seen = observed.vms.find((o) => o.name === vm.name && o.node === node.name && o.status === "running")
      const ip = seen === undefined ? undefined : observed.ips?.get(seen.vmid)
      return vm.role !== "server" || ip === undefined || first.some((s) => s.host === ip)
        ? []
        : [{ host: ip, port: k3s.vmSshPort, user: userOf(vm.name) }]
    })
  )
}
