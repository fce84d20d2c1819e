import { assert, describe, it } from "@effect/vitest"
import { describeCluster } from "../src/PlanCluster.js"
import { byId, ipOf, k3sDesired, k3sObserved, names, observedVm, planOf, readyCluster, steps } from "./k3sFixture.js"

describe("a cluster from nothing in the plan", () => {
  it("bare nodes: the first server VM starts the cluster, the others join through it (servers one at a time)", () => {
    const vms = names(3, 2)
    const o = { ...k3sObserved(vms, { _tag: "Absent", probed: [] }), vms: [], ips: new Map() }
    const p = planOf(k3sDesired(vms), o)
    assert.deepStrictEqual(
      steps(p).filter((s) => !s.startsWith("CreateVm")),
      ["InitK3s:s1", "JoinK3s:s2", "JoinK3s:s3", "JoinK3s:a1", "JoinK3s:a2"]
    )
    assert.deepStrictEqual(byId(p, "pve-s1:k3s:s1")?.after, ["pve-s1:vm:s1"])
    assert.deepStrictEqual(byId(p, "pve-s2:k3s:s2")?.after, ["pve-s2:vm:s2", "pve-s1:k3s:s1"])
    const join = byId(p, "pve-a1:k3s:a1")
    assert.deepStrictEqual(join?._tag === "JoinK3s" ? [join.via, join.exclusive] : [], [{ vm: "s1" }, undefined])
    assert.strictEqual(byId(p, "pve-s3:k3s:s3")?.exclusive, "k3s-server")
    assert.deepStrictEqual(p.cluster, { servers: 3, agents: 2, etcd: true, init: "s1" })
    assert.strictEqual(describeCluster(p.cluster!), "3 servers (etcd), 2 agents; started on s1")
    assert.deepStrictEqual(p.findings, [])
  })

  it("an interrupted first run: the first server VM exists without k3s and starts the cluster at its IP", () => {
    const vms = names(1, 1)
    const p = planOf(k3sDesired(vms), k3sObserved(vms, { _tag: "Absent", probed: ["s1"] }))
    assert.deepStrictEqual(steps(p), ["InitK3s:s1", "JoinK3s:a1"])
    const init = byId(p, "pve-s1:k3s:s1")
    assert.strictEqual(init?._tag === "InitK3s" ? init.ip : undefined, ipOf(vms, "s1"))
  })

  it("an existing cluster on our VMs is joined through a Ready server, never started again", () => {
    const vms = names(3, 1)
    const o = k3sObserved(vms, readyCluster(vms.filter((n) => n !== "a1")), {
      vms: vms.map((n) => observedVm(vms, n))
    })
    const p = planOf(k3sDesired(vms), o)
    assert.deepStrictEqual(steps(p), ["JoinK3s:a1"])
    const join = byId(p, "pve-a1:k3s:a1")
    assert.deepStrictEqual(join?._tag === "JoinK3s" ? join.via : undefined, { vm: "s1", ip: ipOf(vms, "s1") })
  })

  it("warns on an even number of servers; says so when its first server is not part of this run", () => {
    const vms = names(2, 1)
    const even = planOf(k3sDesired(vms), k3sObserved(vms, readyCluster(vms)))
    const warning = even.findings.find((f) => f.code === "k3s.even-servers")
    assert.strictEqual(warning?.effect, "info")
    assert.include(warning?.message ?? "", "2 servers survive no more failures than 1")
    const o = { ...k3sObserved(vms, { _tag: "Absent", probed: [] }), vms: [], ips: new Map() }
    const partial = planOf(k3sDesired(vms), o, { only: ["pve-a1"] })
    assert.deepStrictEqual(
      steps(partial).filter((s) => !s.startsWith("CreateVm")),
      []
    )
    const noCluster = partial.findings.find((f) => f.code === "k3s.no-cluster")
    assert.strictEqual(noCluster?.vm, "a1")
    // the first server's node is simply out of --only's scope: said so, with what to do
    assert.include(
      noCluster?.message ?? "",
      "s1, the first server that starts it, is on pve-s1, which --only leaves out"
    )
    assert.include(noCluster?.hint ?? "", "add pve-s1 to --only")
  })
})
