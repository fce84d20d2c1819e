import type { TaskSummary } from "@homelab/proxmox-client"
import type { RunningDownload } from "./Observed.js"

/**
 * The downloads still running among a node's `download` tasks (`GET /nodes/{node}/tasks`, `source=active`): the file
 * each fetches (the task's id), whose task, and whether homelab's own credentials (`taskUsers`) started it.
 */
export const runningDownloads = (
  tasks: ReadonlyArray<TaskSummary>,
  taskUsers: ReadonlyArray<string>
): ReadonlyArray<RunningDownload> =>
  tasks.flatMap((t): ReadonlyArray<RunningDownload> => {
    if (t.id === undefined || (t.status !== undefined && t.status !== "RUNNING")) return []
    const user = t.tokenid === undefined ? t.user : `${t.user}!${t.tokenid}`
    return [{ file: t.id, upid: t.upid, startedAt: t.starttime, user, ours: taskUsers.includes(user) }]
  })
