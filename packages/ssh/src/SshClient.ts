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
import { connect, loadPrivateKey } from "./internal/connect.js"
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
  /** Closes the pooled connections to `target` (if any); the next call connects again. */
  readonly close: (target: SshTarget) => Effect.Effect<void>
  /**
   * Opens the pooled connection to `target` now, if it is not open (handshake, host key check, authentication), so that
   * a later call finds it ready: for overlapping the connect with other work.
   */
  readonly connect: (target: SshTarget) => Effect.Effect<void, SshError>
}

/** One connection to a host, opening or open; `load`: the calls using it or waiting for one of its sessions. */
interface Slot {
  readonly entry: Deferred.Deferred<Connection, SshError>
  load: number
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
  const maxConnections = Math.max(1, options.maxConnectionsPerHost ?? 4)
  /**
   * The connections to each `user@host:port` (+ jump chain), first opened first: the first is "the" connection (jump
   * hosts forward through it); the others are opened only while every open one has all its sessions taken.
   */
  const pool = new Map<string, Array<Slot>>()
  /** Hosts where opening a further connection failed: their calls wait for a session instead. */
  const singleConnection = new Set<string>()
  const slotsOf = (key: string): Array<Slot> => {
    let slots = pool.get(key)
    if (slots === undefined) {
      slots = []
      pool.set(key, slots)
    }
    return slots
  }
  const dropSlot = (key: string, slot: Slot) => {
    const slots = pool.get(key)
    if (slots === undefined) return
    const i = slots.indexOf(slot)
    if (i >= 0) slots.splice(i, 1)
    if (slots.length === 0) pool.delete(key)
  }
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

  const open = (target: SshTarget, key: string, slot: Slot) =>
    Effect.gen(function* () {
      const port = portOf(target)
      const sock = target.jump === undefined ? undefined : yield* forwardOut(yield* acquire(target.jump), target)
      if (mode === "off" && !warnedOff) {
        warnedOff = true
        yield* emit({ _tag: "HostKeyCheckingDisabled" })
      }
      const auth = target.auth ?? options.auth
      // Both files at once: each read waits its turn on a busy event loop (say, while a run's HTTPS handshakes go on).
      // `known_hosts` is read in every mode: a `@revoked` key is refused even with checking off (an unreadable file is
      // then ignored).
      // A failure of either is reported in this order, whichever ends first.
      const [knownRead, keyRead] = yield* Effect.all(
        [
          Effect.result(
            mode === "off"
              ? KnownHostsFile.read(knownHostsPath).pipe(Effect.orElseSucceed(() => ""))
              : KnownHostsFile.read(knownHostsPath).pipe(Effect.mapError(knownHostsError(target)))
          ),
          Effect.result(loadPrivateKey(auth, target.user).pipe(Effect.mapError(errorFor(target))))
        ],
        { concurrency: 2 }
      )
      const knownEntries = KnownHosts.parse(yield* Effect.fromResult(knownRead))
      const privateKey = yield* Effect.fromResult(keyRead)
      const connected = yield* connect({
        host: target.host,
        port,
        user: target.user,
        auth,
        key: privateKey,
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
        dropSlot(key, slot)
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

  /**
   * A new slot for another connection to `target`, in the pool at once (so that concurrent callers share it), and the
   * effect that opens it (forked into the client's scope; run it uninterruptibly right away: callers wait on the slot).
   */
  const newSlot = (target: SshTarget, key: string) => {
    const slot: Slot = { entry: Deferred.makeUnsafe<Connection, SshError>(), load: 0 }
    slotsOf(key).push(slot)
    const start = open(target, key, slot).pipe(
      Effect.onExit((exit) => {
        if (Exit.isFailure(exit)) dropSlot(key, slot)
        return Deferred.done(slot.entry, exit)
      }),
      Effect.forkIn(layerScope),
      Effect.asVoid
    )
    return { slot, start }
  }

  /** The slot's connection; `undefined` when it has closed meanwhile (the slot is dropped then). */
  const connectionOf = (key: string, slot: Slot): Effect.Effect<Connection | undefined, SshError> =>
    Deferred.await(slot.entry).pipe(
      Effect.map((connection) => {
        if (!connection.closed) return connection
        dropSlot(key, slot)
        return undefined
      })
    )

  /** The first connection for `target`, opened on first use (concurrent callers share one attempt). */
  const acquire = (target: SshTarget): Effect.Effect<Connection, SshError> => {
    const key = keyOf(target)
    return Effect.uninterruptible(
      Effect.suspend(() => {
        const existing = pool.get(key)?.[0]
        if (existing !== undefined) return Effect.succeed(existing)
        const { slot, start } = newSlot(target, key)
        return Effect.as(start, slot)
      })
    ).pipe(
      Effect.flatMap((slot) => connectionOf(key, slot)),
      Effect.flatMap((connection) => (connection === undefined ? acquire(target) : Effect.succeed(connection)))
    )
  }

  /**
   * Runs `use` on one of `target`'s connections, holding one of its sessions: the first connection with a session
   * free; when every connection has all `maxSessions` taken (long commands, say a `kubectl wait` per node), another
   * connection, up to `maxConnectionsPerHost`, so that the next commands do not wait for them; at that limit, or once
   * opening another connection failed, the least busy connection's next free session.
   */
  const withSession = <A>(
    target: SshTarget,
    use: (connection: Connection) => Effect.Effect<A, SshErrorReason>,
    /** Wraps the wait for a session and its use (a command's timeout). */
    around: (effect: Effect.Effect<A, SshErrorReason>) => Effect.Effect<A, SshErrorReason> = (effect) => effect
  ): Effect.Effect<A, SshError> => {
    const key = keyOf(target)
    return Effect.acquireUseRelease(
      Effect.suspend(() => {
        const slots = pool.get(key) ?? []
        const free = slots.find((s) => s.load < maxSessions)
        const grow =
          free === undefined && (slots.length === 0 || (slots.length < maxConnections && !singleConnection.has(key)))
        if (!grow) {
          const slot = free ?? slots.reduce((a, b) => (b.load < a.load ? b : a))
          slot.load++
          return Effect.succeed({ slot, first: slot === slots[0] })
        }
        const { slot, start } = newSlot(target, key)
        slot.load++
        return Effect.as(start, { slot, first: slots.length === 0 })
      }),
      ({ slot, first }) =>
        connectionOf(key, slot).pipe(
          Effect.matchEffect({
            onFailure: (error) => {
              if (first) return Effect.fail(error)
              // another connection could not be opened (the server limits them, say): share the open ones
              singleConnection.add(key)
              return withSession(target, use, around)
            },
            onSuccess: (connection) =>
              connection === undefined
                ? withSession(target, use, around)
                : around(connection.sessions.withPermits(1)(use(connection))).pipe(Effect.mapError(errorFor(target)))
          })
        ),
      ({ slot }) =>
        Effect.sync(() => {
          slot.load--
        })
    )
  }

  const run = (
    target: SshTarget,
    command: string,
    options: ExecOptions | undefined,
    onData: (fd: "stdout" | "stderr", data: Buffer) => void
  ): Effect.Effect<CommandExit, SshError> =>
    Effect.gen(function* () {
      // An invalid env name is a programming error: it dies (defect) with a TypeError naming it.
      const line = yield* Effect.sync(() => buildCommand(command, options))
      return yield* withSession(
        target,
        (connection) =>
          runCommand(connection.client, () => connection.closed, line, stdinBytes(options?.stdin), onData),
        (effect) => withTimeout(effect, options?.timeout, `command \`${summarize(command)}\``)
      )
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
      return yield* withSession(target, (connection) =>
        Effect.scoped(sftpSession(connection.client, () => connection.closed).pipe(Effect.flatMap(use)))
      )
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
      const slots = pool.get(key)
      if (slots === undefined) return Effect.void
      pool.delete(key)
      singleConnection.delete(key)
      return Effect.forEach(
        slots,
        (slot) =>
          Deferred.await(slot.entry).pipe(
            Effect.flatMap((connection) => Scope.close(connection.scope, Exit.void)),
            Effect.ignore
          ),
        { concurrency: "unbounded", discard: true }
      )
    })

  const connectNow = (target: SshTarget): Effect.Effect<void, SshError> => Effect.asVoid(acquire(target))

  return SshClient.of({ exec, execOrFail, execStream, upload, readFile, forgetHostKey, close, connect: connectNow })
})

/**
 * Runs commands on remote hosts over SSH. One connection per `user@host:port` (+ jump chain), opened on first use,
 * shared by all calls (each command is a channel on it) and closed when the layer's scope closes; another one only
 * while every open one has all its `maxSessionsPerConnection` channels taken (up to `maxConnectionsPerHost`).
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
