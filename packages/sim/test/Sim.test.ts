import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, type SimRecord, startSimPromise } from "../src/index.js"
import { raw } from "./helpers.js"
import { closeConnections, haScenario, run } from "./k3s/k3sHelpers.js"

/** A record as one line: what the test compares. */
const brief = (r: SimRecord) =>
  r._tag === "Request"
    ? `request ${r.request.method ?? ""} ${r.request.path ?? r.request.command ?? ""}`
    : r._tag === "Operation"
      ? `operation ${r.operation.operation} ${r.operation.vmid ?? ""}`
      : r._tag === "K3sEvent"
        ? `k3s ${r.event.kind} ${r.event.node}`
        : r._tag === "AgentWait"
          ? `agent wait ${r.vmid}`
          : `held ${r.method} ${r.path}`

describe("watch: what the simulator records, as it records it", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(haScenario())
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("an operation as it begins (before the request that began it is answered), then the request; nothing once unwatched", async () => {
    const seen: Array<string> = []
    // what the simulator holds at the moment each record is passed on
    const atOperation: Array<unknown> = []
    const stop = sim.watch((r) => {
      seen.push(brief(r))
      if (r._tag === "Operation")
        atOperation.push([
          sim.state().vms.find((v) => v.vmid === 150)?.lock,
          sim.requests().some((q) => q.path === "/nodes/pve/qemu")
        ])
    })
    const created = await raw(sim, "POST", "/api2/json/nodes/pve/qemu", {
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "vmid=150&memory=512"
    })
    assert.strictEqual(created.status, 200, created.body)
    stop()
    // the create task runs: the VM is locked, and its request is logged only once it is answered
    assert.deepStrictEqual(seen, ["operation qmcreate 150", "request POST /nodes/pve/qemu"])
    assert.deepStrictEqual(atOperation, [["create", false]])
    await raw(sim, "GET", "/api2/json/version")
    assert.deepStrictEqual(seen, ["operation qmcreate 150", "request POST /nodes/pve/qemu"])
  })

  it("a k3s event as it is recorded, with the cluster already changed", async () => {
    const events: Array<string> = []
    const stop = sim.watch((r) => {
      if (r._tag === "K3sEvent")
        events.push(`${brief(r)} ${sim.state().k3s.nodes.find((n) => n.name === "s3")?.unschedulable}`)
    })
    try {
      const cordoned = await run(sim, 200, "sudo -n /usr/local/bin/k3s kubectl cordon s3")
      assert.deepStrictEqual([cordoned.code, cordoned.stdout], [0, "node/s3 cordoned\n"])
    } finally {
      stop()
    }
    assert.deepStrictEqual(events, ["k3s node-cordoned s3 true"])
  })
})
