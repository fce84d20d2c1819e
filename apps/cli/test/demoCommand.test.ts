import { assert, describe, it } from "@effect/vitest"
import { runHomelab } from "./helpers.js"

describe("homelab demo", () => {
  it("applies to the simulated homelab (fallback shown, stuck VM recreated), then a second run changes nothing", async () => {
    const result = await runHomelab(["demo", "--time-scale", "0.05"], { env: { CI: "true" }, timeout: 120_000 })
    assert.strictEqual(result.code, 0, result.stdout + result.stderr)
    assert.match(result.stdout, /still-fawn: API certificate not trusted .* using SSH/)
    assert.match(result.stdout, /VM 4242 k3s-vm-chief-horse recreated/)
    assert.include(result.stdout, "Applied 8 of 8 change(s)")
    assert.match(result.stdout, /second run: 0 change\(s\), \d+ request\(s\) \(0 mutating\)/)
    const rows = result.stdout.split("\n").filter((l) => /^[a-z-]+ +k3s-vm-[a-z-]+ +\d+ +/.test(l))
    assert.strictEqual(rows.length, 4)
    assert.match(rows.find((r) => r.startsWith("still-fawn")) ?? "", /ssh \(fallback\)/)
  }, 120_000)
})
