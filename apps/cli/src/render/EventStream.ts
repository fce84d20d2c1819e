import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { errorDocument } from "../errorDocument.js"
import { errorEvent, failureSummaryEvent, interruptedEvent, type OutcomeJson } from "./Events.js"

/** One line of the stream: an event (render/Events.ts), or a line of `demo`'s own (`demo.*`). */
export interface StreamLine {
  readonly v: number
  readonly type: string
  readonly [key: string]: unknown
}

/**
 * The NDJSON stream a command prints under `--json` (apply, reprovision, destroy, demo; docs/json-events.md). Its
 * lines go out through the Console the command prints with.
 */
export interface EventStream {
  readonly emit: (line: StreamLine) => void
}

/**
 * Runs `body` with the event stream of a command (`undefined` without `--json`) and makes the stream end as
 * docs/json-events.md says on every path: with the `summary` line that carries the exit code, or `interrupted`. When
 * `body` fails before its summary (homelab.yaml invalid, Proxmox out of reach, a saved plan refused, a bug), the
 * stream ends with an `error` line (the error object `--json` prints for any failed command) and a `summary` line with
 * that error's exit code; interrupted before its summary, with an `interrupted` line. The error stays `body`'s.
 */
export const withEventStream = <A, E, R>(
  json: boolean,
  body: (stream: EventStream | undefined) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  json
    ? Effect.gen(function* () {
        const console = yield* Console.Console
        // whether the last line ended the stream (demo streams several runs, each ending with its summary)
        let ended = false
        let applied = false
        const started = new Map<string, string>()
        const outcomes: Array<OutcomeJson> = []
        const outcome = (line: StreamLine, status: string, detail: unknown, hint: unknown = null) =>
          outcomes.push({
            id: String(line.id),
            action: started.get(String(line.id)) ?? "?",
            node: String(line.node),
            status,
            detail: String(detail),
            hint: typeof hint === "string" ? hint : null,
            ip: null
          })
        const stream: EventStream = {
          emit: (line) => {
            console.log(JSON.stringify(line))
            ended = line.type === "summary" || line.type === "interrupted"
            if (ended) {
              // what ran is in that summary; a later run (demo) starts afresh
              applied = false
              started.clear()
              outcomes.length = 0
            }
            switch (line.type) {
              case "action.started":
                applied = true
                started.set(String(line.id), String(line.action))
                break
              case "action.done":
                outcome(line, "done", line.detail)
                break
              case "action.failed":
                outcome(line, "failed", line.error, line.hint)
                break
              case "action.skipped":
                outcome(line, line.unconfirmed === true ? "unconfirmed" : "skipped", line.reason)
                break
            }
          }
        }
        return yield* body(stream).pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (ended || Exit.isSuccess(exit)) return
              if (Cause.hasInterruptsOnly(exit.cause)) return stream.emit(interruptedEvent([]))
              const document = errorDocument(exit.cause)
              stream.emit(errorEvent(document))
              stream.emit(failureSummaryEvent(document, { applied, outcomes }))
            })
          )
        )
      })
    : body(undefined)
