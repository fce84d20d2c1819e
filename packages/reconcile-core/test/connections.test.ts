import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { proxmoxClientConfig, sshOptions } from "../src/connections.js"
import { minimal, parseOk } from "./config/helpers.js"

const resolved = { privateKeyPath: "/tmp/id_ed25519", knownHostsPath: "/tmp/known_hosts" }

describe("proxmoxClientConfig", () => {
  it.effect("passes timeouts.api as the request timeout and timeouts.connect as the connect timeout", () =>
    Effect.gen(function* () {
      const defaults = proxmoxClientConfig(yield* parseOk(minimal), resolved).timeouts
      assert.deepStrictEqual(
        [Duration.toMillis(defaults?.request ?? 0), Duration.toMillis(defaults?.connect ?? 0)],
        [30_000, 5_000]
      )
      const set = proxmoxClientConfig(yield* parseOk(`${minimal}timeouts:\n  api: 90\n  connect: 2\n`), resolved)
      assert.deepStrictEqual(
        [Duration.toMillis(set.timeouts?.request ?? 0), Duration.toMillis(set.timeouts?.connect ?? 0)],
        [90_000, 2_000]
      )
    })
  )
})

describe("sshOptions", () => {
  it.effect("passes timeouts.ssh (10 s by default) as the SSH connect timeout of every host", () =>
    Effect.gen(function* () {
      const defaults = sshOptions(yield* parseOk(minimal), resolved)
      assert.strictEqual(Duration.toMillis(Duration.fromInputUnsafe(defaults.connectTimeout ?? 0)), 10_000)
      const set = sshOptions(yield* parseOk(`${minimal}timeouts:\n  ssh: 3\n`), resolved)
      assert.strictEqual(Duration.toMillis(Duration.fromInputUnsafe(set.connectTimeout ?? 0)), 3_000)
    })
  )
})
