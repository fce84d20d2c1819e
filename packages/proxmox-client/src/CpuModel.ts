import * as Schema from "effect/Schema"
import { PveBoolean } from "./internal/decode.js"

/**
 * One entry of `GET /nodes/{node}/capabilities/qemu/cpu`: a CPU model a VM's `cpu` may name on that node (built-in
 * ones, and `custom-NAME` ones when the caller has Sys.Audit on /nodes).
 *
 * @since 0.1.0
 * @category models
 */
export const CpuModel = Schema.Struct({
  name: Schema.String,
  vendor: Schema.optionalKey(Schema.String),
  custom: Schema.optionalKey(PveBoolean)
})

/**
 * @since 0.1.0
 * @category models
 */
export type CpuModel = typeof CpuModel.Type
