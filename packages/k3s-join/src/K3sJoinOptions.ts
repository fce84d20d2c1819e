import type { SshTarget } from "@homelab/ssh"
import type * as Duration from "effect/Duration"
import type * as Redacted from "effect/Redacted"
import type { ReadyStatus } from "./ClusterNode.js"
import type { InstallRecord, Role } from "./InstallCommand.js"
import type { JournalFailure } from "./JournalClassifier.js"

/**
 * An existing server to read the cluster from and to join through.
 *
 * @since 0.1.0
 * @category models
 */
export interface K3sServer extends SshTarget {
  /** Address the joining host uses for `--server https://<apiAddress>:6443`. Default: `host`. */
  readonly apiAddress?: string | undefined
  /** Default 6443. */
  readonly apiPort?: number | undefined
}

/**
 * The host to join.
 *
 * @since 0.1.0
 * @category models
 */
export interface K3sHost extends SshTarget {
  /** Node name; default: the host's lowercased `hostname` (what k3s uses), or `--node-name` from the flags. */
  readonly nodeName?: string | undefined
  /** Expected InternalIP of the Node; default: `host` when it is an IP literal. */
  readonly ip?: string | undefined
  /** Expected `systemUUID` of the Node (the VM's SMBIOS UUID), checked when given. */
  readonly systemUUID?: string | undefined
}

/**
 * Deadlines and poll interval. Every remote command has a deadline, so no operation can hang.
 *
 * @since 0.1.0
 * @category models
 */
export interface JoinTimeouts {
  /** Each short SSH command (token, kubectl, systemctl, journalctl). Default 60 s. */
  readonly command?: Duration.Input | undefined
  /** Download of the install script (`curl`). Default 2 minutes. */
  readonly download?: Duration.Input | undefined
  /** The install script run (binary download included; the unit is not started by it). Default 10 minutes. */
  readonly install?: Duration.Input | undefined
  /** From starting the unit until the Node is Ready. Default 5 minutes for agents, 10 minutes for servers. */
  readonly ready?: Duration.Input | undefined
  /**
   * The longest interval between two polls where k3s offers no event to wait for (a Node that does not exist yet,
   * one being deleted, the journal while `kubectl wait` runs): such polls start at 100 ms and grow ×1.5 up to it.
   * Default 2 seconds.
   */
  readonly pollInterval?: Duration.Input | undefined
  /** How often a wait reports its progress (`Wait` events). Default 5 seconds. */
  readonly progressInterval?: Duration.Input | undefined
  /** How long an install waits for another run holding the host's install lock. Default: the install timeout. */
  readonly lockWait?: Duration.Input | undefined
  /** `kubectl drain` (evictions blocked by PodDisruptionBudgets are retried until then). Default 5 minutes. */
  readonly drain?: Duration.Input | undefined
  /** Deleting a server's Node until its etcd member is gone. Default 2 minutes. */
  readonly memberRemoval?: Duration.Input | undefined
}

/**
 * Install without internet access: the install script and the k3s binary are uploaded from a local directory over
 * SFTP (`INSTALL_K3S_SKIP_DOWNLOAD=true`).
 *
 * @since 0.1.0
 * @category models
 */
export interface AirgapOptions {
  /** Local directory holding the files. */
  readonly dir: string
  /** File name of the install script in `dir`. Default `install.sh`. */
  readonly script?: string | undefined
  /** File name of the k3s binary in `dir` (`k3s`, `k3s-arm64`, …). Default `k3s`. */
  readonly binary?: string | undefined
}

/**
 * Progress reported while joining (for a CLI to show). Lines are token-scrubbed.
 *
 * @since 0.1.0
 * @category models
 */
export type K3sJoinEvent =
  | {
      readonly _tag: "Step"
      readonly host: string
      readonly step:
        | "inspect"
        | "forget-host-key"
        | "cleanup"
        | "token"
        | "write-token"
        | "download"
        | "upload"
        | "install"
        | "start"
        | "wait-ready"
        | "done"
        | "lock"
        | "cluster-init"
        | "cordon"
        | "drain"
        | "uncordon"
        | "upgrade"
        | "remove-node"
        | "kubeconfig"
      readonly detail?: string | undefined
    }
  | {
      readonly _tag: "InstallOutput"
      readonly host: string
      readonly stream: "stdout" | "stderr"
      readonly line: string
    }
  | { readonly _tag: "UnitState"; readonly host: string; readonly unit: string; readonly state: string }
  | { readonly _tag: "JournalLine"; readonly host: string; readonly line: string }
  | { readonly _tag: "NodeState"; readonly host: string; readonly node: string; readonly ready: ReadyStatus | "Absent" }
  | { readonly _tag: "Waiting"; readonly host: string; readonly failure: JournalFailure; readonly line: string }
  | {
      /** Progress of a wait: what it waits for, how long so far and the limit; `done` once it ended (either way). */
      readonly _tag: "Wait"
      readonly host: string
      readonly what: string
      readonly elapsedMs: number
      readonly limitMs: number
      readonly done: boolean
    }
  | {
      /**
       * The host's install lock was held by another run: how long this run waited, and the record of the install that
       * run made meanwhile (`undefined` when it made none, e.g. it failed, or when the lock holder was no install).
       */
      readonly _tag: "LockWaited"
      readonly host: string
      readonly waitedMs: number
      readonly previous: InstallRecord | undefined
    }

/**
 * Service-wide options of `K3sJoin`.
 *
 * @since 0.1.0
 * @category models
 */
export interface K3sJoinOptions {
  readonly timeouts?: JoinTimeouts | undefined
  /** How many agents `joinAll` joins at once. Default 4. Servers always join one at a time. */
  readonly agentConcurrency?: number | undefined
  /** Install script URL (a mirror). Default `https://get.k3s.io`. */
  readonly installScriptUrl?: string | undefined
  /** Remote directory for the downloaded/uploaded install script and binary. Default `/tmp`. */
  readonly remoteTmpDir?: string | undefined
  /** Receives progress events. Must not throw (exceptions are ignored). */
  readonly onEvent?: ((event: K3sJoinEvent) => void) | undefined
  /**
   * Names this run in the install record it leaves on each host (`/run/homelab-k3s-join.last`), so that another run
   * that waited for the host's install lock can say who installed. Default: `<hostname>:<pid>:<random>`. The run
   * starts when the service is built: another run's install begun since then is reported as that run's work
   * (`installedBy`), an older one as history (`unchanged`).
   */
  readonly runId?: string | undefined
}

/**
 * What `ensureMember` should make true.
 *
 * @since 0.1.0
 * @category models
 */
export interface EnsureMemberOptions {
  readonly server: K3sServer
  readonly host: K3sHost
  readonly role: Role
  /**
   * The host was rebuilt by the caller (new VM, same name): forget its old SSH host key, and delete the stale Node
   * and its `<name>.node-password.k3s` secret before joining.
   */
  readonly rebuilt?: boolean | undefined
  /**
   * The host is a new machine at its address (e.g. a VM the caller has just created: its guest generated new SSH host
   * keys at first boot): forget the key `known_hosts` holds for that address, if any, and any pooled connection, so
   * that `accept-new` trusts the key it presents now. Nothing in k3s is cleaned up (see `rebuilt` for that).
   */
  readonly newHostKey?: boolean | undefined
  /** Delete a stale Node/secret with this name before joining, without forgetting the host key. */
  readonly cleanupStale?: boolean | undefined
  /** k3s version to install. Default: the cluster version (oldest kubelet version of the control-plane nodes). */
  readonly version?: string | undefined
  /**
   * Extra k3s flags: a string split on whitespace, or one word per element. Only flags `k3s <role>` defines: an agent
   * given a server's flag (`--disable`, `--cluster-cidr`, `--tls-san`, …) would stop at every start, so it is refused
   * (`InvalidOptions`) before the host is touched.
   */
  readonly flags?: string | ReadonlyArray<string> | undefined
  readonly airgap?: AirgapOptions | undefined
  /**
   * A server whose k3s runs already and holds an etcd member (a NotReady Node re-joined, other flags or another
   * version installed): when the install changed something, its k3s restarts, and its etcd member is down until it is
   * back. Check etcd's quorum first (default true), as `upgrade` does, with the members read through `server` right
   * before the restart: refused (`QuorumAtRisk`) when fewer than ⌊n/2⌋+1 healthy members would be left; its k3s then
   * runs on as it was, its restart pending for the next join or upgrade. A new server (its k3s not running yet) joins
   * as before. See `InstallOptions.quorumGuard`.
   *
   * @since 0.4.1
   */
  readonly quorumGuard?: boolean | undefined
  /** Use this token instead of reading it from the server. */
  readonly token?: Redacted.Redacted<string> | undefined
  /**
   * The password the cluster's server token must have (`K10<hash>::server:<password>`), when the token is read from
   * the server (no `token`): a short token, as `k3s server --token` takes it, that the caller was given for this
   * cluster. A server token read with another password is refused (`TokenDiffers`) before anything is changed on the
   * host or in the cluster, as k3s would refuse a full token that differs. An agent token of its own
   * (`--agent-token`, user `node`) is not compared.
   *
   * @since 0.6.3
   */
  readonly tokenPassword?: Redacted.Redacted<string> | undefined
  readonly timeouts?: JoinTimeouts | undefined
  /** Receives progress events of this call (in addition to the service-wide callback). */
  readonly onEvent?: ((event: K3sJoinEvent) => void) | undefined
}

/**
 * Durations of the steps of a join, in milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface JoinTimings {
  readonly totalMs: number
  readonly inspectMs: number
  readonly cleanupMs: number
  readonly tokenMs: number
  readonly installMs: number
  readonly readyMs: number
}

/**
 * The outcome of `ensureMember`: `Joined` (something was installed) or `AlreadyMember` (nothing was changed).
 *
 * @since 0.1.0
 * @category models
 */
export interface MemberResult {
  readonly _tag: "Joined" | "AlreadyMember"
  readonly host: string
  readonly node: string
  readonly role: Role
  /** The Node's kubelet version. */
  readonly version: string | undefined
  /** A stale Node/secret was deleted first. */
  readonly cleanedUp: boolean
  readonly timings: JoinTimings
  /**
   * Another run installed k3s on this host with the same inputs during this run (while this run waited `lockWaitMs`
   * for the host's install lock, or after this run started), and this run changed nothing and only waited until the
   * Node was Ready. An earlier run's install is never reported here (see `unchanged`).
   */
  readonly installedBy?: (InstallRecord & { readonly lockWaitMs: number }) | undefined
  /**
   * k3s was already installed on this host with exactly these inputs (binary, unit, env file, config), and not by
   * another run during this one (an earlier run's install, or one made by hand): nothing was reinstalled, and the unit,
   * found `unitStateBefore` (`inactive`, `failed`, … as `systemctl is-active` says), was started (left alone when
   * `active`) and its Node waited for until Ready.
   */
  readonly unchanged?: { readonly unit: "k3s" | "k3s-agent"; readonly unitStateBefore: string } | undefined
}
