import { PveError } from "../PveError.js"
import { type PveSchemaProp, propertyStringError } from "../PveSchema.js"

export type ParamValue = string | Array<string>
export type Params = Record<string, ParamValue>

export interface ParamSpec {
  readonly type: "string" | "integer" | "boolean" | "number" | "array"
  readonly optional?: boolean
  readonly enum?: ReadonlyArray<string>
  /** returns an error message (without the `invalid format - ` prefix) or undefined */
  readonly format?: (v: string) => string | undefined
  readonly pattern?: RegExp
  readonly maxLength?: number
  readonly minimum?: number
  readonly maximum?: number
  /** this param needs another one */
  readonly requires?: string
  /** a property string: its keys, checked as pve-common `parse_property_string` does */
  readonly propertyString?: Readonly<Record<string, PveSchemaProp>>
  /** the name PVE registers the format under, where the schema shows only the name (`pve-qm-ipconfig`) */
  readonly formatName?: string
}

export type Schema = Record<string, ParamSpec>

export const str = (extra: Partial<ParamSpec> = {}): ParamSpec => ({ type: "string", optional: true, ...extra })
export const int = (extra: Partial<ParamSpec> = {}): ParamSpec => ({ type: "integer", optional: true, ...extra })
export const bool = (extra: Partial<ParamSpec> = {}): ParamSpec => ({ type: "boolean", optional: true, ...extra })
export const arr = (extra: Partial<ParamSpec> = {}): ParamSpec => ({ type: "array", optional: true, ...extra })

export const NODE_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/
export const pveNode: ParamSpec = {
  type: "string",
  format: (v) => (NODE_RE.test(v) ? undefined : "value does not look like a valid node name\n")
}
export const pveVmid: ParamSpec = {
  type: "integer",
  format: (v) => (/^[1-9][0-9]{2,8}$/.test(v) ? undefined : "value does not look like a valid VM ID\n"),
  minimum: 100,
  maximum: 999999999
}
export const dnsName = (v: string): string | undefined =>
  /^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)(\.([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?))*$/.test(v)
    ? undefined
    : "value does not look like a valid DNS name\n"
export const urlencoded = (v: string): string | undefined =>
  /^[-%a-zA-Z0-9_.!~*'()]*$/.test(v) ? undefined : `invalid urlencoded string: ${v}\n`
export const tagList = (v: string): string | undefined =>
  v
    .split(/[,; \s]+/)
    .filter((t) => t !== "")
    .every((t) => /^[a-z0-9_][a-z0-9_\-+.]*$/i.test(t))
    ? undefined
    : "invalid characters in tag\n"
export const storageId = (v: string): string | undefined =>
  /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(v) ? undefined : `storage ID '${v}' contains illegal characters\n`

const CONTENT_TYPES = ["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "none", "import"]
/** `pve-storage-content` (pve-storage `verify_content`) */
export const storageContent = (v: string): string | undefined =>
  CONTENT_TYPES.includes(v) ? undefined : `invalid content type '${v}'\n`
/** `pve-storage-content-list` */
export const storageContentList = (v: string): string | undefined =>
  v
    .split(/[,;\0\s]+/)
    .filter((x) => x !== "")
    .map(storageContent)
    .find((e) => e !== undefined)

/**
 * pve-common `split_list`: on NUL bytes if there are any, else on `,`, `;` and whitespace (leading ones dropped). As
 * Perl's `split`, trailing empty fields are dropped, so an empty list text is an empty list.
 */
export const splitList = (text: string): Array<string> => {
  const fields = text.includes("\0") ? text.split("\0") : text.replace(/[,;]/g, " ").replace(/^\s+/, "").split(/\s+/)
  while (fields.length > 0 && fields.at(-1) === "") fields.pop()
  return fields
}

/** `pve-task-status-type` (pve-common `verify_task_status_type`). */
export const taskStatusType = (v: string): string | undefined =>
  /^(ok|error|warning|unknown)$/i.test(v) ? undefined : `invalid status '${v}'\n`
/** `pve-task-status-type-list` (a `-list` format: each `split_list` element checked, an empty list allowed). */
export const taskStatusTypeList = (v: string): string | undefined =>
  splitList(v)
    .map(taskStatusType)
    .find((e) => e !== undefined)

/** Normalise tags: lowercase, sorted, deduplicated, `;`-joined. */
export const normaliseTags = (v: string): string =>
  [
    ...new Set(
      v
        .split(/[,; \s]+/)
        .filter((t) => t !== "")
        .map((t) => t.toLowerCase())
    )
  ]
    .sort()
    .join(";")

/** Decode `application/x-www-form-urlencoded` (`&` and `;` separate, `+` is a space, repeated keys → arrays). */
export const parseForm = (body: string, into: Params = {}): Params => {
  for (const pair of body.split(/[&;]/)) {
    if (pair === "") continue
    const eq = pair.indexOf("=")
    const rawK = eq < 0 ? pair : pair.slice(0, eq)
    const rawV = eq < 0 ? "" : pair.slice(eq + 1)
    const dec = (s: string): string => {
      try {
        return decodeURIComponent(s.replace(/\+/g, " "))
      } catch {
        return s
      }
    }
    add(into, dec(rawK), dec(rawV))
  }
  return into
}

const add = (p: Params, k: string, v: string): void => {
  const cur = p[k]
  if (cur === undefined) p[k] = v
  else if (Array.isArray(cur)) cur.push(v)
  else p[k] = [cur, v]
}

/** A JSON body: booleans become 1/0, numbers strings, arrays stay arrays. */
export const fromJson = (obj: unknown, into: Params = {}): Params => {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return into
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    if (v === null || v === undefined) continue
    if (Array.isArray(v)) into[k] = v.map((x) => (typeof x === "boolean" ? (x ? "1" : "0") : String(x)))
    else if (typeof v === "boolean") into[k] = v ? "1" : "0"
    else if (typeof v === "object") into[k] = JSON.stringify(v)
    else into[k] = String(v)
  }
  return into
}

const INT_RE = /^[+-]?\d+$/
const NUM_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

/**
 * Validate params against a schema (pve-common JSONSchema order: type, format, pattern, length, range, enum). `extra`
 * resolves dynamically named keys (scsi0, net3, ...). `cli` accepts yes/no/on/off/true/false for booleans.
 */
export const validate = (
  params: Params,
  schema: Schema,
  extra: ((key: string) => ParamSpec | undefined) | undefined,
  cli: boolean
): Params => {
  const errors: Record<string, string> = {}
  const out: Params = {}
  for (const [k, raw] of Object.entries(params)) {
    if (k === "_dc") continue
    const spec = schema[k] ?? extra?.(k)
    if (spec === undefined) {
      errors[k] = "property is not defined in schema and the schema does not allow additional properties"
      continue
    }
    if (spec.type === "array") {
      out[k] = Array.isArray(raw) ? raw : [raw]
      continue
    }
    let v = Array.isArray(raw) ? raw.join(",") : raw
    if (spec.type === "boolean") {
      if (cli) {
        const l = v.toLowerCase()
        if (["1", "yes", "on", "true", ""].includes(l)) v = "1"
        else if (["0", "no", "off", "false"].includes(l)) v = "0"
      }
      if (v !== "0" && v !== "1") {
        errors[k] = `type check ('boolean') failed - got '${v}'`
        continue
      }
    } else if (spec.type === "integer") {
      if (!INT_RE.test(v)) {
        errors[k] = `type check ('integer') failed - got '${v}'`
        continue
      }
    } else if (spec.type === "number") {
      if (!NUM_RE.test(v)) {
        errors[k] = `type check ('number') failed - got '${v}'`
        continue
      }
    }
    if (spec.propertyString !== undefined) {
      const e = propertyStringError(spec.propertyString, v, k)
      if (e !== undefined) {
        errors[k] = `invalid format - ${e}`
        continue
      }
    }
    if (spec.format !== undefined) {
      const e = spec.format(v)
      if (e !== undefined) {
        errors[k] = `invalid format - ${e}`
        continue
      }
    }
    if (spec.pattern !== undefined && !spec.pattern.test(v)) {
      errors[k] = "value does not match the regex pattern"
      continue
    }
    if (spec.maxLength !== undefined && v.length > spec.maxLength) {
      errors[k] = `value may only be ${spec.maxLength} characters long`
      continue
    }
    if (spec.minimum !== undefined && Number(v) < spec.minimum) {
      errors[k] = `value must have a minimum value of ${spec.minimum}`
      continue
    }
    if (spec.maximum !== undefined && Number(v) > spec.maximum) {
      errors[k] = `value must have a maximum value of ${spec.maximum}`
      continue
    }
    if (spec.enum !== undefined && !spec.enum.includes(v)) {
      errors[k] = `value '${v}' does not have a value in the enumeration '${spec.enum.join(", ")}'`
      continue
    }
    out[k] = v
  }
  for (const [k, spec] of Object.entries(schema)) {
    if (!spec.optional && params[k] === undefined && errors[k] === undefined)
      errors[k] = "property is missing and it is not optional"
    if (spec.requires !== undefined && params[k] !== undefined && params[spec.requires] === undefined)
      errors[spec.requires] = `missing property required by '${k}'`
  }
  if (Object.keys(errors).length > 0) throw PveError.param(errors)
  return out
}

export const one = (p: Params, k: string): string | undefined => {
  const v = p[k]
  return Array.isArray(v) ? v.join(",") : v
}

export const flag = (p: Params, k: string): boolean => one(p, k) === "1"
