import { assert, describe, it } from "@effect/vitest"
import type { ClusterNode } from "@homelab/k3s-join"
import type { VmPending } from "@homelab/proxmox-client"
import * as Redacted from "effect/Redacted"
import type { VmSpec } from "../src/Action.js"
import type { Desired, DesiredVm } from "../src/Desired.js"
import type { ObservedNode } from "../src/Observed.js"
import { passwordMark } from "../src/PasswordMark.js"
import { type DriftInput, planDrift } from "../src/PlanDrift.js"

const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEhAmuBu27BziINWHhHhGuib4xxdWR3d7NpM4kj7tQ8N me@laptop"

const vm: DesiredVm = {
  name: "k3s-vm-pve",
  node: "pve",
  role: "agent",
  diskGiB: 64,
  storage: "local-lvm",
  bridges: ["vmbr0"],
  tags: ["homelab-managed"],
  cpuType: "host",
  cloudInit: { user: "ubuntu", sshKeys: [key], ipConfig: "ip=dhcp" }
}

const spec: VmSpec = {
  name: vm.name,
  node: "pve",
  role: "agent",
  cores: 4,
  memoryMiB: 16384,
  diskGiB: 64,
  storage: "local-lvm",
  bridges: ["vmbr0"],
  tags: ["homelab-managed"],
  cpuType: "host",
  imageVolid: "local:import/noble.qcow2",
  vmidCandidates: [1000]
}

const desired = (restart: "never" | "rolling"): Desired => ({
  nodes: [],
  ownershipTag: "homelab-managed",
  pendingTag: "homelab-pending",
  vmidRange: { lower: 1000, upper: 8999 },
  limits: { maxRecreatePerRun: 1 },
  protect: [],
  restart
})

const node: ObservedNode = {
  name: "pve",
  online: true,
  cpus: 8,
  memoryBytes: 64 * 1024 ** 3,
  storages: [
    {
      storage: "local",
      type: "dir",
      content: ["iso", "import"],
      shared: false,
      active: true,
      enabled: true,
      totalBytes: 1,
      availBytes: 1
    },
    {
      storage: "local-lvm",
      type: "lvmthin",
      content: ["images", "rootdir"],
      shared: false,
      active: true,
      enabled: true,
      totalBytes: 1,
      availBytes: 1
    }
  ],
  imageVolids: new Set()
}

const config = (over: Record<string, string> = {}, pending: Record<string, string> = {}): VmPending => ({
  digest: "abc",
  current: {
    cores: "4",
    memory: "16384",
    cpu: "host",
    scsi0: "local-lvm:vm-1000-disk-0,size=64G",
    net0: "virtio=BC:24:11:2E:7A:4C,bridge=vmbr0",
    tags: "homelab-managed",
    ciuser: "ubuntu",
    sshkeys: encodeURIComponent(key),
    ipconfig0: "ip=dhcp",
    ide2: "local-lvm:vm-1000-cloudinit,media=cdrom",
    ...over
  },
  pending,
  deletes: []
})

const input = (over: Partial<DriftInput>): DriftInput => ({
  desired: desired("never"),
  spec,
  vm,
  vmid: 1000,
  node,
  config: config(),
  protected: false,
  ...over
})

const member: ClusterNode = {
  name: "k3s-vm-pve",
  roleLabels: [],
  role: "agent",
  ready: "True",
  readyDetail: "",
  internalIPs: ["10.0.0.5"],
  kubeletVersion: "v1.30.5+k3s1",
  systemUUID: undefined,
  deleting: false,
  etcdMemberName: undefined
}

describe("planDrift", () => {
  it("nothing to do for a VM as homelab.yaml asks; nothing planned when its config was not read", () => {
    assert.deepStrictEqual(planDrift(input({})), { update: undefined, findings: [] })
    assert.deepStrictEqual(planDrift(input({ config: undefined })), { findings: [] })
  })

  it("cores or sockets changed beyond the node's CPUs (sockets × cores): nothing is changed, the node and the numbers are named", () => {
    const wide = planDrift(input({ spec: { ...spec, cores: 6 }, vm: { ...vm, sockets: 2 } }))
    assert.isUndefined(wide.update)
    assert.isUndefined(wide.restart)
    assert.deepStrictEqual(
      wide.findings.map((f) => [f.code, f.effect, f.message, f.hint]),
      [
        [
          "cpu.insufficient",
          "blocked",
          'VM 1000 k3s-vm-pve is not changed in place: the VM asks for 2 sockets × 6 cores = 12 vCPUs, node pve has 8 logical CPUs (PVE would refuse to start it: "MAX 8 vcpus allowed per VM on this node")',
          "lower sockets × cores to at most 8: with vm.sockets 2, at most 4 cores (nodes[pve].vms[].cores or nodes[pve].cpuRatio), or fewer vm.sockets"
        ]
      ]
    )
    // homelab.yaml sets no sockets: the VM's own count (2 here) is what PVE multiplies
    const kept = planDrift(input({ spec: { ...spec, cores: 6 }, config: config({ sockets: "2" }) }))
    assert.deepStrictEqual(
      kept.findings.map((f) => f.code),
      ["cpu.insufficient"]
    )
    assert.isUndefined(kept.update)
    // within the node: changed as usual
    assert.isDefined(planDrift(input({ spec: { ...spec, cores: 4 }, vm: { ...vm, sockets: 2 } })).update)
  })

  it("memory or balloon changed so the balloon is above the memory: nothing is changed, PVE would refuse the update", () => {
    const lower = planDrift(input({ spec: { ...spec, memoryMiB: 4096 }, config: config({ balloon: "8192" }) }))
    assert.isUndefined(lower.update)
    assert.deepStrictEqual(
      lower.findings.map((f) => [f.code, f.effect, f.message, f.hint]),
      [
        [
          "balloon.too-large",
          "blocked",
          'VM 1000 k3s-vm-pve is not changed in place: the VM\'s balloon minimum (8192 MiB) is above its memory on node pve (4096 MiB); PVE refuses that in a config update ("balloon value too large (must be smaller than assigned memory)")',
          "lower vm.balloon to at most 4096 MiB (0 turns ballooning off), or give the VM more memory (nodes[pve].vms[].memory or nodes[pve].memoryRatio)"
        ]
      ]
    )
    const raised = planDrift(input({ vm: { ...vm, balloonMiB: 32768 } }))
    assert.deepStrictEqual(
      raised.findings.map((f) => f.code),
      ["balloon.too-large"]
    )
    // a change that touches neither (tags) is made even so
    const tags = planDrift(input({ config: config({ balloon: "32768", tags: "other" }) }))
    assert.isDefined(tags.update)
    assert.deepStrictEqual(tags.findings, [])
  })

  it("memory grown above what the node can still reserve: nothing is changed, as a create of that size is refused", () => {
    // 28 GiB reservable for this VM (the node's memory minus its other guests' maxmem)
    const reservable = 28672 * 1024 ** 2
    const grown = planDrift(input({ spec: { ...spec, memoryMiB: 32768 }, reservableMemoryBytes: reservable }))
    assert.isUndefined(grown.update)
    assert.isUndefined(grown.restart)
    assert.deepStrictEqual(
      grown.findings.map((f) => [f.code, f.effect, f.message, f.hint]),
      [
        [
          "memory.insufficient",
          "blocked",
          "VM 1000 k3s-vm-pve is not changed in place: memory 16384 → 32768 MiB, and node pve can reserve 28672 MiB for it (64.0 GiB × vm.memoryOvercommit minus the maxmem of its other guests)",
          "lower the VM memory (nodes[pve].vms[].memory or nodes[pve].memoryRatio), shrink or remove other guests on node pve, or allow overcommit (vm.memoryOvercommit above 1, for VMs whose balloon gives memory back)"
        ]
      ]
    )
    // within what the node can reserve, or a VM that shrinks on an overcommitted node: changed as usual
    assert.isDefined(
      planDrift(input({ spec: { ...spec, memoryMiB: 20480 }, reservableMemoryBytes: reservable })).update
    )
    assert.isDefined(planDrift(input({ spec: { ...spec, memoryMiB: 8192 }, reservableMemoryBytes: 0 })).update)
  })

  it("an in-place update carrying the digest; with vm.restart: never, no restart", () => {
    const step = planDrift(input({ spec: { ...spec, memoryMiB: 20480 } }))
    assert.strictEqual(step.update?.digest, "abc")
    assert.strictEqual(step.update?.id, "pve:update:k3s-vm-pve")
    assert.deepStrictEqual(step.update?.edit.set, { memory: "20480" })
    assert.isUndefined(step.restart)
    assert.deepStrictEqual(step.findings, [])
  })

  it("with vm.restart: rolling, a restart after the update, draining the VM's Node when it is a Ready member", () => {
    const step = planDrift(
      input({
        desired: desired("rolling"),
        spec: { ...spec, memoryMiB: 20480 },
        k3sNodes: [member],
        ip: "10.0.0.5"
      })
    )
    assert.deepStrictEqual(step.restart?.after, ["pve:update:k3s-vm-pve"])
    assert.strictEqual(step.restart?.exclusive, "vm-restart")
    assert.deepStrictEqual(step.restart?.k3s, { role: "agent", ip: "10.0.0.5" })
    // a change applied at once needs no restart
    const now = planDrift(input({ desired: desired("rolling"), vm: { ...vm, onboot: true } }))
    assert.isDefined(now.update)
    assert.isUndefined(now.restart)
  })

  it("a Node cordoned by someone else (no mark of ours) is left cordoned by the restart; ours is uncordoned", () => {
    const cordoned = { ...member, unschedulable: true }
    const restart = (cordonedByUs: boolean) =>
      planDrift(
        input({
          desired: desired("rolling"),
          spec: { ...spec, memoryMiB: 20480 },
          k3sNodes: [cordoned],
          ip: "10.0.0.5",
          cordonedByUs
        })
      ).restart
    assert.deepStrictEqual(restart(false)?.k3s, { role: "agent", ip: "10.0.0.5", keepCordoned: true })
    assert.deepStrictEqual(restart(true)?.k3s, { role: "agent", ip: "10.0.0.5" })
  })

  it("what PVE already holds pending: a restart with rolling, a pending finding with never", () => {
    const held = config({}, { memory: "20480" })
    const rolling = planDrift(input({ desired: desired("rolling"), spec: { ...spec, memoryMiB: 20480 }, config: held }))
    assert.isUndefined(rolling.update)
    assert.deepStrictEqual(rolling.restart?.after, [])
    assert.isUndefined(rolling.restart?.k3s)
    const never = planDrift(input({ spec: { ...spec, memoryMiB: 20480 }, config: held }))
    assert.isUndefined(never.update)
    assert.deepStrictEqual(
      never.findings.map((f) => [f.code, f.effect]),
      [["vm.pending-restart", "pending"]]
    )
    assert.include(never.findings[0]?.hint ?? "", "qm reboot 1000")
  })

  it("a protected VM's drift is reported (blocked), never planned; a shrink is refused", () => {
    const guarded = planDrift(input({ protected: true, spec: { ...spec, cores: 8 } }))
    assert.isUndefined(guarded.update)
    assert.deepStrictEqual(
      guarded.findings.map((f) => [f.code, f.effect]),
      [["vm.protected-drift", "blocked"]]
    )
    const shrink = planDrift(input({ spec: { ...spec, diskGiB: 32 } }))
    assert.isUndefined(shrink.update)
    assert.deepStrictEqual(
      shrink.findings.map((f) => [f.code, f.effect]),
      [["vm.disk-shrink", "blocked"]]
    )
  })

  it("a disk on another storage than nodes[].storage is moved, only to a storage the create's checks pass; else it stays (the other settings still change)", () => {
    const nvme = {
      storage: "nvme-pool",
      type: "lvmthin",
      content: ["images", "rootdir"],
      shared: false,
      active: true,
      enabled: true,
      totalBytes: 512 * 1024 ** 3,
      availBytes: 400 * 1024 ** 3
    }
    const moved = { ...spec, storage: "nvme-pool" }
    const usable = planDrift(input({ spec: moved, node: { ...node, storages: [...node.storages, nvme] } }))
    assert.deepStrictEqual(usable.findings, [])
    assert.deepStrictEqual(usable.update?.edit.move, { disk: "scsi0", storage: "nvme-pool" })
    assert.deepStrictEqual(
      usable.update?.changes.map((c) => [c.field, c.from, c.to, c.effect]),
      [["scsi0 storage", "local-lvm", "nvme-pool", "moved"]]
    )

    const refusedWith = (storages: ObservedNode["storages"], over: Partial<VmSpec> = {}) =>
      planDrift(input({ spec: { ...moved, ...over }, node: { ...node, storages: [...node.storages, ...storages] } }))
    const absent = refusedWith([], { cores: 6 })
    assert.deepStrictEqual(
      absent.findings.map((f) => [f.code, f.effect, f.message]),
      [
        [
          "storage.missing",
          "blocked",
          "VM 1000 k3s-vm-pve: scsi0 is not moved from storage 'local-lvm' to 'nvme-pool': storage 'nvme-pool' (for the disk) is not available on node pve"
        ]
      ]
    )
    assert.include(absent.findings[0]?.hint ?? "", "or set nodes[pve].storage back to 'local-lvm' (where the disk is)")
    // the disk stays; the other settings still change
    assert.isUndefined(absent.update?.edit.move)
    assert.deepStrictEqual(
      absent.update?.changes.map((c) => c.field),
      ["cores"]
    )
    // room for the disk at the size it will have (a grow in the same update comes first)
    const full = refusedWith([{ ...nvme, availBytes: 100 * 1024 ** 3 }], { diskGiB: 128 })
    assert.deepStrictEqual(
      full.findings.map((f) => f.code),
      ["storage.full"]
    )
    assert.include(full.findings[0]?.message ?? "", "has 100.0 GiB free, the disk needs 128.0 GiB")
    assert.deepStrictEqual(
      refusedWith([{ ...nvme, content: ["rootdir"] }]).findings.map((f) => f.code),
      ["storage.content"]
    )
    assert.deepStrictEqual(
      refusedWith([{ ...nvme, active: false }]).findings.map((f) => f.code),
      ["storage.inactive"]
    )
    assert.deepStrictEqual(
      refusedWith([{ ...nvme, enabled: false }]).findings.map((f) => f.code),
      ["storage.disabled"]
    )
    assert.isUndefined(refusedWith([{ ...nvme, enabled: false }]).update)
  })

  it("a disk grow on a storage that allocates it (thick LVM, ZFS) is planned only with room for it; else the disk keeps its size (the other settings still change)", () => {
    const vg = {
      storage: "vg",
      type: "lvm",
      content: ["images", "rootdir"],
      shared: false,
      active: true,
      enabled: true,
      totalBytes: 100 * 1024 ** 3,
      availBytes: 20 * 1024 ** 3
    }
    const on = (storage: typeof vg, over: Partial<VmSpec>) =>
      planDrift(
        input({
          spec: { ...spec, storage: storage.storage, ...over },
          vm: { ...vm, storage: storage.storage },
          node: { ...node, storages: [...node.storages, storage] },
          config: config({ scsi0: `${storage.storage}:vm-1000-disk-0,size=64G` })
        })
      )
    // 64G → 128G needs 64 GiB of the volume group's 20 GiB: lvextend would fail (`Insufficient free space`)
    const full = on(vg, { diskGiB: 128, cores: 6 })
    assert.deepStrictEqual(
      full.findings.map((f) => [f.code, f.effect, f.node, f.vm, f.message]),
      [
        [
          "storage.full",
          "blocked",
          "pve",
          "k3s-vm-pve",
          "VM 1000 k3s-vm-pve: scsi0 is not grown from 64G to 128G: storage 'vg' (lvm) on node pve has 20.0 GiB free, the grow needs 64.0 GiB"
        ]
      ]
    )
    assert.include(
      full.findings[0]?.hint ?? "",
      "set diskSize (nodes[pve].vms[].diskSize or vm.diskSize) to at most 84G"
    )
    assert.deepStrictEqual(full.update?.edit.resize, [])
    assert.deepStrictEqual(
      full.update?.changes.map((c) => c.field),
      ["cores"]
    )
    // within the free space, or on LVM-thin (a thin volume's size is virtual: it grows whatever the pool holds)
    assert.deepStrictEqual(on(vg, { diskGiB: 80 }).findings, [])
    assert.deepStrictEqual(on(vg, { diskGiB: 80 }).update?.edit.resize.length, 1)
    assert.deepStrictEqual(on({ ...vg, type: "lvmthin" }, { diskGiB: 128 }).findings, [])
    assert.deepStrictEqual(
      on({ ...vg, type: "zfspool" }, { diskGiB: 128 }).findings.map((f) => f.code),
      ["storage.full"]
    )
  })

  it("a memory change of a VM with memory hotplug is planned only to a size PVE can start it with (1024 MiB and whole DIMMs); else nothing of that VM is changed", () => {
    const hot = (memoryMiB: number, over: Record<string, string> = {}) =>
      planDrift(
        input({
          spec: { ...spec, memoryMiB, cores: 6 },
          config: config({ hotplug: "network,disk,memory", numa: "1", ...over })
        })
      )
    // 4864 = 1024 + 7.5 DIMMs of 512 MiB: PVE's next start dies "memory size (4864) must be aligned to 512 for hotplugging"
    const unaligned = hot(4864)
    assert.isUndefined(unaligned.update)
    assert.deepStrictEqual(
      unaligned.findings.map((f) => [f.code, f.effect, f.node, f.vm, f.message, f.hint]),
      [
        [
          "vm.memory-hotplug",
          "blocked",
          "pve",
          "k3s-vm-pve",
          "VM 1000 k3s-vm-pve is not changed in place: memory 16384 → 4864 MiB, and the VM has memory hotplug (hotplug: network,disk,memory): PVE would refuse to start it again (memory size (4864) must be aligned to 512 for hotplugging)",
          "set the VM's memory (nodes[pve].vms[].memory, or nodes[pve].memoryRatio) to 4608 or 5120 MiB, or take memory out of the VM's hotplug (`qm set 1000 --hotplug network,disk`)"
        ]
      ]
    )
    // below the static 1024 MiB
    assert.include(hot(768).findings[0]?.message ?? "", "(minimum memory must be 1024MB)")
    assert.include(hot(768).findings[0]?.hint ?? "", "to 1024 MiB")
    // above 17408 MiB the DIMMs are of 1024 MiB
    assert.include(hot(17920).findings[0]?.hint ?? "", "to 17408 or 18432 MiB")
    // a size the DIMMs add up to is changed as usual; so is any size without memory hotplug
    assert.deepStrictEqual(hot(4608).findings, [])
    // PVE plugs the DIMMs in (or out) at once (vmconfig_hotplug_pending): the memory needs no restart, the cores do
    assert.deepStrictEqual(
      hot(4608).update?.changes.map((c) => [c.field, c.effect]),
      [
        ["cores", "restart"],
        ["memory", "now"]
      ]
    )
    const memoryOnly = planDrift(
      input({
        desired: desired("rolling"),
        spec: { ...spec, memoryMiB: 5120 },
        config: config({ hotplug: "network,disk,memory", numa: "1" })
      })
    )
    assert.deepStrictEqual(
      [memoryOnly.update?.changes.map((c) => [c.field, c.effect]), memoryOnly.restart, memoryOnly.findings],
      [[["memory", "now"]], undefined, []]
    )
    assert.deepStrictEqual(hot(4864, { hotplug: "network,disk" }).findings, [])
    // a VM whose memory homelab.yaml does not change is not held back for its memory
    assert.deepStrictEqual(
      planDrift(
        input({ config: config({ hotplug: "memory", numa: "1", memory: "4864" }), spec: { ...spec, memoryMiB: 4864 } })
      ).findings,
      []
    )
  })

  it("a cicustom change is planned only when its storage allows snippets and the volume exists", () => {
    const cicustom = { ...vm, cloudInit: { ...vm.cloudInit, cicustom: { vendor: "local:snippets/v.yaml" } } }
    const noSnippets = planDrift(input({ vm: cicustom, snippets: new Set() }))
    assert.isUndefined(noSnippets.update)
    assert.deepStrictEqual(
      noSnippets.findings.map((f) => f.code),
      ["cicustom.content"]
    )
    const withContent: ObservedNode = {
      ...node,
      storages: node.storages.map((s) => ({ ...s, content: [...s.content, "snippets"] }))
    }
    const missing = planDrift(input({ vm: cicustom, node: withContent, snippets: new Set() }))
    assert.deepStrictEqual(
      missing.findings.map((f) => f.code),
      ["cicustom.missing"]
    )
    const there = planDrift(input({ vm: cicustom, node: withContent, snippets: new Set(["local:snippets/v.yaml"]) }))
    assert.deepStrictEqual(there.update?.edit.set, {
      cicustom: "vendor=local:snippets/v.yaml",
      tags: "homelab-cloudinit;homelab-managed"
    })
  })
})

describe("planDrift: a cloud-init change waits for a start from PVE (homelab-cloudinit)", () => {
  const lan2 = { ...vm, cloudInit: { ...vm.cloudInit, searchdomain: "lan2" } }
  const marked = config({ searchdomain: "lan2", tags: "homelab-cloudinit;homelab-managed" })
  const held = [{ key: "searchdomain", drive: "lan", config: "lan2" }]

  it("the update that changes cloud-init marks the VM in the same write (ours and someone else's tags kept)", () => {
    const step = planDrift(input({ vm: lan2, config: config({ tags: "homelab-managed;prod" }) }))
    assert.deepStrictEqual(step.update?.edit.set, {
      searchdomain: "lan2",
      tags: "homelab-cloudinit;homelab-managed;prod"
    })
    assert.deepStrictEqual(
      step.update?.changes.map((c) => c.field),
      ["cloud-init searchdomain"]
    )
    // with a tag of ours missing too, both in the one write
    const both = planDrift(input({ vm: lan2, spec: { ...spec, tags: ["homelab-managed", "k3s"] } }))
    assert.strictEqual(both.update?.edit.set.tags, "homelab-cloudinit;homelab-managed;k3s")
    // a VM already marked keeps its mark, nothing more to write for it
    const again = planDrift(
      input({
        vm: { ...vm, cloudInit: { ...vm.cloudInit, searchdomain: "lan3" } },
        config: marked,
        cloudInitHeld: held
      })
    )
    assert.deepStrictEqual(again.update?.edit.set, { searchdomain: "lan3" })
  })

  it("what PVE holds for a marked VM's drive waits for a restart: pending with never (a start from PVE, not a reboot inside the guest), a restart with rolling", () => {
    const never = planDrift(input({ vm: lan2, config: marked, cloudInitHeld: held }))
    assert.isUndefined(never.update)
    assert.deepStrictEqual(
      never.findings.map((f) => [f.code, f.effect, f.message]),
      [
        [
          "vm.pending-restart",
          "pending",
          "VM 1000 k3s-vm-pve: cloud-init searchdomain lan → lan2 (the guest gets it when PVE next starts the VM): PVE holds it until the VM restarts (vm.restart: never)"
        ]
      ]
    )
    assert.include(never.findings[0]?.hint ?? "", "qm reboot 1000")
    assert.include(never.findings[0]?.hint ?? "", "not a reboot inside the guest")
    const rolling = planDrift(input({ desired: desired("rolling"), vm: lan2, config: marked, cloudInitHeld: held }))
    assert.isUndefined(rolling.update)
    assert.deepStrictEqual(
      rolling.restart?.changes.map((c) => [c.field, c.from, c.to]),
      [["cloud-init searchdomain", "lan", "lan2"]]
    )
    // keys shown as drift shows them, a password only as set, a removed setting as removed
    const shown = planDrift(
      input({
        config: marked,
        vm: lan2,
        cloudInitHeld: [
          {
            key: "sshkeys",
            drive: encodeURIComponent(`${key}\n`),
            config: encodeURIComponent(`${key}\nssh-ed25519 AAAA ci@box`)
          },
          { key: "cipassword", drive: undefined, config: "**********" },
          { key: "nameserver", drive: undefined, config: undefined }
        ]
      })
    )
    assert.include(
      shown.findings[0]?.message ?? "",
      "cloud-init ssh keys me@laptop → me@laptop, ci@box (the guest gets it when PVE next starts the VM); cloud-init password not set → set (the guest gets it when PVE next starts the VM); cloud-init nameserver set → removed"
    )
  })

  it("nothing held any more (PVE started the VM since): an update clears the mark, in the same write as other drift", () => {
    const started = planDrift(input({ vm: lan2, config: marked, cloudInitHeld: [] }))
    assert.deepStrictEqual(started.findings, [])
    assert.deepStrictEqual(started.update?.edit.set, { tags: "homelab-managed" })
    assert.deepStrictEqual(
      started.update?.changes.map((c) => [c.field, c.from, c.to, c.effect]),
      [["tags", "homelab-cloudinit;homelab-managed", "-homelab-cloudinit", "now"]]
    )
    assert.match(started.update?.reason ?? "", /^PVE started it since an earlier run changed its cloud-init settings/)
    const withDrift = planDrift(
      input({
        vm: { ...lan2, onboot: true },
        spec: { ...spec, tags: ["homelab-managed", "k3s"] },
        config: marked,
        cloudInitHeld: []
      })
    )
    assert.deepStrictEqual(withDrift.update?.edit.set, { tags: "homelab-managed;k3s", onboot: "1" })
    assert.deepStrictEqual(
      withDrift.update?.changes.map((c) => [c.field, c.to]),
      [
        ["tags", "+k3s -homelab-cloudinit"],
        ["onboot", "true"]
      ]
    )
    // not read (no mark seen when observed): left alone
    assert.isUndefined(planDrift(input({ vm: lan2, config: marked })).update)
  })

  it("a protected VM: what its drive waits for is reported with its drift, the mark left", () => {
    const guarded = planDrift(input({ protected: true, vm: lan2, config: marked, cloudInitHeld: held }))
    assert.isUndefined(guarded.update)
    assert.deepStrictEqual(
      guarded.findings.map((f) => [f.code, f.effect]),
      [["vm.protected-drift", "blocked"]]
    )
    assert.include(guarded.findings[0]?.message ?? "", "cloud-init searchdomain lan → lan2")
  })
})

describe("planDrift: the password, through homelab's mark of it", () => {
  const token = Redacted.make("0b7c5a52-6f1e-4d4e-9d8e-6a1f3c2b9e01")
  const hunter2 = Redacted.make("hunter2")
  const mark = passwordMark(token, "k3s-vm-pve", hunter2)
  const old = passwordMark(token, "k3s-vm-pve", Redacted.make("hunter1")).tag
  const withPassword = { ...vm, cloudInit: { ...vm.cloudInit, password: hunter2, passwordMark: mark } }
  const masked = (tags: string) => config({ cipassword: "**********", tags })

  it("a changed password is a cloud-init change: the new mark and the cloud-init mark in the same write, a restart with rolling", () => {
    const step = planDrift(
      input({ desired: desired("rolling"), vm: withPassword, config: masked(`homelab-managed;${old}`) })
    )
    assert.deepStrictEqual(step.update?.edit.set, {
      tags: ["homelab-cloudinit", "homelab-managed", mark.tag].sort().join(";")
    })
    assert.isTrue(step.update?.edit.password)
    assert.deepStrictEqual(
      step.restart?.changes.map((c) => [c.field, c.from, c.to]),
      [["cloud-init password", "set", "changed"]]
    )
    assert.deepStrictEqual(step.findings, [])
    assert.notInclude(JSON.stringify(step), "hunter")
  })

  it("no mark: the mark is written alone (no restart, no cloud-init mark), and a note says why", () => {
    const step = planDrift(input({ desired: desired("rolling"), vm: withPassword, config: masked("homelab-managed") }))
    assert.deepStrictEqual(step.update?.edit.set, { tags: ["homelab-managed", mark.tag].sort().join(";") })
    assert.isFalse(step.update?.edit.password)
    assert.isUndefined(step.restart)
    assert.deepStrictEqual(
      step.findings.map((f) => [f.code, f.effect, f.vm, f.vmid]),
      [["vm.password-unmarked", "info", "k3s-vm-pve", 1000]]
    )
    assert.include(step.findings[0]?.hint ?? "", "qm set 1000 --delete cipassword")
    const rekeyed = planDrift(
      input({
        vm: withPassword,
        config: masked(`homelab-managed;${passwordMark(Redacted.make("old-secret"), "k3s-vm-pve", hunter2).tag}`)
      })
    )
    assert.deepStrictEqual(
      rekeyed.findings.map((f) => [f.code, f.effect]),
      [["vm.password-rekeyed", "info"]]
    )
    assert.include(rekeyed.findings[0]?.message ?? "", "a vm.password changed in the same run as the token is not seen")
  })

  it("a protected VM is never marked: no mark alone is reported for it, a changed password is (blocked)", () => {
    assert.deepStrictEqual(planDrift(input({ protected: true, vm: withPassword, config: masked("homelab-managed") })), {
      findings: []
    })
    const changed = planDrift(input({ protected: true, vm: withPassword, config: masked(`homelab-managed;${old}`) }))
    assert.deepStrictEqual(
      changed.findings.map((f) => [f.code, f.effect]),
      [["vm.protected-drift", "blocked"]]
    )
    assert.include(changed.findings[0]?.message ?? "", "cloud-init password set → changed")
  })

  it("a desired state without a key (no passwordMark): a password already set is left as it is, with a note", () => {
    const step = planDrift(
      input({ vm: { ...vm, cloudInit: { ...vm.cloudInit, password: hunter2 } }, config: masked("homelab-managed") })
    )
    assert.isUndefined(step.update)
    assert.deepStrictEqual(
      step.findings.map((f) => [f.code, f.effect]),
      [["vm.password-unchecked", "info"]]
    )
  })
})
