/**
 * `${VAR}` / `${VAR:-default}` interpolation with `$${` as the escape for a literal `${`.
 * The caller's env record is the only source; `process.env` is never read.
 */

export type InterpolationProblem =
  | { readonly _tag: "Missing"; readonly variable: string }
  | { readonly _tag: "Syntax"; readonly detail: string }

export interface Interpolated {
  readonly value: string
  /** Variables that were referenced (set, defaulted or missing). */
  readonly variables: ReadonlyArray<string>
  readonly problems: ReadonlyArray<InterpolationProblem>
}

const variableName = /^[A-Za-z_][A-Za-z0-9_]*$/u

export const hasInterpolation = (text: string): boolean => text.includes("${")

export const interpolate = (text: string, env: Readonly<Record<string, string | undefined>>): Interpolated => {
  let out = ""
  const variables: Array<string> = []
  const problems: Array<InterpolationProblem> = []
  let i = 0
  while (i < text.length) {
    const ch = text[i]
    if (ch === "$" && text[i + 1] === "$" && text[i + 2] === "{") {
      out += "${"
      i += 3
      continue
    }
    if (ch === "$" && text[i + 1] === "{") {
      const close = text.indexOf("}", i + 2)
      if (close < 0) {
        problems.push({ _tag: "Syntax", detail: "an unterminated ${ (write $${ for a literal ${)" })
        out += text.slice(i)
        break
      }
      const body = text.slice(i + 2, close)
      const sep = body.indexOf(":-")
      const name = sep >= 0 ? body.slice(0, sep) : body
      const fallback = sep >= 0 ? body.slice(sep + 2) : undefined
      if (!variableName.test(name)) {
        problems.push({
          _tag: "Syntax",
          detail: `\${${body}}: only \${NAME} and \${NAME:-default} are supported (NAME is [A-Za-z_][A-Za-z0-9_]*)`
        })
      } else {
        variables.push(name)
        const value = env[name]
        if (value !== undefined && (value !== "" || fallback === undefined)) out += value
        else if (fallback !== undefined) out += fallback
        else problems.push({ _tag: "Missing", variable: name })
      }
      i = close + 1
      continue
    }
    out += ch
    i++
  }
  return { value: out, variables, problems }
}

/** Escapes literal text so that `interpolate` returns it unchanged. */
export const escapeInterpolation = (text: string): string => text.replaceAll("${", () => "$${")
