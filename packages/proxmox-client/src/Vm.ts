import * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import { PveBoolean, PveInt, PveMemory, PveNumber, PveTags } from "./internal/decode.js"
import type { PveParam } from "./PveTransport.js"

/**
 * A VM id (100 – 999999999).
 *
 * @since 0.1.0
 * @category models
 */
export const VmId = PveInt.check(Schema.isBetween({ minimum: 100, maximum: 999_999_999 }))

/**
 * One guest from `GET /cluster/resources?type=vm` (VMs and containers of every node, in one request). `status` is
 * the QMP status here (`running`, `paused`, `stopped`, or `unknown` for a guest created a moment ago).
 *
 * @since 0.1.0
 * @category models
 */
export const ClusterVm = Schema.Struct({
  vmid: VmId,
  node: Schema.String,
  type: Schema.Literals(["qemu", "lxc"]),
  status: Schema.String,
  name: Schema.optionalKey(Schema.String),
  tags: PveTags.pipe(Schema.withDecodingDefaultKey(Effect.succeed(""))),
  lock: Schema.optionalKey(Schema.String),
  template: PveBoolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0 as const))),
  maxmem: Schema.optionalKey(PveNumber),
  maxcpu: Schema.optionalKey(PveNumber),
  uptime: Schema.optionalKey(PveInt)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ClusterVm = typeof ClusterVm.Type

/**
 * `GET /nodes/{node}/qemu/{vmid}/status/current`. `agent` says whether the agent is *configured*, not whether it
 * answers (use `agentPing`).
 *
 * @since 0.1.0
 * @category models
 */
export const VmStatus = Schema.Struct({
  vmid: VmId,
  status: Schema.Literals(["running", "stopped"]),
  qmpstatus: Schema.optionalKey(Schema.String),
  name: Schema.optionalKey(Schema.String),
  lock: Schema.optionalKey(Schema.String),
  agent: PveBoolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0 as const))),
  uptime: PveInt.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0))),
  tags: PveTags.pipe(Schema.withDecodingDefaultKey(Effect.succeed(""))),
  template: PveBoolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0 as const))),
  cpus: Schema.optionalKey(PveNumber),
  maxmem: Schema.optionalKey(PveNumber)
})

/**
 * @since 0.1.0
 * @category models
 */
export type VmStatus = typeof VmStatus.Type

const ConfigValue = Schema.Union([Schema.String, Schema.Finite])

/**
 * `GET /nodes/{node}/qemu/{vmid}/config` with the quirks normalised: `memory` in MiB (number, even when PVE sends
 * `"2048"` or `"current=2048"`), `agent`/`onboot`/`template` booleans, `tags` a list, numbers as numbers. Every
 * key is also in `raw` as PVE's text.
 *
 * @since 0.1.0
 * @category models
 */
export const VmConfig = Schema.Struct({
  digest: Schema.optionalKey(Schema.String),
  name: Schema.optionalKey(Schema.String),
  description: Schema.optionalKey(Schema.String),
  cores: Schema.optionalKey(PveInt),
  sockets: Schema.optionalKey(PveInt),
  memory: Schema.optionalKey(PveMemory),
  cpu: Schema.optionalKey(Schema.String),
  scsihw: Schema.optionalKey(Schema.String),
  boot: Schema.optionalKey(Schema.String),
  ostype: Schema.optionalKey(Schema.String),
  vga: Schema.optionalKey(Schema.String),
  serial0: Schema.optionalKey(Schema.String),
  ciuser: Schema.optionalKey(Schema.String),
  sshkeys: Schema.optionalKey(Schema.String),
  ipconfig0: Schema.optionalKey(Schema.String),
  net0: Schema.optionalKey(Schema.String),
  scsi0: Schema.optionalKey(Schema.String),
  ide2: Schema.optionalKey(Schema.String),
  lock: Schema.optionalKey(Schema.String),
  agent: Schema.optionalKey(
    Schema.Union([Schema.Finite, Schema.String]).pipe(
      Schema.decodeTo(Schema.Boolean, {
        decode: SchemaGetter.transform((v) => /^(?:enabled=)?(?:1|on|yes|true)\b/.test(String(v))),
        encode: SchemaGetter.transform((b) => (b ? "1" : "0"))
      })
    )
  ),
  onboot: Schema.optionalKey(PveBoolean),
  template: Schema.optionalKey(PveBoolean),
  tags: PveTags.pipe(Schema.withDecodingDefaultKey(Effect.succeed(""))),
  raw: Schema.Record(Schema.String, Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type VmConfig = typeof VmConfig.Type

/**
 * The wire form of a config (every key) → the input of {@link VmConfig} (adds `raw`, the values as text).
 *
 * @internal
 */
export const VmConfigFromWire = Schema.Record(Schema.String, ConfigValue).pipe(
  Schema.decodeTo(Schema.Record(Schema.String, Schema.Unknown), {
    decode: SchemaGetter.transform((rec) => {
      const raw: Record<string, string> = {}
      for (const [k, v] of Object.entries(rec)) raw[k] = String(v)
      return { ...rec, raw } as Record<string, unknown>
    }),
    encode: SchemaGetter.transform((rec) => {
      const { raw: _raw, ...rest } = rec
      return rest as Record<string, string | number>
    })
  }),
  Schema.decodeTo(VmConfig)
)

/**
 * One entry of `GET /nodes/{node}/qemu/{vmid}/pending`: a config key with its current `value`, the `pending` value
 * PVE keeps until the VM restarts, and `delete` (1, or 2 for a forced delete) when its removal waits.
 *
 * @since 0.3.0
 * @category models
 */
export const VmPendingEntry = Schema.Struct({
  key: Schema.String,
  value: Schema.optionalKey(ConfigValue),
  pending: Schema.optionalKey(ConfigValue),
  delete: Schema.optionalKey(PveInt)
})

/**
 * A VM's configuration as `GET …/pending` gives it, in one request: what runs now (`current`, every key as PVE's
 * text), what waits for a restart (`pending`, `deletes`), and the config's `digest` (pass it to `updateVmConfig` so
 * that a concurrent edit is refused instead of overwritten). `cipassword` reads `**********`.
 *
 * @since 0.3.0
 * @category models
 */
export interface VmPending {
  readonly digest: string | undefined
  readonly current: Readonly<Record<string, string>>
  readonly pending: Readonly<Record<string, string>>
  readonly deletes: ReadonlyArray<string>
}

/**
 * Groups the entries of `GET …/pending` into a {@link VmPending}.
 *
 * @since 0.3.0
 * @category utilities
 */
export const vmPendingOf = (entries: ReadonlyArray<typeof VmPendingEntry.Type>): VmPending => {
  const current: Record<string, string> = {}
  const pending: Record<string, string> = {}
  const deletes: Array<string> = []
  let digest: string | undefined
  for (const e of entries) {
    if (e.key === "digest") {
      if (e.value !== undefined) digest = String(e.value)
      continue
    }
    if (e.value !== undefined) current[e.key] = String(e.value)
    if (e.pending !== undefined) pending[e.key] = String(e.pending).trimEnd()
    if (e.delete !== undefined && e.delete > 0) deletes.push(e.key)
  }
  return { digest, current, pending, deletes: deletes.sort() }
}

/**
 * Whether a VM's config holds an edit (`updateVmConfig`'s `params` and `delete`): every key set has the value sent
 * (current, or pending a restart), every deleted key is gone or waits to be. A secret (`Redacted`: PVE shows a
 * `cipassword` as `**********`) or a list cannot be compared, so an edit with one is never taken as held.
 *
 * @internal
 */
export const holdsEdit = (
  config: VmPending,
  params: Readonly<Record<string, PveParam>>,
  deletes: ReadonlyArray<string>
): boolean =>
  Object.entries(params).every(([key, value]) => {
    if (value === undefined) return true
    const sent =
      typeof value === "boolean"
        ? value
          ? "1"
          : "0"
        : typeof value === "number" || typeof value === "string"
          ? String(value)
          : undefined
    return sent !== undefined && (config.pending[key] ?? config.current[key]) === sent
  }) &&
  deletes.every(
    (key) => config.deletes.includes(key) || (config.current[key] === undefined && config.pending[key] === undefined)
  )

/**
 * One entry of `GET /nodes/{node}/qemu/{vmid}/cloudinit`: a cloud-init setting with the `value` the VM's cloud-init
 * drive was generated from, the `pending` value the config has when it changed since (an added setting has only
 * `pending`), and `delete` when it was removed since. PVE records these changes only on a running VM, until its next
 * start or `PUT …/cloudinit` regenerates the drive. `cipassword` reads `**********`.
 *
 * @since 0.3.0
 * @category models
 */
export const CloudInitEntry = Schema.Struct({
  key: Schema.String,
  value: Schema.optionalKey(ConfigValue),
  pending: Schema.optionalKey(ConfigValue),
  delete: Schema.optionalKey(PveInt)
})

/**
 * A cloud-init setting of a VM whose new value its cloud-init drive does not have yet (`GET …/cloudinit`): `drive`
 * is the value the drive has (undefined for a setting added since, and for one removed since: PVE does not say),
 * `config` the value the config has (undefined: removed since).
 *
 * @since 0.3.0
 * @category models
 */
export interface CloudInitChange {
  readonly key: string
  readonly drive: string | undefined
  readonly config: string | undefined
}

/**
 * The entries of `GET …/cloudinit` that wait for the drive to be regenerated (a `pending` value or a `delete`).
 * Beware PVE's own gap: it lists an `ipconfigN` changed in place nowhere (qemu-server walks only its cloud-init
 * options there); one added or removed is listed.
 *
 * @since 0.3.0
 * @category utilities
 */
export const cloudInitChangesOf = (entries: ReadonlyArray<typeof CloudInitEntry.Type>): Array<CloudInitChange> =>
  entries.flatMap((e): Array<CloudInitChange> => {
    const drive = e.value === undefined ? undefined : String(e.value)
    if (e.delete !== undefined && e.delete > 0) return [{ key: e.key, drive, config: undefined }]
    return e.pending === undefined ? [] : [{ key: e.key, drive, config: String(e.pending) }]
  })

/**
 * The MAC address of a `netN` value (`virtio=BC:24:11:2E:7A:4C,bridge=vmbr0` → `BC:24:11:2E:7A:4C`).
 *
 * @since 0.1.0
 * @category utilities
 */
export const macOfNet = (net: string): string | undefined => {
  for (const part of net.split(",")) {
    const m = /^(?:[a-z0-9]+)=((?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2})$/.exec(part)
    if (m?.[1] !== undefined) return m[1].toUpperCase()
    const mac = /^macaddr=((?:[0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2})$/.exec(part)
    if (mac?.[1] !== undefined) return mac[1].toUpperCase()
  }
  return undefined
}

/**
 * A disk of a new VM: a fresh volume of `sizeGiB`, or an imported image (`importFrom`: a volid such as
 * `local:import/jammy.qcow2`, or an absolute path, root only), with extra drive options (`discard=on`, `ssd=1`, …).
 *
 * @since 0.1.0
 * @category models
 */
export interface DiskSpec {
  readonly storage: string
  readonly sizeGiB?: number | undefined
  readonly importFrom?: string | undefined
  readonly options?: Readonly<Record<string, string>> | undefined
}

/**
 * A NIC: `model` (default `virtio`) on `bridge`, optional VLAN `tag`, fixed `mac`, `firewall`.
 *
 * @since 0.1.0
 * @category models
 */
export interface NetSpec {
  readonly bridge: string
  readonly model?: string | undefined
  readonly mac?: string | undefined
  readonly tag?: number | undefined
  readonly firewall?: boolean | undefined
}

/**
 * A cloud-init `ipconfigN`: `dhcp`, or a CIDR with optional gateway.
 *
 * @since 0.1.0
 * @category models
 */
export type IpConfig = { readonly ip: "dhcp" } | { readonly ip: string; readonly gw?: string | undefined }

/**
 * Everything `createVm` can set.
 *
 * @since 0.1.0
 * @category models
 */
export interface CreateVmOptions {
  readonly node: string
  readonly vmid: number
  readonly name: string
  readonly cores?: number | undefined
  readonly sockets?: number | undefined
  /** MiB */
  readonly memory?: number | undefined
  /**
   * Balloon minimum in MiB (`0` turns the balloon device off); not set: PVE's default (ballooning up to `memory`).
   *
   * @since 0.3.0
   */
  readonly balloon?: number | undefined
  readonly cpu?: string | undefined
  readonly ostype?: string | undefined
  readonly scsihw?: string | undefined
  /** Disks by slot: `{ scsi0: { storage: "local-lvm", importFrom: "local:import/jammy.qcow2" } }`. */
  readonly disks?: Readonly<Record<string, DiskSpec>> | undefined
  /**
   * Send the create as root@pam (see `PveRequest.asRoot`): needed when a disk imports from an absolute path (an
   * iso-type volume's `path`, which PVE never imports by its volid), as PVE lets only root@pam pass one.
   *
   * @since 0.3.0
   */
  readonly asRoot?: boolean | undefined
  /** NICs in order (`net0`, `net1`, …). */
  readonly nets?: ReadonlyArray<NetSpec> | undefined
  /** Cloud-init drive (`ide2` by default) and its settings. */
  readonly cloudInit?:
    | {
        readonly storage: string
        readonly slot?: string | undefined
        readonly user?: string | undefined
        readonly password?: Redacted.Redacted<string> | undefined
        /** OpenSSH public keys, one per entry (joined with newlines). */
        readonly sshKeys?: ReadonlyArray<string> | undefined
        /**
         * `ipconfig0`, `ipconfig1`, … in order. A string is PVE's property string, sent as it is (`ip=dhcp,ip6=auto`,
         * `ip6=fd00::5/64,gw6=fd00::1`: every key PVE takes, `ip6` and `gw6` included).
         *
         * @since 0.3.0 a string
         */
        readonly ipConfig?: ReadonlyArray<IpConfig | string> | undefined
        readonly nameserver?: string | undefined
        readonly searchdomain?: string | undefined
        /**
         * Custom cloud-init files: PVE's `cicustom` property string (`user=<volume>,network=…,vendor=…`).
         *
         * @since 0.3.0
         */
        readonly cicustom?: string | undefined
      }
    | undefined
  readonly agent?: boolean | undefined
  /** Boot order, e.g. `["scsi0"]` → `order=scsi0`. */
  readonly bootOrder?: ReadonlyArray<string> | undefined
  /** `serial0: socket` + `vga: serial0` (what cloud images expect). */
  readonly serialConsole?: boolean | undefined
  readonly tags?: ReadonlyArray<string> | undefined
  readonly description?: string | undefined
  readonly onboot?: boolean | undefined
  readonly start?: boolean | undefined
}

/**
 * `sshkeys` as PVE stores it: the keys joined by newlines, then `encodeURIComponent` (PVE's `urlencoded` format). The
 * REST form layer encodes it once more (`%2520` on the wire); pvesh gets this single-encoded text.
 *
 * @since 0.1.0
 * @category utilities
 */
export const encodeSshKeys = (keys: ReadonlyArray<string>): string =>
  encodeURIComponent(keys.map((k) => k.trim()).join("\n"))

/**
 * The drive property string of a {@link DiskSpec}.
 *
 * @since 0.1.0
 * @category utilities
 */
export const diskValue = (disk: DiskSpec): string => {
  const head =
    disk.importFrom !== undefined
      ? `${disk.storage}:0,import-from=${disk.importFrom}`
      : `${disk.storage}:${disk.sizeGiB ?? 8}`
  const opts = Object.entries(disk.options ?? {}).map(([k, v]) => `${k}=${v}`)
  return [head, ...opts].join(",")
}

/**
 * The `netN` property string of a {@link NetSpec}.
 *
 * @since 0.1.0
 * @category utilities
 */
export const netValue = (net: NetSpec): string => {
  const model = net.model ?? "virtio"
  const parts = [net.mac !== undefined ? `${model}=${net.mac.toUpperCase()}` : model, `bridge=${net.bridge}`]
  if (net.tag !== undefined) parts.push(`tag=${net.tag}`)
  if (net.firewall !== undefined) parts.push(`firewall=${net.firewall ? 1 : 0}`)
  return parts.join(",")
}

/**
 * The `ipconfigN` property string.
 *
 * @since 0.1.0
 * @category utilities
 */
export const ipConfigValue = (ip: IpConfig): string =>
  ip.ip === "dhcp" ? "ip=dhcp" : "gw" in ip && ip.gw !== undefined ? `ip=${ip.ip},gw=${ip.gw}` : `ip=${ip.ip}`

/**
 * The API parameters of `POST /nodes/{node}/qemu` for {@link CreateVmOptions}.
 *
 * @since 0.1.0
 * @category utilities
 */
export const createVmParams = (o: CreateVmOptions): Record<string, PveParam> => {
  const p: Record<string, PveParam> = { vmid: o.vmid, name: o.name }
  if (o.cores !== undefined) p.cores = o.cores
  if (o.sockets !== undefined) p.sockets = o.sockets
  if (o.memory !== undefined) p.memory = String(o.memory)
  if (o.balloon !== undefined) p.balloon = o.balloon
  if (o.cpu !== undefined) p.cpu = o.cpu
  if (o.ostype !== undefined) p.ostype = o.ostype
  if (o.scsihw !== undefined) p.scsihw = o.scsihw
  for (const [slot, disk] of Object.entries(o.disks ?? {})) p[slot] = diskValue(disk)
  ;(o.nets ?? []).forEach((net, i) => {
    p[`net${i}`] = netValue(net)
  })
  const ci = o.cloudInit
  if (ci !== undefined) {
    p[ci.slot ?? "ide2"] = `${ci.storage}:cloudinit`
    if (ci.user !== undefined) p.ciuser = ci.user
    if (ci.password !== undefined) p.cipassword = ci.password
    if (ci.sshKeys !== undefined && ci.sshKeys.length > 0) p.sshkeys = encodeSshKeys(ci.sshKeys)
    ;(ci.ipConfig ?? []).forEach((ip, i) => {
      p[`ipconfig${i}`] = typeof ip === "string" ? ip : ipConfigValue(ip)
    })
    if (ci.nameserver !== undefined) p.nameserver = ci.nameserver
    if (ci.searchdomain !== undefined) p.searchdomain = ci.searchdomain
    if (ci.cicustom !== undefined) p.cicustom = ci.cicustom
  }
  if (o.agent !== undefined) p.agent = o.agent ? "1" : "0"
  if (o.bootOrder !== undefined && o.bootOrder.length > 0) p.boot = `order=${o.bootOrder.join(";")}`
  if (o.serialConsole === true) {
    p.serial0 = "socket"
    p.vga = "serial0"
  }
  if (o.tags !== undefined && o.tags.length > 0) p.tags = o.tags.join(";")
  if (o.description !== undefined) p.description = o.description
  if (o.onboot !== undefined) p.onboot = o.onboot
  if (o.start !== undefined) p.start = o.start
  return p
}
