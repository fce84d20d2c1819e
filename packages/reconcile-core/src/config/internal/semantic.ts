/**
 * Cross-field rules that a per-field schema cannot express. They run on the raw (interpolated) data, defensively,
 * so that they are reported together with the schema issues instead of only after those are fixed.
 */
import { expandTemplate, parseChecksum, placeholdersOf } from "./derive.js"
import {
  deriveImageFilename,
  dnsNamePattern,
  importFilenamePattern,
  isoFilenamePattern,
  nameTemplatePlaceholders,
  pveNormaliseFilename,
  staticIpv4
} from "./formats.js"
import type { RawIssue } from "./issues.js"
import { displayPath, type PathSegment } from "./path.js"
import { closest } from "./suggest.js"

type Raw = Record<string, unknown>

const obj = (value: unknown): Raw | undefined =>
  value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Raw) : undefined
const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined)
const arr = (value: unknown): ReadonlyArray<unknown> | undefined => (Array.isArray(value) ? value : undefined)

/** Flags `k3s.installFlags` may not hold: the join flags homelab sets itself, and those `@homelab/k3s-join` refuses. */
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

  // nodes: unique names; VM names expand to unique, valid DNS names; static addresses used once
  const nodes = arr(doc.nodes) ?? []
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
      if (!dnsNamePattern.test(vmName)) {
        issues.push({
          code: "invalid-value",
          path: namePath,
          expected: `a VM name that is a valid DNS name (letters, digits, -, dots between labels) on node ${name}`,
          found: `${JSON.stringify(vmName)}${origin}`
        })
        return
      }
      const other = vmNames.get(vmName.toLowerCase())
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
      vmNames.set(vmName.toLowerCase(), displayPath(namePath))
      const ipConfig = str(entry.ipConfig) ?? defaultIpConfig
      const ip = staticIpv4(ipConfig)
      if (ip !== undefined) {
        const owner = staticIps.get(ip)
        const ipPath: Array<PathSegment> =
          entry.ipConfig === undefined ? ["vm", "ipConfig"] : [...entryPath, "ipConfig"]
        if (owner !== undefined) {
          issues.push({
            code: "duplicate",
            path: ipPath,
            expected: `a static address used by one VM only (VM ${vmName} on node ${name})`,
            found: `${ip}, already used by ${owner}`,
            suggestion: "give each VM its own ipConfig (nodes[].vms[].ipConfig)"
          })
        } else staticIps.set(ip, `VM ${vmName}`)
      }
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
    const defaultRole = str(k3s.role) ?? "agent"
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

  // k3s: install flags are words of a command line: flags, or the value of the flag before them
  // (`[--write-kubeconfig-mode, "644"]` as well as `--write-kubeconfig-mode=644`); the join flags are managed.
  const flags = arr(k3s?.installFlags) ?? []
  const flagName = (flag: string): string => flag.trim().split(/[=\s]/u)[0] ?? ""
  const takesValue = (flag: unknown): flag is string =>
    typeof flag === "string" && flag.trim().startsWith("-") && !/[=\s]/u.test(flag.trim())
  flags.forEach((flag, index) => {
    if (typeof flag !== "string") return
    const trimmed = flag.trim()
    const path: Array<PathSegment> = ["k3s", "installFlags", index]
    if (!trimmed.startsWith("-")) {
      const previous = flags[index - 1]
      if (takesValue(previous)) return // a value; the value of a refused flag is not reported (nor shown) again
      issues.push({
        code: "invalid-value",
        path,
        expected:
          'a flag starting with - (like --disable=traefik), or the value of the flag before it ([--write-kubeconfig-mode, "644"])'
      })
      return
    }
    const name = flagName(trimmed)
    const refused = refusedK3sFlags.find((entry) => entry.flags.includes(name))
    if (refused !== undefined) {
      issues.push({
        code: "invalid-value",
        path,
        expected: refused.expected,
        found: `${name}${trimmed === name ? "" : " (value hidden)"}`,
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
  })
  return issues
}
