import { assert, describe, it } from "@effect/vitest"
import { StaleEtcdMember, staleMemberRefusal } from "../src/K3sJoinError.js"

describe("StaleEtcdMember", () => {
  it("says why the join is refused in staleMemberRefusal's words (shared with a plan that holds the join back), and that nothing was installed", () => {
    const error = new StaleEtcdMember({
      node: "k3s-vm-pve",
      member: "k3s-vm-pve-0a1b2c3d",
      memberId: "3ea",
      peerURL: "https://10.0.0.11:2380",
      server: "10.0.0.12"
    })
    const refusal = staleMemberRefusal("k3s-vm-pve", [
      { name: "k3s-vm-pve-0a1b2c3d", id: "3ea", peerURL: "https://10.0.0.11:2380" }
    ])
    assert.strictEqual(error.refusal, refusal)
    assert.strictEqual(error.message, `${refusal}; nothing was installed on k3s-vm-pve`)
    // the words as they were
    assert.strictEqual(
      error.message,
      "etcd still has the member k3s-vm-pve-0a1b2c3d (ID 3ea, peer https://10.0.0.11:2380) of an earlier k3s-vm-pve, and no Node owns it (deleted with its finalizers removed, or never registered): k3s removes a member only through its Node, so k3s-vm-pve would fail to join with 'duplicate node name found' and restart forever; nothing was installed on k3s-vm-pve"
    )
  })

  it("staleMemberRefusal names every member, without a peer when it has none", () => {
    assert.strictEqual(
      staleMemberRefusal("s3", [
        { name: "s3-00000002", id: "3ea", peerURL: undefined },
        { name: "s3-0a0b0c0d", id: "1000", peerURL: null }
      ]),
      "etcd still has the members s3-00000002 (ID 3ea), s3-0a0b0c0d (ID 1000) of an earlier s3, and no Node owns them (deleted with its finalizers removed, or never registered): k3s removes a member only through its Node, so s3 would fail to join with 'duplicate node name found' and restart forever"
    )
  })
})
