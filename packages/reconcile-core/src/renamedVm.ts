import type { ClusterNode } from "@homelab/k3s-join"
import type { VmPending } from "@homelab/proxmox-client"
import type { ObservedVm } from "./Observed.js"
import { smbiosUuid } from "./smbiosUuid.js"

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
