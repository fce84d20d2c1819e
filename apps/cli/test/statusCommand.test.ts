import { afterEach, assert, describe, it } from "@effect/vitest"
import { parse } from "yaml"
import { ExitCode } from "../src/ExitCode.js"
import { startLab, stopLabs } from "./simLab.js"

afterEach(stopLabs)

describe("homelab status -o json|yaml|wide", () => {
  it("-o json is --json; -o yaml the same document in YAML; -o wide adds what apply would do; --json with -o yaml is a usage error", async () => {
    const lab = await startLab(["pve", "still-fawn"], { imagePresent: true })
    // not converged yet: nothing exists, the exit code says so in every format
    const [json, alias, yaml, wide, both] = await Promise.all([
      lab.homelab("status", "-o", "json"),
      lab.homelab("status", "--json"),
      lab.homelab("status", "--output", "yaml"),
      lab.homelab("status", "-o", "wide"),
      lab.homelab("status", "--json", "-o", "yaml")
    ])
    for (const run of [json, alias, yaml, wide]) assert.strictEqual(run.code, ExitCode.NotConverged, run.stderr)
    const document = JSON.parse(json.stdout)
    assert.deepStrictEqual(document, JSON.parse(alias.stdout))
    assert.deepStrictEqual(parse(yaml.stdout), document)
    assert.deepStrictEqual(
      document.vms.map((r: { vm: string; health: string }) => [r.vm, r.health]),
      [
        ["k3s-vm-pve", "missing"],
        ["k3s-vm-still-fawn", "missing"]
      ]
    )
    const [header, ...rows] = wide.stdout.split("\n")
    assert.match(header ?? "", /^NODE\s+VM\s+VMID\s+STATE\s+HEALTH\s+IP\s+TRANSPORT\s+DETAIL$/)
    assert.match(rows[0] ?? "", /^pve\s+k3s-vm-pve\s+-\s+missing\s+missing\s+-\s+rest\s+\S.*create/)
    assert.strictEqual(both.code, ExitCode.Usage)
    assert.include(both.stderr, "--json and -o yaml contradict each other")
    assert.strictEqual(JSON.parse(both.stdout).error.code, "usage")
  }, 180_000)
})
