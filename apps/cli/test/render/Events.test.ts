import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { ExitCode } from "../../src/ExitCode.js"
import { runHomelab } from "../helpers.js"
import { startLab, stopLabs } from "../simLab.js"

afterEach(stopLabs)

/** The kinds of the event schema, version 1 (docs/json-events.md). */
const kinds = new Set([
  "plan",
  "action.started",
  "action.progress",
  "action.done",
  "action.failed",
  "action.skipped",
  "notice",
  "confirmation",
  "interrupted",
  "error",
  "summary"
])

interface Line {
  readonly v: number
  readonly type: string
  readonly time: string
  readonly [key: string]: unknown
}

/** Parses stdout line by line: every line must be one JSON object of the schema. */
const parseLines = (stdout: string): Array<Line> =>
  stdout
    .trimEnd()
    .split("\n")
    .map((text, i) => {
      const line = JSON.parse(text) as Line
      assert.strictEqual(line.v, 1, `line ${i + 1}: ${text}`)
      assert.isTrue(kinds.has(line.type), `line ${i + 1}: unknown type ${line.type}`)
      assert.match(line.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      return line
    })

describe("apply --json: NDJSON events", () => {
  it("streams the plan first, each action's start before its end, the SSH fallback as a notice, and a summary last; no secret", async () => {
    const lab = await startLab(["pve", "still-fawn"], {
      scenario: { faults: [{ kind: "apiDown", node: "still-fawn" }] }
    })
    const run = await lab.homelab("apply", "--json")
    assert.strictEqual(run.code, ExitCode.Ok, run.stderr)
    assert.notInclude(run.stdout, lab.sim.info.auth.tokenSecret)
    const lines = parseLines(run.stdout)
    const types = lines.map((l) => l.type)
    // notices may come first (observing the lab); then the plan
    assert.strictEqual(types.filter((t) => t !== "notice")[0], "plan")
    assert.strictEqual(types.at(-1), "summary")
    assert.strictEqual(types.filter((t) => t === "summary").length, 1)

    const plan = lines.find((l) => l.type === "plan") as Line & {
      plan: { changes: number; actions: Array<{ id: string }> }
    }
    assert.strictEqual(plan.plan.changes, 4)
    for (const { id } of plan.plan.actions) {
      const started = lines.findIndex((l) => l.type === "action.started" && l.id === id)
      const done = lines.findIndex((l) => l.type === "action.done" && l.id === id)
      assert.isAbove(started, 0, id)
      assert.isAbove(done, started, id)
    }
    const create = lines.find((l) => l.type === "action.started" && l.action === "CreateVm" && l.node === "pve")
    assert.include(create?.description as string, "create VM k3s-vm-pve on pve")

    const notice = lines.find((l) => l.type === "notice" && l.kind === "FallbackToSsh")
    assert.deepInclude(notice, { source: "proxmox", node: "still-fawn" })
    assert.match(notice?.message as string, /^still-fawn: API unreachable: .* — using SSH \(pvesh\/qm\) for this node$/)

    const summary = lines.at(-1) as Line & {
      outcomes: Array<{ status: string }>
      convergence: { converged: boolean }
    }
    assert.deepInclude(summary, { exitCode: 0, code: "ok", message: null, applied: true })
    assert.deepStrictEqual(
      summary.outcomes.map((o) => o.status),
      ["done", "done", "done", "done"]
    )
    assert.isTrue(summary.convergence.converged)
  }, 180_000)

  it("a run that does not converge ends with a summary naming its exit code and why; an unconfirmed recreate is a confirmation event (--json never prompts)", async () => {
    const lab = await startLab(["pve", "still-fawn"], {
      imagePresent: true,
      scenario: {
        faults: [{ kind: "bridgeMissing", node: "still-fawn", bridge: "vmbr0" }],
        // a VM of ours paused for a day: its recreate is destructive
        vms: [
          {
            vmid: 4242,
            node: "pve",
            name: "k3s-vm-pve",
            status: "running",
            qmpstatus: "paused",
            tags: "homelab-managed",
            uptime: 86_400,
            config: { cores: 2, memory: "2048", agent: "1" }
          }
        ]
      }
    })
    const run = await lab.homelab("apply", "--json")
    assert.strictEqual(run.code, ExitCode.NotConverged, run.stderr)
    const lines = parseLines(run.stdout)
    assert.deepInclude(
      lines.find((l) => l.type === "confirmation"),
      { actions: ["pve:vm:k3s-vm-pve"], confirmed: false, by: "not interactive" }
    )
    assert.deepInclude(
      lines.find((l) => l.type === "action.skipped"),
      { id: "pve:vm:k3s-vm-pve", unconfirmed: true }
    )
    const summary = lines.at(-1) as Line
    assert.deepInclude(summary, { type: "summary", exitCode: ExitCode.NotConverged, code: "not-converged" })
    assert.match(summary.message as string, /^2 of 2 node\(s\) did not converge: pve \(.*still-fawn \(/)
    assert.include(run.stderr, "2 of 2 node(s) did not converge")
    assert.strictEqual(lab.sim.state().vms.find((v) => v.vmid === 4242)?.qmpstatus, "paused")
  }, 180_000)

  it("a run that fails before its summary (no node answers, after the fallback notices) still ends with an error line and a summary carrying the exit code: apply, apply --dry-run, reprovision, destroy", async () => {
    const lab = await startLab(["pve", "still-fawn"])
    // nothing listens on port 1 (the API) or 2 (SSH) of 127.0.0.1
    fs.writeFileSync(
      lab.config,
      fs
        .readFileSync(lab.config, "utf8")
        .replace(/^( {4}api:) .*$/gm, "$1 https://127.0.0.1:1")
        .replace(/^( {4}sshPort:) .*$/gm, "$1 2")
    )
    const runs = await Promise.all([
      lab.homelab("apply", "--json"),
      lab.homelab("apply", "--dry-run", "--json"),
      lab.homelab("reprovision", "pve", "--yes", "--json"),
      lab.homelab("destroy", "--yes", "--json")
    ])
    for (const run of runs) {
      assert.strictEqual(run.code, ExitCode.Proxmox, run.stdout + run.stderr)
      const lines = parseLines(run.stdout)
      assert.deepStrictEqual(
        lines.map((l) => l.type),
        ["notice", "notice", "error", "summary"]
      )
      const [error, summary] = lines.slice(-2) as [Line & { error: Record<string, unknown> }, Line]
      assert.deepInclude(error.error, { code: "proxmox", node: "pve", exitCode: ExitCode.Proxmox })
      assert.match(error.error.message as string, /^Proxmox: cannot read the cluster's state on node pve: /)
      assert.include(error.error.hint as string, "nodes[].sshPort")
      assert.deepInclude(summary, {
        applied: false,
        outcomes: [],
        convergence: null,
        exitCode: ExitCode.Proxmox,
        code: "proxmox",
        message: error.error.message
      })
      assert.include(run.stderr, "Proxmox: cannot read the cluster's state on node pve")
    }
  }, 180_000)

  it("a run that fails before printing anything (a refused token, no homelab.yaml) prints the error line and a summary too", async () => {
    const lab = await startLab(["pve"])
    const wrongSecret = "00000000-0000-4000-8000-000000000000"
    const refused = await runHomelab(["--config", lab.config, "apply", "--json"], {
      env: { ...lab.env, PROXMOX_TOKEN_SECRET: wrongSecret },
      timeout: 60_000
    })
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "homelab-cli-"))
    const missing = await runHomelab(["apply", "--json"], { cwd: empty })
    for (const [run, code, exitCode] of [
      [refused, "proxmox", ExitCode.Proxmox],
      [missing, "config", ExitCode.Config]
    ] as const) {
      assert.strictEqual(run.code, exitCode, run.stdout + run.stderr)
      const lines = parseLines(run.stdout)
      assert.deepStrictEqual(
        lines.map((l) => l.type),
        ["error", "summary"]
      )
      assert.deepInclude(lines[0]?.error as object, { code, exitCode })
      assert.deepInclude(lines[1], { applied: false, outcomes: [], convergence: null, exitCode, code })
    }
    assert.notInclude(refused.stdout + refused.stderr, wrongSecret)
  }, 180_000)
})
