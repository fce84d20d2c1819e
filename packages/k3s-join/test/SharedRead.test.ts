import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/testing/TestClock"
import { makeSharedRead } from "../src/SharedRead.js"

/** A read that counts its runs and answers with its run number. */
const counted = () => {
  let runs = 0
  return {
    runs: () => runs,
    read: Effect.sync(() => {
      runs += 1
      return runs
    })
  }
}

describe("makeSharedRead", () => {
  it.effect("one poller alone reads anew at every poll: each poll's data is newer than the poll before", () =>
    Effect.gen(function* () {
      const shared = makeSharedRead<number, never>(yield* Effect.scope)
      const source = counted()
      let after = (yield* Clock.currentTimeMillis) - 1
      const seen: Array<number> = []
      for (let i = 0; i < 3; i++) {
        const got = yield* shared("server", after, source.read)
        seen.push(got.value)
        after = got.startedAt
        yield* TestClock.adjust("100 millis")
      }
      assert.deepStrictEqual(seen, [1, 2, 3])
      // the clock standing still: the poller's own read is not newer than itself, so it reads again
      const first = yield* shared("still", 0, source.read)
      const second = yield* shared("still", first.startedAt, source.read)
      assert.notStrictEqual(second.value, first.value)
    })
  )

  it.effect("pollers share the newest read that started after their previous one; other keys do not", () =>
    Effect.gen(function* () {
      const shared = makeSharedRead<number, never>(yield* Effect.scope)
      const source = counted()
      const start = (yield* Clock.currentTimeMillis) - 1
      const a1 = yield* shared("server", start, source.read)
      yield* TestClock.adjust("10 millis")
      const b1 = yield* shared("server", start, source.read) // b has nothing yet: a's read is newer than that
      assert.strictEqual(b1.value, a1.value)
      assert.strictEqual(source.runs(), 1)
      yield* TestClock.adjust("100 millis")
      const a2 = yield* shared("server", a1.startedAt, source.read) // nothing newer than a's own: a new read
      const b2 = yield* shared("server", b1.startedAt, source.read) // a's second read is newer than b's data
      assert.deepStrictEqual([a2.value, b2.value, source.runs()], [2, 2, 2])
      const other = yield* shared("other server", start, source.read)
      assert.strictEqual(other.value, 3)
    })
  )

  it.effect(
    "a read in flight answers every poller waiting on it, also when the one that started it stops waiting",
    () =>
      Effect.gen(function* () {
        const shared = makeSharedRead<string, never>(yield* Effect.scope)
        const gate = yield* Deferred.make<void>()
        const started = yield* Deferred.make<void>()
        let runs = 0
        const read = Effect.gen(function* () {
          runs += 1
          yield* Deferred.succeed(started, undefined)
          yield* Deferred.await(gate)
          return "nodes"
        })
        const first = yield* Effect.forkChild(shared("server", -1, read))
        yield* Deferred.await(started)
        const second = yield* Effect.forkChild(shared("server", -1, read))
        yield* Fiber.interrupt(first)
        yield* Deferred.succeed(gate, undefined)
        const got = yield* Fiber.join(second)
        assert.strictEqual(got.value, "nodes")
        assert.strictEqual(runs, 1)
      })
  )

  it.effect("a failed read fails its pollers and is nobody's answer afterwards", () =>
    Effect.gen(function* () {
      const shared = makeSharedRead<string, string>(yield* Effect.scope)
      let runs = 0
      const read = Effect.suspend(() => {
        runs += 1
        return runs === 1 ? Effect.fail("connection reset") : Effect.succeed("nodes")
      })
      const failed = yield* Effect.flip(shared("server", -1, read))
      assert.strictEqual(failed, "connection reset")
      const got = yield* shared("server", -1, read)
      assert.deepStrictEqual([got.value, runs], ["nodes", 2])
    })
  )
})
