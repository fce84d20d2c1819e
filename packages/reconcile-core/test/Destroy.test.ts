import { assert, describe, it } from "@effect/vitest"
import { K3sJoin, memberIdHex, memberWithoutNode } from "@homelab/k3s-join"
import { ProxmoxApi } from "@homelab/proxmox-client"
import type { SimHandle } from "@homelab/sim"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { type Action, describeAction } from "../src/Action.js"
import type { ApplyEvent } from "../src/Apply.js"
import { apply } from "../src/Apply.js"
import { applyVerdict } from "../src/Convergence.js"
import { destroy } from "../src/Destroy.js"
import { desiredFromConfig } from "../src/desiredFromConfig.js"
import type { DestroyOptions } from "../src/PlanDestroy.js"
import {
  atRecord,
  clientLayer,
  type Lab,
  labSsh,
  mutatingRequests,
  reconcile,
  simVms,
  startLab,
  untilResourcesShow
} from "./lab.js"
import {
  ImageFile,
  k3sState,
  memberVm,
  teardownLab,
  teardownNet,
  teardownScenario,
  teardownSteps
} from "./teardownFixture.js"

/** `homelab destroy` (`--yes` unless `confirm` says otherwise) with a fresh client. */
const runDestroy = (
  lab: Lab,
  options: DestroyOptions & {
    readonly confirm?: boolean
    readonly onEvent?: ((e: ApplyEvent) => Effect.Effect<void>) | undefined
  } = {}
) =>
  Effect.gen(function* () {
    const events: Array<ApplyEvent> = []
    const report = yield* destroy(desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys }), {
      ...options,
      apply: true,
      confirm: () => Effect.succeed(options.confirm ?? true),
      onEvent: (e) =>
        e._tag !== "Planned" && e._tag !== "Finished"
          ? Effect.andThen(
              Effect.sync(() => events.push(e)),
              options.onEvent?.(e) ?? Effect.void
            )
          : Effect.void,
      timeouts: { ip: Duration.seconds(20), task: Duration.seconds(60) }
    }).pipe(Effect.provide(clientLayer(lab)))
    return { report, events }
  })

/**
 * `homelab destroy --only NODE`, interrupted (Ctrl-C) as soon as it reports the step that begins with `step` (held
 * there until then: it goes no further).
 */
const destroyInterruptedAt = (lab: Lab, node: string, step: string) =>
  Effect.gen(function* () {
    const reached = yield* Deferred.make<void>()
    const run = yield* Effect.forkChild(
      runDestroy(lab, {
        only: [node],
        onEvent: (e) =>
          e._tag === "ActionProgress" && e.step.startsWith(step)
            ? Deferred.succeed(reached, undefined).pipe(Effect.andThen(Effect.never))
            : Effect.void
      })
    )
    yield* Deferred.await(reached)
    yield* Fiber.interrupt(run)
  })

/** `homelab destroy --only NODE`, interrupted (Ctrl-C) as soon as it reports draining the Node: after the cordon. */
const destroyInterruptedWhileDraining = (lab: Lab, node: string) => destroyInterruptedAt(lab, node, "draining k3s Node")

const images = (sim: SimHandle) =>
  sim
    .state()
    .nodes.flatMap((n) =>
      ((n.storages as Array<{ id: string; volumes?: Array<{ volid: string }> }> | undefined) ?? []).flatMap((s) =>
        (s.volumes ?? []).map((v) => `${n.name}:${v.volid}`)
      )
    )
    .filter((v) => v.includes(ImageFile))
    .sort()

describe("homelab destroy against the simulator", () => {
  it.live(
    "asks first (declined: nothing touched); then every VM of ours goes, its k3s Node drained and removed (with its password secret) before the VM is stopped and destroyed; protected VMs and strangers untouched and listed; --images removes only the image homelab.yaml names",
    () =>
      Effect.gen(function* () {
        const net = teardownNet()
        const sim = yield* startLab(
          teardownScenario(
            net,
            ["pve", "still-fawn"],
            [
              memberVm(1101, "pve", "k3s-vm-pve", `${net}.11`),
              memberVm(1102, "still-fawn", "k3s-vm-still-fawn", `${net}.12`),
              memberVm(1103, "still-fawn", "k3s-vm-keep", `${net}.13`, { protection: true }),
              { vmid: 300, node: "still-fawn", name: "nas", status: "running", tags: "storage", uptime: 86_400 }
            ]
          )
        )
        const lab = yield* teardownLab(sim, net, { nodes: ["pve", "still-fawn"] })
        const before = k3sState(sim)
        assert.deepStrictEqual(images(sim), [`pve:local:import/${ImageFile}`, `still-fawn:local:import/${ImageFile}`])

        // declined (not confirmed): nothing is touched
        sim.clearRequests()
        const declined = yield* runDestroy(lab, { images: true, confirm: false })
        assert.deepStrictEqual(
          declined.report.outcomes.map((o) => o.status),
          ["unconfirmed", "unconfirmed", "unconfirmed", "unconfirmed"]
        )
        assert.strictEqual(applyVerdict(declined.report.convergence), "unconfirmed")
        assert.deepStrictEqual(
          mutatingRequests(sim).filter((r) => !r.path?.endsWith("/agent/ping")),
          []
        )
        assert.deepStrictEqual(k3sState(sim), before)

        const { report } = yield* runDestroy(lab, { images: true })
        assert.deepStrictEqual(
          report.plan.actions.map((a) => [a.id, a._tag]),
          [
            ["pve:destroy:1101", "DestroyVm"],
            ["still-fawn:destroy:1102", "DestroyVm"],
            ["pve:image:delete", "DeleteImage"],
            ["still-fawn:image:delete", "DeleteImage"]
          ]
        )
        // listed, never touched: the k3s server and the NAS (not ours), the protected VM of ours
        assert.deepStrictEqual(
          report.plan.findings.map((f) => [f.code, f.effect, f.vmid]),
          [
            ["vm.not-ours", "info", 200],
            ["vm.not-ours", "info", 300],
            ["vm.protected", "info", 1103]
          ]
        )
        assert.deepStrictEqual(
          report.outcomes.map((o) => o.status),
          ["done", "done", "done", "done"],
          JSON.stringify(report.outcomes.map((o) => o.detail))
        )
        assert.isTrue(report.convergence.converged)
        assert.deepStrictEqual(
          simVms(sim)
            .map((v) => v.vmid)
            .sort(),
          [1103, 200, 300]
        )
        assert.deepStrictEqual(images(sim), [])
        const after = k3sState(sim)
        assert.deepStrictEqual(after.nodes, ["k3s-server", "k3s-vm-keep"])
        assert.notInclude(after.secrets, "k3s-vm-pve.node-password.k3s")
        assert.notInclude(after.secrets, "k3s-vm-still-fawn.node-password.k3s")
        assert.include(after.secrets, "k3s-vm-keep.node-password.k3s")
        for (const [vmid, name] of [
          [1101, "k3s-vm-pve"],
          [1102, "k3s-vm-still-fawn"]
        ] as const) {
          assert.deepStrictEqual(
            teardownSteps(sim, vmid, name).map((s) => s.step),
            ["cordon", "drain", "stop", "delete-node", "delete-secret", "destroy"]
          )
        }
        const untouched = sim
          .requests()
          .filter((r) => r.transport === "api" && r.method !== "GET" && [200, 300, 1103].some((id) => r.vmid === id))
        assert.deepStrictEqual(untouched, [])

        // a second destroy has nothing left to do
        const again = yield* runDestroy(lab, { images: true })
        assert.deepStrictEqual(again.report.plan.actions, [])
        assert.isTrue(again.report.convergence.converged)
      }),
    120_000
  )

  it.live(
    "--only one node: a k3s server of ours goes when the other members keep quorum (guarded again just before), its etcd member removed with its Node; the other node is untouched",
    () =>
      Effect.gen(function* () {
        const net = teardownNet()
        const sim = yield* startLab(
          teardownScenario(
            net,
            ["pve", "still-fawn"],
            [
              memberVm(1101, "pve", "k3s-vm-pve", `${net}.11`, { role: "server" }),
              memberVm(1102, "still-fawn", "k3s-vm-still-fawn", `${net}.12`, { role: "server" })
            ]
          )
        )
        const lab = yield* teardownLab(sim, net, { nodes: ["pve", "still-fawn"] })
        assert.strictEqual(sim.state().k3s.etcdMembers.length, 3)
        const { report, events } = yield* runDestroy(lab, { only: ["still-fawn"] })
        assert.deepStrictEqual(
          report.plan.actions.map((a) => [a.id, a._tag === "DestroyVm" ? a.k3sNode?.role : undefined, a.exclusive]),
          [["still-fawn:destroy:1102", "server", "k3s-server"]]
        )
        assert.deepStrictEqual(
          report.outcomes.map((o) => o.status),
          ["done"],
          JSON.stringify(report.outcomes.map((o) => o.detail))
        )
        assert.isTrue(
          events.some((e) => e._tag === "ActionProgress" && e.step.startsWith("checking etcd's quorum")),
          "the guard ran again just before the server went down"
        )
        assert.deepStrictEqual(
          simVms(sim)
            .map((v) => v.vmid)
            .sort(),
          [1101, 200]
        )
        assert.deepStrictEqual(k3sState(sim).nodes, ["k3s-server", "k3s-vm-pve"])
        assert.deepStrictEqual(
          sim
            .state()
            .k3s.etcdMembers.map((m) => m.name.replace(/-[0-9a-f]{8}$/, ""))
            .sort(),
          ["k3s-server", "k3s-vm-pve"]
        )
        assert.include(
          sim.k3sEvents().map((e) => `${e.kind} ${e.node.replace(/-[0-9a-f]{8}$/, "")}`),
          "etcd-member-removed k3s-vm-still-fawn"
        )
      }),
    120_000
  )

  it.live(
    "a k3s server of ours is not taken out when the other etcd members could not keep quorum: the plan refuses, nothing is touched",
    () =>
      Effect.gen(function* () {
        const net = teardownNet()
        const sim = yield* startLab(
          teardownScenario(net, ["pve"], [memberVm(1101, "pve", "k3s-vm-pve", `${net}.11`, { role: "server" })])
        )
        const lab = yield* teardownLab(sim, net, { nodes: ["pve"] })
        const before = k3sState(sim)
        assert.include(before.nodes, "k3s-vm-pve")
        sim.clearRequests()
        const { report } = yield* runDestroy(lab)
        assert.deepStrictEqual(report.plan.actions, [])
        assert.deepStrictEqual(
          report.plan.findings.filter((f) => f.effect !== "info").map((f) => [f.code, f.effect, f.vmid]),
          [["k3s.quorum", "blocked", 1101]]
        )
        assert.match(report.plan.findings.find((f) => f.code === "k3s.quorum")?.message ?? "", /quorum needs 2/)
        assert.isFalse(report.convergence.converged)
        assert.deepStrictEqual(
          simVms(sim).map((v) => [v.vmid, v.status]),
          [
            [200, "running"],
            [1101, "running"]
          ]
        )
        assert.deepStrictEqual(k3sState(sim), before)
        assert.deepStrictEqual(
          mutatingRequests(sim).filter((r) => !r.path?.endsWith("/agent/ping")),
          []
        )
      }),
    120_000
  )

  it.live(
    "several k3s servers, not the whole cluster: when the ones after the first would lose etcd's quorum, the plan refuses the teardown and nothing is destroyed (not half of it)",
    () =>
      Effect.gen(function* () {
        const net = teardownNet()
        const sim = yield* startLab(
          teardownScenario(
            net,
            ["pve", "still-fawn"],
            [
              memberVm(1101, "pve", "k3s-vm-pve", `${net}.11`, { role: "server" }),
              memberVm(1102, "still-fawn", "k3s-vm-still-fawn", `${net}.12`, { role: "server" }),
              memberVm(1103, "still-fawn", "k3s-vm-agent", `${net}.13`)
            ]
          )
        )
        const lab = yield* teardownLab(sim, net, { nodes: ["pve", "still-fawn"] })
        assert.strictEqual(sim.state().k3s.etcdMembers.length, 3)
        const before = k3sState(sim)
        sim.clearRequests()
        // 3 members (the k3s server's, pve's, still-fawn's): one may go (2 of 3 keep quorum), the second not (its
        // removal would leave 1 of 2)
        const { report } = yield* runDestroy(lab)
        assert.deepStrictEqual(report.plan.actions, [])
        const refused = report.plan.findings.find((f) => f.code === "k3s.quorum")
        assert.strictEqual(refused?.vm, "k3s-vm-still-fawn")
        assert.match(
          refused?.message ?? "",
          /^not destroying k3s server k3s-vm-still-fawn: destroy of k3s-vm-still-fawn would leave 1 of 2 etcd members healthy, quorum needs 2 .*\(this run: after k3s-vm-pve is destroyed first\)/
        )
        assert.deepStrictEqual(
          report.plan.findings.filter((f) => f.effect !== "info").map((f) => [f.code, f.effect, f.vmid]),
          [
            ["vm.destroy-held", "blocked", 1101],
            ["k3s.quorum", "blocked", 1102],
            ["vm.destroy-held", "blocked", 1103]
          ]
        )
        assert.match(
          report.plan.findings.find((f) => f.vmid === 1101)?.message ?? "",
          /^not destroying VM 1101 k3s-vm-pve: .*k3s-vm-still-fawn.*nothing is destroyed/
        )
        assert.isFalse(report.convergence.converged)
        assert.deepStrictEqual(
          simVms(sim)
            .map((v) => [v.vmid, v.status])
            .sort(),
          [
            [1101, "running"],
            [1102, "running"],
            [1103, "running"],
            [200, "running"]
          ]
        )
        assert.deepStrictEqual(k3sState(sim), before)
        assert.strictEqual(sim.state().k3s.etcdMembers.length, 3)
        assert.deepStrictEqual(
          mutatingRequests(sim).filter((r) => !r.path?.endsWith("/agent/ping")),
          []
        )
      }),
    120_000
  )

  it.live(
    "several k3s servers whose removal keeps quorum go one after another, each once its etcd member is gone; the rest of the cluster keeps answering",
    () =>
      Effect.gen(function* () {
        const net = teardownNet()
        const sim = yield* startLab(
          teardownScenario(
            net,
            ["pve", "still-fawn"],
            [
              memberVm(1101, "pve", "k3s-vm-a", `${net}.11`, { role: "server" }),
              memberVm(1102, "pve", "k3s-vm-b", `${net}.12`, { role: "server" }),
              memberVm(1103, "still-fawn", "k3s-vm-c", `${net}.13`, { role: "server" }),
              memberVm(1104, "still-fawn", "k3s-vm-d", `${net}.14`, { role: "server" })
            ]
          )
        )
        const lab = yield* teardownLab(sim, net, { nodes: ["pve", "still-fawn"] })
        assert.strictEqual(sim.state().k3s.etcdMembers.length, 5)
        const { report } = yield* runDestroy(lab, { only: ["still-fawn"] })
        assert.deepStrictEqual(
          report.plan.actions.map((a) => [a.id, a.after]),
          [
            ["still-fawn:destroy:1103", []],
            ["still-fawn:destroy:1104", ["still-fawn:destroy:1103"]]
          ]
        )
        assert.deepStrictEqual(
          report.outcomes.map((o) => [o.id, o.status]),
          [
            ["still-fawn:destroy:1103", "done"],
            ["still-fawn:destroy:1104", "done"]
          ],
          JSON.stringify(report.outcomes.map((o) => o.detail))
        )
        assert.isTrue(report.convergence.converged)
        // the second server went only once the first one's member was gone
        const removed = sim
          .k3sEvents()
          .findIndex((e) => e.kind === "etcd-member-removed" && e.node.startsWith("k3s-vm-c-"))
        const cordoned = sim.k3sEvents().findIndex((e) => e.kind === "node-cordoned" && e.node === "k3s-vm-d")
        assert.isTrue(removed > -1 && cordoned > removed, "k3s-vm-d was taken out after k3s-vm-c's member was removed")
        assert.deepStrictEqual(
          sim
            .state()
            .k3s.etcdMembers.map((m) => m.name.replace(/-[0-9a-f]{8}$/, ""))
            .sort(),
          ["k3s-server", "k3s-vm-a", "k3s-vm-b"]
        )
        assert.deepStrictEqual(
          sim.k3sEvents().filter((e) => e.kind === "etcd-quorum-lost"),
          [],
          "etcd never lost its quorum"
        )
      }),
    120_000
  )

  it.live(
    "a destroy stopped after the cordon (interrupted while draining) leaves the VM marked 'homelab-destroy': apply, for which homelab.yaml still asks for the VM, uncordons its Node and clears the mark; a Node cordoned by hand before a destroy is never marked",
    () =>
      Effect.gen(function* () {
        const net = teardownNet()
        const sim = yield* startLab(
          teardownScenario(
            net,
            ["pve", "still-fawn"],
            [
              memberVm(1101, "pve", "k3s-vm-pve", `${net}.11`),
              memberVm(1102, "still-fawn", "k3s-vm-still-fawn", `${net}.12`)
            ]
          )
        )
        const lab = yield* teardownLab(sim, net, { nodes: ["pve", "still-fawn"] })
        const node = (name: string) => sim.state().k3s.nodes.find((n) => n.name === name)
        const tags = (vmid: number) => String(simVms(sim).find((v) => v.vmid === vmid)?.tags ?? "")

        // 1. `destroy --only pve`, interrupted once its Node is cordoned (the drain has begun)
        yield* destroyInterruptedWhileDraining(lab, "pve")
        assert.deepStrictEqual(
          simVms(sim)
            .filter((v) => v.vmid === 1101)
            .map((v) => v.status),
          ["running"]
        )
        assert.include(tags(1101), "homelab-destroy")
        assert.isTrue(node("k3s-vm-pve")?.unschedulable)

        // 2. apply: homelab.yaml still asks for k3s-vm-pve, so the teardown's cordon is undone
        const applied = yield* reconcile(lab)
        const uncordon = applied.plan.actions.find((a) => a._tag === "UncordonK3s")
        assert.deepStrictEqual(
          applied.plan.actions.map((a) => [a.id, a._tag]),
          [["pve:uncordon:k3s-vm-pve", "UncordonK3s"]]
        )
        assert.match(uncordon?.reason ?? "", /an earlier teardown of k3s-vm-pve stopped before destroying it/)
        assert.strictEqual(
          describeAction(uncordon as Action),
          "undo the stopped teardown of VM 1101 k3s-vm-pve: uncordon its k3s Node once it is Ready"
        )
        assert.deepStrictEqual(
          applied.result.outcomes.map((o) => [o.id, o.status]),
          [["pve:uncordon:k3s-vm-pve", "done"]],
          JSON.stringify(applied.result.outcomes)
        )
        assert.isTrue(applied.report.convergence.converged)
        assert.isFalse(node("k3s-vm-pve")?.unschedulable)
        assert.notInclude(tags(1101), "homelab-destroy")
        assert.deepStrictEqual((yield* reconcile(lab)).plan.actions, [])

        // 3. a Node cordoned by hand, then a destroy stopped the same way: the cordon is not ours, never marked
        yield* Effect.gen(function* () {
          const k3s = yield* K3sJoin
          yield* k3s.cordon({ host: `${net}.5`, port: 2222, user: "ubuntu" }, "k3s-vm-still-fawn")
        }).pipe(Effect.provide(clientLayer(lab)))
        yield* destroyInterruptedWhileDraining(lab, "still-fawn")
        assert.notInclude(tags(1102), "homelab-destroy")
        const later = yield* reconcile(lab)
        assert.deepStrictEqual(later.plan.actions, [])
        assert.deepStrictEqual(
          later.plan.findings
            .filter((f) => f.effect !== "info" || f.code === "k3s.cordoned")
            .map((f) => [f.code, f.vm]),
          [["k3s.cordoned", "k3s-vm-still-fawn"]]
        )
        assert.isTrue(node("k3s-vm-still-fawn")?.unschedulable)
      }),
    120_000
  )

  it.live(
    "a destroy stopped once it had stopped the VM (its disk intact, 'homelab-destroy' on it): apply, for which homelab.yaml still asks for the VM, starts it and undoes the teardown (Node uncordoned, marks cleared), never recreates it",
    () =>
      Effect.gen(function* () {
        const net = teardownNet()
        const sim = yield* startLab(teardownScenario(net, ["pve"], [memberVm(1101, "pve", "k3s-vm-pve", `${net}.11`)]))
        const lab = yield* teardownLab(sim, net, { nodes: ["pve"] })
        const node = () => sim.state().k3s.nodes.find((n) => n.name === "k3s-vm-pve")
        const vm = () => simVms(sim).find((v) => v.vmid === 1101)
        const disk = () =>
          String(
            ((sim.state().vms.find((v) => v.vmid === 1101)?.config ?? {}) as Record<string, string | number>).scsi0 ??
              ""
          )
        const diskBefore = disk()

        // `destroy --only pve`, interrupted once it stopped the VM, before its Node is removed
        yield* destroyInterruptedAt(lab, "pve", "removing k3s Node")
        assert.strictEqual(vm()?.status, "stopped")
        assert.include(vm()?.tags ?? "", "homelab-destroy")
        assert.isTrue(node()?.unschedulable, "cordoned by the teardown")
        yield* untilResourcesShow(lab, 1101, "stopped")

        // homelab.yaml still asks for k3s-vm-pve: started with its disk, the teardown undone
        sim.clearRequests()
        const applied = yield* reconcile(lab)
        assert.deepStrictEqual(
          applied.plan.actions.map((a) => [a.id, a._tag]),
          [
            ["pve:vm:k3s-vm-pve", "StartVm"],
            ["pve:k3s:k3s-vm-pve", "JoinK3s"],
            ["pve:uncordon:k3s-vm-pve", "UncordonK3s"]
          ],
          JSON.stringify(applied.plan.actions.map((a) => a.reason))
        )
        assert.include(applied.plan.actions[0]?.reason ?? "", "homelab-destroy")
        assert.deepStrictEqual(
          applied.result.outcomes.map((o) => [o.id, o.status]),
          [
            ["pve:vm:k3s-vm-pve", "done"],
            ["pve:k3s:k3s-vm-pve", "done"],
            ["pve:uncordon:k3s-vm-pve", "done"]
          ],
          JSON.stringify(applied.result.outcomes.map((o) => [o.detail, o.hint]))
        )
        assert.isTrue(applied.report.convergence.converged, JSON.stringify(applied.report.convergence))
        assert.strictEqual(vm()?.status, "running")
        assert.strictEqual(disk(), diskBefore, "the same disk")
        assert.deepStrictEqual(
          mutatingRequests(sim).filter((r) => r.method === "DELETE" || /\/status\/stop$/.test(r.path ?? "")),
          [],
          "nothing destroyed or stopped"
        )
        assert.notInclude(vm()?.tags ?? "", "homelab-destroy")
        assert.isFalse(node()?.unschedulable)
        assert.strictEqual(node()?.ready, "True")
        assert.deepStrictEqual((yield* reconcile(lab)).plan.actions, [])
      }),
    120_000
  )
})

describe("apply after a destroy of a k3s server VM stopped once its Node and etcd member were removed (VM stopped, 'homelab-destroy' on it)", () => {
  /**
   * Two server VMs of ours beside the existing k3s server (3 etcd members) on k3s `version`; `destroy --only pve`,
   * interrupted once it removed k3s-vm-pve's Node and etcd member (the VM stopped before: no tombstone on its disk),
   * before it destroys the VM. homelab.yaml still asks for k3s-vm-pve.
   */
  const removedLab = (version: string) =>
    Effect.gen(function* () {
      const net = teardownNet()
      const scenario = teardownScenario(
        net,
        ["pve", "still-fawn"],
        [
          memberVm(1101, "pve", "k3s-vm-pve", `${net}.11`, { role: "server" }),
          memberVm(1102, "still-fawn", "k3s-vm-still-fawn", `${net}.12`, { role: "server" })
        ]
      )
      const sim = yield* startLab({ ...scenario, k3s: { ...scenario.k3s, version } })
      const lab = yield* teardownLab(sim, net, {
        nodes: ["pve", "still-fawn"],
        nodeVms: { pve: "    vms: [{ role: server }]", "still-fawn": "    vms: [{ role: server }]" }
      })
      yield* destroyInterruptedAt(lab, "pve", "destroying VM")
      const vm = () => simVms(sim).find((v) => v.vmid === 1101)
      assert.strictEqual(vm()?.status, "stopped")
      assert.include(vm()?.tags ?? "", "homelab-destroy")
      assert.notInclude(k3sState(sim).nodes, "k3s-vm-pve")
      assert.isFalse(
        sim.state().k3s.etcdMembers.some((m) => m.name.startsWith("k3s-vm-pve-")),
        "its etcd member is gone"
      )
      yield* untilResourcesShow(lab, 1101, "stopped")
      sim.clearRequests()
      return { sim, lab, vm }
    })

  it.live(
    "k3s from the January 2026 -k3s3 releases: started with its disk, joined (k3s restarted on its tombstone, a new member), the mark cleared: converged",
    () =>
      Effect.gen(function* () {
        const { sim, lab, vm } = yield* removedLab("v1.34.3+k3s3")
        const applied = yield* reconcile(lab)
        assert.deepStrictEqual(applied.plan.findings, [])
        assert.deepStrictEqual(
          applied.plan.actions.map((a) => [a.id, a._tag]),
          [
            ["pve:vm:k3s-vm-pve", "StartVm"],
            ["pve:k3s:k3s-vm-pve", "JoinK3s"],
            ["pve:uncordon:k3s-vm-pve", "UncordonK3s"]
          ]
        )
        assert.include(applied.plan.actions[1]?.reason ?? "", "apply restarts k3s on k3s-vm-pve, which joins again")
        assert.deepStrictEqual(
          applied.result.outcomes.map((o) => [o.id, o.status]),
          [
            ["pve:vm:k3s-vm-pve", "done"],
            ["pve:k3s:k3s-vm-pve", "done"],
            ["pve:uncordon:k3s-vm-pve", "done"]
          ],
          JSON.stringify(applied.result.outcomes.map((o) => [o.detail, o.hint]))
        )
        assert.isTrue(applied.report.convergence.converged, JSON.stringify(applied.report.convergence))
        // k3s started on the removed member's data, wrote the tombstone; the join's restart moved it aside
        const kinds = sim
          .k3sEvents()
          .filter((e) => e.node === "k3s-vm-pve")
          .map((e) => e.kind)
        assert.includeMembers(kinds, ["etcd-tombstone-written", "etcd-data-moved-aside"])
        assert.isBelow(kinds.indexOf("etcd-tombstone-written"), kinds.indexOf("etcd-data-moved-aside"))
        assert.strictEqual(vm()?.status, "running")
        assert.notInclude(vm()?.tags ?? "", "homelab-destroy")
        assert.strictEqual(sim.state().k3s.nodes.find((n) => n.name === "k3s-vm-pve")?.ready, "True")
        assert.strictEqual(sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("k3s-vm-pve-")).length, 1)
        assert.deepStrictEqual((yield* reconcile(lab)).plan.actions, [])
      }),
    120_000
  )

  it.live(
    "k3s from those releases, the VM started again by hand (k3s wrote the tombstone and waits): the plan reads its journal line, apply restarts k3s and it joins as a new member",
    () =>
      Effect.gen(function* () {
        const { sim, lab, vm } = yield* removedLab("v1.35.0+k3s3")
        // started through PVE: k3s starts on the removed member's data, etcd hears from its peers that it was removed
        const tombstone = yield* Deferred.make<void>()
        yield* atRecord(
          sim,
          (r) => r._tag === "K3sEvent" && r.event.kind === "etcd-tombstone-written" && r.event.node === "k3s-vm-pve",
          () => Deferred.doneUnsafe(tombstone, Exit.void)
        )
        yield* Effect.gen(function* () {
          const api = yield* ProxmoxApi
          yield* api.startVm("pve", 1101)
        }).pipe(Effect.provide(clientLayer(lab)))
        yield* Deferred.await(tombstone)
        yield* untilResourcesShow(lab, 1101, "running")
        const applied = yield* reconcile(lab)
        assert.deepStrictEqual(applied.plan.findings, [])
        assert.deepStrictEqual(
          applied.plan.actions.map((a) => [a.id, a._tag]),
          [
            ["pve:k3s:k3s-vm-pve", "JoinK3s"],
            ["pve:uncordon:k3s-vm-pve", "UncordonK3s"]
          ]
        )
        assert.include(applied.plan.actions[0]?.reason ?? "", "k3s there wrote the tombstone")
        assert.deepStrictEqual(
          applied.result.outcomes.map((o) => [o.id, o.status]),
          [
            ["pve:k3s:k3s-vm-pve", "done"],
            ["pve:uncordon:k3s-vm-pve", "done"]
          ],
          JSON.stringify(applied.result.outcomes.map((o) => [o.detail, o.hint]))
        )
        assert.isTrue(applied.report.convergence.converged, JSON.stringify(applied.report.convergence))
        assert.include(
          sim
            .k3sEvents()
            .filter((e) => e.node === "k3s-vm-pve")
            .map((e) => e.kind),
          "etcd-data-moved-aside"
        )
        assert.notInclude(vm()?.tags ?? "", "homelab-destroy")
        assert.strictEqual(sim.state().k3s.nodes.find((n) => n.name === "k3s-vm-pve")?.ready, "True")
        assert.deepStrictEqual((yield* reconcile(lab)).plan.actions, [])
      }),
    120_000
  )

  it.live(
    "an older k3s: started with its disk, no join (blocked: k3s.member-removed with the ways out for that version); the mark stays",
    () =>
      Effect.gen(function* () {
        const { lab, vm } = yield* removedLab("v1.30.5+k3s1")
        const applied = yield* reconcile(lab)
        assert.deepStrictEqual(
          applied.plan.actions.map((a) => [a.id, a._tag]),
          [["pve:vm:k3s-vm-pve", "StartVm"]]
        )
        assert.deepStrictEqual(
          applied.plan.findings.map((f) => [f.code, f.effect, f.vm]),
          [["k3s.member-removed", "blocked", "k3s-vm-pve"]]
        )
        const finding = applied.plan.findings[0]
        assert.include(finding?.message ?? "", "k3s v1.30.5+k3s1 cannot start again")
        assert.include(finding?.hint ?? "", "homelab reprovision k3s-vm-pve")
        assert.include(finding?.hint ?? "", "sudo rm -rf /var/lib/rancher/k3s/server/db")
        assert.include(finding?.hint ?? "", "v1.35.0+k3s3")
        assert.isFalse(applied.report.convergence.converged)
        assert.include(vm()?.tags ?? "", "homelab-destroy")
      }),
    120_000
  )
})

describe("homelab destroy of a k3s server VM whose Node was force-deleted, its etcd member left (k3s.md §5.2)", () => {
  /**
   * Two server VMs of ours beside the existing k3s server (3 etcd members), all running; `forceDelete` deletes
   * still-fawn's Node with its finalizers removed (the member's removal hangs, someone forces the Node out): its member
   * stays, with no Node to remove it through. k3s keeps running on the VM.
   */
  const forceDeletedLab = Effect.gen(function* () {
    const net = teardownNet()
    const scenario = teardownScenario(
      net,
      ["pve", "still-fawn"],
      [
        memberVm(1101, "pve", "k3s-vm-pve", `${net}.11`, { role: "server" }),
        memberVm(1102, "still-fawn", "k3s-vm-still-fawn", `${net}.12`, { role: "server" })
      ]
    )
    const sim = yield* startLab({ ...scenario, k3s: { ...scenario.k3s, memberRemoveDelayMs: 600_000 } })
    const lab = yield* teardownLab(sim, net, { nodes: ["pve", "still-fawn"] })
    const ssh = yield* labSsh(lab)
    const kubectl = (args: string) =>
      ssh.exec({ host: `${net}.5`, port: 2222, user: "ubuntu" }, `sudo -n /usr/local/bin/k3s kubectl ${args}`)
    const forceDelete = Effect.gen(function* () {
      yield* kubectl("delete node k3s-vm-still-fawn --wait=false")
      const patched = yield* kubectl(`patch node k3s-vm-still-fawn --type=merge -p '{"metadata":{"finalizers":null}}'`)
      assert.strictEqual(patched.exitCode, 0, patched.stderr)
      assert.notInclude(k3sState(sim).nodes, "k3s-vm-still-fawn")
    })
    const stale = () => sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("k3s-vm-still-fawn-"))
    const vm = () => simVms(sim).find((v) => v.vmid === 1102)
    return { sim, lab, forceDelete, stale, vm }
  })

  it.live(
    "its Node gone before the plan: the plan blocks its teardown in removeServer's words with the etcdctl fix; nothing is cordoned, stopped, marked or destroyed",
    () =>
      Effect.gen(function* () {
        const { sim, lab, forceDelete, stale, vm } = yield* forceDeletedLab
        yield* forceDelete
        assert.strictEqual(stale().length, 1)
        const before = vm()
        sim.clearRequests()
        const { report } = yield* runDestroy(lab, { only: ["still-fawn"] })
        assert.deepStrictEqual(report.plan.actions, [])
        const finding = report.plan.findings.find((f) => f.code === "k3s.stale-member")
        assert.deepStrictEqual([finding?.effect, finding?.vm, finding?.vmid], ["blocked", "k3s-vm-still-fawn", 1102])
        assert.strictEqual(
          finding?.message,
          `not destroying k3s server k3s-vm-still-fawn: ${memberWithoutNode(
            "k3s-vm-still-fawn",
            stale().map((m) => ({ ...m, clientURL: undefined }))
          )}; nothing is cordoned, stopped or destroyed`
        )
        assert.include(finding?.hint ?? "", "VM 1102 k3s-vm-still-fawn stays as it is until that member is gone")
        assert.include(finding?.hint ?? "", `member remove ${memberIdHex(stale()[0]?.id ?? "")}`)
        assert.isFalse(report.convergence.converged)
        // the VM as it was (running, its tags), its member still there, nothing changed on PVE
        assert.deepStrictEqual(vm(), before)
        assert.strictEqual(stale().length, 1)
        assert.deepStrictEqual(
          mutatingRequests(sim).filter((r) => !r.path?.endsWith("/agent/ping")),
          []
        )
      }),
    120_000
  )

  it.live(
    "its Node force-deleted after the plan (the teardown planned with the Node there): apply refuses before it marks, cordons or stops anything, in the same words",
    () =>
      Effect.gen(function* () {
        const { sim, lab, forceDelete, stale, vm } = yield* forceDeletedLab
        const desired = desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys })
        const planned = yield* destroy(desired, { only: ["still-fawn"], apply: false }).pipe(
          Effect.provide(clientLayer(lab))
        )
        assert.deepStrictEqual(
          planned.plan.actions.map((a) => [a.id, a._tag === "DestroyVm" ? a.k3sNode?.role : undefined]),
          [["still-fawn:destroy:1102", "server"]]
        )
        // between the plan and its apply (a prompt answered late), someone forces the Node out
        yield* forceDelete
        const before = vm()
        sim.clearRequests()
        const outcomes = yield* apply(planned.plan.actions, desired, { timeouts: { task: Duration.seconds(60) } }).pipe(
          Effect.provide(clientLayer(lab))
        )
        assert.deepStrictEqual(
          outcomes.map((o) => o.status),
          ["failed"]
        )
        assert.strictEqual(
          outcomes[0]?.detail,
          `not destroying k3s server k3s-vm-still-fawn: ${memberWithoutNode(
            "k3s-vm-still-fawn",
            stale().map((m) => ({ ...m, clientURL: undefined }))
          )}; nothing was cordoned or stopped`
        )
        assert.include(outcomes[0]?.hint ?? "", `member remove ${memberIdHex(stale()[0]?.id ?? "")}`)
        // the VM as it was: running, not marked 'homelab-destroy', not stopped; no cordon, nothing changed on PVE
        assert.deepStrictEqual(vm(), before)
        assert.deepStrictEqual(
          teardownSteps(sim, 1102, "k3s-vm-still-fawn").map((s) => s.step),
          []
        )
        assert.deepStrictEqual(
          mutatingRequests(sim).filter((r) => !r.path?.endsWith("/agent/ping")),
          []
        )
      }),
    120_000
  )
})

describe("homelab destroy while the etcd members cannot be read (k3s before v1.30.1 answers /db/info only with credentials)", () => {
  it.live(
    "a server VM whose Node was force-deleted is held (nothing marked, cordoned or stopped), saying why the members could not be read; an agent VM without a Node is destroyed as before",
    () =>
      Effect.gen(function* () {
        const net = teardownNet()
        const scenario = teardownScenario(
          net,
          ["pve", "still-fawn"],
          [
            memberVm(1101, "pve", "k3s-vm-pve", `${net}.11`, { role: "server" }),
            memberVm(1102, "still-fawn", "k3s-vm-still-fawn", `${net}.12`, { role: "server" }),
            // an agent VM that never joined (no k3s on it): no Node
            {
              ...memberVm(1103, "still-fawn", "k3s-vm-still-fawn-2", `${net}.13`),
              guest: { hostname: "k3s-vm-still-fawn-2", user: "ubuntu" }
            }
          ]
        )
        // v1.29.4 serves /db/info to no one without credentials (anonymous from localhost since v1.29.5)
        const sim = yield* startLab({
          ...scenario,
          k3s: { ...scenario.k3s, version: "v1.29.4+k3s1", memberRemoveDelayMs: 600_000 }
        })
        const lab = yield* teardownLab(sim, net, {
          nodes: ["pve", "still-fawn"],
          nodeVms: {
            pve: "    vms: [{ role: server }]",
            "still-fawn": "    vms: [{ role: server }, { name: k3s-vm-still-fawn-2, role: agent }]"
          }
        })
        const ssh = yield* labSsh(lab)
        const kubectl = (args: string) =>
          ssh.exec({ host: `${net}.5`, port: 2222, user: "ubuntu" }, `sudo -n /usr/local/bin/k3s kubectl ${args}`)
        yield* kubectl("delete node k3s-vm-still-fawn --wait=false")
        const patched = yield* kubectl(
          `patch node k3s-vm-still-fawn --type=merge -p '{"metadata":{"finalizers":null}}'`
        )
        assert.strictEqual(patched.exitCode, 0, patched.stderr)
        assert.notInclude(k3sState(sim).nodes, "k3s-vm-still-fawn")
        assert.notInclude(k3sState(sim).nodes, "k3s-vm-still-fawn-2")
        const stale = () => sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("k3s-vm-still-fawn-"))
        assert.strictEqual(stale().length, 1)
        const before = simVms(sim).find((v) => v.vmid === 1102)
        sim.clearRequests()

        const { report } = yield* runDestroy(lab, { only: ["still-fawn"] })
        assert.deepStrictEqual(
          report.plan.actions.map((a) => a.id),
          ["still-fawn:destroy:1103"],
          JSON.stringify(report.plan.findings)
        )
        const held = report.plan.findings.find((f) => f.vmid === 1102)
        assert.deepStrictEqual([held?.code, held?.effect], ["k3s.members-unknown", "blocked"])
        assert.match(
          held?.message ?? "",
          /^not destroying k3s server k3s-vm-still-fawn: it has no k3s Node, and the etcd members could not be read \(.*401.*\), so whether etcd still lists a member of k3s-vm-still-fawn that no Node owns cannot be checked .*; nothing is cordoned, stopped or destroyed$/
        )
        assert.include(held?.hint ?? "", "`curl -sk https://127.0.0.1:6443/db/info`")
        assert.deepStrictEqual(
          report.outcomes.map((o) => [o.id, o.status]),
          [["still-fawn:destroy:1103", "done"]]
        )
        // the server VM as it was (running, its tags), its member still there; the agent VM gone
        assert.deepStrictEqual(
          simVms(sim).find((v) => v.vmid === 1102),
          before
        )
        assert.strictEqual(stale().length, 1)
        assert.isUndefined(simVms(sim).find((v) => v.vmid === 1103))
        assert.deepStrictEqual(
          teardownSteps(sim, 1102, "k3s-vm-still-fawn").map((s) => s.step),
          []
        )
      }),
    120_000
  )
})
