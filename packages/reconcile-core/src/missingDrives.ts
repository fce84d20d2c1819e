import type { VmPending } from "@homelab/proxmox-client"
import { driveStorage } from "./VmDrift.js"

/** A finding of `missingDriveFindings`: blocked, as the VM is not what homelab made of it and homelab does not guess. */
export interface MissingDrive {
  readonly code: "vm.no-boot-disk" | "vm.boot-order" | "vm.no-cloudinit-drive"
  readonly message: string
  readonly hint: string
}

const driveKey = /^(ide|sata|scsi|virtio)\d+$/
const isCloudInit = (value: string) => /(?:^|:|\/)vm-\d+-cloudinit/.test(value)
/** Cloud-init settings PVE keeps in the config: there whether or not a drive carries them to the guest. */
const cloudInitKey = /^(ciuser|cipassword|sshkeys|nameserver|searchdomain|citype|ipconfig\d+)$/

/**
 * What the next start of a VM of ours would lack of the drives homelab gives it, from its configuration as PVE holds
 * it for that start (current, with what waits for a restart applied): a VM with no disk attached (its boot disk
 * detached: PVE hot-unplugs it and keeps the volume as `unusedN`) cannot boot (`vm.no-boot-disk`); a boot order that
 * lists none of its disks boots it from elsewhere (`vm.boot-order`); without a cloud-init drive the cloud-init
 * settings of homelab.yaml, which drift compares only on a VM that has one, never reach the guest
 * (`vm.no-cloudinit-drive`). Each is said only on evidence of a change (an `unusedN`, a boot order naming a disk,
 * cloud-init settings in the config): a VM made without them (by hand, then adopted) is left as it is.
 */
export const missingDriveFindings = (
  config: VmPending,
  vm: { readonly vmid: number; readonly name: string; readonly node: string; readonly storage?: string | undefined }
): ReadonlyArray<MissingDrive> => {
  const effective: Record<string, string> = { ...config.current, ...config.pending }
  for (const key of config.deletes) delete effective[key]
  const { vmid, name, node } = vm
  const disks = Object.keys(effective)
    .filter((k) => driveKey.test(k))
    .filter((k) => {
      const value = effective[k] ?? ""
      return !/(?:^|,)media=cdrom(?:,|$)/.test(value) && !isCloudInit(value) && !/^none(?:,|$)/.test(value)
    })
    .sort()
  const boot = effective.boot
  const order = boot?.startsWith("order=")
    ? boot
        .slice("order=".length)
        .split(";")
        .filter((k) => k !== "")
    : undefined
  const findings: Array<MissingDrive> = []
  if (disks.length === 0) {
    const unused = Object.entries(effective)
      .filter(([k]) => /^unused\d+$/.test(k))
      .sort(([a], [b]) => Number(a.slice(6)) - Number(b.slice(6)))
    const own = unused.find(([, v]) => v.includes(`vm-${vmid}-disk-`)) ?? unused[0]
    const named = order?.find((k) => driveKey.test(k))
    if (own !== undefined || named !== undefined) {
      const key = named ?? "scsi0"
      findings.push(
        own === undefined
          ? {
              code: "vm.no-boot-disk",
              message: `VM ${vmid} ${name} has no disk attached (its boot order names ${key}), so the VM cannot boot again`,
              hint: `attach its disk as ${key} (\`qm set ${vmid} --${key} VOLUME\` on ${node}), or rebuild it: \`homelab reprovision ${name}\``
            }
          : {
              code: "vm.no-boot-disk",
              message: `VM ${vmid} ${name} has no disk attached: ${key} was detached (its volume ${own[1]} is ${own[0]}), so the VM cannot boot again`,
              hint: `attach it again: \`qm set ${vmid} --${key} ${own[1]}\` on ${node}, then restart the VM`
            }
      )
    }
  } else if (order !== undefined && !order.some((k) => disks.includes(k))) {
    const held = config.pending.boot !== undefined ? ", held by PVE until the VM restarts" : ""
    findings.push({
      code: "vm.boot-order",
      message: `VM ${vmid} ${name} would not boot from its disk: its boot order (${boot}${held}) lists none of its disks`,
      hint: `\`qm set ${vmid} --boot order=${disks.includes("scsi0") ? "scsi0" : disks[0]}\` on ${node}`
    })
  }
  const hasCloudInitDrive = Object.entries(effective).some(([k, v]) => driveKey.test(k) && isCloudInit(v))
  if (!hasCloudInitDrive && Object.keys(effective).some((k) => cloudInitKey.test(k))) {
    const slot = ["ide2", "ide0", "ide1", "ide3"].find((k) => effective[k] === undefined) ?? "ide2"
    const storage = driveStorage(effective[disks.includes("scsi0") ? "scsi0" : (disks[0] ?? "")]) ?? vm.storage
    findings.push({
      code: "vm.no-cloudinit-drive",
      message: `VM ${vmid} ${name} has no cloud-init drive: the cloud-init settings of homelab.yaml (user, SSH keys, ipconfig0, …) never reach its guest`,
      hint: `add it again: \`qm set ${vmid} --${slot} ${storage ?? "STORAGE"}:cloudinit\` on ${node}, then restart the VM from PVE`
    })
  }
  return findings
}

/**
 * The drives of a running VM of ours (disks and its cloud-init drive) on a storage PVE does not list as usable for its
 * node (`storages`, from `/cluster/resources`, which leaves a disabled storage out; or listed but not active): the VM
 * runs on, but its next start would fail (`storage 'x' is disabled`), so it is blocked (`vm.storage-unavailable`),
 * naming the storage and how to bring it back. A drive given as a path (not a storage volume) is not looked at.
 */
export const unavailableStorageFindings = (
  config: VmPending,
  vm: { readonly vmid: number; readonly name: string; readonly node: string },
  storages: ReadonlyArray<{ readonly storage: string; readonly active: boolean }>
): ReadonlyArray<{ readonly code: "vm.storage-unavailable"; readonly message: string; readonly hint: string }> => {
  const byStorage = new Map<string, Array<string>>()
  for (const [key, value] of Object.entries(config.current).sort(([a], [b]) => a.localeCompare(b))) {
    if (!driveKey.test(key) || /^none(?:,|$)/.test(value)) continue
    if (/(?:^|,)media=cdrom(?:,|$)/.test(value) && !isCloudInit(value)) continue
    const storage = driveStorage(value)
    if (storage === undefined) continue
    const listed = storages.find((s) => s.storage === storage)
    if (listed?.active === true) continue
    byStorage.set(storage, [...(byStorage.get(storage) ?? []), key])
  }
  return [...byStorage].map(([storage, keys]) => {
    const listed = storages.some((s) => s.storage === storage)
    return {
      code: "vm.storage-unavailable",
      message: `VM ${vm.vmid} ${vm.name} has ${keys.join(", ")} on storage '${storage}', which ${listed ? "is not active" : "PVE does not list (disabled, removed, or not visible to the API token)"} on node ${vm.node}: the VM runs, but would not start again`,
      hint: listed
        ? `bring storage '${storage}' online on node ${vm.node} (check \`pvesm status\` there)`
        : `enable it (Datacenter → Storage → Edit → Enable, or \`pvesm set ${storage} --disable 0\`), or add it for node ${vm.node}`
    }
  })
}
