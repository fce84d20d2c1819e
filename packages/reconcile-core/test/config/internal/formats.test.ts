import { assert, describe, it } from "@effect/vitest"
import {
  checkEndpointUrl,
  checkIpConfig,
  checkSshKey,
  deriveImageFilename,
  normaliseEndpoint
} from "../../../src/config/internal/formats.js"

describe("checkIpConfig (PVE ipconfigN grammar)", () => {
  it("accepts the forms PVE accepts", () => {
    for (const value of [
      "ip=dhcp",
      "ip=10.0.0.5/24",
      "ip=10.0.0.5/24,gw=10.0.0.1",
      "ip6=auto",
      "ip6=dhcp",
      "ip=dhcp,ip6=fd00::5/64,gw6=fd00::1",
      "ip=192.168.1.9/32,gw=192.168.1.1,ip6=auto"
    ]) {
      assert.strictEqual(checkIpConfig(value), undefined, value)
    }
  })

  it("says what is wrong otherwise", () => {
    assert.deepStrictEqual(
      [
        "dhcp",
        "ip=dhcp,dns=1.1.1.1",
        "ip=dhcp,ip=10.0.0.1/24",
        "ip=10.0.0.5",
        "ip=10.0.0.5/33",
        "ip=10.0.0.5/24,gw=fd00::1",
        "gw=10.0.0.1",
        "ip6=fd00::5",
        "ip6=auto,gw6=fd00::1",
        "gw6=fd00::1,ip6=fd00::5/64,ip=dhcp,gw=10.0.0.1"
      ].map(checkIpConfig),
      [
        'key=value pairs separated by commas (ip, gw, ip6, gw6); "dhcp" has no key',
        'only the keys ip, gw, ip6, gw6; "dns" is not one of them',
        'each key at most once; "ip" is repeated',
        'ip to be "dhcp" or an IPv4 CIDR like 10.0.0.5/24',
        'ip to be "dhcp" or an IPv4 CIDR like 10.0.0.5/24',
        "gw to be an IPv4 address",
        "gw only together with a static ip (PVE ignores it)",
        'ip6 to be "dhcp", "auto" or an IPv6 CIDR like fd00::5/64',
        "gw6 only together with a static ip6 (PVE ignores it)",
        "gw only together with a static ip (PVE ignores it)"
      ]
    )
  })
})

describe("endpoints", () => {
  it("accepts https origins (optionally /api2/json) and makes the port explicit", () => {
    assert.strictEqual(checkEndpointUrl("https://pve1.lan"), undefined)
    assert.strictEqual(checkEndpointUrl("https://pve1.lan:8006/api2/json/"), undefined)
    assert.strictEqual(
      checkEndpointUrl("http://pve1.lan"),
      "an https URL (the PVE API only listens on https), not http://"
    )
    assert.strictEqual(
      checkEndpointUrl("pve1.lan:8006"),
      "an https URL like https://pve1.lan:8006 (https:// is missing)"
    )
    assert.strictEqual(
      checkEndpointUrl("https://root:pw@pve1.lan"),
      "an https URL without credentials (use proxmox.auth)"
    )
    assert.strictEqual(checkEndpointUrl("https://pve1.lan/ui"), "an https URL without a path (or with /api2/json)")
    assert.strictEqual(checkEndpointUrl("https://"), "an https URL like https://pve1.lan:8006")
    assert.deepStrictEqual(normaliseEndpoint("https://PVE1.lan/api2/json"), {
      url: "https://pve1.lan:8006",
      host: "pve1.lan",
      port: 8006
    })
  })
})

describe("deriveImageFilename (PVE download-url extension rules)", () => {
  it("maps URLs to storage file names per content type", () => {
    const cases: Array<[string, "import" | "iso"]> = [
      ["https://x.org/noble-server-cloudimg-amd64.img", "import"],
      ["https://x.org/debian-12.qcow2?token=1", "import"],
      ["https://x.org/disk.RAW", "import"],
      ["https://x.org/app.ova", "import"],
      ["https://x.org/my%20image.img", "import"],
      ["https://x.org/alpine.iso", "iso"],
      ["https://x.org/noble.img", "iso"],
      ["https://x.org/image.tar.xz", "import"],
      ["https://x.org/", "import"],
      ["https://x.org/a.qcow2", "iso"]
    ]
    assert.deepStrictEqual(
      cases.map(([url, content]) => deriveImageFilename(url, content)),
      [
        { filename: "noble-server-cloudimg-amd64.qcow2" },
        { filename: "debian-12.qcow2" },
        { filename: "disk.raw" }, // PVE checks the import extension in lowercase
        { filename: "app.ova" },
        { filename: "my_image.qcow2" },
        { filename: "alpine.iso" },
        { filename: "noble.img" },
        { error: "a URL ending in .qcow2, .raw, .vmdk, .ova or .img for content import (or set image.filename)" },
        { error: "a URL with a file name in its path" },
        { error: "a URL ending in .iso or .img for content iso (or set image.filename)" }
      ]
    )
  })
})

describe("checkSshKey", () => {
  it("accepts key lines and *.pub paths only", () => {
    assert.strictEqual(checkSshKey("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG0 me@host"), undefined)
    assert.strictEqual(checkSshKey("ecdsa-sha2-nistp256 AAAAE2VjZHNh="), undefined)
    assert.strictEqual(checkSshKey("~/.ssh/id_ed25519.pub"), undefined)
    assert.strictEqual(
      checkSshKey("~/.ssh/id_ed25519"),
      "an SSH public key (ssh-ed25519 AAAA... comment) or a path to a *.pub file"
    )
  })
})
