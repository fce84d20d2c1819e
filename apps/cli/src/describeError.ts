import type { K3sJoinError } from "@homelab/k3s-join"
import type { ProxmoxError } from "@homelab/proxmox-client"
import { type Desired, describeFailure, type SavedPlanError } from "@homelab/reconcile-core"
import type { SshError } from "@homelab/ssh"
import * as Effect from "effect/Effect"
import { CommandFailed } from "./CommandFailed.js"
import { ExitCode } from "./ExitCode.js"

/**
 * The one mapping from library errors to what a person reads and the exit code a script sees. A Proxmox error names
 * the node, where each transport went (API URL, SSH host:port) and what each said, with a hint about the thing that
 * failed (the endpoint, the SSH key, the token); `desired` supplies the endpoints.
 */
export const describeProxmoxError = (error: ProxmoxError, desired?: Desired): CommandFailed => {
  const node = error.node ?? desired?.nodes[0]?.name ?? "?"
  const endpoints = desired?.nodes.find((n) => n.name === node)?.endpoints
  const what = error.operation === "clusterResources" ? "read the cluster's state" : error.operation
  const described = describeFailure(node, what, error, endpoints)
  const whole =
    error.operation === "clusterResources" && desired !== undefined && desired.nodes.length > 1
      ? " (every configured node was tried)"
      : ""
  return new CommandFailed({
    userMessage: `Proxmox: ${described.message}${whole}`,
    exitCode: ExitCode.Proxmox,
    hint: described.hint,
    ...(error.node !== undefined ? { node: error.node } : {})
  })
}

export const describeSshError = (error: SshError): CommandFailed =>
  new CommandFailed({ userMessage: `SSH: ${error.message}`, exitCode: ExitCode.Proxmox })

/**
 * `homelab kubeconfig`: reading the kubeconfig from a k3s server failed. SSH to it failing (nothing listens, our key
 * refused, an unknown host key) means there is no server to read it from: exit 5, as when none is Ready, with a hint
 * naming the host and what to check there. So does reading `/etc/rancher/k3s/k3s.yaml` there failing (no such file:
 * no k3s server there; sudo asking for a password: the user may not read root's file). `from` says where the server
 * came from: `k3s.server`, or a server VM of ours (its address, `vm.sshPort`, `vm.user`).
 */
export const describeKubeconfigError = (
  error: K3sJoinError,
  server: { readonly host: string; readonly port: number; readonly user: string },
  from: "k3s.server" | "vm"
): CommandFailed => {
  const where = `${server.user}@${server.host}:${server.port}`
  if (error.reason._tag === "ClusterUnavailable") return kubeconfigUnreadable(error.reason.detail, where, server, from)
  if (error.reason._tag !== "Ssh") {
    return new CommandFailed({
      userMessage: `kubeconfig from ${where}: ${error.message}`,
      exitCode: ExitCode.Error,
      ...(error.reason._tag === "KubeconfigInvalid"
        ? {
            hint: `look at /etc/rancher/k3s/k3s.yaml on ${server.host}: k3s writes it at its start (\`sudo systemctl restart k3s\` rewrites it)`
          }
        : {})
    })
  }
  const ssh = error.reason.error.reason
  const fields = from === "k3s.server" ? "k3s.server's host and port" : "the server VM's address and vm.sshPort"
  const hint = (() => {
    switch (ssh._tag) {
      case "Unreachable":
      case "Timeout":
      case "Disconnected":
        return `check that ${server.host} is up and its sshd listens on port ${server.port} (${fields})`
      case "AuthRejected":
        return /private key|passphrase/iu.test(ssh.detail)
          ? "fix ssh.privateKey (and ssh.passphrase) in homelab.yaml; `homelab config check` checks the key"
          : `check that ${server.user}@${server.host} accepts the key of ssh.privateKey (its ~/.ssh/authorized_keys; ` +
              `${from === "k3s.server" ? "k3s.server.user names the user" : "our VMs get it from vm.sshKeys, as vm.user"})`
      case "HostKeyMismatch":
      case "HostKeyRevoked":
      case "HostKeyUnknown":
        return `check the host key of ${server.host} in ssh.knownHosts.file (the message says how)`
      default:
        return `check SSH to ${server.host} as homelab makes it: \`ssh -p ${server.port} ${server.user}@${server.host}\``
    }
  })()
  return new CommandFailed({
    userMessage: `kubeconfig from ${where}: SSH ${ssh.message}`,
    exitCode: ExitCode.NotConverged,
    code: "k3s-ssh",
    hint
  })
}

/** `sudo -n cat /etc/rancher/k3s/k3s.yaml` on the server failed: what its stderr says, and what to do about it. */
const kubeconfigUnreadable = (
  detail: string,
  where: string,
  server: { readonly host: string; readonly user: string },
  from: "k3s.server" | "vm"
): CommandFailed => {
  const hint = /No such file/iu.test(detail)
    ? from === "k3s.server"
      ? `${server.host} has no k3s server (an agent has no k3s.yaml): point k3s.server at a k3s server`
      : `k3s is not installed as a server on ${server.host} any more: \`homelab apply\` installs it`
    : /password is required|not in the sudoers|not allowed to run sudo|a terminal is required/iu.test(detail)
      ? `${server.user} on ${server.host} may not read root's /etc/rancher/k3s/k3s.yaml: allow it sudo without a password (a sudoers rule \`${server.user} ALL=(ALL) NOPASSWD: ALL\`, as k3s installs need too), or connect as root`
      : `check k3s on ${server.host}: \`sudo systemctl status k3s\` and \`sudo ls -l /etc/rancher/k3s/k3s.yaml\``
  return new CommandFailed({
    userMessage: `kubeconfig from ${where}: ${detail}`,
    exitCode: ExitCode.NotConverged,
    code: "k3s-kubeconfig-unreadable",
    hint
  })
}

/**
 * A saved plan that is not applied: another homelab.yaml or a lab that moved exits 9 (make the plan again); a file
 * that is no saved plan (or of another format version) is a usage error.
 */
export const describeSavedPlanError = (error: SavedPlanError): CommandFailed =>
  error.reason._tag === "SavedPlanUnreadable"
    ? new CommandFailed({
        userMessage: error.message,
        exitCode: ExitCode.Usage,
        code: "plan-unreadable",
        hint: "pass a file written by `homelab plan --out FILE`"
      })
    : new CommandFailed({
        userMessage: error.message,
        exitCode: ExitCode.PlanStale,
        hint: `make the plan again (\`homelab plan --out ${error.source}\`), review it, and apply that`
      })

/** Ends every command: library errors become `CommandFailed`; anything else is a bug (exit 1 with its report). */
export const toCommandFailed = <A, R>(
  effect: Effect.Effect<A, ProxmoxError | SshError | SavedPlanError | CommandFailed, R>,
  desired?: Desired
): Effect.Effect<A, CommandFailed, R> =>
  effect.pipe(
    Effect.catchTags({
      ProxmoxError: (e: ProxmoxError) => Effect.fail(describeProxmoxError(e, desired)),
      SshError: (e: SshError) => Effect.fail(describeSshError(e)),
      SavedPlanError: (e: SavedPlanError) => Effect.fail(describeSavedPlanError(e))
    })
  )
