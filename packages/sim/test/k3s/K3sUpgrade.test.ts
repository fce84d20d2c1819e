import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { until } from "../helpers.js"
import { closeConnections, haScenario, run, serverToken } from "./k3sHelpers.js"

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
