import { readFile } from "node:fs/promises"
import os from "node:os"
import path from "node:path"
import { type HomelabConfig, parseConfig } from "@homelab/reconcile-core"
import { Effect } from "effect"
import { CommandFailed } from "./CommandFailed.js"
import { ExitCode } from "./ExitCode.js"

/** homelab.yaml loaded for a run: the config, where it came from, and the files it names, read. */
export interface LoadedConfig {
  readonly path: string
  readonly config: HomelabConfig
  /** Public key lines for cloud-init (`vm.sshKeys` entries that are `*.pub` paths are read). */
  readonly sshKeys: ReadonlyArray<string>
}

/** `~/x` → `$HOME/x`; relative paths are taken from the config file's folder. */
export const resolvePath = (configPath: string, file: string): string => {
  const expanded = file === "~" || file.startsWith("~/") ? path.join(os.homedir(), file.slice(1)) : file
  return path.resolve(path.dirname(configPath), expanded)
}

const readText = (file: string, what: string) =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (e) =>
      new CommandFailed({
        userMessage: `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String((e as Error).message)}`,
        exitCode: ExitCode.Config
      })
  })

/** Reads and validates homelab.yaml with the process environment for `${VAR}` references. */
export const loadConfig = Effect.fn("loadConfig")(function* (
  configPath: string,
  env: Record<string, string | undefined>
) {
  const absolute = path.resolve(configPath)
  const text = yield* readText(absolute, "config file").pipe(
    Effect.mapError((e) =>
      e.userMessage.includes("no such file")
        ? new CommandFailed({
            userMessage: `${e.userMessage}\nCreate one (see homelab.example.yaml in @homelab/reconcile-core), convert a seed .env with \`homelab config import-env .env > homelab.yaml\`, or pass --config PATH.`,
            exitCode: ExitCode.Config
          })
        : e
    )
  )
  const config = yield* parseConfig(text, { env, source: path.basename(absolute) }).pipe(
    Effect.mapError((error) => new CommandFailed({ userMessage: error.message, exitCode: ExitCode.Config }))
  )
  const sshKeys: Array<string> = []
  for (const [i, entry] of config.vm.sshKeys.entries()) {
    if (/^(ssh-|ecdsa-|sk-)/.test(entry.trim())) {
      sshKeys.push(entry.trim())
      continue
    }
    const keyText = yield* readText(resolvePath(absolute, entry), `vm.sshKeys[${i}]:`)
    for (const line of keyText.split("\n")) if (line.trim() !== "" && !line.startsWith("#")) sshKeys.push(line.trim())
  }
  return { path: absolute, config, sshKeys } satisfies LoadedConfig
})
