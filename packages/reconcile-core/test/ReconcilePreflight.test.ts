import { assert, describe, it } from "@effect/vitest"
import { ProxmoxApi } from "@homelab/proxmox-client"
import type { Scenario } from "@homelab/sim"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import {
  clientLayer,
  forkUntilRecord,
  interruptAt,
  labScenario,
  makeLab,
  mutatingRequests,
  operationBegins,
  reconcile,
  simVms,
  startLab,
  taskStatusRead
} from "./lab.js"

/**
 * still-fawn alone, with `vmbr9` besides `vmbr0` when asked, and a small `local-lvm` (24G: room for one 16G disk);
 * PVE's status cache without its lag, so that a VM stopped by hand is seen stopped by the next run.
 */
const scenario = (options: { readonly vmbr9?: boolean } = {}): Scenario => {
  const base = labScenario(["still-fawn"], { timings: { rrdIntervalMs: 0 } })
  return {
    ...base,
    nodes: base.nodes.map((n) => ({
      ...n,
      bridges: [{ name: "vmbr0", active: true }, ...(options.vmbr9 === true ? [{ name: "vmbr9", active: true }] : [])],
      storages: (n.storages ?? []).map((s) => (s.id === "local-lvm" ? { ...s, capacity: "24G" } : s))
    }))
  }
}

/** The VM as the simulator holds it: state, tags and config (what a destroy or an edit would change). */
const vmState = (sim: Parameters<typeof simVms>[0], vmid: number) =>
  JSON.stringify(sim.state().vms.find((v) => v.vmid === vmid))

describe("the preflight before a recreate or a finish (against the simulator)", () => {
  it.live(
    "a stopped VM whose recreate would fail is not destroyed: a missing bridge or a storage too small for the disk blocks the node at plan time; a recreate that needs the memory and disk the old VM frees goes ahead",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(scenario())
        // the VM takes 48 of the node's 64 GiB and 16 of local-lvm's 24G: a second one would fit neither
        const node = "    memoryRatio: 0.75"
        const health = "  graceSeconds: 0"
        const lab = yield* makeLab(sim, { health, nodes: { "still-fawn": node } })
        assert.isTrue((yield* reconcile(lab)).report.convergence.converged)
        const vm = simVms(sim).find((v) => v.name === "k3s-vm-still-fawn")
        const vmid = vm?.vmid as number
        sim.setVmStatus(vmid, { status: "stopped" })
        const before = vmState(sim, vmid)

        // a bridge the node does not have: the recreate's create would fail after the destroy
        const bridge = yield* makeLab(sim, { health, nodes: { "still-fawn": `${node}\n    bridges: [vmbr0, vmbr9]` } })
        sim.clearRequests()
        const missing = yield* reconcile(bridge, { only: ["still-fawn"] })
        assert.deepStrictEqual(missing.plan.actions, [])
        const finding = missing.plan.findings.find((f) => f.code === "bridge.missing")
        assert.deepInclude(finding, {
          effect: "blocked",
          node: "still-fawn",
          vm: "k3s-vm-still-fawn",
          vmid,
          message: "bridge 'vmbr9' does not exist on node still-fawn"
        })
        // the VM's own memory and disk are not counted against the node
        assert.deepStrictEqual(
          missing.plan.findings.map((f) => f.code),
          ["bridge.missing"]
        )
        assert.isFalse(missing.report.convergence.converged)
        assert.deepStrictEqual(mutatingRequests(sim), [])
        assert.strictEqual(vmState(sim, vmid), before)

        // a bigger disk than the storage holds, even once the old disk is gone
        const disk = yield* makeLab(sim, { health, nodes: { "still-fawn": `${node}\n    vms: [{ diskSize: 32G }]` } })
        const full = yield* reconcile(disk, { only: ["still-fawn"] })
        assert.deepStrictEqual(full.plan.actions, [])
        assert.deepStrictEqual(
          full.plan.findings.map((f) => [f.code, f.effect, f.vmid]),
          [["storage.full", "blocked", vmid]]
        )
        assert.match(
          full.plan.findings[0]?.message ?? "",
          /^storage 'local-lvm' on node still-fawn has 24\.0 GiB free, the disk needs 32\.0 GiB$/
        )
        assert.deepStrictEqual(mutatingRequests(sim), [])
        assert.strictEqual(vmState(sim, vmid), before)

        // as homelab.yaml asked before: rebuilt in the memory and the disk its old VM frees, keeping its VMID
        const rebuilt = yield* reconcile(lab, { only: ["still-fawn"] })
        assert.deepStrictEqual(
          rebuilt.result.outcomes.map((o) => [o.action._tag, o.status]),
          [["RecreateVm", "done"]]
        )
        assert.isTrue(rebuilt.report.convergence.converged)
        const after = simVms(sim).find((v) => v.name === "k3s-vm-still-fawn")
        assert.deepStrictEqual([after?.vmid, after?.qmpstatus], [vmid, "running"])
      }),
    90_000
  )

  it.live(
    "a pending VM an earlier run left stopped with a NIC on a bridge that is gone: blocked while homelab.yaml asks for that bridge; once it does not, the NIC is removed and the VM started and finished",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(scenario({ vmbr9: true }))
        const health = "  graceSeconds: 0"
        const two = yield* makeLab(sim, { health, nodes: { "still-fawn": "    bridges: [vmbr0, vmbr9]" } })
        assert.isTrue((yield* reconcile(two)).report.convergence.converged)
        const vmid = simVms(sim).find((v) => v.name === "k3s-vm-still-fawn")?.vmid as number
        // what an earlier run leaves when the VM's start failed: stopped, still marked pending; then vmbr9 goes
        sim.setVmStatus(vmid, { status: "stopped" })
        yield* Effect.gen(function* () {
          const api = yield* ProxmoxApi
          yield* api.updateVmConfig("still-fawn", vmid, { tags: "homelab-managed;homelab-pending" })
        }).pipe(Effect.provide(clientLayer(two)))
        yield* Effect.promise(() => sim.addFaults([{ kind: "bridgeMissing", node: "still-fawn", bridge: "vmbr9" }]))
        const before = vmState(sim, vmid)
        assert.match(before, /"net1":"virtio=[^"]*,bridge=vmbr9"/)

        // homelab.yaml still asks for vmbr9: the VM is not started to fail
        sim.clearRequests()
        const blocked = yield* reconcile(two)
        assert.deepStrictEqual(blocked.plan.actions, [])
        assert.deepStrictEqual(
          blocked.plan.findings.map((f) => [f.code, f.effect, f.vmid, f.message]),
          [["bridge.missing", "blocked", vmid, "bridge 'vmbr9' does not exist on node still-fawn"]]
        )
        assert.deepStrictEqual(mutatingRequests(sim), [])
        assert.strictEqual(vmState(sim, vmid), before)

        // homelab.yaml back to vmbr0 alone: the stale NIC is removed (with the digest), then the VM starts
        const one = yield* makeLab(sim, { health })
        sim.clearRequests()
        const finished = yield* reconcile(one)
        assert.deepStrictEqual(
          finished.result.outcomes.map((o) => [o.action._tag, o.status]),
          [["FinishVm", "done"]]
        )
        assert.isTrue(finished.report.convergence.converged)
        const edit = sim
          .requests()
          .find((r) => r.transport === "api" && r.method === "PUT" && r.path?.endsWith(`/qemu/${vmid}/config`))
        assert.deepInclude(edit?.params, { delete: "net1" })
        assert.isString(edit?.params?.digest)
        const config = sim.state().vms.find((v) => v.vmid === vmid)
        assert.isUndefined((config?.config as Record<string, string> | undefined)?.net1)
        assert.deepStrictEqual([config?.qmpstatus, config?.tags], ["running", "homelab-managed"])
        assert.deepStrictEqual((yield* reconcile(one)).plan.actions, [])
      }),
    90_000
  )

  it.live(
    "a VM whose create an interrupted run started (sized by an older homelab.yaml) is waited for, then brought in line with homelab.yaml (one config update with the digest) before it starts",
    () =>
      Effect.gen(function* () {
        // the create is held once its work is done (taskHold): it still runs when the next run looks, however late
        const sim = yield* startLab(
          labScenario(["still-fawn"], {
            timings: { rrdIntervalMs: 0 },
            faults: [{ kind: "taskHold", taskType: "qmcreate", node: "still-fawn" }]
          })
        )
        const health = "  graceSeconds: 0"
        // the interrupted run's homelab.yaml: a quarter of the node's 8 CPUs and 64 GiB
        const old = yield* makeLab(sim, {
          health,
          nodes: { "still-fawn": "    cpuRatio: 0.25\n    memoryRatio: 0.25" }
        })
        // interrupted the moment its create task starts
        yield* interruptAt(sim, operationBegins("qmcreate"), reconcile(old))
        const vmid = sim.state().vms.find((v) => v.lock === "create")?.vmid as number
        const create = sim.state().tasks.find((t) => t.type === "qmcreate" && t.status === "running")?.upid as string

        // this run's homelab.yaml: the defaults (half the node)
        const lab = yield* makeLab(sim, { health })
        sim.clearRequests()
        // the run follows the create it found running (a create of its own instead is caught here); only then is the
        // create let go
        const { record, run: next } = yield* forkUntilRecord(
          sim,
          (r) =>
            taskStatusRead(create)(r) ||
            (r._tag === "Request" && r.request.method === "POST" && r.request.path === "/nodes/still-fawn/qemu"),
          reconcile(lab)
        )
        assert.isTrue(taskStatusRead(create)(record), "the run follows the running create, makes none of its own")
        yield* Effect.promise(() => sim.clearFaults({ kind: "taskHold" }))
        const run = yield* Fiber.join(next)
        assert.deepStrictEqual(
          run.plan.actions.map((a) => a._tag),
          ["AwaitCreate"]
        )
        assert.deepStrictEqual(
          run.result.outcomes.map((o) => [o.action._tag, o.status]),
          [["AwaitCreate", "done"]]
        )
        assert.isTrue(run.report.convergence.converged)
        const vm = sim.state().vms.find((v) => v.vmid === vmid)
        const config = vm?.config as Record<string, string> | undefined
        assert.deepStrictEqual([config?.cores, config?.memory], ["4", "32768"])
        assert.deepStrictEqual([vm?.qmpstatus, vm?.tags], ["running", "homelab-managed"])
        // one config update, guarded by the digest, before the start
        const edits = sim
          .requests()
          .filter(
            (r) =>
              r.transport === "api" &&
              r.path?.endsWith(`/qemu/${vmid}/config`) &&
              ["PUT", "POST"].includes(r.method ?? "")
          )
        assert.deepInclude(edits[0]?.params, { cores: "4", memory: "32768" })
        assert.isString(edits[0]?.params?.digest)
        const start = sim
          .requests()
          .findIndex((r) => r.transport === "api" && r.path?.endsWith(`/qemu/${vmid}/status/start`))
        assert.isTrue(start > sim.requests().indexOf(edits[0] as never))
        assert.deepStrictEqual((yield* reconcile(lab)).plan.actions, [])
      }),
    90_000
  )
})

describe("vm.cpuType against the node's CPU models (against the simulator)", () => {
  it.live(
    "a model the node does not list blocks the create at plan time, naming the close model, and no create is sent; a model it lists is created with it, after one read of the node's models",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(scenario())
        const typo = yield* makeLab(sim, { vm: "  cpuType: hosst" })
        const refused = yield* reconcile(typo)
        assert.deepStrictEqual(
          refused.plan.actions.map((a) => a._tag),
          ["DownloadImage"]
        )
        const finding = refused.plan.findings.find((f) => f.code === "vm.cpu-model")
        assert.deepInclude(finding, {
          effect: "blocked",
          node: "still-fawn",
          vm: "k3s-vm-still-fawn",
          message:
            "vm.cpuType hosst is not a CPU model of node still-fawn (did you mean host?): PVE would refuse k3s-vm-still-fawn"
        })
        assert.include(finding?.hint ?? "", "pvesh get /nodes/still-fawn/capabilities/qemu/cpu")
        assert.isFalse(refused.report.convergence.converged)
        assert.deepStrictEqual(
          mutatingRequests(sim).filter((r) => r.path === "/nodes/still-fawn/qemu"),
          []
        )
        assert.deepStrictEqual(simVms(sim), [])

        sim.clearRequests()
        const listed = yield* makeLab(sim, { vm: "  cpuType: x86-64-v2-AES" })
        const created = yield* reconcile(listed)
        assert.isTrue(created.report.convergence.converged, JSON.stringify(created.plan.findings))
        const config = sim.state().vms.find((v) => v.name === "k3s-vm-still-fawn")?.config as Record<string, unknown>
        assert.strictEqual(config.cpu, "x86-64-v2-AES")
        assert.strictEqual(sim.requests().filter((r) => r.path === "/nodes/still-fawn/capabilities/qemu/cpu").length, 1)
      })
  )
})
