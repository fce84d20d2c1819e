import type { ProxmoxClientConfigShape, ProxmoxClientEvent } from "@homelab/proxmox-client"
import type { SshEvent, SshOptions, SshTarget } from "@homelab/ssh"
import * as Duration from "effect/Duration"
import type { HomelabConfig } from "./config/HomelabConfig.js"

/** Files and sockets the caller (the CLI) resolved: paths expanded, the CA file read. */
export interface ResolvedConnections {
  /** PEM text of `proxmox.tls.ca`, read by the caller. */
  readonly caPem?: string | undefined
  readonly privateKeyPath: string
  /** `SSH_AUTH_SOCK`, when `ssh.agent` is on. */
  readonly agentSocket?: string | undefined
  readonly knownHostsPath: string
  readonly onProxmoxEvent?: ((event: ProxmoxClientEvent) => void) | undefined
  readonly onSshEvent?: ((event: SshEvent) => void) | undefined
}

/** The SSH target of a PVE node: its address (else its API host), the node's SSH port, `ssh.user`, the jump host. */
export const nodeSshTarget = (config: HomelabConfig, nodeName: string): SshTarget => {
  const node = config.nodes.find((n) => n.name === nodeName)
  const host = node?.address ?? node?.api.host ?? nodeName
  const jump = config.ssh.jump
  return {
    host,
    port: node?.sshPort ?? config.ssh.port,
    user: config.ssh.user,
    ...(jump !== undefined ? { jump: { host: jump.host, port: jump.port, user: jump.user } } : {})
  }
}

/** The Proxmox client's configuration from homelab.yaml: one API endpoint and one SSH target per node. */
export const proxmoxClientConfig = (config: HomelabConfig, resolved: ResolvedConnections): ProxmoxClientConfigShape => {
  const tls = config.proxmox.tls
  return {
    nodes: config.nodes.map((node) => ({
      name: node.name,
      apiUrl: node.api.url,
      ssh: nodeSshTarget(config, node.name)
    })),
    auth: { _tag: "Token", tokenId: config.proxmox.auth.tokenId, secret: config.proxmox.auth.secret },
    tls:
      tls.mode === "ca"
        ? { ca: resolved.caPem }
        : tls.mode === "fingerprint"
          ? { fingerprint: tls.fingerprint }
          : tls.mode === "insecure"
            ? { insecure: true }
            : {},
    fallback: config.proxmox.fallback === "ssh",
    maxTasksInFlight: config.parallelism,
    timeouts: {
      request: Duration.seconds(config.timeouts.api),
      connect: Duration.seconds(config.timeouts.connect)
    },
    ...(resolved.onProxmoxEvent !== undefined ? { onEvent: resolved.onProxmoxEvent } : {})
  }
}

/** SSH options from homelab.yaml (used for the node fallback, the k3s server and the VMs). */
export const sshOptions = (config: HomelabConfig, resolved: ResolvedConnections): SshOptions => ({
  auth: {
    privateKeyPath: resolved.privateKeyPath,
    ...(config.ssh.passphrase !== undefined ? { passphrase: config.ssh.passphrase } : {}),
    ...(config.ssh.agent && resolved.agentSocket !== undefined ? { agentSocket: resolved.agentSocket } : {})
  },
  knownHosts: { mode: config.ssh.knownHosts.mode, path: resolved.knownHostsPath },
  connectTimeout: Duration.seconds(config.timeouts.ssh),
  ...(resolved.onSshEvent !== undefined ? { onEvent: resolved.onSshEvent } : {})
})
