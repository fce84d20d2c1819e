import { ProxmoxApi, type ProxmoxError } from "@homelab/proxmox-client"
import { Clock, Effect, Fiber } from "effect"
import type { Desired } from "./Desired.js"
import type { NodeDetails, Observed, ObservedNode, VmDetails } from "./Observed.js"
import { detailsNeeded, type PlanOptions } from "./Plan.js"
import { resolveNames } from "./resolveNames.js"

const GiB = 1024 ** 3

const sizeToGiB = (value: string | undefined): number | undefined => {
  const size = /(?:^|,)size=(\d+(?:\.\d+)?)([KMGT]?)(?:,|$)/.exec(value ?? "")
  if (size === null) return undefined
  const unit = { "": 1, K: 1024, M: 1024 ** 2, G: GiB, T: 1024 * GiB }[size[2] ?? ""] ?? 1
  return (Number(size[1]) * unit) / GiB
}

/**
 * Observe the cluster for a plan: one `/cluster/resources` request (nodes, storages, guests), then per selected node
 * the image storage's content — in parallel. Details (bridges, permissions, VM status/config/agent) are fetched only
 * where `detailsNeeded` says the plan may act, so a converged lab costs 1 + (number of nodes) requests.
 */
export const observe = Effect.fn("observe")(function* (
  desired: Desired,
  options: Pick<PlanOptions, "only" | "reprovision"> = {}
) {
  const api = yield* ProxmoxApi
  const selected = desired.nodes.filter((n) => options.only === undefined || options.only.includes(n.name))
  // Each node's image listing starts at once, alongside /cluster/resources, so a converged lab costs one round trip
  // of latency, not two. A listing whose node turns out offline (or lacks the storage) is interrupted unused.
  const listings = new Map<string, Fiber.Fiber<ReadonlyArray<{ readonly volid: string }> | undefined, never>>()
  for (const node of selected) {
    listings.set(
      node.name,
      yield* Effect.forkChild(
        api
          .storageContent(node.name, node.image.storage, node.image.content)
          .pipe(Effect.catch(() => Effect.succeed(undefined)))
      )
    )
  }
  const resources = yield* api.clusterResources.pipe(
    Effect.onError(() => Effect.forEach([...listings.values()], Fiber.interrupt, { discard: true }))
  )

  const nodes = new Map<string, ObservedNode>()
  yield* Effect.forEach(
    selected,
    (node) =>
      Effect.gen(function* () {
        const listing = listings.get(node.name) as Fiber.Fiber<ReadonlyArray<{ readonly volid: string }> | undefined>
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
        const listed =
          online && hasImageStorage ? yield* Fiber.join(listing) : yield* Fiber.interrupt(listing).pipe(Effect.as([]))
        // A listing that failed on an online node is asked again, so that its error surfaces this time.
        const content = listed ?? (yield* api.storageContent(node.name, node.image.storage, node.image.content))
        nodes.set(node.name, {
          name: node.name,
          online,
          cpus: summary.maxcpu ?? 0,
          memoryBytes: summary.maxmem ?? 0,
          storages,
          imageVolids: new Set(content.map((c) => c.volid))
        })
      }),
    { concurrency: "unbounded", discard: true }
  )

  const vms = yield* resolveNames(resources.vms)

  const base: Observed = {
    nodes,
    vms: vms.map((vm) => ({
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
    })),
    vmDetails: new Map()
  }

  const needed = detailsNeeded(desired, base, options)
  if (needed.nodes.length === 0 && needed.vms.length === 0) return base

  const pveMajor = needed.nodes.length > 0 ? Number((yield* api.version).version.split(".")[0]) : 8
  yield* Effect.forEach(
    needed.nodes,
    (name) =>
      Effect.gen(function* () {
        const node = nodes.get(name)
        if (node === undefined) return
        const bridges = yield* api.bridges(name)
        const permissions =
          api.transportOf(name) === "rest"
            ? yield* api.permissions().pipe(Effect.orElseSucceed(() => undefined))
            : undefined
        const details: NodeDetails = {
          bridges: bridges.map((b) => ({ name: b.name, active: b.active })),
          pveMajor,
          ...(permissions !== undefined ? { permissions } : {})
        }
        nodes.set(name, { ...node, details })
      }),
    { concurrency: "unbounded", discard: true }
  )

  const now = yield* Clock.currentTimeMillis
  const vmDetails = new Map<number, VmDetails>()
  yield* Effect.forEach(
    needed.vms,
    ({ node, vmid }) =>
      Effect.gen(function* () {
        const [status, config] = yield* Effect.all([api.vmStatus(node, vmid), api.vmConfig(node, vmid)], {
          concurrency: 2
        })
        const agentAnswering =
          status.status === "running" && status.agent
            ? yield* api.agentPing(node, vmid).pipe(
                Effect.as(true),
                Effect.catch((_: ProxmoxError) => Effect.succeed(false))
              )
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
          secondsSinceCreation: ctime === undefined ? undefined : Math.max(0, now / 1000 - Number(ctime)),
          diskGiB: sizeToGiB(config.scsi0)
        })
      }),
    { concurrency: 8, discard: true }
  )

  return { ...base, nodes, vmDetails } satisfies Observed
})
