import { assert, describe, it } from "@effect/vitest"
import { ProxmoxApi } from "@homelab/proxmox-client"
import { reserveLoopbackNet } from "@homelab/sim"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schedule from "effect/Schedule"
import type { Desired } from "../src/Desired.js"
import type { ObservedVm } from "../src/Observed.js"
import { quorumLostOf } from "../src/QuorumLost.js"
import { atRecord, clientLayer, labScenario, makeLab, reconcile, simVms, startLab, vmShell } from "./lab.js"

const net = reserveLoopbackNet().net
const servers = ["pve", "still-fawn", "chief-horse"]

/** A converged lab of three k3s server VMs, two of which are then destroyed (disks and all): etcd lost its quorum. */
const twoServersDestroyed = Effect.gen(function* () {
  const sim = yield* startLab(
    labScenario(servers, {
      ipPool: `${net}.10`,
      guestSshPort: 2222,
      k3s: { version: "v1.30.5+k3s1", joinDelayMs: 5000, readyDelayMs: 10_000, learnerPromotionDelayMs: 15_000 }
    })
  )
  const lab = yield* makeLab(sim, {
    vm: ["  sshPort: 2222", "k3s:", "  version: v1.30.5+k3s1"].join("\n"),
    nodes: Object.fromEntries(servers.map((n) => [n, "    vms: [{ role: server }]"])),
    health: "  graceSeconds: 0"
  })
  assert.isTrue((yield* reconcile(lab)).report.convergence.converged)
  for (const n of ["still-fawn", "chief-horse"]) {
    const vm = simVms(sim).find((v) => v.name === `k3s-vm-${n}`) as { vmid: number }
    yield* Effect.gen(function* () {
      const api = yield* ProxmoxApi
      yield* api.stopVm(n, vm.vmid)
      yield* api.destroyVm(n, vm.vmid)
    }).pipe(Effect.provide(clientLayer(lab)))
  }
  assert.strictEqual(sim.k3sEvents().filter((e) => e.kind === "etcd-quorum-lost").length, 1)

  return { sim, lab }
})

/**
 * The operator's recovery, as the hint says it (`k3s server --cluster-reset` on the survivor, k3s started again); then
 * apply rebuilds and rejoins the lost servers, one at a time, and converges.
 */
const recoverAndRebuild = ({ sim, lab }: Effect.Success<typeof twoServersDestroyed>) =>
  Effect.gen(function* () {
    const pve = simVms(sim).find((v) => v.name === "k3s-vm-pve")?.ip as string
    const shell = yield* vmShell(lab)
    assert.strictEqual((yield* shell.exec(pve, "sudo -n systemctl stop k3s")).exitCode, 0)
    const reset = yield* shell.exec(pve, "sudo -n k3s server --cluster-reset")
    assert.strictEqual(reset.exitCode, 0)
    assert.include(reset.stderr, "Managed etcd cluster membership has been reset")
    const restored = yield* Deferred.make<void>()
    yield* atRecord(
      sim,
      (r) => r._tag === "K3sEvent" && r.event.kind === "etcd-quorum-restored",
      () => Deferred.doneUnsafe(restored, Exit.void)
    )
    assert.strictEqual((yield* shell.exec(pve, "sudo -n systemctl start k3s")).exitCode, 0)
    yield* Deferred.await(restored)

    const rebuilt = yield* reconcile(lab)
    assert.deepStrictEqual(rebuilt.result.outcomes.map((o) => `${o.action._tag} ${o.action.node} ${o.status}`).sort(), [
      "CreateVm chief-horse done",
      "CreateVm still-fawn done",
      "JoinK3s chief-horse done",
      "JoinK3s still-fawn done"
    ])
    assert.isTrue(rebuilt.report.convergence.converged)
    const k3s = sim.state().k3s
    assert.strictEqual(k3s.etcdMembers.filter((m) => !m.isLearner).length, 3)
    assert.isTrue(k3s.nodes.every((n) => n.ready === "True"))
    assert.strictEqual(sim.k3sEvents().filter((e) => e.kind === "cluster-init").length, 1)
    // one server joined at a time
    const joins = sim.k3sEvents().filter((e) => e.kind === "server-join-start" || e.kind === "server-join-finish")
    assert.deepStrictEqual(
      joins.slice(-4).map((e) => e.kind),
      ["server-join-start", "server-join-finish", "server-join-start", "server-join-finish"]
    )
    const again = yield* reconcile(lab)
    assert.deepStrictEqual(again.plan.actions, [])
    assert.isTrue(again.report.convergence.converged)
  })

describe("an embedded etcd that lost quorum: two of three server VMs destroyed (k3s.md §5.2)", () => {
  it.live(
    "apply recreates nothing and says once, up front, who is gone, who survives and the recovery; after `k3s server --cluster-reset` on the survivor the next apply rebuilds and rejoins the lost servers and converges",
    () =>
      Effect.gen(function* () {
        const { sim, lab } = yield* twoServersDestroyed
        const refused = yield* reconcile(lab)
        // no VM made again: its join through a cluster that cannot add a member could only hang or fail
        assert.deepStrictEqual(refused.plan.actions, [])
        assert.deepStrictEqual(
          simVms(sim).map((v) => v.name),
          ["k3s-vm-pve"]
        )
        assert.isFalse(refused.report.convergence.converged)
        const [first, ...rest] = refused.plan.findings
        assert.strictEqual(first?.code, "k3s.quorum-lost")
        assert.strictEqual(first?.vm, "k3s-vm-pve")
        assert.match(
          first?.message ?? "",
          /^etcd has lost quorum: of its 3 k3s servers, k3s-vm-still-fawn and k3s-vm-chief-horse are gone \(no VM: .*\) and only k3s-vm-pve survives, short of the 2 a quorum needs; its API answers nothing \(etcdserver: request timed out\)\. No server can join or leave the cluster until etcd is recovered/
        )
        assert.include(first?.hint ?? "", "`sudo systemctl stop k3s && sudo k3s server --cluster-reset`")
        assert.include(first?.hint ?? "", "one-member etcd cluster that keeps its data")
        assert.include(
          first?.hint ?? "",
          "then `homelab apply` rebuilds k3s-vm-still-fawn and k3s-vm-chief-horse on new disks"
        )
        // said once: the lost VMs' findings point at it
        assert.deepStrictEqual(
          rest.map((f) => `${f.code} ${f.vm}: ${f.message}`),
          [
            "k3s.quorum-lost k3s-vm-still-fawn: not recreating k3s server k3s-vm-still-fawn: etcd has lost quorum (above), so it could not join",
            "k3s.quorum-lost k3s-vm-chief-horse: not recreating k3s server k3s-vm-chief-horse: etcd has lost quorum (above), so it could not join"
          ]
        )

        yield* recoverAndRebuild({ sim, lab })
      }),
    300_000
  )

  it.live(
    "the survivor's k3s restarted meanwhile (its unit activating, its API refused, its journal waiting for etcd): the same quorum-lost finding and recovery, nothing recreated",
    () =>
      Effect.gen(function* () {
        const { sim, lab } = yield* twoServersDestroyed
        const pve = simVms(sim).find((v) => v.name === "k3s-vm-pve")?.ip as string
        const shell = yield* vmShell(lab)
        // systemd restarts it and waits for nothing (k3s's unit is Type=notify: a blocking restart would wait for ever)
        assert.strictEqual((yield* shell.exec(pve, "sudo -n systemctl restart --no-block k3s")).exitCode, 0)
        yield* shell.exec(pve, "sudo -n journalctl -u k3s -n 5 -o cat --no-pager").pipe(
          Effect.repeat({
            schedule: Schedule.spaced("20 millis"),
            until: (r) => r.stdout.includes("context deadline exceeded")
          })
        )
        const api = yield* shell.exec(pve, "sudo -n k3s kubectl get nodes")
        assert.include(api.stderr, "refused")

        const refused = yield* reconcile(lab)
        assert.deepStrictEqual(refused.plan.actions, [], "no VM made again while etcd has no quorum")
        assert.isFalse(refused.report.convergence.converged)
        assert.deepStrictEqual(
          refused.plan.findings.map((f) => `${f.code} ${f.vm}`),
          ["k3s.quorum-lost k3s-vm-pve", "k3s.quorum-lost k3s-vm-still-fawn", "k3s.quorum-lost k3s-vm-chief-horse"]
        )
        const [first] = refused.plan.findings
        assert.include(
          first?.message ?? "",
          "only k3s-vm-pve survives, short of the 2 a quorum needs; its API answers nothing (context deadline exceeded)"
        )
        assert.include(first?.hint ?? "", "`sudo systemctl stop k3s && sudo k3s server --cluster-reset`")

        yield* recoverAndRebuild({ sim, lab })
      }),
    300_000
  )
})

describe("quorumLostOf: who counts, and where the reset runs", () => {
  const names = ["pve", "still-fawn", "chief-horse", "fun-goal", "wise-owl", "calm-bee", "dry-elm"]
  const desired = (n: number): Desired =>
    ({
      ownershipTag: "homelab-managed",
      pendingTag: "homelab-pending",
      nodes: names.slice(0, n).map((node) => ({ name: node, vms: [{ name: `k3s-vm-${node}`, role: "server" }] }))
    }) as unknown as Desired
  const vm = (node: string, vmid: number, over: Partial<ObservedVm> = {}): ObservedVm => ({
    vmid,
    node,
    type: "qemu",
    name: `k3s-vm-${node}`,
    status: "running",
    tags: ["homelab-managed"],
    template: false,
    maxmemBytes: 0,
    uptimeSeconds: 0,
    ...over
  })
  const timedOut = "Error from server: etcdserver: request timed out"

  it("a server VM made again whose make did not finish (still pending) is counted once: 1 of 3 survives", () => {
    const pve = vm("pve", 100)
    const remade = vm("chief-horse", 102, { tags: ["homelab-managed", "homelab-pending", "homelab-rejoin"] })
    const facts = quorumLostOf(
      desired(3),
      [pve, remade],
      [{ name: "k3s-vm-pve", vm: pve, ip: "10.0.0.10", error: timedOut }],
      [],
      ["k3s-vm-chief-horse"]
    )
    assert.strictEqual(facts?._tag, "Unavailable")
    const q = facts?._tag === "Unavailable" ? facts.quorumLost : undefined
    assert.deepStrictEqual(q?.lost, ["k3s-vm-still-fawn", "k3s-vm-chief-horse"])
    assert.isUndefined(q?.remade)
    assert.include(facts?._tag === "Unavailable" ? facts.message : "", "of its 3 k3s servers")
  })

  it("with no survivor, the reset runs on the first down server in homelab.yaml's order that can be brought up by hand (not a locked VM)", () => {
    const locked = vm("pve", 100, { status: "stopped", lock: "backup" })
    const stopped = vm("still-fawn", 101, { status: "stopped" })
    const paused = vm("chief-horse", 102, { status: "paused" })
    const facts = quorumLostOf(
      desired(7),
      [locked, stopped, paused],
      [],
      [
        { name: "k3s-vm-chief-horse", vm: paused, how: "vm" },
        { name: "k3s-vm-still-fawn", vm: stopped, how: "vm" },
        { name: "k3s-vm-pve", vm: locked, how: "vm" }
      ]
    )
    const q = facts?._tag === "Unavailable" ? facts.quorumLost : undefined
    assert.deepStrictEqual(q?.survivor, { vm: "k3s-vm-still-fawn", vmid: 101, node: "still-fawn", down: "stopped" })
    assert.deepStrictEqual(q?.down, ["k3s-vm-chief-horse", "k3s-vm-pve"])
    assert.include(
      facts?._tag === "Unavailable" ? facts.hint : "",
      "start k3s-vm-still-fawn by hand (`qm start 101` on still-fawn"
    )
  })

  it("with no survivor and none to start by hand, a locked one is named (let its lock finish), else a failing one (fix it first)", () => {
    const locked = vm("pve", 100, { status: "stopped", lock: "backup" })
    const failing = vm("still-fawn", 101)
    const both = quorumLostOf(
      desired(5),
      [locked, failing],
      [],
      [
        { name: "k3s-vm-still-fawn", vm: failing, how: "k3s failing", ip: "10.0.0.11", fix: "remove the bad flag" },
        { name: "k3s-vm-pve", vm: locked, how: "vm" }
      ]
    )
    const q = both?._tag === "Unavailable" ? both.quorumLost : undefined
    assert.deepStrictEqual(q?.survivor, { vm: "k3s-vm-pve", vmid: 100, node: "pve", down: "locked", lock: "backup" })
    assert.include(
      both?._tag === "Unavailable" ? both.hint : "",
      "let what locks k3s-vm-pve finish (VM 100 on pve is locked: backup), then start it by hand if it does not run"
    )
    const failingOnly = quorumLostOf(
      desired(5),
      [failing],
      [],
      [{ name: "k3s-vm-still-fawn", vm: failing, how: "k3s failing", ip: "10.0.0.11", fix: "remove the bad flag" }]
    )
    assert.include(
      failingOnly?._tag === "Unavailable" ? failingOnly.hint : "",
      "fix k3s on k3s-vm-still-fawn first: it stops at every start on a cause that stays (remove the bad flag); then recover on k3s-vm-still-fawn (10.0.0.11)"
    )
  })

  it("with no survivor and no down server in a state to start from (its VM starting up), it says nothing (the plan says what is down)", () => {
    const starting = vm("pve", 100, { status: "prelaunch" })
    assert.isUndefined(quorumLostOf(desired(5), [starting], [], [{ name: "k3s-vm-pve", vm: starting, how: "vm" }]))
  })
})
