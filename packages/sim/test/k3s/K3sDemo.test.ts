import { readFileSync } from "node:fs"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { demoScenario, type SimHandle, startSimPromise } from "../../src/index.js"
import { testScenario } from "../helpers.js"
import { closeConnections, run } from "./k3sHelpers.js"

describe("the demo homelab's k3s server", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise({ ...demoScenario(), guestSshPort: 0, timeScale: 0.01 })
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("is a running, unmanaged VM whose guest accepts the simulator's key and serves the token and Ready node", async () => {
    const vm = sim.state().vms.find((v) => v.vmid === 200)
    assert.deepStrictEqual(
      [vm?.name, vm?.node, vm?.status, vm?.tags, vm?.ip],
      ["k3s-server", "pve", "running", null, "127.77.0.5"]
    )
    const key = readFileSync(sim.info.sshPrivateKeyPath, "utf8")
    const tok = await run(sim, 200, "sudo -n cat /var/lib/rancher/k3s/server/node-token", { privateKey: key })
    assert.match(tok.stdout, /^K10[0-9a-f]{64}::server:[0-9a-f]{32}\n$/)
    const nodes = await run(sim, 200, "sudo -n /usr/local/bin/k3s kubectl get nodes", { privateKey: key })
    assert.match(
      nodes.stdout,
      /^NAME +STATUS +ROLES +AGE +VERSION\nk3s-server +Ready +control-plane,etcd,master +\d+[smh] +v1\.30\.5\+k3s1\n$/
    )
  })
})

describe("k3s.servers / k3s.agents in the scenario", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(
      testScenario({
        vms: [
          { vmid: 210, node: "pve", name: "cp-a", status: "running", ip: "127.79.0.10" },
          { vmid: 211, node: "pve", name: "cp-b", status: "running", ip: "127.79.0.11" },
          { vmid: 220, node: "pve2", name: "wk-a", status: "running", ip: "127.79.0.20" }
        ],
        k3s: { version: "v1.29.9+k3s1", servers: [210, 211], agents: [220], token: "scenario-token" }
      })
    )
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("seeds two servers (the first started the cluster) and an agent, all Ready, reachable with the sim's key", async () => {
    const k = sim.state().k3s
    assert.deepStrictEqual(
      k.nodes.map((n) => [n.name, n.role, n.ready, n.ip, n.version, n.vmid]),
      [
        ["cp-a", "server", "True", "127.79.0.10", "v1.29.9+k3s1", 210],
        ["cp-b", "server", "True", "127.79.0.11", "v1.29.9+k3s1", 211],
        ["wk-a", "agent", "True", "127.79.0.20", "v1.29.9+k3s1", 220]
      ]
    )
    assert.deepStrictEqual(
      k.etcdMembers.map((m) => [m.name.replace(/-[0-9a-f]{8}$/, ""), m.isLearner]),
      [
        ["cp-a", false],
        ["cp-b", false]
      ]
    )
    const key = readFileSync(sim.info.sshPrivateKeyPath, "utf8")
    const unit = await run(sim, 211, "cat /etc/systemd/system/k3s.service", { privateKey: key })
    assert.include(unit.stdout, "    server \\\n\t'--server' \\\n\t'https://127.79.0.10:6443' \\\n")
    const agent = await run(sim, 220, "systemctl is-active k3s-agent", { privateKey: key })
    assert.strictEqual(agent.stdout, "active\n")
    const tok = await run(sim, 210, "sudo -n cat /var/lib/rancher/k3s/server/token", { privateKey: key })
    assert.strictEqual(tok.stdout, `K10${k.caHash}::server:scenario-token\n`)
  })
})
