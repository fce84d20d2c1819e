import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { startSim } from "../src/index.js"

describe("scenario VM uptime", () => {
  it.live("a running VM declared with an uptime reports it in status/current and cluster/resources", () =>
    Effect.gen(function* () {
      const sim = yield* startSim({
        nodes: [{ name: "pve", address: "127.0.0.1", apiPort: 0, sshPort: 0 }],
        vms: [
          { vmid: 100, node: "pve", name: "old", status: "running", qmpstatus: "paused", uptime: 3 * 86_400 },
          { vmid: 101, node: "pve", name: "new", status: "running" }
        ],
        timings: { unauthorizedDelayMs: 0 },
        timeScale: 0.01
      }).pipe(Effect.retry({ times: 2 }))
      const vms = sim.state().vms
      const token = `PVEAPIToken=${sim.info.auth.tokenId}=${sim.info.auth.tokenSecret}`
      const resources = yield* Effect.promise(async () => {
        const { Agent, fetch } = await import("undici")
        const dispatcher = new Agent({ connect: { ca: sim.info.ca } })
        const res = await fetch(`${sim.info.nodes[0]?.api}/api2/json/cluster/resources?type=vm`, {
          headers: { authorization: token },
          dispatcher
        })
        return ((await res.json()) as { data: Array<{ vmid: number; uptime: number; status: string }> }).data
      })
      const old = resources.find((r) => r.vmid === 100)
      const fresh = resources.find((r) => r.vmid === 101)
      assert.isAtLeast(old?.uptime ?? 0, 3 * 86_400)
      assert.strictEqual(old?.status, "paused")
      assert.isBelow(fresh?.uptime ?? 99, 5)
      assert.strictEqual(vms.length, 2)
    })
  )
})
