import { assert, describe, it } from "@effect/vitest"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { CommandFailed } from "../../src/CommandFailed.js"
import { ExitCode } from "../../src/ExitCode.js"
import { type EventStream, withEventStream } from "../../src/render/EventStream.js"

/** Runs `withEventStream` with a Console that keeps what is printed; the lines as parsed, and how the run ended. */
const run = <A, E>(json: boolean, body: (stream: EventStream | undefined) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const printed: Array<string> = []
    const console = Object.assign(Object.create(globalThis.console) as Console.Console, {
      log: (...args: ReadonlyArray<unknown>) => printed.push(args.join(" "))
    })
    const exit = yield* withEventStream(json, body).pipe(Effect.provideService(Console.Console, console), Effect.exit)
    return { exit, lines: printed.map((l) => JSON.parse(l) as Record<string, unknown>) }
  })

const line = (type: string, fields: Record<string, unknown> = {}) => ({ v: 1, type, time: "t", ...fields })

const refused = new CommandFailed({
  userMessage: "Proxmox: refused\nhint: check the token",
  exitCode: ExitCode.Proxmox
})

describe("withEventStream", () => {
  it.effect("without --json: no stream, nothing printed, the failure unchanged", () =>
    Effect.gen(function* () {
      const { exit, lines } = yield* run(false, (stream) => {
        assert.isUndefined(stream)
        return Effect.fail(refused)
      })
      assert.deepStrictEqual(lines, [])
      assert.strictEqual(exit._tag, "Failure")
    })
  )

  it.effect("a failure before the summary ends the stream with the error and a summary carrying its exit code", () =>
    Effect.gen(function* () {
      const { exit, lines } = yield* run(true, (stream) =>
        Effect.gen(function* () {
          stream?.emit(line("notice"))
          return yield* refused
        })
      )
      assert.deepStrictEqual(
        lines.map((l) => l.type),
        ["notice", "error", "summary"]
      )
      assert.deepStrictEqual(lines[1]?.error, {
        code: "proxmox",
        message: "Proxmox: refused",
        hint: "check the token",
        node: null,
        exitCode: ExitCode.Proxmox
      })
      assert.deepInclude(lines[2], {
        v: 1,
        applied: false,
        outcomes: [],
        convergence: null,
        exitCode: ExitCode.Proxmox,
        code: "proxmox",
        message: "Proxmox: refused"
      })
      assert.strictEqual(exit._tag, "Failure", "the command still fails with its error")
    })
  )

  it.effect(
    "a failure after the summary adds nothing (the summary carries it); a later run's lines reopen the stream",
    () =>
      Effect.gen(function* () {
        const after = yield* run(true, (stream) =>
          Effect.gen(function* () {
            stream?.emit(line("summary", { exitCode: ExitCode.NotConverged }))
            return yield* new CommandFailed({ userMessage: "did not converge", exitCode: ExitCode.NotConverged })
          })
        )
        assert.deepStrictEqual(
          after.lines.map((l) => l.type),
          ["summary"]
        )
        // demo: a second apply after the first one's summary, failing before its own
        const demo = yield* run(true, (stream) =>
          Effect.gen(function* () {
            stream?.emit(line("action.started", { id: "a", node: "pve", action: "CreateVm" }))
            stream?.emit(line("action.done", { id: "a", node: "pve", detail: "VM 100 running" }))
            stream?.emit(line("summary", { exitCode: 0 }))
            stream?.emit(line("demo.step"))
            return yield* refused
          })
        )
        assert.deepStrictEqual(
          demo.lines.map((l) => l.type),
          ["action.started", "action.done", "summary", "demo.step", "error", "summary"]
        )
        assert.deepInclude(demo.lines.at(-1), { applied: false, outcomes: [], exitCode: ExitCode.Proxmox })
      })
  )

  it.effect(
    "a bug after actions ran: an internal error, and a summary with the outcomes the action lines reported",
    () =>
      Effect.gen(function* () {
        const { lines } = yield* run(true, (stream) =>
          Effect.gen(function* () {
            stream?.emit(line("action.started", { id: "a", node: "pve", action: "CreateVm" }))
            stream?.emit(line("action.started", { id: "b", node: "pve", action: "JoinK3s" }))
            stream?.emit(line("action.started", { id: "c", node: "n2", action: "RecreateVm" }))
            stream?.emit(line("action.done", { id: "a", node: "pve", detail: "VM 100 running" }))
            stream?.emit(line("action.failed", { id: "b", node: "pve", error: "join failed", hint: "check k3s" }))
            stream?.emit(line("action.skipped", { id: "c", node: "n2", reason: "not confirmed", unconfirmed: true }))
            return yield* Effect.die(new Error("boom"))
          })
        )
        assert.deepStrictEqual(
          lines.map((l) => l.type),
          [
            "action.started",
            "action.started",
            "action.started",
            "action.done",
            "action.failed",
            "action.skipped",
            "error",
            "summary"
          ]
        )
        assert.deepInclude(lines[6]?.error as object, { code: "internal", exitCode: ExitCode.Error })
        assert.deepInclude(lines[7], { applied: true, exitCode: ExitCode.Error, code: "internal" })
        assert.deepStrictEqual(lines[7]?.outcomes, [
          { id: "a", action: "CreateVm", node: "pve", status: "done", detail: "VM 100 running", hint: null, ip: null },
          {
            id: "b",
            action: "JoinK3s",
            node: "pve",
            status: "failed",
            detail: "join failed",
            hint: "check k3s",
            ip: null
          },
          {
            id: "c",
            action: "RecreateVm",
            node: "n2",
            status: "unconfirmed",
            detail: "not confirmed",
            hint: null,
            ip: null
          }
        ])
      })
  )

  it.effect("interrupted before its summary: the stream ends with an interrupted line (nothing in flight)", () =>
    Effect.gen(function* () {
      const { exit, lines } = yield* run(true, (stream) =>
        Effect.gen(function* () {
          stream?.emit(line("notice"))
          return yield* Effect.interrupt
        })
      )
      assert.deepStrictEqual(
        lines.map((l) => l.type),
        ["notice", "interrupted"]
      )
      assert.deepStrictEqual(lines[1]?.inFlight, [])
      assert.strictEqual(exit._tag, "Failure")
    })
  )
})
