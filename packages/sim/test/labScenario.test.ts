import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { labScenario, startSim } from "../src/index.js"

describe("labScenario", () => {
  it.live("starts a uniform lab whose nodes answer with the declared capacity and storages", () =>
    Effect.gen(function* () {
      const sim = yield* startSim(labScenario(["a", "b"], { cpus: 4, ipPool: "127.85.0.10", timeScale: 0.01 })).pipe(
        Effect.retry({ times: 2 })
      )
      const nodes = sim.state().nodes
      assert.deepStrictEqual(
        nodes.map((n) => n.name),
        ["a", "b"]
      )
      const storages = ((nodes[0]?.storages ?? []) as Array<{ storage: string; content: string }>).map((s) => [
        s.storage,
        s.content
      ])
      assert.deepStrictEqual(storages, [
        ["local", "backup,import,iso,vztmpl"],
        ["local-lvm", "images,rootdir"]
      ])
      assert.strictEqual(sim.info.imageOrigin?.files[0]?.path, "/noble/noble-server-cloudimg-amd64.img")
    })
  )
})
