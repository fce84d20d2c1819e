// biome-ignore-all lint/suspicious/noTemplateCurlyInString: this file deals with literal ${VAR} references
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { parseConfig } from "../../src/config/parseConfig.js"
import { baseEnv, issueAt, minimal, parseErr, parseOk, secretValue } from "./helpers.js"

describe("${ENV} interpolation", () => {
  it.effect("substitutes variables, applies :- defaults and keeps $${ as a literal ${", () =>
    Effect.gen(function* () {
      const config = yield* parseOk(
        `${minimal}    address: \${NODE_IP}
    storage: \${STORAGE:-local-zfs}
    imageStorage: \${IMAGE_STORAGE:-local}
ssh:
  port: \${SSH_PORT}
  agent: \${USE_AGENT}
  user: "\${SSH_USER}"
k3s:
  server: { host: 10.0.0.9 }
  installFlags: ["--node-label=note=$\${not-a-var}", "--node-name=\${HOSTNAME_PREFIX}-x"]
`,
        {
          PROXMOX_TOKEN_SECRET: secretValue,
          NODE_IP: "10.0.0.11",
          IMAGE_STORAGE: "",
          SSH_PORT: "2222",
          USE_AGENT: "true",
          SSH_USER: "admin",
          HOSTNAME_PREFIX: "lab"
        }
      )
      const node = config.nodes[0]!
      assert.strictEqual(node.address, "10.0.0.11")
      assert.strictEqual(node.storage, "local-zfs")
      assert.strictEqual(node.imageStorage, "local")
      assert.strictEqual(config.ssh.port, 2222)
      assert.strictEqual(config.ssh.agent, true)
      assert.strictEqual(config.ssh.user, "admin")
      assert.deepStrictEqual(config.k3s?.installFlags, ["--node-label=note=${not-a-var}", "--node-name=lab-x"])
    })
  )

  it.effect("names the missing variable and the path that uses it, for every use", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(
        `${minimal}vm:
  password: \${CLOUD_PASSWORD}
  nameserver: "\${DNS_1} \${DNS_2:-1.1.1.1}"
`,
        {},
        { checkOnly: "missing variables" }
      )
      assert.strictEqual(error.reason._tag, "ConfigMissingVariables")
      if (error.reason._tag === "ConfigMissingVariables") {
        assert.deepStrictEqual(error.reason.variables, ["PROXMOX_TOKEN_SECRET", "CLOUD_PASSWORD", "DNS_1"])
      }
      assert.deepStrictEqual(issueAt(error, "proxmox.auth.secret"), {
        code: "missing-variable",
        path: "proxmox.auth.secret",
        line: 5,
        column: 13,
        expected: 'environment variable `PROXMOX_TOKEN_SECRET` to be set (used in "${PROXMOX_TOKEN_SECRET}")',
        found: "no such variable",
        suggestion: "export PROXMOX_TOKEN_SECRET=... or write ${PROXMOX_TOKEN_SECRET:-default}"
      })
      assert.deepStrictEqual(
        error.issues.map((issue) => `${issue.line}:${issue.column} ${issue.path}`),
        ["5:13 proxmox.auth.secret", "11:13 vm.password", "12:15 vm.nameserver"]
      )
      assert.include(
        error.message,
        'homelab.yaml:11:13 vm.password: expected environment variable `CLOUD_PASSWORD` to be set (used in "${CLOUD_PASSWORD}"), found no such variable'
      )
    })
  )

  it.effect("never reads process.env", () =>
    Effect.gen(function* () {
      process.env.HOMELAB_CONFIG_TEST_ONLY = "from-process-env"
      const error = yield* parseErr(
        minimal.replace("${PROXMOX_TOKEN_SECRET}", "${HOMELAB_CONFIG_TEST_ONLY}"),
        {},
        {
          checkOnly: "a missing variable"
        }
      )
      delete process.env.HOMELAB_CONFIG_TEST_ONLY
      assert.deepStrictEqual(
        error.issues.map((issue) => [issue.code, issue.path]),
        [["missing-variable", "proxmox.auth.secret"]]
      )
    })
  )

  it.effect("reports unsupported ${...} forms", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(
        `${minimal}vm:
  nameserver: "\${DNS:?required}"
  searchdomain: "lab\${"
`,
        baseEnv,
        { checkOnly: "interpolation syntax inside free-text strings" }
      )
      assert.deepStrictEqual(
        error.issues.map((issue) => [issue.code, issue.path, issue.line, issue.column, issue.expected]),
        [
          [
            "interpolation-syntax",
            "vm.nameserver",
            11,
            15,
            "${DNS:?required}: only ${NAME} and ${NAME:-default} are supported (NAME is [A-Za-z_][A-Za-z0-9_]*)"
          ],
          ["interpolation-syntax", "vm.searchdomain", 12, 17, "an unterminated ${ (write $${ for a literal ${)"]
        ]
      )
    })
  )

  it.effect("shows interpolated values only as their ${...} text", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(
        `${minimal}    storage: \${STORE}
    cpuRatio: \${RATIO}
`,
        { PROXMOX_TOKEN_SECRET: secretValue, STORE: "not a storage!", RATIO: "7" },
        { checkOnly: "values that come from the environment" }
      )
      assert.deepStrictEqual(
        error.issues.map((issue) => [issue.path, issue.found]),
        [
          ["nodes[0].storage", '"${STORE}" (interpolated; value hidden)'],
          ["nodes[0].cpuRatio", '"${RATIO}" (interpolated; value hidden)']
        ]
      )
      assert.notInclude(error.message, "not a storage!")
    })
  )

  it.effect("a variable that is set but empty is named as empty, not only as a value that is hidden", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(
        minimal,
        { PROXMOX_TOKEN_SECRET: "" },
        { checkOnly: "values that come from the environment" }
      )
      assert.deepStrictEqual(
        error.issues.map((issue) => [issue.path, issue.found, issue.suggestion]),
        [
          [
            "proxmox.auth.secret",
            '"${PROXMOX_TOKEN_SECRET}", which comes out empty (PROXMOX_TOKEN_SECRET is set to "")',
            "export PROXMOX_TOKEN_SECRET with its value (an empty one is the same as none here)"
          ]
        ]
      )
    })
  )
})

describe("secrets", () => {
  it.effect("are Redacted in the config and absent from JSON.stringify and String()", () =>
    Effect.gen(function* () {
      const config = yield* parseConfig(
        `${minimal}ssh:
  passphrase: \${SSH_PASSPHRASE}
vm:
  password: \${CLOUD_PASSWORD}
k3s:
  server: { host: 10.0.0.9 }
  token: \${K3S_TOKEN}
`,
        {
          env: {
            PROXMOX_TOKEN_SECRET: secretValue,
            SSH_PASSPHRASE: "passphrase-value-1",
            CLOUD_PASSWORD: "password-value-2",
            K3S_TOKEN: "K10abc::server:token-value-3"
          }
        }
      )
      assert.isTrue(Redacted.isRedacted(config.proxmox.auth.secret))
      assert.strictEqual(Redacted.value(config.ssh.passphrase!), "passphrase-value-1")
      assert.strictEqual(Redacted.value(config.vm.password!), "password-value-2")
      assert.strictEqual(Redacted.value(config.k3s!.token!), "K10abc::server:token-value-3")
      const json = JSON.stringify(config)
      for (const leaked of [secretValue, "passphrase-value-1", "password-value-2", "token-value-3"]) {
        assert.notInclude(json, leaked)
        assert.notInclude(String(config.proxmox.auth.secret), leaked)
      }
      assert.include(json, '"secret":"<redacted>"')
    })
  )

  it.effect("never appear in error text, even when a literal secret has the wrong type or another key fails", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(
        `${minimal.replace("${PROXMOX_TOKEN_SECRET}", "12345678")}vm:
  password: literal-password-value
  diskSize: \${DISK}
`,
        { DISK: "sixty-four" }
      )
      assert.deepStrictEqual(
        error.issues.map((issue) => [issue.path, issue.code, issue.found]),
        [
          ["proxmox.auth.secret", "invalid-type", "a number (secret; value hidden)"],
          ["vm.diskSize", "invalid-value", '"${DISK}" (interpolated; value hidden)']
        ]
      )
      const text = `${error.message}\n${JSON.stringify(error)}\n${String(error)}`
      for (const leaked of ["12345678", "literal-password-value", "sixty-four"]) assert.notInclude(text, leaked)
    })
  )
})
