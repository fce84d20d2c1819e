import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import {
  type ClusterNode,
  clusterVersionOf,
  compareVersions,
  decodeNode,
  decodeNodeList,
  evaluateMembership
} from "../src/ClusterNode.js"
import { type NodeSpec, nodeJson, nodeListJson } from "./support/fixtures.js"

const decodeAll = (specs: ReadonlyArray<NodeSpec>): ReadonlyArray<ClusterNode> => {
  const decoded = decodeNodeList(nodeListJson(specs.map(nodeJson)))
  if (Result.isFailure(decoded)) throw new Error(decoded.failure)
  return decoded.success
}

const s1: NodeSpec = { name: "k3s-s1", ip: "10.0.10.11", role: "server" }
const a1: NodeSpec = { name: "k3s-a1", ip: "10.0.10.21", role: "agent" }

describe("decodeNodeList", () => {
  it("decodes names, roles, Ready, InternalIP, versions and UUIDs from kubectl's List JSON", () => {
    const [server, agent] = decodeAll([s1, { ...a1, uuid: "11111111-2222-3333-4444-555555555555" }])
    assert.deepStrictEqual(server?.roleLabels, ["control-plane", "etcd", "master"])
    assert.strictEqual(server?.role, "server")
    assert.strictEqual(server?.etcdMemberName, "k3s-s1-5f3a9c1e")
    assert.strictEqual(agent?.role, "agent")
    assert.deepStrictEqual(agent?.roleLabels, [])
    assert.strictEqual(agent?.ready, "True")
    assert.deepStrictEqual(agent?.internalIPs, ["10.0.10.21"])
    assert.strictEqual(agent?.kubeletVersion, "v1.30.5+k3s1")
    assert.strictEqual(agent?.systemUUID, "11111111-2222-3333-4444-555555555555")
    assert.strictEqual(agent?.deleting, false)
  })

  it("finds Ready by type, wherever it is, and keeps Unknown distinct from False", () => {
    const [first, unknown, notReady] = decodeAll([
      { ...a1, readyFirst: true },
      { ...a1, name: "u", ready: "Unknown" },
      { ...a1, name: "f", ready: "False" }
    ])
    assert.strictEqual(first?.ready, "True")
    assert.strictEqual(unknown?.ready, "Unknown")
    assert.match(unknown?.readyDetail ?? "", /NodeStatusUnknown/)
    assert.strictEqual(notReady?.ready, "False")
    assert.match(notReady?.readyDetail ?? "", /KubeletNotReady/)
  })

  it("treats a v1.34 server (no master label) as a server and a Node without conditions as Missing", () => {
    const [server] = decodeAll([{ ...s1, master: false }])
    assert.deepStrictEqual(server?.roleLabels, ["control-plane", "etcd"])
    const bare = decodeNode(JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: "fresh" } }))
    assert.isTrue(Result.isSuccess(bare) && bare.success.ready === "Missing" && bare.success.internalIPs.length === 0)
  })

  it("takes the role from what k3s runs as (k3s.io/node-args), not from a role label set by hand", () => {
    /** The Node of `spec` with exactly `labels` as its role labels, and `args` as its k3s.io/node-args (or none). */
    const labelled = (spec: NodeSpec, labels: Record<string, string>, args?: string) => {
      const json = nodeJson(spec) as {
        metadata: { labels: Record<string, string>; annotations: Record<string, string> }
      }
      for (const key of Object.keys(json.metadata.labels))
        if (key.startsWith("node-role.kubernetes.io/")) delete json.metadata.labels[key]
      Object.assign(json.metadata.labels, labels)
      if (args === undefined) delete json.metadata.annotations["k3s.io/node-args"]
      else json.metadata.annotations["k3s.io/node-args"] = args
      const decoded = decodeNodeList(nodeListJson([json]))
      if (Result.isFailure(decoded)) throw new Error(decoded.failure)
      return decoded.success[0]
    }
    const controlPlane = { "node-role.kubernetes.io/control-plane": "true" }
    // an agent someone labelled control-plane: still an agent (its k3s runs `agent`)
    const agent = labelled(a1, controlPlane, '["agent","--node-label","tier=gold"]')
    assert.strictEqual(agent?.role, "agent")
    assert.deepStrictEqual(agent?.roleLabels, ["control-plane"])
    // a server whose role labels were removed by hand: still a server
    const server = labelled(s1, {}, '["server","--cluster-init","true"]')
    assert.strictEqual(server?.role, "server")
    assert.deepStrictEqual(server?.roleLabels, [])
    // without the annotation (or an unreadable one), the labels decide, as before
    assert.strictEqual(labelled(a1, controlPlane)?.role, "server")
    assert.strictEqual(labelled(a1, controlPlane, "not json")?.role, "server")
    assert.strictEqual(labelled(a1, {}, "[]")?.role, "agent")
  })

  it("reads the K3S_* environment k3s records in k3s.io/node-env (secrets masked); none when missing or unreadable", () => {
    const withEnv = (env: string | undefined) => {
      const json = nodeJson(s1) as { metadata: { annotations: Record<string, string> } }
      if (env === undefined) delete json.metadata.annotations["k3s.io/node-env"]
      else json.metadata.annotations["k3s.io/node-env"] = env
      const decoded = decodeNodeList(nodeListJson([json]))
      if (Result.isFailure(decoded)) throw new Error(decoded.failure)
      return decoded.success[0]?.nodeEnv
    }
    assert.deepStrictEqual(withEnv('{"K3S_DATASTORE_ENDPOINT":"********","K3S_TOKEN":"********"}'), {
      K3S_DATASTORE_ENDPOINT: "********",
      K3S_TOKEN: "********"
    })
    assert.deepStrictEqual(withEnv("{}"), {})
    assert.isUndefined(withEnv(undefined))
    assert.isUndefined(withEnv("not json"))
    assert.isUndefined(withEnv('["K3S_TOKEN"]'))
  })

  it("fails on output that is not a node list", () => {
    assert.isTrue(Result.isFailure(decodeNodeList("The connection to the server 127.0.0.1:6443 was refused")))
    assert.isTrue(Result.isFailure(decodeNodeList(JSON.stringify({ items: [{ metadata: {} }] }))))
  })
})

describe("evaluateMembership", () => {
  const nodes = decodeAll([s1, a1, { name: "k3s-a2", ip: "10.0.10.22", role: "agent", ready: "Unknown" }])

  it("is Member only with the right name, role and IP and Ready True", () => {
    const m = evaluateMembership(nodes, { name: "k3s-a1", role: "agent", ip: "10.0.10.21" })
    assert.strictEqual(m._tag, "Member")
  })

  it("is Absent when no Node has the name (even if the IP is known)", () => {
    const m = evaluateMembership(nodes, { name: "k3s-a9", role: "agent", ip: "10.0.10.21" })
    assert.deepStrictEqual(m, { _tag: "Absent", name: "k3s-a9" })
  })

  it("reports role, IP and UUID mismatches instead of trusting the name", () => {
    const role = evaluateMembership(nodes, { name: "k3s-a1", role: "server", ip: "10.0.10.21" })
    assert.isTrue(role._tag === "Mismatch" && role.mismatches[0]?.field === "role")
    const ip = evaluateMembership(nodes, { name: "k3s-a1", role: "agent", ip: "10.0.10.99" })
    assert.isTrue(
      ip._tag === "Mismatch" && ip.mismatches[0]?.field === "ip" && ip.mismatches[0]?.actual === "10.0.10.21"
    )
    const uuid = evaluateMembership(nodes, {
      name: "k3s-a1",
      role: "agent",
      systemUUID: "00000000-0000-0000-0000-000000000000"
    })
    assert.isTrue(uuid._tag === "Mismatch" && uuid.mismatches[0]?.field === "systemUUID")
    const sameUuid = evaluateMembership(nodes, {
      name: "k3s-a1",
      role: "agent",
      systemUUID: "8E744D56-FBA0-C071-A9C1-3CDF163BA8D7"
    })
    assert.strictEqual(sameUuid._tag, "Member")
  })

  it("is NotReady for Unknown and for a Node being deleted", () => {
    assert.strictEqual(evaluateMembership(nodes, { name: "k3s-a2", role: "agent" })._tag, "NotReady")
    const deleting = decodeAll([{ ...a1, deleting: true }])
    assert.strictEqual(evaluateMembership(deleting, { name: "k3s-a1", role: "agent" })._tag, "NotReady")
  })
})

describe("clusterVersionOf", () => {
  it("is the oldest control-plane kubelet version; agents do not count", () => {
    const nodes = decodeAll([
      { ...s1, version: "v1.30.10+k3s1" },
      { ...s1, name: "k3s-s2", version: "v1.30.5+k3s1" },
      { ...a1, version: "v1.29.0+k3s1" }
    ])
    assert.strictEqual(clusterVersionOf(nodes), "v1.30.5+k3s1")
    assert.isUndefined(clusterVersionOf(decodeAll([a1])))
  })

  it("compares versions numerically", () => {
    assert.isTrue(compareVersions("v1.30.5+k3s1", "v1.30.10+k3s1") < 0)
    assert.isTrue(compareVersions("v1.31.0+k3s1", "v1.30.10+k3s2") > 0)
    assert.isTrue(compareVersions("v1.30.5+k3s2", "v1.30.5+k3s1") > 0)
    assert.strictEqual(compareVersions("v1.30.5+k3s1", "v1.30.5+k3s1"), 0)
  })
})
