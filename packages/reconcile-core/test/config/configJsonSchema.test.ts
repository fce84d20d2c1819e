// biome-ignore-all lint/suspicious/noTemplateCurlyInString: this file deals with literal ${VAR} references
import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { flagListsCover } from "@homelab/k3s-join"
import * as Effect from "effect/Effect"
import { configJsonSchema } from "../../src/config/configJsonSchema.js"
import { parseConfig } from "../../src/config/parseConfig.js"
import { baseEnv, issueAt, minimal, parseErr, parseOk, schemaErrors } from "./helpers.js"

type Json = Record<string, unknown>

const exampleText = readFileSync(new URL("../../homelab.example.yaml", import.meta.url), "utf8")
const schema = configJsonSchema()

/** The value schema at a path; a field wrapped for `${VAR}` references is unwrapped to its own alternative. */
const property = (node: unknown, ...keys: Array<string>): Json => {
  let current = node as Json
  for (const key of keys) {
    const container = Array.isArray(current.anyOf) ? (current.anyOf[0] as Json) : current
    current = (key === "[]" ? container.items : (container.properties as Record<string, Json>)[key]) as Json
  }
  return current
}
const innerOf = (field: Json): Json => (Array.isArray(field.anyOf) ? (field.anyOf[0] as Json) : field)

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
      "timeouts",
      "parallelism",
      "k3s"
    ])
    const nodes = property(schema, "nodes")
    assert.strictEqual(nodes.minItems, 1)
    assert.strictEqual(property(nodes, "[]").additionalProperties, false)
    assert.deepStrictEqual(property(nodes, "[]").required, ["name"])
    assert.strictEqual(innerOf(property(schema, "vm")).additionalProperties, false)
    assert.strictEqual(innerOf(property(schema, "vm", "cicustom")).additionalProperties, false)
    // an optional key may be left empty (`ssh:`), as parseConfig reads it: not set
    assert.deepStrictEqual((property(schema, "ssh").anyOf as Array<Json>)[1], { type: "null" })
  })

  it("carries descriptions, defaults, enums and patterns from the Effect schema", () => {
    const missing = allProperties(schema, "", [])
      .filter(([, value]) => typeof value.description !== "string")
      .map(([path]) => path)
    assert.deepStrictEqual(missing, [])
    const cpuRatio = property(schema, "nodes", "[]", "cpuRatio")
    assert.deepStrictEqual(
      [innerOf(cpuRatio).type, innerOf(cpuRatio).exclusiveMinimum, innerOf(cpuRatio).maximum, cpuRatio.default],
      ["number", 0, 1, 0.5]
    )
    assert.deepStrictEqual(property(schema, "nodes", "[]", "bridges").default, ["vmbr0"])
    assert.strictEqual(property(schema, "ssh", "user").default, "root")
    assert.strictEqual(property(schema, "ssh", "knownHosts", "mode").default, "accept-new")
    assert.deepStrictEqual(innerOf(property(schema, "health", "stopped")).enum, ["recreate", "start", "keep"])
    assert.deepStrictEqual(innerOf(property(schema, "image", "transfer")).enum, ["download-url", "upload"])
    assert.strictEqual(property(schema, "health", "graceSeconds").default, 180)
    assert.strictEqual(property(schema, "safety", "requireTag").default, "homelab-managed")
    assert.strictEqual(
      innerOf(property(schema, "nodes", "[]", "name")).pattern,
      "^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$"
    )
    assert.strictEqual(innerOf(property(schema, "vm", "user")).pattern, "^[a-z_][a-z0-9_-]{0,30}$")
    assert.strictEqual(property(schema, "proxmox", "auth", "secret").type, "string")
    assert.include(String(property(schema, "proxmox", "auth", "secret").description), "${PROXMOX_TOKEN_SECRET}")
  })

  it("validates homelab.example.yaml with ajv; a broken copy is rejected at the broken keys", () => {
    assert.deepStrictEqual(schemaErrors(exampleText), [])
    const broken = exampleText
      .replace("  cpuType: host", "  cpuTyp: host")
      .replace("stopped: recreate", "stopped: restart")
    const errors = schemaErrors(broken) ?? []
    assert.include(errors, "/vm must NOT have additional properties")
    assert.isTrue(errors.some((error) => error.startsWith("/health/stopped")))
  })

  it("leaves unknown k3s flags alone exactly for the k3s versions the flag lists do not cover", () => {
    const condition = (property(schema, "k3s").if ?? innerOf(property(schema, "k3s")).if) as Json
    const pattern = new RegExp(property(condition, "version").pattern as string, "u")
    const versions = ["v0.9.1+k3s1", "v1.28.15+k3s1", "v1.36.0+k3s1", "v1.36.12+k3s2", "v1.37.0+k3s1"]
    for (const minor of [39, 40, 99, 100, 136]) versions.push(`v1.${minor}.1+k3s1`)
    versions.push("v2.0.0+k3s1", "v10.3.1+k3s1")
    for (const version of versions) {
      assert.strictEqual(pattern.test(version), !flagListsCover(version), version)
    }
  })

  it.effect("agrees with config check on tls: { fingerprint, insecure: true } (both reject)", () =>
    Effect.gen(function* () {
      const text = minimal.replace(
        "  auth:",
        `  tls: { fingerprint: "${"AB:".repeat(31)}CD", insecure: true }\n  auth:`
      )
      const error = yield* parseErr(text)
      assert.strictEqual(issueAt(error, "proxmox.tls")?.code, "conflict")
      assert.isTrue((schemaErrors(text) ?? []).some((e) => e.startsWith("/proxmox/tls")))
      // insecure: false next to a fingerprint is no conflict, for either; each mode alone is fine
      yield* parseOk(text.replace("insecure: true", "insecure: false"))
      yield* parseOk(minimal.replace("  auth:", "  tls: { insecure: true }\n  auth:"))
      yield* parseOk(minimal.replace("  auth:", "  tls: { ca: ./pve-root-ca.pem, insecure: false }\n  auth:"))
      yield* parseErr(minimal.replace("  auth:", "  tls: { ca: ./pve-root-ca.pem, insecure: true }\n  auth:"))
    })
  )

  it.effect("agrees with config check on port: ${SSH_PORT} and other interpolated non-strings (both accept)", () =>
    Effect.gen(function* () {
      const text = `${minimal}ssh:\n  port: \${SSH_PORT}\n  agent: \${USE_AGENT:-false}\nhealth:\n  stopped: \${ON_STOP}\n  graceSeconds: \${GRACE}\n`
      const config = yield* parseOk(text, { ...baseEnv, SSH_PORT: "2222", ON_STOP: "keep", GRACE: "60" })
      assert.deepStrictEqual(
        [config.ssh.port, config.ssh.agent, config.health.stopped, config.health.graceSeconds],
        [2222, false, "keep", 60]
      )
      // and both still reject a literal of the wrong type
      const wrong = yield* parseErr(`${minimal}ssh:\n  port: twenty-two\n`)
      assert.strictEqual(issueAt(wrong, "ssh.port")?.code, "invalid-type")
    })
  )

  it.effect(
    "agrees on the cross-field rules it can state: endpoints, checksumAlgorithm, file names, templates, k3s flags",
    () =>
      Effect.gen(function* () {
        yield* parseErr(
          minimal.replace("  endpoint: https://pve1.lan\n", "  endpoint: https://a\n  endpoints: [https://b]\n")
        )
        yield* parseErr(minimal.replace("  endpoint: https://pve1.lan\n", ""))
        yield* parseErr(minimal.replace("image:\n", "image:\n  checksumAlgorithm: sha256\n"))
        yield* parseErr(minimal.replace("image:\n", "image:\n  filename: noble.img\n"))
        yield* parseErr(minimal.replace("image:\n", "image:\n  content: iso\n  filename: noble.qcow2\n"))
        yield* parseOk(minimal.replace("image:\n", "image:\n  content: iso\n  filename: NOBLE.IMG\n"))
        yield* parseErr(`${minimal}vm:\n  nameTemplate: "k3s-{host}"\n`)
        yield* parseOk(`${minimal}vm:\n  nameTemplate: "k3s-{node}-{index}"\n`)
        // a flag a k3s command the list reaches does not define (one word: the editor sees it as k3s would)
        const k3s = (lists: string) => `${minimal}k3s:\n  role: server\n${lists}`
        yield* parseErr(k3s("  installFlags: [--disable=traefik]\n"))
        yield* parseErr(k3s("  agentFlags: [-tls-san, k3s.lan]\n"))
        yield* parseErr(k3s("  agentFlags: [--etcd-s3-bucket=backups]\n"))
        yield* parseErr(k3s("  serverFlags: [--disable-apiserver-lb]\n"))
        yield* parseErr(k3s("  serverFlags: [--cluster-init]\n"))
        yield* parseOk(
          k3s("  serverFlags: [--disable=traefik, --etcd-s3-bucket=backups]\n  agentFlags: [--disable-apiserver-lb]\n")
        )
        // a flag no k3s defines: a typo, a removed flag; a value after a flag is no flag
        yield* parseErr(k3s('  agentFlags: [--node-lable, "tier=gold"]\n'))
        yield* parseErr(k3s("  serverFlags: [--no-deploy=traefik]\n"))
        yield* parseOk(k3s('  agentFlags: [--node-label, "tier=gold", -i, 10.0.0.5]\n'))
        // a flag whose name comes from the environment: the editor cannot tell, config check does
        yield* parseOk(k3s('  agentFlags: ["--${FLAG}=tier=gold"]\n'), { ...baseEnv, FLAG: "node-label" })
      })
  )

  it.effect("leaves the rules that compare values across the document to config check, as documented", () =>
    Effect.gen(function* () {
      const duplicateNodes = yield* parseErr(`${minimal}  - name: PVE1\n`, baseEnv, {
        checkOnly: "unique node names"
      })
      assert.strictEqual(duplicateNodes.issues[0]?.code, "duplicate")
      const range = yield* parseErr(`${minimal}vm:\n  vmidRange: { lower: 200, upper: 100 }\n`, baseEnv, {
        checkOnly: "vmidRange order"
      })
      assert.strictEqual(range.issues[0]?.path, "vm.vmidRange")
    })
  )
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
      assert.strictEqual(config.image.filename, "noble-server-cloudimg-amd64-3f2ec5b6ef4a.qcow2")
      assert.strictEqual(config.image.transfer, "download-url")
      assert.strictEqual(config.proxmox.tls.mode, "fingerprint")
      assert.deepStrictEqual(config.vm.tags, ["homelab-managed", "k3s"])
      assert.deepStrictEqual(config.safety.protect, { names: ["k3s-vm-pve1"], vmids: [9000] })
      assert.deepStrictEqual(config.k3s?.installFlags, ["--node-label=homelab=true"])
      assert.deepStrictEqual(config.k3s?.serverFlags, ["--write-kubeconfig-mode", "644", "--disable=traefik"])
      assert.deepStrictEqual(config.k3s?.agentFlags, ["--node-label=node-role=worker"])
    })
  )
})
