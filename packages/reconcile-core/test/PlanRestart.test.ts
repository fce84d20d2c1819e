/**
 * The restart mark in the plan (`homelab-restart`, `PlanRestart.ts`): a rolling restart that an earlier run did not
 * finish leaves a cordoned Node; the next plan sees it, says why the node is not converged, and finishes it
 * (`UncordonK3s`). A Node cordoned without a mark of ours is reported, never uncordoned.
 */
import { assert, describe, it } from "@effect/vitest"
import type { VmPending } from "@homelab/proxmox-client"
import { HealthPolicy } from "@homelab/vm-health"
import { describeAction, type RestartVm, type UncordonK3s, type UpgradeK3s } from "../src/Action.js"
import { assess, planVerdict } from "../src/Convergence.js"
import type { Observed } from "../src/Observed.js"
import { plan } from "../src/Plan.js"
import {
  byId,
  clusterNode,
  ipOf,
  k3sDesired,
  k3sObserved,
  names,
  observedVm,
  planOf,
  readyCluster,
  steps,
  vmidOf
} from "./k3sFixture.js"

const vms = names(3, 2)
const ours = ["homelab-managed"]
const marked = ["homelab-managed", "homelab-restart"]

/** Every VM as observed, `tags` for those named. */
const withTags = (tags: Record<string, ReadonlyArray<string>>) => ({
  vms: vms.map((n) => observedVm(vms, n, tags[n] === undefined ? {} : { tags: [...tags[n]] }))
})

/** The cluster with these Nodes cordoned (`spec.unschedulable`). */
const cordoned = (...nodes: ReadonlyArray<string>) =>
  readyCluster(vms, {}, (n) => (nodes.includes(n) ? { unschedulable: true } : {}))

const uncordons = (p: ReturnType<typeof planOf>) => p.actions.filter((a): a is UncordonK3s => a._tag === "UncordonK3s")

describe("an earlier run's unfinished restart (homelab-restart)", () => {
  it("a Ready Node still cordoned: not converged; the plan uncordons it, with the reason", () => {
    const o = k3sObserved(vms, cordoned("a1"), withTags({ a1: marked }))
    const p = planOf(k3sDesired(vms), o)
    assert.deepStrictEqual(steps(p), ["UncordonK3s:a1"])
    const u = uncordons(p)[0]
    assert.deepStrictEqual(
      [u?.id, u?.node, u?.vmid, u?.role, u?.cordoned, u?.after, u?.exclusive, u?.via],
      [
        "pve-a1:uncordon:a1",
        "pve-a1",
        vmidOf(vms, "a1"),
        "agent",
        true,
        [],
        "vm-restart",
        { vm: "s1", ip: ipOf(vms, "s1") }
      ]
    )
    assert.include(u?.reason ?? "", "an earlier run's restart of a1 did not finish (it carries 'homelab-restart')")
    assert.include(u?.reason ?? "", "Ready but still cordoned")
    assert.include(describeAction(u as UncordonK3s), "uncordon its k3s Node once it is Ready")

    // The convergence verdict names it: the node is not converged until the Node is uncordoned.
    const verdict = assess(p)
    assert.isFalse(verdict.converged)
    const node = verdict.nodes.find((n) => n.node === "pve-a1")
    assert.deepStrictEqual(
      node?.reasons.map((r) => [r.code, r.status, r.layer, r.vm]),
      [["plan.UncordonK3s", "planned", "k3s", "a1"]]
    )
    assert.include(node?.reasons[0]?.message ?? "", "homelab-restart")
    assert.isTrue(verdict.nodes.filter((n) => n.node !== "pve-a1").every((n) => n.converged))
    assert.strictEqual(planVerdict(verdict), "changes")
  })

  it("the mark without a cordon (interrupted before the drain, or after the uncordon): only the mark is cleared", () => {
    const p = planOf(k3sDesired(vms), k3sObserved(vms, readyCluster(vms), withTags({ s2: marked })))
    assert.deepStrictEqual(steps(p), ["UncordonK3s:s2"])
    const u = uncordons(p)[0]
    assert.strictEqual(u?.cordoned, false)
    assert.strictEqual(u?.role, "server")
    // a server's step goes through another server
    assert.deepStrictEqual(u?.via, { vm: "s1", ip: ipOf(vms, "s1") })
    assert.include(describeAction(u as UncordonK3s), "clear its mark")
    assert.isFalse(assess(p).converged)
  })

  it("a NotReady Node (the VM still coming back): the join makes it Ready first, then the uncordon", () => {
    const o = k3sObserved(
      vms,
      readyCluster(vms, {}, (n) => (n === "a2" ? { ready: "Unknown", unschedulable: true } : {})),
      withTags({ a2: marked })
    )
    const p = planOf(k3sDesired(vms), o)
    assert.deepStrictEqual(steps(p), ["JoinK3s:a2", "UncordonK3s:a2"])
    assert.deepStrictEqual(byId(p, "pve-a2:uncordon:a2")?.after, ["pve-a2:k3s:a2"])
    assert.include(byId(p, "pve-a2:uncordon:a2")?.reason ?? "", "once the VM runs and the Node is Ready again")
  })

  it("a stopped VM that is started (health.stopped: start): start, join, then uncordon", () => {
    const a1 = vmidOf(vms, "a1")
    const base = k3sObserved(vms, cordoned("a1"), {
      vms: vms.map((n) => observedVm(vms, n, n === "a1" ? { tags: marked, status: "stopped" } : {}))
    })
    const o: Observed = {
      ...base,
      vmDetails: new Map([
        [a1, { protection: false, agentConfigured: true, status: "stopped", uptimeSeconds: 0, tags: marked }]
      ])
    }
    const p = plan(k3sDesired(vms), o, { policy: HealthPolicy.fromPartial({ stopped: "start" }) })
    assert.deepStrictEqual(steps(p), ["StartVm:pve-a1", "JoinK3s:a1", "UncordonK3s:a1"])
    assert.deepStrictEqual(byId(p, "pve-a1:uncordon:a1")?.after, ["pve-a1:k3s:a1"])
  })

  it("a VM a teardown stopped ('homelab-destroy'), asked for again: started and its teardown undone, whatever health.stopped says, never rebuilt", () => {
    const a1 = vmidOf(vms, "a1")
    const torn = ["homelab-destroy", "homelab-managed"]
    const base = k3sObserved(vms, cordoned("a1"), {
      vms: vms.map((n) => observedVm(vms, n, n === "a1" ? { tags: torn, status: "stopped" } : {}))
    })
    const o: Observed = {
      ...base,
      vmDetails: new Map([
        [a1, { protection: false, agentConfigured: true, status: "stopped", uptimeSeconds: 0, tags: torn }]
      ])
    }
    for (const stopped of ["recreate", "start", "keep"] as const) {
      const p = plan(k3sDesired(vms), o, { policy: HealthPolicy.fromPartial({ stopped }) })
      assert.deepStrictEqual(steps(p), ["StartVm:pve-a1", "JoinK3s:a1", "UncordonK3s:a1"], stopped)
      assert.include(byId(p, "pve-a1:vm:a1")?.reason ?? "", "it carries 'homelab-destroy'")
      assert.strictEqual((byId(p, "pve-a1:uncordon:a1") as UncordonK3s).mark, "homelab-destroy")
      assert.deepStrictEqual(p.findings, [], stopped)
    }
    // a stopped VM without the mark is still judged by health.stopped
    const plain = k3sObserved(vms, readyCluster(vms), {
      vms: vms.map((n) => observedVm(vms, n, n === "a1" ? { status: "stopped" } : {}))
    })
    const rebuilt = plan(k3sDesired(vms), plain, { policy: HealthPolicy.fromPartial({ stopped: "recreate" }) })
    assert.include(steps(rebuilt), "RecreateVm:a1")
  })

  it("a server a teardown took out of the cluster (its Node gone) before it stopped short: started with its disk, no join that cannot work (blocked, both ways out named)", () => {
    const s2 = vmidOf(vms, "s2")
    const torn = ["homelab-destroy", "homelab-managed"]
    const withoutS2 = { ...readyCluster(vms), nodes: vms.filter((n) => n !== "s2").map((n) => clusterNode(vms, n)) }
    for (const status of ["stopped", "running"] as const) {
      const base = k3sObserved(vms, withoutS2, {
        vms: vms.map((n) => observedVm(vms, n, n === "s2" ? { tags: torn, status } : {}))
      })
      const o: Observed = {
        ...base,
        vmDetails: new Map([[s2, { protection: false, agentConfigured: true, status, uptimeSeconds: 0, tags: torn }]])
      }
      const p = plan(k3sDesired(vms), o, { policy: HealthPolicy.defaults })
      assert.deepStrictEqual(steps(p), status === "stopped" ? ["StartVm:pve-s2"] : [], status)
      assert.deepStrictEqual(
        p.findings.map((f) => [f.code, f.effect, f.vm]),
        [["k3s.member-removed", "blocked", "s2"]],
        status
      )
      assert.include(p.findings[0]?.hint ?? "", "homelab reprovision s2")
      assert.include(p.findings[0]?.hint ?? "", "/var/lib/rancher/k3s/server/db")
    }
  })

  describe("a server a teardown took out of the cluster, on a k3s that writes the tombstone (January 2026 -k3s3 on)", () => {
    const s2 = vmidOf(vms, "s2")
    const torn = ["homelab-destroy", "homelab-managed"]
    /** s2 without its Node (its etcd member gone with it), the VM `status`, marked by the teardown. */
    /** The servers' Nodes on `version`. */
    const on = (version: string) => readyCluster(vms, {}, () => ({ kubeletVersion: version }))
    const removed = (status: "stopped" | "running", cluster = readyCluster(vms)): Observed => {
      const facts = cluster as Extract<typeof cluster, { _tag: "Nodes" }>
      const base = k3sObserved(
        vms,
        {
          ...facts,
          nodes: facts.nodes.filter((n) => n.name !== "s2"),
          members: facts.members?.filter((m) => !m.name.startsWith("s2-"))
        },
        { vms: vms.map((n) => observedVm(vms, n, n === "s2" ? { tags: torn, status } : {})) }
      )
      return {
        ...base,
        vmDetails: new Map([[s2, { protection: false, agentConfigured: true, status, uptimeSeconds: 0, tags: torn }]])
      }
    }

    it("k3s.version from those releases: started (if stopped) and joined, its k3s restarted by the join; the mark cleared after it, no finding", () => {
      for (const version of ["v1.32.11+k3s3", "v1.34.3+k3s3", "v1.35.1+k3s1"]) {
        for (const status of ["stopped", "running"] as const) {
          const p = plan(k3sDesired(vms, { version }), removed(status, on(version)), { policy: HealthPolicy.defaults })
          const at = `${version} ${status}`
          assert.deepStrictEqual(p.findings, [], at)
          assert.deepStrictEqual(
            steps(p),
            status === "stopped"
              ? ["StartVm:pve-s2", "JoinK3s:s2", "UncordonK3s:s2"]
              : ["JoinK3s:s2", "UncordonK3s:s2"],
            at
          )
          const join = byId(p, "pve-s2:k3s:s2")
          assert.include(join?.reason ?? "", "apply restarts k3s on s2, which joins again as a new member", at)
          assert.include(join?.reason ?? "", "homelab-destroy", at)
          const finish = byId(p, "pve-s2:uncordon:s2") as UncordonK3s
          assert.deepStrictEqual(
            [finish.mark, finish.cordoned, finish.after],
            ["homelab-destroy", false, [join?.id]],
            at
          )
        }
      }
    })

    it("no k3s.version: the servers' version decides (what the join installs)", () => {
      const p = plan(k3sDesired(vms), removed("stopped", on("v1.33.7+k3s3")), { policy: HealthPolicy.defaults })
      assert.deepStrictEqual(p.findings, [])
      assert.deepStrictEqual(steps(p), ["StartVm:pve-s2", "JoinK3s:s2", "UncordonK3s:s2"])
      // one release before: blocked
      const q = plan(k3sDesired(vms), removed("stopped", on("v1.33.7+k3s2")), { policy: HealthPolicy.defaults })
      assert.deepStrictEqual(
        q.findings.map((f) => [f.code, f.effect, f.vm]),
        [["k3s.member-removed", "blocked", "s2"]]
      )
    })

    it("an older k3s.version: blocked, the hint for that version (no restart helps)", () => {
      const p = plan(k3sDesired(vms, { version: "v1.34.3+k3s1" }), removed("running", on("v1.34.3+k3s1")), {
        policy: HealthPolicy.defaults
      })
      assert.deepStrictEqual(steps(p), [])
      assert.deepStrictEqual(
        p.findings.map((f) => [f.code, f.effect, f.vm]),
        [["k3s.member-removed", "blocked", "s2"]]
      )
      assert.include(
        p.findings[0]?.message ?? "",
        "k3s v1.34.3+k3s1 cannot start again on the etcd data its disk holds"
      )
      assert.include(p.findings[0]?.hint ?? "", "v1.34.3+k3s3")
      assert.include(p.findings[0]?.hint ?? "", "now v1.34.3+k3s1")
    })
  })

  it("a server that this run rebuilds is not the one it goes through", () => {
    const o = k3sObserved(vms, cordoned("s2"), withTags({ s2: marked }))
    assert.deepStrictEqual(uncordons(planOf(k3sDesired(vms), o))[0]?.via, { vm: "s1", ip: ipOf(vms, "s1") })
    const p = planOf(k3sDesired(vms), o, { reprovision: ["s1"] })
    assert.include(steps(p), "RecreateVm:s1")
    assert.deepStrictEqual(uncordons(p)[0]?.via, { vm: "s3", ip: ipOf(vms, "s3") })
  })

  it("a VM that is not there once, or not ours, is never uncordoned by its mark", () => {
    const notOurs = k3sObserved(vms, cordoned("a1"), withTags({ a1: ["homelab-restart"] }))
    assert.deepStrictEqual(uncordons(planOf(k3sDesired(vms), notOurs)), [])
  })

  it("an upgrade of a VM whose restart is unfinished waits until it is finished", () => {
    const v131 = "v1.31.5+k3s1"
    const o = k3sObserved(vms, cordoned("a1"), withTags({ a1: marked }))
    const p = planOf(k3sDesired(vms, { version: v131 }), o)
    const upgrade = byId(p, "pve-a1:k3s-upgrade:a1")
    assert.isDefined(upgrade)
    assert.include(upgrade?.after ?? [], "pve-a1:uncordon:a1")
    assert.deepStrictEqual(byId(p, "pve-a1:uncordon:a1")?.after, [])
  })
})

describe("a Node cordoned without a mark of ours", () => {
  it("is reported (info) and left cordoned: no action, the node stays converged", () => {
    const p = planOf(k3sDesired(vms), k3sObserved(vms, cordoned("a1"), withTags({ a1: ours })))
    assert.deepStrictEqual(p.actions, [])
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.effect, f.node, f.vm]),
      [["k3s.cordoned", "info", "pve-a1", "a1"]]
    )
    assert.include(p.findings[0]?.message ?? "", "no run of homelab marked it so")
    assert.include(p.findings[0]?.hint ?? "", "kubectl uncordon a1")
    assert.isTrue(assess(p).converged)
    assert.strictEqual(planVerdict(assess(p)), "converged")
  })

  it("an upgrade's own mark is the upgrade's to finish: no finding, no uncordon of the restart's", () => {
    const o = k3sObserved(vms, cordoned("a1"), withTags({ a1: ["homelab-managed", "homelab-upgrade"] }))
    const p = planOf(k3sDesired(vms), o)
    assert.deepStrictEqual(steps(p), ["UpgradeK3s:a1"])
    assert.deepStrictEqual(p.findings, [])
  })

  it("an upgrade of a Node cordoned by hand (homelab-upgrade-keep-cordon): finished, still reported, left cordoned", () => {
    const o = k3sObserved(vms, cordoned("a1"), withTags({ a1: ["homelab-managed", "homelab-upgrade-keep-cordon"] }))
    const p = planOf(k3sDesired(vms), o)
    assert.deepStrictEqual(steps(p), ["UpgradeK3s:a1"])
    const upgrade = byId(p, "pve-a1:k3s-upgrade:a1")
    assert.isTrue(upgrade?._tag === "UpgradeK3s" && upgrade.resumed && upgrade.keepCordoned === true)
    assert.include(upgrade?.reason ?? "", "it carries 'homelab-upgrade-keep-cordon'): clear the mark")
    assert.include(describeAction(upgrade as UpgradeK3s), "left cordoned as it was")
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.effect, f.vm]),
      [["k3s.cordoned", "info", "a1"]]
    )
  })
})

/** `GET …/pending` of a VM as the fixture's homelab.yaml asks for it, with `memory` as given. */
const pendingConfig = (memory: string): VmPending => ({
  digest: "d1",
  current: {
    cores: "4",
    memory,
    cpu: "host",
    scsi0: "local-lvm:vm-1-disk-0,size=32G",
    net0: "virtio=BC:24:11:2E:7A:4C,bridge=vmbr0",
    tags: "homelab-managed",
    ciuser: "ubuntu",
    sshkeys: encodeURIComponent("ssh-ed25519 AAAA me@host"),
    ipconfig0: "ip=dhcp",
    ide2: "local-lvm:vm-1-cloudinit,media=cdrom"
  },
  pending: {},
  deletes: []
})

/** Every VM's configuration read; those in `small` have less memory than homelab.yaml asks (a restart waits). */
const withConfigs = (o: Observed, small: ReadonlyArray<string>): Observed => ({
  ...o,
  configs: new Map(vms.map((n) => [vmidOf(vms, n), pendingConfig(small.includes(n) ? "8192" : "16384")]))
})

const rolling = () => ({ ...k3sDesired(vms), restart: "rolling" as const })

describe("with vm.restart: rolling", () => {
  it("the configs as homelab.yaml asks: nothing planned (the fixture is right)", () => {
    const p = planOf(rolling(), withConfigs(k3sObserved(vms, readyCluster(vms)), []))
    assert.deepStrictEqual(p.actions, [])
  })

  it("the unfinished restart is finished before this run's restarts start (one VM out of service at a time), which go on however it ends", () => {
    const o = withConfigs(k3sObserved(vms, cordoned("a2"), withTags({ a2: marked })), ["a1"])
    const p = planOf(rolling(), o)
    assert.deepStrictEqual(steps(p), ["UpdateVm:pve-a1", "UncordonK3s:a2", "RestartVm:pve-a1"])
    assert.deepStrictEqual(byId(p, "pve-a2:uncordon:a2")?.after, [])
    // ordered after it, not held by its failure: a2 is out of service already, whether or not this run brings it back
    assert.deepStrictEqual(byId(p, "pve-a1:restart:a1")?.after, ["pve-a1:update:a1"])
    assert.deepStrictEqual(byId(p, "pve-a1:restart:a1")?.afterSettled, ["pve-a2:uncordon:a2"])
    assert.deepStrictEqual(byId(p, "pve-a1:update:a1")?.after, [])
    assert.deepStrictEqual(byId(p, "pve-a1:update:a1")?.afterSettled, ["pve-a2:uncordon:a2"])
  })

  it("a marked VM whose restart is still to do: the restart finishes it (no separate uncordon); the reason says so", () => {
    const o = withConfigs(k3sObserved(vms, cordoned("a1"), withTags({ a1: marked })), ["a1"])
    const p = planOf(rolling(), o)
    assert.deepStrictEqual(steps(p), ["UpdateVm:pve-a1", "RestartVm:pve-a1"])
    const restart = byId(p, "pve-a1:restart:a1") as RestartVm
    assert.include(restart.reason, "an earlier run's restart of it did not finish")
    // the cordon is ours: drained, and uncordoned after the restart
    assert.deepStrictEqual(restart.k3s?.keepCordoned, undefined)
  })

  it("a Node cordoned by hand is restarted but left cordoned", () => {
    const o = withConfigs(k3sObserved(vms, cordoned("a1"), withTags({ a1: ours })), ["a1"])
    const p = planOf(rolling(), o)
    const restart = byId(p, "pve-a1:restart:a1") as RestartVm
    assert.strictEqual(restart.k3s?.keepCordoned, true)
    assert.include(describeAction(restart), "left cordoned as it was")
    assert.deepStrictEqual(
      p.findings.map((f) => f.code),
      ["k3s.cordoned"]
    )
  })

  it("so is one whose upgrade (of a Node cordoned by hand) did not finish: that mark does not make the cordon ours", () => {
    const keep = ["homelab-managed", "homelab-upgrade-keep-cordon"]
    const o = withConfigs(k3sObserved(vms, cordoned("a1"), withTags({ a1: keep })), ["a1"])
    const restart = byId(planOf(rolling(), o), "pve-a1:restart:a1") as RestartVm
    assert.strictEqual(restart.k3s?.keepCordoned, true)
  })
})

describe("with vm.restart: rolling, a k3s server whose Node is NotReady (its etcd member may still vote)", () => {
  const notReady = (down: Record<string, "False" | "Unknown">) =>
    readyCluster(vms, {}, (n) => (down[n] === undefined ? {} : { ready: down[n] }))

  it("is refused by the quorum guard while another server is down, as a Ready server is", () => {
    // (pve-s3 not planned: this run does not bring s3 back)
    const p = planOf(rolling(), withConfigs(k3sObserved(vms, notReady({ s2: "False", s3: "Unknown" })), ["s2"]), {
      only: ["pve-s1", "pve-s2"]
    })
    assert.isFalse(p.actions.some((a) => a._tag === "RestartVm"))
    const refused = p.findings.find((f) => f.vm === "s2" && f.code.startsWith("k3s.quorum"))
    assert.deepStrictEqual([refused?.code, refused?.effect], ["k3s.quorum", "blocked"])
    assert.match(refused?.message ?? "", /^not restarting k3s server s2: restart of s2 would leave 1 of 3 etcd members/)
    assert.include(refused?.hint ?? "", "bring s3 back")
  })

  it("otherwise goes, not drained but guarded again just before, one VM out of service at a time", () => {
    const p = planOf(rolling(), withConfigs(k3sObserved(vms, notReady({ s2: "False" })), ["s2", "a1"]))
    assert.deepStrictEqual(steps(p), [
      "UpdateVm:pve-s2",
      "JoinK3s:s2",
      "UpdateVm:pve-a1",
      "RestartVm:pve-s2",
      "RestartVm:pve-a1"
    ])
    const s2 = byId(p, "pve-s2:restart:s2") as RestartVm
    assert.deepStrictEqual([s2.k3s, s2.etcd], [undefined, { via: { vm: "s1", ip: ipOf(vms, "s1") } }])
    assert.include(describeAction(s2), "etcd's quorum checked first")
    // its join (start k3s, wait for Ready) comes after the restart; the next VM's restart after that restart
    assert.include(byId(p, "pve-s2:k3s:s2")?.after ?? [], "pve-s2:restart:s2")
    assert.include(byId(p, "pve-a1:restart:a1")?.after ?? [], "pve-s2:restart:s2")
    // an agent's restart is no server's: not guarded
    assert.strictEqual((byId(p, "pve-a1:restart:a1") as RestartVm).etcd, undefined)
  })

  it("the members unread: refused blind (k3s.quorum-unknown), as a Ready server is", () => {
    const p = planOf(
      rolling(),
      withConfigs(
        k3sObserved(
          vms,
          readyCluster(vms, { members: undefined }, (n) => (n === "s2" ? { ready: "Unknown" } : {}))
        ),
        ["s2"]
      )
    )
    assert.deepStrictEqual(
      p.findings.filter((f) => f.vm === "s2").map((f) => [f.code, f.effect]),
      [["k3s.quorum-unknown", "blocked"]]
    )
  })
})

describe("with vm.restart: rolling, a VM whose k3s membership cannot be read is never restarted blind", () => {
  it("the cluster unreadable: no restart and no update of any VM that waits for one (k3s.restart-unknown), servers and agents alike", () => {
    const unavailable = { _tag: "Unavailable" as const, message: "no server VM answers", hint: "bring them back" }
    const p = planOf(rolling(), withConfigs(k3sObserved(vms, unavailable), ["s2", "a1"]))
    assert.deepStrictEqual(p.actions, [])
    const refused = p.findings.filter((f) => f.code === "k3s.restart-unknown")
    assert.deepStrictEqual(
      refused.map((f) => [f.vm, f.effect]),
      [
        ["s2", "blocked"],
        ["a1", "blocked"]
      ]
    )
    assert.include(refused[0]?.message ?? "", "checked against etcd's quorum")
    assert.include(refused[0]?.message ?? "", "memory 8192 → 16384 MiB")
  })

  it("its Node in the cluster but the VM's IP unknown: not restarted; a VM with no Node (not a member) is restarted plainly", () => {
    const o = withConfigs(k3sObserved(vms, readyCluster(vms)), ["a1"])
    const noIp: Observed = { ...o, ips: new Map([...(o.ips ?? [])].filter(([vmid]) => vmid !== vmidOf(vms, "a1"))) }
    const p = planOf(rolling(), noIp)
    assert.deepStrictEqual(steps(p), [])
    assert.deepStrictEqual(
      p.findings.map((f) => [f.code, f.vm]),
      [["k3s.restart-unknown", "a1"]]
    )
    const gone = withConfigs(k3sObserved(vms, readyCluster(vms.filter((n) => n !== "a1"))), ["a1"])
    const plain = byId(planOf(rolling(), gone), "pve-a1:restart:a1") as RestartVm
    assert.isDefined(plain)
    assert.strictEqual(plain.k3s, undefined)
  })
})
