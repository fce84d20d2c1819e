import { assert, describe, it } from "@effect/vitest"
import { PermissionDenied, ProxmoxApi, ProxmoxError } from "@homelab/proxmox-client"
import type { SimHandle, SimRecord } from "@homelab/sim"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { type Action, describeAction } from "../src/Action.js"
import { apply } from "../src/Apply.js"
import { DefaultVmidRange, desiredFromConfig, healthPolicyFromConfig } from "../src/desiredFromConfig.js"
import { reconcile as reconcileAll } from "../src/Reconcile.js"
import { status } from "../src/Status.js"
import { vmidCandidates } from "../src/VmidCandidates.js"
import {
  clientLayer,
  forkUntilRecord,
  interruptAt,
  labScenario,
  makeLab,
  reconcile,
  simVms,
  startLab,
  taskStatusRead
} from "./lab.js"

const firstVmid = (name: string) => vmidCandidates(name, DefaultVmidRange)[0] as number

/** The simulator's download tasks on a node, oldest first: `[status, exitstatus]`. */
const downloads = (sim: SimHandle, node: string) =>
  sim
    .state()
    .tasks.filter((t) => t.type === "download" && t.node === node)
    .sort((a, b) => Number(a.starttime) - Number(b.starttime) || String(a.upid).localeCompare(String(b.upid)))
    .map((t) => [t.status, t.exitstatus])

/**
 * The client follows a download task (a read of the task's status ends): the request that started it has been
 * answered, so interrupting the run there leaves that one task running and no request in flight.
 */
const downloadFollowed = (record: SimRecord) =>
  record._tag === "Request" &&
  record.request.method === "GET" &&
  /\/tasks\/UPID:[^/]*:download:.*\/status$/.test(record.request.path ?? "")

/** The running downloads on a node are listed (`GET /nodes/{node}/tasks` with `typefilter=download`). */
const downloadsListed = (record: SimRecord) =>
  record._tag === "Request" &&
  record.request.method === "GET" &&
  /^\/nodes\/[^/]+\/tasks$/.test(record.request.path ?? "") &&
  record.request.params?.typefilter === "download"

/** A request that starts a download (`download-url`). */
const downloadStarted = (record: SimRecord) =>
  record._tag === "Request" && record.request.method === "POST" && /\/download-url$/.test(record.request.path ?? "")

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
  it.live(
    "a failed start on a node driven over SSH names the start (not the create) and SSH (not the API)",
    () =>
      Effect.gen(function* () {
        const vmid = firstVmid("k3s-vm-still-fawn")
        const sim = yield* startLab(
          labScenario(["pve", "still-fawn"], {
            faults: [
              { kind: "untrustedCert", node: "still-fawn" },
              {
                kind: "taskFail",
                taskType: "qmstart",
                node: "still-fawn",
                exitstatus: "start failed: QEMU exited with code 1"
              }
            ]
          })
        )
        const lab = yield* makeLab(sim)
        const run = yield* reconcile(lab)
        const failed = run.result.outcomes.find((o) => o.action.node === "still-fawn" && o.action._tag === "CreateVm")
        assert.strictEqual(failed?.status, "failed")
        assert.match(
          failed?.detail ?? "",
          new RegExp(
            `^cannot start VM ${vmid} on node still-fawn: SSH root@127\\.0\\.0\\.1:\\d+: task UPID:still-fawn:[^ ]*:qmstart:${vmid}:[^ ]* failed: start failed: QEMU exited with code 1$`
          )
        )
        assert.notInclude(failed?.detail ?? "", "API https://")
        // the create itself worked: the VM exists, stopped
        assert.strictEqual(simVms(sim).find((v) => v.vmid === vmid)?.status, "stopped")
        assert.strictEqual(
          run.result.outcomes.find((o) => o.action.node === "pve" && o.action._tag === "CreateVm")?.status,
          "done"
        )
      }),
    60_000
  )
})

describe("apply: a download of the image that is already running or hangs", () => {
  it.live(
    "a download still running at timeouts.task is stopped and reported as such, not left running",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(
          labScenario(["pve"], { faults: [{ kind: "taskHang", taskType: "download", node: "pve" }] })
        )
        const lab = yield* makeLab(sim)
        const run = yield* reconcile(lab, { timeouts: { task: Duration.seconds(2) } })
        const download = run.result.outcomes.find((o) => o.action._tag === "DownloadImage")
        assert.strictEqual(download?.status, "failed")
        assert.match(
          download?.detail ?? "",
          /^the download of noble-server-cloudimg-amd64-[0-9a-f]{12}\.\S+ to local on pve did not finish within 2s; stopped it$/
        )
        assert.include(download?.hint ?? "", "timeouts.task")
        assert.deepStrictEqual(downloads(sim, "pve"), [["stopped", "interrupted by signal"]])
      }),
    60_000
  )

  it.live(
    "a download an interrupted run left running is waited for, never started a second time beside it",
    () =>
      Effect.gen(function* () {
        // the download is held once its transfer is done (taskHold): it still runs when the next run looks, however late
        const sim = yield* startLab(
          labScenario(["pve"], { faults: [{ kind: "taskHold", taskType: "download", node: "pve" }] })
        )
        const lab = yield* makeLab(sim)
        const left = yield* interruptAt(sim, downloadFollowed, reconcile(lab))
        const upid =
          left._tag === "Request" ? (/\/tasks\/(UPID:[^/]+)\/status$/.exec(left.request.path ?? "")?.[1] ?? "") : ""
        assert.deepStrictEqual(downloads(sim, "pve"), [["running", undefined]])
        // The next run lists the downloads running on the node and follows the one it finds; only then is that one let
        // go. A second download started instead is caught here. (A read of the task's status before that listing is
        // the interrupted run's: proxmox-api sends its interrupted GET again once, when its connection is closed.)
        let listed = false
        const before = sim.requests().length
        const { record, run: next } = yield* forkUntilRecord(
          sim,
          (r) => {
            if (downloadsListed(r)) listed = true
            return downloadStarted(r) || (listed && taskStatusRead(upid)(r))
          },
          reconcile(lab)
        )
        assert.isTrue(taskStatusRead(upid)(record), "the next run follows the running download, starts none")
        yield* Effect.promise(() => sim.clearFaults({ kind: "taskHold" }))
        const run = yield* Fiber.join(next)
        const download = run.result.outcomes.find((o) => o.action._tag === "DownloadImage")
        assert.strictEqual(download?.status, "done")
        assert.include(download?.detail ?? "", "downloaded by an earlier or concurrent run")
        assert.deepStrictEqual(downloads(sim, "pve"), [["stopped", "OK"]], "one download, not two")
        assert.isTrue(run.report.convergence.converged)
        // the plan says so, from the observation: the downloads running on pve are listed once, not again by apply
        assert.match(
          describeAction(download?.action as Action),
          /^wait for the download of noble-server-cloudimg-amd64-[0-9a-f]{12}\.\S+ to local on pve that an earlier or concurrent run started$/
        )
        const listings = sim
          .requests()
          .slice(before)
          .filter((r) => r.method === "GET" && r.path === "/nodes/pve/tasks" && r.params?.typefilter === "download")
        assert.strictEqual(listings.length, 1)
      }),
    60_000
  )

  it.live(
    "a plan applied long after its observation lists the running downloads again: one started meanwhile is waited for",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(
          labScenario(["pve"], { faults: [{ kind: "taskHold", taskType: "download", node: "pve" }] })
        )
        const lab = yield* makeLab(sim)
        const desired = desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys })
        const planned = yield* reconcileAll(desired, { policy: healthPolicyFromConfig(lab.config), apply: false }).pipe(
          Effect.provide(clientLayer(lab))
        )
        const action = planned.plan.actions.find((a) => a._tag === "DownloadImage")
        assert.strictEqual(action?._tag === "DownloadImage" ? action.listed : undefined, true)
        assert.match(describeAction(action as Action), /^download /)
        // meanwhile another run starts the same download (and is interrupted while it runs)
        const left = yield* interruptAt(sim, downloadFollowed, reconcile(lab))
        const upid =
          left._tag === "Request" ? (/\/tasks\/(UPID:[^/]+)\/status$/.exec(left.request.path ?? "")?.[1] ?? "") : ""
        // the plan is applied a minute after its observation (a prompt answered late): apply lists the downloads again
        // and follows the one it finds instead of starting a second one
        const { record, run } = yield* forkUntilRecord(
          sim,
          (r) => downloadStarted(r) || taskStatusRead(upid)(r),
          Effect.gen(function* () {
            const now = Date.now() / 1000
            return yield* apply(planned.plan.actions, desired, {
              observedAt: now - 60,
              timeouts: { task: Duration.seconds(60) }
            })
          }).pipe(Effect.provide(clientLayer(lab)))
        )
        assert.isTrue(taskStatusRead(upid)(record), "apply follows the running download, starts none")
        yield* Effect.promise(() => sim.clearFaults({ kind: "taskHold" }))
        const outcomes = yield* Fiber.join(run)
        const download = outcomes.find((o) => o.action._tag === "DownloadImage")
        assert.strictEqual(download?.status, "done", download?.detail)
        assert.include(download?.detail ?? "", "downloaded by an earlier or concurrent run")
        assert.deepStrictEqual(downloads(sim, "pve"), [["stopped", "OK"]], "one download, not two")
      }),
    60_000
  )

  it.live(
    "a download an interrupted run left hung is stopped once it has run timeouts.task before a new one starts",
    () =>
      Effect.gen(function* () {
        // every download on pve hangs: the one the interrupted run left, and the one the next run starts
        const sim = yield* startLab(
          labScenario(["pve"], { faults: [{ kind: "taskHang", taskType: "download", node: "pve" }] })
        )
        const lab = yield* makeLab(sim)
        yield* interruptAt(sim, downloadFollowed, reconcile(lab))
        const run = yield* reconcile(lab, { timeouts: { task: Duration.seconds(2) } })
        const steps = run.events.flatMap((e) => (e._tag === "ActionProgress" && e.wait === undefined ? [e.step] : []))
        const stopping = steps.findIndex((s) =>
          /^the earlier download of \S+ to local on pve hung; stopping its task$/.test(s)
        )
        assert.isAtLeast(stopping, 0, steps.join("\n"))
        assert.isAbove(
          steps.findIndex((s) => s.startsWith("downloading ")),
          stopping,
          "the new download starts after"
        )
        const download = run.result.outcomes.find((o) => o.action._tag === "DownloadImage")
        assert.strictEqual(download?.status, "failed")
        assert.include(download?.detail ?? "", "did not finish within 2s; stopped it")
        // one after the other, each stopped: never two at once, none left running
        assert.deepStrictEqual(downloads(sim, "pve"), [
          ["stopped", "interrupted by signal"],
          ["stopped", "interrupted by signal"]
        ])
        const [earlier, later] = sim.operations().filter((o) => o.operation === "download")
        assert.isAtMost(earlier?.endedAt ?? Number.POSITIVE_INFINITY, later?.startedAt ?? 0)
      }),
    60_000
  )
})
