import { assert, describe, it } from "@effect/vitest"
import pkg from "../package.json" with { type: "json" }
import { runHomelab } from "./helpers.js"

describe("homelab bin", () => {
  it("prints its version from package.json and exits 0", async () => {
    const result = await runHomelab(["--version"])
    assert.strictEqual(result.code, 0)
    assert.include(result.stdout, pkg.version)
  })

  it("prints help naming the command and its subcommands, and exits 0", async () => {
    const result = await runHomelab(["--help"])
    assert.strictEqual(result.code, 0)
    assert.include(result.stdout, "homelab.yaml")
    assert.include(result.stdout, "config")
  })

  it("rejects an unknown flag with a non-zero exit", async () => {
    const result = await runHomelab(["--no-such-flag"])
    assert.notStrictEqual(result.code, 0)
  })
})
