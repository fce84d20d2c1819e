import { assert, describe, it } from "@effect/vitest"
import type { DesiredNode, DesiredVm } from "../src/Desired.js"
import { derivedCores, vmCores } from "../src/VmCores.js"

const vm: DesiredVm = {
  name: "k3s-vm-pve",
  node: "pve",
  role: "agent",
  diskGiB: 32,
  storage: "local-lvm",
  bridges: ["vmbr0"],
  tags: ["homelab-managed"],
  cpuType: "host",
  cloudInit: { user: "ubuntu", sshKeys: [], ipConfig: "ip=dhcp" }
}

const node = (cpuRatio: number): DesiredNode => ({
  name: "pve",
  cpuRatio,
  memoryRatio: 0.5,
  image: { url: "http://images/noble.img", storage: "local", content: "import", filename: "noble.qcow2" },
  vms: [vm]
})

describe("vmCores", () => {
  it("the node's CPUs × cpuRatio shared over vm.sockets, rounded down per socket, at least 1; pinned cores as they are", () => {
    const cases: ReadonlyArray<[cpus: number, ratio: number, sockets: number | undefined, cores: number]> = [
      [8, 0.5, undefined, 4],
      [8, 0.5, 1, 4],
      [8, 0.5, 2, 2],
      [8, 1, 2, 4],
      [8, 0.5, 3, 1],
      [2, 0.5, 4, 1],
      [100, 0.29, undefined, 29],
      [100, 0.29, 2, 14]
    ]
    for (const [cpus, ratio, sockets, cores] of cases) {
      assert.strictEqual(vmCores(node(ratio), cpus, { ...vm, sockets }), cores, `${cpus} × ${ratio} / ${sockets}`)
    }
    assert.strictEqual(vmCores(node(0.5), 8, { ...vm, sockets: 2, cores: 6 }), 6)
  })

  it("says how the cores were derived, for the plan's texts", () => {
    assert.strictEqual(derivedCores(node(0.5), 8, vm).text, "node pve's 8 logical CPUs × cpuRatio 0.5 = 4 cores")
    assert.strictEqual(
      derivedCores(node(0.5), 8, { ...vm, sockets: 2 }).text,
      "node pve's 8 logical CPUs × cpuRatio 0.5 = 4 vCPUs over vm.sockets 2 = 2 cores per socket"
    )
    assert.strictEqual(
      derivedCores(node(0.29), 100, { ...vm, sockets: 3 }).text,
      "node pve's 100 logical CPUs × cpuRatio 0.29 = 29 vCPUs over vm.sockets 3 = 9 cores per socket"
    )
    assert.strictEqual(
      derivedCores(node(0.5), 2, { ...vm, sockets: 4 }).text,
      "node pve's 2 logical CPUs × cpuRatio 0.5 = 1 vCPU over vm.sockets 4 = 1 core per socket"
    )
  })
})
