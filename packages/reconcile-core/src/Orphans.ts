import { type ClusterFacts, memberHealth, memberIdHex, memberWithoutNode, orphanMembersOf } from "@homelab/k3s-join"
import type { DestroyVm, Finding } from "./Action.js"
import type { Desired } from "./Desired.js"
import { inSafetyProtect } from "./inSafetyProtect.js"
import { DestroyTag } from "./Marks.js"
import type { Observed, ObservedVm } from "./Observed.js"
import { clusterContext } from "./PlanCluster.js"
import { quorumFinding, withJoined, withoutServer } from "./QuorumGuard.js"
import {
  joiningMemberFinding,
  mayHoldMemberWithoutNode,
  membersUnknownTeardownHint,
  staleMemberTeardownHint,
  stalledLearnerFinding
} from "./StaleMember.js"

/**
 * A VM of ours (it carries the ownership tag) whose name homelab.yaml asks for on no node: the node was removed
 * from the file, the VM was renamed, or the node asks for fewer VMs. Shown by `plan`, removed only by
 * `apply --prune` (its k3s Node first); see `Convergence` for how it counts.
 */
export type Orphan = ObservedVm & { readonly name: string }

/** Whether `node` is in scope: every node without `--only`, else only the nodes it names. */
const inScope = (only: ReadonlyArray<string> | undefined, node: string) => only === undefined || only.includes(node)

/** PVE's status cache names a VM created moments ago `VM <vmid>` (or not at all): not a name we can judge by. */
const hasRealName = (vm: ObservedVm): vm is Orphan =>
  vm.name !== undefined && vm.name !== "" && vm.name !== `VM ${vm.vmid}`

/** Every VM of ours on the nodes in scope that homelab.yaml no longer asks for, by VMID. A create in flight is none. */
export const findOrphans = (
  desired: Desired,
  observed: Pick<Observed, "vms">,
  options: { readonly only?: ReadonlyArray<string> | undefined } = {}
): ReadonlyArray<Orphan> => {
  const wanted = new Set(desired.nodes.flatMap((n) => n.vms.map((vm) => vm.name)))
  return observed.vms.filter(
    (vm): vm is Orphan =>
      vm.type === "qemu" &&
      !vm.template &&
      vm.lock !== "create" &&
      vm.tags.includes(desired.ownershipTag) &&
      hasRealName(vm) &&
      !wanted.has(vm.name) &&
      inScope(options.only, vm.node)
  )
}

/** Whether the plan must not touch `vm` because it is protected (PVE's flag, or `safety.protect`). */
export const isProtected = (desired: Desired, observed: Observed, vm: ObservedVm): boolean =>
  observed.vmDetails.get(vm.vmid)?.protection === true || inSafetyProtect(desired, vm.name, vm.vmid)

/**
 * What the plan does about one VM of ours it would remove (an orphan under `--prune`, or any VM of ours under
 * `homelab destroy`): a `DestroyVm` action, or the finding that says why not (protected, locked, its node out of
 * reach, its k3s Node unknown).
 */
export const removal = (
  desired: Desired,
  observed: Observed,
  vm: Orphan,
  purpose: DestroyVm["purpose"],
  reason: string,
  options: {
    /** Every server of the k3s cluster goes in this plan: the cluster goes with them, no Node is removed one by one. */
    readonly clusterGoes?: boolean | undefined
    /**
     * The members and Nodes the quorum guard judges by, when not the observed ones: the cluster as this plan leaves
     * it just before `vm` goes (servers it joins first in, servers it removes before `vm` out), and why it differs.
     */
    readonly quorum?: { readonly facts: ClusterFacts | undefined; readonly context: string | undefined } | undefined
    /** Servers the same plan removes: the k3s steps of `vm` do not go through one of them. */
    readonly avoid?: ReadonlySet<string> | undefined
  } = {}
): { readonly action: DestroyVm } | { readonly finding: Finding } => {
  const what = purpose === "prune" ? "pruning" : "destroying"
  const base = { layer: "vm" as const, node: vm.node, vm: vm.name, vmid: vm.vmid }
  const observedNode = observed.nodes.get(vm.node)
  if (vm.status === "unknown" || observedNode?.online === false || observedNode?.problem !== undefined) {
    // The node could not be observed: say what failed (the API URL and SSH host:port, with what each said) and its
    // fix, as apply does for that node, rather than only that it is out of reach.
    const problem = observedNode?.problem
    return {
      finding: {
        ...base,
        code: `vm.${purpose}-unreachable`,
        effect: "blocked",
        message:
          problem === undefined
            ? `VM ${vm.vmid} ${vm.name} on ${vm.node} cannot be reached (its node is offline or out of reach); not ${what} it`
            : `VM ${vm.vmid} ${vm.name} on ${vm.node} cannot be reached (${problem.message}); not ${what} it`,
        hint: problem === undefined ? `bring ${vm.node} back, then run again` : `${problem.hint}; then run again`
      }
    }
  }
  if (isProtected(desired, observed, vm)) {
    return {
      finding: {
        ...base,
        code: "vm.protected",
        effect: purpose === "prune" ? "blocked" : "info",
        message: `VM ${vm.vmid} ${vm.name} is protected: not ${what} it`,
        hint:
          purpose === "prune"
            ? `remove its protection (and its safety.protect entry) to let --prune delete it, or remove the tag '${desired.ownershipTag}' to keep it outside homelab`
            : "remove its protection (and its safety.protect entry) first if it is to go too"
      }
    }
  }
  const details = observed.vmDetails.get(vm.vmid)
  const lock = details?.lock ?? vm.lock
  const status = details?.status ?? vm.status
  if (lock !== undefined && !(lock === "suspended" && status === "stopped")) {
    return {
      finding: {
        ...base,
        code: "vm.locked",
        effect: "deferred",
        message: `VM ${vm.vmid} ${vm.name} is locked (${lock}): an operation is in progress; not ${what} it this run`,
        hint: `run again once it is done (\`qm unlock ${vm.vmid}\` only if nothing runs)`
      }
    }
  }
  let k3sNode: DestroyVm["k3sNode"]
  let k3sVia: DestroyVm["k3sVia"]
  if (desired.k3s !== undefined && options.clusterGoes !== true && observed.k3s?._tag !== "Absent") {
    if (observed.k3s?._tag !== "Nodes") {
      return {
        finding: {
          ...base,
          code: `vm.${purpose}-needs-k3s`,
          effect: "blocked",
          message: `VM ${vm.vmid} ${vm.name} may be a k3s member, but the k3s cluster cannot be read: its Node must be removed first; not ${what} it`,
          hint: observed.k3s?._tag === "Unavailable" ? observed.k3s.hint : "check k3s.server"
        }
      }
    }
    const member = observed.k3s.nodes.find((n) => n.name === vm.name)
    if (member !== undefined) {
      k3sNode = {
        role: member.role === "server" ? "server" : "agent",
        ...(member.unschedulable === true ? { cordoned: true } : {})
      }
    }
    const cluster = clusterContext(desired, observed)
    if (k3sNode?.role === "server") {
      // The quorum guard at plan time (and again just before the server goes down).
      const server = { node: vm.node, vm: vm.name, vmid: vm.vmid }
      const facts = options.quorum === undefined ? cluster?.facts : options.quorum.facts
      const refused = quorumFinding(facts, server, purpose, cluster?.membersProblem, {
        context: options.quorum?.context
      })
      if (refused !== undefined) return { finding: refused }
    }
    // A member of its name that no Node owns (its Node deleted with the finalizers removed): k3s removes a member only
    // through its Node, so no teardown of the VM takes it out. With its Node there, removeServer would refuse once the
    // VM is cordoned and stopped; without one, the VM would go and the member stay in etcd for good. Said now, before
    // anything is cordoned or stopped, in removeServer's words (apply asks again just before the cordon).
    // Without the members, that check cannot be made: a VM without a Node that may be such a member (in a cluster with
    // embedded etcd, and not an agent by homelab.yaml: an orphan's role is unknown) is held back the same way, saying
    // why they are unknown.
    const command = purpose === "prune" ? "homelab apply --prune" : "homelab destroy"
    const role = desired.nodes.flatMap((n) => n.vms).find((v) => v.name === vm.name)?.role
    if (
      cluster?.facts === undefined &&
      k3sNode === undefined &&
      role !== "agent" &&
      mayHoldMemberWithoutNode(observed.k3s.nodes, vm.name)
    ) {
      const who =
        role === "server"
          ? `k3s server ${vm.name}`
          : `VM ${vm.vmid} ${vm.name} (homelab.yaml no longer names it, so its k3s role is unknown)`
      return {
        finding: {
          ...base,
          code: "k3s.members-unknown",
          effect: "blocked",
          layer: "k3s",
          message: `not ${what} ${who}: it has no k3s Node, and ${cluster?.membersProblem ?? "the etcd members were not read"}, so whether etcd still lists a member of ${vm.name} that no Node owns cannot be checked (k3s removes a member only through its Node: ${purpose === "prune" ? "pruned" : "destroyed"} without it, the VM would leave that member in etcd for good); nothing is cordoned, stopped or destroyed`,
          hint: membersUnknownTeardownHint(vm.name, vm.vmid, command)
        }
      }
    }
    const orphans = cluster?.facts === undefined ? [] : orphanMembersOf(cluster.facts, vm.name)
    const orphan = orphans[0]
    if (orphan !== undefined) {
      return {
        finding: {
          ...base,
          code: "k3s.stale-member",
          effect: "blocked",
          layer: "k3s",
          message: `not ${what} k3s server ${vm.name}: ${memberWithoutNode(vm.name, orphans)}; nothing is cordoned, stopped or destroyed`,
          hint: staleMemberTeardownHint(
            vm.name,
            vm.vmid,
            memberIdHex(orphan.id),
            cluster?.viaFor(vm.name, options.avoid)?.vm ?? desired.k3s.server?.host ?? "a Ready server",
            command
          )
        }
      }
    }
    // A learner of its name that no Node owns while the VM does not run: its join was cut short when the VM went
    // down; stale (etcdctl, or the leader's eviction), not a join to wait for. (Its k3s is not read here: a VM of
    // ours that runs, has no Node and holds a learner is taken to be joining, as before.)
    const stalled = stalledLearnerFinding(
      cluster?.facts,
      { node: vm.node, vm: vm.name, vmid: vm.vmid, status },
      { command },
      `not ${what} it this run; nothing is cordoned${status === "running" ? ", stopped" : ""} or destroyed`,
      cluster?.viaFor(vm.name, options.avoid)?.vm ?? desired.k3s.server?.host ?? "a Ready server"
    )
    if (stalled !== undefined) return { finding: { ...stalled, ...base } }
    // A learner of its name that no Node owns: k3s on it is joining right now (not stale). Not torn down meanwhile:
    // the next run finds its Node, and removing that Node removes the member with it.
    const joining =
      cluster?.facts === undefined
        ? undefined
        : joiningMemberFinding(
            cluster.facts,
            { node: vm.node, vm: vm.name, vmid: vm.vmid },
            `not ${what} it this run; nothing is cordoned, stopped or destroyed`
          )
    if (joining !== undefined) return { finding: { ...joining, ...base } }
    if (k3sNode !== undefined) k3sVia = cluster?.viaFor(vm.name, options.avoid)
  }
  return {
    action: {
      _tag: "DestroyVm",
      id: `${vm.node}:${purpose}:${vm.vmid}`,
      node: vm.node,
      after: [],
      // One server goes out of service at a time, cluster-wide (with server joins and rebuilds).
      exclusive: k3sNode?.role === "server" ? "k3s-server" : undefined,
      vmid: vm.vmid,
      name: vm.name,
      purpose,
      k3sNode,
      k3sVia,
      reason
    }
  }
}

/** One VM of ours a plan removes, and why. */
export interface Removal {
  readonly vm: Orphan
  readonly reason: string
}

/** What `removals` planned for one VM: its `DestroyVm`, or the finding that says why it stays. */
export type Removed = Removal & { readonly planned: ReturnType<typeof removal> }

/**
 * Several VMs of ours removed in one plan (orphans under `--prune`, the VMs of `homelab destroy`), each as `removal`
 * plans it, and the k3s servers among them judged one after another: the quorum guard judges each server by the
 * cluster as the plan leaves it by then (the servers it joins first, `joining`, in; the servers removed before it
 * out), so that removing several servers never takes etcd below its quorum. The servers whose etcd member does not
 * run now (their Node is not Ready) go first: their removal costs no vote that counts. Returned in that order, which
 * is the order they go in: the plan chains the servers' `DestroyVm`s one after another (`oneAtATime`), each after
 * the one before it is done, its etcd member removed. Each one's k3s steps go through a server that stays.
 */
export const removals = (
  desired: Desired,
  observed: Observed,
  vms: ReadonlyArray<Removal>,
  purpose: DestroyVm["purpose"],
  options: {
    /** Server VMs this plan joins to the cluster as new members (before any server goes). */
    readonly joining?: ReadonlyArray<string> | undefined
    /** Every server of the k3s cluster goes in this plan (`removal`): no Node is removed one by one. */
    readonly clusterGoes?: boolean | undefined
  } = {}
): Array<Removed> => {
  const observedFacts = clusterContext(desired, observed)?.facts
  const nodes = observed.k3s?._tag === "Nodes" ? observed.k3s.nodes : []
  const servers = new Set(
    vms.flatMap(({ vm }) => (nodes.some((n) => n.name === vm.name && n.role === "server") ? [vm.name] : []))
  )
  const down = new Set(
    observedFacts === undefined
      ? []
      : memberHealth(observedFacts).flatMap((m) =>
          !m.healthy && !m.learner && m.node !== undefined && servers.has(m.node) ? [m.node] : []
        )
  )
  const ordered = [...vms].sort((a, b) => Number(down.has(b.vm.name)) - Number(down.has(a.vm.name)))
  const joining = options.joining ?? []
  let facts = observedFacts === undefined ? undefined : withJoined(observedFacts, joining)
  const gone: Array<string> = []
  const done = purpose === "prune" ? "pruned" : "destroyed"
  return ordered.map(({ vm, reason }) => {
    const context = [
      ...(joining.length > 0 ? [`once ${joining.join(", ")} joined`] : []),
      ...(gone.length > 0 ? [`after ${gone.join(", ")} ${gone.length === 1 ? "is" : "are"} ${done} first`] : [])
    ]
    const planned = removal(desired, observed, vm, purpose, reason, {
      clusterGoes: options.clusterGoes,
      quorum:
        joining.length === 0 && gone.length === 0
          ? undefined
          : { facts, context: context.length === 0 ? undefined : `this run: ${context.join(", ")}` },
      avoid: servers
    })
    if ("action" in planned && planned.action.k3sNode?.role === "server" && facts !== undefined) {
      facts = withoutServer(facts, vm.name)
      gone.push(vm.name)
    }
    return { vm, reason, planned }
  })
}

/**
 * The orphans' part of a plan: without `prune`, one `unconfirmed` finding per orphan (reported, left running);
 * with `prune`, a `DestroyVm` per orphan (its k3s Node first). Protected, locked and unreachable orphans get the
 * finding that says why they stay. `nodes` are the orphans' nodes that homelab.yaml does not list. While homelab.yaml
 * names a node the PVE cluster does not have (a typo, a renamed node), `--prune` removes none (`vm.prune-held`).
 *
 * Server orphans go one at a time (see `orderK3s`), after the servers the plan joins (`joining`): the quorum guard
 * judges each one by the cluster as the plan leaves it by then (those servers in, the server orphans before it out),
 * so that pruning several servers never takes etcd below its quorum; those it refuses stay, with the guard's finding.
 */
export const planOrphans = (
  desired: Desired,
  observed: Observed,
  options: {
    readonly only?: ReadonlyArray<string> | undefined
    readonly prune?: boolean | undefined
    /** Server VMs this plan joins to the cluster as new members (before any server orphan goes). */
    readonly joining?: ReadonlyArray<string> | undefined
  }
): {
  readonly nodes: ReadonlyArray<string>
  readonly actions: ReadonlyArray<DestroyVm>
  readonly findings: ReadonlyArray<Finding>
} => {
  const orphans = findOrphans(desired, observed, options)
  // A node homelab.yaml names that the cluster does not have (node.missing) is most likely misspelt or renamed: the
  // VMs it asks for then look like orphans on the node it means, so nothing is pruned until the names match.
  const cluster = new Set([...(observed.pveNodes ?? []), ...observed.nodes.keys()])
  const missing = desired.nodes.map((n) => n.name).filter((n) => !cluster.has(n))
  const held = options.prune === true && missing.length > 0
  const going = orphans.filter((vm) => (options.prune === true && !held) || isProtected(desired, observed, vm))
  const planned = removals(
    desired,
    observed,
    going.map((vm) => ({ vm, reason: `homelab.yaml asks for no VM named ${vm.name} (an orphan)` })),
    "prune",
    { joining: options.joining }
  )
  const actions = planned.flatMap((r) => ("action" in r.planned ? [r.planned.action] : []))
  const findings = orphans.flatMap((vm): Array<Finding> => {
    const removed = planned.find((r) => r.vm.vmid === vm.vmid)
    if (removed !== undefined) return "finding" in removed.planned ? [removed.planned.finding] : []
    if (held)
      return [
        {
          code: "vm.prune-held",
          effect: "blocked",
          layer: "vm",
          node: vm.node,
          vm: vm.name,
          vmid: vm.vmid,
          message: `VM ${vm.vmid} ${vm.name} on ${vm.node} is ours but homelab.yaml asks for no VM named ${vm.name}; not pruning it: homelab.yaml names ${missing.length === 1 ? "node" : "nodes"} ${missing.map((n) => `'${n}'`).join(", ")}, which the Proxmox cluster does not have (a misspelt or renamed node makes the VMs it asks for look like orphans)`,
          hint: `correct nodes[].name ${missing.map((n) => `'${n}'`).join(", ")} (see node.missing), or remove ${missing.length === 1 ? "it" : "them"} from homelab.yaml; then \`homelab apply --prune\` removes the orphans left`
        }
      ]
    const member = observed.k3s?._tag === "Nodes" && observed.k3s.nodes.some((n) => n.name === vm.name)
    const left =
      vm.status === "running"
        ? "left running"
        : vm.status === "stopped"
          ? "left stopped"
          : `left as it is (${vm.status})`
    // a teardown (an `apply --prune` or `destroy`) that stopped short: marked, its Node cordoned, the VM stopped
    const halfGone = vm.tags.includes(DestroyTag)
    return [
      {
        code: "vm.orphan",
        effect: "unconfirmed",
        layer: "vm",
        node: vm.node,
        vm: vm.name,
        vmid: vm.vmid,
        message: `VM ${vm.vmid} ${vm.name} on ${vm.node} is ours but homelab.yaml asks for no VM named ${vm.name}: ${halfGone ? `an orphan an earlier teardown stopped short of removing (it carries '${DestroyTag}'), ${left}` : `an orphan, ${left}`}`,
        hint: halfGone
          ? `\`homelab apply --prune\` finishes removing it${member ? " (its k3s Node first)" : ""}; to keep it, remove its tags '${desired.ownershipTag}' and '${DestroyTag}'${member ? ", and uncordon its k3s Node" : ""}`
          : `\`homelab apply --prune\` removes it${member ? " (its k3s Node first)" : ""}; to keep it, remove its tag '${desired.ownershipTag}'`
      }
    ]
  })
  const listed = new Set(desired.nodes.map((n) => n.name))
  const nodes = [...new Set(orphans.map((o) => o.node))].filter((n) => !listed.has(n))
  return { nodes, actions, findings }
}
