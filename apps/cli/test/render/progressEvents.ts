import type { Action, ApplyEvent } from "@homelab/reconcile-core"

// The events the progress tests feed to a sink: one action started, then progress ticks of its waits.

const action = {
  _tag: "StartVm",
  id: "n1:vm:k3s-vm-n1",
  node: "n1",
  reason: "",
  after: [],
  vmid: 1001,
  name: "k3s-vm-n1"
} as Action

export const started: ApplyEvent = {
  _tag: "ActionStarted",
  id: action.id,
  action,
  description: "start VM 1001 k3s-vm-n1 on n1"
}

/** What the core reports every 5 s of a wait: `what` for `elapsedS` seconds so far, limit 5 minutes. */
export const tick = (what: string, elapsedS: number): ApplyEvent => ({
  _tag: "ActionProgress",
  id: action.id,
  node: "n1",
  step: `waiting for ${what}`,
  wait: { what, elapsedMs: elapsedS * 1000, limitMs: 300_000 }
})
