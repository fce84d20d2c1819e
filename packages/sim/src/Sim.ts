import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Admin } from "./Admin.js"
import { ApiRouter } from "./ApiRouter.js"
import { Auth } from "./Auth.js"
import {
  type ClusterCa,
  generateClusterCa,
  generateNodeCert,
  generateSshKey,
  type NodeCert,
  type SshKeyPair
} from "./Certs.js"
import { SimClock } from "./Clock.js"
import { type CriticalPath, criticalPath } from "./CriticalPath.js"
import { type Fault, Faults } from "./Faults.js"
import { GuestCommands, newGuestState } from "./Guest.js"
import { GuestManager } from "./GuestManager.js"
import { HttpsApi } from "./HttpsApi.js"
import { ImageOrigin, loopbackDownload } from "./ImageOrigin.js"
import { generateCloudInitDrive } from "./internal/CloudInitDrive.js"
import type { ResolvedTimings, SimContext } from "./internal/Context.js"
import type { Params } from "./internal/Params.js"
import { parseDiskSize } from "./internal/PropertyString.js"
import type { ApiCall } from "./internal/Trace.js"
import { DEFAULT_PVE_VERSION, versionFeatures } from "./internal/Version.js"
import { loadsState, removeVmstate } from "./internal/Vmstate.js"
import { addVolume, formatOf, isFileStorage, parseVolid, vtypeOf } from "./internal/Volumes.js"
import { registerK3sCommands } from "./k3s/K3sCommands.js"
import { type K3sEvent, K3sSim, type K3sSnapshot } from "./k3s/K3sSim.js"
import { NodeSsh } from "./NodeSsh.js"
import type { SimOperation } from "./Operations.js"
import { parseSize, type Scenario } from "./Scenario.js"
import { SimError, SimErrorReason } from "./SimError.js"
import { DISK_KEY, type NodeState, parseDrive, type QmpStatus, SimState, type StorageState } from "./SimState.js"
import { TaskRunner, taskStatusJson } from "./Tasks.js"

/** What a started simulator tells its callers (also printed by `homelab-sim` and written to the ready file). */
export interface SimInfo {
  readonly nodes: ReadonlyArray<{
    readonly name: string
    readonly api: string
    readonly ssh: { readonly host: string; readonly port: number }
    readonly fingerprint: string
    readonly sshHostKey: string
  }>
  /** PEM of the cluster CA (pve-root-ca.pem) */
  readonly ca: string
  /** admin API base URL */
  readonly admin: string
  readonly auth: { readonly tokenId: string; readonly tokenSecret: string }
  readonly sshUser: string
  readonly sshPrivateKeyPath: string
  readonly sshPublicKey: string
  readonly guestSshPort: number
  readonly pveVersion: string
  readonly imageOrigin:
    | {
        readonly url: string
        readonly files: ReadonlyArray<{ path: string; url: string; size: number; sha256: string }>
      }
    | undefined
  /** loopback HTTP origin that guests' `curl https://get.k3s.io` (and k3s release downloads) are mapped to */
  readonly k3sOrigin: string
}

export interface RequestLogEntry {
  /** when the request ended, by the simulator's clock (ISO 8601) */
  readonly time: string
  readonly node: string
  readonly transport: "api" | "ssh" | "guest-ssh"
  readonly vmid?: number
  readonly method?: string
  readonly path?: string
  /** api: the query and body parameters, secrets (`*password*`, `*secret*`, `*token*`) redacted */
  readonly params?: Params
  readonly status?: number
  /** api: the request was performed but its answer never sent (`responseLost`); `status` is the answer it had */
  readonly responseLost?: true
  /** ssh, guest-ssh: the command line as received (what `ps` on the host would show) */
  readonly command?: string
  /** ssh: the API handler calls a `pvesh` / `qm` command made, with their parameters (secrets redacted) */
  readonly calls?: ReadonlyArray<ApiCall>
  readonly exitCode?: number
  readonly user?: string
  readonly durationMs: number
}

/** Something the simulator records, as `SimHandle.watch` passes it on. */
export type SimRecord =
  /** a request (API call, node SSH command, guest SSH command) as it ends, before its answer goes out */
  | { readonly _tag: "Request"; readonly request: RequestLogEntry }
  /** an operation as it begins */
  | { readonly _tag: "Operation"; readonly operation: SimOperation }
  | { readonly _tag: "K3sEvent"; readonly event: K3sEvent }
  /**
   * an agent call whose guest-ping (PVE's `qga_check_running` before every agent command) the VM's agent does not
   * answer yet, as the call begins to wait for it: at most 3 s (simulated), less if the agent comes up meanwhile
   */
  | { readonly _tag: "AgentWait"; readonly node: string; readonly vmid: number }
  /**
   * an API request as a `requestHold` fault (a test control) begins to hold it, unanswered: `node`, the node whose API
   * port received it; `path` as after `/api2/json`
   */
  | { readonly _tag: "RequestHeld"; readonly node: string; readonly method: string; readonly path: string }

/** The in-process handle: info plus the admin operations. */
export interface SimHandle {
  readonly info: SimInfo
  /** snapshot of nodes, storages, VMs and tasks (same as GET /state) */
  state(): SimStateSnapshot
  requests(): ReadonlyArray<RequestLogEntry>
  clearRequests(): void
  faults(): ReadonlyArray<Fault>
  addFaults(faults: ReadonlyArray<Fault>): Promise<void>
  clearFaults(filter?: { kind?: string; node?: string; vmid?: number }): Promise<void>
  /** force a VM state (`{status:"running", qmpstatus:"paused"}`, `{lock:"backup"}`, `{lock:null}`) */
  setVmStatus(vmid: number, s: { status?: string; qmpstatus?: string; lock?: string | null }): void
  /**
   * Take a node out of the cluster (`false`: powered off, as `online: false` in the scenario) or back: the others see
   * it offline (`/cluster/resources`, requests proxied to it fail with 595) and its vote goes with it, so the cluster
   * can lose quorum. Its own listeners are left as they are (use the `apiDown` fault for those).
   */
  setNodeOnline(node: string, online: boolean): void
  /**
   * Disables or enables a storage, as `pvesm set STORAGE --disable 1` (or the GUI's "Enable" box) would: storage.cfg
   * is the cluster's, so on every node. A disabled storage is left out of `/cluster/resources`, and its content and
   * volumes cannot be used (`storage 'x' is disabled`); the VMs running on its volumes run on.
   */
  setStorageEnabled(storage: string, enabled: boolean): void
  /** registry of guest commands (add handlers for k3s, kubectl, ...) */
  readonly guestCommands: GuestCommands
  /** k3s activity: cluster init, server join start/finish/failed, agent joins, node/secret/etcd member removal */
  k3sEvents(): ReadonlyArray<K3sEvent>
  /** A mark for `operations` and `criticalPath`: only operations that begin after it count. */
  mark(): number
  /**
   * Calls `listener` with everything the simulator records, at the moment it records it and before it goes on: each
   * request as it ends (`requests`), each operation as it begins (`operations`), each k3s event (`k3sEvents`), each
   * agent call as it begins to wait for a silent agent (`AgentWait`), each API request as a `requestHold` fault begins
   * to hold it (`RequestHeld`). A test acts at an exact point of a run this way
   * (adds a fault once a Node is cordoned, interrupts a run once its create task began, lets an agent come up once a
   * call waits for it) instead of polling for it. A listener that throws does not disturb the simulator: the error is
   * thrown again on its own (an uncaught exception). Returns the function that ends the calls.
   */
  watch(listener: (record: SimRecord) => void): () => void
  /**
   * Every simulated operation since `since` (a `mark()`; default: since the start): PVE tasks, guest boots (start →
   * agent reports the IP), k3s joins, etcd promotions, Nodes turning Ready, each with its simulated duration and the
   * operations it waited for.
   */
  operations(since?: number): ReadonlyArray<SimOperation>
  /**
   * The longest chain of simulated durations through the operations since `since`, following the physical
   * dependencies (not the order the client used): the least time any client could have taken for them, in simulated
   * ms and in real ms at the time scale.
   */
  criticalPath(since?: number): CriticalPath
  stop(): Promise<void>
}

export interface SimStateSnapshot {
  readonly nodes: Array<Record<string, unknown>>
  readonly vms: Array<Record<string, unknown>>
  readonly tasks: Array<Record<string, unknown>>
  /** the simulated k3s cluster: version, nodes, node-password secrets, etcd members, events */
  readonly k3s: K3sSnapshot
}

const resolveTimings = (s: Scenario): ResolvedTimings => {
  const t = s.timings ?? {}
  return {
    taskMs: t.taskMs ?? 200,
    createMs: t.createMs ?? 1500,
    startMs: t.startMs ?? 800,
    stopMs: t.stopMs ?? 500,
    shutdownMs: t.shutdownMs ?? 2000,
    destroyMs: t.destroyMs ?? 600,
    downloadMs: t.downloadMs ?? 1000,
    resizeMs: t.resizeMs ?? 300,
    moveDiskMs: t.moveDiskMs ?? 3000,
    bootMs: t.bootMs ?? 8000,
    agentMs: t.agentMs ?? 5000,
    rrdIntervalMs: t.rrdIntervalMs ?? 10_000,
    unauthorizedDelayMs: t.unauthorizedDelayMs ?? 3000
  }
}

const defaultStorages = (nine: boolean): Array<StorageState> => [
  {
    id: "local",
    type: "dir",
    content: new Set(nine ? ["iso", "vztmpl", "backup", "import"] : ["iso", "vztmpl", "backup"]),
    capacity: 100 * 1024 ** 3,
    path: "/var/lib/vz",
    shared: false,
    volumes: new Map(),
    enabled: true
  },
  {
    id: "local-lvm",
    type: "lvmthin",
    content: new Set(["rootdir", "images"]),
    capacity: 800 * 1024 ** 3,
    path: undefined,
    shared: false,
    volumes: new Map(),
    enabled: true
  }
]

/** How a simulator runs, beyond what it simulates (the `Scenario`). */
export interface SimOptions {
  /**
   * The simulator's wall clock in epoch milliseconds (default `Date.now`). Uptimes, creation times, ticket ages and
   * the RRD lag are read from it; pass a frozen clock (`() => t0`) to make readings taken a moment apart identical.
   */
  readonly now?: (() => number) | undefined
}

/** Start a simulator (Promise API). Prefer `startSim` (scoped Effect) in Effect code. */
/**
 * A name the scenario gives twice where PVE has one of each: a node of the cluster, a storage id or a bridge of one
 * node (each would silently replace the one before it). The first one found, in words, or undefined.
 */
const repeatedNames = (scenario: Scenario): string | undefined => {
  const twice = (names: ReadonlyArray<string>) => names.find((name, i) => names.indexOf(name) !== i)
  const node = twice(scenario.nodes.map((n) => n.name))
  if (node !== undefined) return `nodes: node '${node}' is listed twice`
  for (const n of scenario.nodes) {
    const storage = twice((n.storages ?? []).map((st) => st.id))
    if (storage !== undefined) return `nodes[${n.name}].storages: storage '${storage}' is listed twice`
    const bridge = twice((n.bridges ?? []).map((b) => b.name))
    if (bridge !== undefined) return `nodes[${n.name}].bridges: bridge '${bridge}' is listed twice`
  }
  return undefined
}

export const startSimPromise = async (scenario: Scenario, options: SimOptions = {}): Promise<SimHandle> => {
  const repeated = repeatedNames(scenario)
  if (repeated !== undefined) throw new SimError({ reason: new SimErrorReason.ScenarioInvalid({ message: repeated }) })
  const version = scenario.pveVersion ?? DEFAULT_PVE_VERSION
  const features = versionFeatures(version)
  const clock = new SimClock(scenario.timeScale ?? 1, options.now)
  const timings = resolveTimings(scenario)
  const state = new SimState(clock, features, scenario.clusterName ?? "homelab")
  state.rrdIntervalMs = timings.rrdIntervalMs
  state.quorumOptions = { qdevice: scenario.quorum?.qdevice ?? false, expected: scenario.quorum?.expected }
  const faults = new Faults(scenario.faults ?? [])
  const tasks = new TaskRunner(state, clock, faults)
  const guestCommands = new GuestCommands(() => clock.now())

  // ---- auth: ensure a root token the caller can use
  const users = [...(scenario.users ?? [])]
  let tokenId: string | undefined
  let tokenSecret: string | undefined
  for (const u of users)
    for (const t of u.tokens ?? [])
      if (tokenId === undefined && u.userid === "root@pam") {
        tokenId = `${u.userid}!${t.id}`
        tokenSecret = t.secret
      }
  if (tokenId === undefined) {
    tokenSecret = randomUUID()
    tokenId = "root@pam!homelab"
    const root = users.find((u) => u.userid === "root@pam")
    const tok = { id: "homelab", secret: tokenSecret, privsep: false }
    if (root === undefined) users.push({ userid: "root@pam", tokens: [tok] })
    else users[users.indexOf(root)] = { ...root, tokens: [...(root.tokens ?? []), tok] }
  }
  const auth = new Auth({ ...scenario, users }, clock, features.nine)

  // ---- keys and certificates
  const clientKey = generateSshKey("homelab-sim-client")
  const keyDir = mkdtempSync(join(tmpdir(), "homelab-sim-"))
  const keyPath = join(keyDir, "id_ed25519")
  writeFileSync(keyPath, clientKey.privateKey, { mode: 0o600 })
  writeFileSync(`${keyPath}.pub`, `${clientKey.publicKey}\n`, { mode: 0o644 })
  const authorizedKeys = [...(scenario.authorizedKeys ?? []), clientKey.publicKey]
  const ca: ClusterCa = await generateClusterCa(randomUUID())
  const certs: Array<NodeCert> = await Promise.all(
    scenario.nodes.map((n) => generateNodeCert(ca, n.name, [n.address ?? "127.0.0.1"]))
  )
  let otherCa: ClusterCa | undefined
  const untrustedCerts = new Map<string, NodeCert>()
  const untrustedFor = async (node: NodeState): Promise<NodeCert> => {
    let c = untrustedCerts.get(node.name)
    if (c === undefined) {
      otherCa ??= await generateClusterCa(randomUUID())
      c = await generateNodeCert(otherCa, node.name, [node.address])
      untrustedCerts.set(node.name, c)
    }
    return c
  }

  // ---- nodes
  for (const [i, n] of scenario.nodes.entries()) {
    if (n.pveVersion !== undefined) state.setNodeFeatures(n.name, versionFeatures(n.pveVersion))
    const storages = new Map<string, StorageState>()
    if (n.storages === undefined) for (const s of defaultStorages(state.featuresOf(n.name).nine)) storages.set(s.id, s)
    else
      for (const s of n.storages) {
        const st: StorageState = {
          id: s.id,
          type: s.type,
          content: new Set(s.content),
          capacity: parseSize(s.capacity, 100 * 1024 ** 3),
          path:
            s.path ??
            (s.id === "local" ? "/var/lib/vz" : s.type === "dir" || s.type === "nfs" ? `/mnt/pve/${s.id}` : undefined),
          shared: s.shared ?? s.type === "nfs",
          volumes: new Map(),
          enabled: true
        }
        for (const f of s.files ?? []) {
          const vol = f.volid.includes(":") ? f.volid.slice(f.volid.indexOf(":") + 1) : f.volid
          const vtype = f.content ?? vtypeOf(st, vol)
          addVolume(st, {
            volname: vol,
            content: vtype,
            format: formatOf(vol, vtype),
            size: parseSize(f.size, 1024 * 1024),
            ctime: Math.floor(clock.now() / 1000) - 86400
          })
        }
        storages.set(s.id, st)
      }
    const bridges = new Map(
      (n.bridges ?? [{ name: "vmbr0", active: true }]).map((b) => [
        b.name,
        { name: b.name, active: b.active ?? true, address: b.address, comments: b.comments }
      ])
    )
    state.nodes.set(n.name, {
      name: n.name,
      cpus: n.cpus ?? 8,
      memory: parseSize(n.memory, 32 * 1024 ** 3),
      address: n.address ?? "127.0.0.1",
      apiPort: n.apiPort ?? 8006,
      sshPort: n.sshPort ?? 22,
      online: n.online ?? true,
      bridges,
      storages,
      tasks: new Map(),
      taskIndex: [],
      bootTime: clock.now() - 864123_000,
      fingerprint: (certs[i] as NodeCert).fingerprint
    })
  }

  // ---- image origin
  const origin =
    scenario.imageOrigin === undefined
      ? undefined
      : new ImageOrigin(
          scenario.imageOrigin.files.map((f) => ({ path: f.path, size: parseSize(f.size, 0), sha256: f.sha256 }))
        )

  const guests = new GuestManager(
    state,
    clock,
    faults,
    timings,
    guestCommands,
    scenario.ipPool ?? "127.77.0.10",
    scenario.guestSshPort ?? 22
  )
  const k3s = new K3sSim(scenario.k3s, state, clock, faults)
  registerK3sCommands(guestCommands, k3s)
  const ctx: SimContext = { state, auth, tasks, faults, clock, guests, timings, download: loopbackDownload }
  const router = new ApiRouter(ctx)

  // ---- existing VMs
  for (const v of scenario.vms ?? []) {
    if (!state.nodes.has(v.node))
      throw new SimError({
        reason: new SimErrorReason.ScenarioInvalid({ message: `vms: VM ${v.vmid} is on unknown node '${v.node}'` })
      })
    if (state.vms.has(v.vmid))
      throw new SimError({ reason: new SimErrorReason.ScenarioInvalid({ message: `vms: duplicate vmid ${v.vmid}` }) })
    const config = new Map<string, string>()
    for (const [k, val] of Object.entries(v.config ?? {})) config.set(k, String(val))
    if (v.name !== undefined) config.set("name", v.name)
    if (v.tags !== undefined) config.set("tags", v.tags)
    if (v.protection === true) config.set("protection", "1")
    if (v.template === true) config.set("template", "1")
    if (v.lock !== undefined) config.set("lock", v.lock)
    if (!config.has("memory") && v.type !== "lxc") config.set("memory", "2048")
    const vm = state.newVm(v.vmid, v.node, v.type ?? "qemu", config, false)
    const node = state.nodes.get(v.node) as NodeState
    for (const [k, val] of config) {
      if (!(DISK_KEY.test(k) || /^unused\d+$/.test(k))) continue
      const d = parseDrive(val)
      const vid = parseVolid(d.file)
      const s = vid === undefined ? undefined : node.storages.get(vid.storage)
      if (vid === undefined || s === undefined || s.volumes.has(vid.volname) || (/cdrom/.test(val) && isFileStorage(s)))
        continue
      addVolume(s, {
        volname: vid.volname,
        content: "images",
        format: isFileStorage(s) ? "qcow2" : "raw",
        size: parseDiskSize(d.opts.size ?? "4M")?.bytes ?? 4 * 1024 * 1024,
        ctime: Math.floor(clock.now() / 1000) - 86400,
        vmid: v.vmid
      })
    }
    if (v.ip !== undefined) {
      vm.ip = v.ip
      guests.reserveIp(v.ip)
    }
    // A VM found in place was started from its config once: its cloud-init drive has what the config says (one
    // whose snippets are missing has no drive yet; its start fails as PVE's does).
    try {
      generateCloudInitDrive(node, vm)
    } catch {
      vm.cloudInitDrive = undefined
    }
    const status = v.status ?? (v.qmpstatus !== undefined && v.qmpstatus !== "stopped" ? "running" : "stopped")
    if (status === "running") {
      state.setRun(vm, "running", (v.qmpstatus ?? "running") as QmpStatus)
      if (v.uptime !== undefined) vm.startedAt = clock.now() - v.uptime * 1000
      vm.lastChangeAt = 0
      vm.rrd = { status: vm.qmpstatus, name: config.get("name") ?? `VM ${v.vmid}`, known: true }
      if (v.guest !== undefined) {
        vm.guest = newGuestState(
          v.vmid,
          v.guest.hostname ?? config.get("name") ?? `VM${v.vmid}`,
          v.guest.user ?? config.get("ciuser") ?? "ubuntu",
          [...(v.guest.authorizedKeys ?? [])],
          v.ip ?? "",
          0
        )
        for (const [p, c] of Object.entries(v.guest.files ?? {})) vm.guest.files.set(p, c)
        for (const [s, c] of Object.entries(v.guest.services ?? {})) vm.guest.services.set(s, c)
      }
    }
  }

  // ---- request log
  const log: Array<RequestLogEntry> = []
  const watchers = new Set<(record: SimRecord) => void>()
  const notify = (r: SimRecord) => {
    for (const w of [...watchers])
      try {
        w(r)
      } catch (e) {
        queueMicrotask(() => {
          throw e
        })
      }
  }
  state.operations.onBegin = (operation) => notify({ _tag: "Operation", operation })
  k3s.onEvent = (event) => notify({ _tag: "K3sEvent", event })
  const record = (e: RequestLogEntry) => {
    log.push(e)
    if (log.length > 50_000) log.splice(0, log.length - 50_000)
    notify({ _tag: "Request", request: e })
  }

  guests.onAgentWait = (e) => notify({ _tag: "AgentWait", node: e.node, vmid: e.vmid })
  guests.onCommand = (e) =>
    record({
      time: new Date(clock.now()).toISOString(),
      node: e.node,
      transport: "guest-ssh",
      vmid: e.vmid,
      command: e.command,
      exitCode: e.code,
      durationMs: e.durationMs
    })

  // ---- servers
  const apis = new Map<string, HttpsApi>()
  const sshs = new Map<string, NodeSsh>()
  const hostKeys = new Map<string, SshKeyPair>()
  const isNodeUp = (name: string) => {
    const n = state.nodes.get(name)
    return n?.online === true && apis.get(name)?.listening === true
  }
  const listenAll = async () => {
    await Promise.all(
      [...state.nodes.values()].map(async (node, i) => {
        const cert = certs[i] as NodeCert
        const api = new HttpsApi(
          node,
          ctx,
          router,
          { cert: cert.cert, key: cert.key },
          () => untrustedFor(node),
          (e) =>
            record({
              time: new Date(clock.now()).toISOString(),
              node: e.node,
              transport: "api",
              method: e.method,
              path: e.path,
              params: e.params,
              status: e.status,
              ...(e.user !== undefined ? { user: e.user } : {}),
              ...(e.responseLost === true ? { responseLost: true as const } : {}),
              durationMs: e.durationMs
            }),
          isNodeUp
        )
        api.onHold = (e) => notify({ _tag: "RequestHeld", node: e.node, method: e.method, path: e.path })
        apis.set(node.name, api)
        if (faults.nodeFault("untrustedCert", node.name)) await api.useUntrustedCert(true)
        node.apiPort = await api.listen(node.address, node.apiPort)
        const hk = generateSshKey(`root@${node.name}`)
        hostKeys.set(node.name, hk)
        const ssh = new NodeSsh(
          node,
          ctx,
          router,
          hk,
          () => authorizedKeys,
          (e) =>
            record({
              time: new Date(clock.now()).toISOString(),
              node: e.node,
              transport: "ssh",
              command: e.command,
              ...(e.calls.length > 0 ? { calls: e.calls } : {}),
              exitCode: e.code,
              durationMs: e.durationMs
            })
        )
        const caFile = Buffer.from(ca.cert)
        ssh.files.set("/etc/pve/pve-root-ca.pem", caFile)
        ssh.files.set(`/etc/pve/nodes/${node.name}/pve-ssl.pem`, Buffer.from(cert.cert))
        sshs.set(node.name, ssh)
        node.sshPort = await ssh.listen(node.address, node.sshPort)
      })
    )
  }
  const admin = new Admin({
    state: () => snapshot(),
    requests: () => log,
    clearRequests: () => {
      log.length = 0
    },
    faults: () => faults.all(),
    addFaults: (f) => addFaults(f),
    clearFaults: (f) => clearFaults(f),
    setVmStatus: (vmid, s) => setVmStatus(vmid, s),
    mark: () => state.operations.mark(),
    operations: (since) => state.operations.since(since),
    criticalPath: (since) => pathSince(since)
  })
  const closeAll = async () => {
    tasks.abortAll()
    await guests.closeAll()
    await Promise.all([...apis.values()].map((a) => a.close()))
    await Promise.all([...sshs.values()].map((s) => s.close()))
    await admin.close().catch(() => {})
    await origin?.close().catch(() => {})
    await k3s.close()
  }
  try {
    await listenAll()
    if (origin !== undefined) await origin.listen("127.0.0.1", scenario.imageOrigin?.port ?? 0)
    await admin.listen("127.0.0.1", scenario.adminPort ?? 0)
    await k3s.listen()
    // A node whose API is down from the start has its port freed only now: freed while the other servers were still
    // binding ephemeral ports on the same address (its own SSH server among them), the port could go to one of them,
    // and a client would find an SSH banner where the API was (a TLS error, not a refused connection).
    for (const node of state.nodes.values())
      if (faults.nodeFault("apiDown", node.name)) await apis.get(node.name)?.close()
  } catch (e) {
    await closeAll()
    rmSync(keyDir, { recursive: true, force: true })
    throw new SimError({ reason: new SimErrorReason.StartFailed({ message: (e as Error).message }) })
  }
  // boot guests of VMs that are already running
  for (const vm of state.vms.values()) if (vm.status === "running" && vm.type === "qemu") guests.boot(vm, true)
  // existing k3s guests (they accept the simulator's client key, like the operator's key in a real homelab)
  k3s.seed(scenario, authorizedKeys)

  // ---- faults with side effects
  const applyFaultEffects = async (added: ReadonlyArray<Fault>, removed: ReadonlyArray<Fault>) => {
    for (const f of [...added, ...removed]) {
      const on = added.includes(f)
      if (f.kind === "untrustedCert")
        await apis.get(f.node)?.useUntrustedCert(faults.nodeFault("untrustedCert", f.node))
      else if (f.kind === "apiDown") {
        const api = apis.get(f.node)
        const node = state.nodes.get(f.node)
        if (api === undefined || node === undefined) continue
        if (faults.nodeFault("apiDown", f.node)) await api.close()
        else if (!api.listening) await api.listen(node.address, node.apiPort)
      } else if (f.kind === "vmStuck" && on) {
        const vm = state.vms.get(f.vmid)
        if (vm !== undefined && vm.status === "running") {
          if (f.state === "stopped") {
            state.setRun(vm, "stopped", "stopped")
            state.emit(vm, "stopped")
          } else state.setRun(vm, "running", f.state)
        }
      } else if (f.kind === "lockLeft" && on) {
        const vm = state.vms.get(f.vmid)
        if (vm !== undefined) {
          state.touch(vm)
          vm.config.set("lock", f.lock)
        }
      } else if (f.kind === "guestSshRefused") {
        const vm = state.vms.get(f.vmid)
        if (vm !== undefined) await guests.refreshSsh(vm)
      }
    }
  }
  await applyFaultEffects(faults.all(), [])
  const addFaults = async (f: ReadonlyArray<Fault>) => {
    faults.add(f)
    await applyFaultEffects(f, [])
  }
  const clearFaults = async (filter?: { kind?: string; node?: string; vmid?: number }) => {
    const before = [...faults.all()]
    faults.clear(filter)
    const after = new Set(faults.all())
    await applyFaultEffects(
      [],
      before.filter((f) => !after.has(f))
    )
  }
  const setVmStatus = (vmid: number, s: { status?: string; qmpstatus?: string; lock?: string | null }) => {
    const vm = state.vms.get(vmid)
    if (vm === undefined) throw new Error(`no VM ${vmid}`)
    if (s.lock !== undefined) {
      state.touch(vm)
      if (s.lock === null) vm.config.delete("lock")
      else vm.config.set("lock", s.lock)
    }
    if (s.status !== undefined || s.qmpstatus !== undefined) {
      const qmp = (s.qmpstatus ?? (s.status === "stopped" ? "stopped" : "running")) as QmpStatus
      const status = s.status === "stopped" || qmp === "stopped" ? "stopped" : "running"
      const wasRunning = vm.status === "running"
      // started outside the API (HA, a node boot with onboot): PVE's start regenerates the cloud-init drive too
      if (status === "running" && !wasRunning) {
        const node = state.nodes.get(vm.node)
        if (node !== undefined)
          try {
            generateCloudInitDrive(node, vm)
          } catch {
            // a missing snippet: the guest keeps the drive it had
          }
      }
      // started outside the API from a suspend to disk: QEMU loads the saved RAM if the config still names it
      const loads = status === "running" && !wasRunning && loadsState(vm)
      if (status === "running" && !wasRunning && !loads && vm.hibernated !== undefined) {
        vm.hibernated = undefined
        state.setRun(vm, "stopped", "stopped")
        state.emit(vm, "stopped")
      }
      if (loads) {
        vm.hibernated = undefined
        removeVmstate(state, vm)
      }
      state.setRun(vm, status, status === "stopped" ? "stopped" : qmp)
      if (status === "stopped" && wasRunning) state.emit(vm, "stopped")
      if (status === "running" && !wasRunning) state.emit(vm, loads ? "resumed" : "started")
    }
  }

  const pathSince = (since = 0): CriticalPath =>
    criticalPath(state.operations.since(since), { since, timeScale: clock.timeScale })

  const snapshot = (): SimStateSnapshot => ({
    nodes: [...state.nodes.values()].map((n) => ({
      name: n.name,
      address: n.address,
      apiPort: n.apiPort,
      sshPort: n.sshPort,
      online: n.online,
      apiListening: apis.get(n.name)?.listening === true,
      fingerprint: n.fingerprint,
      bridges: [...n.bridges.values()].map((b) => ({
        name: b.name,
        active: b.active && faults.bridgeState(n.name, b.name) === undefined,
        missing: faults.bridgeState(n.name, b.name) === "missing"
      })),
      storages: [...n.storages.values()].map((s) => ({
        ...state.storageStatus(n, s),
        full: faults.storageFull(n.name, s.id),
        volumes: [...s.volumes.values()].map((v) => ({
          volid: `${s.id}:${v.volname}`,
          content: v.content,
          format: v.format,
          size: v.size,
          ...(v.vmid !== undefined ? { vmid: v.vmid } : {}),
          ...(v.sha256 !== undefined ? { sha256: v.sha256 } : {})
        }))
      }))
    })),
    vms: [...state.vms.values()].map((vm) => ({
      vmid: vm.vmid,
      node: vm.node,
      type: vm.type,
      name: vm.config.get("name") ?? `VM ${vm.vmid}`,
      status: vm.status,
      qmpstatus: vm.qmpstatus,
      lock: vm.config.get("lock") ?? null,
      tags: vm.config.get("tags") ?? null,
      config: Object.fromEntries(vm.config),
      pending: Object.fromEntries(vm.pending),
      ip: vm.ip ?? null,
      agentRunning: guests.agentRunning(vm),
      guestSshPort: guests.sshPort(vm.vmid) ?? null,
      guestSshError: guests.sshError(vm.vmid) ?? null,
      guest:
        vm.guest === undefined
          ? null
          : {
              hostname: vm.guest.hostname,
              user: vm.guest.user,
              files: [...vm.guest.files.keys()],
              services: Object.fromEntries(vm.guest.services)
            }
    })),
    tasks: [...state.nodes.values()].flatMap((n) =>
      [...n.tasks.values()].map((t) => ({ ...taskStatusJson(t), log: t.log }))
    ),
    k3s: k3s.snapshot()
  })

  const info: SimInfo = {
    nodes: [...state.nodes.values()].map((n) => ({
      name: n.name,
      api: `https://${n.address}:${n.apiPort}`,
      ssh: { host: n.address, port: n.sshPort },
      fingerprint: n.fingerprint,
      sshHostKey: hostKeyLine(hostKeys.get(n.name))
    })),
    ca: ca.cert,
    admin: `http://127.0.0.1:${admin.port}`,
    auth: { tokenId, tokenSecret: tokenSecret ?? "" },
    sshUser: "root",
    sshPrivateKeyPath: keyPath,
    sshPublicKey: clientKey.publicKey,
    guestSshPort: scenario.guestSshPort ?? 22,
    pveVersion: version,
    imageOrigin: origin === undefined ? undefined : { url: `http://127.0.0.1:${origin.port}`, files: origin.list() },
    k3sOrigin: k3s.origin.url
  }

  let stopped = false
  return {
    info,
    state: snapshot,
    requests: () => [...log],
    clearRequests: () => {
      log.length = 0
    },
    faults: () => faults.all(),
    addFaults,
    clearFaults,
    setVmStatus,
    setNodeOnline: (name, online) => {
      const n = state.nodes.get(name)
      if (n === undefined) throw new Error(`no node '${name}' in the scenario`)
      n.online = online
    },
    setStorageEnabled: (id, enabled) => {
      const found = [...state.nodes.values()].flatMap((n) => {
        const s = n.storages.get(id)
        return s === undefined ? [] : [s]
      })
      if (found.length === 0) throw new Error(`no storage '${id}' in the scenario`)
      for (const s of found) s.enabled = enabled
    },
    guestCommands,
    k3sEvents: () => [...k3s.events],
    mark: () => state.operations.mark(),
    watch: (listener) => {
      const w = (r: SimRecord) => listener(r)
      watchers.add(w)
      return () => {
        watchers.delete(w)
      }
    },
    operations: (since) => state.operations.since(since),
    criticalPath: pathSince,
    stop: async () => {
      if (stopped) return
      stopped = true
      await closeAll()
      rmSync(keyDir, { recursive: true, force: true })
    }
  }
}

const hostKeyLine = (k: SshKeyPair | undefined): string => (k === undefined ? "" : k.publicKey)

/** Start a simulator as a scoped Effect: every server closes when the scope closes. */
export const startSim = (
  scenario: Scenario,
  options: SimOptions = {}
): Effect.Effect<SimHandle, SimError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => startSimPromise(scenario, options),
      catch: (e) =>
        e instanceof SimError
          ? e
          : new SimError({ reason: new SimErrorReason.StartFailed({ message: (e as Error).message ?? String(e) }) })
    }),
    (h) => Effect.promise(() => h.stop())
  )
