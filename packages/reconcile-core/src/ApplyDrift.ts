import { K3sJoin, type K3sJoinEvent, type K3sJoinShape, type K3sServer } from "@homelab/k3s-join"
import {
  type ProxmoxApiShape,
  type ProxmoxError,
  type PveParam,
  parseUpid,
  taskPollSchedule,
  type WaitOptions
} from "@homelab/proxmox-client"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type { K3sVia, RestartVm, UncordonK3s, UpdateVm } from "./Action.js"
import type { Desired } from "./Desired.js"
import { CloudInitTag, DestroyTag, RestartTag, tagList, UpgradeTag } from "./Marks.js"
import { checkQuorumNow } from "./QuorumGuard.js"
import { stopHungTask } from "./stopHungTask.js"
import { drainTimeout, type Timeouts } from "./Timeouts.js"
import { describeChange, driveSizeBytes, driveStorage, type FieldChange, formatSize, needsRestart } from "./VmDrift.js"

/** A wait in progress (as `Apply` reports it). */
interface Wait {
  readonly what: string
  readonly elapsedMs: number
  readonly limitMs: number
}

/** What the drift executors need from the run that executes them (`apply`). */
export interface DriftContext<E> {
  readonly api: ProxmoxApiShape
  readonly k3sJoin: Option.Option<K3sJoinShape>
  readonly desired: Desired
  readonly timeouts: Timeouts
  readonly progressInterval: Duration.Duration
  readonly progress: (step: string, wait?: Wait) => Effect.Effect<void>
  readonly task: (what: string) => WaitOptions
  /** `andThen`: what else a failure leaves behind, for its hint. */
  readonly waitForIp: (vmid: number, name: string, andThen?: string) => Effect.Effect<string, E | ProxmoxError>
  readonly fail: (message: string, hint?: string) => Effect.Effect<never, E>
  readonly k3sProgress: (event: K3sJoinEvent) => void
  /** The k3s server a step goes through (`via` a server VM of ours, else the configured `k3s.server`). */
  readonly serverOf: (via: K3sVia | undefined) => Effect.Effect<K3sServer & { readonly apiPort: number }, E>
  /** The user to log in as on a VM's guest now (`GuestUser.ts`). */
  readonly guestUser: (vm: string, vmid?: number) => Effect.Effect<string>
  /** The IP this run learned for a VM (a start, a join), if any. */
  readonly learnedIp?: ((vm: string) => string | undefined) | undefined
  /** Set or clear a mark on a VM (a fresh read of its tags first). */
  readonly mark: (vmid: number, tag: string, on: boolean) => Effect.Effect<void, ProxmoxError>
}

/** What an executor reports: `pending` lists what waits for a restart afterwards (with `vm.restart: never`). */
export interface DriftResult {
  readonly detail: string
  readonly ip?: string | undefined
  readonly pending?: ReadonlyArray<string> | undefined
}

/** Settings of a `FieldChange` that PVE keeps pending on a running VM, by config key. */
const pendingKey = (change: FieldChange): string | undefined =>
  /^(cores|sockets|memory|cpu|balloon|net\d+)$/.test(change.field) ? change.field : undefined

/** The NICs PVE could not plug into the running VM (`net1: hotplug problem - …` of a 400), with PVE's reason. */
const hotplugFailures = (errors: Readonly<Record<string, string>>) =>
  Object.entries(errors).flatMap(([key, text]) =>
    /^net\d+$/.test(key) && /hotplug problem/.test(text) ? [{ key, text: text.trim() }] : []
  )

/**
 * PVE's `update_vm_api` applies what it can, keeps a NIC it failed to plug pending, and answers 400: the NIC would
 * then stop the VM from starting again (its bridge is what failed, as a rule). The plan refuses a missing or inactive
 * bridge, so this is a bridge that went away since, or one PVE cannot use.
 */
const nicNotPlugged = (
  a: UpdateVm,
  failed: ReadonlyArray<{ readonly key: string; readonly text: string }>
): [message: string, hint: string] => {
  const keys = failed.map((f) => f.key).join(",")
  const bridges = [...new Set(failed.flatMap((f) => /(?:^|,)bridge=([^,]+)/.exec(a.edit.set[f.key] ?? "")?.[1] ?? []))]
  const on = bridges.length === 0 ? "" : ` (bridge ${bridges.map((b) => `'${b}'`).join(", ")})`
  return [
    `PVE could not plug ${keys} into running VM ${a.vmid} ${a.name} on node ${a.node}${on}: ${failed.map((f) => `${f.key}: ${f.text}`).join("; ")}. ` +
      `PVE applied the rest of the update and keeps ${keys} pending: the VM would not start again with it`,
    `check that ${bridges.length === 0 ? "the bridge" : bridges.map((b) => `'${b}'`).join(", ")} exists and is active on node ${a.node} ` +
      `(System → Network), then run apply again; or drop the pending NIC now: \`qm set ${a.vmid} --revert ${keys}\` on ${a.node}`
  ]
}

/**
 * `UpdateVm`: one `PUT …/config` with the digest of the plan (someone else's edit since then makes PVE refuse it,
 * and nothing is overwritten), then the boot disk grown (re-read first: never shrunk), then moved to the storage
 * homelab.yaml asks (`move_disk` with the digest just read, the source freed; PVE copies it while the VM runs). Afterwards it reads what PVE
 * keeps pending. Cloud-init changes go into the config with the mark `homelab-cloudinit` (the plan put it in the same
 * write); the drive is not regenerated: PVE holds the change (`GET …/cloudinit`) until it starts the VM, so the next
 * runs see it waiting, where a regenerated drive would make PVE forget it while the guest has not read it.
 */
export const updateVm = <E>(ctx: DriftContext<E>, a: UpdateVm) =>
  Effect.gen(function* () {
    const { api, desired } = ctx
    const node = a.node
    const params: Record<string, PveParam> = { ...a.edit.set }
    if (a.edit.password) {
      const vm = desired.nodes.find((n) => n.name === node)?.vms.find((v) => v.name === a.name)
      if (vm?.cloudInit.password !== undefined) params.cipassword = vm.cloudInit.password
    }
    if (Object.keys(params).length > 0 || a.edit.delete.length > 0) {
      yield* ctx.progress(`updating the config of VM ${a.vmid} (${a.changes.map((c) => c.field).join(", ")})`)
      yield* api.updateVmConfig(node, a.vmid, params, { delete: a.edit.delete, digest: a.digest }).pipe(
        Effect.catch((error: ProxmoxError): Effect.Effect<never, E | ProxmoxError> => {
          if (error.reason._tag === "ApiError" && /checksum mismatch/.test(error.reason.detail))
            return ctx.fail(
              `VM ${a.vmid} ${a.name} was changed by someone else since the plan was made (its config digest differs); not overwriting that change`,
              "run homelab plan again: it compares homelab.yaml with the VM as it is now"
            )
          const unplugged = error.reason._tag === "InvalidParameter" ? hotplugFailures(error.reason.errors) : []
          return unplugged.length > 0 ? ctx.fail(...nicNotPlugged(a, unplugged)) : Effect.fail(error)
        })
      )
    }
    for (const r of a.edit.resize) {
      const config = yield* api.vmConfig(node, a.vmid)
      const size = driveSizeBytes(config.raw[r.disk])
      if (size !== undefined && size > r.bytes) {
        return yield* ctx.fail(
          `${r.disk} of VM ${a.vmid} is ${formatSize(size)} now, more than the ${r.size} planned: not shrinking it`,
          "run homelab plan again"
        )
      }
      if (size === undefined || size < r.bytes) {
        yield* ctx.progress(`growing ${r.disk} of VM ${a.vmid} to ${r.size}`)
        yield* api.resizeDisk(node, a.vmid, r.disk, r.size, ctx.task(`growing ${r.disk} of VM ${a.vmid}`)).pipe(
          // A resize still running at timeouts.task is hung (a storage that does not answer): left running, it would
          // hold the VM's config lock, and every later run's update would fail on it. Stopped, as a hung create is.
          Effect.catchReason(
            "ProxmoxError",
            "TaskFailed",
            (reason, error): Effect.Effect<never, E | ProxmoxError> =>
              reason.stillRunning === true
                ? stopHungTask(api, reason.upid).pipe(
                    Effect.result,
                    Effect.flatMap((stopped) =>
                      ctx.fail(
                        `growing ${r.disk} of VM ${a.vmid} ${a.name} to ${r.size} did not finish within ${Duration.format(ctx.timeouts.task)}; ${stopped._tag === "Success" ? "stopped it (PVE releases the VM's config lock)" : `could not stop it (${stopped.failure.reason.message})`}`,
                        `see the resize task's log on ${node} (does the disk's storage answer?); the next run grows it again; timeouts.task sets the limit`
                      )
                    )
                  )
                : Effect.fail(error)
          )
        )
      }
    }
    const move = a.edit.move
    if (move !== undefined) {
      // Read again: the digest guards the move (an edit since is refused), and a disk already there is not moved.
      const config = yield* api.vmConfig(node, a.vmid)
      if (driveStorage(config.raw[move.disk]) !== move.storage) {
        yield* ctx.progress(
          `moving ${move.disk} of VM ${a.vmid} to storage '${move.storage}' (PVE copies it while the VM runs)`
        )
        yield* api.moveDisk(node, a.vmid, move.disk, move.storage, {
          delete: true,
          digest: config.digest,
          wait: ctx.task(`moving ${move.disk} of VM ${a.vmid} to storage '${move.storage}'`)
        })
      }
    }
    const after = yield* api.vmPending(node, a.vmid)
    const held = new Set([...Object.keys(after.pending), ...after.deletes])
    const waiting = a.changes.filter((c) => {
      if (c.effect === "next-boot") return true
      const key = pendingKey(c)
      return c.effect === "restart" && key !== undefined && held.has(key)
    })
    const applied = a.changes.length - waiting.length
    const rolling = desired.restart === "rolling"
    const detail =
      waiting.length === 0
        ? `VM ${a.vmid} ${a.name}: ${a.changes.map(describeChange).join("; ")}`
        : `VM ${a.vmid} ${a.name}: ${applied} change(s) in effect; ${waiting.length} wait for a restart${rolling ? " (restarted next, one VM at a time)" : " (vm.restart: never)"}: ${waiting.map(describeChange).join("; ")}`
    return {
      detail,
      pending: rolling ? [] : waiting.map(describeChange)
    } satisfies DriftResult
  })

/**
 * `RestartVm`: re-checks the VM (ours, same name, running, not locked or protected), and with k3s: the etcd quorum
 * guard for a server (also one whose Node was not Ready when planned, `etcd`: it is not drained), then drains its Node; restarts the VM (PVE's reboot: a clean shutdown, then PVE starts it
 * again and applies what was pending); waits until it runs and has its IP, then until its Node is Ready; uncordons
 * it. The VM carries `homelab-restart` from before the drain until the Node is uncordoned, so that a run interrupted
 * in between, or a failure once the VM went down (the Node stays cordoned), is finished by the next run
 * (`UncordonK3s`). A failure before the VM went down uncordons the Node again and clears the mark. A Node that was
 * cordoned by someone else when planned (`keepCordoned`), or is so when the restart begins (read again then: no mark
 * of ours on the VM says the cordon is ours), is drained and waited for, but never marked or uncordoned.
 * PVE's start regenerates the cloud-init drive: a VM marked `homelab-cloudinit` has the mark cleared once PVE holds
 * nothing for the drive any more.
 */
export const restartVm = <E>(ctx: DriftContext<E>, a: RestartVm) =>
  Effect.gen(function* () {
    const { api, desired, timeouts } = ctx
    const node = a.node
    const [status, config] = yield* Effect.all([api.vmStatus(node, a.vmid), api.vmConfig(node, a.vmid)])
    if (!config.tags.includes(desired.ownershipTag))
      return yield* ctx.fail(`VM ${a.vmid} no longer carries '${desired.ownershipTag}'; not restarting it`)
    if (config.name !== a.name) return yield* ctx.fail(`VM ${a.vmid} is now named ${config.name}; not restarting it`)
    if (config.raw.protection === "1") return yield* ctx.fail(`VM ${a.vmid} became protected; not restarting it`)
    if (status.lock !== undefined) return yield* ctx.fail(`VM ${a.vmid} got a lock (${status.lock}); not restarting it`)
    if (status.status !== "running" || (status.qmpstatus ?? "running") !== "running") {
      return yield* ctx.fail(
        `VM ${a.vmid} ${a.name} is not running (${status.qmpstatus ?? status.status}); not restarting it`,
        "its pending settings apply when it starts"
      )
    }

    const k3s = desired.k3s
    const member =
      a.k3s !== undefined && k3s !== undefined && Option.isSome(ctx.k3sJoin)
        ? { join: ctx.k3sJoin.value, server: yield* ctx.serverOf(a.k3s.via) }
        : undefined
    if (a.k3s !== undefined && member === undefined)
      return yield* ctx.fail("no k3s client in this run", "a bug: please report it")
    const k3sFailed = (what: string) => (e: { readonly message: string }) =>
      ctx.fail(`${what}: ${e.message}`, "check k3s.server; the VM was not restarted")
    /**
     * Cordoned by someone else since the plan was made (by hand, while the rollout went on): read now, a Node cordoned
     * without a mark of ours saying by us (`homelab-restart`, `homelab-upgrade`).
     */
    const cordonedSince =
      member !== undefined &&
      a.k3s?.keepCordoned !== true &&
      !config.tags.includes(RestartTag) &&
      !config.tags.includes(UpgradeTag) &&
      !config.tags.includes(DestroyTag) &&
      (yield* member.join.clusterNodes(member.server).pipe(
        Effect.map((nodes) => nodes.find((n) => n.name === a.name)?.unschedulable === true),
        Effect.catch(k3sFailed(`cannot read k3s Node ${a.name}`))
      ))
    /** Our cordon: the Node is marked before the drain and uncordoned after; someone else's is left as it is. */
    const ours = member !== undefined && a.k3s?.keepCordoned !== true && !cordonedSince
    /** Before the VM went down: the Node back in service, the mark cleared (kept when the uncordon fails). */
    const giveBack =
      member !== undefined && ours
        ? member.join
            .uncordon(member.server, a.name)
            .pipe(Effect.andThen(ctx.mark(a.vmid, RestartTag, false)), Effect.ignore)
        : Effect.void
    if (member !== undefined && a.k3s?.role === "server") {
      // The quorum guard again, just before the server goes down: the cluster may have changed since the plan.
      const verdict = yield* checkQuorumNow(member.server, a.name, "restart").pipe(
        Effect.provideService(K3sJoin, member.join),
        Effect.catch(k3sFailed("cannot read etcd's members"))
      )
      if (!verdict.ok) {
        return yield* ctx.fail(
          `restarting server ${a.name} would lose etcd's quorum: ${verdict.reason}`,
          "bring the other servers back first; the rollout stops here"
        )
      }
    }
    if (a.k3s === undefined && a.etcd !== undefined && k3s !== undefined) {
      // A server whose Node was not Ready when planned: not drained, but its etcd member may vote, so the guard asks
      // again just before the VM goes down, as for a Ready server.
      if (Option.isNone(ctx.k3sJoin)) return yield* ctx.fail("no k3s client in this run", "a bug: please report it")
      const server = yield* ctx.serverOf(a.etcd.via)
      const verdict = yield* checkQuorumNow(server, a.name, "restart").pipe(
        Effect.provideService(K3sJoin, ctx.k3sJoin.value),
        Effect.catch(k3sFailed("cannot read etcd's members"))
      )
      if (!verdict.ok) {
        return yield* ctx.fail(
          `restarting server ${a.name} would lose etcd's quorum: ${verdict.reason}`,
          "bring the other servers back first; the rollout stops here"
        )
      }
    }
    if (member !== undefined) {
      // Durable intent: from here on, the next run knows this Node's cordon is ours to undo.
      if (ours) yield* ctx.mark(a.vmid, RestartTag, true)
      yield* ctx.progress(`draining k3s Node ${a.name}`)
      yield* member.join
        .drain(member.server, a.name, { timeout: drainTimeout(desired.k3s), onEvent: ctx.k3sProgress })
        .pipe(
          Effect.catch((e) =>
            giveBack.pipe(
              Effect.andThen(
                ctx.fail(
                  `could not drain k3s Node ${a.name}: ${e.message}`,
                  ours
                    ? "the Node was uncordoned; the VM was not restarted"
                    : "the Node stays cordoned, as it was; the VM was not restarted"
                )
              )
            )
          )
        )
    }

    yield* ctx.progress(`restarting VM ${a.vmid} ${a.name}`)
    const rebooted = yield* api
      .rebootVm(node, a.vmid, {
        timeout: Math.max(1, Math.round(Duration.toSeconds(timeouts.task))),
        wait: ctx.task(`restarting VM ${a.vmid}`)
      })
      .pipe(
        Effect.catch((error: ProxmoxError) =>
          api.vmStatus(node, a.vmid).pipe(
            Effect.flatMap((s) => (s.status === "running" ? giveBack : Effect.void)),
            Effect.ignore,
            Effect.andThen(Effect.fail(error))
          )
        )
      )
    // The reboot task ends when the VM is down; PVE starts it again right after.
    /** What a failure from here on leaves: the Node cordoned (ours: marked, for the next run to finish). */
    const stays =
      member === undefined
        ? undefined
        : ours
          ? `its k3s Node stays cordoned and the VM keeps '${RestartTag}': the next run uncordons it once the VM runs and the Node is Ready`
          : "its k3s Node stays cordoned, as it was"
    const ip = yield* backInService(ctx, {
      vmid: a.vmid,
      name: a.name,
      node,
      member: member !== undefined && a.k3s !== undefined ? { ...member, role: a.k3s.role } : undefined,
      known: a.k3s?.ip,
      notRunning: {
        message: `VM ${a.vmid} ${a.name} did not start again within ${Duration.format(timeouts.task)} after its reboot`,
        hint: `see its tasks on ${node}${stays === undefined ? "" : `; ${stays}`}; the rollout stops here`
      },
      startedAfter: parseUpid(rebooted.upid)?.starttime,
      startFailed: (status) => ({
        message: `VM ${a.vmid} ${a.name} did not start again after its reboot: PVE's start of it failed: ${status}`,
        hint: `see the qmstart task of VM ${a.vmid} on ${node} (its log says why), fix that and start the VM (\`qm start ${a.vmid}\`)${stays === undefined ? "" : `; ${stays}`}; the rollout stops here`
      }),
      leaves: stays === undefined ? undefined : `${stays}; the rollout stops here`,
      notReady: (e, ip) =>
        ctx.fail(
          `k3s Node ${a.name} is not Ready after the restart: ${e.message}`,
          `${stays}; \`journalctl -u ${a.k3s?.role === "server" ? "k3s" : "k3s-agent"}\` on ${ip}; the rollout stops here`
        )
    })
    if (member !== undefined && ours) {
      yield* member.join
        .uncordon(member.server, a.name)
        .pipe(
          Effect.catch((e) =>
            ctx.fail(
              `could not uncordon k3s Node ${a.name} after the restart: ${e.message}`,
              `the VM keeps '${RestartTag}': the next run uncordons it (check k3s.server)`
            )
          )
        )
      yield* ctx.mark(a.vmid, RestartTag, false)
      // a teardown's cordon (it stopped short of destroying the VM) is undone with this one
      if (config.tags.includes(DestroyTag)) yield* ctx.mark(a.vmid, DestroyTag, false)
    }
    const after = yield* api.vmPending(node, a.vmid)
    const held = a.changes.filter((c) => {
      const key = pendingKey(c)
      return key !== undefined && (after.pending[key] !== undefined || after.deletes.includes(key))
    })
    if (held.length > 0) {
      return yield* ctx.fail(
        `VM ${a.vmid} ${a.name} restarted, but PVE still holds ${held.map((c) => c.field).join(", ")} pending`,
        `see \`qm pending ${a.vmid}\` on ${node}`
      )
    }
    // PVE's start regenerated the cloud-init drive: what an update of ours left waiting for it is in effect.
    if (config.tags.includes(CloudInitTag) || tagList(after.current.tags).includes(CloudInitTag)) {
      const drive = yield* api.cloudInitChanges(node, a.vmid)
      if (drive.length > 0) {
        return yield* ctx.fail(
          `VM ${a.vmid} ${a.name} restarted, but PVE still holds cloud-init ${drive.map((c) => c.key).join(", ")} for its drive`,
          `see \`qm cloudinit pending ${a.vmid}\` on ${node}; the VM keeps '${CloudInitTag}'`
        )
      }
      yield* ctx.mark(a.vmid, CloudInitTag, false)
    }
    const inEffect = a.changes.filter(needsRestart).map((c) => `${c.field} ${c.to}`)
    return {
      detail: `VM ${a.vmid} ${a.name} restarted, running at ${ip}${member === undefined ? "" : ours ? "; k3s Node drained, Ready again, uncordoned" : "; k3s Node drained, Ready again, left cordoned as it was"}; in effect: ${inEffect.join(", ")}`,
      ip
    } satisfies DriftResult
  })

/** The k3s side of a VM coming back: who to ask, and what role its Node has. */
export interface Member {
  readonly join: K3sJoinShape
  readonly server: K3sServer & { readonly apiPort: number }
  readonly role: "server" | "agent"
}

/**
 * A VM back in service after a restart (or a start or resume: `Apply`'s `StartVm`, `ResumeVm`): it runs (bounded by
 * `timeouts.task`), and then, without its k3s Node, has its guest agent's IP; with its Node, the Node is Ready again,
 * checked over SSH at the IP known for the VM (`known`: the plan's, the Node's own address as a rule, or the VM's
 * static address) and, when the guest agent reports another one (a new address after the restart), at that one. The
 * guest agent's IP is not needed then: a Node Ready again is the VM back in service, so a silent agent (not
 * installed, broken, off) does not hold the rollout or fail the start. Returns the IP; the failures say what the
 * caller asks them to.
 */
export const backInService = <E>(
  ctx: DriftContext<E>,
  vm: {
    readonly vmid: number
    readonly name: string
    readonly node: string
    readonly member: Member | undefined
    /** The VM's IP as known before the restart (the plan's, or this run's); undefined: the guest agent's only. */
    readonly known: string | undefined
    readonly notRunning: { readonly message: string; readonly hint: string }
    /**
     * After a reboot: the reboot task's start time (PVE's clock, seconds). PVE starts the VM again in a task of its
     * own (qmeventd's `qm cleanup`, a `qmstart` of root@pam); one of those since then that failed while the VM is
     * stopped ends the wait at once, with `startFailed` of its status.
     */
    readonly startedAfter?: number | undefined
    readonly startFailed?: (status: string) => { readonly message: string; readonly hint: string }
    /** What a failure from here on leaves behind (the cordoned Node), for the hints. */
    readonly leaves: string | undefined
    readonly notReady: (e: { readonly message: string }, ip: string) => Effect.Effect<never, E>
  }
) =>
  Effect.gen(function* () {
    const { api, timeouts } = ctx
    const k3s = ctx.desired.k3s
    const what = `VM ${vm.vmid} ${vm.name} to run again`
    yield* ctx.progress(`waiting for ${what}`)
    const since = vm.startedAfter
    /** The status of a `qmstart` of the VM since the reboot that failed; undefined while none did. */
    const failedStart =
      since === undefined
        ? Effect.succeed(undefined)
        : api.nodeTasks(vm.node, { vmid: vm.vmid, type: "qmstart", source: "archive" }).pipe(
            Effect.map(
              (tasks) =>
                tasks.find(
                  (t) =>
                    t.type === "qmstart" &&
                    t.starttime >= since &&
                    t.endtime !== undefined &&
                    t.status !== undefined &&
                    t.status !== "OK" &&
                    !/^WARNINGS: \d+$/.test(t.status)
                )?.status
            ),
            Effect.catch(() => Effect.succeed(undefined))
          )
    const running = yield* api.vmStatus(vm.node, vm.vmid).pipe(
      Effect.flatMap((s) =>
        s.status === "running"
          ? Effect.succeed({ up: (s.qmpstatus ?? "running") === "running", failed: undefined })
          : failedStart.pipe(Effect.map((failed) => ({ up: false, failed })))
      ),
      Effect.catch(() => Effect.succeed({ up: false, failed: undefined })),
      Effect.repeat({ schedule: taskPollSchedule, until: (s) => s.up || s.failed !== undefined }),
      Effect.timeoutOption(timeouts.task)
    )
    if (Option.isNone(running)) return yield* ctx.fail(vm.notRunning.message, vm.notRunning.hint)
    const failed = running.value.failed
    if (failed !== undefined && vm.startFailed !== undefined) {
      const said = vm.startFailed(failed)
      return yield* ctx.fail(said.message, said.hint)
    }
    const member = vm.member
    if (member === undefined || k3s === undefined) {
      return yield* ctx.waitForIp(vm.vmid, vm.name, vm.leaves)
    }
    const ready = (ip: string) =>
      Effect.gen(function* () {
        yield* ctx.progress(`waiting for k3s Node ${vm.name} to be Ready`)
        yield* member.join
          .waitReady({
            server: member.server,
            host: {
              host: ip,
              port: k3s.vmSshPort,
              user: yield* ctx.guestUser(vm.name, vm.vmid),
              nodeName: vm.name,
              ip
            },
            role: member.role,
            nodeName: vm.name,
            timeouts: { ready: timeouts.k3sReady, progressInterval: ctx.progressInterval },
            onEvent: ctx.k3sProgress
          })
          .pipe(Effect.catch((e) => vm.notReady(e, ip)))
        return ip
      })
    const known = vm.known
    if (known === undefined) {
      return yield* ready(yield* ctx.waitForIp(vm.vmid, vm.name, vm.leaves))
    }
    // The Node at the IP known, and the guest agent's IP beside it: whichever says first decides.
    const atKnown = yield* Effect.forkChild(ready(known))
    const agent = yield* Effect.forkChild(ctx.waitForIp(vm.vmid, vm.name, vm.leaves))
    const first = yield* Effect.raceFirst(
      Fiber.await(atKnown).pipe(Effect.map((exit) => ({ from: "known" as const, exit }))),
      Fiber.await(agent).pipe(Effect.map((exit) => ({ from: "agent" as const, exit })))
    )
    if (first.from === "known") {
      yield* Fiber.interrupt(agent)
      return yield* first.exit
    }
    const reported = first.exit
    if (Exit.isSuccess(reported) && reported.value !== known) {
      // a new address after the restart: the Node is checked there
      yield* Fiber.interrupt(atKnown)
      return yield* ready(reported.value)
    }
    return yield* yield* Fiber.await(atKnown)
  })

/**
 * `UncordonK3s`: the end of a restart an earlier run did not finish, or of a teardown that stopped short of destroying
 * a VM homelab.yaml still asks for (`homelab-destroy`). Re-reads the VM (ours, same name); when it no longer carries
 * the mark, another run finished it. Otherwise waits until the VM runs, has its IP and its Node is Ready, uncordons the
 * Node, and clears the marks. A Node that was not cordoned when planned is not touched: only the marks are cleared. A
 * failure leaves them, so the next run tries again.
 */
export const finishRestart = <E>(ctx: DriftContext<E>, a: UncordonK3s) =>
  Effect.gen(function* () {
    const { api, desired } = ctx
    const node = a.node
    const config = yield* api.vmConfig(node, a.vmid)
    if (!config.tags.includes(desired.ownershipTag))
      return yield* ctx.fail(`VM ${a.vmid} no longer carries '${desired.ownershipTag}'; not touching its k3s Node`)
    if (config.name !== a.vm) return yield* ctx.fail(`VM ${a.vmid} is now named ${config.name}; not touching it`)
    const tag = a.mark ?? RestartTag
    const what = a.mark === DestroyTag ? "the teardown's cordon was undone" : "its restart was finished"
    if (!config.tags.includes(tag)) {
      return { detail: `VM ${a.vmid} ${a.vm} no longer carries '${tag}': ${what} meanwhile` }
    }
    const clear = Effect.forEach(
      [RestartTag, DestroyTag].filter((t) => config.tags.includes(t)),
      (t) => ctx.mark(a.vmid, t, false),
      { discard: true }
    )
    if (!a.cordoned) {
      yield* clear
      return { detail: `VM ${a.vmid} ${a.vm}: '${tag}' cleared; its k3s Node was not cordoned` }
    }
    if (desired.k3s === undefined || Option.isNone(ctx.k3sJoin))
      return yield* ctx.fail("no k3s client in this run", "a bug: please report it")
    const member: Member = { join: ctx.k3sJoin.value, server: yield* ctx.serverOf(a.via), role: a.role }
    const stays = `its k3s Node stays cordoned and the VM keeps '${tag}': the next run tries again`
    const ip = yield* backInService(ctx, {
      vmid: a.vmid,
      name: a.vm,
      node,
      member,
      known: ctx.learnedIp?.(a.vm) ?? a.ip,
      notRunning: {
        message: `VM ${a.vmid} ${a.vm} does not run (waited ${Duration.format(ctx.timeouts.task)})`,
        hint: `see its tasks on ${node}; ${stays}`
      },
      leaves: stays,
      notReady: (e, ip) =>
        ctx.fail(
          `k3s Node ${a.vm} is not Ready: ${e.message}`,
          `${stays}; \`journalctl -u ${a.role === "server" ? "k3s" : "k3s-agent"}\` on ${ip}`
        )
    })
    yield* ctx.progress(`uncordoning k3s Node ${a.vm}`)
    yield* member.join
      .uncordon(member.server, a.vm)
      .pipe(
        Effect.catch((e) =>
          ctx.fail(`could not uncordon k3s Node ${a.vm}: ${e.message}`, `${stays} (check k3s.server)`)
        )
      )
    yield* clear
    return {
      detail:
        a.mark === DestroyTag
          ? `VM ${a.vmid} ${a.vm} runs at ${ip} and its k3s Node is Ready: uncordoned (homelab.yaml still asks for it; an earlier teardown had cordoned it)`
          : `VM ${a.vmid} ${a.vm} runs at ${ip} and its k3s Node is Ready: uncordoned, its restart finished`,
      ip
    } satisfies DriftResult
  })
