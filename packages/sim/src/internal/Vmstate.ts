import { PveError } from "../PveError.js"
import { DISK_KEY, isCdrom, type NodeState, parseDrive, type SimState, type VmState } from "../SimState.js"
import { addVolume, ensureSpace, isFileStorage, parseVolid } from "./Volumes.js"

/** What `qm suspend --todisk` records besides `vmstate` (QemuConfig `__snapshot_save_vmstate`), dropped at the resume. */
export const RUNNING_KEYS = ["runningmachine", "runningcpu", "running-nets-host-mtu"] as const

/** The machine and `-cpu` of a running simulated VM (the qemu list's `running-machine`; PVE's default CPU type). */
const RUNNING_MACHINE = "pc-i440fx-8.1+pve0"
const RUNNING_CPU = "qemu64,+aes,enforce,+kvm_pv_eoi,+kvm_pv_unhalt,+pni,+popcnt,+sse4.1,+sse4.2,+ssse3"

/**
 * QemuConfig `find_vmstate_storage`: `vmstatestorage` if set, else a shared storage one of the VM's disks is on, else a
 * local one (file-based storages preferred in both), else `local`.
 */
export const findVmstateStorage = (node: NodeState, vm: VmState): string => {
  const set = vm.config.get("vmstatestorage")
  if (set !== undefined && set !== "") return set
  let shared: string | undefined
  let local: string | undefined
  for (const [k, v] of vm.config) {
    if (!DISK_KEY.test(k)) continue
    const d = parseDrive(v)
    if (isCdrom(d)) continue
    const sid = parseVolid(d.file)?.storage
    const s = sid === undefined ? undefined : node.storages.get(sid)
    if (s === undefined) continue
    if (s.shared) {
      if (shared === undefined || isFileStorage(s)) shared = s.id
    } else if (local === undefined || isFileStorage(s)) local = s.id
  }
  return shared ?? local ?? "local"
}

/**
 * The first half of RunState `vm_suspend` with `includestate`, under the config lock: lock `suspending`, the state
 * volume `vm-<vmid>-state-suspend-<date>` allocated (twice the memory plus 500 MiB), `vmstate`, `runningmachine` and
 * `runningcpu` written. Returns the volid.
 */
export const allocateVmstate = (
  node: NodeState,
  vm: VmState,
  memoryMiB: number,
  storage: string,
  nowMs: number
): string => {
  const s = node.storages.get(storage)
  if (s === undefined) throw new PveError(500, `storage '${storage}' does not exist`)
  vm.config.set("lock", "suspending")
  const name = `vm-${vm.vmid}-state-suspend-${new Date(nowMs).toISOString().slice(0, 10)}`
  const volname = isFileStorage(s) ? `${vm.vmid}/${name}.raw` : name
  const size = (memoryMiB * 2 + 500) * 1024 * 1024
  ensureSpace(s, size, false, volname)
  addVolume(s, { volname, content: "images", format: "raw", size, ctime: Math.floor(nowMs / 1000), vmid: vm.vmid })
  const volid = `${s.id}:${volname}`
  vm.config.set("vmstate", volid)
  vm.config.set("runningmachine", RUNNING_MACHINE)
  vm.config.set("runningcpu", RUNNING_CPU)
  return volid
}

/** The end of a resume (QemuServer `vm_start_nolock`): the state volume freed, `lock`, `vmstate` and the running keys dropped. */
export const removeVmstate = (state: SimState, vm: VmState): void => {
  const volid = vm.config.get("vmstate")
  const vid = volid === undefined ? undefined : parseVolid(volid)
  if (vid !== undefined) state.getNode(vm.node)?.storages.get(vid.storage)?.volumes.delete(vid.volname)
  for (const k of ["lock", "vmstate", ...RUNNING_KEYS]) vm.config.delete(k)
}

/**
 * Whether a start of the VM loads the guest's saved RAM: it was suspended to disk (`hibernated`) and its config still
 * names the state (`vmstate`). QemuServer `config_to_command` adds `-loadstate` for `vmstate`; without it the guest
 * boots afresh.
 */
export const loadsState = (vm: VmState): boolean => vm.hibernated !== undefined && vm.config.has("vmstate")
