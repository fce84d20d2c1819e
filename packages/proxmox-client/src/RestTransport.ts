import { randomBytes } from "node:crypto"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { ProxmoxEngine } from "proxmox-api"
import { classifyRestError, classifyStatus, innermostCode, reasonForCode } from "./internal/classify.js"
import { makeResendGuard } from "./internal/resendGuard.js"
import { millis, type NodeEndpoint, ProxmoxClientConfig, type ProxmoxClientConfigShape } from "./ProxmoxClientConfig.js"
import { AuthRejected, ProxmoxError, TlsUntrusted, UnexpectedResponse } from "./ProxmoxError.js"
import { nodeOfPath, type PveParam, type PveRequest, PveTransport, type PveUploadRequest } from "./PveTransport.js"
import { makeTlsTrust, probeFingerprint, type TlsTrust } from "./TlsTrust.js"

const TOKEN_ID = /^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$/
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** @internal */
export interface RestEndpoint {
  readonly key: string
  readonly host: string
  readonly port: number
  readonly schema: "https" | "http"
  readonly engine: ProxmoxEngine
  /**
   * runs one `engine.doRequest`: an attempt that timed out, and a write whose attempt may have reached PVE, are not
   * sent again (`makeResendGuard`)
   */
  readonly once: <A>(request: () => Promise<A>) => Promise<A>
  readonly trust: TlsTrust
  readonly servername: string | undefined
  readonly insecure: boolean
}

/** Encodes each path segment for the URL (PVE percent-decodes them); keeps `:` and `@` readable for UPIDs. */
export const encodePath = (path: string): string =>
  path
    .split("/")
    .map((s) => encodeURIComponent(s).replace(/%3A/gi, ":").replace(/%40/g, "@"))
    .join("/")

const toWireParams = (params: PveRequest["params"]): Record<string, string | Array<string>> => {
  const out: Record<string, string | Array<string>> = {}
  if (params === undefined) return out
  for (const [k, v] of Object.entries(params) as Array<[string, PveParam]>) {
    if (v === undefined) continue
    if (Redacted.isRedacted(v)) out[k] = Redacted.value(v)
    else if (typeof v === "boolean") out[k] = v ? "1" : "0"
    else if (typeof v === "number") out[k] = String(v)
    else if (typeof v === "string") out[k] = v
    else out[k] = [...v]
  }
  return out
}

/**
 * Resolves the REST endpoint URL of a node: its own `apiUrl`, else the default node's (PVE proxies the request to the
 * node named in the path).
 *
 * @internal
 */
export const endpointFor = (config: ProxmoxClientConfigShape, node: string | undefined): NodeEndpoint | undefined => {
  const own = node === undefined ? undefined : config.nodes.find((n) => n.name === node && n.apiUrl !== undefined)
  if (own !== undefined) return own
  const def = config.defaultNode ?? config.nodes[0]?.name
  return config.nodes.find((n) => n.name === def && n.apiUrl !== undefined) ?? config.nodes.find((n) => n.apiUrl)
}

/**
 * A `PveTransport` over HTTPS through the `proxmox-api` client: one client (and one keep-alive undici `Agent` with
 * its own TLS trust) per node endpoint, created on first use and closed with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRestTransport: Effect.Effect<PveTransport["Service"], never, ProxmoxClientConfig | Scope.Scope> =
  Effect.gen(function* () {
    const config = yield* ProxmoxClientConfig
    const endpoints = new Map<string, RestEndpoint>()
    const warned = new Set<string>()
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => Promise.allSettled([...endpoints.values()].map((e) => e.trust.close())))
    )
    const requestTimeout = millis(config.timeouts?.request, 30_000)
    const authTimeout = millis(config.timeouts?.auth, 5_000)
    const connectTimeout = millis(config.timeouts?.connect, 5_000)

    const getEndpoint = (ep: NodeEndpoint): RestEndpoint | AuthRejected | UnexpectedResponse => {
      const existing = endpoints.get(ep.name)
      if (existing !== undefined) return existing
      let url: URL
      try {
        url = new URL(ep.apiUrl ?? "")
      } catch {
        return new UnexpectedResponse({ expected: "an https:// API URL", detail: `invalid apiUrl for node ${ep.name}` })
      }
      const schema: "http" | "https" = url.protocol === "http:" ? "http" : "https"
      const port = url.port === "" ? 8006 : Number(url.port)
      const tlsOptions = ep.tls ?? config.tls
      const trust = makeTlsTrust(tlsOptions, connectTimeout)
      const auth = config.auth
      let engine: ProxmoxEngine
      // proxmox-api re-sends a request whose fetch threw: not after a timeout, nor a write that may have reached PVE
      const once = makeResendGuard(trust.fetch)
      // proxmox-api types its `fetch` option as undici's; it reads only the part of a Response that TrustResponse has
      const fetch = once.fetch as unknown as NonNullable<ConstructorParameters<typeof ProxmoxEngine>[0]["fetch"]>
      const common = { host: url.hostname, port, schema, queryTimeout: requestTimeout, authTimeout, fetch }
      if (auth._tag === "Token") {
        if (!TOKEN_ID.test(auth.tokenId)) {
          return new AuthRejected({ detail: `token id ${auth.tokenId} is not of the form user@realm!name` })
        }
        if (!UUID.test(Redacted.value(auth.secret))) {
          return new AuthRejected({ detail: "the token secret is not a lowercase UUID (as PVE issues them)" })
        }
        engine = new ProxmoxEngine({ ...common, tokenID: auth.tokenId, tokenSecret: Redacted.value(auth.secret) })
      } else {
        engine = new ProxmoxEngine({ ...common, username: auth.username, password: Redacted.value(auth.password) })
      }
      const created: RestEndpoint = {
        key: ep.name,
        host: url.hostname,
        port,
        schema,
        engine,
        once: once.run,
        trust,
        servername: tlsOptions?.servername,
        insecure: tlsOptions?.insecure === true
      }
      endpoints.set(ep.name, created)
      return created
    }

    const call = (request: PveRequest): Effect.Effect<unknown, ProxmoxError> => {
      const node = nodeOfPath(request.path)
      const operation = `${request.method} ${request.path}`
      const fail = (reason: ProxmoxError["reason"], at: string | undefined) =>
        Effect.fail(new ProxmoxError({ operation, ...(at !== undefined ? { node: at } : {}), reason }))
      const ep = endpointFor(config, node ?? request.via)
      if (ep === undefined) {
        return fail(new UnexpectedResponse({ expected: "a node with an apiUrl", detail: "no REST endpoint" }), node)
      }
      const endpoint = getEndpoint(ep)
      const at = node ?? ep.name
      if (!("engine" in endpoint)) return fail(endpoint, at)
      const apiPath = `/api2/json${encodePath(request.path)}`
      const warn = endpoint.insecure
        ? Effect.suspend(() => {
            if (warned.has(endpoint.key)) return Effect.void
            warned.add(endpoint.key)
            try {
              config.onEvent?.({ _tag: "TlsInsecure", node: endpoint.key })
            } catch {
              // a throwing handler must not break the call
            }
            return Effect.logWarning(`proxmox: TLS verification is off for ${endpoint.key} (tls.insecure)`)
          })
        : Effect.void
      return warn.pipe(
        Effect.andThen(Effect.logDebug(`proxmox: rest ${request.method} ${request.path} via ${endpoint.key}`)),
        Effect.andThen(
          Effect.tryPromise({
            try: () =>
              endpoint.once(() =>
                endpoint.engine.doRequest(request.method, apiPath, request.path, toWireParams(request.params))
              ),
            catch: (e) => classifyRestError(e)
          }).pipe(
            Effect.catch((reason) =>
              reason._tag === "TlsUntrusted" && reason.fingerprint === undefined
                ? probeFingerprint(endpoint.host, endpoint.port, endpoint.servername).pipe(
                    Effect.flatMap((fingerprint) =>
                      fail(
                        fingerprint === undefined
                          ? reason
                          : new TlsUntrusted({ code: reason.code, detail: reason.detail, fingerprint }),
                        at
                      )
                    )
                  )
                : fail(reason, at)
            )
          )
        )
      )
    }
    /**
     * A multipart upload to the node's own endpoint, over the same TLS trust as every other request, with the API
     * token (a ticket login would need its CSRF token too). The body is streamed with its exact `Content-Length`.
     */
    const upload = (request: PveUploadRequest): Effect.Effect<unknown, ProxmoxError> => {
      const node = nodeOfPath(request.path)
      const operation = `POST ${request.path}`
      const fail = (reason: ProxmoxError["reason"], at: string | undefined) =>
        Effect.fail(new ProxmoxError({ operation, ...(at !== undefined ? { node: at } : {}), reason }))
      const ep = endpointFor(config, node)
      if (ep === undefined) {
        return fail(new UnexpectedResponse({ expected: "a node with an apiUrl", detail: "no REST endpoint" }), node)
      }
      const endpoint = getEndpoint(ep)
      const at = node ?? ep.name
      if (!("engine" in endpoint)) return fail(endpoint, at)
      const auth = config.auth
      if (auth._tag !== "Token") {
        return fail(
          new UnexpectedResponse({ expected: "an API token", detail: "uploads authenticate with an API token" }),
          at
        )
      }
      const boundary = `----homelab${randomBytes(12).toString("hex")}`
      const head = Buffer.from(
        [
          ...request.fields.map(
            ([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
          ),
          `--${boundary}\r\nContent-Disposition: form-data; name="filename"; filename="${request.file.name}"\r\n`,
          "Content-Type: application/octet-stream\r\n\r\n"
        ].join("")
      )
      const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
      const file = request.file
      async function* body(): AsyncGenerator<Uint8Array> {
        yield head
        let sent = 0
        for await (const chunk of file.open()) {
          sent += chunk.byteLength
          request.onProgress?.(sent)
          yield chunk
        }
        if (sent !== file.size) throw new Error(`the file changed while it was sent (${sent} of ${file.size} bytes)`)
        yield tail
      }
      const host = endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host
      const url = `${endpoint.schema}://${host}:${endpoint.port}/api2/json${encodePath(request.path)}`
      return Effect.logDebug(`proxmox: rest upload ${request.path} via ${endpoint.key} (${file.size} bytes)`).pipe(
        Effect.andThen(
          Effect.tryPromise({
            try: async (signal) => {
              const res = await endpoint.trust.fetch(url, {
                method: "POST",
                headers: {
                  Authorization: `PVEAPIToken=${auth.tokenId}=${Redacted.value(auth.secret)}`,
                  "Content-Type": `multipart/form-data; boundary=${boundary}`,
                  "Content-Length": String(head.length + file.size + tail.length)
                },
                body: body(),
                duplex: "half",
                signal
              })
              return { status: res.status, statusText: res.statusText, text: await res.text() }
            },
            catch: (e) => {
              const inner = innermostCode(e)
              return (
                (inner === undefined ? undefined : reasonForCode(inner.code, inner.message, "rest")) ??
                new UnexpectedResponse({ expected: "a PVE API answer", detail: String((e as Error)?.message ?? e) })
              )
            }
          })
        ),
        Effect.catch((reason) => fail(reason, at)),
        Effect.flatMap(({ status, statusText, text }) => {
          let parsed: unknown
          try {
            parsed = JSON.parse(text)
          } catch {
            parsed = undefined
          }
          if (status !== 200) {
            const errors = Predicate.isObject(parsed) ? (parsed as { errors?: unknown }).errors : undefined
            return fail(classifyStatus(status, statusText, errors), at)
          }
          if (!Predicate.isObject(parsed) || !("data" in parsed)) {
            return fail(new UnexpectedResponse({ expected: '{"data": …}', detail: text.slice(0, 200) }), at)
          }
          return Effect.succeed((parsed as { data: unknown }).data)
        })
      )
    }
    return PveTransport.of({ call, upload })
  })
