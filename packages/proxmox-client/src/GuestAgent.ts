import { Effect, Schema } from "effect"
import { PveBoolean, PveInt } from "./internal/decode.js"

/**
 * One address of a guest NIC as the QEMU guest agent reports it.
 *
 * @since 0.1.0
 * @category models
 */
export const GuestIpAddress = Schema.Struct({
  "ip-address-type": Schema.String,
  "ip-address": Schema.String,
  prefix: Schema.optionalKey(PveInt)
})

/**
 * One guest NIC (`agent/network-get-interfaces`).
 *
 * @since 0.1.0
 * @category models
 */
export const GuestInterface = Schema.Struct({
  name: Schema.String,
  "hardware-address": Schema.optionalKey(Schema.String),
  "ip-addresses": Schema.Array(GuestIpAddress).pipe(Schema.withDecodingDefaultKey(Effect.succeed([])))
})

/**
 * @since 0.1.0
 * @category models
 */
export type GuestInterface = typeof GuestInterface.Type

/** @internal */
export const GuestInterfacesResult = Schema.Struct({ result: Schema.Array(GuestInterface) })

/**
 * `agent/exec-status`: `exited` is a boolean, output already base64-decoded by PVE.
 *
 * @since 0.1.0
 * @category models
 */
export const ExecStatus = Schema.Struct({
  exited: PveBoolean,
  exitcode: Schema.optionalKey(PveInt),
  signal: Schema.optionalKey(PveInt),
  "out-data": Schema.optionalKey(Schema.String),
  "err-data": Schema.optionalKey(Schema.String),
  "out-truncated": Schema.optionalKey(PveBoolean),
  "err-truncated": Schema.optionalKey(PveBoolean)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ExecStatus = typeof ExecStatus.Type

/** @internal */
export const ExecStarted = Schema.Struct({ pid: PveInt })

const IGNORED_NIC = /^(?:lo$|docker|cni|flannel|veth|cali)/

/**
 * The guest's IPv4 address: the first IPv4 of the NIC whose MAC equals `mac` (net0's, case-insensitive), or of the
 * first eligible NIC when no MAC is given. NICs `lo`, `docker*`, `cni*`, `flannel*`, `veth*` and `cali*` are
 * skipped; loopback addresses (127.0.0.0/8) are skipped only on `lo` (a NIC may legitimately carry one).
 *
 * @since 0.1.0
 * @category utilities
 */
export const discoverIpv4 = (interfaces: ReadonlyArray<GuestInterface>, mac?: string): string | undefined => {
  const wanted = mac?.toLowerCase()
  for (const nic of interfaces) {
    if (IGNORED_NIC.test(nic.name)) continue
    if (wanted !== undefined && nic["hardware-address"]?.toLowerCase() !== wanted) continue
    const v4 = nic["ip-addresses"].find(
      (a) => a["ip-address-type"] === "ipv4" && !(nic.name === "lo" && a["ip-address"].startsWith("127."))
    )
    if (v4 !== undefined) return v4["ip-address"]
  }
  return undefined
}
