/** Perl JSON canonical output (sorted keys, compact). */
export const canonicalJson = (v: unknown): string => {
  if (v === null || v === undefined) return "null"
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`
  if (typeof v === "object") {
    const o = v as Record<string, unknown>
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(",")}}`
  }
  return JSON.stringify(v)
}

/** Perl JSON `pretty` + canonical: 3-space indent, `"key" : value`. */
export const prettyJson = (v: unknown, indent = ""): string => {
  const next = `${indent}   `
  if (v === null || v === undefined) return "null"
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]"
    return `[\n${v.map((x) => `${next}${prettyJson(x, next)}`).join(",\n")}\n${indent}]`
  }
  if (typeof v === "object") {
    const o = v as Record<string, unknown>
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
    if (keys.length === 0) return "{}"
    return `{\n${keys.map((k) => `${next}${JSON.stringify(k)} : ${prettyJson(o[k], next)}`).join(",\n")}\n${indent}}`
  }
  return JSON.stringify(v)
}

/** Parse `[positional...] [--k v | -k v | --k=v | --flag]...` (repeated options become arrays; `--` ends options). */
export const parseCliArgs = (
  args: ReadonlyArray<string>
): { positional: Array<string>; options: Record<string, string | Array<string>>; rest: Array<string> } => {
  const positional: Array<string> = []
  const options: Record<string, string | Array<string>> = {}
  const rest: Array<string> = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string
    if (a === "--") {
      rest.push(...args.slice(i + 1))
      break
    }
    if (/^--?[a-zA-Z]/.test(a)) {
      let key = a.replace(/^--?/, "")
      let value: string
      const eq = key.indexOf("=")
      if (eq >= 0) {
        value = key.slice(eq + 1)
        key = key.slice(0, eq)
      } else {
        const n = args[i + 1]
        if (n === undefined || /^--?[a-zA-Z]/.test(n) || n === "--") value = "1"
        else {
          value = n
          i++
        }
      }
      const cur = options[key]
      if (cur === undefined) options[key] = value
      else if (Array.isArray(cur)) cur.push(value)
      else options[key] = [cur, value]
    } else positional.push(a)
  }
  return { positional, options, rest }
}
