import { stripVTControlCharacters as plain } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import { assess, type DestroyVm, type Plan } from "@homelab/reconcile-core"
import { renderDestroyPlan } from "../../src/render/DestroyView.js"

const destroy = (node: string, vmid: number): DestroyVm => ({
  _tag: "DestroyVm",
  id: `${node}:destroy:k3s-vm-${node}`,
  node,
  after: [],
  vmid,
  name: `k3s-vm-${node}`,
  purpose: "destroy",
  reason: `k3s-vm-${node} is ours (homelab.yaml asks for it on ${node})`
})

describe("renderDestroyPlan", () => {
  it("counts the guests left untouched, not the notes (the k3s cluster going with its servers)", () => {
    const plan: Plan = {
      nodes: ["pve", "still-fawn"],
      actions: [destroy("pve", 6858), destroy("still-fawn", 5000)],
      findings: [
        {
          code: "k3s.cluster-goes",
          effect: "info",
          layer: "k3s",
          node: "pve",
          message:
            "every server of the k3s cluster (k3s-vm-pve, k3s-vm-still-fawn) is destroyed: the cluster goes with them"
        }
      ]
    }
    const lines = plain(renderDestroyPlan(plan, assess(plan))).split("\n")
    assert.notInclude(lines, "Never touched:")
    assert.include(lines, "Notes:")
    assert.strictEqual(lines.at(-1), "2 VM(s) to destroy.")

    const withStranger: Plan = {
      ...plan,
      findings: [
        ...plan.findings,
        {
          code: "vm.not-ours",
          effect: "info",
          layer: "vm",
          node: "pve",
          vm: "router",
          vmid: 100,
          message: "VM 100 router on pve lacks the tag 'homelab-managed': not ours, not touched"
        }
      ]
    }
    const kept = plain(renderDestroyPlan(withStranger, assess(withStranger))).split("\n")
    assert.include(kept, "Never touched:")
    assert.strictEqual(kept.at(-1), "2 VM(s) to destroy; 1 guest(s) left untouched.")
  })
})
