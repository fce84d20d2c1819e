import { Effect } from "effect"
import { Command } from "effect/cli"

export const statusCommand = Command.make("status", {}, () =>
  Effect.promise(() => import("./statusRun.js")).pipe(Effect.flatMap((run) => run.status()))
).pipe(
  Command.withDescription(
    "Show every VM of homelab.yaml (node, VMID, state, health, IP, transport, k3s) and what is not converged. Exit 0: converged; 5: not converged"
  )
)
