import { assert, describe, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import { bridgesOf, NetworkInterface, NodeStatus, Permissions, Storage, StorageContent } from "../src/index.js"

describe("Node decoding quirks", () => {
  it("node status: loadavg strings → numbers, cpus and memory", () => {
    const s = Schema.decodeUnknownSync(NodeStatus)({
      uptime: 864123,
      cpu: 0.0213,
      loadavg: ["0.12", "0.10", "0.09"],
      cpuinfo: { cpus: 6, cores: 6, sockets: 1, model: "Intel", mhz: "2100.000", hvm: "1" },
      memory: { total: 33516142592, used: 6571483136, free: 1234567890 },
      pveversion: "pve-manager/8.2.4/faa83925c9641325"
    })
    assert.deepStrictEqual(s.loadavg, [0.12, 0.1, 0.09])
    assert.strictEqual(s.cpuinfo.cpus, 6)
    assert.strictEqual(s.cpuinfo.hvm, true)
    assert.strictEqual(s.memory.total, 33516142592)
  })

  it("permissions: 0/1 → booleans", () => {
    assert.deepStrictEqual(Schema.decodeUnknownSync(Permissions)({ "/vms/100": { "VM.Audit": 1, "VM.Allocate": 0 } }), {
      "/vms/100": { "VM.Audit": true, "VM.Allocate": false }
    })
  })

  it("network: active 0/1, bridges sorted", () => {
    const list = Schema.decodeUnknownSync(Schema.Array(NetworkInterface))([
      { iface: "vmbr1", type: "bridge", active: 0, families: ["inet"] },
      { iface: "eno1", type: "eth", active: 1 },
      { iface: "vmbr0", type: "bridge", active: 1, cidr: "192.168.1.10/24", bridge_ports: "eno1", bridge_vlan_aware: 1 }
    ])
    assert.deepStrictEqual(bridgesOf(list), [
      { name: "vmbr0", active: true, cidr: "192.168.1.10/24", ports: "eno1" },
      { name: "vmbr1", active: false }
    ])
  })

  it("storage: content list sorted, 0/1 flags; content items", () => {
    const s = Schema.decodeUnknownSync(Storage)({
      storage: "local",
      type: "dir",
      content: "iso,vztmpl,backup,import",
      shared: 0,
      enabled: 1,
      active: 1,
      total: 100,
      used: "10",
      avail: 90
    })
    assert.deepStrictEqual(s, {
      storage: "local",
      type: "dir",
      content: ["backup", "import", "iso", "vztmpl"],
      shared: false,
      enabled: true,
      active: true,
      total: 100,
      used: 10,
      avail: 90
    })
    const c = Schema.decodeUnknownSync(StorageContent)({
      volid: "local-lvm:vm-100-disk-0",
      content: "images",
      format: "raw",
      size: 34359738368,
      vmid: "100"
    })
    assert.strictEqual(c.vmid, 100)
  })
})
