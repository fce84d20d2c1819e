import { assert, describe, it } from "@effect/vitest"
import type { ClusterNode } from "@homelab/k3s-join"
import type { Finding } from "../src/Action.js"
import { recheckMembership } from "../src/MembershipAtEnd.js"
import type { K3sCandidate } from "../src/PlanK3s.js"

const unknown = (vm: string, node: string): Finding => ({
  code: "k3s.unavailable",
  effect: "blocked",
  layer: "k3s",
  node,
  vm,
  vmid: 1001,
  message: `membership of ${vm} unknown: no server VM answers for the k3s cluster`,
  hint: "bring the server VMs that are down back (`qm start 1001` on pve)"
})

const candidate = (name: string, node: string, role: "server" | "agent" = "server"): K3sCandidate => ({
  name,
  node,
  vmid: 1001,
  role,
  ip: `10.0.0.${name.length}`,
  rebuilt: false
})

const clusterNode = (c: K3sCandidate, over: Partial<ClusterNode> = {}): ClusterNode => ({
  name: c.name,
  roleLabels: c.role === "server" ? ["control-plane", "etcd"] : [],
  role: c.role,
  ready: "True",
  readyDetail: "",
  internalIPs: c.ip === undefined ? [] : [c.ip],
  kubeletVersion: "v1.30.5+k3s1",
  systemUUID: undefined,
  deleting: false,
  etcdMemberName: undefined,
  ...over
})

describe("recheckMembership", () => {
  const s1 = candidate("s1", "pve")
  const s2 = candidate("s22", "fawn")
  const findings = [unknown("s1", "pve"), unknown("s22", "fawn")]
  const context = { candidates: new Map([s1, s2].map((c) => [c.name, c] as const)), broughtBack: ["s1"] }

  it("a Ready member with the right role is converged; one that is not Ready is said as it is now, for the next run", () => {
    const now = { nodes: [clusterNode(s1), clusterNode(s2, { ready: "Unknown", readyDetail: "NodeStatusUnknown" })] }
    const out = recheckMembership(findings, now, context)
    assert.deepStrictEqual(
      out.map((f) => `${f.vm} ${f.code} ${f.effect} ${f.layer}`),
      ["s22 k3s.join-later deferred k3s"]
    )
    assert.match(
      out[0]?.message ?? "",
      /^k3s Node s22 is not Ready yet \(Unknown: NodeStatusUnknown\) now that this run brought s1 back: the next run joins it/
    )
    assert.notInclude(JSON.stringify(out), "bring the server VMs that are down back")
  })

  it("not a member, or the wrong role: not converged (never taken for a member)", () => {
    const out = recheckMembership(findings, { nodes: [clusterNode(s1, { roleLabels: [], role: "agent" })] }, context)
    assert.deepStrictEqual(
      out.map((f) => `${f.vm} ${f.code} ${f.effect}`),
      ["s1 k3s.role-mismatch blocked", "s22 k3s.join-later deferred"]
    )
    assert.include(out[1]?.message ?? "", "s22 is not a member of the k3s cluster")
  })

  it("a Ready member on another version than k3s.version is left for the next run's upgrade", () => {
    const out = recheckMembership(
      findings,
      { nodes: [clusterNode(s1), clusterNode(s2)] },
      {
        ...context,
        version: "v1.31.5+k3s1"
      }
    )
    assert.deepStrictEqual(
      out.map((f) => `${f.vm} ${f.code}`),
      ["s1 k3s.upgrade-later", "s22 k3s.upgrade-later"]
    )
  })

  it("the cluster still does not answer: the finding stands, saying the servers were brought back", () => {
    const out = recheckMembership(findings, { unreadable: "etcdserver: request timed out" }, context)
    assert.deepStrictEqual(
      out.map((f) => `${f.vm} ${f.code} ${f.effect}`),
      ["s1 k3s.unavailable blocked", "s22 k3s.unavailable blocked"]
    )
    assert.include(out[0]?.message ?? "", "this run brought s1 back, but the k3s cluster did not answer yet")
    assert.notInclude(out[0]?.hint ?? "", "bring the server VMs that are down back")
  })

  it("a VM that does not run (not a candidate) and other findings are left as they are", () => {
    const other: Finding = { code: "vm.locked", effect: "deferred", layer: "vm", node: "pve", message: "locked" }
    const out = recheckMembership([unknown("s9", "x"), other], { nodes: [] }, context)
    assert.deepStrictEqual(out, [unknown("s9", "x"), other])
  })
})
