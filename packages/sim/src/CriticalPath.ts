import type { SimOperation } from "./Operations.js"

/** One step of a critical path. */
export interface CriticalStep {
  readonly id: number
  /** PVE task type (`download`, `qmcreate`, `resize`, `qmstart`, …), `boot`, or a k3s step */
  readonly operation: string
  readonly node: string
  readonly vmid?: number
  readonly vm?: string
  readonly k3sNode?: string
  /** the PVE task's UPID, when the step is a PVE task (a client waits for it by polling its status) */
  readonly upid?: string
  /** simulated milliseconds (unscaled) */
  readonly simMs: number
  /** real milliseconds at the simulator's time scale */
  readonly realMs: number
  /** `running` when the step had not finished when the path was computed (its time so far, or its due time) */
  readonly status: "running" | "ok"
}

/**
 * The longest chain of simulated durations that the operations since a mark needed, following the physical
 * dependencies between them: the least time any client could have taken for the same operations.
 */
export interface CriticalPath {
  /** the mark the path starts after (0: since the simulator started) */
  readonly since: number
  /** the sum of the steps' simulated durations (unscaled) */
  readonly simMs: number
  /** the same at the simulator's time scale: what a perfect client's wall time would be */
  readonly realMs: number
  readonly timeScale: number
  /** operations that began after the mark (failed ones count as taking no time) */
  readonly operations: number
  /** the chain, first step first */
  readonly steps: ReadonlyArray<CriticalStep>
}

/**
 * The critical path through `operations`: for each operation, its own simulated duration plus the longest path among
 * the operations it needed (those before the mark are taken as done). A failed operation takes no time but still
 * passes on what it waited for.
 */
export const criticalPath = (
  operations: ReadonlyArray<SimOperation>,
  options: { readonly since: number; readonly timeScale: number }
): CriticalPath => {
  const byId = new Map(operations.filter((o) => o.id > options.since).map((o) => [o.id, o]))
  const finish = new Map<number, number>()
  const via = new Map<number, number | undefined>()
  const visiting = new Set<number>()
  const weight = (o: SimOperation) => (o.status === "failed" ? 0 : o.simMs)
  const longest = (id: number): number => {
    const known = finish.get(id)
    if (known !== undefined) return known
    const o = byId.get(id)
    if (o === undefined || visiting.has(id)) return 0
    visiting.add(id)
    let best = 0
    let bestId: number | undefined
    for (const d of o.needs) {
      if (!byId.has(d)) continue
      const f = longest(d)
      if (f > best || (f === best && bestId === undefined)) {
        best = f
        bestId = d
      }
    }
    visiting.delete(id)
    const total = best + weight(o)
    finish.set(id, total)
    via.set(id, bestId)
    return total
  }
  let end: number | undefined
  let total = 0
  for (const id of byId.keys()) {
    const f = longest(id)
    if (end === undefined || f > total) {
      total = f
      end = id
    }
  }
  const chain: Array<SimOperation> = []
  for (let id = end; id !== undefined; id = via.get(id)) {
    const o = byId.get(id)
    if (o === undefined) break
    if (weight(o) > 0 || chain.length === 0) chain.push(o)
  }
  chain.reverse()
  const scaled = (ms: number) => Math.max(0, ms * options.timeScale)
  return {
    since: options.since,
    simMs: total,
    realMs: scaled(total),
    timeScale: options.timeScale,
    operations: byId.size,
    steps: chain
      .filter((o) => weight(o) > 0)
      .map((o) => ({
        id: o.id,
        operation: o.operation,
        node: o.node,
        ...(o.vmid !== undefined ? { vmid: o.vmid } : {}),
        ...(o.vm !== undefined ? { vm: o.vm } : {}),
        ...(o.k3sNode !== undefined ? { k3sNode: o.k3sNode } : {}),
        ...(o.upid !== undefined ? { upid: o.upid } : {}),
        simMs: o.simMs,
        realMs: scaled(o.simMs),
        status: o.status === "running" ? ("running" as const) : ("ok" as const)
      }))
  }
}
