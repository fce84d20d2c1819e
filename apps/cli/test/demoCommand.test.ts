import { assert, describe, it } from "@effect/vitest"
import { runHomelab } from "./helpers.js"

describe("homelab demo", () => {
  it("applies to the simulated homelab: fallback shown, stuck VM rebuilt and rejoined, every VM a Ready k3s member; a second run changes nothing", async () => {
    const result = await runHomelab(["demo", "--time-scale", "0.05"], { env: { CI: "true" }, timeout: 120_000 })
    assert.strictEqual(result.code, 0, result.stdout + result.stderr)
    assert.match(result.stdout, /a simulated Proxmox VE 9\.1\.\d+ cluster/)
    assert.match(result.stdout, /still-fawn: API certificate not trusted .* using SSH/)
    assert.match(result.stdout, /VM 4242 k3s-vm-chief-horse recreated/)
    assert.match(result.stdout, /k3s-vm-chief-horse joined as an agent .*stale Node and password secret removed first/)
    for (const vm of ["k3s-vm-pve", "k3s-vm-still-fawn", "k3s-vm-pumped-piglet"]) {
      assert.match(result.stdout, new RegExp(`${vm} joined as an agent`))
    }
    assert.notMatch(result.stdout, /Node password rejected/)
    // No k3s token (K10<ca hash>::server:<password>) and no API token secret in anything the user sees.
    const everything = result.stdout + result.stderr
    assert.notMatch(everything, /K10[0-9a-f]{64}::/)
    assert.notMatch(everything, /::server:[0-9a-f]{8}/)
    assert.notMatch(everything, /PVEAPIToken=/)
    assert.notMatch(everything, /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/)
    assert.include(result.stdout, "Applied 12 of 12 change(s)")
    assert.include(result.stdout, "No changes: every node is converged")
    assert.match(result.stdout, /second run: 0 change\(s\), \d+ request\(s\) \(0 mutating\)/)
    const rows = result.stdout.split("\n").filter((l) => /^[a-z-]+ +k3s-vm-[a-z-]+ +\d+ +/.test(l))
    assert.strictEqual(rows.length, 4)
    for (const row of rows) assert.match(row, /agent Ready$/)
    assert.match(rows.find((r) => r.startsWith("still-fawn")) ?? "", /ssh \(fallback\)/)
  }, 120_000)

  it("--json prints NDJSON: one object per line, the demo's own lines typed, each apply as apply --json prints it", async () => {
    const result = await runHomelab(["demo", "--json", "--time-scale", "0.05"], {
      env: { CI: "true" },
      timeout: 120_000
    })
    assert.strictEqual(result.code, 0, result.stderr)
    const lines = result.stdout.trimEnd().split("\n")
    interface Line {
      readonly type?: string
      readonly plan?: { readonly changes: number }
      readonly changes?: number
      readonly mutating?: number
      readonly vms?: ReadonlyArray<unknown>
    }
    const objects = lines.map((line) => JSON.parse(line) as Line & { readonly v?: number; readonly time?: string })
    // every line, the demo's own too, carries v and time (docs/json-events.md)
    for (const o of objects) {
      assert.strictEqual(o.v, 1)
      assert.match(o.time ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `${o.type} without time`)
    }
    // each apply streams its events: the plan first, its summary last
    const outline = objects.filter((o) => o.type?.startsWith("demo.") || o.type === "plan" || o.type === "summary")
    assert.deepStrictEqual(
      outline.map((o) => o.type),
      [
        "demo.lab",
        "demo.step",
        "plan",
        "summary",
        "demo.step",
        "plan",
        "summary",
        "demo.second-run",
        "demo.step",
        "demo.status"
      ]
    )
    const [, , first, , , second, , secondRun, , status] = outline
    assert.strictEqual(first?.plan?.changes, 12)
    assert.strictEqual(second?.plan?.changes, 0)
    assert.deepStrictEqual([secondRun?.changes, secondRun?.mutating], [0, 0])
    assert.strictEqual(status?.vms?.length, 4)
    assert.notMatch(result.stdout, /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/)
  }, 120_000)
})
