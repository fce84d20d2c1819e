import { readFile } from "node:fs/promises"
import { configJsonSchema, importEnv } from "@homelab/reconcile-core"
import { Console, Effect } from "effect"
import { Argument, Command } from "effect/cli"
import { CommandFailed } from "../CommandFailed.js"
import { ExitCode } from "../ExitCode.js"
import { loadConfig } from "../LoadedConfig.js"
import { root } from "../Root.js"

const schema = Command.make("schema", {}, () => Console.log(JSON.stringify(configJsonSchema(), null, 2))).pipe(
  Command.withDescription(
    "Print the JSON Schema of homelab.yaml, for editors (e.g. `# yaml-language-server: $schema=./homelab.schema.json`)"
  )
)

const check = Command.make("check", {}, () =>
  Effect.gen(function* () {
    const flags = yield* root
    const loaded = yield* loadConfig(flags.config, process.env)
    const { config } = loaded
    if (flags.json) {
      yield* Console.log(JSON.stringify({ ok: true, path: loaded.path, config, files: loaded.files }, null, 2))
      return
    }
    const vms = config.nodes.reduce((n, node) => n + node.vms.length, 0)
    yield* Console.log(
      [
        `${loaded.path}: valid. ${config.nodes.length} node(s), ${vms} VM(s), image ${config.image.volid}, ` +
          `API ${config.proxmox.endpoints.map((e) => e.url).join(", ")} (TLS: ${config.proxmox.tls.mode}, fallback: ${config.proxmox.fallback}).`,
        ...loaded.files.map((file) => `  ${file}`)
      ].join("\n")
    )
  })
).pipe(
  Command.withDescription(
    "Validate homelab.yaml and every file it names (SSH private key, public keys, CA, known_hosts, airgap folder) without contacting anything"
  )
)

const importEnvCommand = Command.make("import-env", { file: Argument.String("file") }, ({ file }) =>
  Effect.gen(function* () {
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: (e) =>
        new CommandFailed({
          userMessage: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`,
          exitCode: ExitCode.Config
        })
    })
    const result = importEnv(text)
    yield* Console.log(result.yaml)
    for (const warning of result.warnings) yield* Console.error(`warning: ${warning}`)
  })
).pipe(
  Command.withDescription(
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the text names homelab.yaml's ${VAR} syntax
    "Convert the seed tool's .env into homelab.yaml on stdout; secrets become ${VAR} references, never values"
  )
)

export const configCommand = Command.make("config").pipe(
  Command.withDescription("Work with homelab.yaml: check it, print its JSON Schema, import a seed .env"),
  Command.withSubcommands([check, schema, importEnvCommand])
)
