import { randomBytes } from "node:crypto"
import { generateSshKey } from "./Certs.js"
/** In-guest model: what a VM's OS looks like to SSH clients. Extended by later issues (k3s) through the registry. */
export interface GuestState {
  readonly vmid: number
  hostname: string
  /** the cloud-init user (`ciuser`) */
  user: string
  authorizedKeys: Array<string>
  readonly files: Map<string, string>
  /** service name → state (`active`, `inactive`, `failed`) */
  readonly services: Map<string, string>
  /** `/etc/machine-id`: generated at the instance's first boot (cloud images ship it empty), so a rebuild changes it. */
  readonly machineId: string
  /**
   * The SSH host key (OpenSSH private key) cloud-init generates at the instance's first boot: every VM has its own,
   * and a VM destroyed and created again presents a new one at its address, as a real rebuild does.
   */
  readonly hostKey: string
  ip: string
  /** epoch ms when cloud-init finishes; `cloud-init status --wait` blocks until then */
  cloudInitDoneAt: number
  readonly env: Map<string, string>
}

export interface GuestCommandContext {
  readonly argv: ReadonlyArray<string>
  readonly stdin: Buffer
  readonly env: Readonly<Record<string, string>>
  readonly guest: GuestState
  /** the SSH user running the command (root after sudo) */
  readonly user: string
  /** epoch ms now */
  readonly now: () => number
  /** sleep real ms */
  readonly sleep: (ms: number) => Promise<void>
  /** run another command line (argv) in the same guest, e.g. for sudo */
  readonly run: (argv: ReadonlyArray<string>, asUser: string) => Promise<GuestCommandResult>
}

export interface GuestCommandResult {
  readonly stdout: string
  readonly stderr?: string
  readonly code: number
}

export type GuestCommand = (ctx: GuestCommandContext) => GuestCommandResult | Promise<GuestCommandResult>

const ok = (stdout = ""): GuestCommandResult => ({ stdout, code: 0 })

/** Registry of guest commands keyed by program name. Callers may add or replace handlers (e.g. `k3s`, `kubectl`). */
export class GuestCommands {
  private readonly handlers = new Map<string, GuestCommand>()

  /** @param now the simulator's clock (epoch ms), so guests and the PVE side agree on time. */
  constructor(private readonly now: () => number = Date.now) {
    this.register("true", () => ok())
    this.register("false", () => ({ stdout: "", code: 1 }))
    this.register("hostname", (c) => ok(`${c.guest.hostname}\n`))
    this.register("whoami", (c) => ok(`${c.user}\n`))
    this.register("id", (c) =>
      ok(
        c.user === "root"
          ? "uid=0(root) gid=0(root) groups=0(root)\n"
          : `uid=1000(${c.user}) gid=1000(${c.user}) groups=1000(${c.user}),27(sudo)\n`
      )
    )
    this.register("echo", (c) => ok(`${c.argv.slice(1).join(" ")}\n`))
    this.register("uname", (c) => {
      const a = c.argv.slice(1)
      if (a.includes("-a"))
        return ok(
          `Linux ${c.guest.hostname} 6.8.0-49-generic #49-Ubuntu SMP PREEMPT_DYNAMIC Mon Nov  4 02:06:24 UTC 2024 x86_64 x86_64 x86_64 GNU/Linux\n`
        )
      if (a.includes("-r")) return ok("6.8.0-49-generic\n")
      if (a.includes("-m")) return ok("x86_64\n")
      return ok("Linux\n")
    })
    this.register("cat", (c) => {
      const files = c.argv.slice(1).filter((a) => !a.startsWith("-"))
      if (files.length === 0) return ok(c.stdin.toString("utf8"))
      let out = ""
      let err = ""
      let code = 0
      for (const f of files) {
        const content = c.guest.files.get(f)
        if (content === undefined) {
          err += `cat: ${f}: No such file or directory\n`
          code = 1
        } else out += content
      }
      return { stdout: out, stderr: err, code }
    })
    this.register("cloud-init", async (c) => {
      const args = c.argv.slice(1)
      if (args[0] !== "status") return { stdout: "", stderr: `usage: cloud-init status [--wait] [--long]\n`, code: 2 }
      let dots = ""
      if (args.includes("--wait")) {
        // cloud-init prints a dot every 250 ms while it waits; it returns when cloud-init is done, not a step later
        while (c.now() < c.guest.cloudInitDoneAt) {
          dots += "."
          await c.sleep(Math.min(250, c.guest.cloudInitDoneAt - c.now()))
        }
        if (dots !== "") dots += "\n"
      }
      const done = c.now() >= c.guest.cloudInitDoneAt
      return ok(`${dots}status: ${done ? "done" : "running"}\n`)
    })
    this.register("sudo", async (c) => {
      const args = [...c.argv.slice(1)]
      let preserveEnv = false
      while (args[0]?.startsWith("-")) {
        const flag = args.shift() as string
        if (flag === "-E" || flag === "--preserve-env" || /^-[a-zA-Z]*E/.test(flag)) preserveEnv = true
      }
      if (args.length === 0) return { stdout: "", stderr: "usage: sudo -h | -K | -k | -V\n", code: 1 }
      // sudo resets the environment (env_reset) unless -E; `sudo A=b cmd` and `sudo env A=b cmd` still set variables
      return this.run(c.guest, args, "root", c.stdin, preserveEnv ? c.env : {}, c.sleep)
    })
    this.register("systemctl", (c) => {
      const args = c.argv.slice(1).filter((a) => !a.startsWith("-"))
      const verb = args[0]
      const unit = (args[1] ?? "").replace(/\.service$/, "")
      const state = c.guest.services.get(unit)
      if (verb === "is-active") return { stdout: `${state ?? "inactive"}\n`, code: state === "active" ? 0 : 3 }
      if (verb === "start" || verb === "restart" || verb === "enable") {
        if (c.user !== "root") return { stdout: "", stderr: "Failed to start: Access denied\n", code: 1 }
        if (state === undefined && verb !== "enable")
          return { stdout: "", stderr: `Failed to ${verb} ${unit}.service: Unit ${unit}.service not found.\n`, code: 5 }
        if (verb !== "enable") c.guest.services.set(unit, "active")
        return ok()
      }
      if (verb === "stop") {
        if (state !== undefined) c.guest.services.set(unit, "inactive")
        return ok()
      }
      return { stdout: "", stderr: `Unknown command verb ${verb ?? ""}.\n`, code: 1 }
    })
    this.register("test", (c) => {
      const [flag, path] = c.argv.slice(1)
      if ((flag === "-f" || flag === "-e") && path !== undefined)
        return { stdout: "", code: c.guest.files.has(path) ? 0 : 1 }
      return { stdout: "", code: 1 }
    })
    this.register("tee", (c) => {
      const files = c.argv.slice(1).filter((a) => !a.startsWith("-"))
      const data = c.stdin.toString("utf8")
      for (const f of files) {
        if (!canWrite(c.user, f)) return { stdout: data, stderr: `tee: ${f}: Permission denied\n`, code: 1 }
        c.guest.files.set(f, c.argv.includes("-a") ? (c.guest.files.get(f) ?? "") + data : data)
      }
      return ok(data)
    })
  }

  register(program: string, handler: GuestCommand): void {
    this.handlers.set(program, handler)
  }

  get(program: string): GuestCommand | undefined {
    return this.handlers.get(program)
  }

  /** Run argv in the guest as `user`. Unknown programs exit 127 like bash. */
  async run(
    guest: GuestState,
    argv: ReadonlyArray<string>,
    user: string,
    stdin: Buffer,
    env: Readonly<Record<string, string>>,
    sleep: (ms: number) => Promise<void>
  ): Promise<GuestCommandResult> {
    const program = argv[0]
    if (program === undefined) return { stdout: "", code: 0 }
    // `A=b cmd …` (shell prefix, `sudo A=b cmd`, `env A=b cmd`): assignments go into the command's environment
    const assign = /^([A-Za-z_][A-Za-z0-9_]*)=([\s\S]*)$/.exec(program)
    if (assign !== null)
      return this.run(guest, argv.slice(1), user, stdin, { ...env, [assign[1] as string]: assign[2] as string }, sleep)
    const base = program.includes("/") ? program.slice(program.lastIndexOf("/") + 1) : program
    const h = this.handlers.get(base)
    if (h === undefined) return { stdout: "", stderr: `bash: ${program}: command not found\n`, code: 127 }
    return h({
      argv: [base, ...argv.slice(1)],
      stdin,
      env,
      guest,
      user,
      now: this.now,
      sleep,
      run: (a, u) => this.run(guest, a, u, stdin, env, sleep)
    })
  }
}

const canWrite = (user: string, path: string): boolean =>
  user === "root" || path.startsWith("/home/") || path.startsWith("/tmp/")

export const newGuestState = (
  vmid: number,
  hostname: string,
  user: string,
  keys: Array<string>,
  ip: string,
  cloudInitDoneAt: number
): GuestState => {
  const machineId = randomBytes(16).toString("hex")
  const hostKey = generateSshKey(`root@${hostname}`)
  return {
    vmid,
    hostname,
    user,
    authorizedKeys: keys,
    files: new Map([
      ["/etc/machine-id", `${machineId}\n`],
      ["/etc/ssh/ssh_host_ed25519_key.pub", `${hostKey.publicKey.trim()}\n`],
      ["/etc/hostname", `${hostname}\n`],
      ["/etc/os-release", 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\n']
    ]),
    services: new Map([
      ["ssh", "active"],
      ["qemu-guest-agent", "active"],
      ["cloud-init", "active"]
    ]),
    machineId,
    hostKey: hostKey.privateKey,
    ip,
    cloudInitDoneAt,
    env: new Map()
  }
}
