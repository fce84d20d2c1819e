import { createHash, randomUUID } from "node:crypto"
import { once } from "node:events"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import type { DesiredImage } from "./Desired.js"

/** The cloud image fetched where homelab runs (`image.transfer: upload`), ready to be streamed to the nodes. */
export interface LocalImage {
  readonly path: string
  readonly size: number
  /** The digest computed while fetching (`image.checksum`'s algorithm, else sha256). */
  readonly digest: string
  /** `image.checksum` was given and matched. */
  readonly verified: boolean
}

/** Why the image could not be fetched here, for a person. */
export class LocalImageFailed extends Error {
  constructor(
    message: string,
    readonly hint: string
  ) {
    super(message)
  }
}

/**
 * Fetches the image once into `dir` (mode 600), hashing it on the way, and compares the digest with
 * `image.checksum` before anyone may upload it: a mismatch deletes the file and fails, so nothing is uploaded.
 */
export const fetchLocalImage = (image: DesiredImage, dir: string): Effect.Effect<LocalImage, LocalImageFailed> =>
  Effect.tryPromise({
    try: async (signal) => {
      const res = await fetch(image.url, { signal })
      if (!res.ok || res.body === null) {
        throw new LocalImageFailed(
          `cannot fetch ${image.url}: ${res.status} ${res.statusText}`,
          "check image.url from the machine homelab runs on (image.transfer: upload fetches it here)"
        )
      }
      const algorithm = image.checksum?.algorithm ?? "sha256"
      const hash = createHash(algorithm)
      const file = path.join(dir, `homelab-${randomUUID()}-${image.filename}.part`)
      const out = fs.createWriteStream(file, { mode: 0o600 })
      let size = 0
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          hash.update(chunk)
          size += chunk.byteLength
          if (!out.write(chunk)) await once(out, "drain")
        }
        await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())))
      } catch (e) {
        out.destroy()
        await fs.promises.rm(file, { force: true })
        throw e
      }
      const digest = hash.digest("hex")
      if (image.checksum !== undefined && digest !== image.checksum.value) {
        await fs.promises.rm(file, { force: true })
        throw new LocalImageFailed(
          `checksum mismatch for ${image.url}: got ${algorithm}:${digest}, expected ${algorithm}:${image.checksum.value}; nothing was uploaded`,
          "check image.checksum against the image's published checksums (the file may have changed upstream, or been altered on the way)"
        )
      }
      return { path: file, size, digest, verified: image.checksum !== undefined }
    },
    catch: (e) =>
      e instanceof LocalImageFailed
        ? e
        : new LocalImageFailed(
            `cannot fetch ${image.url}: ${(e as Error)?.message ?? String(e)}`,
            "check image.url and the network of the machine homelab runs on"
          )
  })

/**
 * One fetch per image URL for a whole run, shared by every node's upload (the first upload starts it, the others
 * wait for it; a failure fails them all), and the fetched files removed when the run ends.
 */
export const localImages = (images: ReadonlyArray<DesiredImage>, dir: string = os.tmpdir()) =>
  Effect.gen(function* () {
    const fetched = new Map<string, Effect.Effect<LocalImage, LocalImageFailed>>()
    const files: Array<string> = []
    for (const image of images) {
      if (fetched.has(image.url)) continue
      fetched.set(
        image.url,
        yield* Effect.cached(
          fetchLocalImage(image, dir).pipe(
            Effect.tap((local) =>
              Effect.sync(() => {
                files.push(local.path)
              })
            )
          )
        )
      )
    }
    return {
      get: (image: DesiredImage): Effect.Effect<LocalImage, LocalImageFailed> =>
        fetched.get(image.url) ?? fetchLocalImage(image, dir),
      cleanup: Effect.promise(() => Promise.all(files.map((f) => fs.promises.rm(f, { force: true })))).pipe(
        Effect.asVoid
      )
    }
  })
