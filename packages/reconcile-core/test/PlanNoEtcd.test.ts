import { assert, describe, it } from "@effect/vitest"
import type { ClusterNode } from "@homelab/k3s-join"
import type { DesiredK3s } from "../src/Desired.js"
import { k3sDesired, k3sObserved, planOf, steps } from "./k3sFixture.js"

const vms = ["s1", "s2", "a1"]
const server = { host: "10.0.0.5", port: 22, user: "ubuntu", apiPort: 6443 }

/** The cluster's one server, not ours: `k3s.server` at 10.0.0.5, started as `args` say, with the role labels k3s gives it. */
const serverNode = (args: ReadonlyArray<string>, etcd = false): ClusterNode => ({
  name: "k3s-server",
  roleLabels: etcd ? ["control-plane", "etcd", "master"] : ["control-plane", "master"],
  role: "server",
  ready: "True",
  readyDetail: "",
  internalIPs: ["10.0.0.5"],
  kubeletVersion: "v1.30.5+k3s1",
  systemUUID: undefined,
  deleting: false,
  etcdMemberName: etcd ? "k3s-server-0a1b2c3d" : undefined,
  nodeArgs: args
})

/** Our VMs run and have no Node yet: the plan joins them to the cluster of `node`. */
const planWith = (node: ClusterNode, k3s: Partial<DesiredK3s> = {}) =>
  planOf(k3sDesired(vms, { server, ...k3s }), k3sObserved(vms, { _tag: "Nodes", nodes: [node] }))

describe("server joins into a cluster without embedded etcd", () => {
  it("SQLite: the servers' joins are blocked (k3s.no-etcd), one finding naming the server and both ways out; the agent joins", () => {
    const p = planWith(serverNode(["server"]))
    assert.deepStrictEqual(steps(p), ["JoinK3s:a1"])
    const found = p.findings.filter((f) => f.code === "k3s.no-etcd")
    assert.deepStrictEqual(
      found.map((f) => [f.vm, f.node, f.effect]),
      [
        ["s1", "pve-s1", "blocked"],
        ["s2", "pve-s2", "blocked"]
      ]
    )
    assert.strictEqual(
      found[0]?.message,
      "s1 cannot join k3s as a server: k3s-server (10.0.0.5), the cluster's server, runs k3s on SQLite (started without --cluster-init, as `curl -sfL https://get.k3s.io | sh -` installs it), and no server can join a server without embedded etcd (its k3s would stop at every start on 'server-bootstrap: 400 Bad Request'); agents join it"
    )
    assert.strictEqual(
      found[0]?.hint,
      "convert k3s-server to embedded etcd (k3s v1.22.2 or later moves its SQLite data into etcd; workloads stay): on 10.0.0.5 run `echo 'cluster-init: true' | sudo tee -a /etc/rancher/k3s/config.yaml && sudo systemctl restart k3s`, wait until `sudo k3s kubectl get nodes` shows it Ready with the etcd role, then run `homelab apply` again; or set `role: agent` for s1 and s2 in homelab.yaml"
    )
    assert.strictEqual(found[1]?.message, "s2 cannot join k3s as a server: k3s-server runs k3s on SQLite (above)")
  })

  it("embedded etcd (the server carries the etcd role): the servers join", () => {
    const p = planWith(serverNode(["server", "--cluster-init"], true))
    assert.sameMembers(steps(p), ["JoinK3s:s1", "JoinK3s:s2", "JoinK3s:a1"])
    assert.isFalse(p.findings.some((f) => f.code === "k3s.no-etcd"))
  })

  it("an external datastore: the servers' joins wait for --datastore-endpoint in k3s.serverFlags, then go ahead", () => {
    const external = serverNode(["server", "--datastore-endpoint", "********"])
    const blocked = planWith(external)
    assert.deepStrictEqual(steps(blocked), ["JoinK3s:a1"])
    const found = blocked.findings.filter((f) => f.code === "k3s.no-etcd")
    assert.strictEqual(found.length, 2)
    assert.include(found[0]?.message, "keeps the cluster in an external datastore (--datastore-endpoint)")
    assert.include(found[0]?.hint, "add the cluster's --datastore-endpoint to k3s.serverFlags")
    const joined = planWith(external, { serverFlags: ["--datastore-endpoint=postgres://k3s:secret@db:5432/k3s"] })
    assert.sameMembers(steps(joined), ["JoinK3s:s1", "JoinK3s:s2", "JoinK3s:a1"])
    assert.isFalse(joined.findings.some((f) => f.code === "k3s.no-etcd"))
  })

  it("an external datastore given as K3S_DATASTORE_ENDPOINT (k3s.io/node-env, not node-args) is an external datastore, not SQLite", () => {
    const external = { ...serverNode(["server"]), nodeEnv: { K3S_DATASTORE_ENDPOINT: "********" } }
    const blocked = planWith(external)
    const found = blocked.findings.filter((f) => f.code === "k3s.no-etcd")
    assert.strictEqual(found.length, 2)
    assert.include(found[0]?.message, "keeps the cluster in an external datastore (--datastore-endpoint)")
    assert.notInclude(found[0]?.message, "SQLite")
    const joined = planWith(external, { serverFlags: ["--datastore-endpoint=postgres://k3s:secret@db:5432/k3s"] })
    assert.sameMembers(steps(joined), ["JoinK3s:s1", "JoinK3s:s2", "JoinK3s:a1"])
  })
})
