import type { NodeState, VmState } from "../SimState.js"
import { cicustomVolumes, readSnippet } from "./CloudInit.js"

/**
 * What a VM's cloud-init drive was generated from, as the guest reads it when it boots: the VM's config at the time
 * and the text of its `cicustom` `user=` snippet (PVE copies the snippet into the ISO).
 */
export interface CloudInitDrive {
  readonly config: ReadonlyMap<string, string>
  readonly userData: string | undefined
}

/**
 * The options qemu-server's `GET …/cloudinit` (API2/Qemu.pm `cloudinit_pending`) walks through: its own
 * `$cloudinitoptions`, which does not have `ipconfigN`.
 */
const CLOUDINIT_OPTIONS = [
  "cicustom",
  "cipassword",
  "citype",
  "ciuser",
  "ciupgrade",
  "nameserver",
  "searchdomain",
  "sshkeys"
]

/**
 * qemu-server's `cloudinit_pending_properties`: the settings whose change on a running VM is recorded in
 * `[special:cloudinit]` (the cloud-init options, `ipconfigN`, `name` and `netN`).
 */
export const isCloudInitProperty = (key: string): boolean =>
  CLOUDINIT_OPTIONS.includes(key) || key === "name" || /^(ipconfig|net)([0-9]|[12][0-9]|3[01])$/.test(key)

/** The VM has a cloud-init drive (`vm-<vmid>-cloudinit` on some drive slot). */
export const hasCloudInitDrive = (vm: VmState): boolean =>
  [...vm.config.entries()].some(
    ([k, v]) => /^(ide|sata|scsi|virtio)\d+$/.test(k) && new RegExp(`vm-${vm.vmid}-cloudinit`).test(v)
  )

const addedOf = (section: Map<string, string>): Set<string> =>
  new Set((section.get("added") ?? "").split(/[,;\s]+/).filter((k) => k !== ""))

/**
 * qemu-server `vmconfig_hotplug_pending`'s `$cloudinit_record_changed`: a setting of a running VM changed from `old`
 * to `value` (undefined: deleted) is recorded against what the drive was generated from: the first change keeps the
 * old value (or marks the key `added`), a change back to that value forgets it.
 */
export const recordCloudInitChange = (
  vm: VmState,
  key: string,
  old: string | undefined,
  value: string | undefined
): void => {
  if (!isCloudInitProperty(key)) return
  const section = vm.cloudinitSection ?? new Map<string, string>()
  vm.cloudinitSection = section
  const recorded = section.get(key)
  const added = addedOf(section)
  section.delete("added")
  if (value !== undefined) {
    if (recorded !== undefined) {
      if (value === recorded) {
        // a value is being reverted to the cloud-init state
        section.delete(key)
        added.delete(key)
      }
    } else if (!added.has(key)) {
      if (old !== undefined) section.set(key, old)
      else added.add(key)
    }
  } else if (old !== undefined) {
    if (recorded === undefined) {
      if (added.has(key)) added.delete(key)
      else section.set(key, old)
    }
  }
  if (added.size > 0) section.set("added", [...added].sort().join(","))
}

/** Cloudinit.pm `has_changes`: something is recorded since the drive was generated. */
const hasChanges = (vm: VmState): boolean => (vm.cloudinitSection?.size ?? 0) > 0

/**
 * Cloudinit.pm `apply_cloudinit_config`: the drive generated from the config as it is (with the `cicustom` snippets
 * read; a missing one fails), and `[special:cloudinit]` dropped when it recorded changes. A VM without a cloud-init
 * drive keeps its state. Returns whether there were changes.
 */
export const generateCloudInitDrive = (node: NodeState, vm: VmState): boolean => {
  if (!hasCloudInitDrive(vm)) return false
  const volumes = cicustomVolumes(vm)
  for (const volid of Object.values(volumes)) readSnippet(node, volid)
  vm.cloudInitDrive = {
    config: new Map(vm.config),
    userData: volumes.user === undefined ? undefined : readSnippet(node, volumes.user)
  }
  const changes = hasChanges(vm)
  if (changes) vm.cloudinitSection = undefined
  return changes
}

/** One entry of `GET …/cloudinit`. */
export interface CloudInitPendingEntry {
  key: string
  value?: string
  pending?: string
  delete?: number
}

/**
 * qemu-server's `GET …/cloudinit` (API2/Qemu.pm `cloudinit_pending`), quirks kept: the keys marked `added` with their
 * new value; each cloud-init option set on the VM with the value the drive was generated from and, when it changed
 * since, the new one (an `ipconfigN` or `netN` changed in place is not listed: they are not among its options); each
 * recorded key no longer set, as a delete. Passwords are masked.
 */
export const cloudInitPending = (vm: VmState): Array<CloudInitPendingEntry> => {
  const conf = new Map(vm.config)
  const ci = new Map(vm.cloudinitSection ?? [])
  if (conf.has("cipassword")) conf.set("cipassword", "**********")
  if (ci.has("cipassword")) ci.set("cipassword", "**********")
  const out: Array<CloudInitPendingEntry> = []
  const added = ci.get("added") ?? ""
  ci.delete("added")
  for (const key of added.split(/[,;\s]+/).filter((k) => k !== "")) {
    const value = conf.get(key)
    out.push(value === undefined ? { key } : { key, pending: value })
  }
  // Perl truthiness: an empty string or "0" counts as not set
  const truthy = (v: string | undefined): v is string => v !== undefined && v !== "" && v !== "0"
  for (const opt of CLOUDINIT_OPTIONS) {
    const value = conf.get(opt)
    if (!truthy(value)) continue
    if (new RegExp(opt).test(added)) continue
    const recorded = ci.get(opt)
    out.push(truthy(recorded) ? { key: opt, value: recorded, pending: value } : { key: opt, value })
  }
  for (const key of ci.keys()) {
    if (truthy(conf.get(key))) continue
    out.push({ key, delete: 1 })
  }
  return out
}
