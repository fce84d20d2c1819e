/**
 * The cluster lifecycle against `@homelab/sim`: a cluster from nothing, the quorum guard, stale server removal,
 * cordon/drain/uncordon with PodDisruptionBudgets, rolling upgrades, the kubeconfig, and the host install lock.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import { parse as parseYaml } from "yaml"
import { RECORD_PATH } from "../src/InstallCommand.js"
import { mergeKubeconfig } from "../src/Kubeconfig.js"
import { desiredFlags, diffFlags, nodeChanges, runningFlags } from "../src/NodeFlags.js"
import { quorumCheck } from "../src/Quorum.js"
import { guestVm, rebuiltTwin, simNode, simScenario, simSetup, simUntil } from "./support/sim.js"

type Setup = Effect.Success<ReturnType<typeof simSetup>>

/**
 * A third party holds `host`'s k3s install lock (a `hold` command under the same flock) until the returned effect
 * releases it; returns once the lock is held.
 */
const holdInstallLock = (setup: Pick<Setup, "sim" | "ssh">, host: Effect.Success<ReturnType<Setup["target"]>>) =>
  Effect.gen(function* () {
    let open: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      open = resolve
    })
    // `hold` runs once flock has the lock: it says so, then keeps it until released
    let held: () => void = () => {}
    const holding = new Promise<void>((resolve) => {
      held = resolve
    })
    setup.sim.guestCommands.register("hold", async () => {
      held()
      await gate
      return { stdout: "", code: 0 }
    })
    const holder = yield* Effect.forkChild(setup.ssh.exec(host, "sudo -n flock /run/lock/homelab-k3s-join.lock hold"))
    yield* Effect.promise(() => holding)
    assert.strictEqual(
      (yield* setup.ssh.exec(host, "flock -n /run/lock/homelab-k3s-join.lock true")).exitCode,
      1,
      "the lock is held"
    )
    return Effect.suspend(() => {
      open()
      return Fiber.join(holder)
    })
  })

const ha = (extra: ReadonlyArray<ReturnType<typeof guestVm> | ReturnType<typeof rebuiltTwin>> = [], db = true) =>
  simScenario(
    [
      guestVm(200, "s1", "127.79.2.10", { role: "server", clusterInit: true }),
      guestVm(201, "s2", "127.79.2.11", { role: "server" }),
      guestVm(202, "s3", "127.79.2.12", { role: "server" }),
      guestVm(301, "a1", "127.79.2.21", { role: "agent" }),
      guestVm(302, "a2", "127.79.2.22", { role: "agent" }),
      ...extra
    ],
    {
      workloads: [
        { name: "web", replicas: 2, pdb: { minAvailable: 1 } },
        ...(db ? [{ name: "db", replicas: 1, pdb: { minAvailable: 1 } }] : [])
      ]
    }
  )

describe("a cluster from nothing", () => {
  it.live(
    "initCluster on a host holding an earlier cluster's etcd data: ExistingCluster naming its member, nothing installed, no cluster",
    () =>
      Effect.gen(function* () {
        const { sim, k3s, target } = yield* simSetup(
          simScenario([
            guestVm(214, "n4", "127.79.1.14", undefined, "running", {
              "/var/lib/rancher/k3s/server/db/etcd/name": "n4-0a1b2c3d\n"
            })
          ]),
          { timeouts: { ready: "5 seconds" } }
        )
        const host = yield* target(214)
        const error = yield* Effect.flip(k3s.initCluster({ host, version: "v1.30.5+k3s1" }))
        assert.strictEqual(error.reason._tag, "ExistingCluster", error.message)
        assert.include(error.message, "n4 holds the etcd data of an earlier k3s cluster (its member n4-0a1b2c3d")
        assert.include(error.message, "k3s ignores --cluster-init there")
        assert.notMatch(JSON.stringify(sim.requests()), /--cluster-init|k3s-install\.sh|systemctl (start|restart)/)
        assert.deepStrictEqual(sim.k3sEvents(), [])
        assert.deepStrictEqual(sim.state().k3s.strayClusters, [])
      }),
    60_000
  )

  it.live(
    "initCluster (--cluster-init, token read back), then servers one at a time and an agent; idempotent",
    () =>
      Effect.gen(function* () {
        const { sim, k3s, events, target } = yield* simSetup(
          simScenario([
            guestVm(211, "n1", "127.79.1.11"),
            guestVm(212, "n2", "127.79.1.12"),
            guestVm(213, "n3", "127.79.1.13"),
            guestVm(221, "w1", "127.79.1.21")
          ])
        )
        const first = yield* target(211)
        // before anything is installed: no unit on the host; the channels come from the host's own curl
        assert.strictEqual(yield* k3s.installedRole(first), undefined)
        const channels = yield* k3s.releaseChannels(first)
        assert.strictEqual(channels.find((c) => c.name === "v1.31")?.latest, "v1.31.13+k3s1")
        assert.isTrue(channels.some((c) => c.name === "stable"))
        const init = yield* k3s.initCluster({ host: first, version: "v1.30.5+k3s1", flags: "--tls-san k3s.lan" })
        assert.deepStrictEqual(
          [init._tag, init.node, init.version, init.token.user],
          ["Initialized", "n1", "v1.30.5+k3s1", "server"]
        )
        const again = yield* k3s.initCluster({ host: first, version: "v1.30.5+k3s1" })
        assert.strictEqual(again._tag, "AlreadyInitialized")
        assert.strictEqual(Redacted.value(again.token.value), Redacted.value(init.token.value))
        assert.deepStrictEqual(
          sim
            .k3sEvents()
            .filter((e) => e.kind === "cluster-init")
            .map((e) => e.node),
          ["n1"]
        )
        assert.strictEqual(yield* k3s.installedRole(first), "server")
        const outcomes = yield* k3s.joinAll([
          { server: first, host: yield* target(212), role: "server", token: init.token.value },
          { server: first, host: yield* target(213), role: "server", token: init.token.value },
          { server: first, host: yield* target(221), role: "agent" }
        ])
        assert.deepStrictEqual(
          outcomes.map((o) => (Result.isSuccess(o.result) ? o.result.success._tag : o.result.failure.message)),
          ["Joined", "Joined", "Joined"]
        )
        assert.strictEqual(yield* k3s.installedRole(yield* target(221)), "agent")
        const state = sim.state().k3s
        assert.deepStrictEqual(state.nodes.map((n) => [n.name, n.role, n.ready]).sort(), [
          ["n1", "server", "True"],
          ["n2", "server", "True"],
          ["n3", "server", "True"],
          ["w1", "agent", "True"]
        ])
        assert.strictEqual(state.etcdMembers.filter((m) => !m.isLearner).length, 3)
        assert.deepStrictEqual(state.strayClusters, [])
        // the token never on a command line, --cluster-init only on the first server
        const log = JSON.stringify(sim.requests())
        assert.notInclude(log, Redacted.value(init.token.value).split("::")[1] ?? "x")
        assert.strictEqual(log.split("--cluster-init").length - 1, 1)
        // every wait reported its progress: what, elapsed, limit — and when it ended
        const waits = events.filter((e) => e._tag === "Wait")
        assert.ok(waits.some((e) => e._tag === "Wait" && e.what === "node n1 to become Ready" && e.limitMs === 20_000))
        assert.ok(waits.some((e) => e._tag === "Wait" && e.done))
      }),
    60_000
  )
})

describe("the quorum guard and a stale server", () => {
  it.live(
    "refuses to take a second server out while one is down, names the members; removes the dead one's Node and member; its rebuild joins",
    () =>
      Effect.gen(function* () {
        const { sim, k3s, target } = yield* simSetup(ha([rebuiltTwin(303, "s3", "127.79.2.13")]))
        const s1 = yield* target(200)
        const s2 = yield* target(201)
        sim.setVmStatus(202, { status: "stopped" })
        // the Node shows it once the node-monitor grace period has passed
        yield* simUntil(() => simNode(sim, "s3")?.ready === "Unknown", "s3 Unknown")
        const facts = yield* k3s.clusterFacts(s1)
        assert.strictEqual(facts.members.length, 3)
        const refused = quorumCheck(facts, "s2", "upgrade")
        assert.isFalse(refused.ok)
        assert.match(
          refused.reason,
          /^upgrade of s2 would leave 1 of 3 etcd members healthy, quorum needs 2 \(s1-[0-9a-f]{8} Ready, s2-[0-9a-f]{8} Ready, s3-[0-9a-f]{8} NotReady \(Unknown\)\): bring s3 back/
        )
        const error = yield* Effect.flip(k3s.upgrade({ server: s1, host: s2, role: "server", version: "v1.31.5+k3s1" }))
        assert.strictEqual(error.reason._tag, "QuorumAtRisk", error.message)
        assert.ok(!sim.k3sEvents().some((e) => e.kind === "node-upgraded" || e.kind === "node-cordoned"))
        assert.isTrue(quorumCheck(facts, "s3", "rebuild").ok)

        const removed = yield* k3s.removeServer({ server: s1, node: "s3" })
        assert.isTrue(removed.nodeDeleted)
        assert.match(removed.removedMembers[0] ?? "", /^s3-[0-9a-f]{8}$/)
        assert.deepStrictEqual(
          sim.state().k3s.etcdMembers.map((m) => m.name.slice(0, 2)),
          ["s1", "s2"]
        )
        const kinds = sim
          .k3sEvents()
          .filter((e) => e.node.startsWith("s3"))
          .map((e) => e.kind)
        assert.deepStrictEqual(kinds, ["node-deleting", "etcd-member-removed", "node-deleted", "secret-deleted"])
        assert.deepStrictEqual(yield* k3s.removeServer({ server: s1, node: "s3" }), {
          node: "s3",
          nodeDeleted: false,
          removedMembers: []
        })
        sim.setVmStatus(303, { status: "running" })
        const rebuilt = yield* k3s.ensureMember({ server: s1, host: yield* target(303), role: "server" })
        assert.strictEqual(rebuilt._tag, "Joined")
        assert.strictEqual(sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("s3-")).length, 1)
      }),
    60_000
  )
})

describe("a re-join of a server whose k3s runs (a NotReady Node), with other inputs", () => {
  it.live(
    "refuses the restart while another server is down (QuorumAtRisk, nothing restarted, no quorum lost); once it is back, the next join restarts it",
    () =>
      Effect.gen(function* () {
        const { sim, k3s, target, ssh } = yield* simSetup(ha())
        const s1 = yield* target(200)
        const s2 = yield* target(201)
        // s2's kubelet posts NotReady while its k3s (and etcd member) run on; s3 is down
        yield* Effect.promise(() => sim.addFaults([{ kind: "k3sNodeNotReady", vmid: 201 }]))
        sim.setVmStatus(202, { status: "stopped" })
        yield* simUntil(
          () => simNode(sim, "s3")?.ready === "Unknown" && simNode(sim, "s2")?.ready === "False",
          "s3 Unknown, s2 NotReady"
        )
        const since = sim.k3sEvents().length
        const quorumEvents = () =>
          sim
            .k3sEvents()
            .slice(since)
            .filter((e) => e.kind.startsWith("etcd-quorum-"))
            .map((e) => e.kind)
        // other flags than s2's unit has: the install would restart its k3s, and its etcd member with it
        const flags = ["--node-label", "tier=db"]
        const error = yield* Effect.flip(
          k3s.ensureMember({ server: s1, host: s2, role: "server", flags, timeouts: { ready: "3 seconds" } })
        )
        assert.deepStrictEqual(quorumEvents(), [], "etcd kept its quorum")
        assert.strictEqual(error.reason._tag, "QuorumAtRisk", error.message)
        if (error.reason._tag === "QuorumAtRisk") {
          assert.strictEqual(error.reason.node, "s2")
          assert.strictEqual(error.reason.action, "restart")
          assert.match(
            error.reason.detail,
            /^restart of s2 would leave 1 of 3 etcd members healthy, quorum needs 2 \(s1-[0-9a-f]{8} Ready, s2-[0-9a-f]{8} NotReady \(False\), s3-[0-9a-f]{8} NotReady \(Unknown\)\): bring s3 back/
          )
        }
        assert.match(error.message, /its restart pending/)
        assert.strictEqual((yield* ssh.exec(s2, "systemctl is-active k3s")).stdout, "active\n", "k3s on s2 runs on")
        assert.isFalse(
          sim.operations().some((o) => o.operation === "k3s-restart" && o.k3sNode === "s2"),
          "s2's k3s was not restarted"
        )

        // s3 back: the next join restarts s2's k3s with what the refused one installed, and it is Ready (the runtime
        // hang cleared as it restarts)
        sim.setVmStatus(202, { status: "running" })
        yield* simUntil(() => simNode(sim, "s3")?.ready === "True", "s3 Ready")
        const unwatch = sim.watch((r) => {
          if (r._tag === "Operation" && r.operation.operation === "k3s-restart" && r.operation.k3sNode === "s2")
            void sim.clearFaults({ kind: "k3sNodeNotReady" })
        })
        const joined = yield* k3s.ensureMember({ server: s1, host: s2, role: "server", flags })
        unwatch()
        assert.strictEqual(joined._tag, "Joined")
        const node = (yield* k3s.clusterNodes(s1)).find((n) => n.name === "s2")
        assert.include(node?.nodeArgs ?? [], "tier=db")
        assert.deepStrictEqual(quorumEvents(), [], "one server out at a time")
      }),
    60_000
  )
})

describe("cordon, drain, uncordon", () => {
  it.live("drains through PodDisruptionBudgets; a budget that allows nothing is DrainFailed at the timeout", () =>
    Effect.gen(function* () {
      const { sim, k3s, target } = yield* simSetup(ha())
      const s1 = yield* target(200)
      assert.isTrue(yield* k3s.cordon(s1, "a1"))
      assert.isFalse(yield* k3s.cordon(s1, "a1"))
      const nodes = yield* k3s.clusterNodes(s1)
      assert.isTrue(nodes.find((n) => n.name === "a1")?.unschedulable)
      const drained = yield* k3s.drain(s1, "a1")
      assert.ok(
        drained.evicted.some((p) => p.startsWith("default/web-")),
        drained.evicted.join(" ")
      )
      assert.match(drained.warnings[0] ?? "", /^ignoring DaemonSet-managed Pods: kube-system\/svclb-traefik-/)
      assert.isTrue(yield* k3s.uncordon(s1, "a1"))
      assert.isFalse(yield* k3s.uncordon(s1, "a1"))
      // db has one replica and minAvailable 1: never evictable (the scheduler put it on a2)
      assert.strictEqual(sim.state().k3s.nodes.length, 5)
      const dbNode = "a2"
      const error = yield* Effect.flip(k3s.drain(s1, dbNode, { timeout: "1 second" }))
      assert.isTrue(error.reason._tag === "DrainFailed" && error.reason.kind === "PodDisruptionBudget", error.message)
      if (error.reason._tag === "DrainFailed") assert.ok(error.reason.pods.some((p) => p.startsWith("db-")))
      const left = (yield* k3s.clusterNodes(s1)).find((n) => n.name === "a2")
      assert.isTrue(left?.unschedulable)
    })
  )
})

describe("a member installed again with other --node-label / --node-taint flags", () => {
  it.live(
    "keeps a dropped label and its registration taints (k3s and the kubelet): changeNode before the install removes and adds them; again, it is a no-op",
    () =>
      Effect.gen(function* () {
        const flags = ["--node-label=tier=gold", "--node-label=zone=a", "--node-taint=gpu=true:NoSchedule"]
        const { k3s, ssh, target } = yield* simSetup(
          simScenario(
            [
              guestVm(200, "s1", "127.79.2.10", { role: "server", clusterInit: true }),
              guestVm(301, "a1", "127.79.2.21", { role: "agent", flags }),
              guestVm(302, "a2", "127.79.2.22", { role: "agent", flags })
            ],
            { workloads: [] }
          )
        )
        const s1 = yield* target(200)
        const node = (name: string) =>
          ssh.exec(s1, `sudo -n /usr/local/bin/k3s kubectl get node ${name} -o json`).pipe(
            Effect.map(
              (r) =>
                JSON.parse(r.stdout) as {
                  metadata: { labels: Record<string, string>; annotations: Record<string, string> }
                  spec: { taints?: ReadonlyArray<Record<string, string>> }
                }
            )
          )
        const wanted = ["--node-label=zone=b", "--node-taint=spot=yes:NoExecute"]
        const version = (yield* k3s.clusterNodes(s1)).find((n) => n.name === "a1")?.kubeletVersion as string
        // what k3s does: installed again with the new flags, a2 keeps tier=gold and its gpu taint, and has no spot taint
        yield* k3s.upgrade({ server: s1, host: yield* target(302), role: "agent", version, flags: wanted })
        const a2 = yield* node("a2")
        assert.deepStrictEqual(
          [a2.metadata.labels.tier, a2.metadata.labels.zone, a2.spec.taints],
          ["gold", "b", [{ effect: "NoSchedule", key: "gpu", value: "true" }]]
        )
        assert.deepStrictEqual(JSON.parse(a2.metadata.annotations["k3s.io/node-args"] as string).slice(-4), [
          "--node-label",
          "zone=b",
          "--node-taint",
          "spot=yes:NoExecute"
        ])
        // what the Node needs besides: computed from the flags' diff, done before the install
        const running = runningFlags((yield* k3s.clusterNodes(s1)).find((n) => n.name === "a1")?.nodeArgs) ?? []
        const changes = nodeChanges(diffFlags(running, desiredFlags(wanted)), desiredFlags(wanted))
        assert.deepStrictEqual(changes, {
          removeLabels: ["tier"],
          removeTaints: ["gpu=true:NoSchedule"],
          addTaints: ["spot=yes:NoExecute"]
        })
        yield* k3s.changeNode(s1, "a1", changes)
        yield* k3s.upgrade({ server: s1, host: yield* target(301), role: "agent", version, flags: wanted })
        const a1 = yield* node("a1")
        assert.deepStrictEqual(
          [a1.metadata.labels.tier, a1.metadata.labels.zone, a1.spec.taints],
          [undefined, "b", [{ effect: "NoExecute", key: "spot", value: "yes" }]]
        )
        // a run interrupted after the changes does them again: nothing left to remove is no failure
        yield* k3s.changeNode(s1, "a1", changes)
        assert.deepStrictEqual((yield* node("a1")).spec.taints, [{ effect: "NoExecute", key: "spot", value: "yes" }])
        const gone = yield* Effect.flip(k3s.changeNode(s1, "a9", changes))
        assert.include(gone.message, 'nodes "a9" not found')
      }),
    60_000
  )
})

describe("upgrades", () => {
  it.live(
    "servers one at a time, then agents: cordon, drain, install with the unit's flags and env, Ready on the new version, uncordon; rules refuse skips and downgrades",
    () =>
      Effect.gen(function* () {
        // (no single-replica PDB: it could never be drained)
        const { sim, k3s, target } = yield* simSetup(ha([], false))
        const s1 = yield* target(200)
        const s2 = yield* target(201)
        const v = "v1.31.5+k3s1"
        const order: Array<string> = []
        for (const [vmid, role, via] of [
          [200, "server", s2],
          [201, "server", s1],
          [202, "server", s1],
          [301, "agent", s1],
          [302, "agent", s1]
        ] as const) {
          const host = yield* target(vmid)
          const result = yield* k3s.upgrade({ server: via, host, role, version: v, drain: { timeout: "20 seconds" } })
          assert.deepStrictEqual(
            [result._tag, result.from, result.to, result.leftCordoned],
            ["Upgraded", "v1.30.5+k3s1", v, false]
          )
          order.push(result.node)
        }
        assert.deepStrictEqual(
          sim.state().k3s.nodes.map((n) => [n.name, n.version, n.ready]),
          ["s1", "s2", "s3", "a1", "a2"].map((n) => [n, v, "True"])
        )
        assert.ok(!sim.k3sEvents().some((e) => e.kind === "version-skew"), "no unsupported skew on the way")
        const a1 = sim
          .k3sEvents()
          .filter((e) => e.node === "a1" || e.detail === "a1")
          .map((e) => e.kind)
          .filter((k) => k !== "pod-evicted" && k !== "agent-join-finish")
        assert.deepStrictEqual(a1, ["node-cordoned", "drain-start", "drain-finish", "node-upgraded", "node-uncordoned"])
        // the agents were installed with K3S_TOKEN in their env file: it was kept (they restarted)
        assert.include(JSON.stringify(sim.requests()), "install -m 600 /etc/systemd/system/k3s-agent.service.env")
        const again = yield* k3s.upgrade({ server: s1, host: yield* target(301), role: "agent", version: v })
        assert.strictEqual(again._tag, "AlreadyAtVersion")
        const skip = yield* Effect.flip(
          k3s.upgrade({ server: s1, host: yield* target(301), role: "agent", version: "v1.33.5+k3s1" })
        )
        assert.isTrue(skip.reason._tag === "VersionRule" && skip.reason.rule === "SkipsMinor", skip.message)
        const down = yield* Effect.flip(
          k3s.upgrade({ server: s1, host: yield* target(301), role: "agent", version: "v1.30.5+k3s1" })
        )
        assert.isTrue(down.reason._tag === "VersionRule" && down.reason.rule === "Downgrade", down.message)
        assert.strictEqual(sim.k3sEvents().filter((e) => e.kind === "node-upgraded").length, 5)
      }),
    60_000
  )
})

describe("an upgrade of a Node cordoned before the call", () => {
  it.live(
    "drained and upgraded, left cordoned (leftCordoned), never uncordoned; a failed drain leaves it cordoned too",
    () =>
      Effect.gen(function* () {
        const { sim, k3s, target } = yield* simSetup(ha())
        const s1 = yield* target(200)
        const v = "v1.31.5+k3s1"
        // the servers first (an agent must not run ahead of them), each schedulable: cordoned and uncordoned again
        for (const [vmid, via] of [
          [200, yield* target(201)],
          [201, s1],
          [202, s1]
        ] as const) {
          const host = yield* target(vmid)
          const result = yield* k3s.upgrade({ server: via, host, role: "server", version: v })
          assert.isFalse(result.leftCordoned, result.node)
        }
        assert.deepStrictEqual(
          sim
            .state()
            .k3s.nodes.filter((n) => n.unschedulable)
            .map((n) => n.name),
          []
        )
        // a1 cordoned by hand (maintenance) before its upgrade
        assert.isTrue(yield* k3s.cordon(s1, "a1"))
        const since = sim.k3sEvents().length
        const result = yield* k3s.upgrade({
          server: s1,
          host: yield* target(301),
          role: "agent",
          version: v,
          drain: { timeout: "20 seconds" }
        })
        assert.deepStrictEqual([result._tag, result.to, result.leftCordoned], ["Upgraded", v, true])
        assert.isTrue((yield* k3s.clusterNodes(s1)).find((n) => n.name === "a1")?.unschedulable)
        assert.deepStrictEqual(
          sim
            .k3sEvents()
            .slice(since)
            .filter((e) => e.node === "a1" || e.detail === "a1")
            .map((e) => e.kind)
            .filter((k) => k !== "pod-evicted" && k !== "agent-join-finish"),
          ["drain-start", "drain-finish", "node-upgraded"]
        )
        // a schedulable Node whose drain fails is given back (uncordoned)
        const a2 = yield* k3s
          .upgrade({ server: s1, host: yield* target(302), role: "agent", version: v, drain: { timeout: "1 second" } })
          .pipe(Effect.flip)
        // (db has one replica and minAvailable 1 on a2: never evictable)
        assert.isTrue(a2.reason._tag === "DrainFailed", a2.message)
        assert.isFalse((yield* k3s.clusterNodes(s1)).find((n) => n.name === "a2")?.unschedulable)
        // the same failed drain on a2 cordoned by hand: it stays cordoned
        assert.isTrue(yield* k3s.cordon(s1, "a2"))
        const failed = yield* k3s
          .upgrade({ server: s1, host: yield* target(302), role: "agent", version: v, drain: { timeout: "1 second" } })
          .pipe(Effect.flip)
        assert.isTrue(failed.reason._tag === "DrainFailed", failed.message)
        assert.isTrue((yield* k3s.clusterNodes(s1)).find((n) => n.name === "a2")?.unschedulable)
      }),
    60_000
  )
})

describe("an upgrade to a release that does not exist", () => {
  it.live("is refused before the Node is cordoned: the host asks GitHub for the release first", () =>
    Effect.gen(function* () {
      const { sim, k3s, target } = yield* simSetup(ha([], false))
      const s1 = yield* target(200)
      const a1 = yield* target(301)
      assert.strictEqual((yield* k3s.releaseStatus(a1, "v1.31.5+k3s1"))._tag, "Published")
      const error = yield* Effect.flip(
        k3s.upgrade({ server: s1, host: a1, role: "agent", version: "v1.30.99+k3s1", drain: { timeout: "20 seconds" } })
      )
      assert.strictEqual(error.reason._tag, "ReleaseUnavailable", error.message)
      assert.strictEqual(
        error.reason.message,
        "k3s v1.30.99+k3s1 is not a k3s release (https://github.com/k3s-io/k3s/releases/download/v1.30.99+k3s1/sha256sum-amd64.txt answers 404 Not Found)"
      )
      assert.deepStrictEqual(
        sim
          .k3sEvents()
          .filter((e) => ["node-cordoned", "drain-start", "node-upgraded"].includes(e.kind))
          .map((e) => e.kind),
        []
      )
      assert.isFalse((yield* k3s.clusterNodes(s1)).find((n) => n.name === "a1")?.unschedulable)
    })
  )
})

describe("the kubeconfig", () => {
  it.live("fetched, pointed at a server, renamed, merged keeping other entries; the sim's kubectl uses it", () =>
    Effect.gen(function* () {
      const { k3s, target, ssh, events } = yield* simSetup(ha())
      const s2 = yield* target(201)
      const a1 = yield* target(301)
      const fetched = yield* k3s.fetchKubeconfig({ server: s2, name: "lab" })
      assert.strictEqual(fetched.server, `https://${s2.host}:6443`)
      const existing = [
        "apiVersion: v1",
        "kind: Config",
        "current-context: other",
        "clusters:",
        "- name: other",
        "  cluster: { server: 'https://10.9.9.9:6443' }",
        "contexts:",
        "- name: other",
        "  context: { cluster: other, user: other }",
        "users:",
        "- name: other",
        "  user: { token: abc }"
      ].join("\n")
      const merged = Result.getOrThrow(mergeKubeconfig(existing, fetched.kubeconfig))
      const doc = parseYaml(Redacted.value(merged)) as {
        "current-context": string
        contexts: Array<{ name: string }>
        clusters: Array<{ name: string; cluster: { server: string } }>
      }
      assert.deepStrictEqual(
        [doc["current-context"], doc.contexts.map((c) => c.name), doc.clusters.map((c) => c.cluster.server)],
        ["other", ["other", "lab"], ["https://10.9.9.9:6443", `https://${s2.host}:6443`]]
      )
      yield* ssh.exec(a1, "cat > /home/ubuntu/kubeconfig", { stdin: merged })
      const got = yield* ssh.exec(a1, "kubectl --kubeconfig /home/ubuntu/kubeconfig --context lab get nodes -o name")
      assert.deepStrictEqual([got.exitCode, got.stdout], [0, "node/s1\nnode/s2\nnode/s3\nnode/a1\nnode/a2\n"])
      // the admin key is in no event
      const key = (parseYaml(Redacted.value(fetched.kubeconfig)) as { users: Array<{ user: Record<string, string> }> })
        .users[0]?.user["client-key-data"] as string
      assert.ok(key.length > 20)
      assert.notInclude(JSON.stringify(events), key)
      assert.strictEqual(String(fetched.kubeconfig), "<redacted>")
    })
  )
})

describe("two runs on one host", () => {
  // Run B inspects the bare host (its k3s unit, its etcd data, the install record: in whatever order initCluster reads
  // them) and is held after one of those reads until run A has started the cluster there, as a loaded machine may
  // hold it: whatever it read before, A's k3s and etcd data are A's install of this run, not an earlier cluster's.
  for (const [read, held] of [
    ["its k3s unit", (c: string) => c.includes("is-active")],
    ["its etcd data", (c: string) => c.includes("server/db/etcd/name")],
    ["the install record", (c: string) => c.includes(RECORD_PATH)]
  ] as const)
    it.live(
      `two runs start the cluster on one bare host, the second held after reading ${read} while the first starts it: one cluster, both done`,
      () =>
        Effect.gen(function* () {
          const { sim, services, newRun, target } = yield* simSetup(
            simScenario([guestVm(215, "n5", "127.79.1.15")]),
            {},
            ["run-A"]
          )
          const a = services[0] as (typeof services)[0]
          const host = yield* target(215)
          let holds = 0
          const b = yield* newRun("run-B", (client) => ({
            ...client,
            exec: (t, command, options) =>
              client
                .exec(t, command, options)
                .pipe(
                  Effect.tap(() =>
                    held(command) && holds++ === 0
                      ? a.initCluster({ host, version: "v1.30.5+k3s1" }).pipe(Effect.orDie)
                      : Effect.void
                  )
                )
          }))
          const second = yield* Effect.result(b.initCluster({ host, version: "v1.30.5+k3s1" }))
          // held once, or never when B does not read that before it installs (A starts it afterwards then)
          const first = yield* Effect.result(a.initCluster({ host, version: "v1.30.5+k3s1" }))
          assert.isTrue(Result.isSuccess(second), Result.isFailure(second) ? second.failure.message : "")
          assert.isTrue(Result.isSuccess(first), Result.isFailure(first) ? first.failure.message : "")
          assert.deepStrictEqual(
            sim
              .k3sEvents()
              .filter((e) => e.kind === "cluster-init")
              .map((e) => e.node),
            ["n5"]
          )
          assert.deepStrictEqual(sim.state().k3s.strayClusters, [])
        }),
      60_000
    )

  it.live(
    "the install lock serialises them: one installs, the other waits and reports what the first did",
    () =>
      Effect.gen(function* () {
        const { sim, services, target, events, ssh } = yield* simSetup(ha([guestVm(304, "w9", "127.79.2.29")]), {}, [
          "run-A",
          "run-B"
        ])
        const [a, b] = services as [(typeof services)[0], (typeof services)[0]]
        const server = yield* target(200)
        const host = yield* target(304)
        // a third party holds the host's install lock until both runs have inspected the cluster and come to install
        const release = yield* holdInstallLock({ sim, ssh }, host)
        const joinA = yield* Effect.forkChild(a.ensureMember({ server, host, role: "agent" }))
        const joinB = yield* Effect.forkChild(b.ensureMember({ server, host, role: "agent" }))
        const installing = () => events.filter((e) => e._tag === "Step" && e.step === "install" && e.host === host.host)
        yield* simUntil(() => installing().length === 2, "both runs at the install step")
        yield* release
        const ra = yield* Fiber.join(joinA)
        const rb = yield* Fiber.join(joinB)
        assert.deepStrictEqual([ra._tag, rb._tag], ["Joined", "Joined"])
        const joins = sim.k3sEvents().filter((e) => e.kind === "agent-join-finish" && e.node === "w9")
        assert.strictEqual(joins.length, 1, "k3s joined once: the second run did not restart the first one's join")
        const reported = [ra, rb].filter((r) => r.installedBy !== undefined)
        assert.strictEqual(reported.length, 1)
        const loser = reported[0]
        const winner = loser === ra ? "run-B" : "run-A"
        assert.deepStrictEqual(
          [loser?.installedBy?.run, loser?.installedBy?.role, loser?.installedBy?.version],
          [winner, "agent", "v1.30.5+k3s1"]
        )
        // a later run on the same host: an ordinary no-op
        const again = yield* a.ensureMember({ server, host, role: "agent" })
        assert.strictEqual(again._tag, "AlreadyMember")
      }),
    60_000
  )

  it.live(
    "an earlier run's install record is history: a later run finds the agent stopped, starts it again and says so",
    () =>
      Effect.gen(function* () {
        const { sim, services, newRun, target, events, ssh } = yield* simSetup(
          ha([guestVm(304, "w9", "127.79.2.29")]),
          {},
          ["run-A"]
        )
        const server = yield* target(200)
        const host = yield* target(304)
        const first = yield* (services[0] as (typeof services)[0]).ensureMember({ server, host, role: "agent" })
        assert.deepStrictEqual([first._tag, first.installedBy, first.unchanged], ["Joined", undefined, undefined])
        // the operator (or a crash) stops the agent; its Node goes NotReady
        assert.strictEqual((yield* ssh.exec(host, "sudo -n systemctl stop k3s-agent")).exitCode, 0)
        yield* simUntil(() => simNode(sim, "w9")?.ready !== "True", "w9 NotReady")
        // a later run of the tool: the record on the host is run-A's, from before this run started
        const later = yield* newRun("run-B")
        const again = yield* later.ensureMember({ server, host, role: "agent" })
        assert.deepStrictEqual(
          [again._tag, again.installedBy, again.unchanged],
          ["Joined", undefined, { unit: "k3s-agent", unitStateBefore: "inactive" }]
        )
        assert.strictEqual(simNode(sim, "w9")?.ready, "True")
        assert.strictEqual((yield* ssh.exec(host, "systemctl is-active k3s-agent")).stdout, "active\n")
        assert.isFalse(
          events.some((e) => e._tag === "LockWaited" && e.host === host.host && e.previous !== undefined),
          "no other run's install was waited for"
        )
        // the record now names run-B's install (it changed nothing but is the latest)
        assert.match((yield* ssh.exec(host, "cat /run/homelab-k3s-join.last")).stdout, /^k3s-join-record run=run-B /)
      }),
    60_000
  )

  it.live(
    "a server whose k3s was stopped by hand: unitStatus says inactive (no failure since its last start), startUnit starts it with its own data and its Node is Ready again",
    () =>
      Effect.gen(function* () {
        const { sim, k3s, target, ssh } = yield* simSetup(ha())
        const host = yield* target(201)
        assert.deepStrictEqual(yield* k3s.unitStatus(host, "server"), { state: "active", journalComplete: true })
        assert.strictEqual((yield* ssh.exec(host, "sudo -n systemctl stop k3s")).exitCode, 0)
        const members = sim.state().k3s.etcdMembers.map((m) => m.name)
        // stopped, it names the etcd member its data dir is of (its next start carries on as it)
        const own = members.find((m) => m.startsWith("s2-"))
        assert.deepStrictEqual(yield* k3s.unitStatus(host, "server"), {
          state: "inactive",
          journalComplete: true,
          member: own
        })
        yield* k3s.startUnit(host, "server")
        // k3s is up once its etcd member runs again (the other two servers kept the quorum)
        yield* k3s
          .unitStatus(host, "server")
          .pipe(
            Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (s) => s.state === "active" }),
            Effect.timeout("30 seconds")
          )
        yield* simUntil(() => simNode(sim, "s2")?.ready === "True", "s2 Ready again")
        assert.deepStrictEqual(
          sim.state().k3s.etcdMembers.map((m) => m.name),
          members,
          "the same etcd members: it came back as itself"
        )
        // started again while it runs: left as it is. Its journal since that start does not name its member: k3s
        // started etcd on the member's data (`Starting etcd for existing cluster member`), as any restart of a server
        assert.include(
          (yield* ssh.exec(host, "sudo -n journalctl -u k3s --no-pager -o cat")).stdout,
          "Starting etcd for existing cluster member"
        )
        yield* k3s.startUnit(host, "server")
        assert.deepStrictEqual(yield* k3s.unitStatus(host, "server"), { state: "active", journalComplete: false })
      }),
    60_000
  )

  it.live(
    "a run started after another run's install began still reports it: that install finished while it waited",
    () =>
      Effect.gen(function* () {
        const { sim, services, newRun, target, ssh } = yield* simSetup(ha([guestVm(304, "w9", "127.79.2.29")]), {}, [
          "run-A"
        ])
        const server = yield* target(200)
        const host = yield* target(304)
        // installs as they reach the host's flock (queued for the lock in that order)
        const queued: Array<string> = []
        const flock = sim.guestCommands.get("flock")
        assert.ok(flock)
        sim.guestCommands.register("flock", (c) => {
          if (c.argv.some((a) => a.includes("INSTALL_K3S_VERSION="))) queued.push(String(c.guest.vmid))
          return flock(c)
        })
        const release = yield* holdInstallLock({ sim, ssh }, host)
        const joinA = yield* Effect.forkChild(
          (services[0] as (typeof services)[0]).ensureMember({ server, host, role: "agent" })
        )
        yield* simUntil(() => queued.length === 1, "run-A's install queued for the lock")
        // run-B starts after run-A's install began (its record's time is older than run-B)
        const later = yield* newRun("run-B")
        const joinB = yield* Effect.forkChild(later.ensureMember({ server, host, role: "agent" }))
        yield* simUntil(() => queued.length === 2, "run-B's install queued for the lock")
        yield* release
        const ra = yield* Fiber.join(joinA)
        const rb = yield* Fiber.join(joinB)
        assert.deepStrictEqual([ra._tag, ra.installedBy, rb._tag], ["Joined", undefined, "Joined"])
        assert.deepStrictEqual([rb.installedBy?.run, rb.unchanged], ["run-A", undefined])
      }),
    60_000
  )

  it.live("a lock held longer than the lock wait: LockTimeout, nothing installed", () =>
    Effect.gen(function* () {
      const { sim, k3s, target, ssh } = yield* simSetup(ha([guestVm(304, "w9", "127.79.2.29")]), {
        timeouts: { lockWait: "1 second", pollInterval: "20 millis", ready: "20 seconds", command: "10 seconds" }
      })
      const host = yield* target(304)
      const release = yield* holdInstallLock({ sim, ssh }, host)
      const error = yield* Effect.flip(k3s.ensureMember({ server: yield* target(200), host, role: "agent" }))
      yield* release
      assert.strictEqual(error.reason._tag, "LockTimeout", error.message)
      assert.strictEqual(
        error.message,
        "k3s-join 127.79.2.29: another run held the k3s install lock /run/lock/homelab-k3s-join.lock for more than 1000 ms"
      )
      assert.strictEqual((yield* ssh.exec(host, "test -e /usr/local/bin/k3s")).exitCode, 1)
    })
  )
})
