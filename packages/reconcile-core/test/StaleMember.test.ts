import { assert, describe, it } from "@effect/vitest"
import { memberWithoutNode, orphanMembersOf, StaleEtcdMember } from "@homelab/k3s-join"
import { etcdctlRemove, staleMemberFinding } from "../src/StaleMember.js"
import {
  byId,
  clusterNode,
  ipOf,
  k3sDesired,
  k3sObserved,
  members,
  names,
  observedVm,
  planOf,
  readyCluster,
  steps,
  vmidOf
} from "./k3sFixture.js"

const vms = names(3, 1)

/** The cluster of `vms`, all Ready, but the Node of `vm` gone (its etcd member still listed). */
const withoutNode = (vm: string) => {
  const cluster = readyCluster(vms)
  return cluster._tag === "Nodes" ? { ...cluster, nodes: cluster.nodes.filter((n) => n.name !== vm) } : cluster
}

describe("staleMemberFinding", () => {
  it("a member of the server's name that no Node owns holds its join back, with the member's hex ID for etcdctl", () => {
    const facts = { nodes: vms.filter((n) => n !== "s3").map((n) => clusterNode(vms, n)), members: members(vms) }
    const finding = staleMemberFinding(facts, { node: "pve-s3", vm: "s3" }, "s1")
    assert.strictEqual(finding?.code, "k3s.stale-member")
    assert.strictEqual(finding?.effect, "blocked")
    assert.include(finding?.message ?? "", "etcd still has the member s3-00000002 (ID 3ea) of an earlier s3")
    assert.include(finding?.message ?? "", "no Node owns it")
    assert.include(
      finding?.hint ?? "",
      `on s1 with an etcdctl of your own (k3s ships none): \`${etcdctlRemove("3ea")}\``
    )
  })

  it("says it in the words of k3s-join's refusal of that join (StaleEtcdMember), without what the join did not do", () => {
    const facts = { nodes: vms.filter((n) => n !== "s3").map((n) => clusterNode(vms, n)), members: members(vms) }
    const refused = new StaleEtcdMember({
      node: "s3",
      member: "s3-00000002",
      memberId: "3ea",
      peerURL: null,
      server: "s1"
    })
    assert.strictEqual(
      staleMemberFinding(facts, { node: "pve-s3", vm: "s3" }, "s1")?.message,
      `not joining k3s server s3: ${refused.refusal}`
    )
    assert.strictEqual(refused.message, `${refused.refusal}; nothing was installed on s3`)
  })

  it("a member registered with the server's IP under another name counts too; a member a Node owns does not", () => {
    const facts = {
      nodes: vms.filter((n) => n !== "s3").map((n) => clusterNode(vms, n)),
      members: [
        ...members(vms).filter((m) => !m.name.startsWith("s3-")),
        {
          id: "77",
          name: "old-host-0a0b0c0d",
          peerURL: `https://${ipOf(vms, "s3")}:2380`,
          clientURL: undefined,
          isLearner: false
        }
      ]
    }
    assert.include(
      staleMemberFinding(facts, { node: "pve-s3", vm: "s3", ip: ipOf(vms, "s3") }, "s1")?.message ?? "",
      `old-host-0a0b0c0d (ID 4d, peer https://${ipOf(vms, "s3")}:2380)`
    )
    assert.isUndefined(staleMemberFinding(facts, { node: "pve-s3", vm: "s3" }, "s1"), "without its IP: by name only")
    const owned = { nodes: vms.map((n) => clusterNode(vms, n)), members: members(vms) }
    assert.isUndefined(staleMemberFinding(owned, { node: "pve-s3", vm: "s3" }, "s1"))
    assert.isUndefined(staleMemberFinding(undefined, { node: "pve-s3", vm: "s3" }, "s1"))
  })
})

describe("a server whose old Node was force-deleted, its etcd member left (k3s.md §5.3)", () => {
  it("its VM is gone: created again, but its join is blocked by a finding naming the member, the server and the fix", () => {
    const cluster = withoutNode("s3")
    const o = k3sObserved(vms, cluster, { vms: vms.filter((n) => n !== "s3").map((n) => observedVm(vms, n)) })
    const p = planOf(k3sDesired(vms), o)
    assert.deepStrictEqual(steps(p), ["CreateVm:s3"])
    const finding = p.findings.find((f) => f.code === "k3s.stale-member")
    assert.deepStrictEqual([finding?.effect, finding?.vm, finding?.node], ["blocked", "s3", "pve-s3"])
    assert.include(finding?.message ?? "", "not joining k3s server s3: etcd still has the member s3-00000002")
    assert.include(finding?.hint ?? "", "member remove 3ea")
  })

  it("its VM runs without k3s: no join, the same finding; a server whose Node is still there rejoins as before", () => {
    const cluster = withoutNode("s3")
    const p = planOf(k3sDesired(vms), k3sObserved(vms, cluster))
    assert.deepStrictEqual(steps(p), [])
    assert.deepStrictEqual(
      p.findings.map((f) => f.code),
      ["k3s.stale-member"]
    )
    // its Node still there (NotReady, the VM gone): the join removes the Node, and k3s its member with it
    const withNode = k3sObserved(
      vms,
      readyCluster(vms, {}, (n) => (n === "s3" ? { ready: "Unknown" } : {})),
      {
        vms: vms.filter((n) => n !== "s3").map((n) => observedVm(vms, n))
      }
    )
    const rejoin = planOf(k3sDesired(vms), withNode)
    assert.deepStrictEqual(steps(rejoin), ["CreateVm:s3", "JoinK3s:s3"])
    const join = byId(rejoin, "pve-s3:k3s:s3")
    assert.isTrue(join?._tag === "JoinK3s" && join.rejoin)
  })
})

describe("a rebuild of a server whose old Node was force-deleted, its etcd member left", () => {
  it("is not planned: nothing is stopped or destroyed, a blocked finding in removeServer's words with the etcdctl fix", () => {
    // s3 runs (its k3s stopped, say) and is to be rebuilt; its Node was deleted with its finalizers removed
    const cluster = withoutNode("s3")
    const p = planOf(k3sDesired(vms), k3sObserved(vms, cluster), { reprovision: ["s3"] })
    assert.deepStrictEqual(steps(p), [])
    const stale = p.findings.filter((f) => f.code === "k3s.stale-member")
    assert.strictEqual(stale.length, 1)
    const finding = stale[0]
    assert.deepStrictEqual([finding?.effect, finding?.vm, finding?.node], ["blocked", "s3", "pve-s3"])
    const member = members(vms).find((m) => m.name.startsWith("s3-"))
    assert.ok(member !== undefined)
    assert.strictEqual(
      finding?.message,
      `not rebuilding k3s server s3 (it needs rebuilding: reprovision of s3 requested): ${memberWithoutNode("s3", [member])}; nothing is stopped or destroyed`
    )
    assert.include(finding?.message ?? "", "etcd still lists the member s3-00000002 (ID 3ea) of s3")
    assert.include(
      finding?.hint ?? "",
      `on s1 with an etcdctl of your own (k3s ships none): \`${etcdctlRemove("3ea")}\``
    )
    // with its Node there, the rebuild goes ahead as before (removeServer deletes the Node, k3s the member with it)
    const withNode = planOf(k3sDesired(vms), k3sObserved(vms, readyCluster(vms)), { reprovision: ["s3"] })
    assert.deepStrictEqual(steps(withNode), ["RecreateVm:s3", "JoinK3s:s3"])
  })
})

/**
 * A server whose k3s is joining right now (k3s.md §3.5): its k3s added its etcd member as a learner
 * (`<node>-<8 hex>`, its IP as the peer address), and its Node registers only once the learner is promoted. Seen in
 * those seconds, the member has no Node, but it is not stale: removing it would break a join that goes well.
 */
describe("a server joining right now: its member a learner, its Node not registered yet", () => {
  /** The cluster of `vms`, all Ready, but s3 without a Node and its member a new learner `s3-1a2b3c4d`. */
  const joiningCluster = () => {
    const cluster = withoutNode("s3")
    if (cluster._tag !== "Nodes") return cluster
    return {
      ...cluster,
      members: [
        ...members(vms).filter((m) => !m.name.startsWith("s3-")),
        {
          id: "4660",
          name: "s3-1a2b3c4d",
          peerURL: `https://${ipOf(vms, "s3")}:2380`,
          clientURL: `https://${ipOf(vms, "s3")}:2379`,
          isLearner: true
        }
      ]
    }
  }

  it("is not a stale member: a deferred finding that it joins, to run again once its Node is Ready, and no etcdctl", () => {
    const cluster = joiningCluster()
    assert.ok(cluster._tag === "Nodes")
    const facts = { nodes: cluster.nodes, members: cluster.members ?? [] }
    assert.deepStrictEqual(orphanMembersOf(facts, "s3", ipOf(vms, "s3")), [])
    const finding = staleMemberFinding(facts, { node: "pve-s3", vm: "s3", ip: ipOf(vms, "s3") }, "s1")
    assert.strictEqual(finding?.code, "k3s.member-joining")
    assert.strictEqual(finding?.effect, "deferred")
    assert.include(
      finding?.message ?? "",
      "s3 is joining etcd right now: s3-1a2b3c4d (ID 1234, peer https://10.0.0.13:2380) is a learner"
    )
    assert.include(finding?.hint ?? "", "run homelab again once s3's Node is Ready")
    assert.notInclude(`${finding?.message} ${finding?.hint}`, "etcdctl")
    assert.notInclude(`${finding?.message} ${finding?.hint}`, "member remove")
  })

  it("the plan: no join and no stale-member finding, only that it joins (deferred, nothing blocked)", () => {
    const p = planOf(k3sDesired(vms), k3sObserved(vms, joiningCluster()))
    assert.deepStrictEqual(steps(p), [])
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.effect, f.vm]),
      [["k3s.member-joining", "deferred", "s3"]]
    )
    assert.notInclude(JSON.stringify(p.findings), "member remove")
  })

  it("its VM gone (a join cut short by the VM's destruction): no machine joins as it, so the learner is stale; the VM is created again and its join blocked, with the etcdctl fix", () => {
    const o = k3sObserved(vms, joiningCluster(), { vms: vms.filter((n) => n !== "s3").map((n) => observedVm(vms, n)) })
    const p = planOf(k3sDesired(vms), o)
    assert.deepStrictEqual(steps(p), ["CreateVm:s3"])
    const finding = p.findings.find((f) => f.code === "k3s.stale-member")
    assert.deepStrictEqual([finding?.effect, finding?.vm], ["blocked", "s3"])
    assert.include(finding?.message ?? "", "s3-1a2b3c4d")
    assert.include(finding?.hint ?? "", "member remove 1234")
    assert.include(finding?.hint ?? "", "or wait: k3s on the etcd leader removes a learner")
    assert.isUndefined(p.findings.find((f) => f.code === "k3s.member-joining"))
  })

  it("a rebuild asked for meanwhile waits for its Node: nothing stopped or destroyed, no etcdctl", () => {
    const p = planOf(k3sDesired(vms), k3sObserved(vms, joiningCluster()), { reprovision: ["s3"] })
    assert.deepStrictEqual(steps(p), [])
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.effect]),
      [["k3s.member-joining", "deferred"]]
    )
    assert.include(
      p.findings[0]?.message ?? "",
      "not rebuilding it this run (it needs rebuilding: reprovision of s3 requested)"
    )
    assert.notInclude(JSON.stringify(p.findings), "member remove")
  })

  it("a member of its name that is no learner is still stale, beside a learner or not", () => {
    const cluster = joiningCluster()
    assert.ok(cluster._tag === "Nodes")
    const facts = {
      nodes: cluster.nodes,
      members: [...(cluster.members ?? []), ...members(vms).filter((m) => m.name.startsWith("s3-"))]
    }
    const finding = staleMemberFinding(facts, { node: "pve-s3", vm: "s3", ip: ipOf(vms, "s3") }, "s1")
    assert.strictEqual(finding?.code, "k3s.stale-member")
    assert.include(finding?.hint ?? "", "member remove 3ea")
    // a voter is never removed by k3s by itself: no waiting it out
    assert.notInclude(finding?.hint ?? "", "or wait")
  })
})

/**
 * A learner of a running server VM's name that no Node owns, where that VM's k3s, as observe read it over SSH, is not
 * joining as it: the join was cut short (`systemctl stop k3s`, `k3s-uninstall.sh`, an install that ended early), or the
 * learner is left from an earlier attempt under another `<host>-<8 hex>` name. It is stale, not "joining" for ever.
 */
describe("a learner of a running server VM whose k3s is not joining as it", () => {
  const learner = {
    id: "4660",
    name: "s3-1a2b3c4d",
    peerURL: `https://${ipOf(vms, "s3")}:2380`,
    clientURL: `https://${ipOf(vms, "s3")}:2379`,
    isLearner: true
  }
  const withUnit = (unit: ServerUnitFields, joining?: string) => {
    const cluster = withoutNode("s3")
    assert.ok(cluster._tag === "Nodes")
    const line = `time="2026-12-07T21:00:01Z" level=info msg="Adding member ${joining}=https://${ipOf(vms, "s3")}:2380 to etcd cluster [s1-00000000=https://10.0.0.11:2380]"`
    return k3sObserved(vms, {
      ...cluster,
      members: [...members(vms).filter((m) => !m.name.startsWith("s3-")), learner],
      serverUnits: [{ vm: "s3", vmid: vmidOf(vms, "s3"), ...unit }],
      ...(joining === undefined
        ? {}
        : { joiningMembers: [{ vm: "s3", vmid: vmidOf(vms, "s3"), member: joining, line }] })
    })
  }

  it("its k3s not running (the join cut short): a blocked stale member that says why, with the etcdctl fix; no join", () => {
    for (const state of ["inactive", "failed"]) {
      const p = planOf(k3sDesired(vms), withUnit({ state, journalComplete: true }))
      assert.deepStrictEqual(steps(p), [])
      assert.deepStrictEqual(
        p.findings.map((f) => [f.code, f.effect, f.vm]),
        [["k3s.stale-member", "blocked", "s3"]]
      )
      assert.include(
        p.findings[0]?.message ?? "",
        `; s3-1a2b3c4d is a learner, but no join goes on as it: k3s on s3 is not running (its unit is ${state})`
      )
      assert.include(p.findings[0]?.hint ?? "", `\`${etcdctlRemove("1234")}\``)
      // or k3s's own eviction of a learner that makes no progress (learnerMaxStallTime)
      assert.include(
        p.findings[0]?.hint ?? "",
        "; or wait: k3s on the etcd leader removes a learner that has made no progress for 5 minutes by itself (its journal says `Removed learner s3-1a2b3c4d from etcd cluster`), and the next apply joins s3 then"
      )
    }
  })

  it("its k3s stopped during the join (systemctl stop k3s), its data dir that learner's: the join starts it again, no finding", () => {
    for (const state of ["inactive", "failed"]) {
      const p = planOf(k3sDesired(vms), withUnit({ state, journalComplete: true, member: "s3-1a2b3c4d" }))
      assert.deepStrictEqual(
        p.findings.map((f) => f.code),
        []
      )
      assert.deepStrictEqual(steps(p), ["JoinK3s:s3"])
    }
    // its data dir of another member (an earlier attempt's): that learner is stale as before
    const other = planOf(k3sDesired(vms), withUnit({ state: "inactive", journalComplete: true, member: "s3-ffffffff" }))
    assert.deepStrictEqual(
      other.findings.map((f) => [f.code, f.effect]),
      [["k3s.stale-member", "blocked"]]
    )
  })

  it("its k3s running, its journal since it started all there and showing no join as that learner: stale", () => {
    for (const joining of [undefined, "s3-ffffffff"]) {
      const p = planOf(k3sDesired(vms), withUnit({ state: "activating", journalComplete: true }, joining))
      assert.deepStrictEqual(
        p.findings.map((f) => [f.code, f.effect]),
        [["k3s.stale-member", "blocked"]]
      )
      assert.include(
        p.findings[0]?.message ?? "",
        "no join goes on as it: its journal since k3s on s3 last started shows no join as that member"
      )
      assert.include(p.findings[0]?.hint ?? "", "member remove 1234")
    }
  })

  it("its journal showing the join as that learner: joining, as before (deferred, no etcdctl)", () => {
    const p = planOf(k3sDesired(vms), withUnit({ state: "activating", journalComplete: true }, "s3-1a2b3c4d"))
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.effect]),
      [["k3s.member-joining", "deferred"]]
    )
    assert.notInclude(JSON.stringify(p.findings), "member remove")
  })

  it("asked to be rebuilt (homelab reprovision): a join going on as that learner holds the rebuild back (joining); a learner no join goes on as is stale, with `systemctl start k3s` offered only when its data dir is that learner's", () => {
    const joining = planOf(k3sDesired(vms), withUnit({ state: "activating", journalComplete: true }, "s3-1a2b3c4d"), {
      reprovision: ["s3"]
    })
    assert.deepStrictEqual(steps(joining), [])
    assert.deepStrictEqual(
      joining.findings.map((f) => [f.code, f.effect]),
      [["k3s.member-joining", "deferred"]]
    )
    for (const [unit, startOffered] of [
      [{ state: "inactive", journalComplete: true, member: "s3-1a2b3c4d" }, true],
      [{ state: "inactive", journalComplete: true }, false],
      [{ state: "activating", journalComplete: true }, false]
    ] as const) {
      const p = planOf(k3sDesired(vms), withUnit(unit), { reprovision: ["s3"] })
      assert.deepStrictEqual(steps(p), [])
      assert.deepStrictEqual(
        p.findings.map((f) => [f.code, f.effect, f.layer]),
        [["k3s.stale-member", "blocked", "k3s"]]
      )
      assert.include(p.findings[0]?.message ?? "", "not rebuilding it this run (it needs rebuilding:")
      assert.include(p.findings[0]?.hint ?? "", "member remove 1234`, and the next apply rebuilds s3 then")
      assert.strictEqual((p.findings[0]?.hint ?? "").includes("sudo systemctl start k3s"), startOffered)
    }
  })

  it("its k3s not read (SSH down), or a journal that does not show which member it joins as: joining (not guessed), and it says so", () => {
    const unread = planOf(k3sDesired(vms), withUnit({ error: "ssh: connect to 10.0.0.13:22: connection refused" }))
    assert.deepStrictEqual(
      unread.findings.map((f) => [f.code, f.effect]),
      [["k3s.member-joining", "deferred"]]
    )
    assert.include(
      unread.findings[0]?.message ?? "",
      "(its k3s could not be read: ssh: connect to 10.0.0.13:22: connection refused; homelab cannot tell whether that join still goes on)"
    )
    const partial = planOf(k3sDesired(vms), withUnit({ state: "active", journalComplete: false }))
    assert.deepStrictEqual(
      partial.findings.map((f) => [f.code, f.effect]),
      [["k3s.member-joining", "deferred"]]
    )
    assert.include(
      partial.findings[0]?.message ?? "",
      "(its journal since k3s last started does not show which member it joins as)"
    )
    assert.notInclude(JSON.stringify([unread.findings, partial.findings]), "member remove")
  })
})

type ServerUnitFields =
  | { readonly state: string; readonly journalComplete: boolean; readonly member?: string }
  | { readonly error: string }

/**
 * The seconds after its learner was promoted, before its Node registers: a voting member without a Node, as a stale
 * one looks, but the VM's own k3s added it since it started (its journal: `Adding member <name>=<peer URL>`).
 */
describe("a server joining right now: its member promoted already, its Node not registered yet", () => {
  const promoted = {
    id: "4660",
    name: "s3-1a2b3c4d",
    peerURL: `https://${ipOf(vms, "s3")}:2380`,
    clientURL: undefined,
    isLearner: false
  }
  const facts = {
    nodes: vms.filter((n) => n !== "s3").map((n) => clusterNode(vms, n)),
    members: [...members(vms).filter((m) => !m.name.startsWith("s3-")), promoted]
  }
  const line = `time="2026-12-07T21:00:01Z" level=info msg="Adding member s3-1a2b3c4d=https://${ipOf(vms, "s3")}:2380 to etcd cluster [s1-00000000=https://10.0.0.11:2380]"`

  it("with its journal's member: joining (deferred, no etcdctl); without it, stale as before", () => {
    const vm = { node: "pve-s3", vm: "s3", ip: ipOf(vms, "s3") }
    const joining = staleMemberFinding(facts, { ...vm, joining: { member: "s3-1a2b3c4d", line } }, "s1")
    assert.deepStrictEqual([joining?.code, joining?.effect], ["k3s.member-joining", "deferred"])
    assert.include(
      joining?.message ?? "",
      `s3 is joining etcd right now: its k3s added the member s3-1a2b3c4d (ID 1234, peer https://10.0.0.13:2380) for itself since it started (its journal: ${line})`
    )
    assert.notInclude(`${joining?.message} ${joining?.hint}`, "member remove")
    // another member's name in its journal does not make this one joining
    const other = staleMemberFinding(facts, { ...vm, joining: { member: "s3-ffffffff", line } }, "s1")
    assert.strictEqual(other?.code, "k3s.stale-member")
    assert.strictEqual(staleMemberFinding(facts, vm, "s1")?.code, "k3s.stale-member")
  })
})
