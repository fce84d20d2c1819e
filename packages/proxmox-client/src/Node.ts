import * as Schema from "effect/Schema"
import { PveBoolean, PveInt, PveNumber } from "./internal/decode.js"

/**
 * `GET /version`.
 *
 * @since 0.1.0
 * @category models
 */
export const PveVersion = Schema.Struct({
  version: Schema.String,
  release: Schema.String,
  repoid: Schema.String
})

/**
 * @since 0.1.0
 * @category models
 */
export type PveVersion = typeof PveVersion.Type

/**
 * One entry of `GET /nodes`. The statistics are present only with `Sys.Audit`.
 *
 * @since 0.1.0
 * @category models
 */
export const NodeSummary = Schema.Struct({
  node: Schema.String,
  status: Schema.Literals(["online", "offline", "unknown"]),
  cpu: Schema.optional(PveNumber),
  maxcpu: Schema.optional(PveInt),
  mem: Schema.optional(PveNumber),
  maxmem: Schema.optional(PveNumber),
  uptime: Schema.optional(PveInt),
  ssl_fingerprint: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type NodeSummary = typeof NodeSummary.Type

/**
 * `GET /nodes/{node}/status` (the parts the reconciler uses). `cpuinfo.cpus` is the number of logical CPUs;
 * memory is in bytes; `loadavg` arrives as strings and is decoded to numbers.
 *
 * @since 0.1.0
 * @category models
 */
export const NodeStatus = Schema.Struct({
  uptime: PveInt,
  cpu: PveNumber,
  loadavg: Schema.optional(Schema.Array(PveNumber)),
  cpuinfo: Schema.Struct({
    cpus: PveInt,
    cores: Schema.optional(PveInt),
    sockets: Schema.optional(PveInt),
    model: Schema.optional(Schema.String),
    hvm: Schema.optional(PveBoolean)
  }),
  memory: Schema.Struct({ total: PveNumber, used: PveNumber, free: PveNumber }),
  pveversion: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type NodeStatus = typeof NodeStatus.Type

/**
 * `GET /access/permissions`: path → privilege → granted.
 *
 * @since 0.1.0
 * @category models
 */
export const Permissions = Schema.Record(Schema.String, Schema.Record(Schema.String, PveBoolean))

/**
 * @since 0.1.0
 * @category models
 */
export type Permissions = typeof Permissions.Type
