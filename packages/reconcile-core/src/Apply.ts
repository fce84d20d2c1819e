import {
  hasPassword,
  joiningMembersOf,
  K3sJoin,
  type K3sJoinEvent,
  memberIdHex,
  memberJoining,
  memberWithoutNode,
  type NodeChanges,
  orphanMembersOf,
  resolveChannel
} from "@homelab/k3s-join"
import {
  type CreateVmOptions,
  ProxmoxApi,
  ProxmoxError,
  type PveParam,
  type TaskProgress,
  taskPollSchedule,
  taskWarnings,
  type WaitOptions
} from "@homelab/proxmox-client"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Semaphore from "effect/Semaphore"
import {
  type Action,
  type AwaitCreate,
  type DownloadImage,
  describeAction,
  describeNodeChanges,
  type FinishVm,
  type InitK3s,
  type JoinK3s,
  type K3sVia,
  type RecreateVm,
  type ResumeVm,
  type StartVm,
  type UpgradeK3s,
  type VmSpec
} from "./Action.js"
import { deleteImage, destroyVm } from "./ApplyDestroy.js"
import { backInService, type DriftContext, finishRestart, restartVm, updateVm } from "./ApplyDrift.js"
import { startK3s } from "./ApplyStartK3s.js"
import { uploadImage } from "./ApplyUpload.js"
import type { ActionOutcome } from "./Convergence.js"
import type { Desired, DesiredCloudInit, DesiredVm } from "./Desired.js"
import { describeFailure } from "./describeFailure.js"
import { cicustomProperty } from "./desiredFromConfig.js"
import { downloadFailed } from "./downloadFailed.js"
import { existingClusterHint } from "./existingClusterHint.js"
import { type GuestRef, readGuestUser } from "./GuestUser.js"
import { checksumMismatch } from "./ImageFiles.js"
import { joinSshHint } from "./joinSshHint.js"
import { joinTokenOf, tokenPasswordOf } from "./joinTokenOf.js"
import { journalFix, removedAgainHint } from "./journalFix.js"
import { k3sFlagSource, k3sFlagsFor } from "./K3sRoleFlags.js"
import { localImages } from "./LocalImage.js"
import { RebuildTag, RejoinTag, RestartTag, tagList, UpgradeKeepCordonTag, UpgradeTag } from "./Marks.js"
import { notRunning } from "./notRunning.js"
import type { RunningDownload } from "./Observed.js"
import { checkQuorumNow, rejoinRefusal } from "./QuorumGuard.js"
import { runningDownloads } from "./runningDownloads.js"
import { joiningMemberHint, staleMemberHint } from "./StaleMember.js"
import { staticAddress } from "./staticAddress.js"
import { stopHungTask } from "./stopHungTask.js"
import { DefaultTimeouts, drainTimeout, type Timeouts } from "./Timeouts.js"
import { tokenRefusedHint } from "./tokenRefused.js"
import { differences, driftTargetOf, vmDrift } from "./VmDrift.js"

/** A wait in progress: what for, for how long so far, and the limit. */
export interface WaitProgress {
  readonly what: string
  readonly elapsedMs: number
  readonly limitMs: number
}

/** A step of an action, as it happens: for progress displays and event logs. */
export type ApplyEvent =
  | { readonly _tag: "ActionStarted"; readonly id: string; readonly action: Action; readonly description: string }
  | {
      readonly _tag: "ActionProgress"
      readonly id: string
      readonly node: string
      readonly step: string
      /** Set while the action waits for something (reported every 5 s of a wait). */
      readonly wait?: WaitProgress | undefined
    }
  | {
      readonly _tag: "ActionDone"
      readonly id: string
      readonly node: string
      readonly description: string
      readonly detail: string
      readonly ms: number
    }
  | {
      readonly _tag: "ActionFailed"
      readonly id: string
      readonly node: string
      readonly description: string
      readonly error: string
      readonly hint?: string | undefined
      readonly ms: number
    }
  | {
      readonly _tag: "ActionSkipped"
      readonly id: string
      readonly node: string
      readonly description: string
      readonly reason: string
      /** It did not run because it (or an action it waits for) is destructive and was not confirmed. */
      readonly unconfirmed: boolean
    }
  | {
      /**
       * After the actions, before the verdict: the run waits for what they set going (the k3s Nodes of the server VMs
       * it brought back after a power cut, say), reported once the wait has lasted 5 s, then every 5 s.
       */
      readonly _tag: "Settling"
      readonly wait: WaitProgress
    }

export interface ApplyOptions {
  readonly onEvent?: ((event: ApplyEvent) => Effect.Effect<void>) | undefined
  /** Destructive actions the user did not confirm: they and what waits for them do not run. */
  readonly unconfirmed?: ReadonlyArray<string> | undefined
  /** Override `desired.timeouts`. */
  readonly timeouts?: Partial<Timeouts> | undefined
  /** How often a running wait is reported. Default 5 seconds. */
  readonly progressInterval?: Duration.Input | undefined
  /** Where `image.transfer: upload` fetches the image before uploading it (removed afterwards). Default: the OS's temp dir. */
  readonly imageDir?: string | undefined
  /**
   * Where each VM of ours is (by name, as observed): the k3s steps log in to a VM as the user its guest has now,
   * read from PVE (`readGuestUser`) — not always `vm.user`, see `GuestUser.ts`. A VM neither here nor made by this
   * run: `vm.user`.
   */
  readonly guests?: ReadonlyMap<string, GuestRef> | undefined
  /**
   * When the lab was observed for these actions (epoch seconds, `Observed.at`). What the observation read is used
   * instead of being read again while it is fresh (`FRESH_SECONDS`): the downloads running on a node.
   */
  readonly observedAt?: number | undefined
}

/**
 * How old an observation may be for apply to rely on what it read instead of reading it again: a few seconds, the
 * time `apply --yes` takes from its observation to its first action. A plan confirmed at a prompt is older.
 */
const FRESH_SECONDS = 5

/** Why an action could not finish: for a person, with what to do about it. */
class StepFailed extends Error {
  constructor(
    message: string,
    readonly hint?: string | undefined
  ) {
    super(message)
  }
}

/**
 * A Proxmox request that failed in one step of an action: described with that step (`start VM 4432`), not with the
 * whole action (`create VM …`), whose earlier steps may have worked.
 */
class ProxmoxStepFailed extends StepFailed {
  constructor(
    readonly step: string,
    readonly error: ProxmoxError
  ) {
    super(error.message)
  }
}

/** Name the step a Proxmox failure of `effect` happened in (see `ProxmoxStepFailed`); other failures pass. */
const during =
  (step: string) =>
  <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, Exclude<E, ProxmoxError> | ProxmoxStepFailed> =>
    effect.pipe(
      Effect.mapError((e) =>
        e instanceof ProxmoxError ? new ProxmoxStepFailed(step, e) : (e as Exclude<E, ProxmoxError>)
      )
    )

/** The notes of a VM homelab creates when homelab.yaml sets no `vm.description` (then its notes are not managed). */
const defaultDescription = (role: VmSpec["role"]): string =>
  `Managed by homelab (role: ${role}). Recreated from homelab.yaml when unhealthy; edit the config, not this VM.`

/**
 * What a create sends: every setting drift compares (`VmDrift`), as drift would set it, so that the new VM has none
 * (the password with its mark).
 * `ipconfig0` goes as homelab.yaml writes it (every key PVE takes, `ip6` and `gw6` included). `imagePath`: the image
 * volume's absolute path, for an iso-type image (`spec.imageImport: path`): the create imports from it, as root.
 */
const createOptions = (
  spec: VmSpec,
  vmid: number,
  cloudInit: DesiredCloudInit,
  markTags: ReadonlyArray<string>,
  imagePath?: string | undefined
): CreateVmOptions => ({
  node: spec.node,
  ...(imagePath !== undefined ? { asRoot: true } : {}),
  vmid,
  name: spec.name,
  cores: spec.cores,
  sockets: spec.sockets,
  memory: spec.memoryMiB,
  balloon: spec.balloonMiB,
  cpu: spec.cpuType,
  ostype: "l26",
  scsihw: "virtio-scsi-single",
  disks: {
    scsi0: { storage: spec.storage, importFrom: imagePath ?? spec.imageVolid, options: { discard: "on", ssd: "1" } }
  },
  nets: spec.bridges.map((bridge) => ({ bridge })),
  cloudInit: {
    storage: spec.storage,
    user: cloudInit.user,
    password: cloudInit.password,
    sshKeys: cloudInit.sshKeys,
    ipConfig: [cloudInit.ipConfig],
    nameserver: cloudInit.nameserver,
    searchdomain: cloudInit.searchdomain,
    cicustom: cicustomProperty(cloudInit.cicustom)
  },
  agent: true,
  bootOrder: ["scsi0"],
  serialConsole: true,
  // the mark of the password it is created with (PasswordMark.ts): how drift later tells a changed vm.password
  tags: [
    ...new Set([
      ...spec.tags,
      ...markTags,
      ...(cloudInit.password !== undefined && cloudInit.passwordMark !== undefined ? [cloudInit.passwordMark.tag] : [])
    ])
  ].sort(),
  onboot: spec.onboot,
  description: spec.description ?? defaultDescription(spec.role)
})

const seconds = (d: Duration.Duration) => Duration.format(d)

/** What an action's detail adds when the VM it provisioned still differs from homelab.yaml. */
const unlike = (differs: ReadonlyArray<string>): string =>
  differs.length === 0 ? "" : `; but ${differs.length} setting(s) differ from homelab.yaml: ${differs.join("; ")}`

/**
 * Execute a plan. Every action starts as soon as the actions it waits for (`after`) are done, so each node's chain
 * (image → VM → k3s) runs on its own and a k3s join starts as soon as its VM has its IP; `exclusive` actions of the
 * same key run one at a time (k3s servers). A failed action fails only what waits for it: the other nodes go on.
 * Every step is reported through `onEvent`; every wait longer than the progress interval is reported while it runs.
 *
 * Safety: before destroying a VM for a recreate it re-reads the VM and refuses if it became protected, lost the
 * ownership tag, was renamed or got a lock since the plan was made, and marks it `homelab-rebuild` first. A create
 * claims a name-derived VMID; losing that claim to a concurrent run that creates the same name means waiting for that
 * run's VM, never making a second one.
 */
export const apply = Effect.fn("apply")(function* (
  actions: ReadonlyArray<Action>,
  desired: Desired,
  options: ApplyOptions = {}
) {
  const api = yield* ProxmoxApi
  const k3sJoin = yield* Effect.serviceOption(K3sJoin)
  const emit = options.onEvent ?? (() => Effect.void)
  const timeouts: Timeouts = { ...DefaultTimeouts, ...desired.timeouts, ...options.timeouts }
  const interval = Duration.fromInputUnsafe(options.progressInterval ?? "5 seconds")
  const unconfirmed = new Set(options.unconfirmed ?? [])
  /** `image.transfer: upload`: each image fetched once here, for every node's upload. */
  const uploads = yield* localImages(
    actions.flatMap((a) => (a._tag === "DownloadImage" && a.image.transfer === "upload" ? [a.image] : [])),
    options.imageDir
  )
  /** What the VM actions learned, for the joins that follow them: VMID and IP per VM name. */
  const vms = new Map<string, { vmid: number; ip: string | undefined }>()
  /**
   * VMs whose instance this run (or, for a pending VM, an earlier run) created: new machines at their address, whose
   * guest generated new SSH host keys at first boot. A key known_hosts holds for that address belongs to whatever was
   * there before (a VM destroyed by hand, a previous lab) and is forgotten before the join connects.
   */
  const newInstances = new Set<string>()
  /**
   * Per VM name, done once the VM action of this run that provisions it has seen its IP: its k3s step (`JoinK3s`,
   * `InitK3s`) starts then, not once the VM action has also dropped its pending mark and compared the VM with
   * homelab.yaml (see `runOne`).
   */
  const ipSeen = new Map<string, Deferred.Deferred<void>>()
  const ipOf = (name: string): Deferred.Deferred<void> => {
    let seen = ipSeen.get(name)
    if (seen === undefined) {
      seen = Deferred.makeUnsafe<void>()
      ipSeen.set(name, seen)
    }
    return seen
  }

  const desiredVmOf = (spec: VmSpec): DesiredVm => {
    const vm = desired.nodes.find((n) => n.name === spec.node)?.vms.find((v) => v.name === spec.name)
    if (vm === undefined) throw new Error(`no desired VM ${spec.name} on ${spec.node}`)
    return vm
  }
  const endpointsOf = (node: string) => desired.nodes.find((n) => n.name === node)?.endpoints
  const fail = (message: string, hint?: string) => Effect.fail(new StepFailed(message, hint))

  /**
   * The k3s server a step goes through: the configured `k3s.server`, or a server VM of ours (at the IP this run
   * learned for it, else the planned one).
   */
  const serverOf = (via: K3sVia | undefined) => {
    const k3s = desired.k3s
    if (k3s === undefined) return fail("no k3s section in this run", "a bug: please report it")
    if (via === undefined) {
      if (k3s.server === undefined) return fail("no k3s server to go through", "a bug: please report it")
      const { host, port, user, apiPort } = k3s.server
      return Effect.succeed({ host, port, user, apiPort })
    }
    const ip = vms.get(via.vm)?.ip ?? via.ip
    if (ip === undefined)
      return fail(`the address of k3s server ${via.vm} is not known`, `run apply again once ${via.vm} runs`)
    return guestUser(via.vm).pipe(Effect.map((user) => ({ host: ip, port: k3s.vmSshPort, user, apiPort: 6443 })))
  }

  /**
   * The user to log in as on VM `vm` (`vmid` when the step knows it): the user its guest has now, read from PVE each
   * time (a restart or a start of this run may have given it a new one); `vm.user` when the VM is not known.
   */
  const guestUser = (vm: string, vmid?: number): Effect.Effect<string> => {
    const fallback = desired.k3s?.vmUser ?? "root"
    const seen = options.guests?.get(vm)
    const id = vms.get(vm)?.vmid ?? vmid ?? seen?.vmid
    const node = seen?.vmid === id ? seen?.node : desired.nodes.find((n) => n.vms.some((v) => v.name === vm))?.name
    return id === undefined || node === undefined
      ? Effect.succeed(fallback)
      : readGuestUser(api, { node, vmid: id }, fallback)
  }

  const execute = (
    action: Action
  ): Effect.Effect<
    {
      detail: string
      ip?: string | undefined
      pending?: ReadonlyArray<string> | undefined
      differs?: ReadonlyArray<string> | undefined
    },
    StepFailed | ProxmoxError
  > => {
    const node = action.node
    const progress = (step: string, wait?: WaitProgress) =>
      emit({ _tag: "ActionProgress", id: action.id, node, step, ...(wait ? { wait } : {}) })

    /**
     * Report `what` every interval while `effect` runs (elapsed and limit); `alreadyMs`: how long the awaited thing had
     * been going before this run began to wait for it (it counts towards the limit).
     */
    const waiting = <A, E>(what: string, limit: Duration.Duration, effect: Effect.Effect<A, E>, alreadyMs = 0) =>
      Effect.gen(function* () {
        const started = (yield* Clock.currentTimeMillis) - alreadyMs
        const limitMs = Duration.toMillis(limit)
        const everyMs = Duration.toMillis(interval)
        const report = Clock.currentTimeMillis.pipe(
          Effect.flatMap((now) => progress(what, { what, elapsedMs: now - started, limitMs }))
        )
        // the first report once the whole wait (the part before this run included) is one interval long
        const first = alreadyMs >= everyMs ? 0 : everyMs - alreadyMs
        const ticker = yield* Effect.forkChild(
          Effect.sleep(Duration.millis(first)).pipe(
            Effect.andThen(report),
            Effect.andThen(Effect.forever(Effect.sleep(interval).pipe(Effect.andThen(report))))
          )
        )
        return yield* effect.pipe(Effect.ensuring(Fiber.interrupt(ticker)))
      })

    /** Task waits: limit and progress from the run's settings. */
    const task = (what: string): WaitOptions => ({
      timeout: timeouts.task,
      progressInterval: interval,
      onProgress: (p: TaskProgress) =>
        progress(what, { what: `${what} (task ${p.type} ${p.id})`, elapsedMs: p.elapsedMs, limitMs: p.limitMs })
    })

    /**
     * Wait for the VM's IP. A wait that ends without one says why from the VM's state read then: a VM that is not
     * running (stopped, paused, prelaunch, …) is named as such; only a running VM's silence is the guest agent's.
     * A request that fails (the config read, the status read) fails the wait as what it is. `andThen`: what else the
     * failure leaves behind (said after the hint). `silent`: the failure for a running VM that reported no IP, when the
     * caller says it better (the default asks whether the image has the guest agent), or its result when a silent
     * agent is no failure.
     */
    const waitForIp = <A = never>(
      vmid: number,
      name: string,
      andThen?: string,
      silent?: Effect.Effect<A, StepFailed | ProxmoxError>
    ) =>
      Effect.gen(function* () {
        const what = `VM ${vmid} ${name}'s guest agent to report an IP`
        yield* progress(`waiting for ${what}`)
        // polled from 100 ms, growing to 1 s (the guest agent pushes nothing)
        const ip = yield* waiting(
          what,
          timeouts.ip,
          api.waitForIpv4(node, vmid, { timeout: timeouts.ip }).pipe(during(`read the IP of VM ${vmid}`))
        )
        if (ip !== undefined) return ip
        const state = notRunning(
          node,
          vmid,
          yield* api.vmStatus(node, vmid).pipe(during(`read the state of VM ${vmid}`))
        )
        if (state !== undefined) {
          return yield* fail(
            `VM ${vmid} ${name} is ${state.state}, not running (no IP within ${seconds(timeouts.ip)})`,
            `${state.hint}${andThen === undefined ? "" : `; ${andThen}`}`
          )
        }
        if (silent !== undefined) return yield* silent
        return yield* fail(
          `VM ${vmid} ${name} reported no IP within ${seconds(timeouts.ip)}`,
          `is qemu-guest-agent installed and enabled in the image? (timeouts.ip sets the limit)${andThen === undefined ? "" : `; ${andThen}`}`
        )
      })

    /** Start or resume the VM (whichever its state needs; a start that lost a race to another run is fine). */
    const power = (vmid: number, state: FinishVm["state"]) =>
      Effect.gen(function* () {
        if (state === "running") return
        const verb = state === "stopped" ? "starting" : "resuming"
        yield* progress(`${verb} VM ${vmid}`)
        const run = state === "stopped" ? api.startVm : api.resumeVm
        yield* run(node, vmid, { wait: task(`${verb} VM ${vmid}`) }).pipe(
          Effect.catch((error) =>
            api
              .vmStatus(node, vmid)
              .pipe(
                Effect.flatMap((s) =>
                  s.status === "running" && (s.qmpstatus ?? "running") === "running" ? Effect.void : Effect.fail(error)
                )
              )
          ),
          during(`${state === "stopped" ? "start" : "resume"} VM ${vmid}`)
        )
      })

    /**
     * An earlier run's leftover that is stopped (`FinishVm`, or the VM whose create an `AwaitCreate` waited for) is
     * brought in line with homelab.yaml before it is started, as drift would change it (`vmDrift`): one config update
     * guarded by the digest just read (a NIC on a bridge homelab.yaml no longer names, which would keep it from
     * starting, is removed). The plan ran the preflight for it (`FinishVm`, `AwaitCreate`). The pending mark stays
     * until the VM is finished; the disk is grown by `finish`. A protected VM is never changed. A running or paused
     * one is left as it is here: what differs is reported, and the next run changes it in place.
     */
    const alignLeftover = (spec: VmSpec, vmid: number) =>
      Effect.gen(function* () {
        const [status, config] = yield* Effect.all([api.vmStatus(node, vmid), api.vmPending(node, vmid)], {
          concurrency: 2
        }).pipe(during(`read VM ${vmid}`))
        if (status.status !== "stopped") return
        const vm = desiredVmOf(spec)
        const { changes, edit } = vmDrift(driftTargetOf(spec, vm), config)
        const params: Record<string, PveParam> = { ...edit.set }
        if (edit.password && vm.cloudInit.password !== undefined) params.cipassword = vm.cloudInit.password
        if (Object.keys(params).length === 0 && edit.delete.length === 0) return
        if (config.current.protection === "1")
          return yield* fail(
            `VM ${vmid} ${spec.name} became protected since the plan; not changing or starting it`,
            "remove the protection (and its entry in safety.protect) first"
          )
        const fields = changes.filter((c) => c.effect !== "online").map((c) => c.field)
        yield* progress(`bringing the config of VM ${vmid} in line with homelab.yaml (${fields.join(", ")})`)
        yield* api
          .updateVmConfig(node, vmid, params, { delete: edit.delete, digest: config.digest })
          .pipe(during(`update the config of VM ${vmid}`))
      })

    /**
     * Resize, start or resume, wait for the IP, then drop the pending mark: the VM is fully provisioned. The config
     * read for dropping the mark (`GET …/pending`, as the plan reads a VM) is then compared with homelab.yaml the way
     * the plan compares it (`vmDrift`): what still differs (`differs`) keeps the run from calling the VM converged.
     * `leftover`: an earlier or concurrent run's VM (`FinishVm`, `AwaitCreate`), brought in line with homelab.yaml
     * first when it is stopped.
     */
    const finish = (spec: VmSpec, vmid: number, leftover = false) =>
      Effect.gen(function* () {
        if (leftover) yield* alignLeftover(spec, vmid)
        const config = yield* api.vmConfig(node, vmid).pipe(during(`read the config of VM ${vmid}`))
        const size = /(?:^|,)size=(\d+)([KMGT]?)/.exec(config.scsi0 ?? "")
        const unit = { "": 1 / 1024 ** 3, K: 1 / 1024 ** 2, M: 1 / 1024, G: 1, T: 1024 }[size?.[2] ?? ""] ?? 1
        const currentGiB = size === null ? 0 : Number(size[1]) * unit
        if (currentGiB < spec.diskGiB) {
          yield* progress(`resizing scsi0 to ${spec.diskGiB}G`)
          yield* api
            .resizeDisk(node, vmid, "scsi0", `${spec.diskGiB}G`, task(`resizing scsi0 of VM ${vmid}`))
            .pipe(during(`resize scsi0 of VM ${vmid} to ${spec.diskGiB}G`))
        }
        // A VM this run has just created is stopped: it is started without reading its state first (a start that
        // lost a race to another run is fine, see `power`). An earlier run's VM is started, resumed or left as it is.
        const state: FinishVm["state"] = leftover
          ? yield* api.vmStatus(node, vmid).pipe(
              during(`read the state of VM ${vmid}`),
              Effect.map((status) =>
                status.status === "stopped"
                  ? "stopped"
                  : ((["paused", "prelaunch", "suspended"].find((s) => s === status.qmpstatus) as FinishVm["state"]) ??
                    "running")
              )
            )
          : "stopped"
        yield* power(vmid, state)
        const ip = yield* waitForIp(vmid, spec.name)
        // the k3s step of this VM starts now, while the pending mark is dropped (see `runOne`)
        yield* announce(spec.name, vmid, ip)
        const fresh = yield* api.vmPending(node, vmid).pipe(during(`read the config of VM ${vmid}`))
        // tags are never held for a restart: the current ones are the VM's
        const tags = tagList(fresh.current.tags)
        if (tags.includes(desired.pendingTag)) {
          yield* api
            .updateVmConfig(node, vmid, { tags: tags.filter((t) => t !== desired.pendingTag).join(";") })
            .pipe(during(`drop the '${desired.pendingTag}' tag of VM ${vmid}`))
        }
        const differs = differences(vmDrift(driftTargetOf(spec, desiredVmOf(spec)), fresh))
        return { ip, differs }
      })

    /** Wait until `vmid` has no `create` lock (bounded by the task limit), then read who holds it. */
    const holderOf = (vmid: number) =>
      Effect.gen(function* () {
        const what = `the create of VMID ${vmid} (another run) to finish`
        yield* progress(`waiting for ${what}`)
        const settled = yield* waiting(
          what,
          timeouts.task,
          api.vmConfig(node, vmid).pipe(
            Effect.map((c) => ({ exists: true as const, lock: c.raw.lock, name: c.name, tags: c.tags })),
            Effect.catchReason("ProxmoxError", "NotFound", () => Effect.succeed({ exists: false as const })),
            Effect.repeat({
              schedule: taskPollSchedule,
              until: (c) => !c.exists || c.lock !== "create"
            }),
            Effect.timeoutOption(timeouts.task)
          )
        )
        if (Option.isNone(settled)) {
          return yield* fail(
            `VMID ${vmid} stayed locked (create) for ${seconds(timeouts.task)}`,
            "the next run stops a create of its own that hangs; a stranger's create must be stopped by hand"
          )
        }
        return settled.value.exists ? settled.value : undefined
      })

    /**
     * Wait for another run (the winner of the VMID race) to provision the VM: its IP appears once it has resized and
     * started it. Then this run's join (if any) waits for that run's k3s install, never makes its own beside it.
     */
    const awaitWinner = (vmid: number, name: string) =>
      Effect.gen(function* () {
        yield* progress(`VM ${vmid} ${name} is being provisioned by another run; waiting for it`)
        return yield* waitForIp(vmid, name)
      })

    /** Create a VM at the first free candidate VMID, then finish it. */
    const create = (spec: VmSpec, candidates: ReadonlyArray<number>, rebuilt: boolean) =>
      Effect.gen(function* () {
        newInstances.add(spec.name)
        // an iso-type image: PVE imports it only from its path, which only root@pam may pass (never an API token)
        const imagePath =
          spec.imageImport === "path"
            ? yield* api
                .volumeInfo(spec.node, spec.imageVolid.slice(0, spec.imageVolid.indexOf(":")), spec.imageVolid)
                .pipe(
                  Effect.map((info) => info.path),
                  during(`read the path of ${spec.imageVolid}`)
                )
            : undefined
        const asRoot =
          imagePath === undefined
            ? ""
            : ` over SSH as root (image.content: iso: PVE imports ${imagePath} only for root@pam, never for an API token)`
        for (const vmid of candidates) {
          yield* progress(`creating VM ${vmid} ${spec.name}${asRoot}`)
          const marks = rebuilt && desired.k3s !== undefined ? [desired.pendingTag, RejoinTag] : [desired.pendingTag]
          const created = yield* api
            .createVm(
              createOptions(spec, vmid, desiredVmOf(spec).cloudInit, marks, imagePath),
              task(`creating VM ${vmid} ${spec.name}`)
            )
            .pipe(
              Effect.as(true),
              Effect.catchReason("ProxmoxError", "AlreadyExists", () => Effect.succeed(false)),
              Effect.catchReason("ProxmoxError", "TaskFailed", (reason, error) =>
                reason.stillRunning === true
                  ? api
                      .stopTask(reason.upid)
                      .pipe(
                        Effect.ignore,
                        Effect.andThen(
                          fail(
                            `the create of VM ${vmid} ${spec.name} did not finish within ${seconds(timeouts.task)}; stopped it (PVE removes the half-made VM)`,
                            "see the task log on the node; timeouts.task sets the limit"
                          )
                        )
                      )
                  : Effect.fail(error)
              ),
              during(`create VM ${vmid} ${spec.name}`)
            )
          if (!created) {
            const holder = yield* holderOf(vmid)
            if (holder?.name === spec.name && holder.tags.includes(desired.ownershipTag)) {
              // that run provisions it and compares it with homelab.yaml
              const ip = yield* awaitWinner(vmid, spec.name)
              return { vmid, ip, concurrent: true as const, differs: [] }
            }
            continue
          }
          const { ip, differs } = yield* finish(spec, vmid)
          return { vmid, ip, concurrent: false as const, differs }
        }
        return yield* fail(
          `no free VMID for ${spec.name} among ${candidates.join(", ")}`,
          "widen vm.vmidRange, or free one of those VMIDs"
        )
      })

    const remember = (name: string, vmid: number, ip: string | undefined) => {
      vms.set(name, { vmid, ip })
    }

    /** The VM has its IP: remembered, and the k3s step waiting for it may start (`runOne`). */
    const announce = (name: string, vmid: number, ip: string) =>
      Effect.suspend(() => {
        remember(name, vmid, ip)
        return Deferred.succeed(ipOf(name), undefined)
      })

    switch (action._tag) {
      case "DownloadImage":
        return action.image.transfer === "upload"
          ? uploadImage({ api, progress, task, fail }, action, uploads.get(action.image))
          : downloadImage(action)
      case "CreateVm":
        return create(action.spec, action.spec.vmidCandidates, action.rejoin === true).pipe(
          Effect.map((r) => {
            remember(action.spec.name, r.vmid, r.ip)
            return r.concurrent
              ? {
                  detail: `VM ${r.vmid} ${action.spec.name} was created by another run, running at ${r.ip}; not creating another`,
                  ip: r.ip
                }
              : {
                  detail: `VM ${r.vmid} ${action.spec.name} running at ${r.ip}${unlike(r.differs)}`,
                  ip: r.ip,
                  differs: r.differs
                }
          })
        )
      case "AwaitCreate":
        return awaitCreate(action)
      case "RecreateVm":
        return recreate(action)
      case "FinishVm":
        newInstances.add(action.spec.name)
        return finish(action.spec, action.vmid, true).pipe(
          Effect.map(({ ip, differs }) => {
            remember(action.spec.name, action.vmid, ip)
            return {
              detail: `VM ${action.vmid} ${action.spec.name} finished, running at ${ip}${unlike(differs)}`,
              ip,
              differs
            }
          })
        )
      case "StartVm":
      case "ResumeVm":
        return bringBack(action)
      case "JoinK3s":
        return join(action)
      case "InitK3s":
        return initCluster(action)
      case "UpgradeK3s":
        return upgrade(action)
      case "UpdateVm":
      case "RestartVm":
      case "UncordonK3s": {
        const context = driftContext()
        return action._tag === "UpdateVm"
          ? updateVm(context, action)
          : action._tag === "RestartVm"
            ? restartVm(context, action)
            : finishRestart(context, action)
      }
      case "DestroyVm":
        return destroyVm(action, { api, k3s: k3sJoin, desired, progress, task, k3sProgress, fail, serverOf })
      case "DeleteImage":
        return deleteImage(action, { api, k3s: k3sJoin, desired, progress, task, k3sProgress, fail, serverOf })
      case "StartK3s":
        return startK3s({ k3sJoin, desired, progress, fail, guestUser }, action)
    }

    /** What the executors of `ApplyDrift` need from this run. */
    function driftContext(): DriftContext<StepFailed> {
      return {
        api,
        k3sJoin,
        desired,
        timeouts,
        progressInterval: interval,
        progress,
        task,
        waitForIp,
        fail,
        k3sProgress,
        serverOf,
        guestUser,
        learnedIp: (vm: string) => vms.get(vm)?.ip,
        mark
      }
    }

    /**
     * `StartVm`, `ResumeVm`: start or resume the VM, then wait until it is back in service. A k3s member (`a.k3s`) whose
     * IP is known (learned by this run, else the static address of its `ipconfig0`, else its Node's when planned) is
     * back once its Node is Ready again there, or at the guest agent's IP when the agent reports another one: as after
     * a rolling restart (`backInService`), a guest agent that stays silent does not fail it. Any other VM needs its
     * guest agent's IP (to join k3s, say); without one, the failure says why and what to do.
     */
    function bringBack(a: StartVm | ResumeVm) {
      return Effect.gen(function* () {
        const done = a._tag === "StartVm" ? "started" : "resumed"
        yield* power(a.vmid, a._tag === "StartVm" ? "stopped" : "paused")
        const k3s = desired.k3s
        const returning = a.k3s
        if (returning !== undefined && k3s !== undefined && Option.isSome(k3sJoin)) {
          const config = yield* api.vmConfig(node, a.vmid).pipe(during(`read the config of VM ${a.vmid}`))
          const known = vms.get(a.name)?.ip ?? staticAddress(config.ipconfig0) ?? returning.ip
          // a server to check the Node through whose address is not known (yet): the guest agent's IP, as without k3s
          const server = yield* serverOf(returning.via).pipe(Effect.option)
          if (known !== undefined && Option.isSome(server)) {
            const unit = returning.role === "server" ? "k3s" : "k3s-agent"
            const ip = yield* backInService(driftContext(), {
              vmid: a.vmid,
              name: a.name,
              node,
              member: { join: k3sJoin.value, server: server.value, role: returning.role },
              known,
              notRunning: {
                message: `VM ${a.vmid} ${a.name} on node ${node} was ${done}, but does not run (waited ${seconds(timeouts.task)})`,
                hint: `see its tasks on ${node}`
              },
              leaves: undefined,
              notReady: (e, at) =>
                fail(
                  `VM ${a.vmid} ${a.name} on node ${node} was ${done}, but its k3s Node is not Ready again: ${e.message}`,
                  `\`journalctl -u ${unit}\` on ${at}; the next run checks it again`
                )
            })
            remember(a.name, a.vmid, ip)
            return { detail: `VM ${a.vmid} ${done}, running at ${ip}; its k3s Node is Ready again`, ip }
          }
        }
        const ip = yield* waitForIp(
          a.vmid,
          a.name,
          undefined,
          a.ipOptional === true ? Effect.succeed(undefined) : agentSilent(a, done)
        )
        if (ip === undefined) {
          return {
            detail: `VM ${a.vmid} ${done}; it runs, but its QEMU guest agent did not report an IP within ${seconds(timeouts.ip)} (its address is not needed: no k3s: section, and health.agentMissing is keep)`
          }
        }
        remember(a.name, a.vmid, ip)
        return { detail: `VM ${a.vmid} ${done}, running at ${ip}`, ip }
      })
    }

    /**
     * The failure of a VM that was started or resumed and runs, but whose guest agent reported no IP within
     * `timeouts.ip`: what that keeps from happening, and the ways out. (A guest agent off in the VM's config fails the
     * wait at once, as PVE says it: see `describeFailure`.)
     */
    function agentSilent(a: StartVm | ResumeVm, done: string) {
      return Effect.gen(function* () {
        const config = yield* api.vmConfig(node, a.vmid).pipe(during(`read the config of VM ${a.vmid}`))
        const dhcp = staticAddress(config.ipconfig0) === undefined
        // its join, or the check of its Node (a member the plan could not read, or one without a known address)
        const then = desired.k3s === undefined ? "" : " and k3s cannot reach it"
        const enable = "install and enable qemu-guest-agent in the guest (`systemctl enable --now qemu-guest-agent`)"
        return yield* fail(
          `VM ${a.vmid} ${a.name} on node ${node} was ${done}, but its QEMU guest agent did not answer within ${seconds(timeouts.ip)}, so its IP${dhcp ? " (DHCP)" : ""} is not known${then}`,
          dhcp
            ? `${enable}, or give the VM a static address (its ipConfig in homelab.yaml: ip=<address>/<prefix>,gw=<gateway>); timeouts.ip sets the limit`
            : `${enable}; timeouts.ip sets the limit`
        )
      })
    }

    /** Set or clear a mark on a VM (a fresh read of its tags first). */
    function mark(vmid: number, tag: string, on: boolean) {
      return on ? marks(vmid, [tag], []) : marks(vmid, [], [tag])
    }

    /** Set some marks on a VM and clear others, in one update (a fresh read of its tags first; none when as asked). */
    function marks(vmid: number, set: ReadonlyArray<string>, clear: ReadonlyArray<string>) {
      return Effect.gen(function* () {
        const fresh = yield* api.vmConfig(node, vmid)
        const kept = fresh.tags.filter((t) => !clear.includes(t))
        const added = set.filter((t) => !fresh.tags.includes(t))
        if (added.length === 0 && kept.length === fresh.tags.length) return
        yield* api.updateVmConfig(node, vmid, {
          tags: (added.length > 0 ? [...kept, ...added].sort() : kept).join(";")
        })
      })
    }

    function initCluster(a: InitK3s) {
      return Effect.gen(function* () {
        const k3s = desired.k3s
        if (k3s === undefined || Option.isNone(k3sJoin)) {
          return yield* fail("no k3s client in this run", "a bug: please report it")
        }
        const learned = vms.get(a.vm)
        const vmid = learned?.vmid ?? a.vmid
        const ip = learned?.ip ?? a.ip ?? (vmid === undefined ? undefined : yield* waitForIp(vmid, a.vm))
        if (ip === undefined || vmid === undefined) return yield* fail(`the IP of ${a.vm} is not known`)
        const host = { host: ip, port: k3s.vmSshPort, user: yield* guestUser(a.vm, vmid), nodeName: a.vm, ip }
        const hint = `on ${ip}: \`journalctl -u k3s\`; the next run finds the cluster if it came up, or starts it again`
        const k = k3sJoin.value
        // No version pinned: the channel's newest release (default stable), read by the VM as install.sh would.
        let version = k3s.version
        if (version === undefined) {
          const channel = k3s.channel ?? "stable"
          yield* progress(`k3s: resolving channel ${channel}`)
          const channels = yield* k
            .releaseChannels(host)
            .pipe(
              Effect.mapError(
                (e) => new StepFailed(`cannot resolve k3s channel ${channel}: ${e.message}`, "pin k3s.version")
              )
            )
          version = resolveChannel(channels, channel)
          if (version === undefined)
            return yield* fail(`k3s channel ${channel} does not exist`, "pin k3s.version or pick a listed channel")
        }
        const result = yield* k
          .initCluster({
            host,
            version,
            flags: k3sFlagsFor(k3s, "server"),
            token: k3s.token,
            timeouts: { install: timeouts.k3sInstall, ready: timeouts.k3sReady, progressInterval: interval },
            onEvent: k3sProgress
          })
          .pipe(
            Effect.mapError((e) =>
              e.reason._tag === "ExistingCluster"
                ? new StepFailed(e.message, existingClusterHint(a.vm, ip, e.reason))
                : new StepFailed(e.message, hint)
            )
          )
        // a cluster that ran already: a short k3s.token must be its password (a new one was started with it)
        const password = tokenPasswordOf(k3s.token)
        if (
          result._tag === "AlreadyInitialized" &&
          password !== undefined &&
          hasPassword(result.token, password) === false
        ) {
          return yield* fail(
            `${a.vm} already runs the cluster's first server, and k3s.token in homelab.yaml is not that cluster's token`,
            `its server token (\`sudo cat /var/lib/rancher/k3s/server/token\` on ${ip}) has another password after 'server:': set k3s.token to that token (or to its password), or remove k3s.token to have homelab read it from there; then run apply again`
          )
        }
        vms.set(a.vm, { vmid, ip })
        return {
          detail:
            result._tag === "AlreadyInitialized"
              ? `${a.vm} already runs the cluster's first server (${result.version ?? version})`
              : result.installedBy !== undefined
                ? `k3s cluster started on ${a.vm} by another run (${result.installedBy.run}, installed at ${result.installedBy.at}; this run waited ${Math.round(result.installedBy.lockWaitMs / 1000)} s); Ready (${result.version ?? version})`
                : `k3s cluster started on ${a.vm} (${result.version ?? version}, embedded etcd)`,
          ip
        }
      })
    }

    function upgrade(a: UpgradeK3s) {
      return Effect.gen(function* () {
        const k3s = desired.k3s
        if (k3s === undefined || Option.isNone(k3sJoin)) {
          return yield* fail("no k3s client in this run", "a bug: please report it")
        }
        const k = k3sJoin.value
        const server = yield* serverOf(a.via)
        const host = { host: a.ip, port: k3s.vmSshPort, user: yield* guestUser(a.vm, a.vmid), nodeName: a.vm, ip: a.ip }
        const journal = `on ${a.ip}: \`journalctl -u ${a.role === "server" ? "k3s" : "k3s-agent"}\``
        // A release the VM cannot download is refused before anything is marked or cordoned.
        for (const version of a.steps) {
          const release = yield* k
            .releaseStatus(host, version)
            .pipe(
              Effect.mapError(
                (e) =>
                  new StepFailed(
                    `upgrade of ${a.vm} to ${version}: ${e.message}`,
                    `nothing was changed on ${a.vm}; check SSH to ${a.ip}, then run apply again`
                  )
              )
            )
          if (release._tag !== "Published") {
            const setting = version === k3s.version ? `k3s.version ${version}` : `the release ${version}`
            return yield* fail(
              release._tag === "Missing"
                ? `not upgrading ${a.vm}: ${setting} is not a k3s release (${release.url} answers 404 Not Found)${a.resumed ? "" : "; nothing was cordoned"}`
                : `not upgrading ${a.vm}: ${a.ip} cannot download ${setting} (${release.url}: ${release.detail})${a.resumed ? "" : "; nothing was cordoned"}`,
              release._tag === "Missing"
                ? "set k3s.version to a published release (https://github.com/k3s-io/k3s/releases), or use k3s.channel"
                : `check that ${a.vm} reaches https://github.com (install.sh downloads k3s from there), then run apply again`
            )
          }
        }
        // Whose cordon is it? Read now, before the mark: under `homelab-upgrade` (or an unfinished restart's mark) it
        // is ours; otherwise a Node cordoned already (by hand, for maintenance; or so when an earlier run of ours
        // began this upgrade: `homelab-upgrade-keep-cordon`) is someone else's, and stays cordoned.
        const tags = (yield* api.vmConfig(node, a.vmid)).tags
        const keep =
          !tags.includes(UpgradeTag) &&
          !tags.includes(RestartTag) &&
          (yield* k.clusterNodes(server).pipe(
            Effect.map((nodes) => nodes.find((n) => n.name === a.vm)?.unschedulable === true),
            Effect.mapError(
              (e) =>
                new StepFailed(
                  `cannot read k3s Node ${a.vm} before its upgrade: ${e.message}`,
                  "check k3s.server; nothing was changed"
                )
            )
          ))
        const markTag = keep ? UpgradeKeepCordonTag : UpgradeTag
        const hint = `${a.vm} keeps its mark ('${markTag}'); the rest of the rollout stays on its version and the next run resumes (${journal})`
        // Durable intent: the next run knows whether this Node's cordon is ours (to undo) or someone else's (kept).
        yield* marks(a.vmid, [markTag], [keep ? UpgradeTag : UpgradeKeepCordonTag])
        let evicted = 0
        const flagsOnly = a.steps.length === 1 && a.steps[0] === a.from
        const flagSource = a.flagSource ?? k3sFlagSource(k3s, a.role)
        // What the install cannot do to the Node: before it, so that the k3s running now (which sets its labels only
        // as it starts) does not set a removed label again, and so that an interrupted run does it again (its Node's
        // k3s.io/node-args still show the old flags)
        const nodeDone = a.nodeChanges === undefined ? "" : `; on its Node: ${describeNodeChanges(a.nodeChanges)}`
        if (a.nodeChanges !== undefined) {
          yield* progress(`k3s: ${a.vm}'s Node: ${describeNodeChanges(a.nodeChanges)}`)
          yield* k
            .changeNode(server, a.vm, a.nodeChanges)
            .pipe(
              Effect.mapError(
                (e) =>
                  new StepFailed(`${describeNodeChanges(a.nodeChanges as NodeChanges)} on ${a.vm}: ${e.message}`, hint)
              )
            )
        }
        for (const version of a.steps) {
          yield* progress(
            `k3s: ${flagsOnly ? `installing ${version} again on ${a.vm} with ${flagSource}` : `upgrading ${a.vm} to ${version}`}${keep ? " (cordoned before: it stays cordoned)" : ""}`
          )
          const result = yield* k
            .upgrade({
              server,
              host,
              role: a.role,
              version,
              checkRelease: false,
              ...(a.applyFlags === true ? { flags: k3sFlagsFor(k3s, a.role) } : {}),
              drain: { timeout: drainTimeout(k3s) },
              timeouts: { install: timeouts.k3sInstall, ready: timeouts.k3sReady, progressInterval: interval },
              onEvent: k3sProgress
            })
            .pipe(
              Effect.mapError(
                (e) =>
                  new StepFailed(
                    `${flagsOnly ? `install of ${version} with ${flagSource} on ${a.vm}` : `upgrade of ${a.vm} to ${version}`}: ${e.message}`,
                    hint
                  )
              )
            )
          evicted += result.evicted.length
        }
        // Ours: an upgrade that was already done (an interrupted run got that far), or one that found the Node
        // cordoned by that run, leaves it cordoned: uncordon it. Someone else's cordon stays.
        if (!keep) {
          yield* k
            .uncordon(server, a.vm)
            .pipe(Effect.mapError((e) => new StepFailed(`uncordon ${a.vm}: ${e.message}`, hint)))
        }
        yield* marks(a.vmid, [], [UpgradeTag, UpgradeKeepCordonTag])
        const to = a.steps.at(-1)
        const before = tags.includes(UpgradeKeepCordonTag) ? "the run that began this upgrade" : "this run"
        const left = `left cordoned (it was cordoned before ${before})`
        const through = a.steps.length > 1 ? ` through ${a.steps.slice(0, -1).join(", ")}` : ""
        return {
          detail:
            to === undefined
              ? keep
                ? `${a.vm} ${left}; its upgrade was done by an earlier run`
                : `${a.vm} uncordoned (its upgrade was done by an earlier run)`
              : flagsOnly
                ? `${a.vm} runs ${to} with ${flagSource} now (${(a.flagChanges ?? []).join(" ")})${nodeDone}; ${evicted} pod(s) evicted, ${keep ? left : "uncordoned"}`
                : keep
                  ? `${a.vm} upgraded ${a.from} → ${to}${through}; ${left}; ${evicted} pod(s) evicted`
                  : `${a.vm} upgraded ${a.from} → ${to}${through}${nodeDone}; ${evicted} pod(s) evicted, uncordoned`,
          ip: a.ip
        }
      })
    }

    /**
     * Wait for a task that another run (or someone else) started at `startedAt` (PVE's epoch seconds), at most until
     * it has run `timeouts.task` (its time before this run counts): its final status, or none while it still runs.
     */
    function awaitTask(upid: string, startedAt: number, what: string) {
      return Effect.gen(function* () {
        const now = Math.floor((yield* Clock.currentTimeMillis) / 1000)
        const ageMs = Math.max(0, now - startedAt) * 1000
        const left = Duration.millis(Math.max(0, Duration.toMillis(timeouts.task) - ageMs))
        yield* progress(`waiting for ${what}`)
        return yield* waiting(
          what,
          timeouts.task,
          api
            .taskStatus(upid)
            .pipe(
              Effect.repeat({ schedule: taskPollSchedule, until: (s) => s.status === "stopped" }),
              Effect.timeoutOption(left)
            ),
          ageMs
        )
      })
    }

    /** Stop a hung task of ours: `stopHungTask`. */
    function stopHung(upid: string) {
      return stopHungTask(api, upid)
    }

    /**
     * `download-url`, unless a download of the same file already runs on the node (an interrupted or concurrent
     * run's): then that one is waited for, never a second one started beside it. A download still running at
     * `timeouts.task` is hung: its task is stopped (ours, this run's or an earlier one's; someone else's is only
     * reported), and a hung earlier one is followed by a new download.
     */
    function downloadImage(a: DownloadImage) {
      return Effect.gen(function* () {
        const storage = a.volid.split(":")[0] ?? a.image.storage
        const file = `${a.image.filename} to ${storage} on ${a.node}`
        const now = (yield* Clock.currentTimeMillis) / 1000
        const fresh = a.listed === true && options.observedAt !== undefined && now - options.observedAt <= FRESH_SECONDS
        const running: RunningDownload | undefined = fresh
          ? a.running
          : yield* api.nodeTasks(a.node, { type: "download", source: "active" }).pipe(
              during("list the downloads running on the node"),
              Effect.map((tasks) =>
                runningDownloads(tasks, desired.taskUsers ?? []).find((d) => d.file === a.image.filename)
              )
            )
        let earlier = ""
        if (running !== undefined) {
          const { user, ours } = running
          const by = ours ? "an earlier or concurrent run" : user
          const ended = yield* awaitTask(running.upid, running.startedAt, `the download of ${file} (by ${by})`).pipe(
            during(`follow the download task ${running.upid}`)
          )
          if (Option.isSome(ended) && taskWarnings(ended.value.exitstatus ?? "") !== undefined) {
            return { detail: `${a.volid} downloaded by ${by}` }
          }
          if (Option.isNone(ended)) {
            if (!ours) {
              return yield* fail(
                `a download of ${file} started by ${user} still runs after ${seconds(timeouts.task)}; not starting a second one beside it`,
                `wait for it or stop it (task ${running.upid} on ${a.node}), then run apply again`
              )
            }
            yield* progress(`the earlier download of ${file} hung; stopping its task`)
            yield* stopHung(running.upid).pipe(during(`stop the download task ${running.upid}`))
            earlier = "the earlier download hung and was stopped; "
          } else {
            earlier = `the earlier download failed (${ended.value.exitstatus ?? "no exit status"}); `
          }
        }
        yield* progress(`downloading ${a.image.url}`)
        const result = yield* api
          .downloadUrl(
            {
              node: a.node,
              storage: a.image.storage,
              url: a.image.url,
              content: a.image.content,
              filename: a.image.filename,
              checksum: a.image.checksum
            },
            task(`downloading ${a.image.filename}`)
          )
          .pipe(
            Effect.catchReason("ProxmoxError", "TaskFailed", (reason, error) =>
              reason.stillRunning === true
                ? stopHung(reason.upid).pipe(
                    Effect.result,
                    Effect.flatMap((stopped) =>
                      fail(
                        `the download of ${file} did not finish within ${seconds(timeouts.task)}; ${stopped._tag === "Success" ? "stopped it" : `could not stop it (${stopped.failure.reason.message})`}`,
                        `see the task log on ${a.node} (is the image's server slow or stalled?); timeouts.task sets the limit`
                      )
                    )
                  )
                : /^checksum mismatch: /.test(reason.exitstatus)
                  ? fail(...checksumMismatch(a, reason.exitstatus))
                  : Option.match(Option.fromUndefinedOr(downloadFailed(a, reason.exitstatus)), {
                      onNone: () => Effect.fail(error),
                      onSome: (failed) => fail(...failed)
                    })
            ),
            during(`download ${file}`)
          )
        return {
          detail: `${earlier}${a.volid}${a.image.checksum ? " (checksum verified)" : ""}${result.warnings > 0 ? `, ${result.warnings} warning(s)` : ""}`
        }
      })
    }

    function awaitCreate(a: AwaitCreate) {
      return Effect.gen(function* () {
        const what = `the create of VM ${a.vmid} ${a.spec.name} (the task of an earlier or concurrent run)`
        const ended = yield* awaitTask(a.upid, a.startedAt, what).pipe(during(`follow the create task ${a.upid}`))
        if (Option.isNone(ended)) {
          yield* progress(`the create of VM ${a.vmid} hung; stopping its task`)
          yield* stopHung(a.upid).pipe(during(`stop the create task ${a.upid}`))
        }
        const holder = yield* api.vmConfig(a.node, a.vmid).pipe(
          Effect.map((c) => ({ name: c.name, tags: c.tags })),
          Effect.catchReason("ProxmoxError", "NotFound", () => Effect.succeed(undefined)),
          during(`read the config of VM ${a.vmid}`)
        )
        if (holder === undefined) {
          const r = yield* create(a.spec, a.spec.vmidCandidates, false)
          remember(a.spec.name, r.vmid, r.ip)
          return {
            detail: `the earlier create of VM ${a.vmid} ${Option.isNone(ended) ? "hung and was stopped" : "failed"}; VM ${r.vmid} ${a.spec.name} created, running at ${r.ip}${unlike(r.differs)}`,
            ip: r.ip,
            differs: r.differs
          }
        }
        if (holder.name !== a.spec.name || !holder.tags.includes(desired.ownershipTag)) {
          return yield* fail(
            `VMID ${a.vmid} now holds ${holder.name ?? "an unnamed VM"}, not ${a.spec.name}`,
            "run apply again: the next run picks another VMID"
          )
        }
        // A VM still pending is finished here as a `FinishVm` is: that run's create used its homelab.yaml, so the VM
        // is brought in line with this one first (when stopped), then started and compared. One that is not pending
        // was finished by the run that made it.
        const pending = holder.tags.includes(desired.pendingTag)
        if (pending) newInstances.add(a.spec.name)
        const { ip, differs } = pending
          ? yield* finish(a.spec, a.vmid, true)
          : { ip: yield* waitForIp(a.vmid, a.spec.name), differs: [] }
        remember(a.spec.name, a.vmid, ip)
        return {
          detail: `VM ${a.vmid} ${a.spec.name} created by an earlier run, running at ${ip}${unlike(differs)}`,
          ip,
          differs
        }
      })
    }

    function recreate(a: RecreateVm) {
      return Effect.gen(function* () {
        const { vmid, spec } = a
        const [status, config] = yield* Effect.all([api.vmStatus(node, vmid), api.vmConfig(node, vmid)]).pipe(
          during(`read VM ${vmid}`)
        )
        if (config.raw.protection === "1")
          return yield* fail(`VM ${vmid} became protected since the plan; not deleting it`)
        if (!config.tags.includes(desired.ownershipTag))
          return yield* fail(`VM ${vmid} no longer carries '${desired.ownershipTag}'; not deleting it`)
        if (config.name !== spec.name) return yield* fail(`VM ${vmid} is now named ${config.name}; not deleting it`)
        if (status.lock !== undefined && status.lock !== "suspended")
          return yield* fail(`VM ${vmid} got a lock (${status.lock}) since the plan; not deleting it`)
        const k3sServer = a.k3sCleanup === undefined ? undefined : yield* serverOf(a.k3sVia)
        // The quorum guard again, with the cluster as it is now: this server's member goes down with the VM.
        if (a.k3sCleanup === "server" && k3sServer !== undefined && status.status === "running" && !a.resumed) {
          if (Option.isNone(k3sJoin)) return yield* fail("no k3s client in this run", "a bug: please report it")
          yield* progress(`checking etcd's quorum before taking k3s server ${spec.name} down`)
          const verdict = yield* checkQuorumNow(k3sServer, spec.name, "rebuild").pipe(
            Effect.provideService(K3sJoin, k3sJoin.value),
            Effect.mapError(
              (e) => new StepFailed(`could not check etcd's quorum before rebuilding ${spec.name}: ${e.message}`)
            )
          )
          if (!verdict.ok) {
            return yield* fail(
              `not rebuilding k3s server ${spec.name}: ${verdict.reason}`,
              "nothing was changed; bring the other servers back to Ready, then run apply again"
            )
          }
          // a member of its name that no Node owns since the plan: removeServer would refuse once the VM is stopped
          const orphans = orphanMembersOf(verdict.facts, spec.name)
          const orphan = orphans[0]
          if (orphan !== undefined) {
            return yield* fail(
              `not rebuilding k3s server ${spec.name}: ${memberWithoutNode(spec.name, orphans)}; the VM was not stopped`,
              staleMemberHint(spec.name, memberIdHex(orphan.id), k3sServer.host)
            )
          }
          // a learner of its name that no Node owns: its k3s is joining right now (not stale, nothing to remove)
          const joining = joiningMembersOf(verdict.facts, spec.name)
          if (joining.length > 0) {
            return yield* fail(
              `not rebuilding k3s server ${spec.name}: ${memberJoining(spec.name, joining)}; the VM was not stopped`,
              joiningMemberHint(spec.name)
            )
          }
        }
        // Durable intent: from here on, whatever is interrupted, the next run sees a rebuild to finish. Set after the
        // checks above, which change nothing: a refused rebuild leaves the VM as it was (marked, the next run would
        // take up a rebuild it was never asked for, a reprovision say, past the refusal's 'nothing was changed').
        if (!config.tags.includes(RebuildTag)) {
          yield* progress(`marking VM ${vmid} for rebuild ('${RebuildTag}')`)
          yield* api
            .updateVmConfig(node, vmid, { tags: [...config.tags, RebuildTag].sort().join(";") })
            .pipe(during(`mark VM ${vmid} for rebuild`))
        }
        if (status.status === "running") {
          yield* progress(`stopping VM ${vmid}`)
          yield* api.stopVm(node, vmid, { wait: task(`stopping VM ${vmid}`) }).pipe(during(`stop VM ${vmid}`))
        }
        if (a.k3sCleanup !== undefined && k3sServer !== undefined) {
          if (Option.isNone(k3sJoin)) return yield* fail("no k3s client in this run", "a bug: please report it")
          const server = { host: k3sServer.host, port: k3sServer.port, user: k3sServer.user }
          yield* progress(`removing k3s Node ${spec.name} (and its password secret) before the rebuild`)
          const removed =
            a.k3sCleanup === "server"
              ? k3sJoin.value.removeServer({
                  server: k3sServer,
                  node: spec.name,
                  onEvent: k3sProgress
                })
              : k3sJoin.value.cleanupStaleNode(server, spec.name)
          yield* removed.pipe(
            Effect.mapError(
              (e) =>
                new StepFailed(
                  `could not remove k3s Node ${spec.name} before the rebuild: ${e.message}`,
                  `VM ${vmid} stays stopped and marked; the next run retries (check that a k3s server is Ready)`
                )
            )
          )
        }
        yield* progress(`destroying VM ${vmid} (purge)`)
        yield* api
          .destroyVm(node, vmid, { purge: true, wait: task(`destroying VM ${vmid}`) })
          .pipe(during(`destroy VM ${vmid}`))
        const r = yield* create(spec, [vmid, ...spec.vmidCandidates.filter((c) => c !== vmid)], true)
        remember(spec.name, r.vmid, r.ip)
        return {
          detail: `VM ${r.vmid} ${spec.name} recreated, running at ${r.ip}${unlike(r.differs)}`,
          ip: r.ip,
          differs: r.differs
        }
      })
    }

    function k3sProgress(event: K3sJoinEvent): void {
      const e: Effect.Effect<void> | undefined =
        event._tag === "Wait" && !event.done
          ? progress(event.what, { what: event.what, elapsedMs: event.elapsedMs, limitMs: event.limitMs })
          : event._tag === "Step"
            ? progress(`k3s: ${event.step}${event.detail ? ` (${event.detail})` : ""}`)
            : event._tag === "LockWaited"
              ? progress(
                  `k3s: waited ${Math.round(event.waitedMs / 1000)} s for another run's install on ${event.host}`
                )
              : undefined
      if (e !== undefined) Effect.runFork(e)
    }

    function join(a: JoinK3s) {
      return Effect.gen(function* () {
        const k3s = desired.k3s
        if (k3s === undefined || Option.isNone(k3sJoin)) {
          return yield* fail("no k3s client in this run", "a bug: please report it")
        }
        const learned = vms.get(a.vm)
        const vmid = learned?.vmid ?? a.vmid
        const ip = a.ip ?? learned?.ip ?? (vmid === undefined ? undefined : yield* waitForIp(vmid, a.vm))
        if (ip === undefined || vmid === undefined) return yield* fail(`the IP of ${a.vm} is not known`)
        // independent reads, at once: the VM's marks, the user its guest has, the server to join through
        const [config, user, server] = yield* Effect.all(
          [api.vmConfig(node, vmid).pipe(Effect.option), guestUser(a.vm, vmid), serverOf(a.via)],
          { concurrency: "unbounded" }
        )
        const marked = Option.isSome(config) && config.value.tags.includes(RejoinTag)
        const rejoin = a.rejoin || marked
        const member = yield* k3sJoin.value
          .ensureMember({
            server,
            host: { host: ip, port: k3s.vmSshPort, user, nodeName: a.vm, ip },
            role: a.role,
            rebuilt: rejoin,
            newHostKey: newInstances.has(a.vm),
            version: k3s.version,
            flags: k3sFlagsFor(k3s, a.role),
            token: joinTokenOf(k3s.token),
            tokenPassword: tokenPasswordOf(k3s.token),
            ...(k3s.airgap !== undefined ? { airgap: { dir: k3s.airgap } } : {}),
            timeouts: { install: timeouts.k3sInstall, ready: timeouts.k3sReady, progressInterval: interval },
            onEvent: k3sProgress
          })
          .pipe(
            Effect.mapError((e) => {
              if (e.reason._tag === "QuorumAtRisk") {
                // k3s-join's guard kept this server's k3s (and its etcd member) running: this VM's join only
                const refused = rejoinRefusal(a.vm, e.reason)
                return new StepFailed(refused.message, refused.hint)
              }
              if (e.reason._tag === "StaleEtcdMember") {
                // refused before the install: a member no Node owns (the plan did not see it, or it came since)
                return new StepFailed(e.message, staleMemberHint(a.vm, e.reason.memberId, server.host))
              }
              if (e.reason._tag === "DuplicateEtcdMember") {
                // etcd keeps a member named after it: an earlier VM's, or this VM's own before k3s-uninstall.sh ran on
                // it (that deletes the data, not the member): k3s restarts on it every 5 s until the member is removed
                return new StepFailed(
                  e.message,
                  journalFix({ failure: "DuplicateEtcdMember", line: e.reason.line, permanent: true }, a.vm, ip)
                )
              }
              if (e.reason._tag === "EtcdMemberRemoved") {
                // its member removed again after the join restarted k3s for a removal during the join: what removes it
                if (e.reason.afterRestart === true) return new StepFailed(e.message, removedAgainHint(a.vm, ip))
                // k3s started on the data of a member the cluster removed (or, since January 2026, waits for a restart
                // to join again): the same fix as observe's for such a unit
                const failure = e.reason.line.includes("please restart")
                  ? "EtcdMemberRemovedRestart"
                  : "EtcdMemberRemoved"
                return new StepFailed(
                  e.message,
                  journalFix({ failure, line: e.reason.line, permanent: true }, a.vm, ip)
                )
              }
              const unit = a.role === "server" ? "k3s" : "k3s-agent"
              const journal = `\`journalctl -u ${unit}\` on ${ip}`
              return new StepFailed(
                e.message,
                tokenRefusedHint(e, {
                  configured: joinTokenOf(k3s.token) !== undefined,
                  server: server.host,
                  journal
                }) ??
                  joinSshHint(
                    e,
                    { host: ip, port: k3s.vmSshPort, user },
                    {
                      host: server.host,
                      port: server.port ?? 22,
                      user: server.user,
                      configured: k3s.server !== undefined && k3s.server.host === server.host
                    }
                  ) ??
                  `on ${ip}: \`journalctl -u ${unit}\`; check the server ${server.host} and the VM's network`
              )
            })
          )
        // From now on the VM is a member like any other: clear its rebuild mark (read again: its tags may have changed
        // meanwhile). Only a VM with the mark, or one whose tags could not be read, can have it: a VM created by this
        // run gets it when it is created, before its IP.
        if (rejoin || Option.isNone(config)) {
          const fresh = yield* api.vmConfig(node, vmid).pipe(Effect.option)
          if (Option.isSome(fresh) && fresh.value.tags.includes(RejoinTag)) {
            yield* api.updateVmConfig(node, vmid, { tags: fresh.value.tags.filter((t) => t !== RejoinTag).join(";") })
          }
        }
        const as = a.role === "server" ? "a server" : "an agent"
        const cleaned = member.cleanedUp ? ", stale Node and password secret removed first" : ""
        const kept = member.unchanged
        const unit =
          kept === undefined
            ? ""
            : `${kept.unit} ${kept.unitStateBefore === "active" ? "was running" : `was ${kept.unitStateBefore}, started again`}`
        const detail =
          member._tag === "AlreadyMember"
            ? `${a.vm} is a Ready ${a.role}`
            : member.installedBy !== undefined
              ? `${a.vm} was joined as ${as} by another run (${member.installedBy.run}, installed at ${member.installedBy.at}; this run waited ${Math.round(member.installedBy.lockWaitMs / 1000)} s); Ready (${member.version ?? "?"})`
              : kept !== undefined
                ? `${a.vm}: k3s already installed as ${as} with these inputs, not reinstalled; ${unit}; Ready (${member.version ?? "?"})${cleaned}`
                : `${a.vm} joined as ${as} (${member.version ?? "?"})${cleaned}`
        return { detail, ip }
      })
    }
  }

  const describeError = (action: Action, error: StepFailed | ProxmoxError): { error: string; hint?: string } => {
    if (error instanceof ProxmoxStepFailed) {
      const described = describeFailure(action.node, error.step, error.error, endpointsOf(action.node))
      return { error: described.message, hint: described.hint }
    }
    if (error instanceof StepFailed) return { error: error.message, ...(error.hint ? { hint: error.hint } : {}) }
    const described = describeFailure(action.node, describeAction(action), error, endpointsOf(action.node))
    return { error: described.message, hint: described.hint }
  }

  // ---- the DAG of actions
  const results = new Map<string, Deferred.Deferred<ActionOutcome>>()
  for (const action of actions) results.set(action.id, yield* Deferred.make<ActionOutcome>())
  const locks = new Map<string, Semaphore.Semaphore>()
  for (const action of actions) {
    if (action.exclusive !== undefined && !locks.has(action.exclusive))
      locks.set(action.exclusive, yield* Semaphore.make(1))
  }
  const outcomes: Array<ActionOutcome> = []
  /** Per skipped action, the failed action it was skipped for (through the skips between). */
  const rootFailures = new Map<string, ActionOutcome>()
  /** The action of this run that provisions each VM (and sees its IP), by VM name. */
  const vmActionOf = new Map<string, { readonly id: string; readonly vm: string }>()
  for (const action of actions) {
    const vm =
      action._tag === "CreateVm" ||
      action._tag === "RecreateVm" ||
      action._tag === "FinishVm" ||
      action._tag === "AwaitCreate"
        ? action.spec.name
        : undefined
    if (vm !== undefined) vmActionOf.set(vm, { id: action.id, vm })
  }

  const runOne = (action: Action) =>
    Effect.gen(function* () {
      const description = describeAction(action)
      const done = (outcome: ActionOutcome) =>
        Effect.gen(function* () {
          outcomes.push(outcome)
          yield* Deferred.succeed(results.get(action.id) as Deferred.Deferred<ActionOutcome>, outcome)
        })
      // A k3s step waits for its VM's IP, not for the rest of its VM action: that action's outcome counts only when it
      // ends first (failed or skipped before the IP, or not confirmed); once the IP is seen, the join runs whatever the
      // VM action still does (drop the pending mark, compare the VM with homelab.yaml) and however that ends.
      const vmStep = action._tag === "JoinK3s" || action._tag === "InitK3s" ? vmActionOf.get(action.vm) : undefined
      const before = yield* Effect.forEach(
        action.after.flatMap((id) => {
          const d = results.get(id)
          return d === undefined ? [] : [[id, d] as const]
        }),
        ([id, d]) =>
          id === vmStep?.id
            ? Effect.raceFirst(Deferred.await(d), Deferred.await(ipOf(vmStep.vm)).pipe(Effect.as(undefined)))
            : Deferred.await(d),
        { concurrency: "unbounded" }
      ).pipe(Effect.map((outcomes) => outcomes.filter((o) => o !== undefined)))
      // ordered after these, whatever their outcome
      yield* Effect.forEach(
        (action.afterSettled ?? []).flatMap((id) => {
          const d = results.get(id)
          return d === undefined ? [] : [d]
        }),
        (d) => Deferred.await(d),
        { concurrency: "unbounded", discard: true }
      )
      const blocker = before.find((o) => o.status !== "done")
      if (unconfirmed.has(action.id) || blocker?.status === "unconfirmed") {
        const reason = unconfirmed.has(action.id)
          ? "destructive: not confirmed (run with --yes)"
          : `waits for "${describeAction(blocker?.action as Action)}", which was not confirmed`
        yield* emit({ _tag: "ActionSkipped", id: action.id, node: action.node, description, reason, unconfirmed: true })
        return yield* done({ id: action.id, action, status: "unconfirmed", detail: reason })
      }
      if (blocker !== undefined) {
        // The failure it comes from, through the skips between (a rollout's first failure, say): named with its reason,
        // and its fix as this action's, so that a node held back by another says by what and what to do.
        const root = blocker.status === "failed" ? blocker : rootFailures.get(blocker.id)
        if (root !== undefined) rootFailures.set(action.id, root)
        const cause =
          root === undefined
            ? ""
            : root === blocker
              ? `: ${root.detail}`
              : ` (it waits for "${describeAction(root.action)}", which failed: ${root.detail})`
        const reason = `skipped: "${describeAction(blocker.action)}" ${blocker.status === "failed" ? "failed" : "did not run"}${cause}`
        yield* emit({
          _tag: "ActionSkipped",
          id: action.id,
          node: action.node,
          description,
          reason,
          unconfirmed: false
        })
        return yield* done({ id: action.id, action, status: "skipped", detail: reason, hint: root?.hint })
      }
      const lock = action.exclusive === undefined ? undefined : locks.get(action.exclusive)
      const body = Effect.gen(function* () {
        const started = yield* Clock.currentTimeMillis
        yield* emit({ _tag: "ActionStarted", id: action.id, action, description })
        const result = yield* Effect.result(execute(action))
        const ms = (yield* Clock.currentTimeMillis) - started
        if (result._tag === "Success") {
          const { detail, ip, pending, differs } = result.success
          yield* emit({ _tag: "ActionDone", id: action.id, node: action.node, description, detail, ms })
          return yield* done({
            id: action.id,
            action,
            status: "done",
            detail,
            ip,
            ...(pending !== undefined && pending.length > 0 ? { pending } : {}),
            ...(differs !== undefined && differs.length > 0 ? { differs } : {})
          })
        }
        const { error, hint } = describeError(action, result.failure)
        yield* emit({ _tag: "ActionFailed", id: action.id, node: action.node, description, error, hint, ms })
        return yield* done({ id: action.id, action, status: "failed", detail: error, hint })
      })
      yield* lock === undefined ? body : lock.withPermits(1)(body)
    })

  yield* Effect.forEach(actions, runOne, { concurrency: "unbounded", discard: true }).pipe(
    Effect.ensuring(uploads.cleanup)
  )
  const order = new Map(actions.map((a, i) => [a.id, i]))
  return outcomes.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0))
})
