import { assert, describe, it } from "@effect/vitest"
import type { ClusterNode } from "@homelab/k3s-join"
import { type K3sCandidate, planK3s } from "../src/PlanK3s.js"

const node = (name: string, over: Partial<ClusterNode> = {}): ClusterNode => ({
  name,
  roleLabels: [],
  role: "agent",
  ready: "True",
  readyDetail: "",
  internalIPs: ["10.0.0.11"],
  kubeletVersion: "v1.30.5+k3s1",
  systemUUID: undefined,
  deleting: false,
  etcdMemberName: undefined,
  ...over
})

const vm = (name: string, over: Partial<K3sCandidate> = {}): K3sCandidate => ({
  name,
  node: "pve",
  vmid: 1001,
  role: "agent",
  ip: "10.0.0.11",
  rebuilt: false,
  ...over
})

const server = { serverHost: "10.0.0.2" }
const summary = (p: ReturnType<typeof planK3s>) => ({
  actions: p.actions.map((a) => `${a.vm}:${a.rejoin ? "rejoin" : "join"}`),
  findings: p.findings.map((f) => `${f.vm}:${f.code}`)
})

describe("planK3s", () => {
  it("a Ready member with the right role and IP needs nothing", () => {
    assert.deepStrictEqual(summary(planK3s([vm("k3s-vm-pve")], [node("k3s-vm-pve")], server)), {
      actions: [],
      findings: []
    })
  })

  it("an absent VM joins; the configured server itself is never a candidate", () => {
    const p = planK3s([vm("k3s-vm-pve"), vm("k3s-server", { ip: "10.0.0.2" })], [], server)
    assert.deepStrictEqual(summary(p), { actions: ["k3s-vm-pve:join"], findings: [] })
    assert.include(p.actions[0]?.reason ?? "", "not in the cluster")
  })

  it("a VM we rebuilt rejoins with cleanup when its old Node lingers with another IP", () => {
    const p = planK3s([vm("k3s-vm-pve", { rebuilt: true, ip: "10.0.0.99" })], [node("k3s-vm-pve")], server)
    assert.deepStrictEqual(summary(p), { actions: ["k3s-vm-pve:rejoin"], findings: [] })
    assert.include(p.actions[0]?.reason ?? "", "rebuilt")
  })

  it("a Node with another IP is reported, not cleaned up, when we did not rebuild the VM", () => {
    const p = planK3s([vm("k3s-vm-pve", { ip: "10.0.0.99" })], [node("k3s-vm-pve")], server)
    assert.deepStrictEqual(summary(p), { actions: [], findings: ["k3s-vm-pve:k3s.identity-mismatch"] })
    assert.include(p.findings[0]?.message ?? "", "10.0.0.11")
  })

  it("a role mismatch is reported, never acted on, even for a rebuilt VM", () => {
    const p = planK3s([vm("k3s-vm-pve", { rebuilt: true })], [node("k3s-vm-pve", { role: "server" })], server)
    assert.deepStrictEqual(summary(p), { actions: [], findings: ["k3s-vm-pve:k3s.role-mismatch"] })
  })

  it("NotReady (Unknown is not False) is reported for a VM we did not rebuild", () => {
    const p = planK3s([vm("k3s-vm-pve")], [node("k3s-vm-pve", { ready: "Unknown" })], server)
    assert.deepStrictEqual(summary(p), { actions: [], findings: ["k3s-vm-pve:k3s.not-ready"] })
    assert.include(p.findings[0]?.message ?? "", "Unknown")
  })

  it("a rebuilt VM that already rejoined only has its mark cleared (a join that is a no-op)", () => {
    const p = planK3s([vm("k3s-vm-pve", { rebuilt: true })], [node("k3s-vm-pve")], server)
    assert.deepStrictEqual(summary(p), { actions: ["k3s-vm-pve:join"], findings: [] })
  })

  it("a VM without an IP yet is reported and joined next run", () => {
    const p = planK3s([vm("k3s-vm-pve", { ip: undefined })], [], server)
    assert.deepStrictEqual(summary(p), { actions: [], findings: ["k3s-vm-pve:k3s.no-ip"] })
  })

  it("servers are planned before agents", () => {
    const p = planK3s(
      [vm("a", { ip: "10.0.0.21" }), vm("s", { role: "server", ip: "10.0.0.22" }), vm("b", { ip: "10.0.0.23" })],
      [],
      server
    )
    assert.deepStrictEqual(
      p.actions.map((a) => a.vm),
      ["s", "a", "b"]
    )
  })
})
