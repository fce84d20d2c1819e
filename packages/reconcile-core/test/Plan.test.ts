import { assert, describe, it } from "@effect/vitest"
import type { ClusterNode } from "@homelab/k3s-join"
import type { VmPending } from "@homelab/proxmox-client"
import { HealthPolicy } from "@homelab/vm-health"
import { type Action, describeAction } from "../src/Action.js"
import type { Desired, DesiredNode } from "../src/Desired.js"
import type { Observed, ObservedNode, ObservedVm, VmDetails } from "../src/Observed.js"
import { detailsNeeded, plan } from "../src/Plan.js"
import { vmidCandidates } from "../src/VmidCandidates.js"

const GiB = 1024 ** 3

const desiredNode = (name: string): DesiredNode => ({
  name,
  cpuRatio: 0.5,
  memoryRatio: 0.5,
  image: { url: "http://images/noble.img", storage: "local", content: "import", filename: "noble.qcow2" },
  vms: [
    {
      name: `k3s-vm-${name}`,
      node: name,
      role: "agent",
      diskGiB: 32,
      storage: "local-lvm",
      bridges: ["vmbr0"],
      tags: ["homelab-managed", "k3s"],
      cpuType: "host",
      cloudInit: { user: "ubuntu", sshKeys: ["ssh-ed25519 AAAA me@host"], ipConfig: "ip=dhcp" }
    }
  ]
})

const desired = (nodes: Array<string>, overrides: Partial<Desired> = {}): Desired => ({
  nodes: nodes.map(desiredNode),
  ownershipTag: "homelab-managed",
  pendingTag: "homelab-pending",
  vmidRange: { lower: 1000, upper: 8999 },
  limits: { maxRecreatePerRun: 1 },
  protect: [],
  ...overrides
})

const observedNode = (name: string, overrides: Partial<ObservedNode> = {}): ObservedNode => ({
  name,
  online: true,
  cpus: 8,
  memoryBytes: 32 * GiB,
  storages: [
    {
      storage: "local",
      type: "dir",
      content: ["iso", "vztmpl", "backup", "import"],
      shared: false,
      active: true,
      enabled: true,
      totalBytes: 100 * GiB,
      availBytes: 80 * GiB
    },
    {
      storage: "local-lvm",
      type: "lvmthin",
      content: ["rootdir", "images"],
      shared: false,
      active: true,
      enabled: true,
      totalBytes: 400 * GiB,
      availBytes: 300 * GiB
    }
  ],
  imageVolids: new Set(["local:import/noble.qcow2"]),
  details: { bridges: [{ name: "vmbr0", active: true }], pveMajor: 8 },
  ...overrides
})

const vm = (vmid: number, node: string, overrides: Partial<ObservedVm> = {}): ObservedVm => ({
  vmid,
  node,
  type: "qemu",
  name: `k3s-vm-${node}`,
  status: "running",
  tags: ["homelab-managed", "k3s"],
  template: false,
  maxmemBytes: 16 * GiB,
  uptimeSeconds: 86_400,
  ...overrides
})

/** VM 1001's configuration as homelab made it for `desiredNode`'s VM (memory 16384, 32G on local-lvm, vmbr0), `over` on top. */
const runningConfig = (over: Record<string, string>, pending: Record<string, string> = {}): VmPending => ({
  digest: "d1",
  current: {
    memory: "16384",
    cpu: "host",
    scsi0: "local-lvm:vm-1001-disk-0,size=32G",
    net0: "virtio=BC:24:11:2E:7A:4C,bridge=vmbr0",
    tags: "homelab-managed;k3s",
    ciuser: "ubuntu",
    sshkeys: encodeURIComponent("ssh-ed25519 AAAA me@host"),
    ipconfig0: "ip=dhcp",
    ide2: "local-lvm:vm-1001-cloudinit,media=cdrom",
    ...over
  },
  pending,
  deletes: []
})

const observed = (
  nodes: Array<ObservedNode>,
  vms: Array<ObservedVm>,
  details: Array<[number, VmDetails]> = []
): Observed => ({
  nodes: new Map(nodes.map((n) => [n.name, n])),
  vms,
  vmDetails: new Map(details)
})

const policy = HealthPolicy.defaults
const tags = (p: ReturnType<typeof plan>) => p.actions.map((a) => `${a._tag}:${a.node}`)
const codes = (p: ReturnType<typeof plan>) => p.findings.map((f) => `${f.code}:${f.node}`)

describe("plan", () => {
  it("a converged lab plans nothing and needs no details", () => {
    const d = desired(["pve", "still-fawn"])
    const o = observed([observedNode("pve"), observedNode("still-fawn")], [vm(1001, "pve"), vm(1002, "still-fawn")])
    assert.deepStrictEqual(detailsNeeded(d, o), { nodes: [], vms: [] })
    const p = plan(d, o, { policy })
    assert.deepStrictEqual(p.actions, [])
    assert.deepStrictEqual(p.findings, [])
  })

  it("a VM homelab.yaml lists under another node than the one it runs on is left there, with the migration that moves it", () => {
    const d = desired(["pve", "still-fawn"])
    // homelab.yaml asks k3s-vm-still-fawn on still-fawn; it runs on pve (moved in homelab.yaml, or migrated by hand)
    const o = observed(
      [observedNode("pve"), observedNode("still-fawn")],
      [vm(1001, "pve"), vm(1002, "pve", { name: "k3s-vm-still-fawn" })]
    )
    const p = plan(d, o, { policy })
    const found = p.findings.find((f) => f.code === "vm.elsewhere")
    assert.deepStrictEqual(
      [found?.node, found?.vm, found?.message],
      [
        "still-fawn",
        "k3s-vm-still-fawn",
        "VM 1002 k3s-vm-still-fawn runs on node pve, not still-fawn; leaving it there"
      ]
    )
    assert.strictEqual(
      found?.hint,
      "migrate it to still-fawn (`qm migrate 1002 still-fawn --online --with-local-disks` on pve), or list it under nodes[pve] in homelab.yaml"
    )
  })

  it("an image.filename set by hand that is on the node: a note that image.checksum is not checked again", () => {
    const pinned = (fixedName: boolean): Desired => {
      const d = desired(["pve"])
      const checksum = { algorithm: "sha256", value: "ab".repeat(32) } as const
      return { ...d, nodes: d.nodes.map((n) => ({ ...n, image: { ...n.image, checksum, fixedName } })) }
    }
    const o = observed([observedNode("pve")], [vm(1001, "pve")])
    const p = plan(pinned(true), o, { policy })
    assert.deepStrictEqual(p.actions, [])
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.effect]),
      [["image.checksum-unchecked", "info"]]
    )
    assert.include(p.findings[0]?.hint ?? "", "give image.filename a new name")
    assert.deepStrictEqual(plan(pinned(false), o, { policy }).findings, [])
  })

  it("a fresh node gets the image, then its VM sized from capacity × ratios, with name-derived VMID candidates", () => {
    const d = desired(["pve"])
    const o = observed([observedNode("pve", { imageVolids: new Set() })], [])
    assert.deepStrictEqual(detailsNeeded(d, o).nodes, ["pve"])
    const p = plan(d, o, { policy })
    assert.deepStrictEqual(tags(p), ["DownloadImage:pve", "CreateVm:pve"])
    const create = p.actions[1]
    assert.strictEqual(create?._tag, "CreateVm")
    if (create?._tag !== "CreateVm") return
    assert.strictEqual(create.spec.cores, 4)
    assert.strictEqual(create.spec.memoryMiB, 16 * 1024)
    assert.strictEqual(create.spec.imageVolid, "local:import/noble.qcow2")
    assert.deepStrictEqual(create.spec.vmidCandidates, vmidCandidates("k3s-vm-pve", { lower: 1000, upper: 8999 }))
    assert.include(create.reason, "no VM named k3s-vm-pve")
  })

  it("a create is sized per node against sockets × cores and the balloon: the node that cannot take it is blocked, naming the numbers", () => {
    const withVm = (name: string, over: Partial<DesiredNode["vms"][number]>): DesiredNode => {
      const n = desiredNode(name)
      return { ...n, vms: n.vms.map((v) => ({ ...v, ...over })) }
    }
    // cpuRatio 0.5 of 8 CPUs = 4 vCPUs: 2 sockets × 2 cores, fits
    const fits = plan({ ...desired([]), nodes: [withVm("pve", { sockets: 2 })] }, observed([observedNode("pve")], []), {
      policy
    })
    assert.deepStrictEqual(tags(fits), ["CreateVm:pve"])
    // 6 pinned cores × 2 sockets = 12 on an 8-CPU node
    const wide = plan(
      { ...desired([]), nodes: [withVm("pve", { sockets: 2, cores: 6 }), withVm("still-fawn", { sockets: 2 })] },
      observed([observedNode("pve"), observedNode("still-fawn")], []),
      { policy }
    )
    assert.deepStrictEqual(tags(wide), ["CreateVm:still-fawn"])
    assert.deepStrictEqual(codes(wide), ["cpu.insufficient:pve"])
    assert.strictEqual(
      wide.findings[0]?.message,
      'the VM asks for 2 sockets × 6 cores = 12 vCPUs, node pve has 8 logical CPUs (PVE would refuse to start it: "MAX 8 vcpus allowed per VM on this node")'
    )
    // memory derived per node: half of 32 GiB = 16384 MiB on pve, half of 8 GiB = 4096 MiB on still-fawn
    const balloon = plan(
      { ...desired([]), nodes: [withVm("pve", { balloonMiB: 8192 }), withVm("still-fawn", { balloonMiB: 8192 })] },
      observed([observedNode("pve"), observedNode("still-fawn", { memoryBytes: 8 * GiB })], []),
      { policy }
    )
    assert.deepStrictEqual(tags(balloon), ["CreateVm:pve"])
    assert.deepStrictEqual(codes(balloon), ["balloon.too-large:still-fawn"])
    assert.strictEqual(
      balloon.findings[0]?.message,
      'the VM\'s balloon minimum (8192 MiB) is above its memory on node still-fawn (4096 MiB); PVE refuses that in a config update ("balloon value too large (must be smaller than assigned memory)")'
    )
  })

  it("derived cores honour vm.sockets: sockets × cores ≈ the node's CPUs × cpuRatio, at least 1 core", () => {
    const sized = (over: Partial<DesiredNode["vms"][number]>, cpuRatio: number, cpus = 8) => {
      const n = desiredNode("pve")
      const p = plan(
        { ...desired([]), nodes: [{ ...n, cpuRatio, vms: n.vms.map((v) => ({ ...v, ...over })) }] },
        observed([observedNode("pve", { cpus })], []),
        { policy }
      )
      const create = p.actions.find((a) => a._tag === "CreateVm")
      return { p, cores: create?._tag === "CreateVm" ? create.spec.cores : undefined }
    }
    // the whole node over 2 sockets: 2 × 4 = 8 vCPUs, not 2 × 8 = 16 (which PVE could not start)
    const whole = sized({ sockets: 2 }, 1)
    assert.deepStrictEqual(codes(whole.p), [])
    assert.strictEqual(whole.cores, 4)
    const create = whole.p.actions.find((a) => a._tag === "CreateVm")
    assert.strictEqual(
      create === undefined ? undefined : describeAction(create),
      "create VM k3s-vm-pve on pve (2 sockets × 4 cores, 16384 MiB, 32 GiB)"
    )
    assert.strictEqual(sized({ sockets: 2 }, 0.5).cores, 2)
    // rounded down per socket: 8 × 0.5 = 4 vCPUs over 3 sockets = 1 core each
    assert.strictEqual(sized({ sockets: 3 }, 0.5).cores, 1)
    // at least 1 core: 4 sockets on a 2-CPU node is still too wide, and said so
    const narrow = sized({ sockets: 4 }, 0.5, 2)
    assert.isUndefined(narrow.cores)
    assert.deepStrictEqual(codes(narrow.p), ["cpu.insufficient:pve"])
    // no vm.sockets (PVE's 1 socket): as before; pinned cores are taken as they are
    assert.strictEqual(sized({}, 0.5).cores, 4)
    assert.strictEqual(sized({ sockets: 2, cores: 3 }, 0.5).cores, 3)
  })

  it("an existing VM sized before cores honoured vm.sockets is changed in place, and the plan says why", () => {
    const n = desiredNode("pve")
    const d: Desired = { ...desired([]), nodes: [{ ...n, vms: n.vms.map((v) => ({ ...v, sockets: 2 })) }] }
    const config = runningConfig({ cores: "4", sockets: "2" })
    const o: Observed = { ...observed([observedNode("pve")], [vm(1001, "pve")]), configs: new Map([[1001, config]]) }
    const p = plan(d, o, { policy })
    assert.deepStrictEqual(tags(p), ["UpdateVm:pve"])
    assert.deepStrictEqual(p.findings, [])
    const update = p.actions[0]
    assert.strictEqual(update?._tag, "UpdateVm")
    if (update?._tag !== "UpdateVm") return
    assert.deepStrictEqual(update.edit.set, { cores: "2" })
    assert.strictEqual(
      update.reason,
      "1 setting(s) differ from homelab.yaml: cores 4 → 2 (takes effect after a restart); cores derived from homelab.yaml (no vm cores set): node pve's 8 logical CPUs × cpuRatio 0.5 = 4 vCPUs over vm.sockets 2 = 2 cores per socket"
    )
  })

  it("a VM with 2 sockets of its own, homelab.yaml setting none: its cores are derived over its 2 sockets, not 1 (the share cpuRatio gives, not twice it)", () => {
    const config = (cores: string, sockets?: string, pendingSockets?: string): VmPending =>
      runningConfig(
        { cores, ...(sockets === undefined ? {} : { sockets }) },
        pendingSockets === undefined ? {} : { sockets: pendingSockets }
      )
    const planned = (c: VmPending) =>
      plan(
        desired(["pve"]),
        { ...observed([observedNode("pve")], [vm(1001, "pve")]), configs: new Map([[1001, c]]) },
        {
          policy
        }
      )
    // 8 logical CPUs × cpuRatio 0.5 = 4 vCPUs: 2 sockets × 4 cores would be 8
    const wide = planned(config("4", "2"))
    assert.deepStrictEqual(tags(wide), ["UpdateVm:pve"])
    const update = wide.actions[0]
    assert.strictEqual(update?._tag, "UpdateVm")
    if (update?._tag !== "UpdateVm") return
    assert.deepStrictEqual(update.edit.set, { cores: "2" })
    assert.strictEqual(
      update.reason,
      "1 setting(s) differ from homelab.yaml: cores 4 → 2 (takes effect after a restart); cores derived from homelab.yaml (no vm cores set): node pve's 8 logical CPUs × cpuRatio 0.5 = 4 vCPUs over the VM's own 2 sockets (vm.sockets not set) = 2 cores per socket"
    )
    // already 2 × 2: nothing to change; 1 socket (set or not): 4 cores, as before
    assert.deepStrictEqual(tags(planned(config("2", "2"))), [])
    assert.deepStrictEqual(tags(planned(config("4", "1"))), [])
    assert.deepStrictEqual(tags(planned(config("4"))), [])
    // sockets PVE holds until a restart count: the VM will run with them
    assert.deepStrictEqual(
      planned(config("4", "1", "2")).actions.flatMap((a) => (a._tag === "UpdateVm" ? [a.edit.set] : [])),
      [{ cores: "2" }]
    )
  })

  it("a VM of ours renamed by hand, no k3s: the VMID homelab derives from the missing VM's name, not from its own, says so; no second VM", () => {
    const range = { lower: 1000, upper: 8999 }
    const derived = vmidCandidates("k3s-vm-pve", range)[0] as number
    const renamed = plan(desired(["pve"]), observed([observedNode("pve")], [vm(derived, "pve", { name: "my-db" })]), {
      policy
    })
    assert.deepStrictEqual(tags(renamed), [])
    const finding = renamed.findings.find((f) => f.code === "vm.renamed")
    assert.deepStrictEqual(
      [finding?.effect, finding?.node, finding?.vm, finding?.vmid],
      ["blocked", "pve", "k3s-vm-pve", derived]
    )
    assert.strictEqual(
      finding?.message,
      `VM ${derived} my-db on pve has the VMID homelab derives from k3s-vm-pve's name (not one it derives from my-db): k3s-vm-pve renamed by hand? Not creating a second VM beside it`
    )
    assert.strictEqual(
      finding?.hint,
      `rename it back (\`qm set ${derived} --name k3s-vm-pve\` on pve) and run apply again; or, to replace it, \`homelab apply --prune\` removes VM ${derived} my-db and the next run creates k3s-vm-pve`
    )
    // an orphan whose VMID is its own name's (homelab.yaml renamed it, or it was made for a VM no longer listed): the VM is created
    const own = vmidCandidates("old-name", range)[0] as number
    const orphan = plan(desired(["pve"]), observed([observedNode("pve")], [vm(own, "pve", { name: "old-name" })]), {
      policy
    })
    assert.include(tags(orphan), "CreateVm:pve")
    assert.isUndefined(orphan.findings.find((f) => f.code === "vm.renamed"))
    // not ours (no ownership tag), or on another node: not taken for it
    for (const other of [
      vm(derived, "pve", { name: "my-db", tags: [] }),
      vm(derived, "still-fawn", { name: "my-db" })
    ]) {
      const p = plan(desired(["pve"]), observed([observedNode("pve"), observedNode("still-fawn")], [other]), { policy })
      assert.include(tags(p), "CreateVm:pve")
    }
  })

  it("memory grown in place counts the node's other guests as a create does: refused beyond what the node can reserve", () => {
    const n = desiredNode("pve")
    const d = (memoryOvercommit?: number): Desired => ({
      ...desired([]),
      ...(memoryOvercommit === undefined ? {} : { memoryOvercommit }),
      nodes: [{ ...n, memoryRatio: 1 }]
    })
    const config: VmPending = {
      digest: "d1",
      current: {
        cores: "4",
        memory: "16384",
        cpu: "host",
        scsi0: "local-lvm:vm-1001-disk-0,size=32G",
        net0: "virtio=BC:24:11:2E:7A:4C,bridge=vmbr0",
        tags: "homelab-managed;k3s",
        ciuser: "ubuntu",
        sshkeys: encodeURIComponent("ssh-ed25519 AAAA me@host"),
        ipconfig0: "ip=dhcp",
        ide2: "local-lvm:vm-1001-cloudinit,media=cdrom"
      },
      pending: {},
      deletes: []
    }
    // a 32 GiB node with a NAS of 8 GiB beside our 16 GiB VM; memoryRatio 1 asks 32 GiB of it
    const nas = vm(300, "pve", { name: "nas", tags: [], maxmemBytes: 8 * GiB })
    const o: Observed = {
      ...observed([observedNode("pve")], [vm(1001, "pve"), nas]),
      configs: new Map([[1001, config]])
    }
    const refused = plan(d(), o, { policy })
    assert.deepStrictEqual(tags(refused), [])
    assert.deepStrictEqual(codes(refused), ["memory.insufficient:pve"])
    assert.strictEqual(refused.findings[0]?.effect, "blocked")
    assert.include(refused.findings[0]?.message ?? "", "can reserve 24576 MiB for it")
    // allowed overcommit: changed in place
    assert.deepStrictEqual(tags(plan(d(2), o, { policy })), ["UpdateVm:pve"])
  })

  it("a create with no free VMID left in vm.vmidRange is blocked at plan time, not failed halfway through apply", () => {
    // a range of three: one VMID held by a guest that is not ours, and three VMs to create
    const d = desired(["pve", "still-fawn", "chief-horse"], { vmidRange: { lower: 100, upper: 102 } })
    const nodes = [observedNode("pve"), observedNode("still-fawn"), observedNode("chief-horse")]
    const nas = vm(101, "pve", { name: "nas", tags: [] })
    const p = plan(d, observed(nodes, [nas]), { policy })
    assert.deepStrictEqual(tags(p), ["CreateVm:pve", "CreateVm:still-fawn"])
    const creates = p.actions.filter((a) => a._tag === "CreateVm")
    assert.isFalse(creates.some((a) => a._tag === "CreateVm" && a.spec.vmidCandidates[0] === 101))
    assert.deepStrictEqual(codes(p), ["vm.no-vmid:chief-horse"])
    const f = p.findings[0]
    assert.strictEqual(f?.effect, "blocked")
    assert.strictEqual(
      f?.message,
      "no free VMID for k3s-vm-chief-horse: every VMID of vm.vmidRange 100..102 is used by another guest or by another VM this plan creates"
    )
    assert.strictEqual(f?.hint, "widen vm.vmidRange (now 100..102), or free some of its VMIDs")
    // room for all three: no finding
    const wide = plan(
      desired(["pve", "still-fawn", "chief-horse"], { vmidRange: { lower: 100, upper: 103 } }),
      observed(nodes, [nas]),
      { policy }
    )
    assert.deepStrictEqual(codes(wide), [])
    assert.strictEqual(wide.actions.length, 3)
  })

  it("a range crowded by other guests: a create walks past the VMIDs they hold (its free candidates first), not only its first 16", () => {
    const d = desired(["pve"])
    const sequence = vmidCandidates("k3s-vm-pve", d.vmidRange, 40)
    // the 16 candidates apply used to try, and 4 more, are held by guests that are not ours (on another node:
    // VMIDs are the cluster's)
    const others = sequence.slice(0, 20).map((vmid, i) => vm(vmid, "nas-node", { name: `guest-${i}`, tags: [] }))
    const p = plan(d, observed([observedNode("pve")], others), { policy })
    const create = p.actions.find((a) => a._tag === "CreateVm")
    assert.deepStrictEqual(codes(p), [])
    assert.deepStrictEqual(create?._tag === "CreateVm" ? create.spec.vmidCandidates : [], sequence.slice(20, 36))
  })

  it("a missing bridge blocks only that node's create, with a fix hint; other nodes still converge", () => {
    const d = desired(["pve", "still-fawn"])
    const o = observed([observedNode("pve", { details: { bridges: [], pveMajor: 8 } }), observedNode("still-fawn")], [])
    const p = plan(d, o, { policy })
    assert.deepStrictEqual(tags(p), ["CreateVm:still-fawn"])
    const finding = p.findings.find((f) => f.code === "bridge.missing")
    assert.strictEqual(finding?.node, "pve")
    assert.strictEqual(finding?.effect, "blocked")
    assert.include(finding?.hint ?? "", "vmbr0")
  })

  it("a same-named VM without the ownership tag is reported as a conflict and never touched", () => {
    const d = desired(["pve"])
    const o = observed([observedNode("pve")], [vm(105, "pve", { tags: ["prod"], status: "stopped" })])
    const p = plan(d, o, { policy })
    assert.deepStrictEqual(p.actions, [])
    assert.deepStrictEqual(codes(p), ["vm.unowned:pve"])
    assert.include(p.findings[0]?.message ?? "", "105")
  })

  it("a recreate runs the create's preflight first: blocked by a missing bridge (nothing destroyed); the old VM's memory and disk are not counted against the node", () => {
    const d = desired(["pve"])
    const paused: [number, VmDetails] = [
      1001,
      {
        protection: false,
        agentConfigured: true,
        status: "running",
        qmpstatus: "paused",
        uptimeSeconds: 5000,
        diskGiB: 32,
        diskStorage: "local-lvm"
      }
    ]
    // the old VM holds 30 of 32 GiB of memory, and its disk all but 1 GiB of local-lvm: the new one fits once it is gone
    const tight = (over: Partial<ObservedNode> = {}) =>
      observedNode("pve", {
        storages: (observedNode("pve").storages ?? []).map((s) =>
          s.storage === "local-lvm" ? { ...s, availBytes: 1 * GiB } : s
        ),
        ...over
      })
    const old = vm(1001, "pve", { status: "paused", maxmemBytes: 30 * GiB })
    const fits = plan(d, observed([tight()], [old], [paused]), { policy })
    assert.deepStrictEqual(tags(fits), ["RecreateVm:pve"])
    assert.deepStrictEqual(fits.findings, [])
    // another guest's memory still counts
    const crowded = plan(
      d,
      observed([tight()], [old, vm(300, "pve", { name: "other", tags: [], maxmemBytes: 20 * GiB })], [paused]),
      { policy }
    )
    assert.deepStrictEqual(crowded.actions, [])
    assert.deepStrictEqual(codes(crowded), ["memory.insufficient:pve"])
    assert.include(crowded.findings[0]?.hint ?? "", "vm.memoryOvercommit above 1")
    // vm.memoryOvercommit 1.5: the node may promise 48 GiB, the other guest's 20 leave room for the new VM's 16
    const overcommitted = plan(
      { ...d, memoryOvercommit: 1.5 },
      observed([tight()], [old, vm(300, "pve", { name: "other", tags: [], maxmemBytes: 20 * GiB })], [paused]),
      { policy }
    )
    assert.deepStrictEqual(tags(overcommitted), ["RecreateVm:pve"])

    const noBridge = plan(d, observed([tight({ details: { bridges: [], pveMajor: 8 } })], [old], [paused]), { policy })
    assert.deepStrictEqual(noBridge.actions, [])
    assert.deepStrictEqual(
      noBridge.findings.map((f) => [f.code, f.effect, f.vm, f.vmid]),
      [["bridge.missing", "blocked", "k3s-vm-pve", 1001]]
    )
  })

  it("a create with no room that the orphans of ours on the node would give it (a VM renamed on a full node): with --prune it waits for the next run, said as such; without, the fix names the orphans", () => {
    const d = desired(["pve"])
    // the VM under its old name holds 24 of 32 GiB: the renamed one (16 GiB) fits once it is gone
    const old = vm(1001, "pve", { name: "old-name", maxmemBytes: 24 * GiB })
    const o = observed([observedNode("pve")], [old])

    const pruned = plan(d, o, { policy, prune: true })
    assert.deepStrictEqual(tags(pruned), ["DestroyVm:pve"])
    assert.deepStrictEqual(
      pruned.findings.map((f) => [f.code, f.effect, f.vm]),
      [["vm.create-after-prune", "deferred", "k3s-vm-pve"]]
    )
    assert.match(
      pruned.findings[0]?.message ?? "",
      /^k3s-vm-pve is not created this run: node pve can reserve 8192 MiB .*; the orphan old-name \(VM 1001, 24576 MiB\) that this run prunes makes room: the next run creates it$/
    )
    assert.strictEqual(pruned.findings[0]?.hint, "run apply again once this run has pruned old-name")

    const kept = plan(d, o, { policy })
    assert.deepStrictEqual(tags(kept), [])
    assert.deepStrictEqual(codes(kept), ["memory.insufficient:pve", "vm.orphan:pve"])
    assert.strictEqual(kept.findings[0]?.effect, "blocked")
    assert.include(
      kept.findings[0]?.hint ?? "",
      "or make room with `homelab apply --prune`: it removes old-name (VM 1001, 24576 MiB), of ours on pve but no longer in homelab.yaml"
    )

    // a guest that is not ours, or an orphan too small to make room, leaves the preflight's word as it is
    const foreign = vm(1001, "pve", { name: "old-name", tags: [], maxmemBytes: 24 * GiB })
    const crowded = plan(d, observed([observedNode("pve")], [foreign]), { policy, prune: true })
    assert.deepStrictEqual(codes(crowded), ["memory.insufficient:pve"])
    assert.notInclude(crowded.findings[0]?.hint ?? "", "--prune")
    const small = vm(1002, "pve", { name: "small", maxmemBytes: 1 * GiB })
    const tight = plan(d, observed([observedNode("pve")], [foreign, small]), { policy, prune: true })
    assert.deepStrictEqual(tags(tight), ["DestroyVm:pve"])
    assert.deepStrictEqual(codes(tight), ["memory.insufficient:pve"])
    assert.strictEqual(tight.findings[0]?.effect, "blocked")
  })

  it("a token without the privileges to download the image: no download is planned (PVE would refuse it, and every create after it); the findings name the token and grant the privileges to its user", () => {
    const d = desired(["pve"], { apiTokenId: "ops@pve!ci" })
    const vmPrivileges = ["VM.Allocate", "VM.Config.Disk", "VM.Config.CDROM", "VM.Config.CPU", "VM.Config.Memory"]
    const others = ["VM.Config.Network", "VM.Config.Cloudinit", "VM.Config.Options", "VM.PowerMgmt", "VM.Audit"]
    const vmOnly = Object.fromEntries(
      [
        ...vmPrivileges,
        ...others,
        "VM.GuestAgent.Audit",
        "VM.Monitor",
        "Datastore.AllocateSpace",
        "Sys.Audit",
        "SDN.Use"
      ].map((p) => [p, 1])
    )
    const missing = observedNode("pve", {
      imageVolids: new Set(),
      details: { bridges: [{ name: "vmbr0", active: true }], pveMajor: 8, permissions: { "/": vmOnly } }
    })
    const refused = plan(d, observed([missing], []), { policy })
    assert.deepStrictEqual(tags(refused), [])
    assert.deepStrictEqual(
      refused.findings.map((f) => [f.code, f.effect, f.layer, f.message]),
      [
        [
          "privilege.missing",
          "blocked",
          "image",
          "ops@pve!ci lacks Datastore.AllocateTemplate on /storage/local (needed to download the cloud image on node pve)"
        ],
        [
          "privilege.missing",
          "blocked",
          "image",
          "ops@pve!ci lacks Sys.AccessNetwork on /nodes/pve or Sys.Audit + Sys.Modify on / (needed to let the node download the cloud image (download-url) on node pve)"
        ]
      ]
    )
    assert.include(
      refused.findings[0]?.hint ?? "",
      "`pveum acl modify /storage/local --users 'ops@pve' --roles <role>`"
    )
    assert.include(
      refused.findings[0]?.hint ?? "",
      "`pveum acl modify /storage/local --tokens 'ops@pve!ci' --roles <role>`"
    )

    // with them, the download is planned and the create waits for it
    const granted = observedNode("pve", {
      imageVolids: new Set(),
      details: {
        bridges: [{ name: "vmbr0", active: true }],
        pveMajor: 8,
        permissions: { "/": { ...vmOnly, "Datastore.AllocateTemplate": 1, "Sys.AccessNetwork": 1 } }
      }
    })
    const planned = plan(d, observed([granted], []), { policy })
    assert.deepStrictEqual(tags(planned), ["DownloadImage:pve", "CreateVm:pve"])
    assert.deepStrictEqual(planned.findings, [])
  })

  it("image.transfer: upload asks the token for what PVE's upload needs (Datastore.AllocateTemplate on the image storage), not Sys.AccessNetwork", () => {
    const base = desired(["pve"], { apiTokenId: "ops@pve!ci" })
    const d: Desired = {
      ...base,
      nodes: base.nodes.map((n) => ({ ...n, image: { ...n.image, transfer: "upload" as const } }))
    }
    const granted = [
      "VM.Allocate",
      "VM.Config.Disk",
      "VM.Config.CDROM",
      "VM.Config.CPU",
      "VM.Config.Memory",
      "VM.Config.Network",
      "VM.Config.Cloudinit",
      "VM.Config.Options",
      "VM.PowerMgmt",
      "VM.Audit",
      "VM.GuestAgent.Audit",
      "VM.Monitor",
      "Datastore.AllocateSpace",
      "Sys.Audit",
      "SDN.Use"
    ]
    const node = (privileges: ReadonlyArray<string>) =>
      observedNode("pve", {
        imageVolids: new Set(),
        details: {
          bridges: [{ name: "vmbr0", active: true }],
          pveMajor: 8,
          permissions: { "/": Object.fromEntries(privileges.map((p) => [p, 1])) }
        }
      })
    // no Sys.AccessNetwork (nor Sys.Modify on /): the upload and the create are planned
    const upload = plan(d, observed([node([...granted, "Datastore.AllocateTemplate"])], []), { policy })
    assert.deepStrictEqual(tags(upload), ["DownloadImage:pve", "CreateVm:pve"])
    assert.deepStrictEqual(upload.findings, [])
    // no Datastore.AllocateTemplate: PVE would refuse the upload
    const refused = plan(d, observed([node(granted)], []), { policy })
    assert.deepStrictEqual(tags(refused), [])
    assert.deepStrictEqual(
      refused.findings.map((f) => [f.code, f.effect, f.layer, f.message]),
      [
        [
          "privilege.missing",
          "blocked",
          "image",
          "ops@pve!ci lacks Datastore.AllocateTemplate on /storage/local (needed to upload the cloud image on node pve)"
        ]
      ]
    )
  })

  it("status (every VM's details) reads the node's details for each VM of ours on it, whose rebuild needs the preflight; destroy does not", () => {
    const d = desired(["pve"])
    const o = observed([observedNode("pve")], [vm(1001, "pve")])
    assert.deepStrictEqual(detailsNeeded(d, o, { allDetails: true }), {
      nodes: ["pve"],
      vms: [{ node: "pve", vmid: 1001 }]
    })
    assert.deepStrictEqual(detailsNeeded(d, o, { allDetails: true, owned: true }).nodes, [])
  })

  it("health.agentMissing: recreate rebuilds a running VM of ours whose agent does not answer past the grace period (observe read its details: no more are needed); the default keeps it", () => {
    const d = desired(["pve"])
    const running = vm(1001, "pve")
    assert.deepStrictEqual(detailsNeeded(d, observed([observedNode("pve")], [running])), { nodes: [], vms: [] })
    const silent = (uptimeSeconds: number): VmDetails => ({
      protection: false,
      agentConfigured: true,
      agentAnswering: false,
      status: "running",
      qmpstatus: "running",
      uptimeSeconds
    })
    const node = observedNode("pve", { details: { bridges: [{ name: "vmbr0", active: true }], pveMajor: 9 } })
    const recreate = new HealthPolicy({ ...HealthPolicy.defaults, agentNotResponding: "recreate" })
    const long = observed([node], [running], [[1001, silent(86_400)]])
    assert.deepStrictEqual(tags(plan(d, long, { policy })), [])
    assert.deepStrictEqual(codes(plan(d, long, { policy })), [])
    const rebuilt = plan(d, long, { policy: recreate })
    assert.deepStrictEqual(tags(rebuilt), ["RecreateVm:pve"])
    assert.include(rebuilt.actions[0]?.reason ?? "", "guest agent does not answer")
    // within the grace period the agent may still be starting: not converged, nothing rebuilt yet
    const young = plan(d, observed([node], [vm(1001, "pve", { uptimeSeconds: 5 })], [[1001, silent(5)]]), {
      policy: recreate
    })
    assert.deepStrictEqual(tags(young), [])
    assert.deepStrictEqual(codes(young), ["vm.starting:pve"])
  })

  it("a paused VM we own is recreated (default policy), with evidence", () => {
    const d = desired(["pve"])
    const o = observed(
      [observedNode("pve")],
      [vm(1001, "pve", { status: "paused" })],
      [
        [
          1001,
          { protection: false, agentConfigured: true, status: "running", qmpstatus: "paused", uptimeSeconds: 5000 }
        ]
      ]
    )
    assert.deepStrictEqual(detailsNeeded(d, o).vms, [{ node: "pve", vmid: 1001 }])
    const p = plan(d, o, { policy })
    assert.deepStrictEqual(tags(p), ["RecreateVm:pve"])
    const action = p.actions[0]
    if (action?._tag !== "RecreateVm") return assert.fail("expected RecreateVm")
    assert.strictEqual(action.vmid, 1001)
    assert.isTrue(action.evidence.some((e) => e.includes("paused")))
  })

  it("a protected VM is never recreated: reported instead", () => {
    const d = desired(["pve"])
    const o = observed(
      [observedNode("pve")],
      [vm(1001, "pve", { status: "stopped" })],
      [[1001, { protection: true, agentConfigured: true, status: "stopped", uptimeSeconds: 0 }]]
    )
    const p = plan(d, o, { policy })
    assert.deepStrictEqual(p.actions, [])
    assert.deepStrictEqual(codes(p), ["vm.protected:pve"])
  })

  it("safety.protect protects by name even without the PVE flag", () => {
    const d = desired(["pve"], { protect: ["k3s-vm-pve"] })
    const o = observed(
      [observedNode("pve")],
      [vm(1001, "pve", { status: "stopped" })],
      [[1001, { protection: false, agentConfigured: true, status: "stopped", uptimeSeconds: 0 }]]
    )
    assert.deepStrictEqual(plan(d, o, { policy }).actions, [])
  })

  it("recreates are capped per run; the rest are deferred with a hint", () => {
    const d = desired(["pve", "still-fawn"])
    const stopped: VmDetails = { protection: false, agentConfigured: true, status: "stopped", uptimeSeconds: 0 }
    const o = observed(
      [observedNode("pve"), observedNode("still-fawn")],
      [vm(1001, "pve", { status: "stopped" }), vm(1002, "still-fawn", { status: "stopped" })],
      [
        [1001, stopped],
        [1002, stopped]
      ]
    )
    const p = plan(d, o, { policy })
    assert.deepStrictEqual(tags(p), ["RecreateVm:pve"])
    assert.deepStrictEqual(codes(p), ["vm.recreate-deferred:still-fawn"])
  })

  it("a policy of stopped → start starts instead of recreating", () => {
    const d = desired(["pve"])
    const o = observed(
      [observedNode("pve")],
      [vm(1001, "pve", { status: "stopped" })],
      [[1001, { protection: false, agentConfigured: true, status: "stopped", uptimeSeconds: 0 }]]
    )
    const d0 = HealthPolicy.defaults
    const startStopped = new HealthPolicy({
      graceSeconds: d0.graceSeconds,
      stopped: "start",
      paused: d0.paused,
      prelaunch: d0.prelaunch,
      suspended: d0.suspended,
      hibernated: d0.hibernated,
      crashed: d0.crashed,
      agentNotResponding: d0.agentNotResponding
    })
    const p = plan(d, o, { policy: startStopped })
    assert.deepStrictEqual(tags(p), ["StartVm:pve"])
  })

  it("a VM left half-provisioned by an interrupted run is finished, not duplicated", () => {
    const d = desired(["pve"])
    const o = observed(
      [observedNode("pve")],
      [vm(1001, "pve", { status: "stopped", tags: ["homelab-managed", "homelab-pending", "k3s"] })]
    )
    const p = plan(d, o, { policy })
    assert.deepStrictEqual(tags(p), ["FinishVm:pve"])
  })

  it("a create of ours in flight under the VM's first candidate VMID is waited for, not duplicated", () => {
    const d = desired(["pve"], { taskUsers: ["root@pam!homelab", "root@pam"] })
    const first = vmidCandidates("k3s-vm-pve", d.vmidRange)[0] as number
    const stub = vm(first, "pve", { name: undefined, status: "unknown", lock: "create", tags: [] })
    const task = (user: string, ours: boolean) =>
      new Map([
        [
          first,
          { vmid: first, node: "pve", upid: `UPID:pve:1:2:3:qmcreate:${first}:${user}:`, startedAt: 1000, user, ours }
        ]
      ])
    const ours = plan(
      d,
      { ...observed([observedNode("pve")], [stub]), createTasks: task("root@pam!homelab", true), at: 1030 },
      { policy }
    )
    assert.deepStrictEqual(tags(ours), ["AwaitCreate:pve"])
    assert.include(ours.actions[0]?.reason ?? "", "running for 30 s")
    // hung past the task limit (600 s): stopped and created again
    const hung = plan(
      d,
      { ...observed([observedNode("pve")], [stub]), createTasks: task("root@pam!homelab", true), at: 1700 },
      { policy }
    )
    assert.include(hung.actions[0]?.reason ?? "", "it hung; stopping it")
    // someone else's create holds the VMID: the next candidate
    const foreign = plan(
      d,
      { ...observed([observedNode("pve")], [stub]), createTasks: task("alice@pve", false) },
      { policy }
    )
    assert.deepStrictEqual(tags(foreign), ["CreateVm:pve"])
    const create = foreign.actions[0]
    assert.notInclude(create?._tag === "CreateVm" ? create.spec.vmidCandidates : [first], first)
    // a create lock with no task behind it: the user must look
    const stale = plan(d, observed([observedNode("pve")], [stub]), { policy })
    assert.deepStrictEqual(tags(stale), [])
    assert.deepStrictEqual(codes(stale), ["vm.create-stale:pve"])
    assert.strictEqual(stale.findings[0]?.effect, "blocked")
  })

  it("a create of ours in flight is waited for only when the node can take the VM as homelab.yaml asks (the preflight first)", () => {
    const n = desiredNode("pve")
    const d: Desired = {
      ...desired([], { taskUsers: ["root@pam!homelab"] }),
      nodes: [{ ...n, vms: n.vms.map((v) => ({ ...v, bridges: ["vmbr0", "vmbr9"] })) }]
    }
    const first = vmidCandidates("k3s-vm-pve", d.vmidRange)[0] as number
    const stub = vm(first, "pve", { name: undefined, status: "unknown", lock: "create", tags: [] })
    const createTasks = new Map([
      [
        first,
        {
          vmid: first,
          node: "pve",
          upid: `UPID:pve:1:2:3:qmcreate:${first}:root@pam!homelab:`,
          startedAt: 1000,
          user: "root@pam!homelab",
          ours: true
        }
      ]
    ])
    // that run's create finishes; this run would then bring the VM in line and start it: not on a bridge pve lacks
    for (const at of [1030, 1700]) {
      const p = plan(d, { ...observed([observedNode("pve")], [stub]), createTasks, at }, { policy })
      assert.deepStrictEqual(tags(p), [])
      assert.deepStrictEqual(codes(p), ["bridge.missing:pve"])
      assert.strictEqual(p.findings[0]?.effect, "blocked")
    }
  })

  it("two VMs with the name are reported and neither is touched", () => {
    const d = desired(["pve"])
    const o = observed([observedNode("pve")], [vm(1001, "pve", { status: "stopped" }), vm(1002, "pve")])
    const p = plan(d, o, { policy })
    assert.deepStrictEqual(p.actions, [])
    assert.deepStrictEqual(codes(p), ["vm.duplicate:pve"])
  })

  it("a node missing from the cluster is an error finding; the others proceed", () => {
    const d = desired(["pve", "ghost"])
    const o = observed([observedNode("pve")], [vm(1001, "pve")])
    const p = plan(d, o, { policy })
    assert.deepStrictEqual(p.actions, [])
    assert.deepStrictEqual(codes(p), ["node.missing:ghost"])
  })

  it("a node missing from the cluster under a name close to a node's of the cluster suggests that name", () => {
    const d = desired(["pve1", "pve-03"])
    const o = {
      ...observed([observedNode("pve1"), observedNode("pve3")], [vm(1001, "pve1")]),
      pveNodes: ["pve1", "pve3"]
    }
    const [finding] = plan(d, o, { policy }).findings
    assert.strictEqual(finding?.code, "node.missing")
    assert.match(finding?.hint ?? "", /^did you mean 'pve3'\? /u)
    // a name close to none of them (or to a node homelab.yaml names already) suggests nothing
    const ghost = plan(desired(["pve1", "ghost"]), o, { policy }).findings[0]
    assert.notInclude(ghost?.hint ?? "", "did you mean")
    const taken = plan(desired(["pve1", "pve3", "pve-03"]), o, { policy }).findings[0]
    assert.notInclude(taken?.hint ?? "", "did you mean")
  })

  it("a shared image storage is downloaded once for the whole cluster", () => {
    const d = desired(["pve", "still-fawn"])
    const shared = (name: string) => {
      const base = observedNode(name, { imageVolids: new Set() })
      return {
        ...base,
        storages: base.storages.map((s) => (s.storage === "local" ? { ...s, shared: true } : s))
      }
    }
    const o = observed([shared("pve"), shared("still-fawn")], [vm(1001, "pve"), vm(1002, "still-fawn")])
    assert.deepStrictEqual(tags(plan(d, o, { policy })), ["DownloadImage:pve"])
  })

  it("--prune deletes an image of an earlier image.checksum on every node that holds it (once on a shared storage)", () => {
    const checksum = { algorithm: "sha256", value: "3f2ec5b6ef4a".padEnd(64, "0") } as const
    const filename = "noble-3f2ec5b6ef4a.qcow2"
    const base = desired(["pve", "still-fawn"])
    const d = { ...base, nodes: base.nodes.map((n) => ({ ...n, image: { ...n.image, checksum, filename } })) }
    const older = "local:import/noble-0123456789ab.qcow2"
    const holding = (name: string, shared: boolean) => {
      const n = observedNode(name, { imageVolids: new Set([`local:import/${filename}`, older]) })
      return { ...n, storages: n.storages.map((s) => (s.storage === "local" ? { ...s, shared } : s)) }
    }
    const deletes = (shared: boolean) =>
      plan(
        d,
        observed([holding("pve", shared), holding("still-fawn", shared)], [vm(1001, "pve"), vm(1002, "still-fawn")]),
        { policy, prune: true }
      ).actions.map((a) => [a._tag, a.node, "volid" in a ? a.volid : ""])
    assert.deepStrictEqual(deletes(false), [
      ["DeleteImage", "pve", older],
      ["DeleteImage", "still-fawn", older]
    ])
    assert.deepStrictEqual(deletes(true), [["DeleteImage", "pve", older]])
  })

  it("reprovision forces a recreate of a healthy VM, still within the limit", () => {
    const d = desired(["pve"])
    const o = observed(
      [observedNode("pve")],
      [vm(1001, "pve")],
      [
        [
          1001,
          { protection: false, agentConfigured: true, status: "running", qmpstatus: "running", uptimeSeconds: 9999 }
        ]
      ]
    )
    assert.deepStrictEqual(detailsNeeded(d, o, { reprovision: ["k3s-vm-pve"] }).vms, [{ node: "pve", vmid: 1001 }])
    assert.deepStrictEqual(tags(plan(d, o, { policy, reprovision: ["k3s-vm-pve"] })), ["RecreateVm:pve"])
  })

  it("a rebuild is sized like a create before the old VM goes: sockets × cores above the node's CPUs blocks it", () => {
    const base = desiredNode("pve")
    const d = { ...desired([]), nodes: [{ ...base, vms: base.vms.map((v) => ({ ...v, sockets: 2, cores: 6 })) }] }
    const o = observed(
      [observedNode("pve")],
      [vm(1001, "pve")],
      [
        [
          1001,
          { protection: false, agentConfigured: true, status: "running", qmpstatus: "running", uptimeSeconds: 9999 }
        ]
      ]
    )
    const p = plan(d, o, { policy, reprovision: ["k3s-vm-pve"] })
    assert.deepStrictEqual(tags(p), [])
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.effect, f.vmid, f.message]),
      [
        [
          "cpu.insufficient",
          "blocked",
          1001,
          'VM 1001 k3s-vm-pve needs rebuilding (reprovision of k3s-vm-pve requested), but is not rebuilt: the VM asks for 2 sockets × 6 cores = 12 vCPUs, node pve has 8 logical CPUs (PVE would refuse to start it: "MAX 8 vcpus allowed per VM on this node")'
        ]
      ]
    )
  })

  it("--only restricts the plan to the named nodes", () => {
    const d = desired(["pve", "still-fawn"])
    const o = observed(
      [observedNode("pve", { imageVolids: new Set() }), observedNode("still-fawn", { imageVolids: new Set() })],
      []
    )
    assert.deepStrictEqual(tags(plan(d, o, { policy, only: ["still-fawn"] })), [
      "DownloadImage:still-fawn",
      "CreateVm:still-fawn"
    ])
  })

  describe("every state of a pending VM has a path; protection and ownership first", () => {
    const pendingTags = ["homelab-managed", "homelab-pending", "k3s"]
    const details = (over: Partial<VmDetails>): VmDetails => ({
      protection: false,
      agentConfigured: true,
      status: "running",
      uptimeSeconds: 10,
      tags: pendingTags,
      ...over
    })
    const planFor = (d: VmDetails, o: Partial<ObservedVm> = {}) =>
      plan(
        desired(["pve"]),
        observed([observedNode("pve")], [vm(1001, "pve", { tags: pendingTags, ...o })], [[1001, d]]),
        { policy }
      )

    it("stopped → finished by starting it; paused, prelaunch, suspended → finished by resuming it", () => {
      for (const [status, qmpstatus, state] of [
        ["stopped", undefined, "stopped"],
        ["running", "paused", "paused"],
        ["running", "prelaunch", "prelaunch"],
        ["running", "suspended", "suspended"],
        ["running", "running", "running"]
      ] as const) {
        const p = planFor(details({ status, ...(qmpstatus ? { qmpstatus } : {}) }))
        assert.deepStrictEqual(tags(p), ["FinishVm:pve"], `${status}/${qmpstatus}`)
        const action = p.actions[0]
        assert.strictEqual(action?._tag === "FinishVm" ? action.state : undefined, state)
      }
    })

    it("a crashed pending VM is rebuilt (it never served), within the per-run limit", () => {
      assert.deepStrictEqual(tags(planFor(details({ qmpstatus: "io-error" }))), ["RecreateVm:pve"])
    })

    it("a protected pending VM is not resized, started or retagged: blocked", () => {
      const p = planFor(details({ status: "stopped", protection: true }))
      assert.deepStrictEqual(p.actions, [])
      assert.deepStrictEqual(codes(p), ["vm.protected:pve"])
      assert.strictEqual(p.findings[0]?.effect, "blocked")
    })

    it("a pending VM under a passing lock (backup) is left for a later run, not waited for", () => {
      const p = planFor(details({ lock: "backup" }))
      assert.deepStrictEqual(p.actions, [])
      assert.deepStrictEqual(codes(p), ["vm.locked:pve"])
      assert.strictEqual(p.findings[0]?.effect, "deferred")
    })

    it("a VM carrying the rebuild mark is rebuilt again, even when it looks healthy (the interrupted run's intent)", () => {
      const p = plan(
        desired(["pve"]),
        observed(
          [observedNode("pve")],
          [vm(1001, "pve", { tags: ["homelab-managed", "homelab-rebuild"] })],
          [
            [
              1001,
              details({ qmpstatus: "running", agentAnswering: true, tags: ["homelab-managed", "homelab-rebuild"] })
            ]
          ]
        ),
        { policy }
      )
      assert.deepStrictEqual(tags(p), ["RecreateVm:pve"])
      const action = p.actions[0]
      assert.isTrue(action?._tag === "RecreateVm" && action.resumed)
    })
  })

  describe("the k3s layer is planned with the VMs", () => {
    const k3s = {
      server: { host: "10.0.0.5", port: 22, user: "ubuntu", apiPort: 6443 },
      vmUser: "ubuntu",
      vmSshPort: 22,
      installFlags: [],
      installScriptUrl: "https://get.k3s.io"
    }
    const node = (name: string, ready: "True" | "False" = "True", ip = "10.0.0.21"): ClusterNode => ({
      name,
      roleLabels: [],
      role: "agent",
      ready,
      readyDetail: "",
      internalIPs: [ip],
      kubeletVersion: "v1.30.5+k3s1",
      systemUUID: undefined,
      deleting: false,
      etcdMemberName: undefined
    })

    it("a fresh lab: the join follows its create, with the reason, and plan says so", () => {
      const d = desired(["pve"], { k3s })
      const o: Observed = { ...observed([observedNode("pve")], []), k3s: { _tag: "Nodes", nodes: [] } }
      const p = plan(d, o, { policy })
      assert.deepStrictEqual(tags(p), ["CreateVm:pve", "JoinK3s:pve"])
      const join = p.actions[1]
      assert.deepStrictEqual(join?.after, [p.actions[0]?.id as string])
      assert.include(describeAction(join as Action), "join k3s-vm-pve to k3s as an agent after it is created")
    })

    it("k3s.server unreadable (SSH refused): a new VM is created, its join is blocked with k3s.server's hint", () => {
      const d = desired(["pve"], { k3s })
      const o: Observed = {
        ...observed([observedNode("pve")], []),
        k3s: {
          _tag: "Unavailable",
          message: "cannot read the k3s cluster's Nodes on nobody@10.0.0.5:22: authentication rejected",
          hint: "check k3s.server (SSH to 10.0.0.5:22 as nobody)"
        }
      }
      const p = plan(d, o, { policy })
      assert.deepStrictEqual(tags(p), ["CreateVm:pve"])
      assert.deepStrictEqual(codes(p), ["k3s.unavailable:pve"])
      assert.strictEqual(p.findings[0]?.effect, "blocked")
      assert.include(p.findings[0]?.message ?? "", "nobody@10.0.0.5:22")
      assert.strictEqual(p.findings[0]?.hint, "check k3s.server (SSH to 10.0.0.5:22 as nobody)")
    })

    it("a k3s.version that is no release: a new VM is created, its join is blocked naming k3s.version", () => {
      const d = desired(["pve"], { k3s: { ...k3s, version: "v1.99.1+k3s1" } })
      const url = "https://github.com/k3s-io/k3s/releases/download/v1.99.1+k3s1/sha256sum-amd64.txt"
      const o: Observed = {
        ...observed([observedNode("pve")], []),
        k3s: {
          _tag: "Nodes",
          nodes: [{ ...node("k3s-server", "True", "10.0.0.5"), role: "server" }],
          release: { _tag: "Missing", version: "v1.99.1+k3s1", url }
        }
      }
      const p = plan(d, o, { policy })
      assert.deepStrictEqual(tags(p), ["CreateVm:pve"])
      assert.deepStrictEqual(codes(p), ["k3s.release-missing:pve"])
      assert.strictEqual(p.findings[0]?.effect, "blocked")
      assert.strictEqual(
        p.findings[0]?.message,
        `k3s.version v1.99.1+k3s1 is not a k3s release (${url} answers 404 Not Found): k3s-vm-pve cannot join with it`
      )
      assert.strictEqual(
        p.findings[0]?.hint,
        "set k3s.version to a published release (https://github.com/k3s-io/k3s/releases), or use k3s.channel"
      )
    })

    it("a healthy VM that is a Ready member: nothing; one that is absent: a join with its IP", () => {
      const d = desired(["pve"], { k3s })
      const base = observed([observedNode("pve")], [vm(1001, "pve")])
      const member = plan(
        d,
        { ...base, ips: new Map([[1001, "10.0.0.21"]]), k3s: { _tag: "Nodes", nodes: [node("k3s-vm-pve")] } },
        { policy }
      )
      assert.deepStrictEqual(tags(member), [])
      const absent = plan(
        d,
        { ...base, ips: new Map([[1001, "10.0.0.21"]]), k3s: { _tag: "Nodes", nodes: [] } },
        { policy }
      )
      assert.deepStrictEqual(tags(absent), ["JoinK3s:pve"])
    })

    it("a stale Node with another IP is not touched unless we rebuilt the VM: blocked, with the way out", () => {
      const d = desired(["pve"], { k3s })
      const o: Observed = {
        ...observed([observedNode("pve")], [vm(1001, "pve")]),
        ips: new Map([[1001, "10.0.0.99"]]),
        k3s: { _tag: "Nodes", nodes: [node("k3s-vm-pve", "False")] }
      }
      const p = plan(d, o, { policy })
      assert.deepStrictEqual(codes(p), ["k3s.identity-mismatch:pve"])
      assert.strictEqual(p.findings[0]?.effect, "blocked")
      assert.include(p.findings[0]?.hint ?? "", "homelab reprovision k3s-vm-pve")
    })

    it("a recreate needs the k3s cluster readable (its Node goes first); otherwise it is blocked", () => {
      const d = desired(["pve"], { k3s })
      const o: Observed = {
        ...observed(
          [observedNode("pve")],
          [vm(1001, "pve", { status: "stopped" })],
          [[1001, { protection: false, agentConfigured: true, status: "stopped", uptimeSeconds: 0 }]]
        ),
        k3s: { _tag: "Unavailable", message: "ssh refused", hint: "check k3s.server" }
      }
      const p = plan(d, o, { policy })
      assert.deepStrictEqual(tags(p), [])
      assert.deepStrictEqual(codes(p), ["vm.recreate-needs-k3s:pve"])
    })
  })

  it("a node that could not be observed is blocked with its problem; the others are planned", () => {
    const d = desired(["pve", "still-fawn"])
    const problem = { code: "node.unreachable", message: "cannot list local on node pve: …", hint: "check" }
    const o = observed([observedNode("pve", { problem }), observedNode("still-fawn", { imageVolids: new Set() })], [])
    const p = plan(d, o, { policy })
    assert.deepStrictEqual(tags(p), ["DownloadImage:still-fawn", "CreateVm:still-fawn"])
    assert.deepStrictEqual(codes(p), ["node.unreachable:pve"])
  })
})
