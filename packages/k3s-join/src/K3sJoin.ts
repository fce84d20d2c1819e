import { randomBytes } from "node:crypto"
import * as os from "node:os"
import * as path from "node:path"
import { type ExecResult, SshClient, type SshError, type SshTarget } from "@homelab/ssh"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Semaphore from "effect/Semaphore"
import * as Stream from "effect/Stream"
import {
  type ClusterNode,
  clusterVersionOf,
  decodeNode,
  decodeNodeList,
  evaluateMembership,
  type Membership
} from "./ClusterNode.js"
import {
  CHANNELS_URL,
  channelsCommand,
  checkFlags,
  configYaml,
  cordonCommand,
  dbInfoCommand,
  deleteNodeCommand,
  deleteNodeNoWaitCommand,
  deleteNodePasswordCommand,
  drainCommand,
  etcdNameCommand,
  getNodeCommand,
  getNodesCommand,
  hostnameCommand,
  INSTALL_SCRIPT_URL,
  type InstallRecord,
  installedDuringRun,
  installedStateCommand,
  isActiveCommand,
  journalCommand,
  LOCK_CONFLICT_EXIT,
  LOCK_PATH,
  lockedInstallCommand,
  normalizeFlags,
  parseExecStart,
  parseInstalledState,
  parseLockedInstallOutput,
  parseRecord,
  parseReleaseCheck,
  parseUnitJournal,
  RECORD_PATH,
  type ReleaseStatus,
  type Role,
  readKubeconfigCommand,
  readTokenCommand,
  readUnitCommand,
  releaseCheckCommand,
  removeFileCommand,
  restartHeldCommand,
  restartUnitCommand,
  serverUrl,
  startCommand,
  taintNodeCommand,
  tokenPaths,
  unitFileExistsCommand,
  unitJournalCommand,
  unitName,
  unlabelNodeCommand,
  versionCommand,
  waitNodeCommand,
  withoutTrace
} from "./InstallCommand.js"
import { checkTokenForRole, hasPassword, type JoinToken, parseJoinToken, scrubTokens } from "./JoinToken.js"
import {
  classifyCurrentRun,
  classifyJournal,
  isUnitStart,
  type JournalClassification,
  joiningMemberOf,
  journalLines,
  linesSinceUnitStart,
  namesJoiningMember,
  newJournalLines
} from "./JournalClassifier.js"
import {
  BadToken,
  CaHashMismatch,
  ClusterUnavailable,
  ConfigMismatch,
  DrainFailed,
  DuplicateEtcdMember,
  EtcdMemberRemoved,
  EtcdUnavailable,
  type ExistingCluster,
  existingClusterOf,
  IdentityMismatch,
  InstallFailed,
  InvalidOptions,
  K3sJoinError,
  type K3sJoinErrorReason,
  KubeconfigInvalid,
  LockTimeout,
  NodePasswordRejected,
  NoEmbeddedEtcd,
  NotReady,
  QuorumAtRisk,
  ReleaseUnavailable,
  RoleMismatch,
  SanMismatch,
  ServerUnreachable,
  Ssh,
  StaleEtcdMember,
  Timeout,
  TokenDiffers,
  TokenUnavailable,
  TooManyLearners,
  VersionRule
} from "./K3sJoinError.js"
import type {
  AirgapOptions,
  EnsureMemberOptions,
  JoinTimeouts,
  K3sHost,
  K3sJoinEvent,
  K3sJoinOptions,
  K3sServer,
  MemberResult
} from "./K3sJoinOptions.js"
import { rewriteKubeconfig } from "./Kubeconfig.js"
import {
  desiredFlags,
  diffFlags,
  type NodeChanges,
  noNodeChanges,
  runningFlags,
  sameFlags,
  withFlags
} from "./NodeFlags.js"
import {
  type ClusterFacts,
  decodeDbInfo,
  type EtcdMember,
  joiningMembersOf,
  memberIdHex,
  memberJoining,
  membersOfNode,
  memberWithoutNode,
  orphanMembersOf,
  type QuorumAction,
  type QuorumVerdict,
  quorumCheck
} from "./Quorum.js"
import { makeSharedRead } from "./SharedRead.js"
import { checkUpgradeStep, decodeChannels, describeViolation, type ReleaseChannel } from "./Versions.js"

/**
 * What `install` needs: the token is already fetched and validated.
 *
 * @since 0.1.0
 * @category models
 */
export interface InstallOptions {
  readonly server: K3sServer
  readonly host: K3sHost
  readonly role: Role
  readonly token: JoinToken
  readonly version: string
  readonly flags?: string | ReadonlyArray<string> | undefined
  readonly nodeName?: string | undefined
  readonly airgap?: AirgapOptions | undefined
  /**
   * For a server whose k3s runs already (a re-join, a reinstall): when the install changed something, check etcd's
   * quorum before its k3s restarts, and its etcd member with it (default true). The members are read through `server`
   * right before the restart, and a restart that would leave fewer than ⌊n/2⌋+1 healthy members is refused
   * (`QuorumAtRisk`, the verdict of `quorumCheck` for `restart`): k3s runs on as it was, and its restart stays pending,
   * so that the next install restarts it even when nothing else changed. A server whose k3s does not run (a new one)
   * has no member to lose: its k3s is started as before, without reading the members.
   *
   * @since 0.4.1
   */
  readonly quorumGuard?: boolean | undefined
  readonly timeouts?: JoinTimeouts | undefined
  readonly onEvent?: ((event: K3sJoinEvent) => void) | undefined
}

/**
 * What `install` did: the unit it started and the journal lines that existed before (so that `waitReady` only
 * classifies lines written by this start).
 *
 * @since 0.1.0
 * @category models
 */
export interface InstallResult {
  readonly unit: "k3s" | "k3s-agent"
  readonly journalBaseline: ReadonlyArray<string>
  /** Binary, unit, env file and config were already exactly these: the unit was started only if it was stopped. */
  readonly unchanged: boolean
  /** How long the install waited for the host's install lock (another run holding it). */
  readonly lockWaitMs: number
  /**
   * Another run installed k3s on this host during this run (while this run waited for the host's install lock, or
   * after this run started), with the same inputs: that run did the work. An earlier run's install is not this.
   */
  readonly installedBy: (InstallRecord & { readonly lockWaitMs: number }) | undefined
  /** `systemctl is-active` of the unit before the install asked for the lock (`inactive`, `failed`, `active`, …). */
  readonly unitStateBefore: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface WaitReadyOptions {
  readonly server: K3sServer
  readonly host: K3sHost
  readonly role: Role
  readonly nodeName: string
  /**
   * Journal lines to ignore (from `InstallResult`). Lines written before systemd last started the unit are ignored in
   * any case (`linesSinceUnitStart`): a failure an earlier run of k3s logged does not fail the wait.
   */
  readonly journalBaseline?: ReadonlyArray<string> | undefined
  /**
   * The install (re)started the unit after it read `journalBaseline`: `!InstallResult.unchanged`. Then a failure
   * line fails the wait only once systemd's line for that start is in the journal and the line came after it: before
   * that (journald writes asynchronously), a line after the baseline may be the replaced process's last one, and it is
   * only waited on, within the ready deadline (`classifyCurrentRun`). Default false: every line after the baseline and
   * the unit's last start counts.
   *
   * @since 0.6.2
   */
  readonly restarted?: boolean | undefined
  /** Kubelet version the Node must report, when given. */
  readonly version?: string | undefined
  readonly timeouts?: JoinTimeouts | undefined
  /** Secrets to scrub from journal lines (the token). */
  readonly secrets?: ReadonlyArray<Redacted.Redacted<string>> | undefined
  readonly onEvent?: ((event: K3sJoinEvent) => void) | undefined
}

/**
 * One host's outcome in `joinAll`.
 *
 * @since 0.1.0
 * @category models
 */
export interface JoinOutcome {
  readonly host: string
  readonly role: Role
  readonly result: Result.Result<MemberResult, K3sJoinError>
}

/**
 * Start a new embedded-etcd cluster on `host` (`server --cluster-init`).
 *
 * @since 0.2.0
 * @category models
 */
export interface InitClusterOptions {
  readonly host: K3sHost
  /** Pinned k3s version (e.g. `v1.30.5+k3s1`). */
  readonly version: string
  /** Extra server flags (`--tls-san`, `--disable=traefik`, …); `--cluster-init`, `--server`, `--token` are refused. */
  readonly flags?: string | ReadonlyArray<string> | undefined
  /**
   * The cluster's token password (k3s uses it as the server token's password). Default: k3s generates one. Either way
   * the full token is read back over SSH and returned.
   */
  readonly token?: Redacted.Redacted<string> | undefined
  readonly timeouts?: JoinTimeouts | undefined
  readonly onEvent?: ((event: K3sJoinEvent) => void) | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface InitClusterResult {
  /** `AlreadyInitialized`: the host already runs a Ready server of an embedded-etcd cluster; nothing was changed. */
  readonly _tag: "Initialized" | "AlreadyInitialized"
  readonly host: string
  readonly node: string
  readonly version: string | undefined
  /** The server token (`K10<hash>::server:<password>`), read back with `sudo -n cat`. */
  readonly token: JoinToken
  readonly installedBy?: (InstallRecord & { readonly lockWaitMs: number }) | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface DrainOptions {
  /** Default: `timeouts.drain` (5 minutes). */
  readonly timeout?: Duration.Input | undefined
  /** Default true (DaemonSet pods stay; drain fails on them otherwise). */
  readonly ignoreDaemonsets?: boolean | undefined
  /** Default true (pods with emptyDir volumes lose that data; drain refuses them otherwise). */
  readonly deleteEmptyDirData?: boolean | undefined
  readonly onEvent?: ((event: K3sJoinEvent) => void) | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface DrainResult {
  readonly node: string
  /** `namespace/name` of each evicted pod */
  readonly evicted: ReadonlyArray<string>
  /** kubectl's warnings (`ignoring DaemonSet-managed Pods: …`) */
  readonly warnings: ReadonlyArray<string>
}

/**
 * @since 0.2.0
 * @category models
 */
export interface RemoveServerOptions {
  /** A server to run kubectl on (not the one being removed). */
  readonly server: K3sServer
  /** The Node to delete. */
  readonly node: string
  /** Check the etcd quorum first (default true): refuse with `QuorumAtRisk` when removing would break it. */
  readonly quorumGuard?: boolean | undefined
  readonly timeouts?: JoinTimeouts | undefined
  readonly onEvent?: ((event: K3sJoinEvent) => void) | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface RemoveServerResult {
  readonly node: string
  /** The Node existed and is gone now. */
  readonly nodeDeleted: boolean
  /** etcd members of that Node that were there and are gone now. */
  readonly removedMembers: ReadonlyArray<string>
}

/**
 * @since 0.2.0
 * @category models
 */
export interface UpgradeOptions {
  /** A server to run kubectl on; if it is the host being upgraded, waits ride out its restart. */
  readonly server: K3sServer
  readonly host: K3sHost
  readonly role: Role
  /** The version to install: at most one minor ahead of the Node's, never older. */
  readonly version: string
  /**
   * Cordon and drain first, uncordon when Ready on the new version (default); `false` to skip. A Node that is cordoned
   * already when the upgrade begins (by hand for maintenance, by an earlier upgrade that did not finish) is drained
   * and upgraded but left cordoned, also when the drain fails: `UpgradeResult.leftCordoned` says so. When that earlier
   * cordon was the caller's own, `uncordon` afterwards.
   */
  readonly drain?: false | Omit<DrainOptions, "onEvent"> | undefined
  /** For servers: check the etcd quorum first (default true). */
  readonly quorumGuard?: boolean | undefined
  /**
   * Check first that the host can download `version` (`releaseStatus`), so that a release that does not exist is
   * refused before the Node is cordoned (default true; `false` when the caller has just checked it).
   */
  readonly checkRelease?: boolean | undefined
  /**
   * The k3s flags the node must run with (as for `install`): they replace the unit's own flags after the join flags
   * (`--server`, `--node-name`, `--cluster-init` stay). A Node already on `version` whose `k3s.io/node-args` differ
   * from them goes through the same cordon, drain, install, Ready and uncordon, so that it restarts with them.
   * Default: the unit's own flags are kept.
   *
   * @since 0.4.0
   */
  readonly flags?: string | ReadonlyArray<string> | undefined
  readonly timeouts?: JoinTimeouts | undefined
  readonly onEvent?: ((event: K3sJoinEvent) => void) | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface UpgradeResult {
  /** `AlreadyAtVersion`: the Node already reports `version` (and runs with `flags`, when given): nothing changed. */
  readonly _tag: "Upgraded" | "AlreadyAtVersion"
  readonly host: string
  readonly node: string
  readonly from: string | undefined
  readonly to: string
  readonly evicted: ReadonlyArray<string>
  /**
   * The Node was cordoned (`spec.unschedulable`) before this call, and the call left it so: someone else's cordon is
   * never undone. `false`: it was schedulable, and is again (or was never cordoned, with `drain: false`).
   *
   * @since 0.2.1
   */
  readonly leftCordoned: boolean
  readonly timings: {
    readonly totalMs: number
    readonly drainMs: number
    readonly installMs: number
    readonly readyMs: number
  }
}

/**
 * @since 0.2.0
 * @category models
 */
export interface FetchKubeconfigOptions {
  /** A server to read `/etc/rancher/k3s/k3s.yaml` from (with `sudo -n`). */
  readonly server: K3sServer
  /** Address (or `https://…` URL) clients use: a VIP or DNS name in the servers' `tls-san`. Default: the server's. */
  readonly endpoint?: string | undefined
  /** Name of the cluster, user and context. Default `homelab`. */
  readonly name?: string | undefined
  readonly onEvent?: ((event: K3sJoinEvent) => void) | undefined
}

/**
 * @since 0.2.0
 * @category models
 */
export interface FetchedKubeconfig {
  readonly name: string
  /** The server URL written into it. */
  readonly server: string
  /** The kubeconfig (it holds the admin client key). */
  readonly kubeconfig: Redacted.Redacted<string>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface K3sJoinShape {
  /** Reads and validates the join token for `role` from a server (`sudo -n cat …/server/token`). */
  readonly fetchToken: (server: SshTarget, role: Role) => Effect.Effect<JoinToken, K3sJoinError>
  /** `k3s kubectl get nodes -o json` on a server, decoded. */
  readonly clusterNodes: (server: SshTarget) => Effect.Effect<ReadonlyArray<ClusterNode>, K3sJoinError>
  /** The version to pin joins to: oldest control-plane kubelet version, else `k3s --version` on the server. */
  readonly clusterVersion: (server: SshTarget) => Effect.Effect<string, K3sJoinError>
  /** How `host` relates to the cluster (name, role, IP, UUID; read-only). */
  readonly membership: (options: {
    readonly server: K3sServer
    readonly host: K3sHost
    readonly role: Role
  }) => Effect.Effect<Membership, K3sJoinError>
  /**
   * Under the host's install lock: writes the token file, installs k3s (online or airgap; unit not started by the
   * script), starts the unit without blocking — restarting it only if something changed.
   */
  readonly install: (options: InstallOptions) => Effect.Effect<InstallResult, K3sJoinError>
  /** Deletes the Node `name` and its `<name>.node-password.k3s` secret (both `--ignore-not-found`). */
  readonly cleanupStaleNode: (server: SshTarget, name: string) => Effect.Effect<void, K3sJoinError>
  /** Waits until the Node exists (polling unit, journal, Node), then for Ready with `kubectl wait`; hard deadline. */
  readonly waitReady: (options: WaitReadyOptions) => Effect.Effect<ClusterNode, K3sJoinError>
  /** Makes `host` a Ready member with the given role; idempotent. Servers join one at a time. */
  readonly ensureMember: (options: EnsureMemberOptions) => Effect.Effect<MemberResult, K3sJoinError>
  /** `ensureMember` for many hosts: servers one after another, agents in parallel (bounded). Never fails. */
  readonly joinAll: (
    hosts: ReadonlyArray<EnsureMemberOptions>,
    options?: { readonly agentConcurrency?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<JoinOutcome>>
  /** Starts a new embedded-etcd cluster on `host` (`--cluster-init`) and reads its token back; idempotent. */
  readonly initCluster: (options: InitClusterOptions) => Effect.Effect<InitClusterResult, K3sJoinError>
  /**
   * What `initCluster` would refuse to start a cluster on `host` for, read-only and before anything is installed: etcd
   * data of an earlier cluster, a k3s server that runs without being the Ready first server, or a k3s agent that runs
   * (`ExistingCluster`); `undefined` when a cluster may start there (or `host` is its Ready first server already).
   * Reads the units (`systemctl is-active`) and `/var/lib/rancher/k3s/server/db/etcd/name` over SSH.
   *
   * @since 0.7.0
   */
  readonly existingCluster: (host: K3sHost) => Effect.Effect<ExistingCluster | undefined, K3sJoinError>
  /** The etcd members, from the k3s supervisor's `/db/info` on `server` itself. */
  readonly etcdMembers: (server: SshTarget) => Effect.Effect<ReadonlyArray<EtcdMember>, K3sJoinError>
  /** Nodes and etcd members, for `quorumCheck`. */
  readonly clusterFacts: (server: SshTarget) => Effect.Effect<ClusterFacts, K3sJoinError>
  /**
   * Deletes a (stale) server's Node and waits until it and its etcd member are gone, so that a rebuilt server does not
   * hit `DuplicateEtcdMember`.
   */
  readonly removeServer: (options: RemoveServerOptions) => Effect.Effect<RemoveServerResult, K3sJoinError>
  /** `kubectl cordon` (true when it changed something). */
  readonly cordon: (server: SshTarget, node: string) => Effect.Effect<boolean, K3sJoinError>
  /** `kubectl uncordon` (true when it changed something). */
  readonly uncordon: (server: SshTarget, node: string) => Effect.Effect<boolean, K3sJoinError>
  /**
   * Changes the Node's labels and taints as `nodeChanges` says (what installing k3s again with other `--node-label` /
   * `--node-taint` flags does not do): `kubectl label … key-`, `kubectl taint … key:Effect-` (a label or taint not
   * there any more is fine), `kubectl taint … --overwrite`. Run it before the restart with the new flags: k3s sets the
   * labels of its flags only as it starts, so the running k3s does not set a removed one again.
   */
  readonly changeNode: (server: SshTarget, node: string, changes: NodeChanges) => Effect.Effect<void, K3sJoinError>
  /** `kubectl drain`: cordons, evicts through PodDisruptionBudgets, with a timeout (`DrainFailed`). */
  readonly drain: (server: SshTarget, node: string, options?: DrainOptions) => Effect.Effect<DrainResult, K3sJoinError>
  /**
   * Upgrades one node: (quorum guard,) cordon, drain, install.sh with `INSTALL_K3S_VERSION` and the unit's own flags
   * and environment, restart, wait until Ready on the new version, uncordon. Refuses downgrades and minor skips, and a
   * release the host cannot download (`ReleaseUnavailable`), before anything is changed. A Node cordoned before the
   * call is drained and upgraded but never uncordoned (`leftCordoned`).
   */
  readonly upgrade: (options: UpgradeOptions) => Effect.Effect<UpgradeResult, K3sJoinError>
  /** The admin kubeconfig of a server, pointed at a reachable address and renamed (stays `Redacted`). */
  readonly fetchKubeconfig: (options: FetchKubeconfigOptions) => Effect.Effect<FetchedKubeconfig, K3sJoinError>
  /**
   * Which k3s unit install.sh left on a host (`server` for `k3s.service`, `agent` for `k3s-agent.service`), or
   * `undefined` when k3s was never installed there: tells a host without k3s from a cluster that does not answer.
   */
  readonly installedRole: (host: SshTarget) => Effect.Effect<Role | undefined, K3sJoinError>
  /** The update channels and their newest releases, fetched by `host` from the channel server (as install.sh does). */
  readonly releaseChannels: (host: SshTarget) => Effect.Effect<ReadonlyArray<ReleaseChannel>, K3sJoinError>
  /**
   * Whether `host` can download the k3s release `version`: the release's checksum file, the first thing install.sh
   * downloads, asked for from GitHub by the host itself. Fails only when the host cannot be asked.
   */
  readonly releaseStatus: (host: SshTarget, version: string) => Effect.Effect<ReleaseStatus, K3sJoinError>
  /**
   * The k3s unit of `role` on `host` as systemd has it (`systemctl is-active`), and, when it does not run, why its
   * last start ended, from the journal lines since that start (`JournalClassifier`): a permanent cause would stop every
   * start again. A server unit that runs has a failure only when its k3s runs on without etcd, waiting for a restart
   * (`EtcdMemberRemovedRestart`: the cluster removed its member; k3s since January 2026).
   */
  readonly unitStatus: (host: SshTarget, role: Role) => Effect.Effect<UnitStatus, K3sJoinError>
  /**
   * Starts the k3s unit of `role` on `host` that is stopped, and enables it for the next boot (`sudo -n systemctl enable --now --no-block`): k3s runs again
   * with its own data (a server's etcd member too); a unit that runs already is left as it is. Returns at once: the
   * caller waits for the Node (a server comes up only once etcd has its quorum).
   */
  readonly startUnit: (host: SshTarget, role: Role) => Effect.Effect<void, K3sJoinError>
}

/**
 * The k3s unit of a host as `unitStatus` reads it.
 *
 * @since 0.5.0
 * @category models
 */
export interface UnitStatus {
  /** `systemctl is-active`: `active`, `activating`, `inactive`, `failed`, … (`unknown` when it printed nothing). */
  readonly state: string
  /**
   * When the unit is not active: the newest known failure among the journal lines since its last start. When a server
   * unit is active: `EtcdMemberRemovedRestart` only (its k3s runs on after the cluster removed its etcd member, and
   * joins again as a new member at its next start), else none.
   */
  readonly failure?: JournalClassification | undefined
  /**
   * A server unit that runs or is starting (`active`, `activating`) and joins etcd right now: the member its k3s added
   * for itself since its last start (`Adding member <name>=<peer URL>`), its Node not up yet (`joiningMemberOf`).
   */
  readonly joining?: { readonly member: string; readonly peerURL: string; readonly line: string } | undefined
  /**
   * Whether the journal lines read reach back to systemd's last start of the unit (its `Starting …` line) and name the
   * etcd member that run of k3s joins as, if any (`namesJoiningMember`): then a server unit without `joining` is
   * joining as no member it added since it started. `false` when they begin after that start (journalctl read only
   * the newest lines, or could not be read), or k3s started etcd as a member they do not name (a restart into a join
   * an earlier start began).
   */
  readonly journalComplete?: boolean | undefined
  /**
   * A server unit that does not run (`inactive`, `failed`): the etcd member its data dir is of
   * (`/var/lib/rancher/k3s/server/db/etcd/name`), if any. Stopping k3s removes nothing from etcd, so a learner its k3s
   * added before it was stopped is that member still, and its next start carries on as it (no new member, no clash).
   *
   * @since 0.11.2
   */
  readonly member?: string | undefined
}

const DEFAULTS = {
  command: Duration.seconds(60),
  download: Duration.minutes(2),
  install: Duration.minutes(10),
  readyAgent: Duration.minutes(5),
  readyServer: Duration.minutes(10),
  pollInterval: Duration.seconds(2),
  progressInterval: Duration.seconds(5),
  drain: Duration.minutes(5),
  memberRemoval: Duration.minutes(2)
}

/**
 * The delays of a poll that has no event to wait for (a Node that does not exist yet, a Node being deleted): 100 ms
 * first, then ×1.5 each time, capped at `cap` (`pollInterval`). A short wait is seen through quickly, a long one costs
 * one poll per `cap`.
 */
const pollDelays = (cap: Duration.Input) => {
  const capMs = Duration.toMillis(Duration.fromInputUnsafe(cap))
  let next = Math.min(100, capMs)
  return (): Duration.Duration => {
    const delay = next
    next = Math.min(capMs, next * 1.5)
    return Duration.millis(delay)
  }
}

const plus = (a: Duration.Input, b: Duration.Input): Duration.Duration =>
  Duration.millis(Duration.toMillis(a) + Duration.toMillis(b))

const defaultRunId = () => `${os.hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/
const isIp = (host: string): boolean => IPV4.test(host) || (host.includes(":") && /^[0-9a-fA-F:.]+$/.test(host))

/**
 * How long before a join began a read of another join may have started and still be that join's (the inspect listing
 * and the join token: the agents of a fresh lab start their joins within moments of each other).
 */
const JOIN_SHARE_MS = 1000

const tailOf = (text: string, lines = 20): string => text.split("\n").slice(-lines).join("\n")

const lockWaitSeconds = (lockWait: Duration.Input): number => Math.max(1, Math.ceil(Duration.toMillis(lockWait) / 1000))

/** The refusal of the quorum guard, from its verdict (`more` is said after its reason). */
const quorumAtRisk = (verdict: QuorumVerdict, more = "") =>
  new QuorumAtRisk({
    node: verdict.node,
    action: verdict.action,
    voters: verdict.voters,
    needed: verdict.needed,
    healthyOthers: verdict.healthyOthers,
    members: verdict.members.map((m) => ({ member: m.member, node: m.node ?? null, state: m.state })),
    detail: `${verdict.reason}${more}`
  })

/** The error of a release the host cannot download (`Missing`: none exists). */
const releaseUnavailable = (release: Exclude<ReleaseStatus, { readonly _tag: "Published" }>) =>
  new ReleaseUnavailable({
    version: release.version,
    url: release.url,
    status: release._tag === "Missing" ? 404 : null,
    detail: release._tag === "Missing" ? "404 Not Found" : release.detail
  })

const make = (options: K3sJoinOptions) =>
  Effect.gen(function* () {
    const ssh = yield* SshClient
    const serverLock = yield* Semaphore.make(1)
    const tmpDir = options.remoteTmpDir ?? "/tmp"
    const scriptPath = path.posix.join(tmpDir, "k3s-install.sh")

    const timeoutsOf = (call: JoinTimeouts | undefined, role: Role) => {
      const t = { ...options.timeouts, ...call }
      return {
        command: t.command ?? DEFAULTS.command,
        download: t.download ?? DEFAULTS.download,
        install: t.install ?? DEFAULTS.install,
        ready: t.ready ?? (role === "server" ? DEFAULTS.readyServer : DEFAULTS.readyAgent),
        pollInterval: t.pollInterval ?? DEFAULTS.pollInterval,
        progressInterval: t.progressInterval ?? DEFAULTS.progressInterval,
        lockWait: t.lockWait ?? t.install ?? DEFAULTS.install,
        drain: t.drain ?? DEFAULTS.drain,
        memberRemoval: t.memberRemoval ?? DEFAULTS.memberRemoval
      }
    }
    const runId = options.runId ?? defaultRunId()
    // an install record of another run made since then is that run's work during this one (`installedDuringRun`)
    const runStartedAt = yield* Clock.currentTimeMillis

    /**
     * Runs `effect` while reporting its progress: a `Wait` event at the start, every `progressInterval`, and at the
     * end (`done`).
     */
    const waiting = <A, E, R>(
      emit: (event: K3sJoinEvent) => Effect.Effect<void>,
      host: string,
      what: string,
      limit: Duration.Input,
      interval: Duration.Input,
      effect: Effect.Effect<A, E, R>
    ): Effect.Effect<A, E, R> =>
      Effect.gen(function* () {
        const started = yield* Clock.currentTimeMillis
        const limitMs = Duration.toMillis(limit)
        const report = (done: boolean) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            emit({ _tag: "Wait", host, what, elapsedMs: now - started, limitMs, done })
          )
        yield* report(false)
        const ticker = yield* Effect.forkChild(Effect.forever(Effect.andThen(Effect.sleep(interval), report(false))))
        return yield* effect.pipe(Effect.ensuring(Effect.andThen(Fiber.interrupt(ticker), report(true))))
      })

    const emitter =
      (local: ((event: K3sJoinEvent) => void) | undefined) =>
      (event: K3sJoinEvent): Effect.Effect<void> =>
        Effect.sync(() => {
          for (const f of [options.onEvent, local]) {
            try {
              f?.(event)
            } catch {
              // progress callbacks must not break a join
            }
          }
        })

    const fail = (host: string, reason: K3sJoinErrorReason) => Effect.fail(new K3sJoinError({ host, reason }))
    /** A start of the unit (a held restart, or a start of a stopped unit) that exited non-zero: its output's tail. */
    const startFailed = (
      host: SshTarget,
      result: { readonly exitCode: number | null; readonly stdout: string; readonly stderr: string }
    ) =>
      fail(
        host.host,
        new InstallFailed({
          step: STEP_NAMES.start as string,
          exitCode: result.exitCode,
          tail: tailOf(withoutTrace(`${result.stdout}${result.stderr}`))
        })
      )
    const sshFailed = (host: string) => (error: SshError) => new K3sJoinError({ host, reason: new Ssh({ error }) })

    const run = (target: SshTarget, command: string, timeout: Duration.Input, stdin?: Redacted.Redacted<string>) =>
      ssh
        .exec(target, command, { timeout, ...(stdin === undefined ? {} : { stdin }) })
        .pipe(Effect.mapError(sshFailed(target.host)))

    const fetchToken = Effect.fn("K3sJoin.fetchToken")(function* (server: SshTarget, role: Role) {
      const timeout = timeoutsOf(undefined, role).command
      let last: { path: string; result: ExecResult } | undefined
      for (const file of tokenPaths(role)) {
        const result = yield* run(server, readTokenCommand(file), timeout)
        if (result.exitCode === 0) {
          const parsed = parseJoinToken(result.stdout)
          if (Result.isFailure(parsed)) return yield* fail(server.host, parsed.failure)
          const usable = checkTokenForRole(parsed.success, role)
          if (Result.isFailure(usable)) return yield* fail(server.host, usable.failure)
          return usable.success
        }
        last = { path: file, result }
        // only a missing file is worth trying the next name for; sudo/permission problems are final
        if (!result.stderr.includes("No such file or directory")) break
      }
      return yield* fail(
        server.host,
        new TokenUnavailable({
          server: server.host,
          path: last?.path ?? "",
          detail: scrubTokens(last?.result.stderr.trim() || `exit code ${last?.result.exitCode}`)
        })
      )
    })

    const kubectl = (server: SshTarget, command: string) =>
      run(server, command, timeoutsOf(undefined, "server").command)

    const clusterNodes = Effect.fn("K3sJoin.clusterNodes")(function* (server: SshTarget) {
      const result = yield* kubectl(server, getNodesCommand())
      if (result.exitCode !== 0) {
        return yield* fail(
          server.host,
          new ClusterUnavailable({
            server: server.host,
            detail: result.stderr.trim() || `exit code ${result.exitCode}`
          })
        )
      }
      const decoded = decodeNodeList(result.stdout)
      if (Result.isFailure(decoded)) {
        return yield* fail(
          server.host,
          new ClusterUnavailable({ server: server.host, detail: `unexpected nodes JSON: ${decoded.failure}` })
        )
      }
      return decoded.success
    })

    /** One server, for reads shared between waits: user, host, port, and the hosts it is reached through. */
    const serverKey = (server: SshTarget): string =>
      `${server.user}@${server.host}:${server.port ?? 22}${server.jump === undefined ? "" : ` via ${serverKey(server.jump)}`}`
    const sharedNodes = makeSharedRead<ReadonlyArray<ClusterNode> | undefined, K3sJoinError>(yield* Effect.scope)
    /**
     * The cluster's Nodes as `server` lists them (`undefined` when it could not), from a listing started after `after`:
     * the waits for several hosts' Nodes share one `kubectl get nodes` per poll instead of one `get node` each.
     */
    const nodesAfter = (server: SshTarget, after: number, timeout: Duration.Input) =>
      sharedNodes(
        serverKey(server),
        after,
        run(server, getNodesCommand(), timeout).pipe(
          Effect.map((result) => {
            const decoded = result.exitCode === 0 ? decodeNodeList(result.stdout) : undefined
            return decoded !== undefined && Result.isSuccess(decoded) ? decoded.success : undefined
          })
        )
      )

    // The reads that joins starting together share: the server's Node listing that inspects each host, and the join
    // token (per role). A 16-node fresh lab asks the server once or twice instead of 16 times (each `k3s kubectl` a
    // process start there).
    const sharedInspect = makeSharedRead<ReadonlyArray<ClusterNode>, K3sJoinError>(yield* Effect.scope)
    const sharedToken = makeSharedRead<JoinToken, K3sJoinError>(yield* Effect.scope)

    const versionFromServer = (server: SshTarget) =>
      Effect.gen(function* () {
        const result = yield* run(server, versionCommand(), timeoutsOf(undefined, "server").command)
        const match = /k3s version (v\S+)/.exec(result.stdout)
        if (result.exitCode !== 0 || match === null) {
          return yield* fail(
            server.host,
            new ClusterUnavailable({
              server: server.host,
              detail: `cannot determine the cluster version: ${result.stderr.trim() || result.stdout.trim() || `exit code ${result.exitCode}`}`
            })
          )
        }
        return match[1] as string
      })

    const clusterVersion = Effect.fn("K3sJoin.clusterVersion")(function* (server: SshTarget) {
      const fromNodes = clusterVersionOf(yield* clusterNodes(server))
      return fromNodes ?? (yield* versionFromServer(server))
    })

    const nodeNameOf = (host: K3sHost, flags: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        if (host.nodeName !== undefined) return host.nodeName
        const flagIndex = flags.indexOf("--node-name")
        if (flagIndex >= 0 && flags[flagIndex + 1] !== undefined) return flags[flagIndex + 1] as string
        const inline = flags.find((f) => f.startsWith("--node-name="))
        if (inline !== undefined) return inline.slice("--node-name=".length)
        const result = yield* run(host, hostnameCommand(), timeoutsOf(undefined, "agent").command)
        const name = result.stdout.trim().toLowerCase()
        if (result.exitCode !== 0 || name === "") {
          return yield* fail(
            host.host,
            new InvalidOptions({ detail: `cannot determine the node name (hostname failed: ${result.stderr.trim()})` })
          )
        }
        return name
      })

    const expectedIp = (host: K3sHost) => host.ip ?? (isIp(host.host) ? host.host : undefined)

    const membershipOf = (nodes: ReadonlyArray<ClusterNode>, host: K3sHost, role: Role, name: string) =>
      evaluateMembership(nodes, { name, role, ip: expectedIp(host), systemUUID: host.systemUUID })

    const membership = Effect.fn("K3sJoin.membership")(function* (request: {
      readonly server: K3sServer
      readonly host: K3sHost
      readonly role: Role
    }) {
      const nodes = yield* clusterNodes(request.server)
      const name = yield* nodeNameOf(request.host, [])
      return membershipOf(nodes, request.host, request.role, name)
    })

    const unitState = (host: SshTarget, role: Role, timeout: Duration.Input) =>
      run(host, isActiveCommand(role), timeout).pipe(Effect.map((r) => r.stdout.trim().split("\n")[0] || "unknown"))

    /** journalctl's lines (its `-- No entries --` notes left out), none when it failed. */
    const journalOf = (exitCode: number | null, output: string): Array<string> =>
      exitCode === 0 ? journalLines(output).filter((l) => !l.startsWith("-- ")) : []

    const readJournal = (host: SshTarget, role: Role, timeout: Duration.Input) =>
      run(host, journalCommand(role), timeout).pipe(Effect.map((r) => journalOf(r.exitCode, r.stdout)))

    /**
     * The unit's state and its journal (as `unitState` and `readJournal` read them), in one SSH session: `journal` is
     * empty when journalctl failed.
     */
    const unitAndJournal = (host: SshTarget, role: Role, timeout: Duration.Input) =>
      run(host, unitJournalCommand(role), timeout).pipe(
        Effect.map((r) => {
          const { unitState, journal } = parseUnitJournal(r.stdout)
          return { state: unitState, journal: journalOf(r.exitCode, journal) }
        })
      )

    /** Runs the install script, streaming its output lines as events; bounded by the install timeout. */
    const runInstallScript = (
      host: K3sHost,
      command: string,
      timeout: Duration.Input,
      secrets: ReadonlyArray<Redacted.Redacted<string>>,
      emit: (event: K3sJoinEvent) => Effect.Effect<void>,
      stdin?: Redacted.Redacted<string>
    ) =>
      Effect.gen(function* () {
        const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() }
        const partial = { stdout: "", stderr: "" }
        let output = ""
        let exitCode: number | null = null
        const flush = (fd: "stdout" | "stderr", text: string, final: boolean) =>
          Effect.gen(function* () {
            const lines = (partial[fd] + text).split("\n")
            partial[fd] = final ? "" : (lines.pop() as string)
            for (const raw of lines) {
              const line = scrubTokens(raw.replace(/\r$/, ""), secrets)
              if (line === "") continue
              output = `${output}${line}\n`.slice(-8_000)
              yield* emit({ _tag: "InstallOutput", host: host.host, stream: fd, line })
            }
          })
        yield* ssh.execStream(host, command, { timeout, ...(stdin === undefined ? {} : { stdin }) }).pipe(
          Stream.runForEach((chunk) =>
            chunk.fd === "exit"
              ? Effect.gen(function* () {
                  exitCode = chunk.exitCode
                  yield* flush("stdout", decoders.stdout.decode(), true)
                  yield* flush("stderr", decoders.stderr.decode(), true)
                })
              : flush(chunk.fd, decoders[chunk.fd].decode(chunk.data, { stream: true }), false)
          ),
          Effect.mapError((error) =>
            error.reason._tag === "Timeout"
              ? new K3sJoinError({
                  host: host.host,
                  reason: new Timeout({
                    what: "the k3s install script",
                    timeoutMs: Duration.toMillis(timeout),
                    lastLines: output.trim().split("\n").slice(-10)
                  })
                })
              : sshFailed(host.host)(error)
          )
        )
        return { exitCode, output }
      })

    const STEP_NAMES: Record<string, string> = {
      download: "downloading the install script",
      binary: "installing the k3s binary",
      install: "the k3s install script",
      start: "starting the k3s unit"
    }

    /**
     * The restart an install held (`holdRestart`) on a server whose k3s runs: etcd's quorum checked with the members as
     * they are now, right before it (its member goes down with its k3s), then the restart under the host's lock.
     */
    const guardedRestart = (
      host: K3sHost,
      role: Role,
      guard: { readonly server: K3sServer; readonly nodeName: Effect.Effect<string, K3sJoinError> },
      timeouts: ReturnType<typeof timeoutsOf>,
      emit: (event: K3sJoinEvent) => Effect.Effect<void>
    ) =>
      Effect.gen(function* () {
        const nodeName = yield* guard.nodeName
        const facts = yield* clusterFacts(guard.server)
        const verdict = quorumCheck(facts, nodeName, "restart")
        if (!verdict.ok) {
          return yield* fail(
            host.host,
            quorumAtRisk(
              verdict,
              `; k3s on ${nodeName} was installed with the new inputs and runs on as it was, its restart pending (the next install restarts it)`
            )
          )
        }
        yield* emit({
          _tag: "Step",
          host: host.host,
          step: "start",
          detail: `restarting ${unitName(role)}: ${verdict.reason}`
        })
        yield* lockedRestart(host, restartHeldCommand, role, timeouts)
      })

    /** Run a restart command (`restartHeldCommand`, `restartUnitCommand`) under the host's install lock. */
    const lockedRestart = (
      host: K3sHost,
      command: (spec: { readonly role: Role; readonly lockWaitSeconds: number }) => string,
      role: Role,
      timeouts: ReturnType<typeof timeoutsOf>
    ) =>
      Effect.gen(function* () {
        const result = yield* run(
          host,
          command({ role, lockWaitSeconds: lockWaitSeconds(timeouts.lockWait) }),
          plus(timeouts.lockWait, timeouts.command)
        )
        const parsed = parseLockedInstallOutput(result.stdout)
        if (!parsed.acquired && result.exitCode === LOCK_CONFLICT_EXIT) {
          return yield* fail(
            host.host,
            new LockTimeout({ lock: LOCK_PATH, timeoutMs: Duration.toMillis(timeouts.lockWait) })
          )
        }
        if (result.exitCode !== 0) return yield* startFailed(host, result)
      })

    /**
     * The restart a server whose etcd member the cluster removed waits for (`EtcdMemberRemovedRestart`): at its next
     * start k3s moves that member's data aside and joins through its --server as a new member.
     */
    const tombstoneRestart = (
      host: K3sHost,
      role: Role,
      timeouts: ReturnType<typeof timeoutsOf>,
      emit: (event: K3sJoinEvent) => Effect.Effect<void>
    ) =>
      Effect.gen(function* () {
        yield* emit({
          _tag: "Step",
          host: host.host,
          step: "start",
          detail: `restarting ${unitName(role)}: the cluster removed its etcd member (its Node was deleted), and k3s waits for a restart to move that member's data aside and join again as a new member`
        })
        yield* lockedRestart(host, restartUnitCommand, role, timeouts)
      })

    /**
     * The install itself, under the host's lock (`lockedInstallCommand`): for joins, cluster-init and upgrades.
     */
    const lockedInstall = (spec: {
      readonly host: K3sHost
      readonly role: Role
      readonly args: ReadonlyArray<string>
      readonly version: string
      readonly config: Redacted.Redacted<string> | undefined
      readonly keepEnv: boolean
      readonly airgap: AirgapOptions | undefined
      readonly timeouts: JoinTimeouts | undefined
      readonly secrets: ReadonlyArray<Redacted.Redacted<string>>
      readonly emit: (event: K3sJoinEvent) => Effect.Effect<void>
      /** The quorum guard of a server's restart (`InstallOptions.quorumGuard`): the server to read members through. */
      readonly guard?:
        | { readonly server: K3sServer; readonly nodeName: Effect.Effect<string, K3sJoinError> }
        | undefined
    }) =>
      Effect.gen(function* () {
        const { host, role, emit } = spec
        const timeouts = timeoutsOf(spec.timeouts, role)
        // the journal so far, and the install record and unit state before this run asks for the lock
        const [journalBaseline, before] = yield* Effect.all(
          [
            readJournal(host, role, timeouts.command),
            run(host, installedStateCommand(role), timeouts.command).pipe(Effect.map(parseInstalledState))
          ],
          { concurrency: 2 }
        )
        // airgap: upload the script and the binary first, to names of this run (another run may upload too)
        const tag = randomBytes(4).toString("hex")
        let script = scriptPath
        let binary: string | undefined
        if (spec.airgap !== undefined) {
          const airgap = spec.airgap
          yield* emit({ _tag: "Step", host: host.host, step: "upload", detail: airgap.dir })
          script = path.posix.join(tmpDir, `k3s-join-${tag}-install.sh`)
          binary = path.posix.join(tmpDir, `k3s-join-${tag}-k3s.bin`)
          yield* ssh
            .upload(host, {
              localPath: path.join(airgap.dir, airgap.script ?? "install.sh"),
              path: script,
              mode: 0o755
            })
            .pipe(Effect.mapError(sshFailed(host.host)))
          yield* ssh
            .upload(host, { localPath: path.join(airgap.dir, airgap.binary ?? "k3s"), path: binary, mode: 0o755 })
            .pipe(Effect.mapError(sshFailed(host.host)))
        }
        const at = new Date(yield* Clock.currentTimeMillis).toISOString()
        // k3s runs (or is starting) here: a restart takes its etcd member down, so the guard decides on it first
        const holdRestart = spec.guard !== undefined && !["inactive", "failed"].includes(before.unitState)
        const command = lockedInstallCommand({
          role,
          args: spec.args,
          version: spec.version,
          scriptPath: script,
          downloadUrl: spec.airgap === undefined ? (options.installScriptUrl ?? INSTALL_SCRIPT_URL) : undefined,
          uploadedBinary: binary,
          writeConfig: spec.config !== undefined,
          keepEnv: spec.keepEnv,
          record: { run: runId, at, role, version: spec.version },
          lockWaitSeconds: lockWaitSeconds(timeouts.lockWait),
          holdRestart
        })
        const limit = plus(timeouts.lockWait, timeouts.install)
        yield* emit({ _tag: "Step", host: host.host, step: "install", detail: spec.version })
        const installed = yield* waiting(
          emit,
          host.host,
          `the k3s ${spec.version} install (after any other run holding ${LOCK_PATH})`,
          limit,
          timeouts.progressInterval,
          runInstallScript(host, command, limit, spec.secrets, emit, spec.config)
        )
        if (binary !== undefined) yield* run(host, removeFileCommand(binary), timeouts.command).pipe(Effect.ignore)
        const parsed = parseLockedInstallOutput(installed.output)
        const lockWaitMs = parsed.lockWaitMs ?? 0
        if (!parsed.acquired && installed.exitCode === LOCK_CONFLICT_EXIT) {
          return yield* fail(
            host.host,
            new LockTimeout({ lock: LOCK_PATH, timeoutMs: Duration.toMillis(timeouts.lockWait) })
          )
        }
        const byAnotherRun = installedDuringRun({
          previous: parsed.previous,
          beforeLock: before.record,
          runId,
          runStartedAt
        })
        if (parsed.acquired && lockWaitMs >= 50) {
          yield* emit({
            _tag: "LockWaited",
            host: host.host,
            waitedMs: lockWaitMs,
            previous: byAnotherRun ? parsed.previous : undefined
          })
        }
        if (installed.exitCode !== 0) {
          const step =
            parsed.lastStep === undefined
              ? parsed.acquired
                ? "preparing the install"
                : "writing /etc/rancher/k3s/config.yaml"
              : (STEP_NAMES[parsed.lastStep] ?? parsed.lastStep)
          // the lock's and our own trace lines only for --verbose (the debug log)
          yield* Effect.logDebug(`k3s-join ${host.host}: ${step} failed; its whole output:\n${installed.output}`)
          return yield* fail(
            host.host,
            new InstallFailed({ step, exitCode: installed.exitCode, tail: tailOf(withoutTrace(installed.output)) })
          )
        }
        if (parsed.restartHeld && spec.guard !== undefined)
          yield* guardedRestart(host, role, spec.guard, timeouts, emit)
        // a server whose k3s runs on after the cluster removed its etcd member (it wrote the tombstone, k3s since
        // January 2026) joins again only at its next start: nothing changed, so the install did not restart it. Its
        // member is gone already, so the restart takes nothing from etcd's quorum.
        const tombstone =
          role === "server" &&
          parsed.unchanged &&
          !parsed.restartHeld &&
          ["active", "activating", "reloading"].includes(before.unitState) &&
          classifyJournal(linesSinceUnitStart(journalBaseline))?.failure === "EtcdMemberRemovedRestart"
        if (tombstone) yield* tombstoneRestart(host, role, timeouts, emit)
        // an earlier run's record is history (`unchanged`): this run started that install's unit if it was not running
        const installedBy =
          parsed.unchanged && byAnotherRun && parsed.previous !== undefined
            ? { ...parsed.previous, lockWaitMs }
            : undefined
        return {
          unit: unitName(role),
          journalBaseline,
          unchanged: parsed.unchanged && !tombstone,
          lockWaitMs,
          installedBy,
          unitStateBefore: before.unitState
        } satisfies InstallResult
      })

    const install = Effect.fn("K3sJoin.install")(function* (request: InstallOptions) {
      return yield* installAs(request, undefined)
    })

    /** `install`, with the node name when the caller knows it already (for the quorum guard of a server's restart). */
    const installAs = (request: InstallOptions, knownNodeName: string | undefined) =>
      Effect.gen(function* () {
        const { host, role } = request
        const emit = emitter(request.onEvent)
        const flags = normalizeFlags(request.flags)
        const badFlag = checkFlags(flags, role)
        if (badFlag !== undefined) return yield* fail(host.host, new InvalidOptions({ detail: badFlag }))
        const usable = checkTokenForRole(request.token, role)
        if (Result.isFailure(usable)) return yield* fail(host.host, usable.failure)
        const args = [
          role,
          "--server",
          serverUrl(request.server.apiAddress ?? request.server.host, request.server.apiPort),
          ...(request.nodeName === undefined ? [] : ["--node-name", request.nodeName]),
          ...flags
        ]
        return yield* lockedInstall({
          host,
          role,
          args,
          version: request.version,
          config: configYaml(request.token.value),
          keepEnv: false,
          airgap: request.airgap,
          timeouts: request.timeouts,
          secrets: [request.token.value],
          emit,
          guard:
            role === "server" && request.quorumGuard !== false
              ? {
                  server: request.server,
                  nodeName:
                    knownNodeName === undefined
                      ? nodeNameOf({ ...host, nodeName: request.nodeName ?? host.nodeName }, flags)
                      : Effect.succeed(knownNodeName)
                }
              : undefined
        })
      })

    /** The install record another run left on this host since boot (`/run` is a tmpfs), if any. */
    const otherRunsRecord = (host: SshTarget, timeout: Duration.Input) =>
      run(host, `cat ${RECORD_PATH}`, timeout).pipe(
        Effect.map((r) => (r.exitCode === 0 ? parseRecord(r.stdout) : undefined)),
        Effect.map((r) => (r !== undefined && r.run !== runId ? r : undefined))
      )

    const nodeAbsent = (stderr: string) => stderr.includes("NotFound") || stderr.includes("not found")

    const cleanupStaleNode = Effect.fn("K3sJoin.cleanupStaleNode")(function* (server: SshTarget, name: string) {
      const timeouts = timeoutsOf(undefined, "server")
      const timeout = timeouts.command
      // `kubectl delete` waits (by UID) until the Node is gone: its finalizers, an etcd member's removal, run first
      const gone = Effect.gen(function* () {
        const deleted = yield* run(server, deleteNodeCommand(name), timeout)
        if (deleted.exitCode !== 0) {
          return yield* fail(
            server.host,
            new ClusterUnavailable({ server: server.host, detail: `deleting node ${name}: ${deleted.stderr.trim()}` })
          )
        }
        const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(timeout)
        const delay = pollDelays(timeouts.pollInterval)
        while (true) {
          const got = yield* run(server, getNodeCommand(name), timeout)
          if (got.exitCode !== 0 && nodeAbsent(got.stderr)) return
          // a Node of that name without a deletionTimestamp registered after the deleted one was gone
          const now = got.exitCode === 0 ? decodeNode(got.stdout) : undefined
          if (now !== undefined && Result.isSuccess(now) && !now.success.deleting) return
          if ((yield* Clock.currentTimeMillis) >= deadline) {
            return yield* fail(
              server.host,
              new Timeout({
                what: `deletion of the stale node ${name}`,
                timeoutMs: Duration.toMillis(timeout),
                lastLines: []
              })
            )
          }
          yield* Effect.sleep(delay())
        }
      })
      yield* waiting(
        emitter(undefined),
        server.host,
        `the stale node ${name} to be gone`,
        timeout,
        timeouts.progressInterval,
        gone
      )
      const secret = yield* run(server, deleteNodePasswordCommand(name), timeout)
      if (secret.exitCode !== 0) {
        return yield* fail(
          server.host,
          new ClusterUnavailable({
            server: server.host,
            detail: `deleting secret ${name}.node-password.k3s: ${secret.stderr.trim()}`
          })
        )
      }
    })

    const reasonFor = (
      classification: JournalClassification,
      server: string,
      node: string,
      role: Role
    ): K3sJoinErrorReason => {
      const line = classification.line
      switch (classification.failure) {
        case "UndefinedFlag":
          return new InvalidOptions({
            detail: `k3s ${role} on ${node} stops at every start on a flag it does not define (its unit restarts every 5 s and the node never joins): ${line}`
          })
        case "NodePasswordRejected":
          return new NodePasswordRejected({ node, line })
        case "DuplicateEtcdMember":
          return new DuplicateEtcdMember({ node, line })
        case "EtcdMemberRemoved":
        case "EtcdMemberRemovedRestart":
          return new EtcdMemberRemoved({ node, line })
        case "TooManyLearners":
          return new TooManyLearners({ line })
        case "CaHashMismatch":
          return new CaHashMismatch({ line })
        case "Unauthorized":
          return new BadToken({ kind: "Unauthorized", line })
        case "NotAServerToken":
          return new BadToken({ kind: "NotAServerToken", line })
        case "DatastoreTokenMismatch":
          return new BadToken({ kind: "DatastoreTokenMismatch", line })
        case "ConfigMismatch":
          return new ConfigMismatch({ line })
        case "NoEmbeddedEtcd":
          return new NoEmbeddedEtcd({ line })
        case "SanMismatch":
          return new SanMismatch({ line })
        case "ServerUnreachable":
          return new ServerUnreachable({ server, line })
        case "EtcdUnavailable":
          return new EtcdUnavailable({ node, line })
      }
    }

    const verifyIdentity = (node: ClusterNode, host: K3sHost, role: Role, version: string | undefined) => {
      if (node.role !== role) return new RoleMismatch({ node: node.name, expected: role, actual: node.role })
      const ip = expectedIp(host)
      if (ip !== undefined && !node.internalIPs.includes(ip)) {
        return new IdentityMismatch({
          node: node.name,
          field: "InternalIP",
          expected: ip,
          actual: node.internalIPs.join(",") || "none"
        })
      }
      if (
        host.systemUUID !== undefined &&
        node.systemUUID !== undefined &&
        node.systemUUID.toLowerCase() !== host.systemUUID.toLowerCase()
      ) {
        return new IdentityMismatch({
          node: node.name,
          field: "systemUUID",
          expected: host.systemUUID,
          actual: node.systemUUID
        })
      }
      if (version !== undefined && node.kubeletVersion !== undefined && node.kubeletVersion !== version) {
        return new IdentityMismatch({
          node: node.name,
          field: "kubeletVersion",
          expected: version,
          actual: node.kubeletVersion
        })
      }
      return undefined
    }

    /** A polling SSH failure that waiting cannot fix. */
    const isFatalSsh = (error: K3sJoinError) =>
      error.reason._tag === "Ssh" &&
      ["AuthRejected", "HostKeyMismatch", "HostKeyRevoked", "HostKeyUnknown"].includes(error.reason.error.reason._tag)

    const tolerant = <A>(effect: Effect.Effect<A, K3sJoinError>, fallback: A) =>
      effect.pipe(
        Effect.catchIf(
          (e) => !isFatalSsh(e),
          () => Effect.succeed(fallback)
        )
      )

    /** An apiserver that cannot answer right now (restarting, quorum regained soon): waiting may fix it. */
    const transientApi = (stderr: string) =>
      /was refused|connection refused|etcdserver|ServiceUnavailable|Unable to connect|i\/o timeout|no route to host|EOF/.test(
        stderr
      )

    /**
     * `kubectl wait --for=<condition> node/<name>` on `server` — one SSH session that returns when the platform says so —
     * repeated across apiserver restarts and early returns until `deadline` (epoch ms).
     */
    const waitNode = (
      server: SshTarget,
      name: string,
      condition: string,
      deadline: number,
      poll: Duration.Input,
      commandTimeout: Duration.Input
    ): Effect.Effect<"met" | "timeout" | "absent", K3sJoinError> =>
      Effect.gen(function* () {
        while (true) {
          const now = yield* Clock.currentTimeMillis
          const remaining = deadline - now
          if (remaining <= 0) return "timeout" as const
          const got = yield* run(
            server,
            waitNodeCommand(name, condition, remaining / 1000),
            plus(remaining, commandTimeout)
          ).pipe(
            Effect.catchIf(
              (e) => e.reason._tag === "Ssh" && e.reason.error.reason._tag === "Timeout",
              () => Effect.succeed(undefined)
            )
          )
          if (got !== undefined && got.exitCode === 0) return "met" as const
          const stderr = got?.stderr ?? ""
          if (got !== undefined && /\(NotFound\)/.test(stderr)) return "absent" as const
          if (got !== undefined && !stderr.includes("timed out waiting") && !transientApi(stderr)) {
            return yield* fail(
              server.host,
              new ClusterUnavailable({
                server: server.host,
                detail: `kubectl wait --for=${condition} node/${name}: ${stderr.trim() || `exit code ${got.exitCode}`}`
              })
            )
          }
          yield* Effect.sleep(poll)
        }
      })

    /** Polls the Node until `differs` says no more (its k3s restarted with the wanted flags), or the deadline. */
    const waitNodeFlags = (
      server: SshTarget,
      name: string,
      differs: (node: ClusterNode) => boolean,
      deadline: number,
      poll: Duration.Input,
      commandTimeout: Duration.Input
    ): Effect.Effect<"met" | "timeout" | "absent", K3sJoinError> =>
      Effect.gen(function* () {
        while (true) {
          if ((yield* Clock.currentTimeMillis) >= deadline) return "timeout" as const
          const got = yield* tolerant(run(server, getNodeCommand(name), commandTimeout), undefined)
          if (got !== undefined && got.exitCode !== 0 && /\(NotFound\)/.test(got.stderr)) return "absent" as const
          const node = got !== undefined && got.exitCode === 0 ? decodeNode(got.stdout) : undefined
          if (node !== undefined && Result.isSuccess(node) && !differs(node.success)) return "met" as const
          yield* Effect.sleep(poll)
        }
      })

    const waitReady = Effect.fn("K3sJoin.waitReady")(function* (request: WaitReadyOptions) {
      const { host, role, server, nodeName } = request
      const emit = emitter(request.onEvent)
      const timeouts = timeoutsOf(request.timeouts, role)
      const secrets = request.secrets ?? []
      const url = serverUrl(server.apiAddress ?? server.host, server.apiPort)
      const readyMs = Duration.toMillis(timeouts.ready)
      const deadline = (yield* Clock.currentTimeMillis) + readyMs
      const baseline = request.journalBaseline ?? []
      let seen: Array<string> = []
      let lastState = ""
      let lastReady = ""
      let lastTransient: JournalClassification | undefined
      let current: ClusterNode | undefined
      /** The install restarted the unit, and no journal read showed systemd's line for that start yet. */
      let startPending = request.restarted === true
      /**
       * The journal as it was when this wait restarted a server whose etcd member the cluster removed meanwhile
       * (`EtcdMemberRemovedRestart`): only what came after it tells of the restarted k3s. Once only: a removal again
       * after that restart fails the wait at once.
       */
      let removedRestartAt: ReadonlyArray<string> | undefined
      yield* emit({ _tag: "Step", host: host.host, step: "wait-ready", detail: nodeName })

      /** Unit state and journal: events, and a failure as soon as the journal shows a permanent one. */
      const watchHost = Effect.gen(function* () {
        const { state, journal } = yield* tolerant(unitAndJournal(host, role, timeouts.command), {
          state: "unknown",
          journal: seen
        })
        if (state !== lastState) {
          lastState = state
          yield* emit({ _tag: "UnitState", host: host.host, unit: unitName(role), state })
        }
        const lines = journal.map((l) => scrubTokens(l, secrets))
        const fresh = newJournalLines(baseline, lines)
        for (const line of newJournalLines(seen, fresh)) yield* emit({ _tag: "JournalLine", host: host.host, line })
        seen = fresh
        // after this wait's own restart (below), only the lines since then
        const current = removedRestartAt === undefined ? fresh : newJournalLines(removedRestartAt, lines)
        // only the unit's current run tells why it is not Ready; after the install's restart, a permanent failure only
        // once systemd's line for that start is in the journal (seen once, it counts even when it has scrolled out)
        const classification = classifyCurrentRun(lines, current, startPending)
        if (current.some(isUnitStart)) startPending = false
        if (classification?.permanent) return yield* fail(host.host, reasonFor(classification, url, nodeName, role))
        if (role === "server" && classification?.failure === "EtcdMemberRemovedRestart") {
          // The cluster removed this server's etcd member while the join waits (its Node deleted: someone's `kubectl
          // delete node`, a cleanup): k3s since January 2026 wrote the tombstone and runs on without etcd until it is
          // restarted, and then joins again as a new member (k3s-io/k3s PR #2592, pkg/etcd `Register`). Its member is
          // gone already, so the restart takes nothing from etcd's quorum: restarted once, as the install does, and the
          // wait goes on. A removal again after that restart is not one a restart fixes: something keeps removing it.
          if (removedRestartAt !== undefined)
            return yield* fail(
              host.host,
              new EtcdMemberRemoved({ node: nodeName, line: classification.line, afterRestart: true })
            )
          removedRestartAt = lines
          startPending = true
          lastTransient = undefined
          // not cut short by the Node's wait it races with: the restart, under the host's install lock, runs to its end
          yield* Effect.uninterruptible(tombstoneRestart(host, role, timeouts, emit))
          return state
        }
        if (classification !== undefined && classification.line !== lastTransient?.line) {
          yield* emit({ _tag: "Waiting", host: host.host, failure: classification.failure, line: classification.line })
        }
        lastTransient = classification
        return state
      })

      const noteNode = (node: ClusterNode | undefined) =>
        Effect.gen(function* () {
          current = node
          const ready = current === undefined ? "Absent" : current.ready
          if (ready !== lastReady) {
            lastReady = ready
            yield* emit({ _tag: "NodeState", host: host.host, node: nodeName, ready })
          }
          return current
        })
      /** The Node as the server has it now. */
      const readNode = Effect.gen(function* () {
        const got = yield* tolerant(run(server, getNodeCommand(nodeName), timeouts.command), undefined)
        const node = got !== undefined && got.exitCode === 0 ? decodeNode(got.stdout) : undefined
        return yield* noteNode(node !== undefined && Result.isSuccess(node) ? node.success : undefined)
      })
      /**
       * The Node as a listing of the server's started after `after` has it (another wait's, or a new one), and when
       * that listing started.
       */
      const pollNode = (after: number) =>
        Effect.gen(function* () {
          const listed = yield* tolerant(nodesAfter(server, after, timeouts.command), undefined)
          const node = yield* noteNode(listed?.value?.find((n) => n.name === nodeName))
          return { node, startedAt: listed?.startedAt ?? (yield* Clock.currentTimeMillis) }
        })

      const atDeadline = Effect.gen(function* () {
        if (lastTransient !== undefined) return yield* fail(host.host, reasonFor(lastTransient, url, nodeName, role))
        if (current !== undefined && current.ready !== "True" && lastState === "active") {
          return yield* fail(
            host.host,
            new NotReady({
              node: nodeName,
              status: current.ready === "False" ? "False" : "Unknown",
              detail: current.readyDetail
            })
          )
        }
        return yield* fail(
          host.host,
          new Timeout({
            what: `waiting for node ${nodeName} to become Ready (unit ${unitName(role)} ${lastState}, Ready ${lastReady})`,
            timeoutMs: readyMs,
            lastLines: seen.slice(-10)
          })
        )
      })

      const done = (node: ClusterNode) => {
        const mismatch = verifyIdentity(node, host, role, request.version)
        return mismatch === undefined ? Effect.succeed(node) : fail(host.host, mismatch)
      }

      const body = Effect.gen(function* () {
        while (true) {
          // 1. until the Node exists and the unit runs: there is no event for "a Node appeared" on older kubectl, so
          // poll, from 100 ms growing to pollInterval
          const delay = pollDelays(timeouts.pollInterval)
          // each poll sees a newer listing than the poll before it (another wait's, or its own)
          let after = (yield* Clock.currentTimeMillis) - 1
          while (true) {
            const state = yield* watchHost
            const polled = yield* pollNode(after)
            const node = polled.node
            after = polled.startedAt
            if (node !== undefined && node.ready === "True" && !node.deleting && state === "active")
              return yield* done(node)
            if (node !== undefined && !node.deleting && state === "active") break
            if ((yield* Clock.currentTimeMillis) >= deadline) return yield* atDeadline
            yield* Effect.sleep(delay())
          }
          // 2. Ready: `kubectl wait` (one session, returns when the condition holds), while the journal is watched
          const watch = Effect.gen(function* () {
            while (true) {
              yield* Effect.sleep(timeouts.pollInterval)
              yield* watchHost
            }
          })
          const outcome = yield* Effect.raceFirst(
            waitNode(server, nodeName, "condition=Ready", deadline, timeouts.pollInterval, timeouts.command),
            watch
          )
          if (outcome === "met") {
            // the Node as the server has it now, and the host's last word (a permanent failure still fails), at once
            const [node] = yield* Effect.all([readNode, watchHost], { concurrency: 2 })
            if (node !== undefined && node.ready === "True" && !node.deleting) return yield* done(node)
          }
          if (outcome === "timeout" || (yield* Clock.currentTimeMillis) >= deadline) {
            yield* readNode
            return yield* atDeadline
          }
          // the Node went away meanwhile (or was not Ready after all): back to watching for it
        }
      })
      return yield* waiting(
        emit,
        host.host,
        `node ${nodeName} to become Ready`,
        timeouts.ready,
        timeouts.progressInterval,
        body
      )
    })

    const ensureMemberUnlocked = Effect.fn("K3sJoin.ensureMember")(function* (request: EnsureMemberOptions) {
      const { server, host, role } = request
      const emit = emitter(request.onEvent)
      const timeouts = timeoutsOf(request.timeouts, role)
      const flags = normalizeFlags(request.flags)
      const badFlag = checkFlags(flags, role)
      if (badFlag !== undefined) return yield* fail(host.host, new InvalidOptions({ detail: badFlag }))
      const t0 = yield* Clock.currentTimeMillis

      if (request.rebuilt === true || request.newHostKey === true) {
        // a rebuilt or new host presents a new SSH host key; drop the old one and any pooled connection
        yield* emit({ _tag: "Step", host: host.host, step: "forget-host-key" })
        yield* ssh.forgetHostKey(host.host, host.port).pipe(Effect.mapError(sshFailed(host.host)))
        yield* ssh.close(host)
      }

      // What does not depend on the membership check runs alongside it: the host's connection is opened, and for a
      // new or rebuilt host (which this call almost always joins) the join token (when none is given) is read from the
      // server, so that the install starts one round trip after the check. A member checked again reads no secret.
      const warm = yield* Effect.forkChild(ssh.connect(host).pipe(Effect.ignore))
      // what another join read since just before this one began is this one's too (`JOIN_SHARE_MS`)
      const since = t0 - JOIN_SHARE_MS
      const readToken = () =>
        sharedToken(`${serverKey(server)} ${role}`, since, fetchToken(server, role)).pipe(Effect.map((r) => r.value))
      const tokenRead =
        request.token === undefined && (request.rebuilt === true || request.newHostKey === true)
          ? yield* Effect.forkChild(Effect.result(readToken()))
          : undefined
      yield* emit({ _tag: "Step", host: host.host, step: "inspect" })
      const nodes = (yield* sharedInspect(serverKey(server), since, clusterNodes(server))).value
      const nodeName = yield* nodeNameOf(host, flags)
      const member = membershipOf(nodes, host, role, nodeName)
      yield* Fiber.join(warm)
      const t1 = yield* Clock.currentTimeMillis
      const timings = (marks: { cleanup: number; token: number; install: number; ready: number }) => ({
        totalMs: marks.ready - t0,
        inspectMs: t1 - t0,
        cleanupMs: marks.cleanup - t1,
        tokenMs: marks.token - marks.cleanup,
        installMs: marks.install - marks.token,
        readyMs: marks.ready - marks.install
      })

      if (member._tag === "Member") {
        const state = yield* unitState(host, role, timeouts.command)
        if (state === "active") {
          yield* emit({ _tag: "Step", host: host.host, step: "done", detail: "already a member" })
          return {
            _tag: "AlreadyMember",
            host: host.host,
            node: nodeName,
            role,
            version: member.node.kubeletVersion,
            cleanedUp: false,
            timings: timings({ cleanup: t1, token: t1, install: t1, ready: t1 })
          } satisfies MemberResult
        }
      }

      const mayClean = request.rebuilt === true || request.cleanupStale === true
      if (member._tag === "Mismatch" && !mayClean) {
        const roleMismatch = member.mismatches.find((m) => m.field === "role")
        if (roleMismatch !== undefined) {
          return yield* fail(host.host, new RoleMismatch({ node: nodeName, expected: role, actual: member.node.role }))
        }
      }
      // A token the caller was given as a password only (`tokenPassword`): the server's must have it, checked before
      // anything is changed (the cleanup below deletes a Node of the cluster the server is of)
      let early: Result.Result<JoinToken, K3sJoinError> | undefined
      if (request.token === undefined && request.tokenPassword !== undefined) {
        early = tokenRead === undefined ? yield* Effect.result(readToken()) : yield* Fiber.join(tokenRead)
        if (
          Result.isSuccess(early) &&
          early.success.user === "server" &&
          hasPassword(early.success, request.tokenPassword) === false
        )
          return yield* fail(host.host, new TokenDiffers({ server: server.host }))
      }
      // A server: etcd must not hold a member of this name (or of this IP) that no Node owns (k3s.md §5.3). Deleting
      // a Node removes its member, so the stale-Node cleanup below handles a member whose Node is still there; one
      // without a Node only etcdctl removes, and the join would loop on 'duplicate node name found'. Nothing is
      // installed then. Members that cannot be read (a k3s before v1.27.14 does not answer /db/info from localhost)
      // leave the join as it was: its wait still tells that failure from the journal.
      if (role === "server") {
        const members = yield* Effect.result(etcdMembers(server))
        const suspects = Result.isSuccess(members)
          ? orphanMembersOf({ nodes, members: members.success }, nodeName, expectedIp(host))
          : []
        if (suspects.length > 0) {
          // a host whose own etcd member is listed (its name file) restarts k3s with that member: no join, no clash
          const own = yield* run(host, etcdNameCommand(), timeouts.command).pipe(
            Effect.map((r) => (r.exitCode === 0 ? r.stdout.trim() : undefined)),
            Effect.orElseSucceed(() => undefined)
          )
          const restarts = own !== undefined && Result.isSuccess(members) && members.success.some((m) => m.name === own)
          const stale = restarts ? undefined : suspects[0]
          if (stale !== undefined) {
            return yield* fail(
              host.host,
              new StaleEtcdMember({
                node: nodeName,
                member: stale.name,
                memberId: memberIdHex(stale.id),
                peerURL: stale.peerURL ?? null,
                server: server.host
              })
            )
          }
        }
      }

      // A Node of this name may be another run's join on this very host (it left its install record here since boot,
      // however long ago): that one is not stale.
      const other = mayClean ? yield* otherRunsRecord(host, timeouts.command) : undefined
      const cleaned = mayClean && other === undefined
      if (other !== undefined) {
        yield* emit({
          _tag: "Step",
          host: host.host,
          step: "cleanup",
          detail: `skipped: run ${other.run} installed k3s on this host at ${other.at}`
        })
      } else if (mayClean) {
        yield* emit({ _tag: "Step", host: host.host, step: "cleanup", detail: nodeName })
        // the listings so far show the Node this removes: a join starting now lists again
        yield* sharedInspect.forget(serverKey(server))
        yield* cleanupStaleNode(server, nodeName)
      }
      const t2 = yield* Clock.currentTimeMillis

      const version = request.version ?? clusterVersionOf(nodes) ?? (yield* versionFromServer(server))
      let token: JoinToken
      if (request.token !== undefined) {
        const parsed = parseJoinToken(request.token)
        if (Result.isFailure(parsed)) return yield* fail(host.host, parsed.failure)
        token = parsed.success
      } else {
        yield* emit({ _tag: "Step", host: host.host, step: "token", detail: server.host })
        const read =
          early ?? (tokenRead === undefined ? yield* Effect.result(readToken()) : yield* Fiber.join(tokenRead))
        if (Result.isFailure(read)) return yield* Effect.fail(read.failure)
        token = read.success
      }
      const t3 = yield* Clock.currentTimeMillis

      // a join starting from now on lists the Nodes again: this install registers one
      yield* sharedInspect.forget(serverKey(server))
      const installed = yield* installAs(
        {
          server,
          host,
          role,
          token,
          version,
          flags,
          nodeName: host.nodeName,
          airgap: request.airgap,
          quorumGuard: request.quorumGuard,
          timeouts: request.timeouts,
          onEvent: request.onEvent
        },
        nodeName
      )
      const t4 = yield* Clock.currentTimeMillis
      const node = yield* waitReady({
        server,
        host,
        role,
        nodeName,
        journalBaseline: installed.journalBaseline,
        restarted: !installed.unchanged,
        version,
        timeouts: request.timeouts,
        secrets: [token.value],
        onEvent: request.onEvent
      })
      const t5 = yield* Clock.currentTimeMillis
      yield* emit({ _tag: "Step", host: host.host, step: "done", detail: "joined" })
      return {
        _tag: "Joined",
        host: host.host,
        node: node.name,
        role,
        version: node.kubeletVersion,
        cleanedUp: cleaned,
        timings: timings({ cleanup: t2, token: t3, install: t4, ready: t5 }),
        ...(installed.installedBy !== undefined
          ? { installedBy: installed.installedBy }
          : installed.unchanged
            ? { unchanged: { unit: installed.unit, unitStateBefore: installed.unitStateBefore } }
            : {})
      } satisfies MemberResult
    })

    const ensureMember = (request: EnsureMemberOptions): Effect.Effect<MemberResult, K3sJoinError> =>
      request.role === "server"
        ? serverLock.withPermits(1)(ensureMemberUnlocked(request))
        : ensureMemberUnlocked(request)

    const outcome = (request: EnsureMemberOptions) =>
      ensureMember(request).pipe(
        Effect.result,
        Effect.map((result): JoinOutcome => ({ host: request.host.host, role: request.role, result }))
      )

    const joinAll = Effect.fn("K3sJoin.joinAll")(function* (
      hosts: ReadonlyArray<EnsureMemberOptions>,
      joinOptions?: { readonly agentConcurrency?: number | undefined }
    ) {
      const concurrency = Math.max(1, joinOptions?.agentConcurrency ?? options.agentConcurrency ?? 4)
      const servers = hosts.filter((h) => h.role === "server")
      const agents = hosts.filter((h) => h.role === "agent")
      const [serverOutcomes, agentOutcomes] = yield* Effect.all(
        [Effect.forEach(servers, outcome, { concurrency: 1 }), Effect.forEach(agents, outcome, { concurrency })],
        { concurrency: 2 }
      )
      // report in the order given
      const byRequest = new Map<EnsureMemberOptions, JoinOutcome>()
      for (const [i, s] of servers.entries()) byRequest.set(s, serverOutcomes[i] as JoinOutcome)
      for (const [i, a] of agents.entries()) byRequest.set(a, agentOutcomes[i] as JoinOutcome)
      return hosts.map((h) => byRequest.get(h) as JoinOutcome)
    })

    // ------------------------------------------------------------------------------------------ cluster lifecycle

    /**
     * The k3s server unit of a host about to start a cluster (`systemctl is-active k3s`), and, when it runs, its Node:
     * `ready` when it is the Ready server `nodeName` already (`initCluster` has nothing to do), else why not (`why`).
     */
    const serverBeforeInit = (host: SshTarget, nodeName: string, timeout: Duration.Input) =>
      Effect.gen(function* () {
        const state = yield* unitState(host, "server", timeout)
        if (state !== "active") return { state, why: `systemctl is-active k3s: ${state}`, ready: undefined }
        const nodes = yield* Effect.result(clusterNodes(host))
        const node = Result.isSuccess(nodes) ? nodes.success.find((n) => n.name === nodeName) : undefined
        const why = Result.isFailure(nodes)
          ? `its Nodes cannot be read: ${nodes.failure.reason.message}`
          : node === undefined
            ? `it has no Node ${nodeName}`
            : `its Node ${nodeName} is ${node.role === "server" ? `not Ready (${node.ready})` : "an agent"}`
        return {
          state,
          why,
          ready: node !== undefined && node.role === "server" && node.ready === "True" ? node : undefined
        }
      })

    /** What keeps a cluster from starting on a host that is not its Ready first server (`existingClusterOf`). */
    const refusalBeforeInit = (
      host: SshTarget,
      nodeName: string,
      server: { readonly state: string; readonly why: string },
      timeout: Duration.Input
    ) =>
      Effect.gen(function* () {
        const data = yield* run(host, etcdNameCommand(), timeout)
        const member = data.exitCode === 0 && data.stdout.trim() !== "" ? data.stdout.trim() : undefined
        // the agent's unit only matters when nothing else refuses already
        const agent =
          member === undefined && ["inactive", "failed", "unknown"].includes(server.state)
            ? yield* unitState(host, "agent", timeout)
            : "unknown"
        return existingClusterOf({
          node: nodeName,
          member,
          unitState: server.state,
          agentUnitState: agent,
          detail: server.why
        })
      })

    const existingCluster = Effect.fn("K3sJoin.existingCluster")(function* (host: K3sHost) {
      const timeout = timeoutsOf(undefined, "server").command
      const nodeName = yield* nodeNameOf(host, [])
      const found = yield* serverBeforeInit(host, nodeName, timeout)
      if (found.ready !== undefined) return undefined
      return yield* refusalBeforeInit(host, nodeName, found, timeout)
    })

    const initCluster = Effect.fn("K3sJoin.initCluster")(function* (request: InitClusterOptions) {
      const { host } = request
      const emit = emitter(request.onEvent)
      const timeouts = timeoutsOf(request.timeouts, "server")
      const flags = normalizeFlags(request.flags)
      const badFlag = checkFlags(flags, "server")
      if (badFlag !== undefined) return yield* fail(host.host, new InvalidOptions({ detail: badFlag }))
      const nodeName = yield* nodeNameOf(host, flags)
      const asServer: K3sServer = { ...host }
      yield* emit({ _tag: "Step", host: host.host, step: "inspect" })
      // already a running server with its Node Ready: nothing to do (never initialise twice: that makes a new cluster)
      const found = yield* serverBeforeInit(host, nodeName, timeouts.command)
      if (found.ready !== undefined) {
        const token = yield* fetchToken(host, "server")
        yield* emit({ _tag: "Step", host: host.host, step: "done", detail: "already initialised" })
        return {
          _tag: "AlreadyInitialized",
          host: host.host,
          node: nodeName,
          version: found.ready.kubeletVersion,
          token
        } satisfies InitClusterResult
      }
      // A k3s server that runs here, etcd data an earlier cluster left (k3s.md §1.4: with an initialised data dir k3s
      // ignores --cluster-init and starts that member again, waiting for its old peers or bringing its cluster back),
      // or a k3s agent that runs here (k3s.md §1.2: install.sh adds the unit k3s and leaves k3s-agent as it is) is not
      // a cluster to start: refused. Unless it is another run's install on this host during this run (two runs
      // starting the same cluster at once): that init's k3s and etcd data, which this one waits for as before. Its
      // record is read after what refuses: an install writes its record before its k3s starts, so k3s or etcd data
      // of that install seen here always comes with its record, however late this run reads after the other's start.
      const refused = yield* refusalBeforeInit(host, nodeName, found, timeouts.command)
      if (refused !== undefined) {
        const other = yield* otherRunsRecord(host, timeouts.command)
        const at = other === undefined ? Number.NaN : Date.parse(other.at)
        if (!(Number.isFinite(at) && at >= runStartedAt)) return yield* fail(host.host, refused)
      }
      yield* emit({ _tag: "Step", host: host.host, step: "cluster-init", detail: request.version })
      const installed = yield* lockedInstall({
        host,
        role: "server",
        args: [
          "server",
          "--cluster-init",
          ...(host.nodeName === undefined ? [] : ["--node-name", host.nodeName]),
          ...flags
        ],
        version: request.version,
        config: request.token === undefined ? undefined : configYaml(request.token),
        keepEnv: false,
        airgap: undefined,
        timeouts: request.timeouts,
        secrets: request.token === undefined ? [] : [request.token],
        emit
      })
      const node = yield* waitReady({
        server: asServer,
        host,
        role: "server",
        nodeName,
        journalBaseline: installed.journalBaseline,
        restarted: !installed.unchanged,
        version: request.version,
        timeouts: request.timeouts,
        secrets: request.token === undefined ? [] : [request.token],
        onEvent: request.onEvent
      })
      yield* emit({ _tag: "Step", host: host.host, step: "token", detail: host.host })
      const token = yield* fetchToken(host, "server")
      yield* emit({ _tag: "Step", host: host.host, step: "done", detail: "cluster initialised" })
      return {
        _tag: "Initialized",
        host: host.host,
        node: node.name,
        version: node.kubeletVersion,
        token,
        ...(installed.installedBy === undefined ? {} : { installedBy: installed.installedBy })
      } satisfies InitClusterResult
    })

    const etcdMembers = Effect.fn("K3sJoin.etcdMembers")(function* (server: SshTarget) {
      const result = yield* run(server, dbInfoCommand(), timeoutsOf(undefined, "server").command)
      if (result.exitCode !== 0) {
        return yield* fail(
          server.host,
          new ClusterUnavailable({
            server: server.host,
            detail: `reading the etcd members (/db/info): ${result.stderr.trim() || `exit code ${result.exitCode}`}`
          })
        )
      }
      const decoded = decodeDbInfo(result.stdout)
      if (Result.isFailure(decoded)) {
        return yield* fail(
          server.host,
          new ClusterUnavailable({ server: server.host, detail: `unexpected /db/info: ${decoded.failure}` })
        )
      }
      return decoded.success
    })

    const clusterFacts = Effect.fn("K3sJoin.clusterFacts")(function* (server: SshTarget) {
      const [nodes, members] = yield* Effect.all([clusterNodes(server), etcdMembers(server)], { concurrency: 2 })
      return { nodes, members } satisfies ClusterFacts
    })

    const guard = (server: SshTarget, node: string, action: QuorumAction) =>
      Effect.gen(function* () {
        const facts = yield* clusterFacts(server)
        const verdict = quorumCheck(facts, node, action)
        if (verdict.ok) return facts
        return yield* fail(server.host, quorumAtRisk(verdict))
      })

    const removeServer = Effect.fn("K3sJoin.removeServer")(function* (request: RemoveServerOptions) {
      const { server, node } = request
      const emit = emitter(request.onEvent)
      const timeouts = timeoutsOf(request.timeouts, "server")
      const facts = request.quorumGuard === false ? yield* clusterFacts(server) : yield* guard(server, node, "remove")
      const members = membersOfNode(facts, node).map((m) => m.name)
      const exists = facts.nodes.some((n) => n.name === node)
      if (!exists && members.length === 0)
        return { node, nodeDeleted: false, removedMembers: [] } satisfies RemoveServerResult
      // A member of its name that no Node owns (its Node deleted with the finalizers removed; an earlier incarnation's)
      // stays whatever Node is deleted: refused before anything is deleted, not after waiting for it.
      const orphans = orphanMembersOf(facts, node)
      // A learner of its name without a Node is a join going on right now: its Node follows, and with it the way to
      // remove the member. Nothing is removed meanwhile (removing that member would break the join).
      const joining = joiningMembersOf(facts, node)
      if (orphans.length === 0 && joining.length > 0) {
        return yield* fail(
          server.host,
          new ClusterUnavailable({
            server: server.host,
            detail: `${memberJoining(node, joining)}: nothing was deleted; run again once ${node}'s Node is Ready`
          })
        )
      }
      if (orphans.length > 0) {
        return yield* fail(
          server.host,
          new ClusterUnavailable({
            server: server.host,
            detail: `${memberWithoutNode(node, orphans)}: remove ${orphans.length === 1 ? "it" : "them"} with etcdctl member remove; nothing was deleted`
          })
        )
      }
      yield* emit({ _tag: "Step", host: server.host, step: "remove-node", detail: node })
      const deleted = yield* run(server, deleteNodeNoWaitCommand(node), timeouts.command)
      if (deleted.exitCode !== 0) {
        return yield* fail(
          server.host,
          new ClusterUnavailable({ server: server.host, detail: `deleting node ${node}: ${deleted.stderr.trim()}` })
        )
      }
      const limitMs = Duration.toMillis(timeouts.memberRemoval)
      const deadline = (yield* Clock.currentTimeMillis) + limitMs
      const gone = yield* waiting(
        emit,
        server.host,
        `node ${node} and its etcd member ${members.join(", ") || "(none)"} to be removed`,
        timeouts.memberRemoval,
        timeouts.progressInterval,
        Effect.gen(function* () {
          // the Node goes once its finalizer removed the member: kubectl wait --for=delete is that event
          const deleted = yield* waitNode(server, node, "delete", deadline, timeouts.pollInterval, timeouts.command)
          if (deleted === "timeout") return false
          // and the member list must not show it any more (no event for that: poll)
          while (true) {
            const left = (yield* etcdMembers(server)).filter((m) => members.includes(m.name))
            if (left.length === 0) return true
            if ((yield* Clock.currentTimeMillis) >= deadline) return false
            yield* Effect.sleep(timeouts.pollInterval)
          }
        })
      )
      if (!gone) {
        return yield* fail(
          server.host,
          new Timeout({
            what: `removal of node ${node} and its etcd member (etcd refuses it while too few other members run)`,
            timeoutMs: limitMs,
            lastLines: []
          })
        )
      }
      yield* run(server, deleteNodePasswordCommand(node), timeouts.command)
      return { node, nodeDeleted: true, removedMembers: members } satisfies RemoveServerResult
    })

    const setCordon = (server: SshTarget, node: string, value: boolean) =>
      Effect.gen(function* () {
        const result = yield* run(server, cordonCommand(node, value), timeoutsOf(undefined, "server").command)
        if (result.exitCode !== 0) {
          return yield* fail(
            server.host,
            new ClusterUnavailable({
              server: server.host,
              detail: `${value ? "cordon" : "uncordon"} ${node}: ${result.stderr.trim() || `exit code ${result.exitCode}`}`
            })
          )
        }
        return !result.stdout.includes("already")
      })

    const cordon = Effect.fn("K3sJoin.cordon")(function* (server: SshTarget, node: string) {
      return yield* setCordon(server, node, true)
    })

    const uncordon = Effect.fn("K3sJoin.uncordon")(function* (server: SshTarget, node: string) {
      return yield* setCordon(server, node, false)
    })

    const changeNode = Effect.fn("K3sJoin.changeNode")(function* (
      server: SshTarget,
      node: string,
      changes: NodeChanges
    ) {
      if (noNodeChanges(changes)) return
      const command = timeoutsOf(undefined, "server").command
      const refused = (what: string, result: ExecResult) =>
        fail(
          server.host,
          new ClusterUnavailable({
            server: server.host,
            detail: `${what} on node ${node}: ${result.stderr.trim() || `exit code ${result.exitCode}`}`
          })
        )
      if (changes.removeLabels.length > 0) {
        const result = yield* run(server, unlabelNodeCommand(node, changes.removeLabels), command)
        if (result.exitCode !== 0) return yield* refused(`removing label(s) ${changes.removeLabels.join(", ")}`, result)
      }
      // one at a time: kubectl refuses the whole command for one taint that is not there (removed already)
      for (const taint of changes.removeTaints) {
        const result = yield* run(server, taintNodeCommand(node, { remove: taint }), command)
        if (result.exitCode !== 0 && !/^error: taint ".*" not found$/m.test(result.stderr))
          return yield* refused(`removing taint ${taint}`, result)
      }
      if (changes.addTaints.length > 0) {
        const result = yield* run(server, taintNodeCommand(node, { add: changes.addTaints }), command)
        if (result.exitCode !== 0) return yield* refused(`adding taint(s) ${changes.addTaints.join(", ")}`, result)
      }
    })

    const drain = Effect.fn("K3sJoin.drain")(function* (server: SshTarget, node: string, request?: DrainOptions) {
      const emit = emitter(request?.onEvent)
      const timeouts = timeoutsOf(undefined, "server")
      const limit = request?.timeout ?? timeouts.drain
      yield* emit({ _tag: "Step", host: server.host, step: "drain", detail: node })
      const command = drainCommand(node, {
        timeoutSeconds: Duration.toMillis(limit) / 1000,
        ignoreDaemonsets: request?.ignoreDaemonsets !== false,
        deleteEmptyDirData: request?.deleteEmptyDirData !== false
      })
      const result = yield* waiting(
        emit,
        server.host,
        `draining ${node} (evictions respect PodDisruptionBudgets)`,
        limit,
        timeouts.progressInterval,
        run(server, command, plus(limit, timeouts.command))
      )
      const lines = result.stdout.split("\n")
      const evicting = lines.flatMap((l) => /^evicting pod (\S+)$/.exec(l)?.[1] ?? [])
      const evictedNames = new Set(lines.flatMap((l) => /^pod\/(\S+) evicted$/.exec(l)?.[1] ?? []))
      const evicted = [...new Set(evicting.filter((p) => evictedNames.has(p.split("/")[1] ?? "")))]
      const warnings = result.stderr
        .split("\n")
        .filter((l) => l.startsWith("Warning: "))
        .map((l) => l.slice("Warning: ".length))
      if (result.exitCode === 0) return { node, evicted, warnings } satisfies DrainResult
      const stderr = result.stderr
      if (/NotFound/.test(stderr) || transientApi(stderr)) {
        return yield* fail(
          server.host,
          new ClusterUnavailable({
            server: server.host,
            detail: `drain ${node}: ${stderr.trim().split("\n")[0] ?? ""}`
          })
        )
      }
      const pending = stderr.split("\n").flatMap((l) => /^pod\/(\S+)$/.exec(l)?.[1] ?? [])
      const refused = /cannot delete (.+?): (\S.*?)(?:,|\]|$)/.exec(stderr)
      const kind = stderr.includes("disruption budget")
        ? "PodDisruptionBudget"
        : stderr.includes("global timeout reached")
          ? "Timeout"
          : refused !== null
            ? "Refused"
            : "Other"
      const last =
        stderr
          .trim()
          .split("\n")
          .filter((l) => l.startsWith("error: "))
          .at(-1) ?? stderr.trim()
      return yield* fail(
        server.host,
        new DrainFailed({
          node,
          kind,
          pods: pending.length > 0 ? pending : refused !== null ? (refused[2] ?? "").split(", ") : [],
          detail: last.replace(/^error: /, "")
        })
      )
    })

    const upgrade = Effect.fn("K3sJoin.upgrade")(function* (request: UpgradeOptions) {
      const { server, host, role, version } = request
      const emit = emitter(request.onEvent)
      const timeouts = timeoutsOf(request.timeouts, role)
      const t0 = yield* Clock.currentTimeMillis
      yield* emit({ _tag: "Step", host: host.host, step: "inspect" })
      const nodeName = yield* nodeNameOf(host, [])
      const nodes = yield* clusterNodes(server)
      const current = nodes.find((n) => n.name === nodeName)
      if (current === undefined) {
        return yield* fail(
          host.host,
          new NotReady({ node: nodeName, status: "Absent", detail: "not a member of the cluster" })
        )
      }
      if (current.role !== role) {
        return yield* fail(host.host, new RoleMismatch({ node: nodeName, expected: role, actual: current.role }))
      }
      const from = current.kubeletVersion
      /** Someone else's cordon (by hand, an earlier upgrade that did not finish): kept, never undone here. */
      const wasCordoned = current.unschedulable === true
      const flags = request.flags === undefined ? undefined : normalizeFlags(request.flags)
      if (flags !== undefined) {
        const badFlag = checkFlags(flags, role)
        if (badFlag !== undefined) return yield* fail(host.host, new InvalidOptions({ detail: badFlag }))
      }
      /** The wanted flags, when the Node runs with others (or does not say what it runs with). */
      const wanted = flags === undefined ? undefined : desiredFlags(flags)
      const reflag = (node: ClusterNode) => {
        if (wanted === undefined) return false
        const running = runningFlags(node.nodeArgs)
        return running === undefined || !sameFlags(diffFlags(running, wanted))
      }
      const reconfigure = reflag(current)
      if (from === version && current.ready === "True" && !reconfigure) {
        yield* emit({ _tag: "Step", host: host.host, step: "done", detail: `already ${version}` })
        return {
          _tag: "AlreadyAtVersion",
          host: host.host,
          node: nodeName,
          from,
          to: version,
          evicted: [],
          leftCordoned: wasCordoned,
          timings: { totalMs: 0, drainMs: 0, installMs: 0, readyMs: 0 }
        } satisfies UpgradeResult
      }
      const violation = from === version ? undefined : checkUpgradeStep(from ?? version, version)
      if (violation !== undefined) {
        return yield* fail(
          host.host,
          new VersionRule({
            rule: violation._tag,
            from: from ?? "?",
            to: version,
            detail: describeViolation(
              violation._tag === "SkipsMinor" && violation.missing.length === 0
                ? { ...violation, missing: ["an intermediate minor"] }
                : violation
            )
          })
        )
      }
      if (request.checkRelease !== false) {
        // a release that does not exist (or that this host cannot download) is refused before the cordon
        const release = yield* releaseStatus(host, version)
        if (release._tag !== "Published") return yield* fail(host.host, releaseUnavailable(release))
      }
      if (role === "server" && request.quorumGuard !== false) yield* guard(server, nodeName, "upgrade")
      // the unit's own arguments: install.sh writes the unit again from what it is given
      const unit = yield* run(host, readUnitCommand(role), timeouts.command)
      const own = unit.exitCode === 0 ? parseExecStart(unit.stdout) : undefined
      const args = own === undefined || flags === undefined ? own : withFlags(own, flags)
      if (args === undefined) {
        return yield* fail(
          host.host,
          new InstallFailed({
            step: `reading ExecStart of /etc/systemd/system/${unitName(role)}.service`,
            exitCode: unit.exitCode,
            tail: tailOf(unit.stderr)
          })
        )
      }
      let evicted: ReadonlyArray<string> = []
      const drained = request.drain !== false
      /** This call cordons the Node, so it uncordons it again; a Node cordoned before stays cordoned. */
      const ours = drained && !wasCordoned
      if (drained) {
        if (ours) {
          yield* emit({ _tag: "Step", host: host.host, step: "cordon", detail: nodeName })
          yield* cordon(server, nodeName)
        }
        const result = yield* drain(server, nodeName, {
          ...(request.drain === undefined ? {} : request.drain),
          onEvent: request.onEvent
        }).pipe(
          // nothing was installed: give the node back (when the cordon was this call's) before reporting
          Effect.tapError(() => (ours ? setCordon(server, nodeName, false).pipe(Effect.ignore) : Effect.void))
        )
        evicted = result.evicted
      }
      const t1 = yield* Clock.currentTimeMillis
      yield* emit({
        _tag: "Step",
        host: host.host,
        step: "upgrade",
        detail: from === version ? `${version}, other flags` : `${from ?? "?"} → ${version}`
      })
      yield* lockedInstall({
        host,
        role,
        args,
        version,
        config: undefined,
        keepEnv: true,
        airgap: undefined,
        timeouts: request.timeouts,
        secrets: [],
        emit
      })
      const t2 = yield* Clock.currentTimeMillis
      const limitMs = Duration.toMillis(timeouts.ready)
      const deadline = t2 + limitMs
      const outcome = yield* waiting(
        emit,
        host.host,
        `node ${nodeName} to be Ready on ${version}`,
        timeouts.ready,
        timeouts.progressInterval,
        Effect.gen(function* () {
          const v = yield* waitNode(
            server,
            nodeName,
            `jsonpath={.status.nodeInfo.kubeletVersion}=${version}`,
            deadline,
            timeouts.pollInterval,
            timeouts.command
          )
          if (v !== "met") return v
          if (reconfigure) {
            // on the same version only the Node's k3s.io/node-args tell that k3s restarted with the new flags
            const f = yield* waitNodeFlags(server, nodeName, reflag, deadline, timeouts.pollInterval, timeouts.command)
            if (f !== "met") return f
          }
          return yield* waitNode(server, nodeName, "condition=Ready", deadline, timeouts.pollInterval, timeouts.command)
        })
      )
      if (outcome !== "met") {
        const lastLines = yield* tolerant(readJournal(host, role, timeouts.command), [])
        return yield* fail(
          host.host,
          new Timeout({
            what: `node ${nodeName} to be Ready on ${version} after the upgrade (it stays cordoned)`,
            timeoutMs: limitMs,
            lastLines: lastLines.slice(-10)
          })
        )
      }
      const t3 = yield* Clock.currentTimeMillis
      if (ours) {
        yield* emit({ _tag: "Step", host: host.host, step: "uncordon", detail: nodeName })
        yield* uncordon(server, nodeName)
      }
      yield* emit({
        _tag: "Step",
        host: host.host,
        step: "done",
        detail: `upgraded to ${version}${wasCordoned ? "; left cordoned (it was cordoned before)" : ""}`
      })
      return {
        _tag: "Upgraded",
        host: host.host,
        node: nodeName,
        from,
        to: version,
        evicted,
        leftCordoned: wasCordoned,
        timings: { totalMs: t3 - t0, drainMs: t1 - t0, installMs: t2 - t1, readyMs: t3 - t2 }
      } satisfies UpgradeResult
    })

    const fetchKubeconfig = Effect.fn("K3sJoin.fetchKubeconfig")(function* (request: FetchKubeconfigOptions) {
      const { server } = request
      const emit = emitter(request.onEvent)
      const name = request.name ?? "homelab"
      yield* emit({ _tag: "Step", host: server.host, step: "kubeconfig", detail: name })
      const result = yield* run(server, readKubeconfigCommand(), timeoutsOf(undefined, "server").command)
      // the admin key is in there: wrap it before anything else sees it
      const text = Redacted.make(result.stdout)
      if (result.exitCode !== 0) {
        return yield* fail(
          server.host,
          new ClusterUnavailable({
            server: server.host,
            detail: `reading /etc/rancher/k3s/k3s.yaml: ${result.stderr.trim() || `exit code ${result.exitCode}`}`
          })
        )
      }
      const endpoint = request.endpoint
      const url =
        endpoint === undefined
          ? serverUrl(server.apiAddress ?? server.host, server.apiPort)
          : /^https:\/\//.test(endpoint)
            ? endpoint
            : serverUrl(endpoint, server.apiPort)
      const rewritten = rewriteKubeconfig(text, { server: url, name })
      if (Result.isFailure(rewritten))
        return yield* fail(server.host, new KubeconfigInvalid({ detail: rewritten.failure }))
      return { name, server: url, kubeconfig: rewritten.success } satisfies FetchedKubeconfig
    })

    const installedRole = Effect.fn("K3sJoin.installedRole")(function* (host: SshTarget) {
      const timeout = timeoutsOf(undefined, "server").command
      if ((yield* run(host, unitFileExistsCommand("server"), timeout)).exitCode === 0) return "server" as const
      if ((yield* run(host, unitFileExistsCommand("agent"), timeout)).exitCode === 0) return "agent" as const
      return undefined
    })

    const releaseStatus = Effect.fn("K3sJoin.releaseStatus")(function* (host: SshTarget, version: string) {
      const result = yield* run(host, releaseCheckCommand(version), timeoutsOf(undefined, "server").download)
      return parseReleaseCheck(version, result)
    })

    const releaseChannels = Effect.fn("K3sJoin.releaseChannels")(function* (host: SshTarget) {
      const result = yield* run(host, channelsCommand(), timeoutsOf(undefined, "server").download)
      if (result.exitCode !== 0) {
        return yield* fail(
          host.host,
          new ClusterUnavailable({
            server: host.host,
            detail: `reading the release channels (${CHANNELS_URL}): curl exit code ${result.exitCode}${result.stderr.trim() === "" ? "" : `, ${result.stderr.trim()}`}`
          })
        )
      }
      const decoded = decodeChannels(result.stdout)
      if (Result.isFailure(decoded)) {
        return yield* fail(
          host.host,
          new ClusterUnavailable({ server: host.host, detail: `unexpected release channels: ${decoded.failure}` })
        )
      }
      return decoded.success
    })

    const unitStatus = Effect.fn("K3sJoin.unitStatus")(function* (host: SshTarget, role: Role) {
      // the state and the journal in one round trip (the journal counts only when the unit does not run, or when it
      // runs on waiting for a restart: a server whose etcd member the cluster removed, k3s since January 2026)
      const { state, journal } = yield* unitAndJournal(host, role, timeoutsOf(undefined, role).command)
      const since = linesSinceUnitStart(journal)
      const failure = classifyJournal(since)
      const joining =
        role === "server" && (state === "active" || state === "activating") && failure?.permanent !== true
          ? joiningMemberOf(since)
          : undefined
      const journalComplete = journal.some(isUnitStart) && namesJoiningMember(since)
      const member =
        role === "server" && state !== "active" && state !== "activating"
          ? yield* run(host, etcdNameCommand(), timeoutsOf(undefined, role).command).pipe(
              Effect.map((r) => (r.exitCode === 0 && r.stdout.trim() !== "" ? r.stdout.trim() : undefined)),
              Effect.orElseSucceed(() => undefined)
            )
          : undefined
      const withJoining = {
        ...(joining === undefined ? { journalComplete } : { joining, journalComplete }),
        ...(member === undefined ? {} : { member })
      }
      if (state === "active")
        return (
          role === "server" && failure?.failure === "EtcdMemberRemovedRestart"
            ? { state, failure, journalComplete }
            : { state, ...withJoining }
        ) satisfies UnitStatus
      return (
        failure === undefined ? { state, ...withJoining } : { state, failure, ...withJoining }
      ) satisfies UnitStatus
    })

    const startUnit = Effect.fn("K3sJoin.startUnit")(function* (host: SshTarget, role: Role) {
      const result = yield* run(host, startCommand(role), timeoutsOf(undefined, role).command)
      if (result.exitCode !== 0) {
        return yield* startFailed(host, result)
      }
    })

    return K3sJoin.of({
      unitStatus,
      startUnit,
      installedRole,
      existingCluster,
      releaseChannels,
      releaseStatus,
      fetchToken,
      clusterNodes,
      clusterVersion,
      membership,
      install,
      cleanupStaleNode,
      waitReady,
      ensureMember,
      joinAll,
      initCluster,
      etcdMembers,
      clusterFacts,
      removeServer,
      cordon,
      uncordon,
      changeNode,
      drain,
      upgrade,
      fetchKubeconfig
    })
  })

/**
 * Joins hosts to a k3s cluster over SSH (`SshClient`): token, install (online or airgap), stale-node cleanup for
 * rebuilt hosts, readiness with classified failures. Servers join one at a time.
 *
 * @example
 * ```ts
 * const result = yield* K3sJoin.use((k3s) =>
 *   k3s.ensureMember({ server: { host: "10.0.10.11", user: "ubuntu" }, host: { host: "10.0.10.21", user: "ubuntu" }, role: "agent" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class K3sJoin extends Context.Service<K3sJoin, K3sJoinShape>()("@homelab/k3s-join/K3sJoin") {
  /** Default options; needs `SshClient`. */
  static readonly layer: Layer.Layer<K3sJoin, never, SshClient> = Layer.effect(K3sJoin, make({}))

  /** With service-wide options (timeouts, agent concurrency, progress callback, script mirror). */
  static readonly layerWith = (options: K3sJoinOptions): Layer.Layer<K3sJoin, never, SshClient> =>
    Layer.effect(K3sJoin, make(options))
}
