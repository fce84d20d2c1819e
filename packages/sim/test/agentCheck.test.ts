import { afterEach, assert, describe, it } from "@effect/vitest"
import { type SimHandle, startSimPromise } from "../src/index.js"
import { pxClient, testScenario, waitTask } from "./helpers.js"

// PVE checks the agent with a `guest-ping` of 3 s (qga_check_running) before every agent command: while the guest's
// agent does not answer yet, the call waits for that ping and fails only when it times out. The test scenario runs at
// time scale 0.01: the ping waits 30 ms.

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

  const started = async (agentMs: number) => {
    sim = await startSimPromise(testScenario({ vms: [vm], timings: { agentMs, unauthorizedDelayMs: 0 } }))
    const px = pxClient(sim)
    const upid = await px.nodes.$("pve").qemu.$(100).status.start.$post()
    assert.strictEqual((await waitTask(px, "pve", upid)).exitstatus, "OK")
    return px
  }

  it("an agent that comes up within the ping's 3 s answers the call that was waiting for it", async () => {
    // the agent answers 2.5 s (simulated) after the start: inside the ping of a call made right after the start
    const px = await started(2_500)
    const nics = (await px.nodes.$("pve").qemu.$(100).agent["network-get-interfaces"].$get()) as unknown as {
      result: ReadonlyArray<{ name: string }>
    }
    assert.include(
      nics.result.map((n) => n.name),
      "eth0"
    )
  })

  it("an agent that is still not up when the ping times out: 500 QEMU guest agent is not running", async () => {
    // the agent answers 1,000 h (simulated; 10 h here) after the start: long after the ping gave up, however late
    // a loaded machine makes the call
    const px = await started(3_600_000_000)
    const e = await px.nodes
      .$("pve")
      .qemu.$(100)
      .agent.ping.$post()
      .then(
        () => "answered",
        (x: Error) => x.message
      )
    assert.match(e, /return Error 500 QEMU guest agent is not running/)
    // answered only once the ping gave up: 3 s simulated, 30 ms here (a timer never fires early; load only adds)
    const ping = sim?.requests().find((r) => r.path === "/nodes/pve/qemu/100/agent/ping")
    assert.isAtLeast(ping?.durationMs ?? 0, 25)
  })
})
