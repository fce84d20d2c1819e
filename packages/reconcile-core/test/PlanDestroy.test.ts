/**
 * The teardown plan (`planDestroy`), pure: k3s servers go one at a time under the quorum guard, a teardown that takes
 * servers out is all or nothing, and one that takes every server out says that the k3s cluster goes with them.
 */
import { assert, describe, it } from "@effect/vitest"
import type { DestroyVm } from "../src/Action.js"
import type { Observed } from "../src/Observed.js"
import { planDestroy } from "../src/PlanDestroy.js"
import { ipOf, k3sDesired, k3sObserved, names, observedVm, readyCluster } from "./k3sFixture.js"

const vms = names(5, 1)
const destroys = (p: ReturnType<typeof planDestroy>) => p.actions.filter((a): a is DestroyVm => a._tag === "DestroyVm")

describe("planDestroy with k3s servers", () => {
  it("several servers that may go (5 members, 2 go): one after another, each through a server that stays", () => {
    const p = planDestroy(k3sDesired(vms), k3sObserved(vms, readyCluster(vms)), { only: ["pve-s1", "pve-s2"] })
    assert.deepStrictEqual(
      destroys(p).map((a) => [a.name, a.k3sNode?.role, a.after, a.k3sVia?.vm]),
      [
        ["s1", "server", [], "s3"],
        ["s2", "server", ["pve-s1:destroy:1001"], "s3"]
      ]
    )
    assert.deepStrictEqual(
      p.findings.filter((f) => f.effect !== "info"),
      []
    )
  })

  it("the ones whose member is down go first: 5 members, s3 down, s2 and s3 go", () => {
    const down = readyCluster(vms, {}, (n) => (n === "s3" ? { ready: "Unknown" } : {}))
    const p = planDestroy(k3sDesired(vms), k3sObserved(vms, down), { only: ["pve-s2", "pve-s3"] })
    assert.deepStrictEqual(
      destroys(p).map((a) => [a.name, a.after]),
      [
        ["s3", []],
        ["s2", ["pve-s3:destroy:1003"]]
      ]
    )
  })

  it("one that would take etcd below quorum: nothing of the teardown is planned, each VM says why", () => {
    // 5 members, s5 down: s1 may go (3 of the other 4 run, quorum 3), then s2 may not (2 of the other 3, quorum 3)
    const down = readyCluster(vms, {}, (n) => (n === "s5" ? { ready: "Unknown" } : {}))
    const p = planDestroy(k3sDesired(vms), k3sObserved(vms, down), { only: ["pve-s1", "pve-s2", "pve-a1"] })
    assert.deepStrictEqual(p.actions, [])
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.effect, f.vm]),
      [
        ["vm.destroy-held", "blocked", "s1"],
        ["k3s.quorum", "blocked", "s2"],
        ["vm.destroy-held", "blocked", "a1"]
      ]
    )
    assert.match(
      p.findings[1]?.message ?? "",
      /^not destroying k3s server s2: destroy of s2 would leave 2 of 4 etcd members healthy, quorum needs 3 .*\(this run: after s1 is destroyed first\)/
    )
    assert.include(p.findings[0]?.message ?? "", "k3s server s2 of this teardown cannot go this run")
    assert.include(p.findings[0]?.hint ?? "", "destroy fewer servers at once")
  })

  it("a server that cannot go for another reason (locked) holds the others too", () => {
    const o = k3sObserved(vms, readyCluster(vms), {
      vms: vms.map((n) => observedVm(vms, n, n === "s2" ? { lock: "backup" } : {}))
    })
    const p = planDestroy(k3sDesired(vms), o, { only: ["pve-s1", "pve-s2"] })
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.vm]),
      [
        ["vm.destroy-held", "s1"],
        ["vm.locked", "s2"]
      ]
    )
    assert.deepStrictEqual(p.actions, [])
  })

  it("every server of the cluster: the cluster goes with them, and the plan says so plainly", () => {
    const small = names(3, 1)
    const p = planDestroy(k3sDesired(small), k3sObserved(small, readyCluster(small)))
    assert.deepStrictEqual(
      destroys(p).map((a) => [a.name, a.k3sNode, a.after]),
      small.map((n) => [n, undefined, []])
    )
    const goes = p.findings.find((f) => f.code === "k3s.cluster-goes")
    assert.strictEqual(goes?.effect, "info")
    assert.match(
      goes?.message ?? "",
      /^the k3s cluster itself is torn down: every server of it \(s1, s2, s3\) is destroyed, and its etcd datastore with them/
    )
  })

  it("every server, but one cannot go this run: nothing is destroyed (not a cluster without some of its servers)", () => {
    const small = names(3, 1)
    const o: Observed = k3sObserved(small, readyCluster(small), {
      vms: small.map((n) => observedVm(small, n, n === "s3" ? { lock: "backup" } : {}))
    })
    const p = planDestroy(k3sDesired(small), o)
    assert.deepStrictEqual(p.actions, [])
    const held = p.findings.filter((f) => f.code === "vm.destroy-held")
    assert.deepStrictEqual(
      held.map((f) => f.vm),
      ["s1", "s2", "a1"]
    )
    assert.include(held[0]?.message ?? "", "the k3s cluster goes with its servers, but k3s server s3")
    assert.isUndefined(p.findings.find((f) => f.code === "k3s.cluster-goes"))
  })

  it("every server, one of them k3s.server (never destroyed): nothing is destroyed either", () => {
    const small = names(3, 0)
    const d = k3sDesired(small, { server: { host: ipOf(small, "s1"), port: 22, user: "ubuntu", apiPort: 6443 } })
    const p = planDestroy(d, k3sObserved(small, readyCluster(small)))
    assert.deepStrictEqual(p.actions, [])
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.vm]),
      [
        ["vm.k3s-server", "s1"],
        ["vm.destroy-held", "s2"],
        ["vm.destroy-held", "s3"]
      ]
    )
  })
  it("--only naming no node at all plans nothing and suggests the node it is a typo of", () => {
    const small = names(3, 1)
    const o: Observed = { ...k3sObserved(small, readyCluster(small)), pveNodes: small.map((n) => `pve-${n}`) }
    const p = planDestroy(k3sDesired(small), o, { only: ["pve-s1", "pve-2s", "nope"] })
    assert.deepStrictEqual(p.actions, [])
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.node, f.hint]),
      [
        ["node.unknown", "pve-2s", "did you mean pve-s2? check the name: nothing was destroyed, on any node"],
        ["node.unknown", "nope", "check the name: nothing was destroyed, on any node"]
      ]
    )
  })
})
