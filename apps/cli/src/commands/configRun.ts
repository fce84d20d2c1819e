// What `config check`, `config schema` and `config import-env` run, loaded only when one of them runs.
import { readFile } from "node:fs/promises"
import { configJsonSchema, importEnv as convertEnv } from "@homelab/reconcile-core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { parse as parseYaml } from "yaml"
import { CommandFailed } from "../CommandFailed.js"
import { ExitCode } from "../ExitCode.js"
import { loadConfig, warnConfig, warningLines } from "../LoadedConfig.js"
import { root } from "../Root.js"

export const schema = () => Console.log(JSON.stringify(configJsonSchema(), null, 2))

export const check = () =>
  Effect.gen(function* () {
    const flags = yield* root
    const loaded = yield* loadConfig(flags.config, process.env)
    yield* warnConfig(loaded)
    const { config } = loaded
    if (flags.json) {
      yield* Console.log(
        JSON.stringify(
          { ok: true, path: loaded.path, config, files: loaded.files, warnings: warningLines(loaded) },
          null,
          2
        )
      )
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

export const importEnv = ({ file }: { readonly file: string }) =>
  Effect.gen(function* () {
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: (e) =>
        new CommandFailed({
          userMessage: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`,
          exitCode: ExitCode.Config
        })
    })
    const result = convertEnv(text)
    // --json: the same homelab.yaml as a JSON document (JSON is YAML too: it can be saved as homelab.yaml as it is)
    const flags = yield* root
    yield* Console.log(flags.json ? JSON.stringify(parseYaml(result.yaml), null, 2) : result.yaml)
    for (const warning of result.warnings) yield* Console.error(`warning: ${warning}`)
  })
