/**
 * The end-of-run report of a run whose plan met the quorum guard, end to end through the built `homelab` against the
 * simulator: what the report says is the cluster as the run leaves it, not as the plan saw it, and the exit code is
 * what is actually left. And the case that is no quorum refusal at all: two of three servers down (one stopped, one
 * paused: a paused guest's etcd member answers nobody), etcd has lost quorum, homelab brings both back.
 */

import * as fs from "node:fs"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { reserveLoopbackNet } from "@homelab/sim"
import { ExitCode } from "../src/ExitCode.js"
import {
  lab,
  nodeMonitorGraceMs,
  nodes,
  plain,
  runningCluster,
  show,
  stopLabs,
  until,
  v130,
  v131,
  vmidOf
} from "./k3sLab.js"
import { untilResourcesCurrent } from "./simLab.js"

afterEach(stopLabs)

describe("homelab apply after the quorum guard refused a server", () => {
  it("chief-horse stopped, k3s.version raised: chief-horse is rebuilt, pve's upgrade is left to the next run at plan time (not 'bring chief-horse back'); the report drops the stale 'bring chief-horse back' and says pve is left for the next run (exit 7: every VM in place); the next apply upgrades", async () => {
    const subnet = reserveLoopbackNet().net
    const { sim, homelab, write, elapse } = await lab(runningCluster(subnet), subnet)
    const steady = await homelab(["apply", "--yes"]) // the image onto each node; the cluster is as configured
    assert.strictEqual(steady.code, ExitCode.Ok, show(steady))

    // chief-horse's VM down (default health policy: stopped → recreate), and an upgrade asked for
    sim.setVmStatus(vmidOf(sim, "chief-horse"), { status: "stopped", qmpstatus: "stopped" })
    elapse(nodeMonitorGraceMs) // its Node is Unknown once the grace period has passed
    assert.strictEqual(sim.state().k3s.nodes.find((n) => n.name === "k3s-vm-chief-horse")?.ready, "Unknown")
    write(v131)

    // the plan says what the run does: it rebuilds chief-horse itself, and leaves pve's upgrade to the next run;
    // nothing needs the user (exit 0, not 1 "blocked")
    const plan = await homelab(["plan"])
    assert.strictEqual(plan.code, ExitCode.Ok, show(plan))
    assert.match(
      plain(plan.stdout),
      /not upgrading k3s server k3s-vm-pve this run: upgrade of k3s-vm-pve would leave 1 of 3 etcd members healthy, quorum needs 2 \(.*\); this run brings k3s-vm-chief-horse back first \(recreate VM \d+ k3s-vm-chief-horse on chief-horse\)/
    )
    // said once, under "Left alone"; pve's verdict points there
    assert.match(plain(plan.stdout), /\n {2}✗ pve +not converged: next run \(see Left alone\)\n/)
    assert.include(
      plain(plan.stdout),
      "fix: run apply again once k3s-vm-chief-horse is a Ready server: the next run can upgrade k3s-vm-pve"
    )
    assert.notInclude(plain(plan.stdout), "bring k3s-vm-chief-horse back to Ready first")
    // the rollout that stops at pve waits for the next run too, not for the user
    assert.include(
      plain(plan.stdout),
      "fix: run apply again once k3s-vm-chief-horse is a Ready server: the next run upgrades k3s-vm-pve and goes on from there"
    )
    assert.notInclude(plain(plan.stdout), "fix what keeps k3s-vm-pve from upgrading")

    const run = await homelab(["apply", "--yes"])
    const out = plain(run.stdout + run.stderr)
    // chief-horse was rebuilt and is a Ready server again (on the version asked for); pve was not upgraded
    assert.include(nodes(sim), `chief-horse server True ${v131}`, show(run))
    assert.include(nodes(sim), `pve server True ${v130}`, show(run))
    // every VM is in place: only k3s work (the upgrade) is left
    assert.strictEqual(run.code, ExitCode.Join, show(run))
    // the end-of-run report (after the plan, which said it then) names pve, why it is left and what to do, and no
    // longer asks to bring chief-horse back
    const report = out.slice(out.indexOf("Applied 2 of 2 change(s)."))
    assert.notInclude(report, "bring k3s-vm-chief-horse back", show(run))
    assert.match(
      report,
      /\[next run\] k3s server k3s-vm-pve was not upgraded this run: the quorum guard refused it when the run was planned; now 2 of 3 etcd members stay healthy while k3s-vm-pve is out/,
      show(run)
    )
    assert.include(report, "run apply again", show(run))
    assert.notInclude(report, "fix what keeps k3s-vm-pve from upgrading", show(run))
    assert.include(report, "run apply again: the next run upgrades k3s-vm-pve and goes on from there", show(run))

    // The next apply upgrades the rest and converges.
    const next = await homelab(["apply", "--yes"])
    assert.strictEqual(next.code, ExitCode.Ok, show(next))
    assert.deepStrictEqual(
      nodes(sim).filter((n) => n.includes("server")),
      [`chief-horse server True ${v131}`, `pve server True ${v131}`, `still-fawn server True ${v131}`]
    )
  }, 240_000)

  it("chief-horse stopped and pve paused: etcd has lost quorum (1 of 3 answers), nothing is refused or rebuilt: chief-horse is started and pve resumed (their disks hold etcd); the cluster is back in the same run (exit 0, no stale 'bring … back'), pve's k3s was not restarted; plan says the run brings them back (exit 0, not blocked)", async () => {
    const subnet = reserveLoopbackNet().net
    const { sim, homelab } = await lab(runningCluster(subnet), subnet)
    const steady = await homelab(["apply", "--yes"])
    assert.strictEqual(steady.code, ExitCode.Ok, show(steady))

    sim.setVmStatus(vmidOf(sim, "chief-horse"), { status: "stopped", qmpstatus: "stopped" })
    sim.setVmStatus(vmidOf(sim, "pve"), { status: "running", qmpstatus: "paused" })
    await untilResourcesCurrent(sim)
    const vms = () => sim.state().vms.map((v) => `${v.vmid} ${v.name}`)
    const before = vms()

    const plan = await homelab(["plan"])
    const planned = plain(plan.stdout)
    assert.match(
      planned,
      /resume VM \d+ k3s-vm-pve on pve .*the k3s cluster cannot be read, so this server is resumed, not rebuilt/
    )
    assert.match(
      planned,
      /start VM \d+ k3s-vm-chief-horse on chief-horse .*the k3s cluster cannot be read, so this server is started, not rebuilt/
    )
    assert.notInclude(planned, "not rebuilding k3s server")
    assert.notInclude(planned, "recreate VM")
    // bringing the servers back is the plan's own work, not the user's: not blocked (exit 0; 2 with
    // --detailed-exitcode), and no "bring the server VMs that are down back" for the user to do by hand
    assert.strictEqual(plan.code, ExitCode.Ok, show(plan))
    assert.notInclude(planned, "bring the server VMs that are down back", show(plan))
    assert.match(
      planned,
      /this run brings k3s-vm-pve \(resume VM \d+ k3s-vm-pve on pve\), k3s-vm-chief-horse \(start VM/
    )
    assert.include(planned, "nothing to do by hand", show(plan))
    assert.strictEqual((await homelab(["plan", "--detailed-exitcode"])).code, ExitCode.Changes)

    const run = await homelab(["apply", "--yes"])
    assert.notInclude(plain(run.stdout), "recreated", show(run))
    // the run did what the plan asked (brought the servers back) and waited for their Nodes: converged, and the
    // end-of-run report no longer repeats the plan's "membership unknown … bring the server VMs that are down back"
    assert.strictEqual(run.code, ExitCode.Ok, show(run))
    const report = plain(run.stdout + run.stderr)
    const end = report.slice(report.indexOf("Applied 2 of 2 change(s)."))
    assert.notInclude(end, "bring the server VMs that are down back", show(run))
    assert.notInclude(end, "membership of", show(run))
    assert.isTrue(
      nodes(sim).every((n) => n.includes(" True ")),
      nodes(sim).join("; ")
    )
    // the same VMs, all running; etcd has its quorum again and every Node is Ready
    assert.deepStrictEqual(vms(), before)
    assert.deepStrictEqual(
      sim.state().vms.map((v) => v.qmpstatus),
      before.map(() => "running")
    )
    await until(() => nodes(sim).every((n) => n.includes(" True ")), "every Node Ready")
    // pve's k3s went on where it was: no restart, no join
    assert.deepStrictEqual(
      sim
        .k3sEvents()
        .filter((e) => e.node.startsWith("k3s-vm-pve"))
        .map((e) => e.kind),
      []
    )

    // The next apply finds the cluster as configured.
    const next = await homelab(["apply", "--yes"])
    assert.strictEqual(next.code, ExitCode.Ok, show(next))
  }, 240_000)
})

describe("homelab apply: a server's re-join that would restart its k3s while another server is down", () => {
  it("pve's Node NotReady (its k3s runs), chief-horse stopped, k3s.serverFlags changed: `apply --only pve` refuses pve's re-join (its k3s would restart), keeps etcd's quorum, says which server to bring back, exit 7 as for a server the quorum guard keeps up", async () => {
    const subnet = reserveLoopbackNet().net
    const { sim, homelab, config, elapse } = await lab(runningCluster(subnet), subnet)
    const steady = await homelab(["apply", "--yes"])
    assert.strictEqual(steady.code, ExitCode.Ok, show(steady))

    // pve's container runtime hangs: its Node is NotReady while its k3s and etcd member run on; chief-horse is down
    await sim.addFaults([{ kind: "k3sNodeNotReady", vmid: vmidOf(sim, "pve") }])
    sim.setVmStatus(vmidOf(sim, "chief-horse"), { status: "stopped", qmpstatus: "stopped" })
    elapse(nodeMonitorGraceMs)
    await until(
      () =>
        sim.state().k3s.nodes.find((n) => n.name === "k3s-vm-pve")?.ready === "False" &&
        sim.state().k3s.nodes.find((n) => n.name === "k3s-vm-chief-horse")?.ready === "Unknown",
      "pve NotReady, chief-horse Unknown"
    )
    // another server flag: pve's re-join installs it, and that restarts its k3s (and its etcd member)
    fs.writeFileSync(
      config,
      `${fs
        .readFileSync(config, "utf8")
        .replace(
          "serverFlags: [--write-kubeconfig-mode=644]",
          "serverFlags: [--write-kubeconfig-mode=644, --node-label=tier=db]"
        )}timeouts: { k3sReady: 10 }\n`
    )
    const since = sim.k3sEvents().length
    const run = await homelab(["apply", "--yes", "--only", "pve"])
    const out = plain(run.stdout + run.stderr)
    assert.deepStrictEqual(
      sim
        .k3sEvents()
        .slice(since)
        .filter((e) => e.kind === "etcd-quorum-lost"),
      [],
      show(run)
    )
    assert.match(
      out,
      /not re-joining k3s server k3s-vm-pve: its k3s would restart with the new install, and restart of k3s-vm-pve would leave 1 of 3 etcd members healthy, quorum needs 2 \(.*k3s-vm-chief-horse-[0-9a-f]{8} NotReady \(Unknown\).*\): bring k3s-vm-chief-horse back/,
      show(run)
    )
    assert.include(out, "bring k3s-vm-chief-horse back to Ready first", show(run))
    // every VM is in place: only k3s work is left (as when the quorum guard keeps a running server up)
    assert.strictEqual(run.code, ExitCode.Join, show(run))
  })
})
