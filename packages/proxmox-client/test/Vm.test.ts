import { assert, describe, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { ClusterVm, createVmParams, encodeSshKeys, macOfNet, VmConfig, VmStatus } from "../src/index.js"
import { VmConfigFromWire } from "../src/Vm.js"

describe("Vm decoding quirks", () => {
  it("cluster resources: 0/1 template, tags list, missing name/status of a fresh VM", () => {
    const decode = Schema.decodeUnknownSync(Schema.Array(ClusterVm))
    const vms = decode([
      {
        id: "qemu/100",
        type: "qemu",
        vmid: 100,
        node: "pve",
        name: "web1",
        status: "running",
        template: 0,
        tags: "k8s;prod",
        lock: "backup",
        maxmem: 2147483648
      },
      { id: "qemu/101", type: "qemu", vmid: "101", node: "pve2", status: "unknown", lock: "create" },
      { id: "lxc/102", type: "lxc", vmid: 102, node: "pve", status: "stopped", template: 1, tags: "a,b c" }
    ])
    assert.deepStrictEqual(vms[0], {
      vmid: 100,
      node: "pve",
      type: "qemu",
      status: "running",
      name: "web1",
      tags: ["k8s", "prod"],
      lock: "backup",
      template: false,
      maxmem: 2147483648
    })
    assert.deepStrictEqual(vms[1], {
      vmid: 101,
      node: "pve2",
      type: "qemu",
      status: "unknown",
      lock: "create",
      tags: [],
      template: false
    })
    assert.deepStrictEqual(vms[2]?.tags, ["a", "b", "c"])
    assert.strictEqual(vms[2]?.template, true)
  })

  it("vm status: agent 0/1, uptime default, qmpstatus and lock kept", () => {
    const s = Schema.decodeUnknownSync(VmStatus)({
      vmid: 100,
      name: "web1",
      status: "running",
      qmpstatus: "paused",
      pid: 12,
      uptime: 3600,
      agent: 1,
      lock: "backup",
      ha: { managed: 0 }
    })
    assert.deepStrictEqual(s, {
      vmid: 100,
      name: "web1",
      status: "running",
      qmpstatus: "paused",
      uptime: 3600,
      agent: true,
      lock: "backup",
      tags: [],
      template: false
    })
    const stopped = Schema.decodeUnknownSync(VmStatus)({ vmid: 101, status: "stopped" })
    assert.deepStrictEqual(stopped, {
      vmid: 101,
      status: "stopped",
      uptime: 0,
      agent: false,
      tags: [],
      template: false
    })
    assert.throws(() => Schema.decodeUnknownSync(VmStatus)({ vmid: 100, status: "paused" }))
  })

  it("config: memory as number, numeric string and property string; agent string; raw kept", () => {
    const decode = Schema.decodeUnknownSync(VmConfigFromWire)
    const a = decode({
      memory: "2048",
      agent: "1",
      cores: 2,
      onboot: 1,
      tags: "k8s;prod",
      digest: "abc",
      net0: "virtio=BC:24:11:2E:7A:4C,bridge=vmbr0"
    })
    assert.strictEqual(a.memory, 2048)
    assert.strictEqual(a.agent, true)
    assert.strictEqual(a.cores, 2)
    assert.strictEqual(a.onboot, true)
    assert.deepStrictEqual(a.tags, ["k8s", "prod"])
    assert.deepStrictEqual(a.raw, {
      memory: "2048",
      agent: "1",
      cores: "2",
      onboot: "1",
      tags: "k8s;prod",
      digest: "abc",
      net0: "virtio=BC:24:11:2E:7A:4C,bridge=vmbr0"
    })
    assert.strictEqual(decode({ memory: 4096 }).memory, 4096)
    assert.strictEqual(decode({ memory: "current=1024,foo=1" }).memory, 1024)
    assert.strictEqual(decode({ agent: "enabled=1,fstrim_cloned_disks=1" }).agent, true)
    assert.strictEqual(decode({ agent: "0" }).agent, false)
    assert.strictEqual(decode({ cores: "4" }).cores, 4)
    assert.isTrue(Schema.is(VmConfig)(decode({})))
    assert.throws(() => decode({ memory: "lots" }))
  })

  it("macOfNet reads the model=MAC form and macaddr=", () => {
    assert.strictEqual(macOfNet("virtio=bc:24:11:2e:7a:4c,bridge=vmbr0"), "BC:24:11:2E:7A:4C")
    assert.strictEqual(macOfNet("model=e1000,macaddr=AA:BB:CC:DD:EE:FF"), "AA:BB:CC:DD:EE:FF")
    assert.strictEqual(macOfNet("virtio,bridge=vmbr0"), undefined)
  })
})

describe("createVmParams", () => {
  it("builds every parameter of the workflow; sshkeys single-encoded, password stays Redacted, an ipconfig string sent as it is", () => {
    const password = Redacted.make("s3cret")
    const p = createVmParams({
      node: "pve",
      vmid: 101,
      name: "web1",
      cores: 2,
      sockets: 2,
      memory: 2048,
      balloon: 1024,
      cpu: "host",
      scsihw: "virtio-scsi-single",
      disks: {
        scsi0: { storage: "local-lvm", importFrom: "local:import/jammy.qcow2", options: { discard: "on", ssd: "1" } }
      },
      nets: [{ bridge: "vmbr0" }, { bridge: "vmbr1", tag: 20, firewall: false, mac: "bc:24:11:00:00:01" }],
      cloudInit: {
        storage: "local-lvm",
        user: "ubuntu",
        password,
        sshKeys: ["ssh-ed25519 AAAAC3Nz me@host"],
        ipConfig: [{ ip: "dhcp" }, { ip: "10.0.0.5/24", gw: "10.0.0.1" }, "ip=dhcp,ip6=fd00::5/64,gw6=fd00::1"],
        cicustom: "user=local:snippets/user.yaml"
      },
      agent: true,
      bootOrder: ["scsi0"],
      serialConsole: true,
      tags: ["k8s", "prod"],
      description: "managed by homelab",
      onboot: true,
      start: false
    })
    assert.deepStrictEqual(
      { ...p, cipassword: undefined },
      {
        vmid: 101,
        name: "web1",
        cores: 2,
        sockets: 2,
        memory: "2048",
        balloon: 1024,
        cpu: "host",
        scsihw: "virtio-scsi-single",
        scsi0: "local-lvm:0,import-from=local:import/jammy.qcow2,discard=on,ssd=1",
        net0: "virtio,bridge=vmbr0",
        net1: "virtio=BC:24:11:00:00:01,bridge=vmbr1,tag=20,firewall=0",
        ide2: "local-lvm:cloudinit",
        ciuser: "ubuntu",
        cipassword: undefined,
        sshkeys: "ssh-ed25519%20AAAAC3Nz%20me%40host",
        ipconfig0: "ip=dhcp",
        ipconfig1: "ip=10.0.0.5/24,gw=10.0.0.1",
        ipconfig2: "ip=dhcp,ip6=fd00::5/64,gw6=fd00::1",
        cicustom: "user=local:snippets/user.yaml",
        agent: "1",
        boot: "order=scsi0",
        serial0: "socket",
        vga: "serial0",
        tags: "k8s;prod",
        description: "managed by homelab",
        onboot: true,
        start: false
      }
    )
    assert.strictEqual(p.cipassword, password)
    // the form layer encodes once more: %2520 on the wire
    assert.include(
      new URLSearchParams({ sshkeys: p.sshkeys as string }).toString(),
      "ssh-ed25519%2520AAAAC3Nz%2520me%2540host"
    )
  })

  it("encodeSshKeys joins keys with newlines and percent-encodes like PVE's urlencoded format", () => {
    const encoded = encodeSshKeys(["ssh-ed25519 AAAA a@b", " ssh-rsa BBBB+/= c@d "])
    assert.strictEqual(encoded, "ssh-ed25519%20AAAA%20a%40b%0Assh-rsa%20BBBB%2B%2F%3D%20c%40d")
    assert.match(encoded, /^[-%a-zA-Z0-9_.!~*'()]*$/)
  })
})
