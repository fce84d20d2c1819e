import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"

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

export const planCommand = Command.make("plan", { only: onlyFlag }, (input) =>
  Effect.promise(() => import("./applyRun.js")).pipe(Effect.flatMap((run) => run.plan(input)))
).pipe(
  Command.withDescription(
    "Show what apply would do, with a reason per action (exit 0: no changes, 2: changes pending, 1: problems)"
  )
)

export const applyCommand = Command.make(
  "apply",
  {
    only: onlyFlag,
    yes: Flag.Boolean("yes").pipe(
      Flag.withAlias("y"),
      Flag.withDescription("Allow destructive actions (recreating unhealthy VMs) without asking"),
      Flag.withDefault(false)
    ),
    dryRun: Flag.Boolean("dry-run").pipe(Flag.withDescription("Plan only; change nothing"), Flag.withDefault(false))
  },
  (input) => Effect.promise(() => import("./applyRun.js")).pipe(Effect.flatMap((run) => run.apply(input)))
).pipe(
  Command.withDescription(
    "Make every node hold the image and a healthy VM; asks before recreating a VM unless --yes (refuses when not interactive)"
  )
)

export const reprovisionCommand = Command.make(
  "reprovision",
  {
    node: Argument.String("node").pipe(Argument.withDescription("The node whose VM(s) to rebuild")),
    yes: Flag.Boolean("yes").pipe(Flag.withAlias("y"), Flag.withDescription("Do not ask"), Flag.withDefault(false))
  },
  (input) => Effect.promise(() => import("./applyRun.js")).pipe(Effect.flatMap((run) => run.reprovision(input)))
).pipe(Command.withDescription("Delete and recreate a node's VM on purpose (asks first unless --yes)"))
