/**
 * The k3s lifecycle end to end through the built `homelab` against the simulator: a cluster from nothing in one
 * `apply --yes`, a server rebuilt behind the quorum guard (refused while another server is down), and
 * `kubeconfig --merge` / `--out` used by the simulator's kubectl.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { labScenario } from "@homelab/sim"
import { parse as parseYaml } from "yaml"
import { ExitCode } from "../src/ExitCode.js"
import {
  all,
  k3sTimings,
  lab,
  net,
  nodeMonitorGraceMs,
  nodes,
  onGuest,
  plain,
  show,
  stopLabs,
  v130,
  vmidOf
} from "./k3sLab.js"

afterEach(stopLabs)

describe("homelab and the k3s lifecycle", () => {
  it("bare nodes converge to 3 Ready servers and 2 agents in one apply; a rebuilt server keeps quorum, a second one is refused; kubeconfig --merge", async () => {
    const { sim, homelab, dir, elapse } = await lab(
      labScenario(all, {
        memory: "32G",
        imageSize: "2M",
        ipPool: `${net}.10`,
        guestSshPort: 2222,
        timeScale: 0.02,
        k3s: { version: v130, ...k3sTimings }
      }),
      net
    )
    const plan = await homelab(["plan"])
    assert.strictEqual(plan.code, ExitCode.Ok, show(plan))
    assert.include(plain(plan.stdout), "k3s cluster: 3 servers (etcd), 2 agents; started on k3s-vm-pve")
    assert.include(
      plain(plan.stdout),
      "start the k3s cluster on k3s-vm-pve (first server, embedded etcd) after it is created"
    )

    const apply = await homelab(["apply", "--yes"])
    assert.strictEqual(apply.code, ExitCode.Ok, show(apply))
    assert.deepStrictEqual(nodes(sim), [
      `chief-horse server True ${v130}`,
      `fun-goal agent True ${v130}`,
      `pve server True ${v130}`,
      `still-fawn server True ${v130}`,
      `wise-owl agent True ${v130}`
    ])
    assert.strictEqual(sim.state().k3s.etcdMembers.filter((m) => !m.isLearner).length, 3)
    const again = await homelab(["plan", "--detailed-exitcode"])
    assert.strictEqual(again.code, ExitCode.Ok, show(again))
    assert.include(again.stdout, "No changes")

    // A server rebuilt on purpose keeps quorum: its member goes before it is destroyed, then it rejoins.
    const since = sim.k3sEvents().length
    const rebuild = await homelab(["reprovision", "still-fawn", "--yes"])
    assert.strictEqual(rebuild.code, ExitCode.Ok, show(rebuild))
    const kinds = sim
      .k3sEvents()
      .slice(since)
      .filter((e) => e.node.startsWith("k3s-vm-still-fawn"))
      .map((e) => e.kind)
    assert.isBelow(kinds.indexOf("etcd-member-removed"), kinds.indexOf("server-join-finish"))
    assert.strictEqual(sim.state().k3s.etcdMembers.filter((m) => !m.isLearner).length, 3)

    // With chief-horse down, rebuilding pve would leave one of three members: refused, pve untouched.
    sim.setVmStatus(vmidOf(sim, "chief-horse"), { status: "stopped", qmpstatus: "stopped" })
    elapse(nodeMonitorGraceMs) // its Node is Unknown once the grace period has passed
    assert.strictEqual(sim.state().k3s.nodes.find((n) => n.name === "k3s-vm-chief-horse")?.ready, "Unknown")
    const pve = JSON.stringify(sim.state().vms.find((v) => v.name === "k3s-vm-pve"))
    const refused = await homelab(["reprovision", "pve", "--yes"])
    assert.strictEqual(refused.code, ExitCode.Join, show(refused)) // what is left is on the k3s layer only
    assert.match(
      plain(refused.stdout),
      /not rebuilding k3s server k3s-vm-pve: rebuild of k3s-vm-pve would leave 1 of 3 etcd members healthy, quorum needs 2/
    )
    assert.include(plain(refused.stdout), "fix: bring k3s-vm-chief-horse back to Ready first")
    assert.strictEqual(JSON.stringify(sim.state().vms.find((v) => v.name === "k3s-vm-pve")), pve)

    // kubeconfig --merge into $KUBECONFIG's first file, keeping its other context; the sim's kubectl uses it.
    const kube = path.join(dir, "kube", "config")
    fs.mkdirSync(path.dirname(kube))
    fs.writeFileSync(
      kube,
      [
        "apiVersion: v1",
        "kind: Config",
        "current-context: work",
        "clusters:",
        "- name: work",
        "  cluster: { server: 'https://10.9.9.9:6443' }",
        "contexts:",
        "- name: work",
        "  context: { cluster: work, user: work }",
        "users:",
        "- name: work",
        "  user: { token: abc }",
        ""
      ].join("\n"),
      { mode: 0o644 }
    )
    const merged = await homelab(["kubeconfig", "--merge"], {
      KUBECONFIG: `${kube}${path.delimiter}${path.join(dir, "other")}`
    })
    assert.strictEqual(merged.code, ExitCode.Ok, show(merged))
    assert.include(merged.stdout, `Merged context homelab (server https://${net}.`)
    assert.strictEqual(fs.statSync(kube).mode & 0o777, 0o600)
    const text = fs.readFileSync(kube, "utf8")
    const doc = parseYaml(text) as {
      "current-context": string
      contexts: Array<{ name: string }>
      clusters: Array<{ name: string; cluster: { server: string } }>
      users: Array<{ name: string; user: Record<string, string> }>
    }
    assert.deepStrictEqual(
      [doc["current-context"], doc.contexts.map((c) => c.name), doc.clusters.map((c) => c.name)],
      ["work", ["work", "homelab"], ["work", "homelab"]]
    )
    const key = doc.users.find((u) => u.name === "homelab")?.user["client-key-data"] ?? ""
    assert.isAbove(key.length, 20)
    assert.notInclude(merged.stdout + merged.stderr, key, "the client key is never printed")
    // --out FILE --context NAME: a file of its own, mode 600, that one context
    const own = path.join(dir, "lab.yaml")
    const written = await homelab(["kubeconfig", "--context", "lab", "--out", own])
    assert.strictEqual(written.code, ExitCode.Ok, show(written))
    assert.strictEqual(fs.statSync(own).mode & 0o777, 0o600)
    const ownDoc = parseYaml(fs.readFileSync(own, "utf8")) as {
      "current-context": string
      contexts: Array<{ name: string }>
    }
    assert.deepStrictEqual([ownDoc["current-context"], ownDoc.contexts.map((c) => c.name)], ["lab", ["lab"]])
    assert.notInclude(written.stdout + written.stderr, key)

    const agentIp = sim.state().vms.find((v) => v.name === "k3s-vm-fun-goal")?.ip as string
    assert.strictEqual((await onGuest(sim, agentIp, "cat > /home/ubuntu/kubeconfig", text)).code, 0)
    const got = await onGuest(
      sim,
      agentIp,
      "kubectl --kubeconfig /home/ubuntu/kubeconfig --context homelab get nodes -o name"
    )
    assert.deepStrictEqual(
      [
        got.code,
        got.stdout
          .split("\n")
          .filter((l) => l !== "")
          .sort()
      ],
      [0, all.map((n) => `node/k3s-vm-${n}`).sort()],
      got.stderr
    )
  }, 240_000)
})
