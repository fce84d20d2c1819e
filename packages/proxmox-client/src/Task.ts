import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { PveInt } from "./internal/decode.js"
import { ProxmoxError, TaskFailed, UnexpectedResponse } from "./ProxmoxError.js"
import type { PveRequest } from "./PveTransport.js"

const UPID_RE =
  /^UPID:([a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$/

/**
 * A task id as PVE prints it: `UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:`.
 *
 * @since 0.1.0
 * @category models
 */
export const Upid = Schema.String.check(Schema.isPattern(UPID_RE, { expected: "a UPID (UPID:node:…:)" })).pipe(
  Schema.brand("Upid")
)

/**
 * @since 0.1.0
 * @category models
 */
export type Upid = typeof Upid.Type

/**
 * The parts of a UPID.
 *
 * @since 0.1.0
 * @category models
 */
export interface UpidParts {
  readonly node: string
  readonly pid: number
  readonly starttime: number
  readonly type: string
  readonly id: string
  readonly user: string
}

/**
 * Parses a UPID, or `undefined` when the text is not one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parseUpid = (upid: string): UpidParts | undefined => {
  const m = UPID_RE.exec(upid)
  if (m === null) return undefined
  return {
    node: m[1] ?? "",
    pid: Number.parseInt(m[2] ?? "0", 16),
    starttime: Number.parseInt(m[4] ?? "0", 16),
    type: m[5] ?? "",
    id: m[6] ?? "",
    user: m[7] ?? ""
  }
}

/**
 * `GET /nodes/{node}/tasks/{upid}/status`.
 *
 * @since 0.1.0
 * @category models
 */
export const TaskStatus = Schema.Struct({
  upid: Schema.optional(Schema.String),
  node: Schema.String,
  status: Schema.Literals(["running", "stopped"]),
  exitstatus: Schema.optional(Schema.String),
  type: Schema.String,
  id: Schema.optional(Schema.String),
  user: Schema.String,
  tokenid: Schema.optional(Schema.String),
  starttime: Schema.optional(PveInt),
  pid: Schema.optional(PveInt)
})

/**
 * @since 0.1.0
 * @category models
 */
export type TaskStatus = typeof TaskStatus.Type

/**
 * One entry of `GET /nodes/{node}/tasks`: `status` is `RUNNING` while the task runs, else its exit status.
 *
 * @since 0.2.0
 * @category models
 */
export const TaskSummary = Schema.Struct({
  upid: Schema.String,
  node: Schema.String,
  type: Schema.String,
  id: Schema.optional(Schema.String),
  user: Schema.String,
  tokenid: Schema.optional(Schema.String),
  starttime: PveInt,
  endtime: Schema.optional(PveInt),
  status: Schema.optional(Schema.String)
})

/**
 * @since 0.2.0
 * @category models
 */
export type TaskSummary = typeof TaskSummary.Type

/**
 * A task that finished successfully: `warnings` is N for `WARNINGS: N` (which PVE counts as success), else 0.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskResult {
  readonly upid: string
  readonly node: string
  readonly exitstatus: string
  readonly warnings: number
}

/**
 * Is this exit status a success (`OK` or `WARNINGS: N`)? Returns the warning count, or `undefined` for a failure.
 *
 * @since 0.1.0
 * @category utilities
 */
export const taskWarnings = (exitstatus: string): number | undefined => {
  if (exitstatus === "OK") return 0
  const m = /^WARNINGS: (\d+)$/.exec(exitstatus)
  return m === null ? undefined : Number(m[1])
}

/**
 * Options of `waitForTask`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WaitOptions {
  /** Give up after this long (the task keeps running in PVE). Default 10 minutes. */
  readonly timeout?: Duration.Input | undefined
  /** Number of log lines kept in `TaskFailed.log`. Default 20. */
  readonly logTail?: number | undefined
  /**
   * Called while the task runs, every `progressInterval` (first after one interval): what runs, for how long, and
   * the limit. For progress displays; a wait that ends sooner reports nothing.
   *
   * @since 0.2.0
   */
  readonly onProgress?: ((progress: TaskProgress) => Effect.Effect<void>) | undefined
  /** How often `onProgress` is called. Default 5 seconds. @since 0.2.0 */
  readonly progressInterval?: Duration.Input | undefined
}

/**
 * Progress of a task wait (see `WaitOptions.onProgress`).
 *
 * @since 0.2.0
 * @category models
 */
export interface TaskProgress {
  readonly upid: string
  readonly node: string
  /** The task type (`qmcreate`, `download`, `qmstart`, …) and its id (usually the VMID). */
  readonly type: string
  readonly id: string
  readonly elapsedMs: number
  readonly limitMs: number
}

/** @internal each poll interval is this many times the previous one (`taskPollSchedule`) … */
export const POLL_GROWTH = 1.25
/** @internal … up to this many milliseconds */
export const POLL_CAP_MS = 1_000

/**
 * How waits on PVE poll (a task's status, the guest agent's IP; PVE pushes neither): the first poll 100 ms after the
 * start (`POLL_FIRST`), then each interval 1.25 × the previous one, capped at 1 s. A short task is seen done within a
 * quarter of its duration, a long one within a second, and a wait costs at most one request per second once it runs
 * longer than a few seconds.
 *
 * @since 0.1.0
 * @category utilities
 */
export const taskPollSchedule = Schedule.min([
  Schedule.exponential("100 millis", POLL_GROWTH),
  Schedule.spaced(Duration.millis(POLL_CAP_MS))
])

/**
 * The delay before the first poll of a wait (see `taskPollSchedule`).
 *
 * @since 0.3.0
 * @category utilities
 */
export const POLL_FIRST = Duration.millis(100)

const LogLines = Schema.Array(Schema.Struct({ n: PveInt, t: Schema.String }))
const decodeStatus = Schema.decodeUnknownEffect(TaskStatus)
const decodeLog = Schema.decodeUnknownEffect(LogLines)

/** @internal */
export const taskPath = (upid: string, node?: string) => `/nodes/${node ?? parseUpid(upid)?.node ?? ""}/tasks/${upid}`

/**
 * The last `lines` lines of a task log (`GET …/tasks/{upid}/log`), without empty lines.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeTaskLogTail =
  (call: (r: PveRequest) => Effect.Effect<unknown, ProxmoxError>) =>
  (upid: string, lines = 20): Effect.Effect<ReadonlyArray<string>, ProxmoxError> =>
    call({ method: "GET", path: `${taskPath(upid)}/log`, params: { start: 0, limit: 0 } }).pipe(
      Effect.flatMap((data) =>
        decodeLog(data).pipe(
          Effect.mapError(
            (issue) =>
              new ProxmoxError({
                operation: "taskLog",
                reason: new UnexpectedResponse({ expected: "task log lines", detail: issue.message })
              })
          )
        )
      ),
      Effect.map((entries) =>
        entries
          .map((e) => e.t)
          .filter((t) => t.trim() !== "" && t !== "no content")
          .slice(-lines)
      )
    )

/**
 * Waits until a task has stopped. Succeeds for `OK` and `WARNINGS: N`; fails with `TaskFailed` (exit status + log
 * tail) otherwise, or when `timeout` passes first.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWaitForTask = (call: (r: PveRequest) => Effect.Effect<unknown, ProxmoxError>) => {
  const logTail = makeTaskLogTail(call)
  return Effect.fnUntraced(function* (upid: string, options?: WaitOptions) {
    const parts = parseUpid(upid)
    if (parts === undefined) {
      return yield* new ProxmoxError({
        operation: "waitForTask",
        reason: new UnexpectedResponse({ expected: "a UPID", detail: JSON.stringify(upid) })
      })
    }
    const getStatus = call({ method: "GET", path: `${taskPath(upid)}/status` }).pipe(
      Effect.flatMap((data) =>
        decodeStatus(data).pipe(
          Effect.mapError(
            (issue) =>
              new ProxmoxError({
                operation: "taskStatus",
                node: parts.node,
                reason: new UnexpectedResponse({ expected: "a task status", detail: issue.message })
              })
          )
        )
      )
    )
    const timeout = options?.timeout ?? Duration.minutes(10)
    const limitMs = Duration.toMillis(Duration.fromInputUnsafe(timeout))
    const onProgress = options?.onProgress
    const interval = Duration.fromInputUnsafe(options?.progressInterval ?? "5 seconds")
    const started = yield* Clock.currentTimeMillis
    const ticker =
      onProgress === undefined
        ? undefined
        : yield* Effect.forkChild(
            Effect.sleep(interval).pipe(
              Effect.andThen(Clock.currentTimeMillis),
              Effect.flatMap((now) =>
                onProgress({
                  upid,
                  node: parts.node,
                  type: parts.type,
                  id: parts.id,
                  elapsedMs: now - started,
                  limitMs
                })
              ),
              Effect.forever
            )
          )
    const final = yield* Effect.sleep(POLL_FIRST).pipe(
      Effect.andThen(
        getStatus.pipe(Effect.repeat({ schedule: taskPollSchedule, until: (s) => s.status === "stopped" }))
      ),
      Effect.timeoutOption(timeout),
      Effect.ensuring(ticker === undefined ? Effect.void : Fiber.interrupt(ticker))
    )
    if (Option.isNone(final)) {
      const log = yield* logTail(upid, options?.logTail ?? 20).pipe(Effect.orElseSucceed(() => []))
      return yield* new ProxmoxError({
        operation: "waitForTask",
        node: parts.node,
        reason: new TaskFailed({
          upid,
          exitstatus: `still running after ${Duration.format(Duration.fromInputUnsafe(timeout))} (gave up waiting)`,
          log,
          stillRunning: true
        })
      })
    }
    const exitstatus = final.value.exitstatus ?? "unexpected status"
    const warnings = taskWarnings(exitstatus)
    if (warnings === undefined) {
      const log = yield* logTail(upid, options?.logTail ?? 20).pipe(Effect.orElseSucceed(() => []))
      return yield* new ProxmoxError({
        operation: "waitForTask",
        node: parts.node,
        reason: new TaskFailed({ upid, exitstatus, log })
      })
    }
    const result: TaskResult = { upid, node: parts.node, exitstatus, warnings }
    return result
  })
}
