/**
 * k3s kept at quorum when server VMs fail in more than one way at once: some stopped or paused (their disks, and etcd
 * data, intact), some destroyed (their etcd data gone with their disks). Bringing the ones that are down back is the
 * run's own work only while that gives etcd its quorum again; when it would not, the quorum is lost for good and the
 * plan says the `--cluster-reset` recovery instead of promising it, and starts or makes nothing meanwhile.
 */
import { assert, describe, it } from "@effect/vitest"
import { ProxmoxApi } from "@homelab/proxmox-client"
import { reserveLoopbackNet, type SimHandle } from "@homelab/sim"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { RejoinTag } from "../src/Marks.js"
import {
  atRecord,
  clientLayer,
  type Lab,
  labScenario,
  makeLab,
  operationBegins,
  reconcile,
  simVms,
  startLab,
  untilResourcesCurrent,
  vmShell
} from "./lab.js"

const net = reserveLoopbackNet().net

/**
 * A converged lab of server VMs on `servers` and agents on `agents`; then the server VMs on `down` are stopped (or
 * paused) and those on `destroyed` destroyed, disks and all.
 */
const mixedFailure = (
  servers: ReadonlyArray<string>,
  agents: ReadonlyArray<string>,
  down: ReadonlyArray<string>,
  destroyed: ReadonlyArray<string>,
  how: "stopped" | "paused" | "k3s stopped" = "stopped"
) =>
  Effect.gen(function* () {
    const sim = yield* startLab(
      labScenario([...servers, ...agents], {
        ipPool: `${net}.10`,
        guestSshPort: 2222,
        k3s: { version: "v1.30.5+k3s1", joinDelayMs: 5000, readyDelayMs: 10_000, learnerPromotionDelayMs: 15_000 }
      })
    )
    const lab = yield* makeLab(sim, {
      vm: ["  sshPort: 2222", "k3s:", "  version: v1.30.5+k3s1"].join("\n"),
      nodes: {
        ...Object.fromEntries(servers.map((n) => [n, "    vms: [{ role: server }]"])),
        ...Object.fromEntries(agents.map((n) => [n, "    vms: [{ role: agent }]"]))
      },
      health: "  graceSeconds: 0"
    })
    assert.isTrue((yield* reconcile(lab)).report.convergence.converged)
    yield* Effect.gen(function* () {
      const api = yield* ProxmoxApi
      const shell = yield* vmShell(lab)
      for (const n of [...down, ...destroyed]) {
        const vmid = vmidOf(sim, n)
        if (destroyed.includes(n) || how === "stopped") yield* api.stopVm(n, vmid)
        else if (how === "paused") sim.setVmStatus(vmid, { status: "running", qmpstatus: "paused" })
        else {
          const ip = simVms(sim).find((v) => v.vmid === vmid)?.ip as string
          assert.strictEqual((yield* shell.exec(ip, "sudo -n systemctl stop k3s")).exitCode, 0)
        }
        if (destroyed.includes(n)) yield* api.destroyVm(n, vmid)
      }
    }).pipe(Effect.provide(clientLayer(lab)))
    yield* untilResourcesCurrent(lab)
    return { sim, lab }
  })

const vmidOf = (sim: SimHandle, node: string) => simVms(sim).find((v) => v.name === `k3s-vm-${node}`)?.vmid as number

/** Whether etcd lost its quorum (and has not got it back since). */
const quorumLost = (sim: SimHandle) =>
  sim
    .k3sEvents()
    .filter((e) => e.kind.startsWith("etcd-quorum-"))
    .at(-1)?.kind === "etcd-quorum-lost"

/** How many etcd members vote. */
const voters = (sim: SimHandle) => sim.state().k3s.etcdMembers.filter((m) => !m.isLearner).length

/** The operator's recovery as the plan's hint says it: on the survivor, k3s stopped, `--cluster-reset`, started. */
const clusterReset = (lab: Lab, survivor: string) =>
  Effect.gen(function* () {
    const ip = simVms(lab.sim).find((v) => v.name === survivor)?.ip as string
    const shell = yield* vmShell(lab)
    assert.strictEqual((yield* shell.exec(ip, "sudo -n systemctl stop k3s")).exitCode, 0)
    const reset = yield* shell.exec(ip, "sudo -n k3s server --cluster-reset")
    assert.strictEqual(reset.exitCode, 0, reset.stderr)
    assert.strictEqual((yield* shell.exec(ip, "sudo -n systemctl start k3s")).exitCode, 0)
    yield* shell
      .exec(ip, "sudo -n k3s kubectl get nodes")
      .pipe(Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (r) => r.exitCode === 0 }))
  })

/**
 * A run while etcd's quorum is lost for good: it starts and makes nothing (the VMs as they were), is not converged, and
 * says so up front on k3s-vm-pve; its findings, that first one apart.
 */
const refusedRun = (sim: SimHandle, lab: Lab) =>
  Effect.gen(function* () {
    const before = simVms(sim).map((v) => `${v.name} ${v.status} ${v.qmpstatus}`)
    const refused = yield* reconcile(lab, { timeouts: { k3sReady: Duration.seconds(5) } })
    assert.deepStrictEqual(refused.plan.actions, [], "nothing started, nothing made")
    assert.deepStrictEqual(
      simVms(sim).map((v) => `${v.name} ${v.status} ${v.qmpstatus}`),
      before
    )
    assert.isFalse(refused.report.convergence.converged)
    const [first, ...rest] = refused.plan.findings
    assert.strictEqual(`${first?.code} ${first?.effect} ${first?.vm}`, "k3s.quorum-lost blocked k3s-vm-pve")
    return { first, rest }
  })

/**
 * The rest of the recovery of five servers with still-fawn down and chief-horse, fun-goal and wise-owl gone, after the
 * reset: still-fawn rebuilt (`homelab reprovision`), then one apply makes and joins the three (one server join at a
 * time), and a run after it changes nothing.
 */
const rebuildAndRejoin = (sim: SimHandle, lab: Lab) =>
  Effect.gen(function* () {
    const rebuilt = yield* reconcile(lab, { only: ["still-fawn"], reprovision: ["k3s-vm-still-fawn"] })
    assert.deepStrictEqual(
      rebuilt.result.outcomes.map((o) => `${o.action._tag} ${o.action.node} ${o.status}`),
      ["RecreateVm still-fawn done", "JoinK3s still-fawn done"]
    )
    assert.isTrue(rebuilt.report.convergence.converged)
    assert.strictEqual(voters(sim), 2)
    yield* untilResourcesCurrent(lab)
    const run = yield* reconcile(lab)
    assert.deepStrictEqual(
      run.result.outcomes.map((o) => `${o.action._tag} ${o.action.node} ${o.status}`),
      ["chief-horse", "fun-goal", "wise-owl"].flatMap((n) => [`CreateVm ${n} done`, `JoinK3s ${n} done`])
    )
    assert.isTrue(run.report.convergence.converged)
    assert.strictEqual(voters(sim), 5)
    assert.isTrue(sim.state().k3s.nodes.every((n) => n.ready === "True"))
    // one server joined at a time
    let open = 0
    for (const e of sim.k3sEvents().filter((e) => e.kind.startsWith("server-join-"))) {
      open += e.kind === "server-join-start" ? 1 : -1
      assert.isAtMost(open, 1, "two server joins overlapped")
    }
    yield* untilResourcesCurrent(lab)
    const again = yield* reconcile(lab)
    assert.deepStrictEqual(again.plan.actions, [])
    assert.isTrue(again.report.convergence.converged)
  })

/** The hint's first step when no server runs k3s: the down server's VM started by hand, waited for until SSH answers. */
const startByHand = (lab: Lab, vm: string) =>
  Effect.gen(function* () {
    const api = yield* ProxmoxApi
    const shell = yield* vmShell(lab)
    const { vmid, node } = simVms(lab.sim).find((v) => v.name === vm) as { vmid: number; node: string }
    yield* api.startVm(node, vmid)
    const ip = yield* api.vmIpv4(node, vmid).pipe(
      Effect.flatMap((ip) => (ip === undefined ? Effect.fail("no IP yet") : Effect.succeed(ip))),
      Effect.retry({ schedule: Schedule.spaced("50 millis") })
    )
    yield* shell.exec(ip, "true").pipe(Effect.retry({ schedule: Schedule.spaced("50 millis") }))
  }).pipe(Effect.provide(clientLayer(lab)))

describe("server VMs stopped and destroyed at once (k3s.md §5.2)", () => {
  it.live(
    "3 servers, one stopped and one destroyed: the run starts the stopped one (quorum back) and makes the destroyed one again, marked to rejoin; the next run replaces its old Node and converges, the one after changes nothing",
    () =>
      Effect.gen(function* () {
        const { sim, lab } = yield* mixedFailure(
          ["pve", "still-fawn", "chief-horse"],
          ["fun-goal"],
          ["still-fawn"],
          ["chief-horse"]
        )
        assert.isTrue(quorumLost(sim))
        const first = yield* reconcile(lab)
        assert.isFalse(quorumLost(sim))
        assert.deepStrictEqual(
          first.result.outcomes.map((o) => `${o.action._tag} ${o.action.node} ${o.status}`),
          ["StartVm still-fawn done", "CreateVm chief-horse done"]
        )
        // its join waits for a run that can read the cluster: not converged, and not for the user
        assert.isFalse(first.report.convergence.converged)
        assert.deepStrictEqual(
          first.report.convergence.nodes.flatMap((n) => n.reasons.map((r) => `${n.node} ${r.status}`)),
          ["chief-horse deferred"]
        )
        // the new VM carries the mark that lets the next run replace the Node its old VM left
        const made = simVms(sim).find((v) => v.name === "k3s-vm-chief-horse")
        assert.include(made?.tags.split(";") ?? [], RejoinTag)

        yield* untilResourcesCurrent(lab)
        const second = yield* reconcile(lab)
        assert.deepStrictEqual(
          second.result.outcomes.map((o) => `${o.action._tag} ${o.action.node} ${o.status}`),
          ["JoinK3s chief-horse done"]
        )
        assert.isTrue(second.report.convergence.converged, JSON.stringify(second.plan.findings))
        assert.strictEqual(voters(sim), 3)
        assert.isTrue(sim.state().k3s.nodes.every((n) => n.ready === "True"))

        yield* untilResourcesCurrent(lab)
        const third = yield* reconcile(lab)
        assert.deepStrictEqual(third.plan.actions, [])
        assert.isTrue(third.report.convergence.converged)
      }),
    300_000
  )

  it.live(
    "3 servers, one destroyed: its VM is made again, and another server stops before its join (quorum lost mid-apply): the join fails; the next run starts the stopped server and leaves the made VM's join to the run after, which replaces its old Node and converges",
    () =>
      Effect.gen(function* () {
        const { sim, lab } = yield* mixedFailure(["pve", "still-fawn", "chief-horse"], [], [], ["chief-horse"])
        assert.isFalse(quorumLost(sim))
        // the moment the new VM starts, still-fawn goes down: 1 of the 3 members runs
        yield* atRecord(sim, operationBegins("qmstart"), () =>
          sim.setVmStatus(vmidOf(sim, "still-fawn"), { status: "stopped", qmpstatus: "stopped" })
        )
        const cut = yield* reconcile(lab, { timeouts: { k3sReady: Duration.seconds(5) } })
        assert.deepStrictEqual(
          cut.result.outcomes.map((o) => `${o.action._tag} ${o.action.node} ${o.status}`),
          ["CreateVm chief-horse done", "JoinK3s chief-horse failed"]
        )
        assert.isFalse(cut.report.convergence.converged)
        assert.isTrue(quorumLost(sim))
        assert.strictEqual(voters(sim), 3, "no member removed while the quorum was lost")
        const made = simVms(sim).find((v) => v.name === "k3s-vm-chief-horse")
        assert.include(made?.tags.split(";") ?? [], RejoinTag)

        yield* untilResourcesCurrent(lab)
        const back = yield* reconcile(lab)
        assert.deepStrictEqual(
          back.result.outcomes.map((o) => `${o.action._tag} ${o.action.node} ${o.status}`),
          ["StartVm still-fawn done"]
        )
        assert.isFalse(back.report.convergence.converged)
        assert.deepStrictEqual(
          back.report.convergence.nodes.flatMap((n) => n.reasons.map((r) => `${n.node} ${r.status}`)),
          ["chief-horse deferred"],
          JSON.stringify(back.report.convergence)
        )

        yield* untilResourcesCurrent(lab)
        const joined = yield* reconcile(lab)
        assert.deepStrictEqual(
          joined.result.outcomes.map((o) => `${o.action._tag} ${o.action.node} ${o.status}`),
          ["JoinK3s chief-horse done"]
        )
        assert.isTrue(joined.report.convergence.converged, JSON.stringify(joined.plan.findings))
        assert.strictEqual(voters(sim), 3)
        yield* untilResourcesCurrent(lab)
        const again = yield* reconcile(lab)
        assert.deepStrictEqual(again.plan.actions, [])
        assert.isTrue(again.report.convergence.converged)
      }),
    300_000
  )

  for (const how of ["stopped", "paused", "k3s stopped"] as const) {
    it.live(
      `5 servers, one ${how === "k3s stopped" ? "with its k3s stopped" : how} and three destroyed: bringing it back would give 2 of 5, so the quorum is lost for good; the plan says so with the --cluster-reset recovery and starts or makes nothing; following the hint converges, and a second run changes nothing`,
      () =>
        Effect.gen(function* () {
          const servers = ["pve", "still-fawn", "chief-horse", "fun-goal", "wise-owl"]
          const { sim, lab } = yield* mixedFailure(
            servers,
            [],
            ["still-fawn"],
            ["chief-horse", "fun-goal", "wise-owl"],
            how
          )
          assert.isTrue(quorumLost(sim))
          const { first, rest } = yield* refusedRun(sim, lab)
          assert.include(
            first?.message ?? "",
            "etcd has lost quorum: of its 5 k3s servers, k3s-vm-chief-horse, k3s-vm-fun-goal and k3s-vm-wise-owl are gone (no VM: their etcd data went with their disks) and only k3s-vm-pve survives; k3s-vm-still-fawn is down (its VM or its k3s does not run), and with it back only 2 would run, still short of the 3 a quorum needs"
          )
          assert.include(first?.message ?? "", "nor start k3s-vm-still-fawn (that would not bring the quorum back)")
          assert.include(first?.hint ?? "", "`sudo systemctl stop k3s && sudo k3s server --cluster-reset`")
          assert.include(
            first?.hint ?? "",
            "leave k3s-vm-still-fawn down (homelab does not start it) and rebuild it afterwards (`homelab reprovision k3s-vm-still-fawn`"
          )
          assert.deepStrictEqual(
            rest.map((f) => `${f.code} ${f.effect} ${f.vm}: ${f.message}`),
            [
              `k3s.quorum-lost blocked k3s-vm-still-fawn: not starting ${how === "k3s stopped" ? "k3s on" : "k3s server"} k3s-vm-still-fawn: etcd has lost quorum (above), and it would not bring the quorum back`,
              ...["chief-horse", "fun-goal", "wise-owl"].map(
                (n) =>
                  `k3s.quorum-lost blocked k3s-vm-${n}: not recreating k3s server k3s-vm-${n}: etcd has lost quorum (above), so it could not join`
              )
            ]
          )

          // the hint, step by step: the reset on the survivor, the down server rebuilt, then apply
          yield* clusterReset(lab, "k3s-vm-pve")
          yield* rebuildAndRejoin(sim, lab)
        }),
      300_000
    )
  }
  it.live(
    "5 servers, none running k3s: two stopped and three destroyed; starting both would give 2 of 5, so the quorum is lost for good: the plan names the first stopped one to recover on (started by hand, then --cluster-reset), starts or makes nothing; following the hint converges, and a second run changes nothing",
    () =>
      Effect.gen(function* () {
        const servers = ["pve", "still-fawn", "chief-horse", "fun-goal", "wise-owl"]
        const { sim, lab } = yield* mixedFailure(
          servers,
          [],
          ["pve", "still-fawn"],
          ["chief-horse", "fun-goal", "wise-owl"]
        )
        assert.isTrue(quorumLost(sim))
        const { first, rest } = yield* refusedRun(sim, lab)
        assert.include(
          first?.message ?? "",
          "etcd has lost quorum: of its 5 k3s servers, k3s-vm-chief-horse, k3s-vm-fun-goal and k3s-vm-wise-owl are gone (no VM: their etcd data went with their disks) and no server VM runs k3s; k3s-vm-pve and k3s-vm-still-fawn are down (its VM or its k3s does not run), and with them back only 2 would run, still short of the 3 a quorum needs."
        )
        assert.include(
          first?.message ?? "",
          "nor start k3s-vm-pve and k3s-vm-still-fawn (that would not bring the quorum back)"
        )
        const pve = vmidOf(sim, "pve")
        assert.include(first?.hint ?? "", `start k3s-vm-pve by hand (\`qm start ${pve}\` on pve`)
        assert.include(
          first?.hint ?? "",
          "then recover on k3s-vm-pve (etcd's newest data is on the server that went down last: if that is k3s-vm-still-fawn, recover there instead and leave k3s-vm-pve down): `sudo systemctl stop k3s && sudo k3s server --cluster-reset`"
        )
        assert.include(
          first?.hint ?? "",
          "leave k3s-vm-still-fawn down (homelab does not start it) and rebuild it afterwards (`homelab reprovision k3s-vm-still-fawn`"
        )
        assert.deepStrictEqual(
          rest.map((f) => `${f.code} ${f.effect} ${f.vm}: ${f.message}`),
          [
            "k3s.quorum-lost blocked k3s-vm-still-fawn: not starting k3s server k3s-vm-still-fawn: etcd has lost quorum (above), and it would not bring the quorum back",
            ...["chief-horse", "fun-goal", "wise-owl"].map(
              (n) =>
                `k3s.quorum-lost blocked k3s-vm-${n}: not recreating k3s server k3s-vm-${n}: etcd has lost quorum (above), so it could not join`
            )
          ]
        )
        // a second run says the same, and still starts nothing
        yield* untilResourcesCurrent(lab)
        const again = yield* reconcile(lab, { timeouts: { k3sReady: Duration.seconds(5) } })
        assert.deepStrictEqual(again.plan.actions, [])
        assert.strictEqual(again.plan.findings[0]?.message, first?.message)

        // the hint, step by step: the first down server started by hand and reset, the other rebuilt, then apply
        yield* startByHand(lab, "k3s-vm-pve")
        yield* clusterReset(lab, "k3s-vm-pve")
        yield* untilResourcesCurrent(lab)
        yield* rebuildAndRejoin(sim, lab)
      }),
    300_000
  )

  it.live(
    "3 servers: one made again (marked to rejoin) whose join failed as the quorum went, then another destroyed: the made one counts as gone (etcd still counts its old member), so the plan says 1 of 3 survives and the recovery joins both; following it converges",
    () =>
      Effect.gen(function* () {
        const { sim, lab } = yield* mixedFailure(["pve", "still-fawn", "chief-horse"], [], [], ["chief-horse"])
        // the moment the new VM starts, still-fawn goes down: 1 of the 3 members runs
        yield* atRecord(sim, operationBegins("qmstart"), () =>
          sim.setVmStatus(vmidOf(sim, "still-fawn"), { status: "stopped", qmpstatus: "stopped" })
        )
        const cut = yield* reconcile(lab, { timeouts: { k3sReady: Duration.seconds(5) } })
        assert.deepStrictEqual(
          cut.result.outcomes.map((o) => `${o.action._tag} ${o.action.node} ${o.status}`),
          ["CreateVm chief-horse done", "JoinK3s chief-horse failed"]
        )
        assert.include(
          simVms(sim)
            .find((v) => v.name === "k3s-vm-chief-horse")
            ?.tags.split(";") ?? [],
          RejoinTag
        )
        // then still-fawn is destroyed, disk and all
        yield* Effect.gen(function* () {
          const api = yield* ProxmoxApi
          yield* api.destroyVm("still-fawn", vmidOf(sim, "still-fawn"))
        }).pipe(Effect.provide(clientLayer(lab)))
        yield* untilResourcesCurrent(lab)

        const { first, rest } = yield* refusedRun(sim, lab)
        assert.include(
          first?.message ?? "",
          "etcd has lost quorum: of its 3 k3s servers, k3s-vm-still-fawn is gone (no VM: its etcd data went with its disk), k3s-vm-chief-horse was made again and has not joined (etcd still counts its old member, whose data went with the old disk) and only k3s-vm-pve survives, short of the 2 a quorum needs"
        )
        assert.include(
          first?.message ?? "",
          "so homelab does not recreate k3s-vm-still-fawn, nor join k3s-vm-chief-horse"
        )
        assert.include(
          first?.hint ?? "",
          "then `homelab apply` rebuilds k3s-vm-still-fawn on new disks (a member's old etcd data must be gone before it rejoins) and joins k3s-vm-still-fawn and k3s-vm-chief-horse one at a time behind the quorum guard"
        )
        assert.deepStrictEqual(
          rest.map((f) => `${f.code} ${f.effect} ${f.vm}`),
          ["k3s.quorum-lost blocked k3s-vm-still-fawn", "k3s.quorum-lost blocked k3s-vm-chief-horse"]
        )

        yield* clusterReset(lab, "k3s-vm-pve")
        const run = yield* reconcile(lab)
        assert.deepStrictEqual(run.result.outcomes.map((o) => `${o.action._tag} ${o.action.node} ${o.status}`).sort(), [
          "CreateVm still-fawn done",
          "JoinK3s chief-horse done",
          "JoinK3s still-fawn done"
        ])
        assert.isTrue(run.report.convergence.converged, JSON.stringify(run.plan.findings))
        assert.strictEqual(voters(sim), 3)
        assert.isTrue(sim.state().k3s.nodes.every((n) => n.ready === "True"))
        yield* untilResourcesCurrent(lab)
        const again = yield* reconcile(lab)
        assert.deepStrictEqual(again.plan.actions, [])
        assert.isTrue(again.report.convergence.converged)
      }),
    300_000
  )
})
