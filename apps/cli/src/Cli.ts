import { Command } from "effect/cli"

/**
 * The `homelab` root command. Subcommands are added as the workflow grows; each lives in `commands/`.
 */
export const cli = Command.make("homelab").pipe(
  Command.withDescription(
    "Converge a Proxmox VE cluster and the k3s cluster on it from one config file (homelab.yaml), as often as you like."
  )
)
