import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type K3sEvent, type SimHandle, startSimPromise } from "../../src/index.js"
import { until } from "../helpers.js"
import { closeConnections, journal, k3sScenario, nodeOf, run, serverToken, writeToken } from "./k3sHelpers.js"

const SERVER = "https://127.78.0.10:6443"
const NAME_FILE = "/var/lib/rancher/k3s/server/db/etcd/name"

/**
 * The simulator's clock, moved by the test: held at one instant (a learner stays a learner however long the machine
 * takes to deliver the next command), or stepped ahead. Time scale 0.01: the default `learnerMaxStallMs` (5 min) is
 * 3000 ms of this clock, the leader's look every 15 s is every 150 ms.
 */
let held: number | undefined
let skew = 0
const now = () => held ?? Date.now() + skew
const holdClock = () => {
  held = now()
}
const resumeClock = () => {
  if (held !== undefined) skew = held - Date.now()
  held = undefined
}

/** Install a joining server on `vmid` (not started), hold the clock as its learner is added, start it. */
const joinHeld = async (sim: SimHandle, vmid: number, token: string) => {
  assert.strictEqual((await writeToken(sim, vmid, token)).code, 0)
  assert.strictEqual((await run(sim, vmid, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")).code, 0)
  const install = `sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true sh /tmp/k3s-install.sh server --server ${SERVER}`
  assert.strictEqual((await run(sim, vmid, install)).code, 0)
  const added = new Promise<void>((resolve) => {
    const stop = sim.watch((r) => {
      if (r._tag !== "Operation" || r.operation.operation !== "etcd-promotion" || r.operation.vmid !== vmid) return
      stop()
      holdClock()
      resolve()
    })
  })
  assert.strictEqual((await run(sim, vmid, "sudo -n systemctl start --no-block k3s")).code, 0)
  await added
}

const learnerOf = (sim: SimHandle, node: string) =>
  sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith(`${node}-`))

const nextEvent = (sim: SimHandle, match: (e: K3sEvent) => boolean) =>
  new Promise<K3sEvent>((resolve) => {
    const stop = sim.watch((r) => {
      if (r._tag !== "K3sEvent" || !match(r.event)) return
      stop()
      resolve(r.event)
    })
  })

describe("etcd learners of a server whose k3s stops during its join (k3s pkg/etcd manageLearners)", () => {
  let sim: SimHandle
  let token = ""
  beforeAll(async () => {
    sim = await startSimPromise(k3sScenario(), { now })
    token = await serverToken(sim)
  })
  afterAll(async () => {
    resumeClock()
    await closeConnections()
    await sim.stop()
  })

  it("systemctl stop k3s removes nothing: the learner and its name file stay; a later start carries on as that member", async () => {
    try {
      await joinHeld(sim, 303, token)
      const [member] = learnerOf(sim, "cp-2")
      assert.ok(member !== undefined)
      assert.isTrue(member.isLearner)
      assert.strictEqual((await run(sim, 303, "sudo -n systemctl stop k3s")).code, 0)
      assert.deepStrictEqual(learnerOf(sim, "cp-2"), [member])
      assert.strictEqual((await run(sim, 303, `sudo -n cat ${NAME_FILE}`)).stdout, `${member.name}\n`)
    } finally {
      resumeClock()
    }
    // stopped, its learner makes no progress: never promoted however far the clock moves (short of the eviction)
    skew += 1000
    assert.deepStrictEqual(
      learnerOf(sim, "cp-2").map((m) => m.isLearner),
      [true]
    )
    const [member] = learnerOf(sim, "cp-2")
    assert.ok(member !== undefined)
    assert.strictEqual((await run(sim, 303, "sudo -n systemctl start k3s")).code, 0)
    assert.deepStrictEqual(
      learnerOf(sim, "cp-2").map((m) => [m.id, m.isLearner]),
      [[member.id, false]]
    )
    const j = await journal(sim, 303, "k3s")
    const restart = j.slice(j.lastIndexOf("Starting Lightweight Kubernetes..."))
    assert.include(restart, "Starting etcd for existing cluster member")
    assert.notInclude(restart, "Adding member")
    assert.strictEqual(nodeOf(sim, "cp-2")?.vmid, 303)
  })

  it("the etcd leader's k3s warns about a stopped learner at each look, then removes it after learnerMaxStallMs", async () => {
    try {
      await joinHeld(sim, 304, token)
      assert.strictEqual((await run(sim, 304, "sudo -n systemctl stop k3s")).code, 0)
    } finally {
      resumeClock()
    }
    const [member] = learnerOf(sim, "cp-3")
    assert.ok(member !== undefined)
    assert.isTrue(member.isLearner)
    // a first look records where it stands, the next ones find it stalled
    skew += 200
    await until(async () =>
      (await journal(sim, 200, "k3s")).includes(`Learner ${member.name} stalled`) ? true : undefined
    )
    assert.deepStrictEqual(
      learnerOf(sim, "cp-3").map((m) => m.isLearner),
      [true]
    )
    const removed = nextEvent(sim, (e) => e.kind === "etcd-member-removed" && e.node === member.name)
    skew += 3100
    assert.strictEqual((await removed).detail, "learner stalled")
    assert.deepStrictEqual(learnerOf(sim, "cp-3"), [])
    const leader = await journal(sim, 200, "k3s")
    assert.match(leader, new RegExp(`Learner ${member.name} stalled at RaftAppliedIndex=\\d+ for \\d+(\\.\\d+)?(ms|s)`))
    assert.include(leader, `Removed learner ${member.name} from etcd cluster`)
    // its name file stays: a start now runs etcd on the data of a removed member
    assert.strictEqual((await run(sim, 304, `sudo -n cat ${NAME_FILE}`)).stdout, `${member.name}\n`)
  })
})
