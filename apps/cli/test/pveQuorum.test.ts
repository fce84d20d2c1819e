/**
 * A Proxmox cluster without quorum (two nodes, one off), end to end through the built `homelab`: plan says so once,
 * with the way back, and blocks the writes PVE would refuse; apply writes no guest config; with the node back, apply
 * converges.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { ExitCode } from "../src/ExitCode.js"
import { mutating, startLab, stopLabs } from "./simLab.js"

afterEach(stopLabs)

const show = (r: { readonly stdout: string; readonly stderr: string }) => `${r.stdout}\n${r.stderr}`

describe("homelab on a Proxmox cluster without quorum", () => {
  it("two nodes, one off: plan is blocked, saying once that the cluster has no quorum and how to recover; apply creates and starts nothing (exit 5); with the node back it converges", async () => {
    const lab = await startLab(["n1", "n2"], { imagePresent: true })
    lab.sim.setNodeOnline("n2", false)

    const plan = await lab.homelab("plan", "--detailed-exitcode")
    assert.strictEqual(plan.code, ExitCode.Error, show(plan))
    const said = "the Proxmox cluster has no quorum: 1 of 2 nodes online (online: n1; offline: n2)"
    assert.strictEqual(plan.stdout.split(said).length - 1, 1, show(plan))
    assert.include(plan.stdout, "Not done until it has: create VM k3s-vm-n1 on n1", show(plan))
    assert.include(plan.stdout, "[pve.no-quorum]", show(plan))
    assert.include(plan.stdout, "fix: bring n2 back", show(plan))
    assert.include(plan.stdout, "`pvecm expected 1` on n1", show(plan))
    assert.include(plan.stdout, "node 'n2' is offline", show(plan))

    const apply = await lab.homelab("apply", "--yes")
    assert.strictEqual(apply.code, ExitCode.NotConverged, show(apply))
    assert.deepStrictEqual(
      mutating(lab.sim).map((r) => `${r.method} ${r.path}`),
      [],
      show(apply)
    )
    assert.notInclude(apply.stdout, "no quorum?", show(apply))

    lab.sim.setNodeOnline("n2", true)
    const back = await lab.homelab("apply", "--yes")
    assert.strictEqual(back.code, ExitCode.Ok, show(back))
  })
})
