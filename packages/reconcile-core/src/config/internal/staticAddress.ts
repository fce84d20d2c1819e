/**
 * The static addresses of one PVE `ipconfigN` value, and what makes them unusable on their own: an address that no
 * host can take (IPv4's network and broadcast addresses, IPv6's subnet-router anycast address) and a gateway the VM
 * cannot reach (outside its subnet, or the VM itself). Conflicts with other machines are for the caller.
 */
import { checkIpConfig } from "./formats.js"
import {
  formatIp,
  formatSubnet,
  type IpAddress,
  type IpSubnet,
  inSubnet,
  isLinkLocal,
  lastOf,
  networkOf,
  parseCidr,
  parseIp,
  sameIp
} from "./ipAddress.js"

export interface StaticAddress {
  /** `ip` or `ip6`. */
  readonly key: "ip" | "ip6"
  readonly subnet: IpSubnet
  /** The address as written (without the prefix). */
  readonly written: string
  /** `gw` or `gw6`, when set. */
  readonly gateway?: { readonly key: "gw" | "gw6"; readonly address: IpAddress; readonly written: string }
}

/** The static `ip=` and `ip6=` of a valid ipconfig value, with their gateways; none for DHCP/SLAAC or an invalid one. */
export const staticAddresses = (ipConfig: string): Array<StaticAddress> => {
  if (checkIpConfig(ipConfig) !== undefined) return []
  const values = new Map(
    ipConfig.split(",").map((part) => {
      const eq = part.indexOf("=")
      return [part.slice(0, eq).trim(), part.slice(eq + 1).trim()] as const
    })
  )
  const out: Array<StaticAddress> = []
  for (const [key, gwKey] of [
    ["ip", "gw"],
    ["ip6", "gw6"]
  ] as const) {
    const cidr = values.get(key)
    const subnet = cidr === undefined ? undefined : parseCidr(cidr)
    if (cidr === undefined || subnet === undefined) continue
    const gw = values.get(gwKey)
    const gateway = gw === undefined ? undefined : parseIp(gw)
    out.push({
      key,
      subnet,
      written: cidr.split("/")[0] as string,
      ...(gw === undefined || gateway === undefined ? {} : { gateway: { key: gwKey, address: gateway, written: gw } })
    })
  }
  return out
}

export interface AddressProblem {
  readonly expected: string
  readonly found: string
  readonly suggestion: string
}

const hostRange = (subnet: IpSubnet): string =>
  `${formatIp({ ...networkOf(subnet), value: networkOf(subnet).value + 1n })} to ${formatIp({ ...lastOf(subnet), value: lastOf(subnet).value - 1n })}`

/**
 * What makes one static address unusable by itself. IPv4 /31 and /32 have no network or broadcast address (RFC 3021),
 * nor IPv6 /127 and /128 a subnet-router anycast address (RFC 6164). A /32 (/128) has no other address for a gateway
 * in it: cloud-init renders such a gateway as an on-link route, so it is not refused there; nor is a link-local IPv6
 * gateway (fe80::/10), the usual one.
 */
export const addressProblems = (address: StaticAddress): Array<AddressProblem> => {
  const { key, subnet, written } = address
  const ip = subnet.address
  const v4 = ip.family === 4
  const bits = v4 ? 32 : 128
  const cidr = `${key}=${written}/${subnet.prefix}`
  const problems: Array<AddressProblem> = []
  if (subnet.prefix <= bits - 2) {
    if (sameIp(ip, networkOf(subnet))) {
      problems.push(
        v4
          ? {
              expected:
                "an ip that is a host address of its subnet, not the subnet's network address (no host can use it)",
              found: `${cidr}: ${written} is the network address of ${formatSubnet(subnet)}`,
              suggestion: `use an address from ${hostRange(subnet)}, or correct the prefix length`
            }
          : {
              expected:
                "an ip6 that is a host address of its subnet, not the subnet-router anycast address (all host bits zero: RFC 4291 gives it to the subnet's routers)",
              found: `${cidr}: ${written} is the subnet-router anycast address of ${formatSubnet(subnet)}`,
              suggestion: `use another address of ${formatSubnet(subnet)}, or correct the prefix length`
            }
      )
    } else if (v4 && sameIp(ip, lastOf(subnet))) {
      problems.push({
        expected:
          "an ip that is a host address of its subnet, not the subnet's broadcast address (packets to it go to every host on the subnet)",
        found: `${cidr}: ${written} is the broadcast address of ${formatSubnet(subnet)}`,
        suggestion: `use an address from ${hostRange(subnet)}, or correct the prefix length`
      })
    }
  }
  const gateway = address.gateway
  if (gateway === undefined) return problems
  const gw = `${gateway.key}=${gateway.written}`
  if (sameIp(gateway.address, ip)) {
    problems.push({
      expected: `${gateway.key} to be the router's address, not the VM's own (the VM would send all other traffic to itself)`,
      found: `${gw}, the VM's own address (${cidr})`,
      suggestion: `set ${gateway.key} to the router's address${subnet.prefix < bits ? ` in ${formatSubnet(subnet)}` : ""}`
    })
  } else if (subnet.prefix < bits && !inSubnet(subnet, gateway.address) && !isLinkLocal(gateway.address)) {
    problems.push({
      expected: `${gateway.key} inside the VM's subnet ${formatSubnet(subnet)} (${cidr}): the VM reaches its gateway directly, on its own network`,
      found: `${gw}, outside ${formatSubnet(subnet)}`,
      suggestion: `set ${gateway.key} to the router's address in ${formatSubnet(subnet)}${v4 ? "" : " (or its link-local fe80:: address)"}, or correct ${key}'s prefix length`
    })
  } else if (
    v4 &&
    subnet.prefix <= 30 &&
    (sameIp(gateway.address, networkOf(subnet)) || sameIp(gateway.address, lastOf(subnet)))
  ) {
    const which = sameIp(gateway.address, networkOf(subnet)) ? "network" : "broadcast"
    problems.push({
      expected: `a gw that is a host address of ${formatSubnet(subnet)} (the router's), not the subnet's ${which} address`,
      found: `${gw}, the ${which} address of ${formatSubnet(subnet)}`,
      suggestion: `set gw to the router's address, one of ${hostRange(subnet)}`
    })
  }
  return problems
}
