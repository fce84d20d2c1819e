import type { ProxmoxError, ProxmoxErrorReason } from "@homelab/proxmox-client"
import type { NodeEndpoints } from "./Desired.js"

/** One transport's failure in words a user understands (no operation names, no stack). */
export const inWords = (reason: ProxmoxErrorReason, token?: string | undefined): string => {
  switch (reason._tag) {
    case "Unreachable":
      switch (reason.kind) {
        case "refused":
          return "connection refused (nothing listens there)"
        case "timeout":
          return "no answer in time (the node is down, or a firewall drops the traffic)"
        case "dns":
          return "the host name does not resolve"
        case "reset":
          return `the connection was reset (${reason.detail})`
      }
      return reason.message
    case "TlsUntrusted":
      return `its TLS certificate is not trusted (${reason.code}${reason.fingerprint ? `, SHA-256 ${reason.fingerprint}` : ""})`
    case "AuthRejected": {
      if (reason.transport !== "ssh")
        return `the API token ${token === undefined ? "" : `${token} `}was rejected (${reason.detail})`
      const detail = reason.detail.replace(/^ssh: /, "")
      if (/private key|passphrase/i.test(detail)) return `the SSH private key cannot be used: ${detail}`
      if (/host key/i.test(detail)) return detail
      return "our SSH key was refused (authentication failed)"
    }
    case "PermissionDenied":
      return reason.message
    case "ProxyError":
      return `the API proxy answered ${reason.status} ${reason.detail}: ${reason.explanation}`
    default:
      return reason.message
  }
}

const transportOf = (reason: ProxmoxErrorReason): "rest" | "ssh" | undefined =>
  reason._tag === "Unreachable"
    ? reason.transport
    : reason._tag === "AuthRejected"
      ? (reason.transport ?? "rest")
      : reason._tag === "TlsUntrusted" || reason._tag === "ProxyError"
        ? "rest"
        : undefined

/** Is this a failure to reach or log in to a node (rather than PVE refusing one request)? */
export const isNodeLevel = (error: ProxmoxError): boolean =>
  error.fallbackFrom !== undefined ||
  error.reason._tag === "Unreachable" ||
  error.reason._tag === "TlsUntrusted" ||
  (error.reason._tag === "AuthRejected" && error.reason.transport === "ssh") ||
  (error.reason._tag === "ProxyError" && error.reason.status === 596)

const hintFor = (
  reason: ProxmoxErrorReason,
  endpoints: NodeEndpoints | undefined,
  node: string,
  what: string
): string => {
  const ssh = endpoints?.ssh ?? "the node"
  const host = ssh.replace(/^[^@]*@/, "")
  switch (reason._tag) {
    case "Unreachable":
      // a name that does not resolve is a typo or this machine's DNS, whatever runs on the node
      if (reason.kind === "dns")
        return reason.transport === "ssh"
          ? `the host name of ${host} does not resolve: check nodes[].address for a typo, and this machine's DNS`
          : `the host name of ${endpoints?.api ?? `${node}'s API`} does not resolve: check nodes[].api (or proxmox.endpoint) for a typo, and this machine's DNS`
      return reason.transport === "ssh"
        ? `check that sshd runs on ${host} (nodes[].address and nodes[].sshPort)`
        : `check that ${node} is up and pveproxy runs on it (\`systemctl status pveproxy\`), and nodes[].api`
    case "TlsUntrusted":
      return "set proxmox.tls.ca to the cluster CA (/etc/pve/pve-root-ca.pem) or proxmox.tls.fingerprint, or allow the SSH fallback"
    case "AuthRejected":
      return reason.transport === "ssh"
        ? /private key|passphrase/i.test(reason.detail)
          ? "fix ssh.privateKey (and ssh.passphrase) in homelab.yaml; `homelab config check` checks the key"
          : /host key/i.test(reason.detail)
            ? `check the node's SSH host key in ssh.knownHosts.file (${host})`
            : `add the public key of ssh.privateKey to ${ssh.split("@")[0] ?? "root"}'s ~/.ssh/authorized_keys on ${host}`
        : `check proxmox.auth.tokenId${endpoints?.token === undefined ? "" : ` (${endpoints.token})`} and its secret (Datacenter → Permissions → API Tokens)`
    case "ProxyError":
      return reason.explanation
    case "PermissionDenied": {
      // a token has its user's privileges (intersected with its own ACLs when privilege-separated): the user needs
      // the privilege either way, and an ACL on a token without separation changes nothing
      const token = endpoints?.token
      const what = reason.privilege === undefined ? "the privilege" : reason.privilege
      const where = reason.path === undefined ? "that path" : reason.path
      const user = token?.includes("!") === true ? token.slice(0, token.indexOf("!")) : undefined
      return user === undefined
        ? `grant the token's user ${what} on ${where}, and the token too if it is privilege-separated`
        : `grant ${user} (the token's user) ${what} on ${where} (\`pveum acl modify ${where} --users '${user}' --roles <role>\`), and the token too if it is privilege-separated (\`--tokens '${token}'\`)`
    }
    case "Locked": {
      const id = /lock-(\d+)\.conf/.exec(reason.detail)?.[1] ?? /\bVM (\d+)/.exec(what)?.[1] ?? "VMID"
      // PVE waits 10 s for the config file's lock: a task still working on the VM holds it (a hung resize, a backup)
      return reason.lock === "flock"
        ? `a task still running on ${node} holds VM ${id}'s config lock (a hung resize, a backup, a migration?): let it end or stop it (Datacenter → Tasks, \`pvesh get /nodes/${node}/tasks --source active --vmid ${id}\`), then run apply again`
        : `VM ${id} carries the '${reason.lock}' lock: let the ${reason.lock} on ${node} end; if none runs any more (an interrupted one), \`qm unlock ${id}\` on ${node} clears it`
    }
    case "ApiError":
      // the agent missing from the VM's config, or disabled there: waiting cannot cure it
      if (
        /^(?:No QEMU guest agent configured|QEMU guest agent is not running \(the VM's config disables it)/.test(
          reason.detail
        )
      )
        return `homelab reads the VM's IP from the QEMU guest agent: enable it on ${node} (\`qm set VMID --agent enabled=1\`, then restart the VM) and have qemu-guest-agent installed in the image`
      return `PVE refused the request at once (no task ran, so there is no task log): the message is its reason; \`journalctl -u pvedaemon -u pveproxy\` on ${node} has more`
    case "InvalidParameter":
      // download-url and upload take .qcow2/.raw/.vmdk with content import only from PVE 8.4 on
      if (/wrong extension/.test(reason.errors.filename ?? ""))
        return `PVE before 8.4 stores only .ova files with content import (8.4 also .qcow2, .raw, .vmdk): upgrade ${node} to PVE 8.4 or later, or set image.content: iso`
      return "PVE refused a parameter at once (no task ran, so there is no task log): the message names it and why; if homelab.yaml sets it, fix it there, else please report it"
    case "TaskFailed":
      return `see the task log on ${node}`
    default:
      return "no task ran, so there is no task log: the message says what went wrong"
  }
}

/**
 * PVE's refusal of a guest config write because the cluster has no quorum: `check_cfs_quorum`'s text (creates,
 * starts), or pmxcfs refusing the config's temporary file (updates, resizes, destroys).
 */
export const isNoQuorum = (reason: ProxmoxErrorReason): boolean => {
  const text = reason._tag === "ApiError" ? reason.detail : reason._tag === "TaskFailed" ? reason.exitstatus : ""
  return (
    /cluster not ready - no quorum\?/.test(text) ||
    /unable to open file '\/etc\/pve\/nodes\/[^']*' - Permission denied/.test(text)
  )
}

/**
 * A failure on one node for a person: the node, what could not be done, and per transport where it went and what
 * happened (`API https://…:8006: connection refused …; SSH root@host:22: our SSH key was refused …`), plus a hint
 * naming the thing to fix (the API endpoint, the SSH key, the token), never a guess from another layer. A reason that
 * does not name its transport (a failed task, a refusal) is named with the one the node was driven over
 * (`ProxmoxError.transport`: SSH for a node on the fallback).
 */
export const describeFailure = (
  node: string,
  what: string,
  error: ProxmoxError,
  endpoints?: NodeEndpoints | undefined
): { readonly message: string; readonly hint: string } => {
  // no endpoints: a node homelab.yaml does not list (an orphan's node), reached only through the cluster endpoint
  const api = endpoints?.api ?? "proxmox.endpoint"
  const ssh = endpoints?.ssh === undefined ? "SSH" : `SSH ${endpoints.ssh}`
  const reasons: Array<ProxmoxErrorReason> =
    error.fallbackFrom === undefined ? [error.reason] : [error.fallbackFrom, error.reason]
  const parts = reasons.map((reason, i) => {
    const over =
      error.fallbackFrom !== undefined ? (i === 0 ? "rest" : "ssh") : (transportOf(reason) ?? error.transport ?? "rest")
    return `${over === "ssh" ? ssh : `API ${api}`}: ${inWords(reason, endpoints?.token)}`
  })
  if (isNoQuorum(error.reason))
    return {
      message: `cannot ${what} on node ${node}: the Proxmox cluster lost its quorum (/etc/pve is read-only; PVE: ${inWords(error.reason, endpoints?.token)})`,
      hint: `bring the cluster's offline nodes back (\`pvecm status\` on ${node} shows the votes) and run apply again; \`pvecm expected 1\` on ${node} only as a last resort (it makes /etc/pve writable there alone, and a node that comes back with changes of its own can split the cluster's configuration)`
    }
  const hints = [...new Set(reasons.map((reason) => hintFor(reason, endpoints, node, what)))]
  if (endpoints === undefined && (isNodeLevel(error) || error.reason._tag === "ProxyError"))
    hints.push(
      `${node} is not in homelab.yaml's nodes, so homelab reaches it only through proxmox.endpoint, with no SSH fallback: check that ${node} is up and in the cluster (\`pvecm status\`), or list it in nodes[] (with its address) to reach it directly`
    )
  return { message: `cannot ${what} on node ${node}: ${parts.join("; ")}`, hint: hints.join("; ") }
}
