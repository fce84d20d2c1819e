import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { PveBoolean, PveNumber } from "./internal/decode.js"

/**
 * The `type: cluster` entry of `GET /cluster/status` (a cluster's, absent on a standalone node): `quorate` is
 * corosync's verdict. Without quorum /etc/pve is read-only: PVE refuses creates and starts
 * (`cluster not ready - no quorum?`) and every guest config write.
 *
 * @since 0.4.0
 * @category models
 */
export const ClusterStatusCluster = Schema.Struct({
  type: Schema.Literal("cluster"),
  name: Schema.String,
  quorate: PveBoolean,
  nodes: Schema.optionalKey(PveNumber)
})

/**
 * A `type: node` entry of `GET /cluster/status`: a member of the cluster and whether corosync sees it.
 *
 * @since 0.4.0
 * @category models
 */
export const ClusterStatusNode = Schema.Struct({
  type: Schema.Literal("node"),
  name: Schema.String,
  online: PveBoolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0 as const)))
})

const OtherEntry = Schema.Struct({ type: Schema.String })

/** @internal */
export const ClusterStatusEntries = Schema.Array(Schema.Union([ClusterStatusCluster, ClusterStatusNode, OtherEntry]))

/**
 * What `GET /cluster/status` says of the cluster's quorum: `quorate` (a standalone node, with no cluster entry, is),
 * and its members, online or not.
 *
 * @since 0.4.0
 * @category models
 */
export interface ClusterStatus {
  readonly name?: string | undefined
  readonly quorate: boolean
  readonly nodes: ReadonlyArray<{ readonly name: string; readonly online: boolean }>
}

/** @internal */
export const clusterStatusOf = (entries: typeof ClusterStatusEntries.Type): ClusterStatus => {
  let cluster: typeof ClusterStatusCluster.Type | undefined
  const nodes: Array<{ readonly name: string; readonly online: boolean }> = []
  for (const e of entries) {
    if (e.type === "cluster" && "quorate" in e) cluster = e as typeof ClusterStatusCluster.Type
    else if (e.type === "node" && "online" in e) {
      const n = e as typeof ClusterStatusNode.Type
      nodes.push({ name: n.name, online: n.online })
    }
  }
  return {
    name: cluster?.name,
    quorate: cluster === undefined ? true : cluster.quorate,
    nodes: nodes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }
}
