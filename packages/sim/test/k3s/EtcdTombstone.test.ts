import { afterEach, assert, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { removedMemberRejoins, tombstoneNeedsServer } from "../../src/k3s/EtcdTombstone.js"
import { until } from "../helpers.js"
import { closeConnections, haScenario, journal, k3sScenario, nodeOf, run } from "./k3sHelpers.js"

const start = (version: string) => {
  const base = k3sScenario({ secondServer: true })
  return startSimPromise({ ...base, k3s: { ...base.k3s, version } })
}

const members = (sim: SimHandle, node: string) =>
  sim.state().k3s.etcdMembers.filter((m) => m.name.replace(/-[0-9a-f]{8}$/, "") === node)

const event = (sim: SimHandle, kind: string, node: string) =>
  until(async () => sim.k3sEvents().find((e) => e.kind === kind && e.node.startsWith(node)))

describe("the releases that rejoin a removed member at its next start", () => {
  it("are the January 2026 -k3s3 releases of v1.32–v1.35 and later; the refusal without --server came a month later", () => {
    for (const v of ["v1.30.5+k3s1", "v1.31.13+k3s1", "v1.32.11+k3s1", "v1.33.7+k3s1", "v1.34.3+k3s1", "v1.35.0+k3s1"])
      assert.isFalse(removedMemberRejoins(v), v)
    for (const v of ["v1.32.11+k3s3", "v1.33.7+k3s3", "v1.34.3+k3s3", "v1.34.4+k3s1", "v1.35.0+k3s3", "v1.36.1+k3s1"])
      assert.isTrue(removedMemberRejoins(v), v)
    assert.isFalse(tombstoneNeedsServer("v1.35.0+k3s3"))
    assert.isTrue(tombstoneNeedsServer("v1.35.1+k3s1"))
    assert.isFalse(tombstoneNeedsServer("v1.34.3+k3s3"))
    assert.isTrue(tombstoneNeedsServer("v1.34.4+k3s1"))
    assert.isFalse(tombstoneNeedsServer("v1.31.13+k3s1"))
  })
})

describe("a running server whose Node is deleted (its etcd member removed)", () => {
  let sim: SimHandle | undefined
  afterEach(async () => {
    await closeConnections()
    await sim?.stop()
    sim = undefined
  })

  it("v1.30.5+k3s1: k3s exits on etcd's refusal and systemd starts it again, forever; no tombstone", async () => {
    const s = await start("v1.30.5+k3s1")
    sim = s
    const del = await run(s, 200, "sudo -n /usr/local/bin/k3s kubectl delete node k3s-server-2")
    assert.strictEqual(del.code, 0, del.stderr)
    await event(s, "etcd-member-removed", "k3s-server-2")
    const restarted = await until(async () => {
      const j = await journal(s, 202, "k3s")
      return j.includes("restart counter is at 1") ? j : undefined
    })
    assert.include(restarted, "data-dir used by this member must be removed")
    assert.include(restarted, 'level=fatal msg="etcdserver: the member has been permanently removed from the cluster"')
    assert.notInclude(restarted, "tombstone")
    assert.strictEqual((await run(s, 202, "systemctl is-active k3s")).stdout, "activating\n")
    assert.strictEqual((await run(s, 202, "sudo -n test -e /var/lib/rancher/k3s/server/db/etcd/tombstone")).code, 1)
    assert.isUndefined(nodeOf(s, "k3s-server-2"))
  })

  it("v1.34.3+k3s3: k3s writes the tombstone and runs on without etcd; a restart moves the data aside and joins as a new member", async () => {
    const s = await start("v1.34.3+k3s3")
    sim = s
    const before = members(s, "k3s-server-2")
    assert.strictEqual(before.length, 1)
    const del = await run(s, 200, "sudo -n /usr/local/bin/k3s kubectl delete node k3s-server-2")
    assert.strictEqual(del.code, 0, del.stderr)
    await event(s, "etcd-tombstone-written", "k3s-server-2")
    const j = await journal(s, 202, "k3s")
    assert.include(j, "the member has been permanently removed from the cluster")
    assert.include(
      j,
      'level=info msg="This node has been removed from the cluster - please restart k3s to rejoin the cluster"'
    )
    assert.notInclude(j, "level=fatal")
    // the process runs on (no exit, no restart by systemd), without a datastore: its apiserver cannot answer
    assert.strictEqual((await run(s, 202, "systemctl is-active k3s")).stdout, "active\n")
    assert.strictEqual((await run(s, 202, "sudo -n test -e /var/lib/rancher/k3s/server/db/etcd/tombstone")).code, 0)
    const local = await run(s, 202, "sudo -n /usr/local/bin/k3s kubectl get nodes")
    assert.strictEqual(local.code, 1)
    assert.isUndefined(nodeOf(s, "k3s-server-2"))
    assert.strictEqual(members(s, "k3s-server-2").length, 0)

    assert.strictEqual((await run(s, 202, "sudo -n systemctl restart k3s")).code, 0)
    const moved = await event(s, "etcd-data-moved-aside", "k3s-server-2")
    assert.match(moved.detail ?? "", /^\/var\/lib\/rancher\/k3s\/server\/db\/etcd-old-\d+$/)
    await event(s, "server-join-finish", "k3s-server-2")
    const after = await journal(s, 202, "k3s")
    assert.include(after, 'level=info msg="tombstone file has been detected, removing data dir to rejoin the cluster"')
    assert.match(after, /Adding member k3s-server-2-[0-9a-f]{8}=https:\/\/127\.78\.0\.12:2380 to etcd cluster/)
    const now = members(s, "k3s-server-2")
    assert.strictEqual(now.length, 1)
    assert.notStrictEqual(now[0]?.name, before[0]?.name)
    assert.notStrictEqual(now[0]?.id, before[0]?.id)
    assert.strictEqual(nodeOf(s, "k3s-server-2")?.vmid, 202)
    // the old data, tombstone and name file with it, is kept beside the new
    const ls = await run(s, 202, `sudo -n cat ${moved.detail}/name ${moved.detail}/tombstone`)
    assert.deepStrictEqual([ls.code, ls.stdout], [0, `${before[0]?.name}\n`])
    assert.strictEqual((await run(s, 202, "sudo -n test -e /var/lib/rancher/k3s/server/db/etcd/tombstone")).code, 1)
  })

  it("v1.34.3+k3s3, k3s stopped while its member was removed: it starts on the old data, writes the tombstone and waits (activating) for a restart", async () => {
    // three servers: with one stopped, etcd still removes a member (two of three run)
    const s = await startSimPromise(haScenario({ k3s: { version: "v1.34.3+k3s3" } }))
    sim = s
    assert.strictEqual((await run(s, 202, "sudo -n systemctl stop k3s")).code, 0)
    assert.strictEqual((await run(s, 200, "sudo -n /usr/local/bin/k3s kubectl delete node s3")).code, 0)
    await event(s, "etcd-member-removed", "s3")
    assert.strictEqual((await run(s, 202, "sudo -n systemctl start --no-block k3s")).code, 0)
    await event(s, "etcd-tombstone-written", "s3")
    assert.strictEqual((await run(s, 202, "systemctl is-active k3s")).stdout, "activating\n")
    const j = await journal(s, 202, "k3s")
    assert.include(j, "data-dir used by this member must be removed")
    assert.notInclude(j, "level=fatal")
    assert.strictEqual((await run(s, 202, "sudo -n systemctl restart k3s")).code, 0)
    await event(s, "server-join-finish", "s3")
    assert.strictEqual(nodeOf(s, "s3")?.vmid, 202)
  })

  it("the --cluster-init server removed: v1.35.0+k3s3 starts a new, separate cluster at its restart; v1.35.1+k3s1 refuses", async () => {
    const split = await start("v1.35.0+k3s3")
    sim = split
    assert.strictEqual((await run(split, 202, "sudo -n /usr/local/bin/k3s kubectl delete node k3s-server")).code, 0)
    await event(split, "etcd-tombstone-written", "k3s-server")
    assert.strictEqual((await run(split, 200, "sudo -n systemctl restart k3s")).code, 0)
    await event(split, "cluster-init", "k3s-server")
    assert.deepStrictEqual(
      split.state().k3s.strayClusters.map((c) => c.nodes),
      [["k3s-server"]]
    )
    await closeConnections()
    await split.stop()

    const refused = await start("v1.35.1+k3s1")
    sim = refused
    assert.strictEqual((await run(refused, 202, "sudo -n /usr/local/bin/k3s kubectl delete node k3s-server")).code, 0)
    await event(refused, "etcd-tombstone-written", "k3s-server")
    await run(refused, 200, "sudo -n systemctl restart --no-block k3s")
    const j = await until(async () => {
      const text = await journal(refused, 200, "k3s")
      return text.includes("--server is empty") ? text : undefined
    })
    assert.include(
      j,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: k3s's own words, a literal ${datadir}
      'level=fatal msg="tombstone file has been detected but --server is empty: backup and delete ${datadir}/server/db to create a new cluster, or set --server to rejoin"'
    )
    assert.notInclude(j, "removing data dir to rejoin")
    assert.strictEqual(
      (await run(refused, 200, "sudo -n test -e /var/lib/rancher/k3s/server/db/etcd/tombstone")).code,
      0
    )
    assert.deepStrictEqual(refused.state().k3s.strayClusters, [])
  })
})
