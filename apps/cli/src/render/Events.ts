import { stripVTControlCharacters } from "node:util"
import {
  type Action,
  type ApplyEvent,
  type ConfigWarning,
  type Convergence,
  formatConfigWarning,
  type Plan
} from "@homelab/reconcile-core"
import type { CommandFailed, ErrorDocument } from "../CommandFailed.js"
import type { Notice } from "../Session.js"
import type { RunReport } from "../Workflow.js"
import { convergenceJson, planJson } from "./PlanView.js"
import { noticeLine } from "./Progress.js"

/**
 * The event stream of `homelab apply --json` (and `reprovision`, `destroy`): NDJSON, one JSON object per line, each
 * with the schema version `v`, its `type` and the `time` it was written (ISO 8601). The kinds and their fields are
 * documented in docs/json-events.md; a new field is not a new version, a changed or removed one is.
 */
export const EventSchemaVersion = 1

/** One line of the stream. */
export type EventLine = { readonly v: typeof EventSchemaVersion; readonly type: string; readonly time: string } & {
  readonly [key: string]: unknown
}

/** One line of the stream of `type` with its fields, stamped with `v` and `time` (also `demo`'s own `demo.*` lines). */
export const line = (type: string, fields: Record<string, unknown>): EventLine => ({
  v: EventSchemaVersion,
  type,
  time: new Date().toISOString(),
  ...fields
})

/** `plan`: the plan as made (the document `plan --json` prints), before anything runs. */
export const planEvent = (plan: Plan, convergence: Convergence): EventLine =>
  line("plan", { plan: planJson(plan), convergence: convergenceJson(convergence) })

/** `action.started`, `action.progress`, `action.done`, `action.failed`, `action.skipped`, `run.settling`. */
export const actionEvent = (e: ApplyEvent): EventLine => {
  switch (e._tag) {
    case "ActionStarted":
      return line("action.started", {
        id: e.id,
        node: e.action.node,
        action: e.action._tag,
        description: e.description
      })
    case "ActionProgress":
      return line("action.progress", {
        id: e.id,
        node: e.node,
        step: e.step,
        ...(e.wait === undefined
          ? {}
          : { wait: { what: e.wait.what, elapsedMs: e.wait.elapsedMs, limitMs: e.wait.limitMs } })
      })
    case "ActionDone":
      return line("action.done", { id: e.id, node: e.node, description: e.description, detail: e.detail, ms: e.ms })
    case "ActionFailed":
      return line("action.failed", {
        id: e.id,
        node: e.node,
        description: e.description,
        error: e.error,
        hint: e.hint ?? null,
        ms: e.ms
      })
    case "ActionSkipped":
      return line("action.skipped", {
        id: e.id,
        node: e.node,
        description: e.description,
        reason: e.reason,
        unconfirmed: e.unconfirmed
      })
    case "Settling":
      return line("run.settling", { wait: { what: e.wait.what, elapsedMs: e.wait.elapsedMs, limitMs: e.wait.limitMs } })
  }
}

/**
 * `warning`: what works but is worth changing in homelab.yaml (`config check` explains it): `source` (`config`),
 * `code` (`literal-secret`, `ssh-user-not-root`), `file`, `line` and `column` (or `null`), `path` (the field), and
 * `message` (the stderr line without its `warning: ` head).
 */
export const configWarningEvent = (file: string, warning: ConfigWarning): EventLine =>
  line("warning", {
    source: "config",
    code: warning.code,
    file,
    line: warning.line ?? null,
    column: warning.column ?? null,
    path: warning.path,
    message: formatConfigWarning(file, warning)
  })

/** `notice`: a transport fallback, TLS or host-key notice from the client libraries. */
export const noticeEvent = (notice: Notice): EventLine =>
  line("notice", {
    source: notice._tag === "Proxmox" ? "proxmox" : "ssh",
    kind: notice.event._tag,
    node: "node" in notice.event ? notice.event.node : null,
    message: stripVTControlCharacters(noticeLine(notice)).replace(/^[!·] /u, ""),
    event: notice.event
  })

/** `confirmation`: the destructive actions of the plan, and whether they run. */
export const confirmationEvent = (
  actions: ReadonlyArray<Action>,
  confirmed: boolean,
  by: "--yes" | "answer" | "not interactive"
): EventLine => line("confirmation", { actions: actions.map((a) => a.id), confirmed, by })

/** `interrupted`: the run was interrupted (Ctrl-C); what was in flight (the next run finishes it). */
export const interruptedEvent = (
  inFlight: ReadonlyArray<{
    readonly id: string
    readonly node: string
    readonly description: string
    readonly step: string
  }>
): EventLine => line("interrupted", { inFlight })

/** `summary`: the last line: every outcome, the convergence verdict, the exit code and its message. */
export const summaryEvent = (run: RunReport, failure: CommandFailed | undefined): EventLine =>
  line("summary", {
    applied: run.report.applied,
    outcomes: run.report.outcomes.map((o) => ({
      id: o.id,
      action: o.action._tag,
      node: o.action.node,
      status: o.status,
      detail: o.detail,
      hint: o.hint ?? null,
      ip: o.ip ?? null
    })),
    convergence: convergenceJson(run.report.convergence),
    exitCode: failure?.exitCode ?? 0,
    code: failure === undefined ? "ok" : failure.document.error.code,
    message: failure?.document.error.message ?? null
  })

/** `error`: the command failed before its summary; `error` is the object `--json` prints for any failed command. */
export const errorEvent = (document: ErrorDocument): EventLine => line("error", { error: document.error })

/** An outcome as the `summary` line lists it. */
export interface OutcomeJson {
  readonly id: string
  readonly action: string
  readonly node: string
  readonly status: string
  readonly detail: string
  readonly hint: string | null
  readonly ip: string | null
}

/**
 * `summary` of a command that failed before its own summary: `applied` (whether any action started), the outcomes of
 * the actions that ended, no convergence (`null`), and the failure's exit code, code and message.
 */
export const failureSummaryEvent = (
  document: ErrorDocument,
  ran: { readonly applied: boolean; readonly outcomes: ReadonlyArray<OutcomeJson> }
): EventLine =>
  line("summary", {
    applied: ran.applied,
    outcomes: ran.outcomes,
    convergence: null,
    exitCode: document.error.exitCode,
    code: document.error.code,
    message: document.error.message
  })
