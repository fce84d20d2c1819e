import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import { PveBoolean, PveInt, PveNumber } from "./internal/decode.js"

const ContentList = Schema.String.pipe(
  Schema.decodeTo(Schema.Array(Schema.String), {
    decode: SchemaGetter.transform((s) =>
      s
        .split(",")
        .map((c) => c.trim())
        .filter((c) => c !== "")
        .sort()
    ),
    encode: SchemaGetter.transform((a) => a.join(","))
  })
)

/**
 * One entry of `GET /nodes/{node}/storage`; `content` is decoded to a sorted list.
 *
 * @since 0.1.0
 * @category models
 */
export const Storage = Schema.Struct({
  storage: Schema.String,
  type: Schema.String,
  content: ContentList,
  shared: Schema.optionalKey(PveBoolean),
  enabled: Schema.optionalKey(PveBoolean),
  active: Schema.optionalKey(PveBoolean),
  total: Schema.optionalKey(PveNumber),
  used: Schema.optionalKey(PveNumber),
  avail: Schema.optionalKey(PveNumber)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Storage = typeof Storage.Type

/**
 * One entry of `GET /nodes/{node}/storage/{storage}/content`.
 *
 * @since 0.1.0
 * @category models
 */
export const StorageContent = Schema.Struct({
  volid: Schema.String,
  content: Schema.String,
  format: Schema.optionalKey(Schema.String),
  size: Schema.optionalKey(PveNumber),
  ctime: Schema.optionalKey(PveInt),
  vmid: Schema.optionalKey(PveInt)
})

/**
 * @since 0.1.0
 * @category models
 */
export type StorageContent = typeof StorageContent.Type

/**
 * `GET /nodes/{node}/storage/{storage}/content/{volume}`: where a volume is on the node's file system, and its size.
 *
 * @since 0.3.0
 * @category models
 */
export const VolumeInfo = Schema.Struct({
  path: Schema.String,
  size: Schema.optionalKey(PveNumber),
  used: Schema.optionalKey(PveNumber),
  format: Schema.optionalKey(Schema.String)
})

/**
 * @since 0.3.0
 * @category models
 */
export type VolumeInfo = typeof VolumeInfo.Type

/**
 * Checksum algorithms `download-url` accepts.
 *
 * @since 0.1.0
 * @category models
 */
export type ChecksumAlgorithm = "md5" | "sha1" | "sha224" | "sha256" | "sha384" | "sha512"

/**
 * `POST /nodes/{node}/storage/{storage}/download-url`.
 *
 * @since 0.1.0
 * @category models
 */
export interface DownloadUrlOptions {
  readonly node: string
  readonly storage: string
  readonly url: string
  readonly content: "iso" | "vztmpl" | "import"
  readonly filename: string
  readonly checksum?: { readonly value: string; readonly algorithm: ChecksumAlgorithm } | undefined
  readonly verifyCertificates?: boolean | undefined
}

/**
 * The id of the task a `download-url` of `filename` starts (`UPID:…:download:<id>:…`): the name PVE stores the file
 * under (pve-storage `normalize_content_filename`: the path stripped, every character but `a-zA-Z0-9_.-` made `_`),
 * which `encode_text` leaves as it is.
 *
 * @internal
 */
export const downloadTaskId = (filename: string): string =>
  filename
    .replace(/\n$/, "")
    .replace(/^.*[/\\]/, "")
    .replace(/[^a-zA-Z0-9_.-]/g, "_")

/**
 * `POST /nodes/{node}/storage/{storage}/upload`: a local file streamed to the node's storage as `filename` (PVE
 * verifies `checksum` once it has the whole file). `open` gives the file's bytes (called once); `onProgress` the
 * bytes sent so far. Goes to the node's own API address: PVE does not proxy uploads between nodes.
 *
 * @since 0.3.0
 * @category models
 */
export interface UploadFileOptions {
  readonly node: string
  readonly storage: string
  readonly content: "iso" | "vztmpl" | "import"
  readonly filename: string
  readonly size: number
  readonly open: () => AsyncIterable<Uint8Array>
  readonly checksum?: { readonly value: string; readonly algorithm: ChecksumAlgorithm } | undefined
  readonly onProgress?: ((sentBytes: number) => void) | undefined
}
