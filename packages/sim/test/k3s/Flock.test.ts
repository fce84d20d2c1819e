import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { until } from "../helpers.js"
import { closeConnections, k3sScenario, run } from "./k3sHelpers.js"

describe("flock(1) in guests: a lock two SSH sessions see", () => {
  let sim: SimHandle
  let open: () => void = () => {}
  beforeAll(async () => {
    sim = await startSimPromise(k3sScenario())
    // `hold` blocks until the test opens the gate: what the lock's holder is doing meanwhile
    sim.guestCommands.register("hold", async () => {
      await new Promise<void>((resolve) => {
        open = resolve
      })
      return { stdout: "", code: 0 }
    })
  })
  afterAll(async () => {
    open()
    await closeConnections()
    await sim.stop()
  })

  it("serialises commands on one file; -n and -w fail with the conflict code; --verbose reports the wait", async () => {
    const a = run(sim, 301, "flock /run/lock/k3s.lock sh -c 'echo a1 >> /tmp/log; hold; echo a2 >> /tmp/log'")
    await until(async () => ((await run(sim, 301, "flock -n /run/lock/k3s.lock true")).code === 1 ? true : undefined))
    const busy = await run(sim, 301, "flock -n -E 75 --verbose /run/lock/k3s.lock true")
    assert.deepStrictEqual([busy.code, busy.stdout, busy.stderr], [75, "", "flock: failed to get lock\n"])
    const timeout = await run(sim, 301, "flock -w 0.05 --verbose /run/lock/k3s.lock true")
    assert.deepStrictEqual([timeout.code, timeout.stderr], [1, "flock: timeout while waiting to get lock\n"])
    const b = run(sim, 301, "sudo -n flock --verbose /run/lock/k3s.lock -c 'echo b >> /tmp/log; echo done'")
    // b waits: it cannot have written anything yet
    assert.strictEqual((await run(sim, 301, "cat /tmp/log")).stdout, "a1\n")
    open()
    const [ra, rb] = await Promise.all([a, b])
    assert.deepStrictEqual([ra.code, rb.code], [0, 0])
    assert.match(rb.stdout, /^flock: getting lock took \d+\.\d{6} seconds\nflock: executing sh\ndone\n$/)
    assert.strictEqual((await run(sim, 301, "cat /tmp/log")).stdout, "a1\na2\nb\n")
    // released: free again
    assert.strictEqual((await run(sim, 301, "flock -n /run/lock/k3s.lock true")).code, 0)
  })

  it("creates the lock file; a user cannot lock where it may not create it; the exit status is the command's", async () => {
    assert.strictEqual((await run(sim, 302, "test -e /run/lock/new.lock")).code, 1)
    assert.strictEqual((await run(sim, 302, "flock /run/lock/new.lock false")).code, 1)
    assert.strictEqual((await run(sim, 302, "test -e /run/lock/new.lock")).code, 0)
    const denied = await run(sim, 302, "flock /var/lib/x.lock true")
    assert.deepStrictEqual(
      [denied.code, denied.stderr],
      [66, "flock: cannot open lock file /var/lib/x.lock: Permission denied\n"]
    )
    const usage = await run(sim, 302, "flock /run/lock/new.lock")
    assert.deepStrictEqual([usage.code, usage.stderr], [64, "flock: bad file descriptor: '/run/lock/new.lock'\n"])
    const code = await run(sim, 302, "flock /run/lock/new.lock sh -c 'exit 3'; echo $?")
    assert.strictEqual(code.stdout, "3\n")
  })
})
