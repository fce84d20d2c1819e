import { readFileSync } from "node:fs"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type SimHandle, startSimPromise } from "../src/index.js"
import type { Params } from "../src/internal/Params.js"
import { listNodeTasks, normalizeStatusType } from "../src/internal/TaskList.js"
import type { Task } from "../src/Tasks.js"
import { pxClient, raw, sshExec, testScenario, waitTask } from "./helpers.js"

// ---- the listing itself (pve-manager PVE/API2/Tasks.pm node_tasks), over hand-made tasks -------------------------

const T0 = 1_750_000_000

/** A task as the TaskRunner keeps it: `exitstatus` set means it stopped (`endtime` a second after it started). */
const task = (o: {
  pid: number
  type?: string
  id?: string
  user?: string
  tokenid?: string
  exitstatus?: string
  starttime?: number
}): Task => {
  const starttime = o.starttime ?? T0 + o.pid
  const authuser = o.tokenid === undefined ? (o.user ?? "root@pam") : `${o.user ?? "root@pam"}!${o.tokenid}`
  const type = o.type ?? "qmstart"
  const id = o.id ?? "100"
  return {
    upid: `UPID:pve:${o.pid.toString(16).toUpperCase().padStart(8, "0")}:04B1C2D3:${starttime.toString(16).toUpperCase()}:${type}:${id}:${authuser}:`,
    node: "pve",
    pid: o.pid,
    pstart: 0x04b1c2d3,
    starttime,
    type,
    id,
    user: o.user ?? "root@pam",
    tokenid: o.tokenid,
    status: o.exitstatus === undefined ? "running" : "stopped",
    exitstatus: o.exitstatus,
    endtime: o.exitstatus === undefined ? undefined : starttime + 1,
    log: [],
    warnings: 0,
    done: Promise.resolve(),
    aborted: false,
    abort: () => {}
  }
}

/** A node whose tasks started in `started` order and ended (were archived) in `ended` order. */
const nodeOf = (started: ReadonlyArray<Task>, ended: ReadonlyArray<Task>) => ({
  tasks: new Map(started.map((t) => [t.upid, t])),
  taskIndex: [...ended]
})

const pids = (l: { data: ReadonlyArray<Record<string, unknown>> }) => l.data.map((e) => e.pid)
const list = (node: ReturnType<typeof nodeOf>, params: Params = {}, authuser = "root@pam", auditor = true) =>
  listNodeTasks(node, params, authuser, auditor)

describe("GET /nodes/{node}/tasks: which tasks, in which order", () => {
  // 1 and 3 ran and ended in reverse order (3 ended first); 2 and 4 still run
  const t1 = task({ pid: 1, exitstatus: "OK" })
  const t2 = task({ pid: 2 })
  const t3 = task({ pid: 3, exitstatus: "OK" })
  const t4 = task({ pid: 4 })
  const node = nodeOf([t1, t2, t3, t4], [t3, t1])

  it("source defaults to archive: finished tasks only, the one that ended last first (the index read backwards)", () => {
    assert.deepStrictEqual(pids(list(node)), [1, 3])
    assert.deepStrictEqual(pids(list(node, { source: "archive" })), [1, 3])
  })

  it("source=active: the running tasks only, in the order they started; all: those, then the archive", () => {
    assert.deepStrictEqual(pids(list(node, { source: "active" })), [2, 4])
    assert.deepStrictEqual(pids(list(node, { source: "all" })), [2, 4, 1, 3])
  })

  it("limit defaults to 50 (0 lists nothing); start skips matches; total counts every match", () => {
    const many = Array.from({ length: 60 }, (_, i) => task({ pid: i + 1, exitstatus: "OK" }))
    const big = nodeOf(many, many)
    const all = list(big)
    assert.strictEqual(all.data.length, 50)
    assert.strictEqual(all.total, 60)
    assert.deepStrictEqual(pids(all).slice(0, 2), [60, 59])
    const page = list(big, { start: "55", limit: "10" })
    assert.deepStrictEqual([pids(page), page.total], [[5, 4, 3, 2, 1], 60])
    assert.deepStrictEqual([pids(list(big, { limit: "0" })), list(big, { limit: "0" }).total], [[], 60])
    const mixed = list(node, { source: "all", start: "1", limit: "2" })
    assert.deepStrictEqual([pids(mixed), mixed.total], [[4, 1], 4])
  })
})

describe("GET /nodes/{node}/tasks: the filters", () => {
  it("typefilter is exact; vmid compares the task id; an empty typefilter or userfilter is no filter", () => {
    const ts = [
      task({ pid: 1, type: "qmstart", id: "100", exitstatus: "OK" }),
      task({ pid: 2, type: "qmstart", id: "1000", exitstatus: "OK" }),
      task({ pid: 3, type: "qmstop", id: "100", exitstatus: "OK" }),
      task({ pid: 4, type: "download", id: "noble.qcow2", exitstatus: "OK" }),
      task({ pid: 5, type: "qmstart", id: "", exitstatus: "OK" })
    ]
    const node = nodeOf(ts, ts)
    assert.deepStrictEqual(pids(list(node, { typefilter: "qmstart" })), [5, 2, 1])
    assert.deepStrictEqual(pids(list(node, { typefilter: "qmst" })), [])
    assert.deepStrictEqual(pids(list(node, { vmid: "100" })), [3, 1])
    assert.deepStrictEqual(pids(list(node, { vmid: "100", typefilter: "qmstart" })), [1])
    assert.deepStrictEqual(pids(list(node, { typefilter: "", userfilter: "" })), [5, 4, 3, 2, 1])
  })

  it("since and until bound the start time, both inclusive", () => {
    const ts = [10, 20, 30].map((s, i) => task({ pid: i + 1, starttime: T0 + s, exitstatus: "OK" }))
    const node = nodeOf(ts, ts)
    assert.deepStrictEqual(pids(list(node, { since: String(T0 + 20) })), [3, 2])
    assert.deepStrictEqual(pids(list(node, { until: String(T0 + 20) })), [2, 1])
    assert.deepStrictEqual(pids(list(node, { since: String(T0 + 20), until: String(T0 + 20) })), [2])
    assert.deepStrictEqual(pids(list(node, { since: String(T0 + 31) })), [])
  })

  it("the status types: OK is ok, WARNINGS: n warning, 'unexpected status' and none unknown, anything else error", () => {
    assert.deepStrictEqual(
      ["OK", "WARNINGS: 2", "unexpected status", undefined, "", "interrupted by signal", "WARNINGS: x"].map(
        normalizeStatusType
      ),
      ["ok", "warning", "unknown", "unknown", "unknown", "error", "error"]
    )
  })

  const statuses = () => {
    const ts = [
      task({ pid: 1, exitstatus: "OK" }),
      task({ pid: 2, exitstatus: "WARNINGS: 1" }),
      task({ pid: 3, exitstatus: "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout" }),
      task({ pid: 4, exitstatus: "unexpected status" }),
      task({ pid: 5 })
    ]
    return nodeOf(ts, ts.slice(0, 4))
  }

  it("statusfilter lists the given types (any case, `,` `;` or space between); a running task is unknown", () => {
    const node = statuses()
    const by = (statusfilter: string) => pids(list(node, { source: "all", statusfilter }))
    assert.deepStrictEqual(by("ok"), [1])
    assert.deepStrictEqual(by("warning"), [2])
    assert.deepStrictEqual(by("error"), [3])
    assert.deepStrictEqual(by("unknown"), [5, 4])
    assert.deepStrictEqual(by("OK,Warning;error"), [3, 2, 1])
    assert.deepStrictEqual(by("ok error"), [3, 1])
    // an empty list is a list: nothing
    assert.deepStrictEqual(by(""), [])
    // what a lookup of a finished task with statusfilter=ok would miss: the same task while it still runs
    assert.deepStrictEqual(pids(list(node, { source: "active", statusfilter: "ok" })), [])
  })

  it("errors=1 lists everything but ok (running tasks too) and wins over statusfilter", () => {
    const node = statuses()
    assert.deepStrictEqual(pids(list(node, { source: "all", errors: "1" })), [5, 4, 3, 2])
    assert.deepStrictEqual(pids(list(node, { source: "all", errors: "1", statusfilter: "ok" })), [5, 4, 3, 2])
    assert.deepStrictEqual(pids(list(node, { source: "all", errors: "0", statusfilter: "ok" })), [1])
  })

  it("userfilter: a case-insensitive substring of the user (bare once archived, with the token while running)", () => {
    const ts = [
      task({ pid: 1, user: "root@pam", exitstatus: "OK" }),
      task({ pid: 2, user: "Alice@pve", exitstatus: "OK" }),
      task({ pid: 3, user: "root@pam", tokenid: "homelab", exitstatus: "OK" }),
      task({ pid: 4, user: "root@pam", tokenid: "homelab" })
    ]
    const node = nodeOf(ts, ts.slice(0, 3))
    const by = (userfilter: string) => pids(list(node, { source: "all", userfilter }))
    assert.deepStrictEqual(by("alice"), [2])
    assert.deepStrictEqual(by("ROOT@PAM"), [4, 3, 1])
    assert.deepStrictEqual(by("homelab"), [4])
    assert.deepStrictEqual(by("@p"), [4, 3, 2, 1])
  })
})

describe("GET /nodes/{node}/tasks: entries and permissions", () => {
  const running = task({ pid: 1, user: "root@pam", tokenid: "homelab" })
  const byToken = task({ pid: 2, user: "root@pam", tokenid: "homelab", exitstatus: "WARNINGS: 1" })
  const byRoot = task({ pid: 3, user: "root@pam", exitstatus: "OK" })
  const other = task({ pid: 4, user: "root@pam", tokenid: "other", exitstatus: "OK" })
  const node = nodeOf([running, byToken, byRoot, other], [byToken, byRoot, other])

  it("a running task as the active file has it: the user with its token, no tokenid, saved 0, RUNNING", () => {
    assert.deepStrictEqual(list(node, { source: "active" }).data, [
      {
        upid: running.upid,
        node: "pve",
        pid: 1,
        pstart: 0x04b1c2d3,
        starttime: T0 + 1,
        type: "qmstart",
        id: "100",
        user: "root@pam!homelab",
        saved: "0",
        status: "RUNNING"
      }
    ])
  })

  it("an archived task: its end time and exit status; a token's in tokenid, the user bare", () => {
    const [a, b] = list(node, { typefilter: "qmstart", limit: "2", start: "1" }).data
    assert.deepStrictEqual(a, {
      upid: byRoot.upid,
      node: "pve",
      pid: 3,
      pstart: 0x04b1c2d3,
      starttime: T0 + 3,
      type: "qmstart",
      id: "100",
      user: "root@pam",
      endtime: T0 + 4,
      status: "OK"
    })
    assert.deepStrictEqual(b, {
      upid: byToken.upid,
      node: "pve",
      pid: 2,
      pstart: 0x04b1c2d3,
      starttime: T0 + 2,
      type: "qmstart",
      id: "100",
      user: "root@pam",
      endtime: T0 + 3,
      status: "WARNINGS: 1",
      tokenid: "homelab"
    })
  })

  it("without Sys.Audit on the node: a token sees its own tasks; its user those and its tokens' archived ones", () => {
    const seen = (authuser: string) => pids(list(node, { source: "all" }, authuser, false))
    assert.deepStrictEqual(seen("root@pam!homelab"), [1, 2])
    assert.deepStrictEqual(seen("root@pam!other"), [4])
    // Tasks.pm splits the token off archived tasks only: the user does not see its token's running task
    assert.deepStrictEqual(seen("root@pam"), [4, 3, 2])
    assert.deepStrictEqual(seen("alice@pve"), [])
    assert.deepStrictEqual(pids(list(node, { source: "all" }, "alice@pve", true)), [1, 4, 3, 2])
  })
})

// ---- over HTTPS and pvesh -----------------------------------------------------------------------------------------

describe("GET /nodes/{node}/tasks over HTTPS and pvesh", () => {
  let sim: SimHandle
  let running = ""
  let finished = ""
  const get = async (query = "") => {
    const r = await raw(sim, "GET", `/api2/json/nodes/pve/tasks${query}`)
    return { status: r.status, statusText: r.statusText, body: JSON.parse(r.body) as Record<string, unknown> }
  }
  const upids = (body: Record<string, unknown>) =>
    (body.data as ReadonlyArray<{ upid: string }>).map((e) => e.upid).filter((u) => u === running || u === finished)
  const pvesh = (args: string) => {
    const n = sim.info.nodes[0]
    const key = readFileSync(sim.info.sshPrivateKeyPath, "utf8")
    return sshExec(n?.ssh.host ?? "", n?.ssh.port ?? 0, "root", key, `pvesh ${args}`)
  }

  beforeAll(async () => {
    sim = await startSimPromise(
      testScenario({
        ipPool: "127.90.11.10",
        vms: [{ vmid: 100, node: "pve", name: "web", status: "stopped", config: { cores: 1 } }],
        faults: [{ kind: "taskHang", taskType: "qmstart", vmid: 100 }]
      })
    )
    const px = pxClient(sim)
    finished = await px.nodes.$("pve").qemu.$(100).config.$post({ description: "x" })
    await waitTask(px, "pve", finished)
    running = await px.nodes.$("pve").qemu.$(100).status.start.$post()
  })
  afterAll(async () => {
    await sim.stop()
  })

  it("without parameters the running task is not listed (source archive); source=active lists it, all both", async () => {
    const archive = await get()
    assert.deepStrictEqual(upids(archive.body), [finished])
    assert.strictEqual(archive.body.total, 1)
    assert.deepStrictEqual(upids((await get("?source=active")).body), [running])
    assert.deepStrictEqual(upids((await get("?source=all&vmid=100")).body), [running, finished])
    const [entry] = (await get("?source=active&typefilter=qmstart")).body.data as Array<Record<string, unknown>>
    assert.deepInclude(entry, { user: sim.info.auth.tokenId, saved: "0", status: "RUNNING" })
    assert.notProperty(entry, "tokenid")
  })

  it("pvesh lists the same", async () => {
    for (const q of ["", " --source active", " --source all --typefilter qmstart --limit 1"]) {
      const r = await pvesh(`get /nodes/pve/tasks${q} --output-format json`)
      assert.strictEqual(r.code, 0, r.stderr)
      const http = await get(`?${q.replaceAll(" --", "&").replaceAll(" ", "=")}`)
      assert.deepStrictEqual(JSON.parse(r.stdout), http.body.data, q)
    }
  })

  it("parameters are checked as PVE's schema says", async () => {
    assert.deepStrictEqual(await get("?statusfilter=ok,bogus"), {
      status: 400,
      statusText: "Parameter verification failed.",
      body: {
        data: null,
        errors: { statusfilter: "invalid format - invalid status 'bogus'\n" },
        message: "Parameter verification failed.\n"
      }
    })
    const bad = await get("?source=running&limit=-1&vmid=99&since=yesterday")
    assert.deepStrictEqual(bad.body.errors, {
      source: "value 'running' does not have a value in the enumeration 'archive, active, all'",
      limit: "value must have a minimum value of 0",
      vmid: "invalid format - value does not look like a valid VM ID\n",
      since: "type check ('integer') failed - got 'yesterday'"
    })
    const r = await pvesh("get /nodes/pve/tasks --statusfilter bogus")
    assert.strictEqual(r.code, 255)
    assert.include(r.stderr, "statusfilter: invalid format - invalid status 'bogus'")
  })
})
