import * as fs from "node:fs/promises"
import type { Duplex } from "node:stream"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { AnyAuthMethod, AuthenticationType, Client as ClientType, ConnectConfig, ParsedKey } from "ssh2"
import type * as KnownHosts from "../KnownHosts.js"
import { AuthRejected, type SshErrorReason, Unreachable } from "../SshError.js"
import type { HostKeyMode, SshAuth } from "../SshOptions.js"
import { decide, type HostKeyDecision, serverHostKeyAlgorithms } from "./HostKeyPolicy.js"

/**
 * ssh2, loaded on first use: a program that imports this library but connects later (or never) does not pay for
 * loading it up front (about 20 ms of CPU in a cold process), and one that connects loads it while its other work
 * (HTTPS requests in flight) waits.
 */
let ssh2: Promise<typeof import("ssh2")> | undefined
const loadSsh2 = Effect.promise(() => {
  ssh2 ??= import("ssh2").then((module) => module.default)
  return ssh2
})

export interface ConnectSettings {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly auth: SshAuth
  /** The private key of `auth`, read and parsed (`loadPrivateKey`); `undefined` when `auth` has none. */
  readonly key: ParsedKey | undefined
  readonly mode: HostKeyMode
  readonly knownHostsPath: string
  readonly knownEntries: ReadonlyArray<KnownHosts.Entry>
  readonly knownKeyTypes: ReadonlyArray<string>
  readonly connectTimeoutMs: number
  readonly keepaliveIntervalMs: number
  readonly keepaliveCountMax: number
  /** A stream to run SSH over (a `forwardOut` channel of a jump host) instead of a new TCP connection. */
  readonly sock?: Duplex | undefined
}

export interface Connected {
  readonly client: ClientType
  readonly hostKey: HostKeyDecision
}

const describe = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** Reads (from `privateKeyPath`) and parses the private key of `auth`; `undefined` when it has none. */
export const loadPrivateKey = (auth: SshAuth, user: string): Effect.Effect<ParsedKey | undefined, AuthRejected> =>
  Effect.gen(function* () {
    if (auth.privateKey === undefined && auth.privateKeyPath === undefined) return undefined
    const source = auth.privateKeyPath ?? "the configured private key"
    const text =
      auth.privateKey !== undefined
        ? Redacted.value(auth.privateKey)
        : yield* Effect.tryPromise({
            try: () => fs.readFile(auth.privateKeyPath!, "utf8"),
            catch: (cause) =>
              new AuthRejected({
                user,
                methodsTried: [],
                detail: `cannot read private key file ${source}: ${(cause as NodeJS.ErrnoException).code ?? describe(cause)}`
              })
          })
    const passphrase = auth.passphrase === undefined ? undefined : Redacted.value(auth.passphrase)
    const { utils } = yield* loadSsh2
    const parsed = utils.parseKey(text, passphrase)
    const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | Error | undefined) : parsed
    if (key === undefined || key instanceof Error) {
      const why = key instanceof Error ? key.message : "no key found"
      return yield* new AuthRejected({
        user,
        methodsTried: [],
        detail: `cannot use private key ${source} (${auth.passphrase === undefined ? "not decrypted" : "wrong passphrase or unsupported format"}): ${why}`
      })
    }
    return key
  })

const classifySocketError = (error: NodeJS.ErrnoException): Unreachable => {
  const code = error.code ?? ""
  const kind =
    code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_NONAME" || code === "EAI_FAIL"
      ? "Dns"
      : code === "ECONNREFUSED"
        ? "Refused"
        : code === "ETIMEDOUT"
          ? "Timeout"
          : "Network"
  return new Unreachable({ kind, detail: code === "" ? error.message : `${code}: ${error.message}` })
}

/** Opens one authenticated SSH connection. Interrupting it destroys the half-open connection. */
export const connect = (settings: ConnectSettings): Effect.Effect<Connected, SshErrorReason> =>
  Effect.gen(function* () {
    const { auth, user, key } = settings
    const methods: Array<AnyAuthMethod> = []
    if (key !== undefined) methods.push({ type: "publickey", username: user, key })
    if (auth.agentSocket !== undefined) methods.push({ type: "agent", username: user, agent: auth.agentSocket })
    if (auth.password !== undefined) {
      const password = auth.password
      methods.push({ type: "password", username: user, password: Redacted.value(password) })
      methods.push({
        type: "keyboard-interactive",
        username: user,
        prompt: (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => Redacted.value(password)))
      })
    }
    if (methods.length === 0) methods.push({ type: "none", username: user })

    const { Client } = yield* loadSsh2
    return yield* Effect.callback<Connected, SshErrorReason>((resume) => {
      const client = new Client()
      const tried: Array<string> = []
      let hostKey: HostKeyDecision | undefined
      let settled = false
      const settle = (effect: Effect.Effect<Connected, SshErrorReason>) => {
        if (settled) return
        settled = true
        resume(effect)
      }
      const fail = (reason: SshErrorReason) => {
        settle(Effect.fail(reason))
        client.destroy()
      }

      const authHandler = (
        methodsLeft: Array<AuthenticationType> | null,
        _partialSuccess: boolean | null,
        next: (method: AnyAuthMethod | false) => void
      ) => {
        const candidate = methods.find(
          (m) =>
            !tried.includes(m.type) &&
            (methodsLeft === null ||
              m.type === "none" ||
              methodsLeft.includes(m.type === "agent" ? "publickey" : m.type))
        )
        if (candidate === undefined) return next(false)
        tried.push(candidate.type)
        next(candidate)
      }

      const algorithms = settings.mode === "off" ? undefined : serverHostKeyAlgorithms(settings.knownKeyTypes)

      const config: ConnectConfig = {
        host: settings.host,
        port: settings.port,
        username: user,
        // Backstop only: the Effect-level timeout around this callback is the one that fires first.
        readyTimeout: settings.connectTimeoutMs + 5_000,
        keepaliveInterval: settings.keepaliveIntervalMs,
        keepaliveCountMax: settings.keepaliveCountMax,
        authHandler: authHandler as unknown as NonNullable<ConnectConfig["authHandler"]>,
        hostVerifier: (keyBlob: Buffer): boolean => {
          hostKey = decide(
            settings.mode,
            settings.knownEntries,
            settings.host,
            settings.port,
            settings.knownHostsPath,
            keyBlob
          )
          return hostKey._tag !== "Reject"
        },
        ...(algorithms === undefined ? {} : { algorithms: { serverHostKey: algorithms as Array<never> } }),
        ...(settings.sock === undefined ? {} : { sock: settings.sock })
      }

      client.on("ready", () => {
        client.setNoDelay(true)
        settle(Effect.succeed({ client, hostKey: hostKey ?? { _tag: "Accept" } }))
      })
      client.on("error", (error: Error & { level?: string; code?: string }) => {
        if (settled) return
        if (hostKey?._tag === "Reject") return fail(hostKey.reason)
        switch (error.level) {
          case "client-socket":
            return fail(classifySocketError(error))
          case "client-timeout":
            return fail(new Unreachable({ kind: "Timeout", detail: error.message }))
          case "client-authentication":
            return fail(
              new AuthRejected({
                user,
                methodsTried: tried,
                detail: "the server rejected all configured authentication methods"
              })
            )
          default:
            return fail(new Unreachable({ kind: "Network", detail: `SSH handshake failed: ${error.message}` }))
        }
      })
      client.on("close", () => {
        if (hostKey?._tag === "Reject") return fail(hostKey.reason)
        fail(new Unreachable({ kind: "Network", detail: "connection closed during the SSH handshake" }))
      })
      try {
        client.connect(config)
        client.setNoDelay(true)
      } catch (cause) {
        fail(new Unreachable({ kind: "Network", detail: describe(cause) }))
      }
      return Effect.sync(() => {
        if (!settled) {
          settled = true
          client.destroy()
        }
      })
    }).pipe(
      Effect.timeoutOrElse({
        duration: settings.connectTimeoutMs,
        orElse: () =>
          Effect.fail(
            new Unreachable({
              kind: "Timeout",
              detail: `no SSH session within ${settings.connectTimeoutMs} ms (TCP connect, handshake and authentication)`
            })
          )
      })
    )
  })
