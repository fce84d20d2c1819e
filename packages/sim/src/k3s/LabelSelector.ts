/**
 * Kubernetes label selectors as `kubectl -l` takes them (k8s.io/apimachinery/pkg/labels): `a=b`, `a==b`, `a!=b`,
 * `a in (x,y)`, `a notin (x)`, `a` (exists), `!a` (does not exist), comma-separated (all must hold).
 */

type Requirement =
  | { readonly op: "=" | "!="; readonly key: string; readonly value: string }
  | { readonly op: "in" | "notin"; readonly key: string; readonly values: ReadonlyArray<string> }
  | { readonly op: "exists" | "!exists"; readonly key: string }

export type LabelSelector = ReadonlyArray<Requirement>

const KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/

/** Splits on commas outside `( … )`. */
const split = (s: string): Array<string> => {
  const parts: Array<string> = []
  let depth = 0
  let cur = ""
  for (const c of s) {
    if (c === "(") depth++
    if (c === ")") depth--
    if (c === "," && depth === 0) {
      parts.push(cur)
      cur = ""
    } else cur += c
  }
  parts.push(cur)
  return parts.map((p) => p.trim())
}

/** Parses a selector, or returns kubectl's error text. */
export const parseSelector = (text: string): LabelSelector | { readonly error: string } => {
  const out: Array<Requirement> = []
  if (text.trim() === "") return out
  for (const part of split(text)) {
    let m = /^(!)?\s*([^\s=!(),]+)$/.exec(part)
    if (m !== null) {
      const key = m[2] as string
      if (!KEY.test(key)) return { error: `unable to parse requirement: invalid label key "${key}"` }
      out.push({ op: m[1] === "!" ? "!exists" : "exists", key })
      continue
    }
    m = /^([^\s=!(),]+)\s*(==|=|!=)\s*([^\s,()]*)$/.exec(part)
    if (m !== null) {
      const key = m[1] as string
      const value = m[3] as string
      if (!KEY.test(key)) return { error: `unable to parse requirement: invalid label key "${key}"` }
      if (!VALUE.test(value)) return { error: `unable to parse requirement: invalid label value: "${value}"` }
      out.push({ op: m[2] === "!=" ? "!=" : "=", key, value })
      continue
    }
    m = /^([^\s=!(),]+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part)
    if (m !== null) {
      const key = m[1] as string
      if (!KEY.test(key)) return { error: `unable to parse requirement: invalid label key "${key}"` }
      const values = (m[3] as string)
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v !== "")
      out.push({ op: m[2] === "in" ? "in" : "notin", key, values })
      continue
    }
    return { error: `unable to parse requirement: found '${part}', expected: identifier` }
  }
  return out
}

export const matchesSelector = (selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean =>
  selector.every((r) => {
    const has = Object.hasOwn(labels, r.key)
    const v = labels[r.key]
    switch (r.op) {
      case "=":
        return has && v === r.value
      case "!=":
        return !has || v !== r.value
      case "in":
        return has && r.values.includes(v as string)
      case "notin":
        return !has || !r.values.includes(v as string)
      case "exists":
        return has
      default:
        return !has
    }
  })

/** `--field-selector`: `path=value`, `path==value`, `path!=value`, comma-separated. */
export const parseFieldSelector = (
  text: string
):
  | ReadonlyArray<{ readonly path: string; readonly eq: boolean; readonly value: string }>
  | { readonly error: string } => {
  const out: Array<{ path: string; eq: boolean; value: string }> = []
  if (text.trim() === "") return out
  for (const part of text.split(",")) {
    const m = /^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(part)
    if (m === null) return { error: `invalid selector: '${text}'; can't understand '${part}'` }
    out.push({ path: m[1] as string, eq: m[2] !== "!=", value: m[3] as string })
  }
  return out
}
