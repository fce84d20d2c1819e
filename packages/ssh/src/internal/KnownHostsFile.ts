import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import { LocalFileFailed } from "../SshError.js"

const describe = (cause: unknown): string =>
  cause instanceof Error ? ((cause as NodeJS.ErrnoException).code ?? cause.message) : String(cause)

/** The file's text, or "" when it does not exist. */
export const read = (file: string): Effect.Effect<string, LocalFileFailed> =>
  Effect.tryPromise({
    try: async () => {
      try {
        return await fs.readFile(file, "utf8")
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === "ENOENT") return ""
        throw cause
      }
    },
    catch: (cause) => new LocalFileFailed({ operation: "read known_hosts", path: file, detail: describe(cause) })
  })

/** Appends one line (creating the directory 0700 and the file 0600 when missing). */
export const appendLine = (file: string, line: string): Effect.Effect<void, LocalFileFailed> =>
  Effect.tryPromise({
    try: async () => {
      await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
      let prefix = ""
      try {
        const handle = await fs.open(file, "r")
        try {
          const { size } = await handle.stat()
          if (size > 0) {
            const last = Buffer.alloc(1)
            await handle.read(last, 0, 1, size - 1)
            if (last[0] !== 0x0a) prefix = "\n"
          }
        } finally {
          await handle.close()
        }
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code !== "ENOENT") throw cause
      }
      await fs.appendFile(file, `${prefix}${line}\n`, { mode: 0o600 })
    },
    catch: (cause) => new LocalFileFailed({ operation: "append to known_hosts", path: file, detail: describe(cause) })
  })

/** Replaces the file's content atomically: temp file in the same directory (same mode), fsync, rename. */
export const rewrite = (file: string, text: string): Effect.Effect<void, LocalFileFailed> =>
  Effect.tryPromise({
    try: async () => {
      const mode = await fs.stat(file).then(
        (s) => s.mode & 0o777,
        () => 0o600
      )
      const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString("hex")}.tmp`)
      const handle = await fs.open(temp, "wx", mode)
      try {
        await handle.writeFile(text, "utf8")
        await handle.sync()
      } finally {
        await handle.close()
      }
      try {
        await fs.rename(temp, file)
      } catch (cause) {
        await fs.rm(temp, { force: true })
        throw cause
      }
    },
    catch: (cause) => new LocalFileFailed({ operation: "rewrite known_hosts", path: file, detail: describe(cause) })
  })
