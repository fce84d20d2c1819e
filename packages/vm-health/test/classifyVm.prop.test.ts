import { assert, describe, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import {
  AgentAction,
  CrashedAction,
  classifyVm,
  HealthPolicy,
  HibernatedAction,
  KnownLocks,
  KnownQmpStatuses,
  PausedAction,
  remediationToApply,
  StoppedAction,
  VmFacts
} from "../src/index.js"

const Seconds = Schema.Int.check(Schema.isBetween({ minimum: -60, maximum: 100_000 }))

/** Arbitrary observed facts, biased towards the values that matter (known states and locks). */
const FactsShape = Schema.Struct({
  status: Schema.Literals(["running", "stopped", "unknown"]),
  qmpstatus: Schema.optional(Schema.Literals([...KnownQmpStatuses, "sleepy"])),
  lock: Schema.optional(Schema.Literals([...KnownLocks, "brand-new-lock"])),
  uptimeSeconds: Schema.optional(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 100_000 }))),
  agentConfigured: Schema.Boolean,
  agentAnswering: Schema.optional(Schema.Boolean),
  owned: Schema.Boolean,
  protection: Schema.Boolean,
  template: Schema.Boolean,
  secondsSinceCreation: Schema.optional(Seconds),
  secondsSinceStart: Schema.optional(Seconds)
})

const PolicyShape = Schema.Struct({
  graceSeconds: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1_000 })),
  stopped: StoppedAction,
  paused: PausedAction,
  prelaunch: PausedAction,
  suspended: PausedAction,
  hibernated: HibernatedAction,
  crashed: CrashedAction,
  agentNotResponding: AgentAction
})

const toFacts = (shape: typeof FactsShape.Type): VmFacts => new VmFacts({ vmid: 100, node: "pve", ...shape })

const withinGrace = (facts: VmFacts, grace: number): boolean =>
  (facts.status === "running" && facts.uptimeSeconds !== undefined && facts.uptimeSeconds < grace) ||
  (facts.secondsSinceStart !== undefined && facts.secondsSinceStart < grace) ||
  (facts.secondsSinceCreation !== undefined && facts.secondsSinceCreation < grace)

const options = { arbitrary: { runs: 2_000 } }

describe("classifyVm properties", () => {
  it.prop(
    "never recreates a protected, unowned, locked or template VM",
    [FactsShape, PolicyShape],
    ([shape, policyShape]) => {
      const facts = toFacts(shape)
      const action = remediationToApply(classifyVm(facts, new HealthPolicy(policyShape)))
      if (facts.protection || !facts.owned || facts.template) assert.strictEqual(action, undefined)
      if (facts.lock !== undefined) assert.notStrictEqual(action, "recreate")
    },
    options
  )

  it.prop(
    "under a lock, the only possible remediation is waking a hibernated VM",
    [FactsShape, PolicyShape],
    ([shape, policyShape]) => {
      const facts = toFacts(shape)
      const report = classifyVm(facts, new HealthPolicy(policyShape))
      if (facts.lock === undefined || facts.template || facts.status === "unknown") return
      if (facts.lock === "suspended" && facts.status === "stopped") {
        assert.isTrue(report._tag !== "Healthy" && report.reason !== "locked")
      } else {
        assert.strictEqual(report._tag, "Unknown")
        assert.strictEqual(report._tag === "Unknown" && report.reason, "locked")
      }
    },
    options
  )

  it.prop(
    "the grace period always keeps, unless the VM runs and its agent answers (then it has started)",
    [FactsShape, PolicyShape],
    ([shape, policyShape]) => {
      const facts = toFacts(shape)
      const policy = new HealthPolicy(policyShape)
      const report = classifyVm(facts, policy)
      if (!withinGrace(facts, policy.graceSeconds)) return
      const locked = facts.lock !== undefined && !(facts.lock === "suspended" && facts.status === "stopped")
      const started =
        facts.status === "running" &&
        (facts.qmpstatus === undefined || facts.qmpstatus === "running") &&
        facts.agentAnswering === true
      if (started && !facts.template && !locked) {
        assert.strictEqual(report._tag, "Healthy")
        return
      }
      assert.strictEqual(report._tag, "Unknown")
      assert.strictEqual(remediationToApply(report), undefined)
      if (!facts.template && facts.status !== "unknown" && !locked) {
        assert.strictEqual(report._tag === "Unknown" && report.reason, "starting")
      }
    },
    options
  )

  it.prop(
    "Healthy only for a running, unlocked, non-template VM whose agent did not fail a ping",
    [FactsShape, PolicyShape],
    ([shape, policyShape]) => {
      const facts = toFacts(shape)
      const report = classifyVm(facts, new HealthPolicy(policyShape))
      const healthyFacts =
        !facts.template &&
        facts.status === "running" &&
        facts.lock === undefined &&
        (facts.qmpstatus === undefined || facts.qmpstatus === "running") &&
        !(facts.agentConfigured && facts.agentAnswering === false)
      if (report._tag === "Healthy") assert.isTrue(healthyFacts)
      if (healthyFacts && !withinGrace(facts, policyShape.graceSeconds)) assert.strictEqual(report._tag, "Healthy")
    },
    options
  )

  it.prop(
    "a remediation is always one Proxmox accepts for the state",
    [FactsShape, PolicyShape],
    ([shape, policyShape]) => {
      const facts = toFacts(shape)
      const action = remediationToApply(classifyVm(facts, new HealthPolicy(policyShape)))
      if (action === "start") assert.strictEqual(facts.status, "stopped")
      if (action === "resume") {
        assert.isTrue(facts.status === "running" || (facts.status === "stopped" && facts.lock === "suspended"))
      }
    },
    options
  )

  it.prop(
    "evidence always carries the observed status",
    [FactsShape],
    ([shape]) => {
      const report = classifyVm(toFacts(shape))
      assert.strictEqual(report.evidence.status, shape.status)
      assert.strictEqual(report.vmid, 100)
      assert.strictEqual(report.node, "pve")
    },
    options
  )
})
