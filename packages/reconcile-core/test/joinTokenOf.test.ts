import { assert, describe, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import { joinTokenOf, tokenPasswordOf } from "../src/joinTokenOf.js"

const hash = "c".repeat(64)

describe("joinTokenOf", () => {
  it("a full token and a bootstrap token are passed on; a short one (a password) is not: the join reads the server's", () => {
    const passed = (t: string) => {
      const out = joinTokenOf(Redacted.make(t))
      return out === undefined ? undefined : Redacted.value(out)
    }
    assert.strictEqual(passed(`K10${hash}::server:pw`), `K10${hash}::server:pw`)
    assert.strictEqual(passed("abcdef.0123456789abcdef"), "abcdef.0123456789abcdef")
    // a malformed full token still goes to k3s-join, which refuses it with its reason
    assert.strictEqual(passed("K10abc::server:pw"), "K10abc::server:pw")
    assert.isUndefined(passed("my-shared-cluster-secret"))
    assert.isUndefined(joinTokenOf(undefined))
  })

  it("tokenPasswordOf: a short token is the password the server's token must have; a full one is not", () => {
    const of = (t: string) => {
      const out = tokenPasswordOf(Redacted.make(t))
      return out === undefined ? undefined : Redacted.value(out)
    }
    assert.strictEqual(of("my-shared-cluster-secret"), "my-shared-cluster-secret")
    assert.isUndefined(of(`K10${hash}::server:pw`))
    assert.isUndefined(of("abcdef.0123456789abcdef"))
    assert.isUndefined(tokenPasswordOf(undefined))
  })
})
