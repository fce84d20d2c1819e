import type { Auth } from "../Auth.js"
import type { SimClock } from "../Clock.js"
import type { Faults } from "../Faults.js"
import type { GuestManager } from "../GuestManager.js"
import type { SimState } from "../SimState.js"
import type { TaskRunner } from "../Tasks.js"

export interface ResolvedTimings {
  readonly taskMs: number
  readonly createMs: number
  readonly startMs: number
  readonly stopMs: number
  readonly shutdownMs: number
  readonly destroyMs: number
  readonly downloadMs: number
  readonly resizeMs: number
  readonly bootMs: number
  readonly agentMs: number
  readonly rrdIntervalMs: number
  readonly unauthorizedDelayMs: number
}

/** Everything request handlers need. */
export interface SimContext {
  readonly state: SimState
  readonly auth: Auth
  readonly tasks: TaskRunner
  readonly faults: Faults
  readonly clock: SimClock
  readonly guests: GuestManager
  readonly timings: ResolvedTimings
  /** fetch a URL (download-url): resolves with a byte stream consumer */
  readonly download: (url: string, onChunk: (b: Buffer) => void) => Promise<void>
}
