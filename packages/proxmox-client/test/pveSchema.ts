import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { checkParameters, type PveEndpointSchema, type PveErrors, type SimHandle } from "@homelab/sim"

/**
 * PVE's API schema of a version, the subset this project uses: test data vendored in `@homelab/sim`'s
 * `test/fixtures/pve-api` (AGPL-3.0-or-later, pve-docs; never in a published package).
 */
export const pveSchema = (version: "8.4" | "9.1"): Record<string, PveEndpointSchema> => {
  const simDir = dirname(createRequire(import.meta.url).resolve("@homelab/sim/package.json"))
  return JSON.parse(readFileSync(join(simDir, "test", "fixtures", "pve-api", `pve-${version}.json`), "utf8"))
}

/** pve-storage's `{storage}/content` takes the rest of the path as the volume id (its `fragmentDelimiter`). */
const restOfPath = (pattern: string) => pattern.endsWith("/content/{volume}")

const endpointOf = (schema: Record<string, PveEndpointSchema>, method: string, path: string) => {
  const all = path.split("/").filter((s) => s !== "")
  for (const key of Object.keys(schema)) {
    const [m, p] = key.split(" ") as [string, string]
    const ks = p.split("/").filter((s) => s !== "")
    const segs =
      restOfPath(p) && all.length > ks.length
        ? [...all.slice(0, ks.length - 1), all.slice(ks.length - 1).join("/")]
        : all
    if (m !== method || ks.length !== segs.length) continue
    const pathParams: Record<string, string> = {}
    let match = true
    for (const [i, k] of ks.entries()) {
      const seg = segs[i] as string
      if (k.startsWith("{")) pathParams[k.slice(1, -1)] = decodeURIComponent(seg)
      else if (k !== seg) match = false
    }
    if (match) return { key, pathParams }
  }
  return undefined
}

/** A request the client sent (REST, or an API call of a `pvesh`/`qm` command over SSH). */
export interface SentRequest {
  readonly transport: "api" | "ssh"
  readonly method: string
  readonly path: string
  readonly params: Readonly<Record<string, unknown>>
  /** the status the simulator answered (SSH: the API call's) */
  readonly status: number | undefined
}

/** Every API request in the simulator's log: REST requests and the API calls of SSH commands. */
export const sentRequests = (sim: SimHandle): Array<SentRequest> =>
  sim.requests().flatMap((q): Array<SentRequest> => {
    if (q.transport === "api" && q.method !== undefined && q.path !== undefined)
      return [{ transport: "api", method: q.method, path: q.path, params: q.params ?? {}, status: q.status }]
    if (q.transport === "ssh")
      return (q.calls ?? []).map((c) => ({
        transport: "ssh" as const,
        method: c.method,
        path: c.path,
        params: c.params,
        status: c.status
      }))
    return []
  })

/** The requests that do not pass a schema: `METHOD path (transport)` → errors (unknown endpoints included). */
export const schemaViolations = (
  schema: Record<string, PveEndpointSchema>,
  requests: ReadonlyArray<SentRequest>
): Record<string, PveErrors> => {
  const out: Record<string, PveErrors> = {}
  for (const r of requests) {
    const label = `${r.method} ${r.path} (${r.transport})`
    const e = endpointOf(schema, r.method, r.path)
    if (e === undefined) {
      out[label] = { _endpoint: "not in the schema" }
      continue
    }
    const errors = checkParameters(schema[e.key] ?? {}, { ...r.params, ...e.pathParams })
    if (Object.keys(errors).length > 0) out[label] = errors
  }
  return out
}
