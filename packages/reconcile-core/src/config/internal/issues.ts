/**
 * Converts schema issues and cross-field findings into `ConfigIssue`s with source positions, rendering the found
 * value without ever exposing secrets or values that came from the environment.
 */
import type * as SchemaAST from "effect/SchemaAST"
import type * as SchemaIssue from "effect/SchemaIssue"
import type { ConfigIssue, ConfigIssueCode } from "../ConfigIssue.js"
import { displayPath, formatPath, type PathSegment } from "./path.js"
import { closest } from "./suggest.js"
import type { SourceTree } from "./yamlTree.js"

export interface RawIssue {
  readonly code: ConfigIssueCode
  readonly path: ReadonlyArray<PathSegment>
  readonly expected: string
  /** Rendered found text; when absent the value at `path` is rendered. */
  readonly found?: string
  readonly suggestion?: string
  /** Point at the key of a map entry rather than at its value. */
  readonly at?: "key" | "value"
}

/**
 * The secret fields of homelab.yaml (decoded into `Redacted`), each with the environment variable its `${VAR}`
 * reference is suggested with.
 */
export const secretFields: Readonly<Record<string, string>> = {
  "proxmox.auth.secret": "PROXMOX_TOKEN_SECRET",
  "ssh.passphrase": "SSH_KEY_PASSPHRASE",
  "vm.password": "CLOUD_PASSWORD",
  "k3s.token": "K3S_TOKEN"
}

export const isSecretPath = (path: string): boolean => Object.hasOwn(secretFields, path)

export const valueAt = (root: unknown, path: ReadonlyArray<PathSegment>): unknown => {
  let current: unknown = root
  for (const segment of path) {
    if (current === null || typeof current !== "object") return undefined
    current = (current as Record<string | number, unknown>)[segment]
  }
  return current
}

const describeValue = (value: unknown): string => {
  if (value === undefined) return "nothing"
  if (value === null) return "null"
  if (typeof value === "string") {
    // a URL's password is never shown
    const masked = value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*):[^/?#@]*@/i, "$1:***@")
    const shown = masked.length > 60 ? `${masked.slice(0, 57)}...` : masked
    return JSON.stringify(shown)
  }
  if (typeof value === "number" || typeof value === "boolean") return String(value)
  if (Array.isArray(value)) return value.length === 0 ? "an empty list" : `a list of ${value.length}`
  if (typeof value === "object") return "a mapping"
  return typeof value
}

const kindOf = (value: unknown): string => {
  if (typeof value === "string") return "a string"
  if (typeof value === "number") return "a number"
  if (typeof value === "boolean") return "a boolean"
  if (Array.isArray(value)) return "a list"
  if (value === null) return "null"
  return typeof value === "object" ? "a mapping" : typeof value
}

/** The found value as shown to the user: secrets and interpolated values are hidden. */
export const renderFound = (tree: SourceTree, path: ReadonlyArray<PathSegment>): string => {
  const key = formatPath(path)
  const value = valueAt(tree.value, path)
  if (path.length === 0 && (value === null || value === undefined)) return "an empty document"
  const template = tree.interpolated.get(key)
  if (template !== undefined) return `${JSON.stringify(template)} (interpolated; value hidden)`
  if (isSecretPath(key) && value !== undefined) return `${kindOf(value)} (secret; value hidden)`
  const text = tree.written.get(key)
  if (text !== undefined && typeof value === "number")
    return `${text} (YAML reads that as the number ${value}; put it in quotes for the text: "${text}")`
  return describeValue(value)
}

/**
 * A value that interpolation made empty (`${NAME}` with NAME set to "", or an empty default): said as such, with the
 * variable to export when the template is one plain reference. An empty value shows nothing secret.
 */
const emptyInterpolation = (
  tree: SourceTree,
  path: ReadonlyArray<PathSegment>
): { readonly found: string; readonly suggestion?: string } | undefined => {
  const template = tree.interpolated.get(formatPath(path))
  if (template === undefined || valueAt(tree.value, path) !== "") return undefined
  const variable = /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/u.exec(template)?.[1]
  return variable === undefined
    ? { found: `${JSON.stringify(template)}, which comes out empty` }
    : {
        found: `${JSON.stringify(template)}, which comes out empty (${variable} is set to "")`,
        suggestion: `export ${variable} with its value (an empty one is the same as none here)`
      }
}

export const locate = (tree: SourceTree, raw: RawIssue): ConfigIssue => {
  const key = formatPath(raw.path)
  let position = raw.at === "key" ? tree.keyPositions.get(key) : tree.positions.get(key)
  // A missing key points at its parent mapping; walk up until something has a position.
  for (let n = raw.path.length; position === undefined && n >= 0; n--) {
    const prefix = formatPath(raw.path.slice(0, n))
    position = tree.positions.get(prefix) ?? tree.keyPositions.get(prefix)
  }
  // Only an empty document has no positions at all: point at its start.
  position ??= { line: 1, column: 1 }
  const empty = raw.found === undefined ? emptyInterpolation(tree, raw.path) : undefined
  const suggestion = raw.suggestion ?? empty?.suggestion
  return {
    code: raw.code,
    path: displayPath(raw.path),
    line: position.line,
    column: position.column,
    expected: raw.expected,
    found: raw.found ?? empty?.found ?? renderFound(tree, raw.path),
    ...(suggestion === undefined ? {} : { suggestion })
  }
}

// ---------------------------------------------------------------------------------------------- schema issues

const describeAst = (ast: SchemaAST.AST): string => {
  const checks = ast._tag === "Arrays" || ast._tag === "Objects" ? undefined : ast.checks
  if (checks !== undefined) {
    const expected = checks
      .map((check) => check.annotations?.expected)
      .filter((text): text is string => typeof text === "string")
    // The last check is the most specific one (Int's "an integer" comes before "a port in 1..65535").
    if (expected.length > 0) return expected[expected.length - 1]!
  }
  const own = ast.annotations?.expected
  if (typeof own === "string") return own
  switch (ast._tag) {
    case "String":
      return "a string"
    case "Number":
      return "a number"
    case "Boolean":
      return "true or false"
    case "Literal":
      return JSON.stringify(ast.literal)
    case "Arrays":
      return "a list"
    case "Objects":
      return "a mapping"
    case "Declaration":
      return "a string"
    case "Union":
      return ast.types.every((member) => member._tag === "Literal")
        ? `one of ${ast.types.map(describeAst).join(", ")}`
        : ast.types.map(describeAst).join(" or ")
    default:
      return ast._tag
  }
}

const literalValues = (ast: SchemaAST.AST): Array<string> =>
  ast._tag === "Union"
    ? ast.types.flatMap(literalValues)
    : ast._tag === "Literal" && typeof ast.literal === "string"
      ? [ast.literal]
      : []

const leafExpectations = (issue: SchemaIssue.Issue): Array<string> => {
  switch (issue._tag) {
    case "Filter": {
      const inner = issue.issue
      if (inner._tag === "InvalidValue" && typeof inner.annotations?.message === "string") {
        return [inner.annotations.message]
      }
      const expected = issue.filter.annotations?.expected
      return [typeof expected === "string" ? expected : "a valid value"]
    }
    case "InvalidType":
      return [describeAst(issue.ast)]
    case "AnyOf":
      return issue.issues.length === 0 ? [describeAst(issue.ast)] : issue.issues.flatMap(leafExpectations)
    case "Encoding":
    case "Pointer":
      return leafExpectations(issue.issue)
    case "Composite":
      return issue.issues.flatMap(leafExpectations)
    case "InvalidValue":
      return [typeof issue.annotations?.message === "string" ? issue.annotations.message : "a valid value"]
    default:
      return ["a valid value"]
  }
}

export const fromSchemaIssue = (tree: SourceTree, root: SchemaIssue.Issue): Array<RawIssue> => {
  const out: Array<RawIssue> = []
  const walk = (issue: SchemaIssue.Issue, path: ReadonlyArray<PathSegment>, parent: SchemaAST.AST | undefined) => {
    switch (issue._tag) {
      case "Pointer":
        walk(
          issue.issue,
          [...path, ...issue.path.map((segment) => (typeof segment === "symbol" ? String(segment) : segment))],
          parent
        )
        return
      case "Composite":
        for (const child of issue.issues) walk(child, path, issue.ast)
        return
      case "Encoding":
        walk(issue.issue, path, parent)
        return
      case "UnexpectedKey": {
        const ast = issue.ast
        const allowed = ast._tag === "Objects" ? ast.propertySignatures.map((property) => String(property.name)) : []
        const name = String(path[path.length - 1])
        const suggestion = closest(name, allowed)
        const parentPath = displayPath(path.slice(0, -1))
        out.push({
          code: "unknown-key",
          path,
          at: "key",
          expected: `a known key at ${parentPath} (${allowed.join(", ")})`,
          found: `unknown key ${JSON.stringify(name)}`,
          ...(suggestion === undefined ? {} : { suggestion: `did you mean ${JSON.stringify(suggestion)}?` })
        })
        return
      }
      case "MissingKey": {
        const name = path[path.length - 1]
        const property = parent?._tag === "Objects" ? parent.propertySignatures.find((p) => p.name === name) : undefined
        out.push({
          code: "missing-key",
          path,
          expected: property === undefined ? "a value" : describeAst(property.type),
          found: "nothing (the key is required)"
        })
        return
      }
      case "InvalidType": {
        out.push({ code: "invalid-type", path, expected: describeAst(issue.ast) })
        return
      }
      case "AnyOf": {
        const value = valueAt(tree.value, path)
        const literals = literalValues(issue.ast)
        const suggestion =
          typeof value === "string" && literals.length > 0 && !tree.interpolated.has(formatPath(path))
            ? closest(value, literals)
            : undefined
        const expectations = [...new Set(leafExpectations(issue))]
        out.push({
          code: issue.issues.length === 0 && literals.length === 0 ? "invalid-type" : "invalid-value",
          path,
          expected: expectations.join(" or "),
          ...(suggestion === undefined ? {} : { suggestion: `did you mean ${JSON.stringify(suggestion)}?` })
        })
        return
      }
      default: {
        out.push({ code: "invalid-value", path, expected: leafExpectations(issue).join(" and ") })
        return
      }
    }
  }
  walk(root, [], undefined)
  return out
}
