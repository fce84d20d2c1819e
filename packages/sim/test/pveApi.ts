import { readFileSync } from "node:fs"
import type { PveEndpointSchema } from "../src/index.js"

/** PVE's API schema of a version, the subset this project uses (test/fixtures/pve-api, AGPL test data). */
export const pveSchema = (version: "8.4" | "9.1"): Record<string, PveEndpointSchema> =>
  JSON.parse(readFileSync(new URL(`./fixtures/pve-api/pve-${version}.json`, import.meta.url), "utf8"))

/** The schema key of a concrete request path: `GET /nodes/pve/qemu/100/config` → `GET /nodes/{node}/qemu/{vmid}/config`. */
export const endpointOf = (
  schema: Record<string, PveEndpointSchema>,
  method: string,
  path: string
): { readonly key: string; readonly pathParams: Record<string, string> } | undefined => {
  const segs = path.split("/").filter((s) => s !== "")
  for (const key of Object.keys(schema)) {
    const [m, p] = key.split(" ") as [string, string]
    if (m !== method) continue
    const ks = p.split("/").filter((s) => s !== "")
    if (ks.length !== segs.length) continue
    const pathParams: Record<string, string> = {}
    let match = true
    for (const [i, k] of ks.entries()) {
      if (k.startsWith("{")) pathParams[k.slice(1, -1)] = decodeURIComponent(segs[i] as string)
      else if (k !== segs[i]) match = false
    }
    if (match) return { key, pathParams }
  }
  return undefined
}
