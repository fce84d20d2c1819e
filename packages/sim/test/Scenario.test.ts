import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { demoScenario, parseScenario, parseSize, type Scenario, SimError, startSim } from "../src/index.js"

describe("Scenario", () => {
  it.effect("parses a YAML scenario", () =>
    Effect.gen(function* () {
      const s = yield* parseScenario(`
pveVersion: "9.0.5"
nodes:
  - name: pve
    apiPort: 0
    storages:
      - { id: local, type: dir, content: [iso, import], capacity: 100G }
faults:
  - { kind: bridgeInactive, node: pve, bridge: vmbr1 }
`)
      assert.strictEqual(s.pveVersion, "9.0.5")
      assert.strictEqual(s.nodes[0]?.storages?.[0]?.capacity, "100G")
      assert.deepStrictEqual(s.faults, [{ kind: "bridgeInactive", node: "pve", bridge: "vmbr1" }])
    })
  )

  it.effect("errors name the path and what was expected", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(
        parseScenario(`
nodes:
  - name: pve.example.com
    cpus: 2.5
    storages:
      - { id: local, type: zfs, content: [iso] }
`)
      )
      assert.instanceOf(e, SimError)
      assert.strictEqual(e.reason._tag, "ScenarioInvalid")
      assert.include(e.message, `at ["nodes"][0]["name"]`)
      assert.include(e.message, "a node name")
      assert.include(e.message, `at ["nodes"][0]["cpus"]`)
      assert.include(e.message, `Expected "dir" | "lvmthin" | "lvm" | "zfspool" | "nfs"`)
      assert.include(e.message, `at ["nodes"][0]["storages"][0]["type"]`)
    })
  )

  it.effect("a node, a node's storage id or a node's bridge given twice is a ScenarioInvalid error", () =>
    Effect.gen(function* () {
      const node = (over: object = {}) => ({ name: "pve", apiPort: 0, sshPort: 0, ...over })
      const local = { id: "local", type: "dir" as const, content: ["iso" as const] }
      for (const [nodes, message] of [
        [[node(), node()], "nodes: node 'pve' is listed twice"],
        [[node({ storages: [local, local] })], "nodes[pve].storages: storage 'local' is listed twice"],
        [
          [node({ bridges: [{ name: "vmbr0" }, { name: "vmbr0", active: false }] })],
          "nodes[pve].bridges: bridge 'vmbr0' is listed twice"
        ]
      ] as const) {
        const e = yield* Effect.flip(startSim({ nodes: [...nodes] } as Scenario))
        assert.strictEqual(e.reason._tag, "ScenarioInvalid")
        assert.strictEqual(e.reason.message, message)
      }
    })
  )

  it.effect("invalid YAML is a ScenarioInvalid error", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(parseScenario("nodes: [ {"))
      assert.strictEqual(e.reason._tag, "ScenarioInvalid")
      assert.match(e.reason.message, /^invalid YAML/)
    })
  )

  it("sizes", () => {
    assert.strictEqual(parseSize("100G", 0), 100 * 1024 ** 3)
    assert.strictEqual(parseSize("512M", 0), 512 * 1024 ** 2)
    assert.strictEqual(parseSize(2048, 0), 2048)
    assert.strictEqual(parseSize(undefined, 7), 7)
  })

  it("the demo scenario has the four nodes, stock storages and bridges", () => {
    const d = demoScenario()
    assert.deepStrictEqual(
      d.nodes.map((n) => n.name),
      ["pve", "still-fawn", "chief-horse", "pumped-piglet"]
    )
    assert.deepStrictEqual(
      d.nodes[0]?.storages?.map((s) => [s.id, s.type, s.content.join(",")]),
      [
        // PVE 9 (the demo's version) installs `local` with import content
        ["local", "dir", "iso,vztmpl,backup,import"],
        ["local-lvm", "lvmthin", "rootdir,images"]
      ]
    )
    assert.deepStrictEqual(
      d.nodes.map((n) => n.bridges?.map((b) => b.name).join(",")),
      ["vmbr0,vmbr1", "vmbr0", "vmbr0,vmbr1", "vmbr0"]
    )
    assert.strictEqual(d.guestSshPort, 2222)
    assert.strictEqual(d.pveVersion, "9.1.1")
  })
})
