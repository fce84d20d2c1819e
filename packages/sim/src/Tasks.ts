import type { AuthUser } from "./Auth.js"
import type { SimClock } from "./Clock.js"
import type { Faults } from "./Faults.js"
import { PveError } from "./PveError.js"
import type { NodeState, SimState } from "./SimState.js"

export interface Task {
  readonly upid: string
  readonly node: string
  readonly pid: number
  readonly pstart: number
  readonly starttime: number
  readonly type: string
  readonly id: string
  /** bare user (`root@pam`) */
  readonly user: string
  readonly tokenid: string | undefined
  status: "running" | "stopped"
  exitstatus: string | undefined
  endtime: number | undefined
  readonly log: Array<string>
  warnings: number
  /** resolves when the task has stopped */
  readonly done: Promise<void>
  /** set by DELETE /tasks/{upid} */
  aborted: boolean
  abort: () => void
}

export interface TaskContext {
  readonly task: Task
  log(line: string): void
  /** `WARN: msg`, counted into `TASK WARNINGS: n` */
  warn(msg: string): void
  /**
   * Sleep a simulated duration; applies injected task faults (hold / fail / hang) afterwards. `spentRealMs`: real time the
   * worker already spent on this step (a real transfer): only the rest is slept, and a step that took longer than its
   * simulated duration counts what it took.
   */
  work(simMs: number, spentRealMs?: number): Promise<void>
  /** The task needed `resource` (`volumeResource`): its operation waited for the one that produced it. */
  uses(resource: string): void
  /** The task produced `resource` (a volume it wrote). */
  produced(resource: string): void
}

const hex8 = (n: number): string => (n >>> 0).toString(16).toUpperCase().padStart(8, "0")

export const UPID_RE =
  /^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$/

export const parseUpid = (upid: string): { node: string; type: string; id: string; user: string } | undefined => {
  const m = UPID_RE.exec(upid)
  if (!m) return undefined
  return { node: m[1] ?? "", type: m[6] ?? "", id: m[7] ?? "", user: m[8] ?? "" }
}

/** `encode_text`: `:`, `%`, control and high-bit bytes are %-escaped. */
export const encodeTaskId = (s: string): string =>
  [...Buffer.from(s, "utf8")]
    .map((b) =>
      b === 0x3a || b === 0x25 || b < 0x20 || b >= 0x7f ? `%${b.toString(16).padStart(2, "0")}` : String.fromCharCode(b)
    )
    .join("")

class TaskAborted extends Error {}

export class TaskRunner {
  private readonly pstart = 0x04b1c2d3 + Math.floor(Math.random() * 0x100000)

  constructor(
    private readonly state: SimState,
    private readonly clock: SimClock,
    private readonly faults: Faults
  ) {}

  /**
   * Start a worker on a node. Returns the task immediately (API context); `task.done` resolves when it stopped.
   * `authuser` is `root@pam` or `root@pam!tokenid`. The worker throws to fail the task. The task is recorded as an
   * operation (`state.operations`) after the previous task on `vmid` and the producers of what it `uses`.
   */
  start(
    node: NodeState,
    type: string,
    id: string,
    caller: string | AuthUser,
    worker: (ctx: TaskContext) => Promise<void>,
    vmid?: number
  ): Task {
    const authuser = typeof caller === "string" ? caller : caller.authuser
    // CLI-run workers (qm, pvesh) put an empty line before the WARNINGS / ERROR line
    const cli = typeof caller !== "string" && caller.via === "cli"
    const pid = this.state.nextPid()
    const starttime = Math.floor(this.clock.now() / 1000)
    const bang = authuser.indexOf("!")
    const upid = `UPID:${node.name}:${hex8(pid)}:${hex8(this.pstart)}:${hex8(starttime)}:${type}:${id}:${authuser}:`
    let resolveDone: () => void = () => {}
    const done = new Promise<void>((r) => {
      resolveDone = r
    })
    let wakeOnAbort: (() => void) | undefined
    const task: Task = {
      upid,
      node: node.name,
      pid,
      pstart: this.pstart,
      starttime,
      type,
      id,
      user: bang < 0 ? authuser : authuser.slice(0, bang),
      tokenid: bang < 0 ? undefined : authuser.slice(bang + 1),
      status: "running",
      exitstatus: undefined,
      endtime: undefined,
      log: [],
      warnings: 0,
      done,
      aborted: false,
      abort: () => {
        task.aborted = true
        wakeOnAbort?.()
      }
    }
    node.tasks.set(upid, task)
    const nameOf = () => (vmid === undefined ? undefined : this.state.vms.get(vmid)?.config.get("name"))
    const operations = this.state.operations
    const op = operations.beginTask({ operation: type, node: node.name, vmid, vm: nameOf(), upid })
    const faults = this.faults
    const clock = this.clock
    const ctx: TaskContext = {
      task,
      log: (line) => {
        task.log.push(line)
      },
      warn: (msg) => {
        task.warnings++
        task.log.push(`WARN: ${msg}`)
      },
      work: async (simMs, spentRealMs = 0) => {
        const spentSimMs = clock.timeScale > 0 ? spentRealMs / clock.timeScale : 0
        op.add(Math.max(simMs, spentSimMs))
        await clock.sleepReal(clock.scaled(simMs) - spentRealMs)
        if (task.aborted) throw new TaskAborted("interrupted by signal")
        // taskHold (a test control): the step is done, the task waits, running, until the fault is cleared or the
        // task is stopped
        for (let hold = faults.taskHold(node.name, type, vmid); hold !== undefined; ) {
          await Promise.race([
            faults.whenCleared(hold),
            new Promise<void>((r) => {
              wakeOnAbort = r
            })
          ])
          if (task.aborted) throw new TaskAborted("interrupted by signal")
          hold = faults.taskHold(node.name, type, vmid)
        }
        const f = faults.taskFault(node.name, type, vmid)
        if (f?.kind === "taskHang") {
          await new Promise<void>((r) => {
            wakeOnAbort = r
          })
          throw new TaskAborted("interrupted by signal")
        }
        if (f?.kind === "taskFail") throw new PveError(500, f.exitstatus)
      },
      uses: (resource) => op.need(operations.producer(resource)),
      produced: (resource) => operations.produce(resource, op.id)
    }
    void (async () => {
      try {
        await worker(ctx)
        task.exitstatus = task.warnings > 0 ? `WARNINGS: ${task.warnings}` : "OK"
        if (cli && task.warnings > 0) task.log.push("")
        task.log.push(task.warnings > 0 ? `TASK WARNINGS: ${task.warnings}` : "TASK OK")
      } catch (e) {
        const msg = (e instanceof Error ? e.message : String(e)).replace(/\n$/, "").replace(/\n/g, " ")
        task.exitstatus = msg
        if (cli) task.log.push("")
        task.log.push(`TASK ERROR: ${msg}`)
      }
      task.status = "stopped"
      task.endtime = Math.floor(this.clock.now() / 1000)
      node.taskIndex.push(task)
      op.setName(nameOf())
      op.end(taskSucceeded(task))
      resolveDone()
    })()
    return task
  }

  /** Abort every running task (sim shutdown). */
  abortAll(): void {
    for (const n of this.state.nodes.values()) for (const t of n.tasks.values()) if (t.status === "running") t.abort()
  }
}

export const taskSucceeded = (t: Task): boolean => t.exitstatus === "OK" || /^WARNINGS: \d+$/.test(t.exitstatus ?? "")

export const taskStatusJson = (t: Task): Record<string, unknown> => {
  const o: Record<string, unknown> = {
    upid: t.upid,
    node: t.node,
    pid: t.pid,
    pstart: t.pstart,
    starttime: t.starttime,
    type: t.type,
    id: t.id,
    user: t.user,
    status: t.status
  }
  if (t.tokenid !== undefined) o.tokenid = t.tokenid
  if (t.status === "stopped") o.exitstatus = t.exitstatus
  return o
}
