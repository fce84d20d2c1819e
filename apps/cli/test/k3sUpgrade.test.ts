/**
 * A rolling k3s upgrade end to end through the built `homelab` against the simulator: planned per member (a skipped
 * minor through its intermediate release, hop by hop across the cluster; a downgrade and a release that does not exist
 * refused), interrupted midway with Ctrl-C and resumed; a Node cordoned by hand stays cordoned.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { reserveLoopbackNet } from "@homelab/sim"
import { ExitCode } from "../src/ExitCode.js"
import {
  all,
  lab,
  onGuest,
  plain,
  runningCluster,
  servers,
  show,
  startHomelab,
  stopLabs,
  upgradeEvents,
  v130,
  v131,
  vmidOf
} from "./k3sLab.js"
import { whenRecord } from "./simLab.js"

afterEach(stopLabs)

describe("homelab and a rolling k3s upgrade", () => {
  it("plans the upgrade per member (a skipped minor through its intermediate release, hop by hop; no such release refused before any cordon); interrupted midway with two minors to go, the next apply resumes hop by hop; servers then agents, cordon/drain/upgrade/uncordon each", async () => {
    const subnet = reserveLoopbackNet().net
    const { sim, homelab, write, config, env } = await lab(runningCluster(subnet), subnet)
    const steady = await homelab(["apply", "--yes"]) // the image onto each node; the cluster is as configured
    assert.strictEqual(steady.code, ExitCode.Ok, show(steady))

    // A k3s.version that is no release: refused by plan and by apply, before anything is cordoned.
    write("v1.30.99+k3s1")
    const none = await homelab(["plan"])
    assert.strictEqual(none.code, ExitCode.Error, show(none))
    assert.include(plain(none.stdout), "k3s.version v1.30.99+k3s1 is not a k3s release")
    const noneSince = sim.k3sEvents().length
    const refused = await homelab(["apply", "--yes"])
    assert.notStrictEqual(refused.code, ExitCode.Ok, show(refused))
    assert.include(plain(refused.stdout + refused.stderr), "k3s.version v1.30.99+k3s1 is not a k3s release")
    assert.deepStrictEqual(upgradeEvents(sim, noneSince), [])
    assert.notInclude(JSON.stringify(sim.state().vms.map((v) => v.tags)), "homelab-upgrade")

    // Two minors ahead: planned through the newest v1.31 release (from the update channels), hop by hop across the
    // cluster (every server, then every agent, to v1.31 before any goes on to v1.32), or refused without.
    write("v1.32.9+k3s1")
    const skip = await homelab(["plan", "--detailed-exitcode"])
    assert.strictEqual(skip.code, ExitCode.Changes, show(skip))
    const hops = plain(skip.stdout)
      .split("\n")
      .filter((l) => l.includes("upgrade k3s on"))
      .map((l) => /upgrade k3s on k3s-vm-(\S+) \((\w+)\) (\S+ → \S+):/.exec(l)?.slice(1, 4).join(" "))
    // (the plan lists them per node; the run goes hop by hop)
    assert.deepStrictEqual(
      hops,
      all.flatMap((n) => [
        `${n} ${servers.includes(n) ? "server" : "agent"} v1.30.5+k3s1 → v1.31.13+k3s1`,
        `${n} ${servers.includes(n) ? "server" : "agent"} v1.31.13+k3s1 → v1.32.9+k3s1`
      ])
    )
    assert.include(plain(skip.stdout), "one minor at a time, the whole cluster each time")
    write("v1.29.15+k3s1")
    const down = await homelab(["plan"])
    assert.strictEqual(down.code, ExitCode.Error, show(down))
    assert.include(plain(down.stdout), "v1.29.15+k3s1 is older than v1.30.5+k3s1: k3s cannot be downgraded")

    write(v131)
    const plan = await homelab(["plan"])
    const rows = plain(plan.stdout)
      .split("\n")
      .filter((l) => l.includes("upgrade k3s on"))
      .map((l) => /upgrade k3s on k3s-vm-(\S+) \((\w+)\)/.exec(l)?.slice(1, 3).join(" "))
    assert.deepStrictEqual(rows, [
      "pve server",
      "still-fawn server",
      "chief-horse server",
      "fun-goal agent",
      "wise-owl agent"
    ])

    // Two minors, hop by hop. Ctrl-C once the second server's first hop restarts its k3s on the new binary: that
    // restart is held (k3sHold) until the run has exited, so the signal lands inside the hop however late it comes. The
    // first server stays on the minor between, the rest on the old version; the next apply resumes in the same order.
    const [v1311, v132] = ["v1.31.13+k3s1", "v1.32.9+k3s1"]
    write(v132)
    const since = sim.k3sEvents().length
    const stillFawn = vmidOf(sim, "still-fawn")
    await sim.addFaults([{ kind: "k3sHold", vmid: stillFawn }])
    const run = startHomelab(config, ["apply", "--yes"], env)
    await whenRecord(
      sim,
      (r) =>
        r._tag === "Operation" && r.operation.operation === "k3s-restart" && r.operation.vmid === stillFawn
          ? r
          : undefined,
      run.done
    )
    run.child.kill("SIGINT")
    const interrupted = await run.done
    assert.strictEqual(interrupted.code, ExitCode.Interrupted, show(interrupted))
    assert.include(interrupted.stderr, "upgrade k3s on k3s-vm-still-fawn")
    const versions = () =>
      Object.fromEntries(sim.state().k3s.nodes.map((n) => [String(n.name).replace("k3s-vm-", ""), n.version]))
    assert.strictEqual(versions().pve, v1311)
    for (const n of ["still-fawn", "chief-horse", "fun-goal", "wise-owl"]) assert.strictEqual(versions()[n], v130, n)
    // the hop was still under way when the run stopped: still-fawn's k3s restart waits, activating
    assert.strictEqual((await onGuest(sim, `${subnet}.12`, "systemctl is-active k3s")).stdout, "activating\n")
    // released, the restart that the interrupted install began comes up on the minor between, as it would have
    const restarted = whenRecord(sim, (r) =>
      r._tag === "K3sEvent" && r.event.kind === "node-upgraded" && r.event.node === "k3s-vm-still-fawn" ? r : undefined
    )
    await sim.clearFaults({ kind: "k3sHold" })
    assert.strictEqual((await restarted).event.detail, `${v130} → ${v1311}`)

    const resumed = await homelab(["apply", "--yes"])
    assert.strictEqual(resumed.code, ExitCode.Ok, show(resumed))
    assert.deepStrictEqual(
      Object.values(versions()),
      all.map(() => v132)
    )
    // every server and agent to v1.31 before any goes on, never outside the version skew policy
    assert.deepStrictEqual(
      sim
        .k3sEvents()
        .slice(since)
        .filter((e) => e.kind === "node-upgraded" || e.kind === "version-skew")
        .map((e) => `${e.kind} ${e.node.replace("k3s-vm-", "")} ${e.detail ?? ""}`),
      [
        ...all.map((n) => `node-upgraded ${n} ${v130} → ${v1311}`),
        ...all.map((n) => `node-upgraded ${n} ${v1311} → ${v132}`)
      ]
    )
    // In the event log: one node out at a time, servers before agents, each cordoned, drained, upgraded, uncordoned.
    const events = upgradeEvents(sim, since)
    const order = [...new Set(events.map((e) => e.split(" ")[0]))]
    assert.deepStrictEqual(order, all)
    for (const n of all) {
      const mine = events.filter((e) => e.startsWith(`${n} `)).map((e) => e.split(" ")[1])
      assert.deepStrictEqual(mine.at(-1), "node-uncordoned", n)
      assert.includeMembers(mine, ["drain-start", "drain-finish", "node-upgraded"], n)
      assert.isBelow(mine.indexOf("node-cordoned"), mine.indexOf("node-upgraded"), n)
    }
    let out = 0
    for (const e of events) {
      if (e.endsWith("node-cordoned")) out++
      if (e.endsWith("node-uncordoned")) out--
      assert.isAtMost(out, 1, `two nodes out at once: ${events.join(", ")}`)
    }
    assert.notInclude(JSON.stringify(sim.state().vms.map((v) => v.tags)), "homelab-upgrade")
    const clean = await homelab(["plan", "--detailed-exitcode"])
    assert.strictEqual(clean.code, ExitCode.Ok, show(clean))
  }, 240_000)

  it("a Node cordoned by hand before the upgrade is drained and upgraded, and left cordoned: plan and apply say so, the next plan is clean but for its note", async () => {
    const subnet = reserveLoopbackNet().net
    const { sim, homelab, write } = await lab(runningCluster(subnet), subnet)
    const steady = await homelab(["apply", "--yes"])
    assert.strictEqual(steady.code, ExitCode.Ok, show(steady))
    // maintenance: `kubectl cordon` on a server, by hand
    const cordon = await onGuest(sim, `${subnet}.11`, "sudo -n k3s kubectl cordon k3s-vm-wise-owl")
    assert.strictEqual(cordon.code, 0, cordon.stderr)
    const cordoned = () =>
      sim
        .state()
        .k3s.nodes.filter((n) => n.unschedulable)
        .map((n) => n.name)

    write(v131)
    const plan = await homelab(["plan"])
    assert.include(
      plain(plan.stdout),
      `upgrade k3s on k3s-vm-wise-owl (agent) ${v130} → ${v131}: drain, install, wait Ready; left cordoned as it was`
    )
    const since = sim.k3sEvents().length
    const applied = await homelab(["apply", "--yes"])
    assert.strictEqual(applied.code, ExitCode.Ok, show(applied))
    assert.include(
      plain(applied.stdout),
      `k3s-vm-wise-owl upgraded ${v130} → ${v131}; left cordoned (it was cordoned before this run)`
    )
    assert.deepStrictEqual(
      sim.state().k3s.nodes.map((n) => n.version),
      all.map(() => v131)
    )
    assert.deepStrictEqual(cordoned(), ["k3s-vm-wise-owl"])
    assert.deepStrictEqual(
      upgradeEvents(sim, since).filter((e) => e.startsWith("wise-owl ")),
      ["wise-owl drain-start", "wise-owl drain-finish", "wise-owl node-upgraded"]
    )
    const clean = await homelab(["plan", "--detailed-exitcode"])
    assert.strictEqual(clean.code, ExitCode.Ok, show(clean))
    assert.include(plain(clean.stdout), "k3s Node k3s-vm-wise-owl is cordoned")
  }, 240_000)
})
