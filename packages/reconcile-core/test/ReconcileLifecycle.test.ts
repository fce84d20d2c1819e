import { assert, describe, it } from "@effect/vitest"
import { K3sJoin, memberIdHex, memberWithoutNode, runningFlags, showFlag, unitJournalCommand } from "@homelab/k3s-join"
import { ProxmoxApi } from "@homelab/proxmox-client"
import { reserveLoopbackNet, type Scenario, type SimHandle } from "@homelab/sim"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { apply } from "../src/Apply.js"
import { desiredFromConfig, healthPolicyFromConfig } from "../src/desiredFromConfig.js"
import { reconcile as reconcileAll } from "../src/Reconcile.js"
import { clientLayer, labScenario, makeLab, mutatingRequests, reconcile, simVms, startLab, vmShell } from "./lab.js"
import { teardownSteps } from "./teardownFixture.js"

const net = reserveLoopbackNet().net
const servers = ["pve", "still-fawn", "chief-horse"]
const agents = ["fun-goal", "wise-owl"]
const server = "    vms: [{ role: server }]"

/** Bare nodes, and a k3s model with nothing in it yet. */
const bare = (over: Partial<Scenario> = {}): Scenario =>
  labScenario([...servers, ...agents], {
    ipPool: `${net}.10`,
    guestSshPort: 2222,
    k3s: { version: "v1.30.5+k3s1", joinDelayMs: 5000, readyDelayMs: 10_000, learnerPromotionDelayMs: 15_000 },
    ...over
  })

const k3sSection = (extra: ReadonlyArray<string> = []) =>
  [
    "  sshPort: 2222",
    "k3s:",
    "  version: v1.30.5+k3s1",
    "  installFlags: [--node-label=homelab=true]",
    "  serverFlags: [--write-kubeconfig-mode=644, --disable=traefik]",
    "  agentFlags: [--node-label=node-role=worker]",
    ...extra
  ].join("\n")

const clusterLab = (sim: SimHandle, extra: ReadonlyArray<string> = [], health?: string) =>
  makeLab(sim, {
    vm: k3sSection(extra),
    nodes: Object.fromEntries(servers.map((n) => [n, server])),
    ...(health === undefined ? {} : { health })
  })

const k3sState = (sim: SimHandle) => sim.state().k3s
const nodeRows = (sim: SimHandle) =>
  k3sState(sim)
    .nodes.map((n) => `${n.name} ${n.role} ${n.ready} ${n.version}`)
    .sort()

describe("a k3s cluster from nothing", () => {
  it.live(
    "two applies at once on a bare node: one starts the cluster, the other says another run did (never twice)",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(
          labScenario(["pve"], {
            ipPool: `${net}.10`,
            guestSshPort: 2222,
            k3s: { version: "v1.30.5+k3s1", joinDelayMs: 5000, readyDelayMs: 10_000 }
          })
        )
        const lab = yield* makeLab(sim, { vm: k3sSection(), nodes: { pve: server } })
        const [a, b] = yield* Effect.all([reconcile(lab), reconcile(lab)], { concurrency: 2 })
        const details = [...a.result.outcomes, ...b.result.outcomes]
          .filter((o) => o.action._tag === "InitK3s")
          .map((o) => `${o.status}: ${o.detail}`)
        assert.strictEqual(details.length, 2, JSON.stringify(details))
        assert.strictEqual(details.filter((d) => /^done: k3s cluster started on k3s-vm-pve \(/.test(d)).length, 1)
        assert.strictEqual(
          details.filter(
            (d) =>
              /^done: k3s cluster started on k3s-vm-pve by another run \(.*this run waited \d+ s\); Ready/.test(d) ||
              d.startsWith("done: k3s-vm-pve already runs the cluster's first server")
          ).length,
          1,
          details.join("\n")
        )
        assert.strictEqual(sim.k3sEvents().filter((e) => e.kind === "cluster-init").length, 1)
      }),
    120_000
  )

  it.live(
    "the first server VM holds a cluster's etcd data while its k3s unit is gone: the plan says so (blocked, apply's words, the fix) instead of starting the cluster there; no second cluster",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(
          labScenario(["pve"], {
            ipPool: `${net}.10`,
            guestSshPort: 2222,
            k3s: { version: "v1.30.5+k3s1", joinDelayMs: 5000, readyDelayMs: 10_000 }
          })
        )
        const lab = yield* clusterLab(sim)
        assert.isTrue((yield* reconcile(lab)).report.convergence.converged)
        const member = k3sState(sim).etcdMembers[0]?.name
        // someone stops k3s on the server VM and deletes its unit (half an uninstall): its etcd data stays
        const ip = simVms(sim).find((v) => v.name === "k3s-vm-pve")?.ip
        assert.ok(ip !== undefined && member !== undefined)
        const shell = yield* vmShell(lab)
        assert.strictEqual((yield* shell.exec(ip, "sudo -n systemctl stop k3s")).exitCode, 0)
        assert.strictEqual((yield* shell.exec(ip, "sudo -n rm -f /etc/systemd/system/k3s.service")).exitCode, 0)
        sim.clearRequests()
        const run = yield* reconcile(lab)
        // no unit: no cluster answers; the first server VM is asked what initCluster would ask (its etcd data) and the
        // plan says what apply would refuse, in its words, with the fix: nothing to start, nothing started
        assert.deepStrictEqual(
          run.plan.actions.map((a) => a._tag),
          []
        )
        const finding = run.plan.findings.find((f) => f.code === "k3s.existing-cluster")
        assert.deepStrictEqual([finding?.effect, finding?.vm], ["blocked", "k3s-vm-pve"])
        assert.include(
          finding?.message ?? "",
          `not starting the k3s cluster on k3s-vm-pve, the first server VM: k3s-vm-pve holds the etcd data of an earlier k3s cluster (its member ${member}`
        )
        assert.include(finding?.message ?? "", "k3s ignores --cluster-init there")
        assert.include(finding?.hint ?? "", "set k3s.server to one of its servers")
        assert.include(finding?.hint ?? "", "`homelab reprovision k3s-vm-pve`")
        assert.deepStrictEqual(run.result.outcomes, [])
        assert.isFalse(run.report.convergence.converged)
        assert.notMatch(JSON.stringify(sim.requests()), /--cluster-init|k3s-install\.sh|systemctl (start|restart)/)
        assert.strictEqual(sim.k3sEvents().filter((e) => e.kind === "cluster-init").length, 1)
        assert.deepStrictEqual(k3sState(sim).strayClusters, [])
      }),
    120_000
  )

  it.live(
    "a short k3s.token (a password): the cluster starts with it, and the other VM joins with the server's full token read over SSH (with the CA hash)",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(
          labScenario(["pve", "fun-goal"], {
            ipPool: `${net}.10`,
            guestSshPort: 2222,
            k3s: { version: "v1.30.5+k3s1", joinDelayMs: 5000, readyDelayMs: 10_000 }
          })
        )
        const lab = yield* makeLab(sim, {
          vm: k3sSection(["  token: my-shared-cluster-secret"]),
          nodes: { pve: server }
        })
        const run = yield* reconcile(lab)
        assert.deepStrictEqual(
          run.result.outcomes
            .filter((o) => o.action._tag !== "DownloadImage" && o.action._tag !== "CreateVm")
            .map((o) => [o.action._tag, o.status, o.status === "done" ? "" : o.detail]),
          [
            ["InitK3s", "done", ""],
            ["JoinK3s", "done", ""]
          ]
        )
        assert.isTrue(run.report.convergence.converged, JSON.stringify(run.report.convergence))
        assert.deepStrictEqual(nodeRows(sim), [
          "k3s-vm-fun-goal agent True v1.30.5+k3s1",
          "k3s-vm-pve server True v1.30.5+k3s1"
        ])
        // the agent's token came from the server's token file: the short one never reaches a join
        const read = sim
          .requests()
          .filter((r) => /cat \/var\/lib\/rancher\/k3s\/server\/(agent-)?token/.test(r.command ?? ""))
        assert.isAbove(read.length, 0)
        assert.isTrue((yield* reconcile(lab)).plan.actions.length === 0)
      }),
    120_000
  )

  it.live(
    "bare nodes converge to 3 Ready servers (embedded etcd) and 2 agents in one run; the next run changes nothing",
    () =>
      Effect.gen(function* () {
        // The simulator's clock: real time, moved on by the test when time must pass (the node-monitor grace period)
        let skew = 0
        const sim = yield* startLab(bare(), { now: () => Date.now() + skew })
        const lab = yield* clusterLab(sim)
        const first = yield* reconcile(lab)
        assert.deepStrictEqual(first.plan.cluster, {
          servers: 3,
          agents: 2,
          etcd: true,
          init: "k3s-vm-pve"
        })
        const k3sSteps = first.plan.actions.filter((a) => a._tag === "InitK3s" || a._tag === "JoinK3s")
        assert.deepStrictEqual(
          k3sSteps.map((a) => `${a._tag}:${a.vm}`),
          [
            "InitK3s:k3s-vm-pve",
            "JoinK3s:k3s-vm-still-fawn",
            "JoinK3s:k3s-vm-chief-horse",
            "JoinK3s:k3s-vm-fun-goal",
            "JoinK3s:k3s-vm-wise-owl"
          ]
        )
        assert.deepStrictEqual(
          first.result.outcomes.filter((o) => o.status !== "done").map((o) => `${o.id}: ${o.detail}`),
          []
        )
        assert.isTrue(first.report.convergence.converged)
        assert.deepStrictEqual(nodeRows(sim), [
          "k3s-vm-chief-horse server True v1.30.5+k3s1",
          "k3s-vm-fun-goal agent True v1.30.5+k3s1",
          "k3s-vm-pve server True v1.30.5+k3s1",
          "k3s-vm-still-fawn server True v1.30.5+k3s1",
          "k3s-vm-wise-owl agent True v1.30.5+k3s1"
        ])
        assert.strictEqual(k3sState(sim).etcdMembers.filter((m) => !m.isLearner).length, 3)
        assert.deepStrictEqual(k3sState(sim).strayClusters, [])
        // each role runs with its own flags, as k3s records them on its Node: the servers k3s.installFlags and
        // k3s.serverFlags, the agents k3s.installFlags and k3s.agentFlags (a server's flag would stop k3s agent)
        const recorded = yield* Effect.gen(function* () {
          const k3s = yield* K3sJoin
          const pve = k3sState(sim).nodes.find((n) => n.name === "k3s-vm-pve")?.ip as string
          return yield* k3s.clusterNodes({ host: pve, port: 2222, user: "ubuntu" })
        }).pipe(Effect.provide(clientLayer(lab)))
        assert.deepStrictEqual(
          recorded
            .map((n) => `${n.name.replace("k3s-vm-", "")} ${runningFlags(n.nodeArgs)?.map(showFlag).join(" ")}`)
            .sort(),
          [
            "chief-horse --node-label=homelab=true --write-kubeconfig-mode=644 --disable=traefik",
            "fun-goal --node-label=homelab=true --node-label=node-role=worker",
            "pve --node-label=homelab=true --write-kubeconfig-mode=644 --disable=traefik",
            "still-fawn --node-label=homelab=true --write-kubeconfig-mode=644 --disable=traefik",
            "wise-owl --node-label=homelab=true --node-label=node-role=worker"
          ]
        )
        const inits = sim.k3sEvents().filter((e) => e.kind === "cluster-init")
        assert.deepStrictEqual(
          inits.map((e) => e.node),
          ["k3s-vm-pve"]
        )
        // servers joined one at a time, and the token never was on a command line
        let open = 0
        for (const e of sim.k3sEvents().filter((e) => e.kind.startsWith("server-join-"))) {
          open += e.kind === "server-join-start" ? 1 : -1
          assert.isAtMost(open, 1, "two server joins overlapped")
        }
        const log = JSON.stringify(sim.requests())
        assert.strictEqual(log.split("--cluster-init").length - 1, 1)
        assert.notMatch(log, /K10[0-9a-f]{64}::server:[0-9a-f]+/)

        sim.clearRequests()
        const second = yield* reconcile(lab)
        assert.deepStrictEqual(second.plan.actions, [])
        assert.isTrue(second.report.convergence.converged)
        // a converged cluster costs one `kubectl get nodes` on the first server; no etcd members, no channels
        const guest = sim
          .requests()
          .filter((r) => r.transport === "guest-ssh")
          .map((r) => r.command ?? "")
        assert.deepStrictEqual(guest, ["sudo -n /usr/local/bin/k3s kubectl get nodes -o json"])

        // A server rebuilt on purpose: its Node and etcd member go first (through another server), it rejoins.
        sim.clearRequests()
        const since = sim.k3sEvents().length
        const rebuild = yield* reconcile(lab, { only: ["still-fawn"], reprovision: ["k3s-vm-still-fawn"] })
        assert.deepStrictEqual(
          rebuild.result.outcomes.map((o) => `${o.action._tag} ${o.status}`),
          ["RecreateVm done", "JoinK3s done"]
        )
        const kinds = sim
          .k3sEvents()
          .slice(since)
          .filter((e) => e.node.startsWith("k3s-vm-still-fawn"))
          .map((e) => e.kind)
        assert.includeMembers(kinds, ["node-deleting", "etcd-member-removed", "node-deleted"])
        assert.isBelow(kinds.indexOf("etcd-member-removed"), kinds.lastIndexOf("server-join-start"))
        assert.notInclude(JSON.stringify(rebuild.result.outcomes), "duplicate node name")
        assert.strictEqual(k3sState(sim).etcdMembers.filter((m) => !m.isLearner).length, 3)
        assert.strictEqual(nodeRows(sim).filter((r) => r.endsWith("True v1.30.5+k3s1")).length, 5)

        // With a server down, the guard refuses to take a second one out: nothing of it is touched.
        const horse = simVms(sim).find((v) => v.name === "k3s-vm-chief-horse")?.vmid as number
        sim.setVmStatus(horse, { status: "stopped", qmpstatus: "stopped" })
        // its Node turns Unknown once the grace period (40 s at the lab's time scale 0.02) has passed, here at once
        skew += 40_000 * 0.02
        assert.strictEqual(k3sState(sim).nodes.find((n) => n.name === "k3s-vm-chief-horse")?.ready, "Unknown")
        const pveBefore = simVms(sim).find((v) => v.name === "k3s-vm-pve")
        const refused = yield* reconcile(lab, { only: ["pve"], reprovision: ["k3s-vm-pve"] })
        assert.deepStrictEqual(refused.plan.actions, [])
        const finding = refused.plan.findings.find((f) => f.code === "k3s.quorum")
        assert.strictEqual(finding?.vm, "k3s-vm-pve")
        assert.match(
          finding?.message ?? "",
          /not rebuilding k3s server k3s-vm-pve: rebuild of k3s-vm-pve would leave 1 of 3 etcd members healthy, quorum needs 2 \(.*k3s-vm-chief-horse-[0-9a-f]{8} NotReady \(Unknown\)/
        )
        assert.include(finding?.hint ?? "", "bring k3s-vm-chief-horse back")
        assert.isFalse(refused.report.convergence.converged)
        assert.deepStrictEqual(
          simVms(sim).find((v) => v.name === "k3s-vm-pve"),
          pveBefore
        )
      }),
    180_000
  )

  it.live(
    "every server VM down (a power cut: two stopped, one paused): no new cluster and no rebuild; the servers are started and resumed, the plan says the run brings them back (not blocked, no 'bring … back' for the user), the run waits for their Nodes and converges; the next run has nothing to do",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(
          labScenario([...servers, "fun-goal"], {
            ipPool: `${net}.10`,
            guestSshPort: 2222,
            k3s: { version: "v1.30.5+k3s1", joinDelayMs: 5000, readyDelayMs: 10_000, learnerPromotionDelayMs: 15_000 }
          })
        )
        const lab = yield* clusterLab(sim, [], "  graceSeconds: 0")
        assert.isTrue((yield* reconcile(lab)).report.convergence.converged)
        const before = k3sState(sim)
        const serverVms = simVms(sim).filter((v) => servers.some((n) => v.name === `k3s-vm-${n}`))
        const vmidsBefore = simVms(sim)
          .map((v) => `${v.name} ${v.vmid}`)
          .sort()
        for (const vm of serverVms) {
          sim.setVmStatus(
            vm.vmid,
            vm.name === "k3s-vm-still-fawn"
              ? { status: "running", qmpstatus: "paused" }
              : { status: "stopped", qmpstatus: "stopped" }
          )
        }

        // once PVE's status cache says so (as /cluster/resources shows it)
        yield* Effect.gen(function* () {
          const api = yield* ProxmoxApi
          return yield* api.clusterVms
        }).pipe(
          Effect.provide(clientLayer(lab)),
          Effect.repeat({
            schedule: Schedule.spaced("100 millis"),
            until: (vms) => vms.filter((v) => v.status === "stopped").length === serverVms.length - 1
          }),
          Effect.timeout("30 seconds")
        )
        const down = yield* reconcile(lab)
        // started or resumed, not rebuilt, and no cluster started beside the one on their disks
        assert.deepStrictEqual(
          down.plan.actions.map((a) => `${a._tag} ${a.node}`),
          ["StartVm pve", "ResumeVm still-fawn", "StartVm chief-horse"]
        )
        assert.deepStrictEqual(
          down.result.outcomes.map((o) => o.status),
          ["done", "done", "done"]
        )
        const start = down.plan.actions[0]
        assert.include(start?._tag === "StartVm" ? start.reason : "", "started, not rebuilt")
        const unavailable = down.plan.findings.find(
          (f) => f.code === "k3s.unavailable" || f.code === "vm.recreate-needs-k3s"
        )
        assert.include(unavailable?.message ?? "", "k3s-vm-pve (VM")
        // the plan brings every server back itself: not for the user (plan exits 0, not 1), left to the run's end
        assert.strictEqual(unavailable?.effect, "deferred")
        assert.include(unavailable?.message ?? "", "this run brings k3s-vm-pve (start VM")
        assert.include(unavailable?.hint ?? "", "nothing to do by hand")
        assert.notInclude(JSON.stringify(down.plan.findings), "bring the server VMs that are down back")
        // the run did what the plan's finding asks, and waited for the Nodes: every VM is a Ready member again
        assert.deepStrictEqual(
          down.report.convergence.nodes.flatMap((n) => n.reasons.map((r) => `${n.node}: ${r.message}`)),
          []
        )
        assert.isTrue(down.report.convergence.converged)
        assert.notInclude(JSON.stringify(down.report.convergence), "bring the server VMs that are down back")
        assert.notInclude(JSON.stringify(down.report.convergence), "unknown")
        assert.isTrue(
          nodeRows(sim).every((r) => r.includes(" True ")),
          nodeRows(sim).join("; ")
        )
        assert.deepStrictEqual(
          sim.k3sEvents().filter((e) => e.kind === "cluster-init").length,
          1,
          "one cluster, started once"
        )
        assert.deepStrictEqual(
          simVms(sim)
            .map((v) => `${v.name} ${v.vmid}`)
            .sort(),
          vmidsBefore,
          "no VM rebuilt"
        )

        // the servers came back with their etcd data: the next run finds the same cluster, converged, and reads no more
        // than a converged run does (one `kubectl get nodes`)
        sim.clearRequests()
        const back = yield* reconcile(lab)
        assert.deepStrictEqual(back.plan.actions, [])
        assert.isTrue(back.report.convergence.converged)
        assert.deepStrictEqual(
          sim
            .requests()
            .filter((r) => r.transport === "guest-ssh")
            .map((r) => r.command ?? ""),
          ["sudo -n /usr/local/bin/k3s kubectl get nodes -o json"]
        )
        assert.deepStrictEqual(
          k3sState(sim)
            .nodes.map((n) => `${n.name} ${n.createdAt}`)
            .sort(),
          before.nodes.map((n) => `${n.name} ${n.createdAt}`).sort(),
          "the same Nodes"
        )
        assert.strictEqual(sim.k3sEvents().filter((e) => e.kind === "cluster-init").length, 1)
      }),
    180_000
  )
})

describe("a server VM to rebuild whose old Node was force-deleted, its etcd member left (k3s.md §5.2)", () => {
  /** Three server VMs, converged; k3s stopped on still-fawn; `forceDelete` deletes its Node with the finalizers removed. */
  const threeServers = Effect.gen(function* () {
    const sim = yield* startLab(
      labScenario(servers, {
        ipPool: `${net}.10`,
        guestSshPort: 2222,
        k3s: {
          version: "v1.30.5+k3s1",
          joinDelayMs: 5000,
          readyDelayMs: 10_000,
          learnerPromotionDelayMs: 15_000,
          // the member's removal hangs (the Node held in deletion), and someone forces the Node out
          memberRemoveDelayMs: 600_000
        }
      })
    )
    const lab = yield* clusterLab(sim)
    assert.isTrue((yield* reconcile(lab)).report.convergence.converged)
    const ipOf = (name: string) => simVms(sim).find((v) => v.name === name)?.ip
    const fawn = ipOf("k3s-vm-still-fawn")
    const pve = ipOf("k3s-vm-pve")
    assert.ok(fawn !== undefined && pve !== undefined)
    const shell = yield* vmShell(lab)
    assert.strictEqual((yield* shell.exec(fawn, "sudo -n systemctl stop k3s")).exitCode, 0)
    const kubectl = (args: string) => shell.exec(pve, `sudo -n /usr/local/bin/k3s kubectl ${args}`)
    const forceDelete = Effect.gen(function* () {
      yield* kubectl("delete node k3s-vm-still-fawn --wait=false")
      const patched = yield* kubectl(`patch node k3s-vm-still-fawn --type=merge -p '{"metadata":{"finalizers":null}}'`)
      assert.strictEqual(patched.exitCode, 0, patched.stderr)
    })
    return { sim, lab, forceDelete }
  })

  it.live(
    "the plan blocks the rebuild in removeServer's words with the etcdctl fix; the VM is not stopped, marked or destroyed",
    () =>
      Effect.gen(function* () {
        const { sim, lab, forceDelete } = yield* threeServers
        // its Node deleted with the finalizers removed: the member stays, no Node owns it
        yield* forceDelete
        const stale = k3sState(sim).etcdMembers.filter((m) => m.name.startsWith("k3s-vm-still-fawn-"))
        assert.strictEqual(stale.length, 1)
        const before = simVms(sim).find((v) => v.name === "k3s-vm-still-fawn")
        sim.clearRequests()
        const run = yield* reconcile(lab, { only: ["still-fawn"], reprovision: ["k3s-vm-still-fawn"] })
        assert.deepStrictEqual(run.plan.actions, [])
        const finding = run.plan.findings.find((f) => f.code === "k3s.stale-member")
        assert.deepStrictEqual([finding?.effect, finding?.vm], ["blocked", "k3s-vm-still-fawn"])
        assert.include(
          finding?.message ?? "",
          `not rebuilding k3s server k3s-vm-still-fawn (it needs rebuilding: reprovision of k3s-vm-still-fawn requested): ${memberWithoutNode(
            "k3s-vm-still-fawn",
            stale.map((m) => ({ ...m, clientURL: undefined }))
          )}; nothing is stopped or destroyed`
        )
        assert.include(finding?.hint ?? "", `member remove ${memberIdHex(stale[0]?.id ?? "")}`)
        assert.deepStrictEqual(run.result.outcomes, [])
        assert.isFalse(run.report.convergence.converged)
        // the VM as it was: running, no rebuild mark, not stopped, not destroyed
        assert.deepStrictEqual(
          simVms(sim).find((v) => v.name === "k3s-vm-still-fawn"),
          before
        )
        // nothing changed on PVE (a guest agent ping, a read, aside)
        assert.deepStrictEqual(
          mutatingRequests(sim).filter((r) => !(r.path ?? "").endsWith("/agent/ping")),
          []
        )
      }),
    180_000
  )

  it.live(
    "its Node force-deleted after the plan (a rebuild planned with the Node there): apply refuses before it stops the VM, in the same words",
    () =>
      Effect.gen(function* () {
        const { sim, lab, forceDelete } = yield* threeServers
        const desired = desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys })
        const planned = yield* reconcileAll(desired, {
          policy: healthPolicyFromConfig(lab.config),
          apply: false,
          only: ["still-fawn"],
          reprovision: ["k3s-vm-still-fawn"]
        }).pipe(Effect.provide(clientLayer(lab)))
        assert.deepStrictEqual(
          planned.plan.actions.map((a) => a._tag),
          ["RecreateVm", "JoinK3s"]
        )
        // between the plan and its apply (a prompt answered late), someone forces the Node out
        yield* forceDelete
        const stale = k3sState(sim).etcdMembers.filter((m) => m.name.startsWith("k3s-vm-still-fawn-"))
        assert.strictEqual(stale.length, 1)
        const before = simVms(sim).find((v) => v.name === "k3s-vm-still-fawn")
        sim.clearRequests()
        const outcomes = yield* apply(planned.plan.actions, desired, { timeouts: { task: Duration.seconds(60) } }).pipe(
          Effect.provide(clientLayer(lab))
        )
        const recreate = outcomes.find((o) => o.action._tag === "RecreateVm")
        assert.strictEqual(recreate?.status, "failed")
        assert.include(
          recreate?.detail ?? "",
          `not rebuilding k3s server k3s-vm-still-fawn: ${memberWithoutNode(
            "k3s-vm-still-fawn",
            stale.map((m) => ({ ...m, clientURL: undefined }))
          )}; the VM was not stopped`
        )
        assert.include(recreate?.hint ?? "", `member remove ${memberIdHex(stale[0]?.id ?? "")}`)
        // the VM as it was: running, its tags as they were (no 'homelab-rebuild': the refusal's 'nothing was changed'
        // holds, and the next run does not take the rebuild up unasked), not stopped; nothing changed on PVE
        assert.deepStrictEqual(
          simVms(sim).find((v) => v.name === "k3s-vm-still-fawn"),
          before
        )
        assert.notInclude(String(before?.tags ?? ""), "homelab-rebuild")
        assert.deepStrictEqual(
          mutatingRequests(sim).filter((r) => !(r.path ?? "").endsWith("/agent/ping")),
          []
        )
        // the next run (no reprovision asked) rebuilds nothing: the VM runs without a Node, and its join waits for the
        // member to be removed
        const next = yield* reconcile(lab, { only: ["still-fawn"] })
        assert.deepStrictEqual(next.plan.actions, [])
        assert.deepStrictEqual(
          next.plan.findings.filter((f) => f.effect === "blocked").map((f) => `${f.vm} ${f.code} ${f.layer}`),
          ["k3s-vm-still-fawn k3s.stale-member k3s"]
        )
      }),
    180_000
  )
})

describe("a cluster whose only server has its k3s stopped by hand", () => {
  it.live(
    "one server VM running with its k3s unit stopped and disabled (`sudo systemctl disable --now k3s`): the plan says so and starts it, enabled again for the VM's next boot, the run waits for its Node and converges in one apply; the next run has nothing to do; stopped again with a token its datastore was not made with, the start fails and the run says why at once",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(
          labScenario(["pve"], {
            ipPool: `${net}.10`,
            guestSshPort: 2222,
            k3s: { version: "v1.30.5+k3s1", joinDelayMs: 5000, readyDelayMs: 10_000 }
          })
        )
        const lab = yield* clusterLab(sim)
        assert.isTrue((yield* reconcile(lab)).report.convergence.converged)
        const before = k3sState(sim)
        // the operator stops and disables k3s on the server VM over SSH (as a VM rebooted with its unit disabled has
        // it); the VM itself keeps running
        const ip = simVms(sim).find((v) => v.name === "k3s-vm-pve")?.ip
        assert.ok(ip !== undefined)
        const shell = yield* vmShell(lab)
        assert.strictEqual((yield* shell.exec(ip, "sudo -n systemctl disable --now k3s")).exitCode, 0)
        assert.strictEqual((yield* shell.exec(ip, "systemctl is-active k3s")).stdout.trim(), "inactive")
        assert.strictEqual((yield* shell.exec(ip, "systemctl is-enabled k3s")).stdout.trim(), "disabled")

        const stopped = yield* reconcile(lab)
        const finding = stopped.plan.findings.find((f) => f.vm === "k3s-vm-pve")
        assert.strictEqual(finding?.code, "k3s.unavailable", JSON.stringify(stopped.plan.findings))
        assert.include(finding?.message ?? "", `k3s on k3s-vm-pve (${ip}) is stopped (inactive): apply starts it`)
        assert.notInclude(finding?.hint ?? "", "bring its servers back")
        // the plan starts it itself: not for the user (plan exits 0, not 1), left to the run's end
        assert.strictEqual(finding?.effect, "deferred")
        assert.include(finding?.message ?? "", "this run brings k3s-vm-pve (start k3s on k3s-vm-pve")
        assert.include(finding?.hint ?? "", "nothing to do by hand")
        // started, not rebuilt, and no cluster started beside the one on its disk
        assert.deepStrictEqual(
          stopped.plan.actions.map((a) => `${a._tag} ${a.node}`),
          ["StartK3s pve"]
        )
        assert.include(stopped.plan.actions[0]?.reason ?? "", "k3s on k3s-vm-pve is stopped (inactive)")
        assert.deepStrictEqual(
          stopped.result.outcomes.map((o) => `${o.status}: ${o.detail}`),
          ["done: k3s on k3s-vm-pve started (it was inactive); its Node is waited for at the end of the run"]
        )
        // the run waited for its Node: the finding the plan made is gone, the server is a Ready member again
        assert.deepStrictEqual(
          stopped.report.convergence.nodes.flatMap((n) => n.reasons.map((r) => `${n.node}: ${r.message}`)),
          []
        )
        assert.isTrue(stopped.report.convergence.converged)
        assert.deepStrictEqual(nodeRows(sim), ["k3s-vm-pve server True v1.30.5+k3s1"])
        assert.strictEqual((yield* shell.exec(ip, "systemctl is-active k3s")).stdout.trim(), "active")
        // enabled too: the VM's next boot starts it (a unit left disabled would be down again after every reboot)
        assert.strictEqual((yield* shell.exec(ip, "systemctl is-enabled k3s")).stdout.trim(), "enabled")
        assert.strictEqual(sim.k3sEvents().filter((e) => e.kind === "cluster-init").length, 1)
        assert.deepStrictEqual(
          k3sState(sim).nodes.map((n) => `${n.name} ${n.createdAt}`),
          before.nodes.map((n) => `${n.name} ${n.createdAt}`),
          "the same Node"
        )

        sim.clearRequests()
        const next = yield* reconcile(lab)
        assert.deepStrictEqual(next.plan.actions, [])
        assert.isTrue(next.report.convergence.converged)
        assert.deepStrictEqual(
          sim
            .requests()
            .filter((r) => r.transport === "guest-ssh")
            .map((r) => r.command ?? ""),
          ["sudo -n /usr/local/bin/k3s kubectl get nodes -o json"]
        )

        // stopped again, now with a token in its config that its datastore was not made with: the start the run makes
        // fails on that, and the run says so at once instead of waiting timeouts.k3sReady for a Node that cannot come
        assert.strictEqual((yield* shell.exec(ip, "sudo -n systemctl stop k3s")).exitCode, 0)
        const wrote = yield* shell.exec(ip, "sudo -n install -D -m 600 /dev/stdin /etc/rancher/k3s/config.yaml", {
          stdin: "token: not-the-cluster-token\n"
        })
        assert.strictEqual(wrote.exitCode, 0, wrote.stderr)
        const failing = yield* reconcile(lab)
        assert.deepStrictEqual(
          failing.plan.actions.map((a) => `${a._tag} ${a.node}`),
          ["StartK3s pve"]
        )
        const reasons = failing.report.convergence.nodes.flatMap((n) => n.reasons)
        assert.deepStrictEqual(
          reasons.map((r) => `${r.code} ${r.status}`),
          ["k3s.start-failed blocked"]
        )
        assert.match(
          reasons[0]?.message ?? "",
          /^k3s on k3s-vm-pve \(.+\) did not come up after this run started it: it stopped \(\w+\) on a cause that stays: .*bootstrap data already found and encrypted with different token/
        )
        assert.isFalse(failing.report.convergence.converged)
        assert.notInclude(
          failing.events.map((e) => e._tag).join(" "),
          "Settling",
          "no wait was reported: the run did not wait for the Node"
        )
      }),
    120_000
  )
})

describe("a renamed cluster (vm.nameTemplate changed on a running lab)", () => {
  it.live(
    "the new VMs join the running cluster through an old server (same CA, no second cluster); with --prune the old VMs leave one at a time behind the quorum guard; the next run changes nothing",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(
          labScenario([...servers, "fun-goal"], {
            ipPool: `${net}.10`,
            guestSshPort: 2222,
            k3s: {
              version: "v1.30.5+k3s1",
              joinDelayMs: 2000,
              readyDelayMs: 3000,
              learnerPromotionDelayMs: 3000,
              podReadyDelayMs: 1000,
              podTerminateDelayMs: 1000,
              workloads: [{ name: "web", replicas: 2, pdb: { minAvailable: 1 } }]
            }
          })
        )
        const nodes = {
          ...Object.fromEntries(servers.map((n) => [n, server])),
          "fun-goal": "    vms: [{ role: agent }]"
        }
        const old = yield* makeLab(sim, { vm: k3sSection(), nodes })
        assert.isTrue((yield* reconcile(old)).report.convergence.converged)
        const ca = k3sState(sim).caHash
        const oldVms = simVms(sim)
        sim.clearRequests()

        // the same lab, its VMs named k8s-<node> now: the old VMs are orphans that run the cluster
        const renamed = yield* makeLab(sim, { vm: `  nameTemplate: k8s-{node}\n${k3sSection()}`, nodes })
        const run = yield* reconcile(renamed, { prune: true })
        const steps = run.plan.actions.filter((a) => a._tag === "InitK3s" || a._tag === "JoinK3s")
        assert.deepStrictEqual(
          steps.map((a) => `${a._tag}:${a.vm}`),
          ["JoinK3s:k8s-pve", "JoinK3s:k8s-still-fawn", "JoinK3s:k8s-chief-horse", "JoinK3s:k8s-fun-goal"],
          "the new VMs join; nobody starts a cluster"
        )
        for (const a of steps)
          assert.isTrue(a._tag === "JoinK3s" && a.via?.vm?.startsWith("k3s-vm-"), JSON.stringify(a))
        const prunes = run.plan.actions.filter((a) => a._tag === "DestroyVm")
        assert.deepStrictEqual(
          prunes.map((a) => (a._tag === "DestroyVm" ? a.name : "")).sort(),
          oldVms.map((v) => v.name).sort()
        )
        // every prune waits for the joins, and goes through a server that stays
        for (const p of prunes) {
          if (p._tag !== "DestroyVm") continue
          for (const j of steps) assert.include(p.after, j.id, `${p.id} waits for ${j.id}`)
          assert.isTrue(p.k3sVia?.vm.startsWith("k8s-"), JSON.stringify(p.k3sVia))
        }
        assert.deepStrictEqual(
          run.result.outcomes.filter((o) => o.status !== "done").map((o) => `${o.id}: ${o.detail}`),
          []
        )
        assert.deepStrictEqual(run.plan.cluster, { servers: 3, agents: 1, etcd: true, through: "k3s-vm-chief-horse" })
        assert.isTrue(run.report.convergence.converged)

        const state = k3sState(sim)
        assert.strictEqual(state.caHash, ca, "the same cluster")
        assert.deepStrictEqual(state.strayClusters, [], "no second cluster")
        assert.deepStrictEqual(sim.k3sEvents().filter((e) => e.kind === "cluster-init").length, 1)
        assert.deepStrictEqual(
          sim.k3sEvents().filter((e) => e.kind === "etcd-quorum-lost"),
          [],
          "etcd never lost its quorum"
        )
        assert.deepStrictEqual(nodeRows(sim), [
          "k8s-chief-horse server True v1.30.5+k3s1",
          "k8s-fun-goal agent True v1.30.5+k3s1",
          "k8s-pve server True v1.30.5+k3s1",
          "k8s-still-fawn server True v1.30.5+k3s1"
        ])
        assert.deepStrictEqual(
          state.etcdMembers
            .filter((m) => !m.isLearner)
            .map((m) => m.name.slice(0, -9))
            .sort(),
          ["k8s-chief-horse", "k8s-pve", "k8s-still-fawn"]
        )
        // the old servers left one at a time, each drained, stopped, its Node (and etcd member) removed before the next
        // one was cordoned
        const teardowns = oldVms
          .filter((v) => servers.some((n) => v.name === `k3s-vm-${n}`))
          .map((v) => teardownSteps(sim, v.vmid, v.name as string))
          .sort((a, b) => (a[0]?.index ?? 0) - (b[0]?.index ?? 0))
        for (const t of teardowns)
          assert.deepStrictEqual(
            [...new Set(t.map((s) => s.step))],
            ["cordon", "drain", "stop", "delete-node", "delete-secret", "destroy"]
          )
        for (let i = 1; i < teardowns.length; i++) {
          const previous = teardowns[i - 1]?.find((s) => s.step === "delete-node")?.index ?? Infinity
          assert.isAbove(teardowns[i]?.[0]?.index ?? -1, previous, "two servers out at once")
        }
        assert.strictEqual(
          sim.k3sEvents().filter((e) => e.kind === "etcd-member-removed" && e.node.startsWith("k3s-vm-")).length,
          3
        )
        assert.deepStrictEqual(
          state.secrets.map((s) => s.name).sort(),
          ["k8s-chief-horse", "k8s-fun-goal", "k8s-pve", "k8s-still-fawn"].map((n) => `${n}.node-password.k3s`)
        )
        assert.deepStrictEqual(
          simVms(sim)
            .map((v) => v.name)
            .sort(),
          ["k8s-chief-horse", "k8s-fun-goal", "k8s-pve", "k8s-still-fawn"]
        )

        const again = yield* reconcile(renamed, { prune: true })
        assert.deepStrictEqual(again.plan.actions, [])
        assert.isTrue(again.report.convergence.converged)
      }),
    240_000
  )

  it.live(
    "old servers that run k3s but do not answer: no cluster is started beside theirs and none of them is pruned; the plan says which VMs and what to do",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(bare())
        const nodes = Object.fromEntries(servers.map((n) => [n, server]))
        assert.isTrue((yield* reconcile(yield* makeLab(sim, { vm: k3sSection(), nodes }))).report.convergence.converged)
        const ca = k3sState(sim).caHash
        const old = simVms(sim)
        yield* Effect.promise(() => sim.addFaults(old.map((v) => ({ kind: "guestSshRefused" as const, vmid: v.vmid }))))

        const renamed = yield* makeLab(sim, { vm: `  nameTemplate: k8s-{node}\n${k3sSection()}`, nodes })
        const run = yield* reconcile(renamed, { prune: true })
        assert.deepStrictEqual(
          run.plan.actions.filter((a) => a._tag === "InitK3s" || a._tag === "JoinK3s" || a._tag === "DestroyVm"),
          [],
          "no new cluster, no join without a server, no prune of a server the guard cannot check"
        )
        const unknown = run.plan.findings.filter((f) => f.code === "k3s.unavailable")
        assert.deepStrictEqual(
          unknown.map((f) => f.vm),
          [...servers, ...agents].map((n) => `k8s-${n}`)
        )
        for (const name of servers.map((n) => `k3s-vm-${n}`)) assert.include(unknown[0]?.message ?? "", `${name} (`)
        assert.include(unknown[0]?.hint ?? "", "homelab starts no second cluster")
        assert.deepStrictEqual(
          run.plan.findings
            .filter((f) => f.code === "vm.prune-needs-k3s")
            .map((f) => f.vm)
            .sort(),
          old.map((v) => v.name).sort()
        )
        assert.isFalse(run.report.convergence.converged)
        const state = k3sState(sim)
        assert.strictEqual(state.caHash, ca)
        assert.deepStrictEqual(state.strayClusters, [])
        assert.strictEqual(sim.k3sEvents().filter((e) => e.kind === "cluster-init").length, 1)
        assert.includeMembers(
          simVms(sim).map((v) => v.name),
          old.map((v) => v.name)
        )
      }),
    180_000
  )
})

describe("a server VM whose Node was deleted while its disk kept its etcd data (k3s-io/k3s#13498)", () => {
  it.live(
    "its join fails at once on etcd's refusal of a removed member, named with the fix (delete the data, or reprovision), not at a timeout",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(
          labScenario(servers, {
            ipPool: `${net}.40`,
            guestSshPort: 2222,
            k3s: { version: "v1.30.5+k3s1", joinDelayMs: 5000, readyDelayMs: 10_000, learnerPromotionDelayMs: 15_000 }
          })
        )
        const lab = yield* clusterLab(sim)
        assert.isTrue((yield* reconcile(lab)).report.convergence.converged)
        const pve = simVms(sim).find((v) => v.name === "k3s-vm-pve")?.ip
        const fawn = simVms(sim).find((v) => v.name === "k3s-vm-still-fawn")?.ip
        assert.ok(pve !== undefined && fawn !== undefined)
        const shell = yield* vmShell(lab)
        // its Node deleted on another server: k3s removes its etcd member, and k3s on the VM stops on it
        const deleted = yield* shell.exec(pve, "sudo -n /usr/local/bin/k3s kubectl delete node k3s-vm-still-fawn")
        assert.strictEqual(deleted.exitCode, 0, deleted.stderr)
        const run = yield* reconcile(lab, { only: ["still-fawn"] })
        const joined = run.result.outcomes.find((o) => o.action._tag === "JoinK3s")
        assert.strictEqual(joined?.status, "failed", JSON.stringify(run.result.outcomes))
        assert.include(joined?.detail ?? "", "starts on the etcd data of a member the cluster removed")
        assert.include(joined?.hint ?? "", `sudo rm -rf /var/lib/rancher/k3s/server/db\` on ${fawn}`)
        assert.include(joined?.hint ?? "", "`homelab reprovision k3s-vm-still-fawn`")
        assert.isFalse(run.report.convergence.converged)
      }),
    180_000
  )

  it.live(
    "with k3s since January 2026 (v1.34.3+k3s3) its k3s waits for a restart: apply restarts it, and it joins again as a new member before apply says converged",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(
          labScenario(servers, {
            ipPool: `${net}.50`,
            guestSshPort: 2222,
            k3s: {
              version: "v1.34.3+k3s3",
              joinDelayMs: 5000,
              readyDelayMs: 10_000,
              learnerPromotionDelayMs: 15_000
            }
          })
        )
        const lab = yield* makeLab(sim, {
          vm: k3sSection().replace("version: v1.30.5+k3s1", "version: v1.34.3+k3s3"),
          nodes: Object.fromEntries(servers.map((n) => [n, server]))
        })
        assert.isTrue((yield* reconcile(lab)).report.convergence.converged)
        const pve = simVms(sim).find((v) => v.name === "k3s-vm-pve")?.ip
        assert.ok(pve !== undefined)
        const member = () => sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("k3s-vm-still-fawn-"))
        const before = member()
        assert.strictEqual(before.length, 1)
        const shell = yield* vmShell(lab)
        // its Node deleted on another server: k3s removes its etcd member; k3s on the VM writes the tombstone and runs on
        const deleted = yield* shell.exec(pve, "sudo -n /usr/local/bin/k3s kubectl delete node k3s-vm-still-fawn")
        assert.strictEqual(deleted.exitCode, 0, deleted.stderr)
        assert.isTrue(sim.k3sEvents().some((e) => e.kind === "etcd-tombstone-written"))
        // the plan says that apply restarts k3s there, and why: from one look at that VM's unit and journal
        sim.clearRequests()
        const planned = yield* reconcileAll(desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys }), {
          policy: healthPolicyFromConfig(lab.config),
          apply: false
        }).pipe(Effect.provide(clientLayer(lab)))
        const fawn = simVms(sim).find((v) => v.name === "k3s-vm-still-fawn")
        const join = planned.plan.actions.find((a) => a._tag === "JoinK3s")
        assert.strictEqual(join?.node, "still-fawn", JSON.stringify(planned.plan.actions))
        assert.strictEqual(
          join?.reason,
          "k3s-vm-still-fawn is not in the cluster: the cluster removed its etcd member (its Node was deleted), and k3s there runs on without etcd until it is restarted; apply restarts k3s on k3s-vm-still-fawn, which joins again as a new member"
        )
        assert.deepStrictEqual(
          sim
            .requests()
            .filter((r) => r.transport === "guest-ssh" && r.vmid === fawn?.vmid)
            .map((r) => r.command),
          [unitJournalCommand("server")]
        )
        const run = yield* reconcile(lab, { only: ["still-fawn"] })
        const joined = run.result.outcomes.find((o) => o.action._tag === "JoinK3s")
        assert.strictEqual(joined?.status, "done", JSON.stringify(run.result.outcomes))
        assert.strictEqual(joined?.detail, "k3s-vm-still-fawn joined as a server (v1.34.3+k3s3)")
        assert.isTrue(run.report.convergence.converged, JSON.stringify(run.report.convergence))
        // k3s moved the removed member's data aside and joined through its --server as a new member, now voting
        assert.isTrue(sim.k3sEvents().some((e) => e.kind === "etcd-data-moved-aside"))
        const after = member()
        assert.strictEqual(after.length, 1)
        assert.notStrictEqual(after[0]?.id, before[0]?.id)
        assert.isFalse(after[0]?.isLearner)
        const state = sim.state().k3s
        assert.strictEqual(state.nodes.find((n) => n.name === "k3s-vm-still-fawn")?.ready, "True")
        assert.strictEqual(state.etcdMembers.length, 3)
        assert.isFalse(state.etcdMembers.some((m) => m.isLearner))
      }),
    180_000
  )
})
