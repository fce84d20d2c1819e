import * as net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { makeTlsTrust, type TrustFetchError } from "../src/TlsTrust.js"
import { fakePve, testCerts } from "./helpers.js"

const failureOf = (p: Promise<unknown>) =>
  Effect.promise(() =>
    p.then(
      () => undefined,
      (e: unknown) => e as TrustFetchError
    )
  )

const freePort = Effect.promise(
  () =>
    new Promise<number>((resolve) => {
      const server = net.createServer()
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port
        server.close(() => resolve(port))
      })
    })
)

describe("TlsTrust.fetch failures say whether the request may have been sent", () => {
  it.live("refused and untrusted certificate: not sent; aborted once the server has it: sent", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const trust = makeTlsTrust({ ca: testCerts().caPem })
      yield* Effect.addFinalizer(() => Effect.promise(() => trust.close()))
      const refused = yield* failureOf(trust.fetch(`https://127.0.0.1:${port}/api2/json/version`, { method: "POST" }))
      assert.instanceOf(refused, TypeError)
      assert.isFalse(refused?.sent)

      const untrusted = yield* fakePve("self", () => ({ status: 200, body: { data: null } }))
      const tls = yield* failureOf(
        trust.fetch(`https://127.0.0.1:${untrusted.port}/api2/json/version`, { method: "POST" })
      )
      assert.strictEqual((tls?.cause as { code?: string } | undefined)?.code, "DEPTH_ZERO_SELF_SIGNED_CERT")
      assert.isFalse(tls?.sent)

      const controller = new AbortController()
      const hanging = yield* fakePve("leaf", () => {
        controller.abort()
        return "hang"
      })
      const aborted = yield* failureOf(
        trust.fetch(`https://127.0.0.1:${hanging.port}/api2/json/nodes/pve/qemu`, {
          method: "POST",
          body: "vmid=120",
          signal: controller.signal
        })
      )
      assert.lengthOf(hanging.requests, 1)
      assert.isTrue(aborted?.sent)
    })
  )
})
