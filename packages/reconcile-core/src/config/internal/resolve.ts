/** Decoded file → resolved `HomelabConfig` (run only after all checks passed). */
import type { HomelabConfig, NodeSettings, ProxmoxEndpoint, TlsSettings } from "../HomelabConfig.js"
import type { HomelabConfigFile } from "../HomelabConfigSchema.js"
import { expandTemplate, normaliseTags, parseChecksum } from "./derive.js"
import { deriveImageFilename, filenameWithChecksum, normaliseEndpoint } from "./formats.js"

export const resolveConfig = (file: HomelabConfigFile): HomelabConfig => {
  const { proxmox, image, vm, safety, k3s } = file
  const endpointUrls = proxmox.endpoints ?? (proxmox.endpoint === undefined ? [] : [proxmox.endpoint])
  const [user = "", rest = ""] = splitOnce(proxmox.auth.tokenId, "@")
  const [realm = "", tokenName = ""] = splitOnce(rest, "!")
  const tls: TlsSettings =
    proxmox.tls.ca !== undefined
      ? { mode: "ca", ca: proxmox.tls.ca }
      : proxmox.tls.fingerprint !== undefined
        ? { mode: "fingerprint", fingerprint: proxmox.tls.fingerprint.toUpperCase() }
        : proxmox.tls.insecure === true
          ? { mode: "insecure" }
          : { mode: "system" }

  const checksum = image.checksum === undefined ? undefined : parseChecksum(image.checksum, image.checksumAlgorithm)
  const derived = deriveImageFilename(image.url, image.content)
  const urlName = "filename" in derived ? derived.filename : ""
  // the default name carries the checksum: a new image.checksum is a new file (see filenameWithChecksum)
  const filename =
    image.filename ??
    (checksum?._tag === "Ok" && urlName !== "" ? filenameWithChecksum(urlName, checksum.value) : urlName)
  const requireTag = safety.requireTag.toLowerCase()
  const defaultRole = k3s?.role ?? "agent"

  const endpoints = endpointUrls.map(normaliseEndpoint)
  const nodes: Array<NodeSettings> = file.nodes.map((node) => ({
    name: node.name,
    address: node.address,
    api:
      node.api !== undefined
        ? normaliseEndpoint(node.api)
        : node.address !== undefined && endpoints[0] !== undefined
          ? normaliseEndpoint(
              `https://${node.address.includes(":") ? `[${node.address}]` : node.address}:${endpoints[0].port}`
            )
          : (endpoints[0] as ProxmoxEndpoint),
    sshPort: node.sshPort ?? file.ssh.port,
    storage: node.storage,
    imageStorage: node.imageStorage ?? image.storage,
    bridges: node.bridges,
    cpuRatio: node.cpuRatio,
    memoryRatio: node.memoryRatio,
    vms: (node.vms ?? [{}]).map((entry, i) => ({
      name: entry.name ?? expandTemplate(vm.nameTemplate, node.name, i + 1),
      index: i + 1,
      role: entry.role ?? defaultRole,
      cores: entry.cores,
      memory: entry.memory,
      diskSize: entry.diskSize ?? vm.diskSize,
      ipConfig: entry.ipConfig ?? vm.ipConfig
    }))
  }))

  const names: Array<string> = []
  const vmids: Array<number> = []
  for (const item of safety.protect) {
    if (typeof item === "number") vmids.push(item)
    else names.push(item)
  }

  return {
    proxmox: {
      endpoints,
      auth: { tokenId: proxmox.auth.tokenId, user, realm, tokenName, secret: proxmox.auth.secret },
      tls,
      fallback: proxmox.fallback
    },
    ssh: {
      user: file.ssh.user,
      privateKey: file.ssh.privateKey,
      passphrase: file.ssh.passphrase,
      agent: file.ssh.agent,
      knownHosts: { mode: file.ssh.knownHosts.mode, file: file.ssh.knownHosts.file },
      port: file.ssh.port,
      jump: file.ssh.jump === undefined ? undefined : { ...file.ssh.jump }
    },
    image: {
      url: image.url,
      checksum: checksum?._tag === "Ok" ? { algorithm: checksum.algorithm, value: checksum.value } : undefined,
      filename,
      filenameSet: image.filename !== undefined,
      storage: image.storage,
      content: image.content,
      volid: `${image.storage}:${image.content}/${filename}`,
      transfer: image.transfer
    },
    vm: {
      nameTemplate: vm.nameTemplate,
      diskSize: vm.diskSize,
      user: vm.user,
      password: vm.password,
      sshKeys: vm.sshKeys,
      ipConfig: vm.ipConfig,
      nameserver: vm.nameserver,
      searchdomain: vm.searchdomain,
      cicustom: vm.cicustom === undefined || Object.keys(vm.cicustom).length === 0 ? undefined : { ...vm.cicustom },
      tags: normaliseTags([...vm.tags, requireTag]),
      cpuType: vm.cpuType,
      sockets: vm.sockets,
      balloon: vm.balloon,
      memoryOvercommit: vm.memoryOvercommit,
      onboot: vm.onboot,
      description: vm.description,
      restart: vm.restart,
      sshPort: vm.sshPort,
      vmidRange: vm.vmidRange === undefined ? undefined : { ...vm.vmidRange }
    },
    nodes,
    health: { ...file.health },
    timeouts: { ...file.timeouts },
    parallelism: file.parallelism,
    safety: { maxRecreatePerRun: safety.maxRecreatePerRun, protect: { names, vmids }, requireTag },
    k3s:
      k3s === undefined
        ? undefined
        : {
            server:
              k3s.server === undefined
                ? undefined
                : {
                    host: k3s.server.host,
                    port: k3s.server.port,
                    user: k3s.server.user ?? vm.user,
                    apiPort: k3s.server.apiPort
                  },
            apiEndpoint: k3s.apiEndpoint,
            upgrade: { maxUnavailable: k3s.upgrade.maxUnavailable, drainTimeout: k3s.upgrade.drainTimeout },
            role: k3s.role,
            version: k3s.version,
            channel: k3s.channel,
            installScriptUrl: k3s.installScriptUrl,
            installFlags: k3s.installFlags,
            serverFlags: k3s.serverFlags,
            agentFlags: k3s.agentFlags,
            airgap: k3s.airgap,
            token: k3s.token
          }
  }
}

const splitOnce = (text: string, separator: string): [string, string] => {
  const at = text.indexOf(separator)
  return at < 0 ? [text, ""] : [text.slice(0, at), text.slice(at + separator.length)]
}
