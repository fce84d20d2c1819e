import { assert, describe, it } from "@effect/vitest"
import { type ClusterNode, memberIdHex, memberWithoutNode } from "@homelab/k3s-join"
import { HealthPolicy } from "@homelab/vm-health"
import * as Effect from "effect/Effect"
import { applyVerdict, assess, planVerdict, settle } from "../src/Convergence.js"
import type { Desired, DesiredNode } from "../src/Desired.js"
import type { Observed, ObservedNode, ObservedVm, VmDetails } from "../src/Observed.js"
import { findOrphans } from "../src/Orphans.js"
import { detailsNeeded, plan } from "../src/Plan.js"
import { labSsh, mutatingRequests, reconcile, simVms, startLab } from "./lab.js"
import { k3sState, memberVm, teardownLab, teardownNet, teardownScenario, teardownSteps } from "./teardownFixture.js"

const GiB = 1024 ** 3

const desiredNode = (name: string, vms = [`k3s-vm-${name}`]): DesiredNode => ({
  name,
  cpuRatio: 0.5,
  memoryRatio: 0.5,
  image: { url: "http://images/noble.img", storage: "local", content: "import", filename: "noble.qcow2" },
  vms: vms.map((vm) => ({
    name: vm,
    node: name,
    role: "agent",
    diskGiB: 32,
    storage: "local-lvm",
    bridges: ["vmbr0"],
    tags: ["homelab-managed"],
    cpuType: "host",
    cloudInit: { user: "ubuntu", sshKeys: [], ipConfig: "ip=dhcp" }
  }))
})

const desired = (nodes: ReadonlyArray<DesiredNode>, over: Partial<Desired> = {}): Desired => ({
  nodes,
  ownershipTag: "homelab-managed",
  pendingTag: "homelab-pending",
  vmidRange: { lower: 1000, upper: 8999 },
  limits: { maxRecreatePerRun: 1 },
  protect: [],
  ...over
})

const node = (name: string): ObservedNode => ({
  name,
  online: true,
  cpus: 8,
  memoryBytes: 32 * GiB,
  storages: [],
  imageVolids: new Set(["local:import/noble.qcow2"])
})

const vm = (vmid: number, nodeName: string, name: string, over: Partial<ObservedVm> = {}): ObservedVm => ({
  vmid,
  node: nodeName,
  type: "qemu",
  name,
  status: "running",
  tags: ["homelab-managed"],
  template: false,
  maxmemBytes: 8 * GiB,
  uptimeSeconds: 86_400,
  ...over
})

const details = (over: Partial<VmDetails> = {}): VmDetails => ({
  protection: false,
  agentConfigured: true,
  status: "running",
  uptimeSeconds: 86_400,
  ...over
})

const clusterNode = (name: string, role: "server" | "agent"): ClusterNode => ({
  name,
  roleLabels: role === "server" ? ["control-plane", "etcd"] : [],
  role,
  ready: "True",
  readyDetail: "",
  internalIPs: [],
  kubeletVersion: "v1.30.5+k3s1",
  systemUUID: undefined,
  deleting: false,
  etcdMemberName: undefined
})

const observed = (nodes: Array<string>, vms: Array<ObservedVm>, over: Partial<Observed> = {}): Observed => ({
  nodes: new Map(nodes.map((n) => [n, node(n)])),
  vms,
  vmDetails: new Map(),
  ...over
})

const policy = HealthPolicy.defaults

describe("orphans", () => {
  // pve asks for k3s-vm-pve; k3s-vm-old on pve and k3s-vm-gone on a node no longer in the file are ours.
  const d = desired([desiredNode("pve")])
  const vms = [
    vm(1001, "pve", "k3s-vm-pve"),
    vm(1002, "pve", "k3s-vm-old"),
    vm(1003, "retired", "k3s-vm-gone"),
    vm(1004, "pve", "k3s-vm-stranger", { tags: ["k3s"] }),
    vm(1005, "pve", "template", { template: true }),
    vm(1006, "pve", "VM 1006", { lock: "create" }),
    vm(1007, "pve", "ct", { type: "lxc" })
  ]

  it("are the VMs of ours whose name homelab.yaml asks for on no node (not strangers, templates, creates in flight)", () => {
    assert.deepStrictEqual(
      findOrphans(d, observed(["pve"], vms)).map((o) => o.vmid),
      [1002, 1003]
    )
    assert.deepStrictEqual(
      findOrphans(d, observed(["pve"], vms), { only: ["pve"] }).map((o) => o.vmid),
      [1002]
    )
    // A VM asked for on another node is not an orphan (the plan reports it as elsewhere).
    const moved = desired([desiredNode("pve"), desiredNode("still-fawn", ["k3s-vm-old"])])
    assert.deepStrictEqual(
      findOrphans(moved, observed(["pve"], vms)).map((o) => o.vmid),
      [1003]
    )
  })

  it("their details are read (protection, lock decide whether they may go)", () => {
    assert.deepStrictEqual(detailsNeeded(d, observed(["pve"], vms)).vms, [
      { node: "pve", vmid: 1002 },
      { node: "retired", vmid: 1003 }
    ])
  })

  it("without --prune: reported, left running; the node is not converged (unconfirmed), plan says changes, apply exit 6", () => {
    const o = observed(["pve"], vms)
    const p = plan(d, o, { policy })
    assert.deepStrictEqual(p.actions, [])
    assert.deepStrictEqual(p.nodes, ["pve", "retired"])
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.effect, f.node, f.vmid]),
      [
        ["vm.orphan", "unconfirmed", "pve", 1002],
        ["vm.orphan", "unconfirmed", "retired", 1003]
      ]
    )
    assert.include(p.findings[0]?.hint ?? "", "homelab apply --prune")
    const planned = assess(p)
    assert.isFalse(planned.converged)
    assert.deepStrictEqual(
      planned.nodes.map((n) => [n.node, n.reasons.map((r) => r.status)]),
      [
        ["pve", ["unconfirmed"]],
        ["retired", ["unconfirmed"]]
      ]
    )
    assert.strictEqual(planVerdict(planned), "changes")
    assert.strictEqual(applyVerdict(settle(p, [])), "unconfirmed")
  })

  it("with --prune and a node in homelab.yaml the cluster does not have (a typo): no orphan is pruned, each says why", () => {
    // chief-hrose is a typo of chief-horse: its VM looks like an orphan, and pruning it would delete the VM asked for
    const typo = desired([desiredNode("pve"), desiredNode("chief-hrose")])
    const o = observed(
      ["pve", "chief-horse"],
      [vm(1001, "pve", "k3s-vm-pve"), vm(1002, "chief-horse", "k3s-vm-chief-horse")]
    )
    const p = plan(typo, o, { policy, prune: true })
    assert.isFalse(p.actions.some((a) => a._tag === "DestroyVm"))
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.effect, f.node, f.vmid]),
      [
        ["node.missing", "blocked", "chief-hrose", undefined],
        ["vm.prune-held", "blocked", "chief-horse", 1002]
      ]
    )
    const held = p.findings.find((f) => f.vmid === 1002)
    assert.strictEqual(
      held?.message,
      "VM 1002 k3s-vm-chief-horse on chief-horse is ours but homelab.yaml asks for no VM named k3s-vm-chief-horse; not pruning it: homelab.yaml names node 'chief-hrose', which the Proxmox cluster does not have (a misspelt or renamed node makes the VMs it asks for look like orphans)"
    )
    assert.include(held?.hint ?? "", "correct nodes[].name 'chief-hrose'")
    // once the names match the cluster, --prune goes on as before
    assert.isTrue(
      plan(desired([desiredNode("pve")]), o, { policy, prune: true }).actions.some(
        (a) => a._tag === "DestroyVm" && a.vmid === 1002
      )
    )
  })

  it("without --prune: a stopped orphan is said to be left stopped, one a teardown stopped short of removing says so", () => {
    const o = observed(
      ["pve"],
      [
        vm(1001, "pve", "k3s-vm-pve"),
        vm(1002, "pve", "k3s-vm-old", { status: "stopped" }),
        // an `apply --prune` interrupted after it stopped the VM (its k3s Node stays cordoned)
        vm(1003, "pve", "k3s-vm-half", { status: "stopped", tags: ["homelab-destroy", "homelab-managed"] })
      ]
    )
    const messages = plan(d, o, { policy }).findings.map((f) => [f.vmid, f.message, f.hint])
    assert.deepStrictEqual(messages, [
      [
        1002,
        "VM 1002 k3s-vm-old on pve is ours but homelab.yaml asks for no VM named k3s-vm-old: an orphan, left stopped",
        "`homelab apply --prune` removes it; to keep it, remove its tag 'homelab-managed'"
      ],
      [
        1003,
        "VM 1003 k3s-vm-half on pve is ours but homelab.yaml asks for no VM named k3s-vm-half: an orphan an earlier teardown stopped short of removing (it carries 'homelab-destroy'), left stopped",
        "`homelab apply --prune` finishes removing it; to keep it, remove its tags 'homelab-managed' and 'homelab-destroy'"
      ]
    ])
  })

  it("with --prune: one DestroyVm per orphan, its k3s Node first (a server one at a time, cluster-wide)", () => {
    const k3s = {
      server: { host: "10.0.0.5", port: 22, user: "ubuntu", apiPort: 6443 },
      vmUser: "ubuntu",
      vmSshPort: 22,
      installFlags: [],
      installScriptUrl: "https://get.k3s.io"
    }
    const member = (name: string) => ({
      id: String(name.length),
      name: `${name}-0a1b2c3d`,
      peerURL: undefined,
      clientURL: undefined,
      isLearner: false
    })
    const servers = ["k3s-vm-gone", "k3s-a", "k3s-b"]
    const o = observed(["pve"], vms, {
      k3s: {
        _tag: "Nodes",
        nodes: [clusterNode("k3s-vm-old", "agent"), ...servers.map((n) => clusterNode(n, "server"))],
        members: servers.map(member)
      }
    })
    const p = plan(desired(d.nodes, { k3s }), o, { policy, prune: true })
    const destroys = p.actions.filter((a) => a._tag === "DestroyVm")
    assert.deepStrictEqual(
      destroys.map((a) => [a.id, a.vmid, a.purpose, a.k3sNode?.role, a.exclusive]),
      [
        ["pve:prune:1002", 1002, "prune", "agent", undefined],
        ["retired:prune:1003", 1003, "prune", "server", "k3s-server"]
      ]
    )
    assert.include(destroys[0]?.reason ?? "", "homelab.yaml asks for no VM named k3s-vm-old")
    assert.isFalse(p.findings.some((f) => f.code === "vm.orphan"))
    // the cluster the plan shows is the one it leaves: without the pruned Nodes, 2 servers (an even number, said so)
    assert.deepStrictEqual(
      [p.cluster?.servers, p.cluster?.agents],
      [2, 1],
      "k3s-a and k3s-b; k3s-vm-pve joins as an agent"
    )
    assert.match(
      p.findings.find((f) => f.code === "k3s.even-servers")?.message ?? "",
      /the cluster will have 2 servers/
    )
    const kept = plan(desired(d.nodes, { k3s }), o, { policy })
    assert.deepStrictEqual([kept.cluster?.servers, kept.cluster?.agents], [3, 2], "without --prune the orphans stay")
    assert.isFalse(kept.findings.some((f) => f.code === "k3s.even-servers"))

    // the quorum guard at plan time: with one other member down, or the members unknown, the server stays
    const down = observed(["pve"], vms, {
      k3s: {
        _tag: "Nodes",
        nodes: [
          clusterNode("k3s-vm-gone", "server"),
          clusterNode("k3s-a", "server"),
          { ...clusterNode("k3s-b", "server"), ready: "Unknown" }
        ],
        members: servers.map(member)
      }
    })
    const unknown = observed(["pve"], vms, {
      k3s: { _tag: "Nodes", nodes: servers.map((n) => clusterNode(n, "server")) }
    })
    for (const [o2, code] of [
      [down, "k3s.quorum"],
      [unknown, "k3s.quorum-unknown"]
    ] as const) {
      const guarded = plan(desired(d.nodes, { k3s }), o2, { policy, prune: true })
      assert.isFalse(guarded.actions.some((a) => a._tag === "DestroyVm" && a.vmid === 1003))
      assert.deepStrictEqual(
        guarded.findings.filter((f) => f.vmid === 1003).map((f) => [f.code, f.effect]),
        [[code, "blocked"]]
      )
    }
  })

  it("a protected orphan is blocked (with or without --prune); a locked one waits; without a readable k3s, none is pruned", () => {
    const protectedByFlag = observed(["pve"], vms, { vmDetails: new Map([[1002, details({ protection: true })]]) })
    for (const prune of [false, true]) {
      const p = plan(d, protectedByFlag, { policy, prune })
      assert.deepStrictEqual(
        p.findings.filter((f) => f.vmid === 1002).map((f) => [f.code, f.effect]),
        [["vm.protected", "blocked"]]
      )
      assert.isFalse(p.actions.some((a) => a._tag === "DestroyVm" && a.vmid === 1002))
    }
    const byName = plan(desired(d.nodes, { protect: ["k3s-vm-gone"] }), observed(["pve"], vms), { policy, prune: true })
    assert.deepStrictEqual(
      byName.findings.map((f) => [f.code, f.vmid]),
      [["vm.protected", 1003]]
    )
    const locked = plan(d, observed(["pve"], vms, { vmDetails: new Map([[1002, details({ lock: "backup" })]]) }), {
      policy,
      prune: true
    })
    assert.deepStrictEqual(
      locked.findings.map((f) => [f.code, f.effect, f.vmid]),
      [["vm.locked", "deferred", 1002]]
    )
    const k3s = {
      server: { host: "10.0.0.5", port: 22, user: "ubuntu", apiPort: 6443 },
      vmUser: "ubuntu",
      vmSshPort: 22,
      installFlags: [],
      installScriptUrl: "https://get.k3s.io"
    }
    const unreadable = plan(
      desired(d.nodes, { k3s }),
      observed(["pve"], vms, { k3s: { _tag: "Unavailable", message: "down", hint: "check k3s.server" } }),
      { policy, prune: true }
    )
    assert.deepStrictEqual(
      unreadable.findings.filter((f) => f.layer === "vm").map((f) => [f.code, f.effect, f.vmid]),
      [
        ["vm.prune-needs-k3s", "blocked", 1002],
        ["vm.prune-needs-k3s", "blocked", 1003]
      ]
    )
  })
})

describe("an orphan on a node that could not be observed", () => {
  it("is held back, saying what failed on that node (API and SSH, as apply says) and its fix", () => {
    const d = desired([desiredNode("pve")])
    const problem = {
      code: "node.unreachable",
      message:
        "cannot list local (the image storage) on node pve: API https://10.0.0.2:8006: connection refused (nothing listens there); SSH root@10.0.0.2:22: our SSH key was refused (authentication failed)",
      hint: "add the public key of ssh.privateKey to root's ~/.ssh/authorized_keys on 10.0.0.2:22"
    }
    const o = observed(["pve"], [vm(1001, "pve", "k3s-vm-pve"), vm(1002, "pve", "k3s-vm-old")], {
      nodes: new Map([["pve", { ...node("pve"), problem }]])
    })
    const held = plan(d, o, { policy, prune: true }).findings.find((f) => f.vmid === 1002)
    assert.deepStrictEqual(held, {
      layer: "vm",
      node: "pve",
      vm: "k3s-vm-old",
      vmid: 1002,
      code: "vm.prune-unreachable",
      effect: "blocked",
      message: `VM 1002 k3s-vm-old on pve cannot be reached (${problem.message}); not pruning it`,
      hint: `${problem.hint}; then run again`
    })
  })
})

describe("server orphans pruned together", () => {
  const k3s = { vmUser: "ubuntu", vmSshPort: 22, installFlags: [], installScriptUrl: "https://get.k3s.io" }
  const serverNode = (name: string, vms: ReadonlyArray<string>): DesiredNode => {
    const n = desiredNode(name, [...vms])
    return { ...n, vms: n.vms.map((v) => ({ ...v, role: "server" as const })) }
  }
  const member = (name: string, i: number) => ({
    id: String(i + 1),
    name: `${name}-0a1b2c3${i}`,
    peerURL: undefined,
    clientURL: undefined,
    isLearner: false
  })
  const server = (name: string, i: number): ClusterNode => ({
    ...clusterNode(name, "server"),
    internalIPs: [`10.0.0.${i + 11}`],
    etcdMemberName: `${name}-0a1b2c3${i}`
  })
  const cluster = (names: ReadonlyArray<string>, via: string): Observed["k3s"] => ({
    _tag: "Nodes",
    nodes: names.map(server),
    members: names.map(member),
    via: { vm: via, ip: `10.0.0.${names.indexOf(via) + 11}` }
  })

  it("the quorum guard judges each by the cluster the ones before it leave: of 3 servers, 2 cannot go in one run", () => {
    // homelab.yaml keeps k3s-vm-pve, and no longer names k3s-a and k3s-b (3 healthy etcd members)
    const names = ["k3s-vm-pve", "k3s-a", "k3s-b"]
    const o = observed(["pve"], [vm(1001, "pve", "k3s-vm-pve"), vm(1010, "pve", "k3s-a"), vm(1011, "pve", "k3s-b")], {
      k3s: cluster(names, "k3s-vm-pve"),
      ips: new Map([[1001, "10.0.0.11"]])
    })
    const p = plan(desired([serverNode("pve", ["k3s-vm-pve"])], { k3s }), o, { policy, prune: true })
    assert.deepStrictEqual(
      p.actions.map((a) => `${a._tag} ${a.id}`),
      ["DestroyVm pve:prune:1010"]
    )
    const refused = p.findings.find((f) => f.vmid === 1011)
    assert.deepStrictEqual([refused?.code, refused?.effect], ["k3s.quorum", "blocked"])
    assert.match(
      refused?.message ?? "",
      /not pruning k3s server k3s-b: prune of k3s-b would leave 1 of 2 etcd members healthy, quorum needs 2 .*\(this run: after k3s-a is pruned first\)/
    )
  })

  it("a server orphan whose Node was force-deleted (its etcd member left, no Node owns it): not pruned, nothing cordoned or stopped; blocked in removeServer's words with the etcdctl that removes the member", () => {
    const names = ["k3s-vm-pve", "k3s-x", "k3s-a"]
    const facts = cluster(names, "k3s-vm-pve")
    const o = observed(["pve"], [vm(1001, "pve", "k3s-vm-pve"), vm(1002, "pve", "k3s-x"), vm(1010, "pve", "k3s-a")], {
      k3s: facts?._tag === "Nodes" ? { ...facts, nodes: facts.nodes.filter((n) => n.name !== "k3s-a") } : facts,
      ips: new Map([[1001, "10.0.0.11"]])
    })
    const p = plan(desired([serverNode("pve", ["k3s-vm-pve", "k3s-x"])], { k3s }), o, { policy, prune: true })
    assert.deepStrictEqual(p.actions, [])
    const stale = p.findings.find((f) => f.vmid === 1010)
    assert.deepStrictEqual([stale?.code, stale?.effect], ["k3s.stale-member", "blocked"])
    assert.strictEqual(
      stale?.message,
      `not pruning k3s server k3s-a: ${memberWithoutNode("k3s-a", [member("k3s-a", 2)])}; nothing is cordoned, stopped or destroyed`
    )
    assert.include(stale?.hint ?? "", "VM 1010 k3s-a stays as it is")
    assert.include(stale?.hint ?? "", "member remove 3`")
    assert.include(stale?.hint ?? "", "run the same `homelab apply --prune` again")
  })

  /**
   * The `apply --prune` plan of the server orphan k3s-a (VM 1010, its VM `status`) without a Node while etcd lists its
   * member as a learner, beside k3s-vm-pve and k3s-x.
   */
  const learnerOrphanPlan = (status: string) => {
    const names = ["k3s-vm-pve", "k3s-x", "k3s-a"]
    const facts = cluster(names, "k3s-vm-pve")
    const o = observed(
      ["pve"],
      [vm(1001, "pve", "k3s-vm-pve"), vm(1002, "pve", "k3s-x"), vm(1010, "pve", "k3s-a", { status })],
      {
        k3s:
          facts?._tag === "Nodes"
            ? {
                ...facts,
                nodes: facts.nodes.filter((n) => n.name !== "k3s-a"),
                members: (facts.members ?? []).map((m) => (m.name.startsWith("k3s-a-") ? { ...m, isLearner: true } : m))
              }
            : facts,
        ips: new Map([[1001, "10.0.0.11"]])
      }
    )
    return plan(desired([serverNode("pve", ["k3s-vm-pve", "k3s-x"])], { k3s }), o, { policy, prune: true })
  }

  it("a server orphan joining etcd right now (its member a learner, its Node not registered yet): not pruned this run, nothing cordoned or stopped; deferred, no etcdctl", () => {
    const p = learnerOrphanPlan("running")
    assert.deepStrictEqual(p.actions, [])
    const joining = p.findings.find((f) => f.vmid === 1010)
    assert.deepStrictEqual([joining?.code, joining?.effect, joining?.layer], ["k3s.member-joining", "deferred", "vm"])
    assert.include(joining?.message ?? "", "k3s-a is joining etcd right now: k3s-a-0a1b2c32 (ID 3) is a learner")
    assert.include(joining?.message ?? "", "not pruning it this run; nothing is cordoned, stopped or destroyed")
    assert.notInclude(`${joining?.message} ${joining?.hint}`, "member remove")
  })

  it("a server orphan whose VM is stopped, its learner left by a join cut short when it went down: stale, not joining; not pruned this run, with the etcdctl that removes the learner and the leader's own eviction", () => {
    const p = learnerOrphanPlan("stopped")
    assert.deepStrictEqual(p.actions, [])
    const stale = p.findings.find((f) => f.vmid === 1010)
    assert.deepStrictEqual([stale?.code, stale?.effect, stale?.layer], ["k3s.stale-member", "blocked", "vm"])
    assert.include(
      stale?.message ?? "",
      "etcd still lists the learner k3s-a-0a1b2c32 (ID 3) of k3s-a, and no Node owns it: the join its k3s began was cut short when its VM went down (VM 1010 is stopped), and no join goes on as it now"
    )
    assert.include(stale?.message ?? "", "not pruning it this run; nothing is cordoned or destroyed")
    assert.include(stale?.hint ?? "", "member remove 3`, and the same `homelab apply --prune` removes the VM then")
    assert.include(stale?.hint ?? "", "Removed learner k3s-a-0a1b2c32 from etcd cluster")
    assert.notInclude(stale?.hint ?? "", "qm start")
  })

  it("an orphan without a Node while the etcd members cannot be read: homelab.yaml no longer says its role, so it may hold a member no Node owns; not pruned, nothing cordoned or stopped; an orphan with an agent Node is pruned", () => {
    const names = ["k3s-vm-pve", "k3s-x", "k3s-a"]
    const facts = cluster(names, "k3s-vm-pve")
    const problem = "reading the etcd members (/db/info): exit code 22"
    const nodes = facts?._tag === "Nodes" ? facts.nodes.filter((n) => n.name !== "k3s-a") : []
    const o = observed(
      ["pve"],
      [vm(1001, "pve", "k3s-vm-pve"), vm(1002, "pve", "k3s-x"), vm(1010, "pve", "k3s-a"), vm(1020, "pve", "k3s-w")],
      {
        k3s: {
          _tag: "Nodes",
          nodes: [...nodes, clusterNode("k3s-w", "agent")],
          via: { vm: "k3s-vm-pve", ip: "10.0.0.11" },
          membersError: problem
        },
        ips: new Map([[1001, "10.0.0.11"]])
      }
    )
    const p = plan(desired([serverNode("pve", ["k3s-vm-pve", "k3s-x"])], { k3s }), o, { policy, prune: true })
    assert.deepStrictEqual(
      p.actions.map((a) => a.id),
      ["pve:prune:1020"]
    )
    const held = p.findings.find((f) => f.vmid === 1010)
    assert.deepStrictEqual([held?.code, held?.effect, held?.layer], ["k3s.members-unknown", "blocked", "k3s"])
    assert.strictEqual(
      held?.message,
      `not pruning VM 1010 k3s-a (homelab.yaml no longer names it, so its k3s role is unknown): it has no k3s Node, and the etcd members could not be read (${problem}), so whether etcd still lists a member of k3s-a that no Node owns cannot be checked (k3s removes a member only through its Node: pruned without it, the VM would leave that member in etcd for good); nothing is cordoned, stopped or destroyed`
    )
    assert.include(held?.hint ?? "", "VM 1010 k3s-a stays as it is")
    assert.include(held?.hint ?? "", "run the same `homelab apply --prune` again")
  })

  it("a server whose member is down goes first (its removal costs no running vote): of 4 servers, one down, 2 go", () => {
    // k3s-b is down (its Node Unknown): taking k3s-a out first would leave 2 of 4 healthy (quorum 3); k3s-b first
    // leaves 3 members, of which k3s-a may then go (2 of 3)
    const names = ["k3s-vm-pve", "k3s-x", "k3s-a", "k3s-b"]
    const facts = cluster(names, "k3s-vm-pve")
    const o = observed(
      ["pve"],
      [vm(1001, "pve", "k3s-vm-pve"), vm(1002, "pve", "k3s-x"), vm(1010, "pve", "k3s-a"), vm(1011, "pve", "k3s-b")],
      {
        k3s:
          facts?._tag === "Nodes"
            ? { ...facts, nodes: facts.nodes.map((n) => (n.name === "k3s-b" ? { ...n, ready: "Unknown" } : n)) }
            : facts,
        ips: new Map([[1001, "10.0.0.11"]])
      }
    )
    const p = plan(desired([serverNode("pve", ["k3s-vm-pve", "k3s-x"])], { k3s }), o, { policy, prune: true })
    const prunes = p.actions.filter((a) => a._tag === "DestroyVm")
    assert.deepStrictEqual(
      prunes.map((a) => a.name),
      ["k3s-b", "k3s-a"]
    )
    assert.include(prunes[1]?.after ?? [], prunes[0]?.id)
    assert.deepStrictEqual(
      p.findings.filter((f) => f.code.startsWith("k3s.quorum")),
      []
    )
  })

  it("after a rename: the new servers join first (through an old one), then the 3 old ones go one at a time, through a new one", () => {
    const old = ["k3s-vm-pve", "k3s-vm-still-fawn", "k3s-vm-chief-horse"]
    const pveNodes = ["pve", "still-fawn", "chief-horse"]
    const storage = (storage: string, content: Array<string>) => ({
      storage,
      type: "dir",
      content,
      shared: false,
      active: true,
      enabled: true,
      totalBytes: 400 * GiB,
      availBytes: 300 * GiB
    })
    const o: Observed = {
      ...observed(
        [],
        old.map((name, i) => vm(1001 + i, pveNodes[i] as string, name))
      ),
      nodes: new Map(
        pveNodes.map((n) => [
          n,
          {
            ...node(n),
            storages: [storage("local", ["import"]), storage("local-lvm", ["images"])],
            details: { bridges: [{ name: "vmbr0", active: true }], pveMajor: 8 }
          }
        ])
      ),
      k3s: cluster(old, "k3s-vm-pve"),
      ips: new Map(old.map((_, i) => [1001 + i, `10.0.0.${i + 11}`]))
    }
    const d = desired(
      ["pve", "still-fawn", "chief-horse"].map((n) => serverNode(n, [`k8s-${n}`])),
      { k3s }
    )
    const p = plan(d, o, { policy, prune: true })
    assert.isFalse(
      p.actions.some((a) => a._tag === "InitK3s"),
      "no second cluster"
    )
    const joins = p.actions.filter((a) => a._tag === "JoinK3s")
    assert.deepStrictEqual(
      joins.map((a) => `${a.vm} via ${a.via?.vm}`),
      ["k8s-pve via k3s-vm-pve", "k8s-still-fawn via k3s-vm-pve", "k8s-chief-horse via k3s-vm-pve"]
    )
    const prunes = p.actions.filter((a) => a._tag === "DestroyVm")
    assert.deepStrictEqual(
      prunes.map((a) => [a.name, a.k3sNode?.role, a.k3sVia?.vm, a.exclusive]),
      old.map((name) => [name, "server", "k8s-pve", "k3s-server"])
    )
    for (const a of prunes) for (const j of joins) assert.include(a.after, j.id)
    // one at a time: each waits for the one before
    assert.include(prunes[1]?.after ?? [], prunes[0]?.id)
    assert.include(prunes[2]?.after ?? [], prunes[1]?.id)
    assert.deepStrictEqual(
      p.findings.filter((f) => f.code.startsWith("k3s.quorum")),
      []
    )
    assert.deepStrictEqual(p.cluster, { servers: 3, agents: 0, etcd: true, through: "k3s-vm-pve" })
    // without --prune: the same joins, the old VMs reported (6 servers for now, said so)
    const kept = plan(d, o, { policy })
    assert.deepStrictEqual(
      kept.actions.filter((a) => a._tag === "JoinK3s").map((a) => a.vm),
      ["k8s-pve", "k8s-still-fawn", "k8s-chief-horse"]
    )
    assert.deepStrictEqual(
      kept.findings.filter((f) => f.code === "vm.orphan").map((f) => f.vm),
      old
    )
  })
})

describe("orphans against the simulator", () => {
  it.live(
    "reported and left running without --prune; --prune cordons and drains each one's k3s Node, stops the VM, removes the Node and its password secret, then destroys the VM; strangers untouched",
    () =>
      Effect.gen(function* () {
        const net = teardownNet()
        const sim = yield* startLab(
          teardownScenario(
            net,
            ["pve", "still-fawn"],
            [
              memberVm(1101, "pve", "k3s-vm-pve", `${net}.11`),
              // fewer VMs on a node: pve no longer asks for a second one
              memberVm(1102, "pve", "k3s-vm-pve-2", `${net}.12`),
              // still-fawn was removed from homelab.yaml
              memberVm(1103, "still-fawn", "k3s-vm-still-fawn", `${net}.13`),
              { vmid: 300, node: "still-fawn", name: "nas", status: "running", tags: "storage", uptime: 86_400 }
            ]
          )
        )
        const lab = yield* teardownLab(sim, net, { nodes: ["pve"] })
        const before = k3sState(sim)
        assert.includeMembers(before.nodes, ["k3s-vm-pve-2", "k3s-vm-still-fawn"])
        assert.includeMembers(before.secrets, ["k3s-vm-pve-2.node-password.k3s", "k3s-vm-still-fawn.node-password.k3s"])

        // apply --yes without --prune: nothing is changed, the orphans are reported and the run is not converged
        sim.clearRequests()
        const kept = yield* reconcile(lab)
        assert.deepStrictEqual(kept.plan.actions, [])
        assert.deepStrictEqual(
          kept.plan.findings.map((f) => [f.code, f.effect, f.node, f.vmid]),
          [
            ["vm.orphan", "unconfirmed", "pve", 1102],
            ["vm.orphan", "unconfirmed", "still-fawn", 1103]
          ]
        )
        assert.deepStrictEqual(kept.plan.nodes, ["pve", "still-fawn"])
        assert.strictEqual(applyVerdict(kept.report.convergence), "unconfirmed")
        // (reading an orphan's details pings its guest agent: a POST that changes nothing)
        assert.deepStrictEqual(
          mutatingRequests(sim).filter((r) => !r.path?.endsWith("/agent/ping")),
          []
        )
        assert.deepStrictEqual(
          simVms(sim)
            .map((v) => [v.vmid, v.status])
            .sort((a, b) => Number(a[0]) - Number(b[0])),
          [
            [200, "running"],
            [300, "running"],
            [1101, "running"],
            [1102, "running"],
            [1103, "running"]
          ]
        )
        assert.deepStrictEqual(k3sState(sim), before)

        // apply --yes --prune
        sim.clearRequests()
        const pruned = yield* reconcile(lab, { prune: true })
        assert.deepStrictEqual(
          pruned.result.outcomes.map((o) => [o.id, o.status]),
          [
            ["pve:prune:1102", "done"],
            ["still-fawn:prune:1103", "done"]
          ],
          JSON.stringify(pruned.result.outcomes.map((o) => o.detail))
        )
        assert.isTrue(pruned.report.convergence.converged)
        // still-fawn is no node of the lab: its teardown is reported as such, never as a converged node
        assert.deepStrictEqual(
          pruned.report.convergence.nodes.map((n) => [n.node, n.converged]),
          [["pve", true]]
        )
        assert.deepStrictEqual(pruned.report.convergence.tornDown, ["still-fawn"])
        // before the prune, it was a node with an orphan on it: not converged, and not torn down
        assert.deepStrictEqual(
          kept.report.convergence.nodes.map((n) => [n.node, n.converged]),
          [
            ["pve", false],
            ["still-fawn", false]
          ]
        )
        assert.deepStrictEqual(kept.report.convergence.tornDown, [])
        assert.deepStrictEqual(
          simVms(sim)
            .map((v) => v.vmid)
            .sort(),
          [1101, 200, 300]
        )
        const after = k3sState(sim)
        assert.notInclude(after.nodes, "k3s-vm-pve-2")
        assert.notInclude(after.nodes, "k3s-vm-still-fawn")
        assert.notInclude(after.secrets, "k3s-vm-pve-2.node-password.k3s")
        assert.notInclude(after.secrets, "k3s-vm-still-fawn.node-password.k3s")
        assert.includeMembers(after.nodes, ["k3s-server", "k3s-vm-pve"])
        for (const [vmid, name] of [
          [1102, "k3s-vm-pve-2"],
          [1103, "k3s-vm-still-fawn"]
        ] as const) {
          // the order in the simulator's log: drained first, the VM stopped, the Node and secret gone, then destroyed
          assert.deepStrictEqual(
            teardownSteps(sim, vmid, name).map((s) => s.step),
            ["cordon", "drain", "stop", "delete-node", "delete-secret", "destroy"]
          )
          const kinds = sim
            .k3sEvents()
            .filter((e) => e.node === name || e.node === `${name}.node-password.k3s`)
            .map((e) => e.kind)
          assert.includeMembers(kinds, [
            "node-cordoned",
            "drain-start",
            "drain-finish",
            "node-deleted",
            "secret-deleted"
          ])
          assert.notInclude(kinds, "node-registered", "no kubelet registered the deleted Node again")
        }
        // the stranger and the k3s server (not ours) were never touched
        const touched = sim
          .requests()
          .filter((r) => r.transport === "api" && r.method !== "GET" && (r.vmid === 300 || r.vmid === 200))
        assert.deepStrictEqual(touched, [])

        const again = yield* reconcile(lab)
        assert.deepStrictEqual(again.plan.actions, [])
        assert.deepStrictEqual(again.plan.findings, [])
        assert.isTrue(again.report.convergence.converged)
      }),
    120_000
  )
})

describe("apply --prune of a k3s server orphan whose Node was force-deleted, its etcd member left (k3s.md §5.2)", () => {
  it.live(
    "the plan blocks its removal in removeServer's words with the etcdctl fix; nothing is cordoned, stopped, marked or destroyed",
    () =>
      Effect.gen(function* () {
        const net = teardownNet()
        const scenario = teardownScenario(
          net,
          ["pve", "still-fawn"],
          [
            memberVm(1101, "pve", "k3s-vm-pve", `${net}.11`, { role: "server" }),
            // still-fawn was removed from homelab.yaml: its server VM is an orphan
            memberVm(1103, "still-fawn", "k3s-vm-still-fawn", `${net}.13`, { role: "server" })
          ]
        )
        const sim = yield* startLab({ ...scenario, k3s: { ...scenario.k3s, memberRemoveDelayMs: 600_000 } })
        const lab = yield* teardownLab(sim, net, { nodes: ["pve"] })
        const ssh = yield* labSsh(lab)
        const kubectl = (args: string) =>
          ssh.exec({ host: `${net}.5`, port: 2222, user: "ubuntu" }, `sudo -n /usr/local/bin/k3s kubectl ${args}`)
        // its Node deleted, the member's removal hanging, and the Node forced out (finalizers removed)
        yield* kubectl("delete node k3s-vm-still-fawn --wait=false")
        const patched = yield* kubectl(
          `patch node k3s-vm-still-fawn --type=merge -p '{"metadata":{"finalizers":null}}'`
        )
        assert.strictEqual(patched.exitCode, 0, patched.stderr)
        const stale = sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("k3s-vm-still-fawn-"))
        assert.strictEqual(stale.length, 1)
        const before = simVms(sim).find((v) => v.vmid === 1103)
        sim.clearRequests()

        const pruned = yield* reconcile(lab, { prune: true })
        assert.deepStrictEqual(pruned.plan.actions, [])
        const finding = pruned.plan.findings.find((f) => f.vmid === 1103)
        assert.deepStrictEqual([finding?.code, finding?.effect], ["k3s.stale-member", "blocked"])
        assert.strictEqual(
          finding?.message,
          `not pruning k3s server k3s-vm-still-fawn: ${memberWithoutNode(
            "k3s-vm-still-fawn",
            stale.map((m) => ({ ...m, clientURL: undefined }))
          )}; nothing is cordoned, stopped or destroyed`
        )
        assert.include(finding?.hint ?? "", `member remove ${memberIdHex(stale[0]?.id ?? "")}`)
        assert.include(finding?.hint ?? "", "run the same `homelab apply --prune` again")
        assert.isFalse(pruned.report.convergence.converged)
        // the VM as it was, its member still there, nothing changed on PVE
        assert.deepStrictEqual(
          simVms(sim).find((v) => v.vmid === 1103),
          before
        )
        assert.strictEqual(sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("k3s-vm-still-fawn-")).length, 1)
        assert.deepStrictEqual(
          mutatingRequests(sim).filter((r) => !r.path?.endsWith("/agent/ping")),
          []
        )
      }),
    120_000
  )
})

/** The etcd member reads (`/db/info` on a k3s server) in the simulator's request log. */
const memberReads = (sim: Parameters<typeof simVms>[0]) =>
  sim.requests().filter((r) => r.transport === "guest-ssh" && (r.command ?? "").includes("/db/info"))

describe("apply --prune reads the etcd members only when its plan needs them", () => {
  it.live("a converged lab: nothing to remove, no etcd member read", () =>
    Effect.gen(function* () {
      const net = teardownNet()
      const sim = yield* startLab(
        teardownScenario(net, ["pve"], [memberVm(1101, "pve", "k3s-vm-pve", `${net}.11`, { role: "server" })])
      )
      const lab = yield* teardownLab(sim, net, { nodes: ["pve"], nodeVms: { pve: "    vms: [{ role: server }]" } })
      sim.clearRequests()
      const pruned = yield* reconcile(lab, { prune: true })
      assert.deepStrictEqual(pruned.plan.actions, [])
      // (2 servers: the k3s server and the VM)
      assert.deepStrictEqual(
        pruned.plan.findings.map((f) => f.code),
        ["k3s.even-servers"]
      )
      assert.isTrue(pruned.report.convergence.converged)
      assert.deepStrictEqual(memberReads(sim), [])
    })
  )

  it.live(
    "a server orphan: the plan reads the members and its quorum guard judges the prune; apply asks again before the cordon",
    () =>
      Effect.gen(function* () {
        const net = teardownNet()
        const sim = yield* startLab(
          teardownScenario(
            net,
            ["pve", "still-fawn"],
            [
              memberVm(1101, "pve", "k3s-vm-pve", `${net}.11`, { role: "server" }),
              memberVm(1103, "still-fawn", "k3s-vm-still-fawn", `${net}.13`, { role: "server" })
            ]
          )
        )
        const lab = yield* teardownLab(sim, net, { nodes: ["pve"], nodeVms: { pve: "    vms: [{ role: server }]" } })
        sim.clearRequests()
        const pruned = yield* reconcile(lab, { prune: true })
        const observed = pruned.report.observed.k3s
        assert.strictEqual(observed?._tag === "Nodes" ? observed.members?.length : undefined, 3)
        assert.deepStrictEqual(
          pruned.plan.actions.map((a) => [a.id, a._tag === "DestroyVm" ? a.k3sNode?.role : undefined]),
          [["still-fawn:prune:1103", "server"]]
        )
        assert.deepStrictEqual(
          pruned.result.outcomes.map((o) => [o.id, o.status]),
          [["still-fawn:prune:1103", "done"]]
        )
        // read by the plan, and again by the quorum guard just before the cordon
        const log = sim.requests()
        const cordon = teardownSteps(sim, 1103, "k3s-vm-still-fawn").find((s) => s.step === "cordon")?.index ?? -1
        assert.strictEqual(memberReads(sim).filter((r) => log.indexOf(r) < cordon).length, 2)
        assert.strictEqual(sim.state().k3s.etcdMembers.length, 2)
      }),
    120_000
  )

  it.live(
    "a server orphan whose Node was force-deleted while the members cannot be read (k3s v1.29.4: /db/info needs credentials): not pruned, nothing cordoned, stopped or destroyed",
    () =>
      Effect.gen(function* () {
        const net = teardownNet()
        const scenario = teardownScenario(
          net,
          ["pve", "still-fawn"],
          [
            memberVm(1101, "pve", "k3s-vm-pve", `${net}.11`, { role: "server" }),
            memberVm(1103, "still-fawn", "k3s-vm-still-fawn", `${net}.13`, { role: "server" })
          ]
        )
        const sim = yield* startLab({
          ...scenario,
          k3s: { ...scenario.k3s, version: "v1.29.4+k3s1", memberRemoveDelayMs: 600_000 }
        })
        const lab = yield* teardownLab(sim, net, { nodes: ["pve"], nodeVms: { pve: "    vms: [{ role: server }]" } })
        const ssh = yield* labSsh(lab)
        const kubectl = (args: string) =>
          ssh.exec({ host: `${net}.5`, port: 2222, user: "ubuntu" }, `sudo -n /usr/local/bin/k3s kubectl ${args}`)
        yield* kubectl("delete node k3s-vm-still-fawn --wait=false")
        const patched = yield* kubectl(
          `patch node k3s-vm-still-fawn --type=merge -p '{"metadata":{"finalizers":null}}'`
        )
        assert.strictEqual(patched.exitCode, 0, patched.stderr)
        const before = simVms(sim).find((v) => v.vmid === 1103)
        sim.clearRequests()

        const pruned = yield* reconcile(lab, { prune: true })
        assert.deepStrictEqual(pruned.plan.actions, [])
        const held = pruned.plan.findings.find((f) => f.vmid === 1103)
        assert.deepStrictEqual([held?.code, held?.effect], ["k3s.members-unknown", "blocked"])
        assert.match(
          held?.message ?? "",
          /^not pruning VM 1103 k3s-vm-still-fawn \(homelab.yaml no longer names it, so its k3s role is unknown\): it has no k3s Node, and the etcd members could not be read \(.*401.*\)/
        )
        assert.include(held?.hint ?? "", "run the same `homelab apply --prune` again")
        assert.isFalse(pruned.report.convergence.converged)
        assert.deepStrictEqual(
          simVms(sim).find((v) => v.vmid === 1103),
          before
        )
        assert.strictEqual(sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("k3s-vm-still-fawn-")).length, 1)
        assert.deepStrictEqual(
          mutatingRequests(sim).filter((r) => !r.path?.endsWith("/agent/ping")),
          []
        )
      }),
    120_000
  )
})
