import { assert, describe, it } from "@effect/vitest"
import { ConfigError, ConfigInvalid, formatConfigIssues } from "../../src/config/ConfigError.js"

describe("ConfigError", () => {
  it("renders every issue on its own line, with or without a position", () => {
    const error = new ConfigError({
      reason: new ConfigInvalid({ count: 2 }),
      source: "lab.yaml",
      issues: [
        {
          code: "invalid-value",
          path: "nodes[1].cpuRatio",
          line: 12,
          column: 5,
          expected: "a number in (0, 1]",
          found: "1.5"
        },
        {
          code: "unknown-key",
          path: "nodse",
          expected: "a known key at (root) (nodes)",
          found: 'unknown key "nodse"',
          suggestion: 'did you mean "nodes"?'
        }
      ]
    })
    assert.strictEqual(
      error.message,
      [
        "lab.yaml: 2 problems",
        "lab.yaml:12:5 nodes[1].cpuRatio: expected a number in (0, 1], found 1.5",
        'lab.yaml nodse: expected a known key at (root) (nodes), found unknown key "nodse" (did you mean "nodes"?)'
      ].join("\n")
    )
    assert.strictEqual(formatConfigIssues("x.yaml", []), "")
    assert.strictEqual(error._tag, "ConfigError")
    assert.strictEqual(error.reason._tag, "ConfigInvalid")
  })
})
