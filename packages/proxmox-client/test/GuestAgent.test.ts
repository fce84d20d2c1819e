import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { discoverIpv4, ExecStatus, GuestInterface } from "../src/index.js"

const nics = Schema.decodeUnknownSync(Schema.Array(GuestInterface))([
  {
    name: "lo",
    "hardware-address": "00:00:00:00:00:00",
    "ip-addresses": [{ "ip-address-type": "ipv4", "ip-address": "127.0.0.1", prefix: 8 }]
  },
  {
    name: "docker0",
    "hardware-address": "02:42:ac:11:00:01",
    "ip-addresses": [{ "ip-address-type": "ipv4", "ip-address": "172.17.0.1", prefix: 16 }]
  },
  {
    name: "cni0",
    "hardware-address": "bc:24:11:2e:7a:4c",
    "ip-addresses": [{ "ip-address-type": "ipv4", "ip-address": "10.42.0.1", prefix: 24 }]
  },
  { name: "flannel.1", "ip-addresses": [{ "ip-address-type": "ipv4", "ip-address": "10.42.0.0", prefix: 32 }] },
  { name: "vethabc", "ip-addresses": [] },
  { name: "cali123", "ip-addresses": [{ "ip-address-type": "ipv4", "ip-address": "10.1.1.1" }] },
  {
    name: "eth1",
    "hardware-address": "bc:24:11:00:00:02",
    "ip-addresses": [{ "ip-address-type": "ipv4", "ip-address": "192.168.2.9", prefix: 24 }]
  },
  {
    name: "eth0",
    "hardware-address": "bc:24:11:2e:7a:4c",
    "ip-addresses": [
      { "ip-address-type": "ipv6", "ip-address": "fe80::1", prefix: 64 },
      { "ip-address-type": "ipv4", "ip-address": "127.77.0.10", prefix: 8 }
    ]
  },
  { name: "eth2" }
])

describe("discoverIpv4", () => {
  it("takes the IPv4 of the NIC whose MAC matches net0 (case-insensitive), accepting loopback addresses off lo", () => {
    assert.strictEqual(discoverIpv4(nics, "BC:24:11:2E:7A:4C"), "127.77.0.10")
    assert.strictEqual(discoverIpv4(nics, "bc:24:11:00:00:02"), "192.168.2.9")
  })
  it("skips lo, docker*, cni*, flannel*, veth*, cali* when no MAC is known", () => {
    assert.strictEqual(discoverIpv4(nics), "192.168.2.9")
    assert.strictEqual(discoverIpv4(nics.slice(0, 6)), undefined)
  })
  it("no NIC with that MAC → undefined", () => {
    assert.strictEqual(discoverIpv4(nics, "AA:AA:AA:AA:AA:AA"), undefined)
  })
})

describe("ExecStatus", () => {
  it("decodes exited 0/1 and output", () => {
    assert.deepStrictEqual(Schema.decodeUnknownSync(ExecStatus)({ exited: 1, exitcode: 0, "out-data": "hello\n" }), {
      exited: true,
      exitcode: 0,
      "out-data": "hello\n"
    })
    assert.deepStrictEqual(Schema.decodeUnknownSync(ExecStatus)({ exited: 0 }), { exited: false })
  })
})
