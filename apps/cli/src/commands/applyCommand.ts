import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

export const onlyFlag = Flag.String("only").pipe(
  Flag.withDescription("Only these nodes (comma-separated names from homelab.yaml)"),
  Flag.optional
)

export const nodesOf = (only: Option.Option<string>) =>
  Option.isSome(only)
    ? only.value
        .split(",")
        .map((n) => n.trim())
        .filter((n) => n !== "")
    : undefined

export const pruneFlag = Flag.Boolean("prune").pipe(
  Flag.withDescription(
    "Remove orphans: VMs of ours (the ownership tag) homelab.yaml no longer asks for, their k3s Node first (without it they are reported and left running)"
  ),
  Flag.withDefault(false)
)

export const planCommand = Command.make(
  "plan",
  {
    only: onlyFlag,
    prune: pruneFlag,
    out: Flag.String("out").pipe(
      Flag.withDescription(
        "Also save the plan to FILE (JSON, no secrets) with the facts it relied on; `homelab apply FILE` applies exactly that plan, or refuses (exit 9) when the lab changed since"
      ),
      Flag.optional
    ),
    detailedExitcode: Flag.Boolean("detailed-exitcode").pipe(
      Flag.withDescription("Exit 0 only when nothing is to do, 2 when changes are pending, 1 when a node is blocked"),
      Flag.withDefault(false)
    )
  },
  (input) => Effect.promise(() => import("./applyRun.js")).pipe(Effect.flatMap((run) => run.plan(input)))
).pipe(
  Command.withDescription(
    "Show what apply would do on every layer (image, VMs, k3s joins), with a reason per action and each node's verdict; --out FILE saves it for `homelab apply FILE`. Exit 0: planned; 1: a node cannot converge without you. With --detailed-exitcode: 0 nothing to do, 2 changes pending, 1 blocked"
  )
)

export const applyCommand = Command.make(
  "apply",
  {
    only: onlyFlag,
    prune: pruneFlag,
    yes: Flag.Boolean("yes").pipe(
      Flag.withAlias("y"),
      Flag.withDescription("Allow destructive actions (recreating unhealthy VMs, pruning orphans) without asking"),
      Flag.withDefault(false)
    ),
    dryRun: Flag.Boolean("dry-run").pipe(Flag.withDescription("Plan only; change nothing"), Flag.withDefault(false)),
    planFile: Argument.String("plan").pipe(
      Argument.withDescription(
        "A plan saved by `homelab plan --out FILE`: apply exactly that plan (with its --only/--prune), or refuse it, changing nothing, when the lab changed since it was made"
      ),
      Argument.optional
    )
  },
  (input) => Effect.promise(() => import("./applyRun.js")).pipe(Effect.flatMap((run) => run.apply(input)))
).pipe(
  Command.withDescription(
    "Converge every node: the image, a healthy VM, a Ready k3s member; asks before recreating a VM unless --yes (refuses when not interactive). With --json: NDJSON events, one per line, ending with a summary (docs/json-events.md). Exit 0: every selected node converged; 5: some did not (each named with its reason); 6: only unconfirmed destructive work is left (recreates without --yes, orphans without --prune); 7: only k3s work is left (a join or upgrade failed, or the quorum guard kept a running server up); 8: only changes waiting for a VM restart are left (vm.restart: never); 9: a saved plan is not applied (the lab or homelab.yaml changed since it was made; nothing was changed); 130: interrupted (the next run resumes)"
  )
)

export const reprovisionCommand = Command.make(
  "reprovision",
  {
    node: Argument.String("node").pipe(
      Argument.withDescription(
        "The node whose VM(s) to rebuild, or the name of one VM to rebuild only that one (a node that runs several)"
      )
    ),
    yes: Flag.Boolean("yes").pipe(Flag.withAlias("y"), Flag.withDescription("Do not ask"), Flag.withDefault(false))
  },
  (input) => Effect.promise(() => import("./applyRun.js")).pipe(Effect.flatMap((run) => run.reprovision(input)))
).pipe(
  Command.withDescription(
    "Delete and recreate a node's VM (or one VM, by name) on purpose, and rejoin it to k3s (asks first unless --yes); exit codes as apply"
  )
)
