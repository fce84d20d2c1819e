import { assert, describe, it } from "@effect/vitest"
import {
  formatIp,
  formatSubnet,
  inSubnet,
  isLinkLocal,
  lastOf,
  networkOf,
  parseCidr,
  parseIp,
  sameIp
} from "../../../src/config/internal/ipAddress.js"

const ip = (text: string) => {
  const parsed = parseIp(text)
  assert.isDefined(parsed, text)
  return parsed as NonNullable<typeof parsed>
}
const cidr = (text: string) => {
  const parsed = parseCidr(text)
  assert.isDefined(parsed, text)
  return parsed as NonNullable<typeof parsed>
}

describe("ipAddress", () => {
  it("reads one address in every spelling as one number, and writes it the usual way (RFC 5952)", () => {
    assert.strictEqual(ip("10.0.0.5").value, 0x0a000005n)
    assert.isTrue(sameIp(ip("fd00::5"), ip("FD00:0:0:0::0005")))
    assert.isTrue(sameIp(ip("::ffff:10.0.0.5"), ip("::ffff:a00:5")))
    assert.isFalse(sameIp(ip("::a00:5"), ip("10.0.0.5")))
    assert.deepStrictEqual(
      [
        "fd00:0:0:1::",
        "2001:db8:0:0:1:0:0:1",
        "::",
        "::1",
        "1::",
        "fe80:0:0:0:0:0:0:1",
        "1:2:3:4:5:6:7:8",
        "1:0:2:3:4:5:6:7"
      ].map((text) => formatIp(ip(text))),
      ["fd00:0:0:1::", "2001:db8::1:0:0:1", "::", "::1", "1::", "fe80::1", "1:2:3:4:5:6:7:8", "1:0:2:3:4:5:6:7"]
    )
    assert.strictEqual(formatIp(ip("192.168.1.255")), "192.168.1.255")
  })

  it("is nothing for host names, zones and prefixes it cannot hold", () => {
    assert.deepStrictEqual(["pve1.lan", "fe80::1%eth0", "10.0.0.256", ""].map(parseIp), [
      undefined,
      undefined,
      undefined,
      undefined
    ])
    assert.deepStrictEqual(["10.0.0.5/33", "fd00::5/129", "10.0.0.5", "10.0.0.5/24/1"].map(parseCidr), [
      undefined,
      undefined,
      undefined,
      undefined
    ])
  })

  it("knows a subnet's first and last address and what it holds", () => {
    const lan = cidr("10.0.0.5/24")
    assert.deepStrictEqual(
      [formatIp(networkOf(lan)), formatIp(lastOf(lan)), formatSubnet(lan)],
      ["10.0.0.0", "10.0.0.255", "10.0.0.0/24"]
    )
    assert.isTrue(inSubnet(lan, ip("10.0.0.1")))
    assert.isFalse(inSubnet(lan, ip("10.0.1.1")))
    assert.isFalse(inSubnet(lan, ip("::ffff:10.0.0.1")))
    assert.strictEqual(formatSubnet(cidr("fd00::5/64")), "fd00::/64")
    assert.isTrue(inSubnet(cidr("0.0.0.0/0"), ip("8.8.8.8")))
    assert.isTrue(inSubnet(cidr("10.0.0.5/32"), ip("10.0.0.5")))
    assert.isFalse(inSubnet(cidr("10.0.0.5/32"), ip("10.0.0.4")))
    assert.deepStrictEqual(
      ["fe80::1", "febf::1", "fec0::1", "fd00::1", "10.0.0.1"].map((text) => isLinkLocal(ip(text))),
      [true, true, false, false, false]
    )
  })
})
