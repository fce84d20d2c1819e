import type { ApiRouter } from "./ApiRouter.js"
import type { SshKeyPair } from "./Certs.js"
import type { SimContext } from "./internal/Context.js"
import { runLine, type ShellHost } from "./internal/Shell.js"
import { type ExecOutcome, parsePublicKeys, SshServer } from "./internal/SshServer.js"
import { type ApiCall, apiCallTrace } from "./internal/Trace.js"
import { addVolume, formatOf, pathToVolume } from "./internal/Volumes.js"
import { runPvesh } from "./Pvesh.js"
import { runQm } from "./Qm.js"
import type { NodeState } from "./SimState.js"

export interface SshLogEntry {
  readonly node: string
  readonly command: string
  /** the API handler calls the command made (pvesh, qm) */
  readonly calls: ReadonlyArray<ApiCall>
  readonly code: number
  readonly durationMs: number
}

/** The SSH daemon of one PVE node: root with authorized keys; pvesh, qm, cat/install into storages. */
export class NodeSsh {
  private readonly server: SshServer
  /** files outside storages (/tmp, /root, /etc/pve/...) */
  readonly files = new Map<string, Buffer>()

  constructor(
    private readonly node: NodeState,
    private readonly ctx: SimContext,
    private readonly router: ApiRouter,
    hostKey: SshKeyPair,
    authorizedKeys: () => ReadonlyArray<string>,
    private readonly onCommand: (e: SshLogEntry) => void
  ) {
    this.server = new SshServer(
      {
        hostKey: hostKey.privateKey,
        authorize: (user) => user === "root",
        refuseAll: () => ctx.faults.nodeFault("sshAuthRefused", node.name),
        exec: (_user, command, stdin) => this.exec(command, stdin)
      },
      (user) => (user === "root" ? parsePublicKeys(authorizedKeys()) : [])
    )
  }

  get port(): number {
    return this.server.port
  }

  listen(host: string, port: number): Promise<number> {
    return this.server.listen(host, port)
  }

  close(): Promise<void> {
    return this.server.close()
  }

  readFile(path: string): Buffer | undefined {
    const f = this.files.get(path)
    if (f !== undefined) return f
    const v = pathToVolume(this.node, path)
    if (v === undefined) return undefined
    const vol = v.storage.volumes.get(v.volname)
    if (vol === undefined) return undefined
    return vol.data ?? Buffer.alloc(0)
  }

  writeFile(path: string, data: Buffer, append: boolean): string | undefined {
    if (path === "/dev/null") return undefined
    const v = pathToVolume(this.node, path)
    if (v !== undefined) {
      const prev = append ? (v.storage.volumes.get(v.volname)?.data ?? Buffer.alloc(0)) : Buffer.alloc(0)
      const full = Buffer.concat([prev, data])
      addVolume(v.storage, {
        volname: v.volname,
        content: v.vtype,
        format: formatOf(v.volname, v.vtype),
        size: full.length,
        ctime: Math.floor(this.ctx.clock.now() / 1000),
        data: full
      })
      return undefined
    }
    if (path.startsWith("/var/lib/vz/") || path.startsWith("/mnt/pve/")) {
      const dir = path.slice(0, path.lastIndexOf("/"))
      if (!/\/(snippets|template\/iso|template\/cache|import|dump)$/.test(dir))
        return `bash: ${path}: No such file or directory\n`
    }
    this.files.set(path, append ? Buffer.concat([this.files.get(path) ?? Buffer.alloc(0), data]) : data)
    return undefined
  }

  async exec(command: string, stdin: Buffer): Promise<ExecOutcome> {
    const started = performance.now()
    const latency = this.ctx.faults.latency(this.node.name, "ssh")
    if (latency > 0) await this.ctx.clock.sleepReal(latency)
    const host: ShellHost = {
      run: (argv, input) => this.runProgram(argv, input),
      readFile: (p) => this.readFile(p),
      writeFile: (p, d, a) => this.writeFile(p, d, a)
    }
    const calls: Array<ApiCall> = []
    const r = await apiCallTrace.run(calls, () => runLine(command, host, stdin))
    this.onCommand({
      node: this.node.name,
      command,
      calls,
      code: r.code,
      durationMs: Math.round(performance.now() - started)
    })
    return r
  }

  private async runProgram(argv: ReadonlyArray<string>, stdin: Buffer): Promise<ExecOutcome> {
    const prog = argv[0] ?? ""
    const args = argv.slice(1)
    const ok = (stdout = ""): ExecOutcome => ({ stdout, stderr: "", code: 0 })
    switch (prog.split("/").pop()) {
      case "pvesh":
        return runPvesh(this.router, this.ctx.state, this.node.name, args)
      case "qm":
        return runQm(
          { router: this.router, ctx: this.ctx, node: this.node.name, readFile: (p) => this.readFile(p) },
          args,
          stdin
        )
      case "true":
        return ok()
      case "false":
        return { stdout: "", stderr: "", code: 1 }
      case "hostname":
        return ok(`${this.node.name}\n`)
      case "echo":
        return ok(`${args.join(" ")}\n`)
      case "pveversion":
        return ok(
          `pve-manager/${this.ctx.state.featuresOf(this.node.name).version}/faa83925c9641325 (running kernel: 6.8.12-4-pve)\n`
        )
      case "mkdir":
      case "chmod":
      case "chown":
      case "sync":
        return ok()
      case "cat": {
        const files = args.filter((a) => !a.startsWith("-") || a === "-")
        if (files.length === 0 || files.every((f) => f === "-")) return { stdout: stdin, stderr: "", code: 0 }
        const out: Array<Buffer> = []
        let err = ""
        for (const f of files) {
          const d = this.readFile(f)
          if (d === undefined) err += `cat: ${f}: No such file or directory\n`
          else out.push(d)
        }
        return { stdout: Buffer.concat(out), stderr: err, code: err === "" ? 0 : 1 }
      }
      case "install": {
        const rest = [...args]
        const pos: Array<string> = []
        for (let i = 0; i < rest.length; i++) {
          const a = rest[i] as string
          if (a === "-m" || a === "-o" || a === "-g") i++
          else if (a.startsWith("-")) continue
          else pos.push(a)
        }
        const [src, dest] = pos
        if (src === undefined || dest === undefined)
          return { stdout: "", stderr: "install: missing destination file operand\n", code: 1 }
        const data = src === "/dev/stdin" || src === "-" ? stdin : this.readFile(src)
        if (data === undefined)
          return { stdout: "", stderr: `install: cannot stat '${src}': No such file or directory\n`, code: 1 }
        const err = this.writeFile(dest, data, false)
        if (err !== undefined)
          return {
            stdout: "",
            stderr: `install: cannot create regular file '${dest}': No such file or directory\n`,
            code: 1
          }
        return ok()
      }
      case "rm": {
        for (const f of args.filter((a) => !a.startsWith("-"))) {
          this.files.delete(f)
          const v = pathToVolume(this.node, f)
          if (v !== undefined) v.storage.volumes.delete(v.volname)
        }
        return ok()
      }
      case "test": {
        const [flag, p] = args
        if ((flag === "-f" || flag === "-e") && p !== undefined)
          return { stdout: "", stderr: "", code: this.readFile(p) ? 0 : 1 }
        return { stdout: "", stderr: "", code: 1 }
      }
      case "sh":
      case "bash": {
        if (args[0] === "-c" && args[1] !== undefined) {
          const host: ShellHost = {
            run: (a, i) => this.runProgram(a, i),
            readFile: (p) => this.readFile(p),
            writeFile: (p, d, a) => this.writeFile(p, d, a)
          }
          return runLine(args[1], host, stdin)
        }
        return { stdout: "", stderr: "", code: 0 }
      }
      default:
        return { stdout: "", stderr: `bash: ${prog}: command not found\n`, code: 127 }
    }
  }
}
