/**
 * OpenSSH `known_hosts` parsing and editing, as pure functions over the file's text.
 *
 * Supported: plain host patterns (comma lists, `*` / `?` wildcards, `!` negation), hashed hosts (`|1|salt|hash`, as
 * written by `ssh-keygen -H` or `HashKnownHosts yes`), the `[host]:port` form for ports other than 22, comments and
 * blank lines. Markers as OpenSSH's `hostfile.c` reads them: a key on a `@revoked` line whose hosts match is refused
 * (`Revoked`), whatever else the file says about it; `@cert-authority` lines vouch only for host certificates, so
 * a plain host key never matches them (ssh2 offers no certificate host key algorithms). Marker lines are never
 * removed. Malformed lines (and lines with an unknown marker) are kept as they are and ignored.
 *
 * @since 0.1.0
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import { fingerprintOf, keyTypeOf } from "./fingerprintOf.js"

/**
 * How an entry names its hosts.
 *
 * @since 0.1.0
 * @category models
 */
export type HostMatcher =
  | { readonly _tag: "Hashed"; readonly salt: Uint8Array; readonly hash: Uint8Array }
  | { readonly _tag: "Patterns"; readonly patterns: ReadonlyArray<string> }

/**
 * One key line of a `known_hosts` file.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  /** 1-based line number in the parsed text. */
  readonly lineNumber: number
  readonly marker: "cert-authority" | "revoked" | undefined
  /** The host field as written (a pattern list or a `|1|…` hash). */
  readonly hostField: string
  readonly hosts: HostMatcher
  readonly keyType: string
  /** The public key blob (decoded base64 field). */
  readonly key: Uint8Array
  readonly comment: string
}

/**
 * The result of looking a presented host key up.
 *
 * @since 0.1.0
 * @category models
 */
export type Verdict =
  | { readonly _tag: "Revoked"; readonly entry: Entry }
  | { readonly _tag: "Known"; readonly entry: Entry }
  | { readonly _tag: "Mismatch"; readonly expected: Entry }
  | { readonly _tag: "Unknown" }

/**
 * The name OpenSSH records for a host: `host` for port 22, `[host]:port` otherwise (lower-cased).
 *
 * @since 0.1.0
 * @category utilities
 */
export const hostToken = (host: string, port = 22): string => {
  const h = host.toLowerCase()
  return port === 22 ? h : `[${h}]:${port}`
}

const parseHostField = (field: string): HostMatcher | undefined => {
  if (field.startsWith("|1|")) {
    const parts = field.split("|")
    if (parts.length !== 4) return undefined
    const salt = Buffer.from(parts[2]!, "base64")
    const hash = Buffer.from(parts[3]!, "base64")
    if (salt.length === 0 || hash.length !== 20) return undefined
    return { _tag: "Hashed", salt, hash }
  }
  const patterns = field.split(",").filter((p) => p !== "")
  return patterns.length === 0 ? undefined : { _tag: "Patterns", patterns }
}

/**
 * Parses the text of a `known_hosts` file into its key entries (comments, blank and malformed lines are skipped).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (text: string): Array<Entry> => {
  const entries: Array<Entry> = []
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const entry = parseLine(lines[i]!, i + 1)
    if (entry !== undefined) entries.push(entry)
  }
  return entries
}

const parseLine = (raw: string, lineNumber: number): Entry | undefined => {
  const line = raw.trim()
  if (line === "" || line.startsWith("#")) return undefined
  const fields = line.split(/[ \t]+/)
  let marker: Entry["marker"]
  if (fields[0]!.startsWith("@")) {
    const name = fields.shift()!
    if (name === "@cert-authority") marker = "cert-authority"
    else if (name === "@revoked") marker = "revoked"
    else return undefined
  }
  if (fields.length < 3) return undefined
  const [hostField, keyType, keyBase64, ...rest] = fields as [string, string, string, ...Array<string>]
  const hosts = parseHostField(hostField)
  if (hosts === undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(keyBase64)) return undefined
  const key = Buffer.from(keyBase64, "base64")
  if (key.length === 0) return undefined
  return { lineNumber, marker, hostField, hosts, keyType, key, comment: rest.join(" ") }
}

const hashHost = (salt: Uint8Array, token: string): Buffer => createHmac("sha1", salt).update(token).digest()

const wildcardToRegExp = (pattern: string): RegExp =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replaceAll("*", ".*")
      .replaceAll("?", ".")}$`,
    "s"
  )

const patternMatches = (pattern: string, token: string): boolean =>
  /[*?]/.test(pattern) ? wildcardToRegExp(pattern.toLowerCase()).test(token) : pattern.toLowerCase() === token

/**
 * Whether an entry's host field names `host` on `port` (hashed entries are checked by recomputing the HMAC;
 * patterns as OpenSSH does, with `!pattern` excluding).
 *
 * @since 0.1.0
 * @category utilities
 */
export const matchesHost = (entry: Entry, host: string, port = 22): boolean => {
  const token = hostToken(host, port)
  const hosts = entry.hosts
  if (hosts._tag === "Hashed") {
    const computed = hashHost(hosts.salt, token)
    return computed.length === hosts.hash.length && timingSafeEqual(computed, hosts.hash)
  }
  let matched = false
  for (const pattern of hosts.patterns) {
    if (pattern.startsWith("!")) {
      if (patternMatches(pattern.slice(1), token)) return false
    } else if (patternMatches(pattern, token)) {
      matched = true
    }
  }
  return matched
}

/**
 * The key entries (without markers) recorded for `host` on `port`.
 *
 * @since 0.1.0
 * @category utilities
 */
export const find = (entries: ReadonlyArray<Entry>, host: string, port = 22): Array<Entry> =>
  entries.filter((e) => e.marker === undefined && matchesHost(e, host, port))

const sameKey = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b))

/**
 * The key types a host answers with: `ssh-rsa` covers the `rsa-sha2-*` signature algorithms.
 *
 * @since 0.1.0
 * @category utilities
 */
export const keyTypesFor = (entries: ReadonlyArray<Entry>, host: string, port = 22): Array<string> => [
  ...new Set(find(entries, host, port).map((e) => e.keyType))
]

/**
 * The `@revoked` entry for `host` on `port` that holds exactly this key, if any.
 *
 * @since 0.1.0
 * @category utilities
 */
export const revokedEntry = (
  entries: ReadonlyArray<Entry>,
  host: string,
  port: number,
  keyBlob: Uint8Array
): Entry | undefined =>
  entries.find((e) => e.marker === "revoked" && sameKey(e.key, keyBlob) && matchesHost(e, host, port))

/**
 * Looks a presented host key up as OpenSSH's `check_key_in_hostkeys` does: `Revoked` if a `@revoked` line for the
 * host holds this key (even when another line also records it as the host's key), else `Known` if an entry for the
 * host holds exactly this key, `Mismatch` if the host is recorded with other keys (the expected entry is the one of
 * the same key type when there is one), `Unknown` otherwise. `@cert-authority` lines play no part: they vouch for
 * host certificates only.
 *
 * @since 0.1.0
 * @category utilities
 */
export const check = (entries: ReadonlyArray<Entry>, host: string, port: number, keyBlob: Uint8Array): Verdict => {
  const revoked = revokedEntry(entries, host, port, keyBlob)
  if (revoked !== undefined) return { _tag: "Revoked", entry: revoked }
  const candidates = find(entries, host, port)
  const known = candidates.find((e) => sameKey(e.key, keyBlob))
  if (known !== undefined) return { _tag: "Known", entry: known }
  if (candidates.length === 0) return { _tag: "Unknown" }
  const type = keyTypeOf(keyBlob)
  const expected = candidates.find((e) => e.keyType === type) ?? candidates[0]!
  return { _tag: "Mismatch", expected }
}

/**
 * Formats one `known_hosts` line for a host key, optionally with the host name hashed like `ssh-keygen -H`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatEntry = (
  host: string,
  port: number,
  keyBlob: Uint8Array,
  options?: { readonly hash?: boolean | undefined; readonly comment?: string | undefined }
): string => {
  const token = hostToken(host, port)
  let hostField = token
  if (options?.hash === true) {
    const salt = randomBytes(20)
    hostField = `|1|${salt.toString("base64")}|${hashHost(salt, token).toString("base64")}`
  }
  const comment = options?.comment === undefined || options.comment === "" ? "" : ` ${options.comment}`
  return `${hostField} ${keyTypeOf(keyBlob)} ${Buffer.from(keyBlob).toString("base64")}${comment}`
}

/**
 * Returns `text` with a line for the host key appended (a newline is inserted first when the text does not end in
 * one).
 *
 * @since 0.1.0
 * @category editing
 */
export const add = (
  text: string,
  host: string,
  port: number,
  keyBlob: Uint8Array,
  options?: { readonly hash?: boolean | undefined; readonly comment?: string | undefined }
): string => {
  const prefix = text === "" || text.endsWith("\n") ? text : `${text}\n`
  return `${prefix}${formatEntry(host, port, keyBlob, options)}\n`
}

/**
 * Returns `text` without the key lines for `host` on `port` (plain and hashed entries; lines that name the host
 * only through a wildcard pattern, and `@cert-authority` / `@revoked` lines, are kept, as `ssh-keygen -R` keeps
 * marker lines). A line listing several hosts is removed entirely, like `ssh-keygen -R` does.
 *
 * @since 0.1.0
 * @category editing
 */
export const remove = (text: string, host: string, port = 22): { readonly text: string; readonly removed: number } => {
  const token = hostToken(host, port)
  const lines = text.split("\n")
  const kept: Array<string> = []
  let removed = 0
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const entry = parseLine(line, i + 1)
    const drop =
      entry !== undefined &&
      entry.marker === undefined &&
      (entry.hosts._tag === "Hashed"
        ? matchesHost(entry, host, port)
        : entry.hosts.patterns.some((p) => p.toLowerCase() === token) && matchesHost(entry, host, port))
    if (drop) removed++
    else kept.push(line)
  }
  return { text: kept.join("\n"), removed }
}

/**
 * The OpenSSH fingerprint of an entry's key.
 *
 * @since 0.1.0
 * @category utilities
 */
export const fingerprint = (entry: Entry): string => fingerprintOf(entry.key)
