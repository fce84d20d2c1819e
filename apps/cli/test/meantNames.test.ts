import { assert, describe, it } from "@effect/vitest"
import { meantNames } from "../src/meantNames.js"

describe("meantNames", () => {
  it("replaces each unknown name by the known one it is a typo of, or gives nothing unless every one is", () => {
    const nodes = ["pve1", "pve2", "still-fawn"]
    assert.deepStrictEqual(meantNames(["pve1", "stil-fawn"], nodes), ["pve1", "still-fawn"])
    assert.deepStrictEqual(meantNames(["pve-2", "pve2"], nodes), ["pve2"])
    assert.isUndefined(meantNames(["stil-fawn", "nope"], nodes))
    assert.isUndefined(meantNames(["pve3"], nodes), "as close to pve1 as to pve2")
  })
})
