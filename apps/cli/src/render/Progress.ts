import type { ApplyEvent } from "@homelab/reconcile-core"
import { createLogUpdate } from "log-update"
import pc from "picocolors"
import type { Notice } from "../Session.js"

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`

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
      return `${pc.yellow("!")} ${e.node}: ${why} — using SSH (pvesh/qm) for this node`
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

/** Plain lines, for pipes, CI logs and `--verbose` on a terminal. */
export const plainProgress = (write: (line: string) => void, verbose: boolean): ProgressSink => ({
  event: (e) => {
    switch (e._tag) {
      case "ActionStarted":
        write(`[${e.action.node}] ${e.description} …`)
        break
      case "ActionProgress":
        if (verbose) write(`[${e.node}]   ${e.step}`)
        break
      case "ActionDone":
        write(`[${e.node}] ${pc.green("✓")} ${e.detail} (${seconds(e.ms)})`)
        break
      case "ActionFailed":
        write(`[${e.node}] ${pc.red("✗")} ${e.description}: ${e.error}`)
        break
      case "ActionSkipped":
        write(`[${e.node}] ${pc.dim("-")} ${e.reason}`)
        break
    }
  },
  notice: (n) => write(noticeLine(n)),
  line: write,
  done: () => {}
})

const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

/** Live progress on a terminal: finished steps scroll up, one spinner line per busy node. */
export const ttyProgress = (stream: NodeJS.WriteStream): ProgressSink => {
  const render = createLogUpdate(stream, { showCursor: false })
  const busy = new Map<string, { what: string; step: string; since: number }>()
  let frame = 0
  const draw = () => {
    frame = (frame + 1) % frames.length
    const now = Date.now()
    render(
      [...busy.entries()]
        .map(
          ([node, b]) =>
            `${pc.cyan(frames[frame] ?? "")} ${node}: ${b.what}${b.step ? pc.dim(` — ${b.step}`) : ""} ${pc.dim(seconds(now - b.since))}`
        )
        .join("\n")
    )
  }
  const timer = setInterval(draw, 100)
  const permanent = (text: string) => {
    render.clear()
    stream.write(`${text}\n`)
    draw()
  }
  return {
    event: (e) => {
      switch (e._tag) {
        case "ActionStarted":
          busy.set(e.action.node, { what: e.description, step: "", since: Date.now() })
          break
        case "ActionProgress": {
          const b = busy.get(e.node)
          if (b) b.step = e.step
          break
        }
        case "ActionDone":
          busy.delete(e.node)
          permanent(`${pc.green("✓")} ${e.node}: ${e.detail} ${pc.dim(`(${seconds(e.ms)})`)}`)
          break
        case "ActionFailed":
          busy.delete(e.node)
          permanent(`${pc.red("✗")} ${e.node}: ${e.description}: ${e.error}`)
          break
        case "ActionSkipped":
          permanent(`${pc.dim("-")} ${e.node}: ${e.reason}`)
          break
      }
      draw()
    },
    notice: (n) => permanent(noticeLine(n)),
    line: permanent,
    done: () => {
      clearInterval(timer)
      render.clear()
      render.done()
    }
  }
}
