import { assert, describe, it } from "@effect/vitest"
import type { SimHandle } from "@homelab/sim"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { TestClock } from "effect/testing"
import {
  makeProxmoxApi,
  ProxmoxApi,
  type ProxmoxApiShape,
  ProxmoxError,
  type ProxmoxErrorReason,
  ProxyError,
  type PveRequest,
  Unreachable
} from "../src/index.js"
import { CLOCK_SKEW_SECONDS } from "../src/internal/nonIdempotent.js"
import { apiLayer, errorOf, scenario, type Transport, withSim } from "./simulator.js"

/**
 * A request PVE performed whose answer never came back (the sim's `responseLost`: the connection closes instead of
 * the answer). These calls start work at PVE that must not happen twice: the client finds what its request did (the
 * task it started, the config it wrote) instead of sending it again.
 */

const idle = { vmid: 103, node: "pve", name: "idle", status: "stopped" as const, config: { cores: 1, memory: "512" } }
const vms = [...(scenario().vms ?? []), idle]

/** What the sim's request log holds for one method and path: `POST lost`, `POST`, … */
const sent = (sim: SimHandle, method: string, path: string) =>
  sim
    .requests()
    .filter((r) => r.method === method && r.path === path)
    .map((r) => `${r.transport} ${r.method}${r.responseLost === true ? " lost" : ""}`)

const tasksOf = (sim: SimHandle, type: string, id?: string) =>
  sim.state().tasks.filter((t) => t.type === type && (id === undefined || t.id === id))

const run = <A, E>(sim: SimHandle, transport: Transport, body: (pve: ProxmoxApiShape) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const layer = yield* apiLayer(sim, transport)
    return yield* Effect.gen(function* () {
      return yield* body(yield* ProxmoxApi)
    }).pipe(Effect.provide(layer))
  })

const lost = (method: "POST" | "PUT" | "DELETE", path: string) =>
  ({ kind: "responseLost", node: "pve", method, path, times: 1 }) as const

describe("a task-starting request whose answer was lost: the task it started is waited for, never a second", () => {
  for (const transport of ["rest", "fallback"] as const) {
    it.live(`start (${transport}): one qmstart, the call returns its result`, () =>
      Effect.gen(function* () {
        const path = "/nodes/pve/qemu/103/status/start"
        const sim = yield* withSim({ vms, faults: [lost("POST", path)] })
        const result = yield* run(sim, transport, (pve) => pve.startVm("pve", 103))
        const starts = tasksOf(sim, "qmstart", "103")
        assert.lengthOf(starts, 1, "PVE started the VM once")
        assert.strictEqual(result.upid, starts[0]?.upid)
        assert.strictEqual(result.exitstatus, "OK")
        assert.deepStrictEqual(sent(sim, "POST", path), ["api POST lost"])
        assert.strictEqual(sim.state().vms.find((v) => v.vmid === 103)?.status, "running")
      })
    )
  }

  it.live("stop: one qmstop, the call returns its result", () =>
    Effect.gen(function* () {
      const path = "/nodes/pve/qemu/100/status/stop"
      const sim = yield* withSim({ faults: [lost("POST", path)] })
      const result = yield* run(sim, "rest", (pve) => pve.stopVm("pve", 100))
      const stops = tasksOf(sim, "qmstop", "100")
      assert.lengthOf(stops, 1, "PVE stopped the VM once")
      assert.strictEqual(result.upid, stops[0]?.upid)
      assert.strictEqual(result.exitstatus, "OK")
      assert.deepStrictEqual(sent(sim, "POST", path), ["api POST lost"])
    })
  )

  it.live(
    "download-url: one download, the call returns its result (the task named after the file as PVE stores it)",
    () =>
      Effect.gen(function* () {
        const path = "/nodes/pve/storage/local/download-url"
        const sim = yield* withSim({ faults: [lost("POST", path)] })
        const origin = sim.info.imageOrigin?.files[0]
        assert.isDefined(origin)
        const content = yield* run(sim, "rest", (pve) =>
          Effect.gen(function* () {
            const result = yield* pve.downloadUrl({
              node: "pve",
              storage: "local",
              url: origin?.url ?? "",
              content: "import",
              // stored (and its task named) as noble_image.qcow2
              filename: "noble image.qcow2"
            })
            const downloads = tasksOf(sim, "download")
            assert.lengthOf(downloads, 1, "PVE downloaded the image once")
            assert.strictEqual(downloads[0]?.id, "noble_image.qcow2")
            assert.strictEqual(result.upid, downloads[0]?.upid)
            assert.strictEqual(result.exitstatus, "OK")
            return yield* pve.storageContent("pve", "local", "import")
          })
        )
        assert.deepStrictEqual(
          content.map((c) => c.volid),
          ["local:import/noble_image.qcow2"]
        )
        assert.deepStrictEqual(sent(sim, "POST", path), ["api POST lost"])
      })
  )

  it.live("a task that failed is that call's failure (the VM's lock), not a second start's", () =>
    Effect.gen(function* () {
      const path = "/nodes/pve/qemu/102/status/start"
      const sim = yield* withSim({ faults: [lost("POST", path)] })
      const exit = yield* Effect.exit(run(sim, "rest", (pve) => pve.startVm("pve", 102)))
      const e = errorOf(exit)
      assert.deepInclude(e.reason, { _tag: "TaskFailed", exitstatus: "VM is locked (backup)" })
      assert.lengthOf(tasksOf(sim, "qmstart", "102"), 1)
      assert.deepStrictEqual(sent(sim, "POST", path), ["api POST lost"])
    })
  )

  it.live("create: the qmcreate task of the lost answer is waited for; the VM is not reported as someone else's", () =>
    Effect.gen(function* () {
      const path = "/nodes/pve/qemu"
      const sim = yield* withSim({ faults: [lost("POST", path)] })
      const result = yield* run(sim, "rest", (pve) =>
        pve.createVm({ node: "pve", vmid: 200, name: "fresh", cores: 1, memory: 512 })
      )
      const creates = tasksOf(sim, "qmcreate", "200")
      assert.lengthOf(creates, 1)
      assert.strictEqual(result.upid, creates[0]?.upid)
      assert.deepStrictEqual(sent(sim, "POST", path), ["api POST lost"])
    })
  )

  it.live("resize: one resize task", () =>
    Effect.gen(function* () {
      const path = "/nodes/pve/qemu/103/resize"
      const sim = yield* withSim({
        vms: [
          ...(scenario().vms ?? []),
          { ...idle, config: { ...idle.config, scsi0: "local-lvm:vm-103-disk-0,size=4G" } }
        ],
        faults: [lost("PUT", path)]
      })
      const result = yield* run(sim, "rest", (pve) => pve.resizeDisk("pve", 103, "scsi0", "+1G"))
      const resizes = tasksOf(sim, "resize", "103")
      assert.lengthOf(resizes, 1)
      assert.strictEqual(result?.upid, resizes[0]?.upid)
      assert.deepStrictEqual(sent(sim, "PUT", path), ["api PUT lost"])
    })
  )
})

describe("other writes whose answer was lost", () => {
  it.live("a config change carrying the digest it was read with: written once, the call succeeds", () =>
    Effect.gen(function* () {
      const path = "/nodes/pve/qemu/103/config"
      const sim = yield* withSim({ vms, faults: [lost("PUT", path)] })
      yield* run(sim, "rest", (pve) =>
        Effect.gen(function* () {
          const before = yield* pve.vmPending("pve", 103)
          yield* pve.updateVmConfig("pve", 103, { tags: "a;b", cores: 2 }, { digest: before.digest })
          const after = yield* pve.vmConfig("pve", 103)
          assert.deepStrictEqual(after.tags, ["a", "b"])
          assert.strictEqual(after.cores, 2)
        })
      )
      assert.deepStrictEqual(sent(sim, "PUT", path), ["api PUT lost"])
    })
  )

  it.live("a guest command is not run a second time: the caller gets the reset", () =>
    Effect.gen(function* () {
      const path = "/nodes/pve/qemu/100/agent/exec"
      const sim = yield* withSim({ faults: [lost("POST", path)] })
      const exit = yield* Effect.exit(run(sim, "rest", (pve) => pve.guestExec("pve", 100, ["echo", "hello"])))
      assert.isTrue(Exit.isFailure(exit))
      assert.deepInclude(errorOf(exit).reason, { _tag: "Unreachable", kind: "reset" })
      assert.deepStrictEqual(sent(sim, "POST", path), ["api POST lost"])
    })
  )
})

describe("what a failure that may have reached PVE leads to (stub transport, TestClock)", () => {
  const NOW = 1_800_000_000
  const upid = (type: string, id: string, at = NOW) =>
    `UPID:pve:00001234:00ABCDEF:${at.toString(16).toUpperCase()}:${type}:${id}:root@pam!homelab:`
  const reset = new Unreachable({ kind: "reset", transport: "rest", code: "ECONNRESET", detail: "socket hang up" })
  const timeout = new Unreachable({ kind: "timeout", transport: "rest", code: "ETIMEDOUT", detail: "no answer" })
  const summary = (id: string, at: number, status?: string) => ({
    upid: upid("qmstart", id, at),
    node: "pve",
    type: "qmstart",
    id,
    user: "root@pam",
    tokenid: "homelab",
    starttime: at,
    ...(status !== undefined ? { status } : {})
  })

  /**
   * A transport answering from `answer` (a reason fails the request), recording `METHOD path` of each request; task
   * status reads say the task ended OK.
   */
  const stub = (answer: (request: PveRequest, n: number) => unknown) => {
    const seen: Array<string> = []
    const requests: Array<PveRequest> = []
    const api = makeProxmoxApi({
      call: (request) =>
        Effect.suspend(() => {
          seen.push(`${request.method} ${request.path.replace(/UPID:[^/]*/, "{upid}")}`)
          requests.push(request)
          if (request.path.endsWith("/status") && request.path.includes("/tasks/"))
            return Effect.succeed({
              node: "pve",
              status: "stopped",
              exitstatus: "OK",
              type: "qmstart",
              user: "root@pam"
            })
          const a = answer(
            request,
            requests.filter((r) => r.method === request.method && r.path === request.path).length
          )
          return a instanceof Error && "_tag" in a
            ? Effect.fail(
                new ProxmoxError({ operation: `${request.method} ${request.path}`, reason: a as ProxmoxErrorReason })
              )
            : Effect.succeed(a)
        })
    })
    return { api, seen, requests }
  }

  const start = "/nodes/pve/qemu/100/status/start"
  const tasks = "/nodes/pve/tasks"

  /** Runs `effect` with the test clock at `NOW` and lets every backoff pass. */
  const settle = <A>(effect: Effect.Effect<A, ProxmoxError>) =>
    Effect.gen(function* () {
      yield* TestClock.setTime(NOW * 1000)
      const fiber = yield* Effect.forkChild(Effect.exit(effect))
      yield* TestClock.adjust("10 seconds")
      return yield* Fiber.join(fiber)
    })

  it.effect("a reset, and no task of it at PVE: looked up, then sent again", () =>
    Effect.gen(function* () {
      const { api, seen, requests } = stub((r, n) =>
        r.path === start ? (n === 1 ? reset : upid("qmstart", "100")) : r.path === tasks ? [] : undefined
      )
      const exit = yield* settle(api.startVm("pve", 100))
      assert.isTrue(Exit.isSuccess(exit))
      assert.deepStrictEqual(seen, [
        `POST ${start}`,
        `GET ${tasks}`,
        `POST ${start}`,
        "GET /nodes/pve/tasks/{upid}/status"
      ])
      // the lookup: every task (running or finished) of that VM since the request, less the clock skew allowed
      assert.deepStrictEqual(requests[1]?.params, {
        source: "all",
        since: NOW - CLOCK_SKEW_SECONDS,
        vmid: 100,
        typefilter: undefined
      })
    })
  )

  it.effect("a timeout, and its task at PVE: that task is the result; the request is not sent again", () =>
    Effect.gen(function* () {
      const { api, seen } = stub((r) =>
        r.path === start
          ? timeout
          : r.path === tasks
            ? [summary("100", NOW + 1, "RUNNING"), summary("101", NOW)]
            : undefined
      )
      const exit = yield* settle(api.startVm("pve", 100))
      assert.isTrue(Exit.isSuccess(exit))
      if (Exit.isSuccess(exit)) assert.strictEqual(exit.value.upid, upid("qmstart", "100", NOW + 1))
      assert.deepStrictEqual(seen, [`POST ${start}`, `GET ${tasks}`, "GET /nodes/pve/tasks/{upid}/status"])
    })
  )

  it.effect("a timeout, and no task of it: the timeout is the caller's, the request sent once", () =>
    Effect.gen(function* () {
      const { api, seen } = stub((r) => (r.path === start ? timeout : r.path === tasks ? [] : undefined))
      const exit = yield* settle(api.startVm("pve", 100))
      assert.deepInclude(errorOf(exit).reason, { _tag: "Unreachable", kind: "timeout" })
      assert.deepStrictEqual(seen, [`POST ${start}`, `GET ${tasks}`])
    })
  )

  it.effect("a task of that VM started before the request (more than the clock skew) is not its task", () =>
    Effect.gen(function* () {
      const { api, seen } = stub((r, n) =>
        r.path === start
          ? n === 1
            ? reset
            : upid("qmstart", "100")
          : r.path === tasks
            ? [summary("100", NOW - CLOCK_SKEW_SECONDS - 1, "OK")]
            : undefined
      )
      const exit = yield* settle(api.startVm("pve", 100))
      assert.isTrue(Exit.isSuccess(exit))
      if (Exit.isSuccess(exit)) assert.strictEqual(exit.value.upid, upid("qmstart", "100"))
      assert.deepStrictEqual(seen.slice(0, 3), [`POST ${start}`, `GET ${tasks}`, `POST ${start}`])
    })
  )

  it.effect("595 (pveproxy never reached the daemon): sent again without a lookup", () =>
    Effect.gen(function* () {
      const refused = new ProxyError({ status: 595, detail: "Errors during connection establishment", explanation: "" })
      const { api, seen } = stub((r, n) =>
        r.path === start ? (n === 1 ? refused : upid("qmstart", "100")) : undefined
      )
      const exit = yield* settle(api.startVm("pve", 100))
      assert.isTrue(Exit.isSuccess(exit))
      assert.deepStrictEqual(seen, [`POST ${start}`, `POST ${start}`, "GET /nodes/pve/tasks/{upid}/status"])
    })
  )

  describe("a config change carrying a digest", () => {
    const config = "/nodes/pve/qemu/100/config"
    const pending = (digest: string, tags: string) => [
      { key: "digest", value: digest },
      { key: "tags", value: tags }
    ]

    it.effect("the digest is unchanged: not written, sent again", () =>
      Effect.gen(function* () {
        const { api, seen } = stub((r, n) =>
          r.path === config ? (n === 1 ? reset : null) : r.path.endsWith("/pending") ? pending("d1", "old") : undefined
        )
        const exit = yield* settle(api.updateVmConfig("pve", 100, { tags: "new" }, { digest: "d1" }))
        assert.isTrue(Exit.isSuccess(exit))
        assert.deepStrictEqual(seen, [`PUT ${config}`, "GET /nodes/pve/qemu/100/pending", `PUT ${config}`])
      })
    )

    it.effect("the digest changed and the config holds other values: someone else's change, the reset surfaces", () =>
      Effect.gen(function* () {
        const { api, seen } = stub((r) =>
          r.path === config ? reset : r.path.endsWith("/pending") ? pending("d2", "theirs") : undefined
        )
        const exit = yield* settle(api.updateVmConfig("pve", 100, { tags: "new" }, { digest: "d1" }))
        assert.deepInclude(errorOf(exit).reason, { _tag: "Unreachable", kind: "reset" })
        assert.deepStrictEqual(seen, [`PUT ${config}`, "GET /nodes/pve/qemu/100/pending"])
      })
    )

    it.effect(
      "without a digest the change is sent again as before (a second write of the same values is harmless)",
      () =>
        Effect.gen(function* () {
          const { api, seen } = stub((r, n) => (r.path === config ? (n === 1 ? reset : null) : undefined))
          const exit = yield* settle(api.updateVmConfig("pve", 100, { tags: "new" }))
          assert.isTrue(Exit.isSuccess(exit))
          assert.deepStrictEqual(seen, [`PUT ${config}`, `PUT ${config}`])
        })
    )
  })
})
