import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"

const runner = fileURLToPath(new URL("../dist/withSimulator.js", import.meta.url))
const script = fileURLToPath(new URL("../dist/main.js", import.meta.url))

const run = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [script, ...args], { timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr })
    )
  })

describe("example script", () => {
  it("--help prints the usage with every option and exits 0; an unknown option or a missing one is a usage error (exit 2)", async () => {
    const help = await run(["--help"])
    assert.strictEqual(help.code, 0, help.stderr)
    for (const option of ["--server", "--host", "--role", "--user", "--port", "--key", "--known-hosts", "--rebuilt"]) {
      assert.include(help.stdout, option)
    }
    const unknown = await run(["--server", "10.0.0.5", "--host", "10.0.0.21", "--bogus"])
    assert.strictEqual(unknown.code, 2)
    assert.include(unknown.stderr, "--bogus")
    assert.include(unknown.stderr, "usage:")
    assert.notInclude(unknown.stderr, "    at ") // no stack trace
    const missing = await run(["--host", "10.0.0.21"])
    assert.strictEqual(missing.code, 2)
    assert.include(missing.stderr, "--server")
    const role = await run(["--server", "10.0.0.5", "--host", "10.0.0.21", "--role", "master"])
    assert.strictEqual(role.code, 2)
    assert.include(role.stderr, "--role")
  })

  it("joins a simulated VM to the simulated k3s server, and a second run changes nothing", async () => {
    const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(process.execPath, [runner], { timeout: 280_000 }, (error, stdout) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout })
      )
    })
    assert.strictEqual(code, 0, stdout)
    assert.match(stdout, /worker-1 joined as agent \(v1\.30\.5\+k3s1\)/)
    assert.match(stdout, /worker-1 is already a Ready agent .*nothing to do/)
    assert.notMatch(stdout, /K10[0-9a-f]{64}/)
  }, 300_000) // three Node processes and a simulated k3s join: a hang guard for a machine busy with other suites
})
