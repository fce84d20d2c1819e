import { Effect } from "effect"
import type { ProxmoxClientConfigShape, ProxmoxClientEvent } from "./ProxmoxClientConfig.js"
import { isFallbackReason, type ProxmoxError } from "./ProxmoxError.js"
import { nodeOfPath, type PveRequest, type PveTransportShape } from "./PveTransport.js"
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

/**
 * Combines a REST and an SSH transport. REST first; on a client-side TLS failure, an unreachable node (refused,
 * reset, timeout, DNS) or a 596 from the inter-node proxy, the node switches to SSH for the rest of the run (when
 * it has an SSH target and `fallback` is not `false`) and one `FallbackToSsh` event is emitted. 400/401/403 and
 * semantic 500s are never retried over SSH.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFallbackTransport = (
  config: ProxmoxClientConfigShape,
  rest: PveTransportShape,
  ssh: PveTransportShape
): FallbackTransport => {
  const switched = new Set<string>()
  const events: Array<ProxmoxClientEvent> = []
  const enabled = config.fallback !== false
  const defaultNode = config.defaultNode ?? config.nodes[0]?.name ?? ""
  const nodeFor = (request: PveRequest) => nodeOfPath(request.path) ?? defaultNode

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
        : Effect.void
    })

  const shouldFallBack = (error: ProxmoxError): boolean =>
    isFallbackReason(error.reason) || (error.reason._tag === "ProxyError" && error.reason.status === 596)

  const call = (request: PveRequest): Effect.Effect<unknown, ProxmoxError> => {
    const node = nodeFor(request)
    if (config.sshOnly === true || switched.has(node)) return ssh.call(request)
    return rest.call(request).pipe(
      Effect.catch((error) => {
        if (!enabled || !shouldFallBack(error) || sshTargetFor(config, node) === undefined) return Effect.fail(error)
        return Effect.suspend(() => {
          if (switched.has(node)) return ssh.call(request)
          switched.add(node)
          const reason = error.reason
          return emit({
            _tag: "FallbackToSsh",
            node,
            reason: reason._tag,
            detail: describe(error),
            ...(reason._tag === "TlsUntrusted" && reason.fingerprint !== undefined
              ? { fingerprint: reason.fingerprint }
              : {})
          }).pipe(Effect.andThen(ssh.call(request)))
        })
      })
    )
  }

  return {
    call,
    transportOf: (node) => (config.sshOnly === true || switched.has(node) ? "ssh" : "rest"),
    events: () => [...events]
  }
}
