import { assert, describe, it } from "@effect/vitest"
import { argvFlag, argvJson } from "../src/GlobalFlags.js"

describe("argvFlag", () => {
  // what the parser makes of each command line (effect/cli's boolean flags): argvFlag must agree, or a failure under
  // --json=yes prints no error object, and one under --json false prints one into text output
  it.each([
    [["plan", "--json"], true],
    [["--json", "plan"], true],
    [["plan", "--json=true"], true],
    [["plan", "--json=yes"], true],
    [["plan", "--json=1"], true],
    [["plan", "--json=on"], true],
    [["plan", "--json=y"], true],
    [["plan", "--json", "yes"], true],
    [["plan", "--json", "--verbose"], true],
    [["plan", "--json=false"], false],
    [["plan", "--json=no"], false],
    [["plan", "--json", "false"], false],
    [["plan", "--json", "0"], false],
    [["plan", "--json", "off"], false],
    [["plan", "--no-json"], false],
    [["plan"], false],
    [["plan", "--", "--json"], false],
    [["plan", "--jsonx"], false]
  ] as const)("%j: %s", (argv, expected) => {
    assert.strictEqual(argvFlag(argv, "json"), expected)
  })

  it("reads --verbose the same way", () => {
    assert.isTrue(argvFlag(["apply", "--verbose=1"], "verbose"))
    assert.isFalse(argvFlag(["apply", "--verbose", "no"], "verbose"))
  })
})

describe("argvJson", () => {
  it("is --json, or status -o json", () => {
    assert.isTrue(argvJson(["status", "-o", "json"]))
    assert.isTrue(argvJson(["status", "--output=json"]))
    assert.isTrue(argvJson(["plan", "--json=yes"]))
    assert.isFalse(argvJson(["status", "-o", "yaml"]))
    assert.isFalse(argvJson(["status", "--json", "false"]))
  })
})
