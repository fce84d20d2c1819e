// biome-ignore-all lint/suspicious/noTemplateCurlyInString: this file deals with literal ${VAR} references
import { stringify } from "yaml"
import { parseDotenv } from "./internal/dotenv.js"
import { deriveImageFilename, importFilenamePattern } from "./internal/formats.js"
import { escapeInterpolation } from "./internal/interpolate.js"

export interface ImportEnvResult {
  /** homelab.yaml text, with comments naming the variable each value came from. */
  readonly yaml: string
  /** Unknown or ignored variables and assumptions made on the way. */
  readonly warnings: Array<string>
}

/** Environment variables the generated file refers to instead of copying secrets. */
const tokenSecretVariable = "PROXMOX_TOKEN_SECRET"
const passwordVariable = "CLOUD_PASSWORD"

const globalKeys = new Set([
  "ISO_NAME",
  "ISO_URL",
  "VM_NAME_TEMPLATE",
  "CLOUD_USER",
  "CLOUD_PASSWORD",
  "SSH_PUBKEY_PATH",
  "CLOUD_IP_CONFIG",
  "VM_DISK_SIZE",
  "API_TOKEN",
  "K3S_EXISTING_NODE_IP",
  "PROXMOX_HOST",
  "API_URL"
])
const nodeKeys = ["NODE", "STORAGE", "IMG_STORAGE", "CPU_RATIO", "MEMORY_RATIO", "NETWORK_IFACES"] as const
const nodeKeyPattern = /^(NODE|STORAGE|IMG_STORAGE|CPU_RATIO|MEMORY_RATIO|NETWORK_IFACES)_([0-9]+)$/u

/** A YAML scalar for a literal value (`${` escaped so that it is not interpolated). */
const scalar = (value: string | number): string =>
  typeof value === "number"
    ? String(value)
    : stringify(escapeInterpolation(value), { lineWidth: 0, defaultStringType: "PLAIN" }).trimEnd()

/** An unquoted number when the text is one, else a string (parseConfig reports a wrong type with its line). */
const numberOrString = (value: string): string | number => (/^[0-9]+(\.[0-9]+)?$/u.test(value) ? Number(value) : value)

const toEndpoint = (value: string): string => {
  if (/^https?:\/\//iu.test(value)) {
    try {
      const url = new URL(value)
      return `https://${url.host}`
    } catch {
      return value
    }
  }
  return /:[0-9]+$/u.test(value) ? `https://${value}` : `https://${value}:8006`
}

/**
 * Converts the seed tool's `.env` (NODE_n, STORAGE_n, IMG_STORAGE_n, CPU_RATIO_n, MEMORY_RATIO_n,
 * NETWORK_IFACES_n, ISO_NAME, ISO_URL, VM_NAME_TEMPLATE, CLOUD_USER, CLOUD_PASSWORD, SSH_PUBKEY_PATH,
 * CLOUD_IP_CONFIG, VM_DISK_SIZE, API_TOKEN, K3S_EXISTING_NODE_IP, PROXMOX_HOST / API_URL) into commented
 * `homelab.yaml` text. Secrets are never copied: the token secret becomes `${PROXMOX_TOKEN_SECRET}` and the
 * cloud-init password `${CLOUD_PASSWORD}`.
 */
export const importEnv = (envFileText: string): ImportEnvResult => {
  const parsed = parseDotenv(envFileText)
  const warnings: Array<string> = [...parsed.warnings]
  const env = new Map<string, string>()
  const nodeIndices = new Set<number>()
  for (const entry of parsed.entries) {
    const nodeMatch = nodeKeyPattern.exec(entry.key)
    if (nodeMatch !== null) nodeIndices.add(Number(nodeMatch[2]))
    else if (!globalKeys.has(entry.key)) {
      warnings.push(`${entry.key} (line ${entry.line}) is not used by homelab.yaml and was ignored`)
      continue
    }
    env.set(entry.key, entry.value)
  }
  const get = (key: string): string | undefined => {
    const value = env.get(key)
    return value === undefined || value === "" ? undefined : value
  }

  const out: Array<string> = [
    "# homelab.yaml, converted from the seed tool's .env by importEnv.",
    "# Secrets are not copied into this file: ${VAR} references are read from the environment by `homelab`.",
    "# Every key and its default: see packages/reconcile-core/README.md and homelab.example.yaml.",
    ""
  ]

  // ------------------------------------------------------------------------------------------- nodes (first: endpoint guess)
  const indices = [...nodeIndices].sort((a, b) => a - b)
  const nodes: Array<{ index: number; name: string }> = []
  for (const index of indices) {
    const name = get(`NODE_${index}`)
    if (name === undefined) {
      const orphans = nodeKeys.filter((key) => env.has(`${key}_${index}`)).map((key) => `${key}_${index}`)
      warnings.push(`${orphans.join(", ")} ignored: there is no NODE_${index}`)
      continue
    }
    nodes.push({ index, name })
  }
  if (nodes.length === 0) warnings.push("no NODE_n variables: add at least one node under nodes:")

  // ------------------------------------------------------------------------------------------- proxmox
  out.push("proxmox:")
  const apiUrl = get("API_URL")
  const host = get("PROXMOX_HOST")
  if (apiUrl !== undefined) {
    out.push("  # from API_URL (one endpoint is enough: the PVE API is cluster-wide)")
    out.push(`  endpoint: ${scalar(toEndpoint(apiUrl))}`)
  } else if (host !== undefined) {
    out.push("  # from PROXMOX_HOST (one endpoint is enough: the PVE API is cluster-wide)")
    out.push(`  endpoint: ${scalar(toEndpoint(host))}`)
  } else {
    const guess = nodes[0]?.name ?? "pve1"
    warnings.push(`no PROXMOX_HOST or API_URL: proxmox.endpoint guessed as https://${guess}:8006, check it`)
    out.push("  # GUESSED from NODE_1 (no PROXMOX_HOST / API_URL in .env): check this address")
    out.push(`  endpoint: ${scalar(`https://${guess}:8006`)}`)
  }
  out.push("  auth:")
  const token = get("API_TOKEN")
  let tokenId = "root@pam!homelab"
  if (token === undefined) {
    warnings.push("no API_TOKEN: proxmox.auth.tokenId set to root@pam!homelab, check it")
  } else {
    const bang = token.indexOf("!")
    const eq = token.indexOf("=", Math.max(bang, 0))
    tokenId = eq < 0 ? token : token.slice(0, eq)
    if (eq < 0) warnings.push("API_TOKEN has no =secret part; only the token id was used")
  }
  out.push("    # from API_TOKEN (user@realm!name=secret): the secret part is NOT copied;")
  out.push(`    # export ${tokenSecretVariable}=<secret> when running homelab`)
  out.push(`    tokenId: ${scalar(tokenId)}`)
  out.push(`    secret: \${${tokenSecretVariable}}`)
  warnings.push(`set ${tokenSecretVariable} in the environment (the secret part of API_TOKEN)`)
  out.push("  # tls: { fingerprint: AA:BB:... }  # pin the PVE certificate (the seed tool did not check it)")
  out.push("")

  // ------------------------------------------------------------------------------------------- image
  const imageStorages = nodes.map((node) => get(`IMG_STORAGE_${node.index}`)).filter((s) => s !== undefined)
  const imageStorage = imageStorages[0] ?? "local"
  out.push("image:")
  const isoUrl = get("ISO_URL")
  const isoName = get("ISO_NAME")
  if (isoUrl === undefined) {
    warnings.push("no ISO_URL: image.url must be filled in")
    out.push("  # ISO_URL was not set: fill in the cloud image URL")
    out.push(`  url: ${scalar("https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img")}`)
  } else {
    out.push("  # from ISO_URL")
    out.push(`  url: ${scalar(isoUrl)}`)
  }
  if (isoName !== undefined) {
    if (importFilenamePattern.test(isoName)) {
      out.push("  # from ISO_NAME")
      out.push(`  filename: ${scalar(isoName)}`)
    } else {
      const fromName = deriveImageFilename(`https://x/${encodeURIComponent(isoName)}`, "import")
      if ("filename" in fromName) {
        out.push(`  # from ISO_NAME=${isoName}: content import needs .qcow2/.raw/.vmdk/.ova (a .img is a qcow2)`)
        out.push(`  filename: ${scalar(fromName.filename)}`)
        warnings.push(`ISO_NAME ${isoName} is stored as ${fromName.filename} (content import needs .qcow2)`)
      } else warnings.push(`ISO_NAME ${isoName} ignored: not a disk image name; the file name comes from the URL`)
    }
  }
  out.push("  # the image is downloaded by PVE (download-url) into this storage, content type import (PVE 8.4+)")
  out.push(`  storage: ${scalar(imageStorage)}`)
  out.push("  content: import")
  out.push("  # checksum: sha256:<hex>  # recommended: PVE verifies the download")
  out.push("")

  // ------------------------------------------------------------------------------------------- vm
  out.push("vm:")
  const template = get("VM_NAME_TEMPLATE")
  if (template !== undefined) {
    const converted = template.replace(/\{(node|index)\}/giu, (_, name: string) => `{${name.toLowerCase()}}`)
    const unknown = [...converted.matchAll(/\{([^{}]*)\}/gu)]
      .map((m) => m[1])
      .filter((p) => p !== "node" && p !== "index")
    if (unknown.length > 0) {
      warnings.push(`VM_NAME_TEMPLATE uses ${unknown.map((p) => `{${p}}`).join(", ")}: only {node} and {index} exist`)
    }
    out.push("  # from VM_NAME_TEMPLATE; placeholders {node} and {index}")
    out.push(`  nameTemplate: ${scalar(converted)}`)
  }
  const diskSize = get("VM_DISK_SIZE")
  if (diskSize !== undefined) {
    const size = /^[0-9]+$/u.test(diskSize) ? `${diskSize}G` : diskSize
    if (size !== diskSize) warnings.push(`VM_DISK_SIZE ${diskSize} has no unit: taken as ${size}`)
    out.push(`  diskSize: ${scalar(size)}  # VM_DISK_SIZE`)
  }
  const user = get("CLOUD_USER")
  if (user !== undefined) out.push(`  user: ${scalar(user)}  # CLOUD_USER`)
  if (env.has("CLOUD_PASSWORD")) {
    out.push(`  # CLOUD_PASSWORD is NOT copied: export ${passwordVariable}=<password> when running homelab`)
    out.push(`  password: \${${passwordVariable}}`)
    warnings.push(`set ${passwordVariable} in the environment (cloud-init password)`)
  }
  const pubkey = get("SSH_PUBKEY_PATH")
  if (pubkey !== undefined) {
    out.push("  sshKeys:  # SSH_PUBKEY_PATH (read by the CLI)")
    out.push(`    - ${scalar(pubkey)}`)
  }
  const ipConfig = get("CLOUD_IP_CONFIG")
  if (ipConfig !== undefined) out.push(`  ipConfig: ${scalar(ipConfig)}  # CLOUD_IP_CONFIG`)
  if (out[out.length - 1] === "vm:") out.pop()
  else out.push("")

  // ------------------------------------------------------------------------------------------- nodes
  out.push("nodes:")
  for (const node of nodes) {
    const i = node.index
    out.push(`  - name: ${scalar(node.name)}  # NODE_${i}`)
    const storage = get(`STORAGE_${i}`)
    if (storage !== undefined) out.push(`    storage: ${scalar(storage)}  # STORAGE_${i}`)
    const nodeImageStorage = get(`IMG_STORAGE_${i}`)
    if (nodeImageStorage !== undefined && nodeImageStorage !== imageStorage) {
      out.push(`    imageStorage: ${scalar(nodeImageStorage)}  # IMG_STORAGE_${i}`)
    }
    const ifaces = get(`NETWORK_IFACES_${i}`)
    if (ifaces !== undefined) {
      const bridges = ifaces.split(/[\s,]+/u).filter((bridge) => bridge !== "")
      out.push(`    bridges: [${bridges.map((bridge) => scalar(bridge)).join(", ")}]  # NETWORK_IFACES_${i}`)
    }
    const cpu = get(`CPU_RATIO_${i}`)
    if (cpu !== undefined) out.push(`    cpuRatio: ${scalar(numberOrString(cpu))}  # CPU_RATIO_${i}`)
    const memory = get(`MEMORY_RATIO_${i}`)
    if (memory !== undefined) out.push(`    memoryRatio: ${scalar(numberOrString(memory))}  # MEMORY_RATIO_${i}`)
  }
  if (nodes.length === 0) out.push("  - name: pve1  # no NODE_n in .env: fill in your nodes")

  // ------------------------------------------------------------------------------------------- k3s
  const k3sServer = get("K3S_EXISTING_NODE_IP")
  if (k3sServer !== undefined) {
    out.push("")
    out.push("k3s:")
    out.push("  # from K3S_EXISTING_NODE_IP: the existing server new VMs join (token fetched over SSH)")
    out.push("  server:")
    out.push(`    host: ${scalar(k3sServer)}`)
  }
  return { yaml: `${out.join("\n")}\n`, warnings }
}
