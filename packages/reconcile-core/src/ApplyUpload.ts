import * as fs from "node:fs"
import type { ProxmoxError } from "@homelab/proxmox-client"
import * as Effect from "effect/Effect"
import type { DownloadImage } from "./Action.js"
import type { DriftContext } from "./ApplyDrift.js"
import type { LocalImage, LocalImageFailed } from "./LocalImage.js"

const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`

/**
 * `image.transfer: upload`: the image fetched once where homelab runs (shared by every node's upload, and checked
 * against `image.checksum` before any upload starts), then streamed to the node's storage through PVE's upload
 * endpoint — which checks the checksum again once it has the file — with progress every 10 %.
 */
export const uploadImage = <E>(
  ctx: Pick<DriftContext<E>, "api" | "progress" | "task" | "fail">,
  a: DownloadImage,
  local: Effect.Effect<LocalImage, LocalImageFailed>
) =>
  Effect.gen(function* () {
    const storage = a.volid.split(":")[0] ?? a.image.storage
    yield* ctx.progress(`fetching ${a.image.url} here (once for every node)`)
    const image = yield* local.pipe(Effect.catch((e: LocalImageFailed) => ctx.fail(e.message, e.hint)))
    yield* ctx.progress(`uploading ${a.image.filename} (${mib(image.size)}) to ${storage} on ${a.node}`)
    let reported = 0
    const onProgress = (sent: number) => {
      const tenth = Math.floor((sent / Math.max(1, image.size)) * 10)
      if (tenth <= reported || tenth >= 10) return
      reported = tenth
      Effect.runFork(ctx.progress(`uploading ${a.image.filename} to ${a.node}: ${mib(sent)} of ${mib(image.size)}`))
    }
    const result = yield* ctx.api
      .uploadFile(
        {
          node: a.node,
          storage,
          content: a.image.content,
          filename: a.image.filename,
          size: image.size,
          open: () => fs.createReadStream(image.path, { highWaterMark: 1024 * 1024 }),
          checksum: a.image.checksum,
          onProgress
        },
        ctx.task(`importing the upload of ${a.image.filename}`)
      )
      .pipe(
        Effect.catch(
          (error: ProxmoxError): Effect.Effect<never, E | ProxmoxError> =>
            /unable to proxy file uploads/.test(error.reason.message)
              ? ctx.fail(
                  `${a.node}'s upload went through another node's API, and PVE does not proxy uploads`,
                  `give ${a.node} its own API address in homelab.yaml (nodes[].address or nodes[].api)`
                )
              : Effect.fail(error)
        )
      )
    return {
      detail: `${a.volid} uploaded (${mib(image.size)}${image.verified ? ", checksum verified here before the upload and by PVE after it" : ", no image.checksum to verify it against"})${result.warnings > 0 ? `, ${result.warnings} warning(s)` : ""}`
    }
  })
