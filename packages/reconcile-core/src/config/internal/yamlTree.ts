/**
 * Turns a parsed YAML document into plain data plus a side table of source positions per path, applying
 * `${ENV}` interpolation to string scalars on the way.
 */
import type { Document, LineCounter, Node as YamlNode } from "yaml"
import { isAlias, isMap, isScalar, isSeq, Scalar } from "yaml"
import { hasInterpolation, interpolate } from "./interpolate.js"
import { formatPath, type PathSegment } from "./path.js"

export interface Position {
  readonly line: number
  readonly column: number
}

export interface EnvProblem {
  readonly path: ReadonlyArray<PathSegment>
  readonly position: Position | undefined
  readonly template: string
  readonly variable?: string
  readonly detail?: string
}

export interface SourceTree {
  readonly value: unknown
  /** Position of the value at a path (formatted with `formatPath`). */
  readonly positions: ReadonlyMap<string, Position>
  /** Position of the key of a map entry at a path. */
  readonly keyPositions: ReadonlyMap<string, Position>
  /** Paths whose value came out of interpolation, with the original text (the resolved value is never shown). */
  readonly interpolated: ReadonlyMap<string, string>
  /**
   * Paths of plain scalars that YAML read as a number written differently from how the number prints (`1.30` → 1.3,
   * `010` → 10, `1e3` → 1000), with the text as written: an error about such a value shows what the user wrote.
   */
  readonly written: ReadonlyMap<string, string>
  readonly envProblems: ReadonlyArray<EnvProblem>
  /**
   * Set when aliases (`*name`, merge keys included) expanded to more than `maxAliasedValues` values: the walk
   * stopped there (a "billion laughs" document would otherwise take minutes and exhaust the heap). `position` is the
   * alias where the budget ran out.
   */
  readonly aliasOverflow: { readonly position: Position | undefined } | undefined
  /** Aliases (`*name`) of no anchor (`&name`) above them: YAML reads each as null, the walk keeps them here. */
  readonly unresolvedAliases: ReadonlyArray<{
    readonly path: ReadonlyArray<PathSegment>
    readonly position: Position | undefined
    readonly name: string
  }>
}

/**
 * How many values aliases may expand to in one document, in total. A homelab.yaml that reuses a few anchors stays
 * far below it; a 9×9 alias bomb would expand to 387 million values.
 */
export const maxAliasedValues = 10_000

const plainNumber = /^[-+]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$/u

const overflowOf = <A>(budget: { readonly overflow: A }): A => budget.overflow

export const buildTree = (
  doc: Document,
  lineCounter: LineCounter,
  env: Readonly<Record<string, string | undefined>>,
  text = ""
): SourceTree => {
  const positions = new Map<string, Position>()
  const keyPositions = new Map<string, Position>()
  const interpolated = new Map<string, string>()
  const written = new Map<string, string>()
  const envProblems: Array<EnvProblem> = []
  const unresolvedAliases: Array<SourceTree["unresolvedAliases"][number]> = []
  // Mutated from inside the recursive walk (a plain `let` would stay narrowed to `undefined` for the type checker).
  const budget: { used: number; overflow: { position: Position | undefined } | undefined } = {
    used: 0,
    overflow: undefined
  }

  const positionOf = (node: { range?: readonly [number, number, number] | null | undefined } | null | undefined) => {
    const offset = node?.range?.[0]
    if (offset === undefined) return undefined
    const { line, col } = lineCounter.linePos(offset)
    return { line, column: col }
  }

  // `aliased`: this value is a copy made by an alias; every such value counts against `maxAliasedValues`.
  const walk = (node: unknown, path: Array<PathSegment>, depth: number, aliased = false): unknown => {
    if (depth > 64 || budget.overflow !== undefined) return null
    const key = formatPath(path)
    const pos = positionOf(node as YamlNode)
    if (pos !== undefined && !positions.has(key)) positions.set(key, pos)
    if (isAlias(node)) {
      const target = node.resolve(doc)
      if (target === undefined) {
        unresolvedAliases.push({ path, position: pos, name: node.source })
        return null
      }
      const expanded = walk(target, path, depth + 1, true)
      // The innermost alias on the way back out names where the budget ran out.
      const overflow = overflowOf(budget)
      if (overflow !== undefined && overflow.position === undefined) overflow.position = pos
      return expanded
    }
    if (aliased && ++budget.used > maxAliasedValues) {
      budget.overflow = { position: undefined }
      return null
    }
    if (isMap(node)) {
      const out: Record<string, unknown> = {}
      // YAML merge keys (`<<: *defaults`): merged entries first, explicit keys of this mapping win.
      for (const pair of node.items) {
        if (!isScalar(pair.key) || typeof pair.key.value !== "symbol") continue
        const sources = isSeq(pair.value) ? pair.value.items : [pair.value]
        for (const source of sources) {
          const merged = walk(source, path, depth + 1, aliased)
          if (merged !== null && typeof merged === "object" && !Array.isArray(merged)) {
            for (const [k, v] of Object.entries(merged)) if (!(k in out)) out[k] = v
          }
        }
      }
      for (const pair of node.items) {
        if (isScalar(pair.key) && typeof pair.key.value === "symbol") continue
        const rawKey = isScalar(pair.key) ? pair.key.value : pair.key
        const name = String(rawKey)
        const childPath = [...path, name]
        const keyPos = positionOf(pair.key as YamlNode)
        if (keyPos !== undefined) keyPositions.set(formatPath(childPath), keyPos)
        if (pair.value === null || (isScalar(pair.value) && pair.value.value === null)) {
          // `key:` with nothing after it means "not set" (an empty section or list)
          if (keyPos !== undefined) positions.set(formatPath(childPath), keyPos)
          continue
        }
        out[name] = walk(pair.value, childPath, depth + 1, aliased)
      }
      return out
    }
    if (isSeq(node)) return node.items.map((item, index) => walk(item, [...path, index], depth + 1, aliased))
    if (isScalar(node)) {
      const value = node.value
      if (typeof value === "number" && node.type === Scalar.PLAIN && node.range !== undefined && node.range !== null) {
        const source = text.slice(node.range[0], node.range[1]).trim()
        if (source !== "" && source !== String(value)) written.set(key, source)
      }
      if (typeof value !== "string" || !hasInterpolation(value)) return value
      const result = interpolate(value, env)
      interpolated.set(key, value)
      for (const problem of result.problems) {
        envProblems.push(
          problem._tag === "Missing"
            ? { path, position: pos, template: value, variable: problem.variable }
            : { path, position: pos, template: value, detail: problem.detail }
        )
      }
      // An unquoted `${PORT}` may stand for a number or a boolean, as if the text had been written in place.
      if (node.type === Scalar.PLAIN) {
        if (plainNumber.test(result.value)) return Number(result.value)
        if (result.value === "true" || result.value === "false") return result.value === "true"
      }
      return result.value
    }
    return null
  }

  const value = doc.contents === null ? null : walk(doc.contents, [], 0)
  return {
    value,
    positions,
    keyPositions,
    interpolated,
    written,
    envProblems,
    aliasOverflow: budget.overflow,
    unresolvedAliases
  }
}
