/**
 * A small JSON Schema (2020-12) checker for the keywords the generated config schema uses: type, properties,
 * required, additionalProperties, items, enum, const, pattern, minLength, minItems, minimum, maximum,
 * exclusiveMinimum, anyOf, oneOf, allOf, $ref (#/$defs/...). Returns the failures as "path: reason" strings.
 */
type Json = Record<string, unknown>

const typeOf = (value: unknown): string =>
  value === null
    ? "null"
    : Array.isArray(value)
      ? "array"
      : typeof value === "number"
        ? Number.isInteger(value)
          ? "integer"
          : "number"
        : typeof value

const known = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "enum",
  "const",
  "pattern",
  "minLength",
  "minItems",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "anyOf",
  "oneOf",
  "allOf",
  "$ref",
  "description",
  "default",
  "title",
  "$schema",
  "$id",
  "$defs"
])

export const checkJsonSchema = (root: Json, value: unknown): Array<string> => {
  const errors: Array<string> = []
  const check = (schema: Json, data: unknown, path: string): void => {
    for (const key of Object.keys(schema)) if (!known.has(key)) errors.push(`${path}: unsupported keyword ${key}`)
    if (typeof schema.$ref === "string") {
      const name = schema.$ref.replace("#/$defs/", "")
      const target = (root.$defs as Record<string, Json> | undefined)?.[name]
      if (target === undefined) errors.push(`${path}: unresolved ${schema.$ref}`)
      else check(target, data, path)
    }
    if (typeof schema.type === "string") {
      const actual = typeOf(data)
      const ok = schema.type === actual || (schema.type === "number" && actual === "integer")
      if (!ok) {
        errors.push(`${path}: expected ${schema.type}, got ${actual}`)
        return
      }
    }
    if (Array.isArray(schema.enum) && !schema.enum.includes(data)) errors.push(`${path}: not in enum`)
    if ("const" in schema && schema.const !== data) errors.push(`${path}: not the const`)
    if (typeof data === "string") {
      if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(data)) {
        errors.push(`${path}: does not match ${schema.pattern}`)
      }
      if (typeof schema.minLength === "number" && data.length < schema.minLength) errors.push(`${path}: too short`)
    }
    if (typeof data === "number") {
      if (typeof schema.minimum === "number" && data < schema.minimum) errors.push(`${path}: below minimum`)
      if (typeof schema.maximum === "number" && data > schema.maximum) errors.push(`${path}: above maximum`)
      if (typeof schema.exclusiveMinimum === "number" && data <= schema.exclusiveMinimum) {
        errors.push(`${path}: not above exclusiveMinimum`)
      }
    }
    if (Array.isArray(data)) {
      if (typeof schema.minItems === "number" && data.length < schema.minItems) errors.push(`${path}: too few items`)
      if (schema.items !== undefined) {
        for (const [i, item] of data.entries()) check(schema.items as Json, item, `${path}[${i}]`)
      }
    }
    if (typeOf(data) === "object") {
      const record = data as Record<string, unknown>
      const properties = (schema.properties ?? {}) as Record<string, Json>
      for (const key of (schema.required ?? []) as Array<string>) {
        if (!(key in record)) errors.push(`${path}: missing ${key}`)
      }
      for (const [key, item] of Object.entries(record)) {
        const property = properties[key]
        if (property !== undefined) check(property, item, `${path}.${key}`)
        else if (schema.additionalProperties === false) errors.push(`${path}: unexpected key ${key}`)
      }
    }
    const branches = (list: unknown) =>
      (list as Array<Json>).map((branch) => {
        const before = errors.length
        check(branch, data, path)
        return errors.splice(before).length === 0
      })
    if (Array.isArray(schema.anyOf) && !branches(schema.anyOf).some(Boolean)) errors.push(`${path}: no anyOf branch`)
    if (Array.isArray(schema.oneOf) && branches(schema.oneOf).filter(Boolean).length !== 1) {
      errors.push(`${path}: not exactly one oneOf branch`)
    }
    if (Array.isArray(schema.allOf)) for (const branch of schema.allOf as Array<Json>) check(branch, data, path)
  }
  check(root, value, "$")
  return errors
}
