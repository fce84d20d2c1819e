import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"

const runner = fileURLToPath(new URL("../dist/withSimulator.js", import.meta.url))

describe("example script", () => {
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
