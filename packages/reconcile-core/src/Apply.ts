import { type CreateVmOptions, type IpConfig, ProxmoxApi, ProxmoxError } from "@homelab/proxmox-client"
import { Clock, Deferred, Duration, Effect, Schedule } from "effect"
import { type Action, describeAction, type VmAction, type VmSpec } from "./Action.js"
import type { Desired, DesiredCloudInit } from "./Desired.js"
import { RejoinTag } from "./PlanK3s.js"

/** A step of an action, as it happens: for progress display and `--json` event logs. */
export type ApplyEvent =
  | { readonly _tag: "ActionStarted"; readonly index: number; readonly action: Action; readonly description: string }
  | { readonly _tag: "ActionProgress"; readonly index: number; readonly node: string; readonly step: string }
  | {
      readonly _tag: "ActionDone"
      readonly index: number
      readonly node: string
      readonly description: string
      readonly detail: string
      readonly ms: number
    }
  | {
      readonly _tag: "ActionFailed"
      readonly index: number
      readonly node: string
      readonly description: string
      readonly error: string
      readonly ms: number
    }
  | { readonly _tag: "ActionSkipped"; readonly index: number; readonly node: string; readonly reason: string }

export interface ApplyOptions {
  readonly onEvent?: ((event: ApplyEvent) => Effect.Effect<void>) | undefined
  /** How long to wait for a new VM's guest agent to report an IP. Default 5 minutes. */
  readonly ipTimeout?: Duration.Input | undefined
  /** How long to wait for another run's in-flight create of the same VMID. Default 2 minutes. */
  readonly lockWait?: Duration.Input | undefined
}

export interface ApplyOutcome {
  readonly index: number
  readonly action: Action
  readonly status: "done" | "failed" | "skipped"
  readonly detail: string
  readonly ip?: string | undefined
}

export interface ApplyResult {
  readonly outcomes: ReadonlyArray<ApplyOutcome>
  /** Nodes with a failed action; their later actions were skipped. */
  readonly failedNodes: ReadonlyArray<string>
}

class ApplyFailure extends Error {}

const parseIpConfig = (text: string): IpConfig => {
  const parts = Object.fromEntries(
    text.split(",").map((kv) => {
      const [k, ...v] = kv.split("=")
      return [k?.trim() ?? "", v.join("=").trim()]
    })
  )
  const ip = parts.ip ?? "dhcp"
  return ip === "dhcp" ? { ip: "dhcp" } : { ip, ...(parts.gw ? { gw: parts.gw } : {}) }
}

const createOptions = (
  spec: VmSpec,
  vmid: number,
  cloudInit: DesiredCloudInit,
  markTags: ReadonlyArray<string>
): CreateVmOptions => ({
  node: spec.node,
  vmid,
  name: spec.name,
  cores: spec.cores,
  memory: spec.memoryMiB,
  cpu: spec.cpuType,
  ostype: "l26",
  scsihw: "virtio-scsi-single",
  disks: { scsi0: { storage: spec.storage, importFrom: spec.imageVolid, options: { discard: "on", ssd: "1" } } },
  nets: spec.bridges.map((bridge) => ({ bridge })),
  cloudInit: {
    storage: spec.storage,
    user: cloudInit.user,
    password: cloudInit.password,
    sshKeys: cloudInit.sshKeys,
    ipConfig: [parseIpConfig(cloudInit.ipConfig)],
    nameserver: cloudInit.nameserver,
    searchdomain: cloudInit.searchdomain
  },
  agent: true,
  bootOrder: ["scsi0"],
  serialConsole: true,
  tags: [...new Set([...spec.tags, ...markTags])].sort(),
  description: `Managed by homelab (role: ${spec.role}). Recreated from homelab.yaml when unhealthy; edit the config, not this VM.`
})

/**
 * Execute a plan: nodes in parallel, each node's actions in order. A failed action stops its node (later actions
 * there are skipped) and never the others. Every step is reported through `onEvent`.
 *
 * Safety: before destroying a VM for a recreate it re-reads the VM and refuses if it became protected, lost the
 * ownership tag or got a lock since the plan was made. A create claims a name-derived VMID; losing that claim to a
 * concurrent run that creates the same name counts as done, never as a reason to make a second VM.
 */
export const apply = Effect.fn("apply")(function* (
  actions: ReadonlyArray<VmAction>,
  desired: Desired,
  options: ApplyOptions = {}
) {
  const api = yield* ProxmoxApi
  const emit = options.onEvent ?? (() => Effect.void)
  const ipTimeout = Duration.fromInputUnsafe(options.ipTimeout ?? "5 minutes")
  const lockWait = Duration.fromInputUnsafe(options.lockWait ?? "2 minutes")
  const cloudInitOf = (spec: VmSpec): DesiredCloudInit => {
    const vm = desired.nodes.find((n) => n.name === spec.node)?.vms.find((v) => v.name === spec.name)
    if (vm === undefined) throw new Error(`no desired VM ${spec.name} on ${spec.node}`)
    return vm.cloudInit
  }

  // A shared image storage is downloaded by one node; the other nodes' creates wait for it.
  const imageReady = new Map<string, Deferred.Deferred<void, ApplyFailure>>()
  for (const action of actions) {
    if (action._tag === "DownloadImage") imageReady.set(action.volid, yield* Deferred.make<void, ApplyFailure>())
  }

  const fail = (message: string) => Effect.fail(new ApplyFailure(message))
  const describe = (e: unknown): string =>
    e instanceof ProxmoxError || e instanceof ApplyFailure ? e.message : String(e)

  const waitForIp = (node: string, vmid: number, index: number) =>
    Effect.gen(function* () {
      yield* emit({ _tag: "ActionProgress", index, node, step: `waiting for VM ${vmid}'s guest agent to report an IP` })
      const ip = yield* api.vmIpv4(node, vmid).pipe(
        Effect.catch(() => Effect.succeed(undefined)),
        Effect.repeat({
          schedule: Schedule.spaced("1 second"),
          until: (ip): ip is string => ip !== undefined
        }),
        Effect.timeoutOption(ipTimeout)
      )
      if (ip._tag === "None" || ip.value === undefined) {
        return yield* fail(
          `VM ${vmid} on ${node} did not report an IP within ${Duration.format(ipTimeout)} (is qemu-guest-agent installed in the image?)`
        )
      }
      return ip.value
    })

  /** Resize, start, wait for the IP, then drop the pending tag: the VM is fully provisioned. */
  const finish = (spec: VmSpec, vmid: number, index: number) =>
    Effect.gen(function* () {
      const node = spec.node
      const config = yield* api.vmConfig(node, vmid)
      const size = /(?:^|,)size=(\d+)([KMGT]?)/.exec(config.scsi0 ?? "")
      const unit = { "": 1 / 1024 ** 3, K: 1 / 1024 ** 2, M: 1 / 1024, G: 1, T: 1024 }[size?.[2] ?? ""] ?? 1
      const currentGiB = size === null ? 0 : Number(size[1]) * unit
      if (currentGiB < spec.diskGiB) {
        yield* emit({ _tag: "ActionProgress", index, node, step: `resizing scsi0 to ${spec.diskGiB}G` })
        yield* api.resizeDisk(node, vmid, "scsi0", `${spec.diskGiB}G`)
      }
      const status = yield* api.vmStatus(node, vmid)
      if (status.status === "stopped") {
        yield* emit({ _tag: "ActionProgress", index, node, step: `starting VM ${vmid}` })
        yield* api.startVm(node, vmid)
      }
      const ip = yield* waitForIp(node, vmid, index)
      if (config.tags.includes(desired.pendingTag)) {
        yield* api.updateVmConfig(node, vmid, { tags: config.tags.filter((t) => t !== desired.pendingTag).join(";") })
      }
      return ip
    })

  /** Wait until `vmid` has no `create` lock, then read who holds it (name and tags from its config). */
  const holderOf = (node: string, vmid: number) =>
    Effect.gen(function* () {
      const settled = yield* api.clusterResources.pipe(
        Effect.map((r) => r.vms.find((v) => v.vmid === vmid)),
        Effect.repeat({
          schedule: Schedule.spaced("500 millis"),
          until: (vm) => vm === undefined || vm.lock !== "create"
        }),
        Effect.timeoutOption(lockWait)
      )
      if (settled._tag === "None") {
        return yield* fail(`VMID ${vmid} on ${node} stayed locked (create) for ${Duration.format(lockWait)}`)
      }
      const vm = settled.value
      if (vm === undefined) return undefined
      if (vm.type !== "qemu") return { name: undefined, tags: vm.tags }
      const config = yield* api
        .vmConfig(vm.node, vmid)
        .pipe(Effect.catchReason("ProxmoxError", "NotFound", () => Effect.succeed(undefined)))
      return config === undefined ? undefined : { name: config.name, tags: config.tags }
    })

  // A recreated VM is marked for a k3s rejoin (stale Node and password secret cleanup) until it has rejoined.
  const create = (spec: VmSpec, candidates: ReadonlyArray<number>, index: number, rebuilt = false) =>
    Effect.gen(function* () {
      const pending = imageReady.get(spec.imageVolid)
      if (pending !== undefined) yield* Deferred.await(pending)
      for (const vmid of candidates) {
        yield* emit({ _tag: "ActionProgress", index, node: spec.node, step: `creating VM ${vmid} ${spec.name}` })
        const marks = rebuilt && desired.k3s !== undefined ? [desired.pendingTag, RejoinTag] : [desired.pendingTag]
        const created = yield* api.createVm(createOptions(spec, vmid, cloudInitOf(spec), marks)).pipe(
          Effect.as(true),
          Effect.catchReason("ProxmoxError", "AlreadyExists", () => Effect.succeed(false))
        )
        if (!created) {
          const holder = yield* holderOf(spec.node, vmid)
          if (holder?.name === spec.name && holder.tags.includes(desired.ownershipTag)) {
            return { vmid, ip: undefined, concurrent: true as const }
          }
          continue
        }
        const ip = yield* finish(spec, vmid, index)
        return { vmid, ip, concurrent: false as const }
      }
      return yield* fail(`no free VMID for ${spec.name} among ${candidates.join(", ")}; widen vm.vmidRange`)
    })

  const run = (
    action: VmAction,
    index: number
  ): Effect.Effect<{ detail: string; ip?: string | undefined }, ApplyFailure | ProxmoxError> => {
    switch (action._tag) {
      case "DownloadImage":
        return Effect.gen(function* () {
          yield* emit({ _tag: "ActionProgress", index, node: action.node, step: `downloading ${action.image.url}` })
          const result = yield* api.downloadUrl({
            node: action.node,
            storage: action.image.storage,
            url: action.image.url,
            content: action.image.content,
            filename: action.image.filename,
            checksum: action.image.checksum
          })
          const ready = imageReady.get(action.volid)
          if (ready !== undefined) yield* Deferred.succeed(ready, undefined)
          return {
            detail: `${action.volid}${action.image.checksum ? " (checksum verified)" : ""}${result.warnings > 0 ? `, ${result.warnings} warning(s)` : ""}`
          }
        })
      case "CreateVm":
        return create(action.spec, action.spec.vmidCandidates, index).pipe(
          Effect.map((r) =>
            r.concurrent
              ? { detail: `VM ${r.vmid} ${action.spec.name} was created by a concurrent run; not creating another` }
              : { detail: `VM ${r.vmid} ${action.spec.name} running at ${r.ip}`, ip: r.ip }
          )
        )
      case "RecreateVm":
        return Effect.gen(function* () {
          const { node, vmid, spec } = action
          const [status, config] = yield* Effect.all([api.vmStatus(node, vmid), api.vmConfig(node, vmid)])
          if (config.raw.protection === "1")
            return yield* fail(`VM ${vmid} became protected since the plan; not deleting it`)
          if (!config.tags.includes(desired.ownershipTag))
            return yield* fail(`VM ${vmid} no longer carries '${desired.ownershipTag}'; not deleting it`)
          if (config.name !== spec.name) return yield* fail(`VM ${vmid} is now named ${config.name}; not deleting it`)
          if (status.lock !== undefined && status.lock !== "suspended")
            return yield* fail(`VM ${vmid} got a lock (${status.lock}) since the plan; not deleting it`)
          if (status.status === "running") {
            yield* emit({ _tag: "ActionProgress", index, node, step: `stopping VM ${vmid}` })
            yield* api.stopVm(node, vmid)
          }
          yield* emit({ _tag: "ActionProgress", index, node, step: `destroying VM ${vmid} (purge)` })
          yield* api.destroyVm(node, vmid, { purge: true })
          const r = yield* create(spec, [vmid, ...spec.vmidCandidates.filter((c) => c !== vmid)], index, true)
          return {
            detail: `VM ${r.vmid} ${spec.name} recreated${r.ip ? `, running at ${r.ip}` : ""}`,
            ...(r.ip ? { ip: r.ip } : {})
          }
        })
      case "FinishVm":
        return finish(action.spec, action.vmid, index).pipe(
          Effect.map((ip) => ({ detail: `VM ${action.vmid} ${action.spec.name} finished, running at ${ip}`, ip }))
        )
      case "StartVm":
        return api.startVm(action.node, action.vmid).pipe(Effect.as({ detail: `VM ${action.vmid} started` }))
      case "ResumeVm":
        return api.resumeVm(action.node, action.vmid).pipe(Effect.as({ detail: `VM ${action.vmid} resumed` }))
    }
  }

  const byNode = new Map<string, Array<[VmAction, number]>>()
  actions.forEach((action, index) => {
    const list = byNode.get(action.node) ?? []
    list.push([action, index])
    byNode.set(action.node, list)
  })

  const outcomes: Array<ApplyOutcome> = []
  const failedNodes: Array<string> = []
  yield* Effect.forEach(
    [...byNode.entries()],
    ([node, list]) =>
      Effect.gen(function* () {
        let failed = false
        for (const [action, index] of list) {
          const description = describeAction(action)
          if (failed) {
            const reason = `skipped: an earlier action on ${node} failed`
            outcomes.push({ index, action, status: "skipped", detail: reason })
            yield* emit({ _tag: "ActionSkipped", index, node, reason })
            if (action._tag === "DownloadImage") {
              const ready = imageReady.get(action.volid)
              if (ready)
                yield* Deferred.fail(ready, new ApplyFailure(`the download of ${action.volid} on ${node} was skipped`))
            }
            continue
          }
          const started = yield* Clock.currentTimeMillis
          yield* emit({ _tag: "ActionStarted", index, action, description })
          const result = yield* Effect.result(run(action, index))
          const ms = (yield* Clock.currentTimeMillis) - started
          if (result._tag === "Success") {
            outcomes.push({ index, action, status: "done", detail: result.success.detail, ip: result.success.ip })
            yield* emit({ _tag: "ActionDone", index, node, description, detail: result.success.detail, ms })
          } else {
            failed = true
            failedNodes.push(node)
            const error = describe(result.failure)
            outcomes.push({ index, action, status: "failed", detail: error })
            yield* emit({ _tag: "ActionFailed", index, node, description, error, ms })
            if (action._tag === "DownloadImage") {
              const ready = imageReady.get(action.volid)
              if (ready)
                yield* Deferred.fail(ready, new ApplyFailure(`downloading ${action.volid} on ${node} failed: ${error}`))
            }
          }
        }
      }),
    { concurrency: "unbounded", discard: true }
  )
  return { outcomes: outcomes.sort((a, b) => a.index - b.index), failedNodes } satisfies ApplyResult
})
