import { assert, describe, it } from "@effect/vitest"
import { staticAddress } from "../src/staticAddress.js"

describe("staticAddress", () => {
  it("reads the IPv4 address of a static ipconfig0", () => {
    assert.strictEqual(staticAddress("ip=10.0.0.5/24,gw=10.0.0.1"), "10.0.0.5")
    assert.strictEqual(staticAddress("gw=10.0.0.1,ip=10.0.0.6/16"), "10.0.0.6")
    assert.strictEqual(staticAddress("ip=192.168.1.20/24,ip6=auto"), "192.168.1.20")
  })

  it("has none for DHCP, IPv6 only, no setting, or a value it cannot read", () => {
    assert.isUndefined(staticAddress("ip=dhcp"))
    assert.isUndefined(staticAddress("ip=dhcp,ip6=auto"))
    assert.isUndefined(staticAddress("ip6=fd00::5/64,gw6=fd00::1"))
    assert.isUndefined(staticAddress(undefined))
    assert.isUndefined(staticAddress("ip=10.0.0.5"))
    assert.isUndefined(staticAddress("ip=myhost/24"))
  })
})
