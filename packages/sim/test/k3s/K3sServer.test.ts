import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { until } from "../helpers.js"
import { closeConnections, k3sScenario, run, TOKEN } from "./k3sHelpers.js"

describe("an existing k3s server guest", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(k3sScenario({ secondServer: true }))
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("keeps the token files root-only: a plain cat is denied, sudo -n cat works", async () => {
    for (const f of ["token", "node-token", "agent-token"]) {
      const denied = await run(sim, 200, `cat /var/lib/rancher/k3s/server/${f}`)
      assert.strictEqual(denied.code, 1)
      assert.strictEqual(denied.stderr, `cat: /var/lib/rancher/k3s/server/${f}: Permission denied\n`)
      assert.strictEqual(denied.stdout, "")
      const ok = await run(sim, 200, `sudo -n cat /var/lib/rancher/k3s/server/${f}`)
      assert.strictEqual(ok.code, 0)
      assert.strictEqual(ok.stdout, `K10${sim.state().k3s.caHash}::server:${TOKEN}\n`)
    }
    const agent = await run(sim, 301, "sudo -n cat /var/lib/rancher/k3s/server/token")
    assert.strictEqual(agent.code, 1)
    assert.strictEqual(agent.stderr, "cat: /var/lib/rancher/k3s/server/token: No such file or directory\n")
  })

  it("answers k3s --version, systemctl is-active and journalctl", async () => {
    const v = await run(sim, 200, "/usr/local/bin/k3s --version")
    assert.strictEqual(v.code, 0)
    assert.match(v.stdout, /^k3s version v1\.30\.5\+k3s1 \([0-9a-f]{8}\)\ngo version go1\.\d+\.\d+\n$/)
    const none = await run(sim, 301, "/usr/local/bin/k3s --version")
    assert.strictEqual(none.code, 127)
    assert.strictEqual(none.stderr, "sh: 1: /usr/local/bin/k3s: not found\n")
    const active = await run(sim, 200, "systemctl is-active k3s")
    assert.deepStrictEqual([active.stdout, active.code], ["active\n", 0])
    const agentUnit = await run(sim, 301, "systemctl is-active k3s-agent")
    assert.deepStrictEqual([agentUnit.stdout, agentUnit.code], ["inactive\n", 3])
    const j = await run(sim, 200, "sudo -n journalctl -u k3s --no-pager -n 2 -o cat")
    assert.strictEqual(j.code, 0)
    assert.match(j.stdout, /^time="[^"]+" level=info msg="k3s is up and running"\nStarted Lightweight Kubernetes\.\n$/)
  })

  it("prints kubectl get nodes -o json as a List of Node objects", async () => {
    const r = await run(sim, 200, "sudo -n /usr/local/bin/k3s kubectl get nodes -o json")
    assert.strictEqual(r.code, 0)
    assert.match(r.stdout, /^\{\n {4}"apiVersion": "v1",\n {4}"items": \[/)
    const list = JSON.parse(r.stdout) as {
      kind: string
      items: Array<{
        kind: string
        metadata: { name: string; labels: Record<string, string>; annotations: Record<string, string> }
        status: {
          addresses: Array<{ type: string; address: string }>
          conditions: Array<{ type: string; status: string }>
          nodeInfo: { kubeletVersion: string; systemUUID: string }
        }
      }>
    }
    assert.strictEqual(list.kind, "List")
    assert.deepStrictEqual(
      list.items.map((n) => n.metadata.name),
      ["k3s-server", "k3s-server-2"]
    )
    const s = list.items[0]
    assert.ok(s !== undefined)
    assert.strictEqual(s.kind, "Node")
    assert.strictEqual(s.metadata.labels["node-role.kubernetes.io/control-plane"], "true")
    assert.strictEqual(s.metadata.labels["node-role.kubernetes.io/etcd"], "true")
    assert.match(s.metadata.annotations["etcd.k3s.cattle.io/node-name"] ?? "", /^k3s-server-[0-9a-f]{8}$/)
    assert.strictEqual(s.metadata.annotations["etcd.k3s.cattle.io/node-address"], "127.78.0.10")
    assert.deepStrictEqual(s.status.addresses, [
      { address: "127.78.0.10", type: "InternalIP" },
      { address: "k3s-server", type: "Hostname" }
    ])
    assert.strictEqual(s.status.conditions.find((c) => c.type === "Ready")?.status, "True")
    assert.strictEqual(s.status.nodeInfo.kubeletVersion, "v1.30.5+k3s1")
    assert.notInclude(r.stdout, TOKEN)

    const one = await run(sim, 200, "sudo -n /usr/local/bin/k3s kubectl get node k3s-server-2 -o json")
    assert.strictEqual((JSON.parse(one.stdout) as { metadata: { name: string } }).metadata.name, "k3s-server-2")
    const missing = await run(sim, 200, "sudo -n /usr/local/bin/k3s kubectl get node nope -o json")
    assert.deepStrictEqual(
      [missing.code, missing.stderr],
      [1, 'Error from server (NotFound): nodes "nope" not found\n']
    )
    const noRoot = await run(sim, 200, "/usr/local/bin/k3s kubectl get nodes -o json")
    assert.strictEqual(noRoot.code, 1)
    assert.include(noRoot.stderr, "open /etc/rancher/k3s/k3s.yaml: permission denied")
  })

  it("deletes a node together with its node-password secret and its etcd member", async () => {
    const before = sim.state().k3s
    assert.strictEqual(before.etcdMembers.length, 2)
    assert.ok(before.secrets.some((s) => s.name === "k3s-server-2.node-password.k3s"))
    const secret = await run(
      sim,
      200,
      "sudo -n /usr/local/bin/k3s kubectl -n kube-system get secret k3s-server-2.node-password.k3s -o json"
    )
    assert.strictEqual((JSON.parse(secret.stdout) as { type: string }).type, "k3s.cattle.io/node-password")
    const del = await run(sim, 200, "sudo -n /usr/local/bin/k3s kubectl delete node k3s-server-2 --ignore-not-found")
    assert.deepStrictEqual([del.code, del.stdout], [0, 'node "k3s-server-2" deleted\n'])
    const after = sim.state().k3s
    assert.deepStrictEqual(
      after.nodes.map((n) => n.name),
      ["k3s-server"]
    )
    assert.deepStrictEqual(
      after.secrets.map((s) => s.name),
      ["k3s-server.node-password.k3s"]
    )
    assert.deepStrictEqual(
      after.etcdMembers.map((m) => m.name.replace(/-[0-9a-f]{8}$/, "")),
      ["k3s-server"]
    )
    const again = await run(sim, 200, "sudo -n /usr/local/bin/k3s kubectl delete node k3s-server-2 --ignore-not-found")
    assert.deepStrictEqual([again.code, again.stdout], [0, ""])
    const strict = await run(sim, 200, "sudo -n /usr/local/bin/k3s kubectl delete node k3s-server-2")
    assert.deepStrictEqual(
      [strict.code, strict.stderr],
      [1, 'Error from server (NotFound): nodes "k3s-server-2" not found\n']
    )
    const sec = await run(
      sim,
      200,
      "sudo -n /usr/local/bin/k3s kubectl -n kube-system delete secret k3s-server-2.node-password.k3s --ignore-not-found"
    )
    assert.deepStrictEqual([sec.code, sec.stdout], [0, ""])
    assert.deepStrictEqual(
      sim.k3sEvents().map((e) => e.kind),
      // the API accepts the delete, the etcd controller removes the member, then the Node (and its secret) go
      ["node-deleting", "etcd-member-removed", "node-deleted", "secret-deleted"]
    )
  })

  it("exposes the cluster in GET /state", async () => {
    const res = await until(async () => {
      const r = await fetch(`${sim.info.admin}/state`)
      return r.ok
        ? ((await r.json()) as { k3s: { version: string; nodes: Array<{ name: string; ready: string }> } })
        : undefined
    })
    assert.strictEqual(res.k3s.version, "v1.30.5+k3s1")
    const added = await fetch(`${sim.info.admin}/faults`, {
      method: "POST",
      body: JSON.stringify({ kind: "k3sBadToken", vmid: 301, part: "caHash" })
    })
    assert.strictEqual(added.status, 200)
    assert.deepStrictEqual(sim.faults(), [{ kind: "k3sBadToken", vmid: 301, part: "caHash" }])
    const bad = await fetch(`${sim.info.admin}/faults`, {
      method: "POST",
      body: JSON.stringify({ kind: "k3sBadToken", part: "x" })
    })
    assert.strictEqual(bad.status, 400)
    await fetch(`${sim.info.admin}/faults?kind=k3sBadToken`, { method: "DELETE" })
    assert.deepStrictEqual(sim.faults(), [])
    assert.deepStrictEqual(res.k3s.nodes, [{ ...res.k3s.nodes[0], name: "k3s-server", ready: "True" }])
  })
})
