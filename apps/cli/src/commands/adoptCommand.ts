import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Effect from "effect/Effect"

export const adoptCommand = Command.make(
  "adopt",
  {
    vms: Argument.String("vm").pipe(
      Argument.withDescription("VM names from homelab.yaml (e.g. k3s-vm-pve); or --all"),
      Argument.variadic()
    ),
    all: Flag.Boolean("all").pipe(
      Flag.withDescription(
        "Every VM of homelab.yaml held by a same-named VM without the ownership tag (not protected ones, nor ones apply would rebuild)"
      ),
      Flag.withDefault(false)
    ),
    yes: Flag.Boolean("yes").pipe(
      Flag.withAlias("y"),
      Flag.withDescription("Adopt without asking (needed when not interactive)"),
      Flag.withDefault(false)
    )
  },
  (input) => Effect.promise(() => import("./adoptRun.js")).pipe(Effect.flatMap((run) => run.adopt(input)))
).pipe(
  Command.withDescription(
    "Take over VMs homelab.yaml asks for that exist without the ownership tag (like terraform import): shows each one found (node, name, what apply would then change in place), asks, then adds the tag (its other tags kept). Never a VM on another node; a protected VM, or one apply would rebuild (stopped), only when named. Exit 0: adopted (or nothing to adopt); 1: some VM could not be adopted (each named with why); 2: usage (no VM named and no --all, or a name not in homelab.yaml); 6: not confirmed (not interactive without --yes, or declined)"
  )
)
