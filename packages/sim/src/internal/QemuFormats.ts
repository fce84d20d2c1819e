import type { PveSchemaProp } from "../PveSchema.js"

/**
 * The property-string formats of the VM config keys the simulator parses, as qemu-server defines them
 * (`QemuServer/Drive.pm`, `Network.pm`, `Agent.pm`, `Memory.pm`, `CPUConfig.pm`, `QemuServer.pm`): every key with its
 * type, enum, bounds and pattern. `test/PveSchema.test.ts` checks each against PVE's API schema of 8.4 and 9.1.
 */
export type PveFormat = Readonly<Record<string, PveSchemaProp>>

const opt = (p: PveSchemaProp): PveSchemaProp => ({ optional: 1, ...p })
const bool = opt({ type: "boolean" })
const int = (p: Partial<PveSchemaProp> = {}): PveSchemaProp => opt({ type: "integer", ...p })
const num = opt({ type: "number" })
const str = (p: Partial<PveSchemaProp> = {}): PveSchemaProp => opt({ type: "string", ...p })
const alias = (to: string): PveSchemaProp => ({ alias: to })

const IMAGE_FORMATS = ["raw", "qcow", "qed", "qcow2", "vmdk", "cloop"]

/** `iothrottle` keys of every drive (`mbps*`, `iops*`, `bps*`, the `*_max_length` bursts and their old aliases). */
const throttle: PveFormat = {
  ...Object.fromEntries(["mbps", "mbps_max", "mbps_rd", "mbps_rd_max", "mbps_wr", "mbps_wr_max"].map((k) => [k, num])),
  ...Object.fromEntries(
    ["iops", "iops_max", "iops_rd", "iops_rd_max", "iops_wr", "iops_wr_max", "bps", "bps_rd", "bps_wr"].map((k) => [
      k,
      int()
    ])
  ),
  ...Object.fromEntries(
    ["bps_max_length", "bps_rd_max_length", "bps_wr_max_length"]
      .concat(["iops_max_length", "iops_rd_max_length", "iops_wr_max_length"])
      .map((k) => [k, int({ minimum: 1 })])
  ),
  bps_rd_length: alias("bps_rd_max_length"),
  bps_wr_length: alias("bps_wr_max_length"),
  iops_rd_length: alias("iops_rd_max_length"),
  iops_wr_length: alias("iops_wr_max_length")
}

const volume = (format: string): PveFormat => ({
  file: { type: "string", format, default_key: 1 },
  volume: alias("file")
})

/** Keys every bus shares (`drivedesc_base` + throttling); PVE 8 still has the CHS geometry keys. */
const driveBase = (nine: boolean): PveFormat => ({
  ...volume("pve-volume-id-or-qm-path"),
  media: str({ enum: ["cdrom", "disk"] }),
  ...(nine ? {} : { cyls: int(), heads: int(), secs: int(), trans: str({ enum: ["none", "lba", "auto"] }) }),
  snapshot: bool,
  cache: str({ enum: ["none", "writethrough", "writeback", "unsafe", "directsync"] }),
  format: str({ enum: IMAGE_FORMATS }),
  size: str({ format: "disk-size" }),
  aio: str({ enum: ["native", "threads", "io_uring"] }),
  discard: str({ enum: ["ignore", "on"] }),
  detect_zeroes: bool,
  serial: str({ format: "urlencoded", maxLength: 60 }),
  shared: bool,
  backup: bool,
  replicate: bool,
  rerror: str({ enum: ["ignore", "report", "stop"] }),
  werror: str({ enum: ["enospc", "ignore", "report", "stop"] }),
  "import-from": str({ format: "pve-volume-id-or-absolute-path" }),
  ...throttle
})

const ssd = { ssd: bool }
const wwn = { wwn: str({ pattern: "(?^:^(0x)[0-9a-fA-F]{16})" }) }

/** The formats of a PVE major version's drive and device keys. */
export const qemuFormats = (nine: boolean) => {
  const base = driveBase(nine)
  return {
    scsi: {
      ...base,
      ...ssd,
      ...wwn,
      iothread: bool,
      queues: int({ minimum: 2 }),
      ro: bool,
      scsiblock: bool,
      product: str({ pattern: "[A-Za-z0-9\\-_\\s]{,16}" }),
      vendor: str({ pattern: "[A-Za-z0-9\\-_\\s]{,8}" })
    },
    virtio: { ...base, iothread: bool, ro: bool },
    sata: { ...base, ...ssd, ...wwn },
    ide: { ...base, ...ssd, ...wwn, model: str({ format: "urlencoded", maxLength: 120 }) },
    efidisk0: {
      ...volume("pve-volume-id-or-qm-path"),
      efitype: str({ enum: ["2m", "4m"] }),
      format: str({ enum: IMAGE_FORMATS }),
      "import-from": str({ format: "pve-volume-id-or-absolute-path" }),
      "pre-enrolled-keys": bool,
      size: str({ format: "disk-size" }),
      ...(nine ? { "ms-cert": str({ enum: ["2011", "2023", "2023w", "2023k"] }) } : {})
    },
    tpmstate0: {
      ...volume("pve-volume-id-or-qm-path"),
      "import-from": str({ format: "pve-volume-id-or-absolute-path" }),
      size: str({ format: "disk-size" }),
      version: str({ enum: ["v1.2", "v2.0"] }),
      ...(nine ? { format: str({ enum: ["raw", "qcow2", "vmdk"] }) } : {})
    },
    unused: volume("pve-volume-id"),
    net: {
      model: { type: "string", default_key: 1, enum: NET_MODELS },
      macaddr: str({ format: "mac-addr" }),
      ...Object.fromEntries(NET_MODELS.map((m) => [m, { alias: "macaddr", keyAlias: "model" }])),
      bridge: str({ format: "pve-bridge-id" }),
      queues: int({ minimum: 0, maximum: 64 }),
      rate: opt({ type: "number", minimum: 0 }),
      tag: int({ minimum: 1, maximum: 4094 }),
      trunks: str({ pattern: "(?^:\\d+(?:-\\d+)?(?:;\\d+(?:-\\d+)?)*)" }),
      firewall: bool,
      link_down: bool,
      mtu: int({ minimum: 1, maximum: 65520 })
    },
    agent: {
      enabled: { type: "boolean", default_key: 1 },
      fstrim_cloned_disks: bool,
      type: str({ enum: ["virtio", "isa"] }),
      ...(nine
        ? { "freeze-fs": bool, "freeze-fs-on-backup": alias("freeze-fs"), "guest-fsfreeze": alias("freeze-fs") }
        : { "freeze-fs-on-backup": bool })
    },
    memory: { current: { type: "integer", default_key: 1, minimum: 16 } },
    vga: {
      type: str({ default_key: 1, enum: VGA_TYPES }),
      clipboard: str({ enum: ["vnc"] }),
      memory: int({ minimum: 4, maximum: 512 })
    },
    /** registered by name (`pve-qm-ipconfig`) */
    ipconfig: {
      ip: str({ format: "pve-ipv4-config" }),
      gw: str({ format: "ipv4", requires: "ip" }),
      ip6: str({ format: "pve-ipv6-config" }),
      gw6: str({ format: "ipv6", requires: "ip6" })
    },
    /** registered by name (`pve-vm-cpu-conf`) */
    cpu: {
      cputype: str({ default_key: 1 }),
      flags: str({ pattern: "(?:[+-][a-zA-Z0-9\\-_.]+)(?:;[+-][a-zA-Z0-9\\-_.]+)*" }),
      hidden: bool,
      "hv-vendor-id": str({ pattern: "[a-zA-Z0-9]{1,12}" }),
      "phys-bits": str({ pattern: "(?:\\d+|host)" }),
      "reported-model": str(),
      ...(nine ? { "guest-phys-bits": int({ minimum: 32, maximum: 64 }) } : {})
    },
    /** registered by name (`pve-qm-cicustom`) */
    cicustom: {
      meta: str({ format: "pve-volume-id" }),
      network: str({ format: "pve-volume-id" }),
      user: str({ format: "pve-volume-id" }),
      vendor: str({ format: "pve-volume-id" })
    },
    /** registered by name (`pve-qm-boot`) */
    boot: {
      legacy: str({ default_key: 1, pattern: "[acdn]{1,4}" }),
      order: str({ format: "pve-qm-bootdev-list" })
    }
  } satisfies Record<string, PveFormat>
}

export const NET_MODELS = [
  "e1000",
  "e1000-82540em",
  "e1000-82544gc",
  "e1000-82545em",
  "e1000e",
  "i82551",
  "i82557b",
  "i82559er",
  "ne2k_isa",
  "ne2k_pci",
  "pcnet",
  "rtl8139",
  "virtio",
  "vmxnet3"
]

const VGA_TYPES = [
  "cirrus",
  "qxl",
  "qxl2",
  "qxl3",
  "qxl4",
  "none",
  "serial0",
  "serial1",
  "serial2",
  "serial3",
  "std",
  "virtio",
  "virtio-gl",
  "vmware"
]

/** The names under which qemu-server registers the formats the schema shows only by name (with a typetext). */
export const NAMED_FORMATS: Record<string, string> = {
  ipconfig: "pve-qm-ipconfig",
  cpu: "pve-vm-cpu-conf",
  cicustom: "pve-qm-cicustom",
  boot: "pve-qm-boot"
}
