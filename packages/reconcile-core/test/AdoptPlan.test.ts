import { assert, describe, it } from "@effect/vitest"
import type { VmPending } from "@homelab/proxmox-client"
import { selectAdoptions } from "../src/AdoptPlan.js"
import type { Desired, DesiredNode } from "../src/Desired.js"
import { tagList } from "../src/Marks.js"
import type { Observed, ObservedNode, ObservedVm } from "../src/Observed.js"

const desiredNode = (name: string): DesiredNode => ({
  name,
  cpuRatio: 0.5,
  memoryRatio: 0.5,
  image: { url: "http://images/noble.img", storage: "local", content: "import", filename: "noble.qcow2" },
  vms: [
    {
      name: `k3s-vm-${name}`,
      node: name,
      role: "server",
      diskGiB: 32,
      storage: "local-lvm",
      bridges: ["vmbr0"],
      tags: ["homelab-managed"],
      cpuType: "host",
      cloudInit: { user: "ubuntu", sshKeys: [], ipConfig: "ip=dhcp" }
    }
  ]
})

const nodes = ["a", "b", "c", "d", "e", "f", "g", "h"]
const desired: Desired = {
  nodes: nodes.map(desiredNode),
  ownershipTag: "homelab-managed",
  pendingTag: "homelab-pending",
  vmidRange: { lower: 1000, upper: 8999 },
  limits: { maxRecreatePerRun: 1 },
  protect: ["k3s-vm-g"]
}

const node = (name: string): ObservedNode => ({
  name,
  online: true,
  cpus: 8,
  memoryBytes: 32 * 1024 ** 3,
  storages: [],
  imageVolids: new Set()
})

const vm = (vmid: number, at: string, name: string, over: Partial<ObservedVm> = {}): ObservedVm => ({
  vmid,
  node: at,
  type: "qemu",
  name,
  status: "running",
  tags: [],
  template: false,
  maxmemBytes: 0,
  uptimeSeconds: 100,
  ...over
})

const config = (current: Record<string, string>): VmPending => ({ digest: "d1", current, pending: {}, deletes: [] })

/**
 * a: adoptable (tags kept); b: on node a; c: two VMs of its name; d: a template; e: locked; f: carries a rebuild mark;
 * g: protected by safety.protect; h: ours already.
 */
const observed: Observed = {
  nodes: new Map(nodes.map((n) => [n, node(n)])),
  vms: [
    vm(1, "a", "k3s-vm-a", { tags: ["seed", "k3s"] }),
    vm(2, "a", "k3s-vm-b"),
    vm(3, "c", "k3s-vm-c"),
    vm(4, "b", "k3s-vm-c"),
    vm(5, "d", "k3s-vm-d", { template: true }),
    vm(6, "e", "k3s-vm-e"),
    vm(7, "f", "k3s-vm-f"),
    vm(8, "g", "k3s-vm-g"),
    vm(9, "h", "k3s-vm-h", { tags: ["homelab-managed"] })
  ],
  vmDetails: new Map(),
  configs: new Map([
    [1, config({ tags: "k3s;seed" })],
    [6, config({ lock: "backup" })],
    [7, config({ tags: "homelab-rebuild" })],
    [8, config({})],
    [9, config({ tags: "homelab-managed" })]
  ])
}

describe("selectAdoptions", () => {
  it("--all: only a VM on its node, not a template, not locked, without run marks, not protected; each other one refused with its reason", () => {
    const s = selectAdoptions(desired, observed, { all: true })
    assert.deepStrictEqual(
      s.candidates.map((c) => [c.name, c.vmid, c.tags, c.digest, c.protected, c.role]),
      [["k3s-vm-a", 1, ["k3s", "seed"], "d1", false, undefined]]
    )
    // a role only with a k3s section: without one, homelab.yaml gives the VMs none
    const withK3s = selectAdoptions({ ...desired, k3s: {} as NonNullable<Desired["k3s"]> }, observed, { all: true })
    assert.deepStrictEqual(
      withK3s.candidates.map((c) => c.role),
      ["server"]
    )
    assert.deepStrictEqual(
      s.refused.map((r) => [r.name, r.code]),
      [
        ["k3s-vm-b", "adopt.wrong-node"],
        ["k3s-vm-c", "adopt.duplicate"],
        ["k3s-vm-d", "adopt.not-a-vm"],
        ["k3s-vm-e", "adopt.locked"],
        ["k3s-vm-f", "adopt.marked"],
        ["k3s-vm-g", "adopt.protected"]
      ]
    )
    assert.deepStrictEqual(s.owned, [{ node: "h", name: "k3s-vm-h", vmid: 9 }])
    assert.include(s.refused[0]?.message ?? "", "is on node a, but homelab.yaml asks for it on b")
  })

  it("by name: a protected VM is a candidate (marked protected); names not in homelab.yaml and names without a VM are listed", () => {
    const s = selectAdoptions({ ...desired, nodes: [...desired.nodes, { ...desiredNode("i") }] }, observed, {
      names: ["k3s-vm-g", "k3s-vm-i", "nope"]
    })
    assert.deepStrictEqual(
      s.candidates.map((c) => [c.name, c.protected]),
      [["k3s-vm-g", true]]
    )
    assert.deepStrictEqual(s.refused, [])
    assert.deepStrictEqual(s.absent, [{ node: "i", name: "k3s-vm-i" }])
    assert.deepStrictEqual(s.unknown, ["nope"])
  })

  it("a VM whose configuration was not read is refused, not adopted blind", () => {
    const s = selectAdoptions(desired, { ...observed, configs: new Map() }, { names: ["k3s-vm-a"] })
    assert.deepStrictEqual(
      s.refused.map((r) => r.code),
      ["adopt.unread"]
    )
  })

  it("tagList reads PVE's separators", () => {
    assert.deepStrictEqual(tagList("a;b,c d"), ["a", "b", "c", "d"])
    assert.deepStrictEqual(tagList(undefined), [])
  })
})
