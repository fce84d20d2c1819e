import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { closeConnections, haScenario, run } from "./k3sHelpers.js"

const K = "sudo -n /usr/local/bin/k3s kubectl"

const podsOn = async (sim: SimHandle, node: string) =>
  (
    await run(
      sim,
      200,
      `${K} get pods -A --field-selector spec.nodeName=${node} -o jsonpath='{.items[*].metadata.name}'`
    )
  ).stdout
    .split(" ")
    .filter((x) => x !== "")

describe("cordon, drain (eviction, PodDisruptionBudgets), uncordon", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(haScenario())
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("cordon marks the Node unschedulable (taint, SchedulingDisabled); again: already cordoned; uncordon undoes it", async () => {
    const c1 = await run(sim, 200, `${K} cordon s3`)
    assert.deepStrictEqual([c1.code, c1.stdout], [0, "node/s3 cordoned\n"])
    const c2 = await run(sim, 200, `${K} cordon s3`)
    assert.strictEqual(c2.stdout, "node/s3 already cordoned\n")
    const json = JSON.parse((await run(sim, 200, `${K} get node s3 -o json`)).stdout) as {
      spec: { unschedulable?: boolean; taints?: Array<{ key: string; effect: string }> }
    }
    assert.strictEqual(json.spec.unschedulable, true)
    assert.ok(json.spec.taints?.some((t) => t.key === "node.kubernetes.io/unschedulable" && t.effect === "NoSchedule"))
    assert.match(
      (await run(sim, 200, `${K} get nodes`)).stdout,
      /\ns3 +Ready,SchedulingDisabled +control-plane,etcd,master /
    )
    const u1 = await run(sim, 200, `${K} uncordon s3`)
    assert.strictEqual(u1.stdout, "node/s3 uncordoned\n")
    assert.strictEqual((await run(sim, 200, `${K} uncordon s3`)).stdout, "node/s3 already uncordoned\n")
    const missing = await run(sim, 200, `${K} cordon nope`)
    assert.deepStrictEqual(
      [missing.code, missing.stderr],
      [1, 'Error from server (NotFound): nodes "nope" not found\n']
    )
  })

  it("drain refuses DaemonSet pods and emptyDir pods without the flags, as kubectl does", async () => {
    const r = await run(sim, 200, `${K} drain s1`)
    assert.strictEqual(r.code, 1)
    assert.strictEqual(r.stdout, "node/s1 cordoned\n")
    const lines = r.stderr.split("\n")
    assert.match(
      lines[0] ?? "",
      /^error: unable to drain node "s1" due to error: \[cannot delete DaemonSet-managed Pods \(use --ignore-daemonsets to ignore\): kube-system\/svclb-traefik-[0-9a-f]{8}-\w{5}, cannot delete Pods with local storage \(use --delete-emptydir-data to override\): kube-system\/metrics-server-\w+-\w{5}\], continuing command\.\.\.$/
    )
    assert.deepStrictEqual(lines.slice(1, 3), ["There are pending nodes to be drained:", " s1"])
    // nothing was evicted
    assert.include((await podsOn(sim, "s1")).join(" "), "metrics-server-")
    await run(sim, 200, `${K} uncordon s1`)
  })

  it("drains a node: evicts (PDB allowing), the replacements run elsewhere, the node stays cordoned", async () => {
    const before = await podsOn(sim, "a1")
    assert.ok(before.some((p) => p.startsWith("web-")))
    const r = await run(sim, 200, `${K} drain a1 --ignore-daemonsets --delete-emptydir-data --timeout=60s`)
    assert.strictEqual(r.code, 0, r.stderr)
    assert.match(r.stdout, /^node\/a1 cordoned\n/)
    assert.match(r.stdout, /\npod\/web-\w+-\w{5} evicted\n/)
    assert.match(r.stdout, /\nnode\/a1 drained\n$/)
    assert.match(r.stderr, /^Warning: ignoring DaemonSet-managed Pods: kube-system\/svclb-traefik-/)
    const after = await podsOn(sim, "a1")
    assert.deepStrictEqual(
      after.filter((p) => !p.startsWith("svclb-")),
      []
    )
    const web = await run(sim, 200, `${K} get pods -l app=web -o jsonpath='{.items[*].spec.nodeName}'`)
    assert.strictEqual(web.stdout.split(" ").length, 2)
    assert.notInclude(web.stdout, "a1")
    const events = sim.k3sEvents().filter((e) => e.node === "a1" || e.detail === "a1")
    assert.deepStrictEqual(
      events.map((e) => e.kind),
      [
        "node-cordoned",
        "drain-start",
        ...events.filter((e) => e.kind === "pod-evicted").map(() => "pod-evicted"),
        "drain-finish"
      ]
    )
    assert.strictEqual((await run(sim, 200, `${K} uncordon a1`)).stdout, "node/a1 uncordoned\n")
  })

  it("a PDB that allows no disruption: 429 retries every 5 s until --timeout, exit 1, the pod stays", async () => {
    const db = (
      await run(sim, 200, `${K} get pods -l app=db -o jsonpath='{.items[0].metadata.name} {.items[0].spec.nodeName}'`)
    ).stdout
    const [pod, node] = db.split(" ") as [string, string]
    const r = await run(sim, 200, `${K} drain ${node} --ignore-daemonsets --delete-emptydir-data --timeout=1s`)
    assert.strictEqual(r.code, 1)
    assert.include(
      r.stderr,
      `error when evicting pods/"${pod}" -n "default" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.\n`
    )
    assert.include(
      r.stderr,
      `error: unable to drain node "${node}" due to error: error when evicting pods/"${pod}" -n "default": global timeout reached: 1s, continuing command...\nThere are pending nodes to be drained:\n ${node}\n`
    )
    assert.match(r.stderr, /error: error when evicting pods\/"[^"]+" -n "default": global timeout reached: 1s\n$/)
    assert.ok(r.stdout.split("\n").filter((l) => l === `evicting pod default/${pod}`).length >= 2, r.stdout)
    assert.include(await podsOn(sim, node), pod)
    const pdb = JSON.parse((await run(sim, 200, `${K} get pdb db -o json`)).stdout) as {
      status: { disruptionsAllowed: number; currentHealthy: number; desiredHealthy: number }
    }
    assert.deepStrictEqual(pdb.status, {
      currentHealthy: 1,
      desiredHealthy: 1,
      disruptionsAllowed: 0,
      expectedPods: 1
    } as never)
    assert.strictEqual(sim.k3sEvents().at(-1)?.kind, "drain-failed")
    await run(sim, 200, `${K} uncordon ${node}`)
  })
})
