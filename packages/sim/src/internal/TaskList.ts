import type { NodeState } from "../SimState.js"
import type { Task } from "../Tasks.js"
import { one, type Params, splitList } from "./Params.js"

/**
 * One page of `GET /nodes/{node}/tasks`; `total` is the number of tasks that matched.
 *
 * @internal
 */
export interface TaskListing {
  readonly data: Array<Record<string, unknown>>
  readonly total: number
}

/** Perl truthiness of an optional string (`undef`, `""` and `"0"` are false). */
const perlTrue = (v: string | undefined): v is string => v !== undefined && v !== "" && v !== "0"

type StatusType = "ok" | "warning" | "error" | "unknown"

/** pve-common `PVE::UPID::normalize_status_type`: how `statusfilter` sees an exit status. */
export const normalizeStatusType = (status: string | undefined): StatusType =>
  !perlTrue(status)
    ? "unknown"
    : status === "OK"
      ? "ok"
      : /^WARNINGS: \d+$/.test(status)
        ? "warning"
        : status === "unexpected status"
          ? "unknown"
          : "error"

/** What Tasks.pm's filter reads of a task: `user` as it has it (bare, or `user!token` for a running token task). */
interface Entry {
  readonly task: Task
  readonly user: string
  readonly tokenid: string | undefined
  readonly status: string | undefined
}

/** `$check_task_user`: a token sees its own tasks, a user its own and its tokens' (once they are archived). */
const ownTask = (e: Entry, authuser: string): boolean =>
  e.tokenid !== undefined ? authuser === `${e.user}!${e.tokenid}` || authuser === e.user : authuser === e.user

const rawUser = (t: Task): string => (t.tokenid === undefined ? t.user : `${t.user}!${t.tokenid}`)

/**
 * `GET /nodes/{node}/tasks` as pve-manager `PVE/API2/Tasks.pm` (`node_tasks`) answers it.
 *
 * - `source` (default `archive`): `archive` reads the task index (`/var/log/pve/tasks/index`, finished tasks only)
 *   backwards, so the task that ended last comes first; `active` lists the running tasks from the `active` file, in
 *   the order they started; `all` lists the running ones, then the archive.
 * - Filters, in PVE's order: `userfilter` (a case-insensitive substring of the user), the permission check (with
 *   `Sys.Audit` on the node every task, else the caller's own), `typefilter` (exact), `vmid` (the task id),
 *   `since` / `until` (the start time, both inclusive), the status (`statusfilter`: a list of `ok`, `warning`,
 *   `error`, `unknown`; `errors=1` instead lists everything but `ok`, and wins over `statusfilter`).
 * - `start` skips that many matches, `limit` (default 50; 0 lists nothing) caps the list; `total` counts every match.
 * - A running task's entry is the `active` file's as PVE reads it: `saved: "0"`, `status: "RUNNING"`, and the user as
 *   the UPID has it (`root@pam!token`, no `tokenid`: Tasks.pm splits the token off archived tasks only). Its status is
 *   `unknown` to `statusfilter`, so `statusfilter=ok` (or `error`, `warning`) never lists a running task.
 * - An archived task's entry has its `endtime` and exit status, and a token's task the token in `tokenid`.
 *
 * The listing for `params` (validated against the endpoint's schema) on `node`, for `authuser` (`user@realm` or
 * `user@realm!token`); `auditor`: the caller has `Sys.Audit` on `/nodes/{node}`.
 *
 * @internal
 */
export const listNodeTasks = (
  node: Pick<NodeState, "tasks" | "taskIndex">,
  params: Params,
  authuser: string,
  auditor: boolean
): TaskListing => {
  const start = Number(one(params, "start") ?? 0)
  let limit = Number(one(params, "limit") ?? 50)
  const userfilter = one(params, "userfilter")
  const typefilter = one(params, "typefilter")
  const vmid = one(params, "vmid")
  const errors = perlTrue(one(params, "errors"))
  const source = one(params, "source") ?? "archive"
  const since = one(params, "since")
  const until = one(params, "until")
  const statusParam = one(params, "statusfilter")
  const statusfilter: Record<string, boolean> = { ok: true, warning: true, error: true, unknown: true }
  if (statusParam !== undefined && !errors) {
    for (const k of Object.keys(statusfilter)) statusfilter[k] = false
    for (const f of splitList(statusParam)) statusfilter[f.toLowerCase()] = true
  } else if (errors) statusfilter.ok = false

  let count = 0
  const skip = (e: Entry): boolean => {
    if (perlTrue(userfilter) && !e.user.toLowerCase().includes(userfilter.toLowerCase())) return true
    if (!(auditor || ownTask(e, authuser))) return true
    if (perlTrue(typefilter) && e.task.type !== typefilter) return true
    if (perlTrue(vmid) && (!perlTrue(e.task.id) || e.task.id !== vmid)) return true
    if (since !== undefined && e.task.starttime < Number(since)) return true
    if (until !== undefined && e.task.starttime > Number(until)) return true
    if (statusfilter[normalizeStatusType(e.status)] !== true) return true
    if (count++ < start) return true
    return limit <= 0
  }
  const upidFields = (t: Task, user: string): Record<string, unknown> => ({
    upid: t.upid,
    node: t.node,
    pid: t.pid,
    pstart: t.pstart,
    starttime: t.starttime,
    type: t.type,
    id: t.id,
    user
  })

  const data: Array<Record<string, unknown>> = []
  if (source === "active" || source === "all")
    for (const t of node.tasks.values()) {
      if (t.status !== "running") continue
      const user = rawUser(t)
      if (skip({ task: t, user, tokenid: undefined, status: undefined })) continue
      data.push({ ...upidFields(t, user), saved: "0", status: "RUNNING" })
      limit--
    }
  if (source !== "active")
    for (let i = node.taskIndex.length - 1; i >= 0; i--) {
      const t = node.taskIndex[i]
      if (t === undefined) continue
      if (skip({ task: t, user: t.user, tokenid: t.tokenid, status: t.exitstatus })) continue
      const e = upidFields(t, t.user)
      if (t.endtime !== undefined) e.endtime = t.endtime
      if (perlTrue(t.exitstatus)) e.status = t.exitstatus
      if (t.tokenid !== undefined) e.tokenid = t.tokenid
      data.push(e)
      limit--
    }
  return { data, total: count }
}
