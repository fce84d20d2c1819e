// biome-ignore-all lint/suspicious/noTemplateCurlyInString: this file deals with literal ${VAR} references
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { LineCounter, parseDocument } from "yaml"
import { ConfigError, ConfigInvalid, ConfigMissingVariables, ConfigYamlError } from "./ConfigError.js"
import type { ConfigIssue } from "./ConfigIssue.js"
import type { ConfigWarning } from "./ConfigWarning.js"
import type { HomelabConfig } from "./HomelabConfig.js"
import { HomelabConfigSchema } from "./HomelabConfigSchema.js"
import { duplicateKeyAt } from "./internal/duplicateKey.js"
import { fromSchemaIssue, locate, type RawIssue } from "./internal/issues.js"
import { displayPath, formatPath, rootPath } from "./internal/path.js"
import { resolveConfig } from "./internal/resolve.js"
import { crossFieldIssues } from "./internal/semantic.js"
import { configWarnings } from "./internal/warnings.js"
import { buildTree, maxAliasedValues } from "./internal/yamlTree.js"

export interface ParseConfigOptions {
  /** Variables for `${VAR}` interpolation. The library never reads `process.env`; the CLI passes it here. */
  readonly env: Readonly<Record<string, string | undefined>>
  /** File name used in messages (default `homelab.yaml`). */
  readonly source?: string
}

const decode = Schema.decodeUnknownResult(HomelabConfigSchema)

const bySourceOrder = (a: ConfigIssue, b: ConfigIssue): number =>
  (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER) ||
  (a.column ?? 0) - (b.column ?? 0) ||
  a.path.localeCompare(b.path)

const failWith = (source: string, issues: Array<ConfigIssue>, missing: ReadonlyArray<string> = []): ConfigError => {
  const reason =
    issues[0]?.code === "yaml-syntax"
      ? new ConfigYamlError({ count: issues.length })
      : issues.length > 0 && issues.every((issue) => issue.code === "missing-variable")
        ? new ConfigMissingVariables({ variables: [...new Set(missing)] })
        : new ConfigInvalid({ count: issues.length })
  return new ConfigError({ reason, source, issues })
}

/** A valid `homelab.yaml`, resolved, and what in it is worth changing although it works. */
export interface ParsedConfig {
  readonly config: HomelabConfig
  /** A secret written in the file, `ssh.user` other than root where it matters (see `ConfigWarning`), in file order. */
  readonly warnings: ReadonlyArray<ConfigWarning>
}

/**
 * `parseConfig`, with the warnings about the valid document: a secret field written as its value instead of a
 * `${VAR}` reference (never showing it), `ssh.user` other than root where pvesh/qm over SSH may run.
 */
export const parseConfigWithWarnings = Effect.fnUntraced(function* (
  text: string,
  options: ParseConfigOptions
): Effect.fn.Return<ParsedConfig, ConfigError> {
  const source = options.source ?? "homelab.yaml"
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, merge: true })
  if (doc.errors.length > 0) {
    // Later syntax errors are mostly consequences of the first ones: keep a readable handful.
    const issues = doc.errors.slice(0, 5).map((error): ConfigIssue => {
      const position = lineCounter.linePos(error.pos[0])
      // yaml's own text for it advises a call of its API ("please use YAML.parseAllDocuments()")
      if (error.code === "MULTIPLE_DOCS")
        return {
          code: "yaml-syntax",
          path: rootPath,
          line: position.line,
          column: position.col,
          expected: "one YAML document",
          found: "a second document after ---",
          suggestion: "remove the --- line, and merge what follows it into the first document"
        }
      // yaml's text for it ("Map keys must be unique") names neither the key nor its mapping
      const duplicate = error.code === "DUPLICATE_KEY" ? duplicateKeyAt(doc, error.pos[0]) : undefined
      if (duplicate !== undefined) {
        const first = duplicate.firstOffset === undefined ? undefined : lineCounter.linePos(duplicate.firstOffset)
        return {
          code: "yaml-syntax",
          path: displayPath(duplicate.path),
          line: position.line,
          column: position.col,
          expected: "each key once in its mapping",
          found: `${JSON.stringify(duplicate.key)} a second time in this mapping${first === undefined ? "" : ` (first on line ${first.line})`}`,
          suggestion: "keep one of the two: merge what you meant into the first and delete the second"
        }
      }
      return {
        code: "yaml-syntax",
        path: rootPath,
        line: position.line,
        column: position.col,
        expected: "valid YAML",
        // yaml quotes the offending token (`...: "token"`); drop it so that a secret on that line is never echoed.
        found: (error.message.split("\n")[0] ?? error.code).replace(/:\s*".*$/su, ""),
        ...(error.code === "TAB_AS_INDENT" ? { suggestion: "indent with spaces: YAML does not allow tabs there" } : {})
      }
    })
    return yield* failWith(source, issues)
  }

  const tree = buildTree(doc, lineCounter, options.env, text)
  if (tree.aliasOverflow !== undefined) {
    const position = tree.aliasOverflow.position
    return yield* failWith(source, [
      {
        code: "yaml-syntax",
        path: rootPath,
        ...(position === undefined ? {} : { line: position.line, column: position.column }),
        expected: `YAML whose aliases (*name) expand to at most ${maxAliasedValues} values in all`,
        found: `aliases that expand to more than ${maxAliasedValues} values (an alias bomb, "billion laughs"?)`,
        suggestion: "write the values out, or reuse anchors less deeply"
      }
    ])
  }
  if (tree.unresolvedAliases.length > 0) {
    return yield* failWith(
      source,
      tree.unresolvedAliases.map(
        (alias): ConfigIssue => ({
          code: "yaml-syntax",
          path: displayPath(alias.path),
          ...(alias.position === undefined ? {} : { line: alias.position.line, column: alias.position.column }),
          expected: "an alias (*name) of an anchor (&name) written above it",
          found: `*${alias.name}, and no &${alias.name} above it`,
          suggestion: `write &${alias.name} before the value to reuse (above this line), or correct the alias's name`
        })
      )
    )
  }
  const raw: Array<RawIssue> = []
  const envFailed = new Set<string>()
  for (const problem of tree.envProblems) {
    envFailed.add(formatPath(problem.path))
    raw.push(
      problem.variable !== undefined
        ? {
            code: "missing-variable",
            path: problem.path,
            expected: `environment variable \`${problem.variable}\` to be set (used in ${JSON.stringify(problem.template)})`,
            found: "no such variable",
            suggestion: `export ${problem.variable}=... or write \${${problem.variable}:-default}`
          }
        : {
            code: "interpolation-syntax",
            path: problem.path,
            expected: problem.detail ?? "a valid ${VAR} reference",
            found: JSON.stringify(problem.template)
          }
    )
  }

  const decoded = decode(tree.value, { errors: "all", onExcessProperty: "error" })
  const derived = [
    ...(Result.isFailure(decoded) ? fromSchemaIssue(tree, decoded.failure.issue) : []),
    ...crossFieldIssues(tree.value)
  ]
  // A value whose variable is missing was not really written by the user: don't also complain about its format.
  for (const issue of derived) {
    const key = formatPath(issue.path)
    if (!envFailed.has(key)) raw.push(issue)
  }

  const seen = new Set<string>()
  const issues = raw
    .map((issue) => locate(tree, issue))
    .filter((issue) => {
      const key = `${issue.code}|${issue.path}|${issue.expected}`
      if (seen.has(key)) return false
      seen.add(key)
      return true
    })
    .sort(bySourceOrder)
  const missing = tree.envProblems.flatMap((problem) => (problem.variable === undefined ? [] : [problem.variable]))
  if (issues.length > 0 || Result.isFailure(decoded)) return yield* failWith(source, issues, missing)
  const config = resolveConfig(decoded.success)
  const warnings = configWarnings(tree, config).sort(
    (a, b) => (a.line ?? Number.MAX_SAFE_INTEGER) - (b.line ?? Number.MAX_SAFE_INTEGER) || a.path.localeCompare(b.path)
  )
  return { config, warnings }
})

/**
 * Parses and validates `homelab.yaml` text: YAML syntax, `${ENV}` interpolation from `options.env`, the schema
 * (unknown keys with suggestions, types, formats), then cross-field rules. Every problem is collected into one
 * `ConfigError`; on success the resolved `HomelabConfig` has all defaults applied and secrets `Redacted`.
 */
export const parseConfig = (text: string, options: ParseConfigOptions): Effect.Effect<HomelabConfig, ConfigError> =>
  Effect.map(parseConfigWithWarnings(text, options), (parsed) => parsed.config)
