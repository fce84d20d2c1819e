import * as fs from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { ExitCode } from "../src/ExitCode.js"

const readme = fs.readFileSync(new URL("../../../README.md", import.meta.url), "utf8")

describe("ExitCode", () => {
  it("the README's table of exit codes lists exactly the codes of ExitCode, in order, once each", () => {
    const section = readme.slice(readme.indexOf("## Exit codes of `homelab`"))
    const table = section.slice(0, section.indexOf("\n## "))
    const codes = [...table.matchAll(/^\| (\d+) +\|/gm)].map((m) => Number(m[1]))
    assert.deepStrictEqual(
      codes,
      [...new Set(Object.values(ExitCode))].sort((a, b) => a - b)
    )
  })
})
