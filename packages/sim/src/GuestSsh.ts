import type { SimClock } from "./Clock.js"
import type { Faults } from "./Faults.js"
import type { GuestCommands, GuestState } from "./Guest.js"
import { runLine } from "./internal/Shell.js"
import { parsePublicKeys, SshServer } from "./internal/SshServer.js"
import { canRead, canWrite, writeRedirect } from "./k3s/GuestFs.js"
import { serveGuestSftp } from "./k3s/GuestSftp.js"

/** The SSH server of one VM guest, listening on the guest's loopback IP. */
export class GuestSsh {
  private readonly server: SshServer

  constructor(
    private readonly guest: GuestState,
    hostKey: string,
    private readonly commands: GuestCommands,
    private readonly faults: Faults,
    private readonly clock: SimClock,
    private readonly onCommand?: (command: string, code: number, durationMs: number) => void
  ) {
    this.server = new SshServer(
      {
        hostKey,
        authorize: (user) => user === this.guest.user,
        exec: (user, command, stdin, signal) => this.exec(user, command, stdin, signal),
        sftp: (user, sftp) => serveGuestSftp(sftp, this.guest, user, (op) => this.onCommand?.(op, 0, 0))
      },
      (user) => (user === this.guest.user ? parsePublicKeys(this.guest.authorizedKeys) : [])
    )
  }

  get port(): number {
    return this.server.port
  }

  private async exec(user: string, command: string, stdin: Buffer, signal?: AbortSignal) {
    const started = performance.now()
    // a command the client gave up on (e.g. a k3s install blocking on its unit) is logged when the channel closes,
    // with exit code -1, so that the request log shows it even if it never ends
    let logged = false
    const abandoned = () => {
      if (logged) return
      logged = true
      this.onCommand?.(command, -1, Math.round(performance.now() - started))
    }
    signal?.addEventListener("abort", abandoned, { once: true })
    const r = await this.execInner(user, command, stdin)
    signal?.removeEventListener("abort", abandoned)
    if (!logged) {
      logged = true
      this.onCommand?.(command, r.code, Math.round(performance.now() - started))
    }
    return r
  }

  private async execInner(user: string, command: string, stdin: Buffer) {
    const latency = this.faults.latency(undefined, "guest-ssh")
    if (latency > 0) await this.clock.sleepReal(latency)
    const guest = this.guest
    const sleep = (ms: number) => this.clock.sleepReal(ms)
    const run = (argv: ReadonlyArray<string>, input: Buffer, asUser: string): ReturnType<GuestCommands["run"]> => {
      if ((argv[0] === "sh" || argv[0] === "bash") && argv[1] === "-c" && argv[2] !== undefined) {
        return runLine(argv[2], host(asUser), input).then((r) => ({
          stdout: r.stdout.toString(),
          stderr: r.stderr,
          code: r.code
        }))
      }
      return this.commands.run(guest, argv, asUser, input, {}, sleep)
    }
    const host = (asUser: string) => ({
      run: async (argv: ReadonlyArray<string>, input: Buffer) => {
        const r = await run(argv, input, asUser)
        return { stdout: r.stdout, stderr: r.stderr ?? "", code: r.code }
      },
      readFile: (p: string) => {
        const f = guest.files.get(p)
        return f === undefined || !canRead(guest, asUser, p) ? undefined : Buffer.from(f)
      },
      writeFile: (p: string, data: Buffer, append: boolean) => {
        if (p === "/dev/null") return undefined
        if (!canWrite(guest, asUser, p)) return `bash: ${p}: Permission denied\n`
        writeRedirect(guest, asUser, p, data, append)
        return undefined
      }
    })
    return runLine(command, host(user), stdin)
  }

  listen(ip: string, port: number): Promise<number> {
    return this.server.listen(ip, port)
  }

  close(): Promise<void> {
    return this.server.close()
  }

  /** A paused, suspended or prelaunch VM does not answer the network (see `SshServer.freeze`). */
  freeze(on: boolean): void {
    this.server.freeze(on)
  }
}
