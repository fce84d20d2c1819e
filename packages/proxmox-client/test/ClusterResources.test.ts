import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import { ProxmoxApi, type ProxmoxApiShape, type ProxmoxError } from "../src/index.js"
import { apiLayer, frozenClock, withSim } from "./simulator.js"

const run = <A>(layer: Layer.Layer<ProxmoxApi>, f: (pve: ProxmoxApiShape) => Effect.Effect<A, ProxmoxError>) =>
  Effect.gen(function* () {
    return yield* f(yield* ProxmoxApi)
  }).pipe(Effect.provide(layer))

describe("clusterResources", () => {
  it.live("one request returns guests, nodes with capacity and storages per node; identical over REST and SSH", () =>
    Effect.gen(function* () {
      // uptimes are compared across the two transports: a frozen clock, so no second boundary falls between the reads
      const sim = yield* withSim({}, frozenClock())
      const rest = yield* apiLayer(sim, "rest")
      const ssh = yield* apiLayer(sim, "ssh")
      sim.clearRequests()
      const r = yield* run(rest, (pve) => pve.clusterResources)
      assert.strictEqual(sim.requests().filter((q) => q.transport === "api").length, 1)
      const s = yield* run(ssh, (pve) => pve.clusterResources)
      assert.deepStrictEqual(r, s)
      assert.deepStrictEqual(
        r.vms.map((v) => v.vmid),
        [100, 101, 102]
      )
      assert.deepStrictEqual(
        r.nodes.map((n) => [n.node, n.status, n.maxcpu]),
        [
          ["pve", "online", 8],
          ["pve2", "online", 4]
        ]
      )
      const local = r.storages.find((st) => st.node === "pve" && st.storage === "local")
      assert.deepStrictEqual(local?.content, ["backup", "import", "iso", "snippets", "vztmpl"])
      assert.strictEqual(local?.shared, false)
      assert.isTrue((local?.maxdisk ?? 0) > 0)
    })
  )
})

describe("resumeVm", () => {
  it.live("continues a paused VM over REST and over SSH (status stays running, qmpstatus back to running)", () =>
    Effect.gen(function* () {
      const sim = yield* withSim()
      for (const transport of ["rest", "ssh"] as const) {
        sim.setVmStatus(100, { status: "running", qmpstatus: "paused" })
        const layer = yield* apiLayer(sim, transport)
        const before = yield* run(layer, (pve) => pve.vmStatus("pve", 100))
        assert.strictEqual(before.qmpstatus, "paused")
        const result = yield* run(layer, (pve) => pve.resumeVm("pve", 100))
        assert.strictEqual(result.exitstatus, "OK")
        const after = yield* run(layer, (pve) => pve.vmStatus("pve", 100))
        assert.deepStrictEqual([after.status, after.qmpstatus], ["running", "running"])
      }
    })
  )
})
