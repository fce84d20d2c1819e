import type { K3sJoinError } from "@homelab/k3s-join"

/** An SSH target a join uses, as homelab.yaml sets it. */
interface Target {
  readonly host: string
  readonly port: number
  readonly user: string
}

/**
 * What to check when a k3s join could not open an SSH session (refused, no answer, login refused) to the VM it joins
 * or to the server it joins through: the address, port and user it tried, and the keys of homelab.yaml that set them.
 * Undefined for any other failure (a session that opened: what ran there failed, and its journal says why). `server`
 * is `k3s.server` when that is the server (`configured`), else a server VM of ours.
 */
export const joinSshHint = (
  error: K3sJoinError,
  vm: Target,
  server: Target & { readonly configured: boolean }
): string | undefined => {
  if (error.reason._tag !== "Ssh") return undefined
  const ssh = error.reason.error
  const cause = ssh.reason._tag
  if (cause !== "Unreachable" && cause !== "Timeout" && cause !== "AuthRejected") return undefined
  if (ssh.host === vm.host) {
    return cause === "AuthRejected"
      ? `homelab could not log in to the VM as ${vm.user}@${vm.host}:${vm.port}: check vm.user (the user cloud-init creates) and that vm.sshKeys holds the public key of ssh.privateKey`
      : `homelab could not reach SSH on the VM at ${vm.host}:${vm.port}: check vm.sshPort (${vm.port}), and that the image runs sshd on that port`
  }
  if (ssh.host === server.host) {
    const keys = server.configured ? "k3s.server (host, port, user)" : "the server VM (vm.sshPort, vm.user)"
    return cause === "AuthRejected"
      ? `homelab could not log in to the k3s server it joins through as ${server.user}@${server.host}:${server.port}: check ${keys}, and that the public key of ssh.privateKey is in ${server.user}'s ~/.ssh/authorized_keys there`
      : `homelab could not reach SSH on the k3s server it joins through at ${server.host}:${server.port}: check ${keys}, and that sshd runs there`
  }
  return undefined
}
