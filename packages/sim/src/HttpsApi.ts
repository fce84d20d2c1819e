import type http from "node:http"
import https from "node:https"
import type net from "node:net"
import { gzipSync } from "node:zlib"
import type { ApiRouter, UploadFile } from "./ApiRouter.js"
import type { AuthUser } from "./Auth.js"
import type { SimContext } from "./internal/Context.js"
import { fromJson, type Params, parseForm } from "./internal/Params.js"
import { redactParams } from "./internal/Redact.js"
import { PveError, reasonPhrase } from "./PveError.js"
import type { NodeState } from "./SimState.js"

export interface ApiLogEntry {
  readonly node: string
  readonly method: string
  readonly path: string
  /** query and body parameters (secrets redacted) */
  readonly params: Params
  readonly status: number
  readonly durationMs: number
  readonly user: string | undefined
  /** the request was performed but its answer never sent: the connection was closed instead (`responseLost`) */
  readonly responseLost?: true
}

export interface TlsMaterial {
  readonly cert: string
  readonly key: string
}

const CT_JSON = "application/json;charset=UTF-8"

/** The pveproxy of one node: HTTPS on its API port. */
export class HttpsApi {
  private readonly tlsServer: https.Server
  private isListening = false
  private readonly sockets = new Set<net.Socket>()
  port = 0
  /** Called as a request begins to be held by a `requestHold` fault (a test control): the node, method and path. */
  onHold: ((e: { node: string; method: string; path: string }) => void) | undefined

  constructor(
    private readonly node: NodeState,
    private readonly ctx: SimContext,
    private readonly router: ApiRouter,
    private readonly trusted: TlsMaterial,
    private readonly untrusted: () => Promise<TlsMaterial>,
    private readonly onRequest: (e: ApiLogEntry) => void,
    private readonly isNodeUp: (node: string) => boolean
  ) {
    this.tlsServer = https.createServer({ cert: trusted.cert, key: trusted.key }, (req, res) => {
      void this.handle(req, res)
    })
    this.tlsServer.keepAliveTimeout = 5000
    this.tlsServer.on("connection", (socket: net.Socket) => {
      this.sockets.add(socket)
      socket.setNoDelay(true)
      socket.on("close", () => this.sockets.delete(socket))
    })
    this.tlsServer.on("tlsClientError", () => {})
  }

  async useUntrustedCert(on: boolean): Promise<void> {
    const m = on ? await this.untrusted() : this.trusted
    this.tlsServer.setSecureContext({ cert: m.cert, key: m.key })
  }

  listen(host: string, port: number): Promise<number> {
    const server = this.tlsServer
    return new Promise((resolve, reject) => {
      server.once("error", reject)
      server.listen(port, host, () => {
        server.off("error", reject)
        this.isListening = true
        const a = server.address()
        this.port = typeof a === "object" && a !== null ? a.port : port
        resolve(this.port)
      })
    })
  }

  /** Stop listening and drop every connection (apiDown fault or shutdown). */
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
    if (!this.isListening) return Promise.resolve()
    this.isListening = false
    return new Promise((resolve) => this.tlsServer.close(() => resolve()))
  }

  get listening(): boolean {
    return this.isListening
  }

  private send(
    res: http.ServerResponse,
    status: number,
    message: string,
    body: string | undefined,
    json: boolean,
    acceptGzip: boolean
  ): void {
    const headers: Record<string, string> = {
      Server: "pve-api-daemon/3.0",
      "Cache-Control": "max-age=0",
      Pragma: "no-cache",
      Expires: new Date(this.ctx.clock.now()).toUTCString(),
      Date: new Date(this.ctx.clock.now()).toUTCString()
    }
    if (status >= 400) headers.Connection = "close"
    let payload: Buffer = Buffer.from(body ?? "", "utf8")
    if (json) headers["Content-Type"] = CT_JSON
    if (acceptGzip && payload.length > 1024) {
      payload = gzipSync(payload)
      headers["Content-Encoding"] = "gzip"
    }
    headers["Content-Length"] = String(payload.length)
    res.writeHead(status, reasonPhrase(message), headers)
    res.end(payload)
  }

  /** An error from the HTTP layer's `error()` helper: no Content-Type; body = message from http-server 5.2.0. */
  private transportError(res: http.ServerResponse, status: number, message: string, gz: boolean): void {
    this.send(res, status, message, this.ctx.state.featuresOf(this.node.name).errorMessageKey ? message : "", false, gz)
  }

  private apiError(res: http.ServerResponse, e: PveError, gz: boolean, extjs: boolean): void {
    const body: Record<string, unknown> = { data: null }
    if (e.errors !== undefined) body.errors = e.errors
    if (this.ctx.state.featuresOf(this.node.name).errorMessageKey)
      body.message = e.message.endsWith("\n") ? e.message : `${e.message}\n`
    if (extjs) {
      body.success = 0
      if (body.message === undefined) body.message = e.message
      this.send(res, 200, "OK", JSON.stringify(body), true, gz)
      return
    }
    this.send(res, e.status, e.message, JSON.stringify(body), true, gz)
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now()
    const method = req.method ?? "GET"
    const url = new URL(req.url ?? "/", "https://localhost")
    let status = 200
    let user: string | undefined
    let logPath = url.pathname
    let logParams: Params = {}
    const gz = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""))
    const origEnd = res.end.bind(res)
    // responseLost: the request is handled in full, then the connection closes instead of the answer going out
    let lost = false
    res.end = ((...a: Array<unknown>) => {
      status = res.statusCode
      this.onRequest({
        node: this.node.name,
        method,
        path: logPath,
        params: logParams,
        status,
        durationMs: Math.round(performance.now() - started),
        user,
        ...(lost ? { responseLost: true as const } : {})
      })
      if (lost) {
        res.socket?.destroy()
        return res
      }
      return (origEnd as (...x: Array<unknown>) => http.ServerResponse)(...a)
    }) as typeof res.end
    try {
      const latency = this.ctx.faults.latency(this.node.name, "api")
      if (latency > 0) await this.ctx.clock.sleepReal(latency)
      if (!["GET", "POST", "PUT", "DELETE"].includes(method))
        return this.transportError(res, 501, `method '${method}' not available`, gz)
      // pve-http-server unescapes the whole path before it routes (`uri_unescape($request->uri->path())`): an encoded
      // `/` separates fragments like a plain one; pvesh and qm route their paths as given.
      const m = /^\/api2\/([^/]+)(\/.*)?$/.exec(decodeURIComponentSafe(url.pathname))
      if (!m) {
        const msg = `no such file '${url.pathname}'`
        return this.transportError(res, this.ctx.state.featuresOf(this.node.name).noSuchFile500 ? 500 : 501, msg, gz)
      }
      const format = m[1] ?? ""
      if (format !== "json" && format !== "extjs") return this.transportError(res, 501, "no such uri", gz)
      const extjs = format === "extjs"
      const path = (m[2] ?? "/").replace(/\/+$/, "") || "/"
      logPath = path
      // requestHold (a test control): the request waits, unanswered, until the fault is cleared
      let hold = this.ctx.faults.requestHold(this.node.name, method, path)
      if (hold !== undefined) this.onHold?.({ node: this.node.name, method, path })
      for (; hold !== undefined; hold = this.ctx.faults.requestHold(this.node.name, method, path))
        await this.ctx.faults.whenCleared(hold)
      lost = this.ctx.faults.responseLost(this.node.name, method, path)
      if (
        String(req.headers["transfer-encoding"] ?? "")
          .toLowerCase()
          .includes("chunked")
      )
        return this.transportError(res, 501, "chunked transfer encoding not supported", gz)
      const len = Number(req.headers["content-length"] ?? 0)
      if ((method === "GET" || method === "DELETE") && len > 0)
        return this.transportError(res, 501, `Unexpected content for method '${method}'`, gz)
      const isUpload = method === "POST" && /^\/nodes\/[^/]+\/storage\/[^/]+\/upload$/.test(path)
      const limit = isUpload ? 64 * 1024 * 1024 * 1024 : this.ctx.state.featuresOf(this.node.name).bodyLimit
      if (len > limit) return this.transportError(res, 501, "for data too large", gz)
      const body = await readBody(req)
      const params: Params = {}
      let upload: UploadFile | undefined
      if (method === "POST" || method === "PUT") {
        const ct = String(req.headers["content-type"] ?? "application/x-www-form-urlencoded")
        const base = ct.split(";")[0]?.trim().toLowerCase() ?? ""
        if (base === "application/x-www-form-urlencoded") parseForm(body.toString("utf8"), params)
        else if (base === "application/json") {
          try {
            fromJson(body.length === 0 ? {} : JSON.parse(body.toString("utf8")), params)
          } catch (e) {
            return this.apiError(res, new PveError(400, `malformed JSON string: ${(e as Error).message}`), gz, extjs)
          }
        } else if (base === "multipart/form-data" && isUpload) {
          const boundary = /boundary="?([^";]+)"?/.exec(ct)?.[1]
          if (boundary === undefined) return this.transportError(res, 500, "unable to parse multipart upload", gz)
          upload = parseMultipart(body, boundary, params)
        } else return this.transportError(res, 506, `upload 'Content-Type '${ct}' not implemented`, gz)
      }
      // query keys override body keys
      for (const k of new Set(url.searchParams.keys())) {
        const all = url.searchParams.getAll(k)
        params[k] = all.length > 1 ? all : (all[0] ?? "")
      }
      logParams = redactParams(params)
      // ---- auth
      let auth: AuthUser | undefined
      const authz = String(req.headers.authorization ?? "")
      const isToken = /^PVEAPIToken[= ]/.test(authz)
      if (this.router.isNoAuth(method, path)) {
        if (isToken)
          return this.apiError(
            res,
            new PveError(
              403,
              `Permission check failed (URI '${path}' not available with API token, need proper ticket.)`
            ),
            gz,
            extjs
          )
      } else {
        try {
          if (isToken) auth = this.ctx.auth.checkToken(authz)
          else {
            const ticket = cookieTicket(String(req.headers.cookie ?? "")) ?? /^PVEAuthCookie=(.+)$/.exec(authz)?.[1]
            if (ticket === undefined) throw new PveError(401, "No ticket")
            const userid = this.ctx.auth.verifyTicket(decodeURIComponentSafe(ticket))
            if (method !== "GET")
              this.ctx.auth.verifyCsrf(userid, req.headers.csrfpreventiontoken as string | undefined)
            auth = { authuser: userid, via: "ticket" }
          }
        } catch (e) {
          const pe = e instanceof PveError ? e : new PveError(401, "Authentication failed!")
          await this.ctx.clock.sleepReal(this.ctx.timings.unauthorizedDelayMs)
          // 401: empty body, no Content-Type, reason in the status line only
          return this.send(res, pe.status, pe.message, "", false, false)
        }
        user = auth.authuser
      }
      // ---- proxy to another node
      const target = /^\/nodes\/([^/]+)/.exec(path)?.[1]
      if (
        target !== undefined &&
        target !== this.node.name &&
        target !== "localhost" &&
        this.ctx.state.getNode(target)
      ) {
        if (upload !== undefined)
          return this.apiError(res, new PveError(500, "unable to proxy file uploads"), gz, extjs)
        const p596 = this.ctx.faults.proxy596(target)
        if (p596 !== undefined) {
          const msg = p596.replace(/^596 /, "")
          return this.transportError(res, 596, msg, gz)
        }
        if (this.ctx.faults.nodeFault("untrustedCert", target))
          return this.transportError(res, 596, "tls_process_server_certificate: certificate verify failed", gz)
        if (!this.isNodeUp(target))
          return this.transportError(
            res,
            595,
            "Errors during connection establishment, proxy handshake: Connection refused",
            gz
          )
      }
      const r = await this.router.handle({
        method,
        path,
        params,
        user: auth ?? { authuser: "", via: "ticket" },
        localNode: this.node.name,
        ...(upload !== undefined ? { upload } : {})
      })
      const out: Record<string, unknown> = { data: r.data === undefined ? null : r.data }
      if (r.total !== undefined) out.total = r.total
      if (r.changes !== undefined) out.changes = r.changes
      if (extjs) out.success = 1
      this.send(res, 200, "OK", JSON.stringify(out), true, gz)
    } catch (e) {
      const pe = e instanceof PveError ? e : new PveError(500, (e as Error).message ?? String(e))
      if (pe.status === 401) {
        await this.ctx.clock.sleepReal(this.ctx.timings.unauthorizedDelayMs)
        return this.send(res, 401, pe.message, "", false, false)
      }
      this.apiError(res, pe, gz, false)
    }
  }
}

const decodeURIComponentSafe = (s: string): string => {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

const cookieTicket = (cookie: string): string | undefined => {
  for (const part of cookie.split(/;\s*/)) {
    const eq = part.indexOf("=")
    if (eq > 0 && part.slice(0, eq).trim() === "PVEAuthCookie") return part.slice(eq + 1)
  }
  return undefined
}

const readBody = (req: http.IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => resolve(Buffer.concat(chunks)))
    req.on("error", reject)
  })

/** Parse multipart/form-data: text parts before the file part become params; the file part is returned. */
const parseMultipart = (body: Buffer, boundary: string, params: Params): UploadFile | undefined => {
  const delim = Buffer.from(`--${boundary}`)
  let pos = body.indexOf(delim)
  let file: UploadFile | undefined
  while (pos >= 0) {
    const start = pos + delim.length
    if (body.subarray(start, start + 2).toString() === "--") break
    const headerEnd = body.indexOf("\r\n\r\n", start)
    if (headerEnd < 0) break
    const headers = body.subarray(start + 2, headerEnd).toString("utf8")
    const next = body.indexOf(delim, headerEnd + 4)
    if (next < 0) break
    const content = body.subarray(headerEnd + 4, next - 2)
    const name = /name="([^"]*)"/.exec(headers)?.[1] ?? ""
    const filename = /filename="([^"]*)"/.exec(headers)?.[1]
    if (filename !== undefined) {
      // pve-http-server's file_upload_multipart: the file part's name becomes the `filename` parameter
      if (file === undefined) {
        file = { field: name, filename, data: Buffer.from(content) }
        params[name] = filename
      }
    } else if (file === undefined) params[name] = content.toString("utf8")
    pos = next
  }
  return file
}
