import { randomBytes } from "node:crypto"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import type { Client, SFTPWrapper } from "ssh2"
import { ChannelFailed, Disconnected, SftpFailed, type SshErrorReason } from "../SshError.js"

const STATUS: Record<number, string> = {
  1: "end of file",
  2: "no such file",
  3: "permission denied",
  4: "failure",
  5: "bad message",
  8: "operation unsupported"
}

const describe = (error: Error & { code?: unknown }): string =>
  typeof error.code === "number" && STATUS[error.code] !== undefined
    ? `${STATUS[error.code]} (${error.message})`
    : error.message

const call = <A>(
  operation: string,
  target: string,
  f: (cb: (error: Error | null | undefined, value?: A) => void) => void
): Effect.Effect<A, SftpFailed> =>
  Effect.callback<A, SftpFailed>((resume) => {
    try {
      f((error, value) => {
        if (error) resume(Effect.fail(new SftpFailed({ operation, path: target, detail: describe(error) })))
        else resume(Effect.succeed(value as A))
      })
    } catch (cause) {
      resume(
        Effect.fail(
          new SftpFailed({ operation, path: target, detail: cause instanceof Error ? cause.message : String(cause) })
        )
      )
    }
  })

/** An SFTP session for the duration of the scope. */
export const sftpSession = (client: Client, isClosed: () => boolean) =>
  Effect.acquireRelease(
    Effect.callback<SFTPWrapper, SshErrorReason>((resume) => {
      try {
        client.sftp((error, sftp) => {
          if (error) {
            resume(
              Effect.fail(
                isClosed()
                  ? new Disconnected({ detail: error.message })
                  : new ChannelFailed({ operation: "sftp", detail: error.message })
              )
            )
          } else resume(Effect.succeed(sftp))
        })
      } catch (cause) {
        resume(Effect.fail(new Disconnected({ detail: cause instanceof Error ? cause.message : String(cause) })))
      }
    }),
    (sftp) => Effect.sync(() => sftp.end())
  )

/**
 * Writes `data` to a temporary name next to `target`, sets `mode`, then renames it over `target`
 * (`posix-rename@openssh.com` when the server offers it, which replaces atomically; plain SFTP rename otherwise).
 * The temporary file is removed if anything fails.
 */
export const atomicUpload = (sftp: SFTPWrapper, target: string, data: Uint8Array, mode: number) =>
  Effect.gen(function* () {
    const temp = path.posix.join(
      path.posix.dirname(target),
      `.${path.posix.basename(target)}.${randomBytes(6).toString("hex")}.tmp`
    )
    const write = Effect.gen(function* () {
      yield* call<void>("write", temp, (cb) => sftp.writeFile(temp, Buffer.from(data), { mode, flag: "wx" }, cb))
      yield* call<void>("chmod", temp, (cb) => sftp.chmod(temp, mode, cb))
      yield* rename(sftp, temp, target)
    })
    yield* write.pipe(
      Effect.onError(() =>
        call<void>("unlink", temp, (cb) => sftp.unlink(temp, cb)).pipe(Effect.catch(() => Effect.void))
      )
    )
  })

const rename = (sftp: SFTPWrapper, from: string, to: string) =>
  Effect.suspend(() => {
    const extensions = (sftp as unknown as { _extensions?: Record<string, unknown> })._extensions ?? {}
    if (extensions["posix-rename@openssh.com"] !== undefined) {
      return call<void>("rename", to, (cb) => sftp.ext_openssh_rename(from, to, cb))
    }
    // SFTP v3 leaves "rename over an existing file" to the server: POSIX servers replace atomically, others refuse.
    // For those, move the old file aside first and put it back if the second rename fails, so the target is never
    // lost nor half-written (there is a short window in which it does not exist).
    const direct = call<void>("rename", to, (cb) => sftp.rename(from, to, cb))
    return direct.pipe(
      Effect.catch((error) =>
        Effect.gen(function* () {
          const exists = yield* call<unknown>("stat", to, (cb) => sftp.stat(to, cb)).pipe(
            Effect.as(true),
            Effect.catch(() => Effect.succeed(false))
          )
          if (!exists) return yield* error
          const aside = `${from}.old`
          yield* call<void>("rename", to, (cb) => sftp.rename(to, aside, cb)).pipe(Effect.mapError(() => error))
          yield* direct.pipe(
            Effect.onError(() =>
              call<void>("rename", to, (cb) => sftp.rename(aside, to, cb)).pipe(Effect.catch(() => Effect.void))
            )
          )
          yield* call<void>("unlink", aside, (cb) => sftp.unlink(aside, cb)).pipe(Effect.catch(() => Effect.void))
        })
      )
    )
  })

export const readRemoteFile = (sftp: SFTPWrapper, target: string) =>
  call<Buffer>("read", target, (cb) => sftp.readFile(target, cb))
