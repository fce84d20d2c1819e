import * as path from "node:path"
import { type ExecResult, SshClient, type SshError, type SshTarget } from "@homelab/ssh"
import { Clock, Context, Duration, Effect, Layer, type Redacted, Result, Semaphore, Stream } from "effect"
import {
  type ClusterNode,
  clusterVersionOf,
  decodeNode,
  decodeNodeList,
  evaluateMembership,
  type Membership
} from "./ClusterNode.js"
import {
  CONFIG_PATH,
  checkFlags,
  configYaml,
  deleteNodeCommand,
  deleteNodePasswordCommand,
  downloadScriptCommand,
  getNodeCommand,
  getNodesCommand,
  hostnameCommand,
  INSTALL_SCRIPT_URL,
  installBinaryCommand,
  installCommand,
  isActiveCommand,
  journalCommand,
  normalizeFlags,
  type Role,
  readTokenCommand,
  removeFileCommand,
  serverUrl,
  startCommand,
  tokenPaths,
  unitName,
  versionCommand,
  writeRootFileCommand
} from "./InstallCommand.js"
import { checkTokenForRole, type JoinToken, parseJoinToken, scrubTokens } from "./JoinToken.js"
import { classifyJournal, type JournalClassification, journalLines, newJournalLines } from "./JournalClassifier.js"
import {
  BadToken,
  CaHashMismatch,
  ClusterUnavailable,
  ConfigMismatch,
  DuplicateEtcdMember,
  IdentityMismatch,
  InstallFailed,
  InvalidOptions,
  K3sJoinError,
  type K3sJoinErrorReason,
  NodePasswordRejected,
  NotReady,
  RoleMismatch,
  SanMismatch,
  ServerUnreachable,
  Ssh,
  Timeout,
  TokenUnavailable,
  TooManyLearners
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
  /** Journal lines to ignore (from `InstallResult`). */
  readonly journalBaseline?: ReadonlyArray<string> | undefined
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
  /** Writes the token file, installs k3s (online or airgap; unit not started by the script), starts the unit without blocking. */
  readonly install: (options: InstallOptions) => Effect.Effect<InstallResult, K3sJoinError>
  /** Deletes the Node `name` and its `<name>.node-password.k3s` secret (both `--ignore-not-found`). */
  readonly cleanupStaleNode: (server: SshTarget, name: string) => Effect.Effect<void, K3sJoinError>
  /** Polls unit state, journal (classified) and the Node until Ready, with a hard deadline. */
  readonly waitReady: (options: WaitReadyOptions) => Effect.Effect<ClusterNode, K3sJoinError>
  /** Makes `host` a Ready member with the given role; idempotent. Servers join one at a time. */
  readonly ensureMember: (options: EnsureMemberOptions) => Effect.Effect<MemberResult, K3sJoinError>
  /** `ensureMember` for many hosts: servers one after another, agents in parallel (bounded). Never fails. */
  readonly joinAll: (
    hosts: ReadonlyArray<EnsureMemberOptions>,
    options?: { readonly agentConcurrency?: number | undefined }
  ) => Effect.Effect<ReadonlyArray<JoinOutcome>>
}

const DEFAULTS = {
  command: Duration.seconds(60),
  download: Duration.minutes(2),
  install: Duration.minutes(10),
  readyAgent: Duration.minutes(5),
  readyServer: Duration.minutes(10),
  pollInterval: Duration.seconds(2)
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/
const isIp = (host: string): boolean => IPV4.test(host) || (host.includes(":") && /^[0-9a-fA-F:.]+$/.test(host))

const tailOf = (text: string, lines = 20): string => text.split("\n").slice(-lines).join("\n")

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
        pollInterval: t.pollInterval ?? DEFAULTS.pollInterval
      }
    }

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

    const readJournal = (host: SshTarget, role: Role, timeout: Duration.Input) =>
      run(host, journalCommand(role), timeout).pipe(
        Effect.map((r) => (r.exitCode === 0 ? journalLines(r.stdout).filter((l) => !l.startsWith("-- ")) : []))
      )

    /** Runs the install script, streaming its output lines as events; bounded by the install timeout. */
    const runInstallScript = (
      host: K3sHost,
      command: string,
      timeout: Duration.Input,
      secrets: ReadonlyArray<Redacted.Redacted<string>>,
      emit: (event: K3sJoinEvent) => Effect.Effect<void>
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
        yield* ssh.execStream(host, command, { timeout }).pipe(
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

    const install = Effect.fn("K3sJoin.install")(function* (request: InstallOptions) {
      const { host, role } = request
      const emit = emitter(request.onEvent)
      const timeouts = timeoutsOf(request.timeouts, role)
      const flags = normalizeFlags(request.flags)
      const badFlag = checkFlags(flags)
      if (badFlag !== undefined) return yield* fail(host.host, new InvalidOptions({ detail: badFlag }))
      const usable = checkTokenForRole(request.token, role)
      if (Result.isFailure(usable)) return yield* fail(host.host, usable.failure)
      const secrets = [request.token.value]

      // 1. the token, on stdin, into a root-only file
      yield* emit({ _tag: "Step", host: host.host, step: "write-token", detail: CONFIG_PATH })
      const written = yield* run(
        host,
        writeRootFileCommand(CONFIG_PATH),
        timeouts.command,
        configYaml(request.token.value)
      )
      if (written.exitCode !== 0) {
        return yield* fail(
          host.host,
          new InstallFailed({
            step: `writing ${CONFIG_PATH}`,
            exitCode: written.exitCode,
            tail: scrubTokens(tailOf(written.stderr), secrets)
          })
        )
      }

      // 2. the install script (and, airgapped, the binary)
      if (request.airgap !== undefined) {
        const airgap = request.airgap
        yield* emit({ _tag: "Step", host: host.host, step: "upload", detail: airgap.dir })
        const uploadedBinary = path.posix.join(tmpDir, "k3s-join-k3s.bin")
        yield* ssh
          .upload(host, {
            localPath: path.join(airgap.dir, airgap.script ?? "install.sh"),
            path: scriptPath,
            mode: 0o755
          })
          .pipe(Effect.mapError(sshFailed(host.host)))
        yield* ssh
          .upload(host, { localPath: path.join(airgap.dir, airgap.binary ?? "k3s"), path: uploadedBinary, mode: 0o755 })
          .pipe(Effect.mapError(sshFailed(host.host)))
        const placed = yield* run(host, installBinaryCommand(uploadedBinary), timeouts.command)
        yield* run(host, removeFileCommand(uploadedBinary), timeouts.command)
        if (placed.exitCode !== 0) {
          return yield* fail(
            host.host,
            new InstallFailed({
              step: "installing the k3s binary",
              exitCode: placed.exitCode,
              tail: tailOf(placed.stderr)
            })
          )
        }
      } else {
        yield* emit({
          _tag: "Step",
          host: host.host,
          step: "download",
          detail: options.installScriptUrl ?? INSTALL_SCRIPT_URL
        })
        const downloaded = yield* run(
          host,
          downloadScriptCommand(options.installScriptUrl, scriptPath),
          timeouts.download
        )
        if (downloaded.exitCode !== 0) {
          return yield* fail(
            host.host,
            new InstallFailed({
              step: "downloading the install script",
              exitCode: downloaded.exitCode,
              tail: tailOf(downloaded.stderr)
            })
          )
        }
      }

      // 3. run it: pinned version, explicit role word, unit not started
      yield* emit({ _tag: "Step", host: host.host, step: "install", detail: request.version })
      const command = installCommand({
        role,
        server: request.server.apiAddress ?? request.server.host,
        serverPort: request.server.apiPort,
        version: request.version,
        flags,
        nodeName: request.nodeName,
        airgap: request.airgap !== undefined,
        scriptPath
      })
      const installed = yield* runInstallScript(host, command, timeouts.install, secrets, emit)
      if (installed.exitCode !== 0) {
        return yield* fail(
          host.host,
          new InstallFailed({
            step: "the k3s install script",
            exitCode: installed.exitCode,
            tail: tailOf(installed.output)
          })
        )
      }

      // 4. start without blocking (restart when it is already running or retrying with an older configuration)
      const before = yield* unitState(host, role, timeouts.command)
      const journalBaseline = yield* readJournal(host, role, timeouts.command)
      yield* emit({ _tag: "Step", host: host.host, step: "start", detail: unitName(role) })
      const started = yield* run(
        host,
        startCommand(role, before === "active" || before === "activating"),
        timeouts.command
      )
      if (started.exitCode !== 0) {
        return yield* fail(
          host.host,
          new InstallFailed({
            step: `starting ${unitName(role)}`,
            exitCode: started.exitCode,
            tail: tailOf(started.stderr)
          })
        )
      }
      return { unit: unitName(role), journalBaseline } satisfies InstallResult
    })

    const nodeAbsent = (stderr: string) => stderr.includes("NotFound") || stderr.includes("not found")

    const cleanupStaleNode = Effect.fn("K3sJoin.cleanupStaleNode")(function* (server: SshTarget, name: string) {
      const timeout = timeoutsOf(undefined, "server").command
      const deleted = yield* run(server, deleteNodeCommand(name), timeout)
      if (deleted.exitCode !== 0) {
        return yield* fail(
          server.host,
          new ClusterUnavailable({ server: server.host, detail: `deleting node ${name}: ${deleted.stderr.trim()}` })
        )
      }
      // the Node may linger while its finalizers run (etcd member removal); wait until it is gone
      const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(timeout)
      while (true) {
        const got = yield* run(server, getNodeCommand(name), timeout)
        if (got.exitCode !== 0 && nodeAbsent(got.stderr)) break
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
        yield* Effect.sleep(timeoutsOf(undefined, "server").pollInterval)
      }
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

    const reasonFor = (classification: JournalClassification, server: string, node: string): K3sJoinErrorReason => {
      const line = classification.line
      switch (classification.failure) {
        case "NodePasswordRejected":
          return new NodePasswordRejected({ node, line })
        case "DuplicateEtcdMember":
          return new DuplicateEtcdMember({ node, line })
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
        case "SanMismatch":
          return new SanMismatch({ line })
        case "ServerUnreachable":
          return new ServerUnreachable({ server, line })
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
      ["AuthRejected", "HostKeyMismatch", "HostKeyUnknown"].includes(error.reason.error.reason._tag)

    const tolerant = <A>(effect: Effect.Effect<A, K3sJoinError>, fallback: A) =>
      effect.pipe(
        Effect.catchIf(
          (e) => !isFatalSsh(e),
          () => Effect.succeed(fallback)
        )
      )

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
      yield* emit({ _tag: "Step", host: host.host, step: "wait-ready", detail: nodeName })
      while (true) {
        const state = yield* tolerant(unitState(host, role, timeouts.command), "unknown")
        if (state !== lastState) {
          lastState = state
          yield* emit({ _tag: "UnitState", host: host.host, unit: unitName(role), state })
        }
        const lines = (yield* tolerant(readJournal(host, role, timeouts.command), seen)).map((l) =>
          scrubTokens(l, secrets)
        )
        const fresh = newJournalLines(baseline, lines)
        for (const line of newJournalLines(seen, fresh)) yield* emit({ _tag: "JournalLine", host: host.host, line })
        seen = fresh
        const classification = classifyJournal(fresh)
        if (classification?.permanent) {
          return yield* fail(host.host, reasonFor(classification, url, nodeName))
        }
        if (classification !== undefined && classification.line !== lastTransient?.line) {
          yield* emit({ _tag: "Waiting", host: host.host, failure: classification.failure, line: classification.line })
        }
        lastTransient = classification
        const got = yield* tolerant(run(server, getNodeCommand(nodeName), timeouts.command), undefined)
        const node = got !== undefined && got.exitCode === 0 ? decodeNode(got.stdout) : undefined
        const current = node !== undefined && Result.isSuccess(node) ? node.success : undefined
        const ready = current === undefined ? "Absent" : current.ready
        if (ready !== lastReady) {
          lastReady = ready
          yield* emit({ _tag: "NodeState", host: host.host, node: nodeName, ready })
        }
        if (current !== undefined && current.ready === "True" && !current.deleting && state === "active") {
          const mismatch = verifyIdentity(current, host, role, request.version)
          if (mismatch !== undefined) return yield* fail(host.host, mismatch)
          return current
        }
        if ((yield* Clock.currentTimeMillis) >= deadline) {
          if (lastTransient !== undefined) return yield* fail(host.host, reasonFor(lastTransient, url, nodeName))
          if (current !== undefined && current.ready !== "True" && state === "active") {
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
              what: `waiting for node ${nodeName} to become Ready (unit ${unitName(role)} ${state}, Ready ${ready})`,
              timeoutMs: readyMs,
              lastLines: fresh.slice(-10)
            })
          )
        }
        yield* Effect.sleep(timeouts.pollInterval)
      }
    })

    const ensureMemberUnlocked = Effect.fn("K3sJoin.ensureMember")(function* (request: EnsureMemberOptions) {
      const { server, host, role } = request
      const emit = emitter(request.onEvent)
      const timeouts = timeoutsOf(request.timeouts, role)
      const flags = normalizeFlags(request.flags)
      const badFlag = checkFlags(flags)
      if (badFlag !== undefined) return yield* fail(host.host, new InvalidOptions({ detail: badFlag }))
      const t0 = yield* Clock.currentTimeMillis

      if (request.rebuilt === true) {
        // a rebuilt host presents a new SSH host key; drop the old one and any pooled connection
        yield* emit({ _tag: "Step", host: host.host, step: "forget-host-key" })
        yield* ssh.forgetHostKey(host.host, host.port).pipe(Effect.mapError(sshFailed(host.host)))
        yield* ssh.close(host)
      }

      yield* emit({ _tag: "Step", host: host.host, step: "inspect" })
      const nodes = yield* clusterNodes(server)
      const nodeName = yield* nodeNameOf(host, flags)
      const member = membershipOf(nodes, host, role, nodeName)
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
      if (mayClean) {
        yield* emit({ _tag: "Step", host: host.host, step: "cleanup", detail: nodeName })
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
        token = yield* fetchToken(server, role)
      }
      const t3 = yield* Clock.currentTimeMillis

      const installed = yield* install({
        server,
        host,
        role,
        token,
        version,
        flags,
        nodeName: host.nodeName,
        airgap: request.airgap,
        timeouts: request.timeouts,
        onEvent: request.onEvent
      })
      const t4 = yield* Clock.currentTimeMillis
      const node = yield* waitReady({
        server,
        host,
        role,
        nodeName,
        journalBaseline: installed.journalBaseline,
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
        cleanedUp: mayClean,
        timings: timings({ cleanup: t2, token: t3, install: t4, ready: t5 })
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

    return K3sJoin.of({
      fetchToken,
      clusterNodes,
      clusterVersion,
      membership,
      install,
      cleanupStaleNode,
      waitReady,
      ensureMember,
      joinAll
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
