// biome-ignore-all lint/suspicious/noTemplateCurlyInString: homelab.yaml ${VAR} references in expected text
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { ExitCode } from "../src/ExitCode.js"
import { homeWithKeys, runHomelab } from "./helpers.js"

const secret = "0b6c3e2a-1111-2222-3333-444455556666"

/** A homelab.yaml in a fresh folder; `extra` lines are appended (they may add sections). */
const writeConfig = (extra: Array<string>, options: { readonly endpoint?: string; readonly tls?: string } = {}) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "homelab-cli-"))
  const file = path.join(dir, "homelab.yaml")
  writeFileSync(
    file,
    [
      "proxmox:",
      `  endpoint: ${options.endpoint ?? "https://pve.lan:8006"}`,
      ...(options.tls === undefined ? [] : [`  tls: ${options.tls}`]),
      '  auth: { tokenId: root@pam!homelab, secret: "${PROXMOX_TOKEN_SECRET}" }',
      "image: { url: https://example.invalid/noble.img }",
      "nodes: [{ name: pve }]",
      ...extra
    ].join("\n")
  )
  return { dir, file }
}

describe("config check verifies every file homelab.yaml names", () => {
  it("names every broken file at once, with what to do, and exits 3 (text and --json)", async () => {
    const home = homeWithKeys()
    const { dir, file } = writeConfig([
      "ssh: { privateKey: ./missing_key, knownHosts: { mode: strict, file: ./known_hosts } }",
      "vm: { sshKeys: [~/.ssh/id_ed25519.pub, ./private.pub, ./empty.pub] }",
      "k3s: { server: { host: 10.0.0.2 }, airgap: ./airgap }"
    ])
    writeFileSync(
      path.join(dir, "private.pub"),
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    writeFileSync(path.join(dir, "empty.pub"), "# nothing here\n")
    mkdirSync(path.join(dir, "airgap"))
    writeFileSync(path.join(dir, "airgap", "k3s"), "")
    const env = { HOME: home, PROXMOX_TOKEN_SECRET: secret }
    const result = await runHomelab(["config", "check", "--config", file], { env })
    assert.strictEqual(result.code, ExitCode.Config, result.stdout)
    const lines = result.stderr.split("\n").filter((line) => /^ {4}[a-z]/u.test(line))
    // each under the heading line, which is indented under ERROR
    assert.deepStrictEqual(lines, [
      `    ssh.privateKey: cannot read ${dir}/missing_key: no such file (create one with \`ssh-keygen -t ed25519\`, or point ssh.privateKey at your key)`,
      `    ssh.knownHosts.file: cannot read ${dir}/known_hosts: no such file (strict mode needs the nodes' keys in it: add them with ssh-keyscan, or use mode: accept-new)`,
      `    vm.sshKeys[1]: ${dir}/private.pub holds a private key; name the .pub file next to it`,
      `    vm.sshKeys[2]: ${dir}/empty.pub is not a public key file (one key per line: ssh-ed25519 AAAA... comment)`,
      `    k3s.airgap: ${dir}/airgap has no install.sh (it needs the k3s binary and install.sh)`
    ])
    assert.include(result.stderr, "\n  homelab.yaml: 5 problems with the files it names\n")

    const json = await runHomelab(["config", "check", "--config", file, "--json"], { env })
    assert.strictEqual(json.code, ExitCode.Config)
    const document = JSON.parse(json.stdout)
    assert.strictEqual(document.error.code, "config-files")
    assert.strictEqual(document.error.exitCode, ExitCode.Config)
    assert.include(document.error.message, "ssh.privateKey: cannot read")
  })

  it("reports a passphrase-protected key without ssh.passphrase, a wrong passphrase, and a public key as such", async () => {
    const home = homeWithKeys({ passphrase: "open sesame" })
    const run = (extra: Array<string>, env: Record<string, string> = {}) =>
      runHomelab(["config", "check", "--config", writeConfig(extra).file], {
        env: { HOME: home, PROXMOX_TOKEN_SECRET: secret, ...env }
      })

    const withPassphrase = ['ssh: { passphrase: "${SSH_KEY_PASSPHRASE}" }']
    const [noPassphrase, wrong, right, publicKey] = await Promise.all([
      run([]),
      run(withPassphrase, { SSH_KEY_PASSPHRASE: "not it" }),
      run(withPassphrase, { SSH_KEY_PASSPHRASE: "open sesame" }),
      run(["ssh: { privateKey: ~/.ssh/id_ed25519.pub }"])
    ])
    assert.strictEqual(noPassphrase.code, ExitCode.Config)
    assert.include(
      noPassphrase.stderr,
      `ssh.privateKey: ${home}/.ssh/id_ed25519 is protected by a passphrase and ssh.passphrase is not set (write passphrase: \${SSH_KEY_PASSPHRASE} under ssh: and export SSH_KEY_PASSPHRASE)`
    )
    assert.strictEqual(wrong.code, ExitCode.Config)
    assert.include(wrong.stderr, `ssh.passphrase does not decrypt ssh.privateKey ${home}/.ssh/id_ed25519`)
    assert.notInclude(wrong.stderr, "not it")
    assert.strictEqual(right.code, 0, right.stderr)
    assert.include(right.stdout, "ssh.privateKey ~/.ssh/id_ed25519: ssh-ed25519 private key (decrypted)")
    assert.strictEqual(publicKey.code, ExitCode.Config)
    assert.include(publicKey.stderr, `ssh.privateKey: ${home}/.ssh/id_ed25519.pub is a public key`)
  })

  it("a CA file that holds no certificate is named", async () => {
    const { dir, file } = writeConfig([], { tls: "{ ca: ./ca.pem }" })
    writeFileSync(path.join(dir, "ca.pem"), "not a certificate\n")
    const result = await runHomelab(["config", "check", "--config", file], {
      env: { HOME: homeWithKeys(), PROXMOX_TOKEN_SECRET: secret }
    })
    assert.strictEqual(result.code, ExitCode.Config)
    assert.include(result.stderr, `proxmox.tls.ca: ${dir}/ca.pem holds no PEM certificate`)
  })

  it("apply stops at a missing private key with exit 3, before contacting any node", async () => {
    // The endpoint is a closed port: had apply got as far as the API, it would fail there with exit 4.
    const { file } = writeConfig(["ssh: { privateKey: ./missing_key }"], { endpoint: "https://127.0.0.1:9" })
    const result = await runHomelab(["apply", "--config", file], {
      env: { HOME: homeWithKeys(), PROXMOX_TOKEN_SECRET: secret }
    })
    assert.strictEqual(result.code, ExitCode.Config, result.stderr)
    assert.include(result.stderr, "ssh.privateKey: cannot read")
    assert.notInclude(result.stderr, "proxmox.auth.tokenId")
  })
})
