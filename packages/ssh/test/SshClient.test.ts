import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/testing/TestClock"
import { SshClient, type SshClientShape, shellQuote } from "../src/index.js"
import type { TestSshServer } from "../src/testing/index.js"
import { client, clientOptions, tempDir, testServer, trust } from "./helpers.js"

const setup = Effect.gen(function* () {
  const dir = yield* tempDir
  const server = yield* testServer()
  trust(dir, server)
  const ssh = yield* client(clientOptions(dir))
  const target = { host: "127.0.0.1", port: server.port, user: "alice" }
  return { dir, server, ssh, target }
})

/** Waits until `holds` is true of the server, checked on its events (connections, commands), not on a timer. */
const until = (server: TestSshServer, holds: (server: TestSshServer) => boolean) =>
  Effect.promise(() => server.until(holds))

describe("SshClient.exec", () => {
  it.live("returns stdout, stderr and the exit code as data", () =>
    Effect.gen(function* () {
      const { ssh, target } = yield* setup
      const result = yield* ssh.exec(target, "printf out; printf err >&2; exit 3")
      assert.deepStrictEqual(result, { stdout: "out", stderr: "err", exitCode: 3, signal: null })
    })
  )

  it.live("reports a command killed by a signal (exitCode null), and execOrFail fails on it", () =>
    Effect.gen(function* () {
      const { ssh, target } = yield* setup
      const result = yield* ssh.exec(target, "echo before; kill -9 $$")
      assert.deepStrictEqual(result, { stdout: "before\n", stderr: "", exitCode: null, signal: "SIGKILL" })
      const error = yield* Effect.flip(ssh.execOrFail(target, "kill -TERM $$"))
      assert.strictEqual(error.reason._tag, "CommandFailed")
      if (error.reason._tag === "CommandFailed") assert.strictEqual(error.reason.signal, "SIGTERM")
      assert.include(error.message, "killed by signal SIGTERM")
    })
  )

  it.live("reuses one TCP connection for many sequential and concurrent commands", () =>
    Effect.gen(function* () {
      const { server, ssh, target } = yield* setup
      for (let i = 0; i < 10; i++) {
        const { stdout } = yield* ssh.exec(target, `echo ${i}`)
        assert.strictEqual(stdout, `${i}\n`)
      }
      const outputs = yield* Effect.forEach([1, 2, 3, 4, 5, 6], (i) => ssh.exec(target, `echo c${i}`), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(
        outputs.map((r) => r.stdout),
        ["c1\n", "c2\n", "c3\n", "c4\n", "c5\n", "c6\n"]
      )
      assert.strictEqual(server.connectionCount, 1)
      assert.strictEqual(server.commands.length, 16)
    })
  )

  it.live("runs commands concurrently on one connection (a barrier only all-at-once can pass)", () =>
    Effect.gen(function* () {
      const { dir, server, ssh, target } = yield* setup
      const barrier = path.join(dir, "barrier")
      fs.mkdirSync(barrier)
      const command = (i: number) =>
        `touch ${shellQuote(`${barrier}/${i}`)}; while [ "$(ls ${shellQuote(barrier)} | wc -l)" -lt 4 ]; do sleep 0.01; done; echo ${i}`
      const results = yield* Effect.forEach(
        [0, 1, 2, 3],
        (i) => ssh.exec(target, command(i), { timeout: "60 seconds" }),
        {
          concurrency: "unbounded"
        }
      )
      assert.deepStrictEqual(
        results.map((r) => r.stdout),
        ["0\n", "1\n", "2\n", "3\n"]
      )
      assert.strictEqual(server.connectionCount, 1)
    })
  )

  it.live("feeds stdin (string, bytes, Redacted) and then EOF", () =>
    Effect.gen(function* () {
      const { ssh, target } = yield* setup
      assert.strictEqual((yield* ssh.exec(target, "cat", { stdin: "hello\nworld" })).stdout, "hello\nworld")
      const bytes = new Uint8Array([0, 1, 2, 255, 10])
      assert.strictEqual((yield* ssh.exec(target, "od -An -tu1", { stdin: bytes })).stdout.trim(), "0   1   2 255  10")
      const secret = yield* ssh.exec(target, "wc -c", { stdin: Redacted.make("s3cret-token") })
      assert.strictEqual(secret.stdout.trim(), "12")
      const noStdin = yield* ssh.exec(target, "cat; echo done", { timeout: "60 seconds" })
      assert.strictEqual(noStdin.stdout, "done\n")
    })
  )

  it.live("collects 10 MB of output", () =>
    Effect.gen(function* () {
      const { ssh, target } = yield* setup
      const result = yield* ssh.exec(target, "head -c 10485760 /dev/zero | tr '\\0' x")
      assert.strictEqual(result.exitCode, 0)
      assert.strictEqual(result.stdout.length, 10 * 1024 * 1024)
      assert.isTrue(result.stdout.startsWith("xxxx") && result.stdout.endsWith("xxxx"))
    })
  )

  it.live("passes env as quoted exports (the server rejects env requests)", () =>
    Effect.gen(function* () {
      const { server, ssh, target } = yield* setup
      const value = "a b'c $(id) `x` \n *"
      const result = yield* ssh.exec(target, 'printf %s "$GREETING"', { env: { GREETING: value } })
      assert.strictEqual(result.stdout, value)
      assert.strictEqual(server.commands.at(-1), `export GREETING=${shellQuote(value)}; printf %s "$GREETING"`)
      const bad = yield* Effect.exit(ssh.exec(target, "true", { env: { "BAD NAME": "x" } }))
      assert.isTrue(Exit.isFailure(bad) && Exit.hasDies(bad))
    })
  )

  it.live("sudo runs through `sudo -n -- sh -c` with the env inside", () =>
    Effect.gen(function* () {
      const { server, ssh, target } = yield* setup
      yield* ssh.exec(target, "id -u", { sudo: true, env: { X: "1" } })
      assert.strictEqual(server.commands.at(-1), `sudo -n -- sh -c ${shellQuote("export X=1; id -u")}`)
    })
  )

  it.live("sudo: env survives sudo's environment reset and a password prompt never hangs", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const bin = path.join(dir, "bin")
      fs.mkdirSync(bin)
      // Like sudo: without -n it would wait for a password on the terminal; it resets the environment.
      fs.writeFileSync(
        path.join(bin, "sudo"),
        [
          "#!/bin/sh",
          'if [ "$1" != "-n" ]; then read -r password </dev/tty; fi',
          'if [ -n "$SUDO_DENY" ]; then echo "sudo: a password is required" >&2; exit 1; fi',
          "shift",
          'if [ "$1" = "--" ]; then shift; fi',
          'exec env -i PATH=/usr/bin:/bin "$@"',
          ""
        ].join("\n"),
        { mode: 0o755 }
      )
      const server = yield* testServer({ shellEnv: { PATH: `${bin}:/usr/bin:/bin` } })
      trust(dir, server)
      const ssh = yield* client(clientOptions(dir))
      const target = { host: "127.0.0.1", port: server.port, user: "alice" }
      const ok = yield* ssh.exec(target, 'printf %s "$GREETING"; cat', {
        sudo: true,
        env: { GREETING: "it's $(here) " },
        stdin: "and stdin"
      })
      assert.deepStrictEqual(ok, { stdout: "it's $(here) and stdin", stderr: "", exitCode: 0, signal: null })
      const denied = yield* ssh.exec(target, "true", { sudo: true, env: { SUDO_DENY: "1" }, timeout: "60 seconds" })
      assert.strictEqual(denied.exitCode, 0, "env is applied inside sudo, so the fake sudo itself does not see it")
      const prompt = yield* Effect.flip(ssh.execOrFail(target, "SUDO_DENY=1 sudo -n true", { timeout: "60 seconds" }))
      assert.strictEqual(prompt.reason._tag, "CommandFailed")
      if (prompt.reason._tag === "CommandFailed") assert.include(prompt.reason.stderrTail, "password is required")
    })
  )

  it.live("waits for a free channel instead of exceeding the server's MaxSessions", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer({ maxSessions: 3 })
      trust(dir, server)
      const target = { host: "127.0.0.1", port: server.port, user: "alice" }
      const polite = yield* client(clientOptions(dir, { maxSessionsPerConnection: 3, maxConnectionsPerHost: 1 }))
      const results = yield* Effect.forEach(
        Array.from({ length: 12 }, (_, i) => i),
        (i) => polite.exec(target, `sleep 0.02; echo ${i}`),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(
        results.map((r) => r.stdout),
        Array.from({ length: 12 }, (_, i) => `${i}\n`)
      )
      assert.strictEqual(server.rejectedSessions, 0)
      assert.strictEqual(server.connectionCount, 1)
      const greedy = yield* client(clientOptions(dir, { maxSessionsPerConnection: 12 }))
      const outcomes = yield* Effect.forEach(
        Array.from({ length: 12 }, (_, i) => i),
        (i) => Effect.result(greedy.exec(target, `sleep 0.2; echo ${i}`)),
        { concurrency: "unbounded" }
      )
      const refused = outcomes.filter((o) => o._tag === "Failure")
      assert.isAbove(refused.length, 0)
      for (const o of refused) if (o._tag === "Failure") assert.strictEqual(o.failure.reason._tag, "ChannelFailed")
    })
  )

  it.live("opens another connection while every session of the open ones is taken, up to maxConnectionsPerHost", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer({ maxSessions: 2 })
      trust(dir, server)
      const target = { host: "127.0.0.1", port: server.port, user: "alice" }
      const ssh = yield* client(clientOptions(dir, { maxSessionsPerConnection: 2, maxConnectionsPerHost: 3 }))
      const go = path.join(dir, "go")
      // commands that run until `go` exists: all six run at once only on three connections of two sessions each
      const blocked = (i: number) => ssh.exec(target, `while [ ! -e ${go} ]; do sleep 0.01; done; echo ${i}`)
      const fibers = yield* Effect.forEach([1, 2, 3, 4, 5, 6], (i) => Effect.forkChild(blocked(i)))
      yield* until(server, (s) => s.commands.length === 6)
      assert.strictEqual(server.connectionCount, 3)
      // at the limit, a seventh waits for a session instead of opening a fourth connection
      const seventh = yield* Effect.forkChild(blocked(7))
      fs.writeFileSync(go, "")
      const results = yield* Effect.forEach([...fibers, seventh], Fiber.join)
      assert.deepStrictEqual(
        results.map((r) => r.stdout),
        ["1\n", "2\n", "3\n", "4\n", "5\n", "6\n", "7\n"]
      )
      assert.strictEqual(server.connectionCount, 3)
      assert.strictEqual(server.rejectedSessions, 0)
      // sequential commands afterwards use a session free on the first connection: no new connection
      yield* ssh.exec(target, "true")
      assert.strictEqual(server.connectionCount, 3)
    })
  )

  it.effect("times out a command, kills it and keeps the connection usable", () =>
    Effect.gen(function* () {
      // the timeout runs on the TestClock: it passes once the server has the command (which would run for 10 minutes)
      const { server, ssh, target } = yield* setup
      const fiber = yield* Effect.forkChild(Effect.flip(ssh.exec(target, "sleep 600", { timeout: "200 millis" })))
      yield* until(server, (s) => s.commands.includes("sleep 600"))
      yield* TestClock.adjust("200 millis")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error.reason._tag, "Timeout")
      if (error.reason._tag === "Timeout") {
        assert.strictEqual(error.reason.timeoutMs, 200)
        assert.include(error.reason.operation, "sleep 600")
      }
      assert.strictEqual((yield* ssh.exec(target, "echo still here")).stdout, "still here\n")
      assert.strictEqual(server.connectionCount, 1)
    })
  )

  it.live("fails with Disconnected when the connection drops mid-command, then reconnects", () =>
    Effect.gen(function* () {
      const { server, ssh, target } = yield* setup
      yield* ssh.exec(target, "true")
      const fiber = yield* Effect.forkChild(ssh.exec(target, "sleep 5"))
      yield* until(server, (s) => s.commands.includes("sleep 5"))
      server.dropConnections()
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error.reason._tag, "Disconnected")
      assert.strictEqual((yield* ssh.exec(target, "echo back")).stdout, "back\n")
      assert.strictEqual(server.connectionCount, 2)
    })
  )

  it.live("close(target) drops the pooled connection; the next call connects again", () =>
    Effect.gen(function* () {
      const { server, ssh, target } = yield* setup
      yield* ssh.exec(target, "true")
      yield* ssh.close(target)
      yield* until(server, (s) => s.openConnections === 0)
      yield* ssh.exec(target, "true")
      assert.strictEqual(server.connectionCount, 2)
    })
  )

  it.live("closes its connections when the layer's scope closes", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      trust(dir, server)
      const scope = yield* Scope.make()
      const ssh = yield* client(clientOptions(dir)).pipe(Scope.provide(scope))
      yield* ssh.exec({ host: "127.0.0.1", port: server.port, user: "alice" }, "true")
      assert.strictEqual(server.openConnections, 1)
      yield* Scope.close(scope, Exit.void)
      yield* until(server, (s) => s.openConnections === 0)
    })
  )
})

describe("SshClient.execOrFail", () => {
  it.live("fails with CommandFailed carrying the exit code and the stderr tail", () =>
    Effect.gen(function* () {
      const { ssh, target } = yield* setup
      const ok = yield* ssh.execOrFail(target, "echo fine")
      assert.strictEqual(ok.stdout, "fine\n")
      const error = yield* Effect.flip(ssh.execOrFail(target, "echo first >&2; echo 'disk full' >&2; exit 42"))
      assert.strictEqual(error._tag, "SshError")
      assert.strictEqual(error.port, yield* Effect.succeed(target.port))
      assert.strictEqual(error.reason._tag, "CommandFailed")
      if (error.reason._tag === "CommandFailed") {
        assert.strictEqual(error.reason.exitCode, 42)
        assert.strictEqual(error.reason.stderrTail, "first\ndisk full\n")
        assert.strictEqual(error.reason.command, "echo first >&2; echo 'disk full' >&2; exit 42")
      }
      assert.include(error.message, "exited with code 42")
      assert.include(error.message, "disk full")
    })
  )

  it.live("is catchable by reason", () =>
    Effect.gen(function* () {
      const { ssh, target } = yield* setup
      const code = yield* ssh.execOrFail(target, "exit 7").pipe(
        Effect.as(0),
        Effect.catchReason("SshError", "CommandFailed", (reason) => Effect.succeed(reason.exitCode ?? -1))
      )
      assert.strictEqual(code, 7)
    })
  )
})

describe("SshClient.execStream", () => {
  const text = (data: Uint8Array) => Buffer.from(data).toString("utf8")

  it.live("streams stdout/stderr chunks in order and ends with the exit element", () =>
    Effect.gen(function* () {
      const { ssh, target } = yield* setup
      const chunks = yield* Stream.runCollect(
        ssh.execStream(target, "echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three; exit 4")
      )
      const last = chunks.at(-1)
      assert.deepStrictEqual(last, { fd: "exit", exitCode: 4, signal: null })
      const output = chunks.flatMap((c) => (c.fd === "exit" ? [] : [`${c.fd}:${text(c.data)}`])).join("")
      assert.strictEqual(output, "stdout:one\nstderr:two\nstdout:three\n")
    })
  )

  it.live("delivers the first chunk before the command ends", () =>
    Effect.gen(function* () {
      const { ssh, target } = yield* setup
      // the command does not end while the test runs (the stream's end closes the channel, which kills it): a first
      // chunk held back until the command ends never comes
      const first = yield* Stream.runCollect(ssh.execStream(target, "echo early; exec sleep 600").pipe(Stream.take(1)))
      assert.strictEqual(first.length, 1)
      const chunk = first[0]!
      assert.strictEqual(chunk.fd === "exit" ? "" : text(chunk.data), "early\n")
    })
  )

  it.live("failOnNonZero turns a non-zero exit into CommandFailed", () =>
    Effect.gen(function* () {
      const { ssh, target } = yield* setup
      const error = yield* Effect.flip(
        Stream.runCollect(ssh.execStream(target, "echo progress; echo boom >&2; exit 2", { failOnNonZero: true }))
      )
      assert.strictEqual(error.reason._tag, "CommandFailed")
      if (error.reason._tag === "CommandFailed") {
        assert.strictEqual(error.reason.exitCode, 2)
        assert.strictEqual(error.reason.stderrTail, "boom\n")
      }
    })
  )
})

describe("SshClient with a jump host", () => {
  it.live("reaches a target through forwardOut on the jump's connection", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const jump = yield* testServer()
      const inner = yield* testServer()
      trust(dir, jump)
      trust(dir, inner)
      const ssh = yield* client(clientOptions(dir))
      const jumpTarget = { host: "127.0.0.1", port: jump.port, user: "alice" }
      const target = { host: "127.0.0.1", port: inner.port, user: "alice", jump: jumpTarget }
      for (let i = 0; i < 3; i++) assert.strictEqual((yield* ssh.exec(target, "echo inner")).stdout, "inner\n")
      assert.strictEqual((yield* ssh.exec(jumpTarget, "echo jump")).stdout, "jump\n")
      assert.strictEqual(jump.connectionCount, 1)
      assert.strictEqual(inner.connectionCount, 1)
      assert.deepStrictEqual(jump.commands, ["echo jump"])
      assert.deepStrictEqual(inner.commands, ["echo inner", "echo inner", "echo inner"])
    })
  )

  it.live("checks the target's host key too", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const jump = yield* testServer()
      const inner = yield* testServer()
      trust(dir, jump)
      const ssh = yield* client(clientOptions(dir))
      const target = {
        host: "127.0.0.1",
        port: inner.port,
        user: "alice",
        jump: { host: "127.0.0.1", port: jump.port, user: "alice" }
      }
      const error = yield* Effect.flip(ssh.exec(target, "true"))
      assert.strictEqual(error.reason._tag, "HostKeyUnknown")
      assert.strictEqual(error.port, inner.port)
    })
  )
})

describe("SshClient.layer", () => {
  it.live("is provided like any service", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      trust(dir, server)
      const stdout = yield* Effect.gen(function* () {
        const ssh = yield* SshClient
        return (yield* ssh.exec({ host: "127.0.0.1", port: server.port, user: "alice" }, "echo via layer")).stdout
      }).pipe(Effect.provide(SshClient.layerWith(clientOptions(dir))))
      assert.strictEqual(stdout, "via layer\n")
    })
  )
})

describe("SshClient.layerWith", () => {
  it.live("gives each call its own client, even when both are built in one program", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      const target = { host: "127.0.0.1", port: server.port, user: "alice" }
      // Two consumers, as the CLI has them: one strict about host keys (the server is not in known_hosts), one not.
      class Strict extends Context.Service<Strict, SshClientShape>()("test/Strict") {}
      class Lenient extends Context.Service<Lenient, SshClientShape>()("test/Lenient") {}
      const theClient = Effect.gen(function* () {
        return yield* SshClient
      })
      const both = Layer.merge(
        Layer.effect(Strict, theClient).pipe(Layer.provide(SshClient.layerWith(clientOptions(dir)))),
        Layer.effect(Lenient, theClient).pipe(
          Layer.provide(SshClient.layerWith(clientOptions(dir, { knownHosts: { mode: "off" } })))
        )
      )
      const [refused, output] = yield* Effect.gen(function* () {
        const strict = yield* Strict
        const lenient = yield* Lenient
        return [yield* Effect.flip(strict.exec(target, "true")), yield* lenient.exec(target, "echo off")] as const
      }).pipe(Effect.provide(both))
      assert.strictEqual(refused.reason._tag, "HostKeyUnknown")
      assert.strictEqual(output.stdout, "off\n")
    })
  )
})
