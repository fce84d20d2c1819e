import { assert, describe, it } from "@effect/vitest"
import type { Scenario } from "@homelab/sim"
import * as Effect from "effect/Effect"
import { atRecord, labScenario, makeLab, mutatingRequests, reconcile, startLab } from "./lab.js"

const nodes = ["pve-a", "pve-b", "pve-c"]

/** Three nodes; `offline` of them powered off (their votes gone with them). */
const scenario = (offline: ReadonlyArray<string>, over: Partial<Scenario> = {}): Scenario => {
  const base = labScenario(nodes, { timings: { rrdIntervalMs: 0 }, ...over })
  return { ...base, nodes: base.nodes.map((n) => (offline.includes(n.name) ? { ...n, online: false } : n)) }
}

/** Requests that write a guest config (creates, starts, updates, destroys): what PVE refuses without quorum. */
const guestWrites = (sim: Parameters<typeof mutatingRequests>[0]) =>
  mutatingRequests(sim).filter((r) =>
    r.transport === "api" ? /\/qemu/.test(r.path ?? "") : /\bqm\b|\/qemu/.test(r.command ?? "")
  )

describe("a PVE cluster without quorum (against the simulator)", () => {
  it.live(
    "three nodes, two off: the plan says once that the cluster has no quorum and how to get it back, holds back the survivor's create and start (blocked, not failed), still reports the offline nodes; apply writes no guest config",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(scenario(["pve-b", "pve-c"]))
        const lab = yield* makeLab(sim)
        const run = yield* reconcile(lab)
        const noQuorum = run.plan.findings.filter((f) => f.code === "pve.no-quorum")
        assert.strictEqual(noQuorum.length, 1)
        const finding = noQuorum[0]
        assert.deepInclude(finding, { effect: "blocked", node: "pve-a" })
        assert.include(
          finding?.message,
          "the Proxmox cluster has no quorum: 1 of 3 nodes online (online: pve-a; offline: pve-b, pve-c)"
        )
        assert.include(finding?.message, "Not done until it has: create VM k3s-vm-pve-a on pve-a")
        assert.include(finding?.hint, "bring pve-b, pve-c back")
        assert.include(finding?.hint, "`pvecm expected 1` on pve-a")
        // the offline nodes are still reported; no VM action is planned
        assert.deepStrictEqual(
          run.plan.findings.filter((f) => f.code === "node.offline").map((f) => f.node),
          ["pve-b", "pve-c"]
        )
        assert.deepStrictEqual(
          run.plan.actions.filter((a) => a._tag !== "DownloadImage").map((a) => a.id),
          []
        )
        assert.deepStrictEqual(
          run.report.outcomes.filter((o) => o.status === "failed"),
          []
        )
        assert.isFalse(run.report.convergence.converged)
        assert.deepStrictEqual(guestWrites(sim), [])
        assert.isTrue(sim.requests().some((r) => r.path === "/cluster/status"))

        // `pvecm expected 1` on the survivor: quorate again, the VM is created
        const expected = yield* startLab(
          scenario(["pve-b", "pve-c"], { quorum: { expected: 1 }, ipPool: "127.78.70.10" })
        )
        const again = yield* reconcile(yield* makeLab(expected, { only: ["pve-a"] }))
        assert.deepStrictEqual(
          again.plan.findings.filter((f) => f.code === "pve.no-quorum"),
          []
        )
        assert.isTrue(again.report.convergence.converged)
      }),
    { timeout: 120_000 }
  )

  it.live(
    "every node online: /cluster/status is not read; quorum lost during apply fails the create (its disk resize's config write) with the cause named, not PVE's bare error",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(scenario([], { ipPool: "127.78.71.10" }))
        const lab = yield* makeLab(sim, { only: ["pve-a"] })
        // the two other nodes go down as the create is accepted: the resize after it cannot write the config
        yield* atRecord(
          sim,
          (r) => r._tag === "Request" && r.request.method === "POST" && r.request.path === "/nodes/pve-a/qemu",
          () => {
            sim.setNodeOnline("pve-b", false)
            sim.setNodeOnline("pve-c", false)
          }
        )
        const run = yield* reconcile(lab)
        assert.isFalse(sim.requests().some((r) => r.path === "/cluster/status"))
        const failed = run.report.outcomes.filter((o) => o.status === "failed")
        assert.strictEqual(failed.length, 1)
        const outcome = failed[0]
        assert.match(
          outcome?.detail ?? "",
          /^cannot resize scsi0 of VM \d+ to 16G on node pve-a: the Proxmox cluster lost its quorum \(\/etc\/pve is read-only; PVE: .*unable to open file '\/etc\/pve\/nodes\/pve-a\/qemu-server\/\d+\.conf\.tmp\.\d+' - Permission denied/
        )
        assert.include(outcome?.hint, "bring the cluster's offline nodes back")
      }),
    { timeout: 120_000 }
  )
})
