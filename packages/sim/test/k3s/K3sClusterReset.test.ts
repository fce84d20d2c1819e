import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { pxClient, until, waitTask } from "../helpers.js"
import { closeConnections, haScenario, run } from "./k3sHelpers.js"

const K = "sudo -n /usr/local/bin/k3s kubectl"
const RESET = "sudo -n /usr/local/bin/k3s server --cluster-reset"

const stop = async (sim: SimHandle, vmid: number) => {
  const px = pxClient(sim)
  const upid = await px.nodes.$("pve").qemu.$(vmid).status.stop.$post()
  const t = await waitTask(px, "pve", upid as unknown as string)
  assert.strictEqual(t.exitstatus, "OK")
}

describe("embedded etcd that lost quorum: `k3s server --cluster-reset` on the survivor (k3s pkg/etcd)", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(haScenario())
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("refused while k3s runs; once stopped, the survivor becomes a one-member cluster keeping its data, and serves again when started", async () => {
    await stop(sim, 201)
    await stop(sim, 202)
    const lost = await run(sim, 200, `${K} get nodes`)
    assert.deepStrictEqual([lost.code, lost.stderr], [1, "Error from server: etcdserver: request timed out\n"])

    // k3s's own etcd holds the ports while its unit runs
    const busy = await run(sim, 200, RESET)
    assert.strictEqual(busy.code, 1)
    assert.include(busy.stderr, "address already in use")

    assert.strictEqual((await run(sim, 200, "sudo -n systemctl stop k3s")).code, 0)
    const reset = await run(sim, 200, RESET)
    assert.strictEqual(reset.code, 0)
    assert.include(
      reset.stderr,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: k3s's own words, a literal ${datadir}
      'level=info msg="Managed etcd cluster membership has been reset, restart without --cluster-reset flag now. Backup and delete ${datadir}/server/db on each peer etcd server and rejoin the nodes"'
    )
    assert.deepStrictEqual(
      sim.state().k3s.etcdMembers.map((m) => m.name.replace(/-[0-9a-f]{8}$/, "")),
      ["s1"]
    )
    const event = sim.k3sEvents().find((e) => e.kind === "etcd-cluster-reset")
    assert.strictEqual(event?.node.replace(/-[0-9a-f]{8}$/, ""), "s1")

    assert.strictEqual((await run(sim, 200, "sudo -n systemctl start --no-block k3s")).code, 0)
    await until(async () => ((await run(sim, 200, "systemctl is-active k3s")).stdout === "active\n" ? true : undefined))
    const nodes = await run(sim, 200, `${K} get nodes -o name`)
    // its data kept: the other servers' Nodes are still there (NotReady) until they are deleted or rejoin
    assert.strictEqual(nodes.code, 0)
    assert.includeMembers(nodes.stdout.split("\n"), ["node/s1", "node/s2", "node/s3"])
    assert.deepStrictEqual(
      sim
        .k3sEvents()
        .filter((e) => e.kind.startsWith("etcd-quorum-"))
        .map((e) => [e.kind, e.detail?.replace(/-[0-9a-f]{8}/g, "")]),
      [
        ["etcd-quorum-lost", "1 of 3 voting members run, quorum needs 2; not running: s2, s3"],
        ["etcd-quorum-restored", "1 of 1 voting members run, quorum needs 1"]
      ]
    )
  })
})
