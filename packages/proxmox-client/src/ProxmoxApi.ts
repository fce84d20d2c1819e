import type { SshClient } from "@homelab/ssh"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as Semaphore from "effect/Semaphore"
import { ClusterResourceEntries, type ClusterResources, partitionResources } from "./ClusterResources.js"
import { type ClusterStatus, ClusterStatusEntries, clusterStatusOf } from "./ClusterStatus.js"
import { type CpuModel, CpuModel as CpuModelSchema } from "./CpuModel.js"
import { type FallbackTransport, makeFallbackTransport, type TransportKind } from "./FallbackTransport.js"
import {
  discoverIpv4,
  ExecStarted,
  ExecStatus,
  type GuestInterface,
  GuestInterfacesResult,
  type WaitForIpOptions,
  waitForIpv4With
} from "./GuestAgent.js"
import { decodeData, PveInt } from "./internal/decode.js"
import { makeNonIdempotent, makeStartedTask, type TaskMatch, type Verdict } from "./internal/nonIdempotent.js"
import { type Bridge, bridgesOf, type NetworkInterface, NetworkInterface as NetworkInterfaceSchema } from "./Network.js"
import { NodeStatus, NodeSummary, Permissions, PveVersion } from "./Node.js"
import { ProxmoxClientConfig, type ProxmoxClientEvent } from "./ProxmoxClientConfig.js"
import { ApiError, isTransientReason, ProxmoxError, UnexpectedResponse } from "./ProxmoxError.js"
import type { PveParam, PveRequest } from "./PveTransport.js"
import { PveTransport } from "./PveTransport.js"
import { makeRestTransport } from "./RestTransport.js"
import { makeSshTransport } from "./SshTransport.js"
import {
  type DownloadUrlOptions,
  downloadTaskId,
  Storage,
  StorageContent,
  type UploadFileOptions,
  VolumeInfo
} from "./Storage.js"
import {
  makeTaskLogTail,
  makeWaitForTask,
  parseUpid,
  type TaskResult,
  TaskStatus,
  TaskSummary,
  taskPath,
  type WaitOptions
} from "./Task.js"
import type { VmConfig } from "./Vm.js"
import {
  type CloudInitChange,
  CloudInitEntry,
  ClusterVm,
  type CreateVmOptions,
  cloudInitChangesOf,
  createVmParams,
  holdsEdit,
  macOfNet,
  VmConfigFromWire,
  type VmPending,
  VmPendingEntry,
  VmStatus,
  vmPendingOf
} from "./Vm.js"

/**
 * Options of the power actions.
 *
 * @since 0.1.0
 * @category models
 */
export interface PowerOptions {
  /** Seconds PVE waits (shutdown: before giving up or force-stopping). */
  readonly timeout?: number | undefined
  /** Shutdown only: stop the VM when the guest does not power off in time. */
  readonly forceStop?: boolean | undefined
  /** How long to wait for the task. */
  readonly wait?: WaitOptions | undefined
}

/**
 * The typed Proxmox operations, written once over `PveTransport`. Every method decodes PVE's answer with a Schema
 * (quirks normalised) and fails with `ProxmoxError` named after the operation.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProxmoxApiShape {
  /** The pve-manager version of the node whose API answers (`GET /version`). */
  readonly version: Effect.Effect<PveVersion, ProxmoxError>
  /**
   * The pve-manager version `node` runs (`GET /nodes/{node}/version`, proxied there). Each node of a cluster runs its
   * own: they differ while a rolling upgrade is under way.
   */
  readonly nodeVersion: (node: string) => Effect.Effect<PveVersion, ProxmoxError>
  readonly nodes: Effect.Effect<ReadonlyArray<NodeSummary>, ProxmoxError>
  readonly nodeStatus: (node: string) => Effect.Effect<NodeStatus, ProxmoxError>
  /** Every VM and container of the cluster in one request (`/cluster/resources?type=vm`), sorted by vmid. */
  readonly clusterVms: Effect.Effect<ReadonlyArray<ClusterVm>, ProxmoxError>
  /** One unfiltered `GET /cluster/resources`: guests, nodes (capacity) and storages of the whole cluster. */
  readonly clusterResources: Effect.Effect<ClusterResources, ProxmoxError>
  /**
   * `GET /cluster/status`: whether the cluster is quorate, and its members online or not. Without quorum PVE refuses
   * every guest config write (creates, starts, updates, destroys).
   *
   * @since 0.4.0
   */
  readonly clusterStatus: Effect.Effect<ClusterStatus, ProxmoxError>
  readonly nextVmid: Effect.Effect<number, ProxmoxError>
  readonly vmStatus: (node: string, vmid: number) => Effect.Effect<VmStatus, ProxmoxError>
  readonly vmConfig: (node: string, vmid: number) => Effect.Effect<VmConfig, ProxmoxError>
  /**
   * `GET …/pending`: every config key with its current value and what waits for a restart, and the config's digest.
   *
   * @since 0.3.0
   */
  readonly vmPending: (node: string, vmid: number) => Effect.Effect<VmPending, ProxmoxError>
  /**
   * `PUT …/config` (synchronous). `delete` removes keys; `digest` guards against concurrent edits. With a `digest`,
   * a failure that may have reached PVE is sent again only while the config still has that digest; a config that
   * changed and holds the values sent counts as written.
   */
  readonly updateVmConfig: (
    node: string,
    vmid: number,
    params: Readonly<Record<string, PveParam>>,
    options?: { readonly delete?: ReadonlyArray<string> | undefined; readonly digest?: string | undefined }
  ) => Effect.Effect<void, ProxmoxError>
  /**
   * Creates the VM and waits for the `qmcreate` task. After a failure that may have reached PVE, the `qmcreate` task
   * of that VMID it started is waited for; without one it is sent again only when the VM does not exist.
   */
  readonly createVm: (options: CreateVmOptions, wait?: WaitOptions) => Effect.Effect<TaskResult, ProxmoxError>
  /**
   * `PUT …/resize` (`size` like `32G` or `+10G`) and waits for the task (PVE ≥ 8.0 returns one). After a failure that
   * may have reached PVE, its `resize` task is the result; sent again only without one (PVE < 8.0 has none: prefer an
   * absolute size there).
   */
  readonly resizeDisk: (
    node: string,
    vmid: number,
    disk: string,
    size: string,
    wait?: WaitOptions
  ) => Effect.Effect<TaskResult | undefined, ProxmoxError>
  /**
   * `POST …/move_disk`: moves `disk` to `storage` (PVE copies it, with drive-mirror while the VM runs, so the VM keeps
   * running) and waits for the `qmmove` task. `delete` frees the source volume after the copy (else PVE keeps it as
   * `unusedN`); `digest` makes PVE refuse the move when the config changed since it was read. After a failure that may
   * have reached PVE, its `qmmove` task is the result; sent again only without one.
   */
  readonly moveDisk: (
    node: string,
    vmid: number,
    disk: string,
    storage: string,
    options?: {
      readonly delete?: boolean | undefined
      readonly digest?: string | undefined
      readonly wait?: WaitOptions | undefined
    }
  ) => Effect.Effect<TaskResult, ProxmoxError>
  /**
   * `status/start`, then the wait for the `qmstart` task. Like every power action: after a failure that may have reached
   * PVE (a reset or lost answer, a timeout), the task the request started is its result (PVE refuses a second start
   * with `VM 100 already running`); the request is sent again only when there is no such task.
   */
  readonly startVm: (node: string, vmid: number, options?: PowerOptions) => Effect.Effect<TaskResult, ProxmoxError>
  /** `status/resume`: continues a paused or prelaunch VM (QMP `cont`). */
  readonly resumeVm: (node: string, vmid: number, options?: PowerOptions) => Effect.Effect<TaskResult, ProxmoxError>
  readonly stopVm: (node: string, vmid: number, options?: PowerOptions) => Effect.Effect<TaskResult, ProxmoxError>
  readonly shutdownVm: (node: string, vmid: number, options?: PowerOptions) => Effect.Effect<TaskResult, ProxmoxError>
  /**
   * `status/reboot`: a clean shutdown within `timeout` seconds, then PVE starts the VM again (applying its pending
   * settings). The task ends once the VM is down; the start that follows is PVE's own (`qmeventd`), so the VM may
   * still be stopped for a moment when this returns.
   *
   * @since 0.3.0
   */
  readonly rebootVm: (node: string, vmid: number, options?: PowerOptions) => Effect.Effect<TaskResult, ProxmoxError>
  /**
   * `PUT …/cloudinit`: regenerate the VM's cloud-init drive from its config (a running guest reads it at its next
   * boot).
   *
   * @since 0.3.0
   */
  readonly regenerateCloudInit: (node: string, vmid: number) => Effect.Effect<void, ProxmoxError>
  /**
   * `GET …/cloudinit`: the cloud-init settings whose new value the VM's cloud-init drive does not have yet. PVE
   * records them when they change on a running VM and forgets them when the drive is regenerated (at the VM's next
   * start by PVE, or `regenerateCloudInit`); a reboot inside the guest reads the drive it has. Like PVE's own view, it
   * misses an `ipconfigN` changed in place.
   *
   * @since 0.3.0
   */
  readonly cloudInitChanges: (node: string, vmid: number) => Effect.Effect<ReadonlyArray<CloudInitChange>, ProxmoxError>
  /**
   * Destroys a (stopped) VM, with `purge` by default, and waits. After a failure that may have reached PVE, its
   * `qmdestroy` task is the result; without one, a VM already gone counts as destroyed.
   */
  readonly destroyVm: (
    node: string,
    vmid: number,
    options?: { readonly purge?: boolean | undefined; readonly wait?: WaitOptions | undefined }
  ) => Effect.Effect<void, ProxmoxError>
  readonly network: (node: string) => Effect.Effect<ReadonlyArray<NetworkInterface>, ProxmoxError>
  readonly bridges: (node: string) => Effect.Effect<ReadonlyArray<Bridge>, ProxmoxError>
  /** The CPU models a VM on `node` may use (`GET /nodes/{node}/capabilities/qemu/cpu`, the node's architecture). */
  readonly cpuModels: (node: string) => Effect.Effect<ReadonlyArray<CpuModel>, ProxmoxError>
  readonly storages: (node: string) => Effect.Effect<ReadonlyArray<Storage>, ProxmoxError>
  readonly storageContent: (
    node: string,
    storage: string,
    content?: string
  ) => Effect.Effect<ReadonlyArray<StorageContent>, ProxmoxError>
  /**
   * `GET /nodes/{node}/storage/{storage}/content/{volume}`: a volume's path on the node (`local:iso/noble.img` →
   * `/var/lib/vz/template/iso/noble.img`) and size. A volume that does not exist fails (PVE: `500 file_size_info on
   * '<volid>' failed`).
   *
   * @since 0.3.0
   */
  readonly volumeInfo: (node: string, storage: string, volid: string) => Effect.Effect<VolumeInfo, ProxmoxError>
  /**
   * `download-url`, then the wait for the `download` task. After a failure that may have reached PVE, the download of
   * that file name it started is the result; sent again only when there is none (never a second download beside it).
   */
  readonly downloadUrl: (options: DownloadUrlOptions, wait?: WaitOptions) => Effect.Effect<TaskResult, ProxmoxError>
  /**
   * `DELETE /nodes/{node}/storage/{storage}/content/{volume}`: deletes a volume (`local:import/noble.qcow2`) and waits
   * for the `imgdel` task. A volume that does not exist fails with `NotFound`.
   *
   * @since 0.3.0
   */
  readonly deleteVolume: (
    node: string,
    storage: string,
    volid: string,
    wait?: WaitOptions
  ) => Effect.Effect<TaskResult, ProxmoxError>
  /**
   * Streams a local file to a node's storage (`…/upload`, multipart, over REST only: a node on SSH fails with
   * `UnexpectedResponse`), then waits for the `imgcopy` task (which verifies `checksum`). Not retried.
   *
   * @since 0.3.0
   */
  readonly uploadFile: (options: UploadFileOptions, wait?: WaitOptions) => Effect.Effect<TaskResult, ProxmoxError>
  readonly taskStatus: (upid: string) => Effect.Effect<TaskStatus, ProxmoxError>
  /**
   * `GET /nodes/{node}/tasks`: the node's tasks, at most 50, by VMID and type if given. `source` is PVE's: by default
   * (`"archive"`) finished tasks only, the one that ended last first; `"active"` the running ones, in the order they
   * started; `"all"` those, then the finished ones. A running task's `user` is the UPID's, token included
   * (`root@pam!homelab`, no `tokenid`); a finished one's is split into `user` and `tokenid`.
   *
   * @since 0.2.0
   */
  readonly nodeTasks: (
    node: string,
    filter?: {
      readonly vmid?: number | undefined
      readonly type?: string | undefined
      readonly source?: "active" | "archive" | "all" | undefined
    }
  ) => Effect.Effect<ReadonlyArray<TaskSummary>, ProxmoxError>
  /**
   * `DELETE /nodes/{node}/tasks/{upid}`: stops a running task (PVE signals the worker, which cleans up after itself:
   * a stopped `qmcreate` removes the half-made VM).
   *
   * @since 0.2.0
   */
  readonly stopTask: (upid: string) => Effect.Effect<void, ProxmoxError>
  readonly taskLogTail: (upid: string, lines?: number) => Effect.Effect<ReadonlyArray<string>, ProxmoxError>
  readonly waitForTask: (upid: string, options?: WaitOptions) => Effect.Effect<TaskResult, ProxmoxError>
  /** Succeeds when the guest agent answers. */
  readonly agentPing: (node: string, vmid: number) => Effect.Effect<void, ProxmoxError>
  readonly agentInterfaces: (node: string, vmid: number) => Effect.Effect<ReadonlyArray<GuestInterface>, ProxmoxError>
  /** The IPv4 of the NIC whose MAC matches `net0` (see `discoverIpv4`); `undefined` while none is known. */
  readonly vmIpv4: (node: string, vmid: number) => Effect.Effect<string | undefined, ProxmoxError>
  /**
   * Waits until the guest agent reports the IPv4 of `net0`'s NIC: reads the config once (for the MAC), then polls
   * the agent's interfaces from 100 ms, growing to 1 s (`taskPollSchedule`), through the guest's boot (an agent that
   * does not answer yet is waited for). `undefined` when `timeout` (default 5 minutes) passes first; fails when the
   * config cannot be read, and at once where no wait can cure it: the agent may not be read (`PermissionDenied`: the
   * token lacks VM.GuestAgent.Audit on PVE 9, VM.Monitor on PVE 8), or the VM's config has no agent (`ApiError` 500
   * `No QEMU guest agent configured`, PVE's own answer) or disables it (`agent: 0`: QEMU then has no agent channel,
   * and PVE answers `QEMU guest agent is not running` for as long as the VM runs).
   *
   * @since 0.3.0
   */
  readonly waitForIpv4: (
    node: string,
    vmid: number,
    options?: WaitForIpOptions
  ) => Effect.Effect<string | undefined, ProxmoxError>
  /**
   * Starts a command in the guest (`agent/exec`); returns its pid. Never sent a second time after a failure that may
   * have reached PVE (the command may run): that failure is the caller's.
   */
  readonly guestExec: (
    node: string,
    vmid: number,
    command: ReadonlyArray<string>,
    inputData?: string
  ) => Effect.Effect<number, ProxmoxError>
  readonly guestExecStatus: (node: string, vmid: number, pid: number) => Effect.Effect<ExecStatus, ProxmoxError>
  /** `GET /access/permissions` (optionally for one `path`): path → privilege → granted. */
  readonly permissions: (path?: string) => Effect.Effect<Permissions, ProxmoxError>
  /** Which transport a node uses now (`ssh` after a fallback). */
  readonly transportOf: (node: string) => TransportKind
  /** Events emitted so far (fallbacks, insecure TLS). */
  readonly events: () => ReadonlyArray<ProxmoxClientEvent>
}

const vmPath = (node: string, vmid: number) => `/nodes/${node}/qemu/${vmid}`

/**
 * Puts the operation name (and node) on an error coming from the transport, and the transport the node is driven
 * over (`transportOf`, when the transport can tell): a task that failed on a node on SSH failed over SSH.
 */
const naming =
  (transportOf: ((node: string) => TransportKind) | undefined) =>
  (operation: string, node?: string) =>
  <A, R>(effect: Effect.Effect<A, ProxmoxError, R>): Effect.Effect<A, ProxmoxError, R> =>
    effect.pipe(
      Effect.mapError((e) => {
        const on = e.node ?? node
        const transport =
          e.transport ??
          (e.fallbackFrom !== undefined
            ? "ssh"
            : on === undefined || transportOf === undefined
              ? undefined
              : transportOf(on))
        return new ProxmoxError({
          operation,
          ...(on !== undefined ? { node: on } : {}),
          reason: e.reason,
          ...(e.fallbackFrom !== undefined ? { fallbackFrom: e.fallbackFrom } : {}),
          ...(transport !== undefined ? { transport } : {})
        })
      }),
      Effect.withSpan(`ProxmoxApi.${operation}`, { attributes: node === undefined ? {} : { node } })
    )

const UpidOrNull = Schema.NullOr(Schema.String)

/**
 * Builds the operations on top of a transport.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeProxmoxApi = (
  transport: Pick<FallbackTransport, "call"> & Partial<Pick<FallbackTransport, "transportOf" | "events" | "upload">>,
  retries = 4,
  taskTimeout?: Duration.Input,
  maxTasksInFlight?: number
): ProxmoxApiShape => {
  /**
   * Every call that starts a PVE task holds one permit from the call until the task ends (or its wait gives up):
   * never more than `maxTasksInFlight` tasks of this client in flight at once, across every node. And one task at a
   * time on each node (`perNode`: creates, resizes, disk moves, deletes, power actions): PVE takes its storage and
   * config locks for each, and tasks side by side on one node time out on them ("can't lock file … got timeout").
   * Downloads and uploads (network-bound, no allocation until their end) run beside them. The node's turn comes
   * first, then a permit: a task waiting for its node holds none.
   */
  const named = naming(transport.transportOf)
  const limit = maxTasksInFlight === undefined ? undefined : Semaphore.makeUnsafe(Math.max(1, maxTasksInFlight))
  const nodeTurns = new Map<string, Semaphore.Semaphore>()
  const turnOf = (node: string): Semaphore.Semaphore => {
    let turn = nodeTurns.get(node)
    if (turn === undefined) {
      turn = Semaphore.makeUnsafe(1)
      nodeTurns.set(node, turn)
    }
    return turn
  }
  const task = <A, E, R>(
    node: string,
    effect: Effect.Effect<A, E, R>,
    perNode: "one at a time" | "beside the others" = "one at a time"
  ): Effect.Effect<A, E, R> => {
    const limited = limit === undefined ? effect : limit.withPermits(1)(effect)
    return perNode === "one at a time" ? turnOf(node).withPermits(1)(limited) : limited
  }
  const backoff = Schedule.max([
    Schedule.min([Schedule.exponential("200 millis"), Schedule.spaced("2 seconds")]),
    Schedule.recurs(retries)
  ])
  /** Idempotent call: transient failures are retried with bounded exponential backoff. */
  const call = (request: PveRequest): Effect.Effect<unknown, ProxmoxError> =>
    transport
      .call(request)
      .pipe(Effect.retry({ schedule: backoff, while: (e: ProxmoxError) => isTransientReason(e.reason) }))
  const waitForTaskRaw = makeWaitForTask(call)
  const logTail = makeTaskLogTail(call)

  const get = <S extends Schema.Top & { readonly DecodingServices: never }>(
    operation: string,
    node: string | undefined,
    request: PveRequest,
    schema: S,
    expected: string
  ): Effect.Effect<S["Type"], ProxmoxError> =>
    call(request).pipe(Effect.flatMap(decodeData(schema, expected)(operation, node)), named(operation, node))

  const upidOf = (operation: string, node: string) => (data: unknown) =>
    decodeData(UpidOrNull, "a UPID")(operation, node)(data)

  const waitForTask = (upid: string, options?: WaitOptions) =>
    waitForTaskRaw(
      upid,
      options?.timeout === undefined && taskTimeout !== undefined ? { ...options, timeout: taskTimeout } : options
    )

  const vmExists = (vmid: number) =>
    get(
      "clusterVms",
      undefined,
      { method: "GET", path: "/cluster/resources", params: { type: "vm" } },
      Schema.Array(ClusterVm),
      "a list of guests"
    ).pipe(Effect.map((vms) => vms.some((v) => v.vmid === vmid)))

  /** A request that must not take effect twice: sent once, checked after a failure that may have reached PVE. */
  const nonIdempotent = makeNonIdempotent(retries)
  const startedTask = makeStartedTask(call)

  /**
   * Starts a task that must not run twice (a start, a download, a create): after a failure that may have reached PVE,
   * the task the request started is its result (`started` names it); the request is sent again only when there is no
   * such task, else `otherwise` decides (default: send it again). `null` is PVE's answer without a task.
   */
  const startOnce = (
    operation: string,
    node: string,
    request: PveRequest,
    started: Omit<TaskMatch, "node">,
    otherwise: () => Effect.Effect<Verdict<string | null>, ProxmoxError> = () => Effect.succeed("retry")
  ): Effect.Effect<string | null, ProxmoxError> =>
    nonIdempotent(transport.call(request).pipe(Effect.flatMap(upidOf(operation, node))), (sentAtMs) =>
      startedTask({ node, ...started }, sentAtMs).pipe(
        Effect.flatMap((upid) => (upid === undefined ? otherwise() : Effect.succeed({ done: upid })))
      )
    )

  const noUpid = (operation: string, node: string) =>
    Effect.fail(
      new ProxmoxError({ operation, node, reason: new UnexpectedResponse({ expected: "a UPID", detail: "null" }) })
    )

  /** A call that starts a task (`startOnce`), then the wait for it. */
  const runTask = (
    operation: string,
    node: string,
    request: PveRequest,
    started: Omit<TaskMatch, "node">,
    wait?: WaitOptions
  ) =>
    task(
      node,
      startOnce(operation, node, request, started).pipe(
        Effect.flatMap((upid) => (upid === null ? noUpid(operation, node) : waitForTask(upid, wait))),
        named(operation, node)
      ),
      operation === "downloadUrl" ? "beside the others" : "one at a time"
    )

  /** The task types of each power action: PVE's, and the HA manager's where it takes the action over. */
  const powerTasks = {
    start: ["qmstart", "hastart"],
    stop: ["qmstop", "hastop"],
    shutdown: ["qmshutdown", "hastop"],
    resume: ["qmresume"],
    reboot: ["qmreboot"]
  } as const

  const power =
    (action: "start" | "stop" | "shutdown" | "resume" | "reboot") =>
    (node: string, vmid: number, options?: PowerOptions) =>
      runTask(
        `${action}Vm`,
        node,
        {
          method: "POST",
          path: `${vmPath(node, vmid)}/status/${action}`,
          params: {
            timeout: options?.timeout,
            ...(action === "shutdown" && options?.forceStop !== undefined ? { forceStop: options.forceStop } : {})
          }
        },
        { types: powerTasks[action], id: String(vmid) },
        options?.wait
      )

  const agentInterfaces = (node: string, vmid: number) =>
    get(
      "agentInterfaces",
      node,
      { method: "GET", path: `${vmPath(node, vmid)}/agent/network-get-interfaces` },
      GuestInterfacesResult,
      "{ result: [interfaces] }"
    ).pipe(Effect.map((r) => r.result))

  const vmConfig = (node: string, vmid: number) =>
    get("vmConfig", node, { method: "GET", path: `${vmPath(node, vmid)}/config` }, VmConfigFromWire, "a VM config")

  const vmPending = (node: string, vmid: number) =>
    get(
      "vmPending",
      node,
      { method: "GET", path: `${vmPath(node, vmid)}/pending` },
      Schema.Array(VmPendingEntry),
      "a list of config keys"
    ).pipe(Effect.map(vmPendingOf))

  return {
    version: get("version", undefined, { method: "GET", path: "/version" }, PveVersion, "a version object"),
    nodeVersion: (node) =>
      get("nodeVersion", node, { method: "GET", path: `/nodes/${node}/version` }, PveVersion, "a version object"),
    nodes: get("nodes", undefined, { method: "GET", path: "/nodes" }, Schema.Array(NodeSummary), "a node list").pipe(
      Effect.map((nodes) => [...nodes].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)))
    ),
    nodeStatus: (node) =>
      get("nodeStatus", node, { method: "GET", path: `/nodes/${node}/status` }, NodeStatus, "a node status"),
    clusterVms: get(
      "clusterVms",
      undefined,
      { method: "GET", path: "/cluster/resources", params: { type: "vm" } },
      Schema.Array(ClusterVm),
      "a list of guests"
    ).pipe(Effect.map((vms) => [...vms].sort((a, b) => a.vmid - b.vmid))),
    clusterResources: get(
      "clusterResources",
      undefined,
      { method: "GET", path: "/cluster/resources" },
      ClusterResourceEntries,
      "a list of cluster resources"
    ).pipe(Effect.map(partitionResources)),
    clusterStatus: get(
      "clusterStatus",
      undefined,
      { method: "GET", path: "/cluster/status" },
      ClusterStatusEntries,
      "a list of cluster status entries"
    ).pipe(Effect.map(clusterStatusOf)),
    nextVmid: get("nextVmid", undefined, { method: "GET", path: "/cluster/nextid" }, PveInt, "a VMID"),
    vmStatus: (node, vmid) =>
      get("vmStatus", node, { method: "GET", path: `${vmPath(node, vmid)}/status/current` }, VmStatus, "a VM status"),
    vmConfig,
    vmPending,
    updateVmConfig: (node, vmid, params, options) => {
      const deletes = options?.delete ?? []
      const digest = options?.digest
      const request: PveRequest = {
        method: "PUT",
        path: `${vmPath(node, vmid)}/config`,
        params: {
          ...params,
          ...(deletes.length > 0 ? { delete: deletes.join(",") } : {}),
          ...(digest !== undefined ? { digest } : {})
        }
      }
      // Without a digest the change can be sent again as it is; with one, a second send after the first was written
      // is refused (the digest changed): the config says whether it was written.
      const sent =
        digest === undefined
          ? call(request)
          : nonIdempotent(transport.call(request), () =>
              vmPending(node, vmid).pipe(
                Effect.map(
                  (now): Verdict<unknown> =>
                    now.digest === digest ? "retry" : holdsEdit(now, params, deletes) ? { done: null } : "fail"
                )
              )
            )
      return sent.pipe(Effect.asVoid, named("updateVmConfig", node))
    },
    createVm: (options, wait) =>
      task(
        options.node,
        startOnce(
          "createVm",
          options.node,
          {
            method: "POST",
            path: `/nodes/${options.node}/qemu`,
            params: createVmParams(options),
            ...(options.asRoot === true ? { asRoot: true } : {})
          },
          { types: ["qmcreate"], id: String(options.vmid) },
          // a VM with that VMID but no create task of ours: someone else's, or ours on a node clock far behind
          () => vmExists(options.vmid).pipe(Effect.map((exists) => (exists ? "fail" : "retry")))
        ).pipe(
          Effect.flatMap((upid) => (upid === null ? noUpid("createVm", options.node) : waitForTask(upid, wait))),
          named("createVm", options.node),
          // a create as root went over SSH: its task failed there too
          Effect.mapError((e) =>
            options.asRoot === true && e.transport !== "ssh" && e.fallbackFrom === undefined
              ? new ProxmoxError({
                  operation: e.operation,
                  ...(e.node !== undefined ? { node: e.node } : {}),
                  reason: e.reason,
                  transport: "ssh"
                })
              : e
          )
        )
      ),
    resizeDisk: (node, vmid, disk, size, wait) =>
      task(
        node,
        // PVE before 8.0 resizes synchronously (no task to find): a resize sent again there grows a `+10G` twice
        startOnce(
          "resizeDisk",
          node,
          { method: "PUT", path: `${vmPath(node, vmid)}/resize`, params: { disk, size } },
          { types: ["resize"], id: String(vmid) }
        ).pipe(
          Effect.flatMap((upid) => (upid === null ? Effect.succeed(undefined) : waitForTask(upid, wait))),
          named("resizeDisk", node)
        )
      ),
    moveDisk: (node, vmid, disk, storage, options) =>
      runTask(
        "moveDisk",
        node,
        {
          method: "POST",
          path: `${vmPath(node, vmid)}/move_disk`,
          params: {
            disk,
            storage,
            ...(options?.delete === true ? { delete: true } : {}),
            ...(options?.digest !== undefined ? { digest: options.digest } : {})
          }
        },
        { types: ["qmmove"], id: String(vmid) },
        options?.wait
      ),
    startVm: power("start"),
    resumeVm: power("resume"),
    stopVm: power("stop"),
    shutdownVm: power("shutdown"),
    rebootVm: power("reboot"),
    regenerateCloudInit: (node, vmid) =>
      call({ method: "PUT", path: `${vmPath(node, vmid)}/cloudinit` }).pipe(
        Effect.asVoid,
        named("regenerateCloudInit", node)
      ),
    cloudInitChanges: (node, vmid) =>
      get(
        "cloudInitChanges",
        node,
        { method: "GET", path: `${vmPath(node, vmid)}/cloudinit` },
        Schema.Array(CloudInitEntry),
        "a list of cloud-init settings"
      ).pipe(Effect.map(cloudInitChangesOf)),
    destroyVm: (node, vmid, options) =>
      task(
        node,
        startOnce(
          "destroyVm",
          node,
          { method: "DELETE", path: vmPath(node, vmid), params: { purge: options?.purge ?? true } },
          { types: ["qmdestroy"], id: String(vmid) },
          () => vmExists(vmid).pipe(Effect.map((exists) => (exists ? "retry" : { done: null })))
        ).pipe(
          Effect.flatMap((upid) => (upid === null ? Effect.void : Effect.asVoid(waitForTask(upid, options?.wait)))),
          named("destroyVm", node)
        )
      ),
    network: (node) =>
      get(
        "network",
        node,
        { method: "GET", path: `/nodes/${node}/network` },
        Schema.Array(NetworkInterfaceSchema),
        "a list of interfaces"
      ).pipe(Effect.map((l) => [...l].sort((a, b) => (a.iface < b.iface ? -1 : a.iface > b.iface ? 1 : 0)))),
    bridges: (node) =>
      get(
        "bridges",
        node,
        { method: "GET", path: `/nodes/${node}/network` },
        Schema.Array(NetworkInterfaceSchema),
        "a list of interfaces"
      ).pipe(Effect.map(bridgesOf)),
    cpuModels: (node) =>
      get(
        "cpuModels",
        node,
        { method: "GET", path: `/nodes/${node}/capabilities/qemu/cpu` },
        Schema.Array(CpuModelSchema),
        "a list of CPU models"
      ),
    storages: (node) =>
      get("storages", node, { method: "GET", path: `/nodes/${node}/storage` }, Schema.Array(Storage), "storages").pipe(
        Effect.map((l) => [...l].sort((a, b) => (a.storage < b.storage ? -1 : a.storage > b.storage ? 1 : 0)))
      ),
    storageContent: (node, storage, content) =>
      get(
        "storageContent",
        node,
        { method: "GET", path: `/nodes/${node}/storage/${storage}/content`, params: { content } },
        Schema.Array(StorageContent),
        "storage content"
      ).pipe(Effect.map((l) => [...l].sort((a, b) => (a.volid < b.volid ? -1 : a.volid > b.volid ? 1 : 0)))),
    volumeInfo: (node, storage, volid) =>
      get(
        "volumeInfo",
        node,
        { method: "GET", path: `/nodes/${node}/storage/${storage}/content/${volid}` },
        VolumeInfo,
        "volume attributes"
      ),
    downloadUrl: (o, wait) =>
      runTask(
        "downloadUrl",
        o.node,
        {
          method: "POST",
          path: `/nodes/${o.node}/storage/${o.storage}/download-url`,
          params: {
            url: o.url,
            content: o.content,
            filename: o.filename,
            checksum: o.checksum?.value,
            "checksum-algorithm": o.checksum?.algorithm,
            "verify-certificates": o.verifyCertificates
          }
        },
        { types: ["download"], id: downloadTaskId(o.filename) },
        wait
      ),
    // pve-storage's `{storage}/content` takes the rest of the path as the volume id, its `/` included
    // sent again after a reset: a volume the first send deleted is then NotFound, which callers take as gone
    deleteVolume: (node, storage, volid, wait) =>
      task(
        node,
        call({ method: "DELETE", path: `/nodes/${node}/storage/${storage}/content/${volid}` }).pipe(
          Effect.flatMap(upidOf("deleteVolume", node)),
          Effect.flatMap((upid) => (upid === null ? noUpid("deleteVolume", node) : waitForTask(upid, wait))),
          named("deleteVolume", node)
        )
      ),
    uploadFile: (o, wait) => {
      const path = `/nodes/${o.node}/storage/${o.storage}/upload`
      if (transport.upload === undefined) {
        return Effect.fail(
          new ProxmoxError({
            operation: "uploadFile",
            node: o.node,
            reason: new UnexpectedResponse({ expected: "a REST transport", detail: "this transport cannot upload" })
          })
        )
      }
      const fields: Array<readonly [string, string]> = [["content", o.content]]
      if (o.checksum !== undefined)
        fields.push(["checksum-algorithm", o.checksum.algorithm], ["checksum", o.checksum.value])
      return task(
        o.node,
        transport
          .upload({
            path,
            fields,
            file: { name: o.filename, size: o.size, open: o.open },
            onProgress: o.onProgress
          })
          .pipe(
            Effect.flatMap(upidOf("uploadFile", o.node)),
            Effect.flatMap((upid) =>
              upid === null
                ? Effect.fail(
                    new ProxmoxError({
                      operation: "uploadFile",
                      node: o.node,
                      reason: new UnexpectedResponse({ expected: "a UPID", detail: "null" })
                    })
                  )
                : waitForTask(upid, wait)
            ),
            named("uploadFile", o.node)
          ),
        "beside the others"
      )
    },
    taskStatus: (upid) => {
      const node = parseUpid(upid)?.node
      return get("taskStatus", node, { method: "GET", path: `${taskPath(upid)}/status` }, TaskStatus, "a task status")
    },
    nodeTasks: (node, filter) =>
      get(
        "nodeTasks",
        node,
        {
          method: "GET",
          path: `/nodes/${node}/tasks`,
          params: { vmid: filter?.vmid, typefilter: filter?.type, source: filter?.source }
        },
        Schema.Array(TaskSummary),
        "a task list"
      ),
    stopTask: (upid) => {
      const node = parseUpid(upid)?.node
      return call({ method: "DELETE", path: taskPath(upid) }).pipe(Effect.asVoid, named("stopTask", node))
    },
    taskLogTail: (upid, lines) => logTail(upid, lines).pipe(named("taskLogTail", parseUpid(upid)?.node)),
    waitForTask: (upid, options) => waitForTask(upid, options).pipe(named("waitForTask", parseUpid(upid)?.node)),
    agentPing: (node, vmid) =>
      call({ method: "POST", path: `${vmPath(node, vmid)}/agent/ping` }).pipe(Effect.asVoid, named("agentPing", node)),
    agentInterfaces,
    vmIpv4: (node, vmid) =>
      Effect.all([vmConfig(node, vmid), agentInterfaces(node, vmid)], { concurrency: 2 }).pipe(
        Effect.map(([config, nics]) => {
          const mac = config.net0 === undefined ? undefined : macOfNet(config.net0)
          return discoverIpv4(nics, mac)
        }),
        named("vmIpv4", node)
      ),
    waitForIpv4: (node, vmid, options) =>
      vmConfig(node, vmid).pipe(
        Effect.flatMap((config) =>
          config.agent !== true
            ? // no agent channel in QEMU: no address will ever come (until the config changes and the VM restarts)
              Effect.fail(
                new ProxmoxError({
                  operation: "waitForIpv4",
                  reason: new ApiError({
                    status: 500,
                    detail:
                      config.agent === undefined
                        ? "No QEMU guest agent configured"
                        : "QEMU guest agent is not running (the VM's config disables it: agent 0)"
                  })
                })
              )
            : waitForIpv4With(
                agentInterfaces(node, vmid),
                config.net0 === undefined ? undefined : macOfNet(config.net0),
                {
                  ...options,
                  // a token without the agent privilege (VM.GuestAgent.Audit on PVE 9, VM.Monitor on 8) never gets an
                  // IP; an agent removed from the config meanwhile (PVE's answer) neither
                  fatal: (error) =>
                    error.reason._tag === "PermissionDenied" ||
                    (error.reason._tag === "ApiError" && /^No QEMU guest agent configured/.test(error.reason.detail)) ||
                    options?.fatal?.(error) === true
                }
              )
        ),
        named("waitForIpv4", node)
      ),
    // a command that may have started in the guest is not started again: nothing tells it ran (no pid came back)
    guestExec: (node, vmid, command, inputData) =>
      nonIdempotent(
        transport.call({
          method: "POST",
          path: `${vmPath(node, vmid)}/agent/exec`,
          params: { command: [...command], "input-data": inputData }
        }),
        () => Effect.succeed("fail")
      ).pipe(
        Effect.flatMap(decodeData(ExecStarted, "{ pid }")("guestExec", node)),
        Effect.map((r) => r.pid),
        named("guestExec", node)
      ),
    guestExecStatus: (node, vmid, pid) =>
      get(
        "guestExecStatus",
        node,
        { method: "GET", path: `${vmPath(node, vmid)}/agent/exec-status`, params: { pid } },
        ExecStatus,
        "an exec status"
      ),
    permissions: (path) =>
      get(
        "permissions",
        undefined,
        { method: "GET", path: "/access/permissions", params: { path } },
        Permissions,
        "permissions"
      ),
    transportOf: transport.transportOf ?? (() => "rest"),
    events: transport.events ?? (() => [])
  }
}

/**
 * The Proxmox client service.
 *
 * - `layer`: REST first with the per-node SSH fallback (needs `ProxmoxClientConfig` and `SshClient`).
 * - `layerRest`: REST only (no SSH).
 * - `layerSsh`: pvesh over SSH only.
 * - `layerTransport`: over any `PveTransport` (tests).
 *
 * @since 0.1.0
 * @category services
 */
export class ProxmoxApi extends Context.Service<ProxmoxApi, ProxmoxApiShape>()("@homelab/proxmox-client/ProxmoxApi") {
  /**
   * @since 0.1.0
   * @category layers
   */
  static readonly layer: Layer.Layer<ProxmoxApi, never, ProxmoxClientConfig | SshClient> = Layer.effect(
    ProxmoxApi,
    Effect.gen(function* () {
      const config = yield* ProxmoxClientConfig
      const rest = yield* makeRestTransport
      const ssh = yield* makeSshTransport
      return makeProxmoxApi(
        makeFallbackTransport(config, rest, ssh),
        config.retries,
        config.timeouts?.task,
        config.maxTasksInFlight
      )
    })
  )

  /**
   * @since 0.1.0
   * @category layers
   */
  static readonly layerRest: Layer.Layer<ProxmoxApi, never, ProxmoxClientConfig> = Layer.effect(
    ProxmoxApi,
    Effect.gen(function* () {
      const config = yield* ProxmoxClientConfig
      const rest = yield* makeRestTransport
      return makeProxmoxApi(
        { ...rest, transportOf: () => "rest" },
        config.retries,
        config.timeouts?.task,
        config.maxTasksInFlight
      )
    })
  )

  /**
   * @since 0.1.0
   * @category layers
   */
  static readonly layerSsh: Layer.Layer<ProxmoxApi, never, ProxmoxClientConfig | SshClient> = Layer.effect(
    ProxmoxApi,
    Effect.gen(function* () {
      const config = yield* ProxmoxClientConfig
      const ssh = yield* makeSshTransport
      return makeProxmoxApi(
        { ...ssh, transportOf: () => "ssh" },
        config.retries,
        config.timeouts?.task,
        config.maxTasksInFlight
      )
    })
  )

  /**
   * @since 0.1.0
   * @category layers
   */
  static readonly layerTransport: Layer.Layer<ProxmoxApi, never, PveTransport> = Layer.effect(
    ProxmoxApi,
    Effect.gen(function* () {
      const transport = yield* PveTransport
      return makeProxmoxApi(transport)
    })
  )
}
