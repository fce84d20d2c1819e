import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { TestClock } from "effect/testing"
import {
  makeProxmoxApi,
  makeWaitForTask,
  type PveRequest,
  parseUpid,
  type TaskProgress,
  taskWarnings
} from "../src/index.js"

const UPID = "UPID:pve:0012A3F4:04B1C2D3:66F1A2B3:qmstart:100:root@pam!reconciler:"

/** A fake transport: the task stops after `stopAtMs`, with `exitstatus`. */
const fakeTasks = (stopAtMs: number, exitstatus: string) => {
  const polls: Array<number> = []
  const call = (request: PveRequest) =>
    Effect.gen(function* () {
      const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
      if (request.path.endsWith("/log")) {
        return [
          { n: 1, t: "starting" },
          { n: 2, t: "" },
          { n: 3, t: `TASK ERROR: ${exitstatus}` }
        ]
      }
      polls.push(now)
      return now >= stopAtMs
        ? {
            node: "pve",
            status: "stopped",
            exitstatus,
            type: "qmstart",
            id: "100",
            user: "root@pam",
            tokenid: "reconciler"
          }
        : { node: "pve", status: "running", type: "qmstart", id: "100", user: "root@pam" }
    })
  return { call, polls }
}

describe("UPID", () => {
  it("parses the parts", () => {
    assert.deepStrictEqual(parseUpid(UPID), {
      node: "pve",
      pid: 0x0012a3f4,
      starttime: 0x66f1a2b3,
      type: "qmstart",
      id: "100",
      user: "root@pam!reconciler"
    })
    assert.strictEqual(parseUpid("UPID:pve:nothex:"), undefined)
  })
  it("success is OK or WARNINGS: N", () => {
    assert.strictEqual(taskWarnings("OK"), 0)
    assert.strictEqual(taskWarnings("WARNINGS: 2"), 2)
    assert.strictEqual(taskWarnings("VM 100 already running"), undefined)
  })
})

describe("waitForTask", () => {
  it.effect("polls with backoff (100 ms first, ×1.25, capped at 1 s) until stopped", () =>
    Effect.gen(function* () {
      const fake = fakeTasks(6_000, "OK")
      const fiber = yield* Effect.forkChild(makeWaitForTask(fake.call)(UPID))
      yield* TestClock.adjust("10 seconds")
      const result = yield* Fiber.join(fiber)
      assert.deepStrictEqual(result, { upid: UPID, node: "pve", exitstatus: "OK", warnings: 0 })
      const gaps = fake.polls.map((t, i) => t - (fake.polls[i - 1] ?? 0))
      assert.deepStrictEqual(gaps.slice(0, 5), [100, 100, 125, 156.25, 195.3125])
      assert.isTrue(gaps.every((g) => g <= 1_000))
      assert.strictEqual(gaps[gaps.length - 1], 1_000)
      // seen stopped at the first poll after 6 s, within the 1 s cap
      assert.isTrue((fake.polls[fake.polls.length - 1] as number) - 6_000 < 1_000)
      assert.strictEqual(fake.polls.length, 14)
    })
  )

  it.effect("WARNINGS: N is a success with warnings", () =>
    Effect.gen(function* () {
      const fake = fakeTasks(0, "WARNINGS: 3")
      const fiber = yield* Effect.forkChild(makeWaitForTask(fake.call)(UPID))
      yield* TestClock.adjust("1 second")
      const result = yield* Fiber.join(fiber)
      assert.strictEqual(result.warnings, 3)
    })
  )

  it.effect("a failed task → TaskFailed with exitstatus and log tail", () =>
    Effect.gen(function* () {
      const fake = fakeTasks(500, "VM 100 already running")
      const fiber = yield* Effect.forkChild(Effect.exit(makeWaitForTask(fake.call)(UPID)))
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.join(fiber)
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      const reason = (error as unknown as { error: { reason: unknown } }).error.reason
      assert.deepStrictEqual(JSON.parse(JSON.stringify(reason)), {
        _tag: "TaskFailed",
        upid: UPID,
        exitstatus: "VM 100 already running",
        log: ["starting", "TASK ERROR: VM 100 already running"]
      })
    })
  )

  it.effect("gives up after the timeout with TaskFailed (still running)", () =>
    Effect.gen(function* () {
      const fake = fakeTasks(Number.POSITIVE_INFINITY, "OK")
      const fiber = yield* Effect.forkChild(Effect.exit(makeWaitForTask(fake.call)(UPID, { timeout: "5 seconds" })))
      yield* TestClock.adjust("6 seconds")
      const exit = yield* Fiber.join(fiber)
      const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      const reason = (error as unknown as { error: { reason: { _tag: string; exitstatus: string } } }).error.reason
      assert.strictEqual(reason._tag, "TaskFailed")
      assert.match(reason.exitstatus, /still running after 5s/)
    })
  )
})

describe("progress of a long task wait", () => {
  it.effect("reports what runs, the elapsed time and the limit every interval; nothing after the task ended", () =>
    Effect.gen(function* () {
      const fake = fakeTasks(12_000, "OK")
      const seen: Array<TaskProgress> = []
      const fiber = yield* Effect.forkChild(
        makeWaitForTask(fake.call)(UPID, {
          timeout: "1 minute",
          onProgress: (p) => Effect.sync(() => seen.push(p))
        })
      )
      yield* TestClock.adjust("30 seconds")
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(
        seen.map((p) => [p.type, p.id, p.elapsedMs, p.limitMs]),
        [
          ["qmstart", "100", 5_000, 60_000],
          ["qmstart", "100", 10_000, 60_000]
        ]
      )
    })
  )

  it.effect("a wait that gives up marks the task as still running", () =>
    Effect.gen(function* () {
      const fake = fakeTasks(Number.POSITIVE_INFINITY, "OK")
      const fiber = yield* Effect.forkChild(Effect.exit(makeWaitForTask(fake.call)(UPID, { timeout: "5 seconds" })))
      yield* TestClock.adjust("6 seconds")
      const exit = yield* Fiber.join(fiber)
      const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      const reason = (error as unknown as { error: { reason: { stillRunning?: boolean } } }).error.reason
      assert.isTrue(reason.stillRunning)
    })
  )
})

describe("task timeout from the configuration", () => {
  it.effect("operations give up after timeouts.task when the caller sets none", () =>
    Effect.gen(function* () {
      const fake = fakeTasks(Number.POSITIVE_INFINITY, "OK")
      const api = makeProxmoxApi(
        { call: (r) => (r.method === "POST" ? Effect.succeed(UPID) : fake.call(r)) },
        0,
        "3 seconds"
      )
      const fiber = yield* Effect.forkChild(Effect.exit(api.startVm("pve", 100)))
      yield* TestClock.adjust("4 seconds")
      const exit = yield* Fiber.join(fiber)
      const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      const e = (error as unknown as { error: { operation: string; reason: { _tag: string; exitstatus: string } } })
        .error
      assert.strictEqual(e.operation, "startVm")
      assert.strictEqual(e.reason._tag, "TaskFailed")
      assert.match(e.reason.exitstatus, /still running after 3s/)
    })
  )
})

describe("tasks in flight (maxTasksInFlight, one per node)", () => {
  /** A fake PVE whose qmstart tasks run until `ended` has their VMID; the VM's node is `n<vmid>` unless `node` says. */
  const fakeStarts = (node?: string) => {
    const upid = (n: string, vmid: number) =>
      `UPID:${n}:0012A3F4:04B1C2D3:66F1A2B3:qmstart:${vmid}:root@pam!reconciler:`
    const started: Array<number> = []
    const ended = new Set<number>()
    const call = (request: PveRequest) =>
      Effect.sync(() => {
        const post = /^\/nodes\/([^/]+)\/qemu\/(\d+)\/status\/start$/.exec(request.path)
        if (request.method === "POST" && post !== null) {
          started.push(Number(post[2]))
          return upid(post[1] ?? "", Number(post[2]))
        }
        const parsed = parseUpid(decodeURIComponent(request.path.split("/")[4] ?? ""))
        const vmid = Number(parsed?.id)
        const base = { node: parsed?.node ?? node ?? "", type: "qmstart", id: String(vmid), user: "root@pam" }
        return ended.has(vmid) ? { ...base, status: "stopped", exitstatus: "OK" } : { ...base, status: "running" }
      })
    return { call, started, ended }
  }

  it.effect("a call that starts a task waits for a place; the place is free again when a task ends", () =>
    Effect.gen(function* () {
      const { call, started, ended } = fakeStarts()
      const api = makeProxmoxApi({ call }, 0, undefined, 2)
      // five nodes, one VM each: only the cluster-wide limit holds them back
      const fibers = yield* Effect.forEach([101, 102, 103, 104, 105], (vmid) =>
        Effect.forkChild(api.startVm(`n${vmid}`, vmid))
      )
      yield* TestClock.adjust("10 millis")
      assert.deepStrictEqual(started, [101, 102], "two tasks started, three calls waiting")
      ended.add(102)
      yield* TestClock.adjust("2 seconds") // the next poll sees 102 end
      assert.deepStrictEqual(started, [101, 102, 103])
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(started, [101, 102, 103], "no place until another task ends")
      for (const vmid of [101, 103, 104, 105]) ended.add(vmid)
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(started, [101, 102, 103, 104, 105])
    })
  )

  it.effect(
    "one task at a time on a node (PVE's storage and config locks), whatever the limit; other nodes go on",
    () =>
      Effect.gen(function* () {
        const { call, started, ended } = fakeStarts()
        const api = makeProxmoxApi({ call }, 0, undefined, 16)
        const fibers = yield* Effect.forEach([101, 102, 201], (vmid) =>
          Effect.forkChild(api.startVm(vmid < 200 ? "pve" : "fawn", vmid))
        )
        yield* TestClock.adjust("10 millis")
        assert.deepStrictEqual(started, [101, 201], "102 waits for 101, on the same node")
        ended.add(101)
        yield* TestClock.adjust("2 seconds")
        assert.deepStrictEqual(started, [101, 201, 102])
        for (const vmid of [102, 201]) ended.add(vmid)
        yield* TestClock.adjust("10 seconds")
        yield* Fiber.joinAll(fibers)
      })
  )

  it.effect("a download runs beside the node's other tasks", () =>
    Effect.gen(function* () {
      const posts: Array<string> = []
      const api = makeProxmoxApi({
        call: (request) =>
          Effect.sync(() => {
            if (request.method === "POST") posts.push(request.path)
            if (request.method === "POST" && request.path.endsWith("/download-url"))
              return "UPID:pve:0012A3F5:04B1C2D4:66F1A2B4:download:noble.img:root@pam!reconciler:"
            if (request.method === "POST") return UPID
            return request.path.includes(":download:")
              ? { node: "pve", status: "running", type: "download", id: "noble.img", user: "root@pam" }
              : { node: "pve", status: "running", type: "qmstart", id: "100", user: "root@pam" }
          })
      })
      yield* Effect.forkChild(api.startVm("pve", 100))
      yield* Effect.forkChild(
        api.downloadUrl({ node: "pve", storage: "local", content: "import", filename: "noble.img", url: "https://x/y" })
      )
      yield* TestClock.adjust("10 millis")
      assert.deepStrictEqual(posts, ["/nodes/pve/qemu/100/status/start", "/nodes/pve/storage/local/download-url"])
    })
  )

  it.effect("without a limit every node's task starts at once", () =>
    Effect.gen(function* () {
      const { call, started } = fakeStarts()
      const api = makeProxmoxApi({ call })
      yield* Effect.forEach([101, 102, 103], (vmid) => Effect.forkChild(api.startVm(`n${vmid}`, vmid)))
      yield* TestClock.adjust("10 millis")
      assert.strictEqual(started.length, 3)
    })
  )
})
