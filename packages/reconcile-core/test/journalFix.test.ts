import { assert, describe, it } from "@effect/vitest"
import { classifyLine, type JournalFailure } from "@homelab/k3s-join"
import { journalFix } from "../src/journalFix.js"

const lines: Record<JournalFailure, string> = {
  NodePasswordRejected: "Node password rejected, duplicate hostname",
  UndefinedFlag: "flag provided but not defined: -disable",
  DuplicateEtcdMember: "ETCD join failed: duplicate node name found, please use a unique name for this node",
  EtcdMemberRemoved: `{"level":"warn","caller":"etcdserver/server.go:1096","msg":"data-dir used by this member must be removed"}`,
  EtcdMemberRemovedRestart:
    'level=info msg="This node has been removed from the cluster - please restart k3s to rejoin the cluster"',
  TooManyLearners: "etcdserver: too many learner members in cluster",
  CaHashMismatch: "token CA hash does not match the Cluster CA certificate hash",
  NotAServerToken: "failed to normalize server token",
  DatastoreTokenMismatch: "bootstrap data already found and encrypted with different token",
  ConfigMismatch: "critical configuration value mismatch",
  NoEmbeddedEtcd:
    "starting kubernetes: preparing server: failed to bootstrap cluster data: https://10.0.0.11:6443/v1-k3s/server-bootstrap: 400 Bad Request",
  SanMismatch: "x509: certificate is valid for 10.43.0.1, not 1.2.3.4",
  Unauthorized: "https://10.0.0.11:6443/v1-k3s/server-bootstrap: 401 Unauthorized",
  ServerUnreachable: "dial tcp 10.0.0.11:6443: connect: connection refused",
  EtcdUnavailable:
    'time="2026-12-07T20:48:55Z" level=info msg="Failed to test data store connection: context deadline exceeded"'
}

describe("journalFix", () => {
  it("names the cause and the fix of every failure the journal classifier knows", () => {
    for (const [failure, line] of Object.entries(lines)) {
      const classified = classifyLine(line)
      assert.strictEqual(classified?.failure, failure)
      const fix = journalFix(classified!, "s1", "10.0.0.11")
      assert.isAbove(fix.length, 40, failure)
    }
    const tokenFix = journalFix(classifyLine(lines.Unauthorized)!, "s1", "10.0.0.11")
    assert.include(tokenFix, "set k3s.token to the cluster's server token")
    assert.notInclude(tokenFix, "401")
    const removed = journalFix(classifyLine(lines.EtcdMemberRemoved)!, "s1", "10.0.0.11")
    assert.include(removed, "sudo rm -rf /var/lib/rancher/k3s/server/db` on 10.0.0.11")
    assert.include(removed, "`homelab reprovision s1`")
    // k3s since January 2026 recovers by itself at a restart: the hint says which releases
    assert.include(removed, "v1.34.3+k3s3")
    const etcd = journalFix(classifyLine(lines.EtcdUnavailable)!, "s1", "10.0.0.11")
    assert.include(etcd, "k3s on s1 waits for etcd, which does not answer")
    assert.include(etcd, "`sudo systemctl stop k3s && sudo k3s server --cluster-reset` on 10.0.0.11")
    const restart = journalFix(classifyLine(lines.EtcdMemberRemovedRestart)!, "s1", "10.0.0.11")
    assert.include(restart, "`sudo systemctl restart k3s` on 10.0.0.11")
    assert.include(restart, "joins again as a new member")
    assert.notInclude(restart, "rm -rf")
    const noEtcd = journalFix(classifyLine(lines.NoEmbeddedEtcd)!, "s1", "10.0.0.11")
    assert.include(
      noEtcd,
      "echo 'cluster-init: true' | sudo tee -a /etc/rancher/k3s/config.yaml && sudo systemctl restart k3s"
    )
    assert.include(noEtcd, "set s1's role to agent")
  })
})
