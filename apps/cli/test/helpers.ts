import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { generateKeyPair } from "@homelab/ssh/testing"

const bin = fileURLToPath(new URL("../dist/bin.js", import.meta.url))

export interface RunResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface Running {
  readonly child: ChildProcess
  /** The exit code (null when a signal ended it), the signal, and everything printed. */
  readonly done: Promise<RunResult & { readonly signal: NodeJS.Signals | null }>
  /** stdout and stderr so far. */
  readonly output: () => string
}

/**
 * Starts the built `homelab` bin as a user would, with a controlled environment (PATH and HOME from this process,
 * then `env`); the caller may signal it. After `timeout` ms (default 30 s) it is killed (a safety net, not a wait).
 */
export const spawnHomelab = (
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly cwd?: string; readonly timeout?: number } = {}
): Running => {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...options.env },
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString()
  })
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString()
  })
  const timer = setTimeout(() => child.kill("SIGTERM"), options.timeout ?? 30_000)
  const done = new Promise<RunResult & { signal: NodeJS.Signals | null }>((resolve) => {
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
  return { child, done, output: () => stdout + stderr }
}

/** Runs the built `homelab` bin to its end (see `spawnHomelab`). */
export const runHomelab = (
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly cwd?: string; readonly timeout?: number } = {}
): Promise<RunResult> => spawnHomelab(args, options).done

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
    // generateKeyPair retries ssh2's generator, which now and then writes an ed25519 key nobody can read
    const pair = generateKeyPair("ed25519", { passphrase: options.passphrase })
    writeFileSync(path.join(ssh, name), pair.private, { mode: 0o600 })
    writeFileSync(path.join(ssh, `${name}.pub`), `${pair.public} me@laptop\n`)
  }
  return home
}
