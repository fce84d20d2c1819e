/**
 * The user homelab logs in as on a guest: the `ciuser` of the cloud-init drive it booted from. Pure rules, then a
 * `vm.user` changed on a running k3s lab against the simulator: never a login the guest does not have yet.
 */
import { assert, describe, it } from "@effect/vitest"
import { reserveLoopbackNet, type SimHandle } from "@homelab/sim"
import * as Effect from "effect/Effect"
import { planVerdict } from "../src/Convergence.js"
import { parseConfig } from "../src/config/parseConfig.js"
import { desiredFromConfig, healthPolicyFromConfig } from "../src/desiredFromConfig.js"
import { guestUserOf } from "../src/GuestUser.js"
import { reconcile as reconcileAll } from "../src/Reconcile.js"
import { clientLayer, type Lab, labScenario, makeLab, reconcile, startLab } from "./lab.js"

describe("guestUserOf", () => {
  it("the config's ciuser when PVE holds nothing for the drive; the drive's while a ciuser change waits for a start", () => {
    assert.strictEqual(guestUserOf("alice", undefined, "ubuntu"), "alice")
    assert.strictEqual(guestUserOf("alice", [], "ubuntu"), "alice")
    assert.strictEqual(
      guestUserOf("alice", [{ key: "ciuser", drive: "ubuntu", config: "alice" }], "alice"),
      "ubuntu",
      "the guest still has the user of the drive it booted from"
    )
    assert.strictEqual(
      guestUserOf("alice", [{ key: "sshkeys", drive: "a", config: "b" }], "bob"),
      "alice",
      "another cloud-init change waiting does not matter"
    )
    // no ciuser at all, or one first set since the drive was made: homelab.yaml's
    assert.strictEqual(guestUserOf(undefined, undefined, "ubuntu"), "ubuntu")
    assert.strictEqual(guestUserOf("alice", [{ key: "ciuser", drive: undefined, config: "alice" }], "ubuntu"), "ubuntu")
  })
})

const net = reserveLoopbackNet().net
const servers = ["pve", "still-fawn", "chief-horse"]
const names = servers.map((n) => `k3s-vm-${n}`)

const relab = (lab: Lab, edit: (yaml: string) => string) =>
  Effect.gen(function* () {
    const yaml = edit(lab.yaml)
    const config = yield* parseConfig(yaml, { env: {}, source: "homelab.yaml" }).pipe(Effect.orDie)
    return { ...lab, yaml, config } satisfies Lab
  })

const planOnly = (lab: Lab) =>
  reconcileAll(desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys }), {
    policy: healthPolicyFromConfig(lab.config),
    apply: false
  }).pipe(Effect.provide(clientLayer(lab)))

const guestUsers = (sim: SimHandle) =>
  names.map(
    (name) =>
      (sim.state().vms.find((v) => v.name === name) as { guest?: { user?: string } } | undefined)?.guest?.user ?? "none"
  )

describe("vm.user changed on a running k3s lab (its servers read over SSH)", () => {
  it.live(
    "the cluster stays readable as the old user until each VM restarted: plan shows the cloud-init change (changes, not blocked); a rolling restart drains and brings each back, then the new user is used; the lab converges",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(
          labScenario(servers, {
            ipPool: `${net}.10`,
            guestSshPort: 2222,
            k3s: { version: "v1.30.5+k3s1", joinDelayMs: 2000, readyDelayMs: 3000, learnerPromotionDelayMs: 3000 }
          })
        )
        const lab = yield* makeLab(sim, {
          vm: [
            "  sshPort: 2222",
            "k3s:",
            "  version: v1.30.5+k3s1",
            "  serverFlags: [--write-kubeconfig-mode=644]"
          ].join("\n"),
          nodes: Object.fromEntries(servers.map((n) => [n, "    vms: [{ role: server }]"]))
        })
        const first = yield* reconcile(lab)
        assert.isTrue(first.report.convergence.converged, JSON.stringify(first.report.convergence))
        assert.deepStrictEqual(guestUsers(sim), ["ubuntu", "ubuntu", "ubuntu"])

        // 1. plan: the change is shown; the cluster is read as the user the guests have (no "membership unknown").
        const alice = yield* relab(lab, (yaml) => yaml.replace("vm:\n", "vm:\n  user: alice\n"))
        const planned = yield* planOnly(alice)
        assert.deepStrictEqual(
          planned.plan.findings.filter((f) => f.effect !== "info").map((f) => `${f.code}: ${f.message}`),
          []
        )
        assert.strictEqual(planVerdict(planned.planned), "changes")
        assert.deepStrictEqual(
          planned.plan.actions.map((a) => (a._tag === "UpdateVm" ? a.changes.map((c) => c.field) : a._tag)),
          names.map(() => ["cloud-init user"])
        )

        // 2. vm.restart: never: the config changes, the guests keep ubuntu, and every run still reads the cluster.
        const never = yield* reconcile(alice)
        assert.deepStrictEqual(
          never.result.outcomes.map((o) => o.status),
          ["done", "done", "done"]
        )
        assert.deepStrictEqual(guestUsers(sim), ["ubuntu", "ubuntu", "ubuntu"])
        const waiting = yield* planOnly(alice)
        assert.deepStrictEqual(
          waiting.plan.findings.map((f) => f.code),
          names.map(() => "vm.pending-restart")
        )

        // 3. vm.restart: rolling: each VM drained, restarted, Ready again (checked as alice), uncordoned.
        const rolling = yield* relab(alice, (yaml) => yaml.replace("vm:\n", "vm:\n  restart: rolling\n"))
        const since = sim.k3sEvents().length
        const rolled = yield* reconcile(rolling)
        assert.deepStrictEqual(
          rolled.result.outcomes.filter((o) => o.status !== "done").map((o) => `${o.id}: ${o.detail}`),
          []
        )
        assert.deepStrictEqual(
          rolled.result.outcomes.map((o) => o.id),
          servers.map((n, i) => `${n}:restart:${names[i]}`)
        )
        assert.deepStrictEqual(
          sim
            .k3sEvents()
            .slice(since)
            .filter((e) => e.kind === "drain-start")
            .map((e) => e.node),
          names
        )
        assert.deepStrictEqual(guestUsers(sim), ["alice", "alice", "alice"])
        assert.isTrue(rolled.report.convergence.converged, JSON.stringify(rolled.report.convergence))
        const after = yield* planOnly(rolling)
        assert.deepStrictEqual(
          after.plan.findings.filter((f) => f.effect !== "info").map((f) => `${f.code}: ${f.message}`),
          []
        )
        assert.isTrue(after.planned.converged)
      }),
    180_000
  )
})
