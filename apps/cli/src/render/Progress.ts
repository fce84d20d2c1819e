import type { ApplyEvent, WaitProgress } from "@homelab/reconcile-core"
import pc from "picocolors"
import type { Notice } from "../Session.js"

/** `12.3s`: how long a finished action took. */
export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)}s`

/** `1m05s`, `12s`: elapsed and limits of waits. */
export const duration = (ms: number): string => {
  const s = Math.round(ms / 1000)
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`
}

/** A wait in words: `waiting for VM 1042's guest agent to report an IP (45s of 5m00s)`. */
export const waitLine = (wait: WaitProgress): string =>
  `waiting for ${wait.what} (${duration(wait.elapsedMs)} of ${duration(wait.limitMs)})`

/** One line for a notice from the client libraries (fallbacks, TLS, host keys). */
export const noticeLine = (notice: Notice): string => {
  if (notice._tag === "Proxmox") {
    const e = notice.event
    if (e._tag === "FallbackToSsh") {
      const why =
        e.reason === "TlsUntrusted"
          ? `API certificate not trusted${e.fingerprint ? ` (SHA-256 ${e.fingerprint})` : ""}`
          : e.reason === "ProxyError"
            ? `API proxy error: ${e.detail}`
            : `API unreachable: ${e.detail}`
      // the fallback works, but each run pays for it: say how to trust the API instead (a pinned fingerprint is one
      // node's certificate; the cluster CA signs every node's pve-ssl.pem)
      const trust =
        e.reason === "TlsUntrusted"
          ? "; to use its API, trust it in proxmox.tls (ca: the cluster's /etc/pve/pve-root-ca.pem, which signs each node's pve-ssl.pem)"
          : ""
      return `${pc.yellow("!")} ${e.node}: ${why} — using SSH (pvesh/qm) for this node${trust}`
    }
    if (e._tag === "ClusterEndpointChanged") {
      return `${pc.yellow("!")} ${e.from} is out of reach (${e.detail}) — asking ${e.to} for the cluster's state`
    }
    return `${pc.yellow("!")} ${e.node}: TLS verification is OFF (proxmox.tls.insecure)`
  }
  const e = notice.event
  return e._tag === "HostKeyCheckingDisabled"
    ? `${pc.yellow("!")} SSH host key checking is OFF (ssh.knownHosts.mode: off)`
    : `${pc.dim("·")} trusted the SSH host key of ${e.host}:${e.port} on first use (${e.fingerprint})`
}

export interface ProgressSink {
  readonly event: (event: ApplyEvent) => void
  readonly notice: (notice: Notice) => void
  readonly line: (text: string) => void
  readonly done: () => void
}

/** A wait longer than this is shown; after that, a plain line at least this often. */
const FirstWaitMs = 5_000
const WaitEveryMs = 15_000

/** Plain lines, for pipes, CI logs and `--verbose` on a terminal. Waits: at 5 s, then at least every 15 s. */
export const plainProgress = (write: (line: string) => void, verbose: boolean): ProgressSink => {
  /** Per action: the wait last shown and its elapsed time then (an action may wait for several things in turn). */
  const lastWaitLine = new Map<string, { what: string; elapsedMs: number }>()
  const showWait = (key: string, prefix: string, wait: WaitProgress) => {
    const shown = lastWaitLine.get(key)
    const last = shown?.what === wait.what ? shown.elapsedMs : undefined
    const due = wait.elapsedMs >= FirstWaitMs && (last === undefined || wait.elapsedMs - last >= WaitEveryMs - 500)
    if (due || verbose) {
      lastWaitLine.set(key, { what: wait.what, elapsedMs: wait.elapsedMs })
      write(`[${prefix}]   ${waitLine(wait)}`)
    }
  }
  return {
    event: (e) => {
      switch (e._tag) {
        case "ActionStarted":
          write(`[${e.action.node}] ${e.description} …`)
          break
        case "ActionProgress": {
          if (e.wait !== undefined) {
            showWait(e.id, e.node, e.wait)
          } else if (verbose) {
            write(`[${e.node}]   ${e.step}`)
          }
          break
        }
        case "ActionDone":
          lastWaitLine.delete(e.id)
          write(`[${e.node}] ${pc.green("✓")} ${e.detail} (${seconds(e.ms)})`)
          break
        case "ActionFailed":
          lastWaitLine.delete(e.id)
          write(`[${e.node}] ${pc.red("✗")} ${e.description}: ${e.error}`)
          if (e.hint !== undefined) write(`[${e.node}]   ${pc.dim(`fix: ${e.hint}`)}`)
          break
        case "ActionSkipped":
          write(`[${e.node}] ${pc.dim("-")} ${e.description}: ${e.reason}`)
          break
        case "Settling":
          showWait("\u0000settling", "k3s", e.wait)
          break
      }
    },
    notice: (n) => write(noticeLine(n)),
    line: write,
    done: () => {}
  }
}
