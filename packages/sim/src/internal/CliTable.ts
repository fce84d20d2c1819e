/**
 * pve-common CLIFormatter `print_api_result` for `--output-format text` (pvesh's default): an object prints as a
 * bordered key/value table, a list of objects as a table with one column per property, a list of scalars as a
 * one-column table without header, anything else as its text. Columns and their order come from the endpoint's
 * `returns` schema (required properties sorted, then optional ones sorted), else from the data's keys. Output over
 * SSH is UTF-8 without a terminal width, so the borders are box-drawing characters and nothing is cut.
 */

/** The parts of an endpoint's `returns` schema the text formatter reads. */
export interface ReturnsShape {
  readonly type?: "object" | "array" | "string" | "integer" | "number" | "boolean" | "null"
  readonly optional?: boolean
  readonly properties?: Readonly<Record<string, PropShape>>
  readonly items?: ReturnsShape
}

export interface PropShape {
  readonly type?: string
  readonly optional?: boolean
}

type Kind = NonNullable<ReturnsShape["type"]>

const guessType = (data: unknown): Kind =>
  data === null || data === undefined
    ? "null"
    : Array.isArray(data)
      ? "array"
      : typeof data === "object"
        ? "object"
        : "string"

const dataToText = (data: unknown, prop: PropShape | undefined): string => {
  if (data === null || data === undefined) return ""
  if (prop?.type === "boolean") return data && data !== "0" ? "1" : "0"
  if (typeof data === "object") return canonical(data)
  return String(data)
}

const canonical = (v: unknown): string => {
  if (v === null || v === undefined) return "null"
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`
  if (typeof v === "object") {
    const o = v as Record<string, unknown>
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(",")}}`
  }
  return JSON.stringify(v)
}

const propertiesToPrint = (props: Readonly<Record<string, PropShape>> | undefined): Array<string> => {
  const entries = Object.entries(props ?? {})
  return [
    ...entries
      .filter(([, p]) => p.optional !== true)
      .map(([k]) => k)
      .sort(),
    ...entries
      .filter(([, p]) => p.optional === true)
      .map(([k]) => k)
      .sort()
  ]
}

const numeric = (p: PropShape | undefined): boolean => p?.type === "integer" || p?.type === "number"

const table = (
  rows: ReadonlyArray<Record<string, unknown>>,
  props: Readonly<Record<string, PropShape>>,
  columns: ReadonlyArray<string>,
  header: boolean
): string => {
  const first = columns[0]
  const sorted = [...rows]
  if (first !== undefined) {
    const num = numeric(props[first])
    sorted.sort((a, b) => {
      const x = a[first]
      const y = b[first]
      if (x === undefined || y === undefined) return x === undefined ? (y === undefined ? 0 : -1) : 1
      if (num) return Number(x) - Number(y)
      const sx = String(x)
      const sy = String(y)
      return sx < sy ? -1 : sx > sy ? 1 : 0
    })
  }
  const cells = sorted.map((r) => columns.map((c) => dataToText(r[c], props[c]).split("\n")))
  const widths = columns.map((c, i) =>
    Math.max(c.length, ...cells.map((row) => Math.max(0, ...(row[i] ?? []).map((l) => l.length))))
  )
  const pad = (text: string, i: number): string =>
    numeric(props[columns[i] as string]) ? text.padStart(widths[i] as number) : text.padEnd(widths[i] as number)
  const line = (texts: ReadonlyArray<string>) => `│ ${texts.map((t, i) => pad(t, i)).join(" │ ")} │`
  const rule = (l: string, m: string, r: string, h: string) =>
    `${l}${h}${widths.map((w) => h.repeat(w)).join(`${h}${m}${h}`)}${h}${r}`
  const out: Array<string> = [rule("┌", "┬", "┐", "─")]
  if (header) out.push(line(columns))
  cells.forEach((row, i) => {
    if (i > 0 || header) out.push(i === 0 ? rule("╞", "╪", "╡", "═") : rule("├", "┼", "┤", "─"))
    const height = Math.max(1, ...row.map((c) => c.length))
    for (let l = 0; l < height; l++) out.push(line(row.map((c) => c[l] ?? "")))
  })
  out.push(rule("└", "┴", "┘", "─"))
  return `${out.join("\n")}\n`
}

/** The text pvesh prints for `data` (empty for a `null` schema or an empty list). */
export const textOutput = (data: unknown, returns: ReturnsShape | undefined): string => {
  let schema: ReturnsShape
  if (returns?.type !== undefined) schema = returns
  else {
    const type = guessType(data)
    schema = type === "array" ? { type, items: { type: guessType((data as Array<unknown>)[0]) } } : { type }
  }
  if (schema.type === "null") return ""
  if (schema.optional === true && (data === null || data === undefined)) return ""
  if (schema.type === "object") {
    const d = (data ?? {}) as Record<string, unknown>
    let keys = propertiesToPrint(schema.properties)
    if (keys.length === 0) keys = Object.keys(d).sort()
    const rows = keys
      .filter((k) => d[k] !== undefined && d[k] !== null)
      .map((k) => ({ key: k, value: dataToText(d[k], schema.properties?.[k]) }))
    return table(rows, {}, ["key", "value"], true)
  }
  if (schema.type === "array") {
    const list = Array.isArray(data) ? data : []
    if (list.length === 0) return ""
    if (schema.items?.type === "object") {
      const props = schema.items.properties ?? {}
      let columns = propertiesToPrint(props)
      if (columns.length === 0) columns = [...new Set(list.flatMap((o) => Object.keys((o ?? {}) as object)))].sort()
      return table(list as Array<Record<string, unknown>>, props, columns, true)
    }
    return table(
      list.map((value) => ({ value })),
      { value: { type: schema.items?.type ?? "string" } },
      ["value"],
      false
    )
  }
  return data === null || data === undefined ? "\n" : `${String(data)}\n`
}
