import * as Command from "effect/cli/Command"
import { globalFlags } from "./GlobalFlags.js"

/** The root `homelab` command and its shared flags; subcommands read them with `yield* root`. */
export const root = Command.make("homelab").pipe(
  Command.withSharedFlags(globalFlags),
  Command.withDescription(
    "Converge a Proxmox VE cluster and the k3s cluster on it from one config file (homelab.yaml), as often as you like."
  )
)
