// biome-ignore-all lint/suspicious/noTemplateCurlyInString: this file deals with literal ${VAR} references
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { ConfigError } from "../../src/config/ConfigError.js"
import { maxAliasedValues } from "../../src/config/internal/yamlTree.js"
import { parseConfig } from "../../src/config/parseConfig.js"
import { baseEnv, issueAt, minimal, parseErr, parseOk, type SchemaVerdict, secretValue } from "./helpers.js"

describe("parseConfig defaults", () => {
  it.effect("applies every default to a minimal document", () =>
    Effect.gen(function* () {
      const config = yield* parseOk(minimal)
      assert.deepStrictEqual(config.proxmox.endpoints, [{ url: "https://pve1.lan:8006", host: "pve1.lan", port: 8006 }])
      assert.strictEqual(config.proxmox.auth.tokenId, "root@pam!homelab")
      assert.deepStrictEqual(
        [config.proxmox.auth.user, config.proxmox.auth.realm, config.proxmox.auth.tokenName],
        ["root", "pam", "homelab"]
      )
      assert.strictEqual(Redacted.value(config.proxmox.auth.secret), secretValue)
      assert.deepStrictEqual(config.proxmox.tls, { mode: "system" })
      assert.strictEqual(config.proxmox.fallback, "ssh")
      assert.deepStrictEqual(config.ssh, {
        user: "root",
        privateKey: "~/.ssh/id_ed25519",
        passphrase: undefined,
        agent: false,
        knownHosts: { mode: "accept-new", file: "~/.ssh/known_hosts" },
        port: 22,
        jump: undefined
      })
      assert.deepStrictEqual(config.image, {
        url: "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
        checksum: undefined,
        filename: "noble-server-cloudimg-amd64.qcow2",
        filenameSet: false,
        storage: "local",
        content: "import",
        volid: "local:import/noble-server-cloudimg-amd64.qcow2",
        transfer: "download-url"
      })
      assert.deepStrictEqual(config.vm, {
        nameTemplate: "k3s-vm-{node}",
        diskSize: "64G",
        user: "ubuntu",
        password: undefined,
        sshKeys: [],
        ipConfig: "ip=dhcp",
        nameserver: undefined,
        searchdomain: undefined,
        cicustom: undefined,
        tags: ["homelab-managed"],
        cpuType: "host",
        sockets: undefined,
        balloon: undefined,
        memoryOvercommit: 1,
        onboot: undefined,
        description: undefined,
        restart: "never",
        sshPort: 22,
        vmidRange: undefined
      })
      assert.deepStrictEqual(config.nodes, [
        {
          name: "pve1",
          address: undefined,
          api: config.proxmox.endpoints[0] as (typeof config.nodes)[number]["api"],
          sshPort: 22,
          storage: "local-lvm",
          imageStorage: "local",
          bridges: ["vmbr0"],
          cpuRatio: 0.5,
          memoryRatio: 0.5,
          vms: [
            {
              name: "k3s-vm-pve1",
              index: 1,
              role: "agent",
              cores: undefined,
              memory: undefined,
              diskSize: "64G",
              ipConfig: "ip=dhcp"
            }
          ]
        }
      ])
      assert.deepStrictEqual(config.health, {
        stopped: "recreate",
        paused: "recreate",
        prelaunch: "keep",
        agentMissing: "keep",
        graceSeconds: 180
      })
      assert.deepStrictEqual(config.safety, {
        maxRecreatePerRun: 1,
        protect: { names: [], vmids: [] },
        requireTag: "homelab-managed"
      })
      assert.strictEqual(config.k3s, undefined)
    })
  )

  it.effect("derives VM names, image storage, tags, TLS, checksum and k3s settings", () =>
    Effect.gen(function* () {
      const config = yield* parseOk(`proxmox:
  endpoints: [https://10.0.0.1:8443/api2/json, "https://[fd00::1]"]
  auth: { tokenId: homelab@pve!apply, secret: literal-secret }
  tls: { fingerprint: "${"ab:".repeat(31)}cd" }
  fallback: "off"
image:
  url: https://example.org/images/debian-12.qcow2?sig=1
  checksum: 0123456789ABCDEF0123456789abcdef01234567
  checksumAlgorithm: sha1
  storage: images
vm:
  nameTemplate: "k3s-{node}-{index}"
  tags: [Prod, k3s, prod, K3S]
  ipConfig: ip=10.0.0.50/24,gw=10.0.0.1,ip6=auto
safety:
  protect: [k3s-pve1-1, 101]
  requireTag: Owned-By-Homelab
nodes:
  - name: pve1
    imageStorage: local
    sshPort: 2222
    vms:
      - { role: server, cores: 4, memory: 8192, ipConfig: ip=dhcp }
      - { name: extra, diskSize: 128G, ipConfig: "ip=10.0.0.51/24" }
  - name: pve2
    bridges: [vmbr0, vmbr1]
    cpuRatio: 1
    vms: [{ ipConfig: ip=dhcp }]
k3s:
  server: { host: 10.0.0.60 }
  role: server
  version: v1.31.5+k3s1
  serverFlags: [--disable=traefik]
  token: \${K3S_TOKEN:-fallback-token}
`)
      assert.deepStrictEqual(
        config.proxmox.endpoints.map((endpoint) => endpoint.url),
        ["https://10.0.0.1:8443", "https://[fd00::1]:8006"]
      )
      assert.strictEqual(config.proxmox.endpoints[1]?.host, "fd00::1")
      assert.deepStrictEqual(config.proxmox.tls, { mode: "fingerprint", fingerprint: `${"AB:".repeat(31)}CD` })
      assert.strictEqual(config.proxmox.fallback, "off")
      assert.deepStrictEqual(config.image.checksum, {
        algorithm: "sha1",
        value: "0123456789abcdef0123456789abcdef01234567"
      })
      // the derived name carries the checksum's first 12 hex digits
      assert.strictEqual(config.image.filename, "debian-12-0123456789ab.qcow2")
      assert.strictEqual(config.image.volid, "images:import/debian-12-0123456789ab.qcow2")
      assert.deepStrictEqual(config.vm.tags, ["k3s", "owned-by-homelab", "prod"])
      assert.strictEqual(config.safety.requireTag, "owned-by-homelab")
      assert.deepStrictEqual(config.safety.protect, { names: ["k3s-pve1-1"], vmids: [101] })
      assert.deepStrictEqual(
        config.nodes.map((node) => [node.name, node.imageStorage, node.sshPort, node.bridges.join(",")]),
        [
          ["pve1", "local", 2222, "vmbr0"],
          ["pve2", "images", 22, "vmbr0,vmbr1"]
        ]
      )
      assert.deepStrictEqual(
        config.nodes.flatMap((node) => node.vms.map((vm) => [vm.name, vm.index, vm.role, vm.diskSize, vm.ipConfig])),
        [
          ["k3s-pve1-1", 1, "server", "64G", "ip=dhcp"],
          ["extra", 2, "server", "128G", "ip=10.0.0.51/24"],
          ["k3s-pve2-1", 1, "server", "64G", "ip=dhcp"]
        ]
      )
      assert.deepStrictEqual(config.nodes[0]?.vms[0]?.cores, 4)
      assert.deepStrictEqual(config.nodes[0]?.vms[0]?.memory, 8192)
      assert.strictEqual(config.k3s?.server?.user, "ubuntu")
      assert.strictEqual(config.k3s?.server?.apiPort, 6443)
      assert.strictEqual(config.k3s?.version, "v1.31.5+k3s1")
      assert.strictEqual(config.k3s?.installScriptUrl, "https://get.k3s.io")
      assert.deepStrictEqual([config.k3s?.installFlags, config.k3s?.serverFlags], [[], ["--disable=traefik"]])
      assert.strictEqual(Redacted.value(config.k3s!.token!), "fallback-token")
      assert.strictEqual(Redacted.value(config.proxmox.auth.secret), "literal-secret")
    })
  )

  it.effect("keeps an iso image name and treats an empty `key:` as not set", () =>
    Effect.gen(function* () {
      const config = yield* parseOk(
        `${minimal.replace("noble-server-cloudimg-amd64.img", "alpine.iso")}  - name: pve2
    vms:
image:
`
          .replace("image:\n  url", "image:\n  content: iso\n  url")
          .replace(/\nimage:\n$/u, "\nssh:\n")
      )
      assert.strictEqual(config.image.filename, "alpine.iso")
      assert.strictEqual(config.image.volid, "local:iso/alpine.iso")
      assert.deepStrictEqual(
        config.nodes.map((node) => node.vms.map((vm) => vm.name)),
        [["k3s-vm-pve1"], ["k3s-vm-pve2"]]
      )
      assert.strictEqual(config.ssh.user, "root")
    })
  )
  it.effect(
    "with image.checksum, the default file name carries its first 12 hex digits; image.filename is kept as written",
    () =>
      Effect.gen(function* () {
        const sha = "3F2EC5B6EF4A1D7CE0AB5E96E57D1A9C42A1C0D4B7A0F18C4B2CF5B3E6E2A1D0"
        const pinned = minimal.replace(
          "noble-server-cloudimg-amd64.img\n",
          `noble-server-cloudimg-amd64.img\n  checksum: sha256:${sha}\n`
        )
        const config = yield* parseOk(pinned)
        assert.strictEqual(config.image.filename, "noble-server-cloudimg-amd64-3f2ec5b6ef4a.qcow2")
        assert.strictEqual(config.image.volid, "local:import/noble-server-cloudimg-amd64-3f2ec5b6ef4a.qcow2")
        assert.isFalse(config.image.filenameSet)
        const iso = yield* parseOk(
          pinned
            .replace("noble-server-cloudimg-amd64.img", "alpine.iso")
            .replace("image:\n  url", "image:\n  content: iso\n  url")
        )
        assert.strictEqual(iso.image.filename, "alpine-3f2ec5b6ef4a.iso")
        const named = yield* parseOk(pinned.replace("image:\n", "image:\n  filename: noble.qcow2\n"))
        assert.strictEqual(named.image.filename, "noble.qcow2")
        assert.isTrue(named.image.filenameSet)
      })
  )
})

describe("parseConfig YAML features", () => {
  it.effect("supports anchors, aliases and merge keys (explicit keys win)", () =>
    Effect.gen(function* () {
      const config =
        yield* parseOk(`${minimal.replace("  - name: pve1\n", "")}  - &small { name: pve1, storage: local-zfs, cpuRatio: 0.25, bridges: [vmbr0, vmbr9] }
  - <<: *small
    name: pve2
  - { <<: *small, name: pve3, cpuRatio: 0.75 }
`)
      assert.deepStrictEqual(
        config.nodes.map((node) => [node.name, node.storage, node.cpuRatio, node.bridges.join(",")]),
        [
          ["pve1", "local-zfs", 0.25, "vmbr0,vmbr9"],
          ["pve2", "local-zfs", 0.25, "vmbr0,vmbr9"],
          ["pve3", "local-zfs", 0.75, "vmbr0,vmbr9"]
        ]
      )
    })
  )

  it.effect("rejects an alias bomb (billion laughs, 9 x 9) without expanding it, naming the problem", () =>
    Effect.gen(function* () {
      const levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
      for (const [i, name] of [..."bcdefghi"].entries()) {
        levels.push(`${name}: &${name} [${Array.from({ length: 9 }, () => `*${"abcdefgh"[i]}`).join(", ")}]`)
      }
      const error = yield* parseErr(`${levels.join("\n")}\n${minimal}vm:\n  tags: *i\n`)
      assert.strictEqual(error.reason._tag, "ConfigYamlError")
      assert.strictEqual(error.issues.length, 1)
      const issue = error.issues[0]!
      assert.deepStrictEqual(
        [issue.code, issue.path, issue.expected],
        ["yaml-syntax", "(root)", `YAML whose aliases (*name) expand to at most ${maxAliasedValues} values in all`]
      )
      assert.include(issue.found, "alias bomb")
      assert.isDefined(issue.line)
    })
  )

  it.effect("keeps ordinary anchor reuse well inside the budget: 300 nodes merging one anchor", () =>
    Effect.gen(function* () {
      const nodes = Array.from({ length: 299 }, (_, i) => `  - { <<: *node, name: pve${i + 2} }`).join("\n")
      const config = yield* parseOk(
        `${minimal.replace("  - name: pve1\n", "")}  - &node { name: pve1, storage: local-zfs, bridges: [vmbr0, vmbr1], cpuRatio: 0.25 }\n${nodes}\n`
      )
      assert.strictEqual(config.nodes.length, 300)
      assert.deepStrictEqual(config.nodes[299]?.bridges, ["vmbr0", "vmbr1"])
    })
  )
})

describe("parseConfig errors", () => {
  it.effect("renders the example line from the issue: path, line:column, expected, found", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(`${minimal}  - name: pve2
    cpuRatio: 1.5
`)
      assert.strictEqual(error.reason._tag, "ConfigInvalid")
      assert.deepStrictEqual(error.issues, [
        {
          code: "invalid-value",
          path: "nodes[1].cpuRatio",
          line: 11,
          column: 15,
          expected: "a number in (0, 1]",
          found: "1.5"
        }
      ])
      assert.strictEqual(
        error.message,
        "homelab.yaml: 1 problem\nhomelab.yaml:11:15 nodes[1].cpuRatio: expected a number in (0, 1], found 1.5"
      )
    })
  )

  it.effect(
    "timeouts.api, timeouts.connect and timeouts.ssh: seconds, 30, 5 and 10 by default; a bad value is refused naming the field",
    () =>
      Effect.gen(function* () {
        const defaults = yield* parseOk(minimal)
        assert.deepStrictEqual(defaults.timeouts, {
          task: 600,
          ip: 300,
          k3sInstall: 600,
          k3sReady: 600,
          api: 30,
          connect: 5,
          ssh: 10
        })
        const set = yield* parseOk(`${minimal}timeouts:\n  api: 90\n  connect: 2\n  ssh: 20\n`)
        assert.deepInclude(set.timeouts, { api: 90, connect: 2, ssh: 20 })
        const error = yield* parseErr(`${minimal}timeouts:\n  api: 0\n  connect: 1.5\n  ssh: 601\n`)
        assert.deepStrictEqual(
          error.issues.map((issue) => [issue.path, issue.code, issue.expected, issue.found]),
          [
            ["timeouts.api", "invalid-value", "1..3600 seconds", "0"],
            ["timeouts.connect", "invalid-value", "an integer", "1.5"],
            ["timeouts.ssh", "invalid-value", "1..600 seconds", "601"]
          ]
        )
        assert.match(error.message, /timeouts\.api: expected 1\.\.3600 seconds, found 0/)
        const text = yield* parseErr(`${minimal}timeouts:\n  api: soon\n`)
        assert.deepInclude(issueAt(text, "timeouts.api"), { expected: "1..3600 seconds" })
      })
  )

  it.effect("a value YAML read as a number is shown as written, with the quoting that keeps it text", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(`${minimal}k3s:
  server: { host: 10.0.0.5 }
  version: 1.30
`)
      assert.deepInclude(issueAt(error, "k3s.version"), {
        found: '1.30 (YAML reads that as the number 1.3; put it in quotes for the text: "1.30")'
      })
      // a number written as it prints is shown as it is
      assert.deepInclude(
        issueAt(yield* parseErr(`${minimal}  - name: pve2\n    cpuRatio: 1.5\n`), "nodes[1].cpuRatio"),
        {
          found: "1.5"
        }
      )
    })
  )

  it.effect("nodes of the wrong shape gets its own error only, not one about k3s roles", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        parseConfig(`${minimal.slice(0, minimal.indexOf("nodes:"))}nodes: pve\nk3s: {}\n`, { env: baseEnv })
      )
      assert.deepStrictEqual(
        error.issues.map((i) => i.path),
        ["nodes"]
      )
    })
  )

  it.effect("uses the source name in messages", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(parseConfig("nodes: 1\n", { env: {}, source: "lab/homelab.yaml" }))
      assert.strictEqual(error.source, "lab/homelab.yaml")
      assert.strictEqual(
        error.message,
        [
          "lab/homelab.yaml: 3 problems",
          "lab/homelab.yaml:1:1 image: expected a mapping, found nothing (the key is required)",
          "lab/homelab.yaml:1:1 proxmox: expected a mapping, found nothing (the key is required)",
          "lab/homelab.yaml:1:8 nodes: expected a list, found 1"
        ].join("\n")
      )
    })
  )

  it.effect("rejects unknown keys with a Levenshtein suggestion from the keys of that level", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(`${minimal.replace("nodes:", "nodse:")}vm:
  dsikSize: 32G
  cpu_type: host
  frobnicate: 1
`)
      assert.deepStrictEqual(issueAt(error, "nodse"), {
        code: "unknown-key",
        path: "nodse",
        line: 8,
        column: 1,
        expected: "a known key at (root) (proxmox, ssh, image, vm, nodes, health, safety, timeouts, parallelism, k3s)",
        found: 'unknown key "nodse"',
        suggestion: 'did you mean "nodes"?'
      })
      assert.deepStrictEqual(issueAt(error, "nodes"), {
        code: "missing-key",
        path: "nodes",
        line: 1,
        column: 1,
        expected: "a list",
        found: "nothing (the key is required)"
      })
      assert.strictEqual(issueAt(error, "vm.dsikSize")?.suggestion, 'did you mean "diskSize"?')
      assert.deepStrictEqual([issueAt(error, "vm.dsikSize")?.line, issueAt(error, "vm.dsikSize")?.column], [11, 3])
      assert.strictEqual(issueAt(error, "vm.cpu_type")?.suggestion, 'did you mean "cpuType"?')
      assert.strictEqual(issueAt(error, "vm.frobnicate")?.code, "unknown-key")
      assert.strictEqual(issueAt(error, "vm.frobnicate")?.suggestion, undefined)
      assert.include(
        error.message,
        'homelab.yaml:8:1 nodse: expected a known key at (root) (proxmox, ssh, image, vm, nodes, health, safety, timeouts, parallelism, k3s), found unknown key "nodse" (did you mean "nodes"?)'
      )
    })
  )

  it.effect("reports a nested unknown key at the key's own position", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(`${minimal}  - name: pve2
    bridges: [vmbr0]
    cpuRatoi: 0.5
`)
      assert.deepStrictEqual(error.issues, [
        {
          code: "unknown-key",
          path: "nodes[1].cpuRatoi",
          line: 12,
          column: 5,
          expected:
            "a known key at nodes[1] (name, address, api, sshPort, storage, imageStorage, bridges, cpuRatio, memoryRatio, vms)",
          found: 'unknown key "cpuRatoi"',
          suggestion: 'did you mean "cpuRatio"?'
        }
      ])
    })
  )

  it.effect("reports wrong types, enum typos and formats with what was expected", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(`proxmox:
  endpoint: http://pve1.lan
  auth: { tokenId: root-pam-homelab, secret: x }
ssh:
  port: "22"
  knownHosts: { mode: strickt }
image:
  url: https://example.org/a.img
  content: imprt
nodes:
  - name: pve1.lan
    bridges: []
    storage: 9local
vm:
  diskSize: 64GB
  ipConfig: ip=dhcp,gw=10.0.0.1
  sshKeys: [id_ed25519, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG0 me@host"]
  tags: ["bad tag"]
health:
  paused: resum
  graceSeconds: -1
k3s:
  server: { host: "not a host" }
  version: "1.31"
`)
      const summary = error.issues.map((issue) => [
        issue.path,
        issue.code,
        issue.expected,
        issue.found,
        issue.suggestion
      ])
      assert.deepStrictEqual(summary, [
        [
          "proxmox.endpoint",
          "invalid-value",
          "an https URL (the PVE API only listens on https), not http://",
          '"http://pve1.lan"',
          undefined
        ],
        [
          "proxmox.auth.tokenId",
          "invalid-value",
          "an API token id like root@pam!homelab (user@realm!name)",
          '"root-pam-homelab"',
          undefined
        ],
        ["ssh.port", "invalid-type", "a port in 1..65535", '"22"', undefined],
        [
          "ssh.knownHosts.mode",
          "invalid-value",
          'one of "strict", "accept-new", "off"',
          '"strickt"',
          'did you mean "strict"?'
        ],
        ["image.content", "invalid-value", 'one of "import", "iso"', '"imprt"', 'did you mean "import"?'],
        ["nodes[0].name", "invalid-value", "a PVE node name (letters, digits, -; no dots)", '"pve1.lan"', undefined],
        ["nodes[0].bridges", "invalid-value", "at least one bridge", "an empty list", undefined],
        ["nodes[0].storage", "invalid-value", "a PVE storage id like local or local-lvm", '"9local"', undefined],
        [
          "vm.diskSize",
          "invalid-value",
          "a disk size like 64G (digits, then K, M, G or T; G = GiB)",
          '"64GB"',
          undefined
        ],
        [
          "vm.ipConfig",
          "invalid-value",
          "gw only together with a static ip (PVE ignores it)",
          '"ip=dhcp,gw=10.0.0.1"',
          undefined
        ],
        [
          "vm.sshKeys[0]",
          "invalid-value",
          "an SSH public key (ssh-ed25519 AAAA... comment) or a path to a *.pub file",
          '"id_ed25519"',
          undefined
        ],
        ["vm.tags[0]", "invalid-value", "a PVE tag: letters, digits, and _ - + . (not first)", '"bad tag"', undefined],
        ["health.paused", "invalid-value", 'one of "recreate", "resume", "keep"', '"resum"', 'did you mean "resume"?'],
        ["health.graceSeconds", "invalid-value", "0..86400 seconds", "-1", undefined],
        ["k3s.server.host", "invalid-value", "an IP address or a DNS host name", '"not a host"', undefined],
        ["k3s.version", "invalid-value", "a k3s version like v1.31.5+k3s1", '"1.31"', undefined]
      ])
      assert.deepStrictEqual(
        error.issues.map((issue) => `${issue.line}:${issue.column}`),
        [
          "2:13",
          "3:20",
          "5:9",
          "6:23",
          "9:12",
          "11:11",
          "12:14",
          "13:14",
          "15:13",
          "16:13",
          "17:13",
          "18:10",
          "20:11",
          "21:17",
          "23:19",
          "24:12"
        ]
      )
      assert.strictEqual(error.reason._tag, "ConfigInvalid")
      if (error.reason._tag === "ConfigInvalid") assert.strictEqual(error.reason.count, 16)
      assert.strictEqual(error.message.split("\n").length, 17)
    })
  )

  it.effect("reports missing required keys at their parent mapping", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(`proxmox:
  auth:
    secret: x
nodes:
  - storage: local-lvm
`)
      assert.deepStrictEqual(
        error.issues.map((issue) => [issue.code, issue.path, issue.line, issue.column, issue.expected]),
        [
          ["missing-key", "image", 1, 1, "a mapping"],
          [
            "missing-key",
            "proxmox.endpoint",
            2,
            3,
            "an https URL like https://pve1.lan:8006 (or a list in proxmox.endpoints)"
          ],
          ["missing-key", "proxmox.auth.tokenId", 3, 5, "an API token id like root@pam!homelab (user@realm!name)"],
          ["missing-key", "nodes[0].name", 5, 5, "a PVE node name (letters, digits, -; no dots)"]
        ]
      )
    })
  )

  it.effect(
    "checks cross-field rules: unique node and VM names, template placeholders, TLS and endpoint exclusivity",
    () =>
      Effect.gen(function* () {
        const error = yield* parseErr(`proxmox:
  endpoint: https://pve1.lan
  endpoints: [https://pve2.lan]
  auth: { tokenId: root@pam!homelab, secret: x }
  tls: { ca: /etc/ca.pem, insecure: true }
image:
  url: https://example.org/a.img
vm:
  nameTemplate: "k3s-{nodes}"
  vmidRange: { lower: 9100, upper: 9000 }
nodes:
  - name: pve1
  - name: PVE1
`)
        assert.deepStrictEqual(
          error.issues.map((issue) => [issue.code, issue.path, issue.line, issue.found, issue.suggestion]),
          [
            ["conflict", "proxmox.endpoints", 3, "both", undefined],
            ["conflict", "proxmox.tls", 5, "ca and insecure", undefined],
            ["invalid-value", "vm.nameTemplate", 9, '"k3s-{nodes}" with {nodes}', "did you mean {node}?"],
            ["conflict", "vm.vmidRange", 10, "lower 9100 > upper 9000", undefined],
            ["duplicate", "nodes[1].name", 13, '"PVE1" (also nodes[0].name)', undefined]
          ]
        )
      })
  )

  it.effect("a vm.vmidRange smaller than the number of VMs is refused before anything is created", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(
        `proxmox:
  endpoint: https://pve1.lan
  auth: { tokenId: root@pam!homelab, secret: x }
image:
  url: https://example.org/a.img
vm:
  vmidRange: { lower: 100, upper: 101 }
nodes:
  - name: pve1
  - name: pve2
    vms: [{}, { name: extra }]
`,
        baseEnv,
        { checkOnly: "vmidRange size against the VMs after expansion" }
      )
      assert.deepStrictEqual(
        error.issues.map((issue) => [
          issue.code,
          issue.path,
          issue.line,
          issue.expected,
          issue.found,
          issue.suggestion
        ]),
        [
          [
            "conflict",
            "vm.vmidRange",
            7,
            "a range of at least 3 VMIDs (one for each VM homelab.yaml asks for)",
            "100..101, 2 VMIDs",
            "widen it, e.g. upper: 102 or more (leave room for VMs that are not homelab's)"
          ]
        ]
      )
      // as many VMIDs as VMs is enough
      yield* parseOk(
        `proxmox:
  endpoint: https://pve1.lan
  auth: { tokenId: root@pam!homelab, secret: x }
image:
  url: https://example.org/a.img
vm:
  vmidRange: { lower: 100, upper: 100 }
nodes:
  - name: pve1
`
      )
    })
  )

  it.effect("validates VM names after template expansion and names the node", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(
        `${minimal}    vms: [{}, { role: server }]
  - name: pve2
    vms: [{ name: k3s-vm-pve1 }, { name: bad_name }]
`,
        baseEnv,
        { checkOnly: "VM names after template expansion: DNS names, unique in the cluster" }
      )
      assert.deepStrictEqual(error.issues, [
        {
          code: "duplicate",
          path: "nodes[0].vms[1]",
          line: 10,
          column: 15,
          expected: "a VM name unique in the cluster on node pve1",
          found: '"k3s-vm-pve1" (from vm.nameTemplate "k3s-vm-{node}"), already used by nodes[0].vms[0]',
          suggestion: "add {index} to vm.nameTemplate or give the VMs names"
        },
        {
          code: "duplicate",
          path: "nodes[1].vms[0].name",
          line: 12,
          column: 19,
          expected: "a VM name unique in the cluster on node pve2",
          found: '"k3s-vm-pve1", already used by nodes[0].vms[0]'
        },
        {
          code: "invalid-value",
          path: "nodes[1].vms[1].name",
          line: 12,
          column: 42,
          expected: "a VM name that is a valid DNS name (letters, digits, -, dots between labels) on node pve2",
          found: '"bad_name"'
        }
      ])
    })
  )

  it.effect("validates checksums per algorithm and file names per content type", () =>
    Effect.gen(function* () {
      const check = (image: string, schema: SchemaVerdict = "rejects") =>
        parseErr(minimal.replace(/image:\n {2}url: .*\n/u, `image:\n${image}`), baseEnv, schema).pipe(
          Effect.map((error) => error.issues.map((issue) => [issue.code, issue.path, issue.expected, issue.suggestion]))
        )
      assert.deepStrictEqual(yield* check("  url: https://x.org/a.img\n  checksum: sha256:abcd\n"), [
        ["invalid-value", "image.checksum", "64 hex digits for sha256", undefined]
      ])
      assert.deepStrictEqual(yield* check("  url: https://x.org/a.img\n  checksum: abcd\n"), [
        [
          "missing-key",
          "image.checksumAlgorithm",
          "checksumAlgorithm (md5, sha1, sha224, sha256, sha384, sha512) for a plain-hex checksum, or write sha256:<hex>",
          undefined
        ]
      ])
      assert.deepStrictEqual(
        yield* check(`  url: https://x.org/a.img\n  checksum: md5:${"a".repeat(32)}\n  checksumAlgorithm: sha1\n`),
        [
          [
            "conflict",
            "image.checksumAlgorithm",
            "the same algorithm as the checksum prefix (md5), or no checksumAlgorithm",
            undefined
          ]
        ]
      )
      assert.deepStrictEqual(yield* check("  url: https://x.org/a.img\n  checksum: crc32:abcd\n"), [
        [
          "invalid-value",
          "image.checksum",
          "an algorithm prefix out of md5, sha1, sha224, sha256, sha384, sha512 (like sha256:<hex>)",
          undefined
        ]
      ])
      assert.deepStrictEqual(yield* check("  url: https://x.org/a.img\n  filename: a.img\n"), [
        [
          "invalid-value",
          "image.filename",
          "a file name of [a-zA-Z0-9_.-] ending in .qcow2, .raw, .vmdk or .ova (content import)",
          undefined
        ]
      ])
      // a name PVE's download-url (and upload) would store under another name: refused, the stored name suggested
      const renamed = (name: string) => [
        [
          "invalid-value",
          "image.filename",
          "a file name PVE stores as written: letters, digits, _ . - only (download-url and upload replace any other character with _ and drop a path, and homelab looks for the name written here)",
          `write ${JSON.stringify(name)}, the name PVE would store it under`
        ]
      ]
      assert.deepStrictEqual(
        yield* check('  url: https://x.org/a.img\n  content: iso\n  filename: "ubuntu 24.04.img"\n'),
        renamed("ubuntu_24.04.img")
      )
      assert.deepStrictEqual(
        yield* check("  url: https://x.org/a.img\n  filename: noble+v2=final.qcow2\n"),
        renamed("noble_v2_final.qcow2")
      )
      assert.deepStrictEqual(
        yield* check("  url: https://x.org/a.img\n  content: iso\n  filename: isos/noble.img\n"),
        renamed("noble.img")
      )
      assert.deepStrictEqual(yield* check("  url: https://x.org/a.img\n  filename: noble.QCOW2\n"), [
        [
          "invalid-value",
          "image.filename",
          "a file name of [a-zA-Z0-9_.-] ending in .qcow2, .raw, .vmdk or .ova (content import)",
          undefined
        ]
      ])
      const fromUrl = { checkOnly: "the file name derived from image.url" }
      assert.deepStrictEqual(yield* check("  url: https://x.org/download?id=3\n", fromUrl), [
        [
          "invalid-value",
          "image.url",
          "a URL ending in .qcow2, .raw, .vmdk, .ova or .img for content import (or set image.filename)",
          "set image.filename explicitly"
        ]
      ])
      assert.deepStrictEqual(yield* check("  url: https://x.org/a.qcow2\n  content: iso\n", fromUrl), [
        [
          "invalid-value",
          "image.url",
          "a URL ending in .iso or .img for content iso (or set image.filename)",
          "set image.filename explicitly"
        ]
      ])
      const ok = yield* parseOk(
        minimal.replace(
          /image:\n {2}url: .*\n/u,
          `image:\n  url: https://x.org/a.raw\n  checksum: SHA512:${"F".repeat(128)}\n`
        )
      )
      assert.deepStrictEqual(ok.image.checksum, { algorithm: "sha512", value: "f".repeat(128) })
      assert.strictEqual(ok.image.filename, "a-ffffffffffff.raw")
      // a name derived from the URL is the one PVE stores: normalised as PVE does, an import extension lowercased
      const derived = (url: string, content = "import") =>
        parseOk(minimal.replace(/image:\n {2}url: .*\n/u, `image:\n  url: ${url}\n  content: ${content}\n`)).pipe(
          Effect.map((config) => [config.image.filename, config.image.volid])
        )
      assert.deepStrictEqual(yield* derived("https://x.org/imgs/ubuntu%2024.04+lts.img"), [
        "ubuntu_24.04_lts.qcow2",
        "local:import/ubuntu_24.04_lts.qcow2"
      ])
      assert.deepStrictEqual(yield* derived("https://x.org/Noble.QCOW2"), ["Noble.qcow2", "local:import/Noble.qcow2"])
      assert.deepStrictEqual(yield* derived("https://x.org/a%5Cb%20c.ISO", "iso"), ["b_c.ISO", "local:iso/b_c.ISO"])
    })
  )

  it.effect("rejects vm.balloon above a VM's pinned memory, naming the VM entry and the node", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(
        `${minimal}    vms: [{ memory: 2048 }, { name: big, memory: 8192 }, { name: same, memory: 4096 }]
vm:
  nameTemplate: "k3s-vm-{node}-{index}"
  balloon: 4096
`,
        baseEnv,
        { checkOnly: "vm.balloon against each VM's memory" }
      )
      assert.deepStrictEqual(error.issues, [
        {
          code: "conflict",
          path: "nodes[0].vms[0].memory",
          line: 10,
          column: 21,
          expected:
            'a memory of at least vm.balloon (4096 MiB) on node pve1: PVE refuses a balloon above the VM\'s memory ("balloon value too large (must be smaller than assigned memory)")',
          found: "2048 MiB, below vm.balloon 4096",
          suggestion:
            "raise nodes[0].vms[0].memory to at least 4096, or lower vm.balloon to at most 2048 (0 turns ballooning off)"
        }
      ])
      // 0 turns ballooning off: never too large
      yield* parseOk(`${minimal}    vms: [{ memory: 2048 }]
vm:
  balloon: 0
`)
    })
  )

  it.effect("rejects a static address shared by several VMs and managed k3s flags without showing their values", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(`${minimal}  - name: pve2
vm:
  ipConfig: ip=10.0.0.5/24,gw=10.0.0.1
k3s:
  server: { host: 10.0.0.2 }
  installFlags: ["--token=hunter2-token", "disable-traefik"]
`)
      assert.deepStrictEqual(
        error.issues.map((issue) => [issue.path, issue.code, issue.found, issue.suggestion]),
        [
          [
            "vm.ipConfig",
            "duplicate",
            "10.0.0.5, already used by VM k3s-vm-pve1",
            "give each VM its own ipConfig (nodes[].vms[].ipConfig)"
          ],
          ["k3s.installFlags[0]", "invalid-value", "--token (value hidden)", "use k3s.token"],
          ["k3s.installFlags[1]", "invalid-value", '"disable-traefik"', undefined]
        ]
      )
      assert.notInclude(error.message, "hunter2")
      assert.notInclude(JSON.stringify(error), "hunter2")
    })
  )

  it.effect("collects every problem of a document into one error", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(`proxmox:
  endpoint: https://pve1.lan
  auth: { tokenId: root@pam!x, secret: "\${MISSING_ONE}" }
image: { url: "https://x.org/a.img", contnet: iso }
nodes:
  - { name: pve1, cpuRatio: 0 }
  - { name: pve1, memoryRatio: 2 }
health: { stopped: restart }
safety: { maxRecreatePerRun: -1, protect: [42] }
`)
      assert.deepStrictEqual(
        error.issues.map((issue) => `${issue.line}:${issue.column} ${issue.path} ${issue.code}`),
        [
          "3:40 proxmox.auth.secret missing-variable",
          "4:38 image.contnet unknown-key",
          "6:29 nodes[0].cpuRatio invalid-value",
          "7:13 nodes[1].name duplicate",
          "7:32 nodes[1].memoryRatio invalid-value",
          "8:20 health.stopped invalid-value",
          "9:30 safety.maxRecreatePerRun invalid-value",
          "9:44 safety.protect[0] invalid-value"
        ]
      )
      assert.strictEqual(error.reason._tag, "ConfigInvalid")
      assert.strictEqual(issueAt(error, "image.contnet")?.suggestion, 'did you mean "content"?')
      assert.strictEqual(issueAt(error, "health.stopped")?.suggestion, 'did you mean "start"?')
    })
  )

  it.effect("reports YAML syntax errors with their position and checks nothing else", () =>
    Effect.gen(function* () {
      const error = yield* parseErr("proxmox:\n  endpoint: [https://a\nnodes: x\n")
      assert.strictEqual(error.reason._tag, "ConfigYamlError")
      assert.isAbove(error.issues.length, 0)
      assert.deepStrictEqual(
        [error.issues[0]?.code, error.issues[0]?.path, error.issues[0]?.expected],
        ["yaml-syntax", "(root)", "valid YAML"]
      )
      assert.strictEqual(error.issues[0]?.line, 3)
    })
  )

  it.effect("k3s.channel is a channel update.k3s.io has: stable, latest, testing or a minor", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(`${minimal}k3s:\n  server: { host: 10.0.0.5 }\n  channel: stabel\n`)
      assert.deepStrictEqual(
        error.issues.map((issue) => [issue.path, issue.expected, issue.found]),
        [["k3s.channel", "a k3s release channel: stable, latest, testing, or a minor like v1.31", '"stabel"']]
      )
      for (const channel of ["stable", "latest", "testing", "v1.31"]) {
        yield* parseOk(`${minimal}k3s:\n  server: { host: 10.0.0.5 }\n  channel: ${channel}\n`)
      }
    })
  )

  it.effect("a tab as indentation says to indent with spaces", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(minimal.replace("  endpoint:", "\tendpoint:"))
      assert.deepStrictEqual(
        [error.issues[0]?.line, error.issues[0]?.found, error.issues[0]?.suggestion],
        [2, "Tabs are not allowed as indentation", "indent with spaces: YAML does not allow tabs there"]
      )
    })
  )

  it.effect("an alias of no anchor is named as such, not as a null where a value was meant", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(`${minimal}vm:\n  sshKeys: *keys\n`)
      assert.strictEqual(error.reason._tag, "ConfigYamlError")
      assert.deepStrictEqual(
        error.issues.map((issue) => [issue.code, issue.path, issue.line, issue.column, issue.found, issue.suggestion]),
        [
          [
            "yaml-syntax",
            "vm.sshKeys",
            11,
            12,
            "*keys, and no &keys above it",
            "write &keys before the value to reuse (above this line), or correct the alias's name"
          ]
        ]
      )
    })
  )

  it.effect("a key written twice names the key, where it was first, and what to do", () =>
    Effect.gen(function* () {
      const top = yield* parseErr(`${minimal}nodes: []\n`)
      assert.strictEqual(top.reason._tag, "ConfigYamlError")
      assert.deepStrictEqual(
        top.issues.map((issue) => [issue.code, issue.path, issue.line, issue.column, issue.found, issue.suggestion]),
        [
          [
            "yaml-syntax",
            "nodes",
            10,
            1,
            '"nodes" a second time in this mapping (first on line 8)',
            "keep one of the two: merge what you meant into the first and delete the second"
          ]
        ]
      )
      const nested = yield* parseErr(`${minimal}ssh:\n  user: root\n  port: 22\n  user: admin\n`)
      assert.deepStrictEqual(
        nested.issues.map((issue) => [issue.path, issue.line, issue.column, issue.expected, issue.found]),
        [["ssh.user", 13, 3, "each key once in its mapping", '"user" a second time in this mapping (first on line 11)']]
      )
      const inList = yield* parseErr(`${minimal}    name: pve2\n`)
      assert.deepStrictEqual(
        inList.issues.map((issue) => [issue.path, issue.line]),
        [["nodes[0].name", 10]]
      )
    })
  )

  it.effect("a second document after --- is named as such, not with the YAML library's advice", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(`${minimal}---\nnodes: []\n`)
      assert.strictEqual(error.reason._tag, "ConfigYamlError")
      assert.deepStrictEqual(
        error.issues.map((issue) => [issue.line, issue.expected, issue.found, issue.suggestion]),
        [
          [
            10,
            "one YAML document",
            "a second document after ---",
            "remove the --- line, and merge what follows it into the first document"
          ]
        ]
      )
      assert.notInclude(error.message, "parseAllDocuments")
    })
  )

  it.effect("does not echo the offending token of a YAML syntax error (it may be a secret)", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(
        minimal.replace("secret: ${PROXMOX_TOKEN_SECRET}", 'secret: "abc-literal-secret" trailing')
      )
      assert.strictEqual(error.reason._tag, "ConfigYamlError")
      assert.strictEqual(error.issues[0]?.line, 5)
      assert.notInclude(error.message, "abc-literal-secret")
      assert.notInclude(error.message, "trailing")
    })
  )

  it.effect("reports an empty document at its start", () =>
    Effect.gen(function* () {
      const error = yield* parseErr("# nothing here yet\n")
      assert.deepStrictEqual(error.issues, [
        {
          code: "invalid-type",
          path: "(root)",
          line: 1,
          column: 1,
          expected: "a mapping",
          found: "an empty document"
        }
      ])
    })
  )

  it.effect("is a ConfigError that callers can handle by reason", () =>
    Effect.gen(function* () {
      const result = yield* parseConfig(minimal, { env: {} }).pipe(
        Effect.map(() => "parsed"),
        Effect.catchReason("ConfigError", "ConfigMissingVariables", (reason) =>
          Effect.succeed(`missing ${reason.variables.join(",")}`)
        )
      )
      assert.strictEqual(result, "missing PROXMOX_TOKEN_SECRET")
      const error = yield* parseErr("[]\n", baseEnv)
      assert.instanceOf(error, ConfigError)
      assert.deepStrictEqual(
        error.issues.map((issue) => [issue.path, issue.expected, issue.found]),
        [["(root)", "a mapping", "an empty list"]]
      )
    })
  )
})

describe("nodes[].api", () => {
  const base = (nodes: string) =>
    [
      "proxmox:",
      "  endpoint: https://pve1.lan:8006",
      "  auth: { tokenId: root@pam!homelab, secret: 0b6c3e2a-1111-2222-3333-444455556666 }",
      "image: { url: https://example.invalid/noble.img }",
      "nodes:",
      nodes
    ].join("\n")

  it.effect("defaults to the cluster endpoint, to https://<address>:<endpoint port>, or takes an explicit URL", () =>
    Effect.gen(function* () {
      const config = yield* parseConfig(
        base(
          [
            "  - name: pve1",
            "  - name: pve2",
            "    address: 10.0.0.2",
            "  - name: pve3",
            "    address: 10.0.0.3",
            "    api: https://127.0.0.1:18006"
          ].join("\n")
        ),
        { env: {} }
      )
      assert.deepStrictEqual(
        config.nodes.map((n) => n.api.url),
        ["https://pve1.lan:8006", "https://10.0.0.2:8006", "https://127.0.0.1:18006"]
      )
    })
  )

  it.effect("rejects a non-https API URL with the node's path", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(parseConfig(base("  - name: pve1\n    api: http://pve1:8006"), { env: {} }))
      assert.isTrue(error.issues.some((i) => i.path === "nodes[0].api"))
    })
  )
})

describe("hostile values", () => {
  it.effect("vm.user must be a Linux user name (useradd's and systemd's rules); the field and the rule are named", () =>
    Effect.gen(function* () {
      const hostile = ["ubuntu; touch /tmp/pwned", "$(reboot)", "Ubuntu", "1admin", "a.b", "x".repeat(32), ""]
      for (const user of hostile) {
        const error = yield* parseErr(`${minimal}vm:\n  user: ${JSON.stringify(user)}\n`)
        const issue = issueAt(error, "vm.user")
        assert.isDefined(issue, user)
        assert.include(issue?.expected, "a Linux user name: a lowercase letter or _", user)
      }
      for (const user of ["ubuntu", "_svc", "k3s-admin", "a1_b-2", "x".repeat(31)]) {
        const config = yield* parseOk(`${minimal}vm:\n  user: ${user}\n`)
        assert.strictEqual(config.vm.user, user)
      }
      const server = yield* parseErr(`${minimal}k3s:\n  server: { host: 10.0.0.2, user: "root;id" }\n`)
      assert.include(issueAt(server, "k3s.server.user")?.expected, "a Linux user name")
    })
  )
})

describe("k3s.installFlags, serverFlags, agentFlags", () => {
  const withLists = (lists: string) => `${minimal}k3s:\n  server: { host: 10.0.0.2 }\n${lists}`
  const withFlags = (flags: string) => withLists(`  installFlags: ${flags}\n`)

  it.effect("takes a flag and its value as separate items as well as --flag=value", () =>
    Effect.gen(function* () {
      const config = yield* parseOk(
        withFlags('[--kubelet-arg, "max-pods=150", --node-label=tier=gold, --node-ip, "10.0.0.5"]')
      )
      assert.deepStrictEqual(config.k3s?.installFlags, [
        "--kubelet-arg",
        "max-pods=150",
        "--node-label=tier=gold",
        "--node-ip",
        "10.0.0.5"
      ])
      assert.deepStrictEqual([config.k3s?.serverFlags, config.k3s?.agentFlags], [[], []])
    })
  )

  it.effect("gives each role its list: the servers' flags, the agents' flags, and those for every VM", () =>
    Effect.gen(function* () {
      const config = yield* parseOk(
        withLists(
          [
            "  installFlags: [--node-label=homelab=true]",
            '  serverFlags: [--disable=traefik, --tls-san, k3s.lan, --write-kubeconfig-mode, "644", --etcd-expose-metrics]',
            "  agentFlags: [--node-label=node-role=worker, --disable-apiserver-lb]",
            ""
          ].join("\n")
        )
      )
      assert.deepStrictEqual(config.k3s?.serverFlags, [
        "--disable=traefik",
        "--tls-san",
        "k3s.lan",
        "--write-kubeconfig-mode",
        "644",
        "--etcd-expose-metrics"
      ])
      assert.deepStrictEqual(config.k3s?.agentFlags, ["--node-label=node-role=worker", "--disable-apiserver-lb"])
    })
  )

  it.effect(
    "refuses a flag a k3s command the list reaches does not define, naming the list, the flag and where it goes",
    () =>
      Effect.gen(function* () {
        const error = yield* parseErr(
          withLists(
            [
              "  installFlags: [--node-label=tier=gold, --disable=traefik, --tls-san, k3s.lan, --write-kubeconfig-mode=644, --etcd-s3-secret-key=hunter2-s3]",
              "  agentFlags: [-cluster-cidr=10.52.0.0/16, --node-taint=gpu=true:NoSchedule]",
              "  serverFlags: [--disable-apiserver-lb, --disable=servicelb]",
              ""
            ].join("\n")
          )
        )
        assert.deepStrictEqual(
          error.issues.map((issue) => [issue.path, issue.found, issue.suggestion]),
          [
            [
              "k3s.installFlags[1]",
              "--disable (value hidden), a flag only k3s server defines",
              "move it to k3s.serverFlags"
            ],
            ["k3s.installFlags[2]", "--tls-san, a flag only k3s server defines", "move it to k3s.serverFlags"],
            [
              "k3s.installFlags[4]",
              "--write-kubeconfig-mode (value hidden), a flag only k3s server defines",
              "move it to k3s.serverFlags"
            ],
            [
              "k3s.installFlags[5]",
              "--etcd-s3-secret-key (value hidden), a flag only k3s server defines",
              "move it to k3s.serverFlags"
            ],
            [
              "k3s.agentFlags[0]",
              "-cluster-cidr (value hidden), a flag only k3s server defines",
              "move it to k3s.serverFlags"
            ],
            ["k3s.serverFlags[0]", "--disable-apiserver-lb, a flag only k3s agent defines", "move it to k3s.agentFlags"]
          ]
        )
        assert.include(
          error.message,
          'k3s.installFlags[1]: expected a flag k3s agent defines (k3s.installFlags go to every VM, servers and agents, and k3s agent stops at every start on a flag it does not define: "flag provided but not defined"), found --disable (value hidden), a flag only k3s server defines (move it to k3s.serverFlags)'
        )
        assert.include(
          error.message,
          "k3s.agentFlags[0]: expected a flag k3s agent defines (k3s.agentFlags go to the agents"
        )
        assert.include(
          error.message,
          "k3s.serverFlags[0]: expected a flag k3s server defines (k3s.serverFlags go to the servers"
        )
        assert.notInclude(JSON.stringify(error), "hunter2-s3")
      })
  )

  it.effect(
    "refuses a flag no k3s defines (a typo, a removed flag) in every list, naming the list, the index, the flag and the closest k3s flag",
    () =>
      Effect.gen(function* () {
        const pinNewer = "if a k3s newer than v1.36 defines it, pin that release in k3s.version"
        const newer = ` (${pinNewer})`
        const error = yield* parseErr(
          withLists(
            [
              '  installFlags: [--kubelet-arg, "max-pods=150", --nodelabel=tier=gold, -x]',
              '  agentFlags: [--node-label=a=b, --node-lable, "tier=gold", --dissable=traefik, --no-flannel]',
              "  serverFlags: [--disable=traefik, --etcd-s3-bucket-lookup=path, --tls-sans=k3s.lan, --no-deploy=traefik, --frobnicate]",
              ""
            ].join("\n")
          )
        )
        assert.deepStrictEqual(
          error.issues.map((issue) => [issue.path, issue.found, issue.suggestion]),
          [
            [
              "k3s.installFlags[2]",
              "--nodelabel (value hidden), which is not a k3s flag",
              `did you mean --node-label?${newer}`
            ],
            ["k3s.installFlags[3]", "-x, which is not a k3s flag", pinNewer],
            ["k3s.agentFlags[1]", "--node-lable, which is not a k3s agent flag", `did you mean --node-label?${newer}`],
            [
              "k3s.agentFlags[3]",
              "--dissable (value hidden), which is not a k3s agent flag",
              `did you mean --disable? only k3s server defines it: it goes in k3s.serverFlags${newer}`
            ],
            ["k3s.agentFlags[4]", "--no-flannel, which k3s v1.26 removed", "use --flannel-backend=none"],
            [
              "k3s.serverFlags[1]",
              "--etcd-s3-bucket-lookup (value hidden), which is not a k3s server flag",
              `did you mean --etcd-s3-bucket-lookup-type?${newer}`
            ],
            [
              "k3s.serverFlags[2]",
              "--tls-sans (value hidden), which is not a k3s server flag",
              `did you mean --tls-san?${newer}`
            ],
            ["k3s.serverFlags[3]", "--no-deploy (value hidden), which k3s v1.26 removed", "use --disable"],
            ["k3s.serverFlags[4]", "--frobnicate, which is not a k3s server flag", pinNewer]
          ]
        )
        assert.include(
          error.message,
          'k3s.agentFlags[1]: expected a k3s agent flag (homelab knows those of k3s v1.28 to v1.36, and k3s stops at every start on a flag it does not define: "flag provided but not defined"), found --node-lable, which is not a k3s agent flag (did you mean --node-label? (if a k3s newer than v1.36 defines it, pin that release in k3s.version))'
        )
        // k3s defines --help (urfave/cli), but given it prints its help and exits: refused as such, not as unknown
        const help = yield* parseErr(withLists("  serverFlags: [--help]\n"))
        assert.deepStrictEqual(
          help.issues.map((issue) => [issue.path, issue.expected, issue.found]),
          [
            [
              "k3s.serverFlags[0]",
              "a flag other than --help (k3s would print its help and exit instead of starting)",
              "--help"
            ]
          ]
        )
      })
  )

  it.effect(
    "leaves a flag its lists do not know to the k3s release k3s.version pins when that is newer than the lists (v1.36)",
    () =>
      Effect.gen(function* () {
        const lists = [
          "  serverFlags: [--etcd-s3-frobnicate=1, --disable=traefik]",
          "  agentFlags: [--kubelet-newthing, on]",
          ""
        ].join("\n")
        const config = yield* parseOk(withLists(`  version: v1.37.2+k3s1\n${lists}`))
        assert.deepStrictEqual(config.k3s?.serverFlags, ["--etcd-s3-frobnicate=1", "--disable=traefik"])
        assert.deepStrictEqual(config.k3s?.agentFlags, ["--kubelet-newthing", "on"])
        // what every release knows is still judged: a server-only flag given to the agents, a removed flag
        const placed = yield* parseErr(
          withLists("  version: v2.0.0+k3s1\n  agentFlags: [--disable=traefik, --no-flannel]\n")
        )
        assert.deepStrictEqual(
          placed.issues.map((issue) => issue.path),
          ["k3s.agentFlags[0]", "k3s.agentFlags[1]"]
        )
        // a release the lists cover, or none pinned: refused as before
        for (const version of ["  version: v1.36.4+k3s1\n", ""]) {
          const error = yield* parseErr(withLists(`${version}${lists}`))
          assert.deepStrictEqual(
            error.issues.map((issue) => issue.path),
            ["k3s.serverFlags[0]", "k3s.agentFlags[0]"]
          )
        }
      })
  )

  it.effect("takes every flag k3s defines, hidden and deprecated ones too, in the lists that reach its command", () =>
    Effect.gen(function* () {
      const config = yield* parseOk(
        withLists(
          [
            '  installFlags: [-v, "2", --alsologtostderr, --airgap-extra-registry=r.lan, --docker, --nonroot-devices, -i, 10.0.0.5]',
            "  serverFlags: [--kube-controller-arg=x=y, --kube-cloud-controller-arg=x=y, --disable-agent, --kine-tls, --etcd-snapshot-reconcile-interval=10m, --etcd-s3-retention=3, --secrets-encryption-provider=secretbox, -o, /tmp/k.yaml]",
            "  agentFlags: [--disable-apiserver-lb, --node-internal-dns=n.lan]",
            ""
          ].join("\n")
        )
      )
      assert.strictEqual(config.k3s?.serverFlags.length, 9)
    })
  )

  it.effect(
    "refuses a value with no flag before it, a flag and value in one item, and the flags k3s-join refuses, in every list",
    () =>
      Effect.gen(function* () {
        const error = yield* parseErr(
          withFlags(
            '["644", --node-label=a=b, "oops", "--node-ip 10.0.0.5", --cluster-init, --token, "s3cret-join", --with-node-id]'
          )
        )
        assert.deepStrictEqual(
          error.issues.map((issue) => [issue.path, issue.found, issue.suggestion]),
          [
            ["k3s.installFlags[0]", '"644"', undefined],
            ["k3s.installFlags[2]", '"oops"', undefined],
            ["k3s.installFlags[3]", '"--node-ip 10.0.0.5"', 'write [--node-ip, "10.0.0.5"] or --node-ip=10.0.0.5'],
            ["k3s.installFlags[4]", "--cluster-init", undefined],
            ["k3s.installFlags[5]", "--token", "use k3s.token"],
            ["k3s.installFlags[7]", "--with-node-id", undefined]
          ]
        )
        assert.notInclude(JSON.stringify(error), "s3cret-join")
        const lists = yield* parseErr(
          withLists("  serverFlags: [--cluster-init]\n  agentFlags: [--server=https://x:6443]\n")
        )
        assert.deepStrictEqual(
          lists.issues.map((issue) => [issue.path, issue.found, issue.suggestion]),
          [
            ["k3s.serverFlags[0]", "--cluster-init", undefined],
            ["k3s.agentFlags[0]", "--server (value hidden)", "use k3s.server"]
          ]
        )
      })
  )
})

describe("vm.cicustom and image.transfer", () => {
  it.effect("carry snippet volumes and the transfer mode into the config", () =>
    Effect.gen(function* () {
      const config = yield* parseOk(
        `${minimal.replace("image:\n", "image:\n  transfer: upload\n")}vm:\n  cicustom: { user: "local:snippets/k3s-user.yaml", vendor: nfs-snip:snippets/vendor.yml }\n`
      )
      assert.strictEqual(config.image.transfer, "upload")
      assert.deepStrictEqual(config.vm.cicustom, {
        user: "local:snippets/k3s-user.yaml",
        vendor: "nfs-snip:snippets/vendor.yml"
      })
      const empty = yield* parseOk(`${minimal}vm:\n  cicustom: {}\n`)
      assert.strictEqual(empty.vm.cicustom, undefined)
    })
  )

  it.effect("rejects a volume that is not a snippet, an unknown cicustom key and an unknown transfer", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(
        `${minimal.replace("image:\n", "image:\n  transfer: scp\n")}vm:\n  cicustom: { user: "local:iso/user.yaml", network: "local:snippets/a/b.yaml", meta: "local:snippets/m.yaml" }\n`
      )
      assert.deepStrictEqual(
        error.issues.map((issue) => [issue.path, issue.code, issue.expected]),
        [
          ["image.transfer", "invalid-value", 'one of "download-url", "upload"'],
          ["vm.cicustom.user", "invalid-value", "a snippet volume like local:snippets/user-data.yaml"],
          ["vm.cicustom.network", "invalid-value", "a snippet volume like local:snippets/user-data.yaml"],
          ["vm.cicustom.meta", "unknown-key", "a known key at vm.cicustom (user, network, vendor)"]
        ]
      )
    })
  )
})

describe("k3s from nothing, the API endpoint and rolling upgrades", () => {
  it.effect("k3s.server is optional when a VM is a server; apiEndpoint and upgrade take their defaults", () =>
    Effect.gen(function* () {
      const config = yield* parseOk(`${minimal}k3s:\n  role: server\n`)
      assert.strictEqual(config.k3s?.server, undefined)
      assert.strictEqual(config.k3s?.apiEndpoint, undefined)
      assert.deepStrictEqual(config.k3s?.upgrade, { maxUnavailable: 1, drainTimeout: 300 })
      const set = yield* parseOk(
        `${minimal}k3s:\n  role: server\n  apiEndpoint: https://k3s.lan:6443\n  upgrade: { maxUnavailable: 2, drainTimeout: 60 }\n`
      )
      assert.strictEqual(set.k3s?.apiEndpoint, "https://k3s.lan:6443")
      assert.deepStrictEqual(set.k3s?.upgrade, { maxUnavailable: 2, drainTimeout: 60 })
      const perVm = yield* parseOk(
        minimal.replace("  - name: pve1\n", "  - name: pve1\n    vms: [{ name: a, role: server }, { name: b }]\n") +
          "k3s: {}\n"
      )
      assert.deepStrictEqual(
        perVm.nodes[0]?.vms.map((vm) => vm.role),
        ["server", "agent"]
      )
    })
  )

  it.effect("without k3s.server, some VM must be a server (config check only: it counts roles across nodes)", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(`${minimal}k3s:\n  role: agent\n`, baseEnv, {
        checkOnly: "roles are counted across the nodes"
      })
      const issue = issueAt(error, "k3s.server")
      assert.strictEqual(issue?.code, "missing-key")
      assert.include(issue?.expected ?? "", "at least one VM with role: server")
      assert.include(issue?.suggestion ?? "", "k3s.role: server")
    })
  )

  it.effect("rejects a bad apiEndpoint (config check) and maxUnavailable 0 (both)", () =>
    Effect.gen(function* () {
      const bad = yield* parseErr(`${minimal}k3s:\n  role: server\n  apiEndpoint: "http://k3s.lan"\n`, baseEnv, {
        checkOnly: "the address format is checked by code"
      })
      assert.strictEqual(issueAt(bad, "k3s.apiEndpoint")?.code, "invalid-value")
      const zero = yield* parseErr(`${minimal}k3s:\n  role: server\n  upgrade: { maxUnavailable: 0 }\n`)
      assert.strictEqual(issueAt(zero, "k3s.upgrade.maxUnavailable")?.code, "invalid-value")
    })
  )
})

describe("static VM addresses and VM names that cannot work", () => {
  const checkOnly: SchemaVerdict = { checkOnly: "addresses and VM names are compared across the document" }
  /** `minimal` with node pve1 at 10.0.0.2 holding one VM with `vm` (a flow mapping body), then `extra`. */
  const withVm = (vm: string, extra = "") => `${minimal}    address: 10.0.0.2
    vms: [{ ${vm} }]
${extra}`
  const summary = (error: ConfigError) =>
    error.issues.map((issue) => [issue.code, issue.path, issue.line, issue.found, issue.suggestion])

  it.effect("a VM on a PVE node's own address (nodes[].address, nodes[].api, proxmox.endpoint) is a conflict", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(withVm('ipConfig: "ip=10.0.0.2/24,gw=10.0.0.1"'), baseEnv, checkOnly)
      assert.deepStrictEqual(summary(error), [
        [
          "conflict",
          "nodes[0].vms[0].ipConfig",
          11,
          "10.0.0.2 for VM k3s-vm-pve1, the address of PVE node pve1 (nodes[0].address)",
          "give the VM an address of its own in nodes[0].vms[0].ipConfig"
        ]
      ])
      assert.include(error.message, "two machines on one address break each other's ARP")
      // another node's address, written differently (IPv6), through vm.ipConfig
      const v6 = yield* parseErr(
        `${minimal}  - name: pve2
    address: "fd00:0::2"
vm:
  ipConfig: "ip6=fd00::2/64"
`,
        baseEnv,
        checkOnly
      )
      assert.deepStrictEqual(summary(v6)[0], [
        "conflict",
        "vm.ipConfig",
        13,
        "fd00::2 for VM k3s-vm-pve1, the address of PVE node pve2 (nodes[1].address)",
        "give the VM an address of its own in vm.ipConfig"
      ])
      const api = yield* parseErr(
        `${minimal}    api: https://10.0.0.3:8006
    vms: [{ ipConfig: "ip=10.0.0.3/24" }]
`,
        baseEnv,
        checkOnly
      )
      assert.deepStrictEqual(
        summary(api)[0]?.[3],
        "10.0.0.3 for VM k3s-vm-pve1, the API address of PVE node pve1 (nodes[0].api)"
      )
      const endpoint = yield* parseErr(
        `${minimal.replace("https://pve1.lan", "https://10.0.0.9")}    vms: [{ ipConfig: "ip=10.0.0.9/24" }]\n`,
        baseEnv,
        checkOnly
      )
      assert.deepStrictEqual(
        summary(endpoint)[0]?.[3],
        "10.0.0.9 for VM k3s-vm-pve1, the PVE API's address (proxmox.endpoint)"
      )
    })
  )

  it.effect("a VM on k3s.server's address is a conflict, unless it is a server VM (that server itself)", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(
        withVm('ipConfig: "ip=10.0.0.7/24,gw=10.0.0.1"', "k3s:\n  server: { host: 10.0.0.7 }\n"),
        baseEnv,
        checkOnly
      )
      assert.deepStrictEqual(summary(error), [
        [
          "conflict",
          "nodes[0].vms[0].ipConfig",
          11,
          "10.0.0.7 for VM k3s-vm-pve1 (role agent), the address of k3s.server.host",
          "give the VM an address of its own in nodes[0].vms[0].ipConfig; if this VM is that server itself, give it role: server"
        ]
      ])
      yield* parseOk(
        withVm('role: server, ipConfig: "ip=10.0.0.7/24,gw=10.0.0.1"', "k3s:\n  server: { host: 10.0.0.7 }\n")
      )
    })
  )

  it.effect("the subnet's network or broadcast address is refused, except in a /31 or /32 (RFC 3021)", () =>
    Effect.gen(function* () {
      const network = yield* parseErr(withVm('ipConfig: "ip=10.0.0.0/24,gw=10.0.0.1"'), baseEnv, checkOnly)
      assert.deepStrictEqual(summary(network), [
        [
          "invalid-value",
          "nodes[0].vms[0].ipConfig",
          11,
          "ip=10.0.0.0/24: 10.0.0.0 is the network address of 10.0.0.0/24",
          "use an address from 10.0.0.1 to 10.0.0.254, or correct the prefix length"
        ]
      ])
      const broadcast = yield* parseErr(withVm('ipConfig: "ip=10.0.0.255/24,gw=10.0.0.1"'), baseEnv, checkOnly)
      assert.deepStrictEqual(summary(broadcast), [
        [
          "invalid-value",
          "nodes[0].vms[0].ipConfig",
          11,
          "ip=10.0.0.255/24: 10.0.0.255 is the broadcast address of 10.0.0.0/24",
          "use an address from 10.0.0.1 to 10.0.0.254, or correct the prefix length"
        ]
      ])
      assert.include(broadcast.message, "not the subnet's broadcast address")
      // both addresses of a /31 are hosts, and a /32 is one
      yield* parseOk(withVm('ipConfig: "ip=10.0.0.4/31,gw=10.0.0.5"'))
      yield* parseOk(withVm('ipConfig: "ip=10.0.0.5/31,gw=10.0.0.4"'))
      yield* parseOk(withVm('ipConfig: "ip=10.0.0.0/32,gw=10.0.0.1"'))
      // IPv6 has no broadcast address; its all-zero host is the subnet-router anycast address (not in a /127)
      const anycast = yield* parseErr(withVm('ipConfig: "ip6=fd00:0:0:1::/64"'), baseEnv, checkOnly)
      assert.deepStrictEqual(
        summary(anycast)[0]?.[3],
        "ip6=fd00:0:0:1::/64: fd00:0:0:1:: is the subnet-router anycast address of fd00:0:0:1::/64"
      )
      yield* parseOk(withVm('ipConfig: "ip6=fd00::ffff:ffff:ffff:ffff/64"'))
      yield* parseOk(withVm('ipConfig: "ip6=fd00::/127"'))
    })
  )

  it.effect("a gateway outside the VM's subnet is refused (not for a /32, nor a link-local IPv6 gateway)", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(withVm('ipConfig: "ip=10.0.0.5/24,gw=192.168.9.1"'), baseEnv, checkOnly)
      assert.deepStrictEqual(summary(error), [
        [
          "invalid-value",
          "nodes[0].vms[0].ipConfig",
          11,
          "gw=192.168.9.1, outside 10.0.0.0/24",
          "set gw to the router's address in 10.0.0.0/24, or correct ip's prefix length"
        ]
      ])
      assert.include(error.message, "gw inside the VM's subnet 10.0.0.0/24 (ip=10.0.0.5/24)")
      const v6 = yield* parseErr(withVm('ipConfig: "ip=dhcp,ip6=fd00::5/64,gw6=fd01::1"'), baseEnv, checkOnly)
      assert.deepStrictEqual(summary(v6)[0]?.slice(3), [
        "gw6=fd01::1, outside fd00::/64",
        "set gw6 to the router's address in fd00::/64 (or its link-local fe80:: address), or correct ip6's prefix length"
      ])
      yield* parseOk(withVm('ipConfig: "ip6=fd00::5/64,gw6=fe80::1"'))
      // a /32 has no room for a gateway: cloud-init makes it an on-link route
      yield* parseOk(withVm('ipConfig: "ip=192.168.1.9/32,gw=192.168.1.1"'))
      // nor may the gateway be the subnet's broadcast address
      const broadcastGw = yield* parseErr(withVm('ipConfig: "ip=10.0.0.5/24,gw=10.0.0.255"'), baseEnv, checkOnly)
      assert.deepStrictEqual(summary(broadcastGw)[0]?.[3], "gw=10.0.0.255, the broadcast address of 10.0.0.0/24")
    })
  )

  it.effect("a gateway equal to the VM's own address is refused", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(
        `${minimal}vm:
  ipConfig: "ip=10.0.0.5/24,gw=10.0.0.5"
`,
        baseEnv,
        checkOnly
      )
      assert.deepStrictEqual(summary(error), [
        [
          "invalid-value",
          "vm.ipConfig",
          11,
          "gw=10.0.0.5, the VM's own address (ip=10.0.0.5/24)",
          "set gw to the router's address in 10.0.0.0/24"
        ]
      ])
      const v6 = yield* parseErr(withVm('ipConfig: "ip6=fd00::5/64,gw6=FD00::5"'), baseEnv, checkOnly)
      assert.deepStrictEqual(summary(v6)[0]?.[3], "gw6=FD00::5, the VM's own address (ip6=fd00::5/64)")
    })
  )

  it.effect("two VMs on one IPv6 address are a duplicate, however it is written", () =>
    Effect.gen(function* () {
      const error = yield* parseErr(
        withVm('ipConfig: "ip6=fd00::5/64" }, { name: web2, ipConfig: "ip6=fd00:0:0::5/64"'),
        baseEnv,
        checkOnly
      )
      assert.deepStrictEqual(summary(error), [
        [
          "duplicate",
          "nodes[0].vms[1].ipConfig",
          11,
          "fd00:0:0::5, already used by VM k3s-vm-pve1",
          "give each VM its own ipConfig (nodes[].vms[].ipConfig)"
        ]
      ])
    })
  )

  it.effect("a VM name longer than a DNS label (63) is refused; with k3s, also a long or upper-case name", () =>
    Effect.gen(function* () {
      const long = "a".repeat(64)
      const error = yield* parseErr(withVm(`name: ${long}`), baseEnv, checkOnly)
      assert.deepStrictEqual(summary(error), [
        ["invalid-value", "nodes[0].vms[0].name", 11, `"${long}" (64 characters)`, "shorten nodes[0].vms[0].name"]
      ])
      assert.include(error.message, "at most 63 characters")
      // from the template: the node name makes it too long
      const fromTemplate = yield* parseErr(
        `${minimal}vm:
  nameTemplate: "${"k".repeat(60)}-{node}"
`,
        baseEnv,
        checkOnly
      )
      assert.deepStrictEqual(summary(fromTemplate)[0]?.slice(3), [
        `"${"k".repeat(60)}-pve1" (65 characters) (from vm.nameTemplate "${"k".repeat(60)}-{node}")`,
        "shorten vm.nameTemplate, or give the VM a shorter name (nodes[].vms[].name)"
      ])
      // dots: each label is at most 63, and without k3s the name may be longer (PVE's hostname is the first label)
      const dotted = `${"a".repeat(40)}.${"b".repeat(40)}`
      yield* parseOk(withVm(`name: ${dotted}`))
      const withK3s = yield* parseErr(withVm(`name: ${dotted}`, "k3s:\n  role: server\n"), baseEnv, checkOnly)
      assert.deepStrictEqual(summary(withK3s)[0]?.slice(3), [
        `"${dotted}" (81 characters)`,
        `shorten nodes[0].vms[0].name`
      ])
      assert.include(withK3s.message, "kubernetes.io/hostname")
      // k3s lower-cases the Node name; homelab looks for the VM name as written
      yield* parseOk(withVm("name: Web1"))
      const upper = yield* parseErr(withVm("name: Web1", "k3s:\n  role: server\n"), baseEnv, checkOnly)
      assert.deepStrictEqual(summary(upper), [["invalid-value", "nodes[0].vms[0].name", 11, '"Web1"', 'write "web1"']])
      assert.include(upper.message, "lower-case VM name with k3s")
    })
  )
})

describe("image.content: iso needs SSH", () => {
  it.effect("with proxmox.fallback: off it is refused at image.content, naming the ways out; with ssh it is fine", () =>
    Effect.gen(function* () {
      const iso = minimal.replace("image:\n  url", "image:\n  content: iso\n  url")
      const off = iso.replace("proxmox:\n", "proxmox:\n  fallback: off\n")
      const error = yield* parseErr(off, baseEnv, {
        checkOnly: "compares image.content with proxmox.fallback"
      })
      assert.deepStrictEqual(
        error.issues.map((issue) => [issue.code, issue.path, issue.expected, issue.suggestion]),
        [
          [
            "conflict",
            "image.content",
            "image.content: import with proxmox.fallback: off (PVE imports a VM disk from an iso-type volume only by its absolute path, which only root@pam may pass, never an API token: homelab creates such VMs over SSH as root)",
            "use image.content: import (PVE 8.4+), or set proxmox.fallback: ssh"
          ]
        ]
      )
      const ok = yield* parseOk(iso)
      assert.deepStrictEqual([ok.image.content, ok.proxmox.fallback], ["iso", "ssh"])
    })
  )
})

describe("addresses that are no IP address nor host name", () => {
  const checkOnly: SchemaVerdict = { checkOnly: "the address format is checked by code" }
  const found = (error: ConfigError) => error.issues.map((issue) => [issue.path, issue.expected, issue.found])

  it.effect(
    "a dotted quad that is no IPv4 address is refused as a host name (nodes[].address, api, k3s.server.host)",
    () =>
      Effect.gen(function* () {
        const error = yield* parseErr(
          `${minimal}    address: 300.1.1.1\n  - name: pve2\n    address: "10.0.0"\nk3s:\n  server: { host: 10.0.0.256 }\n`,
          baseEnv,
          checkOnly
        )
        const expected =
          "an IP address (an IPv4 address is four numbers of 0..255, like 10.0.0.5) or a DNS host name (its last label not all digits)"
        assert.deepStrictEqual(found(error), [
          ["nodes[0].address", expected, '"300.1.1.1"'],
          ["nodes[1].address", expected, '"10.0.0"'],
          ["k3s.server.host", expected, '"10.0.0.256"']
        ])
        // nor is it in a node's API URL
        const api = yield* parseErr(`${minimal}    api: https://10.0.0:8006\n`, baseEnv, checkOnly)
        assert.deepStrictEqual(found(api), [
          [
            "nodes[0].api",
            "an https URL whose host is an IP address (an IPv4 address is four numbers of 0..255, like 10.0.0.5) or a DNS host name",
            '"https://10.0.0:8006"'
          ]
        ])
        // host names with digits, and IP addresses, stay fine
        const ok = yield* parseOk(
          `${minimal}    address: 10.0.0.2\n  - name: pve2\n    address: pve2.lab1\n  - name: pve3\n    address: 3com.lan\n  - name: pve4\n    address: "fd00::4"\n`
        )
        assert.deepStrictEqual(
          ok.nodes.map((n) => n.address),
          ["10.0.0.2", "pve2.lab1", "3com.lan", "fd00::4"]
        )
      })
  )

  it.effect("vm.nameserver takes IP addresses separated by spaces, as PVE hands them to cloud-init", () =>
    Effect.gen(function* () {
      const nameserver = (value: string) => `${minimal}vm:\n  nameserver: "${value}"\n`
      const commas = yield* parseErr(nameserver("1.1.1.1,8.8.8.8"), baseEnv, checkOnly)
      assert.deepStrictEqual(found(commas), [
        [
          "vm.nameserver",
          "IP addresses of DNS servers separated by spaces, not commas or semicolons (PVE splits the value at spaces only: cloud-init would get one server named 1.1.1.1,8.8.8.8)",
          '"1.1.1.1,8.8.8.8"'
        ]
      ])
      for (const [value, bad] of [
        ["dns.google", "dns.google"],
        ["1.1.1.1 1.2.3.999", "1.2.3.999"]
      ] as const) {
        const error = yield* parseErr(nameserver(value), baseEnv, checkOnly)
        assert.deepStrictEqual(found(error), [
          [
            "vm.nameserver",
            `IP addresses of DNS servers separated by spaces (${bad} is no IP address: cloud-init takes addresses only)`,
            `"${value}"`
          ]
        ])
      }
      // an empty one is only that
      const empty = yield* parseErr(nameserver(""))
      assert.deepStrictEqual(found(empty), [["vm.nameserver", "a non-empty string", '""']])
      const ok = yield* parseOk(nameserver("10.0.0.1  fd00::53"))
      assert.strictEqual(ok.vm.nameserver, "10.0.0.1  fd00::53")
    })
  )

  it.effect("vm.description is at most 8192 characters, as PVE takes a VM's notes", () =>
    Effect.gen(function* () {
      const description = (value: string) => `${minimal}vm:\n  description: "${value}"\n`
      // PVE refuses a longer one in the config update (`description: value may only be 8192 characters long`)
      const error = yield* parseErr(description("x".repeat(8193)))
      const issue = issueAt(error, "vm.description")
      assert.include(issue?.expected, "at most 8192 characters")
      const ok = yield* parseOk(description("x".repeat(8192)))
      assert.strictEqual(ok.vm.description?.length, 8192)
    })
  )
})

describe("image.url with credentials", () => {
  it.effect("is refused, naming why, and the password is not shown", () =>
    Effect.gen(function* () {
      const withUrl = (url: string) =>
        minimal.replace(
          "url: https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
          `url: ${url}`
        )
      const error = yield* parseErr(withUrl("https://mirror:s3cr3t-pw@images.lan/noble.img"), baseEnv, {
        checkOnly: "credentials in the URL are checked by code"
      })
      const issue = issueAt(error, "image.url")
      assert.include(issue?.expected, "without user:password@")
      assert.include(issue?.expected, "task log")
      assert.strictEqual(issue?.found, '"https://mirror:***@images.lan/noble.img"')
      assert.notInclude(error.message, "s3cr3t-pw")
      // a user name alone is refused too; a URL without credentials is fine
      yield* parseErr(withUrl("https://mirror@images.lan/noble.img"), baseEnv, {
        checkOnly: "credentials in the URL are checked by code"
      })
      const ok = yield* parseOk(withUrl("https://images.lan/noble.img"))
      assert.strictEqual(ok.image.url, "https://images.lan/noble.img")
    })
  )
})
