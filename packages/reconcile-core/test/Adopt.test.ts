import { assert, describe, it } from "@effect/vitest"
import { ProxmoxApi } from "@homelab/proxmox-client"
import type { Scenario } from "@homelab/sim"
import * as Effect from "effect/Effect"
import { vmOf } from "../src/Action.js"
import { adopt, planAdoption } from "../src/Adopt.js"
import { desiredFromConfig, healthPolicyFromConfig } from "../src/desiredFromConfig.js"
import { clientLayer, labScenario, makeLab, mutatingRequests, reconcile, simVms, startLab } from "./lab.js"

/**
 * Three nodes and three VMs nobody tagged as ours, sized as homelab.yaml asks: one on its node (with a tag of its
 * own, and `onboot` unset where homelab.yaml asks for it), one on the wrong node, one protected, one stopped (which
 * the next apply would rebuild: health.stopped is recreate by default).
 */
const scenario = (): Scenario => {
  const vm = (
    vmid: number,
    node: string,
    name: string,
    more: { readonly tags?: string; readonly protection?: boolean; readonly status?: "running" | "stopped" }
  ) => ({
    vmid,
    node,
    name,
    status: "running" as const,
    uptime: 86_400,
    config: {
      cores: 4,
      memory: "32768",
      cpu: "host",
      agent: "1",
      net0: `virtio=BC:24:11:00:03:${String(vmid - 300).padStart(2, "0")},bridge=vmbr0`,
      scsi0: `local-lvm:vm-${vmid}-disk-0,size=16G`
    },
    ...more
  })
  return labScenario(["pve", "still-fawn", "chief-horse", "fun-goal"], {
    ipPool: "127.78.60.10",
    vms: [
      vm(301, "pve", "k3s-vm-pve", { tags: "seed" }),
      vm(302, "chief-horse", "k3s-vm-still-fawn", {}),
      vm(303, "chief-horse", "k3s-vm-chief-horse", { protection: true }),
      vm(304, "fun-goal", "k3s-vm-fun-goal", { status: "stopped" })
    ]
  })
}

describe("adopt: a same-named VM that is not ours becomes ours, in place", () => {
  it.live(
    "--all adopts the VM on its node (its tags kept, drift then applied in place, never recreated); the VM on the wrong node and the protected one are refused; the protected one is adopted when named; a VM changed since it was read is not",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(scenario())
        const lab = yield* makeLab(sim, { vm: "  onboot: true" })
        const desired = desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys })
        const policy = healthPolicyFromConfig(lab.config)
        const onVms = () => mutatingRequests(sim).filter((r) => (r.path ?? "").includes("/qemu/"))
        const inLab = <A, E>(effect: Effect.Effect<A, E, ProxmoxApi>) => effect.pipe(Effect.provide(clientLayer(lab)))

        // Before: plan points at `homelab adopt`, apply touches none of them.
        const before = yield* reconcile(lab)
        const unowned = before.plan.findings.filter((f) => f.code === "vm.unowned")
        assert.deepStrictEqual(
          unowned.map((f) => [f.vm, f.hint?.startsWith("to let homelab manage it: `homelab adopt ")]),
          [
            ["k3s-vm-pve", true],
            ["k3s-vm-chief-horse", true],
            ["k3s-vm-fun-goal", true]
          ]
        )
        // (only the image is downloaded)
        assert.deepStrictEqual(onVms(), [])

        const all = yield* inLab(planAdoption(desired, { all: true, policy }))
        assert.deepStrictEqual(
          all.adoptions.map((a) => [a.name, a.vmid, a.tags, a.protected, a.status]),
          [["k3s-vm-pve", 301, ["seed"], false, "running"]]
        )
        // What apply does once it is ours: the drift in place, nothing else.
        const then = all.adoptions[0]
        assert.deepStrictEqual(
          then?.actions.map((a) => [a._tag, vmOf(a), a._tag === "UpdateVm" ? a.changes.map((c) => c.field) : []]),
          [["UpdateVm", "k3s-vm-pve", ["onboot"]]]
        )
        assert.deepStrictEqual(then?.findings, [])
        assert.deepStrictEqual(
          all.refused.map((r) => [r.code, r.name, r.message]),
          [
            [
              "adopt.wrong-node",
              "k3s-vm-still-fawn",
              "VM 302 k3s-vm-still-fawn is on node chief-horse, but homelab.yaml asks for it on still-fawn: not adopted"
            ],
            ["adopt.protected", "k3s-vm-chief-horse", "VM 303 k3s-vm-chief-horse is protected: not adopted with --all"],
            [
              "adopt.would-recreate",
              "k3s-vm-fun-goal",
              "VM 304 k3s-vm-fun-goal would be rebuilt by the next apply once adopted (VM 304 (k3s-vm-fun-goal) on node fun-goal is stopped; remediation: recreate): not adopted with --all"
            ]
          ]
        )
        assert.include(all.refused[1]?.hint ?? "", "homelab adopt k3s-vm-chief-horse")
        assert.deepStrictEqual(onVms(), [], "planning an adoption changes nothing")

        const named = yield* inLab(
          planAdoption(desired, {
            names: ["k3s-vm-chief-horse", "k3s-vm-still-fawn", "k3s-vm-fun-goal", "nope"],
            policy
          })
        )
        assert.deepStrictEqual(
          named.adoptions.map((a) => [a.name, a.protected, a.actions.map((x) => x._tag)]),
          [
            ["k3s-vm-chief-horse", true, []],
            // named: adopted knowing that apply rebuilds it (apply still asks before it does)
            ["k3s-vm-fun-goal", false, ["RecreateVm"]]
          ]
        )
        // Protected: its drift is reported, never applied.
        assert.deepStrictEqual(named.adoptions[0]?.actions, [])
        assert.deepStrictEqual(
          named.adoptions[0]?.findings.map((f) => f.code),
          ["vm.protected-drift"]
        )
        assert.deepStrictEqual(
          named.refused.map((r) => r.code),
          ["adopt.wrong-node"]
        )
        assert.deepStrictEqual(named.unknown, ["nope"])

        // Someone edits the protected VM after it was read: its adoption is refused, nothing overwritten.
        const outcomes = yield* inLab(
          Effect.gen(function* () {
            const api = yield* ProxmoxApi
            yield* api.updateVmConfig("chief-horse", 303, { description: "mine" })
            return yield* adopt(desired, [...all.adoptions, ...named.adoptions.filter((a) => a.protected)])
          })
        )
        assert.deepStrictEqual(
          outcomes.map((o) => [o.name, o.status]),
          [
            ["k3s-vm-pve", "adopted"],
            ["k3s-vm-chief-horse", "failed"]
          ]
        )
        assert.match(outcomes[1]?.detail ?? "", /changed by someone else since it was read/)
        const tags = Object.fromEntries(simVms(sim).map((v) => [v.vmid, v.tags]))
        assert.deepStrictEqual(tags, { 301: "homelab-managed;seed", 302: "", 303: "", 304: "" })

        // From now on apply manages it: the drift changed in place, the same VM.
        sim.clearRequests()
        const after = yield* reconcile(lab)
        assert.deepStrictEqual(
          after.result.outcomes.map((o) => [o.id, o.status]),
          [["pve:update:k3s-vm-pve", "done"]]
        )
        assert.deepStrictEqual(
          mutatingRequests(sim).map((r) => `${r.method} ${r.path}`),
          ["PUT /nodes/pve/qemu/301/config"]
        )
        const vm = sim.state().vms.find((v) => v.vmid === 301)
        assert.strictEqual((vm?.config as Record<string, string> | undefined)?.onboot, "1")
      }),
    90_000
  )
})
