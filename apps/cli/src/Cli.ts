import * as Command from "effect/cli/Command"
import { adoptCommand } from "./commands/adoptCommand.js"
import { applyCommand, planCommand, reprovisionCommand } from "./commands/applyCommand.js"
import { configCommand } from "./commands/configCommand.js"
import { demoCommand } from "./commands/demoCommand.js"
import { destroyCommand } from "./commands/destroyCommand.js"
import { kubeconfigCommand } from "./commands/kubeconfigCommand.js"
import { statusCommand } from "./commands/statusCommand.js"
import { root } from "./Root.js"

/** The `homelab` command with all its subcommands. */
export const cli = root.pipe(
  Command.withSubcommands([
    planCommand,
    applyCommand,
    statusCommand,
    reprovisionCommand,
    adoptCommand,
    destroyCommand,
    kubeconfigCommand,
    configCommand,
    demoCommand
  ])
)
