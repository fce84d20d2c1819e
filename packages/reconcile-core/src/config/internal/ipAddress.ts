/**
 * IPv4 and IPv6 addresses as numbers, for the static-address checks of `homelab.yaml`: one address in two spellings
 * (`fd00::5`, `fd00:0::5`) is one address, a subnet holds what its prefix says, and the network and broadcast
 * addresses of an IPv4 subnet (and the subnet-router anycast address of an IPv6 one) are known.
 */
import { isIP } from "node:net"

export interface IpAddress {
  readonly family: 4 | 6
  readonly value: bigint
}

export interface IpSubnet {
  /** The address as written in `ip=`/`ip6=` (host bits included). */
  readonly address: IpAddress
  readonly prefix: number
}

const bitsOf = (family: 4 | 6): number => (family === 4 ? 32 : 128)

const ipv4Value = (text: string): bigint =>
  text.split(".").reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n)

const ipv6Value = (text: string): bigint | undefined => {
  // an embedded IPv4 suffix (::ffff:10.0.0.5) is the last two groups
  const lastColon = text.lastIndexOf(":")
  const suffix = text.slice(lastColon + 1)
  const v4 = suffix.includes(".") ? ipv4Value(suffix) : undefined
  const hexText =
    v4 === undefined
      ? text
      : `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`
  const groups = (part: string): Array<bigint> => (part === "" ? [] : part.split(":").map((g) => BigInt(`0x${g}`)))
  const [left = "", right, ...more] = hexText.split("::")
  if (more.length > 0) return undefined
  const before = groups(left)
  const after = right === undefined ? [] : groups(right)
  const missing = 8 - before.length - after.length
  if (right === undefined ? missing !== 0 : missing < 0) return undefined
  return [...before, ...Array.from({ length: missing }, () => 0n), ...after].reduce((acc, g) => (acc << 16n) | g, 0n)
}

/** Parses an IPv4 or IPv6 address (no zone, no prefix); undefined for anything else (a host name, say). */
export const parseIp = (text: string): IpAddress | undefined => {
  const trimmed = text.trim()
  const family = isIP(trimmed)
  if (family === 4) return { family: 4, value: ipv4Value(trimmed) }
  if (family === 6 && !trimmed.includes("%")) {
    const value = ipv6Value(trimmed.toLowerCase())
    return value === undefined ? undefined : { family: 6, value }
  }
  return undefined
}

/** Parses `address/prefix` (IPv4 or IPv6); undefined when either part is not valid. */
export const parseCidr = (text: string): IpSubnet | undefined => {
  const [ip, prefix, ...rest] = text.trim().split("/")
  if (rest.length > 0 || ip === undefined || prefix === undefined || !/^[0-9]{1,3}$/u.test(prefix)) return undefined
  const address = parseIp(ip)
  if (address === undefined || Number(prefix) > bitsOf(address.family)) return undefined
  return { address, prefix: Number(prefix) }
}

export const sameIp = (a: IpAddress, b: IpAddress): boolean => a.family === b.family && a.value === b.value

const hostMask = (subnet: IpSubnet): bigint => (1n << BigInt(bitsOf(subnet.address.family) - subnet.prefix)) - 1n

/** The subnet's first address (all host bits zero): IPv4's network address, IPv6's subnet-router anycast address. */
export const networkOf = (subnet: IpSubnet): IpAddress => ({
  family: subnet.address.family,
  value: subnet.address.value & ~hostMask(subnet)
})

/** The subnet's last address (all host bits one): IPv4's broadcast address. */
export const lastOf = (subnet: IpSubnet): IpAddress => ({
  family: subnet.address.family,
  value: subnet.address.value | hostMask(subnet)
})

export const inSubnet = (subnet: IpSubnet, ip: IpAddress): boolean =>
  ip.family === subnet.address.family && (ip.value & ~hostMask(subnet)) === networkOf(subnet).value

/** fe80::/10: an IPv6 gateway is usually the router's link-local address, on-link by definition. */
export const isLinkLocal = (ip: IpAddress): boolean => ip.family === 6 && ip.value >> 118n === 0x3fan

/** The address in its usual spelling: dotted IPv4, RFC 5952 IPv6 (lower case, the longest run of zeros as `::`). */
export const formatIp = (ip: IpAddress): string => {
  if (ip.family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((ip.value >> shift) & 0xffn)).join(".")
  const groups = Array.from({ length: 8 }, (_, i) => (ip.value >> BigInt(112 - 16 * i)) & 0xffffn)
  let best = { start: -1, length: 0 }
  for (let i = 0; i < 8; i++) {
    let j = i
    while (j < 8 && groups[j] === 0n) j++
    if (j - i > best.length && j - i >= 2) best = { start: i, length: j - i }
    i = j
  }
  const hex = (list: ReadonlyArray<bigint>) => list.map((g) => g.toString(16)).join(":")
  if (best.start < 0) return hex(groups)
  return `${hex(groups.slice(0, best.start))}::${hex(groups.slice(best.start + best.length))}`
}

/** `10.0.0.5/24` → `10.0.0.0/24`. */
export const formatSubnet = (subnet: IpSubnet): string => `${formatIp(networkOf(subnet))}/${subnet.prefix}`
