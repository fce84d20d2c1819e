import { assert, describe, it } from "@effect/vitest"
import type { Action, Finding } from "../src/Action.js"
import { type ActionOutcome, applyVerdict, assess, planVerdict, settle } from "../src/Convergence.js"
import type { Plan } from "../src/Plan.js"

const start = (node: string): Action => ({
  _tag: "StartVm",
  id: `${node}:vm:k3s-vm-${node}`,
  node,
  after: [],
  vmid: 1001,
  name: `k3s-vm-${node}`,
  reason: "stopped"
})
const join = (node: string): Action => ({
  _tag: "JoinK3s",
  id: `${node}:k3s:k3s-vm-${node}`,
  node,
  after: [`${node}:vm:k3s-vm-${node}`],
  vm: `k3s-vm-${node}`,
  role: "agent",
  rejoin: false,
  reason: "absent"
})
const finding = (node: string, effect: Finding["effect"], layer: Finding["layer"] = "vm"): Finding => ({
  code: `test.${effect}`,
  effect,
  layer,
  node,
  message: `${node} ${effect}`
})
const outcome = (action: Action, status: ActionOutcome["status"]): ActionOutcome => ({
  id: action.id,
  action,
  status,
  detail: status
})

describe("one definition of converged", () => {
  it("before apply: a node with nothing planned and no finding is converged; info findings do not count", () => {
    const plan: Plan = { nodes: ["a", "b"], actions: [start("b")], findings: [finding("a", "info")] }
    const c = assess(plan)
    assert.deepStrictEqual(
      c.nodes.map((n) => [n.node, n.converged, n.reasons.map((r) => r.status)]),
      [
        ["a", true, []],
        ["b", false, ["planned"]]
      ]
    )
    assert.strictEqual(planVerdict(c), "changes")
    assert.strictEqual(planVerdict(assess({ nodes: ["a"], actions: [], findings: [] })), "converged")
    assert.strictEqual(
      planVerdict(assess({ nodes: ["a"], actions: [], findings: [finding("a", "deferred")] })),
      "changes"
    )
    assert.strictEqual(planVerdict(assess({ ...plan, findings: [finding("a", "blocked")] })), "blocked")
  })

  it("after apply: converged only when every action of the node is done; findings stay", () => {
    const plan: Plan = {
      nodes: ["a", "b", "c"],
      actions: [start("a"), join("a"), start("b"), join("b")],
      findings: [finding("c", "deferred")]
    }
    const all = settle(
      plan,
      plan.actions.map((a) => outcome(a, "done"))
    )
    assert.deepStrictEqual(
      all.nodes.map((n) => n.converged),
      [true, true, false]
    )
    assert.strictEqual(applyVerdict(all), "not-converged", "a deferred recreate is not converged")
    const failedJoin = settle({ ...plan, findings: [] }, [
      outcome(start("a"), "done"),
      outcome(join("a"), "failed"),
      outcome(start("b"), "done"),
      outcome(join("b"), "done")
    ])
    assert.deepStrictEqual(
      failedJoin.nodes.map((n) => [n.node, n.converged]),
      [
        ["a", false],
        ["b", true],
        ["c", true]
      ]
    )
    assert.strictEqual(applyVerdict(failedJoin), "k3s", "only k3s membership is missing")
    const unconfirmed = settle({ ...plan, findings: [] }, [
      outcome(start("a"), "unconfirmed"),
      outcome(join("a"), "unconfirmed"),
      outcome(start("b"), "done"),
      outcome(join("b"), "done")
    ])
    assert.strictEqual(applyVerdict(unconfirmed), "unconfirmed")
    const missing = settle({ ...plan, findings: [] }, [outcome(start("a"), "done")])
    assert.strictEqual(missing.nodes[0]?.reasons[0]?.status, "skipped", "an action with no outcome did not run")
    assert.strictEqual(applyVerdict(missing), "not-converged")
  })
})
