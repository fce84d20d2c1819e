import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import { PveBoolean, PveNumber } from "./internal/decode.js"
import { ClusterVm } from "./Vm.js"

/**
 * A `type: node` entry of `GET /cluster/resources`: capacity (`maxcpu` logical CPUs, `maxmem` bytes) and status.
 *
 * @since 0.1.0
 * @category models
 */
export const ClusterNode = Schema.Struct({
  type: Schema.Literal("node"),
  node: Schema.String,
  status: Schema.String,
  maxcpu: Schema.optionalKey(PveNumber),
  maxmem: Schema.optionalKey(PveNumber),
  mem: Schema.optionalKey(PveNumber),
  uptime: Schema.optionalKey(PveNumber)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ClusterNode = typeof ClusterNode.Type

const ContentList = Schema.String.pipe(
  Schema.decodeTo(Schema.Array(Schema.String), {
    decode: SchemaGetter.transform((s) => s.split(",").filter((c) => c !== "")),
    encode: SchemaGetter.transform((a) => a.join(","))
  })
)

/**
 * A `type: storage` entry of `GET /cluster/resources` (one per node for shared storages too): `content` as a list,
 * `shared` as a boolean, `disk`/`maxdisk` in bytes; `status` is `available` when active.
 *
 * @since 0.1.0
 * @category models
 */
export const ClusterStorage = Schema.Struct({
  type: Schema.Literal("storage"),
  node: Schema.String,
  storage: Schema.String,
  status: Schema.optionalKey(Schema.String),
  plugintype: Schema.optionalKey(Schema.String),
  content: ContentList.pipe(Schema.withDecodingDefaultKey(Effect.succeed(""))),
  shared: PveBoolean.pipe(Schema.withDecodingDefaultKey(Effect.succeed(0 as const))),
  disk: Schema.optionalKey(PveNumber),
  maxdisk: Schema.optionalKey(PveNumber)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ClusterStorage = typeof ClusterStorage.Type

const OtherEntry = Schema.Struct({ type: Schema.String })

/** The entries of one unfiltered `/cluster/resources` response, by type (pools, SDN and others are dropped). */
export const ClusterResourceEntries = Schema.Array(Schema.Union([ClusterVm, ClusterNode, ClusterStorage, OtherEntry]))

/**
 * Everything `GET /cluster/resources` says in one request: guests (VMs and containers, every node), nodes with
 * capacity, and storages per node.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClusterResources {
  readonly vms: ReadonlyArray<ClusterVm>
  readonly nodes: ReadonlyArray<ClusterNode>
  readonly storages: ReadonlyArray<ClusterStorage>
}

/** @internal */
export const partitionResources = (entries: typeof ClusterResourceEntries.Type): ClusterResources => {
  const vms: Array<ClusterVm> = []
  const nodes: Array<ClusterNode> = []
  const storages: Array<ClusterStorage> = []
  for (const e of entries) {
    if ("vmid" in e) vms.push(e as ClusterVm)
    else if (e.type === "node" && "node" in e) nodes.push(e as ClusterNode)
    else if (e.type === "storage" && "storage" in e) storages.push(e as ClusterStorage)
  }
  return {
    vms: vms.sort((a, b) => a.vmid - b.vmid),
    nodes: nodes.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)),
    storages
  }
}
