import { assert, describe, it } from "@effect/vitest"
import { type ClusterNode, K3sJoin } from "@homelab/k3s-join"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/testing/TestClock"
import type { Action, Finding } from "../src/Action.js"
import type { WaitProgress } from "../src/Apply.js"
import { membershipAfterPlan, membershipAtEnd, recheckMembership } from "../src/MembershipAtEnd.js"
import type { K3sFacts } from "../src/Observed.js"
import type { K3sCandidate } from "../src/PlanK3s.js"

const unknown = (vm: string, node: string): Finding => ({
  code: "k3s.unavailable",
  effect: "blocked",
  layer: "k3s",
  node,
  vm,
  vmid: 1001,
  message: `membership of ${vm} unknown: no server VM answers for the k3s cluster`,
  hint: "bring the server VMs that are down back (`qm start 1001` on pve)"
})

const candidate = (name: string, node: string, role: "server" | "agent" = "server"): K3sCandidate => ({
  name,
  node,
  vmid: 1001,
  role,
  ip: `10.0.0.${name.length}`,
  rebuilt: false
})

const clusterNode = (c: K3sCandidate, over: Partial<ClusterNode> = {}): ClusterNode => ({
  name: c.name,
  roleLabels: c.role === "server" ? ["control-plane", "etcd"] : [],
  role: c.role,
  ready: "True",
  readyDetail: "",
  internalIPs: c.ip === undefined ? [] : [c.ip],
  kubeletVersion: "v1.30.5+k3s1",
  systemUUID: undefined,
  deleting: false,
  etcdMemberName: undefined,
  ...over
})

describe("recheckMembership", () => {
  const s1 = candidate("s1", "pve")
  const s2 = candidate("s22", "fawn")
  const findings = [unknown("s1", "pve"), unknown("s22", "fawn")]
  const context = { candidates: new Map([s1, s2].map((c) => [c.name, c] as const)), broughtBack: ["s1"] }

  it("a Ready member with the right role is converged; one that is not Ready is said as it is now, for the next run", () => {
    const now = { nodes: [clusterNode(s1), clusterNode(s2, { ready: "Unknown", readyDetail: "NodeStatusUnknown" })] }
    const out = recheckMembership(findings, now, context)
    assert.deepStrictEqual(
      out.map((f) => `${f.vm} ${f.code} ${f.effect} ${f.layer}`),
      ["s22 k3s.join-later deferred k3s"]
    )
    assert.match(
      out[0]?.message ?? "",
      /^k3s Node s22 is not Ready yet \(Unknown: NodeStatusUnknown\) now that this run brought s1 back: the next run joins it/
    )
    assert.notInclude(JSON.stringify(out), "bring the server VMs that are down back")
  })

  it("not a member, or the wrong role: not converged (never taken for a member)", () => {
    const out = recheckMembership(findings, { nodes: [clusterNode(s1, { roleLabels: [], role: "agent" })] }, context)
    assert.deepStrictEqual(
      out.map((f) => `${f.vm} ${f.code} ${f.effect}`),
      ["s1 k3s.role-mismatch blocked", "s22 k3s.join-later deferred"]
    )
    assert.include(out[1]?.message ?? "", "s22 is not a member of the k3s cluster")
  })

  it("a Ready member on another version than k3s.version is left for the next run's upgrade", () => {
    const out = recheckMembership(
      findings,
      { nodes: [clusterNode(s1), clusterNode(s2)] },
      {
        ...context,
        version: "v1.31.5+k3s1"
      }
    )
    assert.deepStrictEqual(
      out.map((f) => `${f.vm} ${f.code}`),
      ["s1 k3s.upgrade-later", "s22 k3s.upgrade-later"]
    )
  })

  it("the cluster still does not answer: the finding stands, saying the servers were brought back", () => {
    const out = recheckMembership(findings, { unreadable: "etcdserver: request timed out" }, context)
    assert.deepStrictEqual(
      out.map((f) => `${f.vm} ${f.code} ${f.effect}`),
      ["s1 k3s.unavailable blocked", "s22 k3s.unavailable blocked"]
    )
    assert.include(out[0]?.message ?? "", "this run brought s1 back, but the k3s cluster did not answer yet")
    assert.notInclude(out[0]?.hint ?? "", "bring the server VMs that are down back")
  })

  it("a VM that does not run (not a candidate) and other findings are left as they are", () => {
    const other: Finding = { code: "vm.locked", effect: "deferred", layer: "vm", node: "pve", message: "locked" }
    const out = recheckMembership([unknown("s9", "x"), other], { nodes: [] }, context)
    assert.deepStrictEqual(out, [unknown("s9", "x"), other])
  })
})

describe("membershipAtEnd", () => {
  const s1 = candidate("s1", "pve")
  const findings = [unknown("s1", "pve")]
  const context = { candidates: new Map([[s1.name, s1] as const]), broughtBack: ["s1"] }
  const server = { host: s1.ip ?? "", port: 22, user: "ubuntu" }

  it.effect(
    "waits, reporting what for every 5 s, while the brought-back server's Node is not Ready; ends once it is",
    () =>
      Effect.gen(function* () {
        // the Node is there at once, NotReady until 12 s have passed on the (test) clock
        const join = K3sJoin.of({
          clusterNodes: () =>
            Effect.map(Clock.currentTimeMillis, (now) => [
              clusterNode(s1, now < 12_000 ? { ready: "False", readyDetail: "KubeletNotReady" } : {})
            ])
        } as unknown as K3sJoin["Service"])
        const waits: Array<WaitProgress> = []
        const run = yield* Effect.forkChild(
          membershipAtEnd(findings, {
            ...context,
            servers: [server],
            wait: Duration.minutes(10),
            onWait: (w) => Effect.sync(() => void waits.push(w))
          }).pipe(Effect.provideService(K3sJoin, join))
        )
        // reads at 0, 0.5, 1.25, 2.4, 4.1, 6.6, 10.4 and 16.1 s (every 0.5 s, growing ×1.5): Ready at the last one
        for (let i = 0; i < 60; i++) yield* TestClock.adjust("500 millis")
        const out = yield* Fiber.join(run)
        assert.deepStrictEqual(out, [], "converged once the Node is Ready")
        assert.deepStrictEqual(
          waits.map((w) => [w.what, w.elapsedMs, w.limitMs]),
          [
            ["the k3s Node of s1 to be Ready", 5_000, 600_000],
            ["the k3s Node of s1 to be Ready", 10_000, 600_000],
            ["the k3s Node of s1 to be Ready", 15_000, 600_000]
          ]
        )
      })
  )

  it.effect(
    "a k3s unit the run started that stops again on a cause that stays ends the wait at once, with the line that says why",
    () =>
      Effect.gen(function* () {
        // the only server: the cluster cannot answer without it; its journal since the start says why it stopped
        const line = 'level=fatal msg="starting kubernetes: preparing server: duplicate node name found"'
        const asked: Array<string> = []
        const join = K3sJoin.of({
          clusterNodes: () => Effect.fail({ message: "connection refused" }),
          unitStatus: (host: { readonly host: string }) =>
            Effect.sync(() => {
              asked.push(host.host)
              return { state: "failed", failure: { failure: "DuplicateEtcdMember", line, permanent: true } }
            })
        } as unknown as K3sJoin["Service"])
        const waits: Array<WaitProgress> = []
        // no clock adjustment: a wait would never end
        const out = yield* membershipAtEnd(findings, {
          ...context,
          servers: [server],
          startedUnits: [{ vm: "s1", host: server }],
          wait: Duration.minutes(10),
          onWait: (w) => Effect.sync(() => void waits.push(w))
        }).pipe(Effect.provideService(K3sJoin, join))
        assert.deepStrictEqual(asked, [server.host])
        assert.deepStrictEqual(
          out.map((f) => `${f.vm} ${f.code} ${f.effect}`),
          ["s1 k3s.start-failed blocked"]
        )
        assert.include(out[0]?.message ?? "", `did not come up after this run started it: it stopped (failed)`)
        assert.include(out[0]?.message ?? "", line)
        assert.include(out[0]?.hint ?? "", `\`journalctl -u k3s\` on ${server.host}`)
        assert.deepStrictEqual(waits, [])
      })
  )

  it.effect("a started unit that fails on a passing cause (the other servers not up yet) is waited for", () =>
    Effect.gen(function* () {
      // the cluster answers from 3 s on (test clock), with the Node Ready; until then the unit says it waits for etcd
      const join = K3sJoin.of({
        clusterNodes: () =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            now < 3_000 ? Effect.fail({ message: "connection refused" }) : Effect.succeed([clusterNode(s1)])
          ),
        unitStatus: () =>
          Effect.succeed({
            state: "activating",
            failure: { failure: "ServerUnreachable", line: "failed to get CA certs", permanent: false }
          })
      } as unknown as K3sJoin["Service"])
      const run = yield* Effect.forkChild(
        membershipAtEnd(findings, {
          ...context,
          servers: [server],
          startedUnits: [{ vm: "s1", host: server }],
          wait: Duration.minutes(10)
        }).pipe(Effect.provideService(K3sJoin, join))
      )
      for (let i = 0; i < 20; i++) yield* TestClock.adjust("500 millis")
      assert.deepStrictEqual(yield* Fiber.join(run), [], "converged once the Node is Ready")
    })
  )

  it.effect("a cluster that answers at once with the Node Ready: no wait, nothing reported", () =>
    Effect.gen(function* () {
      const join = K3sJoin.of({
        clusterNodes: () => Effect.succeed([clusterNode(s1)])
      } as unknown as K3sJoin["Service"])
      const waits: Array<WaitProgress> = []
      const out = yield* membershipAtEnd(findings, {
        ...context,
        servers: [server],
        wait: Duration.minutes(10),
        onWait: (w) => Effect.sync(() => void waits.push(w))
      }).pipe(Effect.provideService(K3sJoin, join))
      assert.deepStrictEqual(out, [])
      assert.deepStrictEqual(waits, [])
    })
  )
})

describe("membershipAfterPlan", () => {
  const findings = [unknown("s1", "pve"), unknown("s22", "fawn"), unknown("a3", "horse")]
  const down: K3sFacts = {
    _tag: "Unavailable",
    message: "no server VM answers for the k3s cluster: s1 (VM 1001 on pve: stopped) does not run",
    hint: "bring the server VMs that are down back (`qm start 1001` on pve)",
    down: ["s1"],
    stopped: [{ vm: "s22", vmid: 1002, node: "fawn", ip: "10.0.0.3", state: "inactive" }]
  }
  const startS1: Action = {
    _tag: "StartVm",
    id: "vm:pve:s1",
    node: "pve",
    reason: "",
    after: [],
    vmid: 1001,
    name: "s1"
  }
  const startK3s: Action = {
    _tag: "StartK3s",
    id: "k3s:fawn:s22",
    node: "fawn",
    reason: "",
    after: [],
    vm: "s22",
    vmid: 1002,
    ip: "10.0.0.3",
    state: "inactive"
  }

  it("the plan brings every server that keeps the cluster from answering back: not for the user, the run's end asks again", () => {
    const out = membershipAfterPlan(findings, [startS1, startK3s], down)
    assert.deepStrictEqual(
      out.map((f) => `${f.vm} ${f.code} ${f.effect}`),
      ["s1 k3s.unavailable deferred", "s22 k3s.unavailable deferred", "a3 k3s.unavailable deferred"]
    )
    assert.match(
      out[0]?.message ?? "",
      /; this run brings s1 \(start VM 1001 s1 on pve\), s22 \(start k3s on s22 .*\) back and reads the cluster again at its end$/
    )
    assert.include(out[0]?.hint ?? "", "nothing to do by hand")
    assert.notInclude(JSON.stringify(out), "bring the server VMs that are down back")
  })

  it("a server the plan leaves down, a unit that would fail again, or another cause keeps the plan's word", () => {
    assert.deepStrictEqual(membershipAfterPlan(findings, [startS1], down), findings)
    assert.deepStrictEqual(membershipAfterPlan(findings, [startS1, startK3s], { ...down, failing: ["s5"] }), findings)
    assert.deepStrictEqual(
      membershipAfterPlan(findings, [startS1, startK3s], { ...down, code: "k3s.role-mismatch" }),
      findings
    )
    const noneDown: K3sFacts = { _tag: "Unavailable", message: "quorum lost", hint: "bring its servers back" }
    assert.deepStrictEqual(membershipAfterPlan(findings, [startS1, startK3s], noneDown), findings)
  })
})
