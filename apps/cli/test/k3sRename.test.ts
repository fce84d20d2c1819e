/**
 * A lab renamed end to end through the built `homelab`: `vm.nameTemplate` changed on a running 3-server cluster. The
 * new VMs join the cluster the old ones run (never a second one), and `apply --prune` takes the old ones out one at a
 * time behind the quorum guard.
 */
import * as fs from "node:fs"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { labScenario } from "@homelab/sim"
import { ExitCode } from "../src/ExitCode.js"
import { k3sTimings, lab, net, plain, servers, show, stopLabs, v130 } from "./k3sLab.js"

afterEach(stopLabs)

describe("homelab and a renamed lab", () => {
  it("after vm.nameTemplate changes, plan joins the new VMs to the running cluster; apply --prune replaces the old servers one at a time; the next plan has no changes", async () => {
    const { sim, config, homelab } = await lab(
      labScenario(servers, {
        memory: "32G",
        imageSize: "2M",
        ipPool: `${net}.10`,
        guestSshPort: 2222,
        timeScale: 0.02,
        k3s: { version: v130, ...k3sTimings, learnerPromotionDelayMs: 3000 }
      }),
      net
    )
    const first = await homelab(["apply", "--yes"])
    assert.strictEqual(first.code, ExitCode.Ok, show(first))
    const ca = sim.state().k3s.caHash

    fs.writeFileSync(config, fs.readFileSync(config, "utf8").replace(/^vm:\n/m, "vm:\n  nameTemplate: k8s-{node}\n"))
    const plan = await homelab(["plan"])
    assert.strictEqual(plan.code, ExitCode.Ok, show(plan))
    const planned = plain(plan.stdout)
    assert.notInclude(planned, "start the k3s cluster", show(plan))
    assert.notInclude(planned, "no k3s cluster exists yet")
    assert.include(
      planned,
      "k3s cluster: 6 servers (etcd), 0 agents; running on VMs homelab.yaml no longer names: joined through k3s-vm-chief-horse",
      show(plan)
    )
    assert.include(planned, "join k8s-pve to k3s as a server after it is created")
    assert.include(planned, "k3s-vm-still-fawn on still-fawn is ours but homelab.yaml asks for no VM named")

    const apply = await homelab(["apply", "--prune", "--yes"])
    assert.strictEqual(apply.code, ExitCode.Ok, show(apply))
    assert.include(plain(apply.stdout), "Converged")
    const k3s = sim.state().k3s
    assert.strictEqual(k3s.caHash, ca, "the same cluster")
    assert.deepStrictEqual(k3s.strayClusters, [], "no second cluster")
    assert.deepStrictEqual(k3s.nodes.map((n) => `${n.name} ${n.ready}`).sort(), [
      "k8s-chief-horse True",
      "k8s-pve True",
      "k8s-still-fawn True"
    ])
    assert.deepStrictEqual(
      sim.k3sEvents().filter((e) => e.kind === "etcd-quorum-lost"),
      []
    )
    assert.strictEqual(
      sim.k3sEvents().filter((e) => e.kind === "etcd-member-removed" && e.node.startsWith("k3s-vm-")).length,
      3
    )

    const again = await homelab(["plan", "--prune", "--detailed-exitcode"])
    assert.strictEqual(again.code, ExitCode.Ok, show(again))
    assert.include(again.stdout, "No changes")
  }, 240_000)
})
