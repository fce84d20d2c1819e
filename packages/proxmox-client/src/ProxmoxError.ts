import * as Schema from "effect/Schema"

/**
 * The node could not be reached at all: the name did not resolve (`dns`), nothing listens (`refused`), no answer in
 * time (`timeout`) or the connection was reset (`reset`). `transport` says which path failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unreachable extends Schema.TaggedError<Unreachable>()("Unreachable", {
  kind: Schema.Literals(["dns", "refused", "timeout", "reset"]),
  transport: Schema.Literals(["rest", "ssh"]),
  code: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `unreachable over ${this.transport} (${this.kind}, ${this.code}): ${this.detail}`
  }
}

/**
 * The client did not trust the node's TLS certificate (Node's verification `code`, or `ERR_TLS_PIN_MISMATCH` when a
 * pinned fingerprint did not match). `fingerprint` is the SHA-256 fingerprint the server presented, in PVE's
 * `AA:BB:…` notation, when it could be read.
 *
 * @since 0.1.0
 * @category errors
 */
export class TlsUntrusted extends Schema.TaggedError<TlsUntrusted>()("TlsUntrusted", {
  code: Schema.String,
  fingerprint: Schema.optional(Schema.String),
  detail: Schema.String
}) {
  override get message(): string {
    const fp = this.fingerprint === undefined ? "" : ` (server certificate ${this.fingerprint})`
    return `TLS certificate not trusted: ${this.code}${fp}`
  }
}

/**
 * The credentials were rejected (HTTP 401, or a failed ticket login). Never contains the secret.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthRejected extends Schema.TaggedError<AuthRejected>()("AuthRejected", {
  detail: Schema.String,
  /**
   * Which credentials were refused: the API token (`rest`, the default) or the SSH key of the node fallback (`ssh`).
   *
   * @since 0.2.0
   */
  transport: Schema.optional(Schema.Literals(["rest", "ssh"]))
}) {
  override get message(): string {
    return `authentication rejected: ${this.detail}`
  }
}

/**
 * HTTP 403: an ACL is missing. `path` and `privilege` are parsed from `Permission check failed (/vms/100, VM.Audit)`.
 *
 * @since 0.1.0
 * @category errors
 */
export class PermissionDenied extends Schema.TaggedError<PermissionDenied>()("PermissionDenied", {
  path: Schema.optional(Schema.String),
  privilege: Schema.optional(Schema.String),
  detail: Schema.String
}) {
  override get message(): string {
    return this.path !== undefined && this.privilege !== undefined
      ? `permission denied: ${this.privilege} on ${this.path}`
      : `permission denied: ${this.detail}`
  }
}

/**
 * The object does not exist (`Configuration file '…' does not exist`, `storage 'x' does not exist`, `no such task`).
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  detail: Schema.String
}) {
  override get message(): string {
    return `not found: ${this.detail}`
  }
}

/**
 * The object exists already (`VM 100 already exists on node 'pve'`, `refusing to override existing file`).
 *
 * @since 0.1.0
 * @category errors
 */
export class AlreadyExists extends Schema.TaggedError<AlreadyExists>()("AlreadyExists", {
  detail: Schema.String
}) {
  override get message(): string {
    return `already exists: ${this.detail}`
  }
}

/**
 * The VM is locked: a persistent config lock (`VM is locked (create)`, `lock` = `create`) or a config file lock that
 * timed out (`can't lock file … - got timeout`, `lock` = `flock`; transient, retried).
 *
 * @since 0.1.0
 * @category errors
 */
export class Locked extends Schema.TaggedError<Locked>()("Locked", {
  lock: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `locked (${this.lock}): ${this.detail}`
  }
}

/**
 * HTTP 400 parameter verification: `errors` maps each parameter to its message.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidParameter extends Schema.TaggedError<InvalidParameter>()("InvalidParameter", {
  errors: Schema.Record(Schema.String, Schema.String),
  detail: Schema.String
}) {
  override get message(): string {
    const fields = Object.entries(this.errors)
      .map(([k, v]) => `${k}: ${v.trim()}`)
      .join("; ")
    return fields === "" ? `invalid parameter: ${this.detail}` : `invalid parameter: ${fields}`
  }
}

/**
 * A task (UPID) ended with an error. `exitstatus` is PVE's text, `log` the last lines of the task log.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskFailed extends Schema.TaggedError<TaskFailed>()("TaskFailed", {
  upid: Schema.String,
  exitstatus: Schema.String,
  log: Schema.Array(Schema.String),
  /**
   * The task had not ended when the wait gave up (it still runs in PVE; stop it with `stopTask`).
   *
   * @since 0.2.0
   */
  stillRunning: Schema.optional(Schema.Boolean)
}) {
  override get message(): string {
    return `task ${this.upid} failed: ${this.exitstatus}`
  }
}

/**
 * A 595–599 status: pveproxy could not forward the request (to pvedaemon or to the node named in the path).
 * `explanation` says what to check.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProxyError extends Schema.TaggedError<ProxyError>()("ProxyError", {
  status: Schema.Number,
  detail: Schema.String,
  explanation: Schema.String
}) {
  override get message(): string {
    return `proxy error ${this.status} ${this.detail}: ${this.explanation}`
  }
}

/**
 * Any other refusal by the API (a semantic 500 such as `VM 100 is running - destroy failed`, a 501, …), with the
 * status and the first line of PVE's message.
 *
 * @since 0.1.0
 * @category errors
 */
export class ApiError extends Schema.TaggedError<ApiError>()("ApiError", {
  status: Schema.Number,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.status} ${this.detail}`
  }
}

/**
 * The answer did not have the expected shape (`expected` says what was expected, `detail` what was wrong).
 *
 * @since 0.1.0
 * @category errors
 */
export class UnexpectedResponse extends Schema.TaggedError<UnexpectedResponse>()("UnexpectedResponse", {
  expected: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `unexpected response (expected ${this.expected}): ${this.detail}`
  }
}

/**
 * All reasons a {@link ProxmoxError} can carry.
 *
 * @since 0.1.0
 * @category errors
 */
export const ProxmoxErrorReason = Schema.Union([
  Unreachable,
  TlsUntrusted,
  AuthRejected,
  PermissionDenied,
  NotFound,
  AlreadyExists,
  Locked,
  InvalidParameter,
  TaskFailed,
  ProxyError,
  ApiError,
  UnexpectedResponse
])

/**
 * @since 0.1.0
 * @category errors
 */
export type ProxmoxErrorReason = typeof ProxmoxErrorReason.Type

/**
 * The one error of `@homelab/proxmox-client`: which operation, on which node, over which transport, and why.
 * Handle one reason with `Effect.catchReason("ProxmoxError", "NotFound", …)`.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProxmoxError extends Schema.TaggedError<ProxmoxError>()("ProxmoxError", {
  operation: Schema.String,
  node: Schema.optional(Schema.String),
  reason: ProxmoxErrorReason,
  /**
   * When the error came over SSH after the node's REST API failed: that REST failure (the reason the node switched
   * to SSH). With it, a caller can say what went wrong on each transport.
   *
   * @since 0.2.0
   */
  fallbackFrom: Schema.optional(ProxmoxErrorReason),
  /**
   * The transport the node was driven over when the operation failed (`ssh` once it switched to SSH), for reasons
   * that do not say so themselves (a failed task, a refusal, an answer of the wrong shape). Unset for cluster-wide
   * operations and transports that cannot tell.
   *
   * @since 0.3.0
   */
  transport: Schema.optional(Schema.Literals(["rest", "ssh"]))
}) {
  override get message(): string {
    return `${this.operation}${this.node === undefined ? "" : ` on ${this.node}`}: ${this.reason.message}`
  }
}

/**
 * Is this reason a client-side transport failure that justifies switching the node to SSH?
 *
 * @since 0.1.0
 * @category error handling
 */
export const isFallbackReason = (reason: ProxmoxErrorReason): boolean =>
  reason._tag === "Unreachable" || reason._tag === "TlsUntrusted"

/**
 * Is this reason transient (worth retrying with backoff)? Config file lock timeouts, proxy 595/597–599 and
 * connection resets.
 *
 * @since 0.1.0
 * @category error handling
 */
export const isTransientReason = (reason: ProxmoxErrorReason): boolean =>
  (reason._tag === "Locked" && reason.lock === "flock") ||
  (reason._tag === "ProxyError" && reason.status !== 596) ||
  (reason._tag === "Unreachable" && reason.kind === "reset")
