import type { ClusterNode } from "@homelab/k3s-join"
import type { VmPending } from "@homelab/proxmox-client"
import type { ObservedVm } from "./Observed.js"
import { smbiosUuid } from "./smbiosUuid.js"
import { vmidCandidates } from "./VmidCandidates.js"

/**
 * The VM of ours that is homelab.yaml's `name` under another name (renamed by hand, in the GUI say): no VM is named
 * `name`, but the k3s Node named `name` is that VM (the Node's system UUID is the SMBIOS UUID of its configuration).
 * A VM created for `name` would join as a second machine for that Node, and its join would remove the Node a running
 * VM serves. Undefined when there is no such Node, its system UUID is unknown, or no VM of ours (whose configuration
 * was read) has it: a Node whose machine is gone is stale, and the rejoin removes it.
 */
export const renamedVm = (
  name: string,
  clusterNodes: ReadonlyArray<ClusterNode> | undefined,
  vms: ReadonlyArray<ObservedVm>,
  configs: ReadonlyMap<number, VmPending> | undefined,
  ownershipTag: string
): ObservedVm | undefined => {
  const uuid = clusterNodes?.find((n) => n.name === name)?.systemUUID?.toLowerCase()
  if (uuid === undefined) return undefined
  return vms.find(
    (vm) =>
      vm.name !== name &&
      vm.type === "qemu" &&
      vm.tags.includes(ownershipTag) &&
      smbiosUuid(configs?.get(vm.vmid)) === uuid
  )
}

/** The finding's words for a VM renamed by hand (`renamedVm`): what it is, and how to go on. */
export const renamedVmFinding = (name: string, vm: ObservedVm) => ({
  message: `VM ${vm.vmid} ${vm.name ?? ""} on ${vm.node} is the machine of k3s Node ${name} (its SMBIOS UUID is the Node's system UUID): ${name} renamed by hand? Not creating a second VM for that Node`,
  hint: `rename it back (\`qm set ${vm.vmid} --name ${name}\` on ${vm.node}) and run apply again; or, to replace it, \`homelab apply --prune\` removes VM ${vm.vmid} ${vm.name ?? ""} and the next run creates ${name}`
})

/**
 * The VM of ours that is homelab.yaml's `want.name` under another name, told by its VMID when there is no k3s Node to
 * tell it by: on the node `want.name` is wanted on, a VM of ours under a name homelab.yaml does not list (`listed`),
 * whose VMID is one homelab derives from `want.name` (`want.candidates`) and not one it derives from the VM's own name
 * (homelab gives a VM the first free VMID of the sequence its name derives, so a VM it made under that name would have
 * one of those). Undefined when there is none.
 */
export const renamedByVmid = (
  want: { readonly name: string; readonly node: string; readonly candidates: ReadonlyArray<number> },
  vms: ReadonlyArray<ObservedVm>,
  listed: ReadonlySet<string>,
  ownershipTag: string,
  range: { readonly lower: number; readonly upper: number }
): ObservedVm | undefined =>
  vms.find(
    (vm) =>
      vm.name !== undefined &&
      vm.name !== want.name &&
      vm.name !== `VM ${vm.vmid}` &&
      !listed.has(vm.name) &&
      vm.node === want.node &&
      vm.type === "qemu" &&
      !vm.template &&
      vm.tags.includes(ownershipTag) &&
      want.candidates.includes(vm.vmid) &&
      !vmidCandidates(vm.name, range).includes(vm.vmid)
  )

/** The finding's words for a VM renamed by hand told by its VMID (`renamedByVmid`): what it is, and how to go on. */
export const renamedByVmidFinding = (name: string, vm: ObservedVm) => ({
  message: `VM ${vm.vmid} ${vm.name ?? ""} on ${vm.node} has the VMID homelab derives from ${name}'s name (not one it derives from ${vm.name ?? ""}): ${name} renamed by hand? Not creating a second VM beside it`,
  hint: `rename it back (\`qm set ${vm.vmid} --name ${name}\` on ${vm.node}) and run apply again; or, to replace it, \`homelab apply --prune\` removes VM ${vm.vmid} ${vm.name ?? ""} and the next run creates ${name}`
})
