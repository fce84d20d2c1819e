import type * as Duration from "effect/Duration"
import type * as Redacted from "effect/Redacted"

/**
 * Credentials to authenticate with. Methods are tried in this order: private key, ssh-agent, password (then
 * keyboard-interactive answering every prompt with the password). Secrets are `Redacted` and never logged.
 *
 * @since 0.1.0
 * @category models
 */
export interface SshAuth {
  /** Path of an OpenSSH private key file (ed25519, RSA, ECDSA; OpenSSH or PEM format). */
  readonly privateKeyPath?: string | undefined
  /** The private key text itself (instead of `privateKeyPath`). */
  readonly privateKey?: Redacted.Redacted<string> | undefined
  /** Passphrase of an encrypted private key. */
  readonly passphrase?: Redacted.Redacted<string> | undefined
  readonly password?: Redacted.Redacted<string> | undefined
  /** ssh-agent socket path. The library never reads `SSH_AUTH_SOCK`: the application passes it here. */
  readonly agentSocket?: string | undefined
}

/**
 * A host to run commands on.
 *
 * @since 0.1.0
 * @category models
 */
export interface SshTarget {
  readonly host: string
  /** Default 22. */
  readonly port?: number | undefined
  readonly user: string
  /** Replaces the global `SshOptions.auth` for this host (not merged). */
  readonly auth?: SshAuth | undefined
  /** Reach this host through another one (like OpenSSH `ProxyJump`); jumps can be chained. */
  readonly jump?: SshTarget | undefined
}

/**
 * How host keys are checked against `known_hosts`.
 *
 * - `strict`: unknown hosts fail with `HostKeyUnknown`, changed keys with `HostKeyMismatch`.
 * - `accept-new`: unknown hosts are trusted on first use and their key is appended (a `HostKeyAdded` event);
 *   changed keys still fail.
 * - `off`: nothing is checked (a `HostKeyCheckingDisabled` event is emitted once). Only for throw-away labs.
 *
 * In every mode, a key that `known_hosts` marks `@revoked` for the host fails with `HostKeyRevoked` and is never
 * appended.
 *
 * @since 0.1.0
 * @category models
 */
export type HostKeyMode = "strict" | "accept-new" | "off"

/**
 * Things the application may want to tell the user about. Delivered through `SshOptions.onEvent` and logged at
 * warning/info level through Effect's logger (never printed by the library).
 *
 * @since 0.1.0
 * @category models
 */
export type SshEvent =
  | { readonly _tag: "HostKeyCheckingDisabled" }
  | {
      readonly _tag: "HostKeyAdded"
      readonly host: string
      readonly port: number
      readonly keyType: string
      readonly fingerprint: string
      readonly knownHostsPath: string
    }

/**
 * Global options of {@link SshClient}.
 *
 * @since 0.1.0
 * @category models
 */
export interface SshOptions {
  readonly auth: SshAuth
  readonly knownHosts: {
    readonly mode: HostKeyMode
    /** Default `~/.ssh/known_hosts` (the OS home directory). */
    readonly path?: string | undefined
    /** Write hashed host names (`|1|…`) when appending in `accept-new` mode. Default false. */
    readonly hashNewEntries?: boolean | undefined
  }
  /** TCP connect + SSH handshake + authentication. Default 10 seconds. */
  readonly connectTimeout?: Duration.Input | undefined
  /** SSH-level keepalive; `false` disables it. Default every 15 seconds, disconnect after 3 unanswered. */
  readonly keepalive?:
    | { readonly interval?: Duration.Input | undefined; readonly countMax?: number | undefined }
    | false
  /**
   * Most channels (commands, SFTP sessions) open at once on one connection; further calls wait for a free one.
   * Default 10, OpenSSH's `MaxSessions` default.
   */
  readonly maxSessionsPerConnection?: number | undefined
  /**
   * Most connections open at once to one host (`user@host:port`): a further one is opened only while every open one
   * has all its sessions taken (long commands, such as a `kubectl wait` per node, then do not hold up short ones).
   * Default 4, well below OpenSSH's `MaxStartups` (10 unauthenticated connections at once). 1: one connection, and
   * calls beyond its sessions wait.
   */
  readonly maxConnectionsPerHost?: number | undefined
  /** Called for warnings and notices (see {@link SshEvent}). Must not throw. */
  readonly onEvent?: ((event: SshEvent) => void) | undefined
}
