import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Redacted from "effect/Redacted"
import type { ProxmoxError } from "./ProxmoxError.js"

/**
 * A parameter value. Booleans are sent as PVE wants them (`1`/`0`), arrays as repeated keys (`--k a --k b` over
 * pvesh), `Redacted` values are unwrapped only at the wire and never logged, `undefined` is dropped.
 *
 * @since 0.1.0
 * @category models
 */
export type PveParam = string | number | boolean | Redacted.Redacted<string> | ReadonlyArray<string> | undefined

/**
 * One API call: `path` is relative to `/api2/json` and NOT percent-encoded (`/nodes/pve/tasks/UPID:pve:…:/status`).
 *
 * @since 0.1.0
 * @category models
 */
export interface PveRequest {
  readonly method: "GET" | "POST" | "PUT" | "DELETE"
  readonly path: string
  readonly params?: Readonly<Record<string, PveParam>> | undefined
  /**
   * For a cluster-wide request (`/cluster/…`, `/version`, `/access/…`): the node whose endpoint answers it. Default:
   * the client's default node. Ignored for `/nodes/{node}/…` paths.
   *
   * @since 0.2.0
   */
  readonly via?: string | undefined
  /**
   * The request needs root@pam (an absolute path in `import-from`: PVE lets no one else pass one, API tokens of
   * root included). The fallback transport sends it over SSH, where pvesh runs as root@pam, whatever the node's REST
   * state (a password login as root@pam sends it over REST); it fails when the node has no SSH target.
   *
   * @since 0.3.0
   */
  readonly asRoot?: boolean | undefined
}

/**
 * A file upload (`POST /nodes/{node}/storage/{storage}/upload`): a `multipart/form-data` body with `fields` first,
 * in the order given (pve-http-server reads `content`, `checksum-algorithm`, `checksum` in that order, then the
 * file), then the file part named `filename`. The file is streamed from `open()` with a `Content-Length` of the
 * whole body (PVE refuses chunked transfers); `onProgress` gets the file bytes sent so far.
 *
 * @since 0.3.0
 * @category models
 */
export interface PveUploadRequest {
  readonly path: string
  readonly fields: ReadonlyArray<readonly [string, string]>
  readonly file: {
    readonly name: string
    readonly size: number
    readonly open: () => AsyncIterable<Uint8Array>
  }
  readonly onProgress?: ((sentBytes: number) => void) | undefined
}

/**
 * What a transport does.
 *
 * @since 0.1.0
 * @category models
 */
export interface PveTransportShape {
  readonly call: (request: PveRequest) => Effect.Effect<unknown, ProxmoxError>
  /**
   * A file upload to the node's own API (PVE does not proxy uploads between nodes); only REST has one.
   *
   * @since 0.3.0
   */
  readonly upload?: ((request: PveUploadRequest) => Effect.Effect<unknown, ProxmoxError>) | undefined
}

/**
 * The port both transports implement: `call` returns the JSON `data` of the answer, undecoded. Failures are
 * `ProxmoxError`s whose `operation` is `METHOD path` (the typed operations replace it with their own name).
 *
 * @since 0.1.0
 * @category services
 */
export class PveTransport extends Context.Service<PveTransport, PveTransportShape>()(
  "@homelab/proxmox-client/PveTransport"
) {}

/**
 * The node a request is for: the `{node}` in `/nodes/{node}/…`, else `undefined` (cluster-wide).
 *
 * @since 0.1.0
 * @category utilities
 */
export const nodeOfPath = (path: string): string | undefined => {
  const m = /^\/nodes\/([^/]+)/.exec(path)
  return m?.[1]
}
