import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { pxClient, until, waitTask } from "../helpers.js"
import { closeConnections, haScenario, journal, run } from "./k3sHelpers.js"

const K = "sudo -n /usr/local/bin/k3s kubectl"
const READY = "-o jsonpath={.status.conditions[?(@.type=='Ready')].status}"

/** `qm suspend` (without --todisk: the vCPUs stop, qmpstatus paused) / `qm resume`, through the API as homelab does. */
const power = async (sim: SimHandle, vmid: number, action: "suspend" | "resume") => {
  const px = pxClient(sim)
  const q = px.nodes.$("pve").qemu.$(vmid).status
  const upid = action === "suspend" ? await q.suspend.$post({}) : await q.resume.$post({})
  const t = await waitTask(px, "pve", upid as unknown as string)
  assert.strictEqual(t.exitstatus, "OK")
}

describe("a paused guest runs nothing: its kubelet, etcd member and k3s stop until it is resumed", () => {
  // The simulator's wall clock, held, and moved by the test: the node-monitor grace period (40 s × time scale 0.01)
  // passes when the test says so, however long the machine takes.
  let t = Date.UTC(2026, 0, 5, 10)
  const now = () => t
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(haScenario(), { now })
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("a paused server: its Node goes Unknown after the grace period, its etcd member counts as down at once (two paused: no quorum); resumed: quorum at once, Ready again after the kubelet's status update, k3s not restarted", async () => {
    await power(sim, 202, "suspend")
    const ready = async (node: string) => (await run(sim, 200, `${K} get node ${node} ${READY}`)).stdout
    // the heartbeat stopped; the node controller notices only after the grace period
    assert.strictEqual(await ready("s3"), "True")
    t += 1000
    assert.strictEqual(await ready("s3"), "Unknown")
    // 2 of 3 members answer: quorum holds
    assert.strictEqual((await run(sim, 200, `${K} get nodes -o name`)).code, 0)

    // a second paused server: 1 of 3 answers, etcd has no quorum and the apiserver cannot serve
    sim.setVmStatus(201, { qmpstatus: "paused" })
    const lost = await run(sim, 200, `${K} get nodes`)
    assert.deepStrictEqual([lost.code, lost.stderr], [1, "Error from server: etcdserver: request timed out\n"])

    // s2 resumed before the grace period ran out: quorum at once, and its Node never left Ready
    await power(sim, 201, "resume")
    assert.strictEqual(await ready("s2"), "True")

    // s3 resumed: Unknown until its kubelet posts status again (read at the instant of the resume), then Ready; its
    // k3s went on, it was not restarted
    const mark = sim.mark()
    sim.setVmStatus(202, { qmpstatus: "running" })
    assert.strictEqual(sim.state().k3s.nodes.find((n) => n.name === "s3")?.ready, "Unknown")
    const waited = await run(sim, 200, `${K} wait --for=condition=Ready node/s3 --timeout=1h`, { timeoutMs: 20_000 })
    assert.deepStrictEqual([waited.code, waited.stdout], [0, "node/s3 condition met\n"], waited.stderr)
    assert.deepStrictEqual(
      sim.operations(mark).map((o) => [o.operation, o.k3sNode]),
      [["node-ready", "s3"]]
    )
    assert.strictEqual((await run(sim, 202, "systemctl is-active k3s")).stdout, "active\n")
    const j = await journal(sim, 202, "k3s")
    assert.strictEqual(j.split("\n").filter((l) => l === "Starting Lightweight Kubernetes...").length, 1, j)
    assert.deepStrictEqual(
      sim.k3sEvents().filter((e) => e.vmid === 202 || e.vmid === 201),
      []
    )
    assert.deepStrictEqual(
      sim.state().k3s.etcdMembers.map((m) => [m.name.replace(/-[0-9a-f]{8}$/, ""), m.isLearner]),
      [
        ["s1", false],
        ["s2", false],
        ["s3", false]
      ]
    )
  })

  it("a paused agent's join makes no progress: it does not finish while paused, and goes on when resumed", async () => {
    const since = sim.k3sEvents().length
    // a1 is paused the moment its join begins (its restart's k3s-agent-join), before any of the join's time passes
    const paused: Array<number> = []
    const stop = sim.watch((r) => {
      if (r._tag !== "Operation" || r.operation.operation !== "k3s-agent-join" || r.operation.vmid !== 301) return
      stop()
      paused.push(r.operation.id)
      queueMicrotask(() => sim.setVmStatus(301, { qmpstatus: "paused" }))
    })
    const restarted = await run(sim, 301, "sudo -n systemctl restart --no-block k3s-agent")
    assert.strictEqual(restarted.code, 0, restarted.stderr)
    assert.lengthOf(paused, 1, "a1's join began")
    // a2's restart, begun after a1 froze, takes as long as a1's join would have: a1 froze in its join
    const other = await run(sim, 302, "sudo -n systemctl restart k3s-agent")
    assert.strictEqual(other.code, 0, other.stderr)
    const joined = () =>
      sim
        .k3sEvents()
        .slice(since)
        .filter((e) => e.kind === "agent-join-finish")
        .map((e) => e.node)
    assert.deepStrictEqual(joined(), ["a2"])

    sim.setVmStatus(301, { qmpstatus: "running" })
    await until(async () => (joined().includes("a1") ? true : undefined))
    assert.strictEqual((await run(sim, 301, "systemctl is-active k3s-agent")).stdout, "active\n")
    const j = await journal(sim, 301, "k3s-agent")
    // one restart (the test's): the join went on where it was, no new start
    assert.strictEqual(j.split("\n").filter((l) => l === "Starting Lightweight Kubernetes...").length, 2, j)
  })
  it("an agent cut off the network (its only NIC's link set down): Ready turns Unknown after the grace period; link up again: Ready after the kubelet's status update, k3s not restarted", async () => {
    const config = pxClient(sim).nodes.$("pve").qemu.$(302).config
    const net0 = ((await config.$get()) as unknown as Record<string, string>).net0 as string
    const ready = async (node: string) => (await run(sim, 200, `${K} get node ${node} ${READY}`)).stdout
    const starts = async () =>
      (await journal(sim, 302, "k3s-agent")).split("\n").filter((l) => l === "Starting Lightweight Kubernetes...")
        .length
    const before = await starts()
    await config.$put({ net0: `${net0},link_down=1` } as never)
    assert.strictEqual(await ready("a2"), "True")
    t += 1000
    assert.strictEqual(await ready("a2"), "Unknown")
    await config.$put({ net0 } as never)
    const waited = await run(sim, 200, `${K} wait --for=condition=Ready node/a2 --timeout=1h`, { timeoutMs: 20_000 })
    assert.deepStrictEqual([waited.code, waited.stdout], [0, "node/a2 condition met\n"], waited.stderr)
    assert.strictEqual(await starts(), before, "its k3s went on: no new start")
  })
})
