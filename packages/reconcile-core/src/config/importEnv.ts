// biome-ignore-all lint/suspicious/noTemplateCurlyInString: this file deals with literal ${VAR} references
/**
 * `.env` of the seed tool (the original Python provisioner) → homelab.yaml that does what that tool did on the same
 * lab, so that the lab it built is taken over rather than rebuilt. What the tool did, from its source:
 *
 * - `.env` read by python-dotenv's `load_dotenv()` (see `internal/dotenv.ts`, with `${VAR}` interpolation).
 * - Nodes `NODE_1, NODE_2, …` up to the first one missing; reading stops at a node without `CPU_RATIO_n` or
 *   `MEMORY_RATIO_n`; a node without `IMG_STORAGE_n` is skipped ("no storage defined": no VM there).
 * - The API of each node at `https://<node>.maas:8006`, certificates not checked.
 * - Image: `ISO_URL` downloaded once where the tool runs, uploaded as `ISO_NAME` to `STORAGE_n` of every node.
 * - VM per node: name `VM_NAME_TEMPLATE` (`{node}`), cores and memory from the node × `CPU_RATIO_n` /
 *   `MEMORY_RATIO_n`, one NIC per bridge of `NETWORK_IFACES_n` ("vmbr0, vmbr1"), disk imported with
 *   `qm importdisk … $IMG_STORAGE_n` over SSH (`SSH_USER`, default root; `SSH_KEY_PATH`, default ~/.ssh/id_rsa) and
 *   grown to `VM_DISK_SIZE` (default 200G), cloud-init drive on `IMG_STORAGE_n`, guest agent on; cloud-init
 *   `ciuser` `CLOUD_USER` (ubuntu), `cipassword` `CLOUD_PASSWORD` (default "ubuntu"), `sshkeys` from
 *   `SSH_PUBKEY_PATH` (~/.ssh/id_rsa.pub), `ipconfig0` `CLOUD_IP_CONFIG` (`ip=` added when missing; default
 *   ip=dhcp), `cicustom: user=local:snippets/install-k3sup-qemu-agent.yaml`.
 * - k3s (only with `K3S_EXISTING_NODE_IP`): token read over SSH as `ubuntu@<that IP>`, every VM installed as a k3s
 *   **server** joining `https://<that IP>:6443` with `--write-kubeconfig-mode 644 --disable=traefik`.
 */
import { stringify } from "yaml"
import { atomsOf, type DotenvAtom, parseDotenv } from "./internal/dotenv.js"
import { deriveImageFilename, importFilenamePattern } from "./internal/formats.js"
import { escapeInterpolation } from "./internal/interpolate.js"

export interface ImportEnvResult {
  /** homelab.yaml text, with comments naming the variable each value came from. */
  readonly yaml: string
  /** Unknown or ignored variables, defaults taken from the seed tool, and what to check by hand. */
  readonly warnings: Array<string>
}

/** Environment variables the generated file refers to instead of copying secrets. */
const tokenSecretVariable = "PROXMOX_TOKEN_SECRET"
const passwordVariable = "CLOUD_PASSWORD"

/** The seed tool's fixed choices (not configurable in its `.env`). */
export const seedTool = {
  apiHost: (node: string) => `${node}.maas`,
  apiPort: 8006,
  cicustomUser: "local:snippets/install-k3sup-qemu-agent.yaml",
  k3sServerUser: "ubuntu",
  k3sFlags: ["--write-kubeconfig-mode", "644", "--disable=traefik"],
  defaults: {
    SSH_USER: "root",
    SSH_KEY_PATH: "~/.ssh/id_rsa",
    SSH_PUBKEY_PATH: "~/.ssh/id_rsa.pub",
    VM_DISK_SIZE: "200G",
    CLOUD_USER: "ubuntu",
    CLOUD_IP_CONFIG: "ip=dhcp",
    VM_NAME_TEMPLATE: "k3s-vm-{node}"
  }
} as const

const globalKeys = new Set([
  "API_TOKEN",
  "ISO_NAME",
  "ISO_URL",
  "VM_NAME_TEMPLATE",
  "CLOUD_USER",
  "CLOUD_PASSWORD",
  "SSH_PUBKEY_PATH",
  "SSH_USER",
  "SSH_KEY_PATH",
  "CLOUD_IP_CONFIG",
  "VM_DISK_SIZE",
  "K3S_EXISTING_NODE_IP",
  // Not the seed tool's, but accepted: where to reach the PVE API when it is not <node>.maas.
  "PROXMOX_HOST",
  "API_URL"
])
const nodeKeys = ["NODE", "STORAGE", "IMG_STORAGE", "CPU_RATIO", "MEMORY_RATIO", "NETWORK_IFACES"] as const
const nodeKeyPattern = new RegExp(`^(${nodeKeys.join("|")})_([0-9]+)$`, "u")
const homelabVariableName = /^[A-Za-z_][A-Za-z0-9_]*$/u

/**
 * A value after python-dotenv's interpolation against the variables defined earlier in the file. A reference to a
 * variable the file does not define stays a reference: homelab reads it from the environment, as the seed tool did.
 */
interface Value {
  readonly atoms: ReadonlyArray<DotenvAtom>
}

/** The value as text, references shown as `${NAME}` (for decisions such as splitting a list). */
const textOf = (value: Value): string =>
  value.atoms
    .map((atom) =>
      atom._tag === "Literal" ? atom.text : `\${${atom.name}${atom.fallback === undefined ? "" : `:-${atom.fallback}`}}`
    )
    .join("")

const hasReferences = (value: Value): boolean => value.atoms.some((atom) => atom._tag === "Variable")

/** A YAML scalar: literal text escaped (`$${`), references kept as homelab `${VAR}` references. */
const scalar = (value: string | number | Value): string => {
  if (typeof value === "number") return String(value)
  const template =
    typeof value === "string"
      ? escapeInterpolation(value)
      : value.atoms
          .map((atom) =>
            atom._tag === "Literal"
              ? escapeInterpolation(atom.text)
              : `\${${atom.name}${atom.fallback === undefined ? "" : `:-${escapeInterpolation(atom.fallback)}`}}`
          )
          .join("")
  return stringify(template, { lineWidth: 0, defaultStringType: "PLAIN" }).trimEnd()
}

const literal = (text: string): Value => ({ atoms: [{ _tag: "Literal", text }] })

/** An unquoted number when the text is one, else a string (parseConfig reports a wrong type with its line). */
const numberOrValue = (value: Value): number | Value => {
  const text = textOf(value)
  return !hasReferences(value) && /^[0-9]+(\.[0-9]+)?$/u.test(text) ? Number(text) : value
}

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

/** Converts the seed tool's `.env` into commented homelab.yaml text (see the module comment for the mapping). */
export const importEnv = (envFileText: string): ImportEnvResult => {
  const parsed = parseDotenv(envFileText)
  const warnings: Array<string> = [...parsed.warnings]

  // ------------------------------------------------------------------------------------ read + interpolate
  const values = new Map<string, Value>()
  const lines = new Map<string, number>()
  for (const entry of parsed.entries) {
    if (entry.value === undefined) {
      warnings.push(`${entry.key} (line ${entry.line}) has no value (no =): not set, as for the seed tool`)
      values.delete(entry.key)
      continue
    }
    const atoms: Array<DotenvAtom> = []
    for (const atom of atomsOf(entry.value)) {
      if (atom._tag === "Literal") atoms.push(atom)
      else if (values.has(atom.name)) atoms.push(...(values.get(atom.name) as Value).atoms)
      else if (homelabVariableName.test(atom.name)) atoms.push(atom)
      else {
        warnings.push(
          `${entry.key} (line ${entry.line}): \${${atom.name}} is not a variable name homelab can read; replaced by ${atom.fallback === undefined ? "nothing" : JSON.stringify(atom.fallback)}, as python-dotenv would`
        )
        atoms.push({ _tag: "Literal", text: atom.fallback ?? "" })
      }
    }
    values.set(entry.key, { atoms })
    lines.set(entry.key, entry.line)
  }
  for (const key of values.keys()) {
    if (!globalKeys.has(key) && !nodeKeyPattern.test(key)) {
      warnings.push(`${key} (line ${lines.get(key)}) is not used by homelab.yaml and was ignored`)
    }
  }
  /** A set, non-empty value (python: `os.getenv(KEY)` truthy). */
  const get = (key: string): Value | undefined => {
    const value = values.get(key)
    return value === undefined || textOf(value) === "" ? undefined : value
  }
  const text = (key: string): string | undefined => {
    const value = get(key)
    return value === undefined ? undefined : textOf(value)
  }
  for (const key of values.keys()) {
    const value = values.get(key) as Value
    const references = value.atoms.flatMap((atom) => (atom._tag === "Variable" ? [`\${${atom.name}}`] : []))
    if (references.length > 0 && key !== "CLOUD_PASSWORD" && key !== "API_TOKEN") {
      warnings.push(
        `${key} refers to ${references.join(", ")}, not set in the .env: kept as a reference that homelab reads from the environment`
      )
    }
  }

  // ------------------------------------------------------------------------------------ nodes (as the tool read them)
  interface SeedNode {
    readonly index: number
    readonly name: string
  }
  const nodes: Array<SeedNode> = []
  let index = 1
  for (; text(`NODE_${index}`) !== undefined; index++) {
    const missingRatio = ["CPU_RATIO", "MEMORY_RATIO"].find((key) => values.get(`${key}_${index}`) === undefined)
    if (missingRatio !== undefined) {
      warnings.push(
        `NODE_${index} and later nodes ignored: ${missingRatio}_${index} is not set, where the seed tool stops reading nodes`
      )
      break
    }
    nodes.push({ index, name: text(`NODE_${index}`) as string })
  }
  const stoppedAt = index
  const laterIndices = [...values.keys()].flatMap((key) => {
    const match = nodeKeyPattern.exec(key)
    return match !== null && Number(match[2]) > stoppedAt ? [Number(match[2])] : []
  })
  if (laterIndices.length > 0 && text(`NODE_${stoppedAt}`) === undefined) {
    const ignored = [...new Set(laterIndices)].sort((a, b) => a - b)
    warnings.push(
      `${ignored.map((i) => `NODE_${i}`).join(", ")} ignored: the seed tool reads NODE_1, NODE_2, … up to the first one missing (NODE_${stoppedAt})`
    )
  }
  const withVm = nodes.filter((node) => {
    if (get(`IMG_STORAGE_${node.index}`) !== undefined) return true
    warnings.push(
      `NODE_${node.index} (${node.name}) left out: IMG_STORAGE_${node.index} is not set, so the seed tool created no VM there; add it under nodes: with a storage to have one`
    )
    return false
  })
  if (withVm.length === 0) warnings.push("no usable NODE_n: add at least one node under nodes:")

  const out: Array<string> = [
    "# homelab.yaml, converted from the seed tool's .env by `homelab config import-env`.",
    "# It asks for what the seed tool built, so `homelab apply` takes that lab over instead of rebuilding it.",
    "# Secrets are not copied into this file: ${VAR} references are read from the environment by `homelab`.",
    "# Every key and its default: homelab.example.yaml in @homelab/reconcile-core.",
    ""
  ]

  // ------------------------------------------------------------------------------------ proxmox
  out.push("proxmox:")
  const apiUrl = get("API_URL") ?? get("PROXMOX_HOST")
  const perNodeApi = apiUrl === undefined
  const first = withVm[0]?.name ?? nodes[0]?.name ?? "pve1"
  // the host:port whose certificate the file's endpoint presents (for the TLS advice below)
  let sample = `${seedTool.apiHost(first)}:${seedTool.apiPort}`
  if (apiUrl !== undefined) {
    const from = get("API_URL") !== undefined ? "API_URL" : "PROXMOX_HOST"
    const endpoint = toEndpoint(textOf(apiUrl))
    out.push(`  # from ${from} (one endpoint is enough: the PVE API is cluster-wide)`)
    out.push(`  endpoint: ${scalar(endpoint)}`)
    if (URL.canParse(endpoint)) {
      const url = new URL(endpoint)
      sample = `${url.hostname}:${url.port === "" ? seedTool.apiPort : url.port}`
    }
  } else {
    out.push(`  # the seed tool talked to each node's own API at https://<node>.${"maas"}:8006 (see nodes[].api)`)
    out.push(`  endpoint: ${scalar(`https://${seedTool.apiHost(first)}:${seedTool.apiPort}`)}`)
  }
  out.push("  auth:")
  const token = text("API_TOKEN")
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
  out.push("  # The seed tool did not check the API certificate, and neither does this file (insecure: true).")
  out.push("  # Check it instead: pin the certificate's SHA-256 fingerprint, which this prints:")
  out.push(
    `  #   openssl s_client -connect ${sample} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256`
  )
  out.push(
    "  # and write tls: { fingerprint: <it> } (one fingerprint: fits when the requests go to one node), or trust"
  )
  out.push(
    "  # the cluster CA, which signs every node: scp root@<node>:/etc/pve/pve-root-ca.pem . and tls: { ca: ./pve-root-ca.pem }"
  )
  out.push("  tls: { insecure: true }")
  warnings.push(
    `proxmox.tls.insecure: true, as the seed tool did not check certificates; pin it with tls.fingerprint (openssl s_client -connect ${sample} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256) or tls.ca`
  )
  out.push("")

  // ------------------------------------------------------------------------------------ ssh
  out.push("# SSH to the PVE nodes, as the seed tool's `qm importdisk` / `qm resize` did")
  out.push("ssh:")
  const sshUser = get("SSH_USER")
  out.push(
    `  user: ${scalar(sshUser ?? seedTool.defaults.SSH_USER)}  # ${sshUser !== undefined ? "SSH_USER" : "SSH_USER not set: the seed tool's default"}`
  )
  const sshKey = get("SSH_KEY_PATH")
  out.push(
    `  privateKey: ${scalar(sshKey ?? seedTool.defaults.SSH_KEY_PATH)}  # ${sshKey !== undefined ? "SSH_KEY_PATH" : "SSH_KEY_PATH not set: the seed tool's default"}`
  )
  out.push("  # the seed tool accepted any host key; homelab trusts a node's key on first use and then holds it to it")
  out.push("  knownHosts: { mode: accept-new }")
  out.push("")

  // ------------------------------------------------------------------------------------ image
  const storages = withVm.map((node) => get(`STORAGE_${node.index}`)).filter((s) => s !== undefined)
  const imageStorage: Value = storages[0] ?? literal("local")
  for (const node of withVm) {
    if (get(`STORAGE_${node.index}`) === undefined) {
      warnings.push(
        `STORAGE_${node.index} is not set: node ${node.name} takes the image from image.storage (${textOf(imageStorage)})`
      )
    }
  }
  out.push("image:")
  const isoUrl = get("ISO_URL")
  const isoName = text("ISO_NAME")
  if (isoUrl === undefined) {
    warnings.push("no ISO_URL: image.url must be filled in (the seed tool's default was an Ubuntu desktop ISO)")
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
  out.push("  # STORAGE_n: where the seed tool uploaded the image. It stored it as an ISO (<storage>:iso/ISO_NAME) and")
  out.push("  # imported it as root from /var/lib/vz/template/iso; homelab stores it with content type import")
  out.push("  # (PVE 8.4+), which that storage must allow (Datacenter > Storage > Content: Import).")
  out.push(`  storage: ${scalar(imageStorage)}`)
  out.push("  content: import")
  out.push("  # like the seed tool: fetched once where homelab runs, then uploaded to every node")
  out.push("  transfer: upload")
  out.push("  # checksum: sha256:<hex>  # recommended: checked before anything is uploaded")
  out.push("")

  // ------------------------------------------------------------------------------------ vm
  out.push("vm:")
  const template = text("VM_NAME_TEMPLATE")
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
  } else {
    out.push(
      `  nameTemplate: ${scalar(seedTool.defaults.VM_NAME_TEMPLATE)}  # VM_NAME_TEMPLATE not set: the seed tool's default`
    )
  }
  const diskSize = text("VM_DISK_SIZE")
  if (diskSize !== undefined) {
    const size = /^[0-9]+$/u.test(diskSize) ? `${diskSize}G` : diskSize
    if (size !== diskSize) warnings.push(`VM_DISK_SIZE ${diskSize} has no unit: taken as ${size}`)
    out.push(`  diskSize: ${scalar(size)}  # VM_DISK_SIZE`)
  } else {
    out.push(`  diskSize: ${seedTool.defaults.VM_DISK_SIZE}  # VM_DISK_SIZE not set: the seed tool's default`)
  }
  const user = get("CLOUD_USER")
  out.push(
    `  user: ${scalar(user ?? seedTool.defaults.CLOUD_USER)}  # ${user !== undefined ? "CLOUD_USER" : "CLOUD_USER not set: the seed tool's default"}`
  )
  if (values.has("CLOUD_PASSWORD")) {
    out.push(`  # CLOUD_PASSWORD is NOT copied: export ${passwordVariable}=<password> when running homelab`)
    out.push(`  password: \${${passwordVariable}}`)
    warnings.push(`set ${passwordVariable} in the environment (cloud-init password)`)
  } else {
    out.push("  # CLOUD_PASSWORD was not set: the seed tool then set the password `ubuntu`; homelab sets none")
    warnings.push(
      "no CLOUD_PASSWORD: the seed tool set the cloud-init password `ubuntu` then; homelab sets no password (add vm.password: ${CLOUD_PASSWORD} to keep one)"
    )
  }
  const pubkey = get("SSH_PUBKEY_PATH")
  out.push(
    `  sshKeys:  # ${pubkey !== undefined ? "SSH_PUBKEY_PATH" : "SSH_PUBKEY_PATH not set: the seed tool's default"} (read by the CLI)`
  )
  out.push(`    - ${scalar(pubkey ?? seedTool.defaults.SSH_PUBKEY_PATH)}`)
  const ipConfig = text("CLOUD_IP_CONFIG")?.trim()
  if (ipConfig !== undefined) {
    const withPrefix = ipConfig.startsWith("ip=") ? ipConfig : `ip=${ipConfig}`
    out.push(
      `  ipConfig: ${scalar(withPrefix)}  # CLOUD_IP_CONFIG${withPrefix === ipConfig ? "" : " (ip= added, as the seed tool did)"}`
    )
  } else {
    out.push(`  ipConfig: ${seedTool.defaults.CLOUD_IP_CONFIG}  # CLOUD_IP_CONFIG not set: the seed tool's default`)
  }
  out.push("  # the seed tool's own cloud-init user-data. PVE then uses this file instead of the user-data it would")
  out.push("  # generate (user, password, sshKeys above): the snippet must exist on every node's local storage.")
  out.push("  cicustom:")
  out.push(`    user: ${scalar(seedTool.cicustomUser)}`)
  out.push("")

  // ------------------------------------------------------------------------------------ nodes
  out.push("nodes:")
  const defaultStorage = textOf(imageStorage)
  for (const node of withVm) {
    const i = node.index
    out.push(`  - name: ${scalar(node.name)}  # NODE_${i}`)
    if (perNodeApi) {
      out.push(`    address: ${scalar(node.name)}  # the seed tool's SSH target`)
      out.push(
        `    api: ${scalar(`https://${seedTool.apiHost(node.name)}:${seedTool.apiPort}`)}  # the seed tool's API address`
      )
    }
    const vmStorage = get(`IMG_STORAGE_${i}`) as Value
    out.push(`    storage: ${scalar(vmStorage)}  # IMG_STORAGE_${i}: VM disks and the cloud-init drive (qm importdisk)`)
    const nodeImageStorage = get(`STORAGE_${i}`)
    if (nodeImageStorage !== undefined && textOf(nodeImageStorage) !== defaultStorage) {
      out.push(`    imageStorage: ${scalar(nodeImageStorage)}  # STORAGE_${i}: where the image goes`)
    }
    const ifaces = get(`NETWORK_IFACES_${i}`)
    if (ifaces !== undefined) {
      const bridges = textOf(ifaces)
        .split(/[\s,]+/u)
        .filter((bridge) => bridge !== "")
      if (textOf(ifaces).includes(" ") && !textOf(ifaces).includes(",")) {
        warnings.push(
          `NETWORK_IFACES_${i} "${textOf(ifaces)}" is split on spaces here; the seed tool split on commas only (one bridge named "${textOf(ifaces).trim()}")`
        )
      }
      out.push(`    bridges: [${bridges.map((bridge) => scalar(bridge)).join(", ")}]  # NETWORK_IFACES_${i}`)
    } else {
      warnings.push(
        `NETWORK_IFACES_${i} is not set: the seed tool created ${node.name}'s VM without a NIC; homelab gives it one on vmbr0`
      )
    }
    const cpu = get(`CPU_RATIO_${i}`)
    if (cpu !== undefined) out.push(`    cpuRatio: ${scalar(numberOrValue(cpu))}  # CPU_RATIO_${i}`)
    const memory = get(`MEMORY_RATIO_${i}`)
    if (memory !== undefined) out.push(`    memoryRatio: ${scalar(numberOrValue(memory))}  # MEMORY_RATIO_${i}`)
  }
  if (withVm.length === 0) out.push("  - name: pve1  # no usable NODE_n in .env: fill in your nodes")

  // ------------------------------------------------------------------------------------ k3s
  const k3sServer = get("K3S_EXISTING_NODE_IP")
  out.push("")
  if (k3sServer === undefined) {
    out.push("# K3S_EXISTING_NODE_IP was not set: the seed tool joined nothing to k3s, and neither does this file.")
  } else {
    out.push("k3s:")
    out.push("  # from K3S_EXISTING_NODE_IP: the existing server new VMs join (its token is read over SSH, as")
    out.push(`  # ${seedTool.k3sServerUser}@<it>, as the seed tool did)`)
    out.push("  server:")
    out.push(`    host: ${scalar(k3sServer)}`)
    out.push(`    user: ${seedTool.k3sServerUser}`)
    out.push("  # the seed tool installed every VM as a k3s server, with these flags (k3s server's own: an agent added")
    out.push("  # later gets only installFlags and agentFlags)")
    out.push("  role: server")
    out.push(
      `  serverFlags: [${seedTool.k3sFlags.map((flag) => (/^[0-9]+$/u.test(flag) ? JSON.stringify(flag) : flag)).join(", ")}]`
    )
  }
  return { yaml: `${out.join("\n")}\n`, warnings }
}
