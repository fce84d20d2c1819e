import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import {
  decodeNodeFacts,
  decodePreflightOptions,
  decodeVmFacts,
  decodeVmRequest,
  GuestFact,
  NodeFacts,
  VmFacts
} from "../src/index.js"

const GiB = 1024 ** 3

describe("decoders", () => {
  it.effect("decode raw observations", () =>
    Effect.gen(function* () {
      const facts = yield* decodeNodeFacts({
        node: "pve",
        cpus: 4,
        memoryBytes: 8 * GiB,
        bridges: [{ name: "vmbr0", active: true }],
        storages: [],
        guests: []
      })
      assert.strictEqual(facts.cpus, 4)
      assert.isTrue(facts instanceof NodeFacts)
      const options = yield* decodePreflightOptions({ memoryAdjustment: 1.2, access: { _tag: "Root" } })
      assert.strictEqual(options.memoryAdjustment, 1.2)
    })
  )

  it.effect("invalid input fails with InvalidInput naming the input", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(decodeVmRequest({ cores: 0 }))
      assert.strictEqual(error.reason._tag, "InvalidInput")
      assert.strictEqual(error.reason._tag === "InvalidInput" && error.reason.input, "VmRequest")
      assert.match(error.message, /^invalid VmRequest: .*cores/s)
      const negative = yield* Effect.flip(decodePreflightOptions({ memoryAdjustment: -1 }))
      assert.strictEqual(negative.reason._tag === "InvalidInput" && negative.reason.input, "PreflightOptions")
      const guest = yield* Effect.flip(
        decodeNodeFacts({ node: "pve", cpus: 1.5, memoryBytes: 0, bridges: [], storages: [], guests: [] })
      )
      assert.include(guest.message, "cpus")
    })
  )

  it("GuestFact is a plain struct schema", () => {
    assert.deepStrictEqual(Schema.decodeUnknownSync(GuestFact)({ vmid: 1, maxmemBytes: 2, template: false }), {
      vmid: 1,
      maxmemBytes: 2,
      template: false
    })
  })
})

describe("decodeVmFacts", () => {
  it.effect("decodes status/current-style facts", () =>
    Effect.gen(function* () {
      const facts = yield* decodeVmFacts({
        vmid: 105,
        node: "pve",
        status: "stopped",
        lock: "suspended",
        agentConfigured: false,
        owned: true,
        protection: false,
        template: false
      })
      assert.isTrue(facts instanceof VmFacts)
      assert.strictEqual(facts.lock, "suspended")
    })
  )

  it.effect("reports every problem at once", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(decodeVmFacts({ vmid: 0, node: "pve", status: "up" }))
      assert.strictEqual(error.reason._tag === "InvalidInput" && error.reason.input, "VmFacts")
      for (const key of ["vmid", "status", "agentConfigured", "owned", "protection", "template"]) {
        assert.include(error.message, key)
      }
    })
  )
})
