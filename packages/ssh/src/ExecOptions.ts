import type * as Duration from "effect/Duration"
import type * as Redacted from "effect/Redacted"

/**
 * Options of `SshClient.exec` and its variants.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExecOptions {
  /**
   * Bytes written to the command's standard input, then EOF. Wrap it in `Redacted` when it is a secret: it is
   * never logged nor put into errors. Without `stdin` the command gets an immediate EOF.
   */
  readonly stdin?: string | Uint8Array | Redacted.Redacted<string> | Redacted.Redacted<Uint8Array> | undefined
  /**
   * Environment variables, sent as an `export K='v';` prefix of the command (values quoted with `shellQuote`),
   * because SSH servers usually reject `env` requests (`AcceptEnv`). Names must match `[A-Za-z_][A-Za-z0-9_]*`.
   * Values are visible in the remote process list: never put secrets here, use `stdin`.
   */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** Whole-command timeout; on expiry the channel is closed (the remote process gets SIGKILL when supported). */
  readonly timeout?: Duration.Input | undefined
  /**
   * Run as root through `sudo -n -- sh -c '<command>'`. `-n` makes sudo fail instead of prompting for a password,
   * so a missing NOPASSWD rule fails fast (exit code 1, "a password is required") instead of hanging.
   */
  readonly sudo?: boolean | undefined
}

/**
 * The outcome of a command: a non-zero exit is data here (use `execOrFail` to make it an error).
 *
 * @since 0.1.0
 * @category models
 */
export interface ExecResult {
  readonly stdout: string
  readonly stderr: string
  /** `null` when the command was killed by a signal. */
  readonly exitCode: number | null
  /** Signal name (e.g. `SIGKILL`) when the command was killed by one, else `null`. */
  readonly signal: string | null
}

/**
 * An element of `SshClient.execStream`: output chunks as they arrive, then one final `exit` element.
 *
 * @since 0.1.0
 * @category models
 */
export type ExecChunk =
  | { readonly fd: "stdout" | "stderr"; readonly data: Uint8Array }
  | { readonly fd: "exit"; readonly exitCode: number | null; readonly signal: string | null }

/**
 * Options of `SshClient.execStream`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExecStreamOptions extends ExecOptions {
  /** Fail the stream with reason `CommandFailed` instead of emitting a non-zero `exit` element. */
  readonly failOnNonZero?: boolean | undefined
}

/**
 * What `SshClient.upload` writes.
 *
 * @since 0.1.0
 * @category models
 */
export type UploadOptions = {
  /** Absolute remote path of the file. */
  readonly path: string
  /** Permission bits, e.g. `0o600`. Default `0o644`. */
  readonly mode?: number | undefined
} & (
  | { readonly content: string | Uint8Array | Redacted.Redacted<string>; readonly localPath?: undefined }
  | { readonly localPath: string; readonly content?: undefined }
)
