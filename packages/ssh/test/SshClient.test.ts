import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { client, clientOptions, tempDir, testServer, trust } from "./helpers.js"

describe("SshClient.exec", () => {
  it.effect("runs a command and returns stdout, stderr and the exit code as data", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      trust(dir, server)
      const ssh = yield* client(clientOptions(dir))
      const target = { host: "127.0.0.1", port: server.port, user: "alice" }
      const result = yield* ssh.exec(target, "printf out; printf err >&2; exit 3")
      assert.deepStrictEqual(result, { stdout: "out", stderr: "err", exitCode: 3, signal: null })
    })
  )
})
