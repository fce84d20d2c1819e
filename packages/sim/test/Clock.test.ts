import { afterEach, assert, describe, it, vi } from "vitest"
import { SimClock } from "../src/Clock.js"

describe("SimClock", () => {
  afterEach(() => {
    vi.unstubAllGlobals()
  })

  it("scales simulated durations; 0 is instant", () => {
    assert.deepStrictEqual([new SimClock(0.01).scaled(3000), new SimClock(0).scaled(3000)], [30, 0])
  })

  it("a sleep lasts at least its time on the monotonic clock, also when a timer fires early", async () => {
    // Node's timers count whole milliseconds of the event loop's clock: one may fire up to 1 ms before its delay has
    // passed on performance.now(). Here every timer fires a whole 5 ms early.
    const early = setTimeout
    vi.stubGlobal("setTimeout", (fn: () => void, ms: number) => early(fn, Math.max(0, ms - 5)))
    const clock = new SimClock(0.5)
    for (const [sleep, ms] of [
      [() => clock.sleepReal(20), 20],
      [() => clock.sleep(40), 20]
    ] as const) {
      const t0 = performance.now()
      await sleep()
      assert.isAtLeast(performance.now() - t0, ms)
    }
  })
})
