import { execFile } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import pkg from "../package.json" with { type: "json" }
import { homeWithKeys, runHomelab } from "./helpers.js"

describe("homelab bin", () => {
  it("prints its version from package.json and exits 0", async () => {
    const result = await runHomelab(["--version"])
    assert.strictEqual(result.code, 0)
    assert.include(result.stdout, pkg.version)
  })

  it("prints help naming the command and its subcommands, and exits 0", async () => {
    const result = await runHomelab(["--help"])
    assert.strictEqual(result.code, 0)
    assert.include(result.stdout, "homelab.yaml")
    assert.include(result.stdout, "config")
  })

  it("describes every argument of every command in its --help", async () => {
    // the indented lines of one section of a help text (SUBCOMMANDS, ARGUMENTS)
    const section = (help: string, title: string) => {
      const lines = help.split("\n")
      const start = lines.indexOf(title)
      if (start < 0) return []
      const end = lines.findIndex((line, i) => i > start && !line.startsWith("  "))
      return lines.slice(start + 1, end < 0 ? undefined : end).filter((line) => line.trim() !== "")
    }
    const undescribed: Array<string> = []
    const walk = async (command: ReadonlyArray<string>): Promise<void> => {
      const help = (await runHomelab([...command, "--help"])).stdout
      // `  name type    description`: an argument without a description ends after its type
      for (const line of section(help, "ARGUMENTS")) {
        if (line.trim().split(/\s+/u).length <= 2) undescribed.push(`homelab ${command.join(" ")}: ${line.trim()}`)
      }
      for (const line of section(help, "SUBCOMMANDS")) await walk([...command, line.trim().split(/\s+/u)[0] as string])
    }
    await walk([])
    assert.deepStrictEqual(undescribed, [])
  }, 60_000)

  // Which of the CLI's dist files a run loads: a resolve hook (preloaded) prints each on stderr.
  const loadedFiles = async (args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
    const hook = path.join(mkdtempSync(path.join(os.tmpdir(), "homelab-bin-")), "hook.mjs")
    writeFileSync(
      hook,
      'import { registerHooks } from "node:module"\n' +
        "registerHooks({ resolve(s, c, next) { const r = next(s, c); " +
        'if (r.url.includes("/dist/")) process.stderr.write("loaded " + r.url.split("/").pop() + "\\n"); return r } })\n'
    )
    const bin = fileURLToPath(new URL("../dist/bin.js", import.meta.url))
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ["--import", hook, bin, ...args], {
      env: { PATH: process.env.PATH ?? "", ...env }
    })
    return { stdout, loaded: [...stderr.matchAll(/^loaded (\S+)$/gm)].map((m) => m[1]) }
  }

  it("answers --version and --help, plain and coloured, as the CLI does, without loading it", async () => {
    const main = fileURLToPath(new URL("../dist/main.js", import.meta.url))
    for (const flag of ["--version", "-v", "--help", "-h"])
      for (const env of [{ NO_COLOR: "1" }, { FORCE_COLOR: "1" }]) {
        const fast = await loadedFiles([flag], env)
        const full = await promisify(execFile)(process.execPath, [main, flag], { env: { ...process.env, ...env } })
        assert.strictEqual(fast.stdout, full.stdout, `${flag} ${JSON.stringify(env)}`)
        assert.deepStrictEqual(fast.loaded, ["bin.js"], `${flag} loads nothing but bin.js`)
      }
    // anything else loads the CLI
    const help = await loadedFiles(["plan", "--help"])
    assert.include(help.loaded, "main.js")
  })

  it("checks the SSH key of homelab.yaml without loading ssh2's client, which only a connection loads", async () => {
    const dist = fileURLToPath(new URL("../dist/", import.meta.url))
    // the bundle names each CommonJS module it holds by its path
    const holdsSshClient = (file: string) => readFileSync(path.join(dist, file), "utf8").includes("ssh2/lib/client.js")
    assert.isNotEmpty(
      readdirSync(dist).filter((f) => f.endsWith(".js") && holdsSshClient(f)),
      "the bundle holds it"
    )
    const example = fileURLToPath(new URL("../../../packages/reconcile-core/homelab.example.yaml", import.meta.url))
    const check = await loadedFiles(["config", "check", "--config", example], {
      HOME: homeWithKeys(),
      PROXMOX_TOKEN_SECRET: "0b6c3e2a-1111-2222-3333-444455556666"
    })
    assert.include(check.stdout, "ssh.privateKey ~/.ssh/id_ed25519: ssh-ed25519 private key")
    assert.deepStrictEqual(
      check.loaded.filter((file) => file !== undefined && holdsSshClient(file)),
      []
    )
  })

  it("is ASCII, file by file (Node reads such a file into a one-byte string, in half the time)", () => {
    const dist = fileURLToPath(new URL("../dist/", import.meta.url))
    const files = readdirSync(dist).filter((f) => f.endsWith(".js"))
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the range is every non-ASCII character
    const nonAscii = files.filter((f) => /[^\x00-\x7f]/u.test(readFileSync(path.join(dist, f), "utf8")))
    assert.isNotEmpty(files)
    assert.deepStrictEqual(nonAscii, [])
  })

  it("rejects an unknown flag with a non-zero exit", async () => {
    const result = await runHomelab(["--no-such-flag"])
    assert.notStrictEqual(result.code, 0)
  })
})
