import { assert, describe, it } from "@effect/vitest"
import { describeAction, type UpgradeK3s } from "../src/Action.js"
import { planUpgrades, targetVersion, type UpgradeCandidate } from "../src/PlanUpgrade.js"
import {
  byId,
  ipOf,
  k3sDesired,
  k3sObserved,
  members,
  names,
  observedVm,
  planOf,
  readyCluster,
  steps
} from "./k3sFixture.js"

const vms = names(3, 4)
const v131 = "v1.31.5+k3s1"

const upgrades = (p: ReturnType<typeof planOf>) => p.actions.filter((a): a is UpgradeK3s => a._tag === "UpgradeK3s")

describe("the rolling upgrade in the plan", () => {
  it("servers one at a time, then agents in batches of maxUnavailable, each batch after the one before", () => {
    const d = k3sDesired(vms, {
      version: v131,
      upgrade: { maxUnavailable: 2, drainTimeout: k3sDesired(vms).k3s?.upgrade?.drainTimeout as never }
    })
    const p = planOf(d, k3sObserved(vms, readyCluster(vms)))
    assert.deepStrictEqual(
      steps(p),
      vms.map((n) => `UpgradeK3s:${n}`)
    )
    const after = (vm: string) => byId(p, `pve-${vm}:k3s-upgrade:${vm}`)?.after
    assert.deepStrictEqual(after("s1"), [])
    assert.deepStrictEqual(after("s2"), ["pve-s1:k3s-upgrade:s1"])
    assert.deepStrictEqual(after("s3"), ["pve-s2:k3s-upgrade:s2"])
    assert.deepStrictEqual(after("a1"), ["pve-s3:k3s-upgrade:s3"])
    assert.deepStrictEqual(after("a2"), ["pve-s3:k3s-upgrade:s3"])
    assert.deepStrictEqual(after("a3"), ["pve-a1:k3s-upgrade:a1", "pve-a2:k3s-upgrade:a2"])
    assert.deepStrictEqual(after("a4"), ["pve-a1:k3s-upgrade:a1", "pve-a2:k3s-upgrade:a2"])
    const s1 = upgrades(p)[0]
    assert.deepStrictEqual(
      [s1?.steps, s1?.exclusive, s1?.via],
      [[v131], "k3s-server", { vm: "s2", ip: ipOf(vms, "s2") }]
    )
    assert.include(s1?.reason ?? "", "s1 runs v1.30.5+k3s1, k3s.version v1.31.5+k3s1")
    assert.isFalse(
      planOf(
        d,
        k3sObserved(
          vms,
          readyCluster(vms, {}, () => ({ kubeletVersion: v131 }))
        )
      ).actions.length > 0
    )
  })

  it("a skipped minor: planned through the newest release of the minor between, refused without it", () => {
    const d = k3sDesired(vms, { version: "v1.32.9+k3s1" })
    const channels = [
      { name: "v1.31", latest: "v1.31.13+k3s1" },
      { name: "v1.32", latest: "v1.32.9+k3s1" }
    ]
    const through = planOf(d, k3sObserved(vms, readyCluster(vms, { channels })))
    assert.deepStrictEqual(upgrades(through)[0]?.steps, ["v1.31.13+k3s1", "v1.32.9+k3s1"])
    const refused = planOf(d, k3sObserved(vms, readyCluster(vms, { channelsError: "curl exit code 6" })))
    assert.deepStrictEqual(upgrades(refused), [])
    assert.deepStrictEqual(
      refused.findings.map((f) => `${f.code} ${f.vm}`),
      ["k3s.skips-minor s1", ...vms.slice(1).map((n) => `k3s.upgrade-waits ${n}`)]
    )
    assert.include(refused.findings[0]?.message ?? "", "skips v1.31: k3s upgrades one minor at a time")
  })

  it("a server the quorum guard refuses stops the rollout there: no agent runs ahead of it", () => {
    const d = k3sDesired(vms, { version: v131 })
    const o = k3sObserved(
      vms,
      readyCluster(vms, {}, (n) => (n === "s3" ? { ready: "Unknown" } : n === "s1" ? { kubeletVersion: v131 } : {}))
    )
    const p = planOf(d, o)
    assert.deepStrictEqual(
      steps(p).filter((s) => s.startsWith("UpgradeK3s")),
      []
    )
    assert.deepStrictEqual(
      p.findings.filter((f) => f.code.startsWith("k3s.")).map((f) => `${f.code} ${f.vm}`),
      ["k3s.quorum s2", ...["a1", "a2", "a3", "a4"].map((n) => `k3s.upgrade-waits ${n}`)]
    )
  })

  it("a member marked homelab-upgrade on the target already is only uncordoned; a channel is resolved", () => {
    const marked = k3sObserved(
      vms,
      readyCluster(vms, {}, () => ({ kubeletVersion: v131 })),
      {
        vms: vms.map((n) => observedVm(vms, n, n === "a2" ? { tags: ["homelab-managed", "homelab-upgrade"] } : {}))
      }
    )
    const p = planOf(k3sDesired(vms, { version: v131 }), marked)
    assert.deepStrictEqual(steps(p), ["UpgradeK3s:a2"])
    assert.deepStrictEqual(upgrades(p)[0]?.steps, [])
    assert.include(upgrades(p)[0]?.reason ?? "", "did not finish")
    const channels = [{ name: "stable", latest: v131 }]
    assert.strictEqual(targetVersion({ ...k3sDesired(vms).k3s!, channel: "stable" }, channels), v131)
    const candidate: UpgradeCandidate = {
      vm: "a1",
      node: "pve-a1",
      vmid: 1004,
      ip: "10.0.0.14",
      role: "agent",
      version: "v1.30.5+k3s1",
      marked: false
    }
    // a Node cordoned by hand: upgraded all the same, left cordoned (the plan says so)
    const kept = planUpgrades([{ ...candidate, keepCordoned: true }], {
      k3s: { ...k3sDesired(vms).k3s!, version: v131 },
      facts: { nodes: [], members: members(vms) },
      membersProblem: "",
      viaFor: () => undefined
    }).actions[0]
    assert.deepStrictEqual([kept?.steps, kept?.keepCordoned], [[v131], true])
    assert.include(kept?.reason ?? "", "left cordoned")
    assert.include(
      describeAction(kept as UpgradeK3s),
      "upgrade k3s on a1 (agent) v1.30.5+k3s1 → v1.31.5+k3s1: drain, install, wait Ready; left cordoned as it was"
    )
    const unknown = planUpgrades([candidate], {
      k3s: { ...k3sDesired(vms).k3s!, channel: "stable" },
      channelsError: "curl exit code 6",
      facts: { nodes: [], members: members(vms) },
      membersProblem: "",
      viaFor: () => undefined
    })
    assert.deepStrictEqual(
      unknown.findings.map((f) => f.code),
      ["k3s.channel-unknown"]
    )
  })
})
