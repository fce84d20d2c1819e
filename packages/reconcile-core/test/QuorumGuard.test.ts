import { assert, describe, it } from "@effect/vitest"
import { QuorumAtRisk } from "@homelab/k3s-join"
import type { Action } from "../src/Action.js"
import { holdsEtcdMember, oneAtATime, quorumFinding, recheckQuorum, rejoinRefusal } from "../src/QuorumGuard.js"
import {
  byId,
  clusterNode,
  k3sDesired,
  k3sObserved,
  members,
  names,
  observedVm,
  planOf,
  readyCluster,
  steps
} from "./k3sFixture.js"

const vms = names(3, 1)

describe("quorumFinding", () => {
  it("lets one server of three go while the other two are Ready", () => {
    const facts = { nodes: vms.map((n) => clusterNode(vms, n)), members: members(vms) }
    assert.strictEqual(quorumFinding(facts, { node: "pve-s1", vm: "s1" }, "rebuild"), undefined)
    assert.strictEqual(quorumFinding(facts, { node: "pve-a1", vm: "a1" }, "upgrade"), undefined, "an agent votes not")
  })

  it("refuses a second server going down, naming every member and the one to bring back", () => {
    const facts = {
      nodes: vms.map((n) => clusterNode(vms, n, n === "s2" ? { ready: "Unknown" } : {})),
      members: members(vms)
    }
    const finding = quorumFinding(facts, { node: "pve-s1", vm: "s1", vmid: 1001 }, "rebuild")
    assert.strictEqual(finding?.code, "k3s.quorum")
    assert.strictEqual(finding?.effect, "blocked")
    assert.match(
      finding?.message ?? "",
      /^not rebuilding k3s server s1: rebuild of s1 would leave 1 of 3 etcd members healthy, quorum needs 2 \(s1-00000000 Ready, s2-00000001 NotReady \(Unknown\), s3-00000002 Ready\)/
    )
    assert.include(finding?.hint ?? "", "bring s2 back to Ready first")
  })

  it("refuses blind: without the members nothing goes down", () => {
    const finding = quorumFinding(undefined, { node: "pve-s1", vm: "s1" }, "upgrade", "the etcd members were not read")
    assert.strictEqual(finding?.code, "k3s.quorum-unknown")
    assert.include(finding?.message ?? "", "not upgrading k3s server s1: the etcd members were not read")
  })
})

describe("rejoinRefusal", () => {
  it("says the join is refused because its k3s would restart, with the guard's reason, and which server to bring back", () => {
    const refused = new QuorumAtRisk({
      node: "s1",
      action: "restart",
      voters: 3,
      needed: 2,
      healthyOthers: 1,
      members: [
        { member: "s1-00000000", node: "s1", state: "NotReady (False)" },
        { member: "s2-00000001", node: "s2", state: "NotReady (Unknown)" },
        { member: "s3-00000002", node: "s3", state: "Ready" }
      ],
      detail: "restart of s1 would leave 1 of 3 etcd members healthy, quorum needs 2 (…): bring s2 back first"
    })
    const said = rejoinRefusal("s1", refused)
    assert.strictEqual(
      said.message,
      "not re-joining k3s server s1: its k3s would restart with the new install, and restart of s1 would leave 1 of 3 etcd members healthy, quorum needs 2 (…): bring s2 back first"
    )
    assert.match(
      said.hint,
      /^bring s2 back to Ready first .*then run apply again: k3s on s1 runs on as it was and its restart is pending/
    )
  })
})

describe("holdsEtcdMember", () => {
  it("asks the guard for a server by its membership, never by its Node's readiness", () => {
    const nodes = vms.map((n) => clusterNode(vms, n, n === "s2" ? { ready: "False" } : {}))
    const facts = { nodes, members: members(vms) }
    assert.isTrue(holdsEtcdMember(facts, nodes, "s1"), "a Ready server")
    assert.isTrue(holdsEtcdMember(facts, nodes, "s2"), "a NotReady server: its k3s may run its member on")
    assert.isTrue(holdsEtcdMember(undefined, nodes, "s2"), "the members unread: its Node says server")
    assert.isFalse(holdsEtcdMember(facts, nodes, "a1"), "an agent")
    // a member whose Node is gone (a stale member named after the VM) still votes
    const gone = { nodes: nodes.filter((n) => n.name !== "s3"), members: members(vms) }
    assert.isTrue(holdsEtcdMember(gone, gone.nodes, "s3"))
    assert.isFalse(holdsEtcdMember(gone, gone.nodes, "s4"))
    // and the guard counts a NotReady server's own vote as lost while it is restarted
    assert.strictEqual(
      quorumFinding(
        {
          nodes: vms.map((n) =>
            clusterNode(vms, n, n === "s3" ? { ready: "Unknown" } : n === "s2" ? { ready: "False" } : {})
          ),
          members: members(vms)
        },
        { node: "pve-s2", vm: "s2" },
        "restart"
      )?.code,
      "k3s.quorum"
    )
  })
})

describe("recheckQuorum", () => {
  const downS2 = {
    nodes: vms.map((n) => clusterNode(vms, n, n === "s2" ? { ready: "Unknown" } : {})),
    members: members(vms)
  }
  const refusal = quorumFinding(downS2, { node: "pve-s1", vm: "s1", vmid: 1001 }, "rebuild", undefined, {
    context: "it needs rebuilding: VM 1001 (s1) on node pve-s1 is paused (qmpstatus=paused); remediation: recreate",
    layer: "vm"
  })
  const other = { code: "vm.locked", effect: "deferred" as const, layer: "vm" as const, node: "pve-a1", message: "x" }

  it("a refusal that no longer holds (the run brought s2 back) is deferred to the next run, on the same layer", () => {
    assert.strictEqual(refusal?.layer, "vm")
    const ready = { nodes: vms.map((n) => clusterNode(vms, n)), members: members(vms) }
    const [again, kept] = recheckQuorum([refusal!, other], { facts: ready })
    assert.strictEqual(kept, other, "other findings are left as they are")
    assert.strictEqual(again?.code, "k3s.quorum-later")
    assert.strictEqual(again?.effect, "deferred")
    assert.strictEqual(again?.layer, "vm")
    assert.strictEqual(again?.vm, "s1")
    assert.match(
      again?.message ?? "",
      /^k3s server s1 was not rebuilt this run: the quorum guard refused it when the run was planned \(it needs rebuilding: .* is paused .*\); now 2 of 3 etcd members stay healthy while s1 is out/
    )
    assert.notInclude(`${again?.message} ${again?.hint}`, "bring s2 back")
    assert.include(again?.hint ?? "", "run apply again")
  })

  it("a refusal that still holds is said with the members as they are now", () => {
    const downS3 = {
      nodes: vms.map((n) => clusterNode(vms, n, n === "s3" ? { ready: "False" } : {})),
      members: members(vms)
    }
    const [again] = recheckQuorum([refusal!], { facts: downS3 })
    assert.strictEqual(again?.code, "k3s.quorum")
    assert.strictEqual(again?.effect, "blocked")
    assert.strictEqual(again?.layer, "vm")
    assert.include(again?.message ?? "", "s2-00000001 Ready, s3-00000002 NotReady (False)")
    assert.include(again?.message ?? "", "(it needs rebuilding: VM 1001 (s1)")
    assert.include(again?.hint ?? "", "bring s3 back to Ready first")
  })

  it("a server that just joined is a learner: the hint says to run again once k3s promotes it, not to bring it back", () => {
    const learner = {
      nodes: vms.map((n) => clusterNode(vms, n)),
      members: members(vms).map((m) => (m.name.startsWith("s2-") ? { ...m, isLearner: true } : m))
    }
    const [again] = recheckQuorum([refusal!], { facts: learner })
    assert.strictEqual(again?.code, "k3s.quorum")
    assert.include(again?.hint ?? "", "s2 is a new etcd member")
    assert.notInclude(again?.hint ?? "", "bring s2 back")
  })

  it("when the members cannot be read again, the plan's refusal stands and says so", () => {
    const [again] = recheckQuorum([refusal!], { unreadable: "10.0.0.13: connection refused" })
    assert.strictEqual(again?.code, "k3s.quorum")
    assert.strictEqual(again?.message.startsWith(refusal?.message ?? "?"), true)
    assert.include(
      again?.message ?? "",
      "could not be read again at the end of the run (10.0.0.13: connection refused)"
    )
  })
})

describe("oneAtATime", () => {
  it("chains groups: each group's first action waits for the last action of the group before", () => {
    const action = (id: string, after: Array<string> = []): Action => ({
      _tag: "StartVm",
      id,
      node: "n",
      reason: "",
      after,
      vmid: 1,
      name: id
    })
    const chained = oneAtATime([action("a"), action("b", ["x"]), action("c"), action("d")], [["a", "b"], ["c"], ["d"]])
    assert.deepStrictEqual(
      chained.map((a) => [a.id, a.after]),
      [
        ["a", []],
        ["b", ["x"]],
        ["c", ["b"]],
        ["d", ["c"]]
      ]
    )
  })
})

describe("the guard in the plan", () => {
  it("reprovisioning a server keeps quorum: its rebuild removes the member through another Ready server", () => {
    const p = planOf(k3sDesired(vms), k3sObserved(vms, readyCluster(vms)), { reprovision: ["s1"] })
    assert.deepStrictEqual(steps(p), ["RecreateVm:s1", "JoinK3s:s1"])
    const recreate = byId(p, "pve-s1:vm:s1")
    assert.strictEqual(recreate?._tag === "RecreateVm" ? recreate.k3sCleanup : undefined, "server")
    assert.deepStrictEqual(recreate?._tag === "RecreateVm" ? recreate.k3sVia : undefined, { vm: "s2", ip: "10.0.0.12" })
    const join = byId(p, "pve-s1:k3s:s1")
    assert.deepStrictEqual(join?._tag === "JoinK3s" ? join.via : undefined, { vm: "s2", ip: "10.0.0.12" })
  })

  it("a VM homelab.yaml calls an agent whose Node is a server (an etcd member) is rebuilt as the server it is: the guard is asked and its member removed", () => {
    // s3 is an agent in homelab.yaml, but its k3s Node is a server holding an etcd member
    const d = k3sDesired(vms)
    const asAgent: typeof d = {
      ...d,
      nodes: d.nodes.map((n) =>
        n.name === "pve-s3" ? { ...n, vms: n.vms.map((vm) => ({ ...vm, role: "agent" as const })) } : n
      )
    }
    const stopped = vms.map((n) => observedVm(vms, n, n === "s3" ? { status: "stopped" } : {}))
    const ok = planOf(
      asAgent,
      k3sObserved(
        vms,
        readyCluster(vms, {}, (n) => (n === "s3" ? { ready: "Unknown" } : {})),
        { vms: stopped }
      )
    )
    const recreate = byId(ok, "pve-s3:vm:s3")
    assert.strictEqual(recreate?._tag, "RecreateVm", JSON.stringify(ok.findings))
    assert.strictEqual(recreate?._tag === "RecreateVm" ? recreate.k3sCleanup : undefined, "server")

    // with another server down, taking s3's member out would break quorum: not this run (s2 is brought back first)
    const down = readyCluster(vms, {}, (n) => (n === "s3" || n === "s2" ? { ready: "Unknown" } : {}))
    const refused = planOf(asAgent, k3sObserved(vms, down, { vms: stopped }))
    assert.isUndefined(byId(refused, "pve-s3:vm:s3"))
    const finding = refused.findings.find((f) => f.vm === "s3" && f.quorum !== undefined)
    assert.strictEqual(finding?.code, "k3s.quorum-later", JSON.stringify(refused.findings))
    assert.match(finding?.message ?? "", /^not rebuilding k3s server s3 this run: rebuild of s3 would leave 1 of 3/)
  })

  it("refuses to rebuild a server while another one is down; the rest of the plan goes on", () => {
    const o = k3sObserved(
      vms,
      readyCluster(vms, {}, (n) => (n === "s2" ? { ready: "Unknown" } : {}))
    )
    const p = planOf(k3sDesired(vms), o, { reprovision: ["s1"] })
    assert.deepStrictEqual(steps(p), ["JoinK3s:s2"], "only s2's own restart is planned")
    const refused = p.findings.find((f) => f.quorum !== undefined)
    assert.strictEqual(refused?.vm, "s1")
    assert.include(refused?.message ?? "", "it needs rebuilding: reprovision of s1 requested")
    assert.strictEqual(refused?.layer, "k3s", "s1 runs: only its k3s work waits")
    // this run starts k3s on s2 (its Node is not Ready): s1's rebuild is left to the next run
    assert.deepStrictEqual([refused?.code, refused?.effect], ["k3s.quorum-later", "deferred"])
    assert.include(refused?.message ?? "", "; this run brings s2 back first (join s2 (10.0.0.12) to k3s as a server)")
  })

  it("a refusal whose down server this plan brings back says so: left to the next run (deferred), not 'bring it back first'", () => {
    const v131 = "v1.31.5+k3s1"
    // s3's VM is stopped (the default policy rebuilds it) and its Node Unknown; an upgrade is asked for
    const o = k3sObserved(
      vms,
      readyCluster(vms, {}, (n) => (n === "s3" ? { ready: "Unknown" } : {})),
      { vms: vms.map((n) => observedVm(vms, n, n === "s3" ? { status: "stopped" } : {})) }
    )
    const p = planOf(k3sDesired(vms, { version: v131 }), o)
    assert.deepStrictEqual(steps(p), ["RecreateVm:s3", "JoinK3s:s3"])
    const refused = p.findings.filter((f) => f.quorum !== undefined)
    assert.deepStrictEqual(
      refused.map((f) => [f.code, f.effect, f.layer, f.vm, f.quorum?.action]),
      [["k3s.quorum-later", "deferred", "k3s", "s1", "upgrade"]]
    )
    const [later] = refused
    assert.match(
      later?.message ?? "",
      /^not upgrading k3s server s1 this run: upgrade of s1 would leave 1 of 3 etcd members healthy, quorum needs 2 \(s1-00000000 Ready, s2-00000001 Ready, s3-00000002 NotReady \(Unknown\)\); this run brings s3 back first \(recreate VM 1003 s3 on pve-s3\)$/
    )
    assert.strictEqual(
      later?.hint,
      "run apply again once s3 is a Ready server: the next run can upgrade s1 (one server out at a time)"
    )
    assert.notInclude(`${later?.message} ${later?.hint}`, "bring s3 back to Ready first")
    // the rollout that stops at s1 waits for the next run too
    const waits = p.findings.filter((f) => f.code === "k3s.upgrade-waits")
    assert.deepStrictEqual(
      waits.map((f) => [f.vm, f.effect, f.waitsFor, f.hint]),
      ["s2", "a1"].map((vm) => [
        vm,
        "deferred",
        "s1",
        "run apply again once s3 is a Ready server: the next run upgrades s1 and goes on from there"
      ])
    )
    // the end of the run asks again: s3 still down, the refusal stands as the guard says it, and the rollout with it
    const stillDown = {
      nodes: vms.map((n) => clusterNode(vms, n, n === "s3" ? { ready: "Unknown" } : {})),
      members: members(vms)
    }
    const again = recheckQuorum(p.findings, { facts: stillDown })
    assert.deepStrictEqual(
      again.map((f) => [f.code, f.effect, f.vm]),
      [
        ["k3s.quorum", "blocked", "s1"],
        ["k3s.upgrade-waits", "blocked", "s2"],
        ["k3s.upgrade-waits", "blocked", "a1"]
      ]
    )
    assert.include(again[0]?.hint ?? "", "bring s3 back to Ready first")
    assert.strictEqual(again[1]?.hint, "fix what keeps s1 from upgrading; the next run goes on from there")
    // s3 back: the upgrade and the rollout are the next run's
    const back = recheckQuorum(p.findings, {
      facts: { nodes: vms.map((n) => clusterNode(vms, n)), members: members(vms) }
    })
    assert.deepStrictEqual(
      back.map((f) => [f.code, f.effect, f.hint]),
      [
        [
          "k3s.quorum-later",
          "deferred",
          "run apply again: the next run can take s1 out of service (one server at a time)"
        ],
        ["k3s.upgrade-waits", "deferred", "run apply again: the next run upgrades s1 and goes on from there"],
        ["k3s.upgrade-waits", "deferred", "run apply again: the next run upgrades s1 and goes on from there"]
      ]
    )
  })

  it("a refusal whose down server this plan does not bring back stays blocked, naming it", () => {
    // s3's VM is protected: the plan leaves it stopped
    const o = k3sObserved(
      vms,
      readyCluster(vms, {}, (n) => (n === "s3" ? { ready: "Unknown" } : {})),
      { vms: vms.map((n) => observedVm(vms, n, n === "s3" ? { status: "stopped" } : {})) }
    )
    const p = planOf({ ...k3sDesired(vms, { version: "v1.31.5+k3s1" }), protect: ["s3"] }, o)
    const refused = p.findings.find((f) => f.quorum !== undefined)
    assert.deepStrictEqual([refused?.code, refused?.effect, refused?.vm], ["k3s.quorum", "blocked", "s1"])
    assert.include(refused?.hint ?? "", "bring s3 back to Ready first")
  })

  it("a paused server whose rebuild is refused is not in place: the refusal is on the vm layer", () => {
    const o = k3sObserved(
      vms,
      readyCluster(vms, {}, (n) => (n === "s2" ? { ready: "Unknown" } : {})),
      { vms: vms.map((n) => observedVm(vms, n, n === "s1" ? { status: "paused" } : {})) }
    )
    const p = planOf(k3sDesired(vms), o)
    const refused = p.findings.find((f) => f.quorum !== undefined)
    assert.strictEqual(refused?.vm, "s1")
    assert.strictEqual(refused?.code, "k3s.quorum-later", "this run starts k3s on s2 first")
    assert.strictEqual(refused?.layer, "vm")
    assert.include(refused?.message ?? "", "is paused")
    assert.deepStrictEqual(refused?.quorum?.action, "rebuild")
  })

  it("two server rebuilds in one run go one at a time: the second waits for the first one's rejoin", () => {
    const o = k3sObserved(vms, readyCluster(vms), {
      vms: vms.map((n) =>
        observedVm(vms, n, n === "s1" || n === "s3" ? { tags: ["homelab-managed", "homelab-rebuild"] } : {})
      )
    })
    const p = planOf(k3sDesired(vms, {}, 2), o)
    assert.deepStrictEqual(steps(p), ["RecreateVm:s1", "JoinK3s:s1", "RecreateVm:s3", "JoinK3s:s3"])
    assert.include(byId(p, "pve-s3:vm:s3")?.after ?? [], "pve-s1:k3s:s1")
  })

  it("a server VM that is gone while its Node and member remain: created again, its stale Node removed before it joins", () => {
    const o = k3sObserved(
      vms,
      readyCluster(vms, {}, (n) => (n === "s3" ? { ready: "Unknown" } : {})),
      {
        vms: vms.filter((n) => n !== "s3").map((n) => observedVm(vms, n))
      }
    )
    const p = planOf(k3sDesired(vms), o)
    assert.deepStrictEqual(steps(p), ["CreateVm:s3", "JoinK3s:s3"])
    const join = byId(p, "pve-s3:k3s:s3")
    assert.isTrue(join?._tag === "JoinK3s" && join.rejoin)
    assert.include(join?.reason ?? "", "the Node its old VM left is removed first")
  })

  it("while s1 and s3 are rebuilt, the steps of both go through s2, the server that stays up", () => {
    const o = k3sObserved(vms, readyCluster(vms), {
      vms: vms.map((n) =>
        observedVm(vms, n, n === "s1" || n === "s3" ? { tags: ["homelab-managed", "homelab-rebuild"] } : {})
      )
    })
    const p = planOf(k3sDesired(vms, {}, 2), o)
    const vias = p.actions.map((a) =>
      a._tag === "RecreateVm" ? `${a.spec.name} ${a.k3sVia?.vm}` : a._tag === "JoinK3s" ? `${a.vm} ${a.via?.vm}` : ""
    )
    assert.deepStrictEqual(vias, ["s1 s2", "s1 s2", "s3 s2", "s3 s2"])
  })
})
