import type * as Http from "node:http"
import * as https from "node:https"
import { createRequire } from "node:module"
import * as net from "node:net"
import { Readable } from "node:stream"
import { pipeline } from "node:stream/promises"
import * as tls from "node:tls"
import * as Effect from "effect/Effect"
import type { TlsOptions } from "./ProxmoxClientConfig.js"

// node:http through require: an ES import of it makes Node read every export of the module, which loads Node's
// internal undici (for `http.WebSocket`) at a cost of about 35 ms of CPU. Only plain-HTTP endpoints use it.
const http = createRequire(import.meta.url)("node:http") as typeof Http

/**
 * The `fetch` function handed to proxmox-api (its `fetch` option), over one keep-alive connection pool with the
 * node's TLS trust; `close` closes the pool's connections.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsTrust {
  readonly fetch: (input: string | URL, init?: TrustFetchInit) => Promise<TrustResponse>
  readonly close: () => Promise<void>
}

/**
 * Normalises a SHA-256 fingerprint to PVE's notation: uppercase hex pairs separated by `:`.
 *
 * @since 0.1.0
 * @category utilities
 */
export const normalizeFingerprint = (fingerprint: string): string => {
  const hex = fingerprint
    .replace(/^sha256[:/]?/i, "")
    .replace(/[^0-9a-fA-F]/g, "")
    .toUpperCase()
  return (hex.match(/.{2}/g) ?? []).join(":")
}

/**
 * One TLS context per CA bundle, shared by every node's agent that trusts it: building one (parsing the bundle) for
 * each connection costs about a millisecond of CPU, fifty times over for a fifty-node plan.
 */
const secureContexts = new Map<string, tls.SecureContext>()
const secureContextFor = (ca: string): tls.SecureContext => {
  let context = secureContexts.get(ca)
  if (context === undefined) {
    context = tls.createSecureContext({ ca })
    secureContexts.set(ca, context)
  }
  return context
}

/** What `TlsTrust.fetch` takes: the part of `fetch`'s options proxmox-api and the upload use. */
export interface TrustFetchInit {
  readonly method?: string | undefined
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly body?: string | AsyncIterable<Uint8Array> | null | undefined
  readonly signal?: AbortSignal | null | undefined
  readonly duplex?: "half" | undefined
}

/**
 * How `TlsTrust.fetch` rejects: a `TypeError("fetch failed")` whose `cause` is Node's error, and `sent`: whether the
 * request had been handed an established connection (for HTTPS: after the handshake and the pin check) before it
 * failed. When `sent` is false nothing of it was written (refused, DNS, connect timeout, TLS or pin failure, an abort
 * before a connection was free); when true, the server may have received it, and acted on it, whatever the error.
 *
 * @since 0.1.0
 * @category models
 */
export interface TrustFetchError extends TypeError {
  readonly sent: boolean
}

/**
 * Did this `TlsTrust.fetch` failure happen after the request may have reached the server (see `TrustFetchError`)?
 * Anything else (not a `TrustFetchError`) counts as sent.
 *
 * @since 0.1.0
 * @category utilities
 */
export const mayHaveBeenSent = (error: unknown): boolean =>
  !(error instanceof TypeError && (error as Partial<TrustFetchError>).sent === false)

/** What `TlsTrust.fetch` answers: the part of a fetch `Response` proxmox-api and the upload read. */
export interface TrustResponse {
  readonly status: number
  readonly statusText: string
  readonly ok: boolean
  readonly headers: { readonly get: (name: string) => string | null }
  readonly text: () => Promise<string>
  readonly json: () => Promise<unknown>
}

/**
 * Builds a per-client keep-alive `https.Agent` (at most 8 connections) whose TLS trust is exactly what `options`
 * say: system CAs by default, only `ca`, only the leaf whose SHA-256 fingerprint is `fingerprint`, or anything
 * (`insecure`); and a `fetch` over it. Never touches global TLS settings (`NODE_TLS_REJECT_UNAUTHORIZED`, the global
 * agent). Node's own `https` rather than undici: loading undici costs a CLI run about 25 MiB and 150 ms of CPU.
 *
 * A failure rejects like `fetch` does: a `TypeError` whose `cause` is Node's error (its `code`: `ECONNREFUSED`,
 * `DEPTH_ZERO_SELF_SIGNED_CERT`, `ERR_TLS_PIN_MISMATCH`, `ETIMEDOUT` when no connection is made in
 * `connectTimeoutMs`, `ABORT_ERR` when `signal` aborts), plus whether the request may have been sent
 * (`TrustFetchError`). The body is read whole before the promise resolves.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeTlsTrust = (options: TlsOptions | undefined, connectTimeoutMs = 10_000): TlsTrust => {
  const servername = options?.servername
  const pin = options?.fingerprint === undefined ? undefined : normalizeFingerprint(options.fingerprint)
  const common = {
    keepAlive: true,
    maxSockets: 8,
    // an idle connection is closed after 30 s, or before the server's own keep-alive timeout when it announces one
    timeout: 30_000
  }
  const agent = new https.Agent({
    ...common,
    ...(pin !== undefined ? { rejectUnauthorized: false, maxCachedSessions: 0 } : {}),
    ...(pin === undefined && options?.ca !== undefined
      ? { ca: options.ca, secureContext: secureContextFor(options.ca) }
      : {}),
    ...(pin === undefined && options?.insecure === true ? { rejectUnauthorized: false } : {}),
    ...(servername !== undefined ? { servername } : {})
  })
  const connect = agent.createConnection.bind(agent) as (
    o: tls.ConnectionOptions,
    cb?: (err: Error | null, socket: net.Socket) => void
  ) => tls.TLSSocket
  // The request is handed the connection only once it is secure (and, when pinned, its certificate checked), so
  // nothing (the API token least of all) is written to a server that turns out to be the wrong one.
  ;(agent as unknown as { createConnection: unknown }).createConnection = (
    o: tls.ConnectionOptions,
    cb: (err: Error | null, socket?: net.Socket) => void
  ) => {
    const socket = connect(o)
    const timer = setTimeout(() => {
      const error = new Error(`connect timeout after ${connectTimeoutMs} ms`) as Error & { code: string }
      error.code = "ETIMEDOUT"
      socket.destroy(error)
    }, connectTimeoutMs)
    let settled = false
    const settle = (err: Error | null) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.off("error", settle)
      if (err === null) cb(null, socket)
      else cb(err)
    }
    socket.once("error", settle)
    socket.once("secureConnect", () => {
      if (pin !== undefined) {
        const seen = socket.getPeerCertificate()?.fingerprint256
        if (seen === undefined || normalizeFingerprint(seen) !== pin) {
          const error = new Error(
            `certificate fingerprint ${seen === undefined ? "(none)" : normalizeFingerprint(seen)} does not match the pinned ${pin}`
          ) as Error & { code: string; fingerprint?: string }
          error.code = "ERR_TLS_PIN_MISMATCH"
          if (seen !== undefined) error.fingerprint = normalizeFingerprint(seen)
          settle(error)
          socket.destroy()
          return
        }
      }
      settle(null)
    })
    return undefined
  }
  const plain = new http.Agent(common)
  const fetch = (input: string | URL, init: TrustFetchInit = {}): Promise<TrustResponse> =>
    new Promise<TrustResponse>((resolve, reject) => {
      const url = typeof input === "string" ? new URL(input) : input
      const secure = url.protocol === "https:"
      // set once the request holds an established connection: from then on any of it may have been written
      let sent = false
      const failed = (cause: unknown) =>
        reject(Object.assign(new TypeError("fetch failed", { cause }), { sent }) satisfies TrustFetchError)
      const options = {
        method: init.method ?? "GET",
        headers: { ...init.headers },
        agent: secure ? agent : plain,
        ...(init.signal !== undefined && init.signal !== null ? { signal: init.signal } : {})
      }
      const req = (secure ? https : http).request(url, options, (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.once("error", failed)
        res.once("end", () => {
          const body = Buffer.concat(chunks).toString("utf8")
          const status = res.statusCode ?? 0
          resolve({
            status,
            statusText: res.statusMessage ?? "",
            ok: status >= 200 && status < 300,
            headers: {
              get: (name) => {
                const value = res.headers[name.toLowerCase()]
                return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value
              }
            },
            text: () => Promise.resolve(body),
            json: () => Promise.resolve().then(() => JSON.parse(body) as unknown)
          })
        })
      })
      req.once("socket", (socket: net.Socket) => {
        // a pooled connection is open already, and ours come secure; a plain-HTTP one may still be connecting
        if (!socket.connecting) sent = true
        else
          socket.once("connect", () => {
            sent = true
          })
      })
      req.once("error", failed)
      const body = init.body
      if (body === undefined || body === null || typeof body === "string") req.end(body ?? undefined)
      else pipeline(Readable.from(body), req).catch(failed)
    })
  const close = () =>
    Promise.resolve().then(() => {
      agent.destroy()
      plain.destroy()
    })
  return { fetch, close }
}

/**
 * Connects once without verification and returns the SHA-256 fingerprint of the certificate the server presents
 * (`AA:BB:…`), or `undefined` when nothing answers within `timeoutMs`. Used to tell the user which certificate was
 * refused.
 *
 * @since 0.1.0
 * @category utilities
 */
export const probeFingerprint = (
  host: string,
  port: number,
  servername?: string,
  timeoutMs = 3_000
): Effect.Effect<string | undefined> =>
  Effect.callback<string | undefined>((resume) => {
    let done = false
    const finish = (value: string | undefined) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed(value))
    }
    const sni = servername ?? (net.isIP(host) === 0 ? host : undefined)
    const socket = tls.connect({
      host,
      port,
      rejectUnauthorized: false,
      ...(sni !== undefined ? { servername: sni } : {})
    })
    const timer = setTimeout(() => finish(undefined), timeoutMs)
    socket.once("secureConnect", () => {
      const fp = socket.getPeerCertificate()?.fingerprint256
      finish(fp === undefined ? undefined : normalizeFingerprint(fp))
    })
    socket.once("error", () => finish(undefined))
    return Effect.sync(() => finish(undefined))
  })
