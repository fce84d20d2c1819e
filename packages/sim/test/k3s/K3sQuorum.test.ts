import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { pxClient, until, waitTask } from "../helpers.js"
import { closeConnections, haScenario, run } from "./k3sHelpers.js"

const K = "sudo -n /usr/local/bin/k3s kubectl"

const power = async (sim: SimHandle, vmid: number, action: "start" | "stop") => {
  const px = pxClient(sim)
  const q = px.nodes.$("pve").qemu.$(vmid).status
  const upid = action === "stop" ? await q.stop.$post() : await q.start.$post()
  const t = await waitTask(px, "pve", upid as unknown as string)
  assert.strictEqual(t.exitstatus, "OK")
}

interface DbInfo {
  readonly header: { readonly member_id: number }
  readonly members: ReadonlyArray<{
    readonly name: string
    readonly peerURLs: ReadonlyArray<string>
    readonly isLearner?: boolean
  }>
}

describe("embedded etcd: membership, quorum, member removal on Node deletion", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(haScenario())
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("/db/info lists the members: anonymous from localhost only, and only with -k (self-signed)", async () => {
    const r = await run(sim, 200, "curl -sk https://127.0.0.1:6443/db/info")
    assert.strictEqual(r.code, 0)
    const info = JSON.parse(r.stdout) as DbInfo
    assert.deepStrictEqual(
      info.members.map((m) => [m.name.replace(/-[0-9a-f]{8}$/, ""), m.peerURLs[0]]),
      [
        ["s1", "https://127.78.1.10:2380"],
        ["s2", "https://127.78.1.11:2380"],
        ["s3", "https://127.78.1.12:2380"]
      ]
    )
    // IDs are 64-bit: kubectl-style consumers must not read them as JS numbers
    assert.match(r.stdout, /"ID":\d+,/)
    const remote = await run(sim, 301, "curl -sk https://127.78.1.10:6443/db/info")
    assert.strictEqual((JSON.parse(remote.stdout) as { code: number }).code, 401)
    const strict = await run(sim, 200, "curl -sS https://127.0.0.1:6443/db/info")
    assert.strictEqual(strict.code, 60)
    const agent = await run(sim, 301, "curl -sSk https://127.0.0.1:6443/ping")
    assert.deepStrictEqual(
      [agent.code, agent.stderr.split("\n")[0]],
      [7, "curl: (7) Failed to connect to 127.0.0.1 port 6443 after 0 ms: Couldn't connect to server"]
    )
  })

  it("one server down keeps quorum (2 of 3); two down: the API stops serving; one back: it serves again", async () => {
    await power(sim, 202, "stop")
    const one = await run(sim, 200, `${K} get nodes -o name`)
    assert.strictEqual(one.code, 0)
    await power(sim, 201, "stop")
    const lost = await run(sim, 200, `${K} get nodes`)
    assert.deepStrictEqual([lost.code, lost.stderr], [1, "Error from server: etcdserver: request timed out\n"])
    const info = await run(sim, 200, "curl -sk https://127.0.0.1:6443/db/info")
    assert.strictEqual(
      (JSON.parse(info.stdout) as { code: number; message: string }).message,
      "etcdserver: request timed out"
    )
    // a server restarting without quorum waits for etcd (its unit stays activating)
    await run(sim, 200, "sudo -n systemctl restart --no-block k3s")
    await until(async () =>
      (await run(sim, 200, "sudo -n journalctl -u k3s --no-pager -n 5 -o cat")).stdout.includes(
        'level=info msg="Waiting for etcd server to become available"'
      )
        ? true
        : undefined
    )
    assert.strictEqual((await run(sim, 200, "systemctl is-active k3s")).stdout, "activating\n")
    await power(sim, 201, "start")
    // s2 boots and its etcd member runs again: quorum is back, and k3s on s1, which waited for etcd, comes up. Until
    // then its API answers nothing (kubectl fails at once, as a real one does): waited for, not raced
    await until(async () => ((await run(sim, 200, "systemctl is-active k3s")).stdout === "active\n" ? true : undefined))
    const back = await run(sim, 200, `${K} wait --for=condition=Ready node/s1 --timeout=30s`)
    assert.deepStrictEqual([back.code, back.stdout], [0, "node/s1 condition met\n"])
    // the moment it was lost (the second server went down), and the moment it was back (a member ran again)
    assert.deepStrictEqual(
      sim
        .k3sEvents()
        .filter((e) => e.kind.startsWith("etcd-quorum-"))
        .map((e) => [e.kind, e.node, e.detail?.replace(/-[0-9a-f]{8}/g, "")]),
      [
        ["etcd-quorum-lost", "", "1 of 3 voting members run, quorum needs 2; not running: s2, s3"],
        ["etcd-quorum-restored", "", "2 of 3 voting members run, quorum needs 2; not running: s3"]
      ]
    )
  })

  it("etcd refuses to remove a running member while another is down: the Node stays deleting until it can", async () => {
    // s3 (202) is still stopped; removing running s2 would leave s1 alone of {s1, s3}: not enough started members
    const del = await run(sim, 200, `${K} delete node s2 --timeout=1s`)
    assert.deepStrictEqual(
      [del.code, del.stdout, del.stderr],
      [1, 'node "s2" deleted\n', "error: timed out waiting for the condition on nodes/s2\n"]
    )
    const node = JSON.parse((await run(sim, 200, `${K} get node s2 -o json`)).stdout) as {
      metadata: { deletionTimestamp?: string; finalizers: Array<string> }
    }
    assert.ok(node.metadata.deletionTimestamp !== undefined)
    assert.include(node.metadata.finalizers, "wrangler.cattle.io/managed-etcd-controller")
    const refused = sim.k3sEvents().find((e) => e.kind === "etcd-member-remove-refused")
    assert.strictEqual(refused?.detail, "etcdserver: re-configuration failed due to not enough started members")
  })

  it("deleting a dead server's Node removes its etcd member first (finalizer), then the Node and its secret", async () => {
    // removing stopped s3 leaves {s1, s2}, both running: allowed; then s2's pending removal can commit too
    const del = await run(sim, 201, `${K} delete node s3 --timeout=30s`)
    assert.deepStrictEqual([del.code, del.stdout, del.stderr], [0, 'node "s3" deleted\n', ""])
    const s3 = sim.k3sEvents().filter((e) => e.node.startsWith("s3"))
    assert.deepStrictEqual(s3.map((e) => e.kind).slice(-4), [
      "node-deleting",
      "etcd-member-removed",
      "node-deleted",
      "secret-deleted"
    ])
    const gone = await run(sim, 200, `${K} wait --for=delete node/s2 --timeout=30s`)
    assert.strictEqual(gone.code, 0)
    const removed = sim
      .k3sEvents()
      .filter((e) => e.kind === "etcd-member-removed")
      .map((e) => e.node.replace(/-[0-9a-f]{8}$/, ""))
    assert.deepStrictEqual(removed, ["s3", "s2"])
    // --for=delete of an object that does not exist succeeds at once, silently
    const none = await run(sim, 200, `${K} wait --for=delete node/s3 --timeout=1s`)
    assert.deepStrictEqual([none.code, none.stdout], [0, ""])
  })
})

describe("a Node NotReady while its k3s runs (k3sNodeNotReady: the container runtime hangs)", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(haScenario())
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("the kubelet posts Ready=False (PLEG is not healthy) while the server's etcd member keeps voting; Ready again once cleared", async () => {
    await until(async () => ((await run(sim, 200, `${K} get nodes`)).stdout.includes(" Ready ") ? true : undefined))
    await sim.addFaults([{ kind: "k3sNodeNotReady", vmid: 201 }])
    const node = JSON.parse((await run(sim, 200, `${K} get node s2 -o json`)).stdout) as {
      status: { conditions: Array<{ type: string; status: string; reason: string; message: string }> }
    }
    const ready = node.status.conditions.find((c) => c.type === "Ready")
    assert.deepStrictEqual([ready?.status, ready?.reason], ["False", "KubeletNotReady"])
    assert.match(ready?.message ?? "", /^PLEG is not healthy: /)
    const table = (await run(sim, 200, `${K} get nodes`)).stdout
    assert.match(table, /\ns2 +NotReady +control-plane,etcd/)
    // k3s on s2 runs on: its apiserver answers, and its etcd member counts for quorum
    assert.strictEqual((await run(sim, 201, "systemctl is-active k3s")).stdout, "active\n")
    assert.strictEqual((await run(sim, 201, `${K} get nodes -o name`)).code, 0)
    await power(sim, 202, "stop")
    assert.strictEqual((await run(sim, 200, `${K} get nodes -o name`)).code, 0)
    assert.deepStrictEqual(
      sim.k3sEvents().filter((e) => e.kind === "etcd-quorum-lost"),
      [],
      "s1 and s2 run: 2 of 3"
    )
    // a restart of NotReady s2 takes the second member down while k3s restarts (etcd runs inside the k3s process):
    // quorum is lost from the restart until s2's etcd runs again, before its k3s is up (the blocking restart returns)
    const since = sim.k3sEvents().length
    const restart = await run(sim, 201, "sudo -n systemctl restart k3s")
    assert.strictEqual(restart.code, 0)
    assert.deepStrictEqual(
      sim
        .k3sEvents()
        .slice(since)
        .filter((e) => e.kind.startsWith("etcd-quorum-"))
        .map((e) => [e.kind, e.detail?.replace(/-[0-9a-f]{8}/g, "")]),
      [
        ["etcd-quorum-lost", "1 of 3 voting members run, quorum needs 2; not running: s2, s3"],
        ["etcd-quorum-restored", "2 of 3 voting members run, quorum needs 2; not running: s3"]
      ]
    )
    // stopped, it stays down: the API stops answering
    await run(sim, 201, "sudo -n systemctl stop k3s")
    const lost = await run(sim, 200, `${K} get nodes`)
    assert.deepStrictEqual([lost.code, lost.stderr], [1, "Error from server: etcdserver: request timed out\n"])
    await run(sim, 201, "sudo -n systemctl start --no-block k3s")
    await power(sim, 202, "start")
    await sim.clearFaults({ kind: "k3sNodeNotReady" })
    // until a second member runs again the API answers nothing (kubectl fails at once): waited for, not raced
    await until(async () => ((await run(sim, 200, `${K} get nodes -o name`)).code === 0 ? true : undefined))
    const back = await run(sim, 200, `${K} wait --for=condition=Ready node/s2 --timeout=30s`)
    assert.deepStrictEqual([back.code, back.stdout], [0, "node/s2 condition met\n"])
  })
})
