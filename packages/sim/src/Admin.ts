import http from "node:http"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import type { Fault } from "./Faults.js"
import { closeHttp, listenHttp } from "./internal/httpLifecycle.js"
import { FaultSpec } from "./Scenario.js"

export interface AdminOps {
  state(): unknown
  requests(): ReadonlyArray<unknown>
  clearRequests(): void
  addFaults(faults: ReadonlyArray<Fault>): Promise<void>
  clearFaults(filter?: { kind?: string; node?: string; vmid?: number }): Promise<void>
  setVmStatus(vmid: number, s: { status?: string; qmpstatus?: string; lock?: string | null }): void
  faults(): ReadonlyArray<Fault>
  mark(): number
  operations(since?: number): ReadonlyArray<unknown>
  criticalPath(since?: number): unknown
}

const decodeFaults = Schema.decodeUnknownResult(Schema.Array(FaultSpec))

/** Admin HTTP API (plain HTTP, loopback only). */
export class Admin {
  private readonly server: http.Server
  port = 0

  constructor(private readonly ops: AdminOps) {
    this.server = http.createServer((req, res) => {
      void this.handle(req, res)
    })
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost")
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body, null, 1)
      res.writeHead(status, { "Content-Type": "application/json", "Content-Length": String(Buffer.byteLength(text)) })
      res.end(text)
    }
    const chunks: Array<Buffer> = []
    for await (const c of req) chunks.push(c as Buffer)
    let body: unknown
    try {
      body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : undefined
    } catch (e) {
      return send(400, { error: `invalid JSON: ${(e as Error).message}` })
    }
    const key = `${req.method} ${url.pathname}`
    try {
      if (key === "GET /state") return send(200, this.ops.state())
      if (key === "GET /requests") return send(200, this.ops.requests())
      if (key === "DELETE /requests") {
        this.ops.clearRequests()
        return send(200, { ok: true })
      }
      if (key === "GET /faults") return send(200, this.ops.faults())
      if (key === "POST /mark") return send(200, { mark: this.ops.mark() })
      if (key === "GET /operations" || key === "GET /critical-path") {
        const raw = url.searchParams.get("since")
        const since = raw === null ? 0 : Number(raw)
        if (!Number.isInteger(since) || since < 0)
          return send(400, { error: `since: expected a mark (an integer >= 0), got '${raw}'` })
        return send(200, key === "GET /operations" ? this.ops.operations(since) : this.ops.criticalPath(since))
      }
      if (key === "POST /faults") {
        const list = Array.isArray(body)
          ? body
          : (body as { faults?: unknown })?.faults !== undefined
            ? (body as { faults: unknown }).faults
            : [body]
        const r = decodeFaults(list, { errors: "all" })
        if (Result.isFailure(r)) return send(400, { error: String(r.failure.message) })
        await this.ops.addFaults(r.success)
        return send(200, { ok: true, faults: this.ops.faults() })
      }
      if (key === "DELETE /faults") {
        const filter: { kind?: string; node?: string; vmid?: number } = {}
        const kind = url.searchParams.get("kind")
        const node = url.searchParams.get("node")
        const vmid = url.searchParams.get("vmid")
        if (kind !== null) filter.kind = kind
        if (node !== null) filter.node = node
        if (vmid !== null) filter.vmid = Number(vmid)
        await this.ops.clearFaults(Object.keys(filter).length > 0 ? filter : undefined)
        return send(200, { ok: true, faults: this.ops.faults() })
      }
      const vm = /^POST \/vms\/(\d+)\/status$/.exec(key)
      if (vm) {
        this.ops.setVmStatus(
          Number(vm[1]),
          (body ?? {}) as { status?: string; qmpstatus?: string; lock?: string | null }
        )
        return send(200, { ok: true })
      }
      return send(404, { error: `no route ${key}` })
    } catch (e) {
      return send(400, { error: (e as Error).message })
    }
  }

  async listen(host: string, port: number): Promise<number> {
    this.port = await listenHttp(this.server, host, port)
    return this.port
  }

  close(): Promise<void> {
    return closeHttp(this.server)
  }
}
