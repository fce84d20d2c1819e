import type { SimClock } from "./Clock.js"

/**
 * One simulated operation: a PVE task (`download`, `qmcreate`, `resize`, `qmstart`, …), a guest boot (`boot`: from
 * the VM's start until its guest agent reports the IP), or a k3s step (`k3s-init`, `k3s-server-join`,
 * `etcd-promotion`, `k3s-agent-join`, `k3s-restart`, `node-ready`).
 */
export interface SimOperation {
  /** increasing from 1, in the order the operations began */
  readonly id: number
  readonly operation: string
  /** the Proxmox node it ran on (a guest's node for boot and k3s steps) */
  readonly node: string
  readonly vmid?: number
  /** the VM's name (when it has one) */
  readonly vm?: string
  /** the k3s Node name (k3s steps) */
  readonly k3sNode?: string
  readonly upid?: string
  /** simulated milliseconds the operation itself takes (unscaled: what it would take on real hardware) */
  readonly simMs: number
  /** by the simulator's clock (epoch ms) */
  readonly startedAt: number
  /** by the simulator's clock; for a boot or a Node turning Ready, when it is due */
  readonly endedAt?: number
  readonly status: "running" | "ok" | "failed"
  /** the operations it had to wait for (ids), as the real world orders them, not as the client happened to */
  readonly needs: ReadonlyArray<number>
}

interface MutableOperation {
  id: number
  operation: string
  node: string
  vmid: number | undefined
  vm: string | undefined
  k3sNode: string | undefined
  upid: string | undefined
  simMs: number
  startedAt: number
  endedAt: number | undefined
  status: "running" | "ok" | "failed"
  needs: Array<number>
}

/** The handle of one operation while it runs. */
export interface OperationHandle {
  readonly id: number
  /** Count simulated time the operation spends working (not time it spends waiting for another operation). */
  add(simMs: number): void
  /** It had to wait for this operation too (ignored when undefined or itself). */
  need(id: number | undefined): void
  setName(vm: string | undefined): void
  end(ok: boolean): void
}

/** What an operation is, when it begins. */
export interface OperationStart {
  readonly operation: string
  readonly node: string
  readonly vmid?: number | undefined
  readonly vm?: string | undefined
  readonly k3sNode?: string | undefined
  readonly upid?: string | undefined
  readonly needs?: ReadonlyArray<number | undefined> | undefined
  /** a milestone whose duration is known at its start: it is due `simMs` later, unless failed before */
  readonly due?: number | undefined
}

/** Resource name of a volume (a storage shared between nodes holds one volume for all of them). */
export const volumeResource = (
  node: string,
  storage: { readonly id: string; readonly shared: boolean },
  volname: string
) => `${storage.shared ? "*" : node}/${storage.id}:${volname}`

const MAX_OPERATIONS = 100_000

/**
 * The simulator's record of what it simulated: every operation with its simulated duration and the operations it
 * depended on. The dependencies are the physical ones: an operation on a VM after the previous one on it, a VM's boot
 * after its start, a create that imports an image after the download that produced it, a k3s join after its VM's boot
 * and the server it joins, an etcd member added after the previous learner's promotion.
 */
export class Operations {
  private readonly list: Array<MutableOperation> = []
  private seq = 0
  /** the last PVE task on each VM */
  private readonly vmTask = new Map<number, number>()
  /** the last boot of each VM */
  private readonly vmBoot = new Map<number, { id: number; handle: OperationHandle }>()
  /** the operation that produced a resource (volume, k3s server up, etcd promotion of a cluster) */
  private readonly producers = new Map<string, number>()

  /** Called with each operation as it begins (`SimHandle.watch`), before the simulator goes on. */
  onBegin: ((operation: SimOperation) => void) | undefined

  constructor(private readonly clock: SimClock) {}

  /** Id of the last operation that began (0 before any): `criticalPath(since)` looks at later ones. */
  mark(): number {
    return this.seq
  }

  begin(s: OperationStart): OperationHandle {
    const now = this.clock.now()
    const op: MutableOperation = {
      id: ++this.seq,
      operation: s.operation,
      node: s.node,
      vmid: s.vmid,
      vm: s.vm,
      k3sNode: s.k3sNode,
      upid: s.upid,
      simMs: s.due ?? 0,
      startedAt: now,
      endedAt: s.due === undefined ? undefined : now + this.clock.scaled(s.due),
      status: s.due === undefined ? "running" : "ok",
      needs: []
    }
    this.list.push(op)
    if (this.list.length > MAX_OPERATIONS) this.list.splice(0, this.list.length - MAX_OPERATIONS)
    const handle: OperationHandle = {
      id: op.id,
      add: (ms) => {
        if (ms > 0 && Number.isFinite(ms)) op.simMs += ms
      },
      need: (id) => {
        if (id !== undefined && id !== op.id && !op.needs.includes(id)) op.needs.push(id)
      },
      setName: (vm) => {
        if (vm !== undefined) op.vm = vm
      },
      end: (ok) => {
        const now = this.clock.now()
        // a milestone that failed before it was due did not happen; one already reached stays reached
        if (op.endedAt !== undefined && op.status === "ok" && now >= op.endedAt) return
        op.status = ok ? "ok" : "failed"
        op.endedAt = now
      }
    }
    for (const id of s.needs ?? []) handle.need(id)
    this.onBegin?.(view(op, now))
    return handle
  }

  /** A PVE task began: it waits for the previous task on its VM (and, through `need`, for what it uses). */
  beginTask(s: OperationStart): OperationHandle {
    const h = this.begin({
      ...s,
      needs: [...(s.needs ?? []), s.vmid === undefined ? undefined : this.vmTask.get(s.vmid)]
    })
    if (s.vmid !== undefined) this.vmTask.set(s.vmid, h.id)
    return h
  }

  /** A VM's guest began booting (after the task that started it); due when the agent reports the IP. */
  beginBoot(s: { node: string; vmid: number; vm: string | undefined; simMs: number }): void {
    this.vmBoot.get(s.vmid)?.handle.end(false)
    const handle = this.begin({
      operation: "boot",
      node: s.node,
      vmid: s.vmid,
      vm: s.vm,
      due: s.simMs,
      needs: [this.vmTask.get(s.vmid)]
    })
    this.vmBoot.set(s.vmid, { id: handle.id, handle })
  }

  /** The VM stopped: a boot that was not done did not happen. */
  stopBoot(vmid: number): void {
    this.vmBoot.get(vmid)?.handle.end(false)
    this.vmBoot.delete(vmid)
  }

  /** The last boot of a VM (what a guest-side operation on it waited for). */
  lastBoot(vmid: number): number | undefined {
    return this.vmBoot.get(vmid)?.id
  }

  /** The operation that last produced `resource`. */
  producer(resource: string): number | undefined {
    return this.producers.get(resource)
  }

  produce(resource: string, id: number): void {
    this.producers.set(resource, id)
  }

  /** The operations that began after `since` (a `mark()`), oldest first. */
  since(since = 0): ReadonlyArray<SimOperation> {
    const now = this.clock.now()
    return this.list.filter((o) => o.id > since).map((o) => view(o, now))
  }
}

/** An operation as `since` and `onBegin` show it at `now`: a milestone not due yet is still running. */
const view = (o: MutableOperation, now: number): SimOperation => ({
  id: o.id,
  operation: o.operation,
  node: o.node,
  ...(o.vmid !== undefined ? { vmid: o.vmid } : {}),
  ...(o.vm !== undefined ? { vm: o.vm } : {}),
  ...(o.k3sNode !== undefined ? { k3sNode: o.k3sNode } : {}),
  ...(o.upid !== undefined ? { upid: o.upid } : {}),
  simMs: o.simMs,
  startedAt: o.startedAt,
  ...(o.endedAt !== undefined ? { endedAt: o.endedAt } : {}),
  status: o.status === "ok" && o.endedAt !== undefined && o.endedAt > now ? "running" : o.status,
  needs: [...o.needs]
})
