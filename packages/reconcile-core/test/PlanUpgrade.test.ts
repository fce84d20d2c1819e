import { assert, describe, it } from "@effect/vitest"
import type { ClusterNode } from "@homelab/k3s-join"
import { describeAction, type UpgradeK3s } from "../src/Action.js"
import type { DesiredK3s } from "../src/Desired.js"
import type { K3sFacts } from "../src/Observed.js"
import { planUpgrades, targetVersion, type UpgradeCandidate } from "../src/PlanUpgrade.js"
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
    assert.deepStrictEqual(
      upgrades(through)
        .filter((u) => u.vm === "s1")
        .map((u) => [u.from, ...u.steps].join(" → ")),
      ["v1.30.5+k3s1 → v1.31.13+k3s1", "v1.31.13+k3s1 → v1.32.9+k3s1"]
    )
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
      p.findings.filter((f) => f.code.startsWith("k3s.")).map((f) => `${f.code} ${f.vm} ${f.effect}`),
      // this run starts k3s on s3 (its Node is not Ready) first: s2's upgrade, and the rollout, are the next run's
      ["k3s.quorum-later s2 deferred", ...["a1", "a2", "a3", "a4"].map((n) => `k3s.upgrade-waits ${n} deferred`)]
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

  const channels = [
    { name: "v1.31", latest: "v1.31.13+k3s1" },
    { name: "v1.32", latest: "v1.32.9+k3s1" }
  ]
  const [v130, v1311, v132] = ["v1.30.5+k3s1", "v1.31.13+k3s1", "v1.32.9+k3s1"]
  const hops = (p: ReturnType<typeof planOf>) => upgrades(p).map((u) => `${u.vm} ${u.steps.at(-1) ?? "uncordon"}`)

  it("two minors go hop by hop across the cluster: every server to the minor between, then the agents, then every server to the target, then the agents", () => {
    const d = k3sDesired(vms, {
      version: v132,
      upgrade: { maxUnavailable: 2, drainTimeout: k3sDesired(vms).k3s?.upgrade?.drainTimeout as never }
    })
    const p = planOf(d, k3sObserved(vms, readyCluster(vms, { channels })))
    assert.deepStrictEqual(hops(p), [...vms.map((n) => `${n} ${v1311}`), ...vms.map((n) => `${n} ${v132}`)])
    const id = (vm: string, v: string) => `pve-${vm}:k3s-upgrade:${vm}@${v}`
    const after = (vm: string, v: string) => byId(p, id(vm, v))?.after
    assert.deepStrictEqual(after("s1", v1311), [])
    assert.deepStrictEqual(after("s3", v1311), [id("s2", v1311)])
    assert.deepStrictEqual(after("a1", v1311), [id("s3", v1311)])
    assert.deepStrictEqual(after("a3", v1311), [id("a1", v1311), id("a2", v1311)])
    // the next minor begins once the last batch of agents is done
    assert.deepStrictEqual(after("s1", v132), [id("a3", v1311), id("a4", v1311)])
    assert.deepStrictEqual(after("a1", v132), [id("s3", v132)])
    const s1 = upgrades(p).filter((u) => u.vm === "s1")
    assert.deepStrictEqual(
      s1.map((u) => [u.from, u.steps, u.exclusive]),
      [
        [v130, [v1311], "k3s-server"],
        [v1311, [v132], "k3s-server"]
      ]
    )
    assert.include(s1[0]?.reason ?? "", "one minor at a time, the whole cluster each time")
    assert.deepStrictEqual(
      p.findings.filter((f) => f.layer === "k3s"),
      []
    )
  })

  it("an interrupted rollout resumes in that order: the unfinished member first, then the rest of its hop, then the next", () => {
    const d = k3sDesired(vms, { version: v132 })
    const marked = (vm: string) =>
      vms.map((n) => observedVm(vms, n, n === vm ? { tags: ["homelab-managed", "homelab-upgrade"] } : {}))
    // s2 was cordoned for its first hop, nothing installed yet: its step goes first in that hop
    const cordoned = planOf(
      d,
      k3sObserved(
        vms,
        readyCluster(vms, { channels }, (n) => (n === "s1" ? { kubeletVersion: v1311 } : {})),
        { vms: marked("s2") }
      )
    )
    assert.deepStrictEqual(hops(cordoned), [
      `s2 ${v1311}`,
      `s3 ${v1311}`,
      ...["a1", "a2", "a3", "a4"].map((n) => `${n} ${v1311}`),
      ...vms.map((n) => `${n} ${v132}`)
    ])
    assert.isTrue(upgrades(cordoned)[0]?.resumed)
    // s1 was upgraded to the minor between and not yet uncordoned: uncordoned first, on with the others after
    const installed = planOf(
      d,
      k3sObserved(
        vms,
        readyCluster(vms, { channels }, (n) => (n === "s1" ? { kubeletVersion: v1311 } : {})),
        { vms: marked("s1") }
      )
    )
    assert.deepStrictEqual(hops(installed), [
      "s1 uncordon",
      `s2 ${v1311}`,
      `s3 ${v1311}`,
      ...["a1", "a2", "a3", "a4"].map((n) => `${n} ${v1311}`),
      ...vms.map((n) => `${n} ${v132}`)
    ])
    assert.deepStrictEqual(byId(installed, "pve-s2:k3s-upgrade:s2@v1.31.13+k3s1")?.after, [
      "pve-s1:k3s-upgrade:s1@uncordon"
    ])
  })

  it("a cluster outside the skew policy is reported and its oldest members move first; a step that would break the policy is refused", () => {
    const d = k3sDesired(vms, { version: v132 })
    // s1 is two minors ahead of the other servers (an older homelab upgraded it alone)
    const skewed = planOf(
      d,
      k3sObserved(
        vms,
        readyCluster(vms, { channels }, (n) => (n === "s1" ? { kubeletVersion: v132 } : {}))
      )
    )
    assert.deepStrictEqual(hops(skewed), [
      `s2 ${v1311}`,
      `s3 ${v1311}`,
      ...["a1", "a2", "a3", "a4"].map((n) => `${n} ${v1311}`),
      ...vms.filter((n) => n !== "s1").map((n) => `${n} ${v132}`)
    ])
    const report = skewed.findings.filter((f) => f.code === "k3s.version-skew")
    assert.deepStrictEqual(
      report.map((f) => f.effect),
      ["info"]
    )
    assert.include(
      report[0]?.message ?? "",
      `servers are more than one minor apart (s1 ${v132}, s2 ${v130}, s3 ${v130})`
    )
    // a server that is not ours stays on v1.30: our servers may go to v1.31, but no agent may pass it
    const x1: ClusterNode = {
      ...clusterNode(vms, "s1"),
      name: "x1",
      internalIPs: ["10.0.0.99"],
      etcdMemberName: "x1-0000000a"
    }
    const foreign = planOf(
      k3sDesired(vms, { version: v1311 }),
      k3sObserved(vms, {
        ...(readyCluster(vms) as Extract<K3sFacts, { _tag: "Nodes" }>),
        nodes: [...(readyCluster(vms) as Extract<K3sFacts, { _tag: "Nodes" }>).nodes, x1],
        members: [
          ...members(vms),
          { id: "1099", name: "x1-0000000a", peerURL: undefined, clientURL: undefined, isLearner: false }
        ]
      })
    )
    assert.deepStrictEqual(
      hops(foreign),
      ["s1", "s2", "s3"].map((n) => `${n} ${v1311}`)
    )
    assert.deepStrictEqual(
      foreign.findings
        .filter((f) => f.code.startsWith("k3s.") && f.code !== "k3s.even-servers")
        .map((f) => `${f.code} ${f.vm}`),
      ["k3s.version-skew a1", "k3s.upgrade-waits a2", "k3s.upgrade-waits a3", "k3s.upgrade-waits a4"]
    )
    // said as what the step would do (a1 still runs v1.30), naming the server that holds it back, and that a server
    // homelab does not manage is the user's to upgrade
    const skew = foreign.findings.find((f) => f.code === "k3s.version-skew")
    assert.include(
      skew?.message ?? "",
      `agent a1 would run ${v1311}, newer than the oldest server x1 (${v130}); a1 runs ${v130} now`
    )
    assert.include(skew?.hint ?? "", "a server homelab does not manage is yours to upgrade")
  })

  it("a k3s.version that is no k3s release: every member that would upgrade is blocked, nothing is planned", () => {
    const missing = "v1.31.99+k3s1"
    const url = `https://github.com/k3s-io/k3s/releases/download/${missing}/sha256sum-amd64.txt`
    const p = planOf(
      k3sDesired(vms, { version: missing }),
      k3sObserved(vms, readyCluster(vms, { release: { _tag: "Missing", version: missing, url } }))
    )
    assert.deepStrictEqual(upgrades(p), [])
    assert.deepStrictEqual(
      p.findings.filter((f) => f.layer === "k3s").map((f) => `${f.code} ${f.vm} ${f.effect}`),
      vms.map((n) => `k3s.release-missing ${n} blocked`)
    )
    assert.include(p.findings[0]?.message ?? "", `k3s.version ${missing} is not a k3s release (${url} answers 404`)
    assert.include(p.findings[0]?.hint ?? "", "set k3s.version to a published release")
  })
})

describe("k3s.installFlags changed after the install", () => {
  /** The k3s.io/node-args of a member homelab installed with `flags`. */
  const nodeArgs = (name: string, flags: ReadonlyArray<string>) =>
    name.startsWith("s")
      ? ["server", "--token", "********", "--server", "https://10.0.0.11:6443", "--node-name", name, ...flags]
      : ["agent", "--token", "********", "--server", "https://10.0.0.11:6443", "--node-name", name, ...flags]
  const running = (flags: ReadonlyArray<string>) =>
    k3sObserved(
      vms,
      readyCluster(vms, {}, (n) => ({ nodeArgs: nodeArgs(n, flags) }))
    )
  const wanted = ["--write-kubeconfig-mode=644", "--node-label=tier=gold"]

  it("each member is installed again with them, on its version, in the upgrade's order; the same flags are no change", () => {
    const p = planOf(k3sDesired(vms, { installFlags: wanted }), running(["--write-kubeconfig-mode", "644"]))
    assert.deepStrictEqual(
      steps(p),
      vms.map((n) => `UpgradeK3s:${n}`)
    )
    const after = (vm: string) => byId(p, `pve-${vm}:k3s-upgrade:${vm}`)?.after
    assert.deepStrictEqual(["s1", "s2", "s3", "a1", "a2"].map(after), [
      [],
      ["pve-s1:k3s-upgrade:s1"],
      ["pve-s2:k3s-upgrade:s2"],
      ["pve-s3:k3s-upgrade:s3"],
      ["pve-a1:k3s-upgrade:a1"]
    ])
    const s1 = upgrades(p)[0]
    assert.deepStrictEqual(
      [s1?.from, s1?.steps, s1?.applyFlags, s1?.flagChanges, s1?.exclusive],
      ["v1.30.5+k3s1", ["v1.30.5+k3s1"], true, ["+--node-label=tier=gold"], "k3s-server"]
    )
    assert.include(
      s1?.reason ?? "",
      "k3s.installFlags differ from the flags its k3s runs with (adds --node-label=tier=gold)"
    )
    assert.strictEqual(
      describeAction(s1 as UpgradeK3s),
      "install k3s v1.30.5+k3s1 on s1 (server) again with k3s.installFlags (+--node-label=tier=gold): cordon, drain, install, wait Ready, uncordon"
    )
    // another spelling, another order: the same flags
    const same = planOf(
      k3sDesired(vms, { installFlags: ["--node-label", "tier=gold", "--write-kubeconfig-mode", "644"] }),
      running(wanted)
    )
    assert.deepStrictEqual([same.actions, same.findings], [[], []])
  })

  it("a comma-separated value of a flag k3s splits (--disable, --tls-san) is that flag once per item: no change", () => {
    const lists = (serverFlags: ReadonlyArray<string>) => k3sDesired(vms, { serverFlags })
    const observed = k3sObserved(
      vms,
      readyCluster(vms, {}, (n) => ({
        nodeArgs: nodeArgs(n, n.startsWith("s") ? ["--disable", "traefik,servicelb", "--tls-san", "k3s.lan"] : [])
      }))
    )
    const same = planOf(lists(["--disable=traefik", "--disable", "servicelb", "--tls-san=k3s.lan"]), observed)
    assert.deepStrictEqual([same.actions, same.findings], [[], []])
    // a real difference still is one: an item dropped (servicelb is one k3s cannot change), an item added
    const dropped = planOf(lists(["--disable=traefik", "--tls-san=k3s.lan"]), observed)
    assert.deepStrictEqual(
      dropped.findings.map((f) => `${f.code} ${f.vm}`),
      ["s1", "s2", "s3"].map((n) => `k3s.flags-immutable ${n}`)
    )
    assert.include(dropped.findings[0]?.message ?? "", "(drops --disable=servicelb)")
    const added = planOf(lists(["--disable=traefik,servicelb", "--tls-san=k3s.lan,10.0.0.100"]), observed)
    assert.deepStrictEqual(steps(added), ["UpgradeK3s:s1", "UpgradeK3s:s2", "UpgradeK3s:s3"])
    assert.deepStrictEqual(upgrades(added)[0]?.flagChanges, ["+--tls-san=10.0.0.100"])
  })

  it("a dropped --node-label's label and changed taints are done on the Node before the install; a changed value is k3s's", () => {
    const observed = running(["--node-label", "tier=gold", "--node-taint", "gpu=true:NoSchedule"])
    const silver = planOf(
      k3sDesired(vms, { installFlags: ["--node-label=tier=silver", "--node-taint=gpu=true:NoSchedule"] }),
      observed
    )
    // k3s sets tier=silver itself at the restart (its labels are set again, merged, at every start)
    assert.deepStrictEqual(
      upgrades(silver).map((u) => u.nodeChanges),
      vms.map(() => undefined)
    )
    const dropped = planOf(k3sDesired(vms, { installFlags: ["--node-taint=spot=yes:NoExecute"] }), observed)
    const s1 = upgrades(dropped)[0]
    assert.deepStrictEqual(s1?.nodeChanges, {
      removeLabels: ["tier"],
      removeTaints: ["gpu=true:NoSchedule"],
      addTaints: ["spot=yes:NoExecute"]
    })
    assert.strictEqual(
      describeAction(s1 as UpgradeK3s),
      "install k3s v1.30.5+k3s1 on s1 (server) again with k3s.installFlags (+--node-taint=spot=yes:NoExecute ---node-label=tier=gold ---node-taint=gpu=true:NoSchedule); on its Node first: remove label tier; remove taint gpu=true:NoSchedule; add taint spot=yes:NoExecute: cordon, drain, install, wait Ready, uncordon"
    )
    // with a version upgrade too, on its first hop only
    const upgrade = planOf(k3sDesired(vms, { installFlags: [], version: v131 }), observed)
    assert.deepStrictEqual(upgrades(upgrade)[0]?.nodeChanges?.removeLabels, ["tier"])
    // a change k3s cannot make freezes every flag change: nothing for the Node either
    const frozen = planOf(k3sDesired(vms, { installFlags: ["--cluster-cidr=10.52.0.0/16"] }), observed)
    assert.deepStrictEqual(upgrades(frozen), [])
  })

  it("a dropped flag is a change too; a server the quorum guard keeps up stops the rollout there", () => {
    const observed = k3sObserved(
      vms,
      readyCluster(vms, {}, (n) => ({
        nodeArgs: nodeArgs(n, ["--disable", "traefik"]),
        ...(n === "s3" ? { ready: "False" as const } : {})
      }))
    )
    const p = planOf(k3sDesired(vms), observed)
    assert.deepStrictEqual(upgrades(p), [])
    // s3's k3s is started again by the same plan: the refusal is the next run's (quorumAfterPlan)
    assert.deepStrictEqual(p.findings.map((f) => `${f.code} ${f.vm}`).slice(0, 1), ["k3s.quorum-later s1"])
    assert.include(p.findings[0]?.message ?? "", "(to run it with k3s.installFlags: drops --disable=traefik)")
    const up = planOf(k3sDesired(vms), running(["--disable", "traefik"]))
    assert.deepStrictEqual(upgrades(up)[0]?.flagChanges, ["---disable=traefik"])
  })

  it("each role against its own list: k3s.agentFlags touch only the agents, k3s.serverFlags only the servers", () => {
    const observed = k3sObserved(
      vms,
      readyCluster(vms, {}, (n) =>
        n.startsWith("s")
          ? { nodeArgs: nodeArgs(n, ["--node-label", "homelab=true", "--disable", "traefik"]) }
          : { nodeArgs: nodeArgs(n, ["--node-label", "homelab=true", "--node-label", "role=worker"]) }
      )
    )
    const lists = (over: Partial<DesiredK3s> = {}) =>
      k3sDesired(vms, {
        installFlags: ["--node-label=homelab=true"],
        serverFlags: ["--disable=traefik"],
        agentFlags: ["--node-label=role=worker"],
        ...over
      })
    // what each role runs with is what homelab.yaml gives it: no change
    const same = planOf(lists(), observed)
    assert.deepStrictEqual([same.actions, same.findings], [[], []])

    const agentsOnly = planOf(lists({ agentFlags: ["--node-label=role=worker", "--node-label=tier=bronze"] }), observed)
    assert.deepStrictEqual(
      steps(agentsOnly),
      ["a1", "a2", "a3", "a4"].map((n) => `UpgradeK3s:${n}`)
    )
    const a1 = upgrades(agentsOnly)[0]
    assert.deepStrictEqual(
      [a1?.flagChanges, a1?.flagSource],
      [["+--node-label=tier=bronze"], "k3s.installFlags + k3s.agentFlags"]
    )
    assert.include(
      a1?.reason ?? "",
      "k3s.installFlags + k3s.agentFlags differ from the flags its k3s runs with (adds --node-label=tier=bronze)"
    )

    const serversOnly = planOf(lists({ serverFlags: ["--disable=traefik", "--tls-san=k3s.lan"] }), observed)
    assert.deepStrictEqual(steps(serversOnly), ["UpgradeK3s:s1", "UpgradeK3s:s2", "UpgradeK3s:s3"])
    assert.deepStrictEqual(upgrades(serversOnly)[0]?.flagChanges, ["+--tls-san=k3s.lan"])

    // a server's flag k3s cannot change: refused on the servers (the agents never had it), restored in k3s.serverFlags
    const cidr = planOf(lists({ serverFlags: ["--disable=traefik", "--cluster-cidr=10.52.0.0/16"] }), observed)
    assert.deepStrictEqual(upgrades(cidr), [])
    assert.deepStrictEqual(
      cidr.findings.map((f) => `${f.code} ${f.vm}`),
      ["s1", "s2", "s3"].map((n) => `k3s.flags-immutable ${n}`)
    )
    assert.strictEqual(
      cidr.findings[0]?.hint,
      "restore --cluster-cidr in k3s.serverFlags as the cluster runs it; a new value needs a new cluster"
    )
  })

  it("a flag k3s cannot change on a running cluster is refused, and no flag change is made; a version upgrade keeps the unit's flags", () => {
    const d = k3sDesired(vms, { installFlags: ["--cluster-cidr=10.52.0.0/16", "--node-label=tier=gold"] })
    const p = planOf(d, running(["--cluster-cidr", "10.42.0.0/16"]))
    assert.deepStrictEqual(upgrades(p), [])
    assert.deepStrictEqual(
      p.findings.map((f) => `${f.code} ${f.effect} ${f.vm}`),
      vms.map((n) => `k3s.flags-immutable blocked ${n}`)
    )
    assert.include(
      p.findings[0]?.message ?? "",
      "k3s.installFlags changes --cluster-cidr for s1 (adds --cluster-cidr=10.52.0.0/16 --node-label=tier=gold; drops --cluster-cidr=10.42.0.0/16): k3s cannot change it once the cluster has started"
    )
    const upgrade = planOf(
      k3sDesired(vms, { installFlags: ["--cluster-cidr=10.52.0.0/16", "--node-label=tier=gold"], version: v131 }),
      running(["--cluster-cidr", "10.42.0.0/16"])
    )
    assert.deepStrictEqual(
      upgrades(upgrade).map((u) => [u.vm, u.steps.join(), u.applyFlags ?? false]),
      vms.map((n) => [n, v131, false])
    )
  })
})
