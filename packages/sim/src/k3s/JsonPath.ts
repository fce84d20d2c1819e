/**
 * kubectl's `-o jsonpath=TEMPLATE` (k8s.io/client-go/util/jsonpath), the part scripts use: text with `{…}` actions,
 * `.field` / `['key']` / `\.`-escaped dots, `..field`, `[n]`, `[a:b]`, `[*]`, `[?(@.a.b=="x")]` (==, !=, <, >, <=,
 * >=, or existence), `{range …}…{end}`, string literals (`{"\n"}`). Several results of one action are joined by a
 * space; missing keys print nothing (kubectl sets `--allow-missing-template-keys=true`); maps and lists print as JSON.
 */

type Step =
  | { readonly _tag: "field"; readonly name: string }
  | { readonly _tag: "recursive"; readonly name: string }
  | {
      readonly _tag: "index"
      readonly start: number | undefined
      readonly end: number | undefined
      readonly single: boolean
    }
  | { readonly _tag: "wildcard" }
  | {
      readonly _tag: "filter"
      readonly path: ReadonlyArray<Step>
      readonly op: string | undefined
      readonly value: unknown
    }

type Node =
  | { readonly _tag: "text"; readonly text: string }
  | { readonly _tag: "path"; readonly steps: ReadonlyArray<Step> }
  | { readonly _tag: "range"; readonly steps: ReadonlyArray<Step>; readonly body: ReadonlyArray<Node> }

export class JsonPathError extends Error {}

const unquote = (s: string): string => {
  const q = s[0]
  const body = s.slice(1, -1)
  if (q === "'") return body
  return JSON.parse(`"${body}"`) as string
}

/** Parses one path expression (`.items[*].metadata.name`, `@.type`). */
const parsePath = (src: string): Array<Step> => {
  const steps: Array<Step> = []
  let i = 0
  if (src[i] === "$" || src[i] === "@") i++
  const ident = () => {
    let name = ""
    while (i < src.length && !".[ ".includes(src[i] as string)) {
      if (src[i] === "\\" && i + 1 < src.length) {
        name += src[i + 1]
        i += 2
      } else name += src[i++]
    }
    return name
  }
  while (i < src.length) {
    const c = src[i] as string
    if (c === ".") {
      if (src[i + 1] === ".") {
        i += 2
        steps.push({ _tag: "recursive", name: ident() })
        continue
      }
      i++
      const name = ident()
      if (name === "*") steps.push({ _tag: "wildcard" })
      else if (name !== "") steps.push({ _tag: "field", name })
      continue
    }
    if (c === "[") {
      // find the matching `]` (quotes and filters may contain brackets)
      let depth = 0
      let j = i
      let quote: string | undefined
      for (; j < src.length; j++) {
        const d = src[j] as string
        if (quote !== undefined) {
          if (d === quote) quote = undefined
          continue
        }
        if (d === "'" || d === '"') quote = d
        else if (d === "[") depth++
        else if (d === "]" && --depth === 0) break
      }
      if (j >= src.length) throw new JsonPathError(`unterminated array`)
      const inner = src.slice(i + 1, j).trim()
      i = j + 1
      if (inner === "*") steps.push({ _tag: "wildcard" })
      else if (/^'[^']*'$|^"[^"]*"$/.test(inner)) steps.push({ _tag: "field", name: unquote(inner) })
      else if (inner.startsWith("?(") && inner.endsWith(")")) {
        const expr = inner.slice(2, -1).trim()
        const m = /^(@[^=!<>\s]*)\s*(==|!=|<=|>=|<|>)\s*(.+)$/.exec(expr)
        if (m === null) steps.push({ _tag: "filter", path: parsePath(expr), op: undefined, value: undefined })
        else {
          const raw = (m[3] as string).trim()
          const value = /^'.*'$|^".*"$/.test(raw) ? unquote(raw) : Number.isNaN(Number(raw)) ? raw : Number(raw)
          steps.push({ _tag: "filter", path: parsePath(m[1] as string), op: m[2], value })
        }
      } else {
        const m = /^(-?\d+)?(?::(-?\d+)?)?$/.exec(inner)
        if (m === null || inner === "") throw new JsonPathError(`invalid array index ${inner}`)
        const single = !inner.includes(":")
        steps.push({
          _tag: "index",
          start: m[1] === undefined ? undefined : Number(m[1]),
          end: m[2] === undefined ? undefined : Number(m[2]),
          single
        })
      }
      continue
    }
    if (c === " ") {
      i++
      continue
    }
    throw new JsonPathError(`unrecognized character in action: ${c}`)
  }
  return steps
}

/** Parses a template into text, paths and ranges. */
export const parseTemplate = (template: string): ReadonlyArray<Node> => {
  const root: Array<Node> = []
  const stack: Array<{ steps: ReadonlyArray<Step>; body: Array<Node> }> = []
  const current = () => stack[stack.length - 1]?.body ?? root
  let i = 0
  while (i < template.length) {
    const open = template.indexOf("{", i)
    if (open < 0) {
      current().push({ _tag: "text", text: template.slice(i) })
      break
    }
    if (open > i) current().push({ _tag: "text", text: template.slice(i, open) })
    // the action ends at the first `}` outside quotes
    let j = open + 1
    let quote: string | undefined
    for (; j < template.length; j++) {
      const d = template[j] as string
      if (quote !== undefined) {
        if (d === "\\") j++
        else if (d === quote) quote = undefined
      } else if (d === "'" || d === '"') quote = d
      else if (d === "}") break
    }
    if (j >= template.length) throw new JsonPathError("unclosed action")
    const action = template.slice(open + 1, j).trim()
    i = j + 1
    if (/^'.*'$|^".*"$/s.test(action)) current().push({ _tag: "text", text: unquote(action) })
    else if (action.startsWith("range ")) stack.push({ steps: parsePath(action.slice(6).trim()), body: [] })
    else if (action === "end") {
      const r = stack.pop()
      if (r === undefined) throw new JsonPathError("not in range, nothing to end")
      current().push({ _tag: "range", steps: r.steps, body: r.body })
    } else current().push({ _tag: "path", steps: parsePath(action) })
  }
  if (stack.length > 0) throw new JsonPathError("unclosed range")
  return root
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v)

const compare = (a: unknown, op: string, b: unknown): boolean => {
  switch (op) {
    case "==":
      return String(a) === String(b)
    case "!=":
      return String(a) !== String(b)
    default: {
      const x = Number(a)
      const y = Number(b)
      if (Number.isNaN(x) || Number.isNaN(y)) return false
      return op === "<" ? x < y : op === ">" ? x > y : op === "<=" ? x <= y : x >= y
    }
  }
}

const recurse = (v: unknown, name: string, out: Array<unknown>): void => {
  if (Array.isArray(v)) for (const x of v) recurse(x, name, out)
  else if (isObject(v)) {
    if (name in v) out.push(v[name])
    for (const x of Object.values(v)) recurse(x, name, out)
  }
}

const evalSteps = (values: ReadonlyArray<unknown>, steps: ReadonlyArray<Step>): Array<unknown> => {
  let cur = [...values]
  for (const s of steps) {
    const next: Array<unknown> = []
    for (const v of cur) {
      switch (s._tag) {
        case "field":
          if (isObject(v) && s.name in v) next.push(v[s.name])
          break
        case "recursive":
          if (s.name === "") next.push(v)
          else recurse(v, s.name, next)
          break
        case "wildcard":
          if (Array.isArray(v)) next.push(...v)
          else if (isObject(v)) next.push(...Object.values(v))
          break
        case "index": {
          if (!Array.isArray(v)) break
          const n = v.length
          const norm = (x: number) => (x < 0 ? Math.max(0, n + x) : Math.min(x, n))
          if (s.single) {
            const k = (s.start ?? 0) < 0 ? n + (s.start ?? 0) : (s.start ?? 0)
            if (k < 0 || k >= n) throw new JsonPathError(`array index out of bounds: index ${s.start}, length ${n}`)
            next.push(v[k])
          } else next.push(...v.slice(norm(s.start ?? 0), norm(s.end ?? n)))
          break
        }
        case "filter": {
          if (!Array.isArray(v)) break
          for (const item of v) {
            const got = evalSteps([item], s.path)
            if (s.op === undefined ? got.length > 0 : got.some((g) => compare(g, s.op as string, s.value)))
              next.push(item)
          }
          break
        }
      }
    }
    cur = next
  }
  return cur
}

const text = (v: unknown): string =>
  typeof v === "string" ? v : v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v)

const render = (nodes: ReadonlyArray<Node>, data: unknown): string => {
  let out = ""
  for (const n of nodes) {
    if (n._tag === "text") out += n.text
    else if (n._tag === "path") out += evalSteps([data], n.steps).map(text).join(" ")
    else for (const item of evalSteps([data], n.steps)) out += render(n.body, item)
  }
  return out
}

/** Evaluates a kubectl jsonpath template against a JSON value. Throws `JsonPathError` on a malformed template. */
export const jsonPath = (template: string, data: unknown): string => render(parseTemplate(template), data)
