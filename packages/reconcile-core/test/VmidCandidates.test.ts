import { assert, describe, it } from "@effect/vitest"
import { vmidCandidates } from "../src/VmidCandidates.js"

describe("vmidCandidates", () => {
  const range = { lower: 1000, upper: 8999 }

  it("is a pure function of the name: two runs try the same ids in the same order", () => {
    assert.deepStrictEqual(vmidCandidates("k3s-vm-pve", range), vmidCandidates("k3s-vm-pve", range))
  })

  it("gives different names different starting ids", () => {
    const first = new Set(
      ["k3s-vm-pve", "k3s-vm-still-fawn", "k3s-vm-chief-horse", "k3s-vm-pumped-piglet"].map(
        (n) => vmidCandidates(n, range)[0]
      )
    )
    assert.strictEqual(first.size, 4)
  })

  it("stays inside the range and wraps around at its end", () => {
    const small = { lower: 100, upper: 102 }
    const ids = vmidCandidates("x", small, 5)
    assert.strictEqual(ids.length, 3)
    assert.deepStrictEqual([...ids].sort(), [100, 101, 102])
    for (const id of vmidCandidates("anything", range, 50)) assert.isTrue(id >= 1000 && id <= 8999)
  })

  it("rejects an empty range", () => {
    assert.throws(() => vmidCandidates("x", { lower: 10, upper: 9 }), /invalid VMID range/)
  })
})
