import { HealthPolicy } from "@homelab/vm-health"
import * as Duration from "effect/Duration"
import type { HomelabConfig } from "./config/HomelabConfig.js"
import { nodeSshTarget } from "./connections.js"
import type { Desired, DesiredCicustom, DesiredNode } from "./Desired.js"
import { passwordMark } from "./PasswordMark.js"

/** Tag a VM carries from its creation until it is fully provisioned (disk resized, started, IP seen). */
export const PendingTag = "homelab-pending"

/** Default VMID range when the config sets none: clear of the 100… ids people create by hand. */
export const DefaultVmidRange = { lower: 1000, upper: 8999 } as const

const units: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }

/** `64G` → 64, `512M` → 1 (rounded up to whole GiB; a bare number is bytes, as PVE reads it). */
export const diskSizeGiB = (size: string): number => {
  const match = /^(\d+(?:\.\d+)?)([KMGT]?)$/.exec(size.trim())
  if (match === null) throw new RangeError(`invalid disk size '${size}'`)
  const bytes = Number(match[1]) * (units[match[2] ?? ""] ?? 1)
  return Math.max(1, Math.ceil(bytes / 1024 ** 3))
}

/**
 * The desired state for phases 1–2 from a loaded config. `sshKeys` are the public key lines (the CLI reads the
 * `*.pub` files the config names).
 */
export const desiredFromConfig = (
  config: HomelabConfig,
  resolved: { readonly sshKeys: ReadonlyArray<string> }
): Desired => ({
  nodes: config.nodes.map(
    (node): DesiredNode => ({
      name: node.name,
      endpoints: (() => {
        const ssh = nodeSshTarget(config, node.name)
        return { api: node.api.url, ssh: `${ssh.user}@${ssh.host}:${ssh.port}`, token: config.proxmox.auth.tokenId }
      })(),
      cpuRatio: node.cpuRatio,
      memoryRatio: node.memoryRatio,
      image: {
        url: config.image.url,
        storage: node.imageStorage,
        content: config.image.content,
        filename: config.image.filename,
        ...(config.image.filenameSet ? { fixedName: true } : {}),
        ...(config.image.checksum ? { checksum: config.image.checksum } : {}),
        transfer: config.image.transfer
      },
      rootOverSsh: config.proxmox.fallback === "ssh",
      vms: node.vms.map((vm) => ({
        name: vm.name,
        node: node.name,
        role: vm.role,
        cores: vm.cores,
        memoryMiB: vm.memory,
        diskGiB: diskSizeGiB(vm.diskSize),
        storage: node.storage,
        bridges: node.bridges,
        tags: config.vm.tags,
        cpuType: config.vm.cpuType,
        ...(config.vm.sockets !== undefined ? { sockets: config.vm.sockets } : {}),
        ...(config.vm.balloon !== undefined ? { balloonMiB: config.vm.balloon } : {}),
        ...(config.vm.onboot !== undefined ? { onboot: config.vm.onboot } : {}),
        ...(config.vm.description !== undefined ? { description: config.vm.description } : {}),
        cloudInit: {
          user: config.vm.user,
          password: config.vm.password,
          // keyed with the API token's secret: homelab.yaml always has one (proxmox.auth.secret is required)
          ...(config.vm.password !== undefined
            ? { passwordMark: passwordMark(config.proxmox.auth.secret, vm.name, config.vm.password) }
            : {}),
          sshKeys: resolved.sshKeys,
          ipConfig: vm.ipConfig,
          nameserver: config.vm.nameserver,
          searchdomain: config.vm.searchdomain,
          ...(config.vm.cicustom !== undefined ? { cicustom: config.vm.cicustom } : {})
        }
      }))
    })
  ),
  ownershipTag: config.safety.requireTag,
  pendingTag: PendingTag,
  vmidRange: config.vm.vmidRange ?? DefaultVmidRange,
  limits: { maxRecreatePerRun: config.safety.maxRecreatePerRun },
  restart: config.vm.restart,
  ...(config.vm.memoryOvercommit !== 1 ? { memoryOvercommit: config.vm.memoryOvercommit } : {}),
  protect: [...config.safety.protect.names, ...config.safety.protect.vmids],
  timeouts: {
    task: Duration.seconds(config.timeouts.task),
    ip: Duration.seconds(config.timeouts.ip),
    k3sInstall: Duration.seconds(config.timeouts.k3sInstall),
    k3sReady: Duration.seconds(config.timeouts.k3sReady)
  },
  // API calls carry the token (`user@realm!name`); pvesh/qm over SSH run as root@pam.
  taskUsers: [config.proxmox.auth.tokenId, "root@pam"],
  apiTokenId: config.proxmox.auth.tokenId,
  k3s:
    config.k3s === undefined
      ? undefined
      : {
          server: config.k3s.server,
          apiEndpoint: config.k3s.apiEndpoint,
          vmUser: config.vm.user,
          vmSshPort: config.vm.sshPort,
          version: config.k3s.version,
          channel: config.k3s.channel,
          upgrade: {
            maxUnavailable: config.k3s.upgrade.maxUnavailable,
            drainTimeout: Duration.seconds(config.k3s.upgrade.drainTimeout)
          },
          installFlags: config.k3s.installFlags,
          serverFlags: config.k3s.serverFlags,
          agentFlags: config.k3s.agentFlags,
          installScriptUrl: config.k3s.installScriptUrl,
          airgap: config.k3s.airgap,
          token: config.k3s.token
        }
})

/**
 * PVE's `cicustom` property string for the snippets, in PVE's key order (`user=…,network=…,vendor=…`); undefined when
 * there is none.
 */
export const cicustomProperty = (cicustom: DesiredCicustom | undefined): string | undefined => {
  if (cicustom === undefined) return undefined
  const parts = (["user", "network", "vendor"] as const).flatMap((key) =>
    cicustom[key] === undefined ? [] : [`${key}=${cicustom[key]}`]
  )
  return parts.length === 0 ? undefined : parts.join(",")
}

/** The vm-health policy the config's `health` section asks for. */
export const healthPolicyFromConfig = (config: HomelabConfig): HealthPolicy => {
  const d = HealthPolicy.defaults
  const h = config.health
  return new HealthPolicy({
    graceSeconds: h.graceSeconds,
    stopped: h.stopped,
    paused: h.paused,
    prelaunch: h.prelaunch,
    suspended: d.suspended,
    hibernated: d.hibernated,
    crashed: d.crashed,
    agentNotResponding: h.agentMissing === "recreate" ? "recreate" : "degraded"
  })
}
