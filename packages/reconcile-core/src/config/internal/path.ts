export type PathSegment = string | number

const identifier = /^[A-Za-z_$][A-Za-z0-9_$-]*$/u

/** `["nodes", 1, "bridges", 0]` → `nodes[1].bridges[0]`; the empty path is the document root `(root)`. */
export const formatPath = (segments: ReadonlyArray<PathSegment>): string => {
  let out = ""
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`
    else if (identifier.test(segment)) out += out === "" ? segment : `.${segment}`
    else out += `[${JSON.stringify(segment)}]`
  }
  return out
}

export const rootPath = "(root)"

export const displayPath = (segments: ReadonlyArray<PathSegment>): string =>
  segments.length === 0 ? rootPath : formatPath(segments)
