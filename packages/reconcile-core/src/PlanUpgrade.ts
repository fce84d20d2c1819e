import {
  type ClusterFacts,
  describeViolation,
  desiredFlags,
  diffFlags,
  type Flag,
  type FlagsDiff,
  immutableChanges,
  type NodeChanges,
  nodeChanges,
  noNodeChanges,
  onlyCommandOf,
  parseK3sVersion,
  planUpgrade,
  type ReleaseChannel,
  type ReleaseStatus,
  resolveChannel,
  runningFlags,
  sameFlags,
  showFlag,
  skewStepViolation,
  skewViolations,
  type VersionedNode,
  type VersionRuleViolation
} from "@homelab/k3s-join"
import * as Result from "effect/Result"
import { describeNodeChanges, type Finding, type K3sVia, type UpgradeK3s } from "./Action.js"
import type { DesiredK3s } from "./Desired.js"
import { k3sFlagSource, k3sFlagsFor } from "./K3sRoleFlags.js"
import { UpgradeKeepCordonTag, UpgradeTag } from "./Marks.js"
import { quorumFinding, rolloutWaitsHint } from "./QuorumGuard.js"

/** A Ready member of ours, as the rollout sees it. */
export interface UpgradeCandidate {
  readonly vm: string
  readonly node: string
  readonly vmid: number
  readonly ip: string
  readonly role: "server" | "agent"
  /** The Node's kubelet version. */
  readonly version: string | undefined
  /**
   * The VM carries `homelab-upgrade` (or `homelab-upgrade-keep-cordon`): an earlier run's upgrade of it did not
   * finish.
   */
  readonly marked: boolean
  /**
   * The Node is cordoned and no mark of ours says by us (by hand, say; also under `homelab-upgrade-keep-cordon`): it
   * is drained and upgraded, and left cordoned.
   */
  readonly keepCordoned?: boolean | undefined
  /**
   * What its k3s runs with, as k3s records it on the Node (`k3s.io/node-args`, from the `kubectl get nodes` observe
   * reads anyway); undefined when the Node does not say.
   */
  readonly nodeArgs?: ReadonlyArray<string> | undefined
}

export interface UpgradeInputs {
  readonly k3s: DesiredK3s
  readonly channels?: ReadonlyArray<ReleaseChannel> | undefined
  readonly channelsError?: string | undefined
  /** Members and Nodes for the quorum guard (servers); undefined when they could not be read. */
  readonly facts: ClusterFacts | undefined
  readonly membersProblem: string
  readonly viaFor: (vm: string) => K3sVia | undefined
  /**
   * Every Node of the cluster (ours or not, Ready or not) with its version: the skew policy is checked over all of
   * them. Default: the candidates.
   */
  readonly nodes?: ReadonlyArray<VersionedNode> | undefined
  /** Whether `k3s.version` can be downloaded, when observe asked (a member runs another version). */
  readonly release?: ReleaseStatus | undefined
}

/** The rolling upgrade: its actions, what it reports, and the order they run in. */
export interface Rollout {
  readonly actions: ReadonlyArray<UpgradeK3s>
  readonly findings: ReadonlyArray<Finding>
  /**
   * The actions in the order they run, each stage once the one before is done: a server upgrade alone, agents in
   * batches of `k3s.upgrade.maxUnavailable`.
   */
  readonly stages: ReadonlyArray<ReadonlyArray<UpgradeK3s>>
}

/** The k3s version the members must run: `k3s.version`, else the newest release of `k3s.channel`. */
export const targetVersion = (
  k3s: DesiredK3s,
  channels: ReadonlyArray<ReleaseChannel> | undefined
): string | undefined =>
  k3s.version ??
  (k3s.channel === undefined || channels === undefined ? undefined : resolveChannel(channels, k3s.channel))

/** Action id of a member's upgrade; `hop` (a version, or `uncordon`) when the member has more than one this run. */
export const upgradeId = (node: string, vm: string, hop?: string) =>
  `${node}:k3s-upgrade:${vm}${hop === undefined ? "" : `@${hop}`}`

/** `1031` for v1.31.x: the minor a step belongs to (steps of one minor form one hop of the rollout). */
const minorKey = (version: string): number => {
  const v = parseK3sVersion(version)
  return v === undefined ? 0 : v.major * 1000 + v.minor
}

/** One thing the rollout does (or refuses) for a member, at its place in the order. */
type Entry =
  | { readonly _tag: "Finish"; readonly c: UpgradeCandidate }
  | {
      readonly _tag: "Step"
      readonly c: UpgradeCandidate
      readonly from: string
      readonly version: string
      readonly index: number
      readonly of: number
      readonly resumed: boolean
    }
  | { readonly _tag: "Refused"; readonly c: UpgradeCandidate; readonly violation: VersionRuleViolation }

/**
 * The rollout, pure. Every member whose version differs from the target is upgraded one minor at a time through the
 * newest release of each minor in between (from the update channels; without them the upgrade is refused naming the
 * minors it lacks), and the cluster goes hop by hop: every server to the next minor, one at a time in config order,
 * then every agent (batches of `k3s.upgrade.maxUnavailable`), and only then the next minor. So at no moment are two
 * servers more than one minor apart, nor is an agent newer than a server: each step is checked against the skew policy
 * over every Node of the cluster (`skewStepViolation`), and a step that would break it is refused. A cluster that is
 * already outside the policy is reported (`k3s.version-skew`) and its oldest members move first.
 *
 * A downgrade is refused; so is a `k3s.version` that is no release (`k3s.release-missing`, nothing is touched). A
 * server's upgrade is refused when the quorum guard says its member cannot go down now. A refused server (or a refused
 * step) stops the rollout there and what it leaves out is reported. A member marked `homelab-upgrade` is finished first:
 * uncordoned when it is on the target or its next step comes after the rollout's first hop, otherwise its next step
 * goes first in that hop. A member whose Node is cordoned by someone else (`keepCordoned`) is upgraded all the same,
 * and left cordoned (its unfinished upgrade only has its mark cleared).
 */
export const planUpgrades = (candidates: ReadonlyArray<UpgradeCandidate>, inputs: UpgradeInputs): Rollout => {
  const { k3s } = inputs
  const findings: Array<Finding> = []
  const target = targetVersion(k3s, inputs.channels)
  const ordered = [...candidates.filter((c) => c.role === "server"), ...candidates.filter((c) => c.role === "agent")]
  if (target === undefined && k3s.channel !== undefined && k3s.version === undefined && ordered.length > 0) {
    // Whether the members run the channel's release cannot be told: said, but no reason to hold the lab back.
    const first = ordered[0] as UpgradeCandidate
    findings.push({
      code: "k3s.channel-unknown",
      effect: "info",
      layer: "k3s",
      node: first.node,
      vm: first.vm,
      message: `the release of k3s.channel ${k3s.channel} is not known: ${inputs.channelsError ?? "the channel server does not list it"}`,
      hint: "pin k3s.version, or check that the servers reach https://update.k3s.io"
    })
  }
  const cluster: Array<VersionedNode> = [
    ...(inputs.nodes ?? ordered.map((c) => ({ name: c.vm, role: c.role, version: c.version })))
  ]
  const skewed = skewViolations(cluster)
  // The flags each member's k3s runs with against those homelab.yaml gives its role (k3s.installFlags, then
  // k3s.serverFlags or k3s.agentFlags): a member with others is installed again with them, in the same rollout, unless
  // one of the changes is one k3s cannot make on a running cluster (then none is made).
  const flagChanges = new Map<string, FlagsDiff>()
  const wantedFlags = {
    server: desiredFlags(k3sFlagsFor(k3s, "server")),
    agent: desiredFlags(k3sFlagsFor(k3s, "agent"))
  }
  for (const c of ordered) {
    const running = runningFlags(c.nodeArgs)
    if (running === undefined) continue
    const diff = diffFlags(running, wantedFlags[c.role])
    if (!sameFlags(diff)) flagChanges.set(c.vm, diff)
  }
  const frozen = ordered.flatMap((c) => {
    const diff = flagChanges.get(c.vm)
    const fixed = diff === undefined ? [] : immutableChanges(diff)
    return fixed.length === 0 ? [] : [{ c, fixed, diff: diff as FlagsDiff }]
  })
  for (const { c, fixed, diff } of frozen) {
    const names = fixed.map((f) => f.name).join(", ")
    const source = k3sFlagSource(k3s, c.role)
    findings.push({
      layer: "k3s",
      node: c.node,
      vm: c.vm,
      vmid: c.vmid,
      code: "k3s.flags-immutable",
      effect: "blocked",
      message: `${source} ${source.includes(" + ") ? "change" : "changes"} ${names} for ${c.vm} (${describeFlagChanges(diff)}): k3s cannot change ${fixed.length === 1 ? "it" : "them"} once the cluster has started, so no change of the k3s flags is applied`,
      hint: `restore ${names} in ${restoreIn(k3s, c.role, fixed)} as the cluster runs it; a new value needs a new cluster`
    })
  }
  const applyFlags = frozen.length === 0
  if (!applyFlags) flagChanges.clear()
  const behind = ordered.filter(
    (c) => c.marked || (target !== undefined && c.version !== target) || flagChanges.has(c.vm)
  )
  if (behind.length === 0) {
    if (skewed.length > 0 && ordered.length > 0)
      findings.push(skewFinding(ordered[0] as UpgradeCandidate, skewed, skewed))
    return { actions: [], findings, stages: [] }
  }
  const base = (c: UpgradeCandidate) => ({ layer: "k3s" as const, node: c.node, vm: c.vm, vmid: c.vmid })
  const wants =
    k3s.version !== undefined ? `k3s.version ${target}` : `k3s.channel ${k3s.channel ?? "stable"} gives ${target}`

  // Each member's steps (or why it has none).
  const releases = (inputs.channels ?? []).map((c) => c.latest)
  const missing = inputs.release?._tag === "Missing" && inputs.release.version === target ? inputs.release : undefined
  const paths: Array<
    { readonly c: UpgradeCandidate; readonly steps: ReadonlyArray<string> } | Extract<Entry, { _tag: "Refused" }>
  > = []
  for (const c of behind) {
    if (target === undefined || c.version === target) {
      // only its flags change: installed again on the version it runs
      const reflag = flagChanges.has(c.vm) && c.version !== undefined
      paths.push({ c, steps: reflag ? [c.version as string] : [] })
      continue
    }
    if (missing !== undefined) {
      findings.push({
        ...base(c),
        code: "k3s.release-missing",
        effect: "blocked",
        // the first says how it is known; the others only that it holds for them too
        message: findings.some((f) => f.code === "k3s.release-missing")
          ? `k3s.version ${missing.version} is not a k3s release: k3s on ${c.vm} stays on ${c.version ?? "?"}`
          : `k3s.version ${missing.version} is not a k3s release (${missing.url} answers 404 Not Found): k3s on ${c.vm} stays on ${c.version ?? "?"}, nothing is cordoned`,
        hint: "set k3s.version to a published release (https://github.com/k3s-io/k3s/releases), or use k3s.channel"
      })
      continue
    }
    const planned = planUpgrade(c.version ?? "?", target, releases)
    paths.push(
      Result.isFailure(planned)
        ? { _tag: "Refused", c, violation: planned.failure }
        : { c, steps: planned.success.steps }
    )
  }

  // The hops: one per minor any member goes to, oldest first; before them, the interrupted upgrades to finish.
  const minors = [...new Set(paths.flatMap((p) => ("steps" in p ? p.steps.map(minorKey) : [])))].sort((a, b) => a - b)
  const firstMinor = minors[0]
  const groups: Array<Array<Entry>> = [[], ...minors.map(() => [])]
  const groupOf = (version: string) => groups[1 + minors.indexOf(minorKey(version))] as Array<Entry>
  // a refusal takes its place in the first hop: the servers before it in config order still make that hop
  const refusals = groups[firstMinor === undefined ? 0 : 1] as Array<Entry>
  for (const p of paths) {
    if (!("steps" in p)) {
      refusals.push(p)
      continue
    }
    const { c, steps } = p
    const finishFirst = c.marked && (steps.length === 0 || minorKey(steps[0] as string) !== firstMinor)
    if (finishFirst) (groups[0] as Array<Entry>).push({ _tag: "Finish", c })
    steps.forEach((version, index) => {
      groupOf(version).push({
        _tag: "Step",
        c,
        from: index === 0 ? (c.version ?? "?") : (steps[index - 1] as string),
        version,
        index,
        of: steps.length,
        resumed: index === 0 && c.marked && !finishFirst
      })
    })
  }

  // The walk: servers one at a time, then the agents, hop after hop, until something refuses.
  const state = new Map(cluster.map((n) => [n.name, n]))
  const batch = Math.max(1, k3s.upgrade?.maxUnavailable ?? 1)
  const planned: Array<{ readonly entry: Exclude<Entry, { _tag: "Refused" }>; readonly stage: number }> = []
  let stages = 0
  let stoppedBy: string | undefined
  const waits = new Set<string>()
  const guarded = new Set<string>()
  const stop = (c: UpgradeCandidate, finding: Finding) => {
    findings.push(finding)
    stoppedBy = c.vm
  }
  for (const group of groups) {
    const first = (e: Entry) => (e._tag === "Finish" || (e._tag === "Step" && e.resumed) ? 0 : 1)
    for (const role of ["server", "agent"] as const) {
      const entries = group.filter((e) => e.c.role === role).sort((a, b) => first(a) - first(b))
      let inBatch = batch
      for (const e of entries) {
        const { c } = e
        if (stoppedBy !== undefined) {
          if (!waits.has(c.vm)) {
            waits.add(c.vm)
            const reached = state.get(c.vm)?.version ?? c.version ?? "?"
            findings.push({
              ...base(c),
              code: "k3s.upgrade-waits",
              effect: "blocked",
              message: `k3s on ${c.vm} ${reached === (c.version ?? "?") ? "stays on" : "goes only to"} ${reached}: the rollout stops at ${stoppedBy}`,
              hint: rolloutWaitsHint(stoppedBy),
              waitsFor: stoppedBy
            })
          }
          continue
        }
        if (e._tag === "Refused") {
          const v = e.violation
          const finding: Finding = {
            ...base(c),
            code:
              v._tag === "Downgrade" ? "k3s.downgrade" : v._tag === "SkipsMinor" ? "k3s.skips-minor" : "k3s.version",
            effect: "blocked",
            message: `not upgrading k3s on ${c.vm}: ${describeViolation(v)}`,
            hint:
              v._tag === "Downgrade"
                ? `pin k3s.version to ${v.from} or newer (downgrades are refused)`
                : v._tag === "SkipsMinor"
                  ? `upgrade through ${v.missing.join(", ")} first (pin k3s.version to a release of ${v.missing[0]}), or let the servers reach the update channels`
                  : "pin k3s.version to a k3s release like v1.31.5+k3s1"
          }
          if (role === "server") stop(c, finding)
          else findings.push(finding)
          continue
        }
        if (e._tag === "Step") {
          if (role === "server" && !guarded.has(c.vm)) {
            guarded.add(c.vm)
            const changes = flagChanges.get(c.vm)
            const refused = quorumFinding(
              inputs.facts,
              c,
              "upgrade",
              inputs.membersProblem,
              changes === undefined
                ? {}
                : { context: `to run it with ${k3sFlagSource(k3s, c.role)}: ${describeFlagChanges(changes)}` }
            )
            if (refused !== undefined) {
              stop(c, refused)
              continue
            }
          }
          const skew = skewStepViolation([...state.values()], c.vm, e.version)
          if (skew !== undefined) {
            stop(c, {
              ...base(c),
              code: "k3s.version-skew",
              effect: "blocked",
              message: `not upgrading k3s on ${c.vm} to ${e.version} now: ${skew} (Kubernetes' version skew policy)`,
              hint: "upgrade the servers named there first, servers before agents (a server homelab does not manage is yours to upgrade); the next run goes on from there"
            })
            continue
          }
          state.set(c.vm, { ...(state.get(c.vm) ?? { name: c.vm, role }), version: e.version })
        }
        if (role === "server" || inBatch >= batch) {
          stages++
          inBatch = 0
        }
        inBatch++
        planned.push({ entry: e, stage: stages - 1 })
      }
    }
  }
  if (skewed.length > 0)
    findings.push(skewFinding(ordered[0] as UpgradeCandidate, skewed, skewViolations([...state.values()])))

  // The actions: a member with more than one this run tells them apart by the version (or `uncordon`).
  const count = new Map<string, number>()
  for (const { entry } of planned) count.set(entry.c.vm, (count.get(entry.c.vm) ?? 0) + 1)
  const byStage: Array<Array<UpgradeK3s>> = Array.from({ length: stages }, () => [])
  const actions: Array<UpgradeK3s> = []
  for (const { entry, stage } of planned) {
    const { c } = entry
    const single = count.get(c.vm) === 1
    const finish = entry._tag === "Finish"
    const keep = c.keepCordoned === true
    const kept = keep ? "; its k3s Node is cordoned and no run of homelab marked it so: left cordoned" : ""
    const changes = finish ? undefined : flagChanges.get(c.vm)
    const flagsOnly = !finish && entry.from === entry.version
    // what its Node needs by hand for them, done before the (first) install
    const node: NodeChanges | undefined =
      changes === undefined || entry._tag !== "Step" || entry.index !== 0
        ? undefined
        : nodeChanges(changes, wantedFlags[c.role])
    const nodeText =
      node === undefined || noNodeChanges(node)
        ? ""
        : `; k3s leaves a dropped --node-label's label on its Node and the kubelet applies --node-taint only when it registers the Node, so first: ${describeNodeChanges(node)}`
    const flagsText =
      changes === undefined
        ? ""
        : `${k3sFlagSource(k3s, c.role)} differ from the flags its k3s runs with (${describeFlagChanges(changes)})${nodeText}`
    const action: UpgradeK3s = {
      _tag: "UpgradeK3s",
      id: upgradeId(c.node, c.vm, single ? undefined : finish ? "uncordon" : entry.version),
      node: c.node,
      after: [],
      exclusive: c.role === "server" ? "k3s-server" : undefined,
      vm: c.vm,
      vmid: c.vmid,
      ip: c.ip,
      role: c.role,
      from: finish ? (c.version ?? "?") : entry.from,
      steps: finish ? [] : [entry.version],
      via: inputs.viaFor(c.vm),
      resumed: finish || entry.resumed,
      ...(keep ? { keepCordoned: true } : {}),
      ...(applyFlags && !finish ? { applyFlags: true } : {}),
      ...(changes === undefined ? {} : { flagChanges: flagLines(changes), flagSource: k3sFlagSource(k3s, c.role) }),
      ...(node === undefined || noNodeChanges(node) ? {} : { nodeChanges: node }),
      reason: finish
        ? `an earlier run's upgrade of ${c.vm} did not finish (it carries '${keep ? UpgradeKeepCordonTag : UpgradeTag}'): ${keep ? "clear the mark; its k3s Node stays cordoned, as it was before that run" : "uncordon it"}`
        : flagsOnly
          ? `${c.vm} runs ${entry.from}: ${flagsText}${entry.resumed ? "; an earlier run's install did not finish" : ""}${kept}`
          : entry.of === 1
            ? `${c.vm} runs ${entry.from}, ${wants}${changes === undefined ? "" : `; ${flagsText}`}${entry.resumed ? "; an earlier run's upgrade did not finish" : ""}${kept}`
            : `${c.vm} runs ${c.version ?? "?"}, ${wants}: one minor at a time, the whole cluster each time (servers, then agents), step ${entry.index + 1} of ${entry.of}${entry.resumed ? "; an earlier run's upgrade did not finish" : ""}${kept}`
    }
    actions.push(action)
    byStage[stage]?.push(action)
  }
  return { actions, findings, stages: byStage }
}

/**
 * The list to restore changed flags in: one only k3s server defines (`--cluster-cidr`) is a server's
 * (`k3s.serverFlags`), others are where the role's flags come from.
 */
const restoreIn = (k3s: DesiredK3s, role: "server" | "agent", fixed: ReadonlyArray<Flag>): string =>
  fixed.every((f) => onlyCommandOf(f.name) === "server") ? "k3s.serverFlags" : k3sFlagSource(k3s, role)

/** `+--disable=traefik`, `---node-label=tier=bronze`: a flag to add, one to drop. */
const flagLines = (diff: FlagsDiff): ReadonlyArray<string> => [
  ...diff.added.map((f) => `+${showFlag(f)}`),
  ...diff.removed.map((f) => `-${showFlag(f)}`)
]

/** `adds --disable=traefik; drops --node-label=tier=bronze`. */
export const describeFlagChanges = (diff: FlagsDiff): string =>
  [
    ...(diff.added.length === 0 ? [] : [`adds ${diff.added.map(showFlag).join(" ")}`]),
    ...(diff.removed.length === 0 ? [] : [`drops ${diff.removed.map(showFlag).join(" ")}`])
  ].join("; ")

/** A cluster found outside the skew policy: info when the rollout brings it back, blocked when it does not. */
const skewFinding = (at: UpgradeCandidate, found: ReadonlyArray<string>, after: ReadonlyArray<string>): Finding => ({
  code: "k3s.version-skew",
  effect: after.length === 0 ? "info" : "blocked",
  layer: "k3s",
  node: at.node,
  message: `the cluster is outside Kubernetes' version skew policy: ${found.join("; ")}`,
  hint:
    after.length === 0
      ? "the rollout moves the oldest Nodes first, one minor at a time, which brings it back"
      : `upgrade the Nodes named there, servers first, one minor at a time (after this plan: ${after.join("; ")})`
})
