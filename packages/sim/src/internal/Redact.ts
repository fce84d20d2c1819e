import type { Params } from "./Params.js"

/** What the request log shows instead of a secret. */
export const REDACTED = "<redacted>"

/** Parameters whose values are secrets: token secrets, `cipassword`, anything named password, secret or token. */
export const isSecretParam = (key: string): boolean => /password|secret|token/i.test(key)

/** A copy of `params` with every secret value replaced by `<redacted>`. */
export const redactParams = (params: Params): Params => {
  const out: Params = {}
  for (const [k, v] of Object.entries(params))
    out[k] = isSecretParam(k) ? (Array.isArray(v) ? v.map(() => REDACTED) : REDACTED) : v
  return out
}
