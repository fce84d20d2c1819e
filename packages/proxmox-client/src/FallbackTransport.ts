import * as Effect from "effect/Effect"
import type { ProxmoxClientConfigShape, ProxmoxClientEvent } from "./ProxmoxClientConfig.js"
import { isFallbackReason, ProxmoxError, type ProxmoxErrorReason, UnexpectedResponse } from "./ProxmoxError.js"
import { nodeOfPath, type PveRequest, type PveTransportShape, type PveUploadRequest } from "./PveTransport.js"
import { sshTargetFor } from "./SshTransport.js"

/**
 * Which transport a node currently uses.
 *
 * @since 0.1.0
 * @category models
 */
export type TransportKind = "rest" | "ssh"

/**
 * The REST-first transport with a per-node switch to SSH, plus its state.
 *
 * @since 0.1.0
 * @category models
 */
export interface FallbackTransport extends PveTransportShape {
  /** The transport a node uses now. */
  readonly transportOf: (node: string) => TransportKind
  /** The events emitted so far (one `FallbackToSsh` per node at most). */
  readonly events: () => ReadonlyArray<ProxmoxClientEvent>
}

const describe = (error: ProxmoxError): string => error.reason.message

/** The node itself is out of reach (not a refusal of our request): cluster-wide requests may try another node. */
/**
 * Whether a failed REST request may have reached PVE: its connection was reset or it timed out (a connect timeout is
 * counted too: the error does not tell it from a slow answer). Refused, DNS and TLS failures happen before anything
 * is written.
 */
const mayHaveReached = (error: ProxmoxError): boolean =>
  error.reason._tag === "Unreachable" && (error.reason.kind === "reset" || error.reason.kind === "timeout")

const nodeDown = (error: ProxmoxError): boolean =>
  isFallbackReason(error.reason) ||
  (error.reason._tag === "ProxyError" && error.reason.status === 596) ||
  (error.reason._tag === "AuthRejected" && error.reason.transport === "ssh") ||
  (error.fallbackFrom !== undefined && error.reason._tag === "UnexpectedResponse")

/**
 * Combines a REST and an SSH transport. REST first; on a client-side TLS failure, an unreachable node (refused,
 * reset, timeout, DNS) or a 596 from the inter-node proxy, the node switches to SSH for the rest of the run (when
 * it has an SSH target and `fallback` is not `false`) and one `FallbackToSsh` event is emitted. The request that
 * failed is then sent over SSH, unless it is a write (POST/PUT/DELETE) whose connection was reset or timed out: PVE
 * may have acted on it, so the node switches but that request fails with its REST error. 400/401/403 and
 * semantic 500s are never retried over SSH. An error that came over SSH after such a switch carries the REST failure
 * in `fallbackFrom`.
 *
 * Cluster-wide requests (`/cluster/…`, `/version`, `/access/…`) go to the default node; when that node is out of
 * reach on both transports they go to the next configured node (and stay there: `ClusterEndpointChanged`), so one
 * dead node does not hide the whole cluster.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFallbackTransport = (
  config: ProxmoxClientConfigShape,
  rest: PveTransportShape,
  ssh: PveTransportShape
): FallbackTransport => {
  const switched = new Map<string, ProxmoxErrorReason>()
  const events: Array<ProxmoxClientEvent> = []
  const enabled = config.fallback !== false
  const defaultNode = config.defaultNode ?? config.nodes[0]?.name ?? ""
  let clusterVia = defaultNode

  const emit = (event: ProxmoxClientEvent) =>
    Effect.suspend(() => {
      events.push(event)
      try {
        config.onEvent?.(event)
      } catch {
        // a throwing handler must not break the call
      }
      return event._tag === "FallbackToSsh"
        ? Effect.logWarning(`proxmox: node ${event.node} switched to SSH (${event.reason}: ${event.detail})`)
        : event._tag === "ClusterEndpointChanged"
          ? Effect.logWarning(`proxmox: cluster-wide requests now go to ${event.to} (${event.from}: ${event.detail})`)
          : Effect.void
    })

  const shouldFallBack = (error: ProxmoxError): boolean =>
    isFallbackReason(error.reason) || (error.reason._tag === "ProxyError" && error.reason.status === 596)

  /** Over SSH for a node that switched: failures say what REST did first. */
  const viaSsh = (request: PveRequest, restReason: ProxmoxErrorReason) =>
    ssh.call(request).pipe(
      Effect.mapError((e) =>
        e.fallbackFrom !== undefined
          ? e
          : new ProxmoxError({
              operation: e.operation,
              ...(e.node ? { node: e.node } : {}),
              reason: e.reason,
              fallbackFrom: restReason
            })
      )
    )

  /** REST logs in as root@pam itself (a password login), so a request that needs root may go over REST. */
  const restIsRoot = config.auth._tag === "Password" && config.auth.username === "root@pam"

  /** A request only root@pam may make, sent over SSH (pvesh runs as root@pam); its failures name SSH. */
  const asRoot = (node: string, request: PveRequest): Effect.Effect<unknown, ProxmoxError> =>
    sshTargetFor(config, node) === undefined
      ? Effect.fail(
          new ProxmoxError({
            operation: `${request.method} ${request.path}`,
            node,
            reason: new UnexpectedResponse({
              expected: "an SSH target for the node",
              detail: `this request needs root@pam (an absolute path), which an API token is not: it goes over SSH, and ${node} has no ssh configured`
            })
          })
        )
      : ssh.call(request).pipe(
          Effect.mapError(
            (e) =>
              new ProxmoxError({
                operation: e.operation,
                node: e.node ?? node,
                reason: e.reason,
                transport: "ssh"
              })
          )
        )

  /** One node's endpoint: REST first, SSH after a fallback-worthy REST failure. */
  const callOn = (node: string, request: PveRequest): Effect.Effect<unknown, ProxmoxError> => {
    if (config.sshOnly === true) return ssh.call(request)
    if (request.asRoot === true && !restIsRoot) return asRoot(node, request)
    const before = switched.get(node)
    if (before !== undefined) return viaSsh(request, before)
    return rest.call(request).pipe(
      Effect.catch((error) => {
        if (!enabled || !shouldFallBack(error) || sshTargetFor(config, node) === undefined) return Effect.fail(error)
        // A write whose connection was reset or timed out may have reached PVE, which may have acted on it: it is
        // not sent again over SSH (a second create, start or download). The node still switches; the caller gets
        // this error and decides (ProxmoxApi checks whether a create or destroy happened before it retries).
        const replay = request.method === "GET" || !mayHaveReached(error)
        return Effect.suspend(() => {
          const already = switched.get(node)
          if (already !== undefined) return replay ? viaSsh(request, already) : Effect.fail(error)
          switched.set(node, error.reason)
          const reason = error.reason
          return emit({
            _tag: "FallbackToSsh",
            node,
            reason: reason._tag,
            detail: describe(error),
            ...(reason._tag === "TlsUntrusted" && reason.fingerprint !== undefined
              ? { fingerprint: reason.fingerprint }
              : {})
          }).pipe(Effect.andThen(replay ? viaSsh(request, reason) : Effect.fail(error)))
        })
      })
    )
  }

  const clusterWide = (request: PveRequest): Effect.Effect<unknown, ProxmoxError> => {
    if (request.via !== undefined) return callOn(request.via, request)
    const first = clusterVia
    const order = [first, ...config.nodes.map((n) => n.name).filter((n) => n !== first)]
    const attempt = (i: number, firstError: ProxmoxError | undefined): Effect.Effect<unknown, ProxmoxError> => {
      const node = order[i]
      if (node === undefined) return Effect.fail(firstError as ProxmoxError)
      return callOn(node, { ...request, via: node }).pipe(
        Effect.tap(() =>
          i === 0 || clusterVia !== first
            ? Effect.void
            : Effect.suspend(() => {
                clusterVia = node
                return emit({
                  _tag: "ClusterEndpointChanged",
                  from: first,
                  to: node,
                  detail: firstError === undefined ? "unreachable" : describe(firstError)
                })
              })
        ),
        Effect.catch((error) =>
          nodeDown(error) && order.length > 1 ? attempt(i + 1, firstError ?? error) : Effect.fail(error)
        )
      )
    }
    return attempt(0, undefined)
  }

  const call = (request: PveRequest): Effect.Effect<unknown, ProxmoxError> => {
    const node = nodeOfPath(request.path)
    return node === undefined ? clusterWide(request) : callOn(node, request)
  }

  /** Uploads exist over REST only: a node driven over SSH cannot take one. */
  const upload = (request: PveUploadRequest): Effect.Effect<unknown, ProxmoxError> => {
    const node = nodeOfPath(request.path) ?? defaultNode
    const before = switched.get(node)
    if (config.sshOnly === true || before !== undefined || rest.upload === undefined) {
      return Effect.fail(
        new ProxmoxError({
          operation: `POST ${request.path}`,
          node,
          reason: new UnexpectedResponse({
            expected: "the node's REST API",
            detail: `uploads go over the REST API, and ${node} is driven over SSH${before === undefined ? "" : ` since its API failed (${before.message})`}`
          }),
          ...(before !== undefined ? { fallbackFrom: before } : {})
        })
      )
    }
    return rest.upload(request)
  }

  return {
    call,
    upload,
    transportOf: (node) => (config.sshOnly === true || switched.has(node) ? "ssh" : "rest"),
    events: () => [...events]
  }
}
