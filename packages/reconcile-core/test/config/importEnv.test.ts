// biome-ignore-all lint/suspicious/noTemplateCurlyInString: this file deals with literal ${VAR} references
import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { importEnv } from "../../src/config/importEnv.js"
import { atomsOf, parseDotenv } from "../../src/config/internal/dotenv.js"
import { desiredFromConfig } from "../../src/desiredFromConfig.js"
import { parseOk } from "./helpers.js"

const seedToolExample = readFileSync(new URL("./fixtures/seed-tool-example.env", import.meta.url), "utf8")
const handWritten = readFileSync(new URL("./fixtures/seed.env", import.meta.url), "utf8")
const runtimeEnv = { PROXMOX_TOKEN_SECRET: "5d1a9b0c-7e2f-4c3d-8a9b-0c1d2e3f4a5b", CLOUD_PASSWORD: "changeme#1" }

describe("importEnv: the seed tool's example .env", () => {
  it.effect("gives a valid homelab.yaml (config check and the JSON Schema) asking for what the seed tool built", () =>
    Effect.gen(function* () {
      const { yaml } = importEnv(seedToolExample)
      const config = yield* parseOk(yaml, runtimeEnv)
      // STORAGE_n is where the image goes, IMG_STORAGE_n where the VM disks go
      assert.deepStrictEqual(
        config.nodes.map((node) => [node.name, node.imageStorage, node.storage, node.bridges.join(","), node.cpuRatio]),
        [
          ["pve", "local", "local-zfs", "vmbr0,vmbr1", 0.5],
          ["still-fawn", "local", "local-lvm", "vmbr0", 0.8],
          ["chief-horse", "local", "local-lvm", "vmbr0,vmbr1", 0.75]
        ]
      )
      assert.deepStrictEqual(
        [config.image.storage, config.image.content, config.image.transfer, config.image.filename],
        ["local", "import", "upload", "noble-server-cloudimg-amd64.qcow2"]
      )
      // the API at <node>.maas:8006 without certificate checks; SSH as SSH_USER with SSH_KEY_PATH
      assert.deepStrictEqual(
        config.nodes.map((node) => [node.api.url, node.address]),
        [
          ["https://pve.maas:8006", "pve"],
          ["https://still-fawn.maas:8006", "still-fawn"],
          ["https://chief-horse.maas:8006", "chief-horse"]
        ]
      )
      assert.deepStrictEqual(config.proxmox.tls, { mode: "insecure" })
      assert.strictEqual(config.proxmox.auth.tokenId, "root@pam!provision")
      assert.deepStrictEqual([config.ssh.user, config.ssh.privateKey], ["root", "~/.ssh/id_rsa"])
      // cloud-init as the tool set it
      assert.deepStrictEqual(
        [config.vm.nameTemplate, config.vm.diskSize, config.vm.user, config.vm.ipConfig, config.vm.sshKeys],
        ["k3s-vm-{node}", "200G", "ubuntu", "ip=dhcp", ["~/.ssh/id_rsa.pub"]]
      )
      assert.strictEqual(Redacted.value(config.vm.password!), "changeme#1")
      assert.deepStrictEqual(config.vm.cicustom, { user: "local:snippets/install-k3sup-qemu-agent.yaml" })
      // k3s: servers, with the tool's flags, joining K3S_EXISTING_NODE_IP (token read over SSH as ubuntu)
      assert.deepStrictEqual(config.k3s?.server, { host: "192.168.4.212", port: 22, user: "ubuntu", apiPort: 6443 })
      assert.strictEqual(config.k3s?.role, "server")
      assert.deepStrictEqual(config.k3s?.installFlags, [])
      assert.deepStrictEqual(config.k3s?.serverFlags, ["--write-kubeconfig-mode", "644", "--disable=traefik"])
      assert.strictEqual(config.k3s?.token, undefined)

      const desired = desiredFromConfig(config, { sshKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdQ me@laptop"] })
      assert.deepStrictEqual(
        desired.nodes.map((node) => [node.name, node.image.storage, node.image.transfer, node.vms[0]?.storage]),
        [
          ["pve", "local", "upload", "local-zfs"],
          ["still-fawn", "local", "upload", "local-lvm"],
          ["chief-horse", "local", "upload", "local-lvm"]
        ]
      )
      assert.deepStrictEqual(desired.nodes[0]?.vms[0]?.cloudInit.cicustom, {
        user: "local:snippets/install-k3sup-qemu-agent.yaml"
      })
      assert.deepStrictEqual(
        desired.nodes.flatMap((node) => node.vms.map((vm) => [vm.name, vm.role, vm.diskGiB])),
        [
          ["k3s-vm-pve", "server", 200],
          ["k3s-vm-still-fawn", "server", 200],
          ["k3s-vm-chief-horse", "server", 200]
        ]
      )
    })
  )

  it("never writes a secret, says the certificate is not checked, and prints the fingerprint command", () => {
    const { yaml, warnings } = importEnv(seedToolExample)
    assert.notInclude(yaml, "5d1a9b0c")
    assert.notInclude(yaml, "changeme")
    assert.include(yaml, "    secret: ${PROXMOX_TOKEN_SECRET}\n")
    assert.include(yaml, "  password: ${CLOUD_PASSWORD}\n")
    assert.include(yaml, "  tls: { insecure: true }\n")
    assert.include(yaml, "The seed tool did not check the API certificate")
    const fingerprint =
      "openssl s_client -connect pve.maas:8006 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
    assert.include(yaml, fingerprint)
    assert.isTrue(warnings.some((warning) => warning.includes("tls.fingerprint") && warning.includes(fingerprint)))
    assert.include(yaml, "    storage: local-zfs  # IMG_STORAGE_1: VM disks and the cloud-init drive (qm importdisk)\n")
    assert.include(yaml, '  serverFlags: [--write-kubeconfig-mode, "644", --disable=traefik]\n')
  })

  it("warns about exactly what needs the user", () => {
    assert.deepStrictEqual(importEnv(seedToolExample).warnings, [
      "set PROXMOX_TOKEN_SECRET in the environment (the secret part of API_TOKEN)",
      "proxmox.tls.insecure: true, as the seed tool did not check certificates; pin it with tls.fingerprint (openssl s_client -connect pve.maas:8006 </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256) or tls.ca",
      "ISO_NAME noble-server-cloudimg-amd64.img is stored as noble-server-cloudimg-amd64.qcow2 (content import needs .qcow2)",
      "set CLOUD_PASSWORD in the environment (cloud-init password)"
    ])
  })
})

describe("importEnv: the seed tool's rules", () => {
  it.effect("reads nodes up to the first gap or missing ratio, and leaves out a node without IMG_STORAGE_n", () =>
    Effect.gen(function* () {
      const { yaml, warnings } = importEnv(`API_TOKEN=root@pam!p=s
NODE_1=pve1
IMG_STORAGE_1=local-lvm
CPU_RATIO_1=0.5
MEMORY_RATIO_1=0.5
NETWORK_IFACES_1=vmbr0
NODE_2=pve2
CPU_RATIO_2=0.5
MEMORY_RATIO_2=0.5
NETWORK_IFACES_2=vmbr0
NODE_4=pve4
IMG_STORAGE_4=local-lvm
`)
      const config = yield* parseOk(yaml, { PROXMOX_TOKEN_SECRET: "s" })
      assert.deepStrictEqual(
        config.nodes.map((node) => node.name),
        ["pve1"]
      )
      assert.include(
        warnings,
        "NODE_2 (pve2) left out: IMG_STORAGE_2 is not set, so the seed tool created no VM there; add it under nodes: with a storage to have one"
      )
      assert.include(
        warnings,
        "NODE_4 ignored: the seed tool reads NODE_1, NODE_2, … up to the first one missing (NODE_3)"
      )
      const ratio = importEnv("NODE_1=a\nIMG_STORAGE_1=x\nCPU_RATIO_1=1\nNODE_2=b\n")
      assert.include(
        ratio.warnings,
        "NODE_1 and later nodes ignored: MEMORY_RATIO_1 is not set, where the seed tool stops reading nodes"
      )
    })
  )

  it.effect("takes the seed tool's defaults for unset variables and says so", () =>
    Effect.gen(function* () {
      const { yaml, warnings } = importEnv(`NODE_1=pve1
STORAGE_1=local
IMG_STORAGE_1=local-lvm
CPU_RATIO_1=0.5
MEMORY_RATIO_1=0.5
ISO_URL=https://example.org/debian-12-generic-amd64.qcow2
`)
      const config = yield* parseOk(yaml, { PROXMOX_TOKEN_SECRET: "s" })
      assert.deepStrictEqual([config.ssh.user, config.ssh.privateKey], ["root", "~/.ssh/id_rsa"])
      assert.deepStrictEqual(
        [config.vm.diskSize, config.vm.user, config.vm.ipConfig, config.vm.sshKeys, config.vm.password],
        ["200G", "ubuntu", "ip=dhcp", ["~/.ssh/id_rsa.pub"], undefined]
      )
      assert.strictEqual(config.k3s, undefined)
      assert.deepStrictEqual(config.nodes[0]?.bridges, ["vmbr0"])
      assert.include(yaml, "  user: root  # SSH_USER not set: the seed tool's default\n")
      assert.include(yaml, "# K3S_EXISTING_NODE_IP was not set: the seed tool joined nothing to k3s")
      assert.include(
        warnings,
        "no CLOUD_PASSWORD: the seed tool set the cloud-init password `ubuntu` then; homelab sets no password (add vm.password: ${CLOUD_PASSWORD} to keep one)"
      )
      assert.include(
        warnings,
        "NETWORK_IFACES_1 is not set: the seed tool created pve1's VM without a NIC; homelab gives it one on vmbr0"
      )
    })
  )

  it.effect("interpolates like load_dotenv: earlier variables are substituted, the others stay ${VAR} references", () =>
    Effect.gen(function* () {
      const { yaml, warnings } = importEnv(`NODE_1=pve1
POOL=tank
STORAGE_1=local
IMG_STORAGE_1=\${POOL}-vm
CPU_RATIO_1=0.5
MEMORY_RATIO_1=\${MEM_RATIO:-0.25}
SSH_PUBKEY_PATH=\${HOME}/.ssh/id_ed25519.pub
CLOUD_USER='\${ODD NAME:-ubuntu}'
`)
      const config = yield* parseOk(yaml, { PROXMOX_TOKEN_SECRET: "s", HOME: "/home/me" })
      assert.strictEqual(config.nodes[0]?.storage, "tank-vm")
      assert.strictEqual(config.nodes[0]?.memoryRatio, 0.25)
      assert.deepStrictEqual(config.vm.sshKeys, ["/home/me/.ssh/id_ed25519.pub"])
      assert.strictEqual(config.vm.user, "ubuntu")
      assert.include(yaml, "    - ${HOME}/.ssh/id_ed25519.pub\n")
      assert.include(
        warnings,
        "SSH_PUBKEY_PATH refers to ${HOME}, not set in the .env: kept as a reference that homelab reads from the environment"
      )
      assert.include(
        warnings,
        'CLOUD_USER (line 8): ${ODD NAME} is not a variable name homelab can read; replaced by "ubuntu", as python-dotenv would'
      )
    })
  )

  it.effect(
    "accepts PROXMOX_HOST / API_URL for the API, fixes unit-less disk sizes and ip=, escapes a literal ${",
    () =>
      Effect.gen(function* () {
        const { yaml, warnings } = importEnv(handWritten)
        const config = yield* parseOk(yaml, { PROXMOX_TOKEN_SECRET: "x", CLOUD_PASSWORD: "y" })
        assert.deepStrictEqual(config.proxmox.endpoints, [
          { url: "https://192.168.10.11:8006", host: "192.168.10.11", port: 8006 }
        ])
        assert.deepStrictEqual(
          config.nodes.map((node) => [node.name, node.api.url, node.imageStorage, node.storage]),
          [
            ["pve1", "https://192.168.10.11:8006", "local", "local-lvm"],
            ["pve2", "https://192.168.10.11:8006", "local", "local-zfs"],
            ["pve3", "https://192.168.10.11:8006", "cephfs", "ceph-vm"]
          ]
        )
        assert.include(warnings, "K3S_CHANNEL (line 40) is not used by homelab.yaml and was ignored")
        // the certificate to pin is the one of the endpoint the file talks to, not of a <node>.maas it never uses
        assert.include(yaml, "#   openssl s_client -connect 192.168.10.11:8006 </dev/null")
        assert.isTrue(
          warnings.some((w) => w.includes("tls.fingerprint (openssl s_client -connect 192.168.10.11:8006 "))
        )
        assert.include(
          warnings,
          'NETWORK_IFACES_3 "vmbr0 vmbr2" is split on spaces here; the seed tool split on commas only (one bridge named "vmbr0 vmbr2")'
        )

        const odd = importEnv(`NODE_1=pve1
IMG_STORAGE_1=local-lvm
CPU_RATIO_1=0.5
MEMORY_RATIO_1=0.5
API_URL=https://pve.example.org:8443/api2/json
VM_DISK_SIZE=32
VM_NAME_TEMPLATE=k3s-{NODE}-{INDEX}
CLOUD_IP_CONFIG=ip=10.0.0.5/24,gw=10.0.0.1
SSH_PUBKEY_PATH='~/keys/$\{odd.pub'
`)
        const parsed = yield* parseOk(odd.yaml, { PROXMOX_TOKEN_SECRET: "x" })
        assert.strictEqual(parsed.proxmox.endpoints[0]?.url, "https://pve.example.org:8443")
        assert.include(odd.yaml, "#   openssl s_client -connect pve.example.org:8443 </dev/null")
        assert.strictEqual(parsed.vm.diskSize, "32G")
        assert.include(odd.warnings, "VM_DISK_SIZE 32 has no unit: taken as 32G")
        assert.strictEqual(parsed.nodes[0]?.vms[0]?.name, "k3s-pve1-1")
        assert.strictEqual(parsed.vm.ipConfig, "ip=10.0.0.5/24,gw=10.0.0.1")
        // not a reference for python-dotenv (no closing brace): a literal, escaped so homelab keeps it
        assert.include(odd.yaml, "    - ~/keys/$${odd.pub\n")
        assert.deepStrictEqual(parsed.vm.sshKeys, ["~/keys/${odd.pub"])
      })
  )
})

describe("parseDotenv follows python-dotenv (the seed tool's parser)", () => {
  // Each case is one line followed by `Z=after`; the expected values are what python-dotenv 1.2.2 gives
  // (`dotenv_values(stream, interpolate=False)`), checked by running it. `true`: the line is skipped with a warning.
  const cases: ReadonlyArray<readonly [string, Record<string, string | undefined>, boolean]> = [
    ["A=plain", { A: "plain" }, false],
    ["export B=exported", { B: "exported" }, false],
    ["C = spaced   ", { C: "spaced" }, false],
    ["D=val # comment", { D: "val" }, false],
    ["E=val#x", { E: "val#x" }, false],
    ['F="double # not a comment"', { F: "double # not a comment" }, false],
    ['G="a\\"b"', { G: 'a"b' }, false],
    ['H="\\$x"', { H: "\\$x" }, false],
    ["I='single \\n stays'", { I: "single \\n stays" }, false],
    ["J='it\\'s'", { J: "it's" }, false],
    ['K="multi\nline"', { K: "multi\nline" }, false],
    ['L="tab\\tnew\\nline"', { L: "tab\tnew\nline" }, false],
    ["M='x' trailing", {}, true],
    ['N="unterminated', {}, true],
    ["O=", { O: "" }, false],
    ["P", { P: undefined }, false],
    ['Q="quoted" # comment', { Q: "quoted" }, false],
    ["'R'=quoted key", { R: "quoted key" }, false],
    ["=novalue", {}, true]
  ]

  for (const [line, expected, skipped] of cases) {
    it(`${JSON.stringify(line)}`, () => {
      const { entries, warnings } = parseDotenv(`${line}\nZ=after\n`)
      const values = Object.fromEntries(entries.map((entry) => [entry.key, entry.value]))
      assert.deepStrictEqual(values, { ...expected, Z: "after" })
      assert.deepStrictEqual(
        warnings,
        skipped ? ["line 1: skipped, not a statement python-dotenv (the seed tool's parser) can read"] : []
      )
    })
  }

  it("counts lines across multi-line values, comments, CRLF and a BOM; later assignments win", () => {
    const { entries, warnings } = parseDotenv(
      "\uFEFF# comment\r\nA=\"one\r\ntwo\"\r\n\r\nB=1 # x\r\n  export C='3'\r\nbad line\r\nB=2\r\n"
    )
    assert.deepStrictEqual(
      entries.map((entry) => [entry.key, entry.value, entry.line]),
      [
        ["A", "one\ntwo", 2],
        ["B", "1", 5],
        ["C", "3", 6],
        ["B", "2", 8]
      ]
    )
    assert.deepStrictEqual(warnings, [
      "line 7: skipped, not a statement python-dotenv (the seed tool's parser) can read"
    ])
  })

  it("splits values into literals and ${name} / ${name:-default} references like python-dotenv", () => {
    assert.deepStrictEqual(atomsOf("a${B}c${D:-e f}${}$X"), [
      { _tag: "Literal", text: "a" },
      { _tag: "Variable", name: "B", fallback: undefined },
      { _tag: "Literal", text: "c" },
      { _tag: "Variable", name: "D", fallback: "e f" },
      { _tag: "Variable", name: "", fallback: undefined },
      { _tag: "Literal", text: "$X" }
    ])
  })
})
