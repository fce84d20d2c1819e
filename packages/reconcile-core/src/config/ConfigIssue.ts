import * as Schema from "effect/Schema"

/**
 * One problem found in `homelab.yaml`: where it is (path and, when known, 1-based line and column), what was
 * expected, what was found, and an optional suggestion. `code` is a stable machine-readable kind.
 * Secret values and values that came from the environment are never shown in `found`.
 */
export const ConfigIssue = Schema.Struct({
  code: Schema.Literals([
    "yaml-syntax",
    "missing-variable",
    "interpolation-syntax",
    "unknown-key",
    "missing-key",
    "invalid-type",
    "invalid-value",
    "conflict",
    "duplicate"
  ]),
  path: Schema.String,
  line: Schema.optionalKey(Schema.Number),
  column: Schema.optionalKey(Schema.Number),
  expected: Schema.String,
  found: Schema.String,
  suggestion: Schema.optionalKey(Schema.String)
})

export type ConfigIssue = typeof ConfigIssue.Type
export type ConfigIssueCode = ConfigIssue["code"]
