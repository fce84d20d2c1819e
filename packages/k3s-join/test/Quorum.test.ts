import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import type { ClusterNode } from "../src/ClusterNode.js"
import { decodeDbInfo, membersOfNode, quorumCheck } from "../src/Quorum.js"

const node = (name: string, role: "server" | "agent", ready: ClusterNode["ready"] = "True"): ClusterNode => ({
  name,
  roleLabels: role === "server" ? ["control-plane", "etcd"] : [],
  role,
  ready,
  readyDetail: "",
  internalIPs: [],
  kubeletVersion: "v1.30.5+k3s1",
  systemUUID: undefined,
  deleting: false,
  etcdMemberName: undefined
})

const member = (name: string, isLearner = false) => ({
  id: "1",
  name,
  peerURL: undefined,
  clientURL: undefined,
  isLearner
})

describe("decodeDbInfo", () => {
  it("keeps 64-bit member IDs exact (as text) and reads learners", () => {
    const json =
      '{"header":{"cluster_id":17237436991929493444,"member_id":9372538179322589801,"raft_term":5},"members":[{"ID":9372538179322589801,"name":"s1-0a1b2c3d","peerURLs":["https://10.0.10.11:2380"],"clientURLs":["https://10.0.10.11:2379"]},{"ID":12345,"name":"s2-aabbccdd","peerURLs":["https://10.0.10.12:2380"],"isLearner":true}]}'
    assert.deepStrictEqual(Result.getOrThrow(decodeDbInfo(json)), [
      {
        id: "9372538179322589801",
        name: "s1-0a1b2c3d",
        peerURL: "https://10.0.10.11:2380",
        clientURL: "https://10.0.10.11:2379",
        isLearner: false
      },
      { id: "12345", name: "s2-aabbccdd", peerURL: "https://10.0.10.12:2380", clientURL: undefined, isLearner: true }
    ])
    assert.isTrue(Result.isFailure(decodeDbInfo("Unauthorized")))
  })
})

describe("quorumCheck", () => {
  const facts = (ready3: ClusterNode["ready"]) => ({
    nodes: [node("s1", "server"), node("s2", "server"), node("s3", "server", ready3), node("a1", "agent")],
    members: [member("s1-00000001"), member("s2-00000002"), member("s3-00000003")]
  })

  it("3 healthy members: any one server may go (2 stay, quorum 2)", () => {
    const v = quorumCheck(facts("True"), "s2", "upgrade")
    assert.deepStrictEqual([v.ok, v.voters, v.needed, v.healthyOthers], [true, 3, 2, 2])
  })

  it("one down: a second server may not go; the reason names every member and what to fix", () => {
    const v = quorumCheck(facts("Unknown"), "s1", "rebuild")
    assert.deepStrictEqual([v.ok, v.healthyOthers], [false, 1])
    assert.strictEqual(
      v.reason,
      "rebuild of s1 would leave 1 of 3 etcd members healthy, quorum needs 2 (s1-00000001 Ready, s2-00000002 Ready, s3-00000003 NotReady (Unknown)): bring s3 back (or remove its stale member) first"
    )
    // the down one itself may be rebuilt: the others keep quorum
    assert.isTrue(quorumCheck(facts("Unknown"), "s3", "rebuild").ok)
  })

  it("agents and learners do not count; a member without a Node is not healthy", () => {
    assert.isTrue(quorumCheck(facts("Unknown"), "a1", "restart").ok)
    const stale = {
      nodes: [node("s1", "server"), node("s2", "server")],
      members: [member("s1-00000001"), member("s2-00000002"), member("s3-00000003"), member("s4-00000004", true)]
    }
    const v = quorumCheck(stale, "s2", "upgrade")
    assert.deepStrictEqual([v.ok, v.voters, v.needed, v.healthyOthers], [false, 3, 2, 1])
    assert.deepStrictEqual(
      membersOfNode(stale, "s3").map((m) => m.name),
      ["s3-00000003"]
    )
    // a two-member cluster cannot lose either
    const two = {
      nodes: [node("s1", "server"), node("s2", "server")],
      members: [member("s1-00000001"), member("s2-00000002")]
    }
    assert.isFalse(quorumCheck(two, "s1", "destroy").ok)
  })
})
