/**
 * A Promise API over `K3sJoin` for scripts that do not use Effect. Rejections are the `K3sJoinError` instances
 * themselves, so `err.reason._tag` tells what went wrong.
 *
 * @since 0.1.0
 */
import { type SshAuth, SshClient, type SshOptions, type SshTarget } from "@homelab/ssh"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as Result from "effect/Result"
import type { ClusterNode, Membership } from "./ClusterNode.js"
import type { ReleaseStatus, Role } from "./InstallCommand.js"
import { type JoinToken, parseJoinToken } from "./JoinToken.js"
import {
  type DrainOptions,
  type DrainResult,
  type FetchedKubeconfig,
  type FetchKubeconfigOptions,
  type InitClusterOptions,
  type InitClusterResult,
  type InstallOptions,
  type InstallResult,
  K3sJoin,
  type RemoveServerOptions,
  type RemoveServerResult,
  type UnitStatus,
  type UpgradeOptions,
  type UpgradeResult,
  type WaitReadyOptions
} from "./K3sJoin.js"
import { type ExistingCluster, K3sJoinError } from "./K3sJoinError.js"
import type { EnsureMemberOptions, K3sHost, K3sJoinOptions, K3sServer, MemberResult } from "./K3sJoinOptions.js"
import type { NodeChanges } from "./NodeFlags.js"
import type { ClusterFacts, EtcdMember } from "./Quorum.js"
import type { ReleaseChannel } from "./Versions.js"

/**
 * A host given to the Promise API: `user` defaults to `ssh.user`.
 *
 * @since 0.1.0
 * @category models
 */
export type HostInput<T extends SshTarget> = Omit<T, "user"> & { readonly user?: string | undefined }

/**
 * SSH settings of the Promise API (plain strings; secrets are wrapped in `Redacted` internally).
 *
 * @since 0.1.0
 * @category models
 */
export interface PromiseSshOptions {
  /** Default user for hosts that do not name one. */
  readonly user?: string | undefined
  readonly privateKeyPath?: string | undefined
  readonly privateKey?: string | undefined
  readonly passphrase?: string | undefined
  readonly password?: string | undefined
  readonly agentSocket?: string | undefined
  /**
   * A `known_hosts` path (checked in `accept-new` mode: new hosts are trusted on first use, changed keys fail), or
   * the full setting. Default: `~/.ssh/known_hosts`, `accept-new`.
   */
  readonly knownHosts?: string | SshOptions["knownHosts"] | undefined
  readonly connectTimeout?: SshOptions["connectTimeout"]
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CreateK3sJoinOptions extends K3sJoinOptions {
  readonly ssh: PromiseSshOptions
}

/**
 * `ensureMember` options of the Promise API: hosts may omit `user`, the token is a plain string.
 *
 * @since 0.1.0
 * @category models
 */
export interface PromiseEnsureMemberOptions extends Omit<EnsureMemberOptions, "server" | "host" | "token"> {
  readonly server: HostInput<K3sServer>
  readonly host: HostInput<K3sHost>
  readonly token?: string | undefined
}

/**
 * `install` options of the Promise API: the token is a plain string (validated like a fetched one).
 *
 * @since 0.2.0
 * @category models
 */
export interface PromiseInstallOptions extends Omit<InstallOptions, "server" | "host" | "token"> {
  readonly server: HostInput<K3sServer>
  readonly host: HostInput<K3sHost>
  readonly token: string
}

/**
 * `initCluster` options of the Promise API: the token password is a plain string.
 *
 * @since 0.2.0
 * @category models
 */
export interface PromiseInitClusterOptions extends Omit<InitClusterOptions, "host" | "token"> {
  readonly host: HostInput<K3sHost>
  readonly token?: string | undefined
}

/**
 * One host's outcome in `joinAll`.
 *
 * @since 0.1.0
 * @category models
 */
export type PromiseJoinOutcome =
  | { readonly host: string; readonly role: Role; readonly ok: true; readonly result: MemberResult }
  | { readonly host: string; readonly role: Role; readonly ok: false; readonly error: K3sJoinError }

/**
 * @since 0.1.0
 * @category models
 */
export interface K3sJoinClient {
  readonly fetchToken: (server: HostInput<SshTarget>, role: Role) => Promise<JoinToken>
  readonly clusterNodes: (server: HostInput<SshTarget>) => Promise<ReadonlyArray<ClusterNode>>
  readonly clusterVersion: (server: HostInput<SshTarget>) => Promise<string>
  readonly membership: (options: {
    readonly server: HostInput<K3sServer>
    readonly host: HostInput<K3sHost>
    readonly role: Role
  }) => Promise<Membership>
  readonly cleanupStaleNode: (server: HostInput<SshTarget>, name: string) => Promise<void>
  readonly waitReady: (
    options: Omit<WaitReadyOptions, "server" | "host"> & {
      readonly server: HostInput<K3sServer>
      readonly host: HostInput<K3sHost>
    }
  ) => Promise<ClusterNode>
  readonly ensureMember: (options: PromiseEnsureMemberOptions) => Promise<MemberResult>
  readonly joinAll: (
    hosts: ReadonlyArray<PromiseEnsureMemberOptions>,
    options?: { readonly agentConcurrency?: number | undefined }
  ) => Promise<ReadonlyArray<PromiseJoinOutcome>>
  /** The install step of `ensureMember` alone (under the host's install lock); then `waitReady`. */
  readonly install: (options: PromiseInstallOptions) => Promise<InstallResult>
  readonly initCluster: (options: PromiseInitClusterOptions) => Promise<InitClusterResult>
  /** What `initCluster` would refuse `host` for (read-only), or `undefined`. @since 0.7.0 */
  readonly existingCluster: (host: HostInput<K3sHost>) => Promise<ExistingCluster | undefined>
  readonly etcdMembers: (server: HostInput<SshTarget>) => Promise<ReadonlyArray<EtcdMember>>
  readonly clusterFacts: (server: HostInput<SshTarget>) => Promise<ClusterFacts>
  readonly removeServer: (
    options: Omit<RemoveServerOptions, "server"> & { readonly server: HostInput<K3sServer> }
  ) => Promise<RemoveServerResult>
  readonly cordon: (server: HostInput<SshTarget>, node: string) => Promise<boolean>
  readonly uncordon: (server: HostInput<SshTarget>, node: string) => Promise<boolean>
  readonly changeNode: (server: HostInput<SshTarget>, node: string, changes: NodeChanges) => Promise<void>
  readonly drain: (server: HostInput<SshTarget>, node: string, options?: DrainOptions) => Promise<DrainResult>
  readonly upgrade: (
    options: Omit<UpgradeOptions, "server" | "host"> & {
      readonly server: HostInput<K3sServer>
      readonly host: HostInput<K3sHost>
    }
  ) => Promise<UpgradeResult>
  /** The kubeconfig stays `Redacted` (`Redacted.value(result.kubeconfig)` to write it; never log it). */
  readonly fetchKubeconfig: (
    options: Omit<FetchKubeconfigOptions, "server"> & { readonly server: HostInput<K3sServer> }
  ) => Promise<FetchedKubeconfig>
  readonly installedRole: (host: HostInput<SshTarget>) => Promise<Role | undefined>
  readonly releaseChannels: (host: HostInput<SshTarget>) => Promise<ReadonlyArray<ReleaseChannel>>
  readonly releaseStatus: (host: HostInput<SshTarget>, version: string) => Promise<ReleaseStatus>
  readonly unitStatus: (host: HostInput<SshTarget>, role: Role) => Promise<UnitStatus>
  readonly startUnit: (host: HostInput<SshTarget>, role: Role) => Promise<void>
  /** Closes every SSH connection. */
  readonly close: () => Promise<void>
}

const sshOptionsOf = (ssh: PromiseSshOptions): SshOptions => {
  const auth: SshAuth = {
    ...(ssh.privateKeyPath === undefined ? {} : { privateKeyPath: ssh.privateKeyPath }),
    ...(ssh.privateKey === undefined ? {} : { privateKey: Redacted.make(ssh.privateKey) }),
    ...(ssh.passphrase === undefined ? {} : { passphrase: Redacted.make(ssh.passphrase) }),
    ...(ssh.password === undefined ? {} : { password: Redacted.make(ssh.password) }),
    ...(ssh.agentSocket === undefined ? {} : { agentSocket: ssh.agentSocket })
  }
  const knownHosts =
    ssh.knownHosts === undefined
      ? { mode: "accept-new" as const }
      : typeof ssh.knownHosts === "string"
        ? { mode: "accept-new" as const, path: ssh.knownHosts }
        : ssh.knownHosts
  return { auth, knownHosts, ...(ssh.connectTimeout === undefined ? {} : { connectTimeout: ssh.connectTimeout }) }
}

/**
 * Creates a k3s joiner for scripts. Call `close()` when done.
 *
 * @example
 * ```ts
 * const k3s = createK3sJoin({ ssh: { user: "ubuntu", privateKeyPath: "/home/me/.ssh/id_ed25519", knownHosts: "/home/me/.ssh/known_hosts" } })
 * try {
 *   await k3s.ensureMember({ server: { host: "10.0.10.11" }, host: { host: "10.0.10.21" }, role: "agent" })
 * } catch (err) {
 *   if (err.reason?._tag === "NodePasswordRejected") { ... }
 * } finally {
 *   await k3s.close()
 * }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const createK3sJoin = (options: CreateK3sJoinOptions): K3sJoinClient => {
  const { ssh, ...joinOptions } = options
  // A library never prints: its notices reach the caller through `onEvent`, not through Effect's default logger.
  const runtime = ManagedRuntime.make(
    K3sJoin.layerWith(joinOptions).pipe(
      Layer.provide(SshClient.layerWith(sshOptionsOf(ssh))),
      Layer.merge(Layer.succeed(References.MinimumLogLevel, "None"))
    )
  )
  const target = <T extends SshTarget>(host: HostInput<T>): T => {
    const user = host.user ?? ssh.user
    if (user === undefined) throw new TypeError(`k3s-join: no SSH user for ${host.host} (set ssh.user or host.user)`)
    return { ...host, user } as unknown as T
  }
  const run = <A>(f: (k3s: K3sJoin["Service"]) => Effect.Effect<A, K3sJoinError>): Promise<A> =>
    runtime.runPromise(K3sJoin.use(f))
  const ensureOptions = (o: PromiseEnsureMemberOptions): EnsureMemberOptions => ({
    ...o,
    server: target(o.server),
    host: target(o.host),
    token: o.token === undefined ? undefined : Redacted.make(o.token)
  })
  return {
    fetchToken: (server, role) => run((k) => k.fetchToken(target(server), role)),
    clusterNodes: (server) => run((k) => k.clusterNodes(target(server))),
    clusterVersion: (server) => run((k) => k.clusterVersion(target(server))),
    membership: (o) => run((k) => k.membership({ ...o, server: target(o.server), host: target(o.host) })),
    cleanupStaleNode: (server, name) => run((k) => k.cleanupStaleNode(target(server), name)),
    waitReady: (o) => run((k) => k.waitReady({ ...o, server: target(o.server), host: target(o.host) })),
    ensureMember: (o) => run((k) => k.ensureMember(ensureOptions(o))),
    joinAll: async (hosts, joinAllOptions) => {
      const outcomes = await run((k) => k.joinAll(hosts.map(ensureOptions), joinAllOptions))
      return outcomes.map(
        (o): PromiseJoinOutcome =>
          Result.isSuccess(o.result)
            ? { host: o.host, role: o.role, ok: true, result: o.result.success }
            : { host: o.host, role: o.role, ok: false, error: o.result.failure }
      )
    },
    install: (o) =>
      run((k) =>
        Effect.gen(function* () {
          const parsed = parseJoinToken(o.token)
          if (Result.isFailure(parsed)) return yield* new K3sJoinError({ host: o.host.host, reason: parsed.failure })
          return yield* k.install({ ...o, server: target(o.server), host: target(o.host), token: parsed.success })
        })
      ),
    initCluster: (o) =>
      run((k) =>
        k.initCluster({
          ...o,
          host: target(o.host),
          token: o.token === undefined ? undefined : Redacted.make(o.token)
        })
      ),
    existingCluster: (host) => run((k) => k.existingCluster(target(host))),
    etcdMembers: (server) => run((k) => k.etcdMembers(target(server))),
    clusterFacts: (server) => run((k) => k.clusterFacts(target(server))),
    removeServer: (o) => run((k) => k.removeServer({ ...o, server: target(o.server) })),
    cordon: (server, node) => run((k) => k.cordon(target(server), node)),
    uncordon: (server, node) => run((k) => k.uncordon(target(server), node)),
    changeNode: (server, node, changes) => run((k) => k.changeNode(target(server), node, changes)),
    drain: (server, node, o) => run((k) => k.drain(target(server), node, o)),
    upgrade: (o) => run((k) => k.upgrade({ ...o, server: target(o.server), host: target(o.host) })),
    fetchKubeconfig: (o) => run((k) => k.fetchKubeconfig({ ...o, server: target(o.server) })),
    installedRole: (host) => run((k) => k.installedRole(target(host))),
    releaseChannels: (host) => run((k) => k.releaseChannels(target(host))),
    releaseStatus: (host, version) => run((k) => k.releaseStatus(target(host), version)),
    unitStatus: (host, role) => run((k) => k.unitStatus(target(host), role)),
    startUnit: (host, role) => run((k) => k.startUnit(target(host), role)),
    close: () => runtime.dispose()
  }
}
