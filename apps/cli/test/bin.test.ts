import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import pkg from "../package.json" with { type: "json" }

const bin = fileURLToPath(new URL("../dist/bin.js", import.meta.url))

const run = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr })
    })
  })

describe("homelab bin", () => {
  it("prints its version from package.json and exits 0", async () => {
    const result = await run(["--version"])
    assert.strictEqual(result.code, 0)
    assert.include(result.stdout, pkg.version)
  })

  it("prints help naming the command and exits 0", async () => {
    const result = await run(["--help"])
    assert.strictEqual(result.code, 0)
    assert.include(result.stdout, "homelab")
    assert.include(result.stdout, "homelab.yaml")
  })

  it("rejects an unknown flag with a non-zero exit", async () => {
    const result = await run(["--no-such-flag"])
    assert.notStrictEqual(result.code, 0)
  })
})
