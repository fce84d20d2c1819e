import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import { ProxmoxError, UnexpectedResponse } from "../ProxmoxError.js"

/**
 * A PVE boolean: `0`/`1` (Perl), `"0"`/`"1"` (config strings), or a JSON boolean → `boolean`.
 */
export const PveBoolean = Schema.Union([Schema.Boolean, Schema.Literals([0, 1, "0", "1"])]).pipe(
  Schema.decodeTo(Schema.Boolean, {
    decode: SchemaGetter.transform((v) => v === true || v === 1 || v === "1"),
    encode: SchemaGetter.transform((b) => (b ? 1 : 0))
  })
)

/** A number PVE may send as a string (`nextid`, `loadavg`, `mhz`, `memory` before 8.1 …). */
export const PveNumber = Schema.Union([Schema.Finite, Schema.FiniteFromString])

/** An integer PVE may send as a string. */
export const PveInt = PveNumber.check(Schema.isInt())

/**
 * VM memory in MiB: `2048`, `"2048"` (8.1+ config) or the property string `"current=2048"` / `"2048,…"`.
 */
export const PveMemory = Schema.Union([
  Schema.Finite,
  Schema.String.check(Schema.isPattern(/^(?:current=)?\d+(?:,.*)?$/, { expected: "a memory size in MiB" }))
]).pipe(
  Schema.decodeTo(Schema.Finite, {
    decode: SchemaGetter.transform((v) => (typeof v === "number" ? v : Number(/(\d+)/.exec(v)?.[1] ?? "0"))),
    encode: SchemaGetter.transform((n) => n)
  })
)

/** Tags: `"k8s;prod"` (also `,` or space separated) → `["k8s", "prod"]`; absent → `[]`. */
export const PveTags = Schema.String.pipe(
  Schema.decodeTo(Schema.Array(Schema.String), {
    decode: SchemaGetter.transform((s) => s.split(/[;,\s]+/).filter((t) => t !== "")),
    encode: SchemaGetter.transform((a) => a.join(";"))
  })
)

/**
 * Decodes `data` with `schema`, failing with `UnexpectedResponse` (what was expected + the schema issue).
 */
export const decodeData =
  <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, expected: string) =>
  (operation: string, node: string | undefined) =>
  (data: unknown): Effect.Effect<S["Type"], ProxmoxError> =>
    Schema.decodeUnknownEffect(schema)(data).pipe(
      Effect.mapError(
        (issue) =>
          new ProxmoxError({
            operation,
            ...(node !== undefined ? { node } : {}),
            reason: new UnexpectedResponse({ expected, detail: String(issue.message).slice(0, 2000) })
          })
      )
    )
