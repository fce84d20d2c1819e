import { afterAll, assert, describe, it } from "@effect/vitest"
import type { RequestLogEntry, SimHandle, SimOperation, SimRecord } from "@homelab/sim"
import { ExitCode } from "../src/ExitCode.js"
import { k3sNodesOf, mutating, notConverged, type SimLab, startLab, stopLabs, vmsOf, whenRecord } from "./simLab.js"

// The randomized interrupt test of the recreate path (honest-convergence issue): `homelab reprovision n1 --yes` is
// killed with SIGKILL at points spread across stop → destroy → create → rejoin; after each kill, one more
// `homelab apply --yes` must converge: the node holds one VM of ours, running, a Ready k3s member; no duplicate VM or
// Node; the VMs that are not ours untouched. A kill point is an event in the simulator's request log (the n-th request
// or command of a kind) or the start of a simulated operation (a PVE task, the boot, the k3s join), waited for, then
// SIGKILL; never a sleep. Which points, and in which order, comes from a seed: HOMELAB_TEST_SEED=<n> replays a run.

afterAll(stopLabs)

type Phase = "stop" | "destroy" | "create" | "rejoin"

/** A kill point: the `occurrence`-th event with this signature in one run. */
interface KillPoint {
  readonly phase: Phase
  readonly signature: string
  readonly occurrence: number
}

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
const random = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const seed = Number(process.env.HOMELAB_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31))

/** Points per phase (all of a phase's points when it has fewer), and in all. */
const quota: Record<Phase, number> = { stop: 5, destroy: 4, create: 5, rejoin: 6 }
const total = 20
/** Labs working through the points at once (each its own simulator, one kill at a time). */
const shards = 3

/** What kind of request or command an entry is, without what differs between runs (UPIDs, the install script). */
const requestSignature = (e: RequestLogEntry, ourVmid: number): string => {
  if (e.transport === "api") {
    const path = (e.path ?? "").replace(/UPID:[^/]+/, (upid) => `UPID:${upid.split(":")[5] ?? "?"}`)
    return `${e.method} ${path}`
  }
  const where = e.transport === "guest-ssh" ? (e.vmid === ourVmid ? "vm" : "server") : "node"
  return `${where}: ${(e.command ?? "").split("\n")[0]?.slice(0, 100)}`
}

/**
 * Polled reads: how often they happen differs between runs, so only their first occurrence is a kill point. The
 * server's Node listings (`kubectl get nodes`) are polled too: a join's wait reads them until its Node is there.
 */
const polled = (signature: string) =>
  /^GET |kubectl get nodes? |systemctl is-active|journalctl|cat \/run\/homelab-k3s-join/.test(signature)

/**
 * Commands a run may or may not send, depending on how far the simulated world got meanwhile: `kubectl wait` runs only
 * when the first look at the Node did not find it Ready yet. They are never kill points.
 */
const conditional = (signature: string) => /kubectl wait /.test(signature)

const operationPhase: Record<string, Phase> = {
  qmstop: "stop",
  qmdestroy: "destroy",
  qmcreate: "create",
  resize: "create",
  qmstart: "create",
  boot: "create",
  "k3s-agent-join": "rejoin",
  "node-ready": "rejoin"
}

/**
 * The kill points of one uninterrupted rebuild: every request or command from the rebuild mark on (polled reads only
 * the first time), and the start of every operation of the rebuild, each with its phase.
 */
const killPointsOf = (
  requests: ReadonlyArray<RequestLogEntry>,
  operations: ReadonlyArray<SimOperation>,
  vmid: number
) => {
  const points: Array<KillPoint> = []
  const seen = new Map<string, number>()
  // from the first change on (the rebuild mark)
  const firstMark = requests.findIndex(
    (e) => e.transport === "api" && e.method !== "GET" && !(e.path ?? "").endsWith("/agent/ping")
  )
  const destroyAt = requests.findIndex((e) => e.method === "DELETE" && e.path === `/nodes/n1/qemu/${vmid}`)
  const createAt = requests.findIndex((e) => e.method === "POST" && e.path === "/nodes/n1/qemu")
  const finishedAt = requests.findIndex(
    (e, i) => i > createAt && e.method === "PUT" && e.path === `/nodes/n1/qemu/${vmid}/config`
  )
  assert.isTrue(
    0 <= firstMark && firstMark < destroyAt && destroyAt < createAt && createAt < finishedAt,
    "the rebuild ran"
  )
  requests.forEach((e, i) => {
    const signature = requestSignature(e, vmid)
    const occurrence = (seen.get(signature) ?? 0) + 1
    seen.set(signature, occurrence)
    if (i < firstMark || (polled(signature) && occurrence > 1) || conditional(signature)) return
    const phase: Phase = i < destroyAt ? "stop" : i < createAt ? "destroy" : i <= finishedAt ? "create" : "rejoin"
    points.push({ phase, signature, occurrence })
  })
  for (const o of operations) {
    const phase = operationPhase[o.operation]
    if (phase !== undefined) points.push({ phase, signature: `operation ${o.operation}`, occurrence: 1 })
  }
  return points
}

/** A seeded choice of `quota[phase]` points per phase, in a seeded order. */
const choose = (points: ReadonlyArray<KillPoint>, next: () => number): Array<KillPoint> => {
  const shuffled = (list: ReadonlyArray<KillPoint>) => {
    const a = [...list]
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1))
      ;[a[i], a[j]] = [a[j] as KillPoint, a[i] as KillPoint]
    }
    return a
  }
  const phases: ReadonlyArray<Phase> = ["stop", "destroy", "create", "rejoin"]
  const perPhase = phases.map((p) => shuffled(points.filter((k) => k.phase === p)))
  const chosen = perPhase.flatMap((list, i) => list.slice(0, quota[phases[i] as Phase]))
  // a phase with fewer points than its quota leaves its share to the others
  const rest = shuffled(perPhase.flatMap((list, i) => list.slice(quota[phases[i] as Phase])))
  return shuffled([...chosen, ...rest.slice(0, Math.max(0, total - chosen.length))])
}

/**
 * Resolves with true at the moment the simulator records `point` (its events counted since `mark`, and in the request
 * log), before it takes its next step: a SIGKILL sent in the `await`'s continuation lands right there. Resolves with
 * false when the run ends first.
 */
const reached = (sim: SimHandle, point: KillPoint, vmid: number, mark: number, ended: Promise<unknown>) => {
  const isOperation = point.signature.startsWith("operation ")
  const matches = (r: SimRecord) =>
    isOperation
      ? r._tag === "Operation" && `operation ${r.operation.operation}` === point.signature
      : r._tag === "Request" && requestSignature(r.request, vmid) === point.signature
  let count = isOperation
    ? sim.operations(mark).filter((o) => `operation ${o.operation}` === point.signature).length
    : sim.requests().filter((e) => requestSignature(e, vmid) === point.signature).length
  if (count >= point.occurrence) return Promise.resolve(true)
  return whenRecord(sim, (r) => (matches(r) && ++count >= point.occurrence ? true : undefined), ended).catch(
    () => false
  )
}

const describePoint = (p: KillPoint) => `${p.phase}: ${p.signature} #${p.occurrence}`

/**
 * A lab with k3s, n1's VM converged, and two VMs that are not ours on n1 (the k3s server and a stranger). Stopped VMs
 * are started (`health.stopped: start`), so a rebuild killed after the stop is finished only by its durable intent.
 */
const convergedLab = async () => {
  const lab = await startLab(["n1"], {
    k3s: true,
    // a stopped VM of ours is started, not rebuilt: only the rebuild's own mark makes the next run finish it
    extra: "health:\n  stopped: start",
    scenario: {
      vms: [
        {
          vmid: 300,
          node: "n1",
          name: "nas",
          status: "running",
          tags: "storage",
          uptime: 86_400,
          config: { cores: 2, memory: "2048", agent: "1" }
        }
      ]
    }
  })
  const first = await lab.homelab("apply", "--yes")
  assert.strictEqual(first.code, ExitCode.Ok, first.stdout + first.stderr)
  return lab
}

/** The VMs that are not ours, as they must stay. */
const strangers = (sim: SimHandle) =>
  vmsOf(sim)
    .filter((v) => v.vmid === 200 || v.vmid === 300)
    .map((v) => [v.vmid, v.name, v.status, v.tags])

describe("a rebuild killed at any point is finished by the next apply", () => {
  it(`≥ 20 seeded SIGKILL points across stop → destroy → create → rejoin (seed ${seed})`, async () => {
    const next = random(seed)
    const context = (what: string) => `${what} [seed ${seed}; replay with HOMELAB_TEST_SEED=${seed}]`
    const labs = await Promise.all(Array.from({ length: shards }, convergedLab))
    const reference = labs[0] as SimLab
    const vmid = vmsOf(reference.sim).find((v) => v.name === "k3s-vm-n1")?.vmid as number
    for (const lab of labs) {
      assert.strictEqual(vmsOf(lab.sim).find((v) => v.name === "k3s-vm-n1")?.vmid, vmid, "name-derived VMIDs")
    }
    const before = strangers(reference.sim)

    // one uninterrupted rebuild: what happens, in order, and the kill points it offers
    reference.sim.clearRequests()
    const mark = reference.sim.mark()
    const whole = await reference.homelab("reprovision", "n1", "--yes")
    assert.strictEqual(whole.code, ExitCode.Ok, whole.stdout + whole.stderr)
    const points = choose(killPointsOf(reference.sim.requests(), reference.sim.operations(mark), vmid), next)
    const perPhase = (phase: Phase) => points.filter((p) => p.phase === phase).length
    assert.isAtLeast(points.length, 20, context(points.map(describePoint).join("\n")))
    for (const phase of ["stop", "destroy", "create", "rejoin"] as const) assert.isAtLeast(perPhase(phase), 2, phase)

    const killedAt: Array<string> = []
    await Promise.all(
      labs.map(async (lab, shard) => {
        for (const point of points.filter((_, i) => i % shards === shard)) {
          const what = context(describePoint(point))
          lab.sim.clearRequests()
          const since = lab.sim.mark()
          const rebuild = lab.spawn("reprovision", "n1", "--yes")
          const hit = await reached(lab.sim, point, vmid, since, rebuild.done)
          assert.isTrue(hit, `${what}: the rebuild ended before reaching it\n${rebuild.output()}`)
          rebuild.child.kill("SIGKILL")
          const killed = await rebuild.done
          assert.strictEqual(killed.signal, "SIGKILL", what)
          killedAt.push(describePoint(point))

          const after = await lab.homelab("apply", "--yes")
          const out = `${what}\n--- killed run:\n${killed.stdout}${killed.stderr}\n--- next apply:\n${after.stdout}${after.stderr}`
          assert.strictEqual(after.code, ExitCode.Ok, out)
          assert.notInclude(after.stdout, "identity-mismatch", out)
          // the rebuild was finished, not abandoned: the old VM was destroyed and a new one created after it
          const ops = lab.sim.operations(since)
          const destroyed = ops.findLast((o) => o.operation === "qmdestroy" && o.status === "ok")
          const created = ops.findLast((o) => o.operation === "qmcreate" && o.status === "ok")
          assert.isTrue(
            destroyed !== undefined && created !== undefined && created.id > destroyed.id,
            `rebuilt: ${out}`
          )
          assert.isUndefined(notConverged(lab.sim, "n1", true), out)
          assert.deepStrictEqual(
            vmsOf(lab.sim)
              .map((v) => v.vmid)
              .sort((a, b) => a - b),
            [200, 300, vmid],
            `no duplicate VM: ${out}`
          )
          assert.deepStrictEqual(
            k3sNodesOf(lab.sim)
              .map((n) => n.name)
              .sort(),
            ["k3s-server", "k3s-vm-n1"],
            `no stale or duplicate Node: ${out}`
          )
          assert.deepStrictEqual(strangers(lab.sim), before, `strangers unchanged: ${out}`)
          assert.deepStrictEqual(
            mutating(lab.sim).filter(
              (r) => /\/qemu\/(200|300)\b/.test(r.path ?? "") || / (200|300)\b/.test(r.command ?? "")
            ),
            [],
            `nothing sent to a VM that is not ours: ${out}`
          )
        }
      })
    )
    assert.strictEqual(killedAt.length, points.length)
  }, 600_000)
})
