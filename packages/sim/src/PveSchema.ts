/**
 * A checker for PVE's JSON-schema dialect (pve-common `PVE::JSONSchema`: `check_prop`, `check_object`,
 * `parse_property_string`), for checking requests and responses against PVE's published API schema in tests. It
 * gives pve-common's error texts. The schema itself is not part of this package: callers load it (test data).
 *
 * Named formats (`pve-vmid`, `dns-name`, …) are checked by the validators registered below; a named format that is a
 * property string PVE registers by name (`pve-qm-ipconfig`, `pve-vm-cpu-conf`, …) is checked against the keys its
 * `typetext` lists. Other named formats are accepted unchecked (`uncheckedFormats` lists the ones met).
 */

import { isIPv6 } from "node:net"

/** One property of a PVE schema (parameters, returns, property-string keys). */
export interface PveSchemaProp {
  readonly type?: string | ReadonlyArray<string>
  readonly optional?: number | boolean
  readonly enum?: ReadonlyArray<string | number>
  readonly pattern?: string
  readonly format?: string | Readonly<Record<string, PveSchemaProp>>
  readonly minimum?: number
  readonly maximum?: number
  readonly maxLength?: number
  readonly minLength?: number
  readonly properties?: Readonly<Record<string, PveSchemaProp>>
  readonly additionalProperties?: number | boolean | PveSchemaProp
  readonly items?: PveSchemaProp
  readonly default_key?: number | boolean
  readonly alias?: string
  readonly keyAlias?: string
  readonly requires?: string
  readonly typetext?: string
  readonly description?: string
}

/** One endpoint of the flattened schema (`"METHOD /path": {...}`). */
export interface PveEndpointSchema {
  readonly parameters?: PveSchemaProp
  readonly returns?: PveSchemaProp
  readonly permissions?: unknown
}

/** Errors by path (`vmid`, `net0`, `[2].status`), pve-common's `add_error` texts. */
export type PveErrors = Record<string, string>

/** A JSON value as a Perl scalar sees it: numbers and strings are both scalars. */
const scalar = (v: unknown): string | undefined =>
  typeof v === "string" ? v : typeof v === "number" ? String(v) : undefined

const isNumber = (v: string) => /^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$/.test(v)
const isInteger = (v: string) => /^[+-]?\d+$/.test(v)

/** Perl regex source → JS (`(?^:…)` groups of stringified `qr//`). */
const jsPattern = (p: string): RegExp =>
  new RegExp(`^${p.replace(/\(\?\^([a-z]*):/g, "(?$1:").replace(/\(\?:/g, "(?:")}$`)

const addError = (errors: PveErrors, path: string, msg: string) => {
  const p = path === "" ? "_root" : path
  errors[p] = errors[p] === undefined ? msg : `${errors[p]}\\n${msg}`
}

class FormatError extends Error {}

const ok = (test: boolean, msg: string): void => {
  if (!test) throw new FormatError(msg)
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/
const IPV6 = /^[0-9a-fA-F:]*:[0-9a-fA-F:.]*$/
/** `<ip>/<mask>` with 8 ≤ mask ≤ max (pve_verify_cidrv4/6) */
const cidr = (v: string, ip: RegExp, max: number): boolean => {
  const m = /^([^/]+)\/(\d+)$/.exec(v)
  return m !== null && ip.test(m[1] as string) && Number(m[2]) > 7 && Number(m[2]) <= max
}

const DNS_NAME = /^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)(\.([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?))*$/

/**
 * pve-common `pve_verify_address`: an IP address (`pve_verify_ip`: IPV4RE, or IPV6RE — a full IPv6 address, no zone
 * index) or a DNS name (`pve_verify_dns_name`, so `1.2.3.999` passes as a name).
 */
const pveAddress = (v: string): boolean => IPV4.test(v) || (isIPv6(v) && !v.includes("%")) || DNS_NAME.test(v)

/**
 * pve-common's `address-list` format (qemu-server's `nameserver`): `split_list`, each part `pve_verify_address`, the
 * `die` naming the first part refused. Undefined when every part is one.
 */
export const addressListError = (value: string): string | undefined => {
  const bad = splitList(value).find((a) => !pveAddress(a))
  return bad === undefined ? undefined : `value does not look like a valid address: ${bad}\n`
}

/** pve-common and qemu-server validators of named formats (`die` texts). */
const NAMED: Record<string, (v: string) => void> = {
  string: () => {},
  "pve-vmid": (v) => ok(/^[1-9][0-9]{2,8}$/.test(v), "value does not look like a valid VM ID\n"),
  "pve-node": (v) =>
    ok(/^(?=.{1,63}$)[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(v), "value does not look like a valid node name\n"),
  "dns-name": (v) =>
    ok(
      /^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)(\.([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?))*$/.test(v),
      "value does not look like a valid DNS name\n"
    ),
  urlencoded: (v) => ok(/^[-%a-zA-Z0-9_.!~*'()]*$/.test(v), `invalid urlencoded string: ${v}\n`),
  "pve-tag": (v) => ok(/^[a-z0-9_][a-z0-9_\-+.]*$/i.test(v), "invalid characters in tag\n"),
  "pve-configid": (v) => ok(/^[a-z][a-z0-9_-]+$/i.test(v), `invalid configuration ID '${v}'\n`),
  "pve-storage-id": (v) =>
    ok(/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(v), `storage ID '${v}' contains illegal characters\n`),
  "pve-bridge-id": (v) => ok(/^[-_.\w\d]+$/.test(v), `bridge ID '${v}' contains illegal characters\n`),
  "pve-poolid": (v) => ok(/^[A-Za-z0-9_\-/]+$/.test(v), `invalid pool ID '${v}'\n`),
  "pve-realm": (v) => ok(/^[A-Za-z][A-Za-z0-9.\-_]+$/.test(v), `realm name '${v}' contains invalid characters\n`),
  "mac-addr": (v) =>
    ok(/^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$/i.test(v), `value does not look like a valid unicast MAC address\n`),
  ipv4: (v) => ok(IPV4.test(v), `value does not look like a valid IPv4 address\n`),
  ipv6: (v) => ok(IPV6.test(v), `value does not look like a valid IPv6 address\n`),
  ip: (v) => ok(IPV4.test(v) || IPV6.test(v), `value does not look like a valid IP address\n`),
  ipv4mask: (v) => ok(IPV4.test(v), `value does not look like a valid IP netmask\n`),
  CIDRv4: (v) => ok(cidr(v, IPV4, 32), "value does not look like a valid IPv4 CIDR network\n"),
  CIDRv6: (v) => ok(cidr(v, IPV6, 128), "value does not look like a valid IPv6 CIDR network\n"),
  CIDR: (v) => ok(cidr(v, IPV4, 32) || cidr(v, IPV6, 128), "value does not look like a valid CIDR network\n"),
  "pve-ipv4-config": (v) =>
    ok(
      v === "dhcp" || v === "manual" || cidr(v, IPV4, 32),
      "value does not look like a valid ipv4 network configuration\n"
    ),
  "pve-ipv6-config": (v) =>
    ok(
      v === "dhcp" || v === "auto" || v === "manual" || cidr(v, IPV6, 128),
      "value does not look like a valid ipv6 network configuration\n"
    ),
  address: (v) => ok(pveAddress(v), `value does not look like a valid address: ${v}\n`),
  "disk-size": (v) => ok(/^(\d+(\.\d+)?)([KMGT])?$/.test(v), "value does not look like a valid disk size\n"),
  "pve-iface": (v) =>
    ok(/^[a-zA-Z][a-zA-Z0-9_:.-]{1,20}[a-zA-Z0-9]$/.test(v), `invalid network interface name '${v}'\n`),
  "pve-storage-content": (v) =>
    ok(
      ["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import", "none"].includes(v),
      `invalid content type '${v}'\n`
    ),
  "pve-volume-id": (v) => ok(/^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$/i.test(v), `unable to parse volume ID '${v}'\n`),
  "pve-volume-id-or-qm-path": (v) =>
    ok(
      v === "none" ||
        v === "cdrom" ||
        v.startsWith("/") ||
        /^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$/i.test(v) ||
        /^\d+(\.\d+)?$/.test(v),
      `unable to parse volume ID '${v}'\n`
    ),
  "pve-volume-id-or-absolute-path": (v) =>
    ok(v.startsWith("/") || /^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$/i.test(v), `unable to parse volume ID '${v}'\n`),
  "pve-task-status-type": (v) => ok(/^(ok|error|warning|unknown)$/i.test(v), `invalid status '${v}'\n`),
  "pve-priv": (v) => ok(/^[A-Z][A-Za-z.]+$/.test(v), `invalid privilege '${v}'\n`)
}

/** pve-common `split_list`: separated by commas, semicolons, NULs or whitespace. */
const splitList = (v: string): Array<string> => v.split(/[,;\0\s]+/).filter((x) => x !== "")

/**
 * Keys of a property string from its `typetext` (`[gw=<GatewayIPv4>] [,ip=<IPv4Format/CIDR>]`,
 * `[[cputype=]<string>] [,flags=…]`): the keys and the default key (written `[key=]`).
 */
export const keysOfTypetext = (typetext: string): { readonly keys: Array<string>; readonly defaultKey?: string } => {
  const keys: Array<string> = []
  let defaultKey: string | undefined
  for (const m of typetext.matchAll(/(?:^|[\s,[])(\[?)([A-Za-z0-9_-]+)=\]?/g)) {
    const key = m[2] as string
    if (m[1] === "[" && typetext.includes(`[${key}=]`)) defaultKey = key
    if (!keys.includes(key)) keys.push(key)
  }
  return defaultKey === undefined ? { keys } : { keys, defaultKey }
}

/** Formats met that this checker does not check (named formats without a validator or typetext). */
export const uncheckedFormats = new Set<string>()

/** pve-common `parse_boolean` (property strings only): `1|on|yes|true`, `0|off|no|false`. */
const parseBoolean = (v: string): string | undefined =>
  /^(1|on|yes|true)$/i.test(v) ? "1" : /^(0|off|no|false)$/i.test(v) ? "0" : undefined

/** `parse_property_string`: the pairs checked against a hash format, errors as `format error` with sub-errors. */
export const parsePropertyString = (
  format: Readonly<Record<string, PveSchemaProp>>,
  data: string,
  path: string
): Record<string, string> => {
  const res: Record<string, string> = {}
  let defaultKey: string | undefined
  for (const part of data.split(",")) {
    if (/^\s*$/.test(part)) continue
    const m = /^([^=]+)=(.+)$/.exec(part)
    if (m) {
      let k = m[1] as string
      let v = m[2] as string
      if (res[k] !== undefined) throw new FormatError(`duplicate key in comma-separated list property: ${k}\n`)
      let schema = format[k]
      if (schema?.alias !== undefined) {
        if (schema.keyAlias !== undefined) {
          if (res[schema.keyAlias] !== undefined)
            throw new FormatError(`key alias '${schema.keyAlias}' is already defined\n`)
          res[schema.keyAlias] = k
        }
        k = schema.alias
        schema = format[k]
        if (res[k] !== undefined) throw new FormatError(`key '${k}' is already defined (via alias)\n`)
      }
      if (schema === undefined) throw new FormatError(`invalid key in comma-separated list property: ${k}\n`)
      if (schema.type === "boolean") v = parseBoolean(v) ?? v
      res[k] = v
    } else if (!part.includes("=")) {
      if (defaultKey !== undefined)
        throw new FormatError(`duplicate key in comma-separated list property: ${defaultKey}\n`)
      const dk = Object.keys(format).find((k) => format[k]?.default_key)
      if (dk === undefined) throw new FormatError("value without key, but schema does not define a default key\n")
      defaultKey = dk
      if (res[dk] !== undefined) throw new FormatError(`duplicate key in comma-separated list property: ${dk}\n`)
      res[dk] = format[dk]?.type === "boolean" ? (parseBoolean(part) ?? part) : part
    } else throw new FormatError("missing key in comma-separated list property\n")
  }
  const errors: PveErrors = {}
  checkObject(path, format, res, false, errors)
  if (Object.keys(errors).length > 0)
    throw new FormatError(
      `format error\n${Object.entries(errors)
        .map(([k, e]) => `${k}: ${e}\n`)
        .join("")}`
    )
  return res
}

const checkFormat = (format: NonNullable<PveSchemaProp["format"]>, value: string, path: string, typetext?: string) => {
  if (typeof format === "object") {
    parsePropertyString(format, value, path)
    return
  }
  if (format === "regex") return
  const m = /^(.*?)(?:-(list|opt))?$/.exec(format)
  const name = m?.[1] ?? format
  const kind = m?.[2]
  const fn = NAMED[name]
  if (fn !== undefined) {
    if (kind === "list") for (const v of splitList(value)) fn(v)
    else if (kind === "opt") {
      if (value !== "") fn(value)
    } else fn(value)
    return
  }
  if (kind === undefined && typetext !== undefined && /[a-z0-9-]+=/.test(typetext)) {
    // a property string registered by name: only its keys are known (from the typetext)
    const { keys, defaultKey } = keysOfTypetext(typetext)
    const fmt: Record<string, PveSchemaProp> = {}
    for (const k of keys) fmt[k] = { type: "string", optional: 1, ...(k === defaultKey ? { default_key: 1 } : {}) }
    parsePropertyString(fmt, value, path)
    return
  }
  uncheckedFormats.add(format)
}

/** pve-common `check_type` (returns false after adding an error). */
const checkType = (path: string, type: PveSchemaProp["type"], value: unknown, errors: PveErrors): boolean => {
  if (type === undefined) return true
  if (Array.isArray(type)) {
    for (const t of type) {
      const e: PveErrors = {}
      if (checkType(path, t, value, e)) return true
    }
    addError(errors, path, `type check ('${type.join("|")}') failed`)
    return false
  }
  if (type === "any") return true
  if (type === "null") {
    if (value !== null) {
      addError(errors, path, `type check ('null') failed - value is not null`)
      return false
    }
    return true
  }
  if (type === "array" || type === "object") {
    const good =
      type === "array" ? Array.isArray(value) : value !== null && typeof value === "object" && !Array.isArray(value)
    if (!good) addError(errors, path, `type check ('${type}') failed`)
    return good
  }
  if (typeof value === "boolean") {
    if (type === "boolean") return true
    addError(errors, path, `type check ('${type}') failed - got JSON::PP::Boolean`)
    return false
  }
  if (value !== null && typeof value === "object") {
    addError(errors, path, `type check ('${type}') failed - got ${Array.isArray(value) ? "ARRAY" : "HASH"}`)
    return false
  }
  const v = scalar(value) ?? ""
  if (type === "boolean" && v !== "0" && v !== "1") {
    addError(errors, path, `type check ('boolean') failed - got '${v}'`)
    return false
  }
  if (type === "integer" && !isInteger(v)) {
    addError(errors, path, `type check ('integer') failed - got '${v}'`)
    return false
  }
  if (type === "number" && !isNumber(v)) {
    addError(errors, path, `type check ('number') failed - got '${v}'`)
    return false
  }
  return true
}

/** pve-common `check_prop`. */
export const checkProp = (value: unknown, schema: PveSchemaProp, path: string, errors: PveErrors): void => {
  if (schema.alias !== undefined) return
  if (value === undefined || value === null) {
    if (value === null && schema.type === "null") return
    if (value === null && Array.isArray(schema.type) && schema.type.includes("null")) return
    if (!schema.optional) addError(errors, path, "property is missing and it is not optional")
    return
  }
  if (!checkType(path, schema.type, value, errors)) return
  if (Array.isArray(value)) {
    const items = schema.items
    if (items !== undefined) for (const [i, el] of value.entries()) checkProp(el, items, `${path}[${i}]`, errors)
    return
  }
  if (typeof value === "object") {
    if (schema.properties !== undefined || schema.additionalProperties !== undefined)
      checkObject(path, schema.properties ?? {}, value as Record<string, unknown>, schema.additionalProperties, errors)
    return
  }
  const v = scalar(value) ?? (typeof value === "boolean" ? (value ? "1" : "0") : "")
  if (schema.format !== undefined) {
    try {
      checkFormat(schema.format, v, path, schema.typetext)
    } catch (e) {
      if (!(e instanceof FormatError)) throw e
      addError(errors, path, `invalid format - ${e.message}`)
      return
    }
  }
  if (schema.pattern !== undefined && !jsPattern(schema.pattern).test(v)) {
    addError(errors, path, "value does not match the regex pattern")
    return
  }
  if (schema.maxLength !== undefined && [...v].length > schema.maxLength) {
    addError(errors, path, `value may only be ${schema.maxLength} characters long`)
    return
  }
  if (schema.minLength !== undefined && [...v].length < schema.minLength) {
    addError(errors, path, `value must be at least ${schema.minLength} characters long`)
    return
  }
  if (isNumber(v)) {
    if (schema.maximum !== undefined && Number(v) > schema.maximum) {
      addError(errors, path, `value must have a maximum value of ${schema.maximum}`)
      return
    }
    if (schema.minimum !== undefined && Number(v) < schema.minimum) {
      addError(errors, path, `value must have a minimum value of ${schema.minimum}`)
      return
    }
  }
  if (schema.enum !== undefined && !schema.enum.some((e) => String(e) === v))
    addError(errors, path, `value '${v}' does not have a value in the enumeration '${schema.enum.join(", ")}'`)
}

/** pve-common `check_object`. */
export const checkObject = (
  path: string,
  schema: Readonly<Record<string, PveSchemaProp>>,
  value: Record<string, unknown>,
  additional: PveSchemaProp["additionalProperties"],
  errors: PveErrors
): void => {
  const v: Record<string, unknown> = { ...value }
  for (const k of Object.keys(v)) {
    const alias = schema[k]?.alias
    if (alias === undefined) continue
    if (v[alias] !== undefined)
      addError(errors, path ? `${path}.${k}` : k, `cannot set both '${k}' and its alias target '${alias}'`)
    else {
      v[alias] = v[k]
      delete v[k]
    }
  }
  for (const [k, s] of Object.entries(schema))
    if (!k.endsWith("[n]")) checkProp(v[k], s, path ? `${path}.${k}` : k, errors)
  for (const k of Object.keys(v)) {
    const np = path ? `${path}.${k}` : k
    const sub = schema[k]
    if (sub === undefined) {
      // a numbered key (`net0`) of a family (`net[n]`)
      const family = propertyFor(schema, k)
      if (family !== undefined) {
        checkProp(v[k], family, np, errors)
        continue
      }
    }
    if (sub !== undefined) {
      if (sub.requires !== undefined && v[sub.requires] === undefined)
        addError(errors, path ? `${path}.${sub.requires}` : sub.requires, `missing property required by '${np}'`)
      continue
    }
    if (additional !== undefined && (additional === 0 || additional === false)) {
      addError(errors, np, "property is not defined in schema and the schema does not allow additional properties")
      continue
    }
    if (typeof additional === "object") checkProp(v[k], additional, np, errors)
  }
}

/**
 * The schema's property for a parameter: itself, or the numbered family it belongs to (`net0` → `net[n]`, when
 * the family's description allows that number).
 */
export const propertyFor = (
  properties: Readonly<Record<string, PveSchemaProp>>,
  key: string
): PveSchemaProp | undefined => {
  const direct = properties[key]
  if (direct !== undefined) return direct
  const m = /^([a-z_-]+?)(\d+)$/.exec(key)
  if (m === null) return undefined
  const family = properties[`${m[1]}[n]`]
  if (family === undefined) return undefined
  const range = /\(n is (\d+) to (\d+)\)/.exec(family.description ?? "")
  if (range !== null && (Number(m[2]) < Number(range[1]) || Number(m[2]) > Number(range[2]))) return undefined
  return family
}

/**
 * A property string checked against a hash format as `check_format` does: undefined, or the error text after
 * `invalid format - ` (`invalid key in comma-separated list property: foo\n`, `format error\nnet0.tag: …\n`).
 */
export const propertyStringError = (
  format: Readonly<Record<string, PveSchemaProp>>,
  value: string,
  path: string
): string | undefined => {
  try {
    parsePropertyString(format, value, path)
    return undefined
  } catch (e) {
    if (e instanceof FormatError) return e.message
    throw e
  }
}

/**
 * Checks request parameters against an endpoint's `parameters` (numbered keys resolved by their family) as pve-common
 * `validate` does. Values are strings as on the wire (a repeated key is an array).
 */
export const checkParameters = (endpoint: PveEndpointSchema, params: Readonly<Record<string, unknown>>): PveErrors => {
  const errors: PveErrors = {}
  const props = endpoint.parameters?.properties ?? {}
  const resolved: Record<string, PveSchemaProp> = {}
  for (const k of Object.keys(params)) {
    const p = propertyFor(props, k)
    if (p !== undefined) resolved[k] = p
  }
  for (const [k, p] of Object.entries(props)) if (!k.includes("[n]")) resolved[k] = p
  const values: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(params)) {
    const p = resolved[k]
    // a scalar for an array parameter is wrapped; an array for a string is joined (RESTHandler)
    values[k] = p?.type === "array" ? (Array.isArray(v) ? v : [v]) : Array.isArray(v) ? v.join(",") : v
  }
  checkObject("", resolved, values, endpoint.parameters?.additionalProperties ?? 0, errors)
  return errors
}

/** Checks a response's `data` against an endpoint's `returns`. */
export const checkReturns = (endpoint: PveEndpointSchema, data: unknown): PveErrors => {
  const errors: PveErrors = {}
  if (endpoint.returns !== undefined) checkProp(data, endpoint.returns, "", errors)
  return errors
}
