import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type K3sEvent, type SimHandle, startSimPromise } from "../../src/index.js"
import { until } from "../helpers.js"
import { closeConnections, guestVm, journal, k3sScenario, nodeOf, run, serverToken, writeToken } from "./k3sHelpers.js"

const SERVER = "https://127.78.0.10:6443"
const install = (skipStart: boolean) =>
  `sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1${skipStart ? " INSTALL_K3S_SKIP_START=true" : ""} sh /tmp/k3s-install.sh server --server ${SERVER}`

const prepare = async (sim: SimHandle, vmid: number, token: string) => {
  assert.strictEqual((await writeToken(sim, vmid, token)).code, 0)
  assert.strictEqual((await run(sim, vmid, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")).code, 0)
}

/** [start, end] of each server-join attempt of `node` */
const attempts = (events: ReadonlyArray<K3sEvent>) => {
  const open = new Map<string, number>()
  const out: Array<{ node: string; start: number; end: number; ok: boolean }> = []
  for (const e of events) {
    if (e.kind === "server-join-start") open.set(e.node, e.at)
    if (e.kind === "server-join-finish" || e.kind === "server-join-failed") {
      out.push({ node: e.node, start: open.get(e.node) ?? e.at, end: e.at, ok: e.kind === "server-join-finish" })
      open.delete(e.node)
    }
  }
  return out
}

/**
 * The simulator's clock: real time, or held at one instant. etcd promotes a learner when the clock reaches its
 * promotion time, so while the clock is held a learner stays a learner, however long the machine takes to deliver
 * the next command.
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

describe("server joins (embedded etcd)", () => {
  let sim: SimHandle
  let token = ""
  beforeAll(async () => {
    sim = await startSimPromise(k3sScenario({ secondServer: true }), { now })
    token = await serverToken(sim)
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("concurrent joins: the second hits 'too many learner members', systemd retries, both end up voting members", async () => {
    await prepare(sim, 303, token)
    await prepare(sim, 304, token)
    assert.strictEqual((await run(sim, 303, install(true))).code, 0)
    assert.strictEqual((await run(sim, 304, install(true))).code, 0)
    // whichever joins first stays a learner until the clock moves on: the other one's join meets it, however far
    // apart the two starts arrive
    holdClock()
    let loser: number
    try {
      await Promise.all([
        run(sim, 303, "sudo -n systemctl start --no-block k3s"),
        run(sim, 304, "sudo -n systemctl start --no-block k3s")
      ])
      // the one that lost the race logged the etcd error (fatal, then restarted by systemd)
      loser = await until(async () => {
        for (const vmid of [303, 304])
          if (
            (await journal(sim, vmid, "k3s")).includes(
              "ETCD join failed: etcdserver: too many learner members in cluster"
            )
          )
            return vmid
        return undefined
      })
    } finally {
      resumeClock()
    }
    assert.include(
      await journal(sim, loser, "k3s"),
      'level=fatal msg="ETCD join failed: etcdserver: too many learner members in cluster"\nk3s.service: Main process exited, code=exited, status=1/FAILURE'
    )
    await until(async () => {
      const a = await run(sim, 303, "systemctl is-active k3s")
      const b = await run(sim, 304, "systemctl is-active k3s")
      return a.code === 0 && b.code === 0 ? true : undefined
    })
    const members = sim.state().k3s.etcdMembers
    assert.deepStrictEqual(members.map((m) => [m.name.replace(/-[0-9a-f]{8}$/, ""), m.isLearner]).sort(), [
      ["cp-2", false],
      ["cp-3", false],
      ["k3s-server", false],
      ["k3s-server-2", false]
    ])
    // the attempt log shows the overlap a serialising client must avoid
    const tries = attempts(sim.k3sEvents())
    const failed = tries.find((t) => !t.ok)
    assert.ok(failed !== undefined)
    const other = tries.find((t) => t.ok && t.node !== failed.node)
    assert.ok(other !== undefined && other.start <= failed.end && failed.start <= other.end)
    const j = await journal(sim, 303, "k3s")
    assert.match(j, /Adding member cp-2-[0-9a-f]{8}=https:\/\/127\.78\.0\.33:2380 to etcd cluster \[k3s-server-/)
    const node = JSON.parse(
      (await run(sim, 303, "sudo -n /usr/local/bin/k3s kubectl get node cp-2 -o json")).stdout
    ) as { metadata: { labels: Record<string, string> } }
    assert.strictEqual(node.metadata.labels["node-role.kubernetes.io/etcd"], "true")
    assert.strictEqual((await run(sim, 303, "sudo -n cat /var/lib/rancher/k3s/server/token")).stdout, `${token}\n`)
  })

  it("a re-provisioned server with a stale etcd member: 'duplicate node name found', install exits 1; delete node → joins", async () => {
    sim.setVmStatus(202, { status: "stopped" })
    sim.setVmStatus(306, { status: "running" })
    assert.strictEqual((await run(sim, 306, "hostname")).stdout, "k3s-server-2\n")
    await prepare(sim, 306, token)
    const r = await run(sim, 306, install(false))
    assert.strictEqual(r.code, 1)
    assert.match(r.stdout, /\[INFO\] {2}systemd: Starting k3s\n$/)
    assert.include(
      r.stderr,
      'Job for k3s.service failed because the control process exited with error code.\nSee "systemctl status k3s.service" and "journalctl -xeu k3s.service" for details.\n'
    )
    assert.include(
      await journal(sim, 306, "k3s"),
      'level=fatal msg="ETCD join failed: duplicate node name found, please use a unique name for this node"'
    )
    // systemd keeps restarting it: the unit is activating (auto-restart), not failed for good
    assert.strictEqual((await run(sim, 306, "systemctl is-active k3s")).stdout, "activating\n")
    const del = await run(sim, 200, "sudo -n /usr/local/bin/k3s kubectl delete node k3s-server-2 --ignore-not-found")
    assert.strictEqual(del.stdout, 'node "k3s-server-2" deleted\n')
    assert.ok(
      sim
        .k3sEvents()
        .some((e) => e.kind === "etcd-member-removed" && /^k3s-server-2-[0-9a-f]{8}$/.test(e.node) && e.vmid === 202)
    )
    await until(async () => ((await run(sim, 306, "systemctl is-active k3s")).code === 0 ? true : undefined))
    assert.strictEqual(nodeOf(sim, "k3s-server-2")?.vmid, 306)
    assert.strictEqual(sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("k3s-server-2-")).length, 1)
  })

  it("a bootstrap token cannot join a server; a server --cluster-init on an empty host starts a separate cluster", async () => {
    const t = await run(sim, 200, "sudo -n /usr/local/bin/k3s token create --ttl 15m --description test")
    assert.match(t.stdout, /^K10[0-9a-f]{64}::[a-z0-9]{6}\.[a-z0-9]{16}\n$/)
    await prepare(sim, 301, t.stdout.trim())
    assert.strictEqual((await run(sim, 301, install(false))).code, 1)
    assert.include(
      await journal(sim, 301, "k3s"),
      'level=fatal msg="failed to normalize server token; must be in format K10<CA-HASH>::<USERNAME>:<PASSWORD> or <PASSWORD>"'
    )
    await run(sim, 302, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")
    const init = await run(
      sim,
      302,
      "sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 sh /tmp/k3s-install.sh server --cluster-init"
    )
    assert.strictEqual(init.code, 0)
    const stray = sim.state().k3s.strayClusters
    assert.deepStrictEqual(
      stray.map((c) => c.nodes),
      [["worker-2"]]
    )
    assert.notStrictEqual(stray[0]?.caHash, sim.state().k3s.caHash)
    assert.strictEqual(nodeOf(sim, "worker-2"), undefined)
  })
})

describe("a Node forced out of its deletion, and etcd data of an unknown cluster", () => {
  let sim: SimHandle
  beforeAll(async () => {
    const base = k3sScenario({ secondServer: true })
    sim = await startSimPromise({
      ...base,
      vms: [
        ...(base.vms ?? []),
        guestVm(307, "old-server", "127.78.0.37", {
          files: { "/var/lib/rancher/k3s/server/db/etcd/name": "old-server-0a1b2c3d\n" }
        })
      ],
      // the managed-etcd controller takes its time removing a member: the Node hangs in deletion meanwhile
      k3s: { ...base.k3s, memberRemoveDelayMs: 600_000 }
    })
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  const kubectl = (args: string) => run(sim, 200, `sudo -n /usr/local/bin/k3s kubectl ${args}`)
  const finalizersNull = `'{"metadata":{"finalizers":null}}'`

  it("kubectl patch clearing the finalizers of a Node being deleted: it is gone at once, its etcd member stays", async () => {
    // a Node not being deleted keeps its finalizers (k3s adds them again): patched, nothing else
    const alive = await kubectl(`patch node k3s-server-2 -p ${finalizersNull}`)
    assert.deepStrictEqual([alive.code, alive.stdout], [0, "node/k3s-server-2 patched\n"])
    assert.isDefined(nodeOf(sim, "k3s-server-2"))
    const other = await kubectl(`patch node k3s-server-2 -p '{"metadata":{"labels":{"a":"b"}}}'`)
    assert.strictEqual(other.code, 1)
    assert.include(other.stderr, "the simulator applies only the patch that clears a node's finalizers")
    assert.strictEqual((await kubectl("delete node k3s-server-2 --wait=false")).code, 0)
    assert.isDefined(nodeOf(sim, "k3s-server-2"), "deleting: its member is not removed yet")
    const forced = await kubectl(
      `patch node k3s-server-2 --type=json -p '[{"op":"remove","path":"/metadata/finalizers"}]'`
    )
    assert.deepStrictEqual([forced.code, forced.stdout], [0, "node/k3s-server-2 patched\n"])
    assert.isUndefined(nodeOf(sim, "k3s-server-2"))
    assert.strictEqual(sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("k3s-server-2-")).length, 1)
    assert.isFalse(sim.k3sEvents().some((e) => e.kind === "etcd-member-removed"))
    const gone = await kubectl(`patch node k3s-server-2 -p ${finalizersNull}`)
    assert.strictEqual(gone.stderr, 'Error from server (NotFound): nodes "k3s-server-2" not found\n')
  })

  it("server --cluster-init on a host holding an unknown cluster's etcd data: it waits for that etcd, no new cluster", async () => {
    assert.strictEqual((await run(sim, 307, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")).code, 0)
    await run(
      sim,
      307,
      "sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true sh /tmp/k3s-install.sh server --cluster-init"
    )
    assert.strictEqual((await run(sim, 307, "sudo -n systemctl start --no-block k3s")).code, 0)
    await until(async () =>
      (await journal(sim, 307, "k3s")).includes("Waiting for etcd server to become available") ? true : undefined
    )
    assert.include(await journal(sim, 307, "k3s"), "Starting etcd for existing cluster member")
    assert.strictEqual((await run(sim, 307, "systemctl is-active k3s")).stdout, "activating\n")
    assert.isFalse(sim.k3sEvents().some((e) => e.kind === "cluster-init"))
    assert.deepStrictEqual(sim.state().k3s.strayClusters, [])
  })
})

describe("a server joining with other critical values than the server it joins through (k3s cluster.compareConfig)", () => {
  let sim: SimHandle
  let token = ""
  beforeAll(async () => {
    sim = await startSimPromise(k3sScenario())
    token = await serverToken(sim)
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("another --cluster-cidr: fatal 'critical configuration value mismatch', install exits 1; the default given explicitly, or a flag that is not critical (--disable=traefik): it joins", async () => {
    await prepare(sim, 303, token)
    const bad = await run(sim, 303, `${install(false)} --cluster-cidr=10.50.0.0/16`)
    assert.strictEqual(bad.code, 1, bad.stderr)
    assert.include(
      await journal(sim, 303, "k3s"),
      'level=fatal msg="failed to validate server configuration: critical configuration value mismatch"'
    )
    assert.isUndefined(nodeOf(sim, "cp-2"))
    await prepare(sim, 304, token)
    const good = await run(sim, 304, `${install(false)} --cluster-cidr 10.42.0.0/16 --disable=traefik`)
    assert.strictEqual(good.code, 0, good.stderr)
    assert.strictEqual(nodeOf(sim, "cp-3")?.vmid, 304)
  })
})

describe("k3sLearnerSlow: a joining server's etcd learner does not catch up until the fault is cleared", () => {
  let sim: SimHandle
  let later = 0
  beforeAll(async () => {
    sim = await startSimPromise(k3sScenario({ secondServer: true }), { now: () => Date.now() + later })
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("its member stays a learner, its Node unregistered and its unit activating; cleared, it is promoted and its Node registers", async () => {
    const token = await serverToken(sim)
    await sim.addFaults([{ kind: "k3sLearnerSlow", vmid: 303 }])
    await prepare(sim, 303, token)
    assert.strictEqual((await run(sim, 303, install(true))).code, 0)
    const learner = new Promise<void>((resolve) => {
      const stop = sim.watch((r) => {
        if (r._tag !== "Operation" || r.operation.operation !== "etcd-promotion" || r.operation.vmid !== 303) return
        stop()
        // a look well past the usual promotion (15 s) still finds a learner: the clock moves on at once, as the
        // member is added, before the joining k3s goes on (as a loaded machine may hold it there)
        later += 10 * 60_000
        resolve()
      })
    })
    assert.strictEqual((await run(sim, 303, "sudo -n systemctl start --no-block k3s")).code, 0)
    await learner
    const member = () => sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("cp-2-"))
    assert.deepStrictEqual(
      member().map((m) => [m.isLearner, m.peerURL]),
      [[true, "https://127.78.0.33:2380"]]
    )
    assert.strictEqual((await run(sim, 303, "systemctl is-active k3s")).stdout, "activating\n")
    assert.include(
      await journal(sim, 303, "k3s"),
      "this server has not yet been promoted from learner to voting member"
    )
    assert.isUndefined(nodeOf(sim, "cp-2"))
    const dbInfo = await run(sim, 200, "curl -sk https://127.0.0.1:6443/db/info")
    assert.match(
      dbInfo.stdout,
      /"name":"cp-2-[0-9a-f]{8}","peerURLs":\["https:\/\/127\.78\.0\.33:2380"\][^}]*"isLearner":true/
    )

    await sim.clearFaults({ kind: "k3sLearnerSlow" })
    await until(async () => ((await run(sim, 303, "systemctl is-active k3s")).code === 0 ? true : undefined))
    assert.deepStrictEqual(
      member().map((m) => m.isLearner),
      [false]
    )
    assert.isDefined(nodeOf(sim, "cp-2"), "its Node registered")
  })
})
