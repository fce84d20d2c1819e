import { assert, describe, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import {
  classifyVm,
  HealthPolicy,
  HealthReport,
  KnownLocks,
  KnownQmpStatuses,
  type PolicyAction,
  remediationToApply,
  type UnhealthyReason,
  VmFacts
} from "../src/index.js"

type FactsInput = ConstructorParameters<typeof VmFacts>[0]

const facts = (overrides: Partial<FactsInput> = {}): VmFacts =>
  new VmFacts({
    vmid: 101,
    node: "pve",
    name: "k3s-pve",
    status: "running",
    qmpstatus: "running",
    uptimeSeconds: 3600,
    agentConfigured: true,
    agentAnswering: true,
    owned: true,
    protection: false,
    template: false,
    ...overrides
  })

/** What a policy action turns into: `[tag, reason, remediation]`. */
const expected = (state: UnhealthyReason, action: PolicyAction): [string, string, string | undefined] =>
  action === "keep"
    ? ["Unknown", "kept-by-policy", undefined]
    : ["Unhealthy", state, action === "degraded" ? "none" : action]

const summary = (report: HealthReport): [string, string | undefined, string | undefined] => [
  report._tag,
  report._tag === "Healthy" ? undefined : report.reason,
  report._tag === "Unhealthy" ? report.remediation : undefined
]

describe("classifyVm", () => {
  describe("default policy (seed tool behaviour)", () => {
    const cases: ReadonlyArray<{
      readonly name: string
      readonly input: Partial<FactsInput>
      readonly want: [string, string | undefined, string | undefined]
    }> = [
      { name: "running", input: {}, want: ["Healthy", undefined, undefined] },
      {
        name: "running, qmpstatus not given",
        input: { qmpstatus: undefined },
        want: ["Healthy", undefined, undefined]
      },
      { name: "agent not probed", input: { agentAnswering: undefined }, want: ["Healthy", undefined, undefined] },
      {
        name: "agent not configured, ping failed",
        input: { agentConfigured: false, agentAnswering: false },
        want: ["Healthy", undefined, undefined]
      },
      {
        name: "stopped",
        input: { status: "stopped", qmpstatus: "stopped", uptimeSeconds: 0 },
        want: ["Unhealthy", "stopped", "recreate"]
      },
      { name: "paused", input: { qmpstatus: "paused" }, want: ["Unhealthy", "paused", "recreate"] },
      { name: "prelaunch", input: { qmpstatus: "prelaunch" }, want: ["Unknown", "kept-by-policy", undefined] },
      { name: "suspended (S3)", input: { qmpstatus: "suspended" }, want: ["Unknown", "kept-by-policy", undefined] },
      {
        name: "hibernated",
        input: { status: "stopped", qmpstatus: "stopped", lock: "suspended" },
        want: ["Unhealthy", "hibernated", "resume"]
      },
      { name: "guest-panicked", input: { qmpstatus: "guest-panicked" }, want: ["Unhealthy", "crashed", "none"] },
      { name: "io-error", input: { qmpstatus: "io-error" }, want: ["Unhealthy", "crashed", "none"] },
      { name: "internal-error", input: { qmpstatus: "internal-error" }, want: ["Unhealthy", "crashed", "none"] },
      { name: "watchdog", input: { qmpstatus: "watchdog" }, want: ["Unhealthy", "crashed", "none"] },
      {
        name: "agent not answering",
        input: { agentAnswering: false },
        want: ["Unhealthy", "agent-not-responding", "none"]
      },
      { name: "status unknown", input: { status: "unknown" }, want: ["Unknown", "status-unknown", undefined] },
      { name: "template", input: { template: true, status: "stopped" }, want: ["Unknown", "template", undefined] },
      { name: "inmigrate", input: { qmpstatus: "inmigrate" }, want: ["Unknown", "transitional", undefined] },
      { name: "postmigrate", input: { qmpstatus: "postmigrate" }, want: ["Unknown", "transitional", undefined] },
      { name: "shutdown (backup)", input: { qmpstatus: "shutdown" }, want: ["Unknown", "transitional", undefined] },
      { name: "unrecognized", input: { qmpstatus: "sleepy" }, want: ["Unknown", "unrecognized-state", undefined] }
    ]
    for (const { input, name, want } of cases) {
      it(name, () => {
        assert.deepStrictEqual(summary(classifyVm(facts(input))), want)
      })
    }
  })

  describe("every state × every allowed policy action", () => {
    const states: ReadonlyArray<{
      readonly state: UnhealthyReason
      readonly key: "stopped" | "paused" | "prelaunch" | "suspended" | "hibernated" | "crashed" | "agentNotResponding"
      readonly actions: ReadonlyArray<PolicyAction>
      readonly input: Partial<FactsInput>
    }> = [
      {
        state: "stopped",
        key: "stopped",
        actions: ["start", "recreate", "degraded", "keep"],
        input: { status: "stopped", qmpstatus: "stopped" }
      },
      {
        state: "paused",
        key: "paused",
        actions: ["resume", "recreate", "degraded", "keep"],
        input: { qmpstatus: "paused" }
      },
      {
        state: "prelaunch",
        key: "prelaunch",
        actions: ["resume", "recreate", "degraded", "keep"],
        input: { qmpstatus: "prelaunch" }
      },
      {
        state: "suspended",
        key: "suspended",
        actions: ["resume", "recreate", "degraded", "keep"],
        input: { qmpstatus: "suspended" }
      },
      {
        state: "hibernated",
        key: "hibernated",
        actions: ["resume", "start", "degraded", "keep"],
        input: { status: "stopped", qmpstatus: "stopped", lock: "suspended" }
      },
      {
        state: "crashed",
        key: "crashed",
        actions: ["recreate", "degraded", "keep"],
        input: { qmpstatus: "guest-panicked" }
      },
      {
        state: "agent-not-responding",
        key: "agentNotResponding",
        actions: ["recreate", "degraded", "keep"],
        input: { agentAnswering: false }
      }
    ]
    for (const { actions, input, key, state } of states) {
      for (const action of actions) {
        for (const owner of ["owned", "unowned", "protected"] as const) {
          const vm = facts({ ...input, owned: owner !== "unowned", protection: owner === "protected" })
          it(`${state} + ${key}: ${action} (${owner})`, () => {
            const report = classifyVm(vm, HealthPolicy.fromPartial({ [key]: action }))
            const [tag, reason, remediation] = expected(state, action)
            assert.deepStrictEqual(summary(report), [tag, reason, remediation])
            if (report._tag === "Unknown") {
              assert.strictEqual(report.evidence.state, state)
              assert.strictEqual(report.evidence.policy, "keep")
            }
            if (report._tag === "Unhealthy") {
              const blockers = remediation === "none" || owner === "owned" ? [] : [owner]
              assert.deepStrictEqual(report.blockedBy, blockers)
              assert.strictEqual(report.allowed, remediation !== "none" && blockers.length === 0)
              assert.strictEqual(
                remediationToApply(report),
                remediation !== "none" && blockers.length === 0 ? remediation : undefined
              )
            }
          })
        }
      }
    }
  })

  describe("locks", () => {
    for (const lock of [...KnownLocks, "something-new"]) {
      for (const status of ["running", "stopped"] as const) {
        if (lock === "suspended" && status === "stopped") continue
        it(`lock ${lock} while ${status} → Unknown locked`, () => {
          const report = classifyVm(
            facts({ status, qmpstatus: status === "running" ? "paused" : "stopped", lock }),
            HealthPolicy.fromPartial({ stopped: "recreate", paused: "recreate" })
          )
          assert.strictEqual(report._tag, "Unknown")
          assert.strictEqual(report._tag === "Unknown" && report.reason, "locked")
          assert.strictEqual(report.evidence.lock, lock)
          assert.strictEqual(remediationToApply(report), undefined)
        })
      }
    }

    it("a lock wins over the grace period", () => {
      const report = classifyVm(facts({ lock: "create", status: "stopped", secondsSinceCreation: 2 }))
      assert.deepStrictEqual(summary(report), ["Unknown", "locked", undefined])
    })
  })

  describe("grace period", () => {
    it("running with uptime below grace → starting, even when paused", () => {
      const report = classifyVm(facts({ qmpstatus: "paused", uptimeSeconds: 299 }))
      assert.deepStrictEqual(summary(report), ["Unknown", "starting", undefined])
      assert.strictEqual(report.evidence.graceSeconds, 300)
      assert.strictEqual(report.message, "VM 101 (k3s-pve) on node pve: uptime 299 s < grace 300 s; keeping it")
    })

    it("uptime equal to grace is past the grace period", () => {
      assert.deepStrictEqual(summary(classifyVm(facts({ qmpstatus: "paused", uptimeSeconds: 300 }))), [
        "Unhealthy",
        "paused",
        "recreate"
      ])
    })

    it("agent not answering within grace → starting", () => {
      assert.deepStrictEqual(summary(classifyVm(facts({ agentAnswering: false, uptimeSeconds: 20 }))), [
        "Unknown",
        "starting",
        undefined
      ])
    })

    it("a running VM whose guest agent answers has started: healthy within grace, not starting", () => {
      assert.deepStrictEqual(summary(classifyVm(facts({ uptimeSeconds: 5 }))), ["Healthy", undefined, undefined])
      assert.deepStrictEqual(summary(classifyVm(facts({ uptimeSeconds: 5, qmpstatus: undefined }))), [
        "Healthy",
        undefined,
        undefined
      ])
      assert.deepStrictEqual(summary(classifyVm(facts({ uptimeSeconds: 5, agentAnswering: undefined }))), [
        "Unknown",
        "starting",
        undefined
      ])
    })

    it("stopped VM created moments ago → starting", () => {
      const report = classifyVm(facts({ status: "stopped", qmpstatus: "stopped", secondsSinceCreation: 12 }))
      assert.deepStrictEqual(summary(report), ["Unknown", "starting", undefined])
      assert.strictEqual(report.message, "VM 101 (k3s-pve) on node pve: created 12 s ago (grace 300 s); keeping it")
    })

    it("stopped VM whose start was issued moments ago → starting", () => {
      const report = classifyVm(facts({ status: "stopped", qmpstatus: "stopped", secondsSinceStart: 40 }))
      assert.deepStrictEqual(summary(report), ["Unknown", "starting", undefined])
    })

    it("a clock skew (creation in the future) counts as within grace", () => {
      const report = classifyVm(facts({ status: "stopped", qmpstatus: "stopped", secondsSinceCreation: -30 }))
      assert.deepStrictEqual(summary(report), ["Unknown", "starting", undefined])
    })

    it("a hibernated VM resumed moments ago is starting, not resumed again", () => {
      const report = classifyVm(
        facts({ status: "stopped", qmpstatus: "stopped", lock: "suspended", secondsSinceStart: 3 })
      )
      assert.deepStrictEqual(summary(report), ["Unknown", "starting", undefined])
    })

    it("uptime of a stopped VM does not count", () => {
      const report = classifyVm(facts({ status: "stopped", qmpstatus: "stopped", uptimeSeconds: 0 }))
      assert.deepStrictEqual(summary(report), ["Unhealthy", "stopped", "recreate"])
    })

    it("grace 0 turns the grace period off", () => {
      const report = classifyVm(
        facts({ qmpstatus: "paused", uptimeSeconds: 1, secondsSinceStart: 1, secondsSinceCreation: 1 }),
        HealthPolicy.fromPartial({ graceSeconds: 0 })
      )
      assert.deepStrictEqual(summary(report), ["Unhealthy", "paused", "recreate"])
    })

    it("old creation and start times are past the grace period", () => {
      const report = classifyVm(
        facts({ status: "stopped", qmpstatus: "stopped", secondsSinceCreation: 4000, secondsSinceStart: 900 })
      )
      assert.deepStrictEqual(summary(report), ["Unhealthy", "stopped", "recreate"])
    })
  })

  describe("messages and evidence", () => {
    it("unhealthy with an allowed remediation", () => {
      const report = classifyVm(facts({ qmpstatus: "paused" }))
      assert.strictEqual(
        report.message,
        "VM 101 (k3s-pve) on node pve is paused (qmpstatus=paused); remediation: recreate"
      )
      assert.deepStrictEqual(report.evidence, {
        status: "running",
        qmpstatus: "paused",
        uptime: 3600,
        agentConfigured: true,
        agentAnswering: true,
        owned: true,
        protection: false,
        template: false,
        state: "paused",
        policy: "recreate"
      })
    })

    it("unhealthy but blocked", () => {
      const report = classifyVm(facts({ status: "stopped", qmpstatus: "stopped", owned: false, protection: true }))
      assert.strictEqual(
        report.message,
        "VM 101 (k3s-pve) on node pve is stopped; remediation recreate not allowed (unowned, protected), report only"
      )
      assert.deepStrictEqual(report._tag === "Unhealthy" && report.blockedBy, ["unowned", "protected"])
      assert.strictEqual(remediationToApply(report), undefined)
    })

    it("degraded", () => {
      const report = classifyVm(facts({ agentAnswering: false, name: undefined }))
      assert.strictEqual(
        report.message,
        "VM 101 on node pve is running but its guest agent does not answer; degraded, report only"
      )
      assert.strictEqual(report.name, undefined)
    })

    it("locked", () => {
      const report = classifyVm(facts({ lock: "backup" }))
      assert.strictEqual(
        report.message,
        "VM 101 (k3s-pve) on node pve: locked (backup): an operation is in progress; keeping it"
      )
    })

    it("kept by policy", () => {
      const report = classifyVm(facts({ qmpstatus: "prelaunch" }))
      assert.strictEqual(
        report.message,
        "VM 101 (k3s-pve) on node pve: in prelaunch (qmpstatus=prelaunch); policy: keep; keeping it"
      )
      assert.strictEqual(report.evidence.state, "prelaunch")
    })

    it("healthy", () => {
      const report = classifyVm(facts())
      assert.strictEqual(report.message, "VM 101 (k3s-pve) on node pve is running and its guest agent answers")
    })

    it("reports round-trip through the HealthReport schema", () => {
      const encode = Schema.encodeSync(HealthReport)
      const decode = Schema.decodeUnknownSync(HealthReport)
      for (const input of [{}, { qmpstatus: "paused" }, { lock: "clone" }] as const) {
        const report = classifyVm(facts(input))
        const json = JSON.parse(JSON.stringify(encode(report)))
        assert.deepStrictEqual(decode(json), report)
      }
    })
  })

  describe("templates are never remediated", () => {
    for (const status of ["running", "stopped"] as const) {
      for (const qmpstatus of KnownQmpStatuses) {
        it(`template ${status}/${qmpstatus}`, () => {
          const report = classifyVm(facts({ template: true, status, qmpstatus }))
          assert.deepStrictEqual(summary(report), ["Unknown", "template", undefined])
        })
      }
    }
  })
})
