import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { applyStream } from "../src/applyStream.js"
import { desiredFromConfig, healthPolicyFromConfig } from "../src/desiredFromConfig.js"
import { observe } from "../src/Observe.js"
import { plan } from "../src/Plan.js"
import { clientLayer, labScenario, makeLab, startLab } from "./lab.js"

describe("applyStream", () => {
  it.live(
    "streams every action's start and result in order per node, then ApplyFinished with the outcomes",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(labScenario(["pve", "still-fawn"], { ipPool: "127.88.0.10" }))
        const lab = yield* makeLab(sim)
        const desired = desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys })
        const events = yield* Effect.gen(function* () {
          const p = plan(desired, yield* observe(desired), { policy: healthPolicyFromConfig(lab.config) })
          return yield* Stream.runCollect(applyStream(p.actions, desired, { ipTimeout: "20 seconds" }))
        }).pipe(Effect.provide(clientLayer(lab)))
        const tags = events.map((e) => e._tag)
        assert.strictEqual(tags.at(-1), "ApplyFinished")
        assert.strictEqual(tags.filter((t) => t === "ActionStarted").length, 4)
        assert.strictEqual(tags.filter((t) => t === "ActionDone").length, 4)
        for (const node of ["pve", "still-fawn"]) {
          const mine = events.filter((e) => ("node" in e ? e.node : "action" in e ? e.action.node : "") === node)
          assert.deepStrictEqual(
            mine.filter((e) => e._tag === "ActionStarted" || e._tag === "ActionDone").map((e) => e._tag),
            ["ActionStarted", "ActionDone", "ActionStarted", "ActionDone"]
          )
        }
        const finished = events.at(-1)
        assert.deepStrictEqual(
          finished?._tag === "ApplyFinished" ? finished.result.outcomes.map((o) => o.status) : [],
          ["done", "done", "done", "done"]
        )
      }),
    60_000
  )
})
