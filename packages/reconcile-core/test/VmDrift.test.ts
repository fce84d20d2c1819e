import { assert, describe, it } from "@effect/vitest"
import type { VmPending } from "@homelab/proxmox-client"
import * as Redacted from "effect/Redacted"
import { passwordMark } from "../src/PasswordMark.js"
import { cloudInitHeld, type DriftTarget, describeChange, needsRestart, vmDrift } from "../src/VmDrift.js"

const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEhAmuBu27BziINWHhHhGuib4xxdWR3d7NpM4kj7tQ8N me@laptop"
const other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvxKZ0g0Jm3lKk3QyPZt1sVq9bFv9t3k2n0P6cW7uX1 ci@box"

/** A VM as homelab created it, in step with `want`. */
const current: Record<string, string> = {
  name: "k3s-vm-pve",
  cores: "4",
  memory: "16384",
  cpu: "host",
  scsi0: "local-lvm:vm-1000-disk-0,discard=on,size=64G,ssd=1",
  scsi1: "local-lvm:vm-1000-disk-1,size=500G",
  ide2: "local-lvm:vm-1000-cloudinit,media=cdrom",
  net0: "virtio=BC:24:11:2E:7A:4C,bridge=vmbr0,firewall=1",
  tags: "homelab-managed;prod",
  ciuser: "ubuntu",
  sshkeys: encodeURIComponent(`${key}\n`),
  ipconfig0: "ip=dhcp",
  agent: "1",
  vga: "serial0",
  startup: "order=2"
}

const want: DriftTarget = {
  cores: 4,
  memoryMiB: 16384,
  cpuType: "host",
  diskGiB: 64,
  bridges: ["vmbr0"],
  tags: ["homelab-managed"],
  cloudInit: { user: "ubuntu", sshKeys: [key], ipConfig: "ip=dhcp" }
}

const config = (
  over: Record<string, string | undefined> = {},
  waiting: { pending?: Record<string, string>; deletes?: Array<string> } = {}
): VmPending => {
  const merged: Record<string, string> = {}
  for (const [k, v] of Object.entries({ ...current, ...over })) if (v !== undefined) merged[k] = v
  return { digest: "d1g35t", current: merged, pending: waiting.pending ?? {}, deletes: waiting.deletes ?? [] }
}

describe("vmDrift", () => {
  it("a VM as homelab.yaml asks has no drift; extra disks, other tags and unmanaged settings are not looked at", () => {
    const drift = vmDrift(want, config())
    assert.deepStrictEqual(drift.changes, [])
    assert.deepStrictEqual(drift.pending, [])
    assert.deepStrictEqual(drift.refused, [])
    assert.deepStrictEqual(drift.edit, { set: {}, delete: [], password: false, resize: [], cloudInit: false })
  })

  it("cores, sockets, memory and CPU type take effect after a restart; other CPU options are kept", () => {
    const drift = vmDrift(
      { ...want, cores: 6, memoryMiB: 20480, sockets: 2, cpuType: "x86-64-v2-AES" },
      config({ cpu: "host,flags=+aes" })
    )
    assert.deepStrictEqual(drift.changes.map(describeChange), [
      "cores 4 → 6 (takes effect after a restart)",
      "sockets 1 → 2 (takes effect after a restart)",
      "memory 16384 → 20480 MiB (takes effect after a restart)",
      "cpu host → x86-64-v2-AES (takes effect after a restart)"
    ])
    assert.deepStrictEqual(drift.edit.set, {
      cores: "6",
      sockets: "2",
      memory: "20480",
      cpu: "x86-64-v2-AES,flags=+aes"
    })
  })

  it("memory written as current=…; a value PVE already holds pending is reported as pending, not changed again", () => {
    const drift = vmDrift(
      { ...want, memoryMiB: 20480 },
      config({ memory: "current=16384" }, { pending: { memory: "20480" } })
    )
    assert.deepStrictEqual(drift.changes, [])
    assert.deepStrictEqual(drift.pending.map(describeChange), [
      "memory 16384 → 20480 MiB (takes effect after a restart)"
    ])
  })

  it("a value set pending outside homelab (the GUI) is written back to what the VM runs: applied now, no restart", () => {
    // PVE drops a pending value equal to the current one (cleanup_pending): nothing waits for a restart afterwards
    const drift = vmDrift(want, config({}, { pending: { cores: "2", memory: "8192" } }))
    assert.deepStrictEqual(drift.changes.map(describeChange), [
      "cores 4 (2 pending) → 4 (applied now)",
      "memory 16384 (8192 pending) → 16384 MiB (applied now)"
    ])
    assert.deepStrictEqual(drift.edit.set, { cores: "4", memory: "16384" })
    assert.isFalse(drift.changes.some(needsRestart))
    // a pending removal is written back the same way
    assert.deepStrictEqual(vmDrift(want, config({}, { deletes: ["cores"] })).changes.map(describeChange), [
      "cores 4 (removal pending) → 4 (applied now)"
    ])
    // running something else than homelab.yaml asks: the change waits for a restart, as any other
    assert.deepStrictEqual(
      vmDrift(want, config({ cores: "6" }, { pending: { cores: "2" } })).changes.map(describeChange),
      ["cores 2 → 4 (takes effect after a restart)"]
    )
  })

  it("balloon: a new target applies now, switching ballooning on or off waits for a restart; unset means unmanaged", () => {
    assert.deepStrictEqual(vmDrift(want, config({ balloon: "2048" })).changes, [])
    assert.deepStrictEqual(
      vmDrift({ ...want, balloonMiB: 4096 }, config({ balloon: "2048" })).changes.map(describeChange),
      ["balloon 2048 MiB → 4096 MiB (applied now)"]
    )
    assert.deepStrictEqual(
      vmDrift({ ...want, balloonMiB: 0 }, config({ balloon: "2048" })).changes.map(describeChange),
      ["balloon 2048 MiB → off (takes effect after a restart)"]
    )
  })

  it("the boot disk is grown online; a smaller size is refused with a reason and nothing is shrunk", () => {
    const grow = vmDrift({ ...want, diskGiB: 128 }, config())
    assert.deepStrictEqual(grow.changes.map(describeChange), ["scsi0 64G → 128G (grown online)"])
    assert.deepStrictEqual(grow.edit.resize, [{ disk: "scsi0", size: "128G", bytes: 128 * 1024 ** 3 }])
    const shrink = vmDrift({ ...want, diskGiB: 32 }, config())
    assert.deepStrictEqual(shrink.changes, [])
    assert.deepStrictEqual(shrink.edit.resize, [])
    assert.match(shrink.refused[0]?.message ?? "", /scsi0 is 64G, homelab.yaml asks 32G: disks are never shrunk/)
    assert.include(shrink.refused[0]?.hint ?? "", "set diskSize to 64G or more")
  })

  it("a boot disk on another storage than homelab.yaml asks is moved while the VM runs, with the other changes", () => {
    assert.isUndefined(vmDrift({ ...want, storage: "local-lvm" }, config()).edit.move)
    const drift = vmDrift({ ...want, storage: "nvme-pool", cores: 6, diskGiB: 128 }, config())
    assert.deepStrictEqual(drift.refused, [])
    assert.deepStrictEqual(drift.changes.map(describeChange), [
      "cores 4 → 6 (takes effect after a restart)",
      "scsi0 64G → 128G (grown online)",
      "scsi0 storage local-lvm → nvme-pool (moved while the VM runs)"
    ])
    assert.deepStrictEqual(drift.edit.move, { disk: "scsi0", storage: "nvme-pool" })
    // a disk given as a path (not a storage volume) is not compared
    assert.isUndefined(
      vmDrift({ ...want, storage: "nvme-pool" }, config({ scsi0: "/dev/disk/by-id/ata-X,size=64G" })).edit.move
    )
  })

  it("NICs per bridge: added, removed, bridge changed with the MAC and options kept", () => {
    const drift = vmDrift(
      { ...want, bridges: ["vmbr1", "vmbr2"] },
      config({ net3: "virtio=BC:24:11:00:00:03,bridge=vmbr9" })
    )
    assert.deepStrictEqual(drift.changes.map(describeChange), [
      "net0 vmbr0 → vmbr1 (MAC BC:24:11:2E:7A:4C kept) (applied now)",
      "net1 none → vmbr2 (added) (applied now)",
      "net3 vmbr9 → removed (applied now)"
    ])
    assert.deepStrictEqual(drift.edit.set, {
      net0: "virtio=BC:24:11:2E:7A:4C,bridge=vmbr1,firewall=1",
      net1: "virtio,bridge=vmbr2"
    })
    assert.deepStrictEqual(drift.edit.delete, ["net3"])
  })

  it("a NIC's link set down by hand (link_down=1) is brought up, its bridge, MAC and options kept, applied now (also without network hotplug)", () => {
    const down = config({ net0: "virtio=BC:24:11:2E:7A:4C,bridge=vmbr0,firewall=1,link_down=1" })
    const drift = vmDrift(want, down)
    assert.deepStrictEqual(drift.changes.map(describeChange), ["net0 vmbr0, link down → link up (applied now)"])
    assert.deepStrictEqual(drift.edit.set, { net0: "virtio=BC:24:11:2E:7A:4C,bridge=vmbr0,firewall=1" })
    assert.deepStrictEqual(drift.attaches, [], "no bridge to check: the NIC stays on its own")
    assert.deepStrictEqual(vmDrift({ ...want, bridges: ["vmbr1"] }, down).changes.map(describeChange), [
      "net0 vmbr0, link down → vmbr1 (MAC BC:24:11:2E:7A:4C kept), link up (applied now)"
    ])
    assert.deepStrictEqual(vmDrift({ ...want, bridges: ["vmbr1"] }, down).edit.set, {
      net0: "virtio=BC:24:11:2E:7A:4C,bridge=vmbr1,firewall=1"
    })
    assert.deepStrictEqual(
      vmDrift(want, config({ hotplug: "0", net0: `${current.net0},link_down=1` })).changes.map(describeChange),
      ["net0 vmbr0, link down → link up (applied now)"]
    )
    assert.deepStrictEqual(vmDrift(want, config({ net0: `${current.net0},link_down=0` })).changes, [])
  })

  it("with the node's bridges: NICs go only on an existing, active bridge; otherwise none of the VM's NICs change (refused with the create preflight's code), the rest still does", () => {
    const node = {
      node: "pve",
      bridges: [
        { name: "vmbr0", active: true },
        { name: "vmbr2", active: true },
        { name: "vmbr3", active: false }
      ]
    }
    const fine = vmDrift({ ...want, bridges: ["vmbr0", "vmbr2"] }, config(), node)
    assert.deepStrictEqual(fine.changes.map(describeChange), ["net1 none → vmbr2 (added) (applied now)"])
    assert.deepStrictEqual(fine.attaches, ["vmbr2"])
    assert.deepStrictEqual(fine.refused, [])

    const drift = vmDrift(
      { ...want, cores: 6, bridges: ["vmbr1", "vmbr2", "vmbr3"] },
      config({ net4: "virtio=BC:24:11:00:00:04,bridge=vmbr0" }),
      node
    )
    assert.deepStrictEqual(drift.changes.map(describeChange), ["cores 4 → 6 (takes effect after a restart)"])
    assert.deepStrictEqual(drift.edit.set, { cores: "6" })
    assert.deepStrictEqual(drift.edit.delete, [], "not even a NIC to remove")
    assert.deepStrictEqual(drift.attaches, ["vmbr1", "vmbr2", "vmbr3"])
    assert.deepStrictEqual(
      drift.refused.map((r) => [r.code, r.field, r.message]),
      [
        [
          "bridge.missing",
          "net0",
          "bridge 'vmbr1' does not exist on node pve: net0 vmbr0 → vmbr1 (MAC BC:24:11:2E:7A:4C kept) is not made (the VM's NICs are left as they are)"
        ],
        [
          "bridge.inactive",
          "net2",
          "bridge 'vmbr3' on node pve is not active: net2 none → vmbr3 (added) is not made (the VM's NICs are left as they are)"
        ]
      ]
    )
    assert.match(drift.refused[0]?.hint ?? "", /^create bridge 'vmbr1' on node pve/)
    assert.match(drift.refused[1]?.hint ?? "", /^apply the pending network configuration on node pve/)

    // Without the node's bridges (not read): not checked.
    assert.deepStrictEqual(vmDrift({ ...want, bridges: ["vmbr1"] }, config()).refused, [])
  })

  it("a NIC PVE holds pending on a bridge the node lacks (a hotplug that failed) is refused: the VM would not start", () => {
    const node = { node: "pve", bridges: [{ name: "vmbr0", active: true }] }
    const held = config({}, { pending: { net1: "virtio=BC:24:11:00:00:01,bridge=vmbr1" } })
    const drift = vmDrift({ ...want, bridges: ["vmbr0", "vmbr1"] }, held, node)
    assert.deepStrictEqual(drift.changes, [])
    assert.deepStrictEqual(drift.attaches, ["vmbr1"])
    assert.deepStrictEqual(
      drift.refused.map((r) => [r.code, r.message]),
      [["bridge.missing", "bridge 'vmbr1' does not exist on node pve: net1 pending on it: the VM will not start again"]]
    )
    // homelab.yaml no longer asking for it: the pending NIC is removed
    const dropped = vmDrift(want, held, node)
    assert.deepStrictEqual(dropped.changes.map(describeChange), ["net1 vmbr1 → removed (applied now)"])
    assert.deepStrictEqual(dropped.edit.delete, ["net1"])
    assert.deepStrictEqual(dropped.refused, [])
  })

  it("NICs wait for a restart on a VM whose network hotplug is off", () => {
    const drift = vmDrift({ ...want, bridges: ["vmbr0", "vmbr1"] }, config({ hotplug: "disk,usb" }))
    assert.deepStrictEqual(drift.changes.map(describeChange), [
      "net1 none → vmbr1 (added) (takes effect after a restart)"
    ])
  })

  it("tags: ours are added, the others kept; onboot and description only when homelab.yaml sets them", () => {
    const drift = vmDrift(
      { ...want, tags: ["homelab-managed", "k3s"], onboot: true, description: "k3s node" },
      config({ description: "hand-written notes" })
    )
    assert.deepStrictEqual(drift.changes.map(describeChange), [
      "tags homelab-managed;prod → +k3s (applied now)",
      "onboot false → true (applied now)",
      'description "hand-written notes" → "k3s node" (applied now)'
    ])
    assert.deepStrictEqual(drift.edit.set, {
      tags: "homelab-managed;k3s;prod",
      onboot: "1",
      description: "k3s node"
    })
    assert.deepStrictEqual(vmDrift(want, config({ onboot: "0", description: "notes" })).changes, [])
  })

  it("description: compared as PVE keeps notes, without trailing whitespace (a YAML block scalar ends in a newline)", () => {
    const notes = "k3s node\nmanaged by homelab\n"
    assert.deepStrictEqual(
      vmDrift({ ...want, description: notes }, config({ description: "k3s node\nmanaged by homelab" })).changes,
      []
    )
    assert.deepStrictEqual(
      vmDrift({ ...want, description: notes }, config({ description: "k3s node" })).changes.map(describeChange),
      ['description "k3s node" → "k3s node\\nmanaged by homelab" (applied now)']
    )
  })

  it("cloud-init: user, keys, ipconfig0, nameserver, searchdomain, cicustom; a password only as set or not", () => {
    const drift = vmDrift(
      {
        ...want,
        cloudInit: {
          user: "ops",
          sshKeys: [key, other],
          ipConfig: "ip=10.0.0.5/24,gw=10.0.0.1",
          nameserver: "10.0.0.1",
          searchdomain: "lan",
          cicustom: { user: "local:snippets/user.yaml" },
          password: Redacted.make("hunter2")
        }
      },
      config()
    )
    assert.deepStrictEqual(drift.changes.map(describeChange), [
      "cloud-init user ubuntu → ops (the guest gets it when PVE next starts the VM)",
      "cloud-init ssh keys me@laptop → me@laptop, ci@box (the guest gets it when PVE next starts the VM)",
      "cloud-init ipconfig0 ip=dhcp → ip=10.0.0.5/24,gw=10.0.0.1 (the guest gets it when PVE next starts the VM)",
      "cloud-init nameserver not set → 10.0.0.1 (the guest gets it when PVE next starts the VM)",
      "cloud-init searchdomain not set → lan (the guest gets it when PVE next starts the VM)",
      "cloud-init cicustom not set → user=local:snippets/user.yaml (the guest gets it when PVE next starts the VM)",
      "cloud-init password not set → set (the guest gets it when PVE next starts the VM)"
    ])
    assert.isTrue(drift.edit.cloudInit)
    assert.isTrue(drift.edit.password)
    assert.notInclude(JSON.stringify(drift), "hunter2")
    assert.strictEqual(drift.edit.set.sshkeys, encodeURIComponent(`${key}\n${other}`))
    // a password already set cannot be compared (PVE shows it masked): it is left as it is
    const masked = vmDrift(
      { ...want, cloudInit: { ...want.cloudInit, password: Redacted.make("x") } },
      config({ cipassword: "**********" })
    )
    assert.deepStrictEqual(masked.changes, [])
  })

  describe("the password, through the mark of the password homelab set (a tag: PVE shows cipassword masked)", () => {
    const token = Redacted.make("0b7c5a52-6f1e-4d4e-9d8e-6a1f3c2b9e01")
    const hunter2 = Redacted.make("hunter2")
    const mark = passwordMark(token, "k3s-vm-pve", hunter2)
    const old = passwordMark(token, "k3s-vm-pve", Redacted.make("hunter1")).tag
    const rotated = passwordMark(Redacted.make("another-secret"), "k3s-vm-pve", hunter2).tag
    const withPassword: DriftTarget = {
      ...want,
      cloudInit: { ...want.cloudInit, password: hunter2, passwordMark: mark }
    }
    const masked = (tags: string) => config({ cipassword: "**********", tags })
    const rows = (drift: ReturnType<typeof vmDrift>) => ({
      changes: drift.changes.map(describeChange),
      password: drift.edit.password,
      cloudInit: drift.edit.cloudInit,
      tags: drift.edit.set.tags,
      unknown: drift.passwordUnknown
    })

    it("the mark of vm.password: no drift", () => {
      assert.deepStrictEqual(vmDrift(withPassword, masked(`homelab-managed;${mark.tag};prod`)).changes, [])
    })

    it("a mark of the same key and another password: the password changed, sent with its new mark in one update", () => {
      const drift = vmDrift(withPassword, masked(`homelab-managed;${old};prod`))
      assert.deepStrictEqual(rows(drift), {
        changes: ["cloud-init password set → changed (the guest gets it when PVE next starts the VM)"],
        password: true,
        cloudInit: true,
        tags: ["homelab-managed", mark.tag, "prod"].sort().join(";"),
        unknown: undefined
      })
      assert.isTrue(needsRestart(drift.changes[0] as never))
      assert.notInclude(JSON.stringify(drift), "hunter")
    })

    it("no mark, or only one of another key: the mark of vm.password is written, the password not sent, nothing waits for a restart", () => {
      assert.deepStrictEqual(rows(vmDrift(withPassword, masked("homelab-managed;prod"))), {
        changes: ["cloud-init password mark none → set (applied now)"],
        password: false,
        cloudInit: false,
        tags: ["homelab-managed", mark.tag, "prod"].sort().join(";"),
        unknown: "unmarked"
      })
      assert.deepStrictEqual(rows(vmDrift(withPassword, masked(`homelab-managed;${rotated}`))), {
        changes: ["cloud-init password mark of another API token secret → set (applied now)"],
        password: false,
        cloudInit: false,
        tags: ["homelab-managed", mark.tag].sort().join(";"),
        unknown: "other-key"
      })
    })

    it("no password on the VM: set, with its mark", () => {
      assert.deepStrictEqual(rows(vmDrift(withPassword, config())), {
        changes: ["cloud-init password not set → set (the guest gets it when PVE next starts the VM)"],
        password: true,
        cloudInit: true,
        tags: ["homelab-managed", mark.tag, "prod"].sort().join(";"),
        unknown: undefined
      })
    })

    it("vm.password removed from homelab.yaml: the mark goes, the VM keeps its password", () => {
      const drift = vmDrift(want, masked(`homelab-managed;${mark.tag};prod`))
      assert.deepStrictEqual(rows(drift), {
        changes: ["cloud-init password mark set → removed (applied now)"],
        password: false,
        cloudInit: false,
        tags: "homelab-managed;prod",
        unknown: undefined
      })
      assert.deepStrictEqual(drift.edit.delete, [])
      assert.deepStrictEqual(vmDrift(want, masked("homelab-managed;prod")).changes, [])
    })

    it("no key to compare with (no passwordMark): a password already set is left as it is, and said", () => {
      const drift = vmDrift({ ...want, cloudInit: { ...want.cloudInit, password: hunter2 } }, masked("homelab-managed"))
      assert.deepStrictEqual([drift.changes, drift.passwordUnknown], [[], "no-key"])
    })

    it("the mark is homelab's own: not shown among the tags, not compared with homelab.yaml's tags", () => {
      const drift = vmDrift(
        { ...withPassword, tags: ["homelab-managed", "k3s", old] },
        masked(`homelab-managed;${mark.tag}`)
      )
      assert.deepStrictEqual(drift.changes.map(describeChange), ["tags homelab-managed → +k3s (applied now)"])
      assert.strictEqual(drift.edit.set.tags, ["homelab-managed", mark.tag, "k3s"].sort().join(";"))
    })

    it("a password change PVE holds for the drive reads as changed (PVE masks both values)", () => {
      assert.strictEqual(
        describeChange(cloudInitHeld({ key: "cipassword", drive: "**********", config: "**********" })),
        "cloud-init password set → changed (the guest gets it when PVE next starts the VM)"
      )
      assert.strictEqual(
        describeChange(cloudInitHeld({ key: "cipassword", drive: undefined, config: "**********" })),
        "cloud-init password not set → set (the guest gets it when PVE next starts the VM)"
      )
    })
  })

  it("a VM homelab did not create: without a cloud-init drive its cloud-init settings, without a sized scsi0 its disk, are not compared", () => {
    const drift = vmDrift(
      { ...want, diskGiB: 128, cloudInit: { ...want.cloudInit, user: "ops" } },
      config({ ide2: undefined, scsi0: undefined, virtio0: "local-lvm:vm-1000-disk-0,size=32G" })
    )
    assert.deepStrictEqual(drift.changes, [])
    assert.deepStrictEqual(drift.refused, [])
  })

  it("keys in another order and an ipconfig with its parts reordered are no drift", () => {
    const drift = vmDrift(
      { ...want, cloudInit: { ...want.cloudInit, sshKeys: [other, key], ipConfig: "gw=10.0.0.1,ip=10.0.0.5/24" } },
      config({ sshkeys: encodeURIComponent(`${key}\n${other}\n`), ipconfig0: "ip=10.0.0.5/24,gw=10.0.0.1" })
    )
    assert.deepStrictEqual(drift.changes, [])
  })
})
