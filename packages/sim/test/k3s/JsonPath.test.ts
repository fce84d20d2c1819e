import { assert, describe, it } from "vitest"
import { JsonPathError, jsonPath } from "../../src/k3s/JsonPath.js"

const list = {
  kind: "List",
  items: [
    {
      metadata: {
        name: "s1",
        labels: { "node-role.kubernetes.io/control-plane": "true", "kubernetes.io/hostname": "s1" }
      },
      status: {
        conditions: [
          { type: "MemoryPressure", status: "False" },
          { type: "Ready", status: "True" }
        ],
        nodeInfo: { kubeletVersion: "v1.30.5+k3s1" }
      }
    },
    {
      metadata: { name: "a1", labels: { "kubernetes.io/hostname": "a1" } },
      status: {
        conditions: [
          { type: "Ready", status: "False" },
          { type: "MemoryPressure", status: "False" }
        ],
        nodeInfo: { kubeletVersion: "v1.29.9+k3s1" }
      }
    }
  ]
}

describe("jsonPath (kubectl -o jsonpath=)", () => {
  it("joins the results of one action with a space, and keeps the text around actions", () => {
    assert.strictEqual(jsonPath("{.items[*].metadata.name}", list), "s1 a1")
    assert.strictEqual(jsonPath("names: {.items[0].metadata.name}!", list), "names: s1!")
    assert.strictEqual(jsonPath("{.items[-1].metadata.name}", list), "a1")
    assert.strictEqual(jsonPath("{.items[0:1].metadata.name}", list), "s1")
  })

  it("filters by field, escapes dots in keys, descends recursively (k3sup's ready check)", () => {
    assert.strictEqual(jsonPath('{.items[*].status.conditions[?(@.type=="Ready")].status}', list), "True False")
    assert.strictEqual(jsonPath("{.items[0].metadata.labels.kubernetes\\.io/hostname}", list), "s1")
    assert.strictEqual(jsonPath("{.items[0].metadata.labels['kubernetes.io/hostname']}", list), "s1")
    // k3sup takes the last condition, whatever its type
    assert.strictEqual(jsonPath("{.items..status.conditions[-1:].status}", list), "True False")
  })

  it("ranges with literals, prints missing keys as nothing and objects as JSON", () => {
    assert.strictEqual(
      jsonPath('{range .items[*]}{.metadata.name}{"\\t"}{.status.nodeInfo.kubeletVersion}{"\\n"}{end}', list),
      "s1\tv1.30.5+k3s1\na1\tv1.29.9+k3s1\n"
    )
    assert.strictEqual(jsonPath("{.items[0].spec.unschedulable}", list), "")
    assert.strictEqual(jsonPath("{.items[0].status.nodeInfo}", list), '{"kubeletVersion":"v1.30.5+k3s1"}')
    assert.throws(() => jsonPath("{.items[0]", list), JsonPathError)
    assert.throws(() => jsonPath("{range .items[*]}{.x}", list), JsonPathError)
  })
})
