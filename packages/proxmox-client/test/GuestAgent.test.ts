import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import { TestClock } from "effect/testing"
import { discoverIpv4, ExecStatus, GuestInterface, waitForIpv4With } from "../src/index.js"

const nics = Schema.decodeUnknownSync(Schema.Array(GuestInterface))([
  {
    name: "lo",
    "hardware-address": "00:00:00:00:00:00",
    "ip-addresses": [{ "ip-address-type": "ipv4", "ip-address": "127.0.0.1", prefix: 8 }]
  },
  {
    name: "docker0",
    "hardware-address": "02:42:ac:11:00:01",
    "ip-addresses": [{ "ip-address-type": "ipv4", "ip-address": "172.17.0.1", prefix: 16 }]
  },
  {
    name: "cni0",
    "hardware-address": "bc:24:11:2e:7a:4c",
    "ip-addresses": [{ "ip-address-type": "ipv4", "ip-address": "10.42.0.1", prefix: 24 }]
  },
  { name: "flannel.1", "ip-addresses": [{ "ip-address-type": "ipv4", "ip-address": "10.42.0.0", prefix: 32 }] },
  { name: "vethabc", "ip-addresses": [] },
  { name: "cali123", "ip-addresses": [{ "ip-address-type": "ipv4", "ip-address": "10.1.1.1" }] },
  {
    name: "eth1",
    "hardware-address": "bc:24:11:00:00:02",
    "ip-addresses": [{ "ip-address-type": "ipv4", "ip-address": "192.168.2.9", prefix: 24 }]
  },
  {
    name: "eth0",
    "hardware-address": "bc:24:11:2e:7a:4c",
    "ip-addresses": [
      { "ip-address-type": "ipv6", "ip-address": "fe80::1", prefix: 64 },
      { "ip-address-type": "ipv4", "ip-address": "127.77.0.10", prefix: 8 }
    ]
  },
  { name: "eth2" }
])

describe("discoverIpv4", () => {
  it("takes the IPv4 of the NIC whose MAC matches net0 (case-insensitive), accepting loopback addresses off lo", () => {
    assert.strictEqual(discoverIpv4(nics, "BC:24:11:2E:7A:4C"), "127.77.0.10")
    assert.strictEqual(discoverIpv4(nics, "bc:24:11:00:00:02"), "192.168.2.9")
  })
  it("skips lo, docker*, cni*, flannel*, veth*, cali* when no MAC is known", () => {
    assert.strictEqual(discoverIpv4(nics), "192.168.2.9")
    assert.strictEqual(discoverIpv4(nics.slice(0, 6)), undefined)
  })
  it("no NIC with that MAC → undefined", () => {
    assert.strictEqual(discoverIpv4(nics, "AA:AA:AA:AA:AA:AA"), undefined)
  })
})

describe("ExecStatus", () => {
  it("decodes exited 0/1 and output", () => {
    assert.deepStrictEqual(Schema.decodeUnknownSync(ExecStatus)({ exited: 1, exitcode: 0, "out-data": "hello\n" }), {
      exited: true,
      exitcode: 0,
      "out-data": "hello\n"
    })
    assert.deepStrictEqual(Schema.decodeUnknownSync(ExecStatus)({ exited: 0 }), { exited: false })
  })
})

describe("waitForIpv4With", () => {
  /** An agent that fails until `agentAt`, reports no address until `ipAt`, then net0's; each call recorded. */
  const booting = (agentAt: number, ipAt: number) => {
    const calls: Array<number> = []
    const interfaces = Effect.gen(function* () {
      const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
      calls.push(now)
      if (now < agentAt) return yield* Effect.fail("QEMU guest agent is not running")
      return now < ipAt ? nics.slice(0, 6) : nics
    })
    return { calls, interfaces }
  }

  it.effect(
    "polls from 100 ms, growing to 1 s, through an agent that does not answer yet, until net0 has an IPv4",
    () =>
      Effect.gen(function* () {
        const agent = booting(2_000, 4_000)
        const fiber = yield* Effect.forkChild(waitForIpv4With(agent.interfaces, "BC:24:11:2E:7A:4C"))
        yield* TestClock.adjust("10 seconds")
        assert.strictEqual(yield* Fiber.join(fiber), "127.77.0.10")
        const gaps = agent.calls.map((t, i) => t - (agent.calls[i - 1] ?? 0))
        assert.deepStrictEqual(gaps.slice(0, 3), [100, 100, 125])
        assert.isTrue(gaps.every((g) => g <= 1_000))
        // seen within the 1 s cap of the address appearing, and nothing asked after
        const last = agent.calls[agent.calls.length - 1] as number
        assert.isTrue(last >= 4_000 && last < 5_000)
      })
  )

  it.effect(
    "a call that waited out PVE's 3 s guest-ping is followed at once by the next, which sees the agent come up",
    () =>
      Effect.gen(function* () {
        // as PVE answers: each call while the agent is down waits 3 s, then fails; once it is up, the IP at once
        const agentAt = 7_500
        const calls: Array<number> = []
        const interfaces = Effect.gen(function* () {
          const now = yield* Effect.clockWith((c) => c.currentTimeMillis)
          calls.push(now)
          if (now >= agentAt) return nics
          yield* Effect.sleep(Duration.millis(Math.min(3_000, agentAt - now)))
          return now + 3_000 <= agentAt ? yield* Effect.fail("QEMU guest agent is not running") : nics
        })
        const fiber = yield* Effect.forkChild(waitForIpv4With(interfaces, "BC:24:11:2E:7A:4C"))
        yield* TestClock.adjust("10 seconds")
        assert.strictEqual(yield* Fiber.join(fiber), "127.77.0.10")
        // 100 ms, then one call right after the other: the third is answered when the agent comes up, at 7.5 s
        assert.deepStrictEqual(calls, [100, 3_100, 6_100])
      })
  )

  it.effect("a failure that `fatal` picks fails the wait at once; any other counts as no address yet", () =>
    Effect.gen(function* () {
      const calls: Array<number> = []
      const denied = Effect.gen(function* () {
        calls.push(yield* Effect.clockWith((c) => c.currentTimeMillis))
        return yield* Effect.fail(calls.length < 3 ? "agent not running" : "permission denied")
      })
      const fiber = yield* Effect.forkChild(
        waitForIpv4With(denied, undefined, { fatal: (e) => e === "permission denied" })
      )
      yield* TestClock.adjust("10 seconds")
      const exit = yield* Fiber.await(fiber)
      assert.deepStrictEqual(exit, Exit.fail("permission denied"))
      assert.deepStrictEqual(calls, [100, 200, 325])
    })
  )

  it.effect("undefined when the timeout passes first", () =>
    Effect.gen(function* () {
      const agent = booting(0, Number.POSITIVE_INFINITY)
      const fiber = yield* Effect.forkChild(waitForIpv4With(agent.interfaces, undefined, { timeout: "3 seconds" }))
      yield* TestClock.adjust("4 seconds")
      assert.strictEqual(yield* Fiber.join(fiber), undefined)
    })
  )
})
