import * as Schema from "effect/Schema"

const NonNegative = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * A network interface from `GET /nodes/{node}/network` (`iface`, `active`). Only bridges matter here.
 *
 * @since 0.1.0
 * @category models
 */
export const BridgeFact = Schema.Struct({
  name: Schema.String,
  active: Schema.Boolean
})

/**
 * @since 0.1.0
 * @category models
 */
export type BridgeFact = typeof BridgeFact.Type

/**
 * A storage from `GET /nodes/{node}/storage` (`storage`, `enabled`, `active`, `content` split on commas, `avail`).
 *
 * @since 0.1.0
 * @category models
 */
export const StorageFact = Schema.Struct({
  name: Schema.String,
  enabled: Schema.Boolean,
  active: Schema.Boolean,
  content: Schema.Array(Schema.String),
  availBytes: NonNegative
})

/**
 * @since 0.1.0
 * @category models
 */
export type StorageFact = typeof StorageFact.Type

/**
 * A guest (VM or container) on the node, from `GET /cluster/resources?type=vm` (`vmid`, `maxmem`, `template`).
 *
 * @since 0.1.0
 * @category models
 */
export const GuestFact = Schema.Struct({
  vmid: Schema.Int,
  maxmemBytes: NonNegative,
  template: Schema.Boolean
})

/**
 * @since 0.1.0
 * @category models
 */
export type GuestFact = typeof GuestFact.Type

/**
 * What the caller observed about one node before creating a VM on it: logical CPUs (`cpuinfo.cpus`) and total
 * memory (`memory.total`) from `GET /nodes/{node}/status`, the PVE major version (from `pveversion`; 8 when left
 * out), its bridges, storages and guests.
 *
 * @since 0.1.0
 * @category models
 */
export class NodeFacts extends Schema.Class<NodeFacts>("@homelab/vm-health/NodeFacts")({
  node: Schema.String,
  pveMajor: Schema.optional(Schema.Int),
  cpus: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  memoryBytes: NonNegative,
  bridges: Schema.Array(BridgeFact),
  storages: Schema.Array(StorageFact),
  guests: Schema.Array(GuestFact)
}) {}
