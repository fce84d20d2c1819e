import { type ClusterNode, evaluateMembership } from "@homelab/k3s-join"
import type { CloudInitChange, VmPending } from "@homelab/proxmox-client"
import { diskStorageFindings, memoryInsufficientHint, sizeFindings } from "@homelab/vm-health"
import type { Finding, RestartVm, UpdateVm, VmSpec } from "./Action.js"
import { agentOffNote } from "./agentOff.js"
import { cicustomFindings } from "./CicustomPreflight.js"
import type { Desired, DesiredVm } from "./Desired.js"
import { CloudInitTag, tagList } from "./Marks.js"
import { missingDriveFindings, unavailableStorageFindings } from "./missingDrives.js"
import type { ObservedNode } from "./Observed.js"
import { isPasswordMark } from "./PasswordMark.js"
import {
  cloudInitHeld,
  describeChange,
  driftTargetOf,
  driveSizeBytes,
  driveStorage,
  type FieldChange,
  formatSize,
  hotplugOf,
  needsRestart,
  PasswordMarkField,
  type VmDrift,
  vmDrift
} from "./VmDrift.js"

/** Action ids of the drift actions of one VM. */
export const driftActionId = {
  update: (node: string, vm: string) => `${node}:update:${vm}`,
  restart: (node: string, vm: string) => `${node}:restart:${vm}`
}

/** What drift planning decided for one VM: an in-place update, a restart (not yet chained), findings. */
export interface DriftStep {
  readonly update?: UpdateVm | undefined
  readonly restart?: RestartVm | undefined
  readonly findings: ReadonlyArray<Finding>
}

export interface DriftInput {
  readonly desired: Desired
  readonly spec: VmSpec
  readonly vm: DesiredVm
  readonly vmid: number
  readonly node: ObservedNode
  /** `GET …/pending` of the VM; undefined when it was not read (then nothing is planned). */
  readonly config: VmPending | undefined
  readonly snippets?: ReadonlySet<string> | undefined
  /** A protected VM's drift is reported, never applied. */
  readonly protected: boolean
  /** The k3s cluster's Nodes, when read, and the VM's IP: a Ready member is drained around a restart. */
  readonly k3sNodes?: ReadonlyArray<ClusterNode> | undefined
  readonly ip?: string | undefined
  /**
   * The VM carries a mark saying a run of ours cordoned its Node (`homelab-restart`, `homelab-upgrade`). Without it a
   * cordoned Node was cordoned by someone else: the restart leaves it cordoned.
   */
  readonly cordonedByUs?: boolean | undefined
  /**
   * For a VM carrying `homelab-cloudinit`: the cloud-init changes PVE still holds for its drive (`GET …/cloudinit`;
   * empty: PVE started the VM since). Undefined: the VM is not marked (or it was not read).
   */
  readonly cloudInitHeld?: ReadonlyArray<CloudInitChange> | undefined
  /**
   * How the VM's cores were derived when homelab.yaml pins none (`derivedCores`): said in the update's reason when the
   * cores change, so a size that moves with the node, cpuRatio or vm.sockets reads as such.
   */
  readonly coresFrom?: string | undefined
  /**
   * The memory the node can still promise this VM: its memory × `vm.memoryOvercommit` minus the maxmem of its other
   * guests (and what this plan grows other VMs of the node by), as a create's preflight counts it. A memory grown
   * above it is refused (`memory.insufficient`); undefined: not checked.
   */
  readonly reservableMemoryBytes?: number | undefined
}

const list = (changes: ReadonlyArray<FieldChange>) => changes.map(describeChange).join("; ")

/**
 * The `info` finding for a VM whose password could not be compared with `vm.password` (`VmDrift.passwordUnknown`):
 * what homelab does about it, and how to have `vm.password` set anyway.
 */
const passwordUnknownFinding = (
  why: NonNullable<VmDrift["passwordUnknown"]>,
  vm: string,
  vmid: number,
  node: string
): { code: string; message: string; hint: string } => {
  const reset = `if its password is not vm.password, remove it (\`qm set ${vmid} --delete cipassword\` on ${node}) and run apply: homelab then sets vm.password (the guest gets it when PVE next starts the VM)`
  switch (why) {
    case "unmarked":
      return {
        code: "vm.password-unmarked",
        message: `VM ${vmid} ${vm} has a cloud-init password but no mark of homelab's saying which (set before homelab marked the passwords it sets, or by hand; PVE never shows a password): homelab cannot tell whether it is vm.password, so it marks it as vm.password without changing it`,
        hint: reset
      }
    case "other-key":
      return {
        code: "vm.password-rekeyed",
        message: `VM ${vmid} ${vm}: the mark of its cloud-init password was made with another API token secret (proxmox.auth.secret changed since): homelab cannot tell whether the password is vm.password, so it marks it again without changing it (a vm.password changed in the same run as the token is not seen)`,
        hint: reset
      }
    case "no-key":
      return {
        code: "vm.password-unchecked",
        message: `VM ${vmid} ${vm} has a cloud-init password, and the desired state has no key to compare it with vm.password (no passwordMark): it is left as it is`,
        hint: "build the desired state with desiredFromConfig (it marks vm.password with the API token's secret), or set cloudInit.passwordMark"
      }
  }
}

/**
 * What the update would leave outside what PVE allows, per node: `cpu.insufficient` when it changes cores or sockets
 * and sockets × cores (the sockets the VM keeps when homelab.yaml sets none) is above the node's logical CPUs;
 * `balloon.too-large` when it changes memory or balloon and the balloon (the VM's own when vm.balloon is not set) is
 * above the memory. Nothing of the VM is changed then.
 */
const sizeRefusals = (
  input: DriftInput,
  changes: ReadonlyArray<FieldChange>
): ReadonlyArray<{ code: string; message: string; hint: string }> => {
  const { config, spec, vm, vmid, node } = input
  if (config === undefined) return []
  const effective = (key: string): string | undefined =>
    config.deletes.includes(key) ? undefined : (config.pending[key] ?? config.current[key])
  const touches = (...fields: ReadonlyArray<string>) => changes.some((c) => fields.includes(c.field))
  const cpu = touches("cores", "sockets")
  const memory = touches("memory", "balloon")
  if (!cpu && !memory) return []
  // memory grown above what the node can still reserve: refused, as a create of that size is (a VM that keeps or
  // lowers its memory is never held back by a node that is overcommitted already)
  const MiB = 1024 ** 2
  const before = Number(effective("memory") ?? 0)
  const reservable = input.reservableMemoryBytes
  if (reservable !== undefined && spec.memoryMiB > before && spec.memoryMiB * MiB > reservable) {
    return [
      {
        code: "memory.insufficient",
        message: `VM ${vmid} ${vm.name} is not changed in place: memory ${before} → ${spec.memoryMiB} MiB, and node ${node.name} can reserve ${Math.floor(Math.max(0, reservable) / MiB)} MiB for it (${(node.memoryBytes / 1024 ** 3).toFixed(1)} GiB × vm.memoryOvercommit minus the maxmem of its other guests)`,
        hint: memoryInsufficientHint(node.name)
      }
    ]
  }
  return sizeFindings(
    { node: node.name, cpus: node.cpus },
    {
      cores: spec.cores,
      sockets: vm.sockets ?? (Number(effective("sockets") ?? 1) || 1),
      memoryMiB: spec.memoryMiB,
      balloonMiB: vm.balloonMiB ?? (Number(effective("balloon") ?? 0) || 0)
    }
  )
    .filter((f) => (f.code === "cpu.insufficient" ? cpu : memory))
    .map((f) => ({
      code: f.code,
      message: `VM ${vmid} ${vm.name} is not changed in place: ${f.message}`,
      hint: f.fix
    }))
}

/**
 * The move of a disk to the storage homelab.yaml asks, checked as a create checks its disk storage: the storage
 * exists on the node, is enabled and active, allows `images` and has room for the disk (at the size it will have:
 * a grow in the same update comes first). Each failing check refuses the move with the create's finding
 * (`storage.missing`, `storage.disabled`, `storage.inactive`, `storage.content`, `storage.full`); the disk then stays
 * where it is, and the VM's other settings still change.
 */
const moveRefusals = (
  input: DriftInput,
  move: { readonly disk: string; readonly storage: string },
  from: string,
  bytes: number | undefined
): ReadonlyArray<{ code: string; message: string; hint: string }> =>
  diskStorageFindings(
    {
      node: input.node.name,
      storages: input.node.storages.map((s) => ({
        name: s.storage,
        enabled: s.enabled,
        active: s.active,
        content: [...s.content],
        availBytes: s.availBytes
      }))
    },
    move.storage,
    bytes
  ).map((f) => ({
    code: f.code,
    message: `VM ${input.vmid} ${input.vm.name}: ${move.disk} is not moved from storage '${from}' to '${move.storage}': ${f.message}`,
    hint: `${f.fix}; or set nodes[${input.node.name}].storage back to '${from}' (where the disk is)`
  }))

/**
 * qemu-server's `Memory::config` (every start of a VM with `memory` among its hotplug features): the memory is the
 * static memory (1024 MiB; × sockets with 1 GiB hugepages) plus whole DIMMs as `foreach_dimm` adds them — 32 of
 * 512 MiB (1024 with 1 GiB hugepages), then 32 of twice that, and so on. Undefined for a memory PVE starts the VM
 * with; else PVE's `die` text and the sizes next to it that it would take.
 */
const hotplugMemoryError = (
  memoryMiB: number,
  effective: (key: string) => string | undefined
): { readonly error: string; readonly sizes: ReadonlyArray<number> } | undefined => {
  const gigantic = effective("hugepages") === "1024"
  const staticMemory = gigantic ? 1024 * (Number(effective("sockets") ?? 1) || 1) : 1024
  if (memoryMiB < staticMemory) return { error: `minimum memory must be ${staticMemory}MB`, sizes: [staticMemory] }
  let current = staticMemory
  let dimm = gigantic ? 1024 : 512
  for (let j = 0; j < 8 && current < memoryMiB; j++, dimm *= 2) {
    for (let i = 0; i < 32 && current < memoryMiB; i++) {
      const below = current
      current += dimm
      if (current > memoryMiB)
        return {
          error: `memory size (${memoryMiB}) must be aligned to ${dimm} for hotplugging`,
          sizes: [below, current]
        }
    }
  }
  return undefined
}

/**
 * A memory change of a VM with memory hotplug (`hotplug` lists `memory`) to a size PVE would not start it with
 * (`hotplugMemoryError`): refused with `vm.memory-hotplug`, naming the sizes next to it. Nothing of the VM is
 * changed then, as for the other size refusals (a restart would leave it down).
 */
const memoryHotplugRefusals = (
  input: DriftInput,
  changes: ReadonlyArray<FieldChange>
): ReadonlyArray<{ code: string; message: string; hint: string }> => {
  const { config, spec, vm, vmid, node } = input
  if (config === undefined || !changes.some((c) => c.field === "memory")) return []
  const effective = (key: string): string | undefined =>
    config.deletes.includes(key) ? undefined : (config.pending[key] ?? config.current[key])
  const features = hotplugOf(effective("hotplug"))
  if (!features.has("memory")) return []
  const refused = hotplugMemoryError(spec.memoryMiB, effective)
  if (refused === undefined) return []
  const before = effective("memory") ?? "512"
  const without = [...features].filter((f) => f !== "memory").join(",") || "0"
  return [
    {
      code: "vm.memory-hotplug",
      message: `VM ${vmid} ${vm.name} is not changed in place: memory ${before} → ${spec.memoryMiB} MiB, and the VM has memory hotplug (hotplug: ${effective("hotplug")}): PVE would refuse to start it again (${refused.error})`,
      hint: `set the VM's memory (nodes[${node.name}].vms[].memory, or nodes[${node.name}].memoryRatio) to ${refused.sizes.join(" or ")} MiB, or take memory out of the VM's hotplug (\`qm set ${vmid} --hotplug ${without}\`)`
    }
  ]
}

/**
 * Storage types whose `volume_resize` takes the growth from free space: thick LVM (`lvextend` takes extents from the
 * volume group: `Insufficient free space`) and ZFS (a zvol's `volsize` is reserved: `size is greater than available
 * space`). LVM-thin grows a thin volume whatever its pool holds; a file-based disk (qcow2, raw) grows sparse.
 */
const ALLOCATING_STORAGE = new Set(["lvm", "zfspool"])

/**
 * The grows of the boot disk PVE would refuse: on a storage that allocates the growth (`ALLOCATING_STORAGE`) with
 * less free than the growth. Each is refused with the create's `storage.full` code, naming the disk, its storage
 * and node, the numbers and the largest size that fits; the disk then keeps its size.
 */
const growRefusals = (
  input: DriftInput,
  resize: ReadonlyArray<{ readonly disk: string; readonly size: string; readonly bytes: number }>,
  config: VmPending
): ReadonlyArray<{ disk: string; code: string; message: string; hint: string }> =>
  resize.flatMap((r) => {
    const drive = config.pending[r.disk] ?? config.current[r.disk]
    const from = driveSizeBytes(drive)
    const storageId = driveStorage(drive)
    const storage = input.node.storages.find((s) => s.storage === storageId)
    if (from === undefined || storage === undefined || !ALLOCATING_STORAGE.has(storage.type)) return []
    const growth = r.bytes - from
    if (growth <= storage.availBytes) return []
    const gib = (bytes: number) => `${(bytes / 1024 ** 3).toFixed(1)} GiB`
    const fits = Math.floor((from + storage.availBytes) / 1024 ** 3)
    const where = `storage '${storage.storage}' (${storage.type}) on node ${input.node.name}`
    return [
      {
        disk: r.disk,
        code: "storage.full",
        message: `VM ${input.vmid} ${input.vm.name}: ${r.disk} is not grown from ${formatSize(from)} to ${r.size}: ${where} has ${gib(storage.availBytes)} free, the grow needs ${gib(growth)}`,
        hint: `free ${gib(growth - storage.availBytes)} on ${where}, or set diskSize (nodes[${input.node.name}].vms[].diskSize or vm.diskSize) to at most ${fits}G`
      }
    ]
  })

/**
 * Drift of one running, healthy VM of ours, pure: the settings that differ from homelab.yaml become one `UpdateVm`
 * (when the VM is not protected); what needs a restart becomes a `RestartVm` with `vm.restart: rolling` (the caller
 * chains the restarts one after another), or — for what PVE already holds pending — a `pending` finding with
 * `never`. A restart drains a Ready member's Node around it; a Node cordoned by someone else stays cordoned. A disk
 * that would have to shrink is refused (`blocked`), as is a move of the disk to a storage that could not hold it (the
 * create's `storage.*` findings: the disk stays, the other settings still change), NICs on a bridge the node lacks or has inactive
 * (`bridge.missing`, `bridge.inactive`, as for a create: the VM's NICs are left as they are, its other settings
 * still change), any change to a protected VM, and any change of a VM whose cores or sockets would go above the
 * node's logical CPUs or whose memory or balloon would leave the balloon above the memory (`cpu.insufficient`,
 * `balloon.too-large`: nothing of that VM is changed).
 *
 * Cloud-init: the update that changes it marks the VM `homelab-cloudinit` (in the same config write); for a marked
 * VM, what PVE still holds for its drive (`cloudInitHeld`) waits for a restart like PVE's pending settings, and once
 * nothing is held (PVE started it since) the update clears the mark (an `UpdateVm` of its own when nothing else
 * differs).
 *
 * The password (`PasswordMark.ts`): a changed one is a cloud-init change like the others (its new mark in the same
 * write). One the mark cannot judge (none, or of another API token secret) gets the mark of `vm.password` in an
 * update of its own that sends no password and restarts nothing, with an `info` finding (`vm.password-unmarked`,
 * `vm.password-rekeyed`); a protected VM is not marked, and nothing is said for it. Without a key (no
 * `passwordMark` in the desired VM) a password already set is left as it is (`vm.password-unchecked`, info).
 */
export const planDrift = (input: DriftInput): DriftStep => {
  const { desired, spec, vm, vmid, node, config } = input
  if (config === undefined) return { findings: [] }
  // The node's bridges and CPU models, when read (observe reads them whenever drift attaches a NIC or changes the CPU
  // type): a NIC goes on an existing bridge, the CPU type is one the node lists.
  const bridges = node.details?.bridges
  const compared = vmDrift(
    driftTargetOf(spec, vm),
    config,
    bridges === undefined ? undefined : { node: node.name, bridges, cpuModels: node.details?.cpuModels }
  )
  // A protected VM is never changed, so never marked either: only what is known to differ is reported for it.
  const drift: VmDrift = input.protected
    ? { ...compared, changes: compared.changes.filter((c) => c.field !== PasswordMarkField) }
    : compared
  // What an earlier run's cloud-init change still waits for (a setting changed again now is shown as that change).
  const held = (input.cloudInitHeld ?? [])
    .map(cloudInitHeld)
    .filter((c) => !drift.changes.some((d) => d.field === c.field))
  const findings: Array<Finding> = []
  const finding = (effect: Finding["effect"], code: string, message: string, hint?: string) =>
    findings.push({ code, effect, layer: "vm", node: node.name, vm: vm.name, vmid, message, hint })
  for (const r of drift.refused) finding("blocked", r.code, `VM ${vmid} ${vm.name}: ${r.message}`, r.hint)
  for (const m of missingDriveFindings(config, { vmid, name: vm.name, node: node.name, storage: spec.storage }))
    finding("blocked", m.code, m.message, m.hint)
  for (const u of unavailableStorageFindings(config, { vmid, name: vm.name, node: node.name }, node.storages))
    finding("blocked", u.code, u.message, u.hint)
  const agent = agentOffNote(config, { vmid, name: vm.name, node: node.name })
  if (agent !== undefined) finding("info", agent.code, agent.message, agent.hint)
  if (drift.passwordUnknown !== undefined && !(input.protected && drift.passwordUnknown !== "no-key")) {
    const f = passwordUnknownFinding(drift.passwordUnknown, vm.name, vmid, node.name)
    finding("info", f.code, f.message, f.hint)
  }
  if (input.protected) {
    const all = [...drift.changes, ...drift.pending, ...held]
    if (all.length > 0) {
      finding(
        "blocked",
        "vm.protected-drift",
        `VM ${vmid} ${vm.name} is protected, so it is not changed: ${list(all)}`,
        "remove the protection (and its entry in safety.protect) to let homelab change it, or change homelab.yaml"
      )
    }
    return { findings }
  }
  const touchesCicustom = drift.changes.some((c) => c.field === "cloud-init cicustom")
  if (touchesCicustom) {
    const blocked = cicustomFindings(node, input.snippets, vm.cloudInit.cicustom, vm.name)
    if (blocked.length > 0) return { findings: [...findings, ...blocked] }
  }
  // The VM's size as it would be after the update: sockets × cores within the node's CPUs (else PVE would refuse
  // to start it, and a restart would leave it down), the balloon within the memory (else PVE refuses the update).
  const oversized = [...sizeRefusals(input, drift.changes), ...memoryHotplugRefusals(input, drift.changes)]
  if (oversized.length > 0) {
    for (const f of oversized) finding("blocked", f.code, f.message, f.hint)
    return { findings }
  }
  // A disk to move to another storage: only to one that could hold it (the create's checks), else it stays.
  let moved = { changes: drift.changes, edit: drift.edit }
  const move = drift.edit.move
  if (move !== undefined) {
    const change = drift.changes.find((c) => c.effect === "moved")
    const drive = config.pending[move.disk] ?? config.current[move.disk]
    const bytes = Math.max(driveSizeBytes(drive) ?? 0, ...drift.edit.resize.map((r) => r.bytes))
    const refused = moveRefusals(input, move, change?.from ?? "?", bytes === 0 ? undefined : bytes)
    if (refused.length > 0) {
      for (const f of refused) finding("blocked", f.code, f.message, f.hint)
      const { move: _dropped, ...edit } = drift.edit
      moved = { changes: drift.changes.filter((c) => c !== change), edit }
    }
  }
  // A disk to grow on a storage that allocates the growth (thick LVM, ZFS): only with room for it, else it keeps its size.
  const ungrown = growRefusals(input, moved.edit.resize, config)
  if (ungrown.length > 0) {
    for (const f of ungrown) finding("blocked", f.code, f.message, f.hint)
    const refusedDisks = new Set(ungrown.map((f) => f.disk))
    moved = {
      changes: moved.changes.filter((c) => !(refusedDisks.has(c.field) && c.effect === "online")),
      edit: { ...moved.edit, resize: moved.edit.resize.filter((r) => !refusedDisks.has(r.disk)) }
    }
  }
  // The cloud-init mark: set in the update that changes cloud-init on the running VM (its drive is not regenerated:
  // PVE holds the change until it starts the VM); cleared once PVE holds nothing for the drive any more.
  const tags = tagList(config.pending.tags ?? config.current.tags)
  const shownTags = tags.filter((t) => !isPasswordMark(t))
  const marked = tags.includes(CloudInitTag)
  const clearMark = marked && input.cloudInitHeld !== undefined && held.length === 0 && !drift.edit.cloudInit
  let changes = moved.changes
  let edit = moved.edit
  if (drift.edit.cloudInit && !marked) {
    const base = drift.edit.set.tags === undefined ? tags : tagList(drift.edit.set.tags)
    edit = { ...edit, set: { ...edit.set, tags: [...new Set([...base, CloudInitTag])].sort().join(";") } }
  } else if (clearMark) {
    const base = drift.edit.set.tags === undefined ? tags : tagList(drift.edit.set.tags)
    edit = { ...edit, set: { ...edit.set, tags: base.filter((t) => t !== CloudInitTag).join(";") } }
    const tagChange = changes.find((c) => c.field === "tags")
    changes =
      tagChange === undefined
        ? [...changes, { field: "tags", from: shownTags.join(";"), to: `-${CloudInitTag}`, effect: "now" }]
        : changes.map((c) => (c === tagChange ? { ...c, to: `${c.to} -${CloudInitTag}` } : c))
  }
  const derived =
    input.coresFrom !== undefined && drift.changes.some((c) => c.field === "cores")
      ? `; cores derived from homelab.yaml (no vm cores set): ${input.coresFrom}`
      : ""
  const cleared = `PVE started it since an earlier run changed its cloud-init settings (nothing waits for its drive any more): the mark '${CloudInitTag}' is cleared`
  const update: UpdateVm | undefined =
    changes.length === 0
      ? undefined
      : {
          _tag: "UpdateVm",
          id: driftActionId.update(node.name, vm.name),
          node: node.name,
          after: [],
          vmid,
          name: vm.name,
          digest: config.digest,
          changes,
          edit,
          reason:
            moved.changes.length === 0
              ? cleared
              : `${moved.changes.length} setting(s) differ from homelab.yaml: ${list(moved.changes)}${derived}${clearMark ? `; ${cleared}` : ""}`
        }
  const waiting = [...drift.changes.filter(needsRestart), ...drift.pending, ...held]
  if (waiting.length === 0) return { update, findings }
  if (desired.restart === "rolling") {
    const member =
      input.k3sNodes !== undefined && input.ip !== undefined
        ? evaluateMembership(input.k3sNodes, { name: vm.name, role: vm.role, ip: input.ip })
        : undefined
    const keepCordoned = member?._tag === "Member" && member.node.unschedulable === true && input.cordonedByUs !== true
    const restart: RestartVm = {
      _tag: "RestartVm",
      id: driftActionId.restart(node.name, vm.name),
      node: node.name,
      after: update === undefined ? [] : [update.id],
      exclusive: "vm-restart",
      vmid,
      name: vm.name,
      changes: waiting,
      ...(member?._tag === "Member" && input.ip !== undefined
        ? { k3s: { role: vm.role, ip: input.ip, ...(keepCordoned ? { keepCordoned } : {}) } }
        : {}),
      reason: `vm.restart is rolling and ${waiting.length} change(s) wait for a restart: ${list(waiting)}`
    }
    return { update, restart, findings }
  }
  const holding = [...drift.pending, ...held]
  if (holding.length > 0) {
    finding(
      "pending",
      "vm.pending-restart",
      `VM ${vmid} ${vm.name}: ${list(holding)}: PVE holds it until the VM restarts (vm.restart: never)`,
      held.length > 0
        ? `restart it from PVE (\`qm reboot ${vmid}\` on ${node.name}, or a stop and a start: PVE regenerates its cloud-init drive when it starts it; not a reboot inside the guest, which reads the drive it has), or set vm.restart: rolling`
        : `restart it (\`qm reboot ${vmid}\` on ${node.name}), or set vm.restart: rolling`
    )
  }
  return { update, findings }
}
