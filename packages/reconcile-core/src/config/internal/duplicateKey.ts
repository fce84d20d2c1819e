import type { Document, Node as YamlNode } from "yaml"
import { isMap, isScalar, isSeq } from "yaml"
import type { PathSegment } from "./path.js"

/** A key written twice in one mapping: its path (at the second one), its text, and where the first one starts. */
export interface DuplicateKey {
  readonly path: ReadonlyArray<PathSegment>
  readonly key: string
  /** Source offset of the first occurrence's key. */
  readonly firstOffset: number | undefined
}

const keyText = (key: unknown): string | undefined =>
  isScalar(key) ? String(key.value) : typeof key === "string" ? key : undefined

/**
 * The duplicate key whose (second) occurrence starts at `offset` (a `DUPLICATE_KEY` error's position), found by a walk
 * of the document: yaml's own message ("Map keys must be unique") names neither the key nor the mapping.
 */
export const duplicateKeyAt = (doc: Document, offset: number): DuplicateKey | undefined => {
  const walk = (node: unknown, path: ReadonlyArray<PathSegment>): DuplicateKey | undefined => {
    if (isMap(node)) {
      for (const [index, pair] of node.items.entries()) {
        const key = keyText(pair.key)
        const range = (pair.key as YamlNode | null)?.range
        if (key !== undefined && range?.[0] === offset) {
          const first = node.items.slice(0, index).find((other) => keyText(other.key) === key)
          return { path: [...path, key], key, firstOffset: (first?.key as YamlNode | undefined)?.range?.[0] }
        }
        const found = walk(pair.value, key === undefined ? path : [...path, key])
        if (found !== undefined) return found
      }
    } else if (isSeq(node)) {
      for (const [index, item] of node.items.entries()) {
        const found = walk(item, [...path, index])
        if (found !== undefined) return found
      }
    }
    return undefined
  }
  return walk(doc.contents, [])
}
