import type { ProxmoxError } from "@homelab/proxmox-client"
import type { SshError } from "@homelab/ssh"
import { Effect } from "effect"
import { CommandFailed } from "./CommandFailed.js"
import { ExitCode } from "./ExitCode.js"

const hintFor = (error: ProxmoxError): string | undefined => {
  switch (error.reason._tag) {
    case "AuthRejected":
      return "check proxmox.auth.tokenId and the secret (Datacenter → Permissions → API Tokens)"
    case "PermissionDenied":
      return "grant the token the privilege on that path, or create it without privilege separation"
    case "TlsUntrusted":
      return "set proxmox.tls.ca to the cluster CA (/etc/pve/pve-root-ca.pem) or proxmox.tls.fingerprint to the node's SHA-256 fingerprint; or allow the SSH fallback (proxmox.fallback: ssh)"
    case "Unreachable":
      return "check proxmox.endpoint / nodes[].api and that the node is up; with proxmox.fallback: ssh the node is driven over SSH instead"
    default:
      return undefined
  }
}

/** The one mapping from library errors to what a person reads and the exit code a script sees. */
export const describeProxmoxError = (error: ProxmoxError): CommandFailed => {
  const hint = hintFor(error)
  return new CommandFailed({
    userMessage: `Proxmox: ${error.message}${hint ? `\nhint: ${hint}` : ""}`,
    exitCode: ExitCode.Proxmox,
    ...(error.node !== undefined ? { node: error.node } : {})
  })
}

export const describeSshError = (error: SshError): CommandFailed =>
  new CommandFailed({ userMessage: `SSH: ${error.message}`, exitCode: ExitCode.Proxmox })

/** Ends every command: library errors become `CommandFailed`; anything else is a bug (exit 1 with its report). */
export const toCommandFailed = <A, R>(
  effect: Effect.Effect<A, ProxmoxError | SshError | CommandFailed, R>
): Effect.Effect<A, CommandFailed, R> =>
  effect.pipe(
    Effect.catchTags({
      ProxmoxError: (e: ProxmoxError) => Effect.fail(describeProxmoxError(e)),
      SshError: (e: SshError) => Effect.fail(describeSshError(e))
    })
  )
