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
  it("says plainly that the k3s cluster goes with its servers, right under what is destroyed; counts the guests left untouched, not that", () => {
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
            "the k3s cluster itself is torn down: every server of it (k3s-vm-pve, k3s-vm-still-fawn) is destroyed, and its etcd datastore with them"
        }
      ]
    }
    const lines = plain(renderDestroyPlan(plan, assess(plan))).split("\n")
    assert.deepStrictEqual(lines.slice(0, 5), [
      "Destroy:",
      "  pve         destroy VM 6858 k3s-vm-pve on pve  — k3s-vm-pve is ours (homelab.yaml asks for it on pve)",
      "  still-fawn  destroy VM 5000 k3s-vm-still-fawn on still-fawn  — k3s-vm-still-fawn is ours (homelab.yaml asks for it on still-fawn)",
      "",
      "k3s: the k3s cluster itself is torn down: every server of it (k3s-vm-pve, k3s-vm-still-fawn) is destroyed, and its etcd datastore with them"
    ])
    assert.notInclude(lines, "Never touched:")
    assert.notInclude(lines, "Notes:")
    assert.strictEqual(lines.at(-1), "2 VM(s) to destroy (and the k3s cluster with them).")

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
    assert.strictEqual(kept.at(-1), "2 VM(s) to destroy (and the k3s cluster with them); 1 guest(s) left untouched.")
  })
})
