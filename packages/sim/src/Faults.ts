import type { Fault } from "./Scenario.js"

export type { Fault }

/** The active fault set. Queried by the HTTPS API, SSH servers, task runner and guests; changed at runtime. */
export class Faults {
  private list: Array<Fault> = []
  /** how many answers each `responseLost` fault has dropped so far */
  private readonly lost = new WeakMap<Fault, number>()
  private readonly listeners: Array<(added: ReadonlyArray<Fault>, removed: ReadonlyArray<Fault>) => void> = []
  /** callers of `whenCleared`, by the fault they wait on */
  private readonly clearedWaiters = new Map<Fault, Array<() => void>>()

  constructor(initial: ReadonlyArray<Fault> = []) {
    this.list = [...initial]
  }

  all(): ReadonlyArray<Fault> {
    return this.list
  }

  onChange(fn: (added: ReadonlyArray<Fault>, removed: ReadonlyArray<Fault>) => void): void {
    this.listeners.push(fn)
  }

  add(faults: ReadonlyArray<Fault>): void {
    this.list.push(...faults)
    for (const l of this.listeners) l(faults, [])
  }

  /** Remove all faults, or those matching `kind` (and optionally node / vmid). */
  clear(filter?: { kind?: string; node?: string; vmid?: number }): void {
    const keep: Array<Fault> = []
    const removed: Array<Fault> = []
    for (const f of this.list) {
      const match =
        filter === undefined ||
        ((filter.kind === undefined || f.kind === filter.kind) &&
          (filter.node === undefined || ("node" in f && f.node === filter.node)) &&
          (filter.vmid === undefined || ("vmid" in f && f.vmid === filter.vmid)))
      if (match) removed.push(f)
      else keep.push(f)
    }
    this.list = keep
    for (const f of removed) {
      const waiters = this.clearedWaiters.get(f) ?? []
      this.clearedWaiters.delete(f)
      for (const w of waiters) w()
    }
    for (const l of this.listeners) l([], removed)
  }

  /** Resolves once `fault` is no longer listed (at once if it is not). */
  whenCleared(fault: Fault): Promise<void> {
    if (!this.list.includes(fault)) return Promise.resolve()
    return new Promise((resolve) => {
      const waiters = this.clearedWaiters.get(fault) ?? []
      waiters.push(resolve)
      this.clearedWaiters.set(fault, waiters)
    })
  }

  has(kind: Fault["kind"], pred: (f: Fault) => boolean = () => true): boolean {
    return this.list.some((f) => f.kind === kind && pred(f))
  }

  nodeFault(kind: "untrustedCert" | "apiDown" | "sshAuthRefused", node: string): boolean {
    return this.list.some((f) => f.kind === kind && f.node === node)
  }

  proxy596(node: string): string | undefined {
    for (const f of this.list)
      if (f.kind === "proxy596" && f.node === node) return f.message ?? "596 Connection timed out"
    return undefined
  }

  /**
   * Is the answer to this request lost (`responseLost`)? A match counts against the fault's `times`: once it has
   * dropped that many answers it matches no more (it stays listed until cleared).
   */
  responseLost(node: string, method: string, path: string): boolean {
    for (const f of this.list) {
      if (f.kind !== "responseLost" || f.path !== path) continue
      if ((f.node !== undefined && f.node !== node) || (f.method !== undefined && f.method !== method)) continue
      const used = this.lost.get(f) ?? 0
      if (f.times !== undefined && used >= f.times) continue
      this.lost.set(f, used + 1)
      return true
    }
    return false
  }

  /** The `requestHold` fault that holds this API request (a test control), if any. */
  requestHold(node: string, method: string, path: string): Fault | undefined {
    return this.list.find(
      (f) =>
        f.kind === "requestHold" &&
        f.path === path &&
        (f.node === undefined || f.node === node) &&
        (f.method === undefined || f.method === method)
    )
  }

  latency(node: string | undefined, transport: "api" | "ssh" | "guest-ssh"): number {
    let ms = 0
    for (const f of this.list)
      if (
        f.kind === "latency" &&
        (f.node === undefined || f.node === node) &&
        (f.transport === undefined || f.transport === transport)
      )
        ms += f.ms
    return ms
  }

  taskFault(node: string, type: string, vmid: number | undefined): Fault | undefined {
    return this.list.find(
      (f) =>
        (f.kind === "taskFail" || f.kind === "taskHang") &&
        f.taskType === type &&
        (f.node === undefined || f.node === node) &&
        (f.vmid === undefined || f.vmid === vmid)
    )
  }

  /** The `taskHold` fault that holds a task of `type` on `node` (about `vmid`), if any. */
  taskHold(node: string, type: string, vmid: number | undefined): Fault | undefined {
    return this.list.find(
      (f) =>
        f.kind === "taskHold" &&
        f.taskType === type &&
        (f.node === undefined || f.node === node) &&
        (f.vmid === undefined || f.vmid === vmid)
    )
  }

  vmStuck(vmid: number): "paused" | "stopped" | "prelaunch" | undefined {
    for (const f of this.list) if (f.kind === "vmStuck" && f.vmid === vmid) return f.state
    return undefined
  }

  vmFault(kind: "agentNeverStarts" | "guestSshRefused" | "acpiIgnored", vmid: number): boolean {
    return this.list.some((f) => f.kind === kind && f.vmid === vmid)
  }

  storageFull(node: string, storage: string): boolean {
    return this.list.some((f) => f.kind === "storageFull" && f.node === node && f.storage === storage)
  }

  bridgeState(node: string, bridge: string): "missing" | "inactive" | undefined {
    for (const f of this.list) {
      if (f.kind === "bridgeMissing" && f.node === node && f.bridge === bridge) return "missing"
      if (f.kind === "bridgeInactive" && f.node === node && f.bridge === bridge) return "inactive"
    }
    return undefined
  }
}
