import type { SshTarget } from "@homelab/ssh"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"

/**
 * How the client trusts a node's HTTPS certificate. Exactly one of the options is normally set; with none, the
 * system CAs are used.
 *
 * - `ca`: PEM text of the CA (e.g. the contents of `/etc/pve/pve-root-ca.pem`); only this CA is trusted.
 * - `fingerprint`: SHA-256 pin of the leaf certificate as PVE displays it (`AA:BB:…`, case and colons ignored).
 * - `insecure`: accept any certificate (explicit; a `TlsInsecure` event is emitted once per node).
 * - `servername`: the name to verify against when the URL host is not in the certificate's SAN.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsOptions {
  readonly ca?: string | undefined
  readonly fingerprint?: string | undefined
  readonly insecure?: boolean | undefined
  readonly servername?: string | undefined
}

/**
 * One Proxmox node the client may talk to: its REST endpoint (`https://host:8006`, port 8006 when omitted) and,
 * optionally, how to reach it over SSH (as root) for `pvesh`/`qm`.
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeEndpoint {
  readonly name: string
  readonly apiUrl?: string | undefined
  readonly ssh?: SshTarget | undefined
  /** Overrides the client-wide `tls` for this node. */
  readonly tls?: TlsOptions | undefined
}

/**
 * API credentials. Tokens (`user@realm!name` + UUID secret) are preferred: no login round trip, no CSRF.
 *
 * @since 0.1.0
 * @category models
 */
export type ProxmoxAuth =
  | { readonly _tag: "Token"; readonly tokenId: string; readonly secret: Redacted.Redacted<string> }
  | { readonly _tag: "Password"; readonly username: string; readonly password: Redacted.Redacted<string> }

/**
 * Something the application may want to tell the user. Delivered through `ProxmoxClientConfig.onEvent` (and logged
 * at warning level); never printed by the library.
 *
 * @since 0.1.0
 * @category models
 */
export type ProxmoxClientEvent =
  | {
      readonly _tag: "FallbackToSsh"
      readonly node: string
      /** The reason `_tag` that triggered it (`TlsUntrusted`, `Unreachable`, `ProxyError`). */
      readonly reason: string
      /** Human-readable summary of the REST failure. */
      readonly detail: string
      /** SHA-256 fingerprint of the certificate the node presented (`AA:BB:…`), when it could be read. */
      readonly fingerprint?: string | undefined
    }
  | { readonly _tag: "TlsInsecure"; readonly node: string }
  | {
      /**
       * Cluster-wide requests (`/cluster/resources`, `/version`, …) go to another node from now on, because `from`
       * could be reached over neither transport (`detail` says why).
       *
       * @since 0.2.0
       */
      readonly _tag: "ClusterEndpointChanged"
      readonly from: string
      readonly to: string
      readonly detail: string
    }

/**
 * Timeouts (all optional).
 *
 * @since 0.1.0
 * @category models
 */
export interface ProxmoxTimeouts {
  /**
   * One REST request, from sending it to its whole answer (proxmox-api `queryTimeout`). Default 30 s. A request that
   * times out is not sent again over REST: the node falls back to SSH (a read) or the call fails with
   * `Unreachable` (`timeout`), naming the node.
   */
  readonly request?: Duration.Input | undefined
  /**
   * Opening a connection to a node's API: TCP connect and TLS handshake (and, when pinned, the certificate check).
   * Default 5 s: on a LAN a connection takes milliseconds, so a node that is off (its packets dropped) is given up on
   * after this, not after `request`.
   *
   * @since 0.3.0
   */
  readonly connect?: Duration.Input | undefined
  /** Ticket login (proxmox-api `authTimeout`). Default 5 s. */
  readonly auth?: Duration.Input | undefined
  /** One SSH command. Default 10 minutes (pvesh runs tasks synchronously). */
  readonly ssh?: Duration.Input | undefined
  /** How long `waitForTask` waits for one task. Default 10 minutes. */
  readonly task?: Duration.Input | undefined
}

/**
 * Everything the client needs; the CLI builds it from `homelab.yaml`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProxmoxClientConfigShape {
  /** The nodes; the first one (or `defaultNode`) answers cluster-wide calls. */
  readonly nodes: ReadonlyArray<NodeEndpoint>
  /** Node for cluster-wide calls (`/cluster/…`, `/version`, `/nodes`). Default: the first node. */
  readonly defaultNode?: string | undefined
  readonly auth: ProxmoxAuth
  readonly tls?: TlsOptions | undefined
  /** Switch a node to SSH when REST cannot reach it / does not trust it. Default true. */
  readonly fallback?: boolean | undefined
  /** Use SSH only (no REST at all). Default false. */
  readonly sshOnly?: boolean | undefined
  readonly timeouts?: ProxmoxTimeouts | undefined
  /**
   * Retries of transient failures (lock timeouts, proxy 595/597–599, resets). Default 4. A request that must not take
   * effect twice (a start, a download, a create, a config change with its digest) is sent again only after checking
   * that the failed attempt did not happen: its task, when PVE started one, is the result instead.
   */
  readonly retries?: number | undefined
  /**
   * At most this many PVE tasks started by this client in flight at once, across every node (a call that starts a
   * task holds its place until the task ends): create, destroy, start/stop/shutdown/reboot/resume, resize,
   * download-url, upload. Default: no limit.
   *
   * @since 0.3.0
   */
  readonly maxTasksInFlight?: number | undefined
  readonly onEvent?: ((event: ProxmoxClientEvent) => void) | undefined
}

/**
 * The configuration service.
 *
 * @since 0.1.0
 * @category services
 */
export class ProxmoxClientConfig extends Context.Service<ProxmoxClientConfig, ProxmoxClientConfigShape>()(
  "@homelab/proxmox-client/ProxmoxClientConfig"
) {
  /**
   * @since 0.1.0
   * @category layers
   */
  static readonly layer = (config: ProxmoxClientConfigShape): Layer.Layer<ProxmoxClientConfig> =>
    Layer.succeed(ProxmoxClientConfig, config)
}

/** @internal */
export const millis = (input: Duration.Input | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(input)
