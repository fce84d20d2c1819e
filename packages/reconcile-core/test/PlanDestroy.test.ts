/**
 * The teardown plan (`planDestroy`), pure: k3s servers go one at a time under the quorum guard, a teardown that takes
 * servers out is all or nothing, and one that takes every server out says that the k3s cluster goes with them.
 */
import { assert, describe, it } from "@effect/vitest"
import { memberWithoutNode } from "@homelab/k3s-join"
import type { DestroyVm } from "../src/Action.js"
import type { K3sFacts, Observed } from "../src/Observed.js"
import { planDestroy } from "../src/PlanDestroy.js"
import { etcdctlRemove } from "../src/StaleMember.js"
import { ipOf, k3sDesired, k3sObserved, members, names, observedVm, readyCluster } from "./k3sFixture.js"

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

describe("planDestroy of a k3s server VM whose etcd member no Node owns (its Node force-deleted, k3s.md §5.2)", () => {
  const small = names(3, 1)
  const member = members(small).find((m) => m.name.startsWith("s3-"))
  const ready = readyCluster(small)
  /** The cluster with s3's Node gone (deleted with its finalizers removed): its member stays. */
  const withoutNode: K3sFacts =
    ready._tag === "Nodes" ? { ...ready, nodes: ready.nodes.filter((n) => n.name !== "s3") } : ready

  it("its Node gone: not destroyed (the member would stay for good); blocked in removeServer's words, the VM as it is, the etcdctl that removes the member and then destroy again", () => {
    assert.ok(member !== undefined)
    const p = planDestroy(k3sDesired(small), k3sObserved(small, withoutNode), { only: ["pve-s3"] })
    assert.deepStrictEqual(p.actions, [])
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.effect, f.vm, f.vmid]),
      [["k3s.stale-member", "blocked", "s3", 1003]]
    )
    assert.strictEqual(
      p.findings[0]?.message,
      `not destroying k3s server s3: ${memberWithoutNode("s3", [member])}; nothing is cordoned, stopped or destroyed`
    )
    const hint = p.findings[0]?.hint ?? ""
    assert.include(hint, "VM 1003 s3 stays as it is")
    assert.include(hint, `on s1 with an etcdctl of your own (k3s ships none): \`${etcdctlRemove("3ea")}\``)
    assert.include(hint, "run the same `homelab destroy` again")
  })

  it("its Node there, but etcd lists a second member of its name that no Node owns: removeServer would refuse once the VM is stopped, so the plan blocks it, and the other servers of the teardown with it", () => {
    const stale = { id: "4096", name: "s3-0a0b0c0d", peerURL: undefined, clientURL: undefined, isLearner: false }
    const five = names(5, 1)
    const all = readyCluster(five)
    const facts: K3sFacts = all._tag === "Nodes" ? { ...all, members: [...(all.members ?? []), stale] } : all
    const p = planDestroy(k3sDesired(five), k3sObserved(five, facts), { only: ["pve-s2", "pve-s3"] })
    assert.deepStrictEqual(p.actions, [])
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.vm]),
      [
        ["vm.destroy-held", "s2"],
        ["k3s.stale-member", "s3"]
      ]
    )
    assert.include(p.findings[1]?.message ?? "", memberWithoutNode("s3", [stale]))
    assert.include(p.findings[1]?.hint ?? "", "member remove 1000")
  })

  it("every server goes (the cluster with them): a member without a Node goes with the datastore, nothing is held", () => {
    const p = planDestroy(k3sDesired(small), k3sObserved(small, withoutNode))
    assert.deepStrictEqual(
      destroys(p).map((a) => a.name),
      small
    )
    assert.isUndefined(p.findings.find((f) => f.code === "k3s.stale-member"))
  })
})

describe("planDestroy of a VM without a k3s Node while the etcd members cannot be read", () => {
  const small = names(3, 1)
  const ready = readyCluster(small)
  const problem = "reading the etcd members (/db/info): curl: (22) The requested URL returned error: 401"
  /** The cluster without the Nodes of `gone`, its members unread (`membersError`). */
  const unreadable = (gone: ReadonlyArray<string>, node: Parameters<typeof readyCluster>[2] = () => ({})): K3sFacts => {
    const facts = readyCluster(small, {}, node)
    if (facts._tag !== "Nodes") return facts
    const { members: _m, ...rest } = facts
    return { ...rest, nodes: facts.nodes.filter((n) => !gone.includes(n.name)), membersError: problem }
  }

  it("a server VM (role server) whose Node is gone: blocked, saying why the members could not be read and what to do; nothing is cordoned, stopped or destroyed", () => {
    assert.strictEqual(ready._tag, "Nodes")
    const p = planDestroy(k3sDesired(small), k3sObserved(small, unreadable(["s3"])), { only: ["pve-s3"] })
    assert.deepStrictEqual(p.actions, [])
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.effect, f.layer, f.vm, f.vmid]),
      [["k3s.members-unknown", "blocked", "k3s", "s3", 1003]]
    )
    assert.strictEqual(
      p.findings[0]?.message,
      `not destroying k3s server s3: it has no k3s Node, and the etcd members could not be read (${problem}), so whether etcd still lists a member of s3 that no Node owns cannot be checked (k3s removes a member only through its Node: destroyed without it, the VM would leave that member in etcd for good); nothing is cordoned, stopped or destroyed`
    )
    const hint = p.findings[0]?.hint ?? ""
    assert.include(hint, "VM 1003 s3 stays as it is")
    assert.include(hint, "`curl -sk https://127.0.0.1:6443/db/info`")
    assert.include(hint, "run the same `homelab destroy` again")
  })

  it("an agent VM (role agent) whose Node is gone: destroyed as before (an agent holds no etcd member)", () => {
    const p = planDestroy(k3sDesired(small), k3sObserved(small, unreadable(["a1"])), { only: ["pve-a1"] })
    assert.deepStrictEqual(
      destroys(p).map((a) => [a.name, a.k3sNode]),
      [["a1", undefined]]
    )
    assert.deepStrictEqual(p.findings, [])
  })

  it("a server VM whose Node is gone in a cluster without embedded etcd (no server Node has the etcd role): destroyed, there is no member to leave behind", () => {
    const noEtcd = unreadable(["s3"], (n) =>
      n.startsWith("s") ? { roleLabels: ["control-plane", "master"], etcdMemberName: undefined } : {}
    )
    const p = planDestroy(k3sDesired(small), k3sObserved(small, noEtcd), { only: ["pve-s3"] })
    assert.deepStrictEqual(
      destroys(p).map((a) => a.name),
      ["s3"]
    )
    assert.deepStrictEqual(p.findings, [])
  })
})
