import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { NodeFacts } from "./NodeFacts.js"
import { PreflightOptions } from "./Preflight.js"
import { VmFacts } from "./VmFacts.js"
import { InvalidInput, VmHealthError } from "./VmHealthError.js"
import { VmRequest } from "./VmRequest.js"

const decoder =
  <S extends Schema.Decoder<unknown>>(schema: S, input: string) =>
  (value: unknown): Effect.Effect<S["Type"], VmHealthError> =>
    Schema.decodeUnknownEffect(schema)(value, { errors: "all" }).pipe(
      Effect.mapError((error) => new VmHealthError({ reason: new InvalidInput({ input, issue: error.message }) }))
    )

/**
 * Decodes untrusted data into `VmFacts`. Fails with `VmHealthError` / `InvalidInput` (`input: "VmFacts"`).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeVmFacts: (value: unknown) => Effect.Effect<VmFacts, VmHealthError> = decoder(VmFacts, "VmFacts")

/**
 * Decodes untrusted data into `NodeFacts`. Fails with `VmHealthError` / `InvalidInput` (`input: "NodeFacts"`).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeNodeFacts: (value: unknown) => Effect.Effect<NodeFacts, VmHealthError> = decoder(
  NodeFacts,
  "NodeFacts"
)

/**
 * Decodes untrusted data into a `VmRequest`. Fails with `VmHealthError` / `InvalidInput` (`input: "VmRequest"`).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeVmRequest: (value: unknown) => Effect.Effect<VmRequest, VmHealthError> = decoder(
  VmRequest,
  "VmRequest"
)

/**
 * Decodes untrusted data into `PreflightOptions`. Fails with `VmHealthError` / `InvalidInput`
 * (`input: "PreflightOptions"`).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodePreflightOptions: (value: unknown) => Effect.Effect<PreflightOptions, VmHealthError> = decoder(
  PreflightOptions,
  "PreflightOptions"
)
