import { type CloudInitChange, encodeSshKeys, type VmPending } from "@homelab/proxmox-client"
import { type BridgeFact, bridgeFindings } from "@homelab/vm-health"
import type { VmSpec } from "./Action.js"
import { cpuModelProblem } from "./cpuModelFinding.js"
import type { DesiredCloudInit, DesiredVm } from "./Desired.js"
import { cicustomProperty } from "./desiredFromConfig.js"
import { tagList } from "./Marks.js"
import { isPasswordMark, passwordMarkState } from "./PasswordMark.js"

/**
 * When a change reaches the running VM: `now` (PVE applies it to the running VM, or it is metadata), `online` (a
 * disk grown while the VM runs), `moved` (a disk copied to another storage while the VM runs), `restart` (PVE keeps it pending until the VM restarts), `next-boot` (cloud-init: in
 * the config at once, on the drive the guest reads when PVE next starts the VM; a reboot inside the guest reads the
 * drive it has).
 */
export type DriftEffect = "now" | "online" | "moved" | "restart" | "next-boot"

/** One setting that differs from homelab.yaml, as a person reads it (`memory 16384 → 20480 MiB`). */
export interface FieldChange {
  /** The setting: `cores`, `memory`, `scsi0`, `net1`, `tags`, `cloud-init user`, … */
  readonly field: string
  readonly from: string
  readonly to: string
  readonly effect: DriftEffect
}

/** What apply sends to make the VM match: one config update (with the digest) and disk grows. */
export interface ConfigEdit {
  /** `PUT …/config` parameters, as PVE takes them (`sshkeys` already encoded). */
  readonly set: Readonly<Record<string, string>>
  /** Keys to remove (`delete=`). */
  readonly delete: ReadonlyArray<string>
  /**
   * Send `cipassword` from homelab.yaml (a secret: never in the plan). Its mark (`PasswordMark.ts`) is in `set.tags`
   * of the same update.
   */
  readonly password: boolean
  /** Disks to grow, to `size` (`128G`). */
  readonly resize: ReadonlyArray<{ readonly disk: string; readonly size: string; readonly bytes: number }>
  /**
   * The disk to move to another storage (`POST …/move_disk`, the source freed), after the update and the grows;
   * absent when every disk is on the storage homelab.yaml asks.
   */
  readonly move?: { readonly disk: string; readonly storage: string } | undefined
  /**
   * Cloud-init settings change: they reach the guest when PVE next starts the VM (the running VM is marked
   * `homelab-cloudinit` in the same update, by `planDrift`).
   */
  readonly cloudInit: boolean
}

/** Something homelab.yaml asks that apply will not do, and why. */
export interface DriftRefusal {
  /**
   * The finding's code: `vm.disk-shrink`, or the create preflight's `bridge.missing` / `bridge.inactive` /
   * `vm.cpu-model`.
   */
  readonly code: string
  readonly field: string
  readonly message: string
  readonly hint: string
}

/** A VM of ours against homelab.yaml: what differs, how apply fixes it, what already waits for a restart. */
export interface VmDrift {
  readonly changes: ReadonlyArray<FieldChange>
  readonly edit: ConfigEdit
  /** Managed settings PVE already holds until a restart (set by an earlier run, or by hand to the wanted value). */
  readonly pending: ReadonlyArray<FieldChange>
  readonly refused: ReadonlyArray<DriftRefusal>
  /**
   * The bridges a NIC of homelab.yaml is to be attached to: by this edit (a NIC added, or moved to another bridge), or
   * by a restart (a NIC PVE holds pending). Empty when the NICs stay as they are.
   */
  readonly attaches: ReadonlyArray<string>
  /**
   * Why the VM's password (set, and PVE shows it masked) could not be compared with `vm.password`: `unmarked` (no
   * mark: set before homelab marked passwords, or by hand) and `other-key` (marked with another API token secret)
   * write the mark of `vm.password` without sending the password (a `cloud-init password mark` change, applied now);
   * `no-key` (the desired VM carries no `passwordMark`) leaves it as it is. Absent when there is nothing to say.
   */
  readonly passwordUnknown?: "unmarked" | "other-key" | "no-key" | undefined
}

/** The field of the change that writes or removes the password mark alone (the password is not sent). */
export const PasswordMarkField = "cloud-init password mark"

/**
 * The node's bridges (`GET /nodes/{node}/network`), when they were read: a NIC is attached only to one it has; and its
 * CPU models (`GET …/capabilities/qemu/cpu`), when they were read: the CPU type is changed only to one it lists.
 */
export interface DriftNode {
  readonly node: string
  readonly bridges: ReadonlyArray<BridgeFact>
  readonly cpuModels?: ReadonlyArray<string> | undefined
}

/** What homelab.yaml asks of one VM, for the fields drift covers (sizes already derived for the node). */
export interface DriftTarget {
  readonly cores: number
  readonly memoryMiB: number
  readonly sockets?: number | undefined
  readonly balloonMiB?: number | undefined
  readonly cpuType: string
  readonly diskGiB: number
  /** The storage the boot disk is to be on (`nodes[].storage`); not compared when undefined. */
  readonly storage?: string | undefined
  readonly bridges: ReadonlyArray<string>
  readonly tags: ReadonlyArray<string>
  readonly onboot?: boolean | undefined
  readonly description?: string | undefined
  readonly cloudInit: DesiredCloudInit
}

/**
 * What homelab.yaml asks of a VM, as drift compares it: the sizes derived for its node (`vmSpec`), everything else as
 * homelab.yaml has it (read from the desired VM, not from the spec a create sends, so that a setting the spec or the
 * create leaves out shows up as drift of a VM just created).
 */
export const driftTargetOf = (spec: VmSpec, vm: DesiredVm): DriftTarget => ({
  cores: spec.cores,
  memoryMiB: spec.memoryMiB,
  sockets: vm.sockets,
  balloonMiB: vm.balloonMiB,
  cpuType: spec.cpuType,
  diskGiB: spec.diskGiB,
  storage: spec.storage,
  bridges: spec.bridges,
  tags: spec.tags,
  onboot: vm.onboot,
  description: vm.description,
  cloudInit: vm.cloudInit
})

/** PVE keeps the notes without their trailing whitespace (qemu-server's config parser strips it). */
const notesAsKept = (text: string): string => text.replace(/\s+$/, "")

const GiB = 1024 ** 3
const units: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: GiB, T: 1024 * GiB }

/** `size=` of a drive string in bytes (`64G`, `1028M`, a bare number is bytes). */
export const driveSizeBytes = (drive: string | undefined): number | undefined => {
  const m = /(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?:,|$)/.exec(drive ?? "")
  if (m === null) return undefined
  return Math.round(Number(m[1]) * (units[m[2] ?? ""] ?? 1))
}

/** Bytes as PVE writes sizes: the largest whole unit (`64G`, `1028M`). */
export const formatSize = (bytes: number): string => {
  for (const unit of ["T", "G", "M", "K"] as const) {
    const u = units[unit] as number
    if (bytes % u === 0) return `${bytes / u}${unit}`
  }
  return `${bytes}`
}

/** The storage of a drive's volume (`local-lvm` of `local-lvm:vm-101-disk-0,size=32G`); undefined for a path. */
export const driveStorage = (drive: string | undefined): string | undefined => {
  const volume = propertyMap(drive).get("file") ?? propertyMap(drive).get("")
  return /^([a-z][a-z0-9\-_.]*[a-z0-9]):/i.exec(volume ?? "")?.[1]
}

/** `key=value` parts of a property string; a part without `=` is under `""` (the default key). */
const propertyMap = (value: string | undefined): Map<string, string> => {
  const out = new Map<string, string>()
  for (const part of (value ?? "").split(",")) {
    if (part === "") continue
    const at = part.indexOf("=")
    if (at < 0) out.set("", part)
    else out.set(part.slice(0, at), part.slice(at + 1))
  }
  return out
}

const sameProperties = (a: string | undefined, b: string | undefined): boolean => {
  const x = propertyMap(a)
  const y = propertyMap(b)
  return x.size === y.size && [...x].every(([k, v]) => y.get(k) === v)
}

/** `memory` is `[current=]<MiB>`. */
const memoryOf = (value: string | undefined): number | undefined => {
  const m = /(?:^|,)(?:current=)?(\d+)(?:,|$)/.exec(value ?? "")
  return m === null ? undefined : Number(m[1])
}

/** The CPU model of `cpu` (`[cputype=]<model>[,flags=…]`); PVE's default is kvm64. */
const cpuModelOf = (value: string | undefined): string | undefined => {
  const map = propertyMap(value)
  return map.get("cputype") ?? map.get("")
}

/** `cpu` with its model replaced, its other options (flags, …) kept. */
const withCpuModel = (value: string | undefined, model: string): string => {
  const parts = (value ?? "").split(",").filter((p) => p !== "" && !p.startsWith("cputype=") && p.includes("="))
  return [model, ...parts].join(",")
}

/** A NIC's bridge (`virtio=BC:…,bridge=vmbr0,firewall=1`). */
const bridgeOf = (net: string): string | undefined => propertyMap(net).get("bridge")

/** The NIC with another bridge; its model, MAC and other options kept. */
const withBridge = (net: string, bridge: string): string => {
  const parts = net.split(",")
  const at = parts.findIndex((p) => p.startsWith("bridge="))
  if (at < 0) return [...parts, `bridge=${bridge}`].join(",")
  parts[at] = `bridge=${bridge}`
  return parts.join(",")
}

/** The NIC's link is set down (`link_down=1`): the guest has no network on it, as if its cable were pulled. */
const linkDown = (net: string): boolean => /^(?:1|on|yes|true)$/i.test(propertyMap(net).get("link_down") ?? "")

/** The NIC with its link up: `link_down` dropped, its model, MAC, bridge and other options kept. */
const withLinkUp = (net: string): string =>
  net
    .split(",")
    .filter((p) => !p.startsWith("link_down="))
    .join(",")

const macOf = (net: string): string | undefined => {
  for (const [k, v] of propertyMap(net)) if (k !== "macaddr" && /^[0-9A-F]{2}(?::[0-9A-F]{2}){5}$/i.test(v)) return v
  return propertyMap(net).get("macaddr")
}

/** `sshkeys` as PVE stores it (URL-encoded lines) → the keys. */
const decodeKeys = (value: string | undefined): Array<string> => {
  if (value === undefined) return []
  let text = value
  try {
    text = decodeURIComponent(value)
  } catch {
    // kept as stored
  }
  return text
    .split("\n")
    .map((k) => k.trim())
    .filter((k) => k !== "")
}

/** A key for people: its comment, else its type and the end of its body. */
const keyLabel = (key: string): string => {
  const [type = "", body = "", ...comment] = key.split(/\s+/)
  return comment.length > 0 ? comment.join(" ") : `${type} …${body.slice(-8)}`
}

/** Hotplug features of the VM (`hotplug`, default `network,disk,usb`; `1` is the default, `0` none). */
export const hotplugOf = (value: string | undefined): Set<string> => {
  if (value === undefined || value === "1") return new Set(["network", "disk", "usb"])
  if (value === "0") return new Set()
  return new Set(value.split(",").map((f) => f.trim()))
}

const NET_KEY = /^net(\d+)$/

/**
 * Compares one VM's configuration (as `GET …/pending` gives it: what runs, what waits for a restart) with what
 * homelab.yaml asks, field by field: cores, sockets (when set), memory, balloon (when set), CPU type, the boot disk's
 * size (grown, never shrunk) and storage (moved: `edit.move`), one NIC per bridge (added, removed, bridge changed with its MAC kept, its link
 * brought up when set down: `link_down`), tags (ours added,
 * others kept), onboot and description (when set), and cloud-init (user, SSH keys, ipconfig0, nameserver and
 * searchdomain when set, cicustom when set, and the password: set when the VM has none, and set again when the mark
 * of the password homelab set (`PasswordMark.ts`, in a tag) is not the mark of `vm.password`; only on a VM with a
 * cloud-init drive).
 * A VM without a sized `scsi0` keeps its disks. Anything else on the VM — extra disks,
 * other tags, settings homelab.yaml does not name — is not looked at, so it is never changed.
 *
 * With the node's bridges (`node`), a NIC is attached only to a bridge the node has and that is active, as for a
 * create (`bridge.missing`, `bridge.inactive`): PVE accepts a NIC on any bridge name, fails to plug it into the
 * running VM, and keeps it for the next start, which then fails. Otherwise the VM's NICs are left as they are — none
 * added, moved or removed, so that they never end up half changed — and that is a refusal; the other settings still
 * change. A NIC PVE already holds pending on such a bridge is refused too (the VM would not start). With the node's
 * CPU models, the CPU type changes only to a model the node lists (`vm.cpu-model`, as for a create): PVE refuses a
 * config update naming another, and the VM's other settings still change.
 */
export const vmDrift = (want: DriftTarget, config: VmPending, node?: DriftNode): VmDrift => {
  const changes: Array<FieldChange> = []
  const pending: Array<FieldChange> = []
  const refused: Array<DriftRefusal> = []
  const set: Record<string, string> = {}
  const deletes: Array<string> = []
  const resize: Array<{ disk: string; size: string; bytes: number }> = []
  let password = false
  let cloudInit = false

  const current = (key: string): string | undefined => config.current[key]
  /** The value once what waits is applied: what the VM will have after a restart. */
  const effective = (key: string): string | undefined =>
    config.deletes.includes(key) ? undefined : (config.pending[key] ?? config.current[key])
  const waits = (key: string): boolean => config.pending[key] !== undefined || config.deletes.includes(key)
  const hotplug = hotplugOf(effective("hotplug"))

  /**
   * A restart-bound setting: a change, or (when it already has the wanted value) a pending one. A change back to
   * what the VM runs, over a value PVE holds pending (set in the GUI, say), applies at once: PVE drops a pending value
   * equal to the current one (`cleanup_pending`), so no restart is needed.
   */
  const restartBound = (
    field: string,
    key: string,
    differs: boolean,
    show: (value: string | undefined) => string,
    to: string,
    value: string,
    /** PVE changes it on the running VM at once (memory with `memory` among the hotplug features). */
    hot = false
  ) => {
    if (differs && hot) {
      set[key] = value
      changes.push({ field, from: show(effective(key)), to, effect: "now" })
    } else if (differs && waits(key) && current(key) === value) {
      set[key] = value
      const held = config.deletes.includes(key) ? "removal" : show(effective(key))
      changes.push({ field, from: `${show(current(key))} (${held} pending)`, to, effect: "now" })
    } else if (differs) {
      set[key] = value
      changes.push({ field, from: show(effective(key)), to, effect: "restart" })
    } else if (waits(key)) {
      pending.push({ field, from: show(current(key)), to, effect: "restart" })
    }
  }

  // CPU and memory: PVE keeps these pending on a running VM (no cpu/memory hotplug by default).
  const cores = Number(effective("cores") ?? 1)
  restartBound("cores", "cores", cores !== want.cores, (v) => v ?? "1", String(want.cores), String(want.cores))
  if (want.sockets !== undefined) {
    const sockets = Number(effective("sockets") ?? 1)
    restartBound(
      "sockets",
      "sockets",
      sockets !== want.sockets,
      (v) => v ?? "1",
      String(want.sockets),
      String(want.sockets)
    )
  }
  // With `memory` among the hotplug features PVE plugs DIMMs in (or out) at once (vmconfig_hotplug_pending's
  // qemu_memory_hotplug); PlanDrift refuses a size it could not start the VM with.
  const memory = memoryOf(effective("memory")) ?? 512
  restartBound(
    "memory",
    "memory",
    memory !== want.memoryMiB,
    (v) => `${memoryOf(v) ?? 512}`,
    `${want.memoryMiB} MiB`,
    String(want.memoryMiB),
    hotplugOf(current("hotplug")).has("memory")
  )
  if (want.balloonMiB !== undefined) {
    const now = effective("balloon")
    const enabled = (v: string | undefined) => v === undefined || v !== "0"
    const show = (v: string | undefined) => (v === undefined ? "not set" : v === "0" ? "off" : `${v} MiB`)
    if (now === undefined || Number(now) !== want.balloonMiB) {
      set.balloon = String(want.balloonMiB)
      changes.push({
        field: "balloon",
        from: show(now),
        to: want.balloonMiB === 0 ? "off" : `${want.balloonMiB} MiB`,
        // switching the balloon device on or off is not hotpluggable; a new target is
        effect: enabled(now) === enabled(String(want.balloonMiB)) ? "now" : "restart"
      })
    } else if (waits("balloon")) {
      pending.push({ field: "balloon", from: show(current("balloon")), to: show(now), effect: "restart" })
    }
  }
  // The CPU type: only to a model the node lists (when its models were read), else PVE refuses the whole update.
  const model = cpuModelOf(effective("cpu")) ?? "kvm64"
  const unknownModel =
    model === want.cpuType || node === undefined ? undefined : cpuModelProblem(node.cpuModels, want.cpuType, node.node)
  if (unknownModel !== undefined) {
    refused.push({
      code: "vm.cpu-model",
      field: "cpu",
      message: `${unknownModel.message}: its CPU type stays ${model} (PVE would refuse the change)`,
      hint: unknownModel.hint
    })
  } else {
    restartBound(
      "cpu",
      "cpu",
      model !== want.cpuType,
      (v) => cpuModelOf(v) ?? "kvm64",
      want.cpuType,
      withCpuModel(effective("cpu"), want.cpuType)
    )
  }

  // The boot disk: grown online with resize, never shrunk.
  const disk = "scsi0"
  const drive = effective(disk)
  const wantBytes = want.diskGiB * GiB
  const size = driveSizeBytes(drive)
  // A VM without a sized scsi0 (one homelab did not create) keeps its disks as they are.
  if (drive === undefined || size === undefined) {
    // nothing to compare
  } else if (size > wantBytes) {
    refused.push({
      code: "vm.disk-shrink",
      field: disk,
      message: `${disk} is ${formatSize(size)}, homelab.yaml asks ${want.diskGiB}G: disks are never shrunk`,
      hint: `set diskSize to ${formatSize(size)} or more (shrinking would lose data; rebuild the VM with a smaller disk on purpose with \`homelab reprovision\`)`
    })
  } else if (size < wantBytes) {
    resize.push({ disk, size: `${want.diskGiB}G`, bytes: wantBytes })
    changes.push({ field: disk, from: formatSize(size), to: `${want.diskGiB}G`, effect: "online" })
  }

  // The boot disk's storage: moved while the VM runs (PVE's move_disk copies it with drive-mirror), the source freed.
  const onStorage = driveStorage(drive)
  let move: ConfigEdit["move"]
  if (want.storage !== undefined && onStorage !== undefined && onStorage !== want.storage) {
    move = { disk, storage: want.storage }
    changes.push({ field: `${disk} storage`, from: onStorage, to: want.storage, effect: "moved" })
  }

  // NICs: one per bridge, in order; a NIC's model, MAC and options are kept when only its bridge changes.
  const netEffect: DriftEffect = hotplug.has("network") ? "now" : "restart"
  const nicChanges: Array<FieldChange> = []
  const nicSet: Record<string, string> = {}
  const nicDeletes: Array<string> = []
  /** Per bridge to attach to: the NICs (`net1`), and what attaches them (a change, or what PVE holds pending). */
  const attach = new Map<string, Array<{ readonly key: string; readonly change?: FieldChange }>>()
  const attaching = (bridge: string, key: string, change?: FieldChange) =>
    attach.set(bridge, [...(attach.get(bridge) ?? []), change === undefined ? { key } : { key, change }])
  want.bridges.forEach((bridge, i) => {
    const key = `net${i}`
    const net = effective(key)
    if (net === undefined) {
      nicSet[key] = `virtio,bridge=${bridge}`
      const change: FieldChange = { field: key, from: "none", to: `${bridge} (added)`, effect: netEffect }
      nicChanges.push(change)
      attaching(bridge, key, change)
    } else if (bridgeOf(net) !== bridge) {
      nicSet[key] = withBridge(withLinkUp(net), bridge)
      const mac = macOf(net)
      const change: FieldChange = {
        field: key,
        from: `${bridgeOf(net) ?? "no bridge"}${linkDown(net) ? ", link down" : ""}`,
        to: `${bridge}${mac === undefined ? "" : ` (MAC ${mac} kept)`}${linkDown(net) ? ", link up" : ""}`,
        effect: netEffect
      }
      nicChanges.push(change)
      attaching(bridge, key, change)
    } else if (linkDown(net)) {
      // set down by hand (the GUI's "Disconnect"): on the bridge homelab.yaml asks, but the guest has no network there.
      // PVE sets a running VM's link at once whatever its hotplug features (`qemu_set_link_status`)
      nicSet[key] = withLinkUp(net)
      nicChanges.push({ field: key, from: `${bridge}, link down`, to: "link up", effect: "now" })
    } else if (config.pending[key] !== undefined && bridgeOf(current(key) ?? "") !== bridge) {
      attaching(bridge, key)
    }
  })
  const nets = new Set([...Object.keys(config.current), ...Object.keys(config.pending)].filter((k) => NET_KEY.test(k)))
  for (const key of [...nets].sort()) {
    const index = Number(NET_KEY.exec(key)?.[1])
    const net = effective(key)
    if (index < want.bridges.length || net === undefined) continue
    nicDeletes.push(key)
    nicChanges.push({ field: key, from: bridgeOf(net) ?? net, to: "removed", effect: netEffect })
  }
  const unusable =
    node === undefined
      ? []
      : [...attach].flatMap(([bridge, nics]) => bridgeFindings(node, { bridges: [bridge] }).map((f) => ({ f, nics })))
  if (unusable.length === 0) {
    changes.push(...nicChanges)
    Object.assign(set, nicSet)
    deletes.push(...nicDeletes)
  }
  for (const { f, nics } of unusable) {
    const made = nics.flatMap((n) => (n.change === undefined ? [] : [describeDifference(n.change)]))
    const held = nics.filter((n) => n.change === undefined).map((n) => n.key)
    refused.push({
      code: f.code,
      field: nics.map((n) => n.key).join(", "),
      message: [
        ...(made.length > 0 ? [`${made.join("; ")} is not made (the VM's NICs are left as they are)`] : []),
        ...(held.length > 0 ? [`${held.join(", ")} pending on it: the VM will not start again`] : [])
      ]
        .map((m) => `${f.message}: ${m}`)
        .join("; "),
      hint: f.fix
    })
  }

  // Tags: ours are added; tags someone else put on the VM stay. The password mark is homelab's own (below): never
  // compared with homelab.yaml's tags, nor shown among them.
  const tags = tagList(effective("tags"))
  const missing = want.tags.filter((t) => !tags.includes(t) && !isPasswordMark(t))
  if (missing.length > 0) {
    set.tags = [...new Set([...tags, ...missing])].sort().join(";")
    const shown = tags.filter((t) => !isPasswordMark(t))
    changes.push({
      field: "tags",
      from: shown.length === 0 ? "none" : shown.join(";"),
      to: `+${missing.join(" +")}`,
      effect: "now"
    })
  }
  if (want.onboot !== undefined) {
    const onboot = effective("onboot") === "1"
    if (onboot !== want.onboot) {
      set.onboot = want.onboot ? "1" : "0"
      changes.push({ field: "onboot", from: String(onboot), to: String(want.onboot), effect: "now" })
    }
  }
  if (want.description !== undefined && (effective("description") ?? "") !== notesAsKept(want.description)) {
    set.description = want.description
    const short = (v: string) => (v.length > 40 ? `${v.slice(0, 37)}…` : v)
    changes.push({
      field: "description",
      from: JSON.stringify(short(effective("description") ?? "")),
      to: JSON.stringify(short(notesAsKept(want.description))),
      effect: "now"
    })
  }

  // Cloud-init: applied to the config at once, read by the guest when it boots. A VM without a cloud-init drive
  // would never read these settings: they are not compared.
  const hasDrive = Object.entries({ ...config.current, ...config.pending }).some(
    ([k, v]) => /^(ide|sata|scsi|virtio)\d+$/.test(k) && /(?:^|:|\/)vm-\d+-cloudinit/.test(v)
  )
  const ci = want.cloudInit
  const ciChange = (field: string, key: string, from: string, to: string, value: string) => {
    set[key] = value
    cloudInit = true
    changes.push({ field: `cloud-init ${field}`, from, to, effect: "next-boot" })
  }
  const user = effective("ciuser")
  const attaches = [...attach.keys()]
  if (!hasDrive)
    return {
      changes,
      edit: { set, delete: deletes, password, resize, cloudInit, ...(move === undefined ? {} : { move }) },
      pending,
      refused,
      attaches
    }
  if (user !== ci.user) ciChange("user", "ciuser", user ?? "not set", ci.user, ci.user)
  const keys = decodeKeys(effective("sshkeys"))
  const wantKeys = ci.sshKeys.map((k) => k.trim()).filter((k) => k !== "")
  if ([...keys].sort().join("\n") !== [...wantKeys].sort().join("\n")) {
    const show = (list: ReadonlyArray<string>) => (list.length === 0 ? "none" : list.map(keyLabel).join(", "))
    ciChange("ssh keys", "sshkeys", show(keys), show(wantKeys), encodeSshKeys(wantKeys))
  }
  const ipconfig = effective("ipconfig0")
  if (!sameProperties(ipconfig, ci.ipConfig))
    ciChange("ipconfig0", "ipconfig0", ipconfig ?? "not set", ci.ipConfig, ci.ipConfig)
  for (const [field, key, value] of [
    ["nameserver", "nameserver", ci.nameserver],
    ["searchdomain", "searchdomain", ci.searchdomain]
  ] as const) {
    if (value !== undefined && effective(key) !== value) ciChange(field, key, effective(key) ?? "not set", value, value)
  }
  const cicustom = cicustomProperty(ci.cicustom)
  if (cicustom !== undefined && !sameProperties(effective("cicustom"), cicustom)) {
    ciChange("cicustom", "cicustom", effective("cicustom") ?? "not set", cicustom, cicustom)
  }
  // The password: PVE shows it masked, so it is compared through the mark of the password homelab set, in a tag.
  const marks = tags.filter(isPasswordMark)
  /** The VM's tags (as this update leaves them) with `mark` as its only password mark. */
  const markWith = (mark: string | undefined) => {
    const others = tagList(set.tags ?? effective("tags")).filter((t) => !isPasswordMark(t))
    set.tags = [...new Set([...others, ...(mark === undefined ? [] : [mark])])].sort().join(";")
  }
  const wantMark = ci.passwordMark
  let passwordUnknown: VmDrift["passwordUnknown"]
  if (ci.password === undefined) {
    // not managed: the VM keeps its password; a mark of ours would say nothing true any more
    if (marks.length > 0) {
      markWith(undefined)
      changes.push({ field: PasswordMarkField, from: "set", to: "removed", effect: "now" })
    }
  } else if (effective("cipassword") === undefined) {
    password = true
    cloudInit = true
    changes.push({ field: "cloud-init password", from: "not set", to: "set", effect: "next-boot" })
    if (wantMark !== undefined) markWith(wantMark.tag)
  } else if (wantMark === undefined) {
    passwordUnknown = "no-key"
  } else {
    const state = passwordMarkState(tags, wantMark)
    if (state === "changed") {
      password = true
      cloudInit = true
      changes.push({ field: "cloud-init password", from: "set", to: "changed", effect: "next-boot" })
      markWith(wantMark.tag)
    } else if (state !== "matches") {
      // homelab cannot tell which password the VM has: it marks it as vm.password, without sending the password
      passwordUnknown = state
      markWith(wantMark.tag)
      const from = state === "unmarked" ? "none" : "of another API token secret"
      changes.push({ field: PasswordMarkField, from, to: "set", effect: "now" })
    }
  }

  return {
    changes,
    edit: { set, delete: deletes, password, resize, cloudInit, ...(move === undefined ? {} : { move }) },
    pending,
    refused,
    attaches,
    ...(passwordUnknown === undefined ? {} : { passwordUnknown })
  }
}

/** How drift names a cloud-init setting of PVE's (`ciuser` → `user`). */
const cloudInitLabels: Readonly<Record<string, string>> = {
  ciuser: "user",
  sshkeys: "ssh keys",
  cipassword: "password"
}

/**
 * A cloud-init change PVE holds for the VM's drive (`GET …/cloudinit`: set on the running VM, not yet on the drive
 * the guest boots from), as drift shows it: `cloud-init searchdomain lan → lan2`, the guest reading it at its next
 * boot. A password only as set, or changed (PVE masks both values); keys by their comment.
 */
export const cloudInitHeld = (change: CloudInitChange): FieldChange => {
  const show = (value: string | undefined): string => {
    if (value === undefined) return "not set"
    if (change.key === "cipassword") return "set"
    if (change.key === "sshkeys") {
      const keys = decodeKeys(value)
      return keys.length === 0 ? "none" : keys.map(keyLabel).join(", ")
    }
    return value
  }
  return {
    field: `cloud-init ${cloudInitLabels[change.key] ?? change.key}`,
    // PVE does not say what the drive has of a setting removed since
    from: change.config === undefined && change.drive === undefined ? "set" : show(change.drive),
    to:
      change.config === undefined
        ? "removed"
        : change.key === "cipassword" && change.drive !== undefined
          ? "changed"
          : show(change.config),
    effect: "next-boot"
  }
}

const effectText: Record<DriftEffect, string> = {
  now: "applied now",
  online: "grown online",
  moved: "moved while the VM runs",
  restart: "takes effect after a restart",
  "next-boot": "the guest gets it when PVE next starts the VM"
}

/** `memory 16384 → 20480 MiB (takes effect after a restart)` */
export const describeChange = (change: FieldChange): string =>
  `${describeDifference(change)} (${effectText[change.effect]})`

/** `memory 16384 → 20480 MiB`: what differs, without what changing it would mean. */
export const describeDifference = (change: FieldChange): string => `${change.field} ${change.from} → ${change.to}`

/**
 * Everything of a VM that is not as homelab.yaml asks, one line each: what differs, what PVE holds until a restart,
 * what apply refuses to change (a disk to shrink). Empty exactly when the plan would find nothing to do for the VM.
 */
export const differences = (drift: VmDrift): ReadonlyArray<string> => [
  ...drift.changes.map(describeDifference),
  ...drift.pending.map((c) => `${describeDifference(c)} (waits for a restart)`),
  ...drift.refused.map((r) => r.message)
]

/** Changes that reach the guest only when the VM restarts (PVE's pending ones, and cloud-init). */
export const needsRestart = (change: FieldChange): boolean =>
  change.effect === "restart" || change.effect === "next-boot"
