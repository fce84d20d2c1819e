import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { client, clientOptions, tempDir, testServer, trust } from "./helpers.js"

const setup = (options?: Parameters<typeof testServer>[0]) =>
  Effect.gen(function* () {
    const dir = yield* tempDir
    const remote = yield* tempDir
    const server = yield* testServer(options)
    trust(dir, server)
    const ssh = yield* client(clientOptions(dir))
    return { dir, remote, server, ssh, target: { host: "127.0.0.1", port: server.port, user: "alice" } }
  })

describe("SshClient.upload", () => {
  it.live("writes content with the requested mode through a temp file renamed over the target", () =>
    Effect.gen(function* () {
      const { remote, server, ssh, target } = yield* setup()
      const file = path.join(remote, "config.yaml")
      fs.writeFileSync(file, "old content\n")
      const before = fs.statSync(file).ino
      yield* ssh.upload(target, { path: file, content: "new: content\n", mode: 0o600 })
      assert.strictEqual(fs.readFileSync(file, "utf8"), "new: content\n")
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
      assert.notStrictEqual(fs.statSync(file).ino, before, "the target is replaced, not rewritten in place")
      assert.deepStrictEqual(fs.readdirSync(remote), ["config.yaml"])
      const ops = server.sftpLog.filter((op) => op.op !== "WRITE")
      const temp = ops[0]!.path
      assert.strictEqual(path.dirname(temp), remote)
      assert.notStrictEqual(temp, file)
      assert.deepStrictEqual(
        ops.map((op) => [op.op, op.path, op.target]),
        [
          ["OPEN", temp, undefined],
          ["CLOSE", temp, undefined],
          ["SETSTAT", temp, undefined],
          ["RENAME", temp, file]
        ]
      )
      assert.isFalse(server.sftpLog.some((op) => op.path === file && op.op !== "RENAME"))
    })
  )

  it.live("leaves the old file intact and removes the temp file when a step fails", () =>
    Effect.gen(function* () {
      const { remote, ssh, target } = yield* setup({ sftpFail: (op) => op === "RENAME" })
      const file = path.join(remote, "unit.service")
      fs.writeFileSync(file, "original\n")
      const error = yield* Effect.flip(ssh.upload(target, { path: file, content: "replacement\n" }))
      assert.strictEqual(error.reason._tag, "SftpFailed")
      if (error.reason._tag === "SftpFailed") {
        assert.strictEqual(error.reason.operation, "rename")
        assert.strictEqual(error.reason.path, file)
      }
      assert.strictEqual(fs.readFileSync(file, "utf8"), "original\n")
      assert.deepStrictEqual(fs.readdirSync(remote), ["unit.service"])
    })
  )

  it.live("replaces an existing file on servers whose rename refuses to overwrite", () =>
    Effect.gen(function* () {
      const { remote, ssh, target } = yield* setup({
        sftpFail: (op, _from, to) => op === "RENAME" && to !== undefined && fs.existsSync(to)
      })
      const file = path.join(remote, "app.conf")
      fs.writeFileSync(file, "v1\n")
      yield* ssh.upload(target, { path: file, content: "v2\n", mode: 0o640 })
      assert.strictEqual(fs.readFileSync(file, "utf8"), "v2\n")
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o640)
      assert.deepStrictEqual(fs.readdirSync(remote), ["app.conf"])
    })
  )

  it.live("uploads bytes, Redacted strings and local files (default mode 0644)", () =>
    Effect.gen(function* () {
      const { dir, remote, ssh, target } = yield* setup()
      const bytes = new Uint8Array([0, 255, 1, 254])
      yield* ssh.upload(target, { path: path.join(remote, "bin"), content: bytes })
      assert.deepStrictEqual(new Uint8Array(fs.readFileSync(path.join(remote, "bin"))), bytes)
      assert.strictEqual(fs.statSync(path.join(remote, "bin")).mode & 0o777, 0o644)
      yield* ssh.upload(target, { path: path.join(remote, "token"), content: Redacted.make("t0ken"), mode: 0o400 })
      assert.strictEqual(fs.readFileSync(path.join(remote, "token"), "utf8"), "t0ken")
      assert.strictEqual(fs.statSync(path.join(remote, "token")).mode & 0o777, 0o400)
      const local = path.join(dir, "local.sh")
      fs.writeFileSync(local, "#!/bin/sh\necho hi\n")
      yield* ssh.upload(target, { path: path.join(remote, "run.sh"), localPath: local, mode: 0o755 })
      assert.strictEqual(fs.readFileSync(path.join(remote, "run.sh"), "utf8"), "#!/bin/sh\necho hi\n")
      assert.strictEqual(fs.statSync(path.join(remote, "run.sh")).mode & 0o777, 0o755)
      const missing = yield* Effect.flip(
        ssh.upload(target, { path: path.join(remote, "x"), localPath: path.join(dir, "does-not-exist") })
      )
      assert.strictEqual(missing.reason._tag, "LocalFileFailed")
    })
  )

  it.live("fails with SftpFailed when the directory does not exist", () =>
    Effect.gen(function* () {
      const { remote, ssh, target } = yield* setup()
      const error = yield* Effect.flip(ssh.upload(target, { path: path.join(remote, "nope", "file"), content: "x" }))
      assert.strictEqual(error.reason._tag, "SftpFailed")
      if (error.reason._tag === "SftpFailed") assert.include(error.reason.detail, "no such file")
    })
  )
})

describe("SshClient.readFile", () => {
  it.live("reads a remote file (larger than one SFTP packet) and reports missing files", () =>
    Effect.gen(function* () {
      const { remote, server, ssh, target } = yield* setup()
      const content = Buffer.alloc(300_000, "abc")
      fs.writeFileSync(path.join(remote, "big"), content)
      const read = yield* ssh.readFile(target, path.join(remote, "big"))
      assert.isTrue(Buffer.from(read).equals(content))
      const error = yield* Effect.flip(ssh.readFile(target, path.join(remote, "missing")))
      assert.strictEqual(error.reason._tag, "SftpFailed")
      if (error.reason._tag === "SftpFailed") assert.include(error.reason.detail, "no such file")
      assert.strictEqual(server.connectionCount, 1)
    })
  )
})
