import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/testing/TestClock"
import { fingerprintOf, KnownHosts, type SshError, type SshEvent } from "../src/index.js"
import { generateKeyPair } from "../src/testing/index.js"
import {
  client,
  clientOptions,
  closedPort,
  PASSWORD,
  silentServer,
  tempDir,
  testServer,
  trust,
  userKey
} from "./helpers.js"

/** The error as a user or a log would see it: its message and its JSON. */
const rendered = (error: SshError) => `${error.message}\n${JSON.stringify(error)}\n${String(error)}`

describe("SshError reasons", () => {
  it.live("Unreachable/Dns for a name that does not resolve", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const ssh = yield* client(clientOptions(dir))
      const error = yield* Effect.flip(ssh.exec({ host: "no-such-host.invalid", user: "alice" }, "true"))
      assert.strictEqual(error.host, "no-such-host.invalid")
      assert.strictEqual(error.port, 22)
      assert.strictEqual(error.reason._tag, "Unreachable")
      if (error.reason._tag === "Unreachable") assert.strictEqual(error.reason.kind, "Dns")
    })
  )

  it.live("Unreachable/Refused for a closed port", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const port = yield* closedPort
      const ssh = yield* client(clientOptions(dir))
      const error = yield* Effect.flip(ssh.exec({ host: "127.0.0.1", port, user: "alice" }, "true"))
      assert.strictEqual(error.port, port)
      assert.strictEqual(error.reason._tag, "Unreachable")
      if (error.reason._tag === "Unreachable") assert.strictEqual(error.reason.kind, "Refused")
    })
  )

  it.live("Unreachable/Timeout for a socket that never speaks SSH", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const silent = yield* silentServer
      const ssh = yield* client(clientOptions(dir, { connectTimeout: "300 millis" }))
      const error = yield* Effect.flip(ssh.exec({ host: "127.0.0.1", port: silent.port, user: "alice" }, "true"))
      assert.strictEqual(error.reason._tag, "Unreachable")
      if (error.reason._tag === "Unreachable") assert.strictEqual(error.reason.kind, "Timeout")
      assert.strictEqual(silent.sockets.size, 1)
    })
  )

  it.live("AuthRejected for an unknown key, naming the methods tried", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      trust(dir, server)
      const other = generateKeyPair("ed25519")
      const ssh = yield* client(clientOptions(dir, { auth: { privateKey: Redacted.make(other.private) } }))
      const error = yield* Effect.flip(ssh.exec({ host: "127.0.0.1", port: server.port, user: "alice" }, "true"))
      assert.strictEqual(error.reason._tag, "AuthRejected")
      if (error.reason._tag === "AuthRejected") {
        assert.deepStrictEqual(error.reason.methodsTried, ["publickey"])
        assert.strictEqual(error.reason.user, "alice")
      }
    })
  )

  it.live("AuthRejected for a wrong password, which appears nowhere in the error", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      trust(dir, server)
      const wrong = "hunter2-wrong-password"
      const ssh = yield* client(clientOptions(dir, { auth: { password: Redacted.make(wrong) } }))
      const error = yield* Effect.flip(ssh.exec({ host: "127.0.0.1", port: server.port, user: "bob" }, "true"))
      assert.strictEqual(error.reason._tag, "AuthRejected")
      if (error.reason._tag === "AuthRejected") {
        assert.deepStrictEqual(error.reason.methodsTried, ["password", "keyboard-interactive"])
      }
      assert.notInclude(rendered(error), wrong)
      assert.include(error.message, "bob")
    })
  )

  it.live("password auth works, per-target auth overrides the global one", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      trust(dir, server)
      const ssh = yield* client(clientOptions(dir))
      const bob = { host: "127.0.0.1", port: server.port, user: "bob", auth: { password: Redacted.make(PASSWORD) } }
      assert.strictEqual((yield* ssh.exec(bob, "echo hi")).stdout, "hi\n")
      assert.deepStrictEqual(
        server.authAttempts.map((a) => [a.user, a.method, a.accepted]),
        [["bob", "password", true]]
      )
    })
  )

  it.live("an encrypted private key needs its passphrase; a wrong one is AuthRejected without leaking it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const passphrase = "open-sesame-passphrase"
      const encrypted = generateKeyPair("ed25519", { passphrase })
      const server = yield* testServer({ users: [{ name: "carol", publicKeys: [encrypted.public] }] })
      trust(dir, server)
      const keyPath = path.join(dir, "id_ed25519")
      fs.writeFileSync(keyPath, encrypted.private, { mode: 0o600 })
      const target = { host: "127.0.0.1", port: server.port, user: "carol" }
      const good = yield* client(
        clientOptions(dir, { auth: { privateKeyPath: keyPath, passphrase: Redacted.make(passphrase) } })
      )
      assert.strictEqual((yield* good.exec(target, "echo unlocked")).stdout, "unlocked\n")
      const wrong = "not-the-passphrase"
      const bad = yield* client(
        clientOptions(dir, { auth: { privateKeyPath: keyPath, passphrase: Redacted.make(wrong) } })
      )
      const error = yield* Effect.flip(bad.exec(target, "true"))
      assert.strictEqual(error.reason._tag, "AuthRejected")
      assert.include(error.message, keyPath)
      assert.notInclude(rendered(error), wrong)
      assert.notInclude(rendered(error), passphrase)
    })
  )

  it.live("an RSA key works too", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const rsa = generateKeyPair("rsa")
      const server = yield* testServer({ users: [{ name: "dave", publicKeys: [rsa.public] }] })
      trust(dir, server)
      const ssh = yield* client(clientOptions(dir, { auth: { privateKey: Redacted.make(rsa.private) } }))
      assert.strictEqual(
        (yield* ssh.exec({ host: "127.0.0.1", port: server.port, user: "dave" }, "echo rsa")).stdout,
        "rsa\n"
      )
    })
  )

  it.live("HostKeyUnknown in strict mode, with the fingerprint seen and a hint", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      const ssh = yield* client(clientOptions(dir))
      const error = yield* Effect.flip(ssh.exec({ host: "127.0.0.1", port: server.port, user: "alice" }, "true"))
      assert.strictEqual(error.reason._tag, "HostKeyUnknown")
      if (error.reason._tag === "HostKeyUnknown") {
        assert.strictEqual(error.reason.fingerprint, server.hostFingerprint)
        assert.strictEqual(error.reason.host, `[127.0.0.1]:${server.port}`)
        assert.include(error.reason.hint, "ssh-keyscan")
      }
      assert.strictEqual(server.authAttempts.length, 0)
    })
  )

  it.live("HostKeyMismatch names the host, both OpenSSH fingerprints and what to do", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      const oldKey = Buffer.from(generateKeyPair("ed25519").public.split(" ")[1]!, "base64")
      fs.writeFileSync(
        path.join(dir, "known_hosts"),
        KnownHosts.add("", "127.0.0.1", server.port, oldKey, { hash: true })
      )
      const ssh = yield* client(
        clientOptions(dir, { knownHosts: { mode: "accept-new", path: path.join(dir, "known_hosts") } })
      )
      const error = yield* Effect.flip(ssh.exec({ host: "127.0.0.1", port: server.port, user: "alice" }, "true"))
      assert.strictEqual(error.reason._tag, "HostKeyMismatch")
      if (error.reason._tag === "HostKeyMismatch") {
        assert.strictEqual(error.reason.host, `[127.0.0.1]:${server.port}`)
        assert.strictEqual(error.reason.expected, fingerprintOf(oldKey))
        assert.strictEqual(error.reason.actual, server.hostFingerprint)
        assert.match(error.reason.actual, /^SHA256:[A-Za-z0-9+/]{43}$/)
        assert.include(error.reason.hint, `ssh-keygen -R '[127.0.0.1]:${server.port}'`)
        assert.include(error.reason.hint, "forgetHostKey")
      }
      assert.include(error.message, fingerprintOf(oldKey))
      assert.include(error.message, server.hostFingerprint)
      assert.strictEqual(server.authAttempts.length, 0)
    })
  )

  it.effect("Timeout and CommandFailed never contain secret stdin", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      trust(dir, server)
      const ssh = yield* client(clientOptions(dir))
      const target = { host: "127.0.0.1", port: server.port, user: "alice" }
      const secret = "k3s-token-SECRET-VALUE"
      const failed = yield* Effect.flip(
        ssh.execOrFail(target, "cat > /dev/null; exit 1", { stdin: Redacted.make(secret) })
      )
      assert.strictEqual(failed.reason._tag, "CommandFailed")
      assert.notInclude(rendered(failed), secret)
      // the timeout runs on the TestClock: it passes once the server has the command
      const timing = yield* Effect.forkChild(
        Effect.flip(ssh.exec(target, "sleep 600", { stdin: Redacted.make(secret), timeout: "100 millis" }))
      )
      yield* Effect.promise(() => server.until((s) => s.commands.includes("sleep 600")))
      yield* TestClock.adjust("100 millis")
      const timedOut = yield* Fiber.join(timing)
      assert.strictEqual(timedOut.reason._tag, "Timeout")
      assert.notInclude(rendered(timedOut), secret)
    })
  )
})

describe("secrets", () => {
  it.live("passwords, passphrases and secret stdin never reach logs, even when the errors are logged", () => {
    const lines: Array<string> = []
    const capture = Logger.make(({ message, cause }) => {
      lines.push(`${JSON.stringify(message)} ${Cause.pretty(cause)}`)
    })
    return Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      const password = "pw-NEVER-LOGGED"
      const passphrase = "pp-NEVER-LOGGED"
      const stdin = "stdin-NEVER-LOGGED"
      const knownHosts = path.join(dir, "known_hosts")
      const target = { host: "127.0.0.1", port: server.port, user: "bob" }
      const withPassword = yield* client(
        clientOptions(dir, {
          auth: { password: Redacted.make(password) },
          knownHosts: { mode: "accept-new", path: knownHosts }
        })
      )
      const authError = yield* Effect.flip(withPassword.exec(target, "true"))
      yield* Effect.logError("auth failed", authError)
      const encrypted = generateKeyPair("ed25519", { passphrase: "the-real-one" })
      const withKey = yield* client(
        clientOptions(dir, {
          auth: { privateKey: Redacted.make(encrypted.private), passphrase: Redacted.make(passphrase) },
          knownHosts: { mode: "off" }
        })
      )
      const keyError = yield* Effect.flip(withKey.exec(target, "true"))
      yield* Effect.logError(keyError)
      trust(dir, server)
      const ok = yield* client(clientOptions(dir))
      const failed = yield* Effect.flip(
        ok.execOrFail({ ...target, user: "alice" }, "cat >/dev/null; exit 9", { stdin: Redacted.make(stdin) })
      )
      yield* Effect.logError("command failed", failed)
      assert.isAtLeast(lines.length, 4)
      assert.isTrue(lines.some((l) => l.includes("HostKeyCheckingDisabled") || l.includes("host key checking is off")))
      for (const line of lines) {
        for (const secret of [password, passphrase, stdin]) assert.notInclude(line, secret)
      }
    }).pipe(Effect.provide(Logger.layer([capture])))
  })
})

describe("known_hosts modes", () => {
  it.live("accept-new appends the key once, emits an event, and then strict trusts it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      const events: Array<SshEvent> = []
      const knownHosts = path.join(dir, "ssh", "known_hosts")
      const ssh = yield* client(clientOptions(dir, { events, knownHosts: { mode: "accept-new", path: knownHosts } }))
      const target = { host: "127.0.0.1", port: server.port, user: "alice" }
      yield* Effect.forEach([1, 2, 3], () => ssh.exec(target, "true"), { concurrency: "unbounded" })
      assert.strictEqual(fs.readFileSync(knownHosts, "utf8"), `${server.knownHostsLine()}\n`)
      assert.strictEqual(fs.statSync(knownHosts).mode & 0o777, 0o600)
      assert.deepStrictEqual(events, [
        {
          _tag: "HostKeyAdded",
          host: "127.0.0.1",
          port: server.port,
          keyType: "ssh-ed25519",
          fingerprint: server.hostFingerprint,
          knownHostsPath: knownHosts
        }
      ])
      const strict = yield* client(clientOptions(dir, { knownHosts: { mode: "strict", path: knownHosts } }))
      assert.strictEqual((yield* strict.exec(target, "echo trusted")).stdout, "trusted\n")
    })
  )

  it.live("accept-new can write hashed entries", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      const knownHosts = path.join(dir, "known_hosts")
      const ssh = yield* client(
        clientOptions(dir, { knownHosts: { mode: "accept-new", path: knownHosts, hashNewEntries: true } })
      )
      yield* ssh.exec({ host: "127.0.0.1", port: server.port, user: "alice" }, "true")
      const text = fs.readFileSync(knownHosts, "utf8")
      assert.match(text, /^\|1\|/)
      assert.notInclude(text, "127.0.0.1")
      assert.strictEqual(KnownHosts.find(KnownHosts.parse(text), "127.0.0.1", server.port).length, 1)
    })
  )

  it.live("off checks nothing and warns once through the event hook", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const a = yield* testServer()
      const b = yield* testServer()
      const events: Array<SshEvent> = []
      const knownHosts = path.join(dir, "known_hosts")
      fs.writeFileSync(knownHosts, `[127.0.0.1]:${a.port} ${generateKeyPair().public}\n`)
      const ssh = yield* client(clientOptions(dir, { events, knownHosts: { mode: "off", path: knownHosts } }))
      yield* ssh.exec({ host: "127.0.0.1", port: a.port, user: "alice" }, "true")
      yield* ssh.exec({ host: "127.0.0.1", port: b.port, user: "alice" }, "true")
      assert.deepStrictEqual(events, [{ _tag: "HostKeyCheckingDisabled" }])
    })
  )

  it.live("a key marked @revoked for the host is refused in every mode and never appended", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      const knownHosts = path.join(dir, "known_hosts")
      const revoked = `@revoked [127.0.0.1]:${server.port} ${server.hostPublicKey}\n`
      const target = { host: "127.0.0.1", port: server.port, user: "alice" }
      for (const mode of ["strict", "accept-new", "off"] as const) {
        // Alone, and next to a line that records the very same key as the host's: the revocation wins (OpenSSH).
        for (const text of [revoked, `${server.knownHostsLine()}\n${revoked}`]) {
          fs.writeFileSync(knownHosts, text)
          const events: Array<SshEvent> = []
          const ssh = yield* client(clientOptions(dir, { events, knownHosts: { mode, path: knownHosts } }))
          const error = yield* Effect.flip(ssh.exec(target, "true"))
          assert.strictEqual(error.reason._tag, "HostKeyRevoked", `${mode}: ${error.message}`)
          if (error.reason._tag === "HostKeyRevoked") {
            assert.strictEqual(error.reason.fingerprint, server.hostFingerprint)
            assert.strictEqual(error.reason.line, text.split("\n").indexOf(revoked.trimEnd()) + 1)
            assert.include(error.message, "revoked")
          }
          assert.strictEqual(fs.readFileSync(knownHosts, "utf8"), text, mode)
          assert.isFalse(
            events.some((e) => e._tag === "HostKeyAdded"),
            mode
          )
        }
      }
      assert.strictEqual(server.authAttempts.length, 0)
      assert.deepStrictEqual(server.commands, [])
    })
  )

  it.live("a @revoked line for other hosts or other keys, and a @cert-authority line, leave the host unknown", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      const knownHosts = path.join(dir, "known_hosts")
      const text =
        `@revoked other.lan ${server.hostPublicKey}\n` +
        `@revoked * ${generateKeyPair("ed25519").public}\n` +
        `@cert-authority [127.0.0.1]:${server.port} ${server.hostPublicKey}\n`
      fs.writeFileSync(knownHosts, text)
      const target = { host: "127.0.0.1", port: server.port, user: "alice" }
      // strict: unknown, and the hint says why the CA line does not help (no host certificates over ssh2).
      const strict = yield* client(clientOptions(dir, { knownHosts: { mode: "strict", path: knownHosts } }))
      const error = yield* Effect.flip(strict.exec(target, "true"))
      assert.strictEqual(error.reason._tag, "HostKeyUnknown")
      if (error.reason._tag === "HostKeyUnknown") assert.include(error.reason.hint, "certificate")
      // accept-new: trusted on first use, as OpenSSH does for a plain key.
      const acceptNew = yield* client(clientOptions(dir, { knownHosts: { mode: "accept-new", path: knownHosts } }))
      assert.strictEqual((yield* acceptNew.exec(target, "echo ok")).stdout, "ok\n")
      assert.strictEqual(fs.readFileSync(knownHosts, "utf8"), `${text}${server.knownHostsLine()}\n`)
    })
  )

  it.live("forgetHostKey removes the host's entries (hashed too) so a rebuilt host can be trusted again", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      const knownHosts = path.join(dir, "known_hosts")
      const stale = Buffer.from(generateKeyPair().public.split(" ")[1]!, "base64")
      let text = "# keep me\n"
      text = KnownHosts.add(text, "127.0.0.1", server.port, stale)
      text = KnownHosts.add(text, "127.0.0.1", server.port, stale, { hash: true })
      text = KnownHosts.add(text, "other.lan", 22, stale)
      fs.writeFileSync(knownHosts, text, { mode: 0o644 })
      const ssh = yield* client(clientOptions(dir, { knownHosts: { mode: "accept-new", path: knownHosts } }))
      const target = { host: "127.0.0.1", port: server.port, user: "alice" }
      const before = yield* Effect.flip(ssh.exec(target, "true"))
      assert.strictEqual(before.reason._tag, "HostKeyMismatch")
      yield* ssh.forgetHostKey("127.0.0.1", server.port)
      const after = fs.readFileSync(knownHosts, "utf8")
      assert.strictEqual(after, `# keep me\nother.lan ssh-ed25519 ${stale.toString("base64")}\n`)
      assert.strictEqual(fs.statSync(knownHosts).mode & 0o777, 0o644)
      assert.deepStrictEqual(
        fs.readdirSync(dir).filter((f) => f.includes("known_hosts")),
        ["known_hosts"]
      )
      assert.strictEqual((yield* ssh.exec(target, "echo rebuilt")).stdout, "rebuilt\n")
      assert.include(fs.readFileSync(knownHosts, "utf8"), server.knownHostsLine())
    })
  )
})

describe("ssh-agent", () => {
  it.live("authenticates with a key held by a real ssh-agent, through the socket path given in options", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      trust(dir, server)
      const { spawnSync, spawn } = yield* Effect.promise(() => import("node:child_process"))
      const socket = path.join(dir, "agent.sock")
      const agent = yield* Effect.acquireRelease(
        Effect.sync(() => spawn("ssh-agent", ["-D", "-a", socket], { stdio: "ignore" })),
        (child) => Effect.sync(() => child.kill("SIGTERM"))
      )
      // the socket appearing in `dir` is the event to wait on (ssh-agent exiting early fails the test)
      yield* Effect.callback<void, Error>((resume) => {
        let settled = false
        const settle = (outcome: Effect.Effect<void, Error>) => {
          if (settled) return
          settled = true
          watcher.close()
          resume(outcome)
        }
        const watcher = fs.watch(dir, () => fs.existsSync(socket) && settle(Effect.void))
        agent.once("exit", (code) => settle(Effect.fail(new Error(`ssh-agent (pid ${agent.pid}) exited (${code})`))))
        if (fs.existsSync(socket)) settle(Effect.void)
        return Effect.sync(() => settle(Effect.void))
      })
      assert.isTrue(fs.existsSync(socket), `ssh-agent (pid ${agent.pid}) did not create its socket`)
      const keyPath = path.join(dir, "agent_key")
      fs.writeFileSync(keyPath, userKey.private, { mode: 0o600 })
      const added = spawnSync("ssh-add", [keyPath], { env: { SSH_AUTH_SOCK: socket, PATH: "/usr/bin:/bin" } })
      assert.strictEqual(added.status, 0, added.stderr.toString())
      const ssh = yield* client(clientOptions(dir, { auth: { agentSocket: socket } }))
      assert.strictEqual(
        (yield* ssh.exec({ host: "127.0.0.1", port: server.port, user: "alice" }, "echo agent")).stdout,
        "agent\n"
      )
      assert.deepStrictEqual(
        server.authAttempts.filter((a) => a.accepted).map((a) => a.method),
        ["publickey"]
      )
    })
  )
})
