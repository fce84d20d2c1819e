import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { closeConnections, journal, k3sScenario, run, serverToken, writeToken } from "./k3sHelpers.js"

describe("k3s.journalLag: journald one read behind", () => {
  let sim: SimHandle
  beforeAll(async () => {
    const scenario = k3sScenario()
    sim = await startSimPromise({ ...scenario, k3s: { ...scenario.k3s, journalLag: [301] } })
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("journalctl shows the lines written before its previous run there; the rest at the next read", async () => {
    assert.strictEqual((await writeToken(sim, 301, await serverToken(sim))).code, 0)
    await run(sim, 301, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")
    const install = await run(
      sim,
      301,
      "sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true sh /tmp/k3s-install.sh agent --server https://127.78.0.10:6443"
    )
    assert.strictEqual(install.code, 0)
    // the first read under the fault shows every line (none yet)
    assert.strictEqual(await journal(sim, 301, "k3s-agent"), "-- No entries --\n")
    assert.strictEqual((await run(sim, 301, "sudo -n systemctl start --no-block k3s-agent")).code, 0)
    // right after the start: not written yet
    assert.strictEqual(await journal(sim, 301, "k3s-agent"), "-- No entries --\n")
    const next = await journal(sim, 301, "k3s-agent")
    assert.isTrue(next.startsWith("Starting Lightweight Kubernetes...\n"), next)
    // every line shows, a read late: none is lost
    const after = await journal(sim, 301, "k3s-agent")
    assert.isTrue(after.startsWith(next), after)
  })
})
