// biome-ignore-all lint/suspicious/noTemplateCurlyInString: this file deals with literal ${VAR} references
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { formatConfigWarning } from "../../src/config/ConfigWarning.js"
import { secretFields } from "../../src/config/internal/issues.js"
import { parseConfigWithWarnings } from "../../src/config/parseConfig.js"
import { baseEnv, minimal, secretValue } from "./helpers.js"

const warningsOf = (text: string, env: Record<string, string> = baseEnv) =>
  Effect.map(parseConfigWithWarnings(text, { env }), (parsed) =>
    parsed.warnings.map((warning) => formatConfigWarning("homelab.yaml", warning))
  )

describe("config warnings", () => {
  it.effect("none for the minimal document (secret from ${VAR}, ssh.user root by default)", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* warningsOf(minimal), [])
    })
  )

  it.effect(
    "a secret written as its value: one warning per field, naming it and its ${VAR} form, never the value",
    () =>
      Effect.gen(function* () {
        const text = `${minimal.replace("${PROXMOX_TOKEN_SECRET}", secretValue)}ssh:
  passphrase: "key phrase"
vm:
  password: "\${CLOUD_PASSWORD:-fallback}"
k3s:
  role: server
  token: K10abc::server:literal
`
        const parsed = yield* parseConfigWithWarnings(text, { env: {} })
        assert.strictEqual(Redacted.value(parsed.config.proxmox.auth.secret), secretValue)
        const lines = parsed.warnings.map((warning) => formatConfigWarning("homelab.yaml", warning))
        assert.deepStrictEqual(lines, [
          "homelab.yaml:5:13 proxmox.auth.secret: a secret written in the file: write ${PROXMOX_TOKEN_SECRET} there and export PROXMOX_TOKEN_SECRET",
          "homelab.yaml:11:15 ssh.passphrase: a secret written in the file: write ${SSH_KEY_PASSPHRASE} there and export SSH_KEY_PASSPHRASE",
          "homelab.yaml:13:13 vm.password: a secret written in the file as a ${VAR:-default}'s default: write ${CLOUD_PASSWORD} there and export CLOUD_PASSWORD",
          "homelab.yaml:16:10 k3s.token: a secret written in the file: write ${K3S_TOKEN} there and export K3S_TOKEN"
        ])
        assert.deepStrictEqual(
          parsed.warnings.map((warning) => warning.code),
          ["literal-secret", "literal-secret", "literal-secret", "literal-secret"]
        )
        for (const line of lines) {
          for (const value of [secretValue, "key phrase", "fallback", "literal"]) assert.notInclude(line, value)
        }
      })
  )

  it.effect("a reference with an empty default is no secret written in the file; text around a reference is", () =>
    Effect.gen(function* () {
      const text = `${minimal}vm: { password: "pre\${CLOUD_PASSWORD}" }\nk3s: { role: server, token: "\${K3S_TOKEN:-}" }\n`
      assert.deepStrictEqual(
        yield* warningsOf(text, { ...baseEnv, CLOUD_PASSWORD: "p", K3S_TOKEN: "K10x::server:y" }),
        [
          "homelab.yaml:10:17 vm.password: a secret written in the file around its ${VAR} reference: write ${CLOUD_PASSWORD} there and export CLOUD_PASSWORD"
        ]
      )
    })
  )

  it.effect("every secret field (decoded into Redacted) has its variable", () =>
    Effect.gen(function* () {
      const text = `${minimal}ssh: { passphrase: "\${A}" }\nvm: { password: "\${A}" }\nk3s: { role: server, token: "\${A}" }\n`
      const { config } = yield* parseConfigWithWarnings(text, { env: { ...baseEnv, A: "a" } })
      const redacted: Array<string> = []
      const walk = (value: unknown, path: ReadonlyArray<string>): void => {
        if (Redacted.isRedacted(value)) redacted.push(path.join("."))
        else if (value !== null && typeof value === "object")
          for (const [key, child] of Object.entries(value)) walk(child, [...path, key])
      }
      walk(config, [])
      assert.deepStrictEqual(redacted.sort(), Object.keys(secretFields).sort())
    })
  )

  it.effect(
    "ssh.user other than root: where pvesh/qm over SSH may run (fallback: ssh, or an iso image), not else",
    () =>
      Effect.gen(function* () {
        const admin = `${minimal}ssh: { user: admin }\n`
        const [fallback] = yield* warningsOf(admin)
        assert.strictEqual(
          fallback,
          'homelab.yaml:10:14 ssh.user: "admin", not root: pvesh/qm over SSH need root; the fallback to them when a node\'s API fails (proxmox.fallback: ssh) would fail (labs whose API answers never use it): set ssh.user: root, or proxmox.fallback: off'
        )
        const iso = yield* warningsOf(
          admin.replace("noble-server-cloudimg-amd64.img\n", "noble-server-cloudimg-amd64.img\n  content: iso\n")
        )
        assert.lengthOf(iso, 1)
        assert.include(iso[0], "creating the VMs from an iso image (image.content: iso) goes over SSH as root")
        const off = admin.replace(
          "    secret: ${PROXMOX_TOKEN_SECRET}\n",
          "    secret: ${PROXMOX_TOKEN_SECRET}\n  fallback: off\n"
        )
        assert.include(off, "fallback: off")
        assert.deepStrictEqual(yield* warningsOf(off), [])
        assert.deepStrictEqual(yield* warningsOf(`${minimal}ssh: { user: root }\n`), [])
      })
  )
})
