import { assert, describe, it } from "@effect/vitest"
import { closest, editDistance } from "../../../src/config/internal/suggest.js"

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
})
