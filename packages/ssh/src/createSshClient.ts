/**
 * A Promise facade over {@link SshClient} for scripts that do not use Effect.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as References from "effect/References"
import type { ExecOptions, ExecResult, UploadOptions } from "./ExecOptions.js"
import { SshClient } from "./SshClient.js"
import type { SshError } from "./SshError.js"
import type { SshOptions, SshTarget } from "./SshOptions.js"

/**
 * The Promise form of `SshClient`. Rejections are the {@link SshError} instances themselves (`err.reason._tag`).
 *
 * @since 0.1.0
 * @category models
 */
export interface PromiseSshClient {
  readonly exec: (target: SshTarget, command: string, options?: ExecOptions) => Promise<ExecResult>
  readonly execOrFail: (target: SshTarget, command: string, options?: ExecOptions) => Promise<ExecResult>
  readonly upload: (target: SshTarget, options: UploadOptions) => Promise<void>
  readonly readFile: (target: SshTarget, path: string) => Promise<Uint8Array>
  readonly forgetHostKey: (host: string, port?: number) => Promise<void>
  readonly close: (target: SshTarget) => Promise<void>
  /** Closes every connection. */
  readonly dispose: () => Promise<void>
}

/**
 * Creates a client with its own connection pool; call `dispose()` when done.
 *
 * @example
 * ```ts
 * const ssh = createSshClient({ auth: { agentSocket: process.env.SSH_AUTH_SOCK }, knownHosts: { mode: "strict" } })
 * try {
 *   const { stdout } = await ssh.execOrFail({ host: "10.0.0.5", user: "root" }, "uptime")
 * } finally {
 *   await ssh.dispose()
 * }
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const createSshClient = (options: SshOptions): PromiseSshClient => {
  // A library never prints: notices reach the caller through `options.onEvent`, not Effect's default logger.
  const runtime = ManagedRuntime.make(
    Layer.merge(SshClient.layerWith(options), Layer.succeed(References.MinimumLogLevel, "None"))
  )
  const run = <A>(f: (ssh: SshClient["Service"]) => Effect.Effect<A, SshError>): Promise<A> =>
    runtime.runPromise(SshClient.use(f))
  return {
    exec: (target, command, execOptions) => run((ssh) => ssh.exec(target, command, execOptions)),
    execOrFail: (target, command, execOptions) => run((ssh) => ssh.execOrFail(target, command, execOptions)),
    upload: (target, upload) => run((ssh) => ssh.upload(target, upload)),
    readFile: (target, path) => run((ssh) => ssh.readFile(target, path)),
    forgetHostKey: (host, port) => run((ssh) => ssh.forgetHostKey(host, port)),
    close: (target) => run((ssh) => ssh.close(target)),
    dispose: () => runtime.dispose()
  }
}
