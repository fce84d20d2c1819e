import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { createSshClient, SshError } from "../src/index.js"
import { clientOptions, tempDir, testServer, trust } from "./helpers.js"

describe("createSshClient (Promise facade)", () => {
  it.live("runs commands with Promises, rejects with the SshError itself and closes on dispose", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const server = yield* testServer()
      trust(dir, server)
      const ssh = createSshClient(clientOptions(dir))
      const target = { host: "127.0.0.1", port: server.port, user: "alice" }
      const outcome = yield* Effect.promise(async () => {
        const ok = await ssh.execOrFail(target, "echo promised")
        const error = await ssh.execOrFail(target, "exit 5").then(
          () => undefined,
          (e: unknown) => e
        )
        await ssh.dispose()
        return { ok, error }
      })
      assert.strictEqual(outcome.ok.stdout, "promised\n")
      assert.instanceOf(outcome.error, SshError)
      if (outcome.error instanceof SshError) assert.strictEqual(outcome.error.reason._tag, "CommandFailed")
      assert.strictEqual(server.connectionCount, 1)
      // dispose closed the connection: the server sees it go (an event, not a wait of a while)
      yield* Effect.promise(() => server.until((s) => s.openConnections === 0))
    })
  )
})
