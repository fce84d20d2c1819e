import * as net from "node:net"
import * as tls from "node:tls"
import { Effect } from "effect"
import { Agent, buildConnector, fetch as undiciFetch } from "undici"
import type { TlsOptions } from "./ProxmoxClientConfig.js"

/**
 * The `fetch` function handed to proxmox-api (its `fetch` option) plus the undici dispatcher behind it.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsTrust {
  readonly fetch: typeof undiciFetch
  readonly agent: Agent
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

/**
 * Builds a per-client undici `Agent` (keep-alive) whose TLS trust is exactly what `options` say: system CAs by
 * default, only `ca`, only the leaf whose SHA-256 fingerprint is `fingerprint`, or anything (`insecure`). Never
 * touches global TLS settings (`NODE_TLS_REJECT_UNAUTHORIZED`, the global dispatcher).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeTlsTrust = (options: TlsOptions | undefined, connectTimeoutMs = 10_000): TlsTrust => {
  const servername = options?.servername
  const common = {
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 60_000,
    connections: 8
  }
  let agent: Agent
  if (options?.fingerprint !== undefined) {
    const pin = normalizeFingerprint(options.fingerprint)
    const base = buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0, timeout: connectTimeoutMs })
    agent = new Agent({
      ...common,
      connect: (opts, callback) => {
        base(servername === undefined ? opts : { ...opts, servername }, (err, socket) => {
          if (err !== null) return callback(err, null)
          const seen = (socket as tls.TLSSocket).getPeerCertificate?.()?.fingerprint256
          if (seen === undefined || normalizeFingerprint(seen) !== pin) {
            socket.destroy()
            const error = new Error(
              `certificate fingerprint ${seen === undefined ? "(none)" : normalizeFingerprint(seen)} does not match the pinned ${pin}`
            ) as Error & { code: string; fingerprint?: string }
            error.code = "ERR_TLS_PIN_MISMATCH"
            if (seen !== undefined) error.fingerprint = normalizeFingerprint(seen)
            return callback(error, null)
          }
          return callback(null, socket)
        })
      }
    })
  } else {
    agent = new Agent({
      ...common,
      connect: {
        timeout: connectTimeoutMs,
        ...(options?.ca !== undefined ? { ca: options.ca, secureContext: secureContextFor(options.ca) } : {}),
        ...(options?.insecure === true ? { rejectUnauthorized: false } : {}),
        ...(servername !== undefined ? { servername } : {})
      }
    })
  }
  const fetch = ((input: Parameters<typeof undiciFetch>[0], init?: Parameters<typeof undiciFetch>[1]) =>
    undiciFetch(input, { ...init, dispatcher: agent })) as typeof undiciFetch
  return { fetch, agent }
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
