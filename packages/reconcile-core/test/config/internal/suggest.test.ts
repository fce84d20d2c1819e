import { assert, describe, it } from "@effect/vitest"
import { closest, closestName, editDistance } from "../../../src/config/internal/suggest.js"

describe("suggestions", () => {
  it("counts an adjacent transposition as one edit", () => {
    assert.deepStrictEqual(
      [
        editDistance("nodse", "nodes"),
        editDistance("kitten", "sitting"),
        editDistance("", "abc"),
        editDistance("a", "a")
      ],
      [1, 3, 3, 0]
    )
  })

  it("suggests only plausible typos", () => {
    const keys = ["proxmox", "ssh", "image", "vm", "nodes", "health", "safety", "k3s"]
    assert.strictEqual(closest("nodse", keys), "nodes")
    assert.strictEqual(closest("proxmx", keys), "proxmox")
    assert.strictEqual(closest("IMAGE", keys), "image")
    assert.strictEqual(closest("cpu_ratio", ["cpuRatio", "memoryRatio"]), "cpuRatio")
    assert.strictEqual(closest("memory-ratio", ["cpuRatio", "memoryRatio"]), "memoryRatio")
    assert.strictEqual(closest("frobnicate", keys), undefined)
    assert.strictEqual(closest("x", ["vm", "k3s"]), undefined)
    assert.strictEqual(closest("restart", ["recreate", "start", "keep"]), "start")
  })

  it("suggests a name only when it is the one close name", () => {
    assert.strictEqual(closestName("pve-03", ["pve1", "pve2", "pve3"]), "pve3")
    assert.strictEqual(closestName("PVE2", ["pve1", "pve2"]), "pve2")
    assert.strictEqual(closestName("web-bb", ["web-a", "web-b"]), "web-b")
    // as close to two names: no guess (pve5 is no more pve1 than pve4)
    assert.strictEqual(closestName("pve5", ["pve1", "pve2", "pve3", "pve4"]), undefined)
    assert.strictEqual(closestName("nope", ["pve", "still-fawn"]), undefined)
    // a third of a long name is too many edits for a name: they share the prefix
    assert.strictEqual(closestName("k3s-vm-nope", ["k3s-vm-pve", "k3s-vm-still-fawn"]), undefined)
  })
})
