import { assert, describe, it } from "@effect/vitest"
import { ProxmoxApi } from "@homelab/proxmox-client"
import * as Effect from "effect/Effect"
import { planVerdict } from "../src/Convergence.js"
import { desiredFromConfig, healthPolicyFromConfig } from "../src/desiredFromConfig.js"
import { reconcile as reconcileAll } from "../src/Reconcile.js"
import { status } from "../src/Status.js"
import { atRecord, clientLayer, labScenario, makeLab, operationBegins, reconcile, simVms, startLab } from "./lab.js"

describe("status", () => {
  it.live(
    "a protected VM is marked as such (PVE's protection flag or safety.protect), and only that one",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(labScenario(["pve", "still-fawn", "chief-horse"]))
        const lab = yield* makeLab(sim, { safety: "  protect: [k3s-vm-still-fawn]" })
        assert.isTrue((yield* reconcile(lab)).report.convergence.converged)
        const flagged = simVms(sim).find((v) => v.name === "k3s-vm-pve")?.vmid as number
        yield* Effect.gen(function* () {
          const api = yield* ProxmoxApi
          yield* api.updateVmConfig("pve", flagged, { protection: 1 })
        }).pipe(Effect.provide(clientLayer(lab)), Effect.orDie)
        const desired = desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys })
        const report = yield* status(desired, { policy: healthPolicyFromConfig(lab.config) }).pipe(
          Effect.provide(clientLayer(lab))
        )
        assert.isTrue(report.convergence.converged)
        assert.deepStrictEqual(
          report.rows.map((r) => [r.vm, r.health, r.protected]),
          [
            ["k3s-vm-pve", "healthy", ["pve"]],
            ["k3s-vm-still-fawn", "healthy", ["safety.protect"]],
            ["k3s-vm-chief-horse", "healthy", undefined]
          ]
        )
      }),
    120_000
  )
  it.live(
    "a VM restarted from PVE whose guest agent stays silent: status and plan reach the same verdict (converged: it runs), the row says the agent is silent",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(labScenario(["pve"]))
        for (const health of [undefined, "  graceSeconds: 0"]) {
          const lab = yield* makeLab(sim, health === undefined ? {} : { health })
          const first = yield* reconcile(lab)
          assert.isTrue(first.report.convergence.converged, JSON.stringify(first.report.convergence))
          const vm = simVms(sim).find((v) => v.name === "k3s-vm-pve")
          const vmid = vm?.vmid as number
          yield* Effect.promise(() => sim.addFaults([{ kind: "agentNeverStarts", vmid }]))
          yield* Effect.gen(function* () {
            const api = yield* ProxmoxApi
            yield* api.rebootVm("pve", vmid)
          }).pipe(Effect.provide(clientLayer(lab)), Effect.orDie)

          const desired = desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys })
          const policy = healthPolicyFromConfig(lab.config)
          const planned = yield* reconcileAll(desired, { policy, apply: false }).pipe(Effect.provide(clientLayer(lab)))
          const report = yield* status(desired, { policy }).pipe(Effect.provide(clientLayer(lab)))
          const label = `graceSeconds ${health === undefined ? "default" : 0}`
          assert.strictEqual(planVerdict(planned.planned), "converged", label)
          assert.isTrue(report.convergence.converged, `${label}: ${JSON.stringify(report.convergence)}`)
          assert.deepStrictEqual(
            report.rows.map((r) => [r.vm, r.state, r.health]),
            [["k3s-vm-pve", "running", "healthy (guest agent silent)"]],
            label
          )
          assert.include(report.rows[0]?.detail ?? "", "its guest agent does not answer", label)
          yield* Effect.promise(() => sim.clearFaults({ kind: "agentNeverStarts" }))
        }
      }),
    120_000
  )
  it.live(
    "with health.agentMissing: recreate, a running VM of ours whose guest agent stays silent is not converged (status and plan agree) and apply rebuilds it; with the default (keep) it is left running",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(labScenario(["pve"]))
        const keep = yield* makeLab(sim, { health: "  graceSeconds: 0" })
        assert.isTrue((yield* reconcile(keep)).report.convergence.converged)
        const before = simVms(sim).find((v) => v.name === "k3s-vm-pve")
        const vmid = before?.vmid as number
        yield* Effect.promise(() => sim.addFaults([{ kind: "agentNeverStarts", vmid }]))
        yield* Effect.gen(function* () {
          const api = yield* ProxmoxApi
          yield* api.rebootVm("pve", vmid)
        }).pipe(Effect.provide(clientLayer(keep)), Effect.orDie)

        // keep: judged by PVE's state alone
        const kept = yield* reconcile(keep)
        assert.deepStrictEqual(kept.plan.actions, [])
        assert.isTrue(kept.report.convergence.converged)

        // recreate: the agent is asked; status and plan both say the VM needs rebuilding
        const lab = yield* makeLab(sim, { health: "  graceSeconds: 0\n  agentMissing: recreate" })
        const desired = desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys })
        const policy = healthPolicyFromConfig(lab.config)
        const planned = yield* reconcileAll(desired, { policy, apply: false }).pipe(Effect.provide(clientLayer(lab)))
        assert.deepStrictEqual(
          planned.plan.actions.map((a) => a._tag),
          ["RecreateVm"]
        )
        assert.include(planned.plan.actions[0]?.reason ?? "", "guest agent does not answer")
        assert.strictEqual(planVerdict(planned.planned), "changes")
        const report = yield* status(desired, { policy }).pipe(Effect.provide(clientLayer(lab)))
        assert.isFalse(report.convergence.converged)
        assert.deepStrictEqual(
          report.rows.map((r) => [r.vm, r.health]),
          [["k3s-vm-pve", "unhealthy: agent-not-responding"]]
        )

        // apply rebuilds it (the fault goes with the old VM: cleared as it is destroyed, the VMID may be reused)
        const run = yield* Effect.scoped(
          Effect.gen(function* () {
            yield* atRecord(sim, operationBegins("qmdestroy"), () => {
              void sim.clearFaults({ kind: "agentNeverStarts" })
            })
            return yield* reconcile(lab)
          })
        )
        assert.deepStrictEqual(
          run.result.outcomes.map((o) => [o.action._tag, o.status]),
          [["RecreateVm", "done"]]
        )
        assert.isTrue(run.report.convergence.converged, JSON.stringify(run.report.convergence))
        assert.deepStrictEqual((yield* reconcile(lab)).plan.actions, [])
      }),
    120_000
  )
})
