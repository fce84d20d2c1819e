/**
 * Time source of the simulator. Simulated durations (task durations, boot, agent start, RRD interval) are multiplied
 * by `timeScale` before they are waited for: 1 = real time, 0.01 = a hundred times faster, 0 = instant.
 */
export class SimClock {
  constructor(readonly timeScale: number) {}

  /** Wall-clock milliseconds (epoch). */
  now(): number {
    return Date.now()
  }

  /** Real milliseconds that a simulated duration takes. */
  scaled(simMs: number): number {
    return Math.max(0, simMs * this.timeScale)
  }

  sleep(simMs: number): Promise<void> {
    const ms = this.scaled(simMs)
    if (ms <= 0) return Promise.resolve()
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms)
      t.unref?.()
    })
  }

  /** Sleep real (unscaled) milliseconds, e.g. injected latency or the 401 delay. */
  sleepReal(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve()
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms)
      t.unref?.()
    })
  }
}
