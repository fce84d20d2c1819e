import { stripVTControlCharacters as plain } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import { assess, type Finding, type Plan, type UpdateVm } from "@homelab/reconcile-core"
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

  it("an update whose change waits for a restart apply does not make (vm.restart: never) is not shown as converging", () => {
    const update = (changes: UpdateVm["changes"]): UpdateVm => ({
      _tag: "UpdateVm",
      id: "pve:update:k3s-vm-pve",
      node: "pve",
      after: [],
      vmid: 4242,
      name: "k3s-vm-pve",
      digest: "d1",
      changes,
      edit: { set: {}, delete: [], password: false, resize: [], cloudInit: false },
      reason: "settings differ"
    })
    const memory = update([{ field: "memory", from: "16384", to: "8192 MiB", effect: "restart" }])
    const never: Plan = {
      nodes: ["pve", "still-fawn"],
      actions: [
        memory,
        { ...memory, id: "s:u", node: "still-fawn", changes: [{ field: "tags", from: "a", to: "+b", effect: "now" }] }
      ],
      findings: []
    }
    const lines = plain(renderPlan(never, assess(never))).split("\n")
    const nodes = lines.slice(lines.indexOf("Nodes:") + 1)
    assert.deepStrictEqual(nodes, [
      "  ↻ pve         1 change(s), then not converged: k3s-vm-pve (memory) waits for a restart (vm.restart: never)",
      "  → still-fawn  converges with 1 change(s)",
      "",
      "2 change(s), 1 node(s) with changes waiting for a VM restart."
    ])
    // with vm.restart: rolling the plan restarts the VM itself: it converges
    const rolling: Plan = {
      nodes: ["pve"],
      actions: [
        memory,
        {
          _tag: "RestartVm",
          id: "pve:restart:k3s-vm-pve",
          node: "pve",
          after: [memory.id],
          exclusive: "vm-restart",
          vmid: 4242,
          name: "k3s-vm-pve",
          changes: memory.changes,
          reason: "rolling"
        }
      ],
      findings: []
    }
    const rolled = plain(renderPlan(rolling, assess(rolling))).split("\n")
    assert.include(rolled, "  → pve   converges with 2 change(s)")
  })
  it("a finding that keeps a node from converging is shown once, with its fix, under Left alone; the node's verdict points there", () => {
    const pending: Finding = {
      code: "vm.pending-restart",
      effect: "pending",
      layer: "vm",
      node: "pve",
      vm: "k3s-vm-pve",
      vmid: 4242,
      message: "VM 4242 k3s-vm-pve: memory 16384 → 8192 MiB: PVE holds it until the VM restarts (vm.restart: never)",
      hint: "restart it (`qm reboot 4242` on pve), or set vm.restart: rolling"
    }
    const plan: Plan = { nodes: ["pve", "still-fawn"], actions: [], findings: [pending] }
    const text = plain(renderPlan(plan, assess(plan)))
    assert.strictEqual(text.split(pending.message).length - 1, 1, text)
    assert.strictEqual(text.split(pending.hint ?? "").length - 1, 1, text)
    const lines = text.split("\n")
    assert.deepStrictEqual(lines.slice(lines.indexOf("Nodes:") + 1), [
      "  ✗ pve         not converged: needs a restart (see Left alone)",
      "  ✓ still-fawn  converged",
      "",
      "0 change(s), 1 node(s) with changes waiting for a VM restart."
    ])
  })

  it("an orphan without --prune, running or stopped, is counted as left in place", () => {
    const orphan = (vmid: number, state: string): Finding => ({
      code: "vm.orphan",
      effect: "unconfirmed",
      layer: "vm",
      node: "pve",
      vm: `k3s-old-${vmid}`,
      vmid,
      message: `VM ${vmid} k3s-old-${vmid} is an orphan of ours (homelab.yaml no longer asks for it): left ${state}`,
      hint: "`homelab apply --prune` removes it"
    })
    const plan: Plan = { nodes: ["pve"], actions: [], findings: [orphan(4300, "running"), orphan(4301, "stopped")] }
    const lines = plain(renderPlan(plan, assess(plan))).split("\n")
    assert.match(lines.at(-1) ?? "", /, 2 orphan\(s\) left in place \(--prune removes them\)\.$/u)
  })
})
