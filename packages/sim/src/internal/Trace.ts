import { AsyncLocalStorage } from "node:async_hooks"
import type { Params } from "./Params.js"

/** One API handler call made on behalf of an SSH command (`pvesh`, `qm`). */
export interface ApiCall {
  readonly method: string
  /** path below /api2/json */
  readonly path: string
  /** the parameters as passed (secrets redacted) */
  readonly params: Params
  /** 200, or the status of the error the handler failed with (400: parameter verification) */
  status?: number
}

/** The API calls of the SSH command being run (pvesh and qm run API handlers in-process). */
export const apiCallTrace = new AsyncLocalStorage<Array<ApiCall>>()
