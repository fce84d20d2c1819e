import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { decodeHealthPolicy, HealthPolicy } from "../src/index.js"

const issueOf = (input: unknown) =>
  decodeHealthPolicy(input).pipe(
    Effect.flip,
    Effect.map((error) => [error._tag, error.reason._tag, error.reason._tag === "InvalidPolicy" && error.reason.issue])
  )

describe("HealthPolicy", () => {
  it("defaults follow the seed tool", () => {
    assert.deepStrictEqual(
      { ...HealthPolicy.defaults },
      {
        graceSeconds: 300,
        stopped: "recreate",
        paused: "recreate",
        prelaunch: "keep",
        suspended: "keep",
        hibernated: "resume",
        crashed: "degraded",
        agentNotResponding: "degraded"
      }
    )
  })

  it("fromPartial replaces only the given entries", () => {
    const policy = HealthPolicy.fromPartial({ stopped: "start", graceSeconds: 60 })
    assert.strictEqual(policy.stopped, "start")
    assert.strictEqual(policy.graceSeconds, 60)
    assert.strictEqual(policy.paused, "recreate")
    assert.strictEqual(policy.hibernated, "resume")
  })

  it("fromPartial rejects a negative grace period", () => {
    assert.throws(() => HealthPolicy.fromPartial({ graceSeconds: -1 }))
  })

  it.effect("decodes a partial policy from config and fills in the defaults", () =>
    Effect.gen(function* () {
      const policy = yield* decodeHealthPolicy({ stopped: "start", paused: "resume", prelaunch: "recreate" })
      assert.deepStrictEqual(
        { ...policy },
        {
          ...HealthPolicy.defaults,
          stopped: "start",
          paused: "resume",
          prelaunch: "recreate"
        }
      )
    })
  )

  it.effect("undefined and {} decode to the defaults", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual({ ...(yield* decodeHealthPolicy(undefined)) }, { ...HealthPolicy.defaults })
      assert.deepStrictEqual({ ...(yield* decodeHealthPolicy({})) }, { ...HealthPolicy.defaults })
    })
  )

  it.effect("rejects an action the state does not allow", () =>
    Effect.gen(function* () {
      const [tag, reason, issue] = yield* issueOf({ paused: "start" })
      assert.strictEqual(tag, "VmHealthError")
      assert.strictEqual(reason, "InvalidPolicy")
      assert.include(issue, "paused")
    })
  )

  it.effect("never allows recreate for hibernated VMs (they are under a lock)", () =>
    Effect.gen(function* () {
      const [, reason, issue] = yield* issueOf({ hibernated: "recreate" })
      assert.strictEqual(reason, "InvalidPolicy")
      assert.include(issue, "hibernated")
    })
  )

  it.effect("rejects unknown keys (typos)", () =>
    Effect.gen(function* () {
      const [, reason, issue] = yield* issueOf({ stoped: "start" })
      assert.strictEqual(reason, "InvalidPolicy")
      assert.include(issue, "stoped")
    })
  )

  it.effect("rejects a negative grace period and a non-object", () =>
    Effect.gen(function* () {
      const [, reason, issue] = yield* issueOf({ graceSeconds: -5 })
      assert.strictEqual(reason, "InvalidPolicy")
      assert.include(issue, "graceSeconds")
      const [, reason2] = yield* issueOf("recreate everything")
      assert.strictEqual(reason2, "InvalidPolicy")
    })
  )

  it.effect("the error message names the problem", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(decodeHealthPolicy({ crashed: "start" }))
      assert.match(error.message, /^invalid health policy: .*crashed/s)
    })
  )
})
