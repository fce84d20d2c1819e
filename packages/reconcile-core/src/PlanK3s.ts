import { type ClusterNode, evaluateMembership } from "@homelab/k3s-join"
import type { Finding, JoinAction } from "./Action.js"

/** Tag a VM carries from its recreation until it has rejoined k3s: its stale Node and password secret may go. */
export const RejoinTag = "homelab-rejoin"

/** A VM as phase 3 sees it: where it runs, its IP (from the guest agent) and whether we rebuilt it. */
export interface K3sCandidate {
  readonly name: string
  readonly node: string
  readonly vmid: number
  readonly role: "server" | "agent"
  /** The guest agent's IPv4 for net0; undefined when the VM is not running or the agent has not answered. */
  readonly ip: string | undefined
  /** We rebuilt this VM (it carries `homelab-rejoin`, or was recreated in this run). */
  readonly rebuilt: boolean
}

export interface K3sPlan {
  readonly actions: ReadonlyArray<JoinAction>
  readonly findings: ReadonlyArray<Finding>
}

/**
 * Phase 3, pure: which VMs must join (or rejoin) the k3s cluster, from the cluster's Nodes and the VMs' IPs.
 * Membership checks the name, the role and the IP, not the name alone. A Node that does not match its VM is replaced
 * only when we rebuilt that VM ourselves; otherwise it is reported. The k3s server the config points at is never a
 * candidate.
 */
export const planK3s = (
  candidates: ReadonlyArray<K3sCandidate>,
  clusterNodes: ReadonlyArray<ClusterNode>,
  options: { readonly serverHost: string }
): K3sPlan => {
  const actions: Array<JoinAction> = []
  const findings: Array<Finding> = []
  for (const vm of candidates) {
    if (vm.ip === undefined) {
      findings.push({
        code: "k3s.no-ip",
        severity: "warning",
        node: vm.node,
        vm: vm.name,
        vmid: vm.vmid,
        message: `VM ${vm.vmid} ${vm.name} has no IP from its guest agent yet; joining it next run`,
        hint: "check that the VM runs and qemu-guest-agent is installed in the image"
      })
      continue
    }
    if (vm.ip === options.serverHost) continue
    const membership = evaluateMembership(clusterNodes, { name: vm.name, role: vm.role, ip: vm.ip })
    const join = (rejoin: boolean, reason: string): JoinAction => ({
      _tag: "JoinK3s",
      node: vm.node,
      vm: vm.name,
      vmid: vm.vmid,
      ip: vm.ip as string,
      role: vm.role,
      rejoin,
      reason
    })
    switch (membership._tag) {
      case "Member":
        if (vm.rebuilt) actions.push(join(false, `${vm.name} is a Ready ${vm.role} again; clearing its rebuild mark`))
        break
      case "Absent":
        actions.push(
          join(
            vm.rebuilt,
            vm.rebuilt ? `${vm.name} was rebuilt and is not in the cluster` : `${vm.name} is not in the cluster`
          )
        )
        break
      case "NotReady":
        if (vm.rebuilt) actions.push(join(true, `${vm.name} was rebuilt; its Node is not Ready`))
        else
          findings.push({
            code: "k3s.not-ready",
            severity: "warning",
            node: vm.node,
            vm: vm.name,
            vmid: vm.vmid,
            message: `k3s Node ${vm.name} is not Ready (${membership.node.ready})`,
            hint: `look at \`journalctl -u k3s-agent\` on ${vm.ip}; \`homelab reprovision ${vm.node}\` rebuilds it`
          })
        break
      case "Mismatch": {
        const what = membership.mismatches.map((m) => `${m.field} ${m.actual} (expected ${m.expected})`).join(", ")
        const roleWrong = membership.mismatches.some((m) => m.field === "role")
        if (vm.rebuilt && !roleWrong) {
          actions.push(join(true, `${vm.name} was rebuilt; the Node left behind has ${what}`))
        } else {
          findings.push({
            code: roleWrong ? "k3s.role-mismatch" : "k3s.identity-mismatch",
            severity: "warning",
            node: vm.node,
            vm: vm.name,
            vmid: vm.vmid,
            message: `k3s Node ${vm.name} does not match VM ${vm.vmid}: ${what}; not touching it`,
            hint: roleWrong
              ? "change the VM's role in homelab.yaml, or rebuild it with `homelab reprovision`"
              : `if VM ${vm.vmid} was rebuilt by hand, \`homelab reprovision ${vm.node}\` rebuilds and rejoins it`
          })
        }
        break
      }
    }
  }
  // Servers first and one at a time (etcd allows one learner); agents after, in parallel (the executor's job).
  actions.sort((a, b) => (a.role === b.role ? 0 : a.role === "server" ? -1 : 1))
  return { actions, findings }
}
