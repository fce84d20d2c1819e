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
  readonly moveDiskMs: number
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
  /**
   * fetch a URL (download-url), each chunk to `onChunk`; resolves with the SHA-256 the server stated for the bytes
   * (the simulator's image origin does), if any
   */
  readonly download: (url: string, onChunk: (b: Buffer, stated: StatedDigest) => void) => Promise<StatedDigest>
}

/** A digest the server of a download stated for the bytes it sent (`X-Sim-Content-Sha256`). */
export interface StatedDigest {
  readonly sha256?: string | undefined
}
