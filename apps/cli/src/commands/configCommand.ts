import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as Effect from "effect/Effect"

const schema = Command.make("schema", {}, () =>
  Effect.promise(() => import("./configRun.js")).pipe(Effect.flatMap((run) => run.schema()))
).pipe(
  Command.withDescription(
    "Print the JSON Schema of homelab.yaml, for editors (e.g. `# yaml-language-server: $schema=./homelab.schema.json`)"
  )
)

const check = Command.make("check", {}, () =>
  Effect.promise(() => import("./configRun.js")).pipe(Effect.flatMap((run) => run.check()))
).pipe(
  Command.withDescription(
    "Validate homelab.yaml and every file it names (SSH private key, public keys, CA, known_hosts, airgap folder) without contacting anything"
  )
)

const importEnvCommand = Command.make(
  "import-env",
  {
    file: Argument.String("file").pipe(
      Argument.withDescription(
        "The seed tool's .env file (NODE_1, IMG_STORAGE_1, CPU_RATIO_1, …: KEY=value lines, as python-dotenv reads them); it is only read"
      )
    )
  },
  (input) => Effect.promise(() => import("./configRun.js")).pipe(Effect.flatMap((run) => run.importEnv(input)))
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
