import { afterEach, assert, describe, it } from "@effect/vitest"
import { ExitCode } from "../src/ExitCode.js"
import { runHomelab } from "./helpers.js"
import { startLab, stopLabs } from "./simLab.js"

afterEach(stopLabs)

describe("homelab main", () => {
  it("--verbose logs go to stderr: stdout keeps --json's one document, also when the command fails", async () => {
    const lab = await startLab(["pve"], { imagePresent: true })
    const wrongSecret = { ...lab.env, PROXMOX_TOKEN_SECRET: "11111111-2222-3333-4444-555555555555" }
    const [status, refused] = await Promise.all([
      lab.homelab("status", "--json", "--verbose"),
      runHomelab(["--config", lab.config, "plan", "--json", "--verbose"], { env: wrongSecret })
    ])
    assert.strictEqual(status.code, ExitCode.NotConverged, status.stderr)
    assert.deepStrictEqual(
      JSON.parse(status.stdout).vms.map((r: { vm: string }) => r.vm),
      ["k3s-vm-pve"]
    )
    assert.match(status.stderr, /DEBUG .*proxmox: rest GET \/cluster\/resources/)
    // a failure's error object is what stdout holds, not log lines
    assert.strictEqual(refused.code, ExitCode.Proxmox, refused.stderr)
    assert.strictEqual(JSON.parse(refused.stdout).error.code, "proxmox")
    assert.match(refused.stderr, /DEBUG .*proxmox: rest GET \/cluster\/resources/)
  }, 120_000)
})
