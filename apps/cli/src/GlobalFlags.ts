import { Flag } from "effect/cli"

/** Flags every `homelab` subcommand accepts (before or after the subcommand name). */
export const globalFlags = {
  config: Flag.String("config").pipe(
    Flag.withAlias("c"),
    Flag.withDescription("Path of the config file"),
    Flag.withDefault("homelab.yaml")
  ),
  json: Flag.Boolean("json").pipe(
    Flag.withDescription("Print machine-readable JSON instead of text"),
    Flag.withDefault(false)
  ),
  verbose: Flag.Boolean("verbose").pipe(
    Flag.withDescription("Print more detail: every request's transport, task logs, full error causes"),
    Flag.withDefault(false)
  )
}
