import {
  type ClusterFacts,
  describeViolation,
  planUpgrade,
  type ReleaseChannel,
  resolveChannel
} from "@homelab/k3s-join"
import * as Result from "effect/Result"
import type { Finding, K3sVia, UpgradeK3s } from "./Action.js"
import type { DesiredK3s } from "./Desired.js"
import { UpgradeKeepCordonTag, UpgradeTag } from "./Marks.js"
import { quorumFinding } from "./QuorumGuard.js"

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
}

export interface UpgradeInputs {
  readonly k3s: DesiredK3s
  readonly channels?: ReadonlyArray<ReleaseChannel> | undefined
  readonly channelsError?: string | undefined
  /** Members and Nodes for the quorum guard (servers); undefined when they could not be read. */
  readonly facts: ClusterFacts | undefined
  readonly membersProblem: string
  readonly viaFor: (vm: string) => K3sVia | undefined
}

/** The k3s version the members must run: `k3s.version`, else the newest release of `k3s.channel`. */
export const targetVersion = (
  k3s: DesiredK3s,
  channels: ReadonlyArray<ReleaseChannel> | undefined
): string | undefined =>
  k3s.version ??
  (k3s.channel === undefined || channels === undefined ? undefined : resolveChannel(channels, k3s.channel))

/** Action id of a member's upgrade. */
export const upgradeId = (node: string, vm: string) => `${node}:k3s-upgrade:${vm}`

/**
 * The rollout, pure: every member whose version differs from the target gets an `UpgradeK3s`, servers first (in
 * config order), then agents. Each upgrade goes one minor at a time: intermediate releases (the newest of each
 * skipped minor, from the update channels) are installed first, and without them the upgrade is refused with the
 * minors it lacks; a downgrade is refused. A server's upgrade is refused when the quorum guard says its member cannot
 * go down now; a refused server stops the rollout there (agents must not run ahead of a server), and what it leaves
 * out is reported. A member marked `homelab-upgrade` on the target already only gets uncordoned. A member whose Node
 * is cordoned by someone else (`keepCordoned`) is upgraded all the same, and left cordoned.
 */
export const planUpgrades = (
  candidates: ReadonlyArray<UpgradeCandidate>,
  inputs: UpgradeInputs
): { readonly actions: ReadonlyArray<UpgradeK3s>; readonly findings: ReadonlyArray<Finding> } => {
  const { k3s } = inputs
  const actions: Array<UpgradeK3s> = []
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
  const behind = ordered.filter((c) => c.marked || (target !== undefined && c.version !== target))
  if (behind.length === 0) return { actions, findings }
  const releases = (inputs.channels ?? []).map((c) => c.latest)
  let stoppedBy: string | undefined
  for (const c of behind) {
    const base = { layer: "k3s" as const, node: c.node, vm: c.vm, vmid: c.vmid }
    if (stoppedBy !== undefined) {
      findings.push({
        ...base,
        code: "k3s.upgrade-waits",
        effect: "blocked",
        message: `k3s on ${c.vm} stays on ${c.version ?? "?"}: the rollout stops at ${stoppedBy}`,
        hint: `fix what keeps ${stoppedBy} from upgrading; the next run goes on from there`
      })
      continue
    }
    const from = c.version ?? "?"
    let steps: ReadonlyArray<string> = []
    if (target !== undefined && c.version !== target) {
      const planned = planUpgrade(from, target, releases)
      if (Result.isFailure(planned)) {
        const v = planned.failure
        findings.push({
          ...base,
          code: v._tag === "Downgrade" ? "k3s.downgrade" : v._tag === "SkipsMinor" ? "k3s.skips-minor" : "k3s.version",
          effect: "blocked",
          message: `not upgrading k3s on ${c.vm}: ${describeViolation(v)}`,
          hint:
            v._tag === "Downgrade"
              ? `pin k3s.version to ${from} or newer (downgrades are refused)`
              : v._tag === "SkipsMinor"
                ? `upgrade through ${v.missing.join(", ")} first (pin k3s.version to a release of ${v.missing[0]}), or let the servers reach the update channels`
                : "pin k3s.version to a k3s release like v1.31.5+k3s1"
        })
        if (c.role === "server") stoppedBy = c.vm
        continue
      }
      steps = planned.success.steps
    }
    if (c.role === "server" && steps.length > 0) {
      const refused = quorumFinding(inputs.facts, c, "upgrade", inputs.membersProblem)
      if (refused !== undefined) {
        findings.push(refused)
        stoppedBy = c.vm
        continue
      }
    }
    const through = steps.length > 1 ? ` (one minor at a time: ${steps.slice(0, -1).join(", ")} first)` : ""
    const keep = c.keepCordoned === true
    const mark = keep ? UpgradeKeepCordonTag : UpgradeTag
    const kept = keep ? "; its k3s Node is cordoned and no run of homelab marked it so: left cordoned" : ""
    actions.push({
      _tag: "UpgradeK3s",
      id: upgradeId(c.node, c.vm),
      node: c.node,
      after: [],
      exclusive: c.role === "server" ? "k3s-server" : undefined,
      vm: c.vm,
      vmid: c.vmid,
      ip: c.ip,
      role: c.role,
      from,
      steps,
      via: inputs.viaFor(c.vm),
      resumed: c.marked,
      ...(keep ? { keepCordoned: true } : {}),
      reason:
        steps.length === 0
          ? `an earlier run's upgrade of ${c.vm} did not finish (it carries '${mark}'): ${keep ? "clear the mark; its k3s Node stays cordoned, as it was before that run" : "uncordon it"}`
          : `${c.vm} runs ${from}, k3s.${k3s.version !== undefined ? "version" : `channel ${k3s.channel} gives`} ${target}${through}${c.marked ? "; an earlier run's upgrade did not finish" : ""}${kept}`
    })
  }
  return { actions, findings }
}
