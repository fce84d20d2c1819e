#!/usr/bin/env node
// The `homelab` entry. `homelab --version` and `homelab --help` print what the CLI itself prints for them, captured
// from the built CLI at build time (dist/fast-paths.json, plain and coloured), without loading it. Anything else
// turns on Node's on-disk compile cache (every run after the first skips most of the JavaScript compilation) and
// loads main.js: the command definitions only, each command's code being loaded when that command runs.
import { readFileSync } from "node:fs"
import module from "node:module"

interface FastPaths {
  readonly [flag: string]: { readonly plain: string; readonly color: string } | undefined
}

/** Colour as effect/cli decides it (TerminalCapabilities): TERM=dumb, NO_COLOR, FORCE_COLOR, then a TTY stdout. */
const canColor = (): boolean => {
  const env = process.env
  const present = (value: string | undefined) => value !== undefined && value.length > 0
  if (env.TERM === "dumb" || present(env.NO_COLOR)) return false
  const force = env.FORCE_COLOR
  return (present(force) && force !== "0" && force?.toLowerCase() !== "false") || process.stdout.isTTY === true
}

const fastPath = (args: ReadonlyArray<string>): string | undefined => {
  if (args.length !== 1) return undefined
  try {
    const paths = JSON.parse(readFileSync(new URL("./fast-paths.json", import.meta.url), "utf8")) as FastPaths
    const output = paths[args[0] as string]
    return output === undefined ? undefined : canColor() ? output.color : output.plain
  } catch {
    return undefined // not built with them: the CLI answers
  }
}

const fast = fastPath(process.argv.slice(2))
if (fast !== undefined) {
  process.stdout.write(fast)
} else {
  module.enableCompileCache?.()
  await import("./main.js")
}
