import { mkdtempSync, writeFileSync } from "node:fs"
import os from "node:os"
import path from "node:path"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { labScenario, type SimHandle, startSimPromise } from "@homelab/sim"
import { CommandFailed } from "../src/CommandFailed.js"
import { simConfigYaml } from "../src/commands/demoRun.js"
import { ExitCode } from "../src/ExitCode.js"
import { runHomelab } from "./helpers.js"

describe("CommandFailed", () => {
  it("has a --json form: code named after the exit code unless given, the hint split off the message", () => {
    const fromMessage = new CommandFailed({
      userMessage: "Proxmox: clusterResources: 401 authentication failure\nhint: check proxmox.auth.tokenId",
      exitCode: ExitCode.Proxmox
    })
    assert.deepStrictEqual(fromMessage.document, {
      error: {
        code: "proxmox",
        message: "Proxmox: clusterResources: 401 authentication failure",
        hint: "check proxmox.auth.tokenId",
        node: null,
        exitCode: ExitCode.Proxmox
      }
    })
    const explicit = new CommandFailed({
      userMessage: "pve2 did not converge",
      exitCode: ExitCode.Partial,
      code: "not-converged",
      hint: "homelab plan --only pve2",
      node: "pve2"
    })
    assert.deepStrictEqual(explicit.document.error, {
      code: "not-converged",
      message: "pve2 did not converge",
      hint: "homelab plan --only pve2",
      node: "pve2",
      exitCode: ExitCode.Partial
    })
  })

  it("is headed on stderr by ERROR, or by the state a non-error exit reports", () => {
    const headings = [
      new CommandFailed({ userMessage: "4 change(s).", exitCode: ExitCode.Changes, code: "changes" }),
      new CommandFailed({ userMessage: "unknown node", exitCode: ExitCode.Usage }),
      new CommandFailed({ userMessage: "re-run with --yes", exitCode: ExitCode.NeedsConfirmation }),
      new CommandFailed({ userMessage: "restart those VMs", exitCode: ExitCode.PendingRestart }),
      new CommandFailed({ userMessage: "did not converge", exitCode: ExitCode.NotConverged }),
      new CommandFailed({ userMessage: "blocked", exitCode: ExitCode.Error, code: "blocked" })
    ].map((e) => [e.heading, e.isError])
    assert.deepStrictEqual(headings, [
      ["CHANGES PENDING", false],
      ["ERROR", true],
      ["NEEDS CONFIRMATION", false],
      ["PENDING RESTART", false],
      ["ERROR", true],
      ["ERROR", true]
    ])
  })

  it("under --json an error is a JSON object on stdout as well as text on stderr", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "homelab-cli-"))
    const result = await runHomelab(["status", "--json"], { cwd: dir })
    assert.strictEqual(result.code, ExitCode.Config)
    const document = JSON.parse(result.stdout)
    assert.deepStrictEqual(Object.keys(document.error), ["code", "message", "hint", "node", "exitCode"])
    assert.strictEqual(document.error.code, "config")
    assert.strictEqual(document.error.message, `cannot read config file ${dir}/homelab.yaml: no such file`)
    assert.include(document.error.hint, "homelab config import-env .env > homelab.yaml")
    assert.include(result.stderr, "cannot read config file")
    assert.include(result.stderr, "hint: create one")
    assert.notInclude(result.stdout + result.stderr, "(see above)")
  })

  const running: Array<{ stop: () => Promise<void> }> = []
  afterEach(async () => {
    for (const sim of running.splice(0)) await sim.stop()
  })

  it('apply --json that does not converge: the JSON report on stdout, and nothing says "(see above)"', async () => {
    const sim = (await startSimPromise(
      labScenario(["pve", "still-fawn"], {
        memory: "32G",
        imageSize: "2M",
        ipPool: "127.78.0.10",
        timeScale: 0.02,
        faults: [{ kind: "bridgeMissing", node: "still-fawn", bridge: "vmbr0" }]
      })
    )) as unknown as SimHandle & { stop: () => Promise<void> }
    running.push(sim)
    const dir = mkdtempSync(path.join(os.tmpdir(), "homelab-cli-"))
    const config = path.join(dir, "homelab.yaml")
    writeFileSync(config, simConfigYaml(sim, dir))
    const result = await runHomelab(["apply", "--json", "--config", config], {
      env: { PROXMOX_TOKEN_SECRET: sim.info.auth.tokenSecret, CI: "true" },
      timeout: 60_000
    })
    assert.strictEqual(result.code, ExitCode.Partial, result.stderr)
    const summary = JSON.parse(result.stdout.trimEnd().split("\n").at(-1) as string)
    assert.deepInclude(summary, { type: "summary", exitCode: ExitCode.Partial })
    assert.notInclude(result.stdout, '"error"')
    assert.include(result.stderr, "1 of 2 node(s) did not converge: still-fawn")
    assert.notInclude(result.stdout + result.stderr, "see above")
  }, 90_000)

  it("plan --json refused by Proxmox: the JSON error names the code, the hint and the node", async () => {
    const sim = (await startSimPromise(
      labScenario(["pve"], { memory: "32G", imageSize: "2M", ipPool: "127.78.1.10", timeScale: 0.02 })
    )) as unknown as SimHandle & { stop: () => Promise<void> }
    running.push(sim)
    const dir = mkdtempSync(path.join(os.tmpdir(), "homelab-cli-"))
    const config = path.join(dir, "homelab.yaml")
    writeFileSync(config, simConfigYaml(sim, dir))
    const wrongSecret = "00000000-0000-4000-8000-000000000000"
    const result = await runHomelab(["plan", "--json", "--config", config], {
      env: { PROXMOX_TOKEN_SECRET: wrongSecret, CI: "true" },
      timeout: 60_000
    })
    assert.strictEqual(result.code, ExitCode.Proxmox, result.stderr)
    const { error } = JSON.parse(result.stdout)
    assert.strictEqual(error.code, "proxmox")
    assert.strictEqual(error.exitCode, ExitCode.Proxmox)
    assert.include(error.hint, "proxmox.auth.tokenId")
    assert.notInclude(error.message, "hint:")
    assert.strictEqual(error.node, "pve")
    assert.notInclude(result.stdout + result.stderr, wrongSecret)
  }, 90_000)
})
