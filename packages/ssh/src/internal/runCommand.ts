import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { Client, ClientChannel } from "ssh2"
import type { ExecOptions } from "../ExecOptions.js"
import { ChannelFailed, Disconnected, type SshErrorReason } from "../SshError.js"
import { shellQuote } from "../shellQuote.js"

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** The command line actually sent: env exports, then the command, optionally wrapped in `sudo -n -- sh -c`. */
export const buildCommand = (command: string, options: ExecOptions | undefined): string => {
  let line = command
  const env = options?.env
  if (env !== undefined) {
    const exports = Object.entries(env).map(([name, value]) => {
      if (!ENV_NAME.test(name)) throw new TypeError(`exec: invalid environment variable name ${JSON.stringify(name)}`)
      return `export ${name}=${shellQuote(value)}; `
    })
    line = `${exports.join("")}${line}`
  }
  if (options?.sudo === true) line = `sudo -n -- sh -c ${shellQuote(line)}`
  return line
}

/** A short description of a command for errors: first line, at most 200 characters. */
export const summarize = (command: string): string => {
  const lines = command.split("\n")
  const first = lines[0]!
  if (first.length > 200) return `${first.slice(0, 200)}…`
  return lines.length > 1 ? `${first} …` : first
}

export const stdinBytes = (stdin: ExecOptions["stdin"]): Uint8Array | string | undefined =>
  stdin === undefined
    ? undefined
    : Redacted.isRedacted(stdin)
      ? Redacted.value(stdin as Redacted.Redacted<string | Uint8Array>)
      : stdin

export interface Exit {
  readonly exitCode: number | null
  readonly signal: string | null
}

/**
 * Runs one command on a new session channel of `client`. `onData` receives every output chunk synchronously, in
 * order. Interrupting the effect kills (when the server supports signals) and closes the channel.
 */
export const runCommand = (
  client: Client,
  isClosed: () => boolean,
  line: string,
  stdin: Uint8Array | string | undefined,
  onData: (fd: "stdout" | "stderr", data: Buffer) => void
): Effect.Effect<Exit, SshErrorReason> =>
  Effect.callback<Exit, SshErrorReason>((resume) => {
    let channel: ClientChannel | undefined
    let done = false
    const finish = (effect: Effect.Effect<Exit, SshErrorReason>) => {
      if (done) return
      done = true
      resume(effect)
    }
    try {
      client.exec(line, (error, ch) => {
        if (error !== undefined && error !== null) {
          return finish(
            Effect.fail(
              isClosed()
                ? new Disconnected({ detail: error.message })
                : new ChannelFailed({ operation: "exec", detail: error.message })
            )
          )
        }
        if (done) {
          ch.close()
          return
        }
        channel = ch
        let exit: Exit | undefined
        ch.on("data", (data: Buffer) => onData("stdout", data))
        ch.stderr.on("data", (data: Buffer) => onData("stderr", data))
        ch.on("exit", (code: number | null, signal?: string) => {
          exit = { exitCode: code ?? null, signal: code === null ? (signal ?? null) : null }
        })
        ch.on("close", () => {
          if (exit !== undefined) finish(Effect.succeed(exit))
          else
            finish(
              Effect.fail(
                new Disconnected({
                  detail: isClosed()
                    ? "the connection closed while the command was running"
                    : "the channel closed without an exit status"
                })
              )
            )
        })
        if (stdin !== undefined) ch.end(stdin)
        else ch.end()
      })
    } catch (cause) {
      finish(Effect.fail(new Disconnected({ detail: cause instanceof Error ? cause.message : String(cause) })))
    }
    return Effect.sync(() => {
      if (done) return
      done = true
      if (channel !== undefined) {
        try {
          channel.signal("KILL")
        } catch {
          // the server may not support signals; closing the channel is what matters
        }
        channel.close()
      }
    })
  })
