import * as Schema from "effect/Schema"
import { PveBoolean } from "./internal/decode.js"

/**
 * One entry of `GET /nodes/{node}/network`.
 *
 * @since 0.1.0
 * @category models
 */
export const NetworkInterface = Schema.Struct({
  iface: Schema.String,
  type: Schema.String,
  active: Schema.optionalKey(PveBoolean),
  autostart: Schema.optionalKey(PveBoolean),
  method: Schema.optionalKey(Schema.String),
  address: Schema.optionalKey(Schema.String),
  cidr: Schema.optionalKey(Schema.String),
  gateway: Schema.optionalKey(Schema.String),
  bridge_ports: Schema.optionalKey(Schema.String),
  bridge_vlan_aware: Schema.optionalKey(PveBoolean),
  comments: Schema.optionalKey(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type NetworkInterface = typeof NetworkInterface.Type

/**
 * A Linux bridge of a node and whether it is up.
 *
 * @since 0.1.0
 * @category models
 */
export interface Bridge {
  readonly name: string
  readonly active: boolean
  readonly cidr?: string | undefined
  readonly ports?: string | undefined
}

/**
 * The bridges among a node's interfaces (`type: bridge` or `OVSBridge`), sorted by name.
 *
 * @since 0.1.0
 * @category utilities
 */
export const bridgesOf = (interfaces: ReadonlyArray<NetworkInterface>): ReadonlyArray<Bridge> =>
  interfaces
    .filter((i) => i.type === "bridge" || i.type === "OVSBridge")
    .map((i) => ({
      name: i.iface,
      active: i.active ?? false,
      ...(i.cidr !== undefined ? { cidr: i.cidr } : {}),
      ...(i.bridge_ports !== undefined ? { ports: i.bridge_ports } : {})
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
