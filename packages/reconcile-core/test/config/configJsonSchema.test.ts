// biome-ignore-all lint/suspicious/noTemplateCurlyInString: this file deals with literal ${VAR} references
import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { parse } from "yaml"
import { configJsonSchema } from "../../src/config/configJsonSchema.js"
import { parseConfig } from "../../src/config/parseConfig.js"
import { checkJsonSchema } from "./jsonSchemaCheck.js"

type Json = Record<string, unknown>

const exampleText = readFileSync(new URL("../../homelab.example.yaml", import.meta.url), "utf8")
const schema = configJsonSchema()
const property = (node: unknown, ...keys: Array<string>): Json => {
  let current = node as Json
  for (const key of keys) {
    if (key === "[]") current = current.items as Json
    else current = (current.properties as Record<string, Json>)[key] as Json
  }
  return current
}

/** Every property schema under `node`, with its dotted path. */
const allProperties = (node: Json, path: string, out: Array<[string, Json]>): Array<[string, Json]> => {
  for (const [key, value] of Object.entries((node.properties ?? {}) as Record<string, Json>)) {
    out.push([`${path}${key}`, value])
    allProperties(value, `${path}${key}.`, out)
    if (value.items !== undefined) allProperties(value.items as Json, `${path}${key}[].`, out)
  }
  return out
}

describe("configJsonSchema", () => {
  it("is a draft 2020-12 document that rejects unknown keys at every level", () => {
    assert.strictEqual(schema.$schema, "https://json-schema.org/draft/2020-12/schema")
    assert.strictEqual(schema.type, "object")
    assert.strictEqual(schema.title, "homelab.yaml")
    assert.strictEqual(schema.additionalProperties, false)
    assert.deepStrictEqual(schema.required, ["proxmox", "image", "nodes"])
    assert.deepStrictEqual(Object.keys(schema.properties as Json), [
      "proxmox",
      "ssh",
      "image",
      "vm",
      "nodes",
      "health",
      "safety",
      "k3s"
    ])
    const nodes = property(schema, "nodes")
    assert.strictEqual(nodes.minItems, 1)
    assert.strictEqual(property(nodes, "[]").additionalProperties, false)
    assert.deepStrictEqual(property(nodes, "[]").required, ["name"])
    assert.strictEqual(property(schema, "vm").additionalProperties, false)
  })

  it("carries descriptions, defaults, enums and patterns from the Effect schema", () => {
    const missing = allProperties(schema, "", [])
      .filter(([, value]) => typeof value.description !== "string")
      .map(([path]) => path)
    assert.deepStrictEqual(missing, [])
    const cpuRatio = property(schema, "nodes", "[]", "cpuRatio")
    assert.deepStrictEqual(
      [cpuRatio.type, cpuRatio.exclusiveMinimum, cpuRatio.maximum, cpuRatio.default],
      ["number", 0, 1, 0.5]
    )
    assert.deepStrictEqual(property(schema, "nodes", "[]", "bridges").default, ["vmbr0"])
    assert.strictEqual(property(schema, "ssh", "user").default, "root")
    assert.strictEqual(property(schema, "ssh", "knownHosts", "mode").default, "accept-new")
    assert.deepStrictEqual(property(schema, "health", "stopped").enum, ["recreate", "start", "keep"])
    assert.strictEqual(property(schema, "health", "graceSeconds").default, 180)
    assert.strictEqual(property(schema, "safety", "requireTag").default, "homelab-managed")
    assert.strictEqual(property(schema, "nodes", "[]", "name").pattern, "^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$")
    assert.strictEqual(property(schema, "proxmox", "auth", "secret").type, "string")
    assert.include(String(property(schema, "proxmox", "auth", "secret").description), "${PROXMOX_TOKEN_SECRET}")
  })

  it("validates homelab.example.yaml, and the checker rejects a broken copy", () => {
    const example = parse(exampleText) as Json
    assert.deepStrictEqual(checkJsonSchema(schema, example), [])
    const broken = parse(
      exampleText.replace("  cpuType: host", "  cpuTyp: host").replace("stopped: recreate", "stopped: restart")
    ) as Json
    assert.deepStrictEqual(checkJsonSchema(schema, broken), [
      "$.vm: unexpected key cpuTyp",
      "$.health.stopped: not in enum"
    ])
  })
})

describe("homelab.example.yaml", () => {
  it.effect("parses with parseConfig given its one secret", () =>
    Effect.gen(function* () {
      const config = yield* parseConfig(exampleText, {
        env: { PROXMOX_TOKEN_SECRET: "d2a5c7e0-0000-4000-8000-000000000000" },
        source: "homelab.example.yaml"
      })
      assert.deepStrictEqual(
        config.nodes.flatMap((node) => node.vms.map((vm) => `${node.name}/${vm.name}/${vm.role}`)),
        ["pve1/k3s-vm-pve1/agent", "pve2/k3s-vm-pve2/agent", "pve3/k3s-vm-pve3-a/server", "pve3/k3s-vm-pve3-b/agent"]
      )
      assert.strictEqual(config.image.filename, "noble-server-cloudimg-amd64.qcow2")
      assert.strictEqual(config.proxmox.tls.mode, "fingerprint")
      assert.deepStrictEqual(config.vm.tags, ["homelab-managed", "k3s"])
      assert.deepStrictEqual(config.safety.protect, { names: ["k3s-vm-pve1"], vmids: [9000] })
    })
  )
})
