/**
 * A `.env` reader with the rules of python-dotenv 1.x (`dotenv.parser`), the library whose `load_dotenv()` read the
 * seed tool's `.env`, so that a file means here exactly what it meant there:
 *
 * - `KEY=value`, optional `export `, spaces around `=`; a key is `'quoted'` or runs up to `=`, `#` or a space.
 * - Unquoted values run to the end of the line; a `#` after whitespace starts a comment (`A=val#x` is `val#x`);
 *   trailing whitespace is dropped.
 * - `'single'` quotes: only `\\` and `\'` are escapes. `"double"` quotes: `\\ \' \" \a \b \f \n \r \t \v` are
 *   escapes, anything else stays as written (`"\$x"` is `\$x`); both may span lines.
 * - After a closing quote only whitespace and a `# comment` may follow. A statement that breaks these rules (`'x'
 *   trailing`, an unterminated quote, `=value` without a key) is skipped up to the end of its line, with a warning,
 *   as python-dotenv skips it.
 * - `KEY` alone has no value (python-dotenv's `None`: `load_dotenv` sets nothing).
 * - Line ends are read as Python's text mode reads them (`\r\n` and `\r` become `\n`), a leading BOM is dropped.
 *
 * Interpolation (`${VAR}`, `${VAR:-default}`), which `load_dotenv` applies afterwards, is left to the caller:
 * `atomsOf` splits a value into literal text and references.
 */
export interface DotenvEntry {
  readonly key: string
  /** Undefined for a bare `KEY` line. */
  readonly value: string | undefined
  /** 1-based line where the statement starts. */
  readonly line: number
}

export interface DotenvResult {
  readonly entries: ReadonlyArray<DotenvEntry>
  readonly warnings: ReadonlyArray<string>
}

const doubleQuoteEscapes: Record<string, string> = {
  "\\": "\\",
  "'": "'",
  '"': '"',
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v"
}

// The statement grammar, as sticky expressions matched at the reader's position.
const multilineWhitespace = /\s*/uy
const exportPrefix = /(?:export[^\S\r\n]+)?/uy
const singleQuotedKey = /'([^']+)'/uy
const unquotedKey = /([^=#\s]+)/uy
const whitespace = /[^\S\r\n]*/uy
const equalSign = /=[^\S\r\n]*/uy
const singleQuotedValue = /'((?:\\'|[^'])*)'/uy
const doubleQuotedValue = /"((?:\\"|[^"])*)"/uy
const unquotedValue = /([^\r\n]*)/uy
const comment = /(?:[^\S\r\n]*#[^\r\n]*)?/uy
const endOfLine = /[^\S\r\n]*(?:\r\n|\n|\r|$)/uy
const restOfLine = /[^\r\n]*(?:\r\n|\r|\n)?/uy
const newline = /\r\n|\n|\r/gu

class Unparsable extends Error {}

export const parseDotenv = (input: string): DotenvResult => {
  // python reads the file in text mode: universal newlines turn \r\n and \r into \n before the parser sees them.
  const text = (input.startsWith("\uFEFF") ? input.slice(1) : input).replace(/\r\n?/gu, "\n")
  let position = 0
  let line = 1
  const advanceTo = (end: number) => {
    line += (text.slice(position, end).match(newline) ?? []).length
    position = end
  }
  const read = (pattern: RegExp): string => {
    pattern.lastIndex = position
    const match = pattern.exec(text)
    if (match === null) throw new Unparsable()
    advanceTo(position + match[0].length)
    return match[1] ?? ""
  }

  const entries: Array<DotenvEntry> = []
  const warnings: Array<string> = []
  while (position < text.length) {
    read(multilineWhitespace)
    if (position >= text.length) break
    const start = line
    try {
      read(exportPrefix)
      const first = text[position]
      const key = first === "#" ? undefined : first === "'" ? read(singleQuotedKey) : read(unquotedKey)
      read(whitespace)
      let value: string | undefined
      if (text[position] === "=") {
        read(equalSign)
        const quote = text[position]
        if (quote === "'") {
          value = read(singleQuotedValue).replace(/\\[\\']/gu, (sequence) => sequence.slice(1))
        } else if (quote === '"') {
          value = read(doubleQuotedValue).replace(
            /\\[\\'"abfnrtv]/gu,
            (sequence) => doubleQuoteEscapes[sequence.slice(1)] ?? sequence
          )
        } else if (quote === undefined || quote === "\n" || quote === "\r") {
          value = ""
        } else {
          value = read(unquotedValue)
            .replace(/\s+#.*/u, "")
            .trimEnd()
        }
      }
      read(comment)
      read(endOfLine)
      if (key !== undefined) entries.push({ key, value, line: start })
    } catch (error) {
      if (!(error instanceof Unparsable)) throw error
      read(restOfLine)
      warnings.push(`line ${start}: skipped, not a statement python-dotenv (the seed tool's parser) can read`)
    }
  }
  return { entries, warnings }
}

/** A piece of a value: literal text, or a `${name}` / `${name:-default}` reference (python-dotenv's syntax). */
export type DotenvAtom =
  | { readonly _tag: "Literal"; readonly text: string }
  | { readonly _tag: "Variable"; readonly name: string; readonly fallback: string | undefined }

/** Splits a value the way python-dotenv's interpolation does (`\$\{(?P<name>[^\}:]*)(?::-(?P<default>[^\}]*))?\}`). */
export const atomsOf = (value: string): Array<DotenvAtom> => {
  const atoms: Array<DotenvAtom> = []
  let cursor = 0
  for (const match of value.matchAll(/\$\{([^}:]*)(?::-([^}]*))?\}/gu)) {
    const at = match.index ?? 0
    if (at > cursor) atoms.push({ _tag: "Literal", text: value.slice(cursor, at) })
    atoms.push({ _tag: "Variable", name: match[1] ?? "", fallback: match[2] })
    cursor = at + match[0].length
  }
  if (cursor < value.length) atoms.push({ _tag: "Literal", text: value.slice(cursor) })
  return atoms
}
