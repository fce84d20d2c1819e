import { PveError } from "../PveError.js"
import type { NodeState, StorageState, Volume } from "../SimState.js"

const DIR_LAYOUT: Array<[string, string]> = [
  ["template/iso", "iso"],
  ["template/cache", "vztmpl"],
  ["dump", "backup"],
  ["snippets", "snippets"],
  ["import", "import"],
  ["images", "images"]
]

export const isFileStorage = (s: StorageState): boolean => s.type === "dir" || s.type === "nfs"

export const storagePath = (s: StorageState): string =>
  s.path ?? (s.id === "local" ? "/var/lib/vz" : `/mnt/pve/${s.id}`)

/** vtype of a volname on a storage (`iso/x.img` → iso, `vm-100-disk-0` → images). */
export const vtypeOf = (s: StorageState, volname: string): string => {
  if (!isFileStorage(s)) return /^vm-\d+-cloudinit/.test(volname) ? "images" : "images"
  const first = volname.split("/")[0] ?? ""
  if (/^\d+$/.test(first)) return "images"
  return first === "vztmpl" ? "vztmpl" : first
}

/** Absolute path of a volume on a file storage. */
export const volumePath = (s: StorageState, volname: string): string => {
  const base = storagePath(s)
  const [first, ...rest] = volname.split("/")
  const tail = rest.join("/")
  switch (first) {
    case "iso":
      return `${base}/template/iso/${tail}`
    case "vztmpl":
      return `${base}/template/cache/${tail}`
    case "backup":
      return `${base}/dump/${tail}`
    case "snippets":
      return `${base}/snippets/${tail}`
    case "import":
      return `${base}/import/${tail}`
    default:
      return isFileStorage(s) ? `${base}/images/${volname}` : `/dev/pve/${volname}`
  }
}

/** Map an absolute path on a node to a file-storage volume. */
export const pathToVolume = (
  node: NodeState,
  path: string
): { storage: StorageState; volname: string; vtype: string } | undefined => {
  for (const s of node.storages.values()) {
    if (!isFileStorage(s)) continue
    const base = `${storagePath(s)}/`
    if (!path.startsWith(base)) continue
    const rel = path.slice(base.length)
    for (const [dir, vtype] of DIR_LAYOUT) {
      if (rel.startsWith(`${dir}/`)) {
        const file = rel.slice(dir.length + 1)
        if (file === "") return undefined
        const volname = vtype === "images" ? file : `${vtype}/${file}`
        return { storage: s, volname, vtype }
      }
    }
  }
  return undefined
}

export const parseVolid = (volid: string): { storage: string; volname: string } | undefined => {
  const m = /^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$/i.exec(volid)
  return m ? { storage: m[1] ?? "", volname: m[2] ?? "" } : undefined
}

export const formatOf = (volname: string, vtype: string): string => {
  if (vtype === "iso") return "iso"
  if (vtype === "snippets") return "snippet"
  if (vtype === "vztmpl") {
    const m = /\.tar(?:\.(gz|xz|zst|bz2))?$/.exec(volname)
    return m?.[1] ? `t${m[1] === "bz2" ? "bz2" : m[1]}` : "tar"
  }
  const m = /\.(qcow2|raw|vmdk|ova|ovf)$/.exec(volname)
  if (m) return m[1] ?? "raw"
  return "raw"
}

/** Free space check used by allocations. */
export const ensureSpace = (s: StorageState, bytes: number, full: boolean, volname: string): void => {
  let used = 0
  for (const v of s.volumes.values()) used += v.size
  if (full || used + bytes > s.capacity) {
    if (s.type === "lvmthin" || s.type === "lvm")
      throw new PveError(
        500,
        `lvcreate 'pve/${volname}' error:   Volume group "pve" has insufficient free space (${Math.max(0, Math.floor((s.capacity - used) / 4194304))} extents): ${Math.ceil(bytes / 4194304)} required.`
      )
    throw new PveError(
      500,
      `error during cfs-locked 'storage-${s.id}' operation: unable to create image: No space left on device`
    )
  }
}

/**
 * pve-storage's `volume_resize` for the storage's type, as far as space goes. LVM and LVM-thin both run
 * LVMPlugin's `lvextend -L <size> <path>` (errmsg "error resizing volume '<path>'", PVE::Tools::run_command putting the
 * last stderr line after it): a thick LV takes the extents from the volume group, so too little free space fails
 * (`Insufficient free space: N extents needed, but only M available`); a thin LV's size is virtual, so it grows
 * whatever the pool holds (LVM only warns when the thin volumes' sizes add up to more than the pool). A file volume
 * (dir, NFS: raw or qcow2) grows sparse — QEMU's `block_resize` for a running VM, `qemu-img resize` (preallocation
 * `off`/`metadata` by default) for a stopped one — so it needs no free space. ZFS (a zvol's reserved `volsize`)
 * allocates as before. Returns the lines lvextend prints on stderr that PVE logs (the warning).
 */
export const ensureResizeSpace = (s: StorageState, volname: string, from: number, to: number, full: boolean) => {
  const extent = 4194304
  if (s.type === "lvmthin") {
    let sum = 0
    for (const v of s.volumes.values()) sum += v.volname === volname ? to : v.size
    return sum > s.capacity
      ? [
          `  WARNING: Sum of all thin volume sizes (${lvmDisplaySize(sum)}) exceeds the size of thin pool pve/data (${lvmDisplaySize(s.capacity)}).`
        ]
      : []
  }
  if (s.type === "lvm") {
    let used = 0
    for (const v of s.volumes.values()) used += v.size
    const needed = Math.ceil(to / extent) - Math.ceil(from / extent)
    const available = full ? 0 : Math.max(0, Math.floor((s.capacity - used) / extent))
    if (needed > available)
      throw new PveError(
        500,
        `error resizing volume '${volumePath(s, volname)}':   Insufficient free space: ${needed} extents needed, but only ${available} available`
      )
    return []
  }
  if (isFileStorage(s)) return []
  ensureSpace(s, to - from, full, volname)
  return []
}

/** LVM's display size: `1.00 TiB`, two decimals, binary units. */
const lvmDisplaySize = (bytes: number): string => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
  let v = bytes
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(2)} ${units[i]}`
}

export const addVolume = (s: StorageState, v: Volume): void => {
  s.volumes.set(v.volname, v)
}

/** Next free `vm-<id>-disk-<n>` name on a storage. */
export const nextDiskName = (s: StorageState, vmid: number, format: string): string => {
  for (let n = 0; ; n++) {
    const name = isFileStorage(s) ? `${vmid}/vm-${vmid}-disk-${n}.${format}` : `vm-${vmid}-disk-${n}`
    if (!s.volumes.has(name)) return name
  }
}

export const cloudinitName = (s: StorageState, vmid: number): string =>
  isFileStorage(s) ? `${vmid}/vm-${vmid}-cloudinit.qcow2` : `vm-${vmid}-cloudinit`

/**
 * pve-storage's normalize_content_filename (upload, download-url): a trailing newline dropped, everything up to the
 * last `/` or `\` stripped, each character outside `[a-zA-Z0-9_.-]` replaced by `_`.
 */
export const normaliseFilename = (name: string): string =>
  name
    .replace(/\n$/, "")
    .replace(/^.*[/\\]/, "")
    .replace(/[^a-zA-Z0-9_.-]/g, "_")
