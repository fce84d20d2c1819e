import { assert, describe, it } from "@effect/vitest"
import { addressProblems, staticAddresses } from "../../../src/config/internal/staticAddress.js"

/** The `found` of each problem of each static address of an ipconfig value. */
const found = (ipConfig: string) =>
  staticAddresses(ipConfig).flatMap((address) => addressProblems(address).map((p) => p.found))

describe("staticAddresses", () => {
  it("reads the static ip and ip6 with their gateways; DHCP, SLAAC and invalid values have none", () => {
    assert.deepStrictEqual(
      staticAddresses("ip=10.0.0.5/24,gw=10.0.0.1,ip6=fd00::5/64").map((a) => [
        a.key,
        a.written,
        a.subnet.prefix,
        a.gateway?.written
      ]),
      [
        ["ip", "10.0.0.5", 24, "10.0.0.1"],
        ["ip6", "fd00::5", 64, undefined]
      ]
    )
    assert.deepStrictEqual(
      ["ip=dhcp", "ip6=auto", "ip=dhcp,ip6=dhcp", "ip=10.0.0.5", "ip=10.0.0.5/24,gw=fd00::1"].map(staticAddresses),
      [[], [], [], [], []]
    )
  })
})

describe("addressProblems", () => {
  it("accepts host addresses with a gateway in their subnet", () => {
    assert.deepStrictEqual(
      [
        "ip=10.0.0.5/24,gw=10.0.0.1",
        "ip=10.0.0.1/30,gw=10.0.0.2",
        "ip=10.0.0.4/31,gw=10.0.0.5",
        "ip=10.0.0.5/31",
        "ip=10.0.0.0/32",
        "ip=10.0.0.255/32,gw=192.168.1.1",
        "ip6=fd00::5/64,gw6=fd00::1",
        "ip6=fd00::5/64,gw6=fe80::1",
        "ip6=fd00::/127",
        "ip6=fd00::5/128,gw6=fd00::1"
      ].flatMap(found),
      []
    )
  })

  it("refuses the network and broadcast address (not in a /31 or /32) and the IPv6 subnet-router anycast address", () => {
    assert.deepStrictEqual(
      [
        "ip=10.0.0.0/24",
        "ip=10.0.0.255/24",
        "ip=10.0.0.4/30",
        "ip=10.0.0.7/30",
        "ip6=fd00::/64",
        "ip6=fd00::/126"
      ].flatMap(found),
      [
        "ip=10.0.0.0/24: 10.0.0.0 is the network address of 10.0.0.0/24",
        "ip=10.0.0.255/24: 10.0.0.255 is the broadcast address of 10.0.0.0/24",
        "ip=10.0.0.4/30: 10.0.0.4 is the network address of 10.0.0.4/30",
        "ip=10.0.0.7/30: 10.0.0.7 is the broadcast address of 10.0.0.4/30",
        "ip6=fd00::/64: fd00:: is the subnet-router anycast address of fd00::/64",
        "ip6=fd00::/126: fd00:: is the subnet-router anycast address of fd00::/126"
      ]
    )
    // an IPv6 all-ones host is an ordinary address (no broadcast in IPv6)
    assert.deepStrictEqual(found("ip6=fd00::ffff:ffff:ffff:ffff/64"), [])
    const [problem] = staticAddresses("ip=10.0.0.0/30").flatMap(addressProblems)
    assert.strictEqual(problem?.suggestion, "use an address from 10.0.0.1 to 10.0.0.2, or correct the prefix length")
  })

  it("refuses a gateway outside the subnet, the VM's own address as gateway, and the subnet's network or broadcast as gateway", () => {
    assert.deepStrictEqual(
      [
        "ip=10.0.0.5/24,gw=192.168.9.1",
        "ip=10.0.0.4/31,gw=10.0.0.6",
        "ip=10.0.0.5/24,gw=10.0.0.5",
        "ip=10.0.0.5/32,gw=10.0.0.5",
        "ip=10.0.0.5/24,gw=10.0.0.0",
        "ip6=fd00::5/64,gw6=fd01::1",
        "ip6=fd00::5/64,gw6=fd00:0::5"
      ].flatMap(found),
      [
        "gw=192.168.9.1, outside 10.0.0.0/24",
        "gw=10.0.0.6, outside 10.0.0.4/31",
        "gw=10.0.0.5, the VM's own address (ip=10.0.0.5/24)",
        "gw=10.0.0.5, the VM's own address (ip=10.0.0.5/32)",
        "gw=10.0.0.0, the network address of 10.0.0.0/24",
        "gw6=fd01::1, outside fd00::/64",
        "gw6=fd00:0::5, the VM's own address (ip6=fd00::5/64)"
      ]
    )
    // both problems of one value are reported
    assert.deepStrictEqual(found("ip=10.0.0.255/24,gw=10.1.0.1,ip6=fd00::/64,gw6=fd00::"), [
      "ip=10.0.0.255/24: 10.0.0.255 is the broadcast address of 10.0.0.0/24",
      "gw=10.1.0.1, outside 10.0.0.0/24",
      "ip6=fd00::/64: fd00:: is the subnet-router anycast address of fd00::/64",
      "gw6=fd00::, the VM's own address (ip6=fd00::/64)"
    ])
  })
})
