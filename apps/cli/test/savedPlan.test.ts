import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { ExitCode } from "../src/ExitCode.js"
import { mutating, pveRequest, startLab, stopLabs, vmsOf, whenState } from "./simLab.js"

afterEach(stopLabs)

describe("homelab plan --out FILE, homelab apply FILE", () => {
  it("applies exactly the saved plan (the file holds no secret); a later saved plan is refused with exit 9, naming what moved and changing nothing, once a VM's config changed or a VM was deleted", async () => {
    const lab = await startLab(["pve", "still-fawn"])
    const file = path.join(lab.dir, "plan.json")
    const planned = await lab.homelab("plan", "--out", file)
    assert.strictEqual(planned.code, ExitCode.Ok, planned.stdout + planned.stderr)
    assert.include(
      planned.stdout,
      `Saved the plan (4 change(s)) to ${file}: \`homelab apply ${file}\` applies exactly it`
    )
    const text = fs.readFileSync(file, "utf8")
    assert.notInclude(text, lab.sim.info.auth.tokenSecret)
    const saved = JSON.parse(text)
    assert.deepStrictEqual([saved.format, saved.version], ["homelab-plan", 1])
    assert.match(saved.config.sha256, /^[0-9a-f]{64}$/)
    assert.deepStrictEqual(
      saved.actions.map((a: { type: string; node: string }) => `${a.type} ${a.node}`),
      ["DownloadImage pve", "CreateVm pve", "DownloadImage still-fawn", "CreateVm still-fawn"]
    )
    assert.deepStrictEqual(vmsOf(lab.sim), [], "plan --out changes nothing")

    const applied = await lab.homelab("apply", file)
    assert.strictEqual(applied.code, ExitCode.Ok, applied.stdout + applied.stderr)
    assert.include(applied.stdout, "Applied 4 of 4 change(s).")
    assert.deepStrictEqual(
      vmsOf(lab.sim)
        .map((v) => v.name)
        .sort(),
      ["k3s-vm-pve", "k3s-vm-still-fawn"]
    )

    // a plan of the converged lab, then someone edits a VM's config: its digest moves
    assert.strictEqual((await lab.homelab("plan", "--out", file)).code, ExitCode.Ok)
    const pve = vmsOf(lab.sim).find((v) => v.name === "k3s-vm-pve") as { vmid: number }
    await pveRequest(lab.sim, "PUT", `/nodes/pve/qemu/${pve.vmid}/config`, { description: "edited by hand" })
    lab.sim.clearRequests()
    const edited = await lab.homelab("apply", file)
    assert.strictEqual(edited.code, ExitCode.PlanStale, edited.stdout + edited.stderr)
    assert.include(
      edited.stderr,
      `${file}: the lab changed since the plan was made, so it is not applied (nothing was changed):`
    )
    assert.match(edited.stderr, new RegExp(`- VM ${pve.vmid} k3s-vm-pve on pve changed: digest \\w{12} → \\w{12}\\n`))
    assert.include(edited.stderr, `homelab plan --out ${file}`)
    assert.deepStrictEqual(mutating(lab.sim), [])

    // a new plan, then a VM is deleted behind homelab's back
    assert.strictEqual((await lab.homelab("plan", "--out", file)).code, ExitCode.Ok)
    const fawn = vmsOf(lab.sim).find((v) => v.name === "k3s-vm-still-fawn") as { vmid: number }
    lab.sim.setVmStatus(fawn.vmid, { status: "stopped", qmpstatus: "stopped" })
    await pveRequest(lab.sim, "DELETE", `/nodes/still-fawn/qemu/${fawn.vmid}`)
    await whenState(() => !vmsOf(lab.sim).some((v) => v.vmid === fawn.vmid))
    lab.sim.clearRequests()
    const deleted = await lab.homelab("apply", file)
    assert.strictEqual(deleted.code, ExitCode.PlanStale, deleted.stdout + deleted.stderr)
    assert.include(deleted.stderr, `- VM ${fawn.vmid} k3s-vm-still-fawn on still-fawn disappeared`)
    assert.include(deleted.stderr, "- the plan now also holds: create VM k3s-vm-still-fawn on still-fawn")
    assert.deepStrictEqual(mutating(lab.sim), [])

    // the plan made now is applied
    assert.strictEqual((await lab.homelab("plan", "--out", file)).code, ExitCode.Ok)
    const again = await lab.homelab("apply", file)
    assert.strictEqual(again.code, ExitCode.Ok, again.stdout + again.stderr)
  }, 300_000)

  it("refuses a plan made from another homelab.yaml (exit 9); a file that is no saved plan, or --only with one, is a usage error (exit 2); under --json the stream ends with the error and a summary", async () => {
    const lab = await startLab(["pve"])
    const file = path.join(lab.dir, "plan.json")
    assert.strictEqual((await lab.homelab("plan", "--out", file)).code, ExitCode.Ok)
    lab.rewrite("safety:\n  maxRecreatePerRun: 2")
    const other = await lab.homelab("apply", file)
    assert.strictEqual(other.code, ExitCode.PlanStale, other.stderr)
    assert.match(
      other.stderr,
      /the plan was made from another homelab\.yaml \(SHA-256 \w{12}; .*homelab\.yaml is \w{12} now\)/
    )
    const json = await lab.homelab("apply", "--json", file)
    assert.strictEqual(json.code, ExitCode.PlanStale)
    const [error, summary] = json.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l))
    assert.deepInclude(error, { type: "error" })
    assert.strictEqual(error.error.code, "plan-stale")
    assert.deepInclude(summary, { type: "summary", exitCode: ExitCode.PlanStale, code: "plan-stale", applied: false })

    const bogus = path.join(lab.dir, "bogus.json")
    fs.writeFileSync(bogus, JSON.stringify({ format: "homelab-plan", version: 2 }))
    const newer = await lab.homelab("apply", bogus)
    assert.strictEqual(newer.code, ExitCode.Usage)
    assert.include(newer.stderr, "it is format version 2, written by a newer homelab; this one reads version 1")

    const missing = await lab.homelab("apply", path.join(lab.dir, "plan.jsn"))
    assert.strictEqual(missing.code, ExitCode.Usage)
    assert.include(missing.stderr, `cannot read the saved plan ${path.join(lab.dir, "plan.jsn")}: no such file\n`)

    const only = await lab.homelab("apply", "--only", "pve", file)
    assert.strictEqual(only.code, ExitCode.Usage)
    assert.include(only.stderr, "a saved plan carries its own --only and --prune")
    assert.deepStrictEqual(vmsOf(lab.sim), [])
  }, 180_000)
})
