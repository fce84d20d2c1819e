import * as Predicate from "effect/Predicate"
import {
  AlreadyExists,
  ApiError,
  AuthRejected,
  InvalidParameter,
  Locked,
  NotFound,
  PermissionDenied,
  type ProxmoxErrorReason,
  ProxyError,
  TlsUntrusted,
  UnexpectedResponse,
  Unreachable
} from "../ProxmoxError.js"

/** Node's TLS verification codes (client-side certificate failures) and our own pin mismatch code. */
export const TLS_CODES: ReadonlySet<string> = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "INVALID_CA",
  "ERR_TLS_PIN_MISMATCH"
])

const UNREACHABLE_CODES: Record<string, Unreachable["kind"]> = {
  ENOTFOUND: "dns",
  EAI_AGAIN: "dns",
  EAI_NONAME: "dns",
  ECONNREFUSED: "refused",
  EHOSTUNREACH: "refused",
  ENETUNREACH: "refused",
  ETIMEDOUT: "timeout",
  UND_ERR_CONNECT_TIMEOUT: "timeout",
  UND_ERR_HEADERS_TIMEOUT: "timeout",
  UND_ERR_BODY_TIMEOUT: "timeout",
  ABORT_ERR: "timeout",
  ECONNRESET: "reset",
  EPIPE: "reset",
  UND_ERR_SOCKET: "reset",
  UND_ERR_CLOSED: "reset",
  ECONNABORTED: "reset"
}

/** Walks `.cause` to the innermost error that carries a string `code` (or an AbortError). */
export const innermostCode = (e: unknown): { readonly code: string; readonly message: string } | undefined => {
  let found: { code: string; message: string } | undefined
  let current: unknown = e
  for (let depth = 0; depth < 8 && Predicate.isObject(current); depth++) {
    const rec = current as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown }
    const message = typeof rec.message === "string" ? rec.message : ""
    if (typeof rec.code === "string") found = { code: rec.code, message }
    else if (rec.name === "AbortError" || rec.name === "TimeoutError") found = { code: "ABORT_ERR", message }
    current = rec.cause
  }
  return found
}

/** A reason for a transport-level failure code, or `undefined` when the code is not one we know. */
export const reasonForCode = (
  code: string,
  message: string,
  transport: "rest" | "ssh"
): Unreachable | TlsUntrusted | undefined => {
  if (TLS_CODES.has(code)) return new TlsUntrusted({ code, detail: stripNodeHint(message) })
  const kind = UNREACHABLE_CODES[code]
  if (kind !== undefined) return new Unreachable({ kind, transport, code, detail: message })
  return undefined
}

const stripNodeHint = (message: string): string => message.replace(/; if the root CA is installed locally.*$/s, "")

/** Removes Perl's ` at /usr/share/perl5/… line N.` suffix and trailing newlines. */
export const cleanPveMessage = (message: string): string =>
  message
    .replace(/ at \/\S+ line \d+\.?\s*$/s, "")
    .replace(/\s+$/s, "")
    .trim()

const explain596 =
  "HTTP 596 comes from the server-side proxy between cluster nodes (pveproxy forwarding to the node named in the " +
  "path), not from this client: check that the node name is the cluster's name for it (`pvecm nodes`), and if it " +
  "is, the node certificates are stale (run `pvecm updatecerts` and restart pveproxy)"

const explainProxy = (status: number): string =>
  status === 596
    ? explain596
    : status === 595
      ? "pveproxy could not connect to pvedaemon or to the target node (is the daemon running?)"
      : `pveproxy's internal HTTP client failed while forwarding (pseudo-status ${status}); usually transient`

const PERMISSION = /Permission check failed \(([^,)]+)(?:,\s*([^)]+))?\)/

const toErrorsRecord = (errors: unknown): Record<string, string> => {
  if (!Predicate.isObject(errors) || Array.isArray(errors)) return {}
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(errors)) out[k] = cleanPveMessage(typeof v === "string" ? v : JSON.stringify(v))
  return out
}

/**
 * Classifies a PVE error answer (status + first line of the message + `errors` body) into a reason. Used for REST
 * answers and for `pvesh` stderr alike.
 */
export const classifyStatus = (status: number, text: string, errors: unknown): ProxmoxErrorReason => {
  const detail = cleanPveMessage(text)
  const fields = toErrorsRecord(errors)
  const all = `${detail}\n${Object.values(fields).join("\n")}`
  if (status >= 595 && status <= 599) {
    return new ProxyError({ status, detail, explanation: explainProxy(status) })
  }
  if (status === 401) return new AuthRejected({ detail })
  if (status === 403) {
    const m = PERMISSION.exec(detail)
    return new PermissionDenied({
      ...(m?.[1] !== undefined ? { path: m[1].trim() } : {}),
      ...(m?.[2] !== undefined ? { privilege: m[2].trim() } : {}),
      detail
    })
  }
  if (status === 400) {
    if (/no such task|unable to parse worker upid/.test(all)) return new NotFound({ detail: all.trim() })
    if (/already exists/.test(all) && Object.keys(fields).length <= 1) {
      return new AlreadyExists({ detail: Object.values(fields)[0] ?? detail })
    }
    return new InvalidParameter({ errors: fields, detail })
  }
  if (status === 500 || status === 501) {
    const locked = /(?:VM|CT) is locked \(([^)]+)\)/.exec(detail)
    if (locked?.[1] !== undefined) return new Locked({ lock: locked[1], detail })
    if (/can't lock file .* got timeout/.test(detail)) return new Locked({ lock: "flock", detail })
    if (/does not exist|no such (?:resource|uri|file|storage|task)|not implemented|no '\w+' handler/i.test(detail)) {
      return new NotFound({ detail })
    }
    if (/already exists/.test(detail)) return new AlreadyExists({ detail })
    if (/^Only root /.test(detail)) return new PermissionDenied({ detail })
    if (Object.keys(fields).length > 0) return new InvalidParameter({ errors: fields, detail })
    return new ApiError({ status, detail })
  }
  if (status >= 400 && status < 600) return new ApiError({ status, detail })
  return new UnexpectedResponse({ expected: "HTTP 200", detail: `${status} ${detail}` })
}

const REST_RETURN = /^(?:GET|POST|PUT|DELETE) \S+ return Error (\d{3}) ([\s\S]*?): (\{"data"[\s\S]*)$/
const REST_CONN = /^(?:GET|POST|PUT|DELETE) \S+ connection failed with (\d{3}) ([\s\S]*?) return: (\{"data"[\s\S]*)$/

const parseBody = (json: string): unknown => {
  try {
    return JSON.parse(json)
  } catch {
    return undefined
  }
}

/**
 * Classifies anything `proxmox-api` throws. Its errors are plain `Error`s: the status is only in the message
 * (`… return Error 400 …` / `… connection failed with 596 …`), network/TLS failures are `FaILED to call …` (sic)
 * with the Node error at `err.cause.cause`, and ticket login failures are `Auth … Failed!`.
 */
export const classifyRestError = (e: unknown): ProxmoxErrorReason => {
  const message =
    Predicate.isObject(e) && typeof (e as unknown as Error).message === "string"
      ? (e as unknown as Error).message
      : String(e)
  const http = REST_RETURN.exec(message) ?? REST_CONN.exec(message)
  if (http !== null) {
    const body = parseBody(http[3] ?? "")
    const errors = Predicate.isObject(body) ? (body as { errors?: unknown }).errors : undefined
    return classifyStatus(Number(http[1]), http[2] ?? "", errors)
  }
  if (/^Auth \S+ Failed!$/.test(message)) {
    const cause = Predicate.isObject(e) ? (e as { cause?: unknown }).cause : undefined
    const causeMessage = Predicate.isObject(cause) ? String((cause as unknown as Error).message) : ""
    const login = /^login failed with (\d{3}): ([^\n]*)/.exec(causeMessage)
    if (login !== null) {
      const status = Number(login[1])
      if (status === 401) return new AuthRejected({ detail: cleanPveMessage(login[2] ?? "authentication failure") })
      return classifyStatus(status, login[2] ?? "", undefined)
    }
  }
  const inner = innermostCode(e)
  if (inner !== undefined) {
    const reason = reasonForCode(inner.code, inner.message, "rest")
    if (reason !== undefined) return reason
  }
  if (/unexpected contentType/.test(message)) {
    return new UnexpectedResponse({ expected: "Content-Type application/json;charset=UTF-8", detail: message })
  }
  return new UnexpectedResponse({ expected: "a PVE API answer", detail: message })
}

/**
 * Classifies `pvesh`/`qm` standard error. PVE exceptions print `<code> <msg>\n<param>: <err>\n…` (plus a usage line
 * for parameter errors); plain dies print the message alone (treated like a 500).
 */
export const classifyPveshStderr = (stderr: string, paramKeys: ReadonlyArray<string> = []): ProxmoxErrorReason => {
  const lines: Array<string> = []
  for (const raw of stderr.split("\n")) {
    const l = raw.replace(/\s+$/, "")
    if (/^USAGE: |^pvesh |^qm /.test(l)) break
    if (l === "" || /^trying to acquire (?:cfs )?lock/.test(l) || l === " OK" || /^WARN: /.test(l)) continue
    lines.push(l)
  }
  const first = lines[0] ?? "command failed without a message"
  const coded = /^(\d{3}) (.*)$/.exec(first)
  if (coded === null) return classifyStatus(500, first, undefined)
  // `param: message` lines; a message can span lines (property strings: `memory: invalid format - format error`
  // then `current: value must …`), so a line starts a new field only for a request parameter or a schema message.
  const known = new Set(paramKeys)
  const errors: Record<string, string> = {}
  let current: string | undefined
  for (const line of lines.slice(1)) {
    const kv = /^([\w.-]+): (.*)$/.exec(line)
    const isField =
      kv?.[1] !== undefined &&
      (current === undefined || known.has(kv[1]) || /^property is |^type check |^invalid format/.test(kv[2] ?? ""))
    if (isField && kv?.[1] !== undefined) {
      current = kv[1]
      errors[current] = kv[2] ?? ""
    } else if (current !== undefined) {
      errors[current] = `${errors[current]}\n${line}`
    }
  }
  return classifyStatus(Number(coded[1]), coded[2] ?? "", errors)
}
