import type { AuthUser } from "../Auth.js"
import { volumeResource } from "../Operations.js"
import { PveError } from "../PveError.js"
import { addressListError } from "../PveSchema.js"
import {
  agentEnabled,
  DISK_KEY,
  isCdrom,
  NET_KEY,
  type NodeState,
  parseDrive,
  parseNet,
  renderDrive,
  type VmState
} from "../SimState.js"
import type { Task, TaskContext } from "../Tasks.js"
import { generateCloudInitDrive, hasCloudInitDrive, recordCloudInitChange } from "./CloudInitDrive.js"
import type { SimContext } from "./Context.js"
import { cpuTypeError } from "./CpuModels.js"
import {
  arr,
  bool,
  dnsName,
  flag,
  int,
  normaliseTags,
  one,
  type ParamSpec,
  type Params,
  pveNode,
  pveVmid,
  storageId,
  str,
  tagList,
  urlencoded
} from "./Params.js"
import { humanBytes, parseDiskSize, parsePropertyString, renderSize, toRecord } from "./PropertyString.js"
import { qemuFormats } from "./QemuFormats.js"
import { allocateVmstate, findVmstateStorage, loadsState, removeVmstate } from "./Vmstate.js"
import {
  addVolume,
  cloudinitName,
  ensureResizeSpace,
  ensureSpace,
  isFileStorage,
  nextDiskName,
  parseVolid,
  pathToVolume,
  vtypeOf
} from "./Volumes.js"

const STORAGE_LINE = 585

/** Static VM config keys (besides numbered devices) of a PVE major version. */
const vmKeys = (f: ReturnType<typeof qemuFormats>): Record<string, ParamSpec> => ({
  name: str({ format: dnsName }),
  cores: int({ minimum: 1 }),
  sockets: int({ minimum: 1 }),
  vcpus: int({ minimum: 1 }),
  memory: str({ propertyString: f.memory }),
  balloon: int({ minimum: 0 }),
  shares: int({ minimum: 0, maximum: 50000 }),
  cpu: str({ propertyString: f.cpu, formatName: "pve-vm-cpu-conf", format: cpuTypeError }),
  cpulimit: { type: "number", optional: true, minimum: 0, maximum: 128 },
  cpuunits: int({ minimum: 1, maximum: 262144 }),
  ostype: str({
    enum: ["other", "wxp", "w2k", "w2k3", "w2k8", "wvista", "win7", "win8", "win10", "win11", "l24", "l26", "solaris"]
  }),
  scsihw: str({ enum: ["lsi", "lsi53c810", "virtio-scsi-pci", "virtio-scsi-single", "megasas", "pvscsi"] }),
  boot: str({ propertyString: f.boot, formatName: "pve-qm-boot" }),
  bootdisk: str({ pattern: /^(ide|sata|scsi|virtio)\d+$/, formatName: "pve-qm-bootdisk" }),
  agent: str({ propertyString: f.agent }),
  vga: str({ propertyString: f.vga }),
  bios: str({ enum: ["seabios", "ovmf"] }),
  machine: str(),
  ciuser: str(),
  cipassword: str(),
  sshkeys: str({ format: urlencoded }),
  nameserver: str({ format: addressListError }),
  searchdomain: str(),
  citype: str({ enum: ["configdrive2", "nocloud", "opennebula"] }),
  cicustom: str({ propertyString: f.cicustom, formatName: "pve-qm-cicustom" }),
  ciupgrade: bool(),
  tags: str({ format: tagList }),
  onboot: bool(),
  protection: bool(),
  template: bool(),
  numa: bool(),
  tablet: bool(),
  acpi: bool(),
  kvm: bool(),
  localtime: bool(),
  freeze: bool(),
  reboot: bool(),
  description: str({ maxLength: 8192 }),
  startup: str(),
  hotplug: str(),
  args: str(),
  hookscript: str({
    format: (v) => (/^[a-z][a-z0-9\-_.]*[a-z0-9]:.+$/i.test(v) ? undefined : `unable to parse volume ID '${v}'\n`)
  }),
  lock: str({
    enum: ["backup", "clone", "create", "migrate", "rollback", "snapshot", "snapshot-delete", "suspending", "suspended"]
  }),
  smbios1: str(),
  vmgenid: str({ pattern: /^(?:[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}|[01])$/ }),
  meta: str(),
  keyboard: str({
    enum: ["de", "de-ch", "da", "en-gb", "en-us", "es", "fi", "fr", "fr-be", "fr-ca", "fr-ch", "hu", "is", "it"].concat(
      ["ja", "lt", "mk", "nl", "no", "pl", "pt", "pt-br", "sv", "sl", "tr"]
    )
  }),
  affinity: str(),
  watchdog: str(),
  rng0: str(),
  vmstatestorage: str({ format: storageId }),
  vmstate: str({
    format: (v) => (/^[a-z][a-z0-9\-_.]*[a-z0-9]:.+$/i.test(v) ? undefined : `unable to parse volume ID '${v}'\n`)
  }),
  migrate_downtime: { type: "number", optional: true, minimum: 0 },
  migrate_speed: int({ minimum: 0 })
})

const KEYS = { 8: vmKeys(qemuFormats(false)), 9: vmKeys(qemuFormats(true)) }
const FORMATS = { 8: qemuFormats(false), 9: qemuFormats(true) }

/** The spec of a VM config key (`cores`, `net3`, `scsi12`) on a PVE major version, undefined if not one. */
export const vmConfigKeySpec = (k: string, nine = true): ParamSpec | undefined => {
  const keys = KEYS[nine ? 9 : 8]
  const f = FORMATS[nine ? 9 : 8]
  if (keys[k] !== undefined) return keys[k]
  if (DISK_KEY.test(k)) {
    const bus = /^(scsi|virtio|sata|ide)\d+$/.exec(k)?.[1] as "scsi" | "virtio" | "sata" | "ide" | undefined
    return str({ propertyString: bus === undefined ? f[k as "efidisk0" | "tpmstate0"] : f[bus] })
  }
  if (NET_KEY.test(k)) return str({ propertyString: f.net })
  if (/^ipconfig([0-9]|[12][0-9]|3[01])$/.test(k))
    return str({ propertyString: f.ipconfig, formatName: "pve-qm-ipconfig" })
  if (/^unused(\d|[1-9]\d|1\d\d|2[0-4]\d|25[0-5])$/.test(k)) return str({ propertyString: f.unused })
  if (/^serial[0-3]$/.test(k)) return str({ pattern: /^(\/dev\/.+|socket)$/ })
  if (/^(hostpci\d+|usb\d+|parallel[0-2])$/.test(k)) return str()
  return undefined
}

export const CREATE_SCHEMA: Record<string, ParamSpec> = {
  node: pveNode,
  vmid: pveVmid,
  start: bool(),
  storage: str({ format: storageId }),
  pool: str({ format: (v) => (/^[A-Za-z0-9_\-/]+$/.test(v) ? undefined : `invalid pool ID '${v}'\n`) }),
  archive: str({ maxLength: 255 }),
  force: bool(),
  unique: bool(),
  "live-restore": bool(),
  bwlimit: int({ minimum: 0 }),
  "ha-managed": bool(),
  "import-working-storage": str({ format: storageId })
}

export const CONFIG_SCHEMA: Record<string, ParamSpec> = {
  node: pveNode,
  vmid: pveVmid,
  delete: str(),
  revert: str(),
  force: bool({ requires: "delete" }),
  digest: str({ maxLength: 40 }),
  skiplock: bool()
}

export const randomMac = (): string => {
  const b = Array.from({ length: 3 }, () =>
    Math.floor(Math.random() * 256)
      .toString(16)
      .toUpperCase()
      .padStart(2, "0")
  )
  return `BC:24:11:${b.join(":")}`
}

const configMissing = (node: string, vmid: number): PveError =>
  new PveError(500, `Configuration file 'nodes/${node}/qemu-server/${vmid}.conf' does not exist`)

export const getVm = (ctx: SimContext, node: NodeState, vmid: number): VmState => {
  const vm = ctx.state.vms.get(vmid)
  if (vm === undefined || vm.node !== node.name || vm.type !== "qemu") throw configMissing(node.name, vmid)
  return vm
}

export const checkLock = (vm: VmState, allowSuspended = false): void => {
  const lock = vm.config.get("lock")
  if (lock !== undefined && !(allowSuspended && lock === "suspended")) throw new PveError(500, `VM is locked (${lock})`)
}

/** Who waits for a VM's config flock: woken when it is released, as flock(2) wakes a blocked caller. */
const flockWaiters = new WeakMap<VmState, Set<() => void>>()

/** The per-VM config flock (10 s timeout, simulated). */
export const withFlock = async <A>(
  ctx: SimContext,
  vm: VmState,
  fn: () => Promise<A>,
  timeoutMs = 10_000
): Promise<A> => {
  const deadline = ctx.clock.now() + ctx.clock.scaled(timeoutMs)
  while (vm.flock) {
    const left = deadline - ctx.clock.now()
    if (left <= 0) throw new PveError(500, `can't lock file '/var/lock/qemu-server/lock-${vm.vmid}.conf' - got timeout`)
    await new Promise<void>((resolve) => {
      const waiters = flockWaiters.get(vm) ?? new Set()
      flockWaiters.set(vm, waiters)
      const wake = () => {
        clearTimeout(timer)
        waiters.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, Math.max(1, left))
      timer.unref?.()
      waiters.add(wake)
    })
  }
  vm.flock = true
  try {
    return await fn()
  } finally {
    vm.flock = false
    const waiters = [...(flockWaiters.get(vm) ?? [])]
    // one waiter takes the lock; the others find it held and wait again
    for (const w of waiters) w()
  }
}

const rootOnly = (user: AuthUser, params: Params): void => {
  if (user.authuser === "root@pam") return
  if (params.skiplock !== undefined) throw PveError.param({ skiplock: "Only root may use this option." })
}

const decodeSshKeys = (encoded: string): string => {
  try {
    return decodeURIComponent(encoded)
  } catch {
    throw new PveError(500, "SSH public key validation error")
  }
}

const validateSshKeys = (encoded: string): void => {
  const text = decodeSshKeys(encoded)
  for (const line of text.split("\n")) {
    const l = line.trim()
    if (l === "" || l.startsWith("#")) continue
    if (!/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+={0,3}( .*)?$/.test(l))
      throw new PveError(500, "SSH public key validation error")
  }
}

/** Root-only config keys (§7). */
const checkRootKeys = (user: AuthUser, params: Params): void => {
  if (user.authuser === "root@pam") return
  for (const k of ["args", "lock", "hookscript"])
    if (params[k] !== undefined) throw new PveError(500, `only root can set '${k}' config`)
  for (const [k, v] of Object.entries(params)) {
    if (/^serial\d$/.test(k) && one(params, k) !== "socket")
      throw new PveError(500, `only root can modify '${k}' config for real devices`)
    if (/^(usb|hostpci)\d+$/.test(k) && typeof v === "string" && !v.startsWith("mapping="))
      throw new PveError(500, `only root can set '${k}' config for real devices`)
  }
}

interface DrivePlan {
  readonly key: string
  readonly kind: "new" | "import" | "cloudinit" | "existing" | "cdrom"
  readonly storage?: string
  readonly sizeBytes?: number
  readonly importSource?: { storage: string; volname: string; label: string }
  readonly opts: Record<string, string>
  readonly file: string
}

/** Synchronous drive checks (§4.10.1 step 5). */
const planDrives = (
  ctx: SimContext,
  user: AuthUser,
  node: NodeState,
  params: Params,
  defaultStorage: string | undefined
): Array<DrivePlan> => {
  const plans: Array<DrivePlan> = []
  const features = ctx.state.featuresOf(node.name)
  for (const key of Object.keys(params).filter((k) => DISK_KEY.test(k))) {
    const value = one(params, key) ?? ""
    const d = parseDrive(value)
    const opts = { ...d.opts }
    delete opts.file
    const importFrom = opts["import-from"]
    const file = d.file
    if (importFrom !== undefined) {
      // NEW_DISK_RE with a size of 0: `STORAGE:0`, or `0` with the `storage` parameter as the default
      const m = /^(?:([^/:\s]+):)?(\d+(?:\.\d+)?)$/.exec(file)
      if (!m || Number(m[2]) !== 0)
        throw PveError.param({
          [key]: "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>"
        })
      delete opts["import-from"]
      let source: { storage: string; volname: string; label: string }
      if (importFrom.startsWith("/")) {
        if (user.authuser !== "root@pam")
          throw new PveError(
            500,
            `Only root can pass arbitrary filesystem paths. at /usr/share/perl5/PVE/Storage.pm line ${STORAGE_LINE}.\n`
          )
        const v = pathToVolume(node, importFrom)
        source = v
          ? { storage: v.storage.id, volname: v.volname, label: importFrom }
          : { storage: "", volname: importFrom, label: importFrom }
      } else {
        const vid = parseVolid(importFrom)
        if (vid === undefined) throw PveError.param({ [key]: `unable to parse volume ID '${importFrom}'` })
        const s = node.storages.get(vid.storage)
        if (s === undefined) throw new PveError(500, `storage '${vid.storage}' does not exist`)
        const vtype = vtypeOf(s, vid.volname)
        const okTypes = features.importContent ? ["images", "import"] : ["images"]
        if (!okTypes.includes(vtype))
          throw PveError.param({
            [key]: features.importContent
              ? `${importFrom} has wrong type '${vtype}' - needs to be 'images' or 'import'`
              : `${importFrom} has wrong type '${vtype}' - not an image`
          })
        ctx.auth.check(user, `/storage/${vid.storage}`, "Datastore.Audit", "Datastore.AllocateSpace")
        source = { storage: vid.storage, volname: vid.volname, label: importFrom }
      }
      const target = m[1] ?? defaultStorage
      if (target === undefined) throw new PveError(500, "no storage ID specified (and no default storage)")
      checkTargetStorage(ctx, user, node, target)
      plans.push({ key, kind: "import", storage: target, importSource: source, opts, file })
      continue
    }
    if (file === "none") {
      plans.push({ key, kind: "cdrom", opts, file })
      continue
    }
    if (file === "cloudinit" || /:cloudinit$/.test(file)) {
      const sid = file === "cloudinit" ? defaultStorage : file.slice(0, file.indexOf(":"))
      if (sid === undefined) throw PveError.param({ [key]: "missing storage for cloudinit drive" })
      checkTargetStorage(ctx, user, node, sid)
      plans.push({ key, kind: "cloudinit", storage: sid, opts, file })
      continue
    }
    const newDisk = /^(?:([^:]+):)?(\d+(?:\.\d+)?)$/.exec(file)
    if (newDisk) {
      const sid = newDisk[1] ?? defaultStorage
      if (sid === undefined) throw new PveError(500, "no storage ID specified (and no default storage)")
      checkTargetStorage(ctx, user, node, sid)
      plans.push({
        key,
        kind: "new",
        storage: sid,
        sizeBytes: Math.round(Number(newDisk[2]) * 1024 ** 3),
        opts,
        file
      })
      continue
    }
    if (file.startsWith("/")) {
      if (user.authuser !== "root@pam")
        throw new PveError(
          500,
          `Only root can pass arbitrary filesystem paths. at /usr/share/perl5/PVE/Storage.pm line ${STORAGE_LINE}.\n`
        )
      plans.push({ key, kind: "existing", opts, file })
      continue
    }
    const vid = parseVolid(file)
    if (vid === undefined) throw PveError.param({ [key]: `invalid format - unable to parse drive options\n` })
    const s = node.storages.get(vid.storage)
    if (s === undefined) throw new PveError(500, `storage '${vid.storage}' does not exist`)
    const vtype = vtypeOf(s, vid.volname)
    if (vtype === "iso") {
      if (opts.media !== "cdrom") throw PveError.param({ [key]: "explicit 'media=cdrom' is required for iso images" })
      ctx.auth.check(user, `/storage/${vid.storage}`, "Datastore.Audit", "Datastore.AllocateSpace")
      plans.push({ key, kind: "cdrom", opts, file })
      continue
    }
    if (vtype !== "images") throw PveError.param({ [key]: "content type needs to be 'images' or 'iso'" })
    ctx.auth.check(user, `/storage/${vid.storage}`, "Datastore.AllocateSpace")
    plans.push({ key, kind: "existing", opts, file })
  }
  return plans
}

/** qemu-server `check_storage_access` for a disk to allocate: the error is keyed `storage`, whatever the drive. */
const checkTargetStorage = (ctx: SimContext, user: AuthUser, node: NodeState, sid: string): void => {
  ctx.auth.check(user, `/storage/${sid}`, "Datastore.AllocateSpace")
  const s = node.storages.get(sid)
  if (s === undefined) throw new PveError(500, `storage '${sid}' does not exist`)
  if (!s.content.has("images")) throw PveError.param({ storage: `storage '${sid}' does not support vm images` })
}

/** Execute a drive plan (in a worker or synchronously for PUT). Returns the config value. */
const executeDrive = async (
  ctx: SimContext,
  node: NodeState,
  vmid: number,
  p: DrivePlan,
  log: (l: string) => void,
  created: Array<{ storage: string; volname: string }>
): Promise<string> => {
  const now = Math.floor(ctx.clock.now() / 1000)
  if (p.kind === "existing" || p.kind === "cdrom") return renderDrive(p.file, p.opts)
  const s = node.storages.get(p.storage ?? "")
  if (s === undefined) throw new PveError(500, `storage '${p.storage}' does not exist`)
  const full = ctx.faults.storageFull(node.name, s.id)
  if (p.kind === "cloudinit") {
    const volname = cloudinitName(s, vmid)
    ensureSpace(s, 4 * 1024 * 1024, full, volname)
    addVolume(s, {
      volname,
      content: "images",
      format: s.type === "dir" ? "qcow2" : "raw",
      size: 4 * 1024 * 1024,
      ctime: now,
      vmid
    })
    created.push({ storage: s.id, volname })
    if (s.type === "lvmthin") log(`  Logical volume "${volname}" created.`)
    const value = renderDrive(`${s.id}:${volname}`, { ...p.opts, media: "cdrom" })
    log(`${p.key}: successfully created disk '${value}'`)
    return value
  }
  const format = s.type === "dir" || s.type === "nfs" ? (p.opts.format ?? "qcow2") : "raw"
  const opts = { ...p.opts }
  delete opts.format
  let size: number
  if (p.kind === "import") {
    const src = p.importSource
    const ss = src === undefined ? undefined : node.storages.get(src.storage)
    const vol = ss?.volumes.get(src?.volname ?? "")
    if (src === undefined || vol === undefined)
      throw new PveError(
        500,
        `cannot import from '${src?.label ?? "?"}' - could not get file size of ${src?.label.startsWith("/") ? src.label : ss ? `${src?.volname}` : src?.label}`
      )
    size = Math.ceil(vol.size / (1024 * 1024)) * 1024 * 1024
    const volname = nextDiskName(s, vmid, format)
    ensureSpace(s, size, full, volname)
    if (s.type === "lvmthin") log(`  Logical volume "${volname}" created.`)
    for (const pct of [0, 0.5, 1])
      log(`transferred ${humanBytes(size * pct)} of ${humanBytes(size)} (${(pct * 100).toFixed(2)}%)`)
    addVolume(s, { volname, content: "images", format, size, ctime: now, vmid })
    created.push({ storage: s.id, volname })
    const value = renderDrive(`${s.id}:${volname}`, { ...opts, size: renderSize(size) })
    log(`${p.key}: successfully created disk '${value}'`)
    return value
  }
  size = p.sizeBytes ?? 0
  const volname = nextDiskName(s, vmid, format)
  ensureSpace(s, size, full, volname)
  if (s.type === "lvmthin") log(`  Logical volume "${volname}" created.`)
  addVolume(s, { volname, content: "images", format, size, ctime: now, vmid })
  created.push({ storage: s.id, volname })
  const value = renderDrive(`${s.id}:${volname}`, { ...opts, size: renderSize(size) })
  log(`${p.key}: successfully created disk '${value}'`)
  return value
}

const freeVolumes = (node: NodeState, created: ReadonlyArray<{ storage: string; volname: string }>): void => {
  for (const c of created) node.storages.get(c.storage)?.volumes.delete(c.volname)
}

/** Bridge existence / SDN.Use checks for netN params; fills in MACs. */
const prepareNets = (ctx: SimContext, user: AuthUser, node: NodeState, params: Params): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const key of Object.keys(params).filter((k) => NET_KEY.test(k))) {
    const n = parseNet(one(params, key) ?? "")
    const bridge = n.opts.bridge
    if (bridge !== undefined && ctx.state.featuresOf(node.name).version >= "8" && user.authuser !== "root@pam")
      ctx.auth.check(user, `/sdn/zones/localnetwork/${bridge}`, "SDN.Use")
    const mac = (n.mac ?? randomMac()).toUpperCase()
    const rest = Object.keys(n.opts)
      .sort()
      .map((k) => `${k}=${n.opts[k]}`)
    out[key] = [`${n.model}=${mac}`, ...rest].join(",")
  }
  return out
}

const CREATE_ONLY = new Set(Object.keys(CREATE_SCHEMA))

/**
 * The notes as PVE reads them back: written as `#` comment lines, they are parsed by qemu-server's parse_vm_config,
 * which strips the trailing whitespace (`$descr =~ s/\s+$//`).
 */
const notesAsKept = (text: string): string => text.replace(/\s+$/, "")

const defaultBoot = (config: Map<string, string>): string => {
  const order: Array<string> = []
  const keys = [...config.keys()]
  const disks = ["ide", "scsi", "virtio", "sata"].flatMap((p) =>
    keys
      .filter((k) => k.startsWith(p) && DISK_KEY.test(k))
      .sort((a, b) => Number(a.replace(/\D/g, "")) - Number(b.replace(/\D/g, "")))
  )
  const hd = disks.find((k) => !isCdrom(parseDrive(config.get(k) ?? "")))
  if (hd !== undefined) order.push(hd)
  const cd = disks.find((k) => isCdrom(parseDrive(config.get(k) ?? "")))
  if (cd !== undefined) order.push(cd)
  const net = keys.filter((k) => NET_KEY.test(k)).sort()[0]
  if (net !== undefined) order.push(net)
  return `order=${order.join(";")}`
}

// ---- handlers ------------------------------------------------------------------------------------------------

export const createVm = (ctx: SimContext, user: AuthUser, node: NodeState, params: Params): Task => {
  const vmid = Number(one(params, "vmid"))
  const sshkeys = one(params, "sshkeys")
  if (sshkeys !== undefined) validateSshKeys(sshkeys)
  ctx.state.checkCfsQuorum()
  const pool = one(params, "pool")
  if (pool !== undefined) throw new PveError(403, `Permission check failed (pool '${pool}' does not exist)`)
  const storage = one(params, "storage")
  if (storage !== undefined) ctx.auth.check(user, `/storage/${storage}`, "Datastore.AllocateSpace")
  // qemu-server raises a bare `raise_perm_exc()` here: "Permission check failed", no path
  if (!ctx.auth.can(user, `/vms/${vmid}`, "VM.Allocate")) throw new PveError(403, "Permission check failed")
  checkRootKeys(user, params)
  const nets = prepareNets(ctx, user, node, params)
  const plans = planDrives(ctx, user, node, params, one(params, "storage"))
  const existing = ctx.state.vms.get(vmid)
  if (existing !== undefined)
    throw new PveError(
      500,
      `unable to create VM ${vmid} - ${existing.type === "lxc" ? "CT" : "VM"} ${vmid} already exists on node '${existing.node}'`
    )
  const vm = ctx.state.newVm(vmid, node.name, "qemu", new Map([["lock", "create"]]), true)
  vm.flock = true
  const start = flag(params, "start")
  return ctx.tasks.start(
    node,
    "qmcreate",
    String(vmid),
    user,
    async (t) => {
      const created: Array<{ storage: string; volname: string }> = []
      // an image it imports had to be there first
      for (const p of plans) {
        const src = p.importSource === undefined ? undefined : node.storages.get(p.importSource.storage)
        if (src !== undefined) t.uses(volumeResource(node.name, src, p.importSource?.volname ?? ""))
      }
      try {
        await t.work(ctx.timings.createMs)
        const config = new Map<string, string>()
        for (const [k, v] of Object.entries(params)) {
          if (CREATE_ONLY.has(k) || DISK_KEY.test(k) || NET_KEY.test(k)) continue
          config.set(k, Array.isArray(v) ? v.join(",") : v)
        }
        for (const [k, v] of Object.entries(nets)) config.set(k, v)
        for (const p of plans) config.set(p.key, await executeDrive(ctx, node, vmid, p, t.log, created))
        if (config.has("tags")) config.set("tags", normaliseTags(config.get("tags") ?? ""))
        if (config.has("description")) config.set("description", notesAsKept(config.get("description") ?? ""))
        if (!config.has("boot")) config.set("boot", defaultBoot(config))
        if (!config.has("smbios1")) config.set("smbios1", `uuid=${ctx.state.newUuid()}`)
        if (!config.has("vmgenid")) config.set("vmgenid", ctx.state.newUuid())
        config.set("meta", `creation-qemu=8.1.5,ctime=${Math.floor(ctx.clock.now() / 1000)}`)
        ctx.state.touch(vm)
        vm.config = config
        vm.flock = false
        ctx.state.emit(vm, "changed")
      } catch (e) {
        freeVolumes(node, created)
        vm.flock = false
        if (ctx.state.vms.get(vmid) === vm) ctx.state.vms.delete(vmid)
        ctx.state.emit(vm, "destroyed")
        const msg = e instanceof Error ? e.message : String(e)
        throw new PveError(500, msg.startsWith("unable to create VM") ? msg : `unable to create VM ${vmid} - ${msg}`)
      }
      if (start) {
        t.log("Execute autostart")
        try {
          startVm(ctx, user, node, vm, {})
        } catch (e) {
          t.log(`start failed: ${(e as Error).message}`)
        }
      }
    },
    vmid
  )
}

/** `qm cleanup`, run by qmeventd as root, starts a VM again after a reboot request. */
const QMEVENTD: AuthUser = { authuser: "root@pam", via: "cli" }

const applyPendingAll = (vm: VmState): void => {
  for (const [k, v] of vm.pending) vm.config.set(k, v)
  for (const k of vm.pendingDelete) vm.config.delete(k)
  vm.pending.clear()
  vm.pendingDelete.clear()
}

export const startVm = (ctx: SimContext, user: AuthUser, node: NodeState, vm: VmState, params: Params): Task => {
  rootOnly(user, params)
  ctx.auth.check(user, `/vms/${vm.vmid}`, "VM.PowerMgmt")
  ctx.state.checkCfsQuorum()
  const skiplock = flag(params, "skiplock")
  return ctx.tasks.start(
    node,
    "qmstart",
    String(vm.vmid),
    user,
    async (t) => {
      await withFlock(ctx, vm, async () => {
        await t.work(ctx.timings.startMs)
        vmStart(ctx, t, node, vm, skiplock)
      })
    },
    vm.vmid
  )
}

/**
 * QemuServer `vm_start` under the config flock (the worker of a start, of a resume from disk, of `qm cleanup`). A VM
 * suspended to disk (lock `suspended`, or a `vmstate`) is resumed: its pending changes stay pending, and with its
 * state (`loadsState`) the guest goes on where it was instead of booting; the state is removed after.
 */
const vmStart = (ctx: SimContext, t: TaskContext, node: NodeState, vm: VmState, skiplock: boolean): void => {
  if (!ctx.state.vms.has(vm.vmid)) throw configMissing(node.name, vm.vmid)
  if (vm.config.get("template") === "1") throw new PveError(500, "you can't start a vm if it's a template")
  const resume = vm.config.get("lock") === "suspended" || vm.config.has("vmstate")
  if (!skiplock) checkLock(vm, true)
  if (vm.status === "running") throw new PveError(500, `VM ${vm.vmid} already running`)
  // vm_start_nolock: what is pending is written into the config first (and stays there if the start fails), unless
  // the VM resumes from a suspend to disk
  if (!resume) applyPendingAll(vm)
  // Cloudinit.pm apply_cloudinit_config: the ISO is generated from the config as it is now (custom snippets
  // must be readable), whatever was recorded in [special:cloudinit] is dropped
  if (hasCloudInitDrive(vm)) t.log("generating cloud-init ISO")
  generateCloudInitDrive(node, vm)
  if (resume) t.log("Resuming suspended VM")
  // config_to_command: sockets × cores may not exceed the node's logical CPUs (whatever `vcpus` says)
  const sockets = Number(vm.config.get("sockets") || vm.config.get("smp") || 1)
  const maxcpus = sockets * Number(vm.config.get("cores") || 1)
  if (node.cpus < maxcpus) throw new PveError(500, `MAX ${node.cpus} vcpus allowed per VM on this node`)
  const hotMemory = memoryHotplugError(vm.config)
  if (hotMemory !== undefined) throw new PveError(500, hotMemory)
  // config_to_command: each NIC's netdev reads its bridge's MTU (PVE::Network::read_bridge_mtu)
  for (const [k, v] of vm.config) {
    if (!NET_KEY.test(k)) continue
    const bridge = parseNet(v).opts.bridge
    if (bridge === undefined) continue
    const b = node.bridges.get(bridge)
    if (b === undefined || ctx.faults.bridgeState(node.name, bridge) === "missing")
      throw new PveError(500, `bridge '${bridge}' does not exist`)
  }
  // config_to_command: `-loadstate` only for a `vmstate`; a saved RAM no longer named there is gone
  const loads = loadsState(vm)
  if (!loads) dropHibernated(ctx, vm)
  if (resume) {
    t.log("Resumed VM, removing state")
    removeVmstate(ctx.state, vm)
  }
  const stuck = ctx.faults.vmStuck(vm.vmid)
  const freeze = vm.config.get("freeze") === "1"
  if (stuck === "stopped") {
    dropHibernated(ctx, vm)
    ctx.state.setRun(vm, "running", "running")
    ctx.state.setRun(vm, "stopped", "stopped")
    return
  }
  vm.hibernated = undefined
  ctx.state.setRun(vm, "running", stuck ?? (freeze ? "prelaunch" : "running"))
  ctx.state.emit(vm, loads ? "resumed" : "started")
}

/** The guest saved by a suspend to disk is discarded (its state is gone): its processes end, as at a stop. */
const dropHibernated = (ctx: SimContext, vm: VmState): void => {
  if (vm.hibernated === undefined) return
  vm.hibernated = undefined
  ctx.state.setRun(vm, "stopped", "stopped")
  ctx.state.emit(vm, "stopped")
}

export const stopVm = (
  ctx: SimContext,
  user: AuthUser,
  node: NodeState,
  vm: VmState,
  params: Params,
  type: "qmstop" | "qmshutdown"
): Task => {
  rootOnly(user, params)
  ctx.auth.check(user, `/vms/${vm.vmid}`, "VM.PowerMgmt")
  if (params.keepActive !== undefined && user.authuser !== "root@pam")
    throw PveError.param({ keepActive: "Only root may use this option." })
  const force = flag(params, "forceStop")
  if (type === "qmshutdown" && vm.status === "running" && vm.qmpstatus !== "running" && !force)
    throw new PveError(500, "VM is paused - cannot shutdown")
  const skiplock = flag(params, "skiplock")
  return ctx.tasks.start(
    node,
    type,
    String(vm.vmid),
    user,
    async (t) => {
      await withFlock(ctx, vm, async () => {
        if (vm.status !== "running") return
        if (!skiplock) checkLock(vm)
        if (type === "qmshutdown" && vm.qmpstatus !== "running") t.log("VM is paused - stop instead of shutdown")
        else if (type === "qmshutdown" && ctx.faults.vmFault("acpiIgnored", vm.vmid) && !ctx.guests.agentRunning(vm)) {
          // QemuServer _do_vm_stop: ACPI system_powerdown (no guest agent to ask), then wait `timeout` seconds
          await t.work(Number(one(params, "timeout") ?? 60) * 1000)
          if (!force) throw new PveError(500, "VM quit/powerdown failed - got timeout")
          t.log("VM still running - terminating now with SIGTERM")
        }
        await t.work(type === "qmstop" ? ctx.timings.stopMs : ctx.timings.shutdownMs)
        ctx.state.setRun(vm, "stopped", "stopped")
        applyPendingAll(vm)
        ctx.state.emit(vm, "stopped")
      })
    },
    vm.vmid
  )
}

export const simplePower = (
  ctx: SimContext,
  user: AuthUser,
  node: NodeState,
  vm: VmState,
  params: Params,
  action: "reset" | "suspend" | "resume" | "reboot"
): Task => {
  rootOnly(user, params)
  ctx.auth.check(user, `/vms/${vm.vmid}`, "VM.PowerMgmt")
  const todisk = flag(params, "todisk")
  const toDiskSuspended = vm.config.get("lock") === "suspended"
  if (action === "resume") {
    if (vm.status !== "running" && !toDiskSuspended) throw new PveError(500, `VM ${vm.vmid} not running`)
  } else if (vm.status !== "running") throw new PveError(500, `VM ${vm.vmid} not running`)
  // API vm_suspend, before the worker: the rights to write the state, on the storage it goes to
  const statestorage =
    action === "suspend" && todisk ? (one(params, "statestorage") ?? findVmstateStorage(node, vm)) : undefined
  if (statestorage !== undefined) {
    ctx.auth.check(user, `/vms/${vm.vmid}`, "VM.Config.Disk")
    if ([...vm.config.keys()].some((k) => /^hostpci\d+/.test(k)))
      throw new PveError(
        500,
        "cannot suspend VM to disk due to passed-through PCI device(s), which lack the possibility to save/restore their internal state"
      )
    ctx.auth.check(user, `/storage/${statestorage}`, "Datastore.AllocateSpace")
  }
  if (action === "reboot" && vm.qmpstatus !== "running") throw new PveError(500, "VM is paused - cannot shutdown")
  const type = { reset: "qmreset", suspend: todisk ? "qmsuspend" : "qmpause", resume: "qmresume", reboot: "qmreboot" }[
    action
  ]
  const skiplock = flag(params, "skiplock")
  return ctx.tasks.start(
    node,
    type,
    String(vm.vmid),
    user,
    async (t) => {
      await t.work(ctx.timings.taskMs)
      // API vm_resume: a VM suspended to disk is started (QemuServer::vm_start) in this worker, no qmstart task
      if (action === "resume" && toDiskSuspended) {
        await withFlock(ctx, vm, async () => {
          await t.work(ctx.timings.startMs)
          vmStart(ctx, t, node, vm, skiplock)
        })
        return
      }
      if (!skiplock) checkLock(vm, action === "resume")
      if (action === "suspend") {
        if (todisk) {
          // RunState vm_suspend: lock `suspending` while QEMU saves the RAM into the state volume, then QEMU quits and
          // the lock is `suspended`; the guest's processes are kept in the state, frozen (`hibernated`)
          allocateVmstate(node, vm, ctx.state.memoryMiB(vm), statestorage ?? "local", ctx.clock.now())
          ctx.state.touch(vm)
          await t.work(ctx.timings.shutdownMs)
          t.log("State saved, quitting")
          vm.config.set("lock", "suspended")
          vm.hibernated = vm.guest
          ctx.state.setRun(vm, "stopped", "stopped")
          ctx.state.emit(vm, "stopped")
        } else {
          ctx.state.setRun(vm, "running", "paused")
        }
      } else if (action === "resume") {
        if (vm.qmpstatus !== "running") ctx.state.setRun(vm, "running", "running")
        ctx.state.emit(vm, "changed")
      } else if (action === "reboot") {
        // QemuServer::vm_reboot: a reboot request, then a clean shutdown (the guest agent's, else ACPI) within
        // `timeout`; the task ends once the VM is down. qmeventd sees QEMU exit, `qm cleanup` finds the request and
        // starts the VM through the API (a qmstart task of root@pam), which applies the pending changes and
        // regenerates the cloud-init drive: for a moment after the qmreboot task the VM is stopped.
        if (ctx.faults.vmFault("acpiIgnored", vm.vmid) && !ctx.guests.agentRunning(vm)) {
          await t.work(Number(one(params, "timeout") ?? 600) * 1000)
          throw new PveError(500, "VM quit/powerdown failed - got timeout")
        }
        await t.work(ctx.timings.shutdownMs)
        ctx.state.setRun(vm, "stopped", "stopped")
        ctx.state.emit(vm, "stopped")
        startVm(ctx, QMEVENTD, node, vm, {})
      } else {
        ctx.state.emit(vm, "started")
      }
    },
    vm.vmid
  )
}

export const destroyVm = (ctx: SimContext, user: AuthUser, node: NodeState, vmid: number, params: Params): Task => {
  rootOnly(user, params)
  ctx.auth.check(user, `/vms/${vmid}`, "VM.Allocate")
  const vm = getVm(ctx, node, vmid)
  if (vm.config.get("protection") === "1") throw new PveError(500, `can't remove VM ${vmid} - protection mode enabled`)
  if (vm.status === "running") throw new PveError(500, `VM ${vmid} is running - destroy failed`)
  const skiplock = flag(params, "skiplock")
  const purge = flag(params, "purge")
  const unreferenced = flag(params, "destroy-unreferenced-disks")
  return ctx.tasks.start(
    node,
    "qmdestroy",
    String(vmid),
    user,
    async (t) => {
      await withFlock(ctx, vm, async () => {
        await t.work(ctx.timings.destroyMs)
        if (!ctx.state.vms.has(vmid)) throw configMissing(node.name, vmid)
        // destroy_vm sets `lock: destroyed` first: that write fails without quorum, before any disk goes
        ctx.state.checkConfigWrite(node.name, vmid)
        if (vm.config.get("protection") === "1")
          throw new PveError(500, `can't remove VM ${vmid} - protection mode enabled`)
        if (vm.status === "running") throw new PveError(500, `VM ${vmid} is running - destroy failed`)
        if (!skiplock && vm.config.get("lock") !== "suspended") checkLock(vm)
        for (const [k, v] of vm.config) {
          // destroy_vm: every volume of the config, the state of a suspend to disk included
          if (!(DISK_KEY.test(k) || /^unused\d+$/.test(k) || k === "vmstate")) continue
          const d = parseDrive(v)
          const vid = parseVolid(d.file)
          if (vid === undefined) continue
          const s = node.storages.get(vid.storage)
          if (s === undefined) continue
          const vol = s.volumes.get(vid.volname)
          if (vol?.vmid === vmid) s.volumes.delete(vid.volname)
          else if (vol === undefined && new RegExp(`vm-${vmid}-`).test(vid.volname))
            t.warn(`Could not remove disk '${d.file}', check manually: no such logical volume pve/${vid.volname}`)
        }
        if (unreferenced)
          for (const s of node.storages.values())
            for (const [name, vol] of s.volumes) if (vol.vmid === vmid) s.volumes.delete(name)
        ctx.state.touch(vm)
        vm.config = new Map([["lock", "destroyed"]])
        if (purge) t.log(`purging VM ${vmid} from related configurations..`)
        ctx.state.vms.delete(vmid)
        ctx.state.emit(vm, "destroyed")
      })
    },
    vmid
  )
}

const HOTPLUG_ALWAYS = new Set([
  "name",
  "description",
  "onboot",
  "protection",
  "tags",
  "startup",
  "hookscript",
  "shares",
  "lock",
  "vmstatestorage",
  "ciuser",
  "cipassword",
  "sshkeys",
  "nameserver",
  "searchdomain",
  "citype",
  "cicustom",
  "ciupgrade"
])

/**
 * qemu-server's vmconfig_hotplug_pending for `balloon`: a running VM takes a new target at once (a `balloon` QMP
 * command), unless the change enables or disables the balloon device, which is not hotpluggable (`0` = disabled).
 */
const balloonHot = (vm: VmState, value: string): boolean => {
  const enabled = (v: string | undefined) => v === undefined || v !== "0"
  return enabled(vm.config.get("balloon")) === enabled(value)
}

/** The `current` MiB of a `memory` property string (`[current=]<MiB>`); PVE's default is 512. */
const currentMemoryMiB = (value: string | undefined): number => {
  if (value === undefined) return 512
  const { entries } = parsePropertyString(value, "current")
  const current = toRecord(entries).current
  return current === undefined ? 512 : Number(current)
}

/**
 * qemu-server's update_vm_api (`$load_and_check_config`): when the update sets `memory` or `balloon`, the balloon
 * (the one sent, else the pending one, else the current one) must not be above the memory (the one sent, else the
 * pending one, else the current one). Only updates check it: create_vm does not, and a start does not either (QEMU
 * clamps the balloon target to the memory).
 */
const checkBalloon = (vm: VmState, params: Params): void => {
  const memory = one(params, "memory")
  const balloon = one(params, "balloon")
  if (memory === undefined && balloon === undefined) return
  const maxmem = currentMemoryMiB(memory || vm.pending.get("memory") || vm.config.get("memory"))
  const target = Number(balloon ?? (vm.pending.get("balloon") || vm.config.get("balloon") || 0))
  if (target > 0 && target > maxmem)
    throw new PveError(500, "balloon value too large (must be smaller than assigned memory)")
}

/**
 * qemu-server's `Memory::config` (run by config_to_command at every start) for a VM with `memory` among its hotplug
 * features: NUMA must be on, the memory at least the static memory (1024 MiB; × sockets with 1 GiB hugepages), and
 * what lies above it made of whole DIMMs as `foreach_dimm` adds them: 32 of 512 MiB (1024 with 1 GiB hugepages),
 * then 32 of twice that, and so on; a memory between two sums dies. Undefined when the start may go on.
 */
const memoryHotplugError = (config: Map<string, string>): string | undefined => {
  if (!hotplugFeatures(config.get("hotplug")).has("memory")) return undefined
  if (config.get("numa") !== "1") return "NUMA needs to be enabled for memory hotplug"
  const memory = currentMemoryMiB(config.get("memory"))
  const gigantic = config.get("hugepages") === "1024"
  const staticMemory = gigantic ? 1024 * Number(config.get("sockets") || 1) : 1024
  if (memory < staticMemory) return `minimum memory must be ${staticMemory}MB`
  let current = staticMemory
  let dimm = gigantic ? 1024 : 512
  if (current === memory) return undefined
  for (let j = 0; j < 8; j++) {
    for (let i = 0; i < 32; i++) {
      current += dimm
      if (current > memory) return `memory size (${memory}) must be aligned to ${dimm} for hotplugging`
      if (current >= memory) return undefined
    }
    dimm *= 2
  }
  return undefined
}

/**
 * qemu-server's `Memory::qemu_memory_hotplug` on a running VM: the memory it has after plugging DIMMs in (up to the
 * first size of whole DIMMs at or above the one asked: the config then holds that size) or unplugging them from the
 * last one (down to the first size at or below it), or the error (below the static memory). The guest is taken to
 * give every DIMM back.
 */
const hotplugMemory = (
  config: Map<string, string>,
  old: string | undefined,
  value: string
): string | { readonly error: string } => {
  const from = currentMemoryMiB(old)
  const to = currentMemoryMiB(value)
  if (to === from) return value
  const gigantic = config.get("hugepages") === "1024"
  const staticMemory = gigantic ? 1024 * Number(config.get("sockets") || 1) : 1024
  if (to < staticMemory)
    return {
      error: `memory can't be lower than ${staticMemory} MB at /usr/share/perl5/PVE/QemuServer/Memory.pm line 219.\n`
    }
  // the sizes whole DIMMs add up to (foreach_dimm): 32 of 512 MiB, then 32 of 1024 MiB, …
  const sizes = [staticMemory]
  let dimm = gigantic ? 1024 : 512
  for (let j = 0; j < 8; j++, dimm *= 2)
    for (let i = 0; i < 32; i++) sizes.push((sizes[sizes.length - 1] as number) + dimm)
  const reached =
    to > from
      ? (sizes.find((size) => size >= to) ?? (sizes[sizes.length - 1] as number))
      : ([...sizes].reverse().find((size) => size <= to) ?? staticMemory)
  return String(reached)
}

/** PUT/POST config. Returns after applying (sync part). */
export const updateConfig = async (
  ctx: SimContext,
  user: AuthUser,
  node: NodeState,
  vmid: number,
  params: Params,
  log: (l: string) => void,
  mode: "check" | "apply" = "apply",
  written: () => void = () => {}
): Promise<void> => {
  rootOnly(user, params)
  const changes = Object.keys(params).filter(
    (k) => !["node", "vmid", "delete", "revert", "force", "digest", "skiplock", "background_delay"].includes(k)
  )
  const deletes = (one(params, "delete") ?? "")
    .split(/[,;\s]+/)
    .filter((x) => x !== "")
    .map((x) => (x === "cdrom" ? "ide2" : x))
  const reverts = (one(params, "revert") ?? "").split(/[,;\s]+/).filter((x) => x !== "")
  if (changes.length === 0 && deletes.length === 0 && reverts.length === 0)
    throw new PveError(500, "no options specified")
  for (const d of deletes) {
    if (vmConfigKeySpec(d, ctx.state.featuresOf(node.name).nine) === undefined)
      throw PveError.param({ delete: `unknown option '${d}'` })
    if (changes.includes(d))
      throw PveError.param({ delete: `you can't use '-${d}' and -delete ${d}' at the same time` })
  }
  const sshkeys = one(params, "sshkeys")
  if (sshkeys !== undefined) validateSshKeys(sshkeys)
  ctx.auth.check(
    user,
    `/vms/${vmid}`,
    "VM.Config.Options",
    "VM.Config.Disk",
    "VM.Config.Network",
    "VM.Config.Cloudinit",
    "VM.Config.CPU",
    "VM.Config.Memory",
    "VM.Config.HWType"
  )
  checkRootKeys(user, params)
  const nets = prepareNets(ctx, user, node, params)
  const changeParams: Params = {}
  for (const k of changes) changeParams[k] = params[k] as string
  const plans = planDrives(ctx, user, node, changeParams, undefined)
  const vm = getVm(ctx, node, vmid)
  const digest = one(params, "digest")
  if (digest !== undefined && digest !== ctx.state.digest(vm))
    throw new PveError(500, "checksum mismatch (file change by other user?)")
  if (!flag(params, "skiplock")) {
    const lock = vm.config.get("lock")
    if (lock !== undefined && !(lock === "suspended" && deletes.includes("vmstate")))
      throw new PveError(500, `VM is locked (${lock})`)
  }
  checkBalloon(vm, params)
  if (mode === "check") return
  /** `raise_param_exc($errors)` once the config is written: what could not be hotplugged, by key. */
  const errors: Record<string, string> = {}
  await withFlock(ctx, vm, async () => {
    // the pending changes are written to the config first: without quorum pmxcfs refuses that write
    ctx.state.checkConfigWrite(node.name, vmid)
    const created: Array<{ storage: string; volname: string }> = []
    const values: Record<string, string> = {}
    for (const k of changes) {
      if (DISK_KEY.test(k)) continue
      values[k] = one(params, k) ?? ""
    }
    Object.assign(values, nets)
    for (const p of plans) values[p.key] = await executeDrive(ctx, node, vmid, p, log, created)
    if (values.tags !== undefined) values.tags = normaliseTags(values.tags)
    if (values.description !== undefined) values.description = notesAsKept(values.description)
    const running = vm.status === "running"
    ctx.state.touch(vm)
    for (const [k, v] of Object.entries(values)) {
      const old = vm.config.get(k)
      if (
        old !== undefined &&
        DISK_KEY.test(k) &&
        parseDrive(old).file !== parseDrive(v).file &&
        !isCdrom(parseDrive(old))
      ) {
        let n = 0
        while (vm.config.has(`unused${n}`)) n++
        vm.config.set(`unused${n}`, parseDrive(old).file)
      }
      if (running && NET_KEY.test(k) && old !== v) {
        // vmconfig_hotplug_pending: the NIC is plugged into the running VM, or stays pending (a hotplug that
        // failed is kept pending too, and reported once everything else is applied)
        const plugged = hotplugNet(ctx, node, vm, old, v)
        if (plugged === "done") {
          vm.config.set(k, v)
          vm.pending.delete(k)
        } else {
          vm.pending.set(k, v)
          if (plugged !== "skip") errors[k] = `hotplug problem - ${plugged.error}`
        }
        continue
      }
      if (running && k === "memory" && old !== v && hotplugFeatures(vm.config.get("hotplug")).has("memory")) {
        // vmconfig_hotplug_pending: qemu_memory_hotplug plugs DIMMs in (or unplugs them) at once; a failure keeps the
        // new memory pending, reported once everything else is applied
        const plugged = hotplugMemory(vm.config, old, v)
        if (typeof plugged === "string") {
          vm.config.set(k, plugged)
          vm.pending.delete(k)
        } else {
          vm.pending.set(k, v)
          errors[k] = `hotplug problem - ${plugged.error}`
        }
        continue
      }
      const hot =
        HOTPLUG_ALWAYS.has(k) ||
        DISK_KEY.test(k) ||
        NET_KEY.test(k) ||
        /^ipconfig/.test(k) ||
        (k === "balloon" && balloonHot(vm, v))
      if (!running || hot) {
        // vmconfig_hotplug_pending: a cloud-init setting changed on a running VM is recorded against its drive
        // (cleanup_pending drops a value equal to the current one before: no change, nothing recorded)
        if (running && old !== v) recordCloudInitChange(vm, k, old, v)
        vm.config.set(k, v)
        vm.pending.delete(k)
      } else if (old === v) {
        // PVE::AbstractConfig::cleanup_pending: a pending value equal to the current one is no change
        vm.pending.delete(k)
        vm.pendingDelete.delete(k)
      } else vm.pending.set(k, v)
    }
    // update_vm_api: deleting `vmstate` discards a suspend to disk: its volume is freed, and `lock: suspended` and the
    // running keys go with it; the guest saved in it is gone (the next start boots afresh)
    const discarded = deletes.includes("vmstate") && vm.config.has("vmstate")
    if (discarded) {
      const lock = vm.config.get("lock")
      removeVmstate(ctx.state, vm)
      if (lock !== undefined && lock !== "suspended") vm.config.set("lock", lock)
      dropHibernated(ctx, vm)
    }
    for (const d of deletes) {
      if (discarded && d === "vmstate") continue
      if (!vm.config.has(d) && !vm.pending.has(d)) {
        log(`cannot delete '${d}' - not set in current configuration!`)
        continue
      }
      const hot =
        HOTPLUG_ALWAYS.has(d) ||
        DISK_KEY.test(d) ||
        NET_KEY.test(d) ||
        /^unused/.test(d) ||
        /^ipconfig/.test(d) ||
        (d === "balloon" && vm.config.get("balloon") !== "0")
      const old = vm.config.get(d)
      if (!running || hot) {
        if (running) recordCloudInitChange(vm, d, old, undefined)
        vm.config.delete(d)
        vm.pending.delete(d)
        if (old !== undefined && /^unused\d+$/.test(d)) {
          const vid = parseVolid(old)
          if (vid !== undefined) node.storages.get(vid.storage)?.volumes.delete(vid.volname)
        } else if (old !== undefined && DISK_KEY.test(d) && !isCdrom(parseDrive(old))) {
          let n = 0
          while (vm.config.has(`unused${n}`)) n++
          vm.config.set(`unused${n}`, parseDrive(old).file)
        }
      } else vm.pendingDelete.add(d)
    }
    for (const r of reverts) {
      vm.pending.delete(r)
      vm.pendingDelete.delete(r)
    }
    dropReattachedUnused(vm)
    // vmconfig_hotplug_pending: with `cloudinit` among the hotplug features, a running VM's drive is regenerated
    // (and swapped in) at once when a cloud-init setting changed
    if (running && hotplugFeatures(vm.config.get("hotplug")).has("cloudinit") && (vm.cloudinitSection?.size ?? 0) > 0)
      generateCloudInitDrive(node, vm)
    written()
    ctx.state.emit(vm, "changed")
  })
  // update_vm_api: `raise_param_exc($errors) if scalar(keys %$errors)`, after the config (with the failed changes
  // still pending) was written
  if (Object.keys(errors).length > 0) throw PveError.param(errors)
}

/**
 * qemu-server `vmconfig_update_net` for a NIC of a running VM (`old` its current value, undefined for a NIC added):
 * `done` (in effect now), `skip` (kept pending until the VM restarts) or the error of the hotplug.
 *
 * - Only the bridge (or VLAN tag, trunks, firewall) changes: the tap device is moved to the new bridge whatever the
 *   hotplug features (`tap_unplug`, then `tap_plug`, whose `is_linux_bridge` dies `interface vmbr1 does not exist`
 *   for a bridge the node lacks).
 * - Anything else (a NIC added, another model or MAC): with `network` hotplug the device is (un)plugged —
 *   `netdev_add` runs `pve-bridge-hotplug`, whose `tap_create` reads the bridge's MTU (`bridge 'vmbr1' does not
 *   exist`), so QEMU fails the command — otherwise it waits for a restart.
 *
 * A bridge the node does not have is what fails here, as it is at start; an inactive one is treated as at start.
 */
const hotplugNet = (
  ctx: SimContext,
  node: NodeState,
  vm: VmState,
  old: string | undefined,
  value: string
): "done" | "skip" | { readonly error: string } => {
  const next = parseNet(value)
  const bridge = next.opts.bridge
  const missing =
    bridge !== undefined &&
    (node.bridges.get(bridge) === undefined || ctx.faults.bridgeState(node.name, bridge) === "missing")
  if (old !== undefined) {
    const prev = parseNet(old)
    const replug =
      prev.model !== next.model ||
      (prev.mac ?? "").toUpperCase() !== (next.mac ?? "").toUpperCase() ||
      prev.opts.queues !== next.opts.queues ||
      prev.opts.mtu !== next.opts.mtu ||
      prev.opts.bridge === undefined ||
      bridge === undefined
    if (!replug) {
      const moved = ["bridge", "tag", "trunks", "firewall"].some((o) => prev.opts[o] !== next.opts[o])
      return moved && missing ? { error: `interface ${bridge} does not exist\n` } : "done"
    }
  }
  if (!hotplugFeatures(vm.config.get("hotplug")).has("network")) return "skip"
  return missing
    ? {
        error: `VM ${vm.vmid} qmp command 'netdev_add' failed - network script /usr/libexec/qemu-server/pve-bridge-hotplug failed with status 512`
      }
    : "done"
}

/** qemu-server `parse_hotplug_features`: `1` (and unset) is `network,disk,usb`, `0` is none. */
const hotplugFeatures = (value: string | undefined): Set<string> =>
  value === undefined || value === "1"
    ? new Set(["network", "disk", "usb"])
    : value === "0"
      ? new Set()
      : new Set(value.split(",").map((f) => f.trim()))

/**
 * `PUT …/cloudinit` (qemu-server `vmconfig_update_cloudinit_drive`, under the config lock): the drive regenerated
 * from the config as it is, which drops what `[special:cloudinit]` recorded; a running VM gets the new ISO as its
 * medium, read by the guest when it next boots. A VM without a cloud-init drive is left as it is.
 */
export const regenerateCloudInit = async (
  ctx: SimContext,
  user: AuthUser,
  node: NodeState,
  vm: VmState
): Promise<void> => {
  ctx.auth.check(user, `/vms/${vm.vmid}`, "VM.Config.Cloudinit")
  await withFlock(ctx, vm, async () => {
    checkLock(vm)
    ctx.state.touch(vm)
    generateCloudInitDrive(node, vm)
    ctx.state.emit(vm, "changed")
  })
}

/** qemu-server's config writer: an `unusedN` whose volume a drive (current or pending) uses again is removed. */
export const dropReattachedUnused = (vm: VmState): void => {
  const used = new Set<string>()
  for (const m of [vm.config, vm.pending]) for (const [k, v] of m) if (DISK_KEY.test(k)) used.add(parseDrive(v).file)
  for (const [k, v] of [...vm.config]) if (/^unused\d+$/.test(k) && used.has(v)) vm.config.delete(k)
}

/** lvresize's size text: `2.20 GiB (563 extents)` (4 MiB extents). */
const lvSize = (bytes: number): string => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let v = bytes
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(2)} ${units[i]} (${Math.ceil(bytes / 4194304)} extents)`
}

export const resizeVm = async (
  ctx: SimContext,
  user: AuthUser,
  node: NodeState,
  vmid: number,
  params: Params,
  t: TaskContext | undefined
): Promise<void> => {
  const vm = getVm(ctx, node, vmid)
  const disk = one(params, "disk") ?? ""
  const sizeArg = one(params, "size") ?? ""
  await withFlock(ctx, vm, async () => {
    if (t !== undefined) await t.work(ctx.timings.resizeMs)
    const digest = one(params, "digest")
    if (digest !== undefined && digest !== ctx.state.digest(vm))
      throw new PveError(500, "checksum mismatch (file change by other user?)")
    if (!flag(params, "skiplock")) checkLock(vm)
    ctx.state.checkConfigWrite(node.name, vmid)
    const value = vm.config.get(disk)
    if (value === undefined) throw new PveError(500, `disk '${disk}' does not exist`)
    const d = parseDrive(value)
    if (d.file === "") throw new PveError(500, `disk '${disk}' has no associated volume`)
    if (isCdrom(d)) throw new PveError(500, "you can't resize a cdrom")
    const vid = parseVolid(d.file)
    if (vid !== undefined) ctx.auth.check(user, `/storage/${vid.storage}`, "Datastore.AllocateSpace")
    const s = vid === undefined ? undefined : node.storages.get(vid.storage)
    const vol = vid === undefined ? undefined : s?.volumes.get(vid.volname)
    // volume_size_info: the size of the volume itself, not the `size=` written in the config
    if (vol === undefined) throw new PveError(500, `Could not determine current size of volume '${d.file}'`)
    const req = parseDiskSize(sizeArg)
    if (req === undefined) throw PveError.param({ size: "value does not match the regex pattern" })
    const cur = vol.size
    const next = Math.floor(req.relative ? cur + req.bytes : req.bytes)
    if (next < cur) throw new PveError(500, "shrinking disks is not supported")
    if (next === cur) return
    const warnings =
      s === undefined ? [] : ensureResizeSpace(s, vol.volname, cur, next, ctx.faults.storageFull(node.name, s.id))
    vol.size = next
    if (t !== undefined) for (const w of warnings) t.log(w)
    if (t !== undefined && (s?.type === "lvmthin" || s?.type === "lvm")) {
      t.log(`  Size of logical volume pve/${vid?.volname} changed from ${lvSize(cur)} to ${lvSize(next)}.`)
      t.log(`  Logical volume pve/${vid?.volname} successfully resized.`)
    }
    const opts: Record<string, string> = { ...d.opts, size: renderSize(next) }
    delete opts.file
    ctx.state.touch(vm)
    vm.config.set(disk, renderDrive(d.file, opts))
  })
}

/**
 * qemu-server `move_vm_disk`'s checks of a move to another storage (`load_and_check_move`): run before the worker is
 * forked and again under the config flock. The disk exists, has a volume and is no CD-ROM; the target is another
 * storage (or another format), exists on the node, is enabled and allows `images`.
 */
const checkMove = (ctx: SimContext, node: NodeState, vmid: number, params: Params) => {
  const vm = getVm(ctx, node, vmid)
  checkLock(vm)
  const digest = one(params, "digest")
  if (digest !== undefined && digest !== ctx.state.digest(vm))
    throw new PveError(500, "detected modified configuration - file changed by other user? Try again.")
  const disk = one(params, "disk") ?? ""
  const value = vm.config.get(disk)
  if (value === undefined) throw new PveError(500, `disk '${disk}' does not exist`)
  const d = /^unused\d+$/.test(disk) ? { file: value, opts: {} as Record<string, string> } : parseDrive(value)
  if (d.file === "") throw new PveError(500, `disk '${disk}' has no associated volume`)
  if (isCdrom(d as ReturnType<typeof parseDrive>)) throw new PveError(500, "you can't move a cdrom")
  const vid = parseVolid(d.file)
  if (vid === undefined) throw new PveError(500, `unable to parse volume ID '${d.file}'`)
  const from = node.storages.get(vid.storage)
  const volume = from?.volumes.get(vid.volname)
  const storeid = one(params, "storage") ?? ""
  const format = one(params, "format")
  if (vid.storage === storeid && (format === undefined || volume === undefined || volume.format === format))
    throw new PveError(500, "you can't move to the same storage with same format")
  const to = node.storages.get(storeid)
  if (to === undefined) {
    const elsewhere = [...ctx.state.nodes.values()].some((n) => n.storages.has(storeid))
    throw new PveError(
      500,
      elsewhere ? `storage '${storeid}' is not available on node '${node.name}'` : `storage '${storeid}' does not exist`
    )
  }
  if (!to.enabled) throw new PveError(500, `storage '${storeid}' is disabled`)
  if (!to.content.has("images")) throw PveError.param({ storage: `storage '${storeid}' does not support vm images` })
  return { vm, disk, drive: d, vid, from, volume, to, format }
}

/**
 * `POST …/move_disk` with `storage` (qemu-server `move_vm_disk`; moving to another VM, `target-vmid`, is not
 * simulated): the checks, then a `qmmove` task that holds the VM's config flock throughout (no `lock:` is set), copies
 * the volume to a new one on the target storage (drive-mirror while the VM runs, so it keeps running; a copy when it
 * is stopped), points the drive at it with its options and new size kept, and keeps the source as `unusedN`, or frees
 * it with `delete=1`. A failure of the allocation or the copy is `storage migration failed: …`, the new volume freed.
 */
export const moveDisk = (ctx: SimContext, user: AuthUser, node: NodeState, vmid: number, params: Params): Task => {
  const target = one(params, "target-vmid")
  const storage = one(params, "storage")
  if (target !== undefined && storage !== undefined) {
    const msg = "either set 'storage' or 'target-vmid', but not both"
    throw PveError.param({ "target-vmid": msg, storage: msg })
  }
  if (target !== undefined) throw new PveError(501, "move_disk to another VM (target-vmid) is not simulated")
  if (storage === undefined) {
    const msg = "both 'storage' and 'target-vmid' missing, either needs to be set"
    throw PveError.param({ "target-vmid": msg, storage: msg })
  }
  ctx.auth.check(user, `/storage/${storage}`, "Datastore.AllocateSpace")
  const first = checkMove(ctx, node, vmid, params)
  return ctx.tasks.start(
    node,
    "qmmove",
    String(vmid),
    user,
    (t) =>
      withFlock(ctx, first.vm, async () => {
        const { vm, disk, drive, vid, from, volume, to, format } = checkMove(ctx, node, vmid, params)
        t.log(`copying volume '${drive.file}' from current storage '${vid.storage}' to target storage '${to.id}'`)
        const running = vm.status === "running"
        let volname = ""
        try {
          if (from === undefined || volume === undefined)
            throw new PveError(500, `no such logical volume ${vid.storage}/${vid.volname}`)
          const size = volume.size
          const fmt = isFileStorage(to) ? (format ?? (volume.format === "raw" ? "raw" : "qcow2")) : "raw"
          volname = nextDiskName(to, vmid, fmt)
          ensureSpace(to, size, ctx.faults.storageFull(node.name, to.id), volname)
          if (to.type === "lvmthin" || to.type === "lvm") t.log(`  Logical volume "${volname}" created.`)
          addVolume(to, {
            volname,
            content: "images",
            format: fmt,
            size,
            ctime: Math.floor(ctx.clock.now() / 1000),
            vmid
          })
          if (running) t.log(`drive mirror is starting for drive-${disk}`)
          await t.work(ctx.timings.moveDiskMs)
          const total = humanBytes(size)
          if (running) {
            t.log(`drive-${disk}: transferred ${total} of ${total} (100.00%) in 1s, ready`)
            t.log("all 'mirror' jobs are ready")
            t.log(`drive-${disk}: Completing block job...`)
            t.log(`drive-${disk}: Completed successfully.`)
            t.log(`drive-${disk}: mirror-job finished`)
          } else {
            t.log(`transferred ${total} of ${total} (100.00%)`)
          }
          const opts: Record<string, string> = { ...drive.opts, size: renderSize(size) }
          delete opts.file
          vm.config.set(
            disk,
            /^unused\d+$/.test(disk) ? `${to.id}:${volname}` : renderDrive(`${to.id}:${volname}`, opts)
          )
        } catch (e) {
          if (volname !== "") to.volumes.delete(volname)
          throw new PveError(500, `storage migration failed: ${e instanceof Error ? e.message : String(e)}`)
        }
        if (!flag(params, "delete")) {
          let n = 0
          while (vm.config.has(`unused${n}`)) n++
          vm.config.set(`unused${n}`, drive.file)
          t.log(`adding source volume '${drive.file}' as 'unused${n}' to config`)
        }
        ctx.state.touch(vm)
        ctx.state.emit(vm, "changed")
        if (flag(params, "delete")) {
          t.log(`removing source volume '${drive.file}' after successful copy`)
          from?.volumes.delete(vid.volname)
        }
      }),
    vmid
  )
}

/**
 * PVE's `qga_check_running`: a `guest-ping` with a 3 s timeout (simulated time) before every agent command. While the
 * agent is not up (booting, paused, never started), the call waits for that ping until it times out, or until the
 * agent comes up within it.
 */
export const GuestPingTimeoutMs = 3_000

/** Agent checks (§4.16), answered after the guest-ping when the agent is enabled but not (yet) answering. */
export const agentCheck = async (
  ctx: SimContext,
  user: AuthUser,
  node: NodeState,
  vmid: number,
  monitorPriv: string
): Promise<VmState> => {
  ctx.auth.check(user, `/vms/${vmid}`, ...(ctx.state.featuresOf(node.name).nine ? [monitorPriv] : ["VM.Monitor"]))
  const check = (): { vm: VmState; running: boolean } => {
    const vm = getVm(ctx, node, vmid)
    const agent = vm.config.get("agent")
    if (agent === undefined) throw new PveError(500, "No QEMU guest agent configured")
    if (vm.status !== "running") throw new PveError(500, `VM ${vmid} is not running`)
    // agent disabled: QEMU has no agent channel, so the ping fails at once
    if (!agentEnabled(agent)) throw new PveError(500, "QEMU guest agent is not running")
    return { vm, running: ctx.guests.agentRunning(vm) }
  }
  const first = check()
  if (first.running) return first.vm
  await ctx.guests.waitForAgent(first.vm, GuestPingTimeoutMs)
  const after = check()
  if (!after.running) throw new PveError(500, "QEMU guest agent is not running")
  return after.vm
}

export const agentSchema: Record<string, ParamSpec> = { node: pveNode, vmid: pveVmid }
export const execSchema: Record<string, ParamSpec> = {
  ...agentSchema,
  command: arr({ optional: false }),
  "input-data": str({ maxLength: 65536 })
}
