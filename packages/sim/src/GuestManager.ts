import net from "node:net"
import type { SimClock } from "./Clock.js"
import type { Faults } from "./Faults.js"
import { type GuestCommands, type GuestState, newGuestState } from "./Guest.js"
import { GuestSsh } from "./GuestSsh.js"
import { cicustomVolumes, identityFromUserData, readSnippet } from "./internal/CloudInit.js"
import type { ResolvedTimings } from "./internal/Context.js"
import { PveError } from "./PveError.js"
import { agentEnabled, NET_KEY, networkCut, parseNet, type SimState, type VmState } from "./SimState.js"

interface ExecJob {
  exited: boolean
  exitcode: number
  out: Buffer
  err: Buffer
}

/** Guest lifecycle: IP allocation, boot / cloud-init / agent timing, agent answers, guest SSH servers. */
export class GuestManager {
  private readonly ssh = new Map<number, GuestSsh>()
  private readonly sshErrors = new Map<number, string>()
  private readonly timers = new Map<number, Array<NodeJS.Timeout>>()
  private readonly usedIps = new Set<string>()
  private nextIp: number
  private readonly jobs = new Map<number, Map<number, ExecJob>>()
  private pidCounter = 1000
  private stopped = false
  /** guest-pings waiting for an agent (`waitForAgent`), woken whenever what keeps an agent silent may have changed */
  private readonly agentWaiters = new Set<() => void>()

  constructor(
    private readonly state: SimState,
    private readonly clock: SimClock,
    private readonly faults: Faults,
    private readonly timings: ResolvedTimings,
    readonly commands: GuestCommands,
    ipPoolStart: string,
    readonly guestSshPort: number
  ) {
    this.nextIp = ipToInt(ipPoolStart)
    state.onVmEvent((vm, ev) => {
      if (ev === "started") this.boot(vm, false)
      else if (ev === "resumed") this.resume(vm)
      else if (ev === "stopped") this.shutdown(vm)
      else if (ev === "destroyed") {
        this.shutdown(vm)
        if (vm.ip !== undefined) this.usedIps.delete(vm.ip)
      } else if (ev === "changed") this.ssh.get(vm.vmid)?.freeze(unreachable(vm))
      this.wakeAgentWaiters()
    })
    state.onRunState((vm) => {
      this.ssh.get(vm.vmid)?.freeze(unreachable(vm))
      this.wakeAgentWaiters()
    })
    // an agent held silent (agentNeverStarts) comes up the moment its fault is cleared
    faults.onChange(() => this.wakeAgentWaiters())
  }

  private wakeAgentWaiters(): void {
    const waiters = [...this.agentWaiters]
    this.agentWaiters.clear()
    for (const w of waiters) w()
  }

  reserveIp(ip: string): void {
    this.usedIps.add(ip)
  }

  private allocateIp(): string {
    for (;;) {
      const ip = intToIp(this.nextIp++)
      if (!this.usedIps.has(ip)) {
        this.usedIps.add(ip)
        return ip
      }
    }
  }

  private net0(vm: VmState): { mac: string; bridge: string | undefined } | undefined {
    const key = [...vm.config.keys()].filter((k) => NET_KEY.test(k)).sort()[0]
    if (key === undefined) return undefined
    const n = parseNet(vm.config.get(key) ?? "")
    return { mac: (n.mac ?? "").toLowerCase(), bridge: n.opts.bridge }
  }

  private bridgeUp(vm: VmState): boolean {
    const n = this.net0(vm)
    if (n?.bridge === undefined) return false
    const b = this.state.getNode(vm.node)?.bridges.get(n.bridge)
    return b?.active === true && this.faults.bridgeState(vm.node, n.bridge) === undefined
  }

  /** A VM started (or exists running at sim start when `already` is true). */
  boot(vm: VmState, already: boolean): void {
    this.clearTimers(vm.vmid)
    const now = this.clock.now()
    const bootMs = already ? 0 : this.clock.scaled(this.timings.bootMs)
    const agentMs = already ? 0 : this.clock.scaled(this.timings.agentMs)
    vm.agentReadyAt = now + agentMs
    vm.bootDoneAt = now + bootMs
    if (!already) this.recordBoot(vm)
    const hasCloudInit = [...vm.config.values()].some((v) => /cloudinit/.test(v))
    // The guest reads its cloud-init drive as it was last generated (at a start by PVE, or `PUT …/cloudinit`): a
    // reset, or a reboot inside the guest, reads the drive it had, whatever changed in the config since.
    const drive = hasCloudInit ? vm.cloudInitDrive : undefined
    const ciConfig = drive?.config ?? vm.config
    const ipconfig = ciConfig.get("ipconfig0") ?? ""
    const staticIp = /(?:^|,)ip=(\d+\.\d+\.\d+\.\d+)/.exec(ipconfig)?.[1]
    const needIp = vm.ip === undefined && this.bridgeUp(vm) && (hasCloudInit || vm.guest !== undefined)
    if (needIp && staticIp !== undefined) {
      vm.ip = staticIp
      this.usedIps.add(staticIp)
    }
    // a cicustom user-data snippet replaces the user-data PVE generates from ciuser / sshkeys
    const custom = drive !== undefined ? drive.userData : this.customUserData(vm)
    const identity = custom === undefined ? undefined : identityFromUserData(custom)
    const user = identity?.user ?? ciConfig.get("ciuser") ?? vm.guest?.user ?? "ubuntu"
    const keys = identity !== undefined ? [...identity.keys] : decodeKeys(ciConfig.get("sshkeys"))
    const hostname = identity?.hostname ?? ciConfig.get("name") ?? `VM${vm.vmid}`
    if (vm.guest === undefined) vm.guest = newGuestState(vm.vmid, hostname, user, keys, vm.ip ?? "", now + bootMs)
    else {
      if (hasCloudInit) {
        vm.guest.user = user
        if (keys.length > 0 || identity !== undefined) vm.guest.authorizedKeys = keys
        vm.guest.hostname = hostname
      }
      vm.guest.ip = vm.ip ?? ""
      vm.guest.cloudInitDoneAt = now + bootMs
    }
    if (this.stopped) return
    if (needIp && vm.ip === undefined) {
      void this.allocateFreeIp().then((ip) => {
        if (vm.status !== "running" || vm.ip !== undefined) {
          this.usedIps.delete(ip)
          return
        }
        vm.ip = ip
        if (vm.guest !== undefined) vm.guest.ip = ip
        this.scheduleSsh(vm, already ? 0 : Math.floor(bootMs / 2))
      })
      return
    }
    if (vm.ip === undefined) return
    this.scheduleSsh(vm, already ? 0 : Math.floor(bootMs / 2))
  }

  /**
   * A VM started from the RAM its suspend to disk saved: the guest goes on where it was (no boot, no cloud-init, the
   * same address); its agent, already running inside, answers as soon as QEMU reconnects its channel, and its SSH
   * server listens again.
   */
  resume(vm: VmState): void {
    this.clearTimers(vm.vmid)
    const now = this.clock.now()
    vm.agentReadyAt = now
    vm.bootDoneAt = now
    if (this.stopped || vm.ip === undefined) return
    this.scheduleSsh(vm, 0)
  }

  /**
   * The boot as an operation after the task that started the VM: the network is up (and the IP on the agent's
   * interfaces) half-way through `bootMs`, the agent answers after `agentMs`; the boot is done for a client when the
   * agent reports the IP (without an agent: when the network is up).
   */
  private recordBoot(vm: VmState): void {
    const netUp = this.timings.bootMs / 2
    const agent = vm.config.get("agent")
    const simMs = agent !== undefined && agentEnabled(agent) ? Math.max(netUp, this.timings.agentMs) : netUp
    this.state.operations.beginBoot({ node: vm.node, vmid: vm.vmid, vm: vm.config.get("name"), simMs })
  }

  /** The text of the VM's `cicustom` `user=` snippet, if it has one that can be read. */
  private customUserData(vm: VmState): string | undefined {
    const volid = cicustomVolumes(vm).user
    const node = this.state.getNode(vm.node)
    if (volid === undefined || node === undefined) return undefined
    try {
      return readSnippet(node, volid)
    } catch {
      return undefined
    }
  }

  private scheduleSsh(vm: VmState, delay: number): void {
    const t = setTimeout(() => {
      void this.startSsh(vm)
    }, delay)
    t.unref()
    this.timers.set(vm.vmid, [t])
  }

  private async startSsh(vm: VmState): Promise<void> {
    if (this.stopped || vm.status !== "running" || vm.guest === undefined || vm.ip === undefined) return
    if (this.faults.vmFault("guestSshRefused", vm.vmid)) return
    if (this.ssh.has(vm.vmid)) return
    try {
      const server = new GuestSsh(
        vm.guest,
        vm.guest.hostKey,
        this.commands,
        this.faults,
        this.clock,
        (command, code, ms) => this.onCommand?.({ node: vm.node, vmid: vm.vmid, command, code, durationMs: ms })
      )
      this.ssh.set(vm.vmid, server)
      server.freeze(unreachable(vm))
      await server.listen(vm.ip, this.guestSshPort)
      this.sshErrors.delete(vm.vmid)
    } catch (e) {
      // the guest runs, but nothing answers SSH at its address: say why in the state (a client only sees a refusal)
      this.ssh.delete(vm.vmid)
      this.sshErrors.set(vm.vmid, `${vm.ip}:${this.guestSshPort}: ${e instanceof Error ? e.message : String(e)}`)
    }
  }

  /** Why the guest's SSH server could not listen (its address or port taken), while it runs. */
  sshError(vmid: number): string | undefined {
    return this.sshErrors.get(vmid)
  }

  /** Called for every guest SSH command (request log). */
  onCommand:
    | ((e: { node: string; vmid: number; command: string; code: number; durationMs: number }) => void)
    | undefined

  /**
   * Pick a free pool address whose guest SSH port is bindable (another sim or process on the machine may hold
   * `<ip>:<port>`), so parallel simulators with the same pool do not collide.
   */
  private async allocateFreeIp(): Promise<string> {
    for (let i = 0; i < 256; i++) {
      const ip = this.allocateIp()
      if (this.guestSshPort === 0 || (await canBind(ip, this.guestSshPort))) return ip
    }
    return this.allocateIp()
  }

  /** Apply a guestSshRefused fault change to a running VM. */
  async refreshSsh(vm: VmState): Promise<void> {
    if (this.faults.vmFault("guestSshRefused", vm.vmid)) {
      await this.ssh.get(vm.vmid)?.close()
      this.ssh.delete(vm.vmid)
    } else if (vm.status === "running" && vm.bootDoneAt !== undefined) await this.startSsh(vm)
  }

  sshPort(vmid: number): number | undefined {
    return this.ssh.get(vmid)?.port
  }

  private clearTimers(vmid: number): void {
    for (const t of this.timers.get(vmid) ?? []) clearTimeout(t)
    this.timers.delete(vmid)
  }

  shutdown(vm: VmState): void {
    this.state.operations.stopBoot(vm.vmid)
    this.clearTimers(vm.vmid)
    this.sshErrors.delete(vm.vmid)
    const s = this.ssh.get(vm.vmid)
    this.ssh.delete(vm.vmid)
    void s?.close()
    this.jobs.delete(vm.vmid)
  }

  agentRunning(vm: VmState): boolean {
    const agent = vm.config.get("agent")
    return (
      agent !== undefined &&
      agentEnabled(agent) &&
      vm.status === "running" &&
      vm.qmpstatus === "running" &&
      vm.agentReadyAt !== undefined &&
      this.clock.now() >= vm.agentReadyAt &&
      !this.faults.vmFault("agentNeverStarts", vm.vmid)
    )
  }

  /** Called when a guest-ping finds the VM's agent silent: the agent call waits for it from now (`watch`). */
  onAgentWait: ((e: { node: string; vmid: number }) => void) | undefined

  /**
   * Waits while the VM's agent does not answer, for at most `simMs` (scaled): what a `guest-ping` sent now would wait
   * for its answer. Returns early when the agent comes up (it is due, its `agentNeverStarts` is cleared, the paused VM
   * resumes); the caller checks again.
   */
  async waitForAgent(vm: VmState, simMs: number): Promise<void> {
    if (this.stopped || this.agentRunning(vm)) return
    this.onAgentWait?.({ node: vm.node, vmid: vm.vmid })
    const deadline = performance.now() + this.clock.scaled(simMs)
    for (;;) {
      const left = deadline - performance.now()
      if (left <= 0 || this.stopped || this.agentRunning(vm)) return
      // wake when the agent is due, or when what keeps it silent changes (a fault, the VM's state); one that is not
      // coming (paused VM, agentNeverStarts) lets the whole ping time pass
      const due =
        vm.agentReadyAt !== undefined && !this.faults.vmFault("agentNeverStarts", vm.vmid)
          ? vm.agentReadyAt - this.clock.now()
          : 0
      const step = due > 0 ? Math.min(left, due) : left
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer)
          this.agentWaiters.delete(wake)
          resolve()
        }
        const timer = setTimeout(wake, step)
        timer.unref?.()
        this.agentWaiters.add(wake)
      })
    }
  }

  interfaces(vm: VmState): Array<Record<string, unknown>> {
    const stats = {
      "rx-bytes": 0,
      "rx-dropped": 0,
      "rx-errs": 0,
      "rx-packets": 0,
      "tx-bytes": 0,
      "tx-dropped": 0,
      "tx-errs": 0,
      "tx-packets": 0
    }
    const nic = (name: string, mac: string, addrs: Array<[string, string, number]>) => ({
      name,
      "hardware-address": mac,
      "ip-addresses": addrs.map(([t, ip, prefix]) => ({ "ip-address-type": t, "ip-address": ip, prefix })),
      statistics: stats
    })
    const n = this.net0(vm)
    const out: Array<Record<string, unknown>> = [
      nic("lo", "00:00:00:00:00:00", [
        ["ipv4", "127.0.0.1", 8],
        ["ipv6", "::1", 128]
      ])
    ]
    if (n !== undefined) {
      const addrs: Array<[string, string, number]> = []
      const up =
        this.bridgeUp(vm) &&
        vm.bootDoneAt !== undefined &&
        this.clock.now() >= vm.bootDoneAt - this.clock.scaled(this.timings.bootMs) / 2
      if (vm.ip !== undefined && up) addrs.push(["ipv4", vm.ip, 8])
      addrs.push(["ipv6", `fe80::${n.mac.split(":").slice(3).join("")}:ff:fe00:1`, 64])
      out.push(nic("eth0", n.mac, addrs))
    }
    out.push(nic("docker0", "02:42:9c:1d:4e:01", [["ipv4", "172.17.0.1", 16]]))
    out.push(nic("cni0", "a6:5e:21:0b:7c:11", [["ipv4", "10.42.0.1", 24]]))
    out.push(nic("flannel.1", "ce:3b:9f:22:10:aa", [["ipv4", "10.42.0.0", 32]]))
    return out
  }

  agentCommand(vm: VmState, cmd: string): unknown {
    const g = vm.guest
    switch (cmd) {
      case "ping":
        return {}
      case "network-get-interfaces":
        return this.interfaces(vm)
      case "get-host-name":
        return { "host-name": g?.hostname ?? `VM${vm.vmid}` }
      case "get-osinfo":
        return {
          id: "ubuntu",
          name: "Ubuntu",
          "pretty-name": "Ubuntu 24.04.1 LTS",
          version: "24.04.1 LTS (Noble Numbat)",
          "version-id": "24.04",
          "kernel-release": "6.8.0-49-generic",
          "kernel-version": "#49-Ubuntu SMP PREEMPT_DYNAMIC",
          machine: "x86_64"
        }
      case "info":
        return {
          version: "8.2.2",
          supported_commands: ["guest-ping", "guest-exec", "guest-exec-status", "guest-network-get-interfaces"].map(
            (name) => ({ name, enabled: true, "success-response": true })
          )
        }
      case "get-time":
        return this.clock.now() * 1_000_000
      case "get-timezone":
        return { zone: "UTC", offset: 0 }
      default:
        return {}
    }
  }

  exec(vm: VmState, argv: ReadonlyArray<string>, input: string | undefined): number {
    const pid = ++this.pidCounter
    const job: ExecJob = { exited: false, exitcode: 0, out: Buffer.alloc(0), err: Buffer.alloc(0) }
    let jobs = this.jobs.get(vm.vmid)
    if (jobs === undefined) {
      jobs = new Map()
      this.jobs.set(vm.vmid, jobs)
    }
    jobs.set(pid, job)
    const guest = vm.guest ?? newGuestState(vm.vmid, vm.config.get("name") ?? `VM${vm.vmid}`, "ubuntu", [], "", 0)
    vm.guest = guest
    void this.commands
      .run(guest, argv, "root", Buffer.from(input ?? ""), {}, (ms) => this.clock.sleepReal(ms))
      .then((r) => {
        job.out = Buffer.from(r.stdout)
        job.err = Buffer.from(r.stderr ?? "")
        job.exitcode = r.code
        job.exited = true
      })
    return pid
  }

  execStatus(vm: VmState, pid: number): Record<string, unknown> {
    const job = this.jobs.get(vm.vmid)?.get(pid)
    if (job === undefined) throw new PveError(500, "Agent error: Invalid parameter 'pid'")
    if (!job.exited) return { exited: 0 }
    const o: Record<string, unknown> = { exited: 1, exitcode: job.exitcode }
    if (job.out.length > 0) o["out-data"] = job.out.toString("utf8")
    if (job.err.length > 0) o["err-data"] = job.err.toString("utf8")
    return o
  }

  async closeAll(): Promise<void> {
    this.stopped = true
    this.wakeAgentWaiters()
    for (const id of [...this.timers.keys()]) this.clearTimers(id)
    await Promise.all([...this.ssh.values()].map((s) => s.close()))
    this.ssh.clear()
  }

  guestOf(vm: VmState): GuestState | undefined {
    return vm.guest
  }
}

/** A running VM whose vCPUs do not run (paused, suspended, prelaunch) does not answer the network. */
const frozen = (vm: VmState): boolean => vm.status === "running" && vm.qmpstatus !== "running"

/** Nothing reaches the guest over the network: its vCPUs do not run, or every NIC's link is down (`networkCut`). */
const unreachable = (vm: VmState): boolean => frozen(vm) || networkCut(vm)

const canBind = (ip: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const srv = net.createServer()
    srv.once("error", () => resolve(false))
    srv.listen(port, ip, () => srv.close(() => resolve(true)))
  })

const decodeKeys = (enc: string | undefined): Array<string> => {
  if (enc === undefined) return []
  let text = enc
  try {
    text = decodeURIComponent(enc)
  } catch {
    // keep
  }
  return text.split("\n").filter((l) => l.trim() !== "")
}

export const ipToInt = (ip: string): number => ip.split(".").reduce((acc, o) => acc * 256 + (Number(o) & 255), 0)
export const intToIp = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".")
