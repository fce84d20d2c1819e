import type { DesiredNode, DesiredVm } from "./Desired.js"

/**
 * How homelab.yaml's cores for a VM were derived when it pins none: the node's logical CPUs × `cpuRatio` are the
 * VM's vCPUs, shared over its sockets (`vm.sockets`; PVE's 1 when homelab.yaml sets none), rounded down per socket,
 * at least 1 core. So sockets × cores stays within the share cpuRatio gives, and within the node.
 */
export interface DerivedCores {
  readonly cores: number
  /** `node pve's 8 logical CPUs × cpuRatio 0.5 = 4 vCPUs over vm.sockets 2 = 2 cores per socket` */
  readonly text: string
}

/** The cores a VM gets: `vm.cores` when homelab.yaml pins them, else derived from the node (`derivedCores`). */
export const vmCores = (node: DesiredNode, cpus: number, vm: DesiredVm): number =>
  vm.cores ?? derivedCores(node, cpus, vm).cores

/**
 * The cores derived from the node's logical CPUs × cpuRatio over the VM's sockets, and how (for plan texts).
 * `ownSockets`: `vm.sockets` is the count the VM itself has (homelab.yaml sets none), so the text says so.
 */
export const derivedCores = (node: DesiredNode, cpus: number, vm: DesiredVm, ownSockets = false): DerivedCores => {
  const sockets = vm.sockets ?? 1
  // the epsilon absorbs binary floating-point error (0.29 × 100 = 28.999999999999996) before flooring
  const vcpus = cpus * node.cpuRatio
  const cores = Math.max(1, Math.floor(vcpus / sockets + 1e-9))
  const share = `node ${node.name}'s ${cpus} logical CPUs × cpuRatio ${node.cpuRatio}`
  const shown = `${Number(vcpus.toFixed(2))}`
  const coresText = `${cores} ${cores === 1 ? "core" : "cores"}`
  return {
    cores,
    text:
      vm.sockets === undefined
        ? `${share} = ${coresText}`
        : `${share} = ${shown} ${shown === "1" ? "vCPU" : "vCPUs"} over ${ownSockets ? `the VM's own ${sockets} sockets (vm.sockets not set)` : `vm.sockets ${sockets}`} = ${coresText} per socket`
  }
}
