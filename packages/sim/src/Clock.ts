/**
 * Time source of the simulator. Simulated durations (task durations, boot, agent start, RRD interval) are multiplied
 * by `timeScale` before they are waited for: 1 = real time, 0.01 = a hundred times faster, 0 = instant.
 */
export class SimClock {
  /**
   * @param now the simulator's wall clock (epoch milliseconds). Default `Date.now`; tests that compare readings taken
   * a moment apart (uptime, ctime, ticket ages) pass a frozen or stepped clock so no second boundary can fall between.
   */
  constructor(
    readonly timeScale: number,
    private readonly nowFn: () => number = Date.now
  ) {}

  /** Wall-clock milliseconds (epoch), from the injected clock. */
  now(): number {
    return this.nowFn()
  }

  /** Real milliseconds that a simulated duration takes. */
  scaled(simMs: number): number {
    return Math.max(0, simMs * this.timeScale)
  }

  /** Sleep a simulated duration: its scaled real milliseconds (`sleepReal`). */
  sleep(simMs: number): Promise<void> {
    return this.sleepReal(this.scaled(simMs))
  }

  /**
   * Sleep real (unscaled) milliseconds, e.g. injected latency or the 401 delay: at least `ms` on the monotonic clock
   * (`performance.now()`). Node's timers count whole milliseconds of the event loop's clock and may fire up to one
   * early; such a wake sleeps the rest.
   */
  sleepReal(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve()
    const until = performance.now() + ms
    return new Promise((resolve) => {
      const wait = (left: number) => {
        const t = setTimeout(() => {
          const rest = until - performance.now()
          if (rest > 0) wait(rest)
          else resolve()
        }, left)
        t.unref?.()
      }
      wait(ms)
    })
  }
}
