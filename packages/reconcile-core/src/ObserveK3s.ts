import {
  type ClusterNode,
  desiredFlags,
  diffFlags,
  K3sJoin,
  type K3sJoinError,
  parseK3sVersion,
  runningFlags,
  sameFlags
} from "@homelab/k3s-join"
import { ProxmoxApi } from "@homelab/proxmox-client"
import type { SshTarget } from "@homelab/ssh"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import type { Desired } from "./Desired.js"
import { journalFix } from "./journalFix.js"
import { k3sFlagsFor } from "./K3sRoleFlags.js"
import { RebuildTag, RejoinTag, UpgradeKeepCordonTag, UpgradeTag } from "./Marks.js"
import type { JoiningMember, K3sFacts, ObservedVm, RemovedMember, ServerUnit, StoppedK3s } from "./Observed.js"
import { findOrphans } from "./Orphans.js"
import { type DownServer, quorumLostOf } from "./QuorumLost.js"
import { mayHoldMemberWithoutNode } from "./StaleMember.js"

/** How a person brings a server VM that is down back, in words (`qm start 5000` on still-fawn). */
/** The message of a k3s journal line (`time="…" level=info msg="…"`, or etcd's JSON `"msg":"…"`), else the line. */
const journalMessage = (line: string): string =>
  /\bmsg="((?:[^"\\]|\\.)*)"/.exec(line)?.[1] ?? /"msg":"((?:[^"\\]|\\.)*)"/.exec(line)?.[1] ?? line

const bringBack = (vm: ObservedVm): string =>
  vm.lock !== undefined
    ? `VM ${vm.vmid} on ${vm.node} is locked (${vm.lock}): let that finish`
    : vm.status === "paused" || vm.status === "suspended"
      ? `\`qm resume ${vm.vmid}\` on ${vm.node}`
      : `\`qm start ${vm.vmid}\` on ${vm.node}`

/** What `observeK3s` needs from the rest of the observation. */
export interface K3sObservationInputs {
  readonly vms: ReadonlyArray<ObservedVm>
  /** IPs known so far by VMID; the IPs of server VMs read here are added. */
  readonly ips: Map<number, string | undefined>
  /** VMIDs whose details were read: they do not look healthy, so the plan may act on them. */
  readonly detailed: ReadonlySet<number>
  readonly reprovision?: ReadonlyArray<string> | undefined
  /** Server VMs a rolling restart may take out of service (`vm.restart: rolling` and a change waiting for it). */
  readonly restarting?: ReadonlySet<string> | undefined
  /** Read the members whenever the cluster has servers (see `ObserveOptions.readEtcdMembers`). */
  readonly readEtcdMembers?: boolean | undefined
  /**
   * VMs of ours the plan may remove, by name (the orphans of `apply --prune`, the VMs of `homelab destroy`): the
   * members are read when one has a server Node (the quorum guard judges its removal) or has no Node and may hold a
   * member no Node owns (`mayHoldMemberWithoutNode`: the stale-member check).
   */
  readonly removing?: ReadonlyArray<string> | undefined
  /** With `k3s.server`: its Nodes, read already (observe starts that read alongside `/cluster/resources`). */
  readonly serverNodes?: Effect.Effect<ReadonlyArray<ClusterNode>, K3sJoinError> | undefined
  /** The user each VM's guest has, by VMID (`guestUserOf`); a VM not in it: `vm.user`. */
  readonly guestUsers?: ReadonlyMap<number, string> | undefined
}

/**
 * Phase 3's observation. With `k3s.server`: one `kubectl get nodes` there. Without it: the server VMs of ours, in
 * config order, until one answers `kubectl get nodes`; one that runs no k3s at all (no unit left by install.sh) is
 * passed over, and when none of them runs k3s the cluster does not exist yet (`Absent`: the plan starts it), and the
 * first server VM, which would start it, is asked what `initCluster` would refuse it for (`existingCluster`: etcd data
 * of an earlier cluster, a k3s unit that runs). A converged lab costs one `kubectl get nodes`. The etcd members are
 * read only when a server may be taken out of service (a server VM the plan may rebuild or restart, a server on
 * another version than the target or whose k3s runs with other flags than homelab.yaml gives a server, as its Node's
 * `k3s.io/node-args` say), a server VM has no Node (it joins: a member an earlier one left, that no Node owns, holds
 * that join back), or a VM the plan may remove (`removing`) is a server or has no Node and may be a member (a converged
 * `apply --prune` reads none); the update channels only
 * when a channel is the target or an upgrade skips a minor; whether `k3s.version` exists only when a member runs
 * another version.
 */
export const observeK3s = Effect.fn("observeK3s")(function* (desired: Desired, inputs: K3sObservationInputs) {
  const k3s = desired.k3s
  if (k3s === undefined) return undefined
  const join = yield* Effect.serviceOption(K3sJoin)
  if (Option.isNone(join)) {
    return { _tag: "Unavailable", message: "no k3s client in this run", hint: "a bug: please report it" } as K3sFacts
  }
  const k = join.value
  const api = yield* ProxmoxApi
  const vmTarget = (ip: string, vmid: number): SshTarget => ({
    host: ip,
    port: k3s.vmSshPort,
    user: inputs.guestUsers?.get(vmid) ?? k3s.vmUser
  })

  let server: SshTarget
  let nodes: ReadonlyArray<ClusterNode>
  let via: { vm: string; ip: string } | undefined
  if (k3s.server !== undefined) {
    const s = k3s.server
    server = { host: s.host, port: s.port, user: s.user }
    const read = yield* Effect.result(inputs.serverNodes ?? k.clusterNodes(server))
    if (Result.isFailure(read)) {
      return {
        _tag: "Unavailable",
        message: `cannot read the k3s cluster's Nodes on ${s.user}@${s.host}:${s.port}: ${read.failure.message}`,
        hint: `check k3s.server (SSH to ${s.host}:${s.port} as ${s.user}, and \`sudo k3s kubectl get nodes\` there)`
      } as K3sFacts
    }
    nodes = read.success
  } else {
    const candidates = desired.nodes.flatMap((n) => n.vms.filter((vm) => vm.role === "server").map((vm) => vm.name))
    const probed: Array<string> = []
    /** Where the probed server VMs are: the first server VM is asked whether a cluster may start there. */
    const probedAt = new Map<string, { readonly vmid: number; readonly ip: string }>()
    const problems: Array<string> = []
    /** Server VMs of homelab.yaml that run k3s as an agent: they joined a cluster as agents. */
    const agents: Array<{ readonly vm: ObservedVm; readonly ip: string }> = []
    // Server VMs of ours that exist but do not run (stopped, paused, locked, …): their disks may hold the cluster (its
    // etcd data), so the cluster is not "absent" while they exist, only down. A VM still carrying the provisioning
    // mark never got as far as k3s (the mark is dropped before the join).
    const down = candidates.flatMap((name) => {
      const vm = inputs.vms.find(
        (o) =>
          o.name === name &&
          o.type === "qemu" &&
          o.tags.includes(desired.ownershipTag) &&
          !o.tags.includes(desired.pendingTag) &&
          (o.status !== "running" || o.lock !== undefined)
      )
      return vm === undefined ? [] : [vm]
    })
    let found: { nodes: ReadonlyArray<ClusterNode>; vm: string; vmid: number; ip: string } | undefined
    /** Server VMs of ours that run a k3s server (its unit is there) that did not answer, and their line in `problems`. */
    const servers: Array<{
      readonly name: string
      readonly vm: ObservedVm
      readonly ip: string
      readonly problem: number
      /** Why its apiserver did not answer. */
      readonly error: string
    }> = []
    for (const name of candidates) {
      const vm = inputs.vms.find(
        (o) =>
          o.name === name &&
          o.type === "qemu" &&
          o.tags.includes(desired.ownershipTag) &&
          o.status === "running" &&
          o.lock === undefined &&
          !o.tags.includes(RebuildTag)
      )
      if (vm === undefined) continue
      const ip =
        inputs.ips.get(vm.vmid) ?? (yield* api.vmIpv4(vm.node, vm.vmid).pipe(Effect.orElseSucceed(() => undefined)))
      inputs.ips.set(vm.vmid, ip)
      if (ip === undefined) {
        problems.push(`${name}: its guest agent reports no IP`)
        continue
      }
      const read = yield* Effect.result(k.clusterNodes(vmTarget(ip, vm.vmid)))
      if (Result.isSuccess(read)) {
        found = { nodes: read.success, vm: name, vmid: vm.vmid, ip }
        break
      }
      const role = yield* Effect.result(k.installedRole(vmTarget(ip, vm.vmid)))
      if (Result.isSuccess(role) && role.success === undefined) {
        probed.push(name)
        probedAt.set(name, { vmid: vm.vmid, ip })
        continue
      }
      if (Result.isSuccess(role) && role.success === "agent") {
        agents.push({ vm, ip })
        continue
      }
      if (Result.isSuccess(role)) servers.push({ name, vm, ip, problem: problems.length, error: read.failure.message })
      problems.push(`${name} (${ip}): ${read.failure.message}`)
    }
    // No server VM homelab.yaml names answered: VMs of ours it no longer names (orphans: renamed by a new
    // `vm.nameTemplate`, say) may run the cluster. Each running one is asked (by name), as a server VM is; one that runs a k3s
    // server but does not answer keeps the cluster from being "absent": never a second cluster beside it.
    const orphanServers: Array<string> = []
    if (found === undefined) {
      const orphans = [...findOrphans(desired, { vms: inputs.vms })].sort((a, b) =>
        a.name < b.name ? -1 : a.name > b.name ? 1 : 0
      )
      for (const vm of orphans) {
        if (vm.status !== "running" || vm.lock !== undefined || vm.tags.includes(desired.pendingTag)) continue
        const ip =
          inputs.ips.get(vm.vmid) ?? (yield* api.vmIpv4(vm.node, vm.vmid).pipe(Effect.orElseSucceed(() => undefined)))
        if (ip === undefined) continue
        const read = yield* Effect.result(k.clusterNodes(vmTarget(ip, vm.vmid)))
        if (Result.isSuccess(read)) {
          found = { nodes: read.success, vm: vm.name, vmid: vm.vmid, ip }
          break
        }
        const role = yield* Effect.result(k.installedRole(vmTarget(ip, vm.vmid)))
        if (Result.isSuccess(role) && role.success !== "server") continue
        orphanServers.push(vm.name)
        problems.push(`${vm.name} (${ip}, an orphan: homelab.yaml no longer names it): ${read.failure.message}`)
      }
    }
    // Nobody answers: a server VM that runs, answers over SSH and has its k3s unit stopped (by hand, say) is started by
    // apply, unless the journal since its last start shows a cause that would stop it again (then it is said).
    // One that systemd starts again and again (`activating`) on such a cause is said the same way, with what to fix:
    // the journal since its last start, classified as the wait after an install does (`JournalClassifier`).
    const stopped: Array<StoppedK3s> = []
    const failing: Array<string> = []
    /** What to fix on each of `failing`, from its journal. */
    const failingFix = new Map<string, string>()
    /** Server VMs whose k3s, restarted, waits for an etcd that does not answer: what its journal says. */
    const etcdWaits = new Map<string, string>()
    const fixes: Array<string> = []
    if (found === undefined) {
      for (const { name, vm, ip, problem } of servers) {
        const unit = yield* Effect.result(k.unitStatus(vmTarget(ip, vm.vmid), "server"))
        if (Result.isFailure(unit)) continue
        const { state, failure } = unit.success
        const down = ["inactive", "failed"].includes(state)
        if (!down) {
          if (failure?.failure === "EtcdUnavailable") {
            // restarted while etcd has no quorum: its apiserver never comes up (the API is refused, not timed out),
            // and its journal says why
            etcdWaits.set(name, `its k3s (${state}) waits for etcd: ${journalMessage(failure.line)}`)
            problems[problem] =
              `k3s on ${name} (${ip}) waits for etcd (${state}), which does not answer: ${failure.line}`
            continue
          }
          if (failure?.permanent === true) {
            failing.push(name)
            failingFix.set(name, journalFix(failure, name, ip))
            fixes.push(`k3s on ${name}: ${journalFix(failure, name, ip)}`)
            problems[problem] =
              `k3s on ${name} (${ip}) does not come up: systemd starts it again and again (${state}), and it stops on a cause that stays: ${failure.line}`
          }
          continue
        }
        if (failure?.permanent === true) {
          failing.push(name)
          failingFix.set(name, journalFix(failure, name, ip))
          fixes.push(
            `k3s on ${name}: ${journalFix(failure, name, ip)}; then \`sudo systemctl start k3s\` there (homelab does not start it while the cause stands)`
          )
          problems[problem] =
            `k3s on ${name} (${ip}) is stopped (${state}) and its last start failed on a cause that stays: ${failure.line}`
        } else {
          stopped.push({ vm: name, vmid: vm.vmid, node: vm.node, ip, state })
          problems[problem] = `k3s on ${name} (${ip}) is stopped (${state}): apply starts it`
        }
      }
    }
    const startsText =
      stopped.length === 0
        ? undefined
        : `apply starts k3s on ${stopped.map((s) => s.vm).join(", ")} (\`sudo systemctl enable --now k3s\` there: enabled, so that it starts at the next boot too) and waits for ${stopped.length === 1 ? "its Node" : "their Nodes"}`
    const failingText = fixes.length === 0 ? undefined : fixes.join("; ")
    if (found === undefined) {
      if (problems.length === 0 && down.length === 0 && agents.length === 0) {
        // The first server VM starts the cluster: one that runs without k3s may still hold one (etcd data an earlier
        // cluster left, where k3s ignores --cluster-init). Asked as initCluster would ask it, before the plan says
        // it starts the cluster there; only here, so a lab whose cluster answers pays nothing for it.
        const first = candidates[0]
        const at = first === undefined ? undefined : probedAt.get(first)
        const found =
          first === undefined || at === undefined
            ? undefined
            : yield* Effect.result(k.existingCluster({ ...vmTarget(at.ip, at.vmid), nodeName: first }))
        const existing =
          first !== undefined && at !== undefined && found !== undefined && Result.isSuccess(found) && found.success
            ? {
                vm: first,
                vmid: at.vmid,
                ip: at.ip,
                refusal: found.success.refusal,
                member: found.success.member,
                ...(found.success.agentUnitState === undefined ? {} : { agentUnitState: found.success.agentUnitState })
              }
            : undefined
        return { _tag: "Absent", probed, ...(existing === undefined ? {} : { existing }) } as K3sFacts
      }
      if (problems.length === 0 && down.length === 0) {
        const which = agents.map(({ vm, ip }) => `${vm.name} (VM ${vm.vmid} on ${vm.node}, ${ip})`).join(", ")
        return {
          _tag: "Unavailable",
          code: "k3s.role-mismatch",
          vms: agents.map(({ vm }) => vm.name as string),
          message: `${which} ${agents.length > 1 ? "run" : "runs"} k3s as an agent (joined to a cluster as an agent), but homelab.yaml asks ${agents.length > 1 ? "them" : "it"} as a server, and no server VM runs a k3s server: homelab neither starts a cluster on ${agents.length > 1 ? "them" : "it"} nor touches that agent`,
          hint: `rebuild ${agents.length > 1 ? "them" : "it"} as a server with ${agents.map(({ vm }) => `\`homelab reprovision ${vm.name}\``).join(", ")} (the VM is made again: its disk goes), or set k3s.server to the server ${agents.length > 1 ? "they" : "it"} joined (with role: agent)`
        } as K3sFacts
      }
      const lost = quorumLostOf(
        desired,
        inputs.vms,
        // the survivors: those whose k3s runs (a stopped or failing unit is one of the servers that are down)
        servers
          .filter((s) => !stopped.some((t) => t.vm === s.name) && !failing.includes(s.name))
          .map((s) => ({ ...s, error: etcdWaits.get(s.name) ?? s.error })),
        [
          ...down.map((vm) => ({ name: vm.name as string, vm, how: "vm" as const })),
          ...servers.flatMap(
            (s): ReadonlyArray<DownServer> =>
              stopped.some((t) => t.vm === s.name)
                ? [{ name: s.name, vm: s.vm, how: "k3s stopped" as const, ip: s.ip }]
                : failing.includes(s.name)
                  ? [
                      {
                        name: s.name,
                        vm: s.vm,
                        how: "k3s failing" as const,
                        ip: s.ip,
                        ...(failingFix.has(s.name) ? { fix: failingFix.get(s.name) } : {})
                      }
                    ]
                  : []
          )
        ],
        // server VMs made again to rejoin that run no k3s yet: their old members still count in etcd
        probed.filter((name) =>
          inputs.vms.some((o) => o.name === name && o.type === "qemu" && o.tags.includes(RejoinTag))
        )
      )
      if (lost !== undefined && orphanServers.length === 0) return lost
      const downText = down.map(
        (vm) => `${vm.name} (VM ${vm.vmid} on ${vm.node}: ${vm.lock === undefined ? vm.status : `locked (${vm.lock})`})`
      )
      return {
        _tag: "Unavailable",
        message: `no server VM answers for the k3s cluster: ${[...problems, ...downText.map((d) => `${d} does not run`)].join("; ")}`,
        hint:
          orphanServers.length > 0 && down.length === 0
            ? `${orphanServers.join(", ")} ${orphanServers.length === 1 ? "runs a k3s server" : "run k3s servers"} that homelab.yaml no longer names (renamed, or removed from it): homelab starts no second cluster beside it; make it answer \`sudo k3s kubectl get nodes\` (the new VMs then join its cluster), or, if that cluster is to go, remove it yourself (or drop the tag '${desired.ownershipTag}' to keep it outside homelab)`
            : down.length > 0
              ? [
                  `bring the server VMs that are down back (${down.map(bringBack).join(", ")}): their disks hold the cluster (etcd), so homelab neither rebuilds them nor starts a new cluster while it cannot read this one`,
                  startsText,
                  failingText
                ]
                  .filter((h) => h !== undefined)
                  .join("; ")
              : startsText !== undefined || failingText !== undefined
                ? [startsText, failingText].filter((h) => h !== undefined).join("; ")
                : "a cluster that lost etcd quorum answers nothing: bring its servers back (`homelab status` lists them); check SSH to the VMs (vm.user, vm.sshPort)",
        ...(stopped.length === 0 ? {} : { stopped }),
        ...(down.length === 0 ? {} : { down: down.map((vm) => vm.name as string) }),
        ...(failing.length === 0 ? {} : { failing })
      } as K3sFacts
    }
    nodes = found.nodes
    via = { vm: found.vm, ip: found.ip }
    server = vmTarget(found.ip, found.vmid)
  }

  // The etcd members, when a server may go out of service; the channels, when the target needs them.
  const serverVms = desired.nodes.flatMap((n) => n.vms.filter((vm) => vm.role === "server").map((vm) => vm.name))
  const serverNodes = nodes.filter((n) => n.role === "server")
  const target = k3s.version
  // A Node whose k3s runs with other flags than homelab.yaml gives its role (k3s.installFlags, then k3s.serverFlags or
  // k3s.agentFlags; its k3s.io/node-args, read already) is installed again: a server goes out of service for that too.
  const wantedFlags = {
    server: desiredFlags(k3sFlagsFor(k3s, "server")),
    agent: desiredFlags(k3sFlagsFor(k3s, "agent"))
  }
  const otherFlags = (node: ClusterNode) => {
    const running = runningFlags(node.nodeArgs)
    return running !== undefined && !sameFlags(diffFlags(running, wantedFlags[node.role]))
  }
  const disruptable =
    inputs.readEtcdMembers === true ||
    serverVms.some((name) => {
      const vm = inputs.vms.find((o) => o.name === name && o.tags.includes(desired.ownershipTag))
      if (vm === undefined) return false
      if (inputs.detailed.has(vm.vmid) || inputs.reprovision?.includes(name) === true) return true
      if (inputs.restarting?.has(name) === true) return true
      if ([RebuildTag, UpgradeTag, UpgradeKeepCordonTag].some((t) => vm.tags.includes(t))) return true
      const node = nodes.find((n) => n.name === name)
      return (
        node !== undefined &&
        (k3s.channel !== undefined || (target !== undefined && node.kubeletVersion !== target) || otherFlags(node))
      )
    })
  // A VM of ours that the plan may remove (an orphan under --prune, a VM of `homelab destroy`): a server Node (the
  // quorum guard judges its removal), or no Node while it may be an etcd member no Node owns (its Node force-deleted:
  // the teardown is held back while that member is there, or while the members cannot be read).
  const removable = (inputs.removing ?? []).some((name) => {
    const node = nodes.find((n) => n.name === name)
    return node === undefined ? mayHoldMemberWithoutNode(nodes, name) : node.role === "server"
  })
  const minor = (v: string | undefined) => (v === undefined ? undefined : parseK3sVersion(v)?.minor)
  const skips =
    target !== undefined &&
    nodes.some((n) => {
      const from = minor(n.kubeletVersion)
      const to = minor(target)
      return from !== undefined && to !== undefined && to - from > 1
    })
  const wantChannels = (k3s.version === undefined && k3s.channel !== undefined) || skips
  // A pinned release some member does not run yet: does it exist? (Asked by the server, as install.sh would.)
  const wantRelease = target !== undefined && nodes.some((n) => n.kubeletVersion !== target)
  // A server VM without a Node joins etcd afresh: a member of its name (or IP) that no Node owns would make it loop on
  // 'duplicate node name found' (the plan holds that join back: `staleMemberFinding`).
  const joiningServer = serverVms.some((name) => !nodes.some((n) => n.name === name))
  const [members, channels, release] = yield* Effect.all(
    [
      ((disruptable || joiningServer) && serverNodes.length > 0) || removable
        ? Effect.result(k.etcdMembers(server))
        : Effect.succeed(undefined),
      wantChannels ? Effect.result(k.releaseChannels(server)) : Effect.succeed(undefined),
      target !== undefined && wantRelease
        ? k.releaseStatus(server, target).pipe(Effect.orElseSucceed(() => undefined))
        : Effect.succeed(undefined)
    ],
    { concurrency: 3 }
  )
  return {
    _tag: "Nodes",
    nodes,
    via,
    ...(members === undefined
      ? {}
      : Result.isSuccess(members)
        ? { members: members.success }
        : { membersError: members.failure.message }),
    ...(channels === undefined
      ? {}
      : Result.isSuccess(channels)
        ? { channels: channels.success }
        : { channelsError: channels.failure.message }),
    ...(release === undefined ? {} : { release })
  } as K3sFacts
})

/**
 * The server VMs of ours that run without a Node (`nodes`) and whose k3s runs on after the cluster removed their etcd
 * member (`EtcdMemberRemovedRestart`: k3s since January 2026 wrote the tombstone and waits for a restart): one
 * `unitStatus` each, at once, only for those VMs (the plan joins each; a converged lab has none and asks nothing). A
 * VM that cannot be asked is left out of `removed`: its join finds it anyway. The same answer says which of them joins etcd right
 * now (`joining`: the member its k3s added for itself, its Node to follow), and each unit as read, or why it could not
 * be (`units`: a learner of its name is stale when its k3s is not running or its journal shows no join as it).
 */
export const readRemovedMembers = Effect.fn("readRemovedMembers")(function* (
  desired: Desired,
  inputs: {
    /** The running VMs of ours the plan may join (not rebuilt, not locked), and those asked to be rebuilt, by name. */
    readonly vms: ReadonlyArray<ObservedVm>
    readonly ips: ReadonlyMap<number, string | undefined>
    readonly nodes: ReadonlyArray<ClusterNode>
    readonly guestUsers?: ReadonlyMap<number, string> | undefined
  }
) {
  const k3s = desired.k3s
  const join = yield* Effect.serviceOption(K3sJoin)
  if (k3s === undefined || Option.isNone(join))
    return { removed: [], joining: [], units: [] } as {
      readonly removed: ReadonlyArray<RemovedMember>
      readonly joining: ReadonlyArray<JoiningMember>
      readonly units: ReadonlyArray<ServerUnit>
    }
  const servers = new Set(desired.nodes.flatMap((n) => n.vms.filter((vm) => vm.role === "server").map((vm) => vm.name)))
  const asked = inputs.vms.flatMap((vm) => {
    const ip = inputs.ips.get(vm.vmid)
    if (vm.name === undefined || !servers.has(vm.name) || ip === undefined) return []
    if (inputs.nodes.some((n) => n.name === vm.name)) return []
    return [{ vm: vm.name, vmid: vm.vmid, ip }]
  })
  const found = yield* Effect.forEach(
    asked,
    ({ vm, vmid, ip }) =>
      join.value
        .unitStatus({ host: ip, port: k3s.vmSshPort, user: inputs.guestUsers?.get(vmid) ?? k3s.vmUser }, "server")
        .pipe(
          Effect.map((unit) => ({
            removed:
              unit.failure?.failure === "EtcdMemberRemovedRestart"
                ? [{ vm, vmid, line: unit.failure.line } satisfies RemovedMember]
                : [],
            joining:
              unit.joining === undefined
                ? []
                : [{ vm, vmid, member: unit.joining.member, line: unit.joining.line } satisfies JoiningMember],
            units: [
              {
                vm,
                vmid,
                state: unit.state,
                journalComplete: unit.journalComplete === true,
                ...(unit.member === undefined ? {} : { member: unit.member })
              }
            ] as Array<ServerUnit>
          })),
          Effect.catch((e) =>
            Effect.succeed({
              removed: [] as Array<RemovedMember>,
              joining: [] as Array<JoiningMember>,
              units: [{ vm, vmid, error: e.message }] as Array<ServerUnit>
            })
          )
        ),
    { concurrency: "unbounded" }
  )
  return {
    removed: found.flatMap((f) => f.removed),
    joining: found.flatMap((f) => f.joining),
    units: found.flatMap((f) => f.units)
  }
})
