import { assert, describe, it } from "@effect/vitest"
import type { ClusterNode } from "@homelab/k3s-join"
import { type K3sCandidate, type K3sStep, planMembership } from "../src/PlanK3s.js"

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

const step = (s: K3sStep): string =>
  s._tag === "Member" ? "member" : s._tag === "Join" ? (s.rejoin ? "rejoin" : "join") : s.finding.code

describe("planMembership", () => {
  it("a Ready member with the right role and IP needs nothing", () => {
    assert.strictEqual(step(planMembership(vm("k3s-vm-pve"), [node("k3s-vm-pve")])), "member")
  })

  it("a server without a Node whose k3s waits for a restart (its etcd member removed): the join's reason says apply restarts it", () => {
    const line = "This node has been removed from the cluster - please restart k3s to rejoin the cluster"
    const s = planMembership(vm("k3s-vm-pve", { role: "server", removedMember: line }), [])
    assert.strictEqual(step(s), "join")
    assert.strictEqual(
      s._tag === "Join" ? s.reason : "",
      "k3s-vm-pve is not in the cluster: the cluster removed its etcd member (its Node was deleted), and k3s there runs on without etcd until it is restarted; apply restarts k3s on k3s-vm-pve, which joins again as a new member"
    )
    // a rebuilt VM is made again: nothing of its k3s is left to restart
    const rebuilt = planMembership(vm("k3s-vm-pve", { role: "server", removedMember: line, rebuilt: true }), [])
    assert.strictEqual(
      rebuilt._tag === "Join" ? rebuilt.reason : "",
      "k3s-vm-pve was rebuilt and is not in the cluster"
    )
  })

  it("an absent VM joins", () => {
    const s = planMembership(vm("k3s-vm-pve"), [])
    assert.strictEqual(step(s), "join")
    assert.include(s._tag === "Join" ? s.reason : "", "not in the cluster")
  })

  it("a VM we rebuilt rejoins with cleanup when its old Node lingers with another IP", () => {
    const s = planMembership(vm("k3s-vm-pve", { rebuilt: true, ip: "10.0.0.99" }), [node("k3s-vm-pve")])
    assert.strictEqual(step(s), "rejoin")
    assert.include(s._tag === "Join" ? s.reason : "", "rebuilt")
  })

  it("a Node with another IP is reported (blocked), not cleaned up, when we did not rebuild the VM", () => {
    const s = planMembership(vm("k3s-vm-pve", { ip: "10.0.0.99" }), [node("k3s-vm-pve")])
    assert.strictEqual(step(s), "k3s.identity-mismatch")
    assert.include(s._tag === "Finding" ? s.finding.message : "", "10.0.0.11")
    assert.strictEqual(s._tag === "Finding" ? s.finding.effect : undefined, "blocked")
  })

  it("a Node with the VM's IP but another system UUID than the VM's SMBIOS UUID is another machine: reported", () => {
    const uuid = "0b0e5d4e-96e3-4b8a-9a57-3c2f1f6f0a01"
    const other = "7d1c2a3b-0000-4000-8000-000000000002"
    const same = planMembership(vm("k3s-vm-pve", { systemUUID: uuid }), [node("k3s-vm-pve", { systemUUID: uuid })])
    assert.strictEqual(step(same), "member")
    const s = planMembership(vm("k3s-vm-pve", { systemUUID: uuid }), [node("k3s-vm-pve", { systemUUID: other })])
    assert.strictEqual(step(s), "k3s.identity-mismatch")
    assert.include(s._tag === "Finding" ? s.finding.message : "", other)
  })

  it("a role mismatch is reported, never acted on, even for a rebuilt VM; the fix rebuilds that VM alone, by name", () => {
    const s = planMembership(vm("k3s-vm-pve-b", { rebuilt: true }), [node("k3s-vm-pve-b", { role: "server" })])
    assert.strictEqual(step(s), "k3s.role-mismatch")
    // `homelab reprovision pve` would rebuild every VM of the node, the first one first
    assert.include(s._tag === "Finding" ? s.finding.hint : "", "`homelab reprovision k3s-vm-pve-b`")
  })

  it("NotReady (Unknown is not False) of a matching VM: ensureMember starts k3s and waits for Ready", () => {
    const s = planMembership(vm("k3s-vm-pve"), [node("k3s-vm-pve", { ready: "Unknown" })])
    assert.strictEqual(step(s), "join")
    assert.include(s._tag === "Join" ? s.reason : "", "Unknown")
  })

  it("a rebuilt VM that already rejoined only has its mark cleared (a join that is a no-op)", () => {
    assert.strictEqual(step(planMembership(vm("k3s-vm-pve", { rebuilt: true }), [node("k3s-vm-pve")])), "join")
  })

  it("a running VM whose agent reports no IP cannot join: blocked, pointing at the guest agent", () => {
    const s = planMembership(vm("k3s-vm-pve", { ip: undefined }), [])
    assert.strictEqual(step(s), "k3s.no-ip")
    assert.include(s._tag === "Finding" ? (s.finding.hint ?? "") : "", "qemu-guest-agent")
  })

  it("a member on another version is a member: its version is for the rollout to judge", () => {
    const s = planMembership(vm("k3s-vm-pve"), [node("k3s-vm-pve")])
    assert.strictEqual(step(s), "member")
    assert.strictEqual(s._tag === "Member" ? s.node.kubeletVersion : undefined, "v1.30.5+k3s1")
  })
})
