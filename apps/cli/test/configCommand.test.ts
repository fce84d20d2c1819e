// biome-ignore-all lint/suspicious/noTemplateCurlyInString: homelab.yaml ${VAR} references in expected text
import { mkdtempSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { parse as parseYaml } from "yaml"
import { ExitCode } from "../src/ExitCode.js"
import { homeWithKeys, runHomelab } from "./helpers.js"

const example = fileURLToPath(new URL("../../../packages/reconcile-core/homelab.example.yaml", import.meta.url))
const seedToolEnv = fileURLToPath(
  new URL("../../../packages/reconcile-core/test/config/fixtures/seed-tool-example.env", import.meta.url)
)
const secret = "0b6c3e2a-1111-2222-3333-444455556666"

const tempDir = () => mkdtempSync(path.join(os.tmpdir(), "homelab-cli-"))

describe("homelab config", () => {
  it("check: a missing file says what to do and exits with the config code", async () => {
    const result = await runHomelab(["config", "check"], { cwd: tempDir() })
    assert.strictEqual(result.code, ExitCode.Config)
    assert.include(result.stderr, "homelab.yaml: no such file")
    assert.include(result.stderr, "import-env")
  })

  it("check: a missing secret variable names the variable and the line, never a value", async () => {
    const result = await runHomelab(["config", "check", "--config", example], { env: { HOME: homeWithKeys() } })
    assert.strictEqual(result.code, ExitCode.Config)
    assert.include(result.stderr, "PROXMOX_TOKEN_SECRET")
    assert.match(result.stderr, /homelab\.example\.yaml:\d+:\d+ proxmox\.auth\.secret/)
  })

  it("check: a valid config is summarised with the files it checked; --json never contains the secret", async () => {
    const env = { HOME: homeWithKeys(), PROXMOX_TOKEN_SECRET: secret }
    const text = await runHomelab(["config", "check", "--config", example], { env })
    assert.strictEqual(text.code, 0, text.stderr)
    assert.include(text.stdout, "valid")
    assert.include(text.stdout, "  ssh.privateKey ~/.ssh/id_ed25519: ssh-ed25519 private key")
    assert.include(text.stdout, "  vm.sshKeys[0] ~/.ssh/id_ed25519.pub: 1 public key(s)")
    const json = await runHomelab(["config", "check", "--config", example, "--json"], { env })
    assert.strictEqual(json.code, 0, json.stderr)
    const parsed = JSON.parse(json.stdout)
    assert.isTrue(parsed.ok)
    assert.notInclude(json.stdout, secret)
  })

  it("check: an invalid value is reported with path, line and a suggestion for a typo", async () => {
    const file = path.join(tempDir(), "homelab.yaml")
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
    // every line of the message is indented under ERROR, not only the first
    const message = result.stderr
      .slice(result.stderr.indexOf("ERROR\n") + "ERROR\n".length)
      .trimEnd()
      .split("\n")
    assert.isAbove(message.length, 1)
    for (const line of message) assert.match(line, /^ {2}\S/u)
  })

  it("check: a YAML alias bomb (billion laughs, 9 x 9) is rejected with exit 3, naming the problem", async () => {
    const levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for (const [i, name] of [..."bcdefghi"].entries()) {
      levels.push(`${name}: &${name} [${Array.from({ length: 9 }, () => `*${"abcdefgh"[i]}`).join(", ")}]`)
    }
    const file = path.join(tempDir(), "homelab.yaml")
    writeFileSync(file, `${levels.join("\n")}\nproxmox: *i\n`)
    const result = await runHomelab(["config", "check", "--config", file], { timeout: 60_000 })
    assert.strictEqual(result.code, ExitCode.Config, result.stderr)
    assert.include(result.stderr, "alias bomb")
    assert.include(result.stderr, "expected YAML whose aliases (*name) expand to at most 10000 values in all")
  })

  it("check: vm.user must be a Linux user name; the field and the rule are named", async () => {
    const file = path.join(tempDir(), "homelab.yaml")
    writeFileSync(
      file,
      [
        "proxmox:",
        "  endpoint: https://pve.lan:8006",
        "  auth: { tokenId: root@pam!homelab, secret: x }",
        "image: { url: https://example.invalid/noble.img }",
        "nodes: [{ name: pve }]",
        'vm: { user: "ubuntu; touch /tmp/pwned" }'
      ].join("\n")
    )
    const result = await runHomelab(["config", "check", "--config", file], { env: { HOME: homeWithKeys() } })
    assert.strictEqual(result.code, ExitCode.Config)
    assert.include(
      result.stderr,
      "homelab.yaml:6:13 vm.user: expected a Linux user name: a lowercase letter or _, then lowercase letters, digits, _ or - (at most 31 characters)"
    )
  })

  it("check: a static VM address that cannot work exits 3, naming the field, its line, the value and the fix", async () => {
    const file = path.join(tempDir(), "homelab.yaml")
    writeFileSync(
      file,
      [
        "proxmox:",
        "  endpoint: https://pve.lan:8006",
        "  auth: { tokenId: root@pam!homelab, secret: x }",
        "image: { url: https://example.invalid/noble.img }",
        "nodes:",
        "  - name: pve",
        "    address: 10.0.0.2",
        '    vms: [{ ipConfig: "ip=10.0.0.2/24,gw=10.0.0.1" }, { name: web, ipConfig: "ip=10.0.0.255/24,gw=192.168.9.1" }]',
        "k3s: { role: server }",
        'vm: { nameTemplate: "K3S-{node}" }'
      ].join("\n")
    )
    const result = await runHomelab(["config", "check", "--config", file], { env: { HOME: homeWithKeys() } })
    assert.strictEqual(result.code, ExitCode.Config, result.stdout + result.stderr)
    for (const line of [
      "homelab.yaml:8:23 nodes[0].vms[0].ipConfig: expected a static address no PVE node uses",
      "found 10.0.0.2 for VM K3S-pve, the address of PVE node pve (nodes[0].address)",
      "give the VM an address of its own in nodes[0].vms[0].ipConfig",
      "homelab.yaml:8:78 nodes[0].vms[1].ipConfig: expected an ip that is a host address of its subnet",
      "ip=10.0.0.255/24: 10.0.0.255 is the broadcast address of 10.0.0.0/24",
      "gw=192.168.9.1, outside 10.0.0.0/24",
      "homelab.yaml:8:11 nodes[0].vms[0]: expected a lower-case VM name with k3s",
      'name the VM "k3s-pve" (nodes[].vms[].name), or write vm.nameTemplate in lower case'
    ]) {
      assert.include(result.stderr, line)
    }
  })

  it("check: a secret written in homelab.yaml is valid but warned about, one line per field, never shown", async () => {
    const file = path.join(tempDir(), "homelab.yaml")
    const password = "hunter2-in-the-file"
    writeFileSync(
      file,
      [
        "proxmox:",
        "  endpoint: https://pve.lan:8006",
        `  auth: { tokenId: root@pam!homelab, secret: ${secret} }`,
        "image: { url: https://example.invalid/noble.img }",
        "nodes: [{ name: pve }]",
        `vm: { password: "${password}" }`,
        'k3s: { role: server, token: "${K3S_TOKEN}" }'
      ].join("\n")
    )
    const env = { HOME: homeWithKeys(), K3S_TOKEN: "from-the-environment" }
    const [text, json] = await Promise.all([
      runHomelab(["config", "check", "--config", file], { env }),
      runHomelab(["config", "check", "--config", file, "--json"], { env })
    ])
    assert.strictEqual(text.code, 0, text.stderr)
    const warnings = text.stderr.split("\n").filter((line) => line.startsWith("warning: "))
    assert.deepStrictEqual(warnings, [
      "warning: homelab.yaml:3:46 proxmox.auth.secret: a secret written in the file: write ${PROXMOX_TOKEN_SECRET} there and export PROXMOX_TOKEN_SECRET",
      "warning: homelab.yaml:6:17 vm.password: a secret written in the file: write ${CLOUD_PASSWORD} there and export CLOUD_PASSWORD"
    ])
    assert.strictEqual(json.code, 0, json.stderr)
    assert.lengthOf(JSON.parse(json.stdout).warnings, 2)
    for (const output of [text.stdout, text.stderr, json.stdout, json.stderr]) {
      assert.notInclude(output, secret)
      assert.notInclude(output, password)
    }
  })

  it("check: ssh.user other than root is warned about where pvesh/qm over SSH may run, not an error", async () => {
    const dir = tempDir()
    const write = (name: string, extra: ReadonlyArray<string>) => {
      const file = path.join(dir, name)
      writeFileSync(
        file,
        [
          "proxmox:",
          "  endpoint: https://pve.lan:8006",
          '  auth: { tokenId: root@pam!homelab, secret: "${PROXMOX_TOKEN_SECRET}" }',
          ...extra,
          "ssh: { user: admin }",
          "nodes: [{ name: pve }]"
        ].join("\n")
      )
      return file
    }
    const env = { HOME: homeWithKeys(), PROXMOX_TOKEN_SECRET: secret }
    const [fallback, iso, off] = await Promise.all(
      [
        write("fallback.yaml", ["image: { url: https://example.invalid/noble.img }"]),
        write("iso.yaml", ["  fallback: ssh", "image: { url: https://example.invalid/noble.img, content: iso }"]),
        write("off.yaml", ["  fallback: off", "image: { url: https://example.invalid/noble.img }"])
      ].map((file) => runHomelab(["config", "check", "--config", file], { env }))
    )
    assert.strictEqual(fallback?.code, 0, fallback?.stderr)
    assert.include(
      fallback?.stderr,
      'warning: fallback.yaml:5:14 ssh.user: "admin", not root: pvesh/qm over SSH need root; the fallback to them when a node\'s API fails (proxmox.fallback: ssh) would fail (labs whose API answers never use it): set ssh.user: root, or proxmox.fallback: off'
    )
    assert.strictEqual(iso?.code, 0, iso?.stderr)
    assert.include(iso?.stderr, "warning: iso.yaml:6:14 ssh.user:")
    assert.include(iso?.stderr, "creating the VMs from an iso image (image.content: iso) goes over SSH as root")
    assert.strictEqual(off?.code, 0, off?.stderr)
    assert.notInclude(off?.stderr, "warning:")
  })

  it("schema: prints a JSON Schema document", async () => {
    const result = await runHomelab(["config", "schema"])
    assert.strictEqual(result.code, 0)
    const schema = JSON.parse(result.stdout)
    assert.strictEqual(schema.$schema, "https://json-schema.org/draft/2020-12/schema")
    assert.property(schema.properties, "nodes")
  })

  it("import-env: the seed tool's example .env becomes a homelab.yaml that config check accepts", async () => {
    const dir = tempDir()
    const result = await runHomelab(["config", "import-env", seedToolEnv])
    assert.strictEqual(result.code, 0, result.stderr)
    assert.include(result.stdout, "${PROXMOX_TOKEN_SECRET}")
    assert.notInclude(result.stdout, "5d1a9b0c")
    assert.notInclude(result.stdout, "changeme")
    assert.include(result.stderr, "warning: proxmox.tls.insecure: true, as the seed tool did not check certificates")
    const file = path.join(dir, "homelab.yaml")
    writeFileSync(file, result.stdout)
    // the seed tool's keys: ~/.ssh/id_rsa for the nodes, ~/.ssh/id_rsa.pub for the VMs
    const env = { HOME: homeWithKeys({ names: ["id_rsa"] }), PROXMOX_TOKEN_SECRET: secret, CLOUD_PASSWORD: "pw" }
    const check = await runHomelab(["config", "check", "--config", file], { env })
    assert.strictEqual(check.code, 0, check.stderr)
    assert.include(check.stdout, "valid. 3 node(s), 3 VM(s), image local:import/noble-server-cloudimg-amd64.qcow2")
    assert.include(check.stdout, "(TLS: insecure, fallback: ssh)")
    assert.include(check.stdout, "  ssh.privateKey ~/.ssh/id_rsa: ssh-ed25519 private key")
  })

  it("import-env --json: the same homelab.yaml as one JSON document (no YAML), warnings still on stderr", async () => {
    const [text, json] = await Promise.all([
      runHomelab(["config", "import-env", seedToolEnv]),
      runHomelab(["config", "import-env", seedToolEnv, "--json"])
    ])
    assert.strictEqual(json.code, 0, json.stderr)
    const document = JSON.parse(json.stdout)
    assert.deepStrictEqual(document, parseYaml(text.stdout))
    assert.strictEqual(document.proxmox.auth.secret, "${PROXMOX_TOKEN_SECRET}")
    assert.notInclude(json.stdout, "5d1a9b0c")
    assert.include(json.stderr, "warning: proxmox.tls.insecure: true, as the seed tool did not check certificates")
  })

  it("import-env: a missing .env is a config error naming the file", async () => {
    const result = await runHomelab(["config", "import-env", path.join(tempDir(), "nope.env")])
    assert.strictEqual(result.code, ExitCode.Config)
    assert.include(result.stderr, "nope.env: no such file")
  })
})
