import { timingSafeEqual } from "node:crypto"
import net, { type Socket } from "node:net"
import type { Connection, ParsedKey, ServerChannel, SFTPWrapper } from "ssh2"
import ssh2 from "ssh2"
import { readsStdin } from "./Shell.js"

const { Server, utils } = ssh2

export interface ExecOutcome {
  readonly stdout: string | Buffer
  readonly stderr: string
  readonly code: number
}

export interface SshServerOptions {
  readonly hostKey: string
  /** Is this user + public key allowed? */
  readonly authorize: (user: string, key: { algo: string; data: Buffer }) => boolean
  readonly refuseAll?: () => boolean
  /** `signal` aborts when the client closes the channel before the command has finished */
  readonly exec: (user: string, command: string, stdin: Buffer, signal: AbortSignal) => Promise<ExecOutcome>
  /** Serve the `sftp` subsystem for `user` (refused when absent). */
  readonly sftp?: (user: string, sftp: SFTPWrapper) => void
}

export const parsePublicKeys = (lines: ReadonlyArray<string>): Array<ParsedKey> => {
  const out: Array<ParsedKey> = []
  for (const l of lines) {
    const trimmed = l.trim()
    if (trimmed === "" || trimmed.startsWith("#")) continue
    const k = utils.parseKey(trimmed)
    if (k instanceof Error) continue
    out.push(Array.isArray(k) ? (k[0] as ParsedKey) : k)
  }
  return out
}

export const keyMatches = (
  allowed: ReadonlyArray<ParsedKey>,
  key: { algo: string; data: Buffer }
): ParsedKey | undefined =>
  allowed.find((a) => {
    const blob = a.getPublicSSH()
    return a.type === key.algo && blob.length === key.data.length && timingSafeEqual(blob, key.data)
  })

/** A small ssh2 server: public-key auth, `exec` requests with stdin, exit codes. */
export class SshServer {
  private readonly server: InstanceType<typeof Server>
  /** the TCP listener; accepted sockets are handed to the ssh2 server unless frozen */
  private readonly tcp: net.Server
  private readonly sockets = new Set<Socket>()
  private readonly conns = new Set<Connection>()
  /** sockets accepted while frozen: no banner until thawed (or until the client gives up) */
  private held: Array<Socket> = []
  private frozen = false
  private listening = false
  port = 0

  constructor(
    private readonly opts: SshServerOptions,
    allowedFor: (user: string) => ReadonlyArray<ParsedKey>
  ) {
    this.server = new Server({ hostKeys: [opts.hostKey] }, (client) => {
      this.conns.add(client)
      ;(client as unknown as { _sock?: Socket })._sock?.setNoDelay?.(true)
      client.on("close", () => this.conns.delete(client))
      client.on("error", () => this.conns.delete(client))
      let authedUser = ""
      client.on("authentication", (ctx) => {
        if (opts.refuseAll?.() === true || ctx.method !== "publickey") return ctx.reject(["publickey"])
        const match = keyMatches(allowedFor(ctx.username), ctx.key)
        if (match === undefined || !opts.authorize(ctx.username, ctx.key)) return ctx.reject(["publickey"])
        if (ctx.signature === undefined) return ctx.accept()
        if (ctx.blob === undefined || match.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true)
          return ctx.reject(["publickey"])
        authedUser = ctx.username
        ctx.accept()
      })
      client.on("ready", () => {
        client.on("session", (accept) => {
          const session = accept()
          session.on("pty", (acc) => acc?.())
          session.on("env", (acc) => acc?.())
          session.on("shell", (_acc, reject) => reject?.())
          session.on("sftp", (acc, reject) => {
            if (opts.sftp === undefined) return reject?.()
            opts.sftp(authedUser, acc())
          })
          session.on("exec", (acc, _rej, info) => {
            const stream = acc()
            this.runExec(authedUser, info.command, stream)
          })
        })
      })
    })
    this.server.on("error", () => {})
    this.tcp = net.createServer((socket) => {
      this.sockets.add(socket)
      socket.on("close", () => this.sockets.delete(socket))
      socket.on("error", () => {})
      if (this.frozen) this.held.push(socket)
      else this.inject(socket)
    })
    this.tcp.on("error", () => {})
  }

  private inject(socket: Socket): void {
    ;(this.server as unknown as { injectSocket(s: Socket): void }).injectSocket(socket)
  }

  /**
   * Freeze or thaw the host, as a VM whose vCPUs are stopped: while frozen, a new connection gets no SSH banner and
   * established connections are not read from; thawed, both go on where they stopped.
   */
  freeze(on: boolean): void {
    if (on === this.frozen) return
    this.frozen = on
    for (const s of this.sockets) if (!this.held.includes(s)) on ? s.pause() : s.resume()
    if (!on) {
      const held = this.held
      this.held = []
      for (const s of held) if (!s.destroyed) this.inject(s)
    }
  }

  private runExec(user: string, command: string, stream: ServerChannel): void {
    const chunks: Array<Buffer> = []
    const needStdin = readsStdin(command)
    const closed = new AbortController()
    stream.on("close", () => closed.abort())
    const go = () => {
      this.opts
        .exec(user, command, Buffer.concat(chunks), closed.signal)
        .then((r) => {
          if (r.stdout.length > 0) stream.write(r.stdout)
          if (r.stderr.length > 0) stream.stderr.write(r.stderr)
          stream.exit(r.code)
          stream.end()
        })
        .catch((e: unknown) => {
          stream.stderr.write(`${(e as Error).message}\n`)
          stream.exit(255)
          stream.end()
        })
    }
    if (!needStdin) {
      stream.on("data", () => {})
      go()
      return
    }
    let started = false
    stream.on("data", (d: Buffer) => chunks.push(d))
    const start = () => {
      if (started) return
      started = true
      go()
    }
    stream.on("end", start)
    stream.on("eof", start)
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onErr = (e: Error) => reject(e)
      this.tcp.once("error", onErr)
      this.tcp.listen(port, host, () => {
        this.tcp.off("error", onErr)
        this.listening = true
        const addr = this.tcp.address()
        this.port = typeof addr === "object" && addr !== null ? addr.port : port
        resolve(this.port)
      })
    })
  }

  close(): Promise<void> {
    for (const c of this.conns) c.end()
    this.conns.clear()
    for (const s of this.held) s.destroy()
    this.held = []
    if (!this.listening) return Promise.resolve()
    this.listening = false
    return new Promise((resolve) => this.tcp.close(() => resolve()))
  }
}
