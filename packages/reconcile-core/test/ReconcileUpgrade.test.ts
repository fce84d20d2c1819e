/**
 * A rolling k3s upgrade through `reconcile` against the simulator: servers one at a time, then the agents, each
 * cordoned, drained, upgraded and uncordoned; a failure midway stops the rollout and the next run resumes it; a skipped
 * minor goes through the intermediate release, hop by hop across the cluster, never outside the version skew policy;
 * a downgrade is refused, and so is a release that does not exist, before anything is cordoned; a Node cordoned by
 * hand stays cordoned, also across an interrupted run.
 */
import { assert, describe, it } from "@effect/vitest"
import { K3sJoin, runningFlags, showFlag } from "@homelab/k3s-join"
import { reserveLoopbackNet, type Scenario, type SimHandle } from "@homelab/sim"
import * as Effect from "effect/Effect"
import { type Action, describeAction } from "../src/Action.js"
import { parseConfig } from "../src/config/parseConfig.js"
import { desiredFromConfig, healthPolicyFromConfig } from "../src/desiredFromConfig.js"
import type { Plan } from "../src/Plan.js"
import { reconcile as reconcileAll } from "../src/Reconcile.js"
import {
  atRecord,
  clientLayer,
  interruptAt,
  k3sEvent,
  type Lab,
  labScenario,
  makeLab,
  reconcile,
  simVms,
  startLab
} from "./lab.js"

const net = reserveLoopbackNet().net
const servers = ["pve", "still-fawn", "chief-horse"]
const agents = ["fun-goal", "wise-owl"]
const all = [...servers, ...agents]
const v130 = "v1.30.5+k3s1"
const v131 = "v1.31.5+k3s1"
const v132 = "v1.32.9+k3s1"
const v133 = "v1.33.5+k3s1"

/** A running cluster of our own VMs (one per node of `on`, tagged homelab-managed), all on `version`. */
const running = (over: Partial<Scenario> = {}, on: ReadonlyArray<string> = all, version = v130): Scenario =>
  labScenario([...on], {
    ipPool: `${net}.100`,
    guestSshPort: 2222,
    vms: on.map((node, i) => ({
      vmid: 2001 + i,
      node,
      name: `k3s-vm-${node}`,
      status: "running" as const,
      uptime: 86_400,
      tags: "homelab-managed",
      ip: `${net}.${11 + i}`,
      // sized as homelab.yaml asks (8 CPUs and 64 GiB × 0.5): no drift to change in place
      config: {
        cores: 4,
        memory: "32768",
        cpu: "host",
        agent: "1",
        net0: `virtio=BC:24:11:2A:01:${String(11 + i).padStart(2, "0")},bridge=vmbr0`
      },
      guest: {
        hostname: `k3s-vm-${node}`,
        user: "ubuntu",
        k3s: servers.includes(node) ? { role: "server" as const, clusterInit: i === 0 } : { role: "agent" as const }
      }
    })),
    k3s: {
      version,
      joinDelayMs: 5000,
      readyDelayMs: 10_000,
      learnerPromotionDelayMs: 15_000,
      workloads: [{ name: "web", replicas: 2, pdb: { minAvailable: 1 } }]
    },
    ...over
  })

const k3sSection = (version: string, extra: ReadonlyArray<string> = []) =>
  ["  sshPort: 2222", "k3s:", `  version: ${version}`, "  upgrade: { drainTimeout: 60 }", ...extra].join("\n")

const withVersion = (lab: Lab, version: string) =>
  Effect.gen(function* () {
    const yaml = lab.yaml.replace(/ {2}sshPort: 2222\nk3s:[\s\S]*$/, k3sSection(version))
    const config = yield* parseConfig(yaml, { env: {}, source: "homelab.yaml" }).pipe(Effect.orDie)
    return { ...lab, yaml, config } satisfies Lab
  })

/**
 * homelab.yaml with other k3s flags (the k3s section as `k3sSection` writes it, plus those lists): `installFlags`, or
 * each list given (`{ serverFlags: "[--disable=traefik]" }`).
 */
const withFlags = (
  lab: Lab,
  version: string,
  flags: string | Partial<Record<"installFlags" | "serverFlags" | "agentFlags", string>>
) =>
  Effect.gen(function* () {
    const lists = Object.entries(typeof flags === "string" ? { installFlags: flags } : flags)
    const yaml = lab.yaml.replace(
      / {2}sshPort: 2222\nk3s:[\s\S]*$/,
      k3sSection(
        version,
        lists.map(([list, value]) => `  ${list}: ${value}`)
      )
    )
    const config = yield* parseConfig(yaml, { env: {}, source: "homelab.yaml" }).pipe(Effect.orDie)
    return { ...lab, yaml, config } satisfies Lab
  })

/** `homelab plan`: observe and plan, change nothing. */
const planOnly = (lab: Lab) =>
  reconcileAll(desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys }), {
    policy: healthPolicyFromConfig(lab.config),
    apply: false
  }).pipe(Effect.provide(clientLayer(lab)))

const versions = (sim: SimHandle) =>
  Object.fromEntries(sim.state().k3s.nodes.map((n) => [String(n.name).replace("k3s-vm-", ""), n.version]))

/**
 * cordon/drain/upgrade/uncordon events per node, in the order they happened; those after the first `since` events
 * (`since`: the count of `k3sEvents()` before a run).
 */
const rollout = (sim: SimHandle, since = 0) =>
  sim
    .k3sEvents()
    .slice(since)
    .filter((e) =>
      ["node-cordoned", "drain-start", "drain-finish", "node-upgraded", "node-uncordoned"].includes(e.kind)
    )
    .map((e) => `${(e.node || (e.detail ?? "")).replace("k3s-vm-", "")} ${e.kind}`)

/** `kubectl cordon` by hand (through the first server), as an operator would before maintenance. */
const cordonByHand = (lab: Lab, node: string) =>
  Effect.gen(function* () {
    const k3s = yield* K3sJoin
    yield* k3s.cordon({ host: `${net}.11`, port: 2222, user: "ubuntu" }, `k3s-vm-${node}`)
  }).pipe(Effect.provide(clientLayer(lab)))

const cordoned = (sim: SimHandle) =>
  sim
    .state()
    .k3s.nodes.filter((n) => n.unschedulable)
    .map((n) => String(n.name).replace("k3s-vm-", ""))

const tagsOf = (sim: SimHandle, node: string) => simVms(sim).find((v) => v.name === `k3s-vm-${node}`)?.tags ?? ""

/** `node from → to` per upgrade, and every version-skew the simulator saw, in the order they happened. */
const upgradesAndSkew = (sim: SimHandle) =>
  sim
    .k3sEvents()
    .filter((e) => e.kind === "node-upgraded" || e.kind === "version-skew")
    .map((e) => `${e.kind === "version-skew" ? "version-skew " : ""}${e.node.replace("k3s-vm-", "")} ${e.detail ?? ""}`)

/** The rollout's upgrades as `vm → version`, in plan order. */
const hops = (plan: Plan) =>
  plan.actions.flatMap((a) =>
    a._tag === "UpgradeK3s" ? [`${a.vm.replace("k3s-vm-", "")} → ${a.steps.join(", ") || "uncordon"}`] : []
  )

describe("a rolling k3s upgrade", () => {
  it.live(
    "servers one at a time, then agents; a failure midway stops the rollout, the next run resumes it",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(running())
        const nodes = Object.fromEntries(servers.map((n) => [n, "    vms: [{ role: server }]"]))
        const base = yield* makeLab(sim, { vm: k3sSection(v130), nodes })
        yield* reconcile(base) // the image onto each node; the cluster is as configured
        const steady = yield* reconcile(base)
        assert.deepStrictEqual(
          steady.plan.actions.map((a) => `${a.id}: ${a.reason}`),
          []
        )
        assert.isTrue(steady.report.convergence.converged)

        const lab = yield* withVersion(base, v131)
        // The release downloads fail from the moment the second server is cordoned (its upgrade began, after the
        // download check that comes before any cordon): the rollout stops there.
        const broken = yield* atRecord(sim, k3sEvent("node-cordoned", "k3s-vm-still-fawn"), () => {
          void sim.addFaults([{ kind: "k3sDownloadFails" }])
        })
        const first = yield* reconcile(lab)
        assert.isDefined(broken(), "still-fawn was cordoned")
        assert.deepStrictEqual(
          first.plan.actions.map((a) => `${a._tag}:${"vm" in a ? a.vm.replace("k3s-vm-", "") : a.id}`),
          all.map((n) => `UpgradeK3s:${n}`)
        )
        assert.deepStrictEqual(
          first.result.outcomes.map(
            (o) => `${o.action._tag === "UpgradeK3s" ? o.action.vm.replace("k3s-vm-", "") : ""} ${o.status}`
          ),
          ["pve done", "still-fawn failed", "chief-horse skipped", "fun-goal skipped", "wise-owl skipped"]
        )
        assert.deepStrictEqual(versions(sim), {
          pve: v131,
          "still-fawn": v130,
          "chief-horse": v130,
          "fun-goal": v130,
          "wise-owl": v130
        })
        assert.isFalse(first.report.convergence.converged)
        assert.include(simVms(sim).find((v) => v.name === "k3s-vm-still-fawn")?.tags ?? "", "homelab-upgrade")

        yield* Effect.promise(() => sim.clearFaults({ kind: "k3sDownloadFails" }))
        const since = sim.k3sEvents().length
        const second = yield* reconcile(lab)
        assert.deepStrictEqual(
          second.plan.actions.map((a) => ("vm" in a ? a.vm.replace("k3s-vm-", "") : a.id)),
          ["still-fawn", "chief-horse", "fun-goal", "wise-owl"],
          "pve is not upgraded again"
        )
        assert.deepStrictEqual(
          second.result.outcomes.map((o) => o.status),
          ["done", "done", "done", "done"]
        )
        // still-fawn was cordoned by this lab's own (failed) run, under 'homelab-upgrade': uncordoned as usual
        assert.include(second.result.outcomes[0]?.detail ?? "", "uncordoned")
        assert.deepStrictEqual(cordoned(sim), [])
        assert.isTrue(second.report.convergence.converged)
        assert.deepStrictEqual(
          Object.values(versions(sim)),
          all.map(() => v131)
        )
        // each node: cordon, drain, upgrade, uncordon — and never two nodes out at once, servers before agents
        assert.deepStrictEqual(
          rollout(sim, since),
          // still-fawn stayed cordoned when its upgrade failed: the resumed upgrade finds it so
          ["still-fawn", "chief-horse", "fun-goal", "wise-owl"].flatMap((n) => [
            ...(n === "still-fawn" ? [] : [`${n} node-cordoned`]),
            `${n} drain-start`,
            `${n} drain-finish`,
            `${n} node-upgraded`,
            `${n} node-uncordoned`
          ])
        )
        assert.notInclude(
          simVms(sim)
            .map((v) => v.tags)
            .join(","),
          "homelab-upgrade"
        )
        const third = yield* reconcile(lab)
        assert.deepStrictEqual(third.plan.actions, [])
      }),
    180_000
  )

  it.live(
    "a skipped minor goes through the intermediate release; a downgrade is refused with a reason",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(running({ k3s: { version: v130, joinDelayMs: 5000, readyDelayMs: 10_000 } }))
        const nodes = Object.fromEntries(servers.map((n) => [n, "    vms: [{ role: server }]"]))
        const base = yield* makeLab(sim, { vm: k3sSection("v1.32.9+k3s1"), nodes })
        const { plan } = yield* planOnly(yield* withVersion(base, "v1.32.9+k3s1"))
        // hop by hop: every member to the newest v1.31 release first, then every member to the target
        assert.deepStrictEqual(hops(plan), [
          ...all.map((n) => `${n} → v1.31.13+k3s1`),
          ...all.map((n) => `${n} → v1.32.9+k3s1`)
        ])
        const up = plan.actions.find((a) => a._tag === "UpgradeK3s")
        assert.include(up?.reason ?? "", "one minor at a time, the whole cluster each time")
        const down = yield* planOnly(yield* withVersion(base, "v1.29.15+k3s1"))
        assert.deepStrictEqual(
          down.plan.actions.filter((a) => a._tag === "UpgradeK3s"),
          []
        )
        // the first server's refusal stops the rollout: the others are reported as waiting behind it
        assert.deepStrictEqual(
          down.plan.findings.filter((f) => f.layer === "k3s").map((f) => `${f.code} ${f.vm}`),
          ["k3s.downgrade k3s-vm-pve", ...all.slice(1).map((n) => `k3s.upgrade-waits k3s-vm-${n}`)]
        )
        assert.include(
          down.plan.findings[0]?.message ?? "",
          "v1.29.15+k3s1 is older than v1.30.5+k3s1: k3s cannot be downgraded"
        )
        assert.strictEqual(down.planned.converged, false)
      }),
    120_000
  )

  it.live(
    "a Node cordoned by hand is drained, upgraded and left cordoned; the next plan is clean but for its note",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(running())
        const nodes = Object.fromEntries(servers.map((n) => [n, "    vms: [{ role: server }]"]))
        const base = yield* makeLab(sim, { vm: k3sSection(v130), nodes })
        yield* reconcile(base)
        yield* cordonByHand(base, "fun-goal")
        const steady = yield* planOnly(base)
        assert.deepStrictEqual(steady.plan.actions, [])
        assert.deepStrictEqual(
          steady.plan.findings.map((f) => `${f.code} ${f.effect} ${f.vm}`),
          ["k3s.cordoned info k3s-vm-fun-goal"]
        )

        const lab = yield* withVersion(base, v131)
        const planned = yield* planOnly(lab)
        const funGoal = planned.plan.actions.find((a) => a._tag === "UpgradeK3s" && a.vm === "k3s-vm-fun-goal")
        assert.isTrue(funGoal?._tag === "UpgradeK3s" && funGoal.keepCordoned === true, JSON.stringify(funGoal))
        assert.deepStrictEqual(
          planned.plan.findings.map((f) => `${f.code} ${f.effect} ${f.vm}`),
          ["k3s.cordoned info k3s-vm-fun-goal"]
        )

        const since = sim.k3sEvents().length
        const upgraded = yield* reconcile(lab)
        assert.deepStrictEqual(
          upgraded.result.outcomes.map((o) => o.status),
          all.map(() => "done"),
          JSON.stringify(upgraded.result.outcomes)
        )
        const detail = (node: string) =>
          upgraded.result.outcomes.find((o) => o.action._tag === "UpgradeK3s" && o.action.vm === `k3s-vm-${node}`)
            ?.detail ?? ""
        assert.include(
          detail("fun-goal"),
          `k3s-vm-fun-goal upgraded ${v130} → ${v131}; left cordoned (it was cordoned before this run)`
        )
        assert.include(detail("wise-owl"), "uncordoned")
        assert.deepStrictEqual(
          Object.values(versions(sim)),
          all.map(() => v131)
        )
        assert.deepStrictEqual(cordoned(sim), ["fun-goal"])
        // drained and upgraded like the others, never uncordoned
        assert.deepStrictEqual(
          rollout(sim, since).filter((e) => e.startsWith("fun-goal ")),
          ["fun-goal drain-start", "fun-goal drain-finish", "fun-goal node-upgraded"]
        )
        assert.notInclude(
          simVms(sim)
            .map((v) => v.tags)
            .join(","),
          "homelab-upgrade"
        )
        assert.isTrue(upgraded.report.convergence.converged)

        const after = yield* planOnly(lab)
        assert.deepStrictEqual(after.plan.actions, [])
        assert.isTrue(after.planned.converged)
        assert.deepStrictEqual(
          after.plan.findings.map((f) => `${f.code} ${f.effect} ${f.vm}`),
          ["k3s.cordoned info k3s-vm-fun-goal"]
        )
      }),
    180_000
  )

  it.live(
    "interrupted while draining a Node cordoned by hand: the next run resumes its upgrade and leaves it cordoned",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(running())
        const nodes = Object.fromEntries(servers.map((n) => [n, "    vms: [{ role: server }]"]))
        const base = yield* makeLab(sim, { vm: k3sSection(v130), nodes })
        yield* reconcile(base)
        yield* cordonByHand(base, "chief-horse")
        const lab = yield* withVersion(base, v131)

        // Interrupted (as by Ctrl-C) the moment the drain of the Node cordoned by hand begins.
        yield* interruptAt(sim, k3sEvent("drain-start", "k3s-vm-chief-horse"), reconcile(lab))
        assert.deepStrictEqual(cordoned(sim), ["chief-horse"])
        assert.strictEqual(versions(sim)["chief-horse"], v130)
        assert.include(tagsOf(sim, "chief-horse"), "homelab-upgrade-keep-cordon")
        assert.notInclude(tagsOf(sim, "chief-horse").split(";"), "homelab-upgrade")

        const planned = yield* planOnly(lab)
        const resumed = planned.plan.actions.find((a) => a._tag === "UpgradeK3s" && a.vm === "k3s-vm-chief-horse")
        assert.isTrue(
          resumed?._tag === "UpgradeK3s" && resumed.resumed && resumed.keepCordoned === true,
          JSON.stringify(resumed)
        )
        assert.includeMembers(
          planned.plan.findings.map((f) => `${f.code} ${f.effect} ${f.vm}`),
          ["k3s.cordoned info k3s-vm-chief-horse"]
        )

        const since = sim.k3sEvents().length
        const second = yield* reconcile(lab)
        assert.deepStrictEqual(
          second.result.outcomes.map((o) => o.status),
          ["done", "done", "done"],
          JSON.stringify(second.result.outcomes)
        )
        assert.include(second.result.outcomes[0]?.detail ?? "", "left cordoned")
        assert.deepStrictEqual(
          Object.values(versions(sim)),
          all.map(() => v131)
        )
        assert.deepStrictEqual(cordoned(sim), ["chief-horse"])
        assert.notInclude(
          rollout(sim, since).filter((e) => e.startsWith("chief-horse ")),
          "chief-horse node-uncordoned"
        )
        assert.notInclude(
          simVms(sim)
            .map((v) => v.tags)
            .join(","),
          "homelab-upgrade"
        )
        const after = yield* planOnly(lab)
        assert.deepStrictEqual(after.plan.actions, [])
        assert.isTrue(after.planned.converged)
        assert.deepStrictEqual(
          after.plan.findings.map((f) => `${f.code} ${f.effect} ${f.vm}`),
          ["k3s.cordoned info k3s-vm-chief-horse"]
        )
      }),
    180_000
  )

  it.live(
    "two minors: every server to the minor between, then the agent, then every server to the target, then the agent; a failure midway resumes in that order; never a version skew",
    () =>
      Effect.gen(function* () {
        const four = [...servers, "fun-goal"]
        const sim = yield* startLab(running({}, four, v131))
        const nodes = Object.fromEntries(servers.map((n) => [n, "    vms: [{ role: server }]"]))
        const base = yield* makeLab(sim, { vm: k3sSection(v131), nodes })
        yield* reconcile(base) // the image onto each node; the cluster is as configured

        const lab = yield* withVersion(base, v133)
        // The release downloads fail from the moment the second server's first hop begins (it is cordoned): the
        // rollout stops there.
        const broken = yield* atRecord(sim, k3sEvent("node-cordoned", "k3s-vm-still-fawn"), () => {
          void sim.addFaults([{ kind: "k3sDownloadFails" }])
        })
        const first = yield* reconcile(lab)
        assert.isDefined(broken(), "still-fawn was cordoned")
        assert.deepStrictEqual(hops(first.plan), [
          ...four.map((n) => `${n} → ${v132}`),
          ...four.map((n) => `${n} → ${v133}`)
        ])
        assert.deepStrictEqual(
          first.result.outcomes.map((o) => o.status),
          ["done", "failed", ...Array.from({ length: 6 }, () => "skipped")]
        )
        assert.deepStrictEqual(versions(sim), {
          pve: v132,
          "still-fawn": v131,
          "chief-horse": v131,
          "fun-goal": v131
        })
        assert.include(simVms(sim).find((v) => v.name === "k3s-vm-still-fawn")?.tags ?? "", "homelab-upgrade")

        yield* Effect.promise(() => sim.clearFaults({ kind: "k3sDownloadFails" }))
        const second = yield* reconcile(lab)
        assert.deepStrictEqual(hops(second.plan), [
          ...four.slice(1).map((n) => `${n} → ${v132}`),
          ...four.map((n) => `${n} → ${v133}`)
        ])
        assert.isTrue(
          second.result.outcomes.every((o) => o.status === "done"),
          JSON.stringify(second.result.outcomes)
        )
        assert.isTrue(second.report.convergence.converged)
        assert.deepStrictEqual(upgradesAndSkew(sim), [
          ...four.map((n) => `${n} ${v131} → ${v132}`),
          ...four.map((n) => `${n} ${v132} → ${v133}`)
        ])
        assert.notInclude(
          simVms(sim)
            .map((v) => v.tags)
            .join(","),
          "homelab-upgrade"
        )
        const third = yield* reconcile(lab)
        assert.deepStrictEqual(third.plan.actions, [])
      }),
    240_000
  )

  it.live(
    "a k3s.version that is no k3s release is refused by the plan: nothing is marked, cordoned or drained",
    () =>
      Effect.gen(function* () {
        const four = [...servers, "fun-goal"]
        const sim = yield* startLab(running({}, four, v131))
        const nodes = Object.fromEntries(servers.map((n) => [n, "    vms: [{ role: server }]"]))
        const base = yield* makeLab(sim, { vm: k3sSection(v131), nodes })
        yield* reconcile(base)
        const lab = yield* withVersion(base, "v1.33.99+k3s1")
        const before = sim.k3sEvents().length
        const run = yield* reconcile(lab)
        assert.deepStrictEqual(hops(run.plan), [])
        const missing = run.plan.findings.filter((f) => f.code === "k3s.release-missing")
        assert.deepStrictEqual(
          missing.map((f) => `${f.vm} ${f.effect}`),
          four.map((n) => `k3s-vm-${n} blocked`)
        )
        assert.include(missing[0]?.message ?? "", "k3s.version v1.33.99+k3s1 is not a k3s release")
        assert.include(missing[0]?.hint ?? "", "k3s.version")
        assert.isFalse(run.report.convergence.converged)
        assert.deepStrictEqual(
          sim
            .k3sEvents()
            .slice(before)
            .filter((e) => ["node-cordoned", "drain-start", "node-upgraded"].includes(e.kind)),
          []
        )
        assert.notInclude(
          simVms(sim)
            .map((v) => v.tags)
            .join(","),
          "homelab-upgrade"
        )
        assert.deepStrictEqual(
          Object.values(versions(sim)),
          four.map(() => v131)
        )
      }),
    120_000
  )

  it.live(
    "a VM that cannot download the release is refused before it is marked or cordoned; the rollout stops there",
    () =>
      Effect.gen(function* () {
        const four = [...servers, "fun-goal"]
        // the cluster is read through pve, which reaches GitHub; chief-horse does not
        const sim = yield* startLab(running({ faults: [{ kind: "k3sDownloadFails", vmid: 2003 }] }, four, v131))
        const nodes = Object.fromEntries(servers.map((n) => [n, "    vms: [{ role: server }]"]))
        const base = yield* makeLab(sim, { vm: k3sSection(v131), nodes })
        yield* reconcile(base)
        const since = sim.k3sEvents().length
        const run = yield* reconcile(yield* withVersion(base, v132))
        assert.deepStrictEqual(
          run.result.outcomes.map((o) => `${o.action._tag === "UpgradeK3s" ? o.action.vm : o.id} ${o.status}`),
          ["k3s-vm-pve done", "k3s-vm-still-fawn done", "k3s-vm-chief-horse failed", "k3s-vm-fun-goal skipped"]
        )
        const failed = run.result.outcomes[2]
        assert.include(failed?.detail ?? "", "not upgrading k3s-vm-chief-horse: ")
        assert.include(failed?.detail ?? "", `cannot download k3s.version ${v132}`)
        assert.include(failed?.detail ?? "", "nothing was cordoned")
        assert.notInclude(rollout(sim, since).join(","), "chief-horse")
        assert.notInclude(simVms(sim).find((v) => v.name === "k3s-vm-chief-horse")?.tags ?? "", "homelab-upgrade")
        assert.deepStrictEqual(versions(sim), {
          pve: v132,
          "still-fawn": v132,
          "chief-horse": v131,
          "fun-goal": v131
        })
      }),
    120_000
  )

  it.live(
    "k3s.installFlags changed after the install: plan reports it per node, apply installs each member again with them through the upgrade's rollout; a flag k3s cannot change is refused",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(running())
        const nodes = Object.fromEntries(servers.map((n) => [n, "    vms: [{ role: server }]"]))
        const base = yield* makeLab(sim, { vm: k3sSection(v130), nodes })
        yield* reconcile(base) // the image onto each node; the cluster is as configured
        assert.isTrue((yield* reconcile(base)).report.convergence.converged)

        const lab = yield* withFlags(base, v130, "[--node-label=tier=gold, --kubelet-arg, max-pods=150]")
        const { plan, convergence } = yield* planOnly(lab)
        assert.deepStrictEqual(
          plan.actions.map((a) => `${a._tag}:${"vm" in a ? a.vm.replace("k3s-vm-", "") : a.id}`),
          all.map((n) => `UpgradeK3s:${n}`)
        )
        assert.isFalse(convergence.converged)
        const first = plan.actions[0]
        assert.include(
          first?.reason ?? "",
          "k3s-vm-pve runs v1.30.5+k3s1: k3s.installFlags differ from the flags its k3s runs with (adds --node-label=tier=gold --kubelet-arg=max-pods=150)"
        )

        const since = sim.k3sEvents().length
        const applied = yield* reconcile(lab)
        assert.deepStrictEqual(
          applied.result.outcomes.map((o) => o.status),
          all.map(() => "done")
        )
        // one member at a time, servers first: cordon, drain, install again, uncordon; no version changed
        assert.deepStrictEqual(
          rollout(sim, since),
          all.flatMap((n) => [`${n} node-cordoned`, `${n} drain-start`, `${n} drain-finish`, `${n} node-uncordoned`])
        )
        assert.deepStrictEqual(
          Object.values(versions(sim)),
          all.map(() => v130)
        )
        // what k3s runs with now, as it records it on each Node
        const node = yield* Effect.gen(function* () {
          const k3s = yield* K3sJoin
          return yield* k3s.clusterNodes({ host: `${net}.11`, port: 2222, user: "ubuntu" })
        }).pipe(Effect.provide(clientLayer(lab)))
        for (const n of node) {
          assert.strictEqual(n.labels?.tier, "gold", n.name)
          assert.includeMembers([...(n.nodeArgs ?? [])], ["--node-label", "tier=gold", "--kubelet-arg", "max-pods=150"])
        }
        assert.deepStrictEqual(cordoned(sim), [])
        assert.isTrue(applied.report.convergence.converged)
        const again = yield* reconcile(lab)
        assert.deepStrictEqual(again.plan.actions, [])
        assert.isTrue(again.report.convergence.converged)

        // a flag k3s cannot change once the cluster runs: refused per member, nothing is touched
        // (a server's flag: it goes in k3s.serverFlags, and reaches no agent)
        const cidr = yield* withFlags(base, v130, {
          installFlags: "[--node-label=tier=gold, --kubelet-arg, max-pods=150]",
          serverFlags: "[--cluster-cidr=10.52.0.0/16]"
        })
        const before = sim.k3sEvents().length
        const refused = yield* reconcile(cidr)
        assert.deepStrictEqual(refused.plan.actions, [])
        const immutable = refused.plan.findings.filter((f) => f.code === "k3s.flags-immutable")
        assert.deepStrictEqual(
          immutable.map((f) => f.vm),
          servers.map((n) => `k3s-vm-${n}`)
        )
        assert.strictEqual(
          immutable[0]?.hint,
          "restore --cluster-cidr in k3s.serverFlags as the cluster runs it; a new value needs a new cluster"
        )
        assert.isFalse(refused.report.convergence.converged)
        assert.deepStrictEqual(
          sim
            .k3sEvents()
            .slice(before)
            .filter((e) => e.kind === "node-cordoned"),
          []
        )
      }),
    180_000
  )

  it.live(
    "k3s.serverFlags and k3s.agentFlags: each role is installed with its own; a change of k3s.agentFlags rolls out to the agents only",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(running())
        const nodes = Object.fromEntries(servers.map((n) => [n, "    vms: [{ role: server }]"]))
        const base = yield* makeLab(sim, { vm: k3sSection(v130), nodes })
        yield* reconcile(base) // the image onto each node; the cluster is as configured
        assert.isTrue((yield* reconcile(base)).report.convergence.converged)
        const recorded = (lab: Lab) =>
          Effect.gen(function* () {
            const k3s = yield* K3sJoin
            const found = yield* k3s.clusterNodes({ host: `${net}.11`, port: 2222, user: "ubuntu" })
            return Object.fromEntries(
              found.map((n) => [n.name.replace("k3s-vm-", ""), runningFlags(n.nodeArgs)?.map(showFlag).join(" ")])
            )
          }).pipe(Effect.provide(clientLayer(lab)))

        // servers and agents each get k3s.installFlags and their own list
        const lab = yield* withFlags(base, v130, {
          installFlags: "[--kubelet-arg=max-pods=150]",
          serverFlags: "[--write-kubeconfig-mode, '644', --tls-san=k3s.lan]",
          agentFlags: "[--node-label=node-role=worker]"
        })
        const { plan } = yield* planOnly(lab)
        assert.deepStrictEqual(
          plan.actions.map((a) => `${a._tag}:${"vm" in a ? a.vm.replace("k3s-vm-", "") : a.id}`),
          all.map((n) => `UpgradeK3s:${n}`)
        )
        assert.include(
          plan.actions[0]?.reason ?? "",
          "k3s-vm-pve runs v1.30.5+k3s1: k3s.installFlags + k3s.serverFlags differ from the flags its k3s runs with (adds --kubelet-arg=max-pods=150 --write-kubeconfig-mode=644 --tls-san=k3s.lan)"
        )
        assert.include(
          plan.actions[3]?.reason ?? "",
          "k3s-vm-fun-goal runs v1.30.5+k3s1: k3s.installFlags + k3s.agentFlags differ from the flags its k3s runs with (adds --kubelet-arg=max-pods=150 --node-label=node-role=worker)"
        )
        const applied = yield* reconcile(lab)
        assert.deepStrictEqual(
          applied.result.outcomes.map((o) => o.status),
          all.map(() => "done")
        )
        const server = "--kubelet-arg=max-pods=150 --write-kubeconfig-mode=644 --tls-san=k3s.lan"
        const agent = "--kubelet-arg=max-pods=150 --node-label=node-role=worker"
        assert.deepStrictEqual(yield* recorded(lab), {
          pve: server,
          "still-fawn": server,
          "chief-horse": server,
          "fun-goal": agent,
          "wise-owl": agent
        })
        assert.isTrue(applied.report.convergence.converged)
        assert.deepStrictEqual((yield* reconcile(lab)).plan.actions, [])

        // another k3s.agentFlags: only the agents are installed again (the servers are not even cordoned)
        const more = yield* withFlags(base, v130, {
          installFlags: "[--kubelet-arg=max-pods=150]",
          serverFlags: "[--write-kubeconfig-mode, '644', --tls-san=k3s.lan]",
          agentFlags: "[--node-label=node-role=worker, --node-label=tier=bronze]"
        })
        const since = sim.k3sEvents().length
        const rolled = yield* reconcile(more)
        assert.deepStrictEqual(
          rolled.plan.actions.map((a) => `${a._tag}:${"vm" in a ? a.vm.replace("k3s-vm-", "") : a.id}`),
          agents.map((n) => `UpgradeK3s:${n}`)
        )
        assert.strictEqual(
          describeAction(rolled.plan.actions[0] as Action),
          "install k3s v1.30.5+k3s1 on k3s-vm-fun-goal (agent) again with k3s.installFlags + k3s.agentFlags (+--node-label=tier=bronze): cordon, drain, install, wait Ready, uncordon"
        )
        assert.deepStrictEqual(
          rolled.result.outcomes.map((o) => o.status),
          agents.map(() => "done")
        )
        assert.deepStrictEqual(
          rollout(sim, since),
          agents.flatMap((n) => [`${n} node-cordoned`, `${n} drain-start`, `${n} drain-finish`, `${n} node-uncordoned`])
        )
        assert.deepStrictEqual(yield* recorded(more), {
          pve: server,
          "still-fawn": server,
          "chief-horse": server,
          "fun-goal": `${agent} --node-label=tier=bronze`,
          "wise-owl": `${agent} --node-label=tier=bronze`
        })
        assert.isTrue(rolled.report.convergence.converged)
      }),
    180_000
  )

  it.live(
    "a --node-label dropped from k3s.agentFlags, and --node-taint changed: plan shows what the Node needs, apply does it with kubectl before the install, and the Node carries what homelab.yaml says",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(running())
        const nodes = Object.fromEntries(servers.map((n) => [n, "    vms: [{ role: server }]"]))
        const base = yield* makeLab(sim, { vm: k3sSection(v130), nodes })
        yield* reconcile(base) // the image onto each node; the cluster is as configured
        const onNodes = () =>
          Object.fromEntries(
            sim
              .state()
              .k3s.nodes.filter((n) => n.role === "agent")
              .map((n) => [n.name.replace("k3s-vm-", ""), { labels: n.labels, taints: n.taints }])
          )

        // a taint added to running agents: the kubelet applies --node-taint only when it registers the Node, so the
        // install alone would leave the Node without it
        const tainted = yield* withFlags(base, v130, {
          agentFlags: "[--node-label=tier=bronze, --node-label=zone=a, --node-taint=gpu=true:NoSchedule]"
        })
        const first = yield* reconcile(tainted)
        assert.strictEqual(
          describeAction(first.plan.actions[0] as Action),
          "install k3s v1.30.5+k3s1 on k3s-vm-fun-goal (agent) again with k3s.agentFlags (+--node-label=tier=bronze +--node-label=zone=a +--node-taint=gpu=true:NoSchedule); on its Node first: add taint gpu=true:NoSchedule: cordon, drain, install, wait Ready, uncordon"
        )
        assert.deepStrictEqual(
          first.result.outcomes.map((o) => o.status),
          agents.map(() => "done")
        )
        const gold = { labels: { tier: "bronze", zone: "a" }, taints: ["gpu=true:NoSchedule"] }
        assert.deepStrictEqual(onNodes(), { "fun-goal": gold, "wise-owl": gold })

        // tier dropped, zone changed, the taint dropped: k3s would set zone=b at the restart, but keep tier and the taint
        const dropped = yield* withFlags(base, v130, { agentFlags: "[--node-label=zone=b]" })
        const { plan, convergence } = yield* planOnly(dropped)
        assert.isFalse(convergence.converged)
        const a = plan.actions[0] as Action
        assert.strictEqual(
          describeAction(a),
          "install k3s v1.30.5+k3s1 on k3s-vm-fun-goal (agent) again with k3s.agentFlags (+--node-label=zone=b ---node-label=tier=bronze ---node-label=zone=a ---node-taint=gpu=true:NoSchedule); on its Node first: remove label tier; remove taint gpu=true:NoSchedule: cordon, drain, install, wait Ready, uncordon"
        )
        assert.include(
          a.reason,
          "k3s leaves a dropped --node-label's label on its Node and the kubelet applies --node-taint only when it registers the Node, so first: remove label tier; remove taint gpu=true:NoSchedule"
        )
        const applied = yield* reconcile(dropped)
        assert.deepStrictEqual(
          applied.result.outcomes.map((o) => o.status),
          agents.map(() => "done")
        )
        assert.include(
          applied.result.outcomes[0]?.detail ?? "",
          "on its Node: remove label tier; remove taint gpu=true:NoSchedule"
        )
        const bare = { labels: { zone: "b" }, taints: [] }
        assert.deepStrictEqual(onNodes(), { "fun-goal": bare, "wise-owl": bare })
        assert.isTrue(applied.report.convergence.converged)
        assert.deepStrictEqual((yield* reconcile(dropped)).plan.actions, [])
      }),
    180_000
  )
})
