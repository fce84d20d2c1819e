import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import { TokenInvalid } from "./K3sJoinError.js"

/**
 * A validated k3s join token. The value is `Redacted`; the other fields are safe to show.
 *
 * - `basic`: `K10<ca hash>::<user>:<password>` (`user` is `server` for the server token, `node` for the agent token);
 * - `bootstrap`: `K10<ca hash>::<id>.<secret>` or a bare `<id>.<secret>` (from `k3s token create`; agents only).
 *
 * @since 0.1.0
 * @category models
 */
export interface JoinToken {
  readonly kind: "basic" | "bootstrap"
  /** 64 lowercase hex characters (sha256 of the cluster CA); `undefined` for a bare bootstrap token. */
  readonly caHash: string | undefined
  /** `server`, `node`, … for basic tokens; the token id for bootstrap tokens. */
  readonly user: string
  readonly value: Redacted.Redacted<string>
}

const CA_HASH = /^[0-9a-f]{64}$/
const BOOTSTRAP = /^[a-z0-9]{6}\.[a-z0-9]{16}$/

/**
 * Parses and validates a token as read from `/var/lib/rancher/k3s/server/token` (surrounding whitespace is trimmed).
 * Accepts `K10<64 hex>::<user>:<password>`, `K10<64 hex>::<id>.<secret>` and `<id>.<secret>`; everything else
 * (short passwords, a missing or malformed CA hash) is `TokenInvalid`, whose detail never contains the token.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parseJoinToken = (raw: string | Redacted.Redacted<string>): Result.Result<JoinToken, TokenInvalid> => {
  const text = (Redacted.isRedacted(raw) ? Redacted.value(raw) : raw).trim()
  const invalid = (detail: string) => Result.fail(new TokenInvalid({ detail }))
  if (text === "") return invalid("the token is empty")
  if (/\s/.test(text)) return invalid("the token contains whitespace")
  if (!text.startsWith("K10")) {
    if (BOOTSTRAP.test(text)) {
      return Result.succeed({
        kind: "bootstrap",
        caHash: undefined,
        user: text.slice(0, 6),
        value: Redacted.make(text)
      })
    }
    return invalid("expected K10<CA hash>::<user>:<password> or a bootstrap token <id>.<secret>")
  }
  const separator = text.indexOf("::")
  if (separator < 0) return invalid("invalid token format: missing '::' after the CA hash")
  const caHash = text.slice(3, separator)
  const creds = text.slice(separator + 2)
  if (caHash.length !== 64) {
    return invalid(`invalid token CA hash length (${caHash.length}, expected 64 hex characters)`)
  }
  if (!CA_HASH.test(caHash)) return invalid("invalid token CA hash: not lowercase hex")
  if (BOOTSTRAP.test(creds)) {
    return Result.succeed({ kind: "bootstrap", caHash, user: creds.slice(0, 6), value: Redacted.make(text) })
  }
  const colon = creds.indexOf(":")
  if (colon <= 0 || colon === creds.length - 1) {
    return invalid("invalid token format: expected <user>:<password> or <id>.<secret> after '::'")
  }
  return Result.succeed({ kind: "basic", caHash, user: creds.slice(0, colon), value: Redacted.make(text) })
}

/**
 * Whether a basic token (`K10<hash>::<user>:<password>`) has `password` as its password (a short token, surrounding
 * whitespace trimmed). `undefined` for a bootstrap token, which has none.
 *
 * @since 0.6.3
 * @category validation
 */
export const hasPassword = (token: JoinToken, password: Redacted.Redacted<string>): boolean | undefined => {
  if (token.kind !== "basic") return undefined
  const value = Redacted.value(token.value)
  const creds = value.slice(value.indexOf("::") + 2)
  return creds.slice(creds.indexOf(":") + 1) === Redacted.value(password).trim()
}

/**
 * Checks that a token can join the given role: servers need the server token (a basic token whose user is not
 * `node`); agents accept any valid token.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkTokenForRole = (
  token: JoinToken,
  role: "server" | "agent"
): Result.Result<JoinToken, TokenInvalid> => {
  if (role === "agent") return Result.succeed(token)
  if (token.kind === "bootstrap") {
    return Result.fail(
      new TokenInvalid({ detail: "a bootstrap token can only join agents; servers need the server token" })
    )
  }
  if (token.user === "node") {
    return Result.fail(
      new TokenInvalid({ detail: "the agent token can only join agents; servers need the server token" })
    )
  }
  return Result.succeed(token)
}

/**
 * Replaces anything that looks like a k3s token (and the given secret values) in `text`, for logs and errors.
 *
 * @since 0.1.0
 * @category utilities
 */
export const scrubTokens = (text: string, secrets: ReadonlyArray<Redacted.Redacted<string>> = []): string => {
  let out = text
  for (const secret of secrets) {
    const value = Redacted.value(secret)
    if (value.length >= 4) out = out.split(value).join("********")
    const sep = value.indexOf("::")
    if (sep >= 0) {
      const creds = value.slice(sep + 2)
      const colon = creds.indexOf(":")
      const password = colon >= 0 ? creds.slice(colon + 1) : creds
      if (password.length >= 4) out = out.split(password).join("********")
    }
  }
  return out.replace(/K10[0-9a-f]*::[^\s"'\\,]+/g, "K10********").replace(/\b[a-z0-9]{6}\.[a-z0-9]{16}\b/g, "********")
}
