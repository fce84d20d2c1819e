import { Command } from "effect/cli"
import { configCommand } from "./commands/configCommand.js"
import { root } from "./Root.js"

/** The `homelab` command with all its subcommands. */
export const cli = root.pipe(Command.withSubcommands([configCommand]))
