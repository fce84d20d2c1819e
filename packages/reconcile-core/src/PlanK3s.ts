import { type ClusterNode, evaluateMembership } from "@homelab/k3s-join"
import type { Finding } from "./Action.js"

export { RejoinTag } from "./Marks.js"

/** A VM of ours that exists, runs and needs no VM action, as phase 3 sees it. */
export interface K3sCandidate {
  readonly name: string
  readonly node: string
  readonly vmid: number
  readonly role: "server" | "agent"
  /** The guest agent's IPv4 for net0; undefined when the agent has not reported one. */
  readonly ip: string | undefined
  /** We rebuilt this VM (it carries `homelab-rejoin`). */
  readonly rebuilt: boolean
  /** The VM's SMBIOS UUID, when its configuration was read: its Node must report it as its system UUID. */
  readonly systemUUID?: string | undefined
  /** Its config turns the guest agent off (`agentOff`): no IP can come, whatever the guest does. */
  readonly agentOff?: { readonly agent: string } | undefined
  /**
   * Its k3s server runs on after the cluster removed its etcd member, waiting for a restart (k3s's journal line, as
   * observe read it: `K3sFacts` `removedMembers`): its join restarts k3s.
   */
  readonly removedMember?: string | undefined
}

/** How a k3s finding says the VM's config turns its guest agent off (`vm.agent-off`'s note is not repeated beside it). */
export const AgentOffWords = "runs with its guest agent off"

/**
 * Why a running VM has no IP, for a finding: its config turns the agent off (then what to set), or the agent did not
 * report one (then what to check in the guest). `what` ends the sentence: "so it cannot join k3s".
 */
export const noIp = (
  vm: Pick<K3sCandidate, "vmid" | "name" | "node" | "agentOff">,
  what: string
): { readonly message: string; readonly hint: string } =>
  vm.agentOff !== undefined
    ? {
        message: `VM ${vm.vmid} ${vm.name} ${AgentOffWords} (agent: ${vm.agentOff.agent}), so its IP cannot be read and it ${what}`,
        hint: `homelab reads each VM's IP from the QEMU guest agent: \`qm set ${vm.vmid} --agent enabled=1\` on ${vm.node}, then restart the VM`
      }
    : {
        message: `VM ${vm.vmid} ${vm.name} runs but its guest agent reports no IP, so it ${what}`,
        hint: "check that qemu-guest-agent is installed and running in the image"
      }

/**
 * What phase 3 does for one existing VM: nothing (a Ready member: the plan compares its version with the target and
 * may roll an upgrade out), a join (with its reason), or a finding.
 */
export type K3sStep =
  | { readonly _tag: "Member"; readonly node: ClusterNode }
  | { readonly _tag: "Join"; readonly rejoin: boolean; readonly reason: string }
  | { readonly _tag: "Finding"; readonly finding: Finding }

/**
 * Phase 3 for one VM of ours that runs and needs no VM action, pure: from the cluster's Nodes, is it a Ready member
 * with its name, role and IP? (Its version is the rollout's business: see `planUpgrades`.) A Node that does not match
 * its VM is replaced only when we rebuilt that VM ourselves; otherwise it is reported. A NotReady Node of a matching VM gets `ensureMember`, which
 * starts k3s if it is stopped and waits until the Node is Ready.
 */
export const planMembership = (vm: K3sCandidate, clusterNodes: ReadonlyArray<ClusterNode>): K3sStep => {
  const finding = (code: string, message: string, hint: string): K3sStep => ({
    _tag: "Finding",
    finding: { code, effect: "blocked", layer: "k3s", node: vm.node, vm: vm.name, vmid: vm.vmid, message, hint }
  })
  const membership = evaluateMembership(clusterNodes, {
    name: vm.name,
    role: vm.role,
    ip: vm.ip,
    systemUUID: vm.systemUUID
  })
  switch (membership._tag) {
    case "Member": {
      if (vm.rebuilt)
        return {
          _tag: "Join",
          rejoin: false,
          reason: `${vm.name} is a Ready ${vm.role} again; clearing its rebuild mark`
        }
      return { _tag: "Member", node: membership.node }
    }
    case "Absent":
      if (vm.ip === undefined) {
        const why = noIp(vm, "cannot join k3s")
        return finding("k3s.no-ip", why.message, why.hint)
      }
      return {
        _tag: "Join",
        rejoin: vm.rebuilt,
        reason: vm.rebuilt
          ? `${vm.name} was rebuilt and is not in the cluster`
          : vm.removedMember !== undefined && vm.role === "server"
            ? `${vm.name} is not in the cluster: the cluster removed its etcd member (its Node was deleted), and k3s there runs on without etcd until it is restarted; apply restarts k3s on ${vm.name}, which joins again as a new member`
            : `${vm.name} is not in the cluster`
      }
    case "NotReady":
      if (vm.ip === undefined) {
        return finding(
          "k3s.not-ready",
          vm.agentOff !== undefined
            ? `k3s Node ${vm.name} is not Ready (${membership.node.ready}) and VM ${vm.vmid} ${AgentOffWords} (agent: ${vm.agentOff.agent}), so its IP cannot be read`
            : `k3s Node ${vm.name} is not Ready (${membership.node.ready}) and VM ${vm.vmid} reports no IP`,
          vm.agentOff !== undefined
            ? noIp(vm, "").hint
            : `check that qemu-guest-agent runs in the VM; \`homelab reprovision ${vm.name}\` rebuilds it`
        )
      }
      return {
        _tag: "Join",
        rejoin: vm.rebuilt,
        reason: vm.rebuilt
          ? `${vm.name} was rebuilt; its Node is not Ready`
          : `k3s Node ${vm.name} is not Ready (${membership.node.ready}): start k3s and wait for Ready`
      }
    case "Mismatch": {
      const what = membership.mismatches.map((m) => `${m.field} ${m.actual} (expected ${m.expected})`).join(", ")
      const roleWrong = membership.mismatches.some((m) => m.field === "role")
      if (vm.rebuilt && !roleWrong && vm.ip !== undefined) {
        return { _tag: "Join", rejoin: true, reason: `${vm.name} was rebuilt; the Node left behind has ${what}` }
      }
      return finding(
        roleWrong ? "k3s.role-mismatch" : "k3s.identity-mismatch",
        `k3s Node ${vm.name} does not match VM ${vm.vmid}: ${what}; not touching it`,
        roleWrong
          ? `change the VM's role in homelab.yaml, or rebuild it with \`homelab reprovision ${vm.name}\``
          : `if VM ${vm.vmid} was rebuilt by hand, \`homelab reprovision ${vm.name}\` rebuilds and rejoins it`
      )
    }
  }
}
