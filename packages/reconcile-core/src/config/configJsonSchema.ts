// biome-ignore-all lint/suspicious/noTemplateCurlyInString: this file describes ${VAR} references
// biome-ignore-all lint/suspicious/noThenProperty: `if`/`then` are JSON Schema keywords here, not a thenable
import { AGENT_ONLY_FLAGS, SERVER_ONLY_FLAGS, SHARED_FLAGS } from "@homelab/k3s-join"
import * as Schema from "effect/Schema"
import { HomelabConfigSchema } from "./HomelabConfigSchema.js"
import {
  type ChecksumAlgorithm,
  checksumAlgorithms,
  checksumHexLength,
  importFilenamePattern
} from "./internal/formats.js"
import { K3S_FLAG_LISTS, refusedK3sFlags } from "./internal/semantic.js"

type Json = Record<string, unknown>

/** `isoFilenamePattern` without its `i` flag, which JSON Schema patterns cannot carry. */
const isoFilename = "^[a-zA-Z0-9_.-]+\\.([iI][sS][oO]|[iI][mM][gG])$"

/**
 * A string holding a `${VAR}` reference. The editor sees homelab.yaml before interpolation, so `port: ${SSH_PORT}`
 * is a string there while `homelab` reads a number: every constrained field also accepts such a string.
 */
const interpolated: Json = {
  type: "string",
  pattern: "\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}",
  description: "A ${VAR} or ${VAR:-default} reference, resolved from the environment when homelab reads the file."
}

const annotations = ["title", "description", "default"] as const

/** `sha256` → `[sS][hH][aA]256`: JSON Schema patterns have no case-insensitive flag. */
const anyCase = (text: string): string => text.replace(/[a-z]/gu, (letter) => `[${letter}${letter.toUpperCase()}]`)

const isObject = (value: unknown): value is Json => value !== null && typeof value === "object" && !Array.isArray(value)

/** A value schema that a `${VAR}` string would fail (a number, boolean, enum, pattern or union). */
const isConstrained = (schema: Json): boolean =>
  schema.type === "integer" ||
  schema.type === "number" ||
  schema.type === "boolean" ||
  "enum" in schema ||
  "const" in schema ||
  "pattern" in schema ||
  "not" in schema ||
  Array.isArray(schema.anyOf)

/** `schema` as `{ anyOf: [schema, ...more] }`, its annotations moved to the outside where editors show them. */
const withAlternatives = (schema: Json, more: ReadonlyArray<Json>): Json => {
  const inner: Json = { ...schema }
  const outer: Json = {}
  for (const key of annotations) {
    if (key in inner) {
      outer[key] = inner[key]
      delete inner[key]
    }
  }
  const alternatives = Array.isArray(inner.anyOf) && Object.keys(inner).length === 1 ? inner.anyOf : [inner]
  return { anyOf: [...alternatives, ...more], ...outer }
}

/**
 * Lets every constrained scalar also be a `${VAR}` string, and every optional key be empty (`ssh:` with nothing
 * after it, which parseConfig reads as "not set").
 */
const relax = (schema: Json): Json => {
  if (schema.type === "object" && isObject(schema.properties)) {
    const required = new Set(Array.isArray(schema.required) ? (schema.required as Array<string>) : [])
    const properties = Object.fromEntries(
      Object.entries(schema.properties).map(([key, value]) => {
        if (!isObject(value)) return [key, value]
        const relaxed = relax(value)
        return [key, required.has(key) ? relaxed : withAlternatives(relaxed, [{ type: "null" }])]
      })
    )
    return { ...schema, properties }
  }
  if (schema.type === "array" && isObject(schema.items)) return { ...schema, items: relax(schema.items) }
  return isConstrained(schema) ? withAlternatives(schema, [interpolated]) : schema
}

const at = (schema: Json, ...path: Array<string>): Json => {
  let current = schema
  for (const key of path) {
    const next = key === "[]" ? current.items : (current.properties as Json | undefined)?.[key]
    if (!isObject(next)) throw new Error(`configJsonSchema: no ${path.join(".")} in the generated schema`)
    current = next
  }
  return current
}

/**
 * The cross-field rules of `parseConfig` that a JSON Schema can state, added to the generated document:
 * exactly one of `proxmox.endpoint`/`endpoints`; at most one TLS trust mode; the checksum's form and length per
 * algorithm (`checksumAlgorithm` only with a `checksum`); the image file name's extension per content type; `{node}`/`{index}` as the only template
 * placeholders; the k3s flags homelab refuses.
 */
const addRules = (schema: Json): void => {
  const proxmox = at(schema, "proxmox")
  proxmox.oneOf = [{ required: ["endpoint"] }, { required: ["endpoints"] }]
  const tls = at(schema, "proxmox", "tls")
  const insecure = { properties: { insecure: { const: true } } }
  tls.not = {
    anyOf: [
      { required: ["ca", "fingerprint"] },
      { required: ["ca", "insecure"], ...insecure },
      { required: ["fingerprint", "insecure"], ...insecure }
    ]
  }

  const image = at(schema, "image")
  image.dependentRequired = { checksumAlgorithm: ["checksum"] }
  // sha256:<64 hex> (prefix in any case), or plain hex whose length checksumAlgorithm gives.
  const hex = (length: number) => `[0-9a-fA-F]{${length}}`
  const prefixed = (algorithm: ChecksumAlgorithm) => `${anyCase(algorithm)}:${hex(checksumHexLength[algorithm])}`
  at(schema, "image", "checksum").pattern =
    `^([0-9a-fA-F]+|${checksumAlgorithms.map((algorithm) => prefixed(algorithm)).join("|")})$`
  const plainHex = { properties: { checksum: { pattern: "^[0-9a-fA-F]+$" } }, required: ["checksum"] }
  const perAlgorithm = checksumAlgorithms.map((algorithm) => ({
    if: { properties: { checksumAlgorithm: { const: algorithm } }, required: ["checksumAlgorithm"] },
    then: {
      properties: {
        checksum: {
          anyOf: [{ pattern: `^(${hex(checksumHexLength[algorithm])}|${prefixed(algorithm)})$` }, interpolated]
        }
      }
    }
  }))
  const filename = (pattern: string) => ({
    properties: { filename: { anyOf: [{ pattern }, interpolated] } }
  })
  // A `${VAR}` content matches neither condition, so its file name is left to parseConfig.
  image.allOf = [
    { if: plainHex, then: { required: ["checksumAlgorithm"] } },
    ...perAlgorithm,
    { if: { properties: { content: { const: "iso" } }, required: ["content"] }, then: filename(isoFilename) },
    { if: { properties: { content: { const: "import" } } }, then: filename(importFilenamePattern.source) }
  ]

  at(schema, "vm", "nameTemplate").pattern = "^[^{}]*(\\{(node|index)\\}[^{}]*)*$"

  // the flags no list may hold; a flag no k3s defines (a typo, a removed flag; one whose name comes from a ${VAR} is
  // left to parseConfig), unless k3s.version pins a release newer than the lists (or a ${VAR}: left to parseConfig);
  // and, in a list that reaches it, a flag a k3s command does not define
  const known = [...SHARED_FLAGS, ...SERVER_ONLY_FLAGS, ...AGENT_ONLY_FLAGS]
  const knownFlag = {
    if: { pattern: "^\\s*-" },
    then: { pattern: `^\\s*(-{1,2}(${known.join("|")})(=|\\s|$)|[^=\\s]*\\$\\{)` }
  }
  const refused = refusedK3sFlags.flatMap((entry) => entry.flags)
  const refusedPattern = `^\\s*(${refused.join("|")})(=|\\s|$)`
  const serverOnly = `^\\s*-{1,2}(${SERVER_ONLY_FLAGS.join("|")})(=|\\s|$)`
  const agentOnly = `^\\s*-{1,2}(${AGENT_ONLY_FLAGS.join("|")})(=|\\s|$)`
  for (const list of K3S_FLAG_LISTS) {
    const not = [
      refusedPattern,
      ...(list.reaches.includes("agent") ? [serverOnly] : []),
      ...(list.reaches.includes("server") ? [agentOnly] : [])
    ]
    const item = at(schema, "k3s", list.field, "[]")
    item.not = { anyOf: not.map((pattern) => ({ pattern })) }
  }
  const k3s = at(schema, "k3s")
  k3s.if = { properties: { version: { pattern: `${newerThanFlagLists}|\\$\\{` } }, required: ["version"] }
  k3s.else = { properties: Object.fromEntries(K3S_FLAG_LISTS.map((list) => [list.field, { items: knownFlag }])) }
}

/** A k3s version newer than the flag lists (`K3S_FLAG_NEWEST_RELEASE`, v1.36): v1.37 on, v2 on. */
const newerThanFlagLists = "^v(1\\.(3[7-9]|[4-9][0-9]|[1-9][0-9]{2,})|([2-9]|[1-9][0-9]+)\\.[0-9]+)\\."

/**
 * A JSON Schema (draft 2020-12) of `homelab.yaml` for editors (yaml-language-server: add
 * `# yaml-language-server: $schema=<path>` to the file). Generated from the same Effect Schema that `parseConfig`
 * decodes with, so unknown keys are rejected (`additionalProperties: false`) and fields carry their descriptions
 * and defaults.
 *
 * It agrees with `parseConfig` in one direction without exception: a file `homelab config check` accepts is valid
 * here. The editor sees the file before `${ENV}` interpolation, so every constrained field also accepts a `${VAR}`
 * string. Rules that compare values across the document stay with `parseConfig`: unique node names, VM names after
 * template expansion (valid DNS names, unique), a static address used once, `vmidRange.lower <= upper` and its size
 * (a VMID for every VM), the file name derived from `image.url`, the value after a k3s flag, a k3s flag whose name
 * comes from a `${VAR}`, and the formats checked by code (URLs, host names, ipconfig, SSH keys).
 */
export const configJsonSchema = (): Record<string, unknown> => {
  const document = Schema.toJsonSchemaDocument(HomelabConfigSchema, { onExcessProperty: "error" })
  const schema = structuredClone(document.schema) as Json
  addRules(schema)
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    ...relax(schema),
    ...(Object.keys(document.definitions).length > 0 ? { $defs: document.definitions } : {})
  }
}
