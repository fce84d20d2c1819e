import { randomBytes } from "node:crypto"
import { parse as parseYaml } from "yaml"
import type { SimClock } from "../Clock.js"
import type { Faults } from "../Faults.js"
import type { GuestState } from "../Guest.js"
import type { OperationHandle } from "../Operations.js"
import type { K3sSpec, Scenario } from "../Scenario.js"
import { networkCut, type SimState, type VmEvent, type VmState } from "../SimState.js"
import { criticalMismatch } from "./CriticalArgs.js"
import {
  ETCD_DATA_DIR,
  ETCD_DIR,
  ETCD_REMOVED,
  REMOVED_RESTART,
  removedMemberRejoins,
  TOMBSTONE,
  TOMBSTONE_DETECTED,
  TOMBSTONE_NO_SERVER,
  tombstoneNeedsServer
} from "./EtcdTombstone.js"
import { fileMeta, moveGuestFile, removeGuestFile, writeGuestFile } from "./GuestFs.js"
import {
  type EtcdMember,
  K3sCluster,
  type NodeRecord,
  type NodeTaint,
  type ParsedToken,
  parseToken,
  passwordHash
} from "./K3sCluster.js"
import { firstUndefinedFlag, incorrectUsage } from "./K3sFlags.js"
import { nodeReady } from "./K3sJson.js"
import { binaryVersion, commitOf, K3sOrigin, k3sBinary } from "./K3sOrigin.js"
import { compareReleases, K3sReleases, minorOf } from "./K3sReleases.js"
import { nodeArgs, skippedConfigKeys } from "./NodeConfig.js"
import { type NodeView, Workloads } from "./Workloads.js"

export const BIN = "/usr/local/bin/k3s"
export const TOKEN_DIR = "/var/lib/rancher/k3s/server"
export const TOKEN_FILES = [`${TOKEN_DIR}/token`, `${TOKEN_DIR}/node-token`, `${TOKEN_DIR}/agent-token`]
export const KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
export const CONFIG_YAML = "/etc/rancher/k3s/config.yaml"
export const NODE_PASSWORD = "/etc/rancher/node/password"
export const ETCD_NAME = `${TOKEN_DIR}/db/etcd/name`
/** kine's SQLite database: a server started without --cluster-init, --server or --datastore-endpoint keeps its state here */
export const SQLITE_DB = `${TOKEN_DIR}/db/state.db`
const ROOT_ONLY = { mode: 0o600, owner: "root" } as const

/** One entry of the k3s activity list (`SimHandle.k3sEvents()`, `state().k3s.events`). */
export interface K3sEvent {
  /** epoch ms */
  readonly at: number
  readonly time: string
  readonly kind:
    | "cluster-init"
    | "sqlite-migrated"
    | "server-join-start"
    | "server-join-finish"
    | "server-join-failed"
    | "agent-join-finish"
    | "node-password-rejected"
    | "node-registered"
    | "node-deleted"
    | "node-deleting"
    | "node-finalizers-removed"
    | "secret-deleted"
    | "etcd-member-removed"
    | "etcd-member-remove-refused"
    | "etcd-tombstone-written"
    | "etcd-data-moved-aside"
    | "etcd-quorum-lost"
    | "etcd-quorum-restored"
    | "etcd-cluster-reset"
    | "node-cordoned"
    | "node-uncordoned"
    | "pod-evicted"
    | "drain-start"
    | "drain-finish"
    | "drain-failed"
    | "node-upgraded"
    | "node-downgraded"
    | "version-skew"
  readonly node: string
  readonly vmid?: number
  readonly detail?: string
}

export interface K3sSnapshot {
  readonly version: string
  readonly caHash: string
  readonly nodes: ReadonlyArray<{
    readonly name: string
    readonly role: "server" | "agent"
    readonly ready: "True" | "False" | "Unknown"
    readonly ip: string
    readonly version: string
    readonly vmid: number | null
    readonly createdAt: string
    /** Cordoned (`kubectl cordon`, a drain): `spec.unschedulable`. */
    readonly unschedulable: boolean
    /** Its labels of `--node-label` and `kubectl label` (not those k3s and the kubelet set themselves). */
    readonly labels: Readonly<Record<string, string>>
    /** Its taints of `--node-taint` and `kubectl taint` (`key[=value]:Effect`; not cordon's nor the lifecycle's). */
    readonly taints: ReadonlyArray<string>
  }>
  readonly secrets: ReadonlyArray<{ readonly name: string; readonly createdAt: string }>
  readonly etcdMembers: ReadonlyArray<{
    readonly id: string
    readonly name: string
    readonly peerURL: string
    readonly isLearner: boolean
  }>
  readonly events: ReadonlyArray<K3sEvent>
  /** clusters started by a `--cluster-init`/server install that did not join the scenario's cluster */
  readonly strayClusters: ReadonlyArray<{ readonly caHash: string; readonly nodes: ReadonlyArray<string> }>
}

export interface Installed {
  readonly role: "server" | "agent"
  readonly unit: string
  /** k3s arguments (command word first), as in ExecStart */
  readonly args: ReadonlyArray<string>
}

interface Attempt {
  outcome: "pending" | "ready" | "failed"
  /** the operation the attempt is in (join, then etcd promotion for a server): `state.operations` */
  op?: OperationHandle | undefined
  /** who waits for the outcome (`systemctl start` without `--no-block`): called once it is settled */
  waiters?: Array<() => void> | undefined
  /** the attempt a restart replaced this one with while it was pending: its waiters wait for that one */
  supersededBy?: Attempt | undefined
}

/** Settle a pending attempt and wake whoever waits for it. */
const settle = (attempt: Attempt, outcome: "ready" | "failed"): void => {
  if (attempt.outcome !== "pending") return
  attempt.outcome = outcome
  const waiters = attempt.waiters ?? []
  attempt.waiters = undefined
  for (const w of waiters) w()
}

/** The k3s side of one guest (one VM incarnation). */
export interface K3sHost {
  readonly key: string
  readonly vmid: number
  readonly guest: GuestState
  installed: Installed | undefined
  enabled: boolean
  readonly journal: Array<string>
  /**
   * In a VM of `journalLag`: how many of `journal`'s lines had been written when `journalctl` last ran in the guest
   * (what the next read shows); undefined before its first read.
   */
  journalRead?: number | undefined
  gen: number
  attempt: Attempt | undefined
  cluster: K3sCluster | undefined
  restarts: number
  /** The etcd learner the current attempt added and that is not promoted yet (dropped if the attempt is superseded). */
  learner?: string | undefined
  /** the operation after which its k3s last came up (what a join through this server waited for) */
  upOp?: number | undefined
  /** since when its VM's vCPUs are stopped (paused, suspended, prelaunch): `freeze` */
  frozenAt?: number | undefined
  /** the Nodes whose heartbeat the freeze stopped (resumed on thaw) */
  frozenNodes?: ReadonlyArray<string> | undefined
  /** the simulated time its unpromoted learner still had to go when the freeze held its promotion */
  learnerLeftMs?: number | undefined
  /** counts freezes and thaws: a kubelet status update scheduled at a thaw is void once the guest froze again */
  thaws?: number | undefined
  /**
   * The etcd of this server runs: k3s runs etcd inside its own process, so it stops with k3s (a stop, a restart, a
   * fatal exit) and runs again only once the next start got as far as starting etcd (`etcdMemberHealthy`).
   */
  etcdRunning?: boolean | undefined
}

interface RunConfig {
  readonly role: "server" | "agent"
  readonly args: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
  readonly serverUrl: string | undefined
  readonly token: string | undefined
  readonly nodeName: string
  readonly clusterInit: boolean
  /** `--datastore-endpoint` (env `K3S_DATASTORE_ENDPOINT`, config.yaml `datastore-endpoint`): an external database */
  readonly datastoreEndpoint?: string | undefined
  readonly kubeconfigMode: string | undefined
  /** the labels the Node registers with (`--node-label`, config.yaml `node-label`) */
  readonly labels?: Readonly<Record<string, string>> | undefined
  /** the taints the kubelet registers the Node with (`--node-taint`, config.yaml `node-taint`) */
  readonly taints?: ReadonlyArray<NodeTaint> | undefined
  /** what k3s records in `k3s.io/node-args`: config.yaml merged in, `--flag=value` split, secrets masked */
  readonly nodeArgs?: ReadonlyArray<string> | undefined
}

const hex = (n: number) => randomBytes(n).toString("hex")
/** etcd member names are `<node name>-<8 hex>` */
const isMemberOf = (member: string, nodeName: string) =>
  member.length === nodeName.length + 9 && member.startsWith(`${nodeName}-`) && /^[0-9a-f]{8}$/.test(member.slice(-8))
/** A Go `time.Duration`'s `String()` of `ms` milliseconds: `45s`, `5m0.015s`, `1h2m3s`, `250ms`. */
export const goDuration = (ms: number): string => {
  if (ms === 0) return "0s"
  if (ms < 1000) return `${ms}ms`
  const h = Math.floor(ms / 3_600_000)
  const m = Math.floor((ms % 3_600_000) / 60_000)
  const s = `${((ms % 60_000) / 1000).toFixed(3).replace(/\.?0+$/, "")}s`
  return h > 0 ? `${h}h${m}m${s}` : m > 0 ? `${m}m${s}` : s
}
const flipHash = (h: string) => (h === "" ? "0".repeat(64) : `${h.slice(0, -1)}${h.endsWith("0") ? "1" : "0"}`)

/** `--flag value` / `--flag=value` lookup in k3s args. */
export const flagValue = (args: ReadonlyArray<string>, names: ReadonlyArray<string>): string | undefined => {
  let v: string | undefined
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string
    for (const n of names) {
      if (a === n && i + 1 < args.length) v = args[i + 1]
      else if (a.startsWith(`${n}=`)) v = a.slice(n.length + 1)
    }
  }
  return v
}

/** Every `--node-label k=v` / `--node-label=k=v` in k3s args (repeatable), and config.yaml's `node-label` list. */
export const nodeLabels = (args: ReadonlyArray<string>, fromConfig?: unknown): Record<string, string> => {
  const out: Record<string, string> = {}
  const add = (kv: string) => {
    const i = kv.indexOf("=")
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1)
  }
  for (const l of Array.isArray(fromConfig) ? fromConfig : typeof fromConfig === "string" ? [fromConfig] : [])
    if (typeof l === "string") add(l)
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string
    if (a === "--node-label" && i + 1 < args.length) add(args[++i] as string)
    else if (a.startsWith("--node-label=")) add(a.slice("--node-label=".length))
  }
  return out
}

export const TAINT_EFFECTS: ReadonlyArray<string> = ["NoSchedule", "PreferNoSchedule", "NoExecute"]

/** `key[=value]:Effect` (`--node-taint`, `kubectl taint`), or `undefined` when it is not one. */
export const parseTaint = (spec: string): NodeTaint | undefined => {
  const colon = spec.lastIndexOf(":")
  if (colon <= 0) return undefined
  const kv = spec.slice(0, colon)
  const effect = spec.slice(colon + 1)
  const eq = kv.indexOf("=")
  const key = eq < 0 ? kv : kv.slice(0, eq)
  if (key === "" || !TAINT_EFFECTS.includes(effect)) return undefined
  return eq < 0 ? { key, effect } : { key, value: kv.slice(eq + 1), effect }
}

/** Every `--node-taint` in k3s args (repeatable), and config.yaml's `node-taint` list, as the kubelet takes them. */
export const nodeTaints = (args: ReadonlyArray<string>, fromConfig?: unknown): ReadonlyArray<NodeTaint> => {
  const specs: Array<string> = []
  for (const t of Array.isArray(fromConfig) ? fromConfig : typeof fromConfig === "string" ? [fromConfig] : [])
    if (typeof t === "string") specs.push(t)
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string
    if (a === "--node-taint" && i + 1 < args.length) specs.push(args[++i] as string)
    else if (a.startsWith("--node-taint=")) specs.push(a.slice("--node-taint=".length))
  }
  // k3s joins them with commas for --register-with-taints, which the kubelet splits again
  return specs.flatMap((s) => s.split(",")).flatMap((s) => parseTaint(s) ?? [])
}

/** Parse an env file (`K=V`, `K='V'`, `K="V"`). */
export const parseEnvFile = (text: string | undefined): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const line of (text ?? "").split("\n")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line)
    if (m === null) continue
    let v = (m[2] as string).trim()
    if ((v.startsWith("'") && v.endsWith("'")) || (v.startsWith('"') && v.endsWith('"'))) v = v.slice(1, -1)
    out[m[1] as string] = v
  }
  return out
}

/** The simulated k3s world: clusters, per-guest hosts, the join state machine (k3s.md §8). */
export class K3sSim {
  readonly releases: K3sReleases
  readonly origin: K3sOrigin
  readonly primary: K3sCluster
  readonly stray: Array<K3sCluster> = []
  readonly events: Array<K3sEvent> = []
  readonly stableVersion: string
  private readonly hosts = new WeakMap<GuestState, K3sHost>()
  private readonly hostList: Array<K3sHost> = []
  /** the last etcd learner promotion of each cluster (the next member waits for it) */
  private readonly promotions = new WeakMap<K3sCluster, number>()
  /** each cluster's learner progress record (k3s's `k3s/etcd/learnerProgress` key), and whose loop tends it */
  private readonly learnerProgress = new WeakMap<
    K3sCluster,
    { readonly id: string; readonly name: string; index: number; lastProgress: number }
  >()
  private readonly learnerManagers = new WeakSet<K3sCluster>()
  private serial = 0
  private stopped = false
  /** who waits for the next change of the k3s world (`kubectl wait`, `delete --wait`, `drain`) */
  private readonly watchers = new Set<() => void>()
  /** whether each cluster had etcd quorum at the last change (`noteQuorum`) */
  private readonly quorate = new WeakMap<K3sCluster, boolean>()
  private notingQuorum = false
  readonly t: {
    readonly joinMs: number
    readonly readyMs: number
    readonly promotionMs: number
    readonly learnerStallMs: number
    readonly learnerTickMs: number
    readonly retryMs: number
    readonly passwordRetryMs: number
    readonly restartMs: number
    readonly graceMs: number
    readonly memberRemoveMs: number
    readonly podReadyMs: number
    readonly podTerminateMs: number
    readonly kubeletResumeMs: number
  }
  /** Called with each event as it is recorded (`SimHandle.watch`), before the simulator goes on. */
  onEvent: ((event: K3sEvent) => void) | undefined
  /** the scenario's own Deployments (`k3s.workloads`) */
  readonly workloadSpecs: NonNullable<K3sSpec["workloads"]>
  /** the VMs whose journald is one read behind (`k3s.journalLag`) */
  private readonly journalLag: ReadonlySet<number>

  constructor(
    spec: K3sSpec | undefined,
    readonly state: SimState,
    readonly clock: SimClock,
    readonly faults: Faults
  ) {
    this.primary = new K3sCluster(spec?.version ?? "v1.30.5+k3s1", spec?.token)
    this.stableVersion = spec?.stableVersion ?? "v1.31.5+k3s1"
    this.releases = new K3sReleases({
      releases: spec?.releases,
      channels: spec?.channels,
      version: this.primary.version,
      stableVersion: this.stableVersion
    })
    this.origin = new K3sOrigin(this.releases)
    this.t = {
      joinMs: spec?.joinDelayMs ?? 5000,
      readyMs: spec?.readyDelayMs ?? 10_000,
      promotionMs: spec?.learnerPromotionDelayMs ?? 15_000,
      learnerStallMs: spec?.learnerMaxStallMs ?? 300_000,
      // k3s pkg/etcd `manageTickerTime`: how often the etcd leader's k3s looks at the learners
      learnerTickMs: 15_000,
      retryMs: 2000,
      passwordRetryMs: 5000,
      restartMs: 5000,
      graceMs: 40_000,
      memberRemoveMs: spec?.memberRemoveDelayMs ?? 1000,
      podReadyMs: spec?.podReadyDelayMs ?? 5000,
      podTerminateMs: spec?.podTerminateDelayMs ?? 2000,
      // a resumed kubelet's first status update: its sync timer (nodeStatusUpdateFrequency, 10 s) ran out during the
      // pause and fires at once; the update then takes a moment
      kubeletResumeMs: 2000
    }
    this.workloadSpecs = spec?.workloads ?? []
    this.journalLag = new Set(spec?.journalLag ?? [])
    state.onVmEvent((vm, ev) => this.onVmEvent(vm, ev))
    state.onRunState((vm) => this.onRunState(vm))
    faults.onChange(() => this.syncRuntimeHangs())
  }

  /** the node-monitor grace period in real ms (Ready → Unknown after the kubelet stops posting) */
  get graceRealMs(): number {
    return this.clock.scaled(this.t.graceMs)
  }

  get version(): string {
    return this.primary.version
  }

  now(): number {
    return this.clock.now()
  }

  /** Sleep a simulated duration between retries (at least a few real ms, so that retry loops never spin). */
  sleepSim(simMs: number): Promise<void> {
    return this.clock.sleepReal(Math.max(5, this.clock.scaled(simMs)))
  }

  /**
   * Something in the k3s world changed (a journal line, a unit state, a Node, a member, an event): wake whoever waits
   * for a change. This is the watch a real kubectl gets from the apiserver; nothing in the simulator polls for it.
   */
  touch(): void {
    this.noteQuorum()
    if (this.watchers.size === 0) return
    const watchers = [...this.watchers]
    this.watchers.clear()
    for (const w of watchers) w()
  }

  /**
   * Resolves at the next change (`touch`) or after `ms` real milliseconds, whichever comes first: the caller passes
   * the time left until what it waits for becomes due on its own (a Node's Ready, a pod's termination) or its deadline.
   */
  nextChange(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve()
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer)
        this.watchers.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, Math.max(0, ms))
      timer.unref?.()
      this.watchers.add(wake)
    })
  }

  host(guest: GuestState): K3sHost {
    let h = this.hosts.get(guest)
    if (h === undefined) {
      h = {
        key: `${guest.vmid}#${++this.serial}`,
        vmid: guest.vmid,
        guest,
        installed: undefined,
        enabled: false,
        journal: [],
        gen: 0,
        attempt: undefined,
        cluster: undefined,
        restarts: 0
      }
      this.hosts.set(guest, h)
      this.hostList.push(h)
    }
    return h
  }

  hostByKey(key: string): K3sHost | undefined {
    return this.hostList.find((h) => h.key === key)
  }

  /** The VM still runs this guest incarnation (its processes exist; they run only while it is not `frozen`). */
  alive(h: K3sHost): boolean {
    const vm = this.state.vms.get(h.vmid)
    return vm !== undefined && vm.guest === h.guest && (vm.status === "running" || vm.hibernated === h.guest)
  }

  /**
   * The VM runs this guest but its vCPUs are stopped (qmpstatus `paused`, `suspended`, `prelaunch`, …): nothing in the
   * guest runs, answers or logs until it is resumed, and then everything continues where it was.
   */
  frozen(h: K3sHost): boolean {
    const vm = this.state.vms.get(h.vmid)
    if (vm === undefined || vm.guest !== h.guest) return false
    // suspended to disk: its processes are in the saved RAM, and go on when a start loads it. A guest cut off the
    // network (every NIC's link down) counts as frozen too: its kubelet posts nothing, its etcd member answers no peer,
    // its k3s reaches no server (its processes run, but a step that needs the network waits for it)
    return vm.status === "running" ? vm.qmpstatus !== "running" || networkCut(vm) : vm.hibernated === h.guest
  }

  /** Its processes run and answer: alive and not frozen. */
  responsive(h: K3sHost): boolean {
    return this.alive(h) && !this.frozen(h)
  }

  private live(h: K3sHost, gen: number): boolean {
    return !this.stopped && h.gen === gen && this.alive(h)
  }

  /**
   * Wait while the guest is frozen (a paused guest's k3s makes no progress: a timer that ran out during the pause
   * fires when it is resumed), then whether this run of the unit is still on (`live`).
   */
  private async awake(h: K3sHost, gen: number): Promise<boolean> {
    while (this.live(h, gen) && this.frozen(h)) await this.nextChange(60_000)
    return this.live(h, gen)
  }

  unitState(h: K3sHost): string {
    return h.installed === undefined ? "inactive" : (h.guest.services.get(h.installed.unit) ?? "inactive")
  }

  private setUnit(h: K3sHost, s: string): void {
    if (h.installed !== undefined) h.guest.services.set(h.installed.unit, s)
    this.touch()
  }

  event(kind: K3sEvent["kind"], node: string, vmid: number | undefined, detail?: string): void {
    const at = this.now()
    const e: K3sEvent = {
      at,
      time: new Date(at).toISOString(),
      kind,
      node,
      ...(vmid !== undefined ? { vmid } : {}),
      ...(detail !== undefined ? { detail } : {})
    }
    this.events.push(e)
    this.onEvent?.(e)
    this.touch()
  }

  // ---------------------------------------------------------------- journal

  log(h: K3sHost, level: "info" | "warning" | "error" | "fatal", msg: string): void {
    const time = new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, "Z")
    this.push(h, `time="${time}" level=${level} msg=${JSON.stringify(msg)}`)
  }

  /** a systemd line (no logrus prefix) */
  sys(h: K3sHost, line: string): void {
    this.push(h, line)
  }

  private push(h: K3sHost, line: string): void {
    h.journal.push(line)
    const cut = h.journal.length - 5000
    if (cut > 0) {
      h.journal.splice(0, cut)
      if (h.journalRead !== undefined) h.journalRead = Math.max(0, h.journalRead - cut)
    }
    this.touch()
  }

  /**
   * The journal as a `journalctl` run in the guest now sees it: every line written so far, or in a VM of `journalLag`
   * those that had been written when `journalctl` last ran there (the rest appear at the next read).
   */
  readJournal(h: K3sHost): ReadonlyArray<string> {
    if (!this.journalLag.has(h.vmid)) return h.journal
    const shown = h.journal.slice(0, h.journalRead ?? h.journal.length)
    h.journalRead = h.journal.length
    return shown
  }

  // ---------------------------------------------------------------- faults

  private vmFault(
    kind: "k3sBadToken" | "k3sServerUnreachable" | "k3sInstallHang" | "k3sDownloadFails" | "k3sHold" | "k3sLearnerSlow",
    vmid: number
  ) {
    return this.faults.all().find((f) => f.kind === kind && (f.vmid === undefined || f.vmid === vmid))
  }

  downloadFails(vmid: number): boolean {
    return this.vmFault("k3sDownloadFails", vmid) !== undefined
  }

  private hangs(h: K3sHost): boolean {
    return this.vmFault("k3sInstallHang", h.vmid) !== undefined
  }

  private badTokenPart(h: K3sHost): "password" | "caHash" | undefined {
    const f = this.vmFault("k3sBadToken", h.vmid)
    return f === undefined ? undefined : f.kind === "k3sBadToken" ? (f.part ?? "password") : undefined
  }

  // ---------------------------------------------------------------- cluster lookups

  clusters(): Array<K3sCluster> {
    return [this.primary, ...this.stray]
  }

  /** The server answering `https://<host>:6443` for guests, or why not. */
  findServer(url: string): { ok: true; cluster: K3sCluster; host: K3sHost } | { ok: false; hostPort: string } {
    let u: URL | undefined
    try {
      u = new URL(url)
    } catch {
      u = undefined
    }
    const hostname = u?.hostname.replace(/^\[|\]$/g, "") ?? url
    const port = u?.port === "" || u === undefined ? "443" : u.port
    const hostPort = `${hostname}:${port}`
    if (port !== "6443") return { ok: false, hostPort }
    for (const h of this.hostList) {
      if (h.installed?.role !== "server" || h.cluster === undefined || !this.responsive(h)) continue
      if (h.guest.ip !== hostname && h.guest.hostname !== hostname) continue
      if (this.unitState(h) !== "active") continue
      if (this.vmFault("k3sServerUnreachable", h.vmid) !== undefined) continue
      return { ok: true, cluster: h.cluster, host: h }
    }
    return { ok: false, hostPort }
  }

  /**
   * The k3s supervisor on `https://<server>:6443` as `curl` in a guest sees it: `/ping`, `/cacerts`, and `/db/info`
   * (the etcd member list; anonymous only from localhost, since v1.27.14/v1.28.10/v1.29.5/v1.30.1 — k3s PR #10001).
   * `undefined` for other URLs.
   */
  supervisor(
    g: GuestState,
    url: string
  ): { readonly status: number; readonly body: string } | { readonly refused: string } | undefined {
    let u: URL
    try {
      u = new URL(url)
    } catch {
      return undefined
    }
    if (u.protocol !== "https:" || u.port !== "6443") return undefined
    const hostname = u.hostname.replace(/^\[|\]$/g, "")
    const local = hostname === "127.0.0.1" || hostname === "localhost" || hostname === "::1"
    let h: K3sHost | undefined
    if (local) {
      const me = this.host(g)
      h = me.installed?.role === "server" && this.unitState(me) === "active" && this.responsive(me) ? me : undefined
    } else {
      const t = this.findServer(url)
      h = t.ok ? t.host : undefined
    }
    if (h?.cluster === undefined) return { refused: `${hostname} port 6443` }
    const cluster = h.cluster
    const status = (code: number, reason: string, message: string) => ({
      status: code,
      body: `${JSON.stringify({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code })}\n`
    })
    if (u.pathname === "/ping") return { status: 200, body: "pong" }
    if (u.pathname === "/cacerts")
      return {
        status: 200,
        body: `-----BEGIN CERTIFICATE-----\nsimulated k3s server CA ${cluster.caHash}\n-----END CERTIFICATE-----\n`
      }
    if (u.pathname === "/db/info") {
      // without embedded etcd nothing serves /db/info: the request falls through to the apiserver, which answers an
      // anonymous request 401 (k3s runs it with --anonymous-auth=false)
      if (cluster.datastore !== "etcd") return status(401, "Unauthorized", "Unauthorized")
      const v = minorOf(this.binaryVersionOf(h) ?? cluster.version)
      const patch = Number(/^v\d+\.\d+\.(\d+)/.exec(this.binaryVersionOf(h) ?? cluster.version)?.[1] ?? 0)
      const fixed: Record<number, number> = { 27: 14, 28: 10, 29: 5, 30: 1 }
      const anonymous =
        local && v !== undefined && (v[1] > 30 || (fixed[v[1]] !== undefined && patch >= (fixed[v[1]] as number)))
      if (!anonymous) return status(401, "Unauthorized", "Unauthorized")
      if (!this.hasQuorum(cluster)) return status(500, "InternalError", "etcdserver: request timed out")
      const now = this.now()
      const members = cluster.etcdMembers.map((m) => {
        const learner = cluster.isLearner(m, now)
        return `{"ID":${m.id},"name":${JSON.stringify(m.name)},"peerURLs":[${JSON.stringify(m.peerURL)}],"clientURLs":[${JSON.stringify(m.clientURL)}]${learner ? ',"isLearner":true' : ""}}`
      })
      const own = cluster.etcdMembers.find((m) => m.name === h?.guest.files.get(ETCD_NAME)?.trim())
      const header = `{"cluster_id":${BigInt(`0x${cluster.caHash.slice(0, 16)}`).toString(10)},"member_id":${own?.id ?? 0},"raft_term":${2 + cluster.etcdMembers.length}}`
      return { status: 200, body: `{"header":${header},"members":[${members.join(",")}]}\n` }
    }
    return status(404, "NotFound", "the server could not find the requested resource")
  }

  /** A guest with this hostname exists (name resolution inside the lab). */
  knowsHostname(name: string): boolean {
    return this.hostList.some((h) => h.guest.hostname === name)
  }

  vmidOfNode(cluster: K3sCluster, name: string): number | undefined {
    const n = cluster.nodes.get(name)
    return n === undefined ? undefined : this.hostByKey(n.hostKey)?.vmid
  }

  clusterOf(h: K3sHost): K3sCluster | undefined {
    return h.cluster
  }

  // ---------------------------------------------------------------- host facts

  private vmOf(h: K3sHost): VmState | undefined {
    return this.state.vms.get(h.vmid)
  }

  systemUUID(h: K3sHost): string {
    const smbios = this.vmOf(h)?.config.get("smbios1") ?? ""
    const m = /(?:^|,)uuid=([0-9a-fA-F-]{36})/.exec(smbios)
    if (m !== null) return (m[1] as string).toLowerCase()
    const x = h.guest.machineId.padEnd(32, "0")
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`
  }

  binaryVersionOf(h: K3sHost): string | undefined {
    const b = h.guest.files.get(BIN)
    if (b === undefined) return undefined
    return binaryVersion(b) ?? this.primary.version
  }

  /** `/etc/rancher/node/password`, created (0600) on first contact like k3s does. */
  nodePassword(h: K3sHost): string {
    const p = h.guest.files.get(NODE_PASSWORD)
    if (p !== undefined && p.trim() !== "") return p.trim()
    const pw = hex(16)
    writeGuestFile(h.guest, NODE_PASSWORD, `${pw}\n`, ROOT_ONLY)
    return pw
  }

  /** The effective k3s configuration at unit start: CLI flags > env file > config.yaml. */
  runConfig(h: K3sHost): RunConfig {
    const inst = h.installed as Installed
    const env = parseEnvFile(h.guest.files.get(`/etc/systemd/system/${inst.unit}.service.env`))
    let cfg: Record<string, unknown> = {}
    try {
      const y = parseYaml(h.guest.files.get(CONFIG_YAML) ?? "") as unknown
      if (y !== null && typeof y === "object") cfg = y as Record<string, unknown>
    } catch {
      cfg = {}
    }
    const str = (k: string) => (typeof cfg[k] === "string" || typeof cfg[k] === "number" ? String(cfg[k]) : undefined)
    const args = inst.args.slice(1)
    const recorded = nodeArgs(inst.args, h.guest.files.get(CONFIG_YAML))
    const tokenFile = flagValue(args, ["--token-file"]) ?? env.K3S_TOKEN_FILE ?? str("token-file")
    const fromFile = tokenFile === undefined ? undefined : h.guest.files.get(tokenFile)?.trim()
    const token = flagValue(args, ["--token", "-t"]) ?? env.K3S_TOKEN ?? str("token") ?? fromFile
    const serverUrl = flagValue(args, ["--server", "-s"]) ?? env.K3S_URL ?? str("server")
    const nodeName = (
      flagValue(args, ["--node-name"]) ??
      env.K3S_NODE_NAME ??
      str("node-name") ??
      h.guest.hostname
    ).toLowerCase()
    const clusterInit =
      args.includes("--cluster-init") || env.K3S_CLUSTER_INIT === "true" || cfg["cluster-init"] === true
    const kubeconfigMode =
      flagValue(args, ["--write-kubeconfig-mode"]) ?? env.K3S_KUBECONFIG_MODE ?? str("write-kubeconfig-mode")
    const datastoreEndpoint =
      flagValue(args, ["--datastore-endpoint"]) ?? env.K3S_DATASTORE_ENDPOINT ?? str("datastore-endpoint")
    return {
      kubeconfigMode,
      datastoreEndpoint: datastoreEndpoint === "" ? undefined : datastoreEndpoint,
      role: inst.role,
      args: inst.args,
      env,
      serverUrl: serverUrl === "" ? undefined : serverUrl,
      token: token === "" ? undefined : token,
      nodeName,
      clusterInit,
      labels: nodeLabels(args, cfg["node-label"]),
      taints: nodeTaints(args, cfg["node-taint"]),
      nodeArgs: recorded
    }
  }

  // ---------------------------------------------------------------- unit control

  /** Start (or restart) the unit: a new run of the state machine. */
  start(h: K3sHost): Attempt {
    this.leaveLearner(h)
    h.attempt?.op?.end(false)
    // a restart stops the running k3s first, and the etcd inside it
    h.etcdRunning = false
    h.gen += 1
    const gen = h.gen
    const attempt: Attempt = { outcome: "pending" }
    const previous = h.attempt
    if (previous !== undefined && previous.outcome === "pending") {
      // systemd merges a pending start job into the restart that replaces it: whoever waits for the start job (a
      // blocking `systemctl start`) gets the restart's result
      previous.supersededBy = attempt
      attempt.waiters = previous.waiters
      previous.waiters = undefined
    }
    h.attempt = attempt
    this.setUnit(h, "activating")
    this.sys(h, "Starting Lightweight Kubernetes...")
    void this.run(h, gen, attempt)
    return attempt
  }

  stop(h: K3sHost): void {
    if (this.unitState(h) !== "inactive") {
      this.sys(h, "Stopping Lightweight Kubernetes...")
      this.sys(h, "Stopped Lightweight Kubernetes.")
    }
    this.halt(h)
  }

  /** k3s stops (its etcd with it): the running attempt fails, the unit is inactive, the Node is lost. */
  private halt(h: K3sHost): void {
    this.leaveLearner(h)
    h.etcdRunning = false
    h.gen += 1
    if (h.attempt !== undefined) settle(h.attempt, "failed")
    h.attempt?.op?.end(false)
    this.setUnit(h, "inactive")
    this.markLost(h)
  }

  /** Block until the attempt is ready or failed (forever for an agent that cannot join, like systemd). */
  async wait(attempt: Attempt): Promise<"ready" | "failed"> {
    let current = attempt
    for (;;) {
      if (current.supersededBy !== undefined) current = current.supersededBy
      else if (current.outcome !== "pending" || this.stopped) break
      else {
        const waiting = current
        await new Promise<void>((resolve) => {
          waiting.waiters = [...(waiting.waiters ?? []), resolve]
        })
      }
    }
    return current.outcome === "ready" ? "ready" : "failed"
  }

  private markLost(h: K3sHost): void {
    for (const c of this.clusters())
      for (const n of c.nodes.values()) if (n.hostKey === h.key && n.lostAt === undefined) n.lostAt = this.now()
  }

  private onVmEvent(vm: VmState, ev: VmEvent): void {
    // a resume from disk thaws the guest (`onRunState`): its k3s goes on, nothing starts
    if (ev === "resumed") return
    // a NIC's link set down or up again: cut off the network, or back on it, as a pause or a resume
    if (ev === "changed") {
      this.onRunState(vm)
      return
    }
    for (const h of this.hostList) {
      if (h.vmid !== vm.vmid) continue
      // suspended to disk: frozen (`onRunState`), not ended
      if (ev === "stopped" && vm.hibernated === h.guest && this.state.vms.get(vm.vmid) === vm) continue
      if (ev === "started") {
        if (vm.guest === h.guest && h.enabled && h.installed !== undefined && !this.stopped) this.start(h)
      } else {
        this.halt(h)
      }
    }
  }

  /** A change of a VM's status / qmpstatus (`SimState.setRun`): its guest froze (vCPUs stopped) or thawed. */
  private onRunState(vm: VmState): void {
    for (const h of this.hostList) {
      if (h.vmid !== vm.vmid) continue
      if (this.frozen(h)) {
        if (h.frozenAt === undefined) this.freeze(h)
      } else if (h.frozenAt !== undefined) {
        if (this.alive(h)) this.thaw(h)
        else {
          // stopped (or another guest) while frozen: `onVmEvent` ends its k3s; nothing resumes
          h.frozenAt = undefined
          h.frozenNodes = undefined
          h.learnerLeftMs = undefined
          h.thaws = (h.thaws ?? 0) + 1
        }
      }
    }
    this.touch()
  }

  /**
   * The guest's vCPUs stop: its kubelet stops posting Node status (each of its Nodes is lost now: Ready turns Unknown
   * after the node-monitor grace period), its etcd member answers nobody (`etcdMemberHealthy`), its learner is not
   * promoted, and its k3s makes no progress (`awake`).
   */
  private freeze(h: K3sHost): void {
    const now = this.now()
    h.frozenAt = now
    h.thaws = (h.thaws ?? 0) + 1
    const names: Array<string> = []
    for (const c of this.clusters())
      for (const n of c.nodes.values())
        if (n.hostKey === h.key && (n.lostAt === undefined || h.frozenNodes?.includes(n.name))) {
          n.lostAt ??= now
          names.push(n.name)
        }
    h.frozenNodes = names
    const member = h.learner === undefined ? undefined : h.cluster?.etcdMembers.find((m) => m.name === h.learner)
    if (member !== undefined && member.promoteAt > now && Number.isFinite(member.promoteAt)) {
      h.learnerLeftMs = member.promoteAt - now
      member.promoteAt = Number.POSITIVE_INFINITY
    }
  }

  /**
   * The guest's vCPUs run again and its processes continue where they were (no restart of k3s). A Node whose Ready
   * had not turned Unknown yet keeps it (its heartbeat resumes before the node controller noticed); one that had
   * turned Unknown is Ready again at the kubelet's first status update (`kubeletResumeMs` later). A Node that was not
   * Ready yet at the freeze is Ready as much later as the pause lasted; a learner's promotion too.
   */
  private thaw(h: K3sHost): void {
    const now = this.now()
    const since = h.frozenAt ?? now
    const paused = Math.max(0, now - since)
    h.frozenAt = undefined
    const thaws = (h.thaws ?? 0) + 1
    h.thaws = thaws
    const member = h.learner === undefined ? undefined : h.cluster?.etcdMembers.find((m) => m.name === h.learner)
    if (member !== undefined && h.learnerLeftMs !== undefined) member.promoteAt = now + h.learnerLeftMs
    h.learnerLeftMs = undefined
    const names = h.frozenNodes ?? []
    const pending: Array<{ cluster: K3sCluster; n: NodeRecord }> = []
    for (const c of this.clusters())
      for (const name of names) {
        const n = c.nodes.get(name)
        if (n === undefined || n.hostKey !== h.key || n.lostAt === undefined) continue
        if (n.readyAt > since) n.readyAt += paused
        if (now - n.lostAt < this.graceRealMs) {
          n.lostAt = undefined
          n.resourceVersion = c.nextResourceVersion()
        } else pending.push({ cluster: c, n })
      }
    if (pending.length === 0) {
      h.frozenNodes = undefined
      return
    }
    // Unknown until the kubelet posts its status again; frozen again before that, they stay lost
    h.frozenNodes = pending.map((p) => p.n.name)
    for (const { n } of pending) this.beginNodeReady(h, n.name, this.t.kubeletResumeMs)
    void this.sleepSim(this.t.kubeletResumeMs).then(() => {
      if (this.stopped || h.thaws !== thaws || !this.responsive(h)) return
      const at = this.now()
      for (const { cluster, n } of pending) {
        if (cluster.nodes.get(n.name) !== n || n.hostKey !== h.key || n.lostAt === undefined) continue
        n.lostAt = undefined
        n.readyAt = Math.max(n.readyAt, at)
        n.resourceVersion = cluster.nextResourceVersion()
      }
      h.frozenNodes = undefined
      this.touch()
    })
  }

  private ready(h: K3sHost, attempt: Attempt): void {
    settle(attempt, "ready")
    this.setUnit(h, "active")
    attempt.op?.end(true)
    if (attempt.op !== undefined) h.upOp = attempt.op.id
    this.sys(h, "Started Lightweight Kubernetes.")
  }

  private fatal(h: K3sHost, gen: number, attempt: Attempt, msg: string): void {
    const unit = h.installed?.unit ?? "k3s"
    // the k3s process exited, and its etcd with it
    h.etcdRunning = false
    this.log(h, "fatal", msg)
    this.sys(h, `${unit}.service: Main process exited, code=exited, status=1/FAILURE`)
    this.sys(h, `${unit}.service: Failed with result 'exit-code'.`)
    this.sys(h, "Failed to start Lightweight Kubernetes.")
    settle(attempt, "failed")
    attempt.op?.end(false)
    // Restart=always, RestartSec=5s: systemd shows the unit as activating (auto-restart)
    this.setUnit(h, "activating")
    void this.sleepSim(this.t.restartMs).then(async () => {
      if (!(await this.awake(h, gen))) return
      h.restarts += 1
      this.sys(h, `${unit}.service: Scheduled restart job, restart counter is at ${h.restarts}.`)
      this.start(h)
    })
  }

  // ---------------------------------------------------------------- operations (critical path)

  /**
   * A k3s step of `h` as an operation: it waits for the boot of its VM (the guest must be up to run k3s) and for
   * `needs`; its simulated time is what `add` counts (joins), not the retries while it waits for a server.
   */
  private beginOp(
    h: K3sHost,
    attempt: Attempt,
    operation: string,
    nodeName: string,
    needs: ReadonlyArray<number | undefined> = [],
    due?: number
  ): OperationHandle {
    const vm = this.state.vms.get(h.vmid)
    const op = this.state.operations.begin({
      operation,
      node: vm?.node ?? "",
      vmid: h.vmid,
      vm: vm?.config.get("name"),
      k3sNode: nodeName,
      needs: [this.state.operations.lastBoot(h.vmid), ...needs],
      due
    })
    attempt.op = op
    return op
  }

  /** Sleep a join step's simulated duration (exactly: it is the step's own time), counted into the attempt's operation. */
  private work(attempt: Attempt, simMs: number): Promise<void> {
    attempt.op?.add(simMs)
    return this.clock.sleep(simMs)
  }

  // ---------------------------------------------------------------- state machine (k3s.md §8.3)

  private async run(h: K3sHost, gen: number, attempt: Attempt): Promise<void> {
    try {
      if (!(await this.awake(h, gen))) return
      const cfg = this.runConfig(h)
      const version = this.binaryVersionOf(h) ?? this.primary.version
      // configfilearg first: config.yaml's keys the command does not define are skipped; then urfave/cli parses the
      // command line, and a flag the command does not define stops k3s there (systemd restarts it every 5 s)
      const [command = cfg.role, ...words] = cfg.args
      for (const key of skippedConfigKeys(h.guest.files.get(CONFIG_YAML), command))
        this.log(h, "warning", `Unknown flag --${key} found in config.yaml, skipping\n`)
      const undefinedFlag = firstUndefinedFlag(command, words)
      if (undefinedFlag !== undefined) {
        for (const line of incorrectUsage(cfg.role, undefinedFlag)) this.sys(h, line)
        return this.fatal(h, gen, attempt, `flag provided but not defined: -${undefinedFlag}`)
      }
      if (cfg.role === "agent") {
        this.log(h, "info", `Starting k3s agent ${version} (${commitOf(version)})`)
        await this.runAgent(h, gen, attempt, cfg, version)
      } else {
        this.log(h, "info", `Starting k3s ${version} (${commitOf(version)})`)
        await this.runServer(h, gen, attempt, cfg, version)
      }
    } catch (e) {
      if (this.live(h, gen)) this.fatal(h, gen, attempt, `internal simulator error: ${(e as Error).message}`)
    }
  }

  /**
   * `k3sHold` (a test control): this start's work is done; it waits here, silently and still activating, until the
   * fault is cleared, then goes on as it would have. False when this run of the unit ended meanwhile (a stop, a
   * restart, its VM stopped).
   */
  private async held(h: K3sHost, gen: number): Promise<boolean> {
    for (let hold = this.vmFault("k3sHold", h.vmid); hold !== undefined; hold = this.vmFault("k3sHold", h.vmid)) {
      const fault = hold
      const cleared = this.faults.whenCleared(fault)
      while (this.faults.all().includes(fault)) {
        if (!this.live(h, gen)) return false
        // a stop or restart of the unit touches the k3s world: look again then
        await Promise.race([cleared, this.nextChange(60_000)])
      }
    }
    return this.awake(h, gen)
  }

  private async hangLoop(h: K3sHost, gen: number): Promise<boolean> {
    while (this.hangs(h)) {
      if (!(await this.awake(h, gen))) return false
      this.log(
        h,
        "info",
        'Waiting for containerd startup: rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial unix /run/k3s/containerd/containerd.sock: connect: no such file or directory"'
      )
      await this.sleepSim(this.t.retryMs)
    }
    return this.awake(h, gen)
  }

  /** CA hash and credential check of a presented token against `cluster`; undefined when fine. */
  private checkToken(
    h: K3sHost,
    tok: ParsedToken,
    cluster: K3sCluster,
    role: "server" | "agent"
  ): { kind: "ca"; presented: string } | { kind: "401" } | undefined {
    const bad = this.badTokenPart(h)
    const hash = tok._tag === "short" ? "" : tok.caHash
    const presented = bad === "caHash" ? flipHash(hash === "" ? cluster.caHash : hash) : hash
    if (presented !== "" && presented !== cluster.caHash) return { kind: "ca", presented }
    if (bad === "password" || !cluster.acceptsCredentials(tok, role, this.now())) return { kind: "401" }
    return undefined
  }

  private async runAgent(h: K3sHost, gen: number, attempt: Attempt, cfg: RunConfig, version: string) {
    const url = cfg.serverUrl
    if (url === undefined) return this.fatal(h, gen, attempt, "Error: --server is required")
    if (cfg.token === undefined) return this.fatal(h, gen, attempt, "Error: --token is required")
    const op = this.beginOp(h, attempt, "k3s-agent-join", cfg.nodeName)
    let warned = false
    let cluster: K3sCluster
    for (;;) {
      if (!(await this.hangLoop(h, gen))) return
      const tok = parseToken(cfg.token)
      if (tok._tag === "error") {
        this.log(h, "error", `Failed to validate connection to cluster at ${url}: ${tok.message}`)
        await this.sleepSim(this.t.retryMs)
        continue
      }
      const target = this.findServer(url)
      if (!target.ok) {
        this.log(
          h,
          "error",
          `Failed to validate connection to cluster at ${url}: failed to get CA certs: Get "${url.replace(/\/+$/, "")}/cacerts": dial tcp ${target.hostPort}: connect: connection refused`
        )
        await this.sleepSim(this.t.retryMs)
        continue
      }
      cluster = target.cluster
      if (!this.hasQuorum(cluster)) {
        this.log(
          h,
          "info",
          "Waiting to retrieve agent configuration; server is not ready: https://127.0.0.1:6444/v1-k3s/serving-kubelet.crt: 503 Service Unavailable"
        )
        await this.sleepSim(this.t.passwordRetryMs)
        continue
      }
      const bad = this.checkToken(h, tok, cluster, "agent")
      if (bad?.kind === "ca") {
        this.log(
          h,
          "error",
          `Failed to validate connection to cluster at ${url}: token CA hash does not match the Cluster CA certificate hash: ${bad.presented} != ${cluster.caHash}`
        )
        await this.sleepSim(this.t.retryMs)
        continue
      }
      if ((tok._tag === "short" || tok.caHash === "") && !warned) {
        warned = true
        this.log(
          h,
          "warning",
          "Cluster CA certificate is not trusted by the host CA bundle, but the token does not include a CA hash. Use the full token from the server's node-token file to enable Cluster CA validation."
        )
      }
      if (bad?.kind === "401") {
        this.log(
          h,
          "info",
          "Waiting to retrieve agent configuration; server is not ready: https://127.0.0.1:6444/v1-k3s/client-ca.crt: 401 Unauthorized"
        )
        await this.sleepSim(this.t.passwordRetryMs)
        continue
      }
      const pw = this.nodePassword(h)
      const secretName = `${cfg.nodeName}.node-password.k3s`
      const secret = cluster.secrets.get(secretName)
      if (secret !== undefined && secret.hash !== passwordHash(pw)) {
        this.log(
          h,
          "info",
          "Waiting to retrieve agent configuration; server is not ready: Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' may not match server node-passwd entry, try enabling a unique node name with the --with-node-id flag"
        )
        this.event("node-password-rejected", cfg.nodeName, h.vmid)
        await this.sleepSim(this.t.passwordRetryMs)
        continue
      }
      if (secret === undefined)
        cluster.secrets.set(secretName, {
          name: secretName,
          hash: passwordHash(pw),
          createdAt: this.now(),
          uid: cluster.newUid()
        })
      // the agent joined through this server: it had to be up
      op.need(target.host.upOp)
      break
    }
    this.log(
      h,
      "info",
      `Connecting to proxy url="wss://${url.replace(/^https:\/\//, "").replace(/\/+$/, "")}/v1-k3s/connect"`
    )
    await this.work(attempt, this.t.joinMs)
    if (!(await this.hangLoop(h, gen))) return
    if (!(await this.held(h, gen))) return
    h.cluster = cluster
    this.registerNode(h, cluster, cfg, "agent", version, undefined)
    this.log(h, "info", `Annotations and labels have been set successfully on node: ${cfg.nodeName}`)
    this.log(h, "info", "k3s agent is up and running")
    this.event("agent-join-finish", cfg.nodeName, h.vmid)
    this.ready(h, attempt)
  }

  private async runServer(h: K3sHost, gen: number, attempt: Attempt, cfg: RunConfig, version: string) {
    // the tombstone a removed member's k3s wrote (EtcdTombstone.ts): its etcd data moves aside, and the server joins
    // through its --server as a new member (without --server: a new cluster, or, since PR #13624, a refusal)
    if (h.guest.files.has(TOMBSTONE)) {
      if (cfg.serverUrl === undefined && tombstoneNeedsServer(version))
        return this.fatal(h, gen, attempt, TOMBSTONE_NO_SERVER)
      this.log(h, "info", TOMBSTONE_DETECTED)
      const old = `${ETCD_DIR}-old-${Math.floor(this.now() / 1000)}`
      for (const path of [...h.guest.files.keys()])
        if (path.startsWith(`${ETCD_DIR}/`)) moveGuestFile(h.guest, path, `${old}${path.slice(ETCD_DIR.length)}`)
      this.event("etcd-data-moved-aside", cfg.nodeName, h.vmid, old)
    }
    // an initialised etcd member: restart, --cluster-init / --server are ignored
    const name = h.guest.files.get(ETCD_NAME)?.trim()
    const own = h.cluster
    if (own !== undefined && name !== undefined && own.etcdMembers.some((m) => m.name === name)) {
      // the datastore's bootstrap data is encrypted with the token the cluster was made with: a server started with
      // another one stops there (k3s.md §3, k3s #3888); without a token it uses its data-dir's own
      const tok = cfg.token === undefined ? undefined : parseToken(cfg.token)
      if ((tok?._tag === "short" || tok?._tag === "basic") && tok.password !== own.serverPassword)
        return this.fatal(
          h,
          gen,
          attempt,
          "starting kubernetes: preparing server: bootstrap data already found and encrypted with different token"
        )
      this.beginOp(h, attempt, "k3s-restart", cfg.nodeName)
      await this.work(attempt, this.t.joinMs)
      if (!(await this.awake(h, gen))) return
      // an initialised data dir: k3s starts etcd as that member, without adding it again (k3s pkg/etcd `Start`)
      this.log(h, "info", "Starting etcd for existing cluster member")
      // its etcd runs again (with the member's data), and counts for quorum from now on
      this.etcdStarted(h)
      const member = own.etcdMembers.find((m) => m.name === name)
      if (member !== undefined && own.isLearner(member, this.now())) {
        // a learner whose k3s stopped during its join: it catches up from where it was, then the leader promotes it
        // (a stalled learner makes no progress while k3s is stopped, `leaveLearner`)
        const learner = member
        if (!Number.isFinite(learner.promoteAt)) learner.promoteAt = this.now() + this.clock.scaled(this.t.promotionMs)
        h.learner = learner.name
        this.log(h, "info", "this server has not yet been promoted from learner to voting member")
        void this.manageLearners(own)
        const promoted = await this.untilPromoted(h, gen, own, learner)
        if (promoted === "stopped") return
        if (promoted === "removed") return this.memberRemoved(h, gen, attempt, version)
        this.writeServerFiles(h, own)
      }
      if (!(await this.hangLoop(h, gen))) return
      if (!(await this.held(h, gen))) return
      // etcd starts, but the apiserver waits until the members form a quorum again
      while (!this.hasQuorum(own)) {
        if (!(await this.awake(h, gen))) return
        if (this.hasQuorum(own)) break
        this.log(h, "info", "Waiting for etcd server to become available")
        this.log(h, "warning", "Failed to get apiserver address from etcd: context deadline exceeded")
        await this.sleepSim(this.t.retryMs)
      }
      if (!own.etcdMembers.some((m) => m.name === name)) return this.memberRemoved(h, gen, attempt, version)
      this.registerNode(h, own, cfg, "server", version, name)
      this.log(h, "info", "k3s is up and running")
      return this.ready(h, attempt)
    }
    if (own !== undefined && name !== undefined) {
      // etcd data of a member the cluster removed: etcd starts on it and learns from its peers that it was removed
      await this.sleepSim(this.t.joinMs)
      if (!(await this.awake(h, gen))) return
      return this.memberRemoved(h, gen, attempt, version)
    }
    if (own === undefined && name !== undefined) {
      // etcd data of a cluster the simulator has no record of (an earlier cluster's, left on this disk): k3s ignores
      // --cluster-init / --server and starts etcd as that existing member (k3s pkg/etcd: an initialised data dir,
      // "Starting etcd for existing cluster member"); its peers are not there, so etcd never has a quorum and k3s waits
      // for it, never ready (the unit stays activating), until it is stopped
      this.log(h, "info", "Starting etcd for existing cluster member")
      while (await this.awake(h, gen)) {
        this.log(h, "info", "Waiting for etcd server to become available")
        this.log(h, "warning", "Failed to get apiserver address from etcd: context deadline exceeded")
        await this.sleepSim(this.t.retryMs)
      }
      return
    }
    // a server on SQLite or an external database: no etcd data; its state is in that datastore
    if (own !== undefined && own.datastore === "sqlite" && h.guest.files.has(SQLITE_DB))
      return this.sqliteServer(h, gen, attempt, cfg, version, own)
    if (cfg.datastoreEndpoint !== undefined) return this.externalServer(h, gen, attempt, cfg, version)
    if (cfg.serverUrl === undefined) return this.initCluster(h, gen, attempt, cfg, version)
    const url = cfg.serverUrl
    const tok = cfg.token === undefined ? undefined : parseToken(cfg.token)
    if (tok === undefined)
      return this.fatal(h, gen, attempt, "starting kubernetes: preparing server: token is required")
    if (tok._tag === "error" || tok._tag === "bootstrap")
      return this.fatal(
        h,
        gen,
        attempt,
        "failed to normalize server token; must be in format K10<CA-HASH>::<USERNAME>:<PASSWORD> or <PASSWORD>"
      )
    this.event("server-join-start", cfg.nodeName, h.vmid)
    const join = this.beginOp(h, attempt, "k3s-server-join", cfg.nodeName)
    const failed = (msg: string) => {
      this.event("server-join-failed", cfg.nodeName, h.vmid, msg)
      this.fatal(h, gen, attempt, msg)
    }
    if (!(await this.hangLoop(h, gen))) return this.event("server-join-failed", cfg.nodeName, h.vmid, "stopped")
    const target = this.findServer(url)
    if (!target.ok)
      return failed(
        `starting kubernetes: preparing server: failed to get CA certs: Get "${url.replace(/\/+$/, "")}/cacerts": dial tcp ${target.hostPort}: connect: connection refused`
      )
    const cluster = target.cluster
    // it bootstraps from that server, and etcd adds one learner at a time: after the previous one's promotion
    join.need(target.host.upOp)
    join.need(this.promotions.get(cluster))
    const bad = this.checkToken(h, tok, cluster, "server")
    if (bad?.kind === "ca")
      return failed(
        `starting kubernetes: preparing server: token CA hash does not match the Cluster CA certificate hash: ${bad.presented} != ${cluster.caHash}`
      )
    if (bad?.kind === "401")
      return failed(
        `starting kubernetes: preparing server: ${url.replace(/\/+$/, "")}/v1-k3s/server-bootstrap: 401 Unauthorized`
      )
    // cluster.compareConfig: the server it bootstraps from must run with the same critical values
    const theirs = target.host.installed === undefined ? undefined : this.runConfig(target.host).nodeArgs
    if (theirs !== undefined && cfg.nodeArgs !== undefined && criticalMismatch(cfg.nodeArgs, theirs))
      return failed("failed to validate server configuration: critical configuration value mismatch")
    this.log(h, "info", "Managed etcd cluster not yet initialized")
    if (cluster.datastore !== "etcd") {
      // a server without embedded etcd answers the joiner's bootstrap request with 400 "etcd disabled" (k3s
      // pkg/server/handlers Bootstrap; k3s #2463, #6163): the joiner exits, and systemd starts it again every 5 s
      this.log(
        target.host,
        "warning",
        `Received HTTP bootstrap request from ${h.guest.ip}:${40_000 + (h.vmid % 20_000)}, but embedded etcd is not enabled.`
      )
      return failed(
        `starting kubernetes: preparing server: failed to bootstrap cluster data: ${url.replace(/\/+$/, "")}/v1-k3s/server-bootstrap: 400 Bad Request`
      )
    }
    await this.work(attempt, this.t.joinMs)
    if (!(await this.awake(h, gen))) return this.event("server-join-failed", cfg.nodeName, h.vmid, "stopped")
    const now = this.now()
    if (cluster.etcdMembers.some((m) => isMemberOf(m.name, cfg.nodeName))) {
      removeGuestFile(h.guest, ETCD_NAME)
      return failed("ETCD join failed: duplicate node name found, please use a unique name for this node")
    }
    if (cluster.etcdMembers.some((m) => cluster.isLearner(m, now)))
      return failed("ETCD join failed: etcdserver: too many learner members in cluster")
    if (!this.hasQuorum(cluster)) return failed("ETCD join failed: etcdserver: unhealthy cluster")
    const ip = h.guest.ip
    if (cluster.etcdMembers.some((m) => m.peerURL === `https://${ip}:2380`))
      return failed("ETCD join failed: etcdserver: Peer URLs already exists")
    const others = cluster.etcdMembers.map((m) => `${m.name}=${m.peerURL}`)
    const member = cluster.addMember(cfg.nodeName, ip, now + this.clock.scaled(this.t.promotionMs))
    writeGuestFile(h.guest, ETCD_NAME, `${member.name}\n`, ROOT_ONLY)
    h.learner = member.name
    h.cluster = cluster
    this.etcdStarted(h)
    join.end(true)
    const promotion = this.beginOp(h, attempt, "etcd-promotion", cfg.nodeName, [join.id], this.t.promotionMs)
    this.promotions.set(cluster, promotion.id)
    this.log(h, "info", `Adding member ${member.name}=${member.peerURL} to etcd cluster [${others.join(" ")}]`)
    this.log(
      h,
      "info",
      `Starting etcd to join cluster with members [${[...others, `${member.name}=${member.peerURL}`].join(" ")}]`
    )
    this.log(h, "info", "this server has not yet been promoted from learner to voting member")
    void this.manageLearners(cluster)
    const promoted = await this.untilPromoted(h, gen, cluster, member)
    // stopped, its member stays a learner in etcd (`leaveLearner`) until evicted or a later start carries on as it
    if (promoted === "stopped") return this.event("server-join-failed", cfg.nodeName, h.vmid, "stopped while a learner")
    if (promoted === "removed") {
      this.event("server-join-failed", cfg.nodeName, h.vmid, "its learner was removed")
      return this.memberRemoved(h, gen, attempt, version)
    }
    if (!(await this.hangLoop(h, gen))) return this.event("server-join-failed", cfg.nodeName, h.vmid, "stopped")
    if (!(await this.held(h, gen))) return this.event("server-join-failed", cfg.nodeName, h.vmid, "stopped")
    this.registerNode(h, cluster, cfg, "server", version, member.name)
    this.writeServerFiles(h, cluster)
    this.log(h, "info", "k3s is up and running")
    this.event("server-join-finish", cfg.nodeName, h.vmid)
    this.ready(h, attempt)
  }

  /**
   * `h`'s etcd runs as the learner `member`: wait for its promotion at `promoteAt` (wake then, or at once when the VM
   * stops meanwhile, not on a polling step). A frozen learner cannot catch up, so its promotion waits (`freeze` holds
   * it); `k3sLearnerSlow` holds it while the fault stands. `removed`: the leader evicted it meanwhile (`manageLearners`).
   */
  private async untilPromoted(
    h: K3sHost,
    gen: number,
    cluster: K3sCluster,
    member: EtcdMember
  ): Promise<"promoted" | "stopped" | "removed"> {
    for (;;) {
      if (!cluster.etcdMembers.includes(member)) return this.live(h, gen) ? "removed" : "stopped"
      // `k3sLearnerSlow`: not caught up, not promoted, while the fault stands; promoted as much later once it is
      // cleared. Asked before the clock: however late this code runs after the member was added, the fault holds it.
      const slow = this.vmFault("k3sLearnerSlow", h.vmid)
      if (slow !== undefined && Number.isFinite(member.promoteAt) && this.live(h, gen)) {
        const left = Math.max(0, member.promoteAt - this.now())
        member.promoteAt = Number.POSITIVE_INFINITY
        while (this.faults.all().includes(slow) && this.live(h, gen))
          await Promise.race([this.faults.whenCleared(slow), this.nextChange(60_000)])
        if (!this.live(h, gen)) return "stopped"
        member.promoteAt = this.now() + left
        continue
      }
      if (!cluster.isLearner(member, this.now())) break
      if (!this.live(h, gen)) return "stopped"
      if (this.frozen(h)) await this.awake(h, gen)
      else await this.nextChange(member.promoteAt - this.now())
    }
    if (h.learner === member.name) h.learner = undefined
    return "promoted"
  }

  /**
   * k3s started on the etcd data of a member the cluster removed, and etcd learned it from its peers. Before the
   * January 2026 releases k3s exits on it (systemd starts it again every 5 s, forever, until the data is deleted);
   * since then it writes the tombstone, closes etcd and waits (never ready, the unit stays activating) for a restart,
   * which moves the data aside and joins again (EtcdTombstone.ts).
   */
  private async memberRemoved(h: K3sHost, gen: number, attempt: Attempt, version: string): Promise<void> {
    if (!removedMemberRejoins(version)) {
      this.log(h, "warning", ETCD_DATA_DIR)
      return this.fatal(h, gen, attempt, ETCD_REMOVED)
    }
    this.log(h, "warning", ETCD_REMOVED)
    this.log(h, "warning", ETCD_DATA_DIR)
    this.writeTombstone(h)
    while (await this.awake(h, gen)) await this.nextChange(60_000)
  }

  /** k3s's answer to etcd's ErrMemberRemoved (`pkg/daemons/executor/embed.go`): the tombstone, etcd closed. */
  private writeTombstone(h: K3sHost): void {
    writeGuestFile(h.guest, TOMBSTONE, "", ROOT_ONLY)
    h.etcdRunning = false
    this.log(h, "info", REMOVED_RESTART)
    this.event("etcd-tombstone-written", this.runConfig(h).nodeName, h.vmid)
    this.touch()
  }

  /**
   * The server of a cluster on SQLite starts again: on its SQLite data, or, given `--cluster-init` (the flag, or
   * `cluster-init: true` in config.yaml), it moves that data into a new embedded etcd of one member (k3s v1.22.2+,
   * `pkg/etcd` migrateFromSQLite: "Migrating content from sqlite to etcd", the database renamed `state.db.migrated`);
   * from then on servers can join it.
   */
  private async sqliteServer(
    h: K3sHost,
    gen: number,
    attempt: Attempt,
    cfg: RunConfig,
    version: string,
    cluster: K3sCluster
  ) {
    this.beginOp(h, attempt, "k3s-restart", cfg.nodeName)
    await this.work(attempt, this.t.joinMs)
    if (!(await this.hangLoop(h, gen))) return
    if (!(await this.held(h, gen))) return
    let etcdName: string | undefined
    if (cfg.clusterInit) {
      this.log(h, "info", "Managed etcd cluster initializing")
      this.log(h, "info", "Migrating content from sqlite to etcd")
      moveGuestFile(h.guest, SQLITE_DB, `${SQLITE_DB}.migrated`)
      const member = cluster.addMember(cfg.nodeName, h.guest.ip, this.now())
      writeGuestFile(h.guest, ETCD_NAME, `${member.name}\n`, ROOT_ONLY)
      cluster.datastore = "etcd"
      etcdName = member.name
      this.etcdStarted(h)
      this.event("sqlite-migrated", cfg.nodeName, h.vmid)
    } else {
      this.log(
        h,
        "info",
        "Configuring sqlite3 database connection pooling: maxIdleConns=2, maxOpenConns=0, connMaxLifetime=0s"
      )
    }
    this.registerNode(h, cluster, cfg, "server", version, etcdName)
    this.writeServerFiles(h, cluster)
    this.log(h, "info", "k3s is up and running")
    this.ready(h, attempt)
  }

  /**
   * A server with `--datastore-endpoint`: its state is in that database, shared with every server given the same
   * endpoint (no etcd, no `--server` needed). The first server on an endpoint starts the cluster; the others join it
   * with the cluster's token (another token cannot decrypt its bootstrap data: k3s #3888).
   */
  private async externalServer(h: K3sHost, gen: number, attempt: Attempt, cfg: RunConfig, version: string) {
    const endpoint = cfg.datastoreEndpoint as string
    let cluster = this.clusters().find((c) => c.datastore === "external" && c.datastoreEndpoint === endpoint)
    const tok = cfg.token === undefined ? undefined : parseToken(cfg.token)
    // a server of that cluster starting again without a token uses its data-dir's own (server/token)
    const member = cluster !== undefined && h.cluster === cluster && tok === undefined
    if (cluster !== undefined && !member && (tok === undefined || tok._tag === "error" || tok._tag === "bootstrap"))
      return this.fatal(
        h,
        gen,
        attempt,
        "starting kubernetes: preparing server: bootstrap data already found and encrypted with different token"
      )
    if (cluster !== undefined && tok !== undefined && "password" in tok && tok.password !== cluster.serverPassword)
      return this.fatal(
        h,
        gen,
        attempt,
        "starting kubernetes: preparing server: bootstrap data already found and encrypted with different token"
      )
    if (cluster === undefined) {
      const empty = this.primary.nodes.size === 0 && this.primary.etcdMembers.length === 0
      cluster = empty ? this.primary : new K3sCluster(version)
      cluster.datastore = "external"
      cluster.datastoreEndpoint = endpoint
      if (tok !== undefined && "password" in tok) cluster.serverPassword = tok.password
      if (!empty) this.stray.push(cluster)
    }
    this.beginOp(h, attempt, "k3s-restart", cfg.nodeName)
    await this.work(attempt, this.t.joinMs)
    if (!(await this.hangLoop(h, gen))) return
    if (!(await this.held(h, gen))) return
    const first = cluster.nodes.size === 0
    h.cluster = cluster
    if (first) this.attachWorkloads(cluster, cfg.args)
    this.registerNode(h, cluster, cfg, "server", version, undefined)
    this.writeServerFiles(h, cluster)
    this.log(h, "info", "k3s is up and running")
    this.ready(h, attempt)
  }

  /**
   * A server without `--server` on a host without etcd data: a new cluster, on embedded etcd with `--cluster-init`,
   * otherwise on SQLite (k3s's default datastore).
   */
  private async initCluster(h: K3sHost, gen: number, attempt: Attempt, cfg: RunConfig, version: string) {
    const empty = this.primary.nodes.size === 0 && this.primary.etcdMembers.length === 0
    const cluster = empty ? this.primary : new K3sCluster(version)
    if (cfg.token !== undefined) {
      const tok = parseToken(cfg.token)
      if (tok._tag === "bootstrap" || tok._tag === "error")
        return this.fatal(
          h,
          gen,
          attempt,
          "failed to normalize server token; must be in format K10<CA-HASH>::<USERNAME>:<PASSWORD> or <PASSWORD>"
        )
      cluster.serverPassword = tok.password
    }
    if (!empty) this.stray.push(cluster)
    const sqlite = !cfg.clusterInit
    if (sqlite) {
      cluster.datastore = "sqlite"
      this.log(
        h,
        "info",
        "Configuring sqlite3 database connection pooling: maxIdleConns=2, maxOpenConns=0, connMaxLifetime=0s"
      )
    } else this.log(h, "info", "Managed etcd cluster initializing")
    this.beginOp(h, attempt, "k3s-init", cfg.nodeName)
    await this.work(attempt, this.t.joinMs)
    if (!(await this.hangLoop(h, gen))) return
    if (!(await this.held(h, gen))) return
    let etcdName: string | undefined
    if (sqlite) writeGuestFile(h.guest, SQLITE_DB, "", ROOT_ONLY)
    else {
      const member = cluster.addMember(cfg.nodeName, h.guest.ip, this.now())
      writeGuestFile(h.guest, ETCD_NAME, `${member.name}\n`, ROOT_ONLY)
      etcdName = member.name
    }
    // the member's host first: quorum is counted from the hosts of the cluster (`memberHost`)
    h.cluster = cluster
    if (etcdName !== undefined) this.etcdStarted(h)
    this.attachWorkloads(cluster, cfg.args)
    this.registerNode(h, cluster, cfg, "server", version, etcdName)
    this.writeServerFiles(h, cluster)
    this.event("cluster-init", cfg.nodeName, h.vmid, empty ? "scenario cluster" : "a new, separate cluster")
    this.log(h, "info", "k3s is up and running")
    this.ready(h, attempt)
  }

  registerNode(
    h: K3sHost,
    cluster: K3sCluster,
    cfg: Pick<RunConfig, "nodeName" | "args" | "env" | "labels" | "taints" | "nodeArgs">,
    role: "server" | "agent",
    version: string,
    etcdName: string | undefined,
    readyAt?: number
  ): NodeRecord {
    const now = this.now()
    const ready = readyAt ?? now + this.clock.scaled(this.t.readyMs)
    const readyOp = () => {
      if (readyAt !== undefined) return
      this.beginNodeReady(h, cfg.nodeName, this.t.readyMs, h.attempt?.op?.id)
    }
    const env = Object.fromEntries(Object.entries(cfg.env).filter(([k]) => k.startsWith("K3S_")))
    // k3s-io/k3s pkg/nodeconfig: what this start records in the Node's k3s.io/node-args
    const args = cfg.nodeArgs ?? nodeArgs(cfg.args, undefined)
    const labels = cfg.labels ?? nodeLabels(cfg.args.slice(1))
    const taints = cfg.taints ?? nodeTaints(cfg.args.slice(1))
    let n = cluster.nodes.get(cfg.nodeName)
    if (n === undefined) {
      n = {
        name: cfg.nodeName,
        uid: cluster.newUid(),
        role,
        hostKey: h.key,
        ip: h.guest.ip,
        hostname: h.guest.hostname.toLowerCase(),
        version,
        createdAt: readyAt !== undefined ? Math.min(now, readyAt) : now,
        readyAt: ready,
        lostAt: undefined,
        machineId: h.guest.machineId,
        systemUUID: this.systemUUID(h),
        etcdName,
        args,
        env,
        labels,
        taints,
        resourceVersion: cluster.nextResourceVersion(),
        unschedulable: false,
        schedulingChangedAt: now,
        deletingAt: undefined
      }
      cluster.nodes.set(n.name, n)
      readyOp()
    } else {
      if (n.hostKey === h.key && n.version !== version)
        this.event(
          compareReleases(version, n.version) < 0 ? "node-downgraded" : "node-upgraded",
          n.name,
          h.vmid,
          `${n.version} → ${version}`
        )
      const wasReady = n.hostKey === h.key && nodeReady(n, now, this.graceRealMs) === "True"
      if (!wasReady) readyOp()
      Object.assign(n, {
        role,
        hostKey: h.key,
        ip: h.guest.ip,
        hostname: h.guest.hostname.toLowerCase(),
        version,
        readyAt: wasReady ? n.readyAt : ready,
        lostAt: undefined,
        machineId: h.guest.machineId,
        systemUUID: this.systemUUID(h),
        etcdName,
        args,
        env,
        // configureNode's updateMutableLabels at every start: the --node-label labels are set again (merged: a label
        // no longer given stays); the taints are the kubelet's --register-with-taints, applied only when it created
        // the Node: a start does not change them
        labels: { ...n.labels, ...labels },
        resourceVersion: cluster.nextResourceVersion()
      })
    }
    const secretName = `${n.name}.node-password.k3s`
    const pw = this.nodePassword(h)
    const existing = cluster.secrets.get(secretName)
    if (existing === undefined)
      cluster.secrets.set(secretName, {
        name: secretName,
        hash: passwordHash(pw),
        createdAt: now,
        uid: cluster.newUid()
      })
    else if (existing.hash !== passwordHash(pw) && role === "server")
      this.log(
        h,
        "warning",
        `Unable to verify password for node ${n.name}: hash does not match (NodePasswordValidationFailed)`
      )
    this.checkSkew(cluster, n)
    this.syncRuntimeHangs()
    return n
  }

  /**
   * The `k3sNodeNotReady` faults on the Nodes: the kubelet of a VM with one posts Ready=False from when it was added
   * (its container runtime hangs) until it is cleared; its k3s, and a server's etcd member, run on.
   */
  private syncRuntimeHangs(): void {
    const now = this.now()
    let changed = false
    for (const c of this.clusters()) {
      const flips = [...c.nodes.values()].filter((n) => {
        const vmid = this.hostByKey(n.hostKey)?.vmid
        const hung =
          vmid !== undefined &&
          this.faults.has("k3sNodeNotReady", (f) => f.kind === "k3sNodeNotReady" && f.vmid === vmid)
        return hung !== (n.runtimeHungAt !== undefined)
      })
      if (flips.length === 0) continue
      // the pods as they were up to now, before the Nodes' readiness changes
      c.workloads?.reconcile(now)
      for (const n of flips) {
        n.runtimeHungAt = n.runtimeHungAt === undefined ? now : undefined
        n.resourceVersion = c.nextResourceVersion()
      }
      changed = true
    }
    if (changed) this.touch()
  }

  /**
   * Kubernetes' version skew policy (k3s does not enforce it: a skewed node starts, unsupported): HA apiservers
   * within one minor; a kubelet never newer than the oldest apiserver nor more than three minors older. A violation
   * is recorded as a `version-skew` event, so tests can prove a rollout never made one.
   */
  private checkSkew(cluster: K3sCluster, n: NodeRecord): void {
    const servers = [...cluster.nodes.values()].filter((x) => x.role === "server" && x.deletingAt === undefined)
    const minors = servers.map((x) => minorOf(x.version)).filter((m): m is readonly [number, number] => m !== undefined)
    if (minors.length === 0) return
    const key = (m: readonly [number, number]) => m[0] * 1000 + m[1]
    const oldest = Math.min(...minors.map(key))
    const newest = Math.max(...minors.map(key))
    const mine = minorOf(n.version)
    const problems: Array<string> = []
    if (newest - oldest > 1)
      problems.push(
        `apiservers ${servers.map((x) => `${x.name} ${x.version}`).join(", ")} are more than one minor apart`
      )
    // a server's kubelet runs in the process of its own apiserver: only agents can be ahead of the control plane
    if (mine !== undefined && n.role === "agent" && key(mine) > oldest)
      problems.push(`kubelet ${n.name} ${n.version} is newer than the oldest apiserver`)
    if (mine !== undefined && oldest - key(mine) > 3)
      problems.push(`kubelet ${n.name} ${n.version} is more than three minors older than the oldest apiserver`)
    const vmid = this.hostByKey(n.hostKey)?.vmid
    for (const p of problems) this.event("version-skew", n.name, vmid, p)
  }

  writeServerFiles(h: K3sHost, cluster: K3sCluster): void {
    for (const f of TOKEN_FILES) writeGuestFile(h.guest, f, `${cluster.serverToken}\n`, ROOT_ONLY)
    // --write-kubeconfig-mode (K3S_KUBECONFIG_MODE, write-kubeconfig-mode in config.yaml), default 0600
    const mode = h.installed === undefined ? undefined : this.runConfig(h).kubeconfigMode
    const bits = mode !== undefined && /^[0-7]{3,4}$/.test(mode) ? Number.parseInt(mode, 8) : 0o600
    writeGuestFile(h.guest, KUBECONFIG, kubeconfigYaml(cluster), { mode: bits, owner: "root" })
  }

  // ---------------------------------------------------------------- cluster operations (kubectl)

  /**
   * `kubectl delete node`: the API accepts it at once (deletionTimestamp); the Node is gone when its finalizers have
   * run. For an etcd member that is the managed-etcd controller removing the member first (k3s.md §5.2), which etcd's
   * strict reconfiguration check refuses while it would leave fewer started members than the new quorum: then the
   * Node stays `deleting` and the removal is retried until it can commit.
   */
  deleteNode(cluster: K3sCluster, name: string): boolean {
    const n = cluster.nodes.get(name)
    if (n === undefined) return false
    if (n.deletingAt !== undefined) return true
    n.deletingAt = this.now()
    n.resourceVersion = cluster.nextResourceVersion()
    const vmid = this.hostByKey(n.hostKey)?.vmid
    this.event("node-deleting", name, vmid)
    if (n.etcdName === undefined || !cluster.etcdMembers.some((m) => m.name === n.etcdName))
      this.finishNodeDeletion(cluster, n)
    else void this.removeMemberThenNode(cluster, n)
    return true
  }

  /**
   * `kubectl patch node NAME` clearing its finalizers (`{"metadata":{"finalizers":null}}`): the way people force a
   * Node that hangs in deletion out (k3s discussion #14894). The apiserver removes an object that has a
   * deletionTimestamp and no finalizers at once, so a deleting Node is gone now, and the managed-etcd controller never
   * removes its member: the member stays, with no Node left to remove it through (k3s.md §5.2). A Node not being
   * deleted keeps its finalizers: k3s's controllers add theirs again as they see it. `undefined`: no such Node.
   */
  dropFinalizers(cluster: K3sCluster, name: string): boolean | undefined {
    const n = cluster.nodes.get(name)
    if (n === undefined) return undefined
    if (n.deletingAt === undefined) return false
    this.event("node-finalizers-removed", name, this.hostByKey(n.hostKey)?.vmid)
    this.finishNodeDeletion(cluster, n)
    return true
  }

  /** The simulated operation of `k3sNode` (on `h`'s VM) becoming Ready, due in `due` ms (sim time), after `needs`. */
  private beginNodeReady(h: K3sHost, k3sNode: string, due: number, needs?: number | undefined): void {
    const vm = this.state.vms.get(h.vmid)
    this.state.operations.begin({
      operation: "node-ready",
      node: vm?.node ?? "",
      vmid: h.vmid,
      vm: vm?.config.get("name"),
      k3sNode,
      ...(needs === undefined ? {} : { needs: [needs] }),
      due
    })
  }

  private async removeMemberThenNode(cluster: K3sCluster, n: NodeRecord): Promise<void> {
    const vmid = this.hostByKey(n.hostKey)?.vmid
    let refused = false
    const vm = vmid === undefined ? undefined : this.state.vms.get(vmid)
    this.state.operations.begin({
      operation: "etcd-member-remove",
      node: vm?.node ?? "",
      vmid,
      vm: vm?.config.get("name"),
      k3sNode: n.name,
      due: this.t.memberRemoveMs
    })
    await this.sleepSim(this.t.memberRemoveMs)
    for (;;) {
      if (this.stopped || cluster.nodes.get(n.name) !== n) return
      const member = n.etcdName
      if (member === undefined || !cluster.etcdMembers.some((m) => m.name === member)) break
      const why = this.memberRemovalRefusal(cluster, member)
      if (why === undefined) {
        this.removeRunningMember(cluster, member, vmid)
        break
      }
      if (!refused) {
        refused = true
        this.event("etcd-member-remove-refused", member, vmid, why)
        const leader = this.hostList.find((h) => h.cluster === cluster && this.etcdMemberHealthy(cluster, h))
        if (leader !== undefined) this.log(leader, "error", `Failed to remove etcd member ${member}: ${why}`)
      }
      await this.sleepSim(5000)
    }
    this.finishNodeDeletion(cluster, n)
  }

  /** etcd removes `member` (its removal committed): the k3s that runs as it, if any, learns it. */
  private removeRunningMember(cluster: K3sCluster, member: string, vmid: number | undefined): void {
    const running = this.memberHost(cluster, member)
    cluster.removeMember(member)
    this.event("etcd-member-removed", member, vmid)
    // a member removed while it runs: before the January 2026 releases its k3s exits, and comes back only after
    // its etcd data is deleted; since then k3s writes the tombstone, closes etcd and runs on without it until a
    // restart (EtcdTombstone.ts)
    if (running !== undefined && this.alive(running) && this.unitState(running) === "active") {
      const version = this.binaryVersionOf(running) ?? cluster.version
      if (removedMemberRejoins(version)) {
        this.log(running, "warning", ETCD_REMOVED)
        this.log(running, "warning", ETCD_DATA_DIR)
        this.writeTombstone(running)
      } else {
        running.gen += 1
        const attempt: Attempt = { outcome: "pending" }
        running.attempt = attempt
        this.log(running, "warning", ETCD_DATA_DIR)
        this.fatal(running, running.gen, attempt, ETCD_REMOVED)
      }
    }
  }

  /**
   * `etcdctl member remove <hex ID>` against the etcd of server `h` (an etcdctl the user brought: k3s ships none, with
   * its client certificates): etcd removes that member, learner or voter, once the removal can commit (strict
   * reconfiguration check, `memberRemovalRefusal`). The k3s that runs as it learns it as after a Node's deletion.
   */
  etcdctlMemberRemove(
    h: K3sHost,
    hexId: string
  ): { readonly stdout: string; readonly stderr: string; readonly code: number } {
    const cluster = h.cluster
    if (cluster === undefined || !this.etcdMemberHealthy(cluster, h))
      return {
        stdout: "",
        stderr: "Error: context deadline exceeded\n",
        code: 1
      }
    const member = cluster.etcdMembers.find((m) => BigInt(m.id).toString(16) === hexId.toLowerCase())
    if (member === undefined) return { stdout: "", stderr: "Error: etcdserver: member not found\n", code: 1 }
    const why = this.memberRemovalRefusal(cluster, member.name)
    if (why !== undefined) return { stdout: "", stderr: `Error: ${why}\n`, code: 1 }
    this.removeRunningMember(cluster, member.name, this.memberHost(cluster, member.name)?.vmid)
    return { stdout: `Member ${hexId} removed from cluster ${cluster.caHash.slice(0, 16)}\n`, stderr: "", code: 0 }
  }

  /**
   * k3s on `h` ends (a stop, a restart, a fatal exit, its VM stopped, `k3s-uninstall.sh`) without removing its own
   * etcd member: stopping k3s removes nothing from etcd. A learner it added and that is not promoted stays in etcd and
   * makes no progress while its etcd is down (its name file stays too: a later start carries on as that member,
   * `runServer`); the etcd leader's k3s evicts it once it made none for `learnerMaxStallMs` (`manageLearners`).
   */
  leaveLearner(h: K3sHost): void {
    const member = h.learner === undefined ? undefined : h.cluster?.etcdMembers.find((m) => m.name === h.learner)
    if (member !== undefined) member.promoteAt = Number.POSITIVE_INFINITY
    h.learner = undefined
  }

  /**
   * The etcd leader's learner management (k3s pkg/etcd `manageLearners`, `trackLearnerProgress`): every 15 s
   * (`manageTickerTime`, scaled like the other timings) the k3s of the etcd leader asks the learner for its raft applied
   * index; a learner whose etcd runs and answers moves it (a slow one too: `k3sLearnerSlow`), one whose etcd is stopped,
   * gone or paused does not. It warns `Learner <name> stalled at RaftAppliedIndex=N for D` at each look without
   * progress, and once there was none for more than `learnerMaxStallMs` it removes the member (`Removed learner <name>
   * from etcd cluster`, `etcd-member-removed`). Only while the cluster has quorum and a leader whose k3s runs: the
   * progress record is kept in etcd, so a leader that comes back (or a new one) goes on from it. One loop per cluster
   * while it has a learner; it waits on `nextChange` for its next look.
   */
  private async manageLearners(cluster: K3sCluster): Promise<void> {
    if (this.learnerManagers.has(cluster)) return
    this.learnerManagers.add(cluster)
    try {
      const tick = this.clock.scaled(this.t.learnerTickMs)
      let next = this.now() + tick
      for (;;) {
        if (this.stopped) return
        const now = this.now()
        const learner = cluster.etcdMembers.find((m) => cluster.isLearner(m, now))
        if (learner === undefined) {
          this.learnerProgress.delete(cluster)
          return
        }
        if (now >= next) {
          next = now + tick
          this.trackLearner(cluster, learner, now)
        }
        await this.nextChange(Math.max(5, next - this.now()))
      }
    } finally {
      this.learnerManagers.delete(cluster)
    }
  }

  /** One look of the leader's k3s at `learner` (`manageLearners`). */
  private trackLearner(cluster: K3sCluster, learner: EtcdMember, now: number): void {
    if (!this.hasQuorum(cluster)) return
    const leader = cluster.etcdMembers
      .filter((m) => !cluster.isLearner(m, now))
      .map((m) => this.memberHost(cluster, m.name))
      .find((h) => h !== undefined && this.etcdMemberHealthy(cluster, h))
    if (leader === undefined) return
    let p = this.learnerProgress.get(cluster)
    if (p === undefined || p.id !== learner.id || p.name !== learner.name) {
      p = { id: learner.id, name: learner.name, index: 0, lastProgress: now }
      this.learnerProgress.set(cluster, p)
    }
    const host = this.memberHost(cluster, learner.name)
    if (host !== undefined && this.etcdMemberHealthy(cluster, host)) {
      // its etcd answers, and applies what the cluster writes (a slow learner too, only not caught up)
      p.index = p.index === 0 ? 1000 + cluster.etcdMembers.length * 137 : p.index + 23
      p.lastProgress = now
      return
    }
    if (p.lastProgress !== now)
      this.log(
        leader,
        "warning",
        `Learner ${p.name} stalled at RaftAppliedIndex=${p.index} for ${goDuration(now - p.lastProgress)}`
      )
    if (now - p.lastProgress > this.clock.scaled(this.t.learnerStallMs)) {
      cluster.removeMember(learner.name)
      this.learnerProgress.delete(cluster)
      this.log(leader, "warning", `Removed learner ${learner.name} from etcd cluster`)
      this.event("etcd-member-removed", learner.name, host?.vmid, "learner stalled")
    }
  }

  private finishNodeDeletion(cluster: K3sCluster, n: NodeRecord): void {
    const name = n.name
    if (cluster.nodes.get(name) !== n) return
    cluster.nodes.delete(name)
    const vmid = this.hostByKey(n.hostKey)?.vmid
    this.event("node-deleted", name, vmid)
    if (cluster.secrets.delete(`${name}.node-password.k3s`))
      this.event("secret-deleted", `${name}.node-password.k3s`, vmid, "garbage-collected with its Node")
    cluster.workloads?.reconcile(this.now())
    // a kubelet that still runs registers its Node again (k3s.md §5.2): stop k3s before deleting a live agent's Node
    const h = this.hostByKey(n.hostKey)
    if (h !== undefined && n.role === "agent" && h.cluster === cluster && this.unitState(h) === "active") {
      const gen = h.gen
      void this.sleepSim(this.t.joinMs).then(async () => {
        if (!(await this.awake(h, gen)) || cluster.nodes.has(name) || h.installed === undefined) return
        const cfg = this.runConfig(h)
        if (cfg.nodeName !== name) return
        this.registerNode(h, cluster, cfg, "agent", n.version, undefined)
        this.event("node-registered", name, h.vmid, "the agent still runs")
      })
    }
  }

  // ---------------------------------------------------------------- etcd quorum

  /** The host whose etcd runs as `member` (its etcd name file), if any. */
  private memberHost(cluster: K3sCluster, member: string): K3sHost | undefined {
    return this.hostList.find((h) => h.cluster === cluster && h.guest.files.get(ETCD_NAME)?.trim() === member)
  }

  /**
   * An etcd member's process runs and answers: its VM runs this guest, not frozen (a paused member answers no peer:
   * it counts as down for quorum until it is resumed), and its etcd runs — k3s runs etcd inside its own process, so a
   * restarting k3s counts as down from the moment systemd stops it until the new start has started etcd again (the
   * apiserver comes later, `etcdStarted`), and one that exited (a fatal error, systemd's 5 s before the next start)
   * counts as down too.
   */
  private etcdMemberHealthy(cluster: K3sCluster, h: K3sHost): boolean {
    const name = h.guest.files.get(ETCD_NAME)?.trim()
    if (name === undefined || !cluster.etcdMembers.some((m) => m.name === name)) return false
    const st = this.unitState(h)
    return this.responsive(h) && h.etcdRunning === true && (st === "active" || st === "activating")
  }

  /** The start of `h` got as far as its etcd: it runs (and votes, unless a learner) from now on. */
  private etcdStarted(h: K3sHost): void {
    h.etcdRunning = true
    this.touch()
  }

  /** Voting members, and how many of them run. */
  etcdHealth(cluster: K3sCluster): { readonly voters: number; readonly healthy: number; readonly quorum: number } {
    const now = this.now()
    const voters = cluster.etcdMembers.filter((m) => !cluster.isLearner(m, now))
    const healthy = voters.filter((m) => {
      const h = this.memberHost(cluster, m.name)
      return h !== undefined && this.etcdMemberHealthy(cluster, h)
    }).length
    return { voters: voters.length, healthy, quorum: Math.floor(voters.length / 2) + 1 }
  }

  /** ⌊n/2⌋+1 of the voting members run (a cluster without etcd members has nothing to lose). */
  hasQuorum(cluster: K3sCluster): boolean {
    const e = this.etcdHealth(cluster)
    return e.voters === 0 || e.healthy >= e.quorum
  }

  /**
   * At every change of the k3s world: a cluster whose voting members that run fell below ⌊n/2⌋+1 lost its quorum
   * (`etcd-quorum-lost`: from now on its apiservers answer nothing, see `apiState`), one whose members run again has it
   * back (`etcd-quorum-restored`); a cluster-wide event (no `node`), its `detail` counts the members and names those
   * that do not run.
   */
  private noteQuorum(): void {
    if (this.notingQuorum) return
    this.notingQuorum = true
    try {
      const now = this.now()
      for (const c of this.clusters()) {
        if (c.etcdMembers.length === 0) continue
        const e = this.etcdHealth(c)
        const ok = e.voters === 0 || e.healthy >= e.quorum
        const was = this.quorate.get(c) ?? true
        this.quorate.set(c, ok)
        if (was === ok) continue
        const down = c.etcdMembers
          .filter((m) => !c.isLearner(m, now))
          .filter((m) => {
            const h = this.memberHost(c, m.name)
            return h === undefined || !this.etcdMemberHealthy(c, h)
          })
          .map((m) => m.name)
        this.event(
          ok ? "etcd-quorum-restored" : "etcd-quorum-lost",
          "",
          undefined,
          `${e.healthy} of ${e.voters} voting members run, quorum needs ${e.quorum}${down.length === 0 ? "" : `; not running: ${down.join(", ")}`}`
        )
      }
    } finally {
      this.notingQuorum = false
    }
  }

  /** Why etcd refuses to remove `member` now (strict reconfiguration check), or `undefined`. */
  memberRemovalRefusal(cluster: K3sCluster, member: string): string | undefined {
    const now = this.now()
    const m = cluster.etcdMembers.find((x) => x.name === member)
    if (m === undefined || cluster.isLearner(m, now)) return undefined
    if (!this.hasQuorum(cluster)) return "etcdserver: request timed out"
    const others = cluster.etcdMembers.filter((x) => x !== m && !cluster.isLearner(x, now))
    const started = others.filter((x) => {
      const h = this.memberHost(cluster, x.name)
      return h !== undefined && this.etcdMemberHealthy(cluster, h)
    }).length
    return started < Math.floor(others.length / 2) + 1
      ? "etcdserver: re-configuration failed due to not enough started members"
      : undefined
  }

  /**
   * `k3s server --cluster-reset` on `h` (k3s pkg/etcd `Reset`): refused while its k3s runs (its etcd holds the
   * ports); on a server with etcd data, the membership is cut to this one member, which keeps its data (the other
   * servers' Nodes stay, NotReady, until deleted or rejoined): k3s logs the line below and exits 0. The unit stays
   * stopped: `systemctl start k3s` then starts a one-member etcd that has its quorum. The other members' hosts must
   * delete their `server/db` before they rejoin. `undefined`: no etcd data here (not simulated).
   */
  clusterReset(h: K3sHost): { readonly code: number; readonly stderr: string } | undefined {
    const cluster = h.cluster
    const name = h.guest.files.get(ETCD_NAME)?.trim()
    if (cluster === undefined || name === undefined || !cluster.etcdMembers.some((m) => m.name === name))
      return undefined
    const time = new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, "Z")
    const line = (level: string, msg: string) => `time="${time}" level=${level} msg=${JSON.stringify(msg)}\n`
    const st = this.unitState(h)
    if (st === "active" || st === "activating")
      return {
        code: 1,
        stderr: line(
          "fatal",
          "starting kubernetes: preparing server: start managed database: listen tcp 127.0.0.1:2380: bind: address already in use"
        )
      }
    for (const m of [...cluster.etcdMembers]) if (m.name !== name) cluster.removeMember(m.name)
    this.event("etcd-cluster-reset", name, h.guest.vmid, `membership reset to ${name}`)
    return {
      code: 0,
      stderr: line(
        "info",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: k3s's own words, a literal ${datadir}
        "Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. Backup and delete ${datadir}/server/db on each peer etcd server and rejoin the nodes"
      )
    }
  }

  /** The apiserver on this host answers: a running server of a cluster that has etcd quorum. */
  apiState(h: K3sHost): "up" | "down" | "no-quorum" {
    const cluster = h.cluster
    if (
      cluster === undefined ||
      h.installed?.role !== "server" ||
      this.unitState(h) !== "active" ||
      !this.responsive(h)
    )
      return "down"
    // a server on SQLite or an external database has no etcd: its datastore is there while it runs
    if (cluster.datastore !== "etcd") return "up"
    // a server whose etcd closed (its member removed, the tombstone written) runs on, but its apiserver has no datastore
    if (h.etcdRunning !== true) return "no-quorum"
    return this.hasQuorum(cluster) ? "up" : "no-quorum"
  }

  // ---------------------------------------------------------------- cordon, pods

  /** `kubectl cordon` / `uncordon`; `false` when it already was. */
  /** `kubectl label`: the Node's labels after `set` and `remove`, or `undefined` when there is no such Node. */
  setNodeLabels(
    cluster: K3sCluster,
    name: string,
    set: Readonly<Record<string, string>>,
    remove: ReadonlyArray<string>
  ): boolean | undefined {
    const n = cluster.nodes.get(name)
    if (n === undefined) return undefined
    const labels: Record<string, string> = { ...n.labels, ...set }
    for (const k of remove) delete labels[k]
    const changed = JSON.stringify(labels) !== JSON.stringify(n.labels)
    if (changed) {
      n.labels = labels
      n.resourceVersion = cluster.nextResourceVersion()
    }
    return changed
  }

  /**
   * `kubectl taint`: replace the Node's own taints (not cordon's or the node lifecycle's), or `undefined`. (The
   * simulated workloads do not look at these taints.)
   */
  setNodeTaints(cluster: K3sCluster, name: string, taints: ReadonlyArray<NodeTaint>): boolean | undefined {
    const n = cluster.nodes.get(name)
    if (n === undefined) return undefined
    n.taints = taints
    n.resourceVersion = cluster.nextResourceVersion()
    return true
  }

  setUnschedulable(cluster: K3sCluster, name: string, value: boolean): boolean | undefined {
    const n = cluster.nodes.get(name)
    if (n === undefined) return undefined
    if (n.unschedulable === value) return false
    cluster.workloads?.reconcile(this.now())
    n.unschedulable = value
    n.schedulingChangedAt = this.now()
    n.resourceVersion = cluster.nextResourceVersion()
    this.event(value ? "node-cordoned" : "node-uncordoned", name, this.hostByKey(n.hostKey)?.vmid)
    return true
  }

  private nodeViews(cluster: K3sCluster): ReadonlyArray<NodeView> {
    return [...cluster.nodes.values()].map((n) => ({
      name: n.name,
      deleting: n.deletingAt !== undefined,
      ready: (now: number) => nodeReady(n, now, this.graceRealMs) === "True",
      schedulableSince: (now: number) =>
        n.unschedulable || n.deletingAt !== undefined || nodeReady(n, now, this.graceRealMs) !== "True"
          ? undefined
          : Math.max(n.readyAt, n.schedulingChangedAt),
      unknownSince: (now: number) =>
        nodeReady(n, now, this.graceRealMs) === "Unknown" && n.lostAt !== undefined
          ? n.lostAt + this.graceRealMs
          : undefined
    }))
  }

  /** The cluster's pods and the workloads k3s packages (coredns, local-path-provisioner, metrics-server, traefik, svclb) plus the scenario's. */
  attachWorkloads(cluster: K3sCluster, args: ReadonlyArray<string>, createdAt = this.now()): void {
    if (cluster.workloads !== undefined) return
    const disabled = new Set<string>()
    for (let i = 0; i < args.length; i++) {
      const a = args[i] as string
      const v = a === "--disable" ? args[i + 1] : a.startsWith("--disable=") ? a.slice(10) : undefined
      for (const x of (v ?? "").split(",")) if (x !== "") disabled.add(x)
    }
    cluster.disabled = disabled
    const w = new Workloads(
      () => this.nodeViews(cluster),
      () => ({
        podReadyMs: this.clock.scaled(this.t.podReadyMs),
        podTerminateMs: this.clock.scaled(this.t.podTerminateMs),
        unreachableTolerationMs: this.clock.scaled(300_000)
      })
    )
    cluster.workloads = w
    const now = createdAt
    const sys = (name: string, labels: Record<string, string>, emptyDir: boolean) =>
      w.add({ kind: "Deployment", name, namespace: "kube-system", replicas: 1, labels, emptyDir, createdAt: now })
    if (!disabled.has("coredns")) sys("coredns", { "k8s-app": "kube-dns" }, false)
    if (!disabled.has("local-storage")) sys("local-path-provisioner", { app: "local-path-provisioner" }, false)
    if (!disabled.has("metrics-server")) sys("metrics-server", { "k8s-app": "metrics-server" }, true)
    if (!disabled.has("traefik")) {
      sys("traefik", { "app.kubernetes.io/instance": "traefik-kube-system", "app.kubernetes.io/name": "traefik" }, true)
      if (!disabled.has("servicelb"))
        w.add({
          kind: "DaemonSet",
          name: `svclb-traefik-${cluster.caHash.slice(0, 8)}`,
          namespace: "kube-system",
          replicas: 0,
          labels: {
            app: `svclb-traefik-${cluster.caHash.slice(0, 8)}`,
            "svccontroller.k3s.cattle.io/svcname": "traefik"
          },
          emptyDir: false,
          createdAt: now
        })
    }
    for (const x of this.workloadSpecs)
      w.add({
        kind: "Deployment",
        name: x.name,
        namespace: x.namespace ?? "default",
        replicas: x.replicas ?? 1,
        labels: { app: x.name },
        emptyDir: x.emptyDir === true,
        pdb: x.pdb === undefined ? undefined : { name: x.name, ...x.pdb },
        createdAt: now
      })
    // the controllers create the pods when the cluster comes up
    w.reconcile(createdAt)
  }

  deleteSecret(cluster: K3sCluster, name: string): boolean {
    if (!cluster.secrets.delete(name)) return false
    this.event("secret-deleted", name, undefined)
    return true
  }

  // ---------------------------------------------------------------- scenario seeding

  /** Existing k3s guests of the scenario: files, unit active, Node Ready, etcd voting members. */
  seed(scenario: Scenario, simKeys: ReadonlyArray<string>): void {
    const roles = new Map<
      number,
      {
        role: "server" | "agent"
        clusterInit: boolean
        datastore?: "etcd" | "sqlite" | undefined
        nodeName?: string | undefined
        flags?: ReadonlyArray<string> | undefined
      }
    >()
    for (const id of scenario.k3s?.servers ?? []) roles.set(id, { role: "server", clusterInit: false })
    for (const id of scenario.k3s?.agents ?? []) roles.set(id, { role: "agent", clusterInit: false })
    for (const v of scenario.vms ?? [])
      if (v.guest?.k3s !== undefined)
        roles.set(v.vmid, {
          role: v.guest.k3s.role,
          clusterInit: v.guest.k3s.clusterInit === true || v.guest.k3s.datastore === "sqlite",
          datastore: v.guest.k3s.datastore,
          nodeName: v.guest.k3s.nodeName,
          flags: v.guest.k3s.flags
        })
    const order = [...roles.entries()].sort(
      ([, a], [, b]) =>
        Number(b.clusterInit) - Number(a.clusterInit) || (a.role === b.role ? 0 : a.role === "server" ? -1 : 1)
    )
    let first: K3sHost | undefined
    const cluster = this.primary
    const version = cluster.version
    const since = this.now() - 3_600_000
    for (const [vmid, r] of order) {
      const vm = this.state.vms.get(vmid)
      if (vm?.guest === undefined || vm.status !== "running") continue
      const g = vm.guest
      for (const k of simKeys) if (!g.authorizedKeys.includes(k)) g.authorizedKeys.push(k)
      const h = this.host(g)
      const nodeName = (r.nodeName ?? g.hostname).toLowerCase()
      const serverUrl = first === undefined ? undefined : `https://${first.guest.ip}:6443`
      const external = flagValue(r.flags ?? [], ["--datastore-endpoint"]) !== undefined
      // the first server decides where the cluster keeps its state (k3s.md §3.1): --cluster-init starts embedded
      // etcd; without it k3s runs on SQLite, or on the database of --datastore-endpoint
      if (r.role === "server" && first === undefined) {
        cluster.datastore = external ? "external" : r.datastore === "sqlite" ? "sqlite" : "etcd"
        cluster.datastoreEndpoint = flagValue(r.flags ?? [], ["--datastore-endpoint"])
      } else if (r.role === "server" && cluster.datastore === "sqlite")
        throw new Error(
          `scenario: VM ${vmid} runs a k3s server in a cluster whose first server runs on SQLite, which no other server can join; give it role agent, or the first server datastore etcd`
        )
      else if (r.role === "server" && cluster.datastore === "external" && !external)
        throw new Error(
          `scenario: VM ${vmid} runs a k3s server in a cluster on an external datastore without --datastore-endpoint; add the first server's to its k3s.flags`
        )
      const args =
        r.role === "server"
          ? serverUrl === undefined
            ? cluster.datastore === "etcd"
              ? ["server", "--cluster-init"]
              : ["server"]
            : cluster.datastore === "external"
              ? ["server"]
              : ["server", "--server", serverUrl]
          : ["agent", "--server", serverUrl ?? "https://127.0.0.1:6443"]
      args.push(...(r.flags ?? []))
      // a unit k3s cannot start cannot be running either: such a scenario describes no real guest
      const undefinedFlag = firstUndefinedFlag(r.role, r.flags ?? [])
      if (undefinedFlag !== undefined)
        throw new Error(
          `scenario: VM ${vmid} runs k3s ${r.role} with --${undefinedFlag}, a flag k3s ${r.role} does not define (it stops at start: "flag provided but not defined"); drop it from its k3s.flags`
        )
      const env: Record<string, string> = serverUrl === undefined ? {} : { K3S_TOKEN: cluster.serverToken }
      writeInstallFiles(h.guest, r.role === "server" ? "k3s" : "k3s-agent", args, env, version)
      h.installed = { role: r.role, unit: r.role === "server" ? "k3s" : "k3s-agent", args }
      h.enabled = true
      h.cluster = cluster
      let etcdName: string | undefined
      if (r.role === "server" && cluster.datastore === "etcd") {
        const m = cluster.addMember(nodeName, g.ip, since)
        etcdName = m.name
        writeGuestFile(g, ETCD_NAME, `${m.name}\n`, ROOT_ONLY)
        h.etcdRunning = true
      }
      if (r.role === "server" && cluster.datastore === "sqlite") writeGuestFile(g, SQLITE_DB, "", ROOT_ONLY)
      if (r.role === "server") this.writeServerFiles(h, cluster)
      const n = this.registerNode(h, cluster, { nodeName, args, env }, r.role, version, etcdName, since)
      n.readyAt = since
      n.schedulingChangedAt = since
      this.setUnit(h, "active")
      h.attempt = { outcome: "ready" }
      const t = new Date(since).toISOString().replace(/\.\d{3}Z$/, "Z")
      h.journal.push(
        "Starting Lightweight Kubernetes...",
        `time="${t}" level=info msg="Starting k3s${r.role === "agent" ? " agent" : ""} ${version} (${commitOf(version)})"`,
        `time="${t}" level=info msg="${r.role === "agent" ? "k3s agent is up and running" : "k3s is up and running"}"`,
        "Started Lightweight Kubernetes."
      )
      if (first === undefined && r.role === "server") first = h
      // a guest paused as the scenario starts: its heartbeat stops now
      if (this.frozen(h)) this.freeze(h)
    }
    if (first?.installed !== undefined) this.attachWorkloads(cluster, first.installed.args, since)
  }

  snapshot(): K3sSnapshot {
    const c = this.primary
    const now = this.now()
    return {
      version: c.version,
      caHash: c.caHash,
      nodes: [...c.nodes.values()].map((n) => ({
        name: n.name,
        role: n.role,
        ready: nodeReady(n, now, this.graceRealMs),
        ip: n.ip,
        version: n.version,
        vmid: this.hostByKey(n.hostKey)?.vmid ?? null,
        createdAt: new Date(n.createdAt).toISOString(),
        unschedulable: n.unschedulable,
        labels: { ...n.labels },
        taints: n.taints.map((t) => `${t.key}${t.value === undefined ? "" : `=${t.value}`}:${t.effect}`)
      })),
      secrets: [...c.secrets.values()].map((s) => ({ name: s.name, createdAt: new Date(s.createdAt).toISOString() })),
      etcdMembers: c.etcdMembers.map((m) => ({
        id: m.id,
        name: m.name,
        peerURL: m.peerURL,
        isLearner: c.isLearner(m, now)
      })),
      events: [...this.events],
      strayClusters: this.stray.map((s) => ({ caHash: s.caHash, nodes: [...s.nodes.keys()] }))
    }
  }

  async listen(): Promise<void> {
    await this.origin.listen("127.0.0.1", 0)
  }

  async close(): Promise<void> {
    this.stopped = true
    for (const h of this.hostList) if (h.attempt !== undefined) settle(h.attempt, "failed")
    this.touch()
    await this.origin.close().catch(() => {})
  }

  isStopped(): boolean {
    return this.stopped
  }

  /** Owner/mode check helper for commands. */
  isRootOnly(guest: GuestState, path: string): boolean {
    return fileMeta(guest, path).mode === 0o600
  }
}

export const kubeconfigYaml = (c: K3sCluster): string => {
  const b64 = (s: string) => Buffer.from(s).toString("base64")
  return `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ${b64(`-----BEGIN CERTIFICATE-----\nsimulated k3s server CA ${c.caHash}\n-----END CERTIFICATE-----\n`)}
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: ${b64(`-----BEGIN CERTIFICATE-----\nsimulated admin ${c.caHash.slice(0, 16)}\n-----END CERTIFICATE-----\n`)}
    client-key-data: ${b64(`-----BEGIN EC PRIVATE KEY-----\nsimulated ${c.caHash.slice(16, 32)}\n-----END EC PRIVATE KEY-----\n`)}
`
}

const sq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`

/** install.sh's unit: the command word on its own line, then one single-quoted, tab-indented argument per line. */
export const unitFile = (unit: string, args: ReadonlyArray<string>): string => `[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-/etc/systemd/system/${unit}.service.env
KillMode=process
Delegate=yes
User=root
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/k3s \\
    ${args[0] ?? ""}${args
      .slice(1)
      .map((a) => ` \\\n\t${sq(a)}`)
      .join("")} \\

`

export const envFile = (env: Readonly<Record<string, string>>): string =>
  Object.entries(env)
    .map(([k, v]) => `${k}=${sq(v)}\n`)
    .join("")

/** The files install.sh leaves behind (binary, symlinks, scripts, unit, env file). */
export const writeInstallFiles = (
  g: GuestState,
  unit: string,
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>>,
  version: string | undefined
): void => {
  const exec = { mode: 0o755, owner: "root" }
  if (version !== undefined) writeGuestFile(g, BIN, k3sBinary(version), exec)
  for (const l of ["kubectl", "crictl", "ctr"])
    if (!g.files.has(`/usr/local/bin/${l}`)) writeGuestFile(g, `/usr/local/bin/${l}`, "-> k3s\n", exec)
  writeGuestFile(g, "/usr/local/bin/k3s-killall.sh", "#!/bin/sh\n# k3s-killall.sh (simulated)\n", exec)
  writeGuestFile(g, `/usr/local/bin/${unit}-uninstall.sh`, `#!/bin/sh\n# ${unit}-uninstall.sh (simulated)\n`, exec)
  writeGuestFile(g, `/etc/systemd/system/${unit}.service.env`, envFile(env), ROOT_ONLY)
  writeGuestFile(g, `/etc/systemd/system/${unit}.service`, unitFile(unit, args), { mode: 0o644, owner: "root" })
  writeGuestFile(g, `/etc/systemd/system/multi-user.target.wants/${unit}.service`, unitFile(unit, args), {
    mode: 0o644,
    owner: "root"
  })
}
