/**
 * The end-of-run report of a run whose plan met the quorum guard, end to end through the built `homelab` against the
 * simulator: what the report says is the cluster as the run leaves it, not as the plan saw it, and the exit code is
 * what is actually left.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { reserveLoopbackNet } from "@homelab/sim"
import { ExitCode } from "../src/ExitCode.js"
import { lab, nodes, plain, runningCluster, show, stopLabs, until, v130, vmidOf } from "./k3sLab.js"

afterEach(stopLabs)

describe("homelab apply after the quorum guard refused a rebuild", () => {
  it("chief-horse stopped and pve paused: chief-horse is rebuilt, pve's rebuild is refused at plan time; the report drops the stale 'bring chief-horse back' and says pve is left paused (exit 5, not 7); the next apply rebuilds pve", async () => {
    const subnet = reserveLoopbackNet().net
    const { sim, homelab } = await lab(runningCluster(subnet), subnet)
    const steady = await homelab(["apply", "--yes"]) // the image onto each node; the cluster is as configured
    assert.strictEqual(steady.code, ExitCode.Ok, show(steady))

    // Two server VMs down (default health policy: stopped → recreate, paused → recreate).
    sim.setVmStatus(vmidOf(sim, "chief-horse"), { status: "stopped", qmpstatus: "stopped" })
    await until(
      () => sim.state().k3s.nodes.find((n) => n.name === "k3s-vm-chief-horse")?.ready === "Unknown",
      "chief-horse NotReady"
    )
    sim.setVmStatus(vmidOf(sim, "pve"), { status: "running", qmpstatus: "paused" })

    const plan = await homelab(["plan"])
    assert.match(
      plain(plan.stdout),
      /not rebuilding k3s server k3s-vm-pve: rebuild of k3s-vm-pve would leave 1 of 3 etcd members healthy/
    )

    const run = await homelab(["apply", "--yes"])
    const out = plain(run.stdout + run.stderr)
    // chief-horse was rebuilt and is a Ready server again
    assert.include(nodes(sim), `chief-horse server True ${v130}`, show(run))
    // pve is left paused: its rebuild is for another run; not "every VM in place" (exit 7)
    assert.strictEqual(sim.state().vms.find((v) => v.name === "k3s-vm-pve")?.qmpstatus, "paused")
    assert.strictEqual(run.code, ExitCode.NotConverged, show(run))
    // the end-of-run report (after the plan, which said it then) names pve, why it is left and what to do, and no
    // longer asks to bring chief-horse back
    const report = out.slice(out.indexOf("Applied 2 of 2 change(s)."))
    assert.notInclude(report, "bring k3s-vm-chief-horse back", show(run))
    assert.match(
      report,
      /k3s server k3s-vm-pve was not rebuilt this run: the quorum guard refused it when the run was planned \(it needs rebuilding: VM \d+ \(k3s-vm-pve\) on node pve is paused[^\n]*; now 2 of 3 etcd members stay healthy while k3s-vm-pve is out/,
      show(run)
    )
    assert.include(report, "run apply again", show(run))
    assert.notInclude(report, "Every VM is in place", show(run))

    // The next apply rebuilds pve and converges.
    const next = await homelab(["apply", "--yes"])
    assert.strictEqual(next.code, ExitCode.Ok, show(next))
    assert.deepStrictEqual(
      nodes(sim).filter((n) => n.includes("server")),
      [`chief-horse server True ${v130}`, `pve server True ${v130}`, `still-fawn server True ${v130}`]
    )
  }, 240_000)
})
