import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { until } from "../helpers.js"
import { closeConnections, haScenario, nodeOf, run, serverToken } from "./k3sHelpers.js"

const K = "sudo -n /usr/local/bin/k3s kubectl"

/** install.sh again with the unit's own arguments (what an upgrade keeps), then a restart */
const upgrade = async (sim: SimHandle, vmid: number, unit: "k3s" | "k3s-agent", version: string, env = "") => {
  await run(sim, vmid, "curl -sfL https://get.k3s.io -o /tmp/i.sh")
  const args = unit === "k3s" ? "server --server https://127.78.1.10:6443" : "agent --server https://127.78.1.10:6443"
  const r = await run(
    sim,
    vmid,
    `sudo -n env ${env}INSTALL_K3S_VERSION=${version} INSTALL_K3S_SKIP_START=true sh /tmp/i.sh ${vmid === 200 ? "server --cluster-init" : args}`
  )
  assert.strictEqual(r.code, 0, r.stderr)
  return run(sim, vmid, `sudo -n systemctl restart --no-block ${unit}`)
}

describe("upgrading k3s through install.sh; the version skew policy", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(haScenario())
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("a new INSTALL_K3S_VERSION replaces the binary; after the restart the Node reports it (kubectl wait --for=jsonpath)", async () => {
    await upgrade(sim, 200, "k3s", "v1.31.5+k3s1")
    const w = await run(
      sim,
      201,
      `${K} wait --for=jsonpath='{.status.nodeInfo.kubeletVersion}'=v1.31.5+k3s1 node/s1 --timeout=30s`
    )
    assert.deepStrictEqual([w.code, w.stdout], [0, "node/s1 condition met\n"])
    assert.match((await run(sim, 200, "/usr/local/bin/k3s --version")).stdout, /^k3s version v1\.31\.5\+k3s1 /)
    const up = sim.k3sEvents().find((e) => e.kind === "node-upgraded")
    assert.deepStrictEqual([up?.node, up?.detail], ["s1", "v1.30.5+k3s1 → v1.31.5+k3s1"])
    // one minor between apiservers is supported: no skew
    assert.ok(!sim.k3sEvents().some((e) => e.kind === "version-skew"))
  })

  it("install.sh regenerates the env file: an agent installed with K3S_TOKEN that is upgraded without it cannot restart", async () => {
    await upgrade(sim, 302, "k3s-agent", "v1.30.14+k3s1")
    const journal = async () => (await run(sim, 302, "sudo -n journalctl -u k3s-agent --no-pager -n 20 -o cat")).stdout
    await until(async () =>
      (await journal()).includes('level=fatal msg="Error: --token is required"') ? true : undefined
    )
    assert.strictEqual((await run(sim, 302, "sudo -n cat /etc/systemd/system/k3s-agent.service.env")).stdout, "")
  })

  it("k3s does not enforce the skew policy, the simulator records every violation", async () => {
    // an agent newer than the oldest apiserver (s2, s3 are still on v1.30), its token given again
    const token = await serverToken(sim)
    await upgrade(sim, 301, "k3s-agent", "v1.31.5+k3s1", `K3S_TOKEN=${token} `)
    await run(sim, 200, `${K} wait --for=jsonpath={.status.nodeInfo.kubeletVersion}=v1.31.5+k3s1 node/a1 --timeout=30s`)
    const skew = sim.k3sEvents().filter((e) => e.kind === "version-skew")
    assert.deepStrictEqual(
      skew.map((e) => [e.node, e.detail]),
      [["a1", "kubelet a1 v1.31.5+k3s1 is newer than the oldest apiserver"]]
    )
    // a server two minors ahead of the others
    await upgrade(sim, 200, "k3s", "v1.32.9+k3s1")
    await run(sim, 201, `${K} wait --for=jsonpath={.status.nodeInfo.kubeletVersion}=v1.32.9+k3s1 node/s1 --timeout=30s`)
    assert.ok(
      sim
        .k3sEvents()
        .some((e) => e.kind === "version-skew" && /^apiservers .* are more than one minor apart$/.test(e.detail ?? ""))
    )
    // and back down
    await upgrade(sim, 301, "k3s-agent", "v1.30.5+k3s1", `K3S_TOKEN=${token} `)
    await run(sim, 200, `${K} wait --for=jsonpath={.status.nodeInfo.kubeletVersion}=v1.30.5+k3s1 node/a1 --timeout=30s`)
    assert.strictEqual(sim.k3sEvents().filter((e) => e.kind === "node-downgraded").length, 1)
  })

  it("kubectl wait: a condition that never holds times out as kubectl does; a missing node is NotFound", async () => {
    const t = await run(
      sim,
      200,
      `${K} wait --for=jsonpath={.status.nodeInfo.kubeletVersion}=v9 node/s2 --timeout=200ms`
    )
    assert.deepStrictEqual([t.code, t.stderr], [1, "error: timed out waiting for the condition on nodes/s2\n"])
    const n = await run(sim, 200, `${K} wait --for=condition=Ready node/nope --timeout=1s`)
    assert.deepStrictEqual([n.code, n.stderr], [1, 'Error from server (NotFound): nodes "nope" not found\n'])
    const bad = await run(sim, 200, `${K} wait --for=ready node/s2`)
    assert.deepStrictEqual([bad.code, bad.stderr], [1, 'error: unrecognized condition: "ready"\n'])
    const two = await run(sim, 200, `${K} wait --for=condition=Ready node/s2 node/s3 --timeout=5s`)
    assert.strictEqual(two.stdout, "node/s2 condition met\nnode/s3 condition met\n")
  })

  it("--write-kubeconfig-mode makes the kubeconfig readable for other users", async () => {
    const r = await run(
      sim,
      303,
      "curl -sfL https://get.k3s.io | sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 sh -s - server --cluster-init --write-kubeconfig-mode 644"
    )
    assert.strictEqual(r.code, 0, r.stderr)
    const asUser = await run(sim, 303, "kubectl get nodes -o name")
    assert.deepStrictEqual([asUser.code, asUser.stdout], [0, "node/a3\n"])
    // it started a cluster of its own (not the scenario's)
    assert.strictEqual(sim.state().k3s.strayClusters.length, 1)
  })
})

describe("k3sHold (a test control): a k3s start waits after its work, activating, until the fault is cleared", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(haScenario())
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  /** install.sh as an upgrade runs it: the unit's arguments again, a new version, and the restart waited for */
  const install = async (vmid: number, args: string, version: string, env = "") => {
    await run(sim, vmid, "curl -sfL https://get.k3s.io -o /tmp/i.sh")
    return run(sim, vmid, `sudo -n env ${env}INSTALL_K3S_VERSION=${version} sh /tmp/i.sh ${args}`)
  }
  /** Resolves as the simulator begins `operation` on `vmid` (`watch`), before it goes on. */
  const begins = (operation: string, vmid: number) =>
    new Promise<void>((resolve) => {
      const stop = sim.watch((r) => {
        if (r._tag !== "Operation" || r.operation.operation !== operation || r.operation.vmid !== vmid) return
        stop()
        resolve()
      })
    })
  const unit = async (vmid: number, name: string) => (await run(sim, vmid, `systemctl is-active ${name}`)).stdout
  const version = (node: string) => nodeOf(sim, node)?.version
  const server = "server --server https://127.78.1.10:6443"

  it("an upgrade's restart is held while one begun after it comes up; cleared, it comes up on its new version; a held start that is stopped ends there", async () => {
    const [v130, v131] = ["v1.30.5+k3s1", "v1.31.5+k3s1"]
    await sim.addFaults([
      { kind: "k3sHold", vmid: 201 },
      { kind: "k3sHold", vmid: 301 }
    ])
    const restarting = begins("k3s-restart", 201)
    let ended = false
    const held = install(201, server, v131).finally(() => {
      ended = true
    })
    await restarting
    // s3 restarts after s2 and does the same simulated work: once its install has returned, an unheld s2 would have too
    const witness = await install(202, server, v131)
    assert.strictEqual(witness.code, 0, witness.stderr)
    assert.strictEqual(version("s3"), v131)
    assert.deepStrictEqual([ended, await unit(201, "k3s"), version("s2")], [false, "activating\n", v130])
    assert.isFalse(sim.k3sEvents().some((e) => e.kind === "node-upgraded" && e.node === "s2"))
    // clearing another VM's hold leaves it held
    await sim.clearFaults({ kind: "k3sHold", vmid: 301 })
    assert.deepStrictEqual([ended, await unit(201, "k3s")], [false, "activating\n"])
    // cleared: it comes up as it would have, and the install that waited for it ends
    await sim.clearFaults({ kind: "k3sHold", vmid: 201 })
    const done = await held
    assert.strictEqual(done.code, 0, done.stderr)
    assert.strictEqual(await unit(201, "k3s"), "active\n")
    assert.strictEqual(version("s2"), v131)
    assert.deepStrictEqual(
      sim
        .k3sEvents()
        .filter((e) => e.kind === "node-upgraded")
        .map((e) => [e.node, e.detail]),
      [
        ["s3", `${v130} → ${v131}`],
        ["s2", `${v130} → ${v131}`]
      ]
    )

    // a held start whose unit is stopped ends there: the install fails, and clearing the fault later starts nothing
    const token = `K3S_TOKEN=${await serverToken(sim)} `
    const agent = "agent --server https://127.78.1.10:6443"
    await sim.addFaults([{ kind: "k3sHold", vmid: 302 }])
    const joining = begins("k3s-agent-join", 302)
    const stopped = install(302, agent, "v1.30.14+k3s1", token)
    await joining
    // a1 restarts after a2, unheld: once its install has returned, a2 waits in its hold
    const a1 = await install(301, agent, "v1.30.14+k3s1", token)
    assert.strictEqual(a1.code, 0, a1.stderr)
    assert.strictEqual(await unit(302, "k3s-agent"), "activating\n")
    assert.strictEqual((await run(sim, 302, "sudo -n systemctl stop k3s-agent")).code, 0)
    const failed = await stopped
    assert.strictEqual(failed.code, 1, failed.stdout)
    assert.include(failed.stderr, "Job for k3s-agent.service failed")
    await sim.clearFaults({ kind: "k3sHold" })
    assert.strictEqual(await unit(302, "k3s-agent"), "inactive\n")
    assert.isFalse(sim.k3sEvents().some((e) => e.kind === "node-upgraded" && e.node === "a2"))
    assert.deepStrictEqual(sim.faults(), [])
  })
})
