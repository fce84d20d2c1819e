import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Effect from "effect/Effect"

export const statusCommand = Command.make(
  "status",
  {
    output: Flag.Literals("output", ["json", "yaml", "wide"]).pipe(
      Flag.withAlias("o"),
      Flag.withDescription(
        "Output format: json or yaml (one document: the VMs, the verdict, the notices; --json is -o json), wide (the table with what apply would do for each VM)"
      ),
      Flag.optional
    )
  },
  (input) => Effect.promise(() => import("./statusRun.js")).pipe(Effect.flatMap((run) => run.status(input)))
).pipe(
  Command.withDescription(
    "Show every VM of homelab.yaml (node, VMID, state, health, IP, transport, k3s) and what is not converged. Exit 0: converged; 5: not converged"
  )
)
