import { assert, describe, it } from "@effect/vitest"
import { inSafetyProtect } from "../src/inSafetyProtect.js"

describe("inSafetyProtect", () => {
  it("names a VM by its name or its VM id; a VM without a name only by its id", () => {
    const desired = { protect: ["k3s-vm-pve", 4242] }
    assert.isTrue(inSafetyProtect(desired, "k3s-vm-pve", 100))
    assert.isTrue(inSafetyProtect(desired, "other", 4242))
    assert.isTrue(inSafetyProtect(desired, undefined, 4242))
    assert.isFalse(inSafetyProtect(desired, "other", 100))
    assert.isFalse(inSafetyProtect(desired, undefined, 100))
  })
})
