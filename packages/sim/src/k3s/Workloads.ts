import { createHash, randomBytes, randomUUID } from "node:crypto"
import { type LabelSelector, matchesSelector } from "./LabelSelector.js"

/**
 * Pods of a simulated k3s cluster, enough for `kubectl drain`: Deployments (with their ReplicaSet) and DaemonSets,
 * PodDisruptionBudgets, a scheduler (fewest pods first, cordoned and not-Ready nodes skipped), eviction with the PDB
 * check of the eviction API, pod garbage collection for deleted Nodes and the 300 s `unreachable` toleration.
 * Evaluated lazily: every read first brings the pods up to the clock.
 */

export interface PdbSpec {
  readonly name: string
  readonly minAvailable?: number | string | undefined
  readonly maxUnavailable?: number | string | undefined
}

export interface Workload {
  readonly kind: "Deployment" | "DaemonSet"
  readonly name: string
  readonly namespace: string
  replicas: number
  readonly labels: Readonly<Record<string, string>>
  /** pods mount an emptyDir volume (drain needs `--delete-emptydir-data`) */
  readonly emptyDir: boolean
  readonly pdb?: PdbSpec | undefined
  /** the ReplicaSet's pod-template hash */
  readonly hash: string
  readonly createdAt: number
}

export interface PodRecord {
  readonly name: string
  readonly namespace: string
  readonly uid: string
  readonly workload: Workload
  node: string | undefined
  readonly createdAt: number
  scheduledAt: number | undefined
  /** marked for deletion (eviction, node gone); gone at `goneAt` */
  deletingAt: number | undefined
  goneAt: number | undefined
  readonly ip: string
}

/** What the pod model needs to know about the cluster's Nodes. */
export interface NodeView {
  readonly name: string
  /** when the Node became Ready and schedulable (uncordoned), or `undefined` while it is not */
  readonly schedulableSince: (now: number) => number | undefined
  /** Ready True at `now` */
  readonly ready: (now: number) => boolean
  /** when the kubelet's status went Unknown, if it did */
  readonly unknownSince: (now: number) => number | undefined
  readonly deleting: boolean
}

export interface WorkloadTimings {
  /** real ms from scheduling to Ready */
  readonly podReadyMs: number
  /** real ms a pod takes to terminate after eviction */
  readonly podTerminateMs: number
  /** real ms of the `node.kubernetes.io/unreachable` NoExecute toleration (300 s) */
  readonly unreachableTolerationMs: number
}

const alnum = (n: number, seed?: string) => {
  const a = "bcdfghjklmnpqrstvwxz2456789"
  const b = seed === undefined ? randomBytes(n) : createHash("sha256").update(seed).digest()
  let s = ""
  for (let i = 0; i < n; i++) s += a[(b[i] as number) % a.length]
  return s
}

export type EvictionResult =
  | { readonly _tag: "evicted" }
  | { readonly _tag: "not-found" }
  | { readonly _tag: "pdb"; readonly pdb: string }

export class Workloads {
  readonly workloads: Array<Workload> = []
  readonly pods = new Map<string, PodRecord>()
  private ipSeq = 2

  constructor(
    private readonly nodes: () => ReadonlyArray<NodeView>,
    private readonly timings: () => WorkloadTimings
  ) {}

  add(w: Omit<Workload, "hash" | "createdAt"> & { readonly createdAt: number }): Workload {
    const existing = this.workloads.find((x) => x.namespace === w.namespace && x.name === w.name)
    if (existing !== undefined) return existing
    const full: Workload = { ...w, hash: alnum(10, `${w.namespace}/${w.name}`) }
    this.workloads.push(full)
    return full
  }

  private newPod(w: Workload, now: number, node?: string): PodRecord {
    const name = w.kind === "Deployment" ? `${w.name}-${w.hash}-${alnum(5)}` : `${w.name}-${alnum(5)}`
    const pod: PodRecord = {
      name,
      namespace: w.namespace,
      uid: randomUUID(),
      workload: w,
      node,
      createdAt: now,
      scheduledAt: node === undefined ? undefined : now,
      deletingAt: undefined,
      goneAt: undefined,
      ip: `10.42.0.${this.ipSeq++ % 250}`
    }
    this.pods.set(`${pod.namespace}/${pod.name}`, pod)
    return pod
  }

  podReady(p: PodRecord, now: number): boolean {
    if (p.node === undefined || p.scheduledAt === undefined || p.deletingAt !== undefined) return false
    const node = this.nodes().find((n) => n.name === p.node)
    return node?.ready(now) === true && now >= p.scheduledAt + this.timings().podReadyMs
  }

  /** Brings pods up to `now`: terminations, pod GC, unreachable evictions, missing replicas, scheduling. */
  reconcile(now: number): void {
    const nodes = this.nodes()
    const t = this.timings()
    for (const [k, p] of this.pods) {
      if (p.goneAt !== undefined && now >= p.goneAt) this.pods.delete(k)
      else if (p.node !== undefined && !nodes.some((n) => n.name === p.node)) this.pods.delete(k)
      else if (p.node !== undefined && p.deletingAt === undefined && p.workload.kind === "Deployment") {
        const since = nodes.find((n) => n.name === p.node)?.unknownSince(now)
        if (since !== undefined && now >= since + t.unreachableTolerationMs) {
          // NoExecute taint: the pod is deleted, but stays Terminating while its kubelet cannot confirm it
          p.deletingAt = since + t.unreachableTolerationMs
          p.goneAt = Number.POSITIVE_INFINITY
        }
      }
    }
    for (const w of this.workloads) {
      if (w.kind === "Deployment") {
        const active = [...this.pods.values()].filter((p) => p.workload === w && p.deletingAt === undefined)
        for (let i = active.length; i < w.replicas; i++) this.newPod(w, now)
      } else {
        for (const n of nodes) {
          if (n.deleting) continue
          const has = [...this.pods.values()].some(
            (p) => p.workload === w && p.node === n.name && p.deletingAt === undefined
          )
          if (!has) this.newPod(w, n.schedulableSince(now) ?? now, n.name)
        }
      }
    }
    // schedule pending pods: fewest pods first; the pod is bound when both it and the node were there
    for (const p of [...this.pods.values()].sort((a, b) => a.createdAt - b.createdAt)) {
      if (p.node !== undefined || p.deletingAt !== undefined) continue
      const candidates = nodes
        .map((n) => ({ n, since: n.schedulableSince(now) }))
        .filter((c): c is { n: NodeView; since: number } => c.since !== undefined && !c.n.deleting)
      if (candidates.length === 0) continue
      const load = (name: string) =>
        [...this.pods.values()].filter((x) => x.node === name && x.deletingAt === undefined).length
      candidates.sort((a, b) => load(a.n.name) - load(b.n.name) || a.n.name.localeCompare(b.n.name))
      const c = candidates[0] as { n: NodeView; since: number }
      p.node = c.n.name
      p.scheduledAt = Math.max(p.createdAt, c.since)
    }
  }

  list(now: number): Array<PodRecord> {
    this.reconcile(now)
    return [...this.pods.values()]
  }

  /** The PDB covering a pod, with its current figures (disruption controller). */
  pdbStatus(
    w: Workload,
    now: number
  ):
    | {
        readonly expected: number
        readonly currentHealthy: number
        readonly desiredHealthy: number
        readonly allowed: number
      }
    | undefined {
    const pdb = w.pdb
    if (pdb === undefined) return undefined
    const pods = [...this.pods.values()].filter((p) => p.workload === w)
    const expected = w.replicas
    const currentHealthy = pods.filter((p) => this.podReady(p, now)).length
    const amount = (v: number | string, roundUp: boolean) =>
      typeof v === "number"
        ? v
        : /%$/.test(v)
          ? (roundUp ? Math.ceil : Math.floor)((Number.parseInt(v, 10) * expected) / 100)
          : Number.parseInt(v, 10)
    const desiredHealthy =
      pdb.minAvailable !== undefined
        ? amount(pdb.minAvailable, true)
        : Math.max(0, expected - amount(pdb.maxUnavailable ?? 0, true))
    return { expected, currentHealthy, desiredHealthy, allowed: Math.max(0, currentHealthy - desiredHealthy) }
  }

  /** The eviction API (policy/v1 Eviction) for one pod. */
  evict(namespace: string, name: string, now: number): EvictionResult {
    this.reconcile(now)
    const p = this.pods.get(`${namespace}/${name}`)
    if (p === undefined) return { _tag: "not-found" }
    if (p.deletingAt !== undefined) return { _tag: "evicted" }
    const status = this.pdbStatus(p.workload, now)
    if (status !== undefined) {
      const healthy = this.podReady(p, now)
      // an unready pod may go while the budget is met (unhealthyPodEvictionPolicy IfHealthyBudget)
      const ok = healthy ? status.allowed > 0 : status.currentHealthy >= status.desiredHealthy
      if (!ok) return { _tag: "pdb", pdb: p.workload.pdb?.name ?? "" }
    }
    p.deletingAt = now
    p.goneAt = now + this.timings().podTerminateMs
    // the ReplicaSet replaces it at once
    if (p.workload.kind === "Deployment") this.newPod(p.workload, now)
    this.reconcile(now)
    return { _tag: "evicted" }
  }

  /** Pods matched by a label selector (for `-l`). */
  static matches(p: PodRecord, selector: LabelSelector): boolean {
    return matchesSelector(selector, podLabels(p))
  }
}

export const podLabels = (p: PodRecord): Record<string, string> =>
  p.workload.kind === "Deployment"
    ? { ...p.workload.labels, "pod-template-hash": p.workload.hash }
    : { ...p.workload.labels, "controller-revision-hash": p.workload.hash.slice(0, 9) }
