import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { isTransientReason, type ProxmoxError, type ProxmoxErrorReason } from "../ProxmoxError.js"
import type { PveRequest } from "../PveTransport.js"
import { TaskSummary } from "../Task.js"
import { decodeData } from "./decode.js"

/**
 * What a check found after a failure that may have reached PVE: the request did not happen and may be sent again
 * (`retry`), it happened and this is its outcome (`done`), or there is no telling (`fail`: the caller gets the error).
 *
 * @internal
 */
export type Verdict<A> = "retry" | "fail" | { readonly done: A }

/**
 * How far behind ours a node's clock may be: a task that started up to this many seconds before the request was sent
 * is still taken for that request's task. (PVE stamps a task with the node's clock; a cluster needs NTP anyway.)
 *
 * @internal
 */
export const CLOCK_SKEW_SECONDS = 10

/**
 * The failure happened before PVE did anything: pveproxy could not reach the daemon or node (595), or PVE refused
 * because the config file lock timed out (`can't lock file`). Sending the request again is safe.
 */
const notPerformed = (reason: ProxmoxErrorReason): boolean =>
  (reason._tag === "ProxyError" && reason.status === 595) || (reason._tag === "Locked" && reason.lock === "flock")

/** No answer in time: the request may be running at PVE. Not retried (see `isTransientReason`), but checked. */
const timedOut = (reason: ProxmoxErrorReason): boolean => reason._tag === "Unreachable" && reason.kind === "timeout"

/**
 * Runs a request that must not take effect twice (a create, a start, a download, a config change guarded by its
 * digest, a command in the guest). The attempt is sent once. After a failure that may have reached PVE (a reset or
 * lost answer, a timeout, a proxy 597–599), `check` is asked what became of it, given the time the attempt was sent:
 * `done` ends the call with that outcome, `retry` sends it again (only for a transient failure, at most `retries`
 * times, after a bounded exponential backoff), `fail` surfaces the attempt's error, as does a check that fails. A
 * failure PVE answered before doing anything (595, a config lock timeout) is sent again without a check; any other
 * failure is the caller's.
 *
 * @internal
 */
export const makeNonIdempotent =
  (retries: number) =>
  <A>(
    attempt: Effect.Effect<A, ProxmoxError>,
    check: (sentAtMs: number) => Effect.Effect<Verdict<A>, ProxmoxError>
  ): Effect.Effect<A, ProxmoxError> => {
    const loop = (left: number, delayMs: number): Effect.Effect<A, ProxmoxError> =>
      Clock.currentTimeMillis.pipe(
        Effect.flatMap((sentAtMs) =>
          attempt.pipe(
            Effect.catch((error) => {
              const transient = isTransientReason(error.reason)
              if (!transient && !timedOut(error.reason)) return Effect.fail(error)
              const again = () =>
                left > 0 && transient ? loop(left - 1, Math.min(delayMs * 2, 2_000)) : Effect.fail(error)
              return Effect.sleep(delayMs).pipe(
                Effect.andThen(
                  notPerformed(error.reason)
                    ? Effect.succeed<Verdict<A>>("retry")
                    : check(sentAtMs).pipe(Effect.catch(() => Effect.succeed<Verdict<A>>("fail")))
                ),
                Effect.flatMap((verdict) =>
                  verdict === "retry" ? again() : verdict === "fail" ? Effect.fail(error) : Effect.succeed(verdict.done)
                )
              )
            })
          )
        )
      )
    return loop(retries, 200)
  }

/**
 * The tasks one request may have started: on `node`, of one of `types` (`qmstart`, or `hastart` for an HA-managed
 * VM), with the id PVE gives them (the VMID, a download's file name).
 *
 * @internal
 */
export interface TaskMatch {
  readonly node: string
  readonly types: ReadonlyArray<string>
  readonly id: string
}

/**
 * The UPID of the task a request sent at `sentAtMs` started, if there is one: the newest task of `/nodes/{node}/tasks`
 * (running or finished) of that type and id started since (less `CLOCK_SKEW_SECONDS`). PVE creates the task (and its
 * log) before it answers with the UPID, so a request that reached PVE and got as far as its task has one here;
 * `undefined` means it did not get that far.
 *
 * @internal
 */
export const makeStartedTask =
  (call: (request: PveRequest) => Effect.Effect<unknown, ProxmoxError>) =>
  (match: TaskMatch, sentAtMs: number): Effect.Effect<string | undefined, ProxmoxError> => {
    const since = Math.floor(sentAtMs / 1000) - CLOCK_SKEW_SECONDS
    const vmid = /^[1-9]\d*$/.test(match.id) ? Number(match.id) : undefined
    return call({
      method: "GET",
      path: `/nodes/${match.node}/tasks`,
      params: {
        // `source` defaults to `archive`: finished tasks only
        source: "all",
        since,
        vmid,
        typefilter: match.types.length === 1 ? match.types[0] : undefined
      }
    }).pipe(
      Effect.flatMap(decodeData(Schema.Array(TaskSummary), "a task list")("nodeTasks", match.node)),
      Effect.map(
        (tasks) =>
          tasks
            .filter((t) => match.types.includes(t.type) && t.id === match.id && t.starttime >= since)
            .sort((a, b) => b.starttime - a.starttime)[0]?.upid
      )
    )
  }
