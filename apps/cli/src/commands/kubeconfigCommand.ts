import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Effect from "effect/Effect"

export const kubeconfigCommand = Command.make(
  "kubeconfig",
  {
    merge: Flag.Boolean("merge").pipe(
      Flag.withDescription(
        "Merge into $KUBECONFIG's first file or ~/.kube/config (or --out FILE), keeping every other entry and replacing only entries of the same name"
      ),
      Flag.withDefault(false)
    ),
    context: Flag.String("context").pipe(
      Flag.withDescription("Name of the cluster, user and context (default homelab)"),
      Flag.withDefault("homelab")
    ),
    out: Flag.String("out").pipe(
      Flag.withAlias("o"),
      Flag.withDescription("Write to this file (mode 600) instead of printing it"),
      Flag.optional
    )
  },
  (input) => Effect.promise(() => import("./kubeconfigRun.js")).pipe(Effect.flatMap((run) => run.kubeconfig(input)))
).pipe(
  Command.withDescription(
    "The k3s cluster's admin kubeconfig, read over SSH from a Ready server, pointed at k3s.apiEndpoint or that server's address, named --context: printed, written to --out (mode 600), or merged (--merge). Exit 5: no Ready server to read it from, or SSH to it failed (the hint names the host and what to check)"
  )
)
