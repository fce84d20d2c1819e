import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { KnownHosts } from "../src/index.js"
import { client, clientOptions, tempDir, testServer, userKey } from "./helpers.js"

/** Runs an OpenSSH tool asynchronously (the test server lives in this process, so never block the event loop). */
const run = (file: string, args: ReadonlyArray<string>) =>
  Effect.callback<{ readonly code: number; readonly stdout: string; readonly stderr: string }>((resume) => {
    const child = execFile(
      file,
      [...args],
      { timeout: 15_000, env: { PATH: "/usr/bin:/bin" } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1
        resume(Effect.succeed({ code, stdout: String(stdout), stderr: String(stderr) }))
      }
    )
    return Effect.sync(() => child.kill())
  })

const opensshClient = (dir: string, port: number, knownHosts: string, command: string) =>
  Effect.gen(function* () {
    const keyPath = path.join(dir, "id_ed25519")
    if (!fs.existsSync(keyPath)) fs.writeFileSync(keyPath, userKey.private, { mode: 0o600 })
    return yield* run("/usr/bin/ssh", [
      "-F",
      "/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      `UserKnownHostsFile=${knownHosts}`,
      "-o",
      "GlobalKnownHostsFile=/dev/null",
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "IdentityAgent=none",
      "-o",
      "ConnectTimeout=10",
      "-i",
      keyPath,
      "-p",
      String(port),
      "alice@127.0.0.1",
      command
    ])
  })

describe("interop with OpenSSH", () => {
  it.live("the system ssh client runs commands on TestSshServer, trusting the known_hosts line we write", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      const knownHosts = path.join(dir, "known_hosts")
      fs.writeFileSync(knownHosts, KnownHosts.add("", "127.0.0.1", server.port, server.hostKeyBlob, { hash: true }))
      const result = yield* opensshClient(dir, server.port, knownHosts, "printf %s hello-from-openssh; exit 3")
      assert.strictEqual(result.stdout, "hello-from-openssh", result.stderr)
      assert.strictEqual(result.code, 3)
      assert.deepStrictEqual(server.commands, ["printf %s hello-from-openssh; exit 3"])
    })
  )

  it.live("OpenSSH refuses the server when our known_hosts records another key (same semantics as ours)", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      const other = yield* testServer()
      const knownHosts = path.join(dir, "known_hosts")
      fs.writeFileSync(knownHosts, KnownHosts.add("", "127.0.0.1", server.port, other.hostKeyBlob))
      const result = yield* opensshClient(dir, server.port, knownHosts, "true")
      assert.strictEqual(result.code, 255)
      assert.include(result.stderr, "REMOTE HOST IDENTIFICATION HAS CHANGED")
      assert.deepStrictEqual(server.commands, [])
    })
  )

  it.live("a @revoked key: OpenSSH refuses it, and so do we, even next to a line trusting it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      const knownHosts = path.join(dir, "known_hosts")
      const text = `${server.knownHostsLine()}\n@revoked * ${server.hostPublicKey}\n`
      fs.writeFileSync(knownHosts, text)
      const result = yield* opensshClient(dir, server.port, knownHosts, "true")
      assert.strictEqual(result.code, 255)
      assert.include(result.stderr, "REVOKED HOST KEY")
      const found = yield* run("/usr/bin/ssh-keygen", ["-F", `[127.0.0.1]:${server.port}`, "-f", knownHosts])
      assert.include(found.stdout, "REVOKED")
      const ssh = yield* client(clientOptions(dir, { knownHosts: { mode: "accept-new", path: knownHosts } }))
      const error = yield* Effect.flip(ssh.exec({ host: "127.0.0.1", port: server.port, user: "alice" }, "true"))
      assert.strictEqual(error.reason._tag, "HostKeyRevoked")
      assert.strictEqual(fs.readFileSync(knownHosts, "utf8"), text)
      assert.deepStrictEqual(server.commands, [])
    })
  )

  it.live("parses what ssh-keyscan and ssh-keygen -H write, and connects strictly with it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      const knownHosts = path.join(dir, "known_hosts")
      const scan = yield* run("/usr/bin/ssh-keyscan", ["-t", "ed25519", "-p", String(server.port), "127.0.0.1"])
      assert.strictEqual(scan.code, 0, scan.stderr)
      fs.writeFileSync(knownHosts, `other.lan ${server.hostPublicKey}\n${scan.stdout}`)
      const plain = KnownHosts.find(KnownHosts.parse(scan.stdout), "127.0.0.1", server.port)
      assert.strictEqual(plain.length, 1)
      assert.strictEqual(plain[0]!.hostField, `[127.0.0.1]:${server.port}`)
      assert.isTrue(Buffer.from(plain[0]!.key).equals(server.hostKeyBlob))
      assert.strictEqual(KnownHosts.fingerprint(plain[0]!), server.hostFingerprint)

      const hashed = yield* run("/usr/bin/ssh-keygen", ["-H", "-f", knownHosts])
      assert.strictEqual(hashed.code, 0, hashed.stderr)
      const text = fs.readFileSync(knownHosts, "utf8")
      assert.notInclude(text, "127.0.0.1")
      const entries = KnownHosts.parse(text)
      assert.isTrue(entries.every((e) => e.hosts._tag === "Hashed"))
      assert.strictEqual(KnownHosts.check(entries, "127.0.0.1", server.port, server.hostKeyBlob)._tag, "Known")
      assert.strictEqual(KnownHosts.find(entries, "other.lan").length, 1)

      const ssh = yield* client(clientOptions(dir, { knownHosts: { mode: "strict", path: knownHosts } }))
      const result = yield* ssh.exec({ host: "127.0.0.1", port: server.port, user: "alice" }, "echo strict-ok")
      assert.strictEqual(result.stdout, "strict-ok\n")
    })
  )

  it.live("agrees with ssh-keygen -R and -F about removal", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      const knownHosts = path.join(dir, "known_hosts")
      const token = `[127.0.0.1]:${server.port}`
      const seed = () => {
        let text = KnownHosts.add("", "127.0.0.1", server.port, server.hostKeyBlob)
        text = KnownHosts.add(text, "127.0.0.1", server.port, server.hostKeyBlob, { hash: true })
        text = KnownHosts.add(text, "keep.lan", 22, server.hostKeyBlob, { hash: true })
        fs.writeFileSync(knownHosts, text)
      }

      // OpenSSH removes: our parser no longer finds the host, still finds the other one.
      seed()
      const removed = yield* run("/usr/bin/ssh-keygen", ["-R", token, "-f", knownHosts])
      assert.strictEqual(removed.code, 0, removed.stderr)
      const afterOpenSsh = KnownHosts.parse(fs.readFileSync(knownHosts, "utf8"))
      assert.strictEqual(KnownHosts.find(afterOpenSsh, "127.0.0.1", server.port).length, 0)
      assert.strictEqual(KnownHosts.find(afterOpenSsh, "keep.lan").length, 1)

      // We remove: OpenSSH no longer finds the host, still finds the other one.
      seed()
      assert.strictEqual((yield* run("/usr/bin/ssh-keygen", ["-F", token, "-f", knownHosts])).code, 0)
      const ssh = yield* client(clientOptions(dir, { knownHosts: { mode: "strict", path: knownHosts } }))
      yield* ssh.forgetHostKey("127.0.0.1", server.port)
      const found = yield* run("/usr/bin/ssh-keygen", ["-F", token, "-f", knownHosts])
      assert.strictEqual(found.code, 1, found.stdout)
      assert.strictEqual(found.stdout, "")
      assert.strictEqual((yield* run("/usr/bin/ssh-keygen", ["-F", "keep.lan", "-f", knownHosts])).code, 0)
    })
  )
})
