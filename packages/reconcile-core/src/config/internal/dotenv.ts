/**
 * A `.env` reader with dotenv's rules: `KEY=value`, optional `export `, `#` comments (whole line, or after
 * whitespace in an unquoted value), single quotes (literal), double quotes (`\n`, `\t`, `\"`, `\\` escapes, may
 * span lines), backticks (literal). Later assignments win.
 */
export interface DotenvEntry {
  readonly key: string
  readonly value: string
  readonly line: number
}

export interface DotenvResult {
  readonly entries: ReadonlyArray<DotenvEntry>
  readonly warnings: ReadonlyArray<string>
}

const keyPattern = /^[A-Za-z_][A-Za-z0-9_.-]*$/u

export const parseDotenv = (text: string): DotenvResult => {
  const entries: Array<DotenvEntry> = []
  const warnings: Array<string> = []
  const lines = text.replace(/\r\n?/gu, "\n").split("\n")
  for (let i = 0; i < lines.length; i++) {
    const lineNumber = i + 1
    let line = (lines[i] ?? "").trim()
    if (line === "" || line.startsWith("#")) continue
    if (line.startsWith("export ")) line = line.slice(7).trimStart()
    const eq = line.indexOf("=")
    if (eq <= 0) {
      warnings.push(`line ${lineNumber}: ignored, not KEY=value`)
      continue
    }
    const key = line.slice(0, eq).trim()
    if (!keyPattern.test(key)) {
      warnings.push(`line ${lineNumber}: ignored, ${JSON.stringify(key)} is not a variable name`)
      continue
    }
    let rest = line.slice(eq + 1).trimStart()
    const quote = rest[0]
    if (quote === '"' || quote === "'" || quote === "`") {
      // Find the closing quote, possibly on a later line.
      let body = rest.slice(1)
      let close = findClose(body, quote)
      while (close < 0 && i + 1 < lines.length) {
        i++
        body += `\n${lines[i] ?? ""}`
        close = findClose(body, quote)
      }
      if (close < 0) {
        warnings.push(`line ${lineNumber}: ${key} has an unterminated ${quote} quote; value taken as written`)
        entries.push({ key, value: body, line: lineNumber })
        continue
      }
      const raw = body.slice(0, close)
      const value =
        quote === '"'
          ? raw.replace(/\\([nrt"\\$])/gu, (_, ch: string) =>
              ch === "n" ? "\n" : ch === "r" ? "\r" : ch === "t" ? "\t" : ch
            )
          : raw
      entries.push({ key, value, line: lineNumber })
      continue
    }
    const comment = rest.search(/\s#/u)
    if (comment >= 0) rest = rest.slice(0, comment)
    entries.push({ key, value: rest.trim(), line: lineNumber })
  }
  return { entries, warnings }
}

const findClose = (body: string, quote: string): number => {
  for (let i = 0; i < body.length; i++) {
    if (quote === '"' && body[i] === "\\") {
      i++
      continue
    }
    if (body[i] === quote) return i
  }
  return -1
}
