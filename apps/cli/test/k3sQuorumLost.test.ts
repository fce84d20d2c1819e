/**
 * A lab whose embedded etcd lost quorum for good, end to end through the built `homelab` against the simulator: two of
 * three server VMs destroyed (their disks, and etcd data, with them). `plan` says it once, up front, with the recovery
 * (`k3s server --cluster-reset` on the survivor); `apply` recreates nothing; after the reset, `apply` rebuilds and
 * rejoins the lost servers and converges.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { reserveLoopbackNet } from "@homelab/sim"
import { ExitCode } from "../src/ExitCode.js"
import { lab, nodes, onGuest, plain, runningCluster, show, stopLabs, until, vmidOf } from "./k3sLab.js"
import { pveRequest } from "./simLab.js"

afterEach(stopLabs)

describe("homelab on a k3s cluster whose etcd lost quorum (k3s.md §5.2)", () => {
  it("plan says it once with the --cluster-reset recovery and apply recreates nothing; after the reset on the survivor, apply rebuilds and rejoins the lost servers and converges", async () => {
    const subnet = reserveLoopbackNet().net
    const { sim, homelab } = await lab(runningCluster(subnet), subnet)
    const steady = await homelab(["apply", "--yes"])
    assert.strictEqual(steady.code, ExitCode.Ok, show(steady))

    for (const n of ["still-fawn", "chief-horse"]) {
      const vmid = vmidOf(sim, n)
      sim.setVmStatus(vmid, { status: "stopped", qmpstatus: "stopped" })
      await pveRequest(sim, "DELETE", `/nodes/${n}/qemu/${vmid}`)
    }
    await until(
      () => !sim.state().vms.some((v) => v.name === "k3s-vm-still-fawn" || v.name === "k3s-vm-chief-horse"),
      "the two server VMs gone"
    )
    await until(() => sim.k3sEvents().some((e) => e.kind === "etcd-quorum-lost"), "etcd's quorum lost")

    const plan = await homelab(["plan"])
    assert.strictEqual(plan.code, ExitCode.Error, show(plan))
    const out = plain(plan.stdout)
    assert.strictEqual(out.split("etcd has lost quorum:").length - 1, 1, show(plan))
    assert.include(
      out,
      "of its 3 k3s servers, k3s-vm-still-fawn and k3s-vm-chief-horse are gone (no VM: their etcd data went with their disks) and only k3s-vm-pve survives",
      show(plan)
    )
    assert.include(out, "sudo systemctl stop k3s && sudo k3s server --cluster-reset", show(plan))
    assert.notMatch(out, /create VM \d* ?k3s-vm-still-fawn/, show(plan))

    const refused = await homelab(["apply", "--yes"])
    assert.notStrictEqual(refused.code, ExitCode.Ok, show(refused))
    assert.isFalse(
      sim.state().vms.some((v) => v.name === "k3s-vm-still-fawn" || v.name === "k3s-vm-chief-horse"),
      show(refused)
    )

    // the recovery the plan gave, on the survivor
    const ip = `${subnet}.11`
    assert.strictEqual((await onGuest(sim, ip, "sudo -n systemctl stop k3s")).code, 0)
    const reset = await onGuest(sim, ip, "sudo -n k3s server --cluster-reset")
    assert.strictEqual(reset.code, 0, reset.stderr)
    assert.include(reset.stderr, "restart without --cluster-reset flag now")
    assert.strictEqual((await onGuest(sim, ip, "sudo -n systemctl start k3s")).code, 0)
    await until(() => sim.k3sEvents().some((e) => e.kind === "etcd-quorum-restored"), "etcd's quorum back")

    const run = await homelab(["apply", "--yes"])
    assert.strictEqual(run.code, ExitCode.Ok, show(run))
    assert.isTrue(
      nodes(sim).every((n) => n.includes(" True ")),
      nodes(sim).join("; ")
    )
    assert.strictEqual(sim.state().k3s.etcdMembers.filter((m) => !m.isLearner).length, 3)
  }, 240_000)
})
