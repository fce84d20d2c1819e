import { afterEach, assert, describe, it } from "@effect/vitest"
import { type Scenario, type SimHandle, startSimPromise } from "../src/index.js"
import { pxClient, testScenario, waitTask } from "./helpers.js"

// PVE checks the agent with a `guest-ping` of 3 s (qga_check_running) before every agent command: while the guest's
// agent does not answer yet, the call waits for that ping and fails only when it times out. The simulator records a
// call as it begins to wait (`AgentWait`), so a test acts on that moment instead of guessing it from a time.

const vm = {
  vmid: 100,
  node: "pve",
  name: "booting",
  status: "stopped" as const,
  config: { agent: "1", net0: "virtio=BC:24:11:00:00:01,bridge=vmbr0", ide2: "local-lvm:vm-100-cloudinit,media=cdrom" }
}

describe("agentCheck: the guest-ping before an agent command", () => {
  let sim: SimHandle | undefined
  afterEach(async () => {
    await sim?.stop()
  })

  const started = async (over: Partial<Scenario>) => {
    sim = await startSimPromise(testScenario({ vms: [vm], ...over }))
    const px = pxClient(sim)
    const upid = await px.nodes.$("pve").qemu.$(100).status.start.$post()
    assert.strictEqual((await waitTask(px, "pve", upid)).exitstatus, "OK")
    return { px, sim }
  }

  /** Resolves as the simulator records a call on VM 100 beginning to wait for its agent (`watch`). */
  const waiting = (on: SimHandle) =>
    new Promise<void>((resolve) => {
      const stop = on.watch((r) => {
        if (r._tag !== "AgentWait" || r.vmid !== 100) return
        stop()
        resolve()
      })
    })

  it("an agent that comes up within the ping's 3 s answers the call that was waiting for it", async () => {
    // the agent stays silent (agentNeverStarts) until the call is seen waiting for its ping, then comes up. At this
    // time scale the ping lasts 50 min, so only the agent coming up ends it, however late a loaded machine gets there
    const { px, sim: on } = await started({
      timeScale: 1000,
      timings: { startMs: 0, bootMs: 0, agentMs: 0, unauthorizedDelayMs: 0, rrdIntervalMs: 0 },
      faults: [{ kind: "agentNeverStarts", vmid: 100 }]
    })
    const seen = waiting(on)
    const call = (
      px.nodes.$("pve").qemu.$(100).agent["network-get-interfaces"].$get() as unknown as Promise<{
        result: ReadonlyArray<{ name: string }>
      }>
    ).then(
      (answer) => ({ answer }),
      (e: Error) => ({ error: e.message })
    )
    const first = await Promise.race([seen.then(() => "waiting"), call.then((r) => `answered: ${JSON.stringify(r)}`)])
    assert.strictEqual(first, "waiting", "the call waits for its ping")
    await on.clearFaults({ kind: "agentNeverStarts" })
    const done = await call
    assert.include("answer" in done ? done.answer.result.map((n) => n.name) : [done.error], "eth0")
  })

  it("a paused VM's agent answers nothing; resumed within the ping, it answers the call that was waiting", async () => {
    // the ping lasts 50 min at this time scale: only the resume ends it
    const { px, sim: on } = await started({
      timeScale: 1000,
      timings: { taskMs: 0, startMs: 0, bootMs: 0, agentMs: 0, unauthorizedDelayMs: 0, rrdIntervalMs: 0 }
    })
    const qemu = px.nodes.$("pve").qemu.$(100)
    assert.strictEqual((await waitTask(px, "pve", await qemu.status.suspend.$post())).exitstatus, "OK")
    const seen = waiting(on)
    const call = qemu.agent.ping.$post().then(
      () => "answered",
      (e: Error) => e.message
    )
    const first = await Promise.race([seen.then(() => "waiting"), call])
    assert.strictEqual(first, "waiting", "the call waits for its ping")
    assert.strictEqual((await waitTask(px, "pve", await qemu.status.resume.$post())).exitstatus, "OK")
    assert.strictEqual(await call, "answered")
  })

  it("an agent that is still not up when the ping times out: 500 QEMU guest agent is not running", async () => {
    // the agent answers 1,000 h (simulated; 10 h at this time scale, 0.01) after the start: long after the ping gave
    // up, however late a loaded machine makes the call
    const { px, sim: on } = await started({ timings: { agentMs: 3_600_000_000, unauthorizedDelayMs: 0 } })
    let waited = false
    void waiting(on).then(() => {
      waited = true
    })
    const t0 = performance.now()
    const e = await px.nodes
      .$("pve")
      .qemu.$(100)
      .agent.ping.$post()
      .then(
        () => "answered",
        (x: Error) => x.message
      )
    const took = performance.now() - t0
    assert.match(e, /return Error 500 QEMU guest agent is not running/)
    // it waited for its ping, and was answered only once the ping gave up: 3 s simulated, 30 ms here (the simulator
    // waits at least that on the monotonic clock, and the call began before its wait did)
    assert.isTrue(waited, "the call waited for its ping")
    assert.isAtLeast(took, 30)
  })
})
