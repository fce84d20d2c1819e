import type { DesiredImage } from "./Desired.js"

/** How many hex digits of `image.checksum` the default file name carries (`config/internal/formats.ts`). */
const tagLength = 12

const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/**
 * The image files on a node's image storage (its content listing, which observe reads anyway) that homelab stored
 * for an earlier `image.checksum`, besides the one homelab.yaml names now. Only for the default file name, which
 * carries the checksum (`<base>-<12 hex>.<ext>`); a name set in `image.filename` has none.
 */
export interface ImageLeftovers {
  /** Files of ours under the default name of another checksum (`<base>-<12 hex>.<ext>`): `--prune` deletes them. */
  readonly older: ReadonlyArray<string>
  /**
   * The file under the URL's own name (`<base>.<ext>`), where homelab stored the image before its name carried the
   * checksum: never checked against the current checksum. Reported only, never deleted: another tool may have
   * stored a file of that name.
   */
  readonly unchecked: string | undefined
}

/** `imageLeftovers`' answer when there are none. */
const none: ImageLeftovers = { older: [], unchecked: undefined }

/** See `ImageLeftovers`. `volids` is the listing of the image storage for the image's content type. */
export const imageLeftovers = (image: DesiredImage, volids: ReadonlySet<string>): ImageLeftovers => {
  if (image.fixedName === true || image.checksum === undefined) return none
  const tag = image.checksum.value.slice(0, tagLength).toLowerCase()
  const parts = /^(.+)-([0-9a-f]+)(\.[^.]+)$/.exec(image.filename)
  if (parts === null || parts[2] !== tag) return none
  const [, base = "", , ext = ""] = parts
  const prefix = `${image.storage}:${image.content}/`
  const current = `${prefix}${image.filename}`
  const ours = new RegExp(`^${literal(`${prefix}${base}-`)}[0-9a-f]{${tagLength}}${literal(ext)}$`)
  const legacy = `${prefix}${base}${ext}`
  return {
    older: [...volids].filter((v) => v !== current && ours.test(v)).sort(),
    unchecked: volids.has(legacy) ? legacy : undefined
  }
}

/**
 * A download PVE refused because the file does not match `image.checksum` (its task ends with `checksum mismatch:
 * got '…' != expect '…'`, and `, aborting` when a file of that name was there already, which PVE hashes and keeps):
 * what happened and what to do, naming `image.checksum` and `image.url`.
 */
export const checksumMismatch = (
  a: { readonly node: string; readonly volid: string; readonly image: DesiredImage },
  exitstatus: string
): readonly [message: string, hint: string] => {
  const algorithm = a.image.checksum?.algorithm ?? ""
  const got = /got '([0-9a-fA-F]+)'/.exec(exitstatus)?.[1]?.toLowerCase()
  const wanted = a.image.checksum?.value ?? /expect '([0-9a-fA-F]+)'/.exec(exitstatus)?.[1]?.toLowerCase()
  const sums = got === undefined ? "" : `: PVE computed ${algorithm} ${got}, image.checksum says ${wanted ?? "another"}`
  return /, aborting$/.test(exitstatus)
    ? [
        `${a.volid} on ${a.node} is a file already there that does not match image.checksum${sums}; PVE keeps it and downloads nothing`,
        `if image.checksum is right, delete that file (\`pvesm free ${a.volid}\` on ${a.node}) and run apply again; otherwise correct image.checksum for image.url`
      ]
    : [
        `the image downloaded from image.url (${a.image.url}) to ${a.node} does not match image.checksum${sums}; PVE discarded it`,
        "check image.checksum against the checksums published next to image.url (e.g. its SHA256SUMS): the file may have been rebuilt under the same URL (pin its new checksum) or image.url may point at another file"
      ]
}
