import { assert, describe, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import { checkTokenForRole, hasPassword, parseJoinToken, scrubTokens } from "../src/JoinToken.js"
import { BOOTSTRAP_TOKEN, CA_HASH, SERVER_PASSWORD, SERVER_TOKEN } from "./support/fixtures.js"

const ok = (raw: string) => {
  const parsed = parseJoinToken(raw)
  if (Result.isFailure(parsed)) throw new Error(`expected a valid token: ${parsed.failure.detail}`)
  return parsed.success
}
const detail = (raw: string) => {
  const parsed = parseJoinToken(raw)
  if (Result.isSuccess(parsed)) throw new Error("expected an invalid token")
  return parsed.failure.detail
}

describe("parseJoinToken", () => {
  it("parses the server token file content, trimming the newline", () => {
    const token = ok(`${SERVER_TOKEN}\n`)
    assert.strictEqual(token.kind, "basic")
    assert.strictEqual(token.caHash, CA_HASH)
    assert.strictEqual(token.user, "server")
    assert.strictEqual(Redacted.value(token.value), SERVER_TOKEN)
  })

  it("parses agent (node) tokens and bootstrap tokens, with and without the K10 prefix", () => {
    assert.strictEqual(ok(`K10${CA_HASH}::node:abc123`).user, "node")
    const bootstrap = ok(BOOTSTRAP_TOKEN)
    assert.strictEqual(bootstrap.kind, "bootstrap")
    assert.strictEqual(bootstrap.user, "q4bjus")
    const bare = ok("q4bjus.7k1x6b1fz0d72prp")
    assert.strictEqual(bare.kind, "bootstrap")
    assert.strictEqual(bare.caHash, undefined)
  })

  it("rejects malformed tokens with a detail that does not contain the token", () => {
    assert.match(detail(""), /empty/)
    assert.match(detail(`K10${CA_HASH.slice(0, 60)}::server:pw`), /CA hash length \(60/)
    assert.match(detail(`K10${CA_HASH.toUpperCase()}::server:pw`), /not lowercase hex/)
    assert.match(detail(`K10::server:${SERVER_PASSWORD}`), /CA hash length \(0/)
    assert.match(detail(`K10${CA_HASH}server:pw`), /missing '::'/)
    assert.match(detail(`K10${CA_HASH}::justapassword`), /invalid token format/)
    assert.match(detail(`K10${CA_HASH}::server:`), /invalid token format/)
    assert.match(detail(SERVER_PASSWORD), /expected K10/)
    assert.match(detail(`${SERVER_TOKEN} extra`), /whitespace/)
    for (const bad of [`K10${CA_HASH}::justapassword`, SERVER_PASSWORD]) {
      assert.notInclude(detail(bad), "justapassword")
      assert.notInclude(detail(bad), SERVER_PASSWORD)
    }
  })

  it("accepts a Redacted input", () => {
    assert.strictEqual(ok(Redacted.make(SERVER_TOKEN) as unknown as string).user, "server")
  })
})

describe("checkTokenForRole", () => {
  it("servers need the server token; agents take any token", () => {
    const server = ok(SERVER_TOKEN)
    const agent = ok(`K10${CA_HASH}::node:abc123`)
    const bootstrap = ok(BOOTSTRAP_TOKEN)
    assert.isTrue(Result.isSuccess(checkTokenForRole(server, "server")))
    assert.isTrue(Result.isSuccess(checkTokenForRole(agent, "agent")))
    assert.isTrue(Result.isSuccess(checkTokenForRole(bootstrap, "agent")))
    const a = checkTokenForRole(agent, "server")
    const b = checkTokenForRole(bootstrap, "server")
    assert.isTrue(Result.isFailure(a) && /agent token/.test(a.failure.detail))
    assert.isTrue(Result.isFailure(b) && /bootstrap token/.test(b.failure.detail))
  })
})

describe("hasPassword", () => {
  it("compares a basic token's password with a short token (trimmed); a bootstrap token has none", () => {
    const full = parseJoinToken(SERVER_TOKEN)
    assert.isTrue(Result.isSuccess(full))
    if (Result.isFailure(full)) return
    assert.isTrue(hasPassword(full.success, Redacted.make(`${SERVER_PASSWORD}\n`)))
    assert.isFalse(hasPassword(full.success, Redacted.make("another-password")))
    const bootstrap = parseJoinToken("q4bjus.7k1x6b1fz0d72prp")
    assert.isTrue(Result.isSuccess(bootstrap) && hasPassword(bootstrap.success, Redacted.make("x")) === undefined)
  })
})

describe("scrubTokens", () => {
  it("removes full tokens, bootstrap tokens and the bare password", () => {
    const text = `K3S_TOKEN=${SERVER_TOKEN} pw=${SERVER_PASSWORD} boot=q4bjus.7k1x6b1fz0d72prp`
    const scrubbed = scrubTokens(text, [Redacted.make(SERVER_TOKEN)])
    assert.notInclude(scrubbed, SERVER_PASSWORD)
    assert.notInclude(scrubbed, CA_HASH)
    assert.notInclude(scrubbed, "7k1x6b1fz0d72prp")
    assert.include(scrubbed, "K3S_TOKEN=")
  })

  it("scrubs token-looking values even without knowing the secret", () => {
    assert.strictEqual(scrubTokens(`token: "${SERVER_TOKEN}"`), `token: "K10********"`)
  })
})
