import { afterEach, assert, describe, it } from "@effect/vitest"
import { ExitCode } from "../../src/ExitCode.js"
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
})
