/**
 * Cross-field rules that a per-field schema cannot express. They run on the raw (interpolated) data, defensively,
 * so that they are reported together with the schema issues instead of only after those are fixed.
 */
import {
  definesFlag,
  flagListsCover,
  K3S_FLAG_NEWEST_RELEASE,
  K3S_FLAG_RELEASES,
  k3sFlagsOf,
  onlyCommandOf,
  removedFlag
} from "@homelab/k3s-join"
import { expandTemplate, parseChecksum, placeholdersOf } from "./derive.js"
import {
  deriveImageFilename,
  importFilenamePattern,
  isoFilenamePattern,
  nameTemplatePlaceholders,
  pveNormaliseFilename
} from "./formats.js"
import { type IpAddress, parseIp, sameIp } from "./ipAddress.js"
import type { RawIssue } from "./issues.js"
import { displayPath, formatPath, type PathSegment } from "./path.js"
import { addressProblems, staticAddresses } from "./staticAddress.js"
import { closest } from "./suggest.js"
import { vmNameProblem } from "./vmName.js"

type Raw = Record<string, unknown>

const obj = (value: unknown): Raw | undefined =>
  value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Raw) : undefined
const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined)
const arr = (value: unknown): ReadonlyArray<unknown> | undefined => (Array.isArray(value) ? value : undefined)

/** The IP literal an https URL points at (`https://10.0.0.2:8006`, `https://[fd00::2]:8006`); undefined for a name. */
const urlIp = (value: unknown): IpAddress | undefined => {
  if (typeof value !== "string") return undefined
  try {
    const host = new URL(value).hostname
    return parseIp(host.startsWith("[") ? host.slice(1, -1) : host)
  } catch {
    return undefined
  }
}

/** Where an address is used by a machine that is not a VM of homelab.yaml (a PVE node, the k3s server). */
interface TakenAddress {
  readonly address: IpAddress
  /** `the address of PVE node pve (nodes[0].address)`. */
  readonly owner: string
}

const ipKey = (ip: IpAddress): string => `${ip.family}:${ip.value}`

/**
 * Flags no k3s flag list (`installFlags`, `serverFlags`, `agentFlags`) may hold: the join flags homelab sets itself, and
 * those `@homelab/k3s-join` refuses.
 */
export const refusedK3sFlags: ReadonlyArray<{
  readonly flags: ReadonlyArray<string>
  readonly expected: string
  readonly suggestion?: (name: string) => string
}> = [
  {
    flags: ["--token", "--token-file", "--server", "--agent-token", "--agent-token-file", "-t", "-s"],
    expected: "a flag other than --token, --token-file, --server, --agent-token (managed by homelab)",
    suggestion: (name) => (name.includes("token") || name === "-t" ? "use k3s.token" : "use k3s.server")
  },
  {
    flags: ["--cluster-init", "--cluster-reset"],
    expected:
      "a flag other than --cluster-init or --cluster-reset (homelab starts a cluster itself, on the first server VM, when there is none; it never resets one)"
  },
  {
    flags: ["--help", "-h"],
    expected: "a flag other than --help (k3s would print its help and exit instead of starting)"
  },
  {
    flags: ["--with-node-id"],
    expected: "a flag other than --with-node-id (membership is checked by node name, which must stay the VM name)"
  }
]

export const crossFieldIssues = (root: unknown): Array<RawIssue> => {
  const issues: Array<RawIssue> = []
  const doc = obj(root)
  if (doc === undefined) return issues

  // proxmox: exactly one of endpoint / endpoints; at most one TLS trust mode
  const proxmox = obj(doc.proxmox)
  if (proxmox !== undefined) {
    if (proxmox.endpoint !== undefined && proxmox.endpoints !== undefined) {
      issues.push({
        code: "conflict",
        path: ["proxmox", "endpoints"],
        at: "key",
        expected: "either proxmox.endpoint or proxmox.endpoints, not both",
        found: "both"
      })
    } else if (proxmox.endpoint === undefined && proxmox.endpoints === undefined) {
      issues.push({
        code: "missing-key",
        path: ["proxmox", "endpoint"],
        expected: "an https URL like https://pve1.lan:8006 (or a list in proxmox.endpoints)",
        found: "nothing (the key is required)"
      })
    }
    const tls = obj(proxmox.tls)
    if (tls !== undefined) {
      const modes = [
        tls.ca !== undefined ? "ca" : undefined,
        tls.fingerprint !== undefined ? "fingerprint" : undefined,
        tls.insecure === true ? "insecure" : undefined
      ].filter((mode): mode is string => mode !== undefined)
      if (modes.length > 1) {
        issues.push({
          code: "conflict",
          path: ["proxmox", "tls"],
          expected: "at most one of ca, fingerprint, insecure: true (none = system CAs)",
          found: modes.join(" and ")
        })
      }
    }
  }

  // image: checksum form, file name vs content type
  const image = obj(doc.image)
  if (image !== undefined) {
    const checksum = str(image.checksum)
    const algorithm = str(image.checksumAlgorithm)
    if (checksum !== undefined) {
      const parsed = parseChecksum(checksum, algorithm)
      if (parsed._tag === "Error") {
        issues.push({
          code: parsed.code,
          path: ["image", parsed.field],
          expected: parsed.expected,
          ...(parsed.code === "missing-key" ? { found: "nothing" } : {})
        })
      }
    } else if (algorithm !== undefined) {
      issues.push({
        code: "conflict",
        path: ["image", "checksumAlgorithm"],
        at: "key",
        expected: "checksumAlgorithm only together with image.checksum",
        found: "no checksum"
      })
    }
    const content =
      image.content === "iso" ? "iso" : image.content === undefined || image.content === "import" ? "import" : undefined
    const filename = str(image.filename)
    const url = str(image.url)
    if (content === "iso" && proxmox?.fallback === "off") {
      // PVE imports an iso-type volume only by its absolute path, which only root@pam may pass: homelab does that
      // over SSH, which `fallback: off` forbids
      issues.push({
        code: "conflict",
        path: ["image", "content"],
        at: "value",
        expected:
          "image.content: import with proxmox.fallback: off (PVE imports a VM disk from an iso-type volume only by " +
          "its absolute path, which only root@pam may pass, never an API token: homelab creates such VMs over SSH " +
          "as root)",
        found: "iso",
        suggestion: "use image.content: import (PVE 8.4+), or set proxmox.fallback: ssh"
      })
    }
    if (content !== undefined && filename !== undefined) {
      const ok = content === "import" ? importFilenamePattern.test(filename) : isoFilenamePattern.test(filename)
      const stored = pveNormaliseFilename(filename)
      if (stored !== filename) {
        // PVE would store it under another name: homelab would look for (and wait on) a file that never appears
        issues.push({
          code: "invalid-value",
          path: ["image", "filename"],
          expected:
            "a file name PVE stores as written: letters, digits, _ . - only (download-url and upload replace any " +
            "other character with _ and drop a path, and homelab looks for the name written here)",
          suggestion: `write ${JSON.stringify(stored)}, the name PVE would store it under`
        })
      } else if (!ok) {
        issues.push({
          code: "invalid-value",
          path: ["image", "filename"],
          expected:
            content === "import"
              ? "a file name of [a-zA-Z0-9_.-] ending in .qcow2, .raw, .vmdk or .ova (content import)"
              : "a file name ending in .iso or .img (content iso)"
        })
      }
    } else if (content !== undefined && url !== undefined && filename === undefined) {
      const derived = deriveImageFilename(url, content)
      if ("error" in derived) {
        issues.push({
          code: "invalid-value",
          path: ["image", "url"],
          expected: derived.error,
          suggestion: "set image.filename explicitly"
        })
      }
    }
  }

  // vm: name template placeholders, vmid range
  const vm = obj(doc.vm)
  const template = str(vm?.nameTemplate) ?? "k3s-vm-{node}"
  let templateOk = vm?.nameTemplate === undefined || typeof vm.nameTemplate === "string"
  if (templateOk) {
    for (const placeholder of placeholdersOf(template)) {
      if (!(nameTemplatePlaceholders as ReadonlyArray<string>).includes(placeholder)) {
        templateOk = false
        const suggestion = closest(placeholder, nameTemplatePlaceholders)
        issues.push({
          code: "invalid-value",
          path: ["vm", "nameTemplate"],
          expected: "a template with the placeholders {node} and {index} only",
          found: `${JSON.stringify(template)} with {${placeholder}}`,
          ...(suggestion === undefined ? {} : { suggestion: `did you mean {${suggestion}}?` })
        })
      }
    }
  }
  const range = obj(vm?.vmidRange)
  if (range !== undefined && typeof range.lower === "number" && typeof range.upper === "number") {
    if (range.lower > range.upper) {
      issues.push({
        code: "conflict",
        path: ["vm", "vmidRange"],
        expected: "lower <= upper",
        found: `lower ${range.lower} > upper ${range.upper}`
      })
    }
  }
  const defaultIpConfig = str(vm?.ipConfig) ?? "ip=dhcp"
  const balloon = typeof vm?.balloon === "number" && vm.balloon > 0 ? vm.balloon : undefined

  // nodes: unique names; VM names expand to unique, valid DNS names; static addresses used once, by no PVE node or
  // k3s server, and usable (a host address of their subnet, a gateway in it)
  const nodes = arr(doc.nodes) ?? []
  const k3sSection = obj(doc.k3s)
  const defaultRole = str(k3sSection?.role) ?? "agent"
  const pveAddresses: Array<TakenAddress> = []
  nodes.forEach((rawNode, nodeIndex) => {
    const node = obj(rawNode)
    const name = str(node?.name) ?? `#${nodeIndex}`
    const address = parseIp(str(node?.address) ?? "")
    if (address !== undefined) {
      pveAddresses.push({ address, owner: `the address of PVE node ${name} (nodes[${nodeIndex}].address)` })
    }
    const api = urlIp(node?.api)
    if (api !== undefined)
      pveAddresses.push({ address: api, owner: `the API address of PVE node ${name} (nodes[${nodeIndex}].api)` })
  })
  const endpoints = [
    ...(proxmox?.endpoint === undefined ? [] : [[["proxmox", "endpoint"], proxmox.endpoint] as const]),
    ...(arr(proxmox?.endpoints) ?? []).map((url, i) => [["proxmox", "endpoints", i], url] as const)
  ]
  for (const [path, url] of endpoints) {
    const address = urlIp(url)
    if (address !== undefined) pveAddresses.push({ address, owner: `the PVE API's address (${formatPath(path)})` })
  }
  const k3sServer = parseIp(str(obj(k3sSection?.server)?.host) ?? "")
  const checkedIpConfigs = new Set<string>()
  const nodeNames = new Map<string, number>()
  const vmNames = new Map<string, string>()
  const staticIps = new Map<string, string>()
  nodes.forEach((rawNode, nodeIndex) => {
    const node = obj(rawNode)
    const name = str(node?.name)
    if (node === undefined || name === undefined) return
    const lower = name.toLowerCase()
    const first = nodeNames.get(lower)
    if (first !== undefined) {
      issues.push({
        code: "duplicate",
        path: ["nodes", nodeIndex, "name"],
        expected: "a node name used once",
        found: `${JSON.stringify(name)} (also nodes[${first}].name)`
      })
      return
    }
    nodeNames.set(lower, nodeIndex)
    const entries = arr(node.vms) ?? [{}]
    entries.forEach((rawEntry, vmIndex) => {
      const entry = obj(rawEntry) ?? {}
      const explicit = str(entry.name)
      const entryPath: Array<PathSegment> =
        node.vms === undefined ? ["nodes", nodeIndex] : ["nodes", nodeIndex, "vms", vmIndex]
      const namePath: Array<PathSegment> = explicit === undefined ? entryPath : [...entryPath, "name"]
      // a balloon above a pinned memory: PVE refuses it in every config update (a derived memory is checked per
      // node by the plan)
      if (balloon !== undefined && typeof entry.memory === "number" && balloon > entry.memory) {
        const memoryPath = [...entryPath, "memory"]
        issues.push({
          code: "conflict",
          path: memoryPath,
          expected: `a memory of at least vm.balloon (${balloon} MiB) on node ${name}: PVE refuses a balloon above the VM's memory ("balloon value too large (must be smaller than assigned memory)")`,
          found: `${entry.memory} MiB, below vm.balloon ${balloon}`,
          suggestion: `raise ${displayPath(memoryPath)} to at least ${balloon}, or lower vm.balloon to at most ${entry.memory} (0 turns ballooning off)`
        })
      }
      const vmName = explicit ?? (templateOk ? expandTemplate(template, name, vmIndex + 1) : undefined)
      if (vmName === undefined) return
      const origin = explicit === undefined ? ` (from vm.nameTemplate ${JSON.stringify(template)})` : ""
      const nameProblem = vmNameProblem(vmName, k3sSection !== undefined)
      if (nameProblem !== undefined) {
        const fix =
          nameProblem.lowerCase !== undefined
            ? explicit === undefined
              ? `name the VM ${JSON.stringify(nameProblem.lowerCase)} (nodes[].vms[].name), or write vm.nameTemplate in lower case`
              : `write ${JSON.stringify(nameProblem.lowerCase)}`
            : nameProblem.detail !== undefined
              ? explicit === undefined
                ? "shorten vm.nameTemplate, or give the VM a shorter name (nodes[].vms[].name)"
                : `shorten ${displayPath(namePath)}`
              : undefined
        issues.push({
          code: "invalid-value",
          path: namePath,
          expected: `${nameProblem.expected} on node ${name}`,
          found: `${JSON.stringify(vmName)}${nameProblem.detail === undefined ? "" : ` (${nameProblem.detail})`}${origin}`,
          ...(fix === undefined ? {} : { suggestion: fix })
        })
      }
      const other = nameProblem === undefined ? vmNames.get(vmName.toLowerCase()) : undefined
      if (other !== undefined) {
        issues.push({
          code: "duplicate",
          path: namePath,
          expected: `a VM name unique in the cluster on node ${name}`,
          found: `${JSON.stringify(vmName)}${origin}, already used by ${other}`,
          ...(explicit === undefined && !template.includes("{index}") && entries.length > 1
            ? { suggestion: "add {index} to vm.nameTemplate or give the VMs names" }
            : {})
        })
        return
      }
      if (nameProblem === undefined) vmNames.set(vmName.toLowerCase(), displayPath(namePath))
      const ipConfig = str(entry.ipConfig) ?? defaultIpConfig
      const ipPath: Array<PathSegment> = entry.ipConfig === undefined ? ["vm", "ipConfig"] : [...entryPath, "ipConfig"]
      const where = displayPath(ipPath)
      const role = str(entry.role) ?? defaultRole
      for (const address of staticAddresses(ipConfig)) {
        const ip = address.written
        // the address on its own (once per ipConfig: vm.ipConfig serves several VMs)
        if (!checkedIpConfigs.has(where)) {
          for (const problem of addressProblems(address))
            issues.push({ code: "invalid-value", path: ipPath, ...problem })
        }
        // another machine on it: two hosts answering ARP/NDP for one address break each other
        const pve = pveAddresses.find((taken) => sameIp(taken.address, address.subnet.address))
        if (pve !== undefined) {
          issues.push({
            code: "conflict",
            path: ipPath,
            expected: `a static address no PVE node uses (two machines on one address break each other's ARP: the node or the VM becomes unreachable)`,
            found: `${ip} for VM ${vmName}, ${pve.owner}`,
            suggestion: `give the VM an address of its own in ${where}`
          })
          continue
        }
        if (k3sServer !== undefined && sameIp(k3sServer, address.subnet.address) && role !== "server") {
          issues.push({
            code: "conflict",
            path: ipPath,
            expected: `a static address that is not k3s.server's (an existing server outside the VMs that they join)`,
            found: `${ip} for VM ${vmName} (role ${role}), the address of k3s.server.host`,
            suggestion: `give the VM an address of its own in ${where}; if this VM is that server itself, give it role: server`
          })
          continue
        }
        const owner = staticIps.get(ipKey(address.subnet.address))
        if (owner !== undefined) {
          issues.push({
            code: "duplicate",
            path: ipPath,
            expected: `a static address used by one VM only (VM ${vmName} on node ${name})`,
            found: `${ip}, already used by ${owner}`,
            suggestion: "give each VM its own ipConfig (nodes[].vms[].ipConfig)"
          })
        } else staticIps.set(ipKey(address.subnet.address), `VM ${vmName}`)
      }
      checkedIpConfigs.add(where)
    })
  })

  // vm.vmidRange must hold a VMID for every VM homelab.yaml asks for (each takes one from it)
  if (
    range !== undefined &&
    typeof range.lower === "number" &&
    typeof range.upper === "number" &&
    range.lower <= range.upper &&
    range.upper - range.lower + 1 < vmNames.size
  ) {
    const size = range.upper - range.lower + 1
    issues.push({
      code: "conflict",
      path: ["vm", "vmidRange"],
      expected: `a range of at least ${vmNames.size} VMIDs (one for each VM homelab.yaml asks for)`,
      found: `${range.lower}..${range.upper}, ${size} VMID${size === 1 ? "" : "s"}`,
      suggestion: `widen it, e.g. upper: ${range.lower + vmNames.size - 1} or more (leave room for VMs that are not homelab's)`
    })
  }

  const k3s = obj(doc.k3s)
  // k3s without an existing server: the cluster runs on the VMs, so one of them must be a server (it starts it)
  // (only when nodes is a list: a nodes of the wrong shape has its own error, and says nothing about roles)
  const nodeList = arr(doc.nodes)
  if (k3s !== undefined && k3s.server === undefined && nodeList !== undefined) {
    const nodes = nodeList
    const anyServer = nodes.some((node) => {
      const vms = arr(obj(node)?.vms)
      return vms === undefined
        ? defaultRole === "server"
        : vms.some((entry) => (str(obj(entry)?.role) ?? defaultRole) === "server")
    })
    if (!anyServer) {
      issues.push({
        code: "missing-key",
        path: ["k3s", "server"],
        expected:
          "an existing k3s server to join, or at least one VM with role: server (the first one starts the cluster)",
        found: "nothing, and every VM is an agent",
        suggestion: "set k3s.role: server, or role: server on some nodes[].vms[] (3 servers keep etcd's quorum)"
      })
    }
  }

  // k3s: the flag lists are words of a command line: flags, or the value of the flag before them
  // (`[--write-kubeconfig-mode, "644"]` as well as `--write-kubeconfig-mode=644`); the join flags are managed; and
  // a list only holds flags every k3s command it reaches defines. A k3s.version newer than homelab's flag lists may
  // define flags they do not know: those are left to that k3s (which stops at start on one it does not define).
  const pinned = str(k3s?.version)
  const newer = pinned !== undefined && !flagListsCover(pinned)
  for (const list of K3S_FLAG_LISTS) issues.push(...flagListIssues(list, arr(k3s?.[list.field]) ?? [], newer))
  return issues
}

/**
 * The k3s flag lists of homelab.yaml and the commands each reaches: `installFlags` every VM, `serverFlags` the servers,
 * `agentFlags` the agents.
 */
export const K3S_FLAG_LISTS: ReadonlyArray<{
  readonly field: "installFlags" | "serverFlags" | "agentFlags"
  readonly reaches: ReadonlyArray<"server" | "agent">
  /** Who gets it, for messages. */
  readonly goesTo: string
}> = [
  { field: "installFlags", reaches: ["server", "agent"], goesTo: "every VM, servers and agents" },
  { field: "serverFlags", reaches: ["server"], goesTo: "the servers" },
  { field: "agentFlags", reaches: ["agent"], goesTo: "the agents" }
]

const flagListIssues = (
  list: (typeof K3S_FLAG_LISTS)[number],
  flags: ReadonlyArray<unknown>,
  newerK3s: boolean
): Array<RawIssue> => {
  const issues: Array<RawIssue> = []
  const flagName = (flag: string): string => flag.trim().split(/[=\s]/u)[0] ?? ""
  const takesValue = (flag: unknown): flag is string =>
    typeof flag === "string" && flag.trim().startsWith("-") && !/[=\s]/u.test(flag.trim())
  flags.forEach((flag, index) => {
    if (typeof flag !== "string") return
    const trimmed = flag.trim()
    const path: Array<PathSegment> = ["k3s", list.field, index]
    if (!trimmed.startsWith("-")) {
      const previous = flags[index - 1]
      if (takesValue(previous)) return // a value; the value of a refused flag is not reported (nor shown) again
      issues.push({
        code: "invalid-value",
        path,
        expected:
          'a flag starting with - (like --node-label=tier=gold), or the value of the flag before it ([--node-label, "tier=gold"])'
      })
      return
    }
    const name = flagName(trimmed)
    const shown = `${name}${trimmed === name ? "" : " (value hidden)"}`
    const refused = refusedK3sFlags.find((entry) => entry.flags.includes(name))
    if (refused !== undefined) {
      issues.push({
        code: "invalid-value",
        path,
        expected: refused.expected,
        found: shown,
        ...(refused.suggestion === undefined ? {} : { suggestion: refused.suggestion(name) })
      })
      return
    }
    if (!trimmed.includes("=") && /\s/u.test(trimmed)) {
      issues.push({
        code: "invalid-value",
        path,
        expected: "one word per item: a flag and its value as two items, or --flag=value",
        found: `${JSON.stringify(trimmed.length > 60 ? `${trimmed.slice(0, 57)}...` : trimmed)}`,
        suggestion: `write [${name}, ${JSON.stringify(trimmed.slice(name.length).trim())}] or ${name}=${trimmed.slice(name.length).trim()}`
      })
    }
    // k3s stops at start on a flag its command does not define: a flag no k3s defines (a typo, a removed flag) would
    // only be found on the guest, after the VMs were made, as "flag provided but not defined" in its journal
    const stops = `k3s stops at every start on a flag it does not define: "flag provided but not defined"`
    const removed = removedFlag(trimmed)
    if (removed !== undefined) {
      issues.push({
        code: "invalid-value",
        path,
        expected: `a flag k3s defines (${stops})`,
        found: `${shown}, which k3s v1.26 removed`,
        suggestion: `use ${removed.instead}`
      })
      return
    }
    if (!definesFlag("server", trimmed) && !definesFlag("agent", trimmed)) {
      if (newerK3s) return
      const which = list.reaches.length === 1 ? `k3s ${list.reaches[0]} flag` : "k3s flag"
      const newer = `if a k3s newer than ${K3S_FLAG_NEWEST_RELEASE} defines it, pin that release in k3s.version`
      const { suggestion } = suggestFlag(name, list.reaches)
      issues.push({
        code: "invalid-value",
        path,
        expected: `a ${which} (homelab knows those of k3s ${K3S_FLAG_RELEASES}, and ${stops})`,
        found: `${shown}, which is not a ${which}`,
        suggestion: suggestion === undefined ? newer : `${suggestion} (${newer})`
      })
      return
    }
    // an agent given --disable: the node would never join
    const only = onlyCommandOf(trimmed)
    const missing = only === undefined ? undefined : list.reaches.find((command) => command !== only)
    if (only !== undefined && missing !== undefined) {
      issues.push({
        code: "invalid-value",
        path,
        expected: `a flag k3s ${missing} defines (k3s.${list.field} go to ${list.goesTo}, and k3s ${missing} stops at every start on a flag it does not define: "flag provided but not defined")`,
        found: `${shown}, a flag only k3s ${only} defines`,
        suggestion: `move it to k3s.${only}Flags`
      })
    }
  })
  return issues
}

/**
 * The flag `name` was probably meant to be (`--node-label` for `--node-lable`), among those of either k3s command; with
 * where it goes when a command the list reaches does not define it. Nothing for a one-letter name, or when no flag is
 * close.
 */
const suggestFlag = (name: string, reaches: ReadonlyArray<"server" | "agent">): { readonly suggestion?: string } => {
  if (name.replace(/^-+/u, "").length < 3) return {}
  const guess = closest(name.startsWith("--") ? name : `-${name}`, [
    ...new Set([...k3sFlagsOf("server"), ...k3sFlagsOf("agent")])
  ])
  if (guess === undefined) return {}
  const missing = reaches.find((command) => !definesFlag(command, guess))
  const only = onlyCommandOf(guess)
  return {
    suggestion:
      missing === undefined || only === undefined
        ? `did you mean ${guess}?`
        : `did you mean ${guess}? only k3s ${only} defines it: it goes in k3s.${only}Flags`
  }
}
