import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Effect from "effect/Effect"

export const destroyCommand = Command.make(
  "destroy",
  {
    only: Flag.String("only").pipe(
      Flag.withDescription(
        "Only these nodes (comma-separated; nodes of homelab.yaml, or nodes that still run VMs of ours)"
      ),
      Flag.optional
    ),
    yes: Flag.Boolean("yes").pipe(
      Flag.withAlias("y"),
      Flag.withDescription("Do not ask (required when not interactive)"),
      Flag.withDefault(false)
    ),
    images: Flag.Boolean("images").pipe(
      Flag.withDescription("Also delete the cloud image homelab.yaml names from each node's image storage"),
      Flag.withDefault(false)
    ),
    keepImage: Flag.Boolean("keep-image").pipe(
      Flag.withDescription("Keep the cloud image on the nodes (the default)"),
      Flag.withDefault(false)
    ),
    dryRun: Flag.Boolean("dry-run").pipe(
      Flag.withDescription("Show what would be destroyed; change nothing"),
      Flag.withDefault(false)
    )
  },
  (input) => Effect.promise(() => import("./destroyRun.js")).pipe(Effect.flatMap((run) => run.destroy(input)))
).pipe(
  Command.withDescription(
    "Tear down every VM of ours (the ownership tag): plan first, with reasons; each VM's k3s Node is cordoned, drained and removed with its password secret (servers behind the etcd quorum guard), then the VM is stopped and destroyed with purge. Protected VMs and VMs without the tag are listed, never touched. Asks unless --yes; refuses when not interactive. Exit 0: everything of ours in scope is gone; 5: something could not go (each named with its reason); 6: not confirmed"
  )
)
