import { assert, describe, it } from "@effect/vitest"
import { PermissionDenied, ProxmoxApi, ProxmoxError } from "@homelab/proxmox-client"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { DefaultVmidRange, desiredFromConfig, healthPolicyFromConfig } from "../src/desiredFromConfig.js"
import { reconcile as reconcileAll } from "../src/Reconcile.js"
import { status } from "../src/Status.js"
import { vmidCandidates } from "../src/VmidCandidates.js"
import { clientLayer, labScenario, makeLab, reconcile, simVms, startLab } from "./lab.js"

const firstVmid = (name: string) => vmidCandidates(name, DefaultVmidRange)[0] as number

describe("apply: what a failed step says", () => {
  it.live(
    "a VM that is not running when the IP wait ends is named with its state; only a running one gets the guest-agent hint; status does not call the failed run interrupted",
    () =>
      Effect.gen(function* () {
        const paused = firstVmid("k3s-vm-pve")
        const stopped = firstVmid("k3s-vm-still-fawn")
        const silent = firstVmid("k3s-vm-chief-horse")
        const sim = yield* startLab(
          labScenario(["pve", "still-fawn", "chief-horse"], {
            faults: [
              { kind: "vmStuck", vmid: paused, state: "paused" },
              { kind: "vmStuck", vmid: stopped, state: "stopped" },
              { kind: "agentNeverStarts", vmid: silent }
            ]
          })
        )
        const lab = yield* makeLab(sim)
        const run = yield* reconcile(lab, { timeouts: { ip: Duration.seconds(2) } })
        const outcome = (node: string) =>
          run.result.outcomes.find((o) => o.action.node === node && o.action._tag === "CreateVm")
        assert.deepStrictEqual(
          ["pve", "still-fawn", "chief-horse"].map((n) => outcome(n)?.status),
          ["failed", "failed", "failed"]
        )
        const p = outcome("pve")
        assert.strictEqual(p?.detail, `VM ${paused} k3s-vm-pve is paused, not running (no IP within 2s)`)
        assert.notInclude(p?.hint ?? "", "qemu-guest-agent")
        assert.include(p?.hint ?? "", `qm status ${paused} --verbose`)
        const s = outcome("still-fawn")
        assert.strictEqual(s?.detail, `VM ${stopped} k3s-vm-still-fawn is stopped, not running (no IP within 2s)`)
        assert.notInclude(s?.hint ?? "", "qemu-guest-agent")
        const c = outcome("chief-horse")
        assert.strictEqual(c?.detail, `VM ${silent} k3s-vm-chief-horse reported no IP within 2s`)
        assert.include(c?.hint ?? "", "qemu-guest-agent")
        assert.strictEqual(simVms(sim).find((v) => v.vmid === paused)?.qmpstatus, "paused")

        // status after the failed run: the VM still carries the pending tag, and the reason says so without
        // claiming an interruption
        const desired = desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys })
        const report = yield* status(desired, { policy: healthPolicyFromConfig(lab.config) }).pipe(
          Effect.provide(clientLayer(lab))
        )
        const finish = report.plan.actions.find((a) => a._tag === "FinishVm" && a.node === "pve")
        assert.isDefined(finish)
        assert.notInclude(finish?.reason ?? "", "an earlier run was interrupted")
        assert.include(finish?.reason ?? "", "its provisioning is unfinished (an earlier run failed or was interrupted")
      }),
    60_000
  )

  it.live(
    "an error while waiting for the IP is reported as what it is, not as a silent guest agent",
    () =>
      Effect.gen(function* () {
        const vmid = firstVmid("k3s-vm-pve")
        const sim = yield* startLab(labScenario(["pve"]))
        const lab = yield* makeLab(sim)
        const desired = desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys })
        // the real client against the simulator, except that reading the VM's IP is refused
        const refusing = Layer.effect(
          ProxmoxApi,
          Effect.map(ProxmoxApi, (api) =>
            ProxmoxApi.of({
              ...api,
              waitForIpv4: (node) =>
                Effect.fail(
                  new ProxmoxError({
                    operation: "waitForIpv4",
                    node,
                    reason: new PermissionDenied({
                      path: `/vms/${vmid}`,
                      privilege: "VM.GuestAgent.Audit",
                      detail: `Permission check failed (/vms/${vmid}, VM.GuestAgent.Audit)`
                    })
                  })
                )
            })
          )
        ).pipe(Layer.provideMerge(clientLayer(lab)))
        const report = yield* reconcileAll(desired, {
          policy: healthPolicyFromConfig(lab.config),
          apply: true,
          timeouts: { ip: Duration.seconds(20), task: Duration.seconds(60) }
        }).pipe(Effect.provide(refusing))
        const create = report.outcomes.find((o) => o.action._tag === "CreateVm")
        assert.strictEqual(create?.status, "failed")
        assert.notInclude(create?.detail ?? "", "reported no IP")
        assert.include(create?.detail ?? "", "permission denied: VM.GuestAgent.Audit on /vms/")
        assert.notInclude(create?.hint ?? "", "qemu-guest-agent")
      }),
    60_000
  )
})
