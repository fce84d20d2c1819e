import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { ExitCode } from "../src/ExitCode.js"
import { runHomelab } from "./helpers.js"

const example = fileURLToPath(new URL("../../../packages/reconcile-core/homelab.example.yaml", import.meta.url))
const secret = "0b6c3e2a-1111-2222-3333-444455556666"

const withKey = () => {
  const home = mkdtempSync(path.join(os.tmpdir(), "homelab-cli-"))
  const ssh = path.join(home, ".ssh")
  mkdirSync(ssh)
  writeFileSync(path.join(ssh, "id_ed25519.pub"), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdQ me@laptop\n")
  return home
}

describe("homelab config", () => {
  it("check: a missing file says what to do and exits with the config code", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "homelab-cli-"))
    const result = await runHomelab(["config", "check"], { cwd: dir })
    assert.strictEqual(result.code, ExitCode.Config)
    assert.include(result.stderr, "homelab.yaml: no such file")
    assert.include(result.stderr, "import-env")
  })

  it("check: a missing secret variable names the variable and the line, never a value", async () => {
    const result = await runHomelab(["config", "check", "--config", example], { env: { HOME: withKey() } })
    assert.strictEqual(result.code, ExitCode.Config)
    assert.include(result.stderr, "PROXMOX_TOKEN_SECRET")
    assert.match(result.stderr, /homelab\.example\.yaml:\d+:\d+ proxmox\.auth\.secret/)
  })

  it("check: a valid config is summarised; --json never contains the secret", async () => {
    const env = { HOME: withKey(), PROXMOX_TOKEN_SECRET: secret }
    const text = await runHomelab(["config", "check", "--config", example], { env })
    assert.strictEqual(text.code, 0, text.stderr)
    assert.include(text.stdout, "valid")
    const json = await runHomelab(["config", "check", "--config", example, "--json"], { env })
    assert.strictEqual(json.code, 0, json.stderr)
    const parsed = JSON.parse(json.stdout)
    assert.isTrue(parsed.ok)
    assert.notInclude(json.stdout, secret)
  })

  it("check: an invalid value is reported with path, line and a suggestion for a typo", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "homelab-cli-"))
    const file = path.join(dir, "homelab.yaml")
    writeFileSync(
      file,
      [
        "proxmox:",
        "  endpoint: https://pve.lan:8006",
        "  auth: { tokenId: root@pam!homelab, secret: x }",
        "image: { url: https://example.invalid/noble.img }",
        "nodse:",
        "  - name: pve"
      ].join("\n")
    )
    const result = await runHomelab(["config", "check", "--config", file])
    assert.strictEqual(result.code, ExitCode.Config)
    assert.include(result.stderr, "nodes")
    assert.include(result.stderr, "homelab.yaml:5")
  })

  it("schema: prints a JSON Schema document", async () => {
    const result = await runHomelab(["config", "schema"])
    assert.strictEqual(result.code, 0)
    const schema = JSON.parse(result.stdout)
    assert.strictEqual(schema.$schema, "https://json-schema.org/draft/2020-12/schema")
    assert.property(schema.properties, "nodes")
  })

  it("import-env: converts a seed .env with secrets as references", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "homelab-cli-"))
    const file = path.join(dir, ".env")
    writeFileSync(
      file,
      [
        "NODE_1=pve",
        "STORAGE_1=local-lvm",
        "CPU_RATIO_1=0.5",
        "MEMORY_RATIO_1=0.5",
        "NETWORK_IFACES_1=vmbr0",
        "ISO_URL=https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
        "API_TOKEN=root@pam!homelab=0b6c3e2a-1111-2222-3333-444455556666",
        "CLOUD_PASSWORD=hunter2"
      ].join("\n")
    )
    const result = await runHomelab(["config", "import-env", file])
    assert.strictEqual(result.code, 0, result.stderr)
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal ${VAR} reference import-env writes
    assert.include(result.stdout, "${PROXMOX_TOKEN_SECRET}")
    assert.notInclude(result.stdout, "0b6c3e2a-1111")
    assert.notInclude(result.stdout, "hunter2")
    assert.include(result.stdout, "name: pve")
  })
})
