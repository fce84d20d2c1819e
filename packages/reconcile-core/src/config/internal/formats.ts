/**
 * Value formats shared by the config schema, the cross-field checks and `importEnv`.
 * Regular expressions carry the `u` flag so that Effect's JSON Schema generator exports them as `pattern`.
 */
import { isIP } from "node:net"

/** PVE `pve-node`: no dots, so an FQDN is not a node name. */
export const nodeNamePattern = /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/u
/** PVE `pve-storage-id` (case-insensitive). */
export const storageIdPattern = /^[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]$/u
/** A Linux bridge / SDN vnet name as PVE accepts it in `netN: bridge=`. */
export const bridgePattern = /^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$/u
/** PVE `pve-tag-list` element (validated case-insensitively, stored lowercase). */
export const tagPattern = /^[a-zA-Z0-9_][a-zA-Z0-9_\-+.]*$/u
/** PVE disk size for a new disk or `resize` (binary units; we require a positive size). */
export const diskSizePattern = /^[1-9][0-9]*[KMGT]?$/u
/** `user@realm!tokenname` as PVE prints it in the token list. */
export const tokenIdPattern = /^[^\s:@!]+@[a-zA-Z][a-zA-Z0-9._-]*![a-zA-Z][a-zA-Z0-9._-]*$/u
/** SHA-256 certificate fingerprint, 32 colon-separated hex bytes (what `GET /nodes` returns as `ssl_fingerprint`). */
export const fingerprintPattern = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){31}$/u
/**
 * A Linux user name that both `useradd` (shadow's default rule `[a-z_][a-z0-9_-]*`) and systemd (at most 31
 * characters, never numeric) accept; cloud-init creates `vm.user` with useradd. Nothing else (no dots, upper case,
 * spaces or shell characters) gets near a guest's shell or sudoers file.
 */
export const linuxUserPattern = /^[a-z_][a-z0-9_-]{0,30}$/u
/** A k3s release as `INSTALL_K3S_VERSION` expects it. */
export const k3sVersionPattern = /^v[0-9]+\.[0-9]+\.[0-9]+(-rc[0-9]+)?\+k3s[0-9]+$/u
/** A channel of update.k3s.io (`INSTALL_K3S_CHANNEL`): stable, latest, testing, or one per minor (v1.31). */
export const k3sChannelPattern = /^(stable|latest|testing|v[0-9]+\.[0-9]+)$/u
/** A snippet volume as `cicustom` takes it: `<storage>:snippets/<file>` (PVE keeps snippets flat, no subfolders). */
export const snippetVolumePattern = /^[a-zA-Z][a-zA-Z0-9\-_.]*[a-zA-Z0-9]:snippets\/[^/,\s]+$/u
/** A QEMU CPU model name (`host`, `x86-64-v2-AES`, `kvm64`, ...). */
export const cpuTypePattern = /^[a-zA-Z0-9][a-zA-Z0-9_.+-]*$/u
/** A DNS label sequence as PVE's `dns-name` format accepts it (VM names). */
export const dnsNamePattern = /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/u
/**
 * A file name PVE stores as written for `content=import` (download-url, upload): only the characters
 * `normalize_content_filename` keeps, and an extension PVE accepts for import (lowercase, as it checks it).
 */
export const importFilenamePattern = /^[a-zA-Z0-9_.-]+\.(ova|qcow2|raw|vmdk)$/u
/** A file name PVE stores as written for `content=iso`: only the characters it keeps, `.iso` or `.img` (any case). */
export const isoFilenamePattern = /^[a-zA-Z0-9_.-]+\.(iso|img)$/iu
/** A VM name template: DNS characters plus `{placeholder}`s. */
export const nameTemplatePlaceholders = ["node", "index"] as const

/** Hex digits per checksum algorithm accepted by PVE `download-url`. */
export const checksumHexLength = {
  md5: 32,
  sha1: 40,
  sha224: 56,
  sha256: 64,
  sha384: 96,
  sha512: 128
} as const
export type ChecksumAlgorithm = keyof typeof checksumHexLength
export const checksumAlgorithms = Object.keys(checksumHexLength) as Array<ChecksumAlgorithm>

const hostnamePattern =
  /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/u

/**
 * A name whose last label is all digits is no host name (RFC 1123 2.1: a top-level domain is never numeric) but a
 * mistyped IPv4 address (`10.0.0.300`, `10.0.0`), which resolvers and URL parsers read as some other address or refuse.
 */
const numericEnd = /(^|\.)[0-9]+$/u

/** An IPv4/IPv6 address or a DNS host name. */
export const isHostOrIp = (value: string): boolean =>
  isIP(value) !== 0 || (hostnamePattern.test(value) && !numericEnd.test(value))

/** Returns what was expected when `value` is no IP address nor DNS host name (`isHostOrIp`). */
export const checkHostOrIp = (value: string): string | undefined =>
  isHostOrIp(value)
    ? undefined
    : hostnamePattern.test(value)
      ? "an IP address (an IPv4 address is four numbers of 0..255, like 10.0.0.5) or a DNS host name (its last label not all digits)"
      : "an IP address or a DNS host name"

/**
 * Returns what was expected when `value` is not DNS servers as cloud-init gets them from PVE: PVE's `nameserver` takes
 * host names and commas too, but splits the value at spaces only when it writes the cloud-init network config
 * (qemu-server `Cloudinit.pm` `get_dns_conf`), and cloud-init takes addresses only.
 */
export const checkNameservers = (value: string): string | undefined => {
  if (value === "") return undefined // the schema's non-empty check says so
  if (value.trim() === "") return "IP addresses of DNS servers separated by spaces"
  if (/[,;]/u.test(value))
    return `IP addresses of DNS servers separated by spaces, not commas or semicolons (PVE splits the value at spaces only: cloud-init would get one server named ${value.trim()})`
  const bad = value
    .trim()
    .split(/\s+/u)
    .find((server) => isIP(server) === 0)
  return bad === undefined
    ? undefined
    : `IP addresses of DNS servers separated by spaces (${bad} is no IP address: cloud-init takes addresses only)`
}

/** Returns a reason when `value` is not an `https://host[:port][/]` URL (an optional `/api2/json` path is allowed). */
export const checkEndpointUrl = (value: string): string | undefined => {
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//u.test(value))
    return "an https URL like https://pve1.lan:8006 (https:// is missing)"
  // the host as written: the URL parser would read 10.0.0 as 10.0.0.0, and refuses 10.0.0.300 without saying why
  const host = /^[^:]+:\/\/(?:[^@/?#]*@)?([^/?#]*)/u.exec(value)?.[1]?.replace(/:[0-9]*$/u, "") ?? ""
  if (numericEnd.test(host) && isIP(host) !== 4)
    return "an https URL whose host is an IP address (an IPv4 address is four numbers of 0..255, like 10.0.0.5) or a DNS host name"
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return "an https URL like https://pve1.lan:8006"
  }
  if (url.protocol !== "https:") return `an https URL (the PVE API only listens on https), not ${url.protocol}//`
  if (url.username !== "" || url.password !== "") return "an https URL without credentials (use proxmox.auth)"
  if (url.search !== "" || url.hash !== "") return "an https URL without query or fragment"
  const path = url.pathname.replace(/\/+$/u, "")
  if (path !== "" && path !== "/api2/json") return "an https URL without a path (or with /api2/json)"
  return undefined
}

/** Normalises an endpoint to its origin with the PVE default port 8006 made explicit. */
export const normaliseEndpoint = (
  value: string
): { readonly url: string; readonly host: string; readonly port: number } => {
  const url = new URL(value)
  const port = url.port === "" ? 8006 : Number(url.port)
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname
  return { url: `https://${url.hostname}:${port}`, host, port }
}

const ipv4Cidr = (value: string): boolean => {
  const [ip, prefix, ...rest] = value.split("/")
  if (rest.length > 0 || ip === undefined || prefix === undefined || !/^[0-9]{1,2}$/u.test(prefix)) return false
  return isIP(ip) === 4 && Number(prefix) <= 32
}
const ipv6Cidr = (value: string): boolean => {
  const [ip, prefix, ...rest] = value.split("/")
  if (rest.length > 0 || ip === undefined || prefix === undefined || !/^[0-9]{1,3}$/u.test(prefix)) return false
  return isIP(ip) === 6 && Number(prefix) <= 128
}

/**
 * Validates PVE's `ipconfigN` property string: `ip=<CIDR|dhcp>[,gw=<IPv4>][,ip6=<CIDR|dhcp|auto>][,gw6=<IPv6>]`.
 * Returns a description of what was expected when the value is invalid. A gateway without a static address is
 * rejected: PVE would silently ignore the whole entry.
 */
export const checkIpConfig = (value: string): string | undefined => {
  const seen = new Map<string, string>()
  for (const part of value.split(",")) {
    const eq = part.indexOf("=")
    if (eq <= 0) return `key=value pairs separated by commas (ip, gw, ip6, gw6); "${part}" has no key`
    const key = part.slice(0, eq).trim()
    const val = part.slice(eq + 1).trim()
    if (!["ip", "gw", "ip6", "gw6"].includes(key)) return `only the keys ip, gw, ip6, gw6; "${key}" is not one of them`
    if (seen.has(key)) return `each key at most once; "${key}" is repeated`
    seen.set(key, val)
  }
  const ip = seen.get("ip")
  const gw = seen.get("gw")
  const ip6 = seen.get("ip6")
  const gw6 = seen.get("gw6")
  if (ip !== undefined && ip !== "dhcp" && !ipv4Cidr(ip)) return `ip to be "dhcp" or an IPv4 CIDR like 10.0.0.5/24`
  if (gw !== undefined && isIP(gw) !== 4) return "gw to be an IPv4 address"
  if (gw !== undefined && (ip === undefined || ip === "dhcp"))
    return "gw only together with a static ip (PVE ignores it)"
  if (ip6 !== undefined && ip6 !== "dhcp" && ip6 !== "auto" && !ipv6Cidr(ip6)) {
    return `ip6 to be "dhcp", "auto" or an IPv6 CIDR like fd00::5/64`
  }
  if (gw6 !== undefined && isIP(gw6) !== 6) return "gw6 to be an IPv6 address"
  if (gw6 !== undefined && (ip6 === undefined || ip6 === "dhcp" || ip6 === "auto")) {
    return "gw6 only together with a static ip6 (PVE ignores it)"
  }
  if (ip === undefined && ip6 === undefined) return "at least ip or ip6"
  return undefined
}

const sshKeyPattern =
  /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( .*)?$/u

/** An SSH public key line or a path to a `*.pub` file (read by the CLI). */
export const checkSshKey = (value: string): string | undefined =>
  sshKeyPattern.test(value.trim()) || (value.endsWith(".pub") && !value.includes("\n"))
    ? undefined
    : "an SSH public key (ssh-ed25519 AAAA... comment) or a path to a *.pub file"

/**
 * What PVE's download-url and upload do with a file name (pve-storage's `normalize_content_filename`): a trailing
 * newline dropped, everything up to the last `/` or `\` stripped, each character outside `[a-zA-Z0-9_.-]` replaced
 * by `_`. The volume is stored under the result.
 */
export const pveNormaliseFilename = (name: string): string =>
  name
    .replace(/\n$/u, "")
    .replace(/^.*[/\\]/u, "")
    .replace(/[^a-zA-Z0-9_.-]/gu, "_")

/**
 * Derives the storage file name from the image URL's last path segment (percent-decoded), normalised as PVE
 * normalises it (`pveNormaliseFilename`), so the name homelab looks for is the one PVE stores. Content `import` needs
 * `.qcow2|.raw|.vmdk|.ova` (lowercased): a `.img` (a qcow2 cloud image in practice) becomes `<base>.qcow2`. Content
 * `iso` needs `.iso|.img`.
 * Returns `{ error }` when no safe name can be derived.
 */
export const deriveImageFilename = (
  url: string,
  content: "import" | "iso"
): { readonly filename: string } | { readonly error: string } => {
  let last: string
  try {
    const segments = new URL(url).pathname.split("/")
    last = decodeURIComponent(segments[segments.length - 1] ?? "")
  } catch {
    return { error: "a URL with a file name in its path" }
  }
  const name = pveNormaliseFilename(last)
  if (name === "" || name === "." || name === "..") return { error: "a URL with a file name in its path" }
  const lower = name.toLowerCase()
  if (content === "iso") {
    return /\.(iso|img)$/u.test(lower)
      ? { filename: name }
      : { error: "a URL ending in .iso or .img for content iso (or set image.filename)" }
  }
  // PVE checks the import extension in lowercase: `.QCOW2` is refused, so the derived name takes it lowercased
  const ext = /\.(qcow2|raw|vmdk|ova)$/u.exec(lower)?.[1]
  if (ext !== undefined) return { filename: `${name.slice(0, -ext.length)}${ext}` }
  if (lower.endsWith(".img")) return { filename: `${name.slice(0, -4)}.qcow2` }
  return {
    error: "a URL ending in .qcow2, .raw, .vmdk, .ova or .img for content import (or set image.filename)"
  }
}

/** How many hex digits of `image.checksum` the default image file name carries. */
export const checksumInNameLength = 12

/**
 * The default image file name with `image.checksum` in it: `<base>-<first 12 hex digits>.<ext>` (the derived name's
 * extension kept, so PVE still accepts it for the content type). An image of another checksum is then a file the
 * storage listing does not show, downloaded (and verified) before any create imports from it.
 */
export const filenameWithChecksum = (filename: string, checksumHex: string): string => {
  const dot = filename.lastIndexOf(".")
  const tag = checksumHex.slice(0, checksumInNameLength).toLowerCase()
  return dot <= 0 ? `${filename}-${tag}` : `${filename.slice(0, dot)}-${tag}${filename.slice(dot)}`
}
