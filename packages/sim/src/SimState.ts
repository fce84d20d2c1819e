import { createHash, randomUUID } from "node:crypto"
import type { SimClock } from "./Clock.js"
import type { GuestState } from "./Guest.js"
import type { CloudInitDrive } from "./internal/CloudInitDrive.js"
import { parseDiskSize, parsePropertyString, toRecord } from "./internal/PropertyString.js"
import type { VersionFeatures } from "./internal/Version.js"
import { Operations } from "./Operations.js"
import { PveError } from "./PveError.js"
import type { Task } from "./Tasks.js"

export interface Volume {
  /** volume name inside the storage: `iso/jammy.img`, `vm-100-disk-0`, `snippets/user.yaml` */
  readonly volname: string
  readonly content: string
  readonly format: string
  size: number
  readonly ctime: number
  readonly vmid?: number
  sha256?: string
  /** bytes, kept only for small files (snippets) */
  data?: Buffer
}

export interface StorageState {
  readonly id: string
  readonly type: "dir" | "lvmthin" | "lvm" | "zfspool" | "nfs"
  content: Set<string>
  capacity: number
  readonly path: string | undefined
  readonly shared: boolean
  readonly volumes: Map<string, Volume>
  enabled: boolean
}

export interface BridgeState {
  readonly name: string
  active: boolean
  readonly address: string | undefined
  readonly comments: string | undefined
}

export interface NodeState {
  readonly name: string
  readonly cpus: number
  readonly memory: number
  readonly address: string
  apiPort: number
  sshPort: number
  online: boolean
  readonly bridges: Map<string, BridgeState>
  readonly storages: Map<string, StorageState>
  /** every task started on the node, by UPID, in the order they started */
  readonly tasks: Map<string, Task>
  /**
   * `/var/log/pve/tasks/index`: the stopped tasks in the order they ended (PVE archives a task there when its worker
   * exits; `GET /nodes/{node}/tasks` reads it backwards)
   */
  readonly taskIndex: Array<Task>
  readonly bootTime: number
  fingerprint: string
}

export type QmpStatus = "running" | "paused" | "prelaunch" | "suspended" | "stopped"

interface RrdSnapshot {
  readonly status: string
  readonly name: string | undefined
  readonly known: boolean
}

/**
 * What happened to a VM, for the guests and k3s: `resumed` is a start that loaded the RAM saved by a suspend to disk
 * (the guest goes on, nothing boots).
 */
export type VmEvent = "started" | "resumed" | "stopped" | "destroyed" | "changed"

export interface VmState {
  readonly vmid: number
  node: string
  readonly type: "qemu" | "lxc"
  /** current config (insertion order kept; rendering sorts) */
  config: Map<string, string>
  /** [PENDING] values */
  pending: Map<string, string>
  pendingDelete: Set<string>
  /**
   * `[special:cloudinit]`: the cloud-init settings changed on the running VM since its drive was generated, with the
   * values the drive has (`added`: keys it did not have). Undefined when there is no such section.
   */
  cloudinitSection: Map<string, string> | undefined
  /** What the cloud-init drive was last generated from (at a start, or `PUT …/cloudinit`); undefined: never. */
  cloudInitDrive: CloudInitDrive | undefined
  status: "running" | "stopped"
  qmpstatus: QmpStatus
  startedAt: number | undefined
  pid: number | undefined
  /** guest IP (once assigned) */
  ip: string | undefined
  /** when the guest agent answers (epoch ms); undefined = not yet / never */
  agentReadyAt: number | undefined
  /** when cloud-init has finished (epoch ms) */
  bootDoneAt: number | undefined
  guest: GuestState | undefined
  /**
   * The guest whose RAM `qm suspend --todisk` saved in `vmstate`: while the VM is stopped its processes exist, frozen,
   * and a start that loads the state (`loadsState`) continues them instead of booting.
   */
  hibernated?: GuestState | undefined
  /** the per-VM config flock is held by a running worker */
  flock: boolean
  rrd: RrdSnapshot
  lastChangeAt: number
}

/** Keys whose config values are JSON integers. */
const INTEGER_KEYS = new Set(["cores", "sockets", "vcpus", "balloon", "shares", "cpuunits", "migrate_speed"])
/** Keys whose config values are 0/1 booleans. */
export const BOOLEAN_KEYS = new Set([
  "onboot",
  "protection",
  "template",
  "numa",
  "tablet",
  "acpi",
  "kvm",
  "localtime",
  "freeze",
  "reboot",
  "ciupgrade"
])

/** qemu-server `valid_drive_names()`, in its order (the `disk` enum of `resize`). */
export const DRIVE_NAMES: ReadonlyArray<string> = [
  ...Array.from({ length: 4 }, (_, i) => `ide${i}`),
  ...Array.from({ length: 31 }, (_, i) => `scsi${i}`),
  ...Array.from({ length: 16 }, (_, i) => `virtio${i}`),
  ...Array.from({ length: 6 }, (_, i) => `sata${i}`),
  "efidisk0",
  "tpmstate0"
]

/** qemu-server `valid_drive_names_with_unused()` (the `disk` enum of `move_disk`). */
export const DRIVE_NAMES_WITH_UNUSED: ReadonlyArray<string> = [
  ...DRIVE_NAMES,
  ...Array.from({ length: 256 }, (_, i) => `unused${i}`)
]

export const DISK_KEY = /^(scsi([0-9]|[12][0-9]|30)|virtio([0-9]|1[0-5])|sata[0-5]|ide[0-3]|efidisk0|tpmstate0)$/
export const NET_KEY = /^net([0-9]|[12][0-9]|3[01])$/

export interface DriveInfo {
  readonly file: string
  readonly opts: Record<string, string>
}

export const parseDrive = (value: string): DriveInfo => {
  const { entries } = parsePropertyString(value, "file")
  const rec = toRecord(entries)
  return { file: rec.file ?? "", opts: rec }
}

export const isCdrom = (d: DriveInfo): boolean =>
  d.opts.media === "cdrom" || d.file.endsWith(":cloudinit") || /cloudinit/.test(d.file)

export const renderDrive = (file: string, opts: Record<string, string>): string => {
  const keys = Object.keys(opts)
    .filter((k) => k !== "file")
    .sort()
  return [file, ...keys.map((k) => `${k}=${opts[k]}`)].join(",")
}

export const parseNet = (value: string): { model: string; mac: string | undefined; opts: Record<string, string> } => {
  const { entries } = parsePropertyString(value, "model")
  const models = ["virtio", "e1000", "e1000e", "vmxnet3", "rtl8139", "e1000-82540em", "i82551", "ne2k_pci", "pcnet"]
  let model = "virtio"
  let mac: string | undefined
  const opts: Record<string, string> = {}
  for (const [k, v] of entries) {
    if (k === "model") model = v
    else if (models.includes(k)) {
      model = k
      mac = v
    } else if (k === "macaddr") mac = v
    else opts[k] = v
  }
  return { model, mac, opts }
}

/**
 * The running VM's guest is cut off the network: it has NICs and each has its link set down (`link_down=1`, which
 * qemu-server applies to a running VM at once: `qemu_set_link_status`). Nothing reaches it over the network (SSH, its
 * k3s's peers) and its kubelet posts nothing; the guest agent's channel is a virtio serial port and still answers.
 */
export const networkCut = (vm: VmState): boolean => {
  if (vm.status !== "running") return false
  const nics = [...vm.config.entries()].filter(([k]) => NET_KEY.test(k)).map(([, v]) => parseNet(v))
  return nics.length > 0 && nics.every((n) => /^(?:1|on|yes|true)$/i.test(n.opts.link_down ?? ""))
}

export class SimState {
  readonly nodes = new Map<string, NodeState>()
  readonly vms = new Map<number, VmState>()
  rrdIntervalMs = 10_000
  /** every simulated operation with its simulated duration and what it waited for (`criticalPath`) */
  readonly operations: Operations
  private pidCounter = 100_000
  private readonly listeners: Array<(vm: VmState, event: VmEvent) => void> = []

  /**
   * Corosync votes beyond the nodes' own (one each): a QDevice's vote (`qdevice`), and the expected votes an operator
   * set with `pvecm expected N` (`expected`).
   */
  quorumOptions: { readonly qdevice: boolean; readonly expected?: number | undefined } = { qdevice: false }

  /**
   * The cluster's quorum as votequorum computes it: every online node has one vote (a QDevice one more, while a node
   * is up to ask it); quorate when the votes reach a majority of the expected votes (every node's and the QDevice's,
   * or what `pvecm expected` set).
   */
  quorum(): { readonly quorate: boolean; readonly votes: number; readonly expected: number } {
    const online = [...this.nodes.values()].filter((n) => n.online).length
    const qdevice = this.quorumOptions.qdevice ? 1 : 0
    const votes = online + (online > 0 ? qdevice : 0)
    const expected = this.quorumOptions.expected ?? this.nodes.size + qdevice
    return { quorate: votes >= Math.floor(expected / 2) + 1, votes, expected }
  }

  /** `PVE::Cluster::check_cfs_quorum`: pmxcfs is read-only without quorum (create, start, clone, migrate call it). */
  checkCfsQuorum(): void {
    if (!this.quorum().quorate) throw new PveError(500, "cluster not ready - no quorum?")
  }

  /**
   * A guest config written to /etc/pve without quorum: pmxcfs refuses the temporary file `cfs_write_file` writes
   * (`PVE::Tools::file_set_contents`), so a config update, resize or destroy fails on its write.
   */
  checkConfigWrite(node: string, vmid: number): void {
    if (!this.quorum().quorate)
      throw new PveError(
        500,
        `unable to open file '/etc/pve/nodes/${node}/qemu-server/${vmid}.conf.tmp.${this.nextPid()}' - Permission denied`
      )
  }

  /** The nodes whose PVE version is not the cluster's (`features`): a rolling upgrade under way. */
  private readonly nodeFeatures = new Map<string, VersionFeatures>()

  constructor(
    readonly clock: SimClock,
    readonly features: VersionFeatures,
    readonly clusterName: string
  ) {
    this.rrdEpoch = clock.now()
    this.operations = new Operations(clock)
  }

  /** Set the PVE version `node` runs (each node of a cluster runs its own pve-manager). */
  setNodeFeatures(node: string, features: VersionFeatures): void {
    this.nodeFeatures.set(node, features)
  }

  /**
   * What the PVE version of `node` does: its API's answers and quirks, and the handlers of the requests proxied to it.
   * The scenario's version for a node without one of its own.
   */
  featuresOf(node: string | undefined): VersionFeatures {
    return (node === undefined ? undefined : this.nodeFeatures.get(node)) ?? this.features
  }

  private readonly runStateListeners: Array<(vm: VmState) => void> = []

  /** Called after every change of a VM's `status` / `qmpstatus` (`setRun`). */
  onRunState(fn: (vm: VmState) => void): void {
    this.runStateListeners.push(fn)
  }

  onVmEvent(fn: (vm: VmState, event: VmEvent) => void): void {
    this.listeners.push(fn)
  }

  emit(vm: VmState, event: VmEvent): void {
    for (const l of this.listeners) l(vm, event)
  }

  nextPid(): number {
    this.pidCounter += 1 + Math.floor(Math.random() * 50)
    return this.pidCounter
  }

  getNode(name: string): NodeState | undefined {
    return this.nodes.get(name)
  }

  // ---- RRD lag -------------------------------------------------------------------------------------------------

  /** pvestatd broadcasts every rrdIntervalMs (scaled), counted from the sim's start. */
  private readonly rrdEpoch: number

  private boundary(): number {
    const interval = this.clock.scaled(this.rrdIntervalMs)
    if (interval <= 0) return Number.POSITIVE_INFINITY
    const now = this.clock.now()
    return this.rrdEpoch + Math.floor((now - this.rrdEpoch) / interval) * interval
  }

  /** Bring the RRD snapshot up to date if a broadcast happened since the last change. */
  refreshRrd(vm: VmState): void {
    if (vm.lastChangeAt <= this.boundary()) {
      vm.rrd = { status: vm.qmpstatus, name: vm.config.get("name") ?? `VM ${vm.vmid}`, known: true }
    }
  }

  /** Call before mutating a VM's run state or name. */
  touch(vm: VmState): void {
    this.refreshRrd(vm)
    vm.lastChangeAt = this.clock.now()
  }

  /** Create an empty VM entry (create stub). */
  newVm(vmid: number, node: string, type: "qemu" | "lxc", config: Map<string, string>, fresh: boolean): VmState {
    const now = this.clock.now()
    const vm: VmState = {
      vmid,
      node,
      type,
      config,
      pending: new Map(),
      pendingDelete: new Set(),
      cloudinitSection: undefined,
      cloudInitDrive: undefined,
      status: "stopped",
      qmpstatus: "stopped",
      startedAt: undefined,
      pid: undefined,
      ip: undefined,
      agentReadyAt: undefined,
      bootDoneAt: undefined,
      guest: undefined,
      flock: false,
      rrd: fresh
        ? { status: "unknown", name: undefined, known: false }
        : { status: "stopped", name: config.get("name") ?? `VM ${vmid}`, known: true },
      lastChangeAt: fresh ? now : 0
    }
    this.vms.set(vmid, vm)
    return vm
  }

  setRun(vm: VmState, status: "running" | "stopped", qmp: QmpStatus): void {
    this.touch(vm)
    vm.status = status
    vm.qmpstatus = qmp
    if (status === "running" && vm.pid === undefined) {
      vm.pid = this.nextPid()
      vm.startedAt = this.clock.now()
    }
    if (status === "stopped") {
      vm.pid = undefined
      vm.startedAt = undefined
      vm.agentReadyAt = undefined
      vm.bootDoneAt = undefined
    }
    for (const l of this.runStateListeners) l(vm)
  }

  // ---- config helpers ------------------------------------------------------------------------------------------

  configFilePath(vm: { node: string; vmid: number; type: "qemu" | "lxc" }): string {
    return `nodes/${vm.node}/${vm.type === "lxc" ? "lxc" : "qemu-server"}/${vm.vmid}.conf`
  }

  renderConfigFile(vm: VmState): string {
    const lines: Array<string> = []
    const desc = vm.config.get("description")
    if (desc !== undefined) for (const l of desc.split("\n")) lines.push(`#${l}`)
    for (const k of [...vm.config.keys()].sort()) if (k !== "description") lines.push(`${k}: ${vm.config.get(k)}`)
    if (vm.pending.size > 0 || vm.pendingDelete.size > 0) {
      lines.push("", "[PENDING]")
      if (vm.pendingDelete.size > 0) lines.push(`delete: ${[...vm.pendingDelete].join(",")}`)
      for (const k of [...vm.pending.keys()].sort()) lines.push(`${k}: ${vm.pending.get(k)}`)
    }
    const ci = vm.cloudinitSection
    if (ci !== undefined && [...vm.config.values()].some((v) => new RegExp(`vm-${vm.vmid}-cloudinit`).test(v))) {
      lines.push("", "[special:cloudinit]")
      for (const k of [...ci.keys()].sort()) lines.push(`${k}: ${ci.get(k)}`)
    }
    return `${lines.join("\n")}\n`
  }

  digest(vm: VmState): string {
    return createHash("sha1").update(this.renderConfigFile(vm)).digest("hex")
  }

  /** A config value typed as GET config on `node` (the VM's) returns it. */
  typedValue(key: string, value: string, node?: string): string | number {
    if (INTEGER_KEYS.has(key) && /^-?\d+$/.test(value)) return Number(value)
    if (BOOLEAN_KEYS.has(key)) return value === "1" ? 1 : 0
    if (key === "memory" && !this.featuresOf(node).memoryString && /^\d+$/.test(value)) return Number(value)
    if (key === "cipassword") return "**********"
    return value
  }

  /** Config as returned by GET config (pending merged unless current=1). */
  configView(vm: VmState, current: boolean): Record<string, string | number> {
    const merged = new Map(vm.config)
    if (!current) {
      for (const [k, v] of vm.pending) merged.set(k, v)
      for (const k of vm.pendingDelete) merged.delete(k)
    }
    const out: Record<string, string | number> = {}
    for (const k of [...merged.keys()].sort()) out[k] = this.typedValue(k, merged.get(k) ?? "", vm.node)
    out.digest = this.digest(vm)
    return out
  }

  memoryMiB(vm: VmState): number {
    const m = vm.config.get("memory")
    if (m === undefined) return 512
    const { entries } = parsePropertyString(m, "current")
    const cur = toRecord(entries).current
    return cur !== undefined ? Number(cur) : 512
  }

  cpus(vm: VmState): number {
    const vcpus = vm.config.get("vcpus")
    if (vcpus !== undefined) return Number(vcpus)
    const sockets = Number(vm.config.get("sockets") ?? 1)
    const cores = Number(vm.config.get("cores") ?? 1)
    const node = this.nodes.get(vm.node)
    return Math.min(sockets * cores, node?.cpus ?? sockets * cores)
  }

  bootDisk(vm: VmState): string | undefined {
    const boot = vm.config.get("boot")
    if (boot !== undefined) {
      const m = /order=([^,]+)/.exec(boot)
      for (const dev of (m?.[1] ?? "").split(";")) {
        const v = vm.config.get(dev)
        if (v !== undefined && DISK_KEY.test(dev) && !isCdrom(parseDrive(v))) return dev
      }
    }
    for (const prefix of ["ide", "scsi", "virtio", "sata"]) {
      for (const k of [...vm.config.keys()].filter((x) => x.startsWith(prefix) && DISK_KEY.test(x)).sort()) {
        const d = parseDrive(vm.config.get(k) ?? "")
        if (!isCdrom(d)) return k
      }
    }
    return undefined
  }

  maxdisk(vm: VmState): number {
    const k = this.bootDisk(vm)
    if (k === undefined) return 0
    const size = parseDrive(vm.config.get(k) ?? "").opts.size
    return size === undefined ? 0 : (parseDiskSize(size)?.bytes ?? 0)
  }

  uptime(vm: VmState): number {
    return vm.startedAt === undefined ? 0 : Math.floor((this.clock.now() - vm.startedAt) / 1000)
  }

  /** vmstatus() entry for GET /nodes/{n}/qemu. */
  listEntry(vm: VmState, full: boolean): Record<string, unknown> {
    const running = vm.status === "running"
    const maxmem = this.memoryMiB(vm) * 1024 * 1024
    const e: Record<string, unknown> = {
      vmid: vm.vmid,
      name: vm.config.get("name") ?? `VM ${vm.vmid}`,
      status: vm.status,
      uptime: this.uptime(vm),
      cpus: this.cpus(vm),
      ...this.usage(vm, running)
    }
    if (running && vm.pid !== undefined) e.pid = vm.pid
    const lock = vm.config.get("lock")
    if (lock !== undefined) e.lock = lock
    const tags = vm.config.get("tags")
    if (tags !== undefined) e.tags = tags
    if (vm.config.get("template") === "1") e.template = 1
    if (vm.config.get("serial0") !== undefined) e.serial = 1
    if (full) {
      e.qmpstatus = vm.qmpstatus
      if (running) {
        e.balloon = maxmem
        e.freemem = Math.floor(maxmem * 0.5)
        e["running-machine"] = "pc-i440fx-8.1+pve0"
        e["running-qemu"] = "8.1.5"
      }
    }
    return e
  }

  statusCurrent(vm: VmState): Record<string, unknown> {
    const e = this.listEntry(vm, true)
    e.ha = { managed: 0 }
    const agent = vm.config.get("agent")
    if (agent !== undefined && agentEnabled(agent)) e.agent = 1
    if (vm.status === "running") {
      e.nics = { [`tap${vm.vmid}i0`]: { netin: 123456, netout: 65432 } }
      e["proxmox-support"] = { "pbs-dirty-bitmap": 1, "query-bitmap-info": 1 }
    }
    return e
  }

  /** /cluster/resources entries for guests, status = RRD qmpstatus, lagging. */
  /** The simulated load figures of a VM, as the qemu list and /cluster/resources report them. */
  usage(vm: VmState, running: boolean): Record<string, number> {
    const maxmem = this.memoryMiB(vm) * 1024 * 1024
    return {
      cpu: running ? 0.0123 : 0,
      maxmem,
      mem: running ? Math.floor(maxmem * 0.4) : 0,
      maxdisk: this.maxdisk(vm),
      disk: 0,
      netin: running ? 123456 : 0,
      netout: running ? 65432 : 0,
      diskread: running ? 1234567 : 0,
      diskwrite: running ? 765432 : 0
    }
  }

  resourceEntries(): Array<Record<string, unknown>> {
    const keys = [...this.vms.keys()].map(String).sort()
    const out: Array<Record<string, unknown>> = []
    for (const k of keys) {
      const vm = this.vms.get(Number(k))
      if (vm === undefined) continue
      this.refreshRrd(vm)
      const e: Record<string, unknown> = {
        id: `${vm.type}/${vm.vmid}`,
        type: vm.type,
        vmid: vm.vmid,
        node: vm.node
      }
      if (vm.rrd.known) {
        const running = vm.rrd.status !== "stopped"
        Object.assign(e, {
          name: vm.rrd.name,
          status: vm.rrd.status,
          template: vm.config.get("template") === "1" ? 1 : 0,
          maxcpu: this.cpus(vm),
          ...this.usage(vm, running),
          uptime: this.uptime(vm)
        })
      } else {
        e.status = "unknown"
      }
      const lock = vm.config.get("lock")
      if (lock !== undefined) e.lock = lock
      const tags = vm.config.get("tags")
      if (tags !== undefined) e.tags = tags
      out.push(e)
    }
    return out
  }

  /**
   * A storage as pve-storage's `storage_info` reports it on its node: a disabled one (`storage_check_enabled` refuses it)
   * is never activated, so it stays `active: 0` with no sizes; `used_fraction` only where there is a total (Status.pm).
   */
  storageStatus(_node: NodeState, s: StorageState): Record<string, unknown> {
    const base = {
      storage: s.id,
      type: s.type,
      content: [...s.content].sort().join(","),
      shared: s.shared ? 1 : 0,
      enabled: s.enabled ? 1 : 0
    }
    if (!s.enabled) return { ...base, active: 0, total: 0, used: 0, avail: 0 }
    const used = this.storageUsed(s)
    return {
      ...base,
      active: 1,
      total: s.capacity,
      used,
      avail: Math.max(0, s.capacity - used),
      ...(s.capacity === 0 ? {} : { used_fraction: Math.round((used / s.capacity) * 10000) / 10000 })
    }
  }

  /** The storage.cfg entry of a storage, as `GET /storage` returns it. */
  storageConfig(s: StorageState): Record<string, unknown> {
    const e: Record<string, unknown> = { storage: s.id, type: s.type, content: [...s.content].sort().join(",") }
    if (s.path !== undefined && (s.type === "dir" || s.type === "nfs")) e.path = s.path
    if (s.type === "lvmthin") Object.assign(e, { vgname: "pve", thinpool: "data" })
    if (s.type === "lvm") e.vgname = "pve"
    if (s.type === "zfspool") Object.assign(e, { pool: `rpool/${s.id}`, sparse: 1 })
    if (s.shared) e.shared = 1
    if (!s.enabled) e.disable = 1
    e.digest = this.storageCfgDigest()
    return e
  }

  /** SHA-1 of the cluster's storage configuration (changes when a storage is added or changed). */
  storageCfgDigest(): string {
    const h = createHash("sha1")
    for (const n of this.nodes.values())
      for (const s of n.storages.values()) h.update(`${n.name}:${s.id}:${s.type}:${[...s.content].sort()}\n`)
    return h.digest("hex")
  }

  storageUsed(s: StorageState): number {
    let used = 0
    for (const v of s.volumes.values()) used += v.size
    return used
  }

  newUuid(): string {
    return randomUUID()
  }
}

export const agentEnabled = (value: string): boolean => {
  const { entries } = parsePropertyString(value, "enabled")
  const rec = toRecord(entries)
  return rec.enabled === "1" || rec.enabled === "true" || rec.enabled === "yes" || rec.enabled === "on"
}
