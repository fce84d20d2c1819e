import * as Flag from "effect/cli/Flag"

/** Flags every `homelab` subcommand accepts (before or after the subcommand name). */
export const globalFlags = {
  config: Flag.String("config").pipe(
    Flag.withAlias("c"),
    Flag.withDescription("Path of the config file"),
    Flag.withDefault("homelab.yaml"),
    // `--config=` (an unset variable in a script) would name the current folder: a usage error, never a guess
    Flag.filter(
      (file) => file !== "",
      () => "the path of homelab.yaml, not an empty value (leave --config out for ./homelab.yaml)"
    )
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

/** The values effect/cli takes for a boolean flag (`--json=yes`, `--json no`). */
const trueValues: ReadonlyArray<string> = ["true", "yes", "on", "1", "y"]
const falseValues: ReadonlyArray<string> = ["false", "no", "off", "0", "n"]

/**
 * Whether a boolean global flag is on the command line (before `--`), read before the parser runs: the runtime's
 * log level and the error output depend on it even when parsing fails. Read as the parser reads it: `--json`,
 * `--json=yes` (any value it takes as true), and `--json` followed by a value it takes (`--json false` is off).
 */
export const argvFlag = (argv: ReadonlyArray<string>, name: "json" | "verbose"): boolean => {
  const end = argv.indexOf("--")
  const args = end < 0 ? argv : argv.slice(0, end)
  return args.some((arg, i) =>
    arg === `--${name}`
      ? !falseValues.includes(args[i + 1] ?? "")
      : arg.startsWith(`--${name}=`) && trueValues.includes(arg.slice(name.length + 3))
  )
}

/**
 * Whether the command line asks for JSON: `--json`, or `homelab status -o json` (`--output json`, `-o=json`), read
 * before the parser runs like `argvFlag`.
 */
export const argvJson = (argv: ReadonlyArray<string>): boolean => {
  if (argvFlag(argv, "json")) return true
  const end = argv.indexOf("--")
  const args = end < 0 ? argv : argv.slice(0, end)
  if (!args.includes("status")) return false
  return args.some(
    (arg, i) =>
      arg === "-o=json" || arg === "--output=json" || ((arg === "-o" || arg === "--output") && args[i + 1] === "json")
  )
}
