import { mkdirSync } from "node:fs"
import { readFile } from "node:fs/promises"
import path from "node:path"
import { K3sJoin } from "@homelab/k3s-join"
import { ProxmoxApi, ProxmoxClientConfig, type ProxmoxClientEvent } from "@homelab/proxmox-client"
import { proxmoxClientConfig, sshOptions } from "@homelab/reconcile-core"
import { SshClient, type SshEvent } from "@homelab/ssh"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { CommandFailed } from "./CommandFailed.js"
import { ExitCode } from "./ExitCode.js"
import { type LoadedConfig, resolvePath } from "./LoadedConfig.js"

/** Notices from the client libraries (transport fallbacks, TLS and host-key warnings), shown to the user as they come. */
export type Notice =
  | { readonly _tag: "Proxmox"; readonly event: ProxmoxClientEvent }
  | { readonly _tag: "Ssh"; readonly event: SshEvent }

/**
 * The Proxmox client for one run, wired from homelab.yaml: per-node API endpoints and SSH targets, TLS trust, token,
 * known_hosts. Files the config names are read here (the libraries never touch `process.env` or config paths).
 */
export const proxmoxLayer = Effect.fn("proxmoxLayer")(function* (loaded: LoadedConfig, onNotice: (n: Notice) => void) {
  const { config } = loaded
  const caPem =
    config.proxmox.tls.mode === "ca"
      ? yield* Effect.tryPromise({
          try: () => readFile(resolvePath(loaded.path, (config.proxmox.tls as { ca: string }).ca), "utf8"),
          catch: (e) =>
            new CommandFailed({
              userMessage: `cannot read proxmox.tls.ca: ${(e as Error).message}\nPoint it at the cluster CA (/etc/pve/pve-root-ca.pem, copied from a node).`,
              exitCode: ExitCode.Config
            })
        })
      : undefined
  const knownHostsPath = resolvePath(loaded.path, config.ssh.knownHosts.file)
  if (config.ssh.knownHosts.mode === "accept-new") mkdirSync(path.dirname(knownHostsPath), { recursive: true })
  const resolved = {
    caPem,
    privateKeyPath: resolvePath(loaded.path, config.ssh.privateKey),
    agentSocket: process.env.SSH_AUTH_SOCK,
    knownHostsPath,
    onProxmoxEvent: (event: ProxmoxClientEvent) => onNotice({ _tag: "Proxmox", event }),
    onSshEvent: (event: SshEvent) => onNotice({ _tag: "Ssh", event })
  }
  const proxmox = ProxmoxApi.layer.pipe(
    Layer.provide(ProxmoxClientConfig.layer(proxmoxClientConfig(config, resolved))),
    Layer.provide(SshClient.layerWith(sshOptions(config, resolved)))
  )
  // k3s runs over SSH to the k3s server and to the VMs. VMs are new hosts by nature: their keys are trusted on first
  // use (a rebuilt VM's old key is forgotten by the rejoin), unless host key checking is off altogether.
  const k3sSsh = sshOptions(config, resolved)
  const k3s = K3sJoin.layer.pipe(
    Layer.provide(
      SshClient.layerWith({
        ...k3sSsh,
        knownHosts: { ...k3sSsh.knownHosts, mode: config.ssh.knownHosts.mode === "off" ? "off" : "accept-new" }
      })
    )
  )
  return Layer.merge(proxmox, k3s)
})
