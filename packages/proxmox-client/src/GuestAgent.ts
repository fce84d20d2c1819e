import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { PveBoolean, PveInt } from "./internal/decode.js"
import { POLL_CAP_MS, POLL_FIRST, POLL_GROWTH } from "./Task.js"

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

/**
 * Options of `waitForIpv4`.
 *
 * @since 0.3.0
 * @category models
 */
export interface WaitForIpOptions<E = unknown> {
  /** Give up after this long (the result is then `undefined`). Default 5 minutes. */
  readonly timeout?: Duration.Input | undefined
  /**
   * A failed call that waiting cannot cure (a missing privilege): the wait fails with it at once. Any other failure
   * counts as "no address yet". Default: none.
   */
  readonly fatal?: ((error: E) => boolean) | undefined
}

/**
 * Waits until the guest agent reports the IPv4 of the NIC with `mac` (see `discoverIpv4`). The guest agent pushes
 * nothing, so it polls on the schedule of task waits (`taskPollSchedule`: from 100 ms, growing to 1 s); a failing
 * call (the agent does not run while the guest boots) counts as "no address yet". Each interval runs from the start
 * of the previous call: PVE pings the agent for up to 3 s before it answers that the agent is not running, and a
 * call that has already waited that long is followed at once by the next one, which PVE answers the moment the agent
 * comes up. `undefined` when `timeout` passes first; fails only with a call's error that `options.fatal` picks.
 *
 * @since 0.3.0
 * @category constructors
 */
export const waitForIpv4With = <E>(
  interfaces: Effect.Effect<ReadonlyArray<GuestInterface>, E>,
  mac: string | undefined,
  options?: WaitForIpOptions<E>
): Effect.Effect<string | undefined, E> => {
  const fatal = options?.fatal
  const read = interfaces.pipe(
    Effect.map((nics) => discoverIpv4(nics, mac)),
    Effect.catch((error: E) => (fatal?.(error) === true ? Effect.fail(error) : Effect.succeed(undefined)))
  )
  const poll = Effect.gen(function* () {
    let intervalMs = Duration.toMillis(POLL_FIRST)
    for (;;) {
      const startedAt = yield* Clock.currentTimeMillis
      const ip = yield* read
      if (ip !== undefined) return ip
      const spentMs = (yield* Clock.currentTimeMillis) - startedAt
      if (spentMs < intervalMs) yield* Effect.sleep(Duration.millis(intervalMs - spentMs))
      intervalMs = Math.min(intervalMs * POLL_GROWTH, POLL_CAP_MS)
    }
  })
  return Effect.sleep(POLL_FIRST).pipe(
    Effect.andThen(poll),
    Effect.timeoutOption(options?.timeout ?? Duration.minutes(5)),
    Effect.map(Option.getOrUndefined)
  )
}
