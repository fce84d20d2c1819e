// biome-ignore-all lint/suspicious/noTemplateCurlyInString: this file deals with literal ${VAR} references
import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { importEnv } from "../../src/config/importEnv.js"
import { parseDotenv } from "../../src/config/internal/dotenv.js"
import { parseConfig } from "../../src/config/parseConfig.js"

const seedEnv = readFileSync(new URL("./fixtures/seed.env", import.meta.url), "utf8")
const runtimeEnv = { PROXMOX_TOKEN_SECRET: "0b6a5c7e-1d2f-4a3b-9c8d-7e6f5a4b3c2d", CLOUD_PASSWORD: "s3cr3t pass#word" }

describe("importEnv", () => {
  it.effect("converts a three-node seed .env into homelab.yaml that parses back", () =>
    Effect.gen(function* () {
      const { yaml } = importEnv(seedEnv)
      const config = yield* parseConfig(yaml, { env: runtimeEnv, source: "imported.yaml" })
      assert.deepStrictEqual(config.proxmox.endpoints, [
        { url: "https://192.168.10.11:8006", host: "192.168.10.11", port: 8006 }
      ])
      assert.strictEqual(config.proxmox.auth.tokenId, "root@pam!seed")
      assert.strictEqual(Redacted.value(config.proxmox.auth.secret), runtimeEnv.PROXMOX_TOKEN_SECRET)
      assert.strictEqual(
        config.image.url,
        "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img"
      )
      assert.strictEqual(config.image.filename, "noble-server-cloudimg-amd64.qcow2")
      assert.strictEqual(config.image.storage, "local")
      assert.deepStrictEqual(
        [config.vm.nameTemplate, config.vm.diskSize, config.vm.user, config.vm.ipConfig],
        ["k3s-vm-{node}", "64G", "ubuntu", "ip=dhcp"]
      )
      assert.deepStrictEqual(config.vm.sshKeys, ["~/.ssh/id_ed25519.pub"])
      assert.strictEqual(Redacted.value(config.vm.password!), "s3cr3t pass#word")
      assert.deepStrictEqual(
        config.nodes.map((node) => [
          node.name,
          node.storage,
          node.imageStorage,
          node.cpuRatio,
          node.memoryRatio,
          node.bridges.join(","),
          node.vms[0]?.name
        ]),
        [
          ["pve1", "local-lvm", "local", 0.5, 0.5, "vmbr0,vmbr1", "k3s-vm-pve1"],
          ["pve2", "local-zfs", "local", 0.75, 0.6, "vmbr0", "k3s-vm-pve2"],
          ["pve3", "ceph-vm", "cephfs", 1, 0.5, "vmbr0,vmbr2", "k3s-vm-pve3"]
        ]
      )
      assert.strictEqual(config.k3s?.server.host, "192.168.10.50")
    })
  )

  it("never writes secret values and explains each variable in comments", () => {
    const { yaml } = importEnv(seedEnv)
    assert.notInclude(yaml, "0b6a5c7e-1d2f-4a3b-9c8d-7e6f5a4b3c2d")
    assert.notInclude(yaml, "s3cr3t")
    assert.include(yaml, "    secret: ${PROXMOX_TOKEN_SECRET}\n")
    assert.include(yaml, "  password: ${CLOUD_PASSWORD}\n")
    assert.include(yaml, "  - name: pve3  # NODE_3\n")
    assert.include(yaml, "    imageStorage: cephfs  # IMG_STORAGE_3\n")
    assert.include(yaml, "    bridges: [vmbr0, vmbr2]  # NETWORK_IFACES_3\n")
    assert.match(yaml, /^# homelab\.yaml, converted from the seed tool's \.env/u)
  })

  it("warns about unknown variables and the assumptions it made", () => {
    assert.deepStrictEqual(importEnv(seedEnv).warnings, [
      "K3S_CHANNEL (line 40) is not used by homelab.yaml and was ignored",
      "DEBUG (line 41) is not used by homelab.yaml and was ignored",
      "set PROXMOX_TOKEN_SECRET in the environment (the secret part of API_TOKEN)",
      "ISO_NAME noble-server-cloudimg-amd64.img is stored as noble-server-cloudimg-amd64.qcow2 (content import needs .qcow2)",
      "set CLOUD_PASSWORD in the environment (cloud-init password)"
    ])
  })

  it.effect("guesses a missing endpoint, skips nodes without NODE_n, fixes unit-less disk sizes, escapes ${", () =>
    Effect.gen(function* () {
      const { yaml, warnings } = importEnv(`NODE_1=pve1
STORAGE_2=local-lvm
API_TOKEN=ops@pve!apply=abc
API_URL=https://pve.example.org:8443/api2/json
VM_DISK_SIZE=32
VM_NAME_TEMPLATE=k3s-{NODE}-{INDEX}
CLOUD_IP_CONFIG=ip=dhcp
ISO_URL=https://example.org/debian-12-generic-amd64.qcow2
SSH_PUBKEY_PATH='~/keys/$\{odd}.pub'
`)
      assert.deepStrictEqual(warnings, [
        "STORAGE_2 ignored: there is no NODE_2",
        "set PROXMOX_TOKEN_SECRET in the environment (the secret part of API_TOKEN)",
        "VM_DISK_SIZE 32 has no unit: taken as 32G"
      ])
      const config = yield* parseConfig(yaml, { env: { PROXMOX_TOKEN_SECRET: "abc" } })
      assert.strictEqual(config.proxmox.endpoints[0]?.url, "https://pve.example.org:8443")
      assert.strictEqual(config.proxmox.auth.tokenId, "ops@pve!apply")
      assert.strictEqual(config.vm.diskSize, "32G")
      assert.strictEqual(config.vm.nameTemplate, "k3s-{node}-{index}")
      assert.strictEqual(config.nodes[0]?.vms[0]?.name, "k3s-pve1-1")
      assert.deepStrictEqual(config.vm.sshKeys, ["~/keys/${odd}.pub"])
      assert.strictEqual(config.image.filename, "debian-12-generic-amd64.qcow2")

      const bare = importEnv("NODE_1=pve7\n")
      assert.include(
        bare.warnings,
        "no PROXMOX_HOST or API_URL: proxmox.endpoint guessed as https://pve7:8006, check it"
      )
      assert.include(bare.yaml, "  endpoint: https://pve7:8006\n")
    })
  )
})

describe("parseDotenv", () => {
  it("follows dotenv quoting, export and comment rules", () => {
    const { entries, warnings } = parseDotenv(`# comment
export A=plain value # trailing comment
B="double \\"quoted\\" # not a comment\\nnext"
C='single $HOME \\n stays'
D=
E="multi
line"
not a line
F=a#b
`)
    assert.deepStrictEqual(
      entries.map((entry) => [entry.key, entry.value, entry.line]),
      [
        ["A", "plain value", 2],
        ["B", 'double "quoted" # not a comment\nnext', 3],
        ["C", "single $HOME \\n stays", 4],
        ["D", "", 5],
        ["E", "multi\nline", 6],
        ["F", "a#b", 9]
      ]
    )
    assert.deepStrictEqual(warnings, ["line 8: ignored, not KEY=value"])
  })
})
