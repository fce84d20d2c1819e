import { assert, describe, it } from "@effect/vitest"
import { NodeFacts, PreflightOptions, preflight, VmRequest } from "@homelab/vm-health"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { ProxmoxApi } from "../src/index.js"
import { apiLayer, PVE_VERSIONS, withSim } from "./simulator.js"

const SECRET = "9c1e2d3f-4a5b-4c6d-8e7f-a1b2c3d4e5f6"
const WIDE = "1d2e3f4a-5b6c-4d7e-8f90-a1b2c3d4e5f7"
const GiB = 1024 ** 3

/** A privilege-separated reconciler token: VM, SDN and node rights of its own, its user's intersected. */
const acls = [
  { path: "/", ugid: "reconciler@pve", role: "PVEAdmin" },
  { path: "/vms", ugid: "reconciler@pve!narrow", role: "PVEVMAdmin" },
  { path: "/storage", ugid: "reconciler@pve!narrow", role: "PVEDatastoreUser" },
  { path: "/sdn", ugid: "reconciler@pve!narrow", role: "PVESDNUser" },
  { path: "/nodes", ugid: "reconciler@pve!narrow", role: "PVEAuditor" },
  { path: "/", ugid: "reconciler@pve!wide", role: "Administrator" }
]

const request = new VmRequest({
  vmid: 1000,
  cores: 2,
  memoryMiB: 2048,
  bridges: ["vmbr0"],
  diskStorage: "local-lvm",
  diskBytes: 8 * GiB,
  imageStorage: "local",
  imageContent: "import",
  downloadImage: true
})

for (const version of PVE_VERSIONS) {
  describe(`the token-privilege preflight against GET /access/permissions (PVE ${version})`, () => {
    it.live("finds what a privilege-separated token lacks, on its own ACLs intersected with its user's", () =>
      Effect.gen(function* () {
        const sim = yield* withSim({
          pveVersion: version,
          ipPool: "127.90.7.10",
          users: [
            {
              userid: "reconciler@pve",
              tokens: [
                { id: "narrow", secret: SECRET, privsep: true },
                { id: "wide", secret: WIDE, privsep: true }
              ]
            }
          ],
          acls
        })
        const findings = (tokenId: string, secret: string) =>
          Effect.gen(function* () {
            const layer = yield* apiLayer(sim, "rest", {
              auth: { _tag: "Token", tokenId, secret: Redacted.make(secret) }
            })
            return yield* report(tokenId).pipe(Effect.provide(layer))
          })
        const report = (tokenId: string) =>
          Effect.gen(function* () {
            const pve = yield* ProxmoxApi
            const permissions = yield* pve.permissions()
            const node = new NodeFacts({
              node: "pve",
              pveMajor: Number(version.split(".")[0]),
              cpus: 8,
              memoryBytes: 32 * GiB,
              bridges: [{ name: "vmbr0", active: true }],
              storages: [
                { name: "local", enabled: true, active: true, content: ["import", "iso"], availBytes: 80 * GiB },
                { name: "local-lvm", enabled: true, active: true, content: ["images"], availBytes: 200 * GiB }
              ],
              guests: []
            })
            const result = preflight(
              node,
              request,
              new PreflightOptions({ access: { _tag: "Permissions", principal: tokenId, permissions } })
            )
            return result.findings.map((f) => `${f.code} ${f.severity} ${f.object}`)
          })
        // the token's own roles lack AllocateTemplate (download) and Sys.AccessNetwork; its user (PVEAdmin) lacks
        // Sys.AccessNetwork and Sys.Modify, so even Administrator on the token cannot give them
        assert.deepStrictEqual(yield* findings("reconciler@pve!narrow", SECRET), [
          "privilege.missing error /storage/local",
          "privilege.missing error /nodes/pve"
        ])
        assert.deepStrictEqual(yield* findings("reconciler@pve!wide", WIDE), ["privilege.missing error /nodes/pve"])
      })
    )
  })
}
