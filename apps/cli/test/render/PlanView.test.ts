import { stripVTControlCharacters as plain } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import { assess, type Finding, type Plan } from "@homelab/reconcile-core"
import { renderPlan } from "../../src/render/PlanView.js"

const cordoned: Finding = {
  code: "k3s.cordoned",
  effect: "info",
  layer: "k3s",
  node: "pve",
  vm: "k3s-vm-pve",
  vmid: 4242,
  message: "k3s Node k3s-vm-pve is cordoned (SchedulingDisabled) and no run of homelab marked it so: left cordoned",
  hint: "`kubectl uncordon k3s-vm-pve` once whoever cordoned it is done"
}

describe("renderPlan", () => {
  it("a converged lab says so, and still shows what is worth knowing (info findings) under Notes", () => {
    const plan: Plan = { nodes: ["pve"], actions: [], findings: [cordoned] }
    const lines = plain(renderPlan(plan, assess(plan))).split("\n")
    assert.deepStrictEqual(lines, [
      "No changes: every node is converged (image, VM, k3s membership as configured).",
      "",
      "Notes:",
      `  · pve   ${cordoned.message} [k3s.cordoned]`,
      `          fix: ${cordoned.hint}`
    ])
    const quiet: Plan = { nodes: ["pve"], actions: [], findings: [] }
    assert.deepStrictEqual(plain(renderPlan(quiet, assess(quiet))).split("\n"), [
      "No changes: every node is converged (image, VM, k3s membership as configured)."
    ])
  })
})
