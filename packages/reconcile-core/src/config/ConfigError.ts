import * as Schema from "effect/Schema"
import { ConfigIssue } from "./ConfigIssue.js"

/** The text is not valid YAML (or not a single document); nothing else was checked. */
export class ConfigYamlError extends Schema.TaggedError<ConfigYamlError>()("ConfigYamlError", {
  count: Schema.Number
}) {}

/** The only problems are `${VAR}` references to variables that are not set. */
export class ConfigMissingVariables extends Schema.TaggedError<ConfigMissingVariables>()("ConfigMissingVariables", {
  variables: Schema.Array(Schema.String)
}) {}

/** The document does not match the schema or the cross-field rules (may include missing variables). */
export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("ConfigInvalid", {
  count: Schema.Number
}) {}

/**
 * Renders issues one per line: `homelab.yaml:12:5 nodes[1].cpuRatio: expected a number in (0, 1], found 1.5`.
 */
export const formatConfigIssues = (source: string, issues: ReadonlyArray<ConfigIssue>): string =>
  issues
    .map((issue) => {
      const where =
        issue.line === undefined
          ? source
          : `${source}:${issue.line}${issue.column === undefined ? "" : `:${issue.column}`}`
      const hint = issue.suggestion === undefined ? "" : ` (${issue.suggestion})`
      return `${where} ${issue.path}: expected ${issue.expected}, found ${issue.found}${hint}`
    })
    .join("\n")

/**
 * The one error of the config loader. `reason` says which kind of failure it is; `issues` lists every problem
 * found (all of them, not just the first); `message` renders them as readable lines.
 */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  reason: Schema.Union([ConfigYamlError, ConfigMissingVariables, ConfigInvalid]),
  source: Schema.String,
  issues: Schema.Array(ConfigIssue)
}) {
  override get message(): string {
    const count = this.issues.length
    return `${this.source}: ${count} problem${count === 1 ? "" : "s"}\n${formatConfigIssues(this.source, this.issues)}`
  }
}
