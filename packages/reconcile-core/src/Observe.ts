import { type ClusterNode, K3sJoin } from "@homelab/k3s-join"
import {
  type CloudInitChange,
  type ClusterVm,
  ProxmoxApi,
  type ProxmoxError,
  type VmPending
} from "@homelab/proxmox-client"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import { agentOff } from "./agentOff.js"
import { cicustomVolumes } from "./CicustomPreflight.js"
import type { Desired } from "./Desired.js"
import { describeFailure } from "./describeFailure.js"
import { guestUserOf } from "./GuestUser.js"
import { CloudInitTag } from "./Marks.js"
import type {
  CreateTask,
  K3sFacts,
  NodeDetails,
  NodeProblem,
  Observed,
  ObservedNode,
  ObservedVm,
  VmDetails
} from "./Observed.js"
import { observeK3s, readRemovedMembers } from "./ObserveK3s.js"
import { detailsNeeded, imageVolid, type PlanOptions, RebuildTag, removableVms, vmSpec } from "./Plan.js"
import { resolveNames } from "./resolveNames.js"
import { runningDownloads } from "./runningDownloads.js"
import { smbiosUuid } from "./smbiosUuid.js"
import { driftTargetOf, needsRestart, vmDrift } from "./VmDrift.js"
import { vmidCandidates } from "./VmidCandidates.js"

const GiB = 1024 ** 3

const sizeToGiB = (value: string | undefined): number | undefined => {
  const size = /(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?:,|$)/.exec(value ?? "")
  if (size === null) return undefined
  const unit = { "": 1, K: 1024, M: 1024 ** 2, G: GiB, T: 1024 * GiB }[size[2] ?? ""] ?? 1
  return (Number(size[1]) * unit) / GiB
}

/**
 * Run `f` for each VM, a few at a time per node and every node at once: one round trip of latency for a lab with a
 * VM or a few per node, and never more than `PER_NODE` requests in flight on one node.
 */
const PER_NODE = 4
const perNode = <A extends { readonly node: string }, E, R>(
  items: ReadonlyArray<A>,
  f: (item: A) => Effect.Effect<unknown, E, R>
): Effect.Effect<void, E, R> => {
  const groups = new Map<string, Array<A>>()
  for (const item of items) groups.set(item.node, [...(groups.get(item.node) ?? []), item])
  return Effect.forEach(
    groups.values(),
    (group) => Effect.forEach(group, f, { concurrency: PER_NODE, discard: true }),
    {
      concurrency: "unbounded",
      discard: true
    }
  )
}

/**
 * The IPv4 of a VM from its k3s Node: only when the Node named after the VM is this very VM (its system UUID, which
 * the kubelet reads from the VM's SMBIOS, is the one in the VM's configuration).
 */
const nodeIpv4 = (
  clusterNodes: ReadonlyArray<ClusterNode>,
  name: string | undefined,
  config: VmPending | undefined
): string | undefined => {
  const uuid = smbiosUuid(config)
  const node = clusterNodes.find((n) => n.name === name)
  if (uuid === undefined || node?.systemUUID?.toLowerCase() !== uuid) return undefined
  return node.internalIPs.find((ip) => /^\d{1,3}(\.\d{1,3}){3}$/.test(ip))
}

/**
 * Server VMs of ours a rolling restart may take out of service (`vm.restart: rolling` and a change that waits for a
 * restart): the etcd members are read for the quorum guard when there is one.
 */
const restartCandidates = (
  desired: Desired,
  nodes: ReadonlyMap<string, ObservedNode>,
  vms: ReadonlyArray<ObservedVm>,
  configs: ReadonlyMap<number, VmPending>,
  cloudInit: ReadonlyMap<number, ReadonlyArray<CloudInitChange>>
): ReadonlySet<string> => {
  const names = new Set<string>()
  if (desired.restart !== "rolling") return names
  for (const node of desired.nodes) {
    const observedNode = nodes.get(node.name)
    if (observedNode === undefined) continue
    for (const vm of node.vms.filter((v) => v.role === "server")) {
      const match = vms.find((o) => o.name === vm.name && o.node === node.name)
      const config = match === undefined ? undefined : configs.get(match.vmid)
      if (config === undefined) continue
      const spec = vmSpec(desired, node, observedNode, vm)
      const drift = vmDrift(driftTargetOf(spec, vm), config)
      const held = match === undefined ? 0 : (cloudInit.get(match.vmid)?.length ?? 0)
      if (drift.pending.length > 0 || drift.changes.some(needsRestart) || held > 0) names.add(vm.name)
    }
  }
  return names
}

/** What `observe` fetches beyond the cheap observation. */
export interface ObserveOptions extends Pick<PlanOptions, "only" | "reprovision" | "prune"> {
  /** Details (status, config, agent, IP) of every desired VM, not only of those the plan may act on (`status`). */
  readonly allDetails?: boolean | undefined
  /** Also read the configuration of same-named VMs that are not ours (`adopt` compares them with homelab.yaml). */
  readonly adoption?: boolean | undefined
  /**
   * Read the etcd members whenever the cluster has servers, not only when `observeK3s` sees that the plan needs them
   * (a server it may take out of service, or remove: see `prune` and `owned`).
   */
  readonly readEtcdMembers?: boolean | undefined
  /**
   * Details of every VM of ours on the nodes in scope (`homelab destroy`); the plan may remove each of them, so the
   * etcd members are read when one is a server or may hold a member without a Node (as for `prune`'s orphans).
   */
  readonly owned?: boolean | undefined
  /**
   * Ping the guest agent of every running VM of ours whose config turns it on (`health.agentMissing: recreate`): one
   * request each; where it does not answer, that VM's details and its node's (the preflight of its recreate).
   */
  readonly agentChecks?: boolean | undefined
}

/**
 * Observe the cluster for a plan: one `/cluster/resources` request (nodes, storages, guests), then per selected node
 * the image storage's content, in parallel (and on a node that lacks the image, the downloads running there). Details (bridges, permissions, VM status/config/agent) are fetched only
 * where `detailsNeeded` says the plan may act; with `k3s:`, the cluster's Nodes (one `kubectl get nodes` on the
 * server) and the IP of each running VM of ours; each running VM of ours also has its config read (`GET …/pending`)
 * to compare it with homelab.yaml. A converged lab without k3s costs 1 + (number of nodes) + (number of VMs)
 * requests.
 *
 * One node's failure (both transports down, SSH refused, a listing that fails) is that node's `problem`; the others
 * are observed as usual. Only a `/cluster/resources` that no node answers fails the observation.
 */
export const observe = Effect.fn("observe")(function* (desired: Desired, options: ObserveOptions = {}) {
  const api = yield* ProxmoxApi
  const selected = desired.nodes.filter((n) => options.only === undefined || options.only.includes(n.name))
  const problems = new Map<string, NodeProblem>()
  const problem = (node: string, what: string, error: ProxmoxError): void => {
    if (problems.has(node)) return
    const endpoints = desired.nodes.find((n) => n.name === node)?.endpoints
    const described = describeFailure(node, what, error, endpoints)
    problems.set(node, { code: "node.unreachable", ...described })
  }
  /** Run one node's request; a failure becomes the node's problem and `fallback` is used. */
  const onNode = <A>(node: string, what: string, effect: Effect.Effect<A, ProxmoxError>, fallback: A) =>
    effect.pipe(
      Effect.catch((error: ProxmoxError) =>
        Effect.sync(() => {
          problem(node, what, error)
          return fallback
        })
      )
    )

  // With `k3s.server`, the cluster's Nodes (one `kubectl get nodes` over SSH there) are read alongside, started
  // first: they do not depend on anything Proxmox says, and an SSH handshake takes more round trips than HTTPS. The
  // fiber runs at once up to its first wait (its key and known_hosts reads), ahead of the nodes' HTTPS handshakes.
  const join = yield* Effect.serviceOption(K3sJoin)
  const k3sServer = desired.k3s?.server
  const k3sNodes =
    k3sServer === undefined || Option.isNone(join)
      ? undefined
      : yield* Effect.forkChild(
          join.value.clusterNodes({ host: k3sServer.host, port: k3sServer.port, user: k3sServer.user }),
          { startImmediately: true }
        )
  // Each node's image listing starts at once, alongside /cluster/resources, so a converged lab costs one round trip
  // of latency, not two. A listing whose node turns out offline (or lacks the storage) is interrupted unused.
  const listings = new Map<
    string,
    Fiber.Fiber<Result.Result<ReadonlyArray<{ readonly volid: string }>, ProxmoxError>, never>
  >()
  for (const node of selected) {
    listings.set(
      node.name,
      yield* Effect.forkChild(Effect.result(api.storageContent(node.name, node.image.storage, node.image.content)))
    )
  }
  const resources = yield* api.clusterResources.pipe(
    Effect.onError(() =>
      Effect.andThen(
        Effect.forEach([...listings.values()], Fiber.interrupt, { discard: true }),
        k3sNodes === undefined ? Effect.void : Fiber.interrupt(k3sNodes)
      )
    )
  )

  // A node offline can mean a cluster without quorum (its /etc/pve read-only): only then is /cluster/status read,
  // alongside the rest, so that a lab whose nodes are all up pays nothing for it.
  const quorumStatus = resources.nodes.some((n) => n.status !== "online")
    ? yield* Effect.forkChild(api.clusterStatus.pipe(Effect.option), { startImmediately: true })
    : undefined
  const nodes = new Map<string, ObservedNode>()
  const taskUsers = desired.taskUsers ?? []
  yield* Effect.forEach(
    selected,
    (node) =>
      Effect.gen(function* () {
        const listing = listings.get(node.name) as typeof listings extends Map<string, infer F> ? F : never
        const summary = resources.nodes.find((n) => n.node === node.name)
        if (summary === undefined) return yield* Fiber.interrupt(listing)
        const storages = resources.storages
          .filter((s) => s.node === node.name)
          .map((s) => ({
            storage: s.storage,
            type: s.plugintype ?? "",
            content: s.content,
            shared: s.shared,
            active: s.status === "available",
            enabled: s.status !== "disabled",
            totalBytes: s.maxdisk ?? 0,
            availBytes: Math.max(0, (s.maxdisk ?? 0) - (s.disk ?? 0))
          }))
        const online = summary.status === "online"
        const hasImageStorage = storages.some((s) => s.storage === node.image.storage && s.active)
        let volids: ReadonlyArray<{ readonly volid: string }> = []
        if (online && hasImageStorage) {
          const listed = yield* Fiber.join(listing)
          if (Result.isSuccess(listed)) volids = listed.success
          else problem(node.name, `list ${node.image.storage} (the image storage)`, listed.failure)
        } else {
          yield* Fiber.interrupt(listing)
        }
        const imageVolids = new Set(volids.map((c) => c.volid))
        // A node that lacks the image downloads it: the downloads already running there (an interrupted or
        // concurrent run's) are read now, alongside the rest of the observation, so that the plan says it waits for
        // one, and the download does not list them again.
        const downloads =
          online &&
          hasImageStorage &&
          !problems.has(node.name) &&
          node.image.transfer !== "upload" &&
          !imageVolids.has(imageVolid(node))
            ? yield* api.nodeTasks(node.name, { type: "download", source: "active" }).pipe(
                Effect.map((tasks) => runningDownloads(tasks, taskUsers)),
                Effect.orElseSucceed(() => undefined)
              )
            : undefined
        nodes.set(node.name, {
          name: node.name,
          online,
          cpus: summary.maxcpu ?? 0,
          memoryBytes: summary.maxmem ?? 0,
          storages,
          imageVolids,
          ...(downloads === undefined ? {} : { downloads })
        })
      }),
    { concurrency: "unbounded", discard: true }
  )

  const vms = yield* resolveNames(resources.vms.filter((vm) => !problems.has(vm.node)))
  const toObserved = (vm: ClusterVm): ObservedVm => ({
    vmid: vm.vmid,
    node: vm.node,
    type: vm.type,
    name: vm.name,
    status: vm.status,
    lock: vm.lock,
    tags: vm.tags,
    template: vm.template,
    maxmemBytes: vm.maxmem ?? 0,
    uptimeSeconds: vm.uptime ?? 0
  })
  // VMs on a node that could not be observed are still listed (with what /cluster/resources said): their names
  // stay known, so nothing is planned as if they were missing.
  const unresolved = resources.vms.filter((vm) => problems.has(vm.node))
  let observedVms: Array<ObservedVm> = [...vms, ...unresolved].map(toObserved).sort((a, b) => a.vmid - b.vmid)
  const now = yield* Clock.currentTimeMillis

  // Creates in flight (`lock: create`) on VMIDs a desired VM may take: whose task, running since when. PVE's status
  // cache lags: a lock it still shows may be gone already, so the config is read when no create task runs.
  const createTasks = new Map<number, CreateTask>()
  const candidates = new Set(
    selected.flatMap((n) =>
      n.vms.flatMap((vm) => (vm.vmid !== undefined ? [vm.vmid] : vmidCandidates(vm.name, desired.vmidRange)))
    )
  )
  yield* Effect.forEach(
    observedVms.filter((vm) => vm.lock === "create" && candidates.has(vm.vmid) && !problems.has(vm.node)),
    (vm) =>
      Effect.gen(function* () {
        const tasks = yield* onNode(
          vm.node,
          `list the tasks of VM ${vm.vmid}`,
          api.nodeTasks(vm.node, { vmid: vm.vmid, type: "qmcreate", source: "active" }),
          []
        )
        const running = tasks.find((t) => t.status === undefined || t.status === "RUNNING")
        if (running !== undefined) {
          const user = running.tokenid === undefined ? running.user : `${running.user}!${running.tokenid}`
          createTasks.set(vm.vmid, {
            vmid: vm.vmid,
            node: vm.node,
            upid: running.upid,
            startedAt: running.starttime,
            user,
            ours: taskUsers.includes(user)
          })
          return
        }
        const config = yield* api.vmConfig(vm.node, vm.vmid).pipe(Effect.option)
        if (Option.isNone(config)) {
          observedVms = observedVms.filter((o) => o.vmid !== vm.vmid)
          return
        }
        const fresh = config.value
        observedVms = observedVms.map((o) =>
          o.vmid === vm.vmid
            ? {
                ...o,
                name: fresh.name ?? o.name,
                tags: fresh.tags,
                lock: fresh.raw.lock === undefined || fresh.raw.lock === "" ? undefined : fresh.raw.lock
              }
            : o
        )
      }),
    { concurrency: 8, discard: true }
  )

  const status = quorumStatus === undefined ? undefined : Option.getOrUndefined(yield* Fiber.join(quorumStatus))
  const pveQuorum =
    status === undefined || status.quorate
      ? undefined
      : {
          online: status.nodes.filter((n) => n.online).map((n) => n.name),
          offline: status.nodes.filter((n) => !n.online).map((n) => n.name)
        }
  const base: Observed = {
    ...(pveQuorum === undefined ? {} : { pveQuorum }),
    nodes,
    vms: observedVms,
    vmDetails: new Map(),
    createTasks,
    at: Math.floor(now / 1000),
    pveNodes: resources.nodes.map((n) => n.node)
  }
  const needed = detailsNeeded(desired, base, options)
  const detailNodes = needed.nodes.filter((n) => !problems.has(n))
  // The token's permissions are the cluster's: asked once, alongside the nodes' network configurations. The PVE
  // version is each node's own (they differ while a rolling upgrade is under way, and what a node can do follows its
  // own version): asked of each node alongside its network.
  const versionOf = (name: string) =>
    api.nodeVersion(name).pipe(
      Effect.map((v) => ({ major: Number(v.version.split(".")[0]), version: v.version as string | undefined })),
      Effect.orElseSucceed(() => ({ major: 8, version: undefined }))
    )
  const permissionsOnce = yield* Effect.cached(api.permissions().pipe(Effect.orElseSucceed(() => undefined)))
  const readDetails = (name: string) =>
    Effect.gen(function* () {
      const node = nodes.get(name)
      if (node === undefined) return
      // all at once: the permissions are used only if the node is still on REST after its network read; the CPU
      // models only when a VM of this node names another model than `host` (which a node always has), and a failed
      // read of them leaves the check to PVE
      const cpuTypes = desired.nodes.find((n) => n.name === name)?.vms.some((vm) => vm.cpuType !== "host") === true
      const [bridges, pve, restPermissions, cpuModels] = yield* Effect.all(
        [
          onNode(name, "read the network configuration", api.bridges(name), undefined),
          versionOf(name),
          permissionsOnce,
          cpuTypes
            ? api.cpuModels(name).pipe(
                Effect.map((models) => models.map((m) => m.name)),
                Effect.orElseSucceed(() => undefined)
              )
            : Effect.succeed(undefined)
        ],
        { concurrency: 4 }
      )
      if (bridges === undefined) return
      const permissions = api.transportOf(name) === "rest" ? restPermissions : undefined
      const details: NodeDetails = {
        bridges: bridges.map((b) => ({ name: b.name, active: b.active })),
        pveMajor: pve.major,
        ...(pve.version !== undefined ? { pveVersion: pve.version } : {}),
        ...(permissions !== undefined ? { permissions } : {}),
        ...(cpuModels !== undefined ? { cpuModels } : {})
      }
      nodes.set(name, { ...node, details })
    })
  yield* Effect.forEach(detailNodes, readDetails, { concurrency: "unbounded", discard: true })

  const vmDetails = new Map<number, VmDetails>()
  const ips = new Map<number, string | undefined>()
  const withK3s = desired.k3s !== undefined
  const readVmDetails = ({ node, vmid }: { readonly node: string; readonly vmid: number }) =>
    Effect.gen(function* () {
      const read = yield* onNode(
        node,
        `read VM ${vmid}`,
        Effect.all([api.vmStatus(node, vmid), api.vmConfig(node, vmid)], { concurrency: 2 }),
        undefined
      )
      if (read === undefined) return
      const [status, config] = read
      const running = status.status === "running" && (status.qmpstatus ?? "running") === "running"
      const agentAnswering =
        status.status === "running" && status.agent
          ? yield* api.agentPing(node, vmid).pipe(
              Effect.as(true),
              Effect.catch((_: ProxmoxError) => Effect.succeed(false))
            )
          : undefined
      const ip =
        running && agentAnswering === true && (withK3s || options.allDetails === true)
          ? yield* api.vmIpv4(node, vmid).pipe(Effect.orElseSucceed(() => undefined))
          : undefined
      const ctime = /ctime=(\d+)/.exec(config.raw.meta ?? "")?.[1]
      vmDetails.set(vmid, {
        protection: config.raw.protection === "1",
        agentConfigured: status.agent,
        agentAnswering,
        status: status.status,
        qmpstatus: status.qmpstatus,
        lock: status.lock,
        uptimeSeconds: status.uptime,
        secondsSinceCreation: ctime === undefined ? undefined : Math.max(0, Math.floor(now / 1000) - Number(ctime)),
        diskGiB: sizeToGiB(config.scsi0),
        diskStorage: /^([^:,=/]+):/.exec(config.scsi0 ?? "")?.[1],
        tags: config.tags
      })
      if (running) ips.set(vmid, ip)
    })
  yield* perNode(
    needed.vms.filter((v) => !problems.has(v.node)),
    readVmDetails
  )

  // Drift: the configuration of each running VM of ours that homelab.yaml asks for on its node, one
  // `GET …/pending` each (what runs, what waits for a restart, the digest); with `adoption`, of the same-named VMs
  // that are not ours too. With `vm.cicustom`, the snippets on each node's snippet storages.
  const configs = new Map<number, VmPending>()
  const cloudInit = new Map<number, ReadonlyArray<CloudInitChange>>()
  const wantedOn = new Map(selected.flatMap((n) => n.vms.map((vm) => [vm.name, n.name] as const)))
  // Whether the VM runs, unlocked: by its details when they were read (`/cluster/resources` is PVE's status cache,
  // refreshed by pvestatd every ~10 s: right after a run started or restarted a VM it may still show it stopped, and
  // the details read above say how it is now), else by `/cluster/resources`. A VM the plan judges running has its
  // drift compared, whenever the broadcast comes.
  const runsUnlocked = (vm: ObservedVm): boolean => {
    const details = vmDetails.get(vm.vmid)
    return details === undefined
      ? vm.status === "running" && vm.lock === undefined
      : details.status === "running" && (details.qmpstatus ?? "running") === "running" && details.lock === undefined
  }
  const compared = observedVms.filter(
    (vm) =>
      vm.name !== undefined &&
      wantedOn.get(vm.name) === vm.node &&
      vm.type === "qemu" &&
      !vm.template &&
      !problems.has(vm.node) &&
      (options.adoption === true ||
        (vm.tags.includes(desired.ownershipTag) &&
          runsUnlocked(vm) &&
          !vm.tags.includes(desired.pendingTag) &&
          !vm.tags.includes(RebuildTag)))
  )
  const snippets = new Map<string, Set<string>>()
  const unlisted = new Set<string>()
  const snippetStorages = new Set(
    selected.flatMap((n) =>
      n.vms.flatMap((vm) => cicustomVolumes(vm.cloudInit.cicustom).map(([, volume]) => volume.split(":")[0] ?? ""))
    )
  )
  yield* Effect.all(
    [
      perNode(compared, (vm) =>
        onNode(
          vm.node,
          `read the configuration of VM ${vm.vmid}`,
          Effect.all(
            [
              api.vmPending(vm.node, vm.vmid),
              // only for a VM an earlier run left cloud-init changes on: what its drive does not have yet
              vm.tags.includes(CloudInitTag)
                ? api.cloudInitChanges(vm.node, vm.vmid)
                : Effect.succeed<ReadonlyArray<CloudInitChange> | undefined>(undefined)
            ],
            { concurrency: 2 }
          ),
          undefined
        ).pipe(
          Effect.tap((read) =>
            Effect.sync(() => {
              if (read === undefined) return
              const [config, changes] = read
              configs.set(vm.vmid, config)
              if (changes !== undefined) cloudInit.set(vm.vmid, changes)
            })
          )
        )
      ),
      Effect.forEach(
        selected.flatMap((n) => {
          const observedNode = nodes.get(n.name)
          if (observedNode === undefined || !observedNode.online || problems.has(n.name)) return []
          return observedNode.storages
            .filter((s) => snippetStorages.has(s.storage) && s.active && s.content.includes("snippets"))
            .map((s) => ({ node: n.name, storage: s.storage }))
        }),
        ({ node, storage }) =>
          api.storageContent(node, storage, "snippets").pipe(
            Effect.tap((list) =>
              Effect.sync(() => {
                const set = snippets.get(node) ?? new Set<string>()
                for (const item of list) set.add(item.volid)
                snippets.set(node, set)
              })
            ),
            // not listed: only the storage itself is checked, and PVE names a missing file when the VM starts
            Effect.catch(() =>
              Effect.sync(() => {
                unlisted.add(node)
              })
            )
          ),
        { concurrency: 8, discard: true }
      )
    ],
    { concurrency: 2, discard: true }
  )
  for (const node of unlisted) snippets.delete(node)

  // Drift that attaches a NIC to a bridge (a NIC added or moved, or one PVE holds pending) or changes the CPU type to
  // another model than `host`: the node's bridges and CPU models, so that the plan attaches no NIC to a bridge the node
  // lacks and sets no CPU model it lacks, as a create's preflight does. Nothing more is read when the NICs and the CPU
  // type are as homelab.yaml asks.
  const detailsOn = new Set<string>()
  for (const vm of compared) {
    const config = configs.get(vm.vmid)
    const node = selected.find((n) => n.name === vm.node)
    const observedNode = nodes.get(vm.node)
    const wanted = node?.vms.find((v) => v.name === vm.name)
    if (config === undefined || node === undefined || wanted === undefined || observedNode === undefined) continue
    if (observedNode.details !== undefined || problems.has(vm.node)) continue
    const spec = vmSpec(desired, node, observedNode, wanted)
    const drift = vmDrift(driftTargetOf(spec, wanted), config)
    if (drift.attaches.length > 0 || (wanted.cpuType !== "host" && drift.changes.some((c) => c.field === "cpu")))
      detailsOn.add(vm.node)
  }
  // With `agentChecks` (`health.agentMissing: recreate`): the guest agent of each running VM of ours whose config
  // turns it on is pinged; one that does not answer has its details read (what the plan judges it by) and its node's
  // too (the preflight of its recreate).
  if (options.agentChecks === true)
    yield* perNode(
      compared.filter(
        (vm) =>
          vm.tags.includes(desired.ownershipTag) &&
          vm.status === "running" &&
          !vmDetails.has(vm.vmid) &&
          configs.has(vm.vmid) &&
          agentOff(configs.get(vm.vmid)) === undefined
      ),
      (vm) =>
        api.agentPing(vm.node, vm.vmid).pipe(
          Effect.catch((_: ProxmoxError) =>
            Effect.andThen(
              readVmDetails(vm),
              Effect.sync(() => {
                if (nodes.get(vm.node)?.details === undefined && !problems.has(vm.node)) detailsOn.add(vm.node)
              })
            )
          )
        )
    )
  yield* Effect.forEach([...detailsOn], readDetails, { concurrency: "unbounded", discard: true })

  // Phase 3: the cluster's Nodes, and the IP of each running, healthy-looking VM of ours whose details were not read
  // (membership checks the IP). A VM whose k3s Node is this very VM (the Node's system UUID is the VM's SMBIOS UUID,
  // read with its configuration above) has its IP from the Node: a converged cluster costs no request per VM.
  let k3s: K3sFacts | undefined
  const guestUsers = new Map<number, string>()
  if (desired.k3s !== undefined) {
    for (const [vmid, config] of configs)
      guestUsers.set(vmid, guestUserOf(config.current.ciuser, cloudInit.get(vmid), desired.k3s.vmUser))
    const wanted = new Set(selected.flatMap((n) => n.vms.map((vm) => vm.name)))
    const healthy = observedVms.filter(
      (vm) =>
        vm.name !== undefined &&
        wanted.has(vm.name) &&
        vm.type === "qemu" &&
        !problems.has(vm.node) &&
        !vmDetails.has(vm.vmid) &&
        vm.status === "running" &&
        vm.lock === undefined &&
        vm.tags.includes(desired.ownershipTag) &&
        !vm.tags.includes(desired.pendingTag) &&
        !vm.tags.includes(RebuildTag)
    )
    k3s = yield* observeK3s(desired, {
      vms: observedVms,
      ips,
      detailed: new Set(vmDetails.keys()),
      reprovision: options.reprovision,
      restarting: restartCandidates(desired, nodes, observedVms, configs, cloudInit),
      guestUsers,
      readEtcdMembers: options.readEtcdMembers,
      removing:
        options.owned === true || options.prune === true
          ? removableVms(desired, base, options).flatMap((vm) => (vm.name === undefined ? [] : [vm.name]))
          : [],
      ...(k3sNodes === undefined ? {} : { serverNodes: Fiber.join(k3sNodes) })
    })
    const clusterNodes = k3s?._tag === "Nodes" ? k3s.nodes : []
    // A VM of ours renamed by hand (`renamedVm`): a name of homelab.yaml has no VM, but its Node is in the cluster.
    // The configurations (SMBIOS UUIDs) of the VMs of ours under names homelab.yaml does not ask for are read, so that
    // the plan creates no second machine for that Node. Nothing is read while every such Node has its VM.
    const named = new Set(observedVms.flatMap((vm) => (vm.name === undefined ? [] : [vm.name])))
    if (clusterNodes.some((n) => wanted.has(n.name) && !named.has(n.name) && n.systemUUID !== undefined)) {
      const askedFor = new Set(desired.nodes.flatMap((n) => n.vms.map((vm) => vm.name)))
      yield* perNode(
        observedVms.filter(
          (vm) =>
            vm.name !== undefined &&
            !askedFor.has(vm.name) &&
            vm.type === "qemu" &&
            !vm.template &&
            vm.tags.includes(desired.ownershipTag) &&
            !problems.has(vm.node) &&
            !configs.has(vm.vmid)
        ),
        (vm) =>
          api.vmPending(vm.node, vm.vmid).pipe(
            Effect.tap((config) =>
              Effect.sync(() => {
                configs.set(vm.vmid, config)
              })
            ),
            // not read: the plan cannot tell the VM is that Node's machine, and takes the Node for stale as before
            Effect.orElseSucceed(() => undefined)
          )
      )
    }
    yield* perNode(
      healthy.filter((vm) => !ips.has(vm.vmid)),
      (vm) => {
        const fromNode = nodeIpv4(clusterNodes, vm.name, configs.get(vm.vmid))
        if (fromNode !== undefined)
          return Effect.sync(() => {
            ips.set(vm.vmid, fromNode)
          })
        // an agent off in the config cannot answer: no call (the plan says why there is no IP)
        if (agentOff(configs.get(vm.vmid)) !== undefined) return Effect.void
        return api.vmIpv4(vm.node, vm.vmid).pipe(
          Effect.orElseSucceed(() => undefined),
          Effect.tap((ip) =>
            Effect.sync(() => {
              ips.set(vm.vmid, ip)
            })
          )
        )
      }
    )
    // Server VMs without a Node whose k3s waits for a restart after the cluster removed their etcd member: the plan
    // says that their join restarts it (one SSH command each; none in a converged lab, where every server has a Node)
    if (k3s?._tag === "Nodes") {
      // and server VMs asked to be rebuilt (`homelab reprovision`) that run without a Node: whether a learner of their
      // name is a join going on, which would hold the rebuild back, or stale (one SSH command each, asked for by name)
      const nodeNames = new Set(k3s.nodes.map((n) => n.name))
      const rebuildAsked = observedVms.filter(
        (vm) =>
          vm.name !== undefined &&
          options.reprovision?.includes(vm.name) === true &&
          !healthy.includes(vm) &&
          !nodeNames.has(vm.name) &&
          vm.type === "qemu" &&
          !problems.has(vm.node) &&
          vm.status === "running" &&
          vm.lock === undefined &&
          vm.tags.includes(desired.ownershipTag)
      )
      yield* perNode(
        rebuildAsked.filter((vm) => !ips.has(vm.vmid)),
        (vm) =>
          api.vmIpv4(vm.node, vm.vmid).pipe(
            Effect.orElseSucceed(() => undefined),
            Effect.tap((ip) =>
              Effect.sync(() => {
                ips.set(vm.vmid, ip)
              })
            )
          )
      )
      const { removed, joining, units } = yield* readRemovedMembers(desired, {
        vms: [...healthy, ...rebuildAsked],
        ips,
        nodes: k3s.nodes,
        guestUsers
      })
      if (removed.length > 0) k3s = { ...k3s, removedMembers: removed }
      if (joining.length > 0) k3s = { ...k3s, joiningMembers: joining }
      if (units.length > 0) k3s = { ...k3s, serverUnits: units }
    }
  }

  for (const [name, p] of problems) {
    const node = nodes.get(name)
    if (node !== undefined) nodes.set(name, { ...node, problem: p })
  }
  return {
    ...base,
    vms: observedVms,
    nodes,
    vmDetails,
    ips,
    configs,
    cloudInit,
    snippets,
    k3s,
    ...(desired.k3s === undefined ? {} : { guestUsers })
  } satisfies Observed
})
