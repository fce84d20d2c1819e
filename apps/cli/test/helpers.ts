import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"

const bin = fileURLToPath(new URL("../dist/bin.js", import.meta.url))

export interface RunResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the built `homelab` bin as a user would, with a controlled environment. */
export const runHomelab = (
  args: ReadonlyArray<string>,
  options: { readonly env?: Record<string, string>; readonly cwd?: string; readonly timeout?: number } = {}
) =>
  new Promise<RunResult>((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      {
        timeout: options.timeout ?? 30_000,
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...options.env },
        cwd: options.cwd,
        maxBuffer: 32 * 1024 * 1024
      },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr })
      }
    )
  })
