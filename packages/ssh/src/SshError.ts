import * as Schema from "effect/Schema"

/**
 * The host could not be reached: the name did not resolve (`Dns`), nothing listens on the port (`Refused`), the
 * TCP connection or SSH handshake did not finish within `connectTimeout` (`Timeout`), or another network error
 * (`Network`, e.g. host unreachable, connection reset during the handshake).
 *
 * @since 0.1.0
 * @category errors
 */
export class Unreachable extends Schema.TaggedError<Unreachable>()("Unreachable", {
  kind: Schema.Literals(["Dns", "Refused", "Timeout", "Network"]),
  detail: Schema.String
}) {
  override get message(): string {
    return `unreachable (${this.kind}): ${this.detail}`
  }
}

/**
 * The server rejected every authentication method that was tried (or a configured private key could not be read or
 * decrypted; then `detail` says so). Passwords and passphrases are never part of this error.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthRejected extends Schema.TaggedError<AuthRejected>()("AuthRejected", {
  user: Schema.String,
  methodsTried: Schema.Array(Schema.String),
  detail: Schema.String
}) {
  override get message(): string {
    const tried = this.methodsTried.length === 0 ? "none" : this.methodsTried.join(", ")
    return `authentication rejected for user ${this.user} (methods tried: ${tried}): ${this.detail}`
  }
}

/**
 * The host presented a key that differs from the one recorded in `known_hosts` (possible man-in-the-middle, or the
 * host was rebuilt). Fingerprints are written as OpenSSH writes them (`SHA256:…`).
 *
 * @since 0.1.0
 * @category errors
 */
export class HostKeyMismatch extends Schema.TaggedError<HostKeyMismatch>()("HostKeyMismatch", {
  host: Schema.String,
  keyType: Schema.String,
  expected: Schema.String,
  actual: Schema.String,
  knownHostsPath: Schema.String,
  hint: Schema.String
}) {
  override get message(): string {
    return `host key for ${this.host} has changed: expected ${this.expected}, got ${this.actual} (${this.keyType}). ${this.hint}`
  }
}

/**
 * The host presented a key that `known_hosts` marks `@revoked` for it. Refused in every host key mode, as OpenSSH
 * refuses it (`WARNING: REVOKED HOST KEY DETECTED`), and never recorded.
 *
 * @since 0.1.0
 * @category errors
 */
export class HostKeyRevoked extends Schema.TaggedError<HostKeyRevoked>()("HostKeyRevoked", {
  host: Schema.String,
  keyType: Schema.String,
  fingerprint: Schema.String,
  knownHostsPath: Schema.String,
  line: Schema.Number,
  hint: Schema.String
}) {
  override get message(): string {
    return `host key for ${this.host} is revoked (${this.keyType} ${this.fingerprint}, ${this.knownHostsPath}:${this.line}): it may be a stolen key used to impersonate the host. ${this.hint}`
  }
}

/**
 * The host is not in `known_hosts` and the mode is `strict`.
 *
 * @since 0.1.0
 * @category errors
 */
export class HostKeyUnknown extends Schema.TaggedError<HostKeyUnknown>()("HostKeyUnknown", {
  host: Schema.String,
  keyType: Schema.String,
  fingerprint: Schema.String,
  knownHostsPath: Schema.String,
  hint: Schema.String
}) {
  override get message(): string {
    return `host key for ${this.host} is not known (${this.keyType} ${this.fingerprint}). ${this.hint}`
  }
}

/**
 * An operation on an established connection did not finish in time (the `timeout` of `exec`).
 *
 * @since 0.1.0
 * @category errors
 */
export class Timeout extends Schema.TaggedError<Timeout>()("Timeout", {
  operation: Schema.String,
  timeoutMs: Schema.Number
}) {
  override get message(): string {
    return `${this.operation} timed out after ${this.timeoutMs} ms`
  }
}

/**
 * The connection closed while an operation was running on it (the next call reconnects).
 *
 * @since 0.1.0
 * @category errors
 */
export class Disconnected extends Schema.TaggedError<Disconnected>()("Disconnected", {
  detail: Schema.String
}) {
  override get message(): string {
    return `disconnected: ${this.detail}`
  }
}

/**
 * A command exited with a non-zero status (or was killed by a signal). `command` is a summary of the command (it
 * never contains stdin), `stderrTail` the last part of its standard error.
 *
 * @since 0.1.0
 * @category errors
 */
export class CommandFailed extends Schema.TaggedError<CommandFailed>()("CommandFailed", {
  command: Schema.String,
  exitCode: Schema.NullOr(Schema.Number),
  signal: Schema.NullOr(Schema.String),
  stderrTail: Schema.String
}) {
  override get message(): string {
    const status = this.signal !== null ? `was killed by signal ${this.signal}` : `exited with code ${this.exitCode}`
    const tail = this.stderrTail.trim()
    return `command \`${this.command}\` ${status}${tail === "" ? "" : `: ${tail}`}`
  }
}

/**
 * The server refused to open a session channel or to run the request (e.g. too many sessions, subsystem missing).
 *
 * @since 0.1.0
 * @category errors
 */
export class ChannelFailed extends Schema.TaggedError<ChannelFailed>()("ChannelFailed", {
  operation: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.operation}: ${this.detail}`
  }
}

/**
 * An SFTP operation failed (no such file, permission denied, …).
 *
 * @since 0.1.0
 * @category errors
 */
export class SftpFailed extends Schema.TaggedError<SftpFailed>()("SftpFailed", {
  operation: Schema.String,
  path: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `sftp ${this.operation} ${this.path}: ${this.detail}`
  }
}

/**
 * The `known_hosts` file (or a local file to upload) could not be read or written.
 *
 * @since 0.1.0
 * @category errors
 */
export class LocalFileFailed extends Schema.TaggedError<LocalFileFailed>()("LocalFileFailed", {
  operation: Schema.String,
  path: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.operation} ${this.path}: ${this.detail}`
  }
}

/**
 * All reasons an {@link SshError} can carry.
 *
 * @since 0.1.0
 * @category errors
 */
export const SshErrorReason = Schema.Union([
  Unreachable,
  AuthRejected,
  HostKeyMismatch,
  HostKeyRevoked,
  HostKeyUnknown,
  Timeout,
  Disconnected,
  CommandFailed,
  ChannelFailed,
  SftpFailed,
  LocalFileFailed
])

/**
 * @since 0.1.0
 * @category errors
 */
export type SshErrorReason = typeof SshErrorReason.Type

/**
 * The one error of `@homelab/ssh`: which host (and port) and why. Handle a specific reason with
 * `Effect.catchReason("SshError", "HostKeyMismatch", …)`.
 *
 * @since 0.1.0
 * @category errors
 */
export class SshError extends Schema.TaggedError<SshError>()("SshError", {
  host: Schema.String,
  port: Schema.Number,
  reason: SshErrorReason
}) {
  override get message(): string {
    return `ssh ${this.port === 22 ? this.host : `${this.host}:${this.port}`}: ${this.reason.message}`
  }
}
