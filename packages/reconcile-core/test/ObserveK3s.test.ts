/**
 * `observeK3s` when no server VM answers for the cluster, with a stub k3s client: a server VM that runs with its k3s
 * unit stopped is started by the plan, unless its last start failed on a cause that stays (then it is said, with the
 * journal line, and left alone: starting it would only fail again).
 */
import { assert, describe, it } from "@effect/vitest"
import {
  ClusterUnavailable,
  classifyLine,
  ExistingCluster,
  K3sJoin,
  K3sJoinError,
  type K3sJoinShape,
  type UnitStatus
} from "@homelab/k3s-join"
import { ProxmoxApi } from "@homelab/proxmox-client"
import * as Effect from "effect/Effect"
import { assess } from "../src/Convergence.js"
import { existingClusterHint } from "../src/existingClusterHint.js"
import { observeK3s } from "../src/ObserveK3s.js"
import { ipOf, k3sDesired, k3sObserved, names, planOf, steps } from "./k3sFixture.js"

const vms = names(1, 1)
const desired = k3sDesired(vms)
const observed = k3sObserved(vms, undefined)

/** k3s on every server VM does not answer; its unit is as `unit` says (`unitStatus` calls are counted). */
const stub = (unit: UnitStatus) => {
  const asked: Array<string> = []
  const join = {
    clusterNodes: (server: { host: string }) =>
      Effect.fail(
        new K3sJoinError({
          host: server.host,
          reason: new ClusterUnavailable({
            server: server.host,
            detail: "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?"
          })
        })
      ),
    installedRole: () => Effect.succeed("server" as const),
    unitStatus: (host: { host: string }) => {
      asked.push(host.host)
      return Effect.succeed(unit)
    }
  } as unknown as K3sJoinShape
  return { join, asked }
}

const observeWith = (unit: UnitStatus) => {
  const { join, asked } = stub(unit)
  return observeK3s(desired, { vms: observed.vms, ips: new Map(observed.ips), detailed: new Set() }).pipe(
    Effect.provideService(K3sJoin, K3sJoin.of(join)),
    Effect.provideService(ProxmoxApi, {} as unknown as ProxmoxApi["Service"]),
    Effect.map((facts) => ({ facts, asked }))
  )
}

describe("observeK3s: the cluster does not answer", () => {
  it.effect("a server VM whose k3s unit is stopped (inactive): the plan starts k3s on it", () =>
    Effect.gen(function* () {
      const { facts, asked } = yield* observeWith({ state: "inactive" })
      assert.deepStrictEqual(asked, [ipOf(vms, "s1")])
      assert.strictEqual(facts?._tag, "Unavailable")
      if (facts?._tag !== "Unavailable") return
      assert.deepStrictEqual(facts.stopped, [
        { vm: "s1", vmid: 1001, node: "pve-s1", ip: ipOf(vms, "s1"), state: "inactive" }
      ])
      assert.include(facts.message, `k3s on s1 (${ipOf(vms, "s1")}) is stopped (inactive): apply starts it`)
      assert.include(
        facts.hint,
        "apply starts k3s on s1 (`sudo systemctl enable --now k3s` there: enabled, so that it starts at the next boot too)"
      )
      const p = planOf(desired, k3sObserved(vms, facts))
      assert.deepStrictEqual(steps(p), ["StartK3s:s1"])
      // the membership stays unknown until the end of the run reads the cluster again
      assert.deepStrictEqual(
        p.findings.map((f) => `${f.vm} ${f.code}`),
        ["s1 k3s.unavailable", "a1 k3s.unavailable"]
      )
    })
  )

  it.effect(
    "a server VM whose k3s unit failed on a cause that stays: said with the journal line, never started again",
    () =>
      Effect.gen(function* () {
        const line =
          'time="2026-12-06T23:00:00Z" level=fatal msg="starting kubernetes: preparing server: bootstrap data already found and encrypted with different token"'
        const failure = classifyLine(line)
        assert.isTrue(failure?.permanent)
        const { facts } = yield* observeWith({ state: "failed", failure })
        assert.strictEqual(facts?._tag, "Unavailable")
        if (facts?._tag !== "Unavailable") return
        assert.isUndefined(facts.stopped)
        assert.include(
          facts.message,
          `k3s on s1 (${ipOf(vms, "s1")}) is stopped (failed) and its last start failed on a cause that stays: ${line}`
        )
        assert.include(facts.hint, "homelab does not start it while the cause stands")
        // the cause and its fix, not only "fix that"
        assert.include(
          facts.hint,
          "k3s on s1: its etcd data was encrypted with another token than the one k3s on s1 starts with: set k3s.token to the token the cluster was started with"
        )
        assert.notInclude(facts.hint, "apply starts")
        assert.deepStrictEqual(steps(planOf(desired, k3sObserved(vms, facts))), [])
      })
  )

  it.effect(
    "a server VM whose k3s unit systemd restarts on a cause that stays (activating): said with the line, its cause and fix",
    () =>
      Effect.gen(function* () {
        const line =
          'time="2026-12-06T23:00:00Z" level=fatal msg="ETCD join failed: duplicate node name found, please use a unique name for this node"'
        const { facts, asked } = yield* observeWith({ state: "activating", failure: classifyLine(line) })
        assert.deepStrictEqual(asked, [ipOf(vms, "s1")])
        assert.strictEqual(facts?._tag, "Unavailable")
        if (facts?._tag !== "Unavailable") return
        assert.isUndefined(facts.stopped)
        assert.deepStrictEqual(facts.failing, ["s1"])
        assert.include(
          facts.message,
          `k3s on s1 (${ipOf(vms, "s1")}) does not come up: systemd starts it again and again (activating), and it stops on a cause that stays: ${line}`
        )
        assert.notInclude(facts.message, "connection to the server 127.0.0.1:6443 was refused")
        assert.include(
          facts.hint,
          "k3s on s1: etcd still has a member named after s1 from an earlier VM or an earlier k3s on it (k3s-uninstall.sh deletes its data, not its member): delete its Node on a Ready server (`sudo k3s kubectl delete node s1`"
        )
        assert.notInclude(facts.hint, "bring its servers back")
        const p = planOf(desired, k3sObserved(vms, facts))
        assert.deepStrictEqual(steps(p), [])
        assert.include(p.findings.find((f) => f.vm === "s1")?.message ?? "", "duplicate node name found")
      })
  )

  it.effect("a server VM whose k3s unit is starting (activating): nothing to start, the finding stays as it was", () =>
    Effect.gen(function* () {
      const { facts } = yield* observeWith({ state: "activating" })
      assert.strictEqual(facts?._tag, "Unavailable")
      if (facts?._tag !== "Unavailable") return
      assert.isUndefined(facts.stopped)
      assert.include(facts.message, "connection to the server 127.0.0.1:6443 was refused")
      assert.include(facts.hint, "bring its servers back")
      assert.deepStrictEqual(steps(planOf(desired, k3sObserved(vms, facts))), [])
    })
  )
})

describe("observeK3s: no cluster yet, and the first server VM holds one already", () => {
  const servers = names(2, 1)
  const lab = k3sDesired(servers)
  const start = k3sObserved(servers, undefined)

  /** No server VM runs k3s (no unit); `existingCluster` answers `found` for the VM it is asked about. */
  const absent = (found: ExistingCluster | undefined) => {
    const asked: Array<string> = []
    const join = {
      clusterNodes: (server: { host: string }) =>
        Effect.fail(
          new K3sJoinError({
            host: server.host,
            reason: new ClusterUnavailable({ server: server.host, detail: "k3s is not installed" })
          })
        ),
      installedRole: () => Effect.succeed(undefined),
      existingCluster: (host: { host: string; nodeName?: string }) => {
        asked.push(`${host.nodeName} ${host.host}`)
        return Effect.succeed(found)
      }
    } as unknown as K3sJoinShape
    return observeK3s(lab, { vms: start.vms, ips: new Map(start.ips), detailed: new Set() }).pipe(
      Effect.provideService(K3sJoin, K3sJoin.of(join)),
      Effect.provideService(ProxmoxApi, {} as unknown as ProxmoxApi["Service"]),
      Effect.map((facts) => ({ facts, asked }))
    )
  }

  it.effect(
    "etcd data of an earlier cluster on it: no InitK3s, a blocked finding with apply's words (ExistingCluster) and its fix",
    () =>
      Effect.gen(function* () {
        const refusal = new ExistingCluster({
          node: "s1",
          member: "s1-0a1b2c3d",
          unitState: "inactive",
          detail: "systemctl is-active k3s: inactive"
        })
        const { facts, asked } = yield* absent(refusal)
        // only the first server VM, the one that would start the cluster, is asked
        assert.deepStrictEqual(asked, [`s1 ${ipOf(servers, "s1")}`])
        assert.strictEqual(facts?._tag, "Absent")
        const p = planOf(lab, k3sObserved(servers, facts))
        assert.deepStrictEqual(steps(p), [])
        const finding = p.findings.find((f) => f.code === "k3s.existing-cluster")
        assert.deepStrictEqual([finding?.effect, finding?.vm, finding?.node], ["blocked", "s1", "pve-s1"])
        assert.strictEqual(
          finding?.message,
          `not starting the k3s cluster on s1, the first server VM: ${refusal.refusal}`
        )
        assert.include(
          finding?.message ?? "",
          "s1 holds the etcd data of an earlier k3s cluster (its member s1-0a1b2c3d"
        )
        assert.strictEqual(finding?.hint, existingClusterHint("s1", ipOf(servers, "s1"), refusal))
        assert.include(finding?.hint ?? "", `\`sudo /usr/local/bin/k3s-uninstall.sh\` on ${ipOf(servers, "s1")}`)
        // the other VMs cannot join a cluster that is not started: said, not planned
        assert.deepStrictEqual(
          p.findings
            .filter((f) => f.effect === "blocked")
            .map((f) => `${f.vm} ${f.code}`)
            .sort(),
          ["a1 k3s.no-cluster", "s1 k3s.existing-cluster", "s2 k3s.no-cluster"]
        )
        assert.isFalse(assess(p).converged)
      })
  )

  it.effect("nothing there: the cluster starts on the first server VM as before", () =>
    Effect.gen(function* () {
      const { facts, asked } = yield* absent(undefined)
      assert.deepStrictEqual(asked, [`s1 ${ipOf(servers, "s1")}`])
      assert.deepStrictEqual(facts, { _tag: "Absent", probed: ["s1", "s2"] })
      assert.deepStrictEqual(steps(planOf(lab, k3sObserved(servers, facts))), [
        "InitK3s:s1",
        "JoinK3s:s2",
        "JoinK3s:a1"
      ])
    })
  )
})
