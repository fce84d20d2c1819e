import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import ssh2 from "ssh2"

const bin = fileURLToPath(new URL("../dist/bin.js", import.meta.url))

export interface RunResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the built `homelab` bin as a user would, with a controlled environment. */
export const runHomelab = (
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly cwd?: string; readonly timeout?: number } = {}
) =>
  new Promise<RunResult>((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      {
        timeout: options.timeout ?? 30_000,
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...options.env },
        cwd: options.cwd,
        maxBuffer: 32 * 1024 * 1024
      },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr })
      }
    )
  })

/**
 * A HOME folder with an SSH key pair in `.ssh/` (`id_ed25519` and, when asked, `id_rsa`, both ed25519 keys in
 * OpenSSH format, as ssh-keygen writes them); `passphrase` encrypts the private keys (one bcrypt round: the tests
 * check how an encrypted key is reported, not the key derivation's cost).
 */
export const homeWithKeys = (
  options: { readonly names?: ReadonlyArray<string>; readonly passphrase?: string } = {}
) => {
  const home = mkdtempSync(path.join(os.tmpdir(), "homelab-cli-home-"))
  const ssh = path.join(home, ".ssh")
  mkdirSync(ssh)
  for (const name of options.names ?? ["id_ed25519"]) {
    const pair = ssh2.utils.generateKeyPairSync(
      "ed25519",
      options.passphrase === undefined ? {} : { passphrase: options.passphrase, cipher: "aes256-ctr", rounds: 1 }
    )
    writeFileSync(path.join(ssh, name), pair.private, { mode: 0o600 })
    writeFileSync(path.join(ssh, `${name}.pub`), `${pair.public} me@laptop\n`)
  }
  return home
}
