import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import type { Duplex } from "node:stream"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as Stream from "effect/Stream"
import type { Client } from "ssh2"
import type { ExecChunk, ExecOptions, ExecResult, ExecStreamOptions, UploadOptions } from "./ExecOptions.js"
import { connect } from "./internal/connect.js"
import * as KnownHostsFile from "./internal/KnownHostsFile.js"
import { buildCommand, type Exit as CommandExit, runCommand, stdinBytes, summarize } from "./internal/runCommand.js"
import { atomicUpload, readRemoteFile, sftpSession } from "./internal/sftp.js"
import * as KnownHosts from "./KnownHosts.js"
import { SshConfig } from "./SshConfig.js"
import {
  CommandFailed,
  Disconnected,
  LocalFileFailed,
  SshError,
  type SshErrorReason,
  Timeout,
  Unreachable
} from "./SshError.js"
import type { SshEvent, SshOptions, SshTarget } from "./SshOptions.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface SshClientShape {
  /** Runs a command; a non-zero exit status is data (`exitCode`), not an error. */
  readonly exec: (target: SshTarget, command: string, options?: ExecOptions) => Effect.Effect<ExecResult, SshError>
  /** Like `exec`, but a non-zero exit (or a signal) fails with reason `CommandFailed` (exit code + stderr tail). */
  readonly execOrFail: (
    target: SshTarget,
    command: string,
    options?: ExecOptions
  ) => Effect.Effect<ExecResult, SshError>
  /** Output chunks as they arrive, then one `{ fd: "exit" }` element (or a `CommandFailed` failure if asked). */
  readonly execStream: (
    target: SshTarget,
    command: string,
    options?: ExecStreamOptions
  ) => Stream.Stream<ExecChunk, SshError>
  /** Writes a file atomically over SFTP: temporary name in the same directory, chmod, rename over the target. */
  readonly upload: (target: SshTarget, options: UploadOptions) => Effect.Effect<void, SshError>
  /** Reads a remote file over SFTP. */
  readonly readFile: (target: SshTarget, path: string) => Effect.Effect<Uint8Array, SshError>
  /** Removes every `known_hosts` entry for the host (plain and hashed), rewriting the file atomically. */
  readonly forgetHostKey: (host: string, port?: number) => Effect.Effect<void, SshError>
  /** Closes the pooled connection to `target` (if any); the next call connects again. */
  readonly close: (target: SshTarget) => Effect.Effect<void>
}

interface Connection {
  readonly key: string
  readonly client: Client
  readonly scope: Scope.Closeable
  /** Limits concurrent channels to what the server allows per connection (OpenSSH `MaxSessions`). */
  readonly sessions: Semaphore.Semaphore
  closed: boolean
}

const DEFAULT_CONNECT_TIMEOUT = Duration.seconds(10)
const STDERR_TAIL_CHARS = 2_000

const portOf = (target: SshTarget): number => target.port ?? 22

/** Pool key: `user@host:port`, plus the jump chain. */
const keyOf = (target: SshTarget): string =>
  `${target.user}@${target.host}:${portOf(target)}${target.jump === undefined ? "" : ` via ${keyOf(target.jump)}`}`

const tail = (text: string): string => (text.length > STDERR_TAIL_CHARS ? `…${text.slice(-STDERR_TAIL_CHARS)}` : text)

const errorFor =
  (target: { readonly host: string; readonly port?: number | undefined }) =>
  (reason: SshErrorReason): SshError =>
    new SshError({ host: target.host, port: target.port ?? 22, reason })

const withTimeout = <A>(
  effect: Effect.Effect<A, SshErrorReason>,
  timeout: Duration.Input | undefined,
  operation: string
): Effect.Effect<A, SshErrorReason> =>
  timeout === undefined
    ? effect
    : Effect.timeoutOrElse(effect, {
        duration: timeout,
        orElse: () => Effect.fail(new Timeout({ operation, timeoutMs: Duration.toMillis(timeout) }))
      })

const make = Effect.gen(function* () {
  const options = yield* SshConfig
  const layerScope = yield* Effect.scope
  const knownHostsPath = options.knownHosts.path ?? path.join(os.homedir(), ".ssh", "known_hosts")
  const mode = options.knownHosts.mode
  const connectTimeoutMs = Duration.toMillis(options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT)
  const keepalive = options.keepalive === false ? undefined : (options.keepalive ?? {})
  const keepaliveIntervalMs = keepalive === undefined ? 0 : Duration.toMillis(keepalive.interval ?? "15 seconds")
  const keepaliveCountMax = keepalive?.countMax ?? 3
  const maxSessions = Math.max(1, options.maxSessionsPerConnection ?? 10)
  const knownHostsLock = yield* Semaphore.make(1)
  const pool = new Map<string, Deferred.Deferred<Connection, SshError>>()
  let warnedOff = false

  const emit = (event: SshEvent): Effect.Effect<void> =>
    Effect.suspend(() => {
      try {
        options.onEvent?.(event)
      } catch {
        // a throwing event handler must not break connections
      }
      return event._tag === "HostKeyCheckingDisabled"
        ? Effect.logWarning("ssh: host key checking is off; connections are not protected against impersonation")
        : Effect.logInfo(
            `ssh: added ${event.keyType} ${event.fingerprint} for ${KnownHosts.hostToken(event.host, event.port)} to ${event.knownHostsPath}`
          )
    })

  const knownHostsError = (target: SshTarget) => (error: LocalFileFailed) => errorFor(target)(error)

  /** Appends a first-seen key (accept-new), unless another connection recorded one for the host meanwhile. */
  const recordHostKey = (target: SshTarget, keyBlob: Uint8Array, keyType: string, fingerprint: string) =>
    knownHostsLock.withPermits(1)(
      Effect.gen(function* () {
        const entries = KnownHosts.parse(yield* KnownHostsFile.read(knownHostsPath))
        if (KnownHosts.check(entries, target.host, portOf(target), keyBlob)._tag !== "Unknown") return
        yield* KnownHostsFile.appendLine(
          knownHostsPath,
          KnownHosts.formatEntry(target.host, portOf(target), keyBlob, { hash: options.knownHosts.hashNewEntries })
        )
        yield* emit({
          _tag: "HostKeyAdded",
          host: target.host,
          port: portOf(target),
          keyType,
          fingerprint,
          knownHostsPath
        })
      })
    )

  const forwardOut = (via: Connection, target: SshTarget): Effect.Effect<Duplex, SshError> =>
    Effect.callback<Duplex, SshError>((resume) => {
      try {
        via.client.forwardOut("127.0.0.1", 0, target.host, portOf(target), (error, stream) => {
          if (error) {
            resume(
              Effect.fail(
                errorFor(target)(
                  new Unreachable({
                    kind: "Network",
                    detail: `jump host could not open a connection: ${error.message}`
                  })
                )
              )
            )
          } else resume(Effect.succeed(stream))
        })
      } catch (cause) {
        resume(Effect.fail(errorFor(target)(new Disconnected({ detail: `jump host connection: ${String(cause)}` }))))
      }
    })

  const open = (target: SshTarget, key: string, entry: Deferred.Deferred<Connection, SshError>) =>
    Effect.gen(function* () {
      const port = portOf(target)
      const sock = target.jump === undefined ? undefined : yield* forwardOut(yield* acquire(target.jump), target)
      if (mode === "off" && !warnedOff) {
        warnedOff = true
        yield* emit({ _tag: "HostKeyCheckingDisabled" })
      }
      // Read in every mode: a `@revoked` key is refused even with checking off (an unreadable file is then ignored).
      const knownEntries = KnownHosts.parse(
        yield* mode === "off"
          ? KnownHostsFile.read(knownHostsPath).pipe(Effect.orElseSucceed(() => ""))
          : KnownHostsFile.read(knownHostsPath).pipe(Effect.mapError(knownHostsError(target)))
      )
      const connected = yield* connect({
        host: target.host,
        port,
        user: target.user,
        auth: target.auth ?? options.auth,
        mode,
        knownHostsPath,
        knownEntries,
        knownKeyTypes: mode === "off" ? [] : KnownHosts.keyTypesFor(knownEntries, target.host, port),
        connectTimeoutMs,
        keepaliveIntervalMs,
        keepaliveCountMax,
        sock
      }).pipe(Effect.mapError(errorFor(target)))
      const { client, hostKey } = connected
      const scope = yield* Scope.fork(layerScope, "sequential")
      const connection: Connection = {
        key,
        client,
        scope,
        sessions: Semaphore.makeUnsafe(maxSessions),
        closed: false
      }
      const onClose = () => {
        connection.closed = true
        if (pool.get(key) === entry) pool.delete(key)
      }
      client.on("close", onClose)
      client.on("error", () => {
        // errors after the handshake surface through the operations that were running; "close" follows
      })
      yield* Scope.addFinalizer(scope, closeClient(connection))
      if (hostKey._tag === "Append") {
        yield* recordHostKey(target, hostKey.keyBlob, hostKey.keyType, hostKey.fingerprint).pipe(
          Effect.mapError(knownHostsError(target)),
          Effect.onError(() => Scope.close(scope, Exit.void))
        )
      }
      return connection
    })

  const closeClient = (connection: Connection): Effect.Effect<void> =>
    Effect.callback<void>((resume) => {
      if (connection.closed) return resume(Effect.void)
      connection.client.once("close", () => resume(Effect.void))
      connection.client.end()
    }).pipe(
      Effect.timeoutOrElse({ duration: 2_000, orElse: () => Effect.sync(() => connection.client.destroy()) }),
      Effect.ensuring(Effect.sync(() => (connection.closed = true)))
    )

  /** The pooled connection for `target`, opened on first use (concurrent callers share one attempt). */
  const acquire = (target: SshTarget): Effect.Effect<Connection, SshError> =>
    Effect.suspend(() => {
      const key = keyOf(target)
      const existing = pool.get(key)
      if (existing !== undefined) {
        return Deferred.await(existing).pipe(
          Effect.flatMap((connection) => {
            if (!connection.closed) return Effect.succeed(connection)
            if (pool.get(key) === existing) pool.delete(key)
            return acquire(target)
          })
        )
      }
      const entry = Deferred.makeUnsafe<Connection, SshError>()
      pool.set(key, entry)
      return open(target, key, entry).pipe(
        Effect.onExit((exit) => {
          if (Exit.isFailure(exit) && pool.get(key) === entry) pool.delete(key)
          return Deferred.done(entry, exit)
        }),
        Effect.forkIn(layerScope),
        Effect.andThen(Deferred.await(entry))
      )
    })

  const run = (
    target: SshTarget,
    command: string,
    options: ExecOptions | undefined,
    onData: (fd: "stdout" | "stderr", data: Buffer) => void
  ): Effect.Effect<CommandExit, SshError> =>
    Effect.gen(function* () {
      // An invalid env name is a programming error: it dies (defect) with a TypeError naming it.
      const line = yield* Effect.sync(() => buildCommand(command, options))
      const connection = yield* acquire(target)
      return yield* withTimeout(
        connection.sessions.withPermits(1)(
          runCommand(connection.client, () => connection.closed, line, stdinBytes(options?.stdin), onData)
        ),
        options?.timeout,
        `command \`${summarize(command)}\``
      ).pipe(Effect.mapError(errorFor(target)))
    })

  const exec = Effect.fn("SshClient.exec")(function* (target: SshTarget, command: string, options?: ExecOptions) {
    const stdout: Array<Buffer> = []
    const stderr: Array<Buffer> = []
    const exit = yield* run(target, command, options, (fd, data) => (fd === "stdout" ? stdout : stderr).push(data))
    return {
      stdout: Buffer.concat(stdout).toString("utf8"),
      stderr: Buffer.concat(stderr).toString("utf8"),
      exitCode: exit.exitCode,
      signal: exit.signal
    } satisfies ExecResult
  })

  const commandFailed = (target: SshTarget, command: string, exit: CommandExit, stderr: string): SshError =>
    errorFor(target)(
      new CommandFailed({
        command: summarize(command),
        exitCode: exit.exitCode,
        signal: exit.signal,
        stderrTail: tail(stderr)
      })
    )

  const execOrFail = Effect.fn("SshClient.execOrFail")(function* (
    target: SshTarget,
    command: string,
    options?: ExecOptions
  ) {
    const result = yield* exec(target, command, options)
    if (result.exitCode !== 0) return yield* commandFailed(target, command, result, result.stderr)
    return result
  })

  const execStream = (
    target: SshTarget,
    command: string,
    options?: ExecStreamOptions
  ): Stream.Stream<ExecChunk, SshError> =>
    Stream.callback<ExecChunk, SshError>((queue) =>
      Effect.gen(function* () {
        let stderr = ""
        const exit = yield* run(target, command, options, (fd, data) => {
          if (fd === "stderr" && options?.failOnNonZero === true) stderr = tail(stderr + data.toString("utf8"))
          Queue.offerUnsafe(queue, { fd, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) })
        })
        if (options?.failOnNonZero === true && exit.exitCode !== 0) {
          return yield* commandFailed(target, command, exit, stderr)
        }
        yield* Queue.offer(queue, { fd: "exit", exitCode: exit.exitCode, signal: exit.signal })
        yield* Queue.end(queue)
      })
    )

  const withSftp = <A>(
    target: SshTarget,
    use: (sftp: import("ssh2").SFTPWrapper) => Effect.Effect<A, SshErrorReason>
  ): Effect.Effect<A, SshError> =>
    Effect.gen(function* () {
      const connection = yield* acquire(target)
      return yield* connection.sessions
        .withPermits(1)(
          Effect.scoped(sftpSession(connection.client, () => connection.closed).pipe(Effect.flatMap(use)))
        )
        .pipe(Effect.mapError(errorFor(target)))
    })

  const upload = Effect.fn("SshClient.upload")(function* (target: SshTarget, upload: UploadOptions) {
    const data =
      upload.localPath !== undefined
        ? yield* Effect.tryPromise({
            try: () => fs.readFile(upload.localPath),
            catch: (cause) =>
              errorFor(target)(
                new LocalFileFailed({
                  operation: "read local file",
                  path: upload.localPath,
                  detail: (cause as NodeJS.ErrnoException).code ?? String(cause)
                })
              )
          })
        : typeof upload.content === "string"
          ? Buffer.from(upload.content, "utf8")
          : Redacted.isRedacted(upload.content)
            ? Buffer.from(Redacted.value(upload.content), "utf8")
            : upload.content
    yield* withSftp(target, (sftp) => atomicUpload(sftp, upload.path, data, upload.mode ?? 0o644))
  })

  const readFile = Effect.fn("SshClient.readFile")(function* (target: SshTarget, remotePath: string) {
    const buffer = yield* withSftp(target, (sftp) => readRemoteFile(sftp, remotePath))
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
  })

  const forgetHostKey = Effect.fn("SshClient.forgetHostKey")(function* (host: string, port?: number) {
    yield* knownHostsLock
      .withPermits(1)(
        Effect.gen(function* () {
          const text = yield* KnownHostsFile.read(knownHostsPath)
          const { text: next, removed } = KnownHosts.remove(text, host, port ?? 22)
          if (removed > 0) yield* KnownHostsFile.rewrite(knownHostsPath, next)
        })
      )
      .pipe(Effect.mapError(errorFor({ host, port })))
  })

  const close = (target: SshTarget): Effect.Effect<void> =>
    Effect.suspend(() => {
      const key = keyOf(target)
      const entry = pool.get(key)
      if (entry === undefined) return Effect.void
      pool.delete(key)
      return Deferred.await(entry).pipe(
        Effect.flatMap((connection) => Scope.close(connection.scope, Exit.void)),
        Effect.ignore
      )
    })

  return SshClient.of({ exec, execOrFail, execStream, upload, readFile, forgetHostKey, close })
})

/**
 * Runs commands on remote hosts over SSH. One connection per `user@host:port` (+ jump chain), opened on first use,
 * shared by all calls (each command is a channel on it) and closed when the layer's scope closes.
 *
 * @example
 * ```ts
 * const program = Effect.gen(function* () {
 *   const ssh = yield* SshClient
 *   const { stdout } = yield* ssh.execOrFail({ host: "10.0.0.5", user: "root" }, shellCommand(["cat", "/etc/hostname"]))
 * }).pipe(Effect.provide(SshClient.layerWith({ auth: { agentSocket }, knownHosts: { mode: "accept-new" } })))
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class SshClient extends Context.Service<SshClient, SshClientShape>()("@homelab/ssh/SshClient") {
  /** Needs {@link SshConfig}. */
  static readonly layer: Layer.Layer<SshClient, never, SshConfig> = Layer.effect(SshClient, make)

  /**
   * The client with its options given directly. Each call is a client of its own: two `layerWith` with different
   * options in one program (say strict host keys for the Proxmox nodes, accept-new for fresh VMs) never share one,
   * as they would through the memoised `layer`.
   */
  static readonly layerWith = (options: SshOptions): Layer.Layer<SshClient> =>
    Layer.effect(SshClient, make).pipe(Layer.provide(Layer.succeed(SshConfig, options)))
}
