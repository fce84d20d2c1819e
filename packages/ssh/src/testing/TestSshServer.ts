/**
 * A small in-process SSH server on 127.0.0.1 for tests: real protocol (ssh2), commands run by the real `/bin/sh`
 * (or answered by a handler), SFTP on the real file system, TCP forwarding to loopback (for jump-host tests).
 *
 * @since 0.1.0
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as Effect from "effect/Effect"
import type { AuthContext, Connection, ParsedKey, ServerChannel, SFTPWrapper } from "ssh2"
import ssh2 from "ssh2"
import { fingerprintOf } from "../fingerprintOf.js"

const { Server, utils } = ssh2
const { STATUS_CODE, flagsToString } = utils.sftp

/**
 * @since 0.1.0
 * @category models
 */
export interface TestSshUser {
  readonly name: string
  readonly password?: string | undefined
  /** Public keys in `authorized_keys` form (`ssh-ed25519 AAAA… comment`). */
  readonly publicKeys?: ReadonlyArray<string> | undefined
}

/**
 * Answers a command without a shell; return `undefined` to let `/bin/sh -c` run it.
 *
 * @since 0.1.0
 * @category models
 */
export type TestExecHandler = (command: string, user: string) => TestExecReply | Promise<TestExecReply> | undefined

/**
 * A handled command's answer (a handler may answer later, through a Promise: a command that runs until something
 * happens).
 *
 * @since 0.1.0
 * @category models
 */
export interface TestExecReply {
  readonly stdout?: string | Uint8Array
  readonly stderr?: string
  readonly exitCode: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TestSshServerOptions {
  /** Host private key (OpenSSH or PEM). Default: a fresh ed25519 key. */
  readonly hostKey?: string | undefined
  readonly users: ReadonlyArray<TestSshUser>
  readonly exec?: TestExecHandler | undefined
  /** Refuse sessions beyond this many open at once on one connection, like OpenSSH's `MaxSessions`. Default 10. */
  readonly maxSessions?: number | undefined
  /** Environment of the shells that run commands. Default: this process's environment. */
  readonly shellEnv?: Readonly<Record<string, string>> | undefined
  /**
   * Make an SFTP operation fail (`op` is e.g. "OPEN", "WRITE", "RENAME", "SETSTAT"; `target` is the new name of a
   * RENAME).
   */
  readonly sftpFail?: ((op: string, path: string, target: string | undefined) => boolean) | undefined
}

/**
 * A freshly generated key pair in OpenSSH formats (`private`, and `public` as an `authorized_keys` line).
 *
 * @since 0.1.0
 * @category testing
 */
export const generateKeyPair = (
  type: "ed25519" | "rsa" | "ecdsa" = "ed25519",
  options?: { readonly passphrase?: string | undefined; readonly comment?: string | undefined }
): { readonly private: string; readonly public: string } => {
  const extra = {
    ...(options?.passphrase === undefined ? {} : { passphrase: options.passphrase, cipher: "aes256-ctr" }),
    ...(options?.comment === undefined ? {} : { comment: options.comment })
  }
  // ssh2's generator (1.17, keygen.js) strips every leading zero byte of an ed25519 public key, not just the BIT
  // STRING's unused-bits byte, so a key starting with 0x00 (about 1 in 250) comes out 31 bytes long and neither ssh2
  // nor OpenSSH can read it: generate until the pair parses back to the same public key.
  for (let attempt = 0; ; attempt++) {
    const pair =
      type === "rsa"
        ? utils.generateKeyPairSync("rsa", { bits: 2048, ...extra })
        : type === "ecdsa"
          ? utils.generateKeyPairSync("ecdsa", { bits: 256, ...extra })
          : utils.generateKeyPairSync("ed25519", extra)
    const parsed = utils.parseKey(pair.private, options?.passphrase)
    const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | Error) : parsed
    const blob = pair.public.split(" ")[1]
    if ((!(key instanceof Error) && key.getPublicSSH().toString("base64") === blob) || attempt >= 50) {
      return { private: pair.private, public: pair.public }
    }
  }
}

const parse = (key: string): ParsedKey => {
  const parsed = utils.parseKey(key)
  if (parsed instanceof Error) throw parsed
  return Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed
}

/**
 * @since 0.1.0
 * @category testing
 */
export class TestSshServer {
  readonly host = "127.0.0.1"
  /** TCP connections accepted since start. */
  connectionCount = 0
  /** Every command received, in order. */
  readonly commands: Array<string> = []
  /** Authentication attempts (`user`, `method`, accepted). */
  readonly authAttempts: Array<{ readonly user: string; readonly method: string; readonly accepted: boolean }> = []
  /** Sessions refused because `maxSessions` were open. */
  rejectedSessions = 0
  /** SFTP requests, in order. */
  readonly sftpLog: Array<{
    readonly op: string
    readonly path: string
    readonly target?: string
    readonly mode?: number
  }> = []
  /** The host key's public blob. */
  readonly hostKeyBlob: Buffer
  /** `ssh-ed25519 AAAA…` */
  readonly hostPublicKey: string
  readonly hostFingerprint: string

  private readonly sockets = new Set<net.Socket>()
  private readonly waiters = new Set<{ readonly holds: () => boolean; readonly resolve: () => void }>()
  private readonly tcp: net.Server
  private readonly options: TestSshServerOptions
  private readonly users: Map<string, { readonly password?: string | undefined; readonly keys: Array<ParsedKey> }>

  private constructor(
    options: TestSshServerOptions,
    readonly port: number,
    tcp: net.Server,
    hostKey: ParsedKey
  ) {
    this.options = options
    this.tcp = tcp
    this.hostKeyBlob = hostKey.getPublicSSH()
    this.hostPublicKey = `${hostKey.type} ${this.hostKeyBlob.toString("base64")}`
    this.hostFingerprint = fingerprintOf(this.hostKeyBlob)
    this.users = new Map(
      options.users.map((u) => [u.name, { password: u.password, keys: (u.publicKeys ?? []).map(parse) }])
    )
  }

  /**
   * Starts a server on 127.0.0.1 and an ephemeral port.
   *
   * @since 0.1.0
   */
  static async start(options: TestSshServerOptions): Promise<TestSshServer> {
    const hostKeyText = options.hostKey ?? generateKeyPair("ed25519").private
    const hostKey = parse(hostKeyText)
    const ssh = new Server({ hostKeys: [hostKeyText] })
    const tcp = net.createServer()
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject)
      tcp.listen(0, "127.0.0.1", () => resolve())
    })
    const port = (tcp.address() as net.AddressInfo).port
    const server = new TestSshServer(options, port, tcp, hostKey)
    ssh.on("connection", (client: Connection) => server.onClient(client))
    tcp.on("connection", (socket) => {
      server.connectionCount++
      server.sockets.add(socket)
      server.changed()
      socket.setNoDelay(true)
      socket.on("close", () => {
        server.sockets.delete(socket)
        server.changed()
      })
      socket.on("error", () => {})
      ssh.injectSocket(socket)
    })
    return server
  }

  /**
   * A started server, stopped when the scope closes.
   *
   * @since 0.1.0
   */
  static scoped(options: TestSshServerOptions) {
    return Effect.acquireRelease(
      Effect.promise(() => TestSshServer.start(options)),
      (server) => Effect.promise(() => server.stop())
    )
  }

  /** A `known_hosts` line for this server as OpenSSH writes it (`[127.0.0.1]:port ssh-ed25519 AAAA…`). */
  knownHostsLine(host = "127.0.0.1"): string {
    return `[${host}]:${this.port} ${this.hostPublicKey}`
  }

  /**
   * Resolves once `holds` is true of this server (at once if it is), checked again whenever a connection opens or
   * closes or a command arrives: a test waits on the server's events instead of polling it on a timer.
   */
  until(holds: (server: TestSshServer) => boolean): Promise<void> {
    if (holds(this)) return Promise.resolve()
    return new Promise((resolve) => this.waiters.add({ holds: () => holds(this), resolve }))
  }

  /** Resolves once `count` TCP connections have been accepted since start (see `until`). */
  connected(count = 1): Promise<void> {
    return this.until((server) => server.connectionCount >= count)
  }

  private changed(): void {
    for (const waiter of this.waiters) {
      if (!waiter.holds()) continue
      this.waiters.delete(waiter)
      waiter.resolve()
    }
  }

  /** Number of TCP connections currently open. */
  get openConnections(): number {
    return this.sockets.size
  }

  /** Cuts every TCP connection (simulates a host going away). */
  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy()
  }

  async stop(): Promise<void> {
    this.dropConnections()
    await new Promise<void>((resolve) => this.tcp.close(() => resolve()))
  }

  private onClient(client: Connection): void {
    let user = ""
    client.on("error", () => {})
    client.on("authentication", (ctx: AuthContext) => this.authenticate(ctx, (name) => (user = name)))
    client.on("ready", () => {
      let openSessions = 0
      client.on("session", (accept, reject) => {
        if (openSessions >= (this.options.maxSessions ?? 10)) {
          this.rejectedSessions++
          return reject()
        }
        openSessions++
        const session = accept()
        session.once("close", () => openSessions--)
        session.on("env", (_accept, reject) => reject?.())
        session.on("pty", (_accept, reject) => reject?.())
        session.once("exec", (acceptExec, _reject, info) => {
          this.commands.push(info.command)
          this.changed()
          this.runExec(acceptExec(), session, info.command, user)
        })
        session.once("sftp", (acceptSftp) => this.serveSftp(acceptSftp()))
      })
      client.on("tcpip", (accept, reject, info) => {
        if (!["127.0.0.1", "localhost", "::1"].includes(info.destIP)) return reject()
        const upstream = net.connect(info.destPort, info.destIP)
        upstream.setNoDelay(true)
        upstream.once("connect", () => {
          const channel = accept()
          channel.pipe(upstream).pipe(channel)
          channel.on("close", () => upstream.destroy())
          upstream.on("close", () => channel.close())
        })
        upstream.once("error", () => reject())
      })
    })
  }

  private authenticate(ctx: AuthContext, setUser: (name: string) => void): unknown {
    const account = this.users.get(ctx.username)
    const done = (accepted: boolean) => {
      this.authAttempts.push({ user: ctx.username, method: ctx.method, accepted })
      if (accepted) {
        setUser(ctx.username)
        ctx.accept()
      } else ctx.reject(["publickey", "password", "keyboard-interactive"])
      return accepted
    }
    if (account === undefined) return done(false)
    switch (ctx.method) {
      case "password":
        return done(account.password !== undefined && ctx.password === account.password)
      case "keyboard-interactive":
        if (account.password === undefined) return done(false)
        return ctx.prompt([{ prompt: "Password: ", echo: false }], (answers) => done(answers[0] === account.password))
      case "publickey": {
        const key = account.keys.find((k) => k.type === ctx.key.algo && k.getPublicSSH().equals(ctx.key.data))
        if (key === undefined) return done(false)
        if (ctx.signature === undefined) {
          // a query ("would this key be accepted?"): not an attempt yet
          return ctx.accept()
        }
        return done(key.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true)
      }
      default:
        return done(false)
    }
  }

  private runExec(
    channel: ServerChannel,
    session: { on(event: "signal", f: (accept: unknown, reject: unknown, info: { name: string }) => void): unknown },
    command: string,
    user: string
  ): void {
    const handled = this.options.exec?.(command, user)
    if (handled !== undefined) {
      const reply = (r: TestExecReply) => {
        if (r.stdout !== undefined) channel.write(r.stdout)
        if (r.stderr !== undefined) channel.stderr.write(r.stderr)
        channel.exit(r.exitCode)
        channel.end()
      }
      if (handled instanceof Promise) handled.then(reply, (e) => reply({ stderr: `${String(e)}\n`, exitCode: 1 }))
      else reply(handled)
      return
    }
    const child = spawn("/bin/sh", ["-c", command], {
      stdio: ["pipe", "pipe", "pipe"],
      ...(this.options.shellEnv === undefined ? {} : { env: { ...this.options.shellEnv } })
    })
    let finished = false
    channel.pipe(child.stdin)
    child.stdin.on("error", () => {})
    child.stdout.pipe(channel, { end: false })
    child.stderr.pipe(channel.stderr, { end: false })
    session.on("signal", (_accept, _reject, info) => {
      if (!finished) child.kill(`SIG${info.name}` as NodeJS.Signals)
    })
    channel.on("close", () => {
      if (!finished) child.kill("SIGKILL")
    })
    child.on("close", (code, signal) => {
      finished = true
      if (signal !== null) channel.exit(signal.replace(/^SIG/, ""), false, "")
      else channel.exit(code ?? 0)
      channel.end()
    })
  }

  private serveSftp(sftp: SFTPWrapper): void {
    const handles = new Map<number, { fd: number; path: string }>()
    let nextHandle = 1
    const toHandle = (id: number) => {
      const buffer = Buffer.alloc(4)
      buffer.writeUInt32BE(id)
      return buffer
    }
    const fromHandle = (buffer: Buffer) => (buffer.length === 4 ? handles.get(buffer.readUInt32BE(0)) : undefined)
    const byPath = (args: ReadonlyArray<unknown>) => String(args[1])
    const byHandle = (args: ReadonlyArray<unknown>) => fromHandle(args[1] as Buffer)?.path ?? "?"
    const fail = (reqid: number, error: unknown) => {
      const code = (error as NodeJS.ErrnoException).code
      sftp.status(
        reqid,
        code === "ENOENT"
          ? STATUS_CODE.NO_SUCH_FILE
          : code === "EACCES" || code === "EPERM"
            ? STATUS_CODE.PERMISSION_DENIED
            : STATUS_CODE.FAILURE,
        error instanceof Error ? error.message : "failure"
      )
    }
    const guarded =
      <Args extends Array<unknown>>(
        op: string,
        pathOf: (args: ReadonlyArray<unknown>) => string,
        f: (...args: Args) => void
      ) =>
      (...args: Args) => {
        const reqid = args[0] as number
        const path = pathOf(args)
        const target = op === "RENAME" ? String(args[2]) : undefined
        if (this.options.sftpFail?.(op, path, target) === true) {
          this.sftpLog.push({ op, path })
          return sftp.status(reqid, STATUS_CODE.FAILURE, `injected ${op} failure`)
        }
        try {
          f(...args)
        } catch (error) {
          fail(reqid, error)
        }
      }
    const statAttrs = (st: fs.Stats) => ({
      mode: st.mode,
      uid: st.uid,
      gid: st.gid,
      size: st.size,
      atime: Math.floor(st.atimeMs / 1000),
      mtime: Math.floor(st.mtimeMs / 1000)
    })
    sftp.on(
      "OPEN",
      guarded("OPEN", byPath, (reqid: number, path: string, flags: number, attrs: { mode?: number }) => {
        const flag = flagsToString(flags) ?? "r"
        this.sftpLog.push({ op: "OPEN", path, ...(attrs.mode === undefined ? {} : { mode: attrs.mode }) })
        const fd = fs.openSync(path, flag, attrs.mode ?? 0o644)
        const id = nextHandle++
        handles.set(id, { fd, path })
        sftp.handle(reqid, toHandle(id))
      })
    )
    sftp.on(
      "WRITE",
      guarded("WRITE", byHandle, (reqid: number, handle: Buffer, offset: number, data: Buffer) => {
        const open = fromHandle(handle)
        if (open === undefined) return sftp.status(reqid, STATUS_CODE.FAILURE)
        this.sftpLog.push({ op: "WRITE", path: open.path })
        fs.writeSync(open.fd, data, 0, data.length, offset)
        sftp.status(reqid, STATUS_CODE.OK)
      })
    )
    sftp.on(
      "READ",
      guarded("READ", byHandle, (reqid: number, handle: Buffer, offset: number, length: number) => {
        const open = fromHandle(handle)
        if (open === undefined) return sftp.status(reqid, STATUS_CODE.FAILURE)
        const buffer = Buffer.alloc(Math.min(length, 256 * 1024))
        const n = fs.readSync(open.fd, buffer, 0, buffer.length, offset)
        if (n === 0) return sftp.status(reqid, STATUS_CODE.EOF)
        sftp.data(reqid, buffer.subarray(0, n))
      })
    )
    sftp.on(
      "FSTAT",
      guarded("FSTAT", byHandle, (reqid: number, handle: Buffer) => {
        const open = fromHandle(handle)
        if (open === undefined) return sftp.status(reqid, STATUS_CODE.FAILURE)
        sftp.attrs(reqid, statAttrs(fs.fstatSync(open.fd)))
      })
    )
    for (const op of ["STAT", "LSTAT"] as const) {
      sftp.on(
        op,
        guarded(op, byPath, (reqid: number, path: string) => {
          sftp.attrs(reqid, statAttrs(op === "STAT" ? fs.statSync(path) : fs.lstatSync(path)))
        })
      )
    }
    sftp.on(
      "FSETSTAT",
      guarded("FSETSTAT", byHandle, (reqid: number, handle: Buffer, attrs: { mode?: number }) => {
        const open = fromHandle(handle)
        if (open === undefined) return sftp.status(reqid, STATUS_CODE.FAILURE)
        this.sftpLog.push({
          op: "FSETSTAT",
          path: open.path,
          ...(attrs.mode === undefined ? {} : { mode: attrs.mode })
        })
        if (attrs.mode !== undefined) fs.fchmodSync(open.fd, attrs.mode & 0o7777)
        sftp.status(reqid, STATUS_CODE.OK)
      })
    )
    sftp.on(
      "SETSTAT",
      guarded("SETSTAT", byPath, (reqid: number, path: string, attrs: { mode?: number }) => {
        this.sftpLog.push({ op: "SETSTAT", path, ...(attrs.mode === undefined ? {} : { mode: attrs.mode }) })
        if (attrs.mode !== undefined) fs.chmodSync(path, attrs.mode & 0o7777)
        sftp.status(reqid, STATUS_CODE.OK)
      })
    )
    sftp.on(
      "CLOSE",
      guarded("CLOSE", byHandle, (reqid: number, handle: Buffer) => {
        const open = fromHandle(handle)
        if (open === undefined) return sftp.status(reqid, STATUS_CODE.FAILURE)
        handles.delete(handle.readUInt32BE(0))
        this.sftpLog.push({ op: "CLOSE", path: open.path })
        fs.closeSync(open.fd)
        sftp.status(reqid, STATUS_CODE.OK)
      })
    )
    sftp.on(
      "REMOVE",
      guarded("REMOVE", byPath, (reqid: number, path: string) => {
        this.sftpLog.push({ op: "REMOVE", path })
        fs.unlinkSync(path)
        sftp.status(reqid, STATUS_CODE.OK)
      })
    )
    sftp.on(
      "RENAME",
      guarded("RENAME", byPath, (reqid: number, from: string, to: string) => {
        this.sftpLog.push({ op: "RENAME", path: from, target: to })
        fs.renameSync(from, to)
        sftp.status(reqid, STATUS_CODE.OK)
      })
    )
    sftp.on(
      "REALPATH",
      guarded("REALPATH", byPath, (reqid: number, path: string) => {
        const real = fs.realpathSync(path === "." || path === "" ? "/" : path)
        sftp.name(reqid, [{ filename: real, longname: real, attrs: statAttrs(fs.statSync(real)) }])
      })
    )
    sftp.on("close", () => {
      for (const open of handles.values()) fs.closeSync(open.fd)
      handles.clear()
    })
  }
}
