import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { parse as parseYaml } from "yaml"
import { SimError, SimErrorReason } from "./SimError.js"

const Size = Schema.Union([
  Schema.Number,
  Schema.String.check(Schema.isPattern(/^\d+(\.\d+)?\s*[KMGT]?i?B?$/i, { expected: "a size like 100G, 512M or bytes" }))
])

const VmidNumber = Schema.Number.check(Schema.isInt())

export const BridgeSpec = Schema.Struct({
  name: Schema.String,
  active: Schema.optional(Schema.Boolean),
  address: Schema.optional(Schema.String),
  comments: Schema.optional(Schema.String)
})

export const StorageSpec = Schema.Struct({
  id: Schema.String,
  type: Schema.Literals(["dir", "lvmthin", "lvm", "zfspool", "nfs"]),
  content: Schema.Array(Schema.Literals(["iso", "vztmpl", "backup", "import", "snippets", "images", "rootdir"])),
  capacity: Schema.optional(Size),
  path: Schema.optional(Schema.String),
  shared: Schema.optional(Schema.Boolean),
  files: Schema.optional(
    Schema.Array(
      Schema.Struct({
        volid: Schema.String,
        size: Schema.optional(Size),
        content: Schema.optional(Schema.String)
      })
    )
  )
})

export const NodeSpec = Schema.Struct({
  name: Schema.String.check(
    Schema.isPattern(/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/, { expected: "a node name (letters, digits, '-')" })
  ),
  cpus: Schema.optional(Schema.Number.check(Schema.isInt())),
  memory: Schema.optional(Size),
  address: Schema.optional(Schema.String),
  apiPort: Schema.optional(Schema.Number.check(Schema.isInt())),
  sshPort: Schema.optional(Schema.Number.check(Schema.isInt())),
  bridges: Schema.optional(Schema.Array(BridgeSpec)),
  storages: Schema.optional(Schema.Array(StorageSpec)),
  online: Schema.optional(Schema.Boolean),
  /**
   * This node's PVE version, when it differs from the scenario's `pveVersion` (a cluster in the middle of a rolling
   * upgrade): what its API answers with, and the behaviour of the requests proxied to it. Privileges and roles stay
   * the scenario's version's (they live in the cluster's shared config).
   */
  pveVersion: Schema.optional(Schema.String.check(Schema.isPattern(/^\d+\.\d+(\.\d+)?$/, { expected: "x.y[.z]" })))
})

export const TokenSpec = Schema.Struct({
  id: Schema.String,
  secret: Schema.String,
  privsep: Schema.optional(Schema.Boolean)
})

export const UserSpec = Schema.Struct({
  userid: Schema.String.check(Schema.isPattern(/^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+$/, { expected: "user@realm" })),
  password: Schema.optional(Schema.String),
  enable: Schema.optional(Schema.Boolean),
  tokens: Schema.optional(Schema.Array(TokenSpec))
})

export const AclSpec = Schema.Struct({
  path: Schema.String,
  /** user id (`user@realm`) or token id (`user@realm!token`) */
  ugid: Schema.String,
  role: Schema.String,
  propagate: Schema.optional(Schema.Boolean)
})

export const VmSpec = Schema.Struct({
  vmid: VmidNumber,
  node: Schema.String,
  type: Schema.optional(Schema.Literals(["qemu", "lxc"])),
  name: Schema.optional(Schema.String),
  status: Schema.optional(Schema.Literals(["running", "stopped"])),
  qmpstatus: Schema.optional(Schema.Literals(["running", "paused", "prelaunch", "suspended", "stopped"])),
  tags: Schema.optional(Schema.String),
  protection: Schema.optional(Schema.Boolean),
  lock: Schema.optional(Schema.String),
  template: Schema.optional(Schema.Boolean),
  /** Raw config keys (`cores: 2`, `net0: virtio=...,bridge=vmbr0`, `agent: "1"`, ...). */
  config: Schema.optional(Schema.Record(Schema.String, Schema.Union([Schema.String, Schema.Number]))),
  /** Seconds the VM has been running when the simulation starts (running VMs; default 0). */
  uptime: Schema.optional(Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))),
  /** Fixed guest IP (otherwise one is taken from the pool when the VM boots with cloud-init). */
  ip: Schema.optional(Schema.String),
  /** Guest facts for VMs that exist already (e.g. services for a later k3s scenario). */
  guest: Schema.optional(
    Schema.Struct({
      hostname: Schema.optional(Schema.String),
      user: Schema.optional(Schema.String),
      authorizedKeys: Schema.optional(Schema.Array(Schema.String)),
      files: Schema.optional(Schema.Record(Schema.String, Schema.String)),
      services: Schema.optional(Schema.Record(Schema.String, Schema.String)),
      /** k3s already installed and running in this guest (see the README section "k3s inside guests") */
      k3s: Schema.optional(
        Schema.Struct({
          role: Schema.Literals(["server", "agent"]),
          /** the server that started the cluster (`--cluster-init`); at most one per scenario */
          clusterInit: Schema.optional(Schema.Boolean),
          /**
           * Where the cluster this first server started keeps its state: `etcd` (the default: started with
           * `--cluster-init`) or `sqlite` (installed the default way, `curl -sfL https://get.k3s.io | sh -`: no
           * `--cluster-init`, so k3s runs on SQLite; its Node has no etcd role, no server can join it, agents can). A
           * `--datastore-endpoint` among its `flags` makes it an external datastore instead (servers join with the
           * same endpoint). Only for the first server (`clusterInit`, or the one with `sqlite`)
           */
          datastore: Schema.optional(Schema.Literals(["etcd", "sqlite"])),
          /** node name (default: the lowercased hostname) */
          nodeName: Schema.optional(Schema.String),
          /**
           * further k3s flags it was installed with, after the command word and the join flags (`--disable=traefik`,
           * `--node-label`, `tier=gold`): in its unit's ExecStart and its Node's `k3s.io/node-args`. Only flags its
           * role's k3s defines (an agent with `--disable` could not be running): another one fails the scenario
           */
          flags: Schema.optional(Schema.Array(Schema.String))
        })
      )
    })
  )
})

/** The simulated k3s cluster (k3s.md §8). */
export const K3sSpec = Schema.Struct({
  /** cluster version, default `v1.30.5+k3s1` */
  version: Schema.optional(
    Schema.String.check(Schema.isPattern(/^v\d+\.\d+\.\d+\+k3s\d+$/, { expected: "v1.30.5+k3s1" }))
  ),
  /** what the `stable` channel resolves to when INSTALL_K3S_VERSION is not set (default `v1.31.5+k3s1`) */
  stableVersion: Schema.optional(Schema.String),
  /**
   * releases on the simulated GitHub release origin (default: a built-in list of real releases, see the README); the
   * cluster `version` and `stableVersion` are always there. An `INSTALL_K3S_VERSION` not in it fails as install.sh does
   */
  releases: Schema.optional(
    Schema.Array(Schema.String.check(Schema.isPattern(/^v\d+\.\d+\.\d+\+k3s\d+$/, { expected: "v1.30.5+k3s1" })))
  ),
  /** extra or overriding update channels (`stable`, `latest`, `testing`, `v1.30`: newest patch of each minor) */
  channels: Schema.optional(Schema.Record(Schema.String, Schema.String)),
  /** running VMs whose guests already run a k3s server (the first one started the cluster) */
  servers: Schema.optional(Schema.Array(VmidNumber)),
  /** running VMs whose guests already run a k3s agent */
  agents: Schema.optional(Schema.Array(VmidNumber)),
  /**
   * A test control for journald's asynchrony: in these VMs, `journalctl` shows only the lines that were already written
   * when `journalctl` last ran there (its first run shows them all); the lines written since appear at the next read.
   * journald writes what systemd and k3s log a moment after they log it, so a read right after `systemctl restart
   * --no-block` may not show that start's `Starting …` line yet, while a line the replaced k3s wrote after the previous
   * read shows up only now. Counting reads instead of time makes that moment deterministic.
   */
  journalLag: Schema.optional(Schema.Array(VmidNumber)),
  /** the server token's password part (default: 32 random hex characters) */
  token: Schema.optional(Schema.String),
  /** simulated ms from unit start to the Node object (agents) or the etcd learner (servers); default 5000 */
  joinDelayMs: Schema.optional(Schema.Number),
  /** simulated ms from Node creation to Ready=True; default 10000 */
  readyDelayMs: Schema.optional(Schema.Number),
  /** simulated ms a new etcd learner needs to be promoted to a voting member; default 15000 */
  learnerPromotionDelayMs: Schema.optional(Schema.Number),
  /**
   * simulated ms an etcd learner may make no progress (its etcd stopped, gone or paused) before the etcd leader's k3s
   * removes it from the cluster (k3s pkg/etcd `learnerMaxStallTime`, checked every 15 s); default 300000
   */
  learnerMaxStallMs: Schema.optional(Schema.Number),
  /** simulated ms the managed-etcd controller takes to remove a deleted server Node's member; default 1000 */
  memberRemoveDelayMs: Schema.optional(Schema.Number),
  /** simulated ms from a pod's scheduling to Ready; default 5000 */
  podReadyDelayMs: Schema.optional(Schema.Number),
  /** simulated ms an evicted pod takes to terminate; default 2000 */
  podTerminateDelayMs: Schema.optional(Schema.Number),
  /** Deployments running in the cluster besides k3s's packaged ones (pods labelled `app: <name>`) */
  workloads: Schema.optional(
    Schema.Array(
      Schema.Struct({
        name: Schema.String,
        /** default `default` */
        namespace: Schema.optional(Schema.String),
        /** default 1 */
        replicas: Schema.optional(Schema.Number),
        /** pods mount an emptyDir (drain needs `--delete-emptydir-data`) */
        emptyDir: Schema.optional(Schema.Boolean),
        /** a PodDisruptionBudget named after the Deployment */
        pdb: Schema.optional(
          Schema.Struct({
            minAvailable: Schema.optional(Schema.Union([Schema.Number, Schema.String])),
            maxUnavailable: Schema.optional(Schema.Union([Schema.Number, Schema.String]))
          })
        )
      })
    )
  )
})

export const OriginFileSpec = Schema.Struct({
  path: Schema.String,
  size: Size,
  /** Declared sha256 (hex). When wrong, the origin still serves the synthetic bytes: checksum mismatch tests. */
  sha256: Schema.optional(Schema.String)
})

export const TimingsSpec = Schema.Struct({
  /** default duration of a task in ms */
  taskMs: Schema.optional(Schema.Number),
  createMs: Schema.optional(Schema.Number),
  startMs: Schema.optional(Schema.Number),
  stopMs: Schema.optional(Schema.Number),
  shutdownMs: Schema.optional(Schema.Number),
  destroyMs: Schema.optional(Schema.Number),
  downloadMs: Schema.optional(Schema.Number),
  resizeMs: Schema.optional(Schema.Number),
  /** a disk moved to another storage (`move_disk`: drive-mirror on a running VM, qemu-img convert on a stopped one) */
  moveDiskMs: Schema.optional(Schema.Number),
  /** from start until cloud-init has finished and guest SSH listens */
  bootMs: Schema.optional(Schema.Number),
  /** from start until the guest agent answers */
  agentMs: Schema.optional(Schema.Number),
  /** pvestatd broadcast interval (RRD lag of /cluster/resources) */
  rrdIntervalMs: Schema.optional(Schema.Number),
  /** delay of 401 replies (real ms, not scaled); PVE uses 3000 */
  unauthorizedDelayMs: Schema.optional(Schema.Number)
})

export const FaultSpec = Schema.Union([
  Schema.Struct({ kind: Schema.Literal("untrustedCert"), node: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("apiDown"), node: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("proxy596"), node: Schema.String, message: Schema.optional(Schema.String) }),
  /**
   * the node's pveproxy receives and performs a matching request (`path` as after `/api2/json`, exact; `method` and
   * `node`, the node whose API port received it, when given), then closes the connection without an answer: the first
   * `times` matching requests (default: every one)
   */
  Schema.Struct({
    kind: Schema.Literal("responseLost"),
    path: Schema.String,
    node: Schema.optional(Schema.String),
    method: Schema.optional(Schema.Literals(["GET", "POST", "PUT", "DELETE"])),
    times: Schema.optional(Schema.Int.check(Schema.isGreaterThan(0)))
  }),
  /**
   * A test control, not a PVE behaviour (it stands in for a node whose pveproxy is slow to answer, such as a storage
   * listing stuck on an unreachable NFS share): the node's pveproxy receives a matching request (`path` as after
   * `/api2/json`, exact; `method` and `node`, the node whose API port received it, when given) and holds it,
   * unanswered, until the fault is cleared; then handles it as usual.
   */
  Schema.Struct({
    kind: Schema.Literal("requestHold"),
    path: Schema.String,
    node: Schema.optional(Schema.String),
    method: Schema.optional(Schema.Literals(["GET", "POST", "PUT", "DELETE"]))
  }),
  Schema.Struct({
    kind: Schema.Literal("latency"),
    ms: Schema.Number,
    node: Schema.optional(Schema.String),
    transport: Schema.optional(Schema.Literals(["api", "ssh", "guest-ssh"]))
  }),
  Schema.Struct({
    kind: Schema.Literal("taskFail"),
    taskType: Schema.String,
    exitstatus: Schema.String,
    node: Schema.optional(Schema.String),
    vmid: Schema.optional(VmidNumber)
  }),
  Schema.Struct({
    kind: Schema.Literal("taskHang"),
    taskType: Schema.String,
    node: Schema.optional(Schema.String),
    vmid: Schema.optional(VmidNumber)
  }),
  /**
   * A test control, not a PVE behaviour: a matching task's work step ends (its simulated duration has passed), then the
   * task waits there, still running, until the fault is cleared, and goes on as it would have (it ends OK unless its
   * work fails). A task stopped while held ends `interrupted by signal`. Unlike `taskHang`, clearing it releases tasks
   * it holds.
   */
  Schema.Struct({
    kind: Schema.Literal("taskHold"),
    taskType: Schema.String,
    node: Schema.optional(Schema.String),
    vmid: Schema.optional(VmidNumber)
  }),
  Schema.Struct({
    kind: Schema.Literal("vmStuck"),
    vmid: VmidNumber,
    state: Schema.Literals(["paused", "stopped", "prelaunch"])
  }),
  Schema.Struct({ kind: Schema.Literal("lockLeft"), vmid: VmidNumber, lock: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("agentNeverStarts"), vmid: VmidNumber }),
  /** the guest ignores ACPI power-off: a shutdown without a running guest agent times out */
  Schema.Struct({ kind: Schema.Literal("acpiIgnored"), vmid: VmidNumber }),
  Schema.Struct({ kind: Schema.Literal("guestSshRefused"), vmid: VmidNumber }),
  Schema.Struct({ kind: Schema.Literal("bridgeMissing"), node: Schema.String, bridge: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("bridgeInactive"), node: Schema.String, bridge: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("storageFull"), node: Schema.String, storage: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("sshAuthRefused"), node: Schema.String }),
  /** the joining guest (`vmid`, or every joiner) presents a token whose password or CA hash is wrong */
  Schema.Struct({
    kind: Schema.Literal("k3sBadToken"),
    vmid: Schema.optional(VmidNumber),
    part: Schema.optional(Schema.Literals(["password", "caHash"]))
  }),
  /** port 6443 of the k3s server in VM `vmid` (or of every server) is not reachable from guests */
  Schema.Struct({ kind: Schema.Literal("k3sServerUnreachable"), vmid: Schema.optional(VmidNumber) }),
  /** the k3s unit in VM `vmid` (or everywhere) never becomes ready */
  Schema.Struct({ kind: Schema.Literal("k3sInstallHang"), vmid: Schema.optional(VmidNumber) }),
  /**
   * A test control, not a k3s behaviour: a start of the k3s unit in VM `vmid` (or in every VM) does its work (a join, a
   * cluster init, the restart of an upgrade: its simulated duration has passed), then waits there, silently, the unit
   * still `activating` and the Node not (re-)registered on its version, until the fault is cleared; then it comes up
   * as it would have. Whoever waits for the start (install.sh, a blocking `systemctl start`) waits on. A start whose
   * unit is stopped or restarted (or whose VM stops) while held ends there. Unlike `k3sInstallHang`, it logs nothing
   * and goes on the moment it is cleared.
   */
  Schema.Struct({ kind: Schema.Literal("k3sHold"), vmid: Schema.optional(VmidNumber) }),
  /**
   * The etcd learner of a server joining from VM `vmid` (or from any VM) does not catch up with the leader (a slow disk,
   * a large database): the leader's learner manager leaves it a learner, and its Node unregistered (k3s registers it
   * once promoted), until the fault is cleared; then it is promoted as much later as it was held. It makes progress
   * meanwhile, so k3s does not remove it as stalled (`learnerMaxStallTime`, 5 min without progress).
   */
  Schema.Struct({ kind: Schema.Literal("k3sLearnerSlow"), vmid: Schema.optional(VmidNumber) }),
  /** downloads from get.k3s.io / the k3s release origin fail (HTTP 500) in VM `vmid` (or everywhere) */
  Schema.Struct({ kind: Schema.Literal("k3sDownloadFails"), vmid: Schema.optional(VmidNumber) }),
  /**
   * the container runtime in VM `vmid` hangs: its kubelet posts its Node `Ready=False` (`PLEG is not healthy`) while k3s
   * itself (apiserver, supervisor, a server's etcd member) runs on; Ready again once the fault is cleared
   */
  Schema.Struct({ kind: Schema.Literal("k3sNodeNotReady"), vmid: VmidNumber })
])

export const ScenarioSchema = Schema.Struct({
  /** PVE version knob, e.g. "8.4.1", "8.2.4", "9.0.5" */
  pveVersion: Schema.optional(Schema.String.check(Schema.isPattern(/^\d+\.\d+(\.\d+)?$/, { expected: "x.y[.z]" }))),
  clusterName: Schema.optional(Schema.String),
  nodes: Schema.Array(NodeSpec),
  /**
   * The corosync quorum (one vote per online node): `qdevice` adds a QDevice's vote (to the expected votes, and to the
   * votes while a node is up), `expected` is what `pvecm expected N` set on the survivors. Without quorum /etc/pve is
   * read-only: `/cluster/status` says `quorate: 0` and creates, starts and config writes fail (HTTP 500).
   */
  quorum: Schema.optional(
    Schema.Struct({
      qdevice: Schema.optional(Schema.Boolean),
      expected: Schema.optional(Schema.Number.check(Schema.isInt(), Schema.isGreaterThan(0)))
    })
  ),
  users: Schema.optional(Schema.Array(UserSpec)),
  acls: Schema.optional(Schema.Array(AclSpec)),
  /** public keys accepted for root on every node */
  authorizedKeys: Schema.optional(Schema.Array(Schema.String)),
  vms: Schema.optional(Schema.Array(VmSpec)),
  /** image origin (plain HTTP on loopback) for download-url */
  imageOrigin: Schema.optional(
    Schema.Struct({ port: Schema.optional(Schema.Number), files: Schema.Array(OriginFileSpec) })
  ),
  /** first address of the guest IP pool (loopback), default 127.77.0.10 */
  ipPool: Schema.optional(Schema.String),
  /** port guest SSH servers listen on (on the guest's own loopback IP); 0 = ephemeral */
  guestSshPort: Schema.optional(Schema.Number.check(Schema.isInt())),
  timings: Schema.optional(TimingsSpec),
  timeScale: Schema.optional(Schema.Number),
  faults: Schema.optional(Schema.Array(FaultSpec)),
  /** the simulated k3s cluster (guests answer install.sh, kubectl, systemctl, journalctl) */
  k3s: Schema.optional(K3sSpec),
  adminPort: Schema.optional(Schema.Number.check(Schema.isInt()))
})

export type Scenario = typeof ScenarioSchema.Type
export type NodeSpec = typeof NodeSpec.Type
export type StorageSpec = typeof StorageSpec.Type
export type VmSpec = typeof VmSpec.Type
export type Fault = typeof FaultSpec.Type
export type Timings = typeof TimingsSpec.Type
export type K3sSpec = typeof K3sSpec.Type

const decode = Schema.decodeUnknownResult(ScenarioSchema)

/** Validate an unknown value as a scenario. Errors name the path and what was expected. */
export const decodeScenario = (input: unknown): Effect.Effect<Scenario, SimError> => {
  const r = decode(input, { errors: "all" })
  if (Result.isSuccess(r)) return Effect.succeed(r.success)
  return Effect.fail(
    new SimError({ reason: new SimErrorReason.ScenarioInvalid({ message: String(r.failure.message) }) })
  )
}

/** Parse a YAML (or JSON) scenario text and validate it. */
export const parseScenario = (text: string): Effect.Effect<Scenario, SimError> =>
  Effect.flatMap(
    Effect.try({
      try: () => parseYaml(text) as unknown,
      catch: (e) =>
        new SimError({
          reason: new SimErrorReason.ScenarioInvalid({ message: `invalid YAML: ${(e as Error).message}` })
        })
    }),
    decodeScenario
  )

/** Parse a size (`100G`, `512M`, `2048`, `1.5T`) to bytes. */
export const parseSize = (s: string | number | undefined, fallback: number): number => {
  if (s === undefined) return fallback
  if (typeof s === "number") return s
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i.exec(s.trim())
  if (!m) return fallback
  const mult: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }
  return Math.round(Number(m[1]) * (mult[(m[2] ?? "").toUpperCase()] ?? 1))
}
