/**
 * A protocol-level test double of k3s hosts: command handlers for `TestSshServer` that answer the commands of
 * k3s.md §8.2 with the outputs and exit codes given there, and a small join state machine (§8.3).
 *
 * The join state machine runs on events, not on timers: a started host moves one step each time its unit state is
 * polled (`systemctl is-active <unit>`), so what a test sees depends on how often the library looked, never on how
 * fast the machine runs the test.
 */
import type { TestExecReply } from "@homelab/ssh/testing"
import { journal, type NodeSpec, nodeJson, nodeListJson, SERVER_TOKEN } from "./fixtures.js"

type Reply = TestExecReply | undefined

/** Undoes `shellQuote` for one word. */
const unquote = (word: string): string =>
  word.startsWith("'") && word.endsWith("'") && word.length >= 2 ? word.slice(1, -1).replaceAll("'\\''", "'") : word
const ok = (stdout = ""): Reply => ({ stdout, exitCode: 0 })
const err = (stderr: string, exitCode = 1): Reply => ({ stderr, exitCode })

const KUBECTL = "sudo -n /usr/local/bin/k3s kubectl "

/** The cluster as seen through a server's `k3s kubectl`. */
export class FakeCluster {
  version = "v1.30.5+k3s1"
  readonly nodes = new Map<string, NodeSpec>()
  /** `<name>.node-password.k3s` secrets: name → owner id (the host that created it). */
  readonly secrets = new Map<string, string>()
  /** Content of the token files (`undefined`: not a server). */
  tokenFile: string | undefined = `${SERVER_TOKEN}\n`
  sudoNeedsPassword = false
  apiDown = false
  /** A NotReady Node becomes Ready when `kubectl wait --for=condition=Ready` asks for it (deterministic waits). */
  readyOnWait = false
  /** `get node` still shows a deleted Node (with a deletionTimestamp) this many times (finalizers running). */
  deleteLingerPolls = 0
  private readonly lingering = new Map<string, number>()
  private readonly deleted = new Map<string, NodeSpec>()
  /** Servers currently joining (activating) and the most seen at once. */
  joiningServers = 0
  maxJoiningServers = 0
  joiningAgents = 0
  maxJoiningAgents = 0
  /**
   * An agent's join completes only once this many agents have been joining at the same time: "agents join in
   * parallel" becomes an event to wait for, not an overlap of timings (a client joining one at a time never gets there
   * and runs into its ready limit).
   */
  agentsJoiningTogether = 0

  addNode(spec: NodeSpec, owner = `old-${spec.name}`): void {
    this.nodes.set(spec.name, spec)
    this.secrets.set(spec.name, owner)
  }

  readonly handler = (command: string, _user = ""): Reply => {
    if (command.startsWith("sudo -n cat /var/lib/rancher/k3s/server/")) {
      const path = command.slice("sudo -n cat ".length)
      if (this.sudoNeedsPassword) return err("sudo: a password is required\n")
      if (this.tokenFile === undefined) return err(`cat: ${path}: No such file or directory\n`)
      return ok(this.tokenFile)
    }
    if (command === "/usr/local/bin/k3s --version")
      return ok(`k3s version ${this.version} (56ec5dd4)\ngo version go1.22.10\n`)
    if (command.startsWith(KUBECTL)) {
      if (this.sudoNeedsPassword) return err("sudo: a password is required\n")
      if (this.apiDown) {
        return err(
          "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?\n"
        )
      }
      const args = command.slice(KUBECTL.length).split(" ")
      if (args.join(" ") === "get nodes -o json") return ok(nodeListJson([...this.nodes.values()].map(nodeJson)))
      if (args[0] === "get" && args[1] === "node" && args[3] === "-o" && args[4] === "json") {
        const name = args[2] as string
        const left = this.lingering.get(name)
        if (left !== undefined && left > 0) {
          this.lingering.set(name, left - 1)
          const gone = this.deleted.get(name) as NodeSpec
          return ok(`${JSON.stringify(nodeJson({ ...gone, deleting: true }), null, 4)}\n`)
        }
        const node = this.nodes.get(name)
        if (node === undefined) return err(`Error from server (NotFound): nodes "${name}" not found\n`)
        return ok(`${JSON.stringify(nodeJson(node), null, 4)}\n`)
      }
      if (args[0] === "wait") {
        // answers at once (the library calls again until its deadline): met, NotFound, or timed out
        const forArg = args.find((a) => a.startsWith("--for="))?.slice(6) ?? ""
        const name = (args.find((a) => a.startsWith("node/")) ?? "").slice(5)
        const node = this.nodes.get(name)
        if (forArg === "delete")
          return node === undefined ? ok() : err(`error: timed out waiting for the condition on nodes/${name}\n`)
        if (node === undefined) return err(`Error from server (NotFound): nodes "${name}" not found\n`)
        if (forArg === "condition=Ready" && this.readyOnWait && node.ready === "False")
          this.nodes.set(name, { ...node, ready: "True" })
        if (forArg === "condition=Ready" && (this.nodes.get(name)?.ready ?? "True") === "True")
          return ok(`node/${name} condition met\n`)
        return err(`error: timed out waiting for the condition on nodes/${name}\n`)
      }
      if (args[0] === "delete" && args[1] === "node" && args[3] === "--ignore-not-found") {
        const name = args[2] as string
        const node = this.nodes.get(name)
        if (node === undefined) return ok()
        this.nodes.delete(name)
        this.deleted.set(name, node)
        this.lingering.set(name, this.deleteLingerPolls)
        this.secrets.delete(name) // garbage-collected through its ownerReference
        return ok(`node "${name}" deleted\n`)
      }
      if (args.slice(0, 4).join(" ") === "-n kube-system delete secret" && args[5] === "--ignore-not-found") {
        const secret = args[4] as string
        const name = secret.replace(/\.node-password\.k3s$/, "")
        if (!this.secrets.has(name)) return ok()
        this.secrets.delete(name)
        return ok(`secret "${secret}" deleted\n`)
      }
    }
    return err(`sh: 1: ${command.split(" ")[0]}: not found\n`, 127)
  }
}

/**
 * How a joining host behaves after its unit starts. Time is counted in polls: each `systemctl is-active <unit>` the host
 * answers after the start is one step (the answer already shows that step).
 */
export interface HostBehaviour {
  /** Loop on this journal line instead of joining (k3s retries forever): written once per step. */
  readonly failWith?: string | undefined
  /** For servers: the process exits after the line (unit `failed` between restarts). */
  readonly fatal?: boolean | undefined
  /** Never become Ready (Node stays `Ready=False`). */
  readonly neverReady?: boolean | undefined
  /** The step at which the Node registers (Ready False) and the unit turns active. Default 1 (the first poll). */
  readonly joinAfterPolls?: number | undefined
  /** Steps after registering until the Node turns Ready. Default 1. */
  readonly readyAfterPolls?: number | undefined
  readonly downloadExitCode?: number | undefined
  readonly installFails?: boolean | undefined
  /** Extra journal lines written when the unit starts. */
  readonly logOnStart?: ReadonlyArray<string> | undefined
  /**
   * Lines the k3s process that runs before the install writes while the install downloads (after the journal was read
   * for the baseline, before the install restarts the unit): an agent with an old token goes on logging its 401s.
   */
  readonly logDuringInstall?: ReadonlyArray<string> | undefined
  /**
   * journald is behind when the unit starts: systemd's start line, and everything logged after it, are in the journal
   * only from the second journal read after the start on (journald writes asynchronously: a `journalctl` right after a
   * `systemctl restart --no-block` may not show the start yet). The new run makes no step before it is logged.
   */
  readonly startLoggedLate?: boolean | undefined
  /** The InternalIP the Node registers with (default: the host's ip). */
  readonly registerIp?: string | undefined
}

/** A host that can be joined (a VM guest as seen over SSH). */
export class FakeHost {
  unit: "k3s" | "k3s-agent" | undefined
  state = "inactive"
  readonly journal: Array<string> = []
  configWritten = false
  installCommand: string | undefined
  /** `/run/homelab-k3s-join.last` */
  record: string | undefined
  /** What the install hashes (binary, unit, env, config) stood for before / after it. */
  private hashes: { pre?: string; post?: string } = {}
  /** The locked install scripts received. */
  readonly lockedScripts: Array<string> = []
  /** An install's held restart is pending (`/run/homelab-k3s-join.<unit>.restart`). */
  restartPending = false
  /** One step of the started unit (undefined: not started, or nothing left to do). */
  private step: (() => void) | undefined
  private tick = 0
  /** Lines logged but not in the journal yet (`startLoggedLate`): they are from the next journal read on. */
  private behind: Array<string> | undefined
  private readonly id = `host-${Math.random().toString(16).slice(2)}`

  constructor(
    readonly cluster: FakeCluster,
    readonly hostname: string,
    readonly ip: string,
    public behaviour: HostBehaviour = {}
  ) {}

  private role(): "server" | "agent" {
    return this.unit === "k3s" ? "server" : "agent"
  }

  private log(line: string): void {
    if (this.behind !== undefined) this.behind.push(line)
    else this.journal.push(line)
  }

  private start(): void {
    const role = this.role()
    const version = /INSTALL_K3S_VERSION=(\S+)/.exec(this.installCommand ?? "")?.[1] ?? this.cluster.version
    const joinAt = this.behaviour.joinAfterPolls ?? 1
    const readyAfter = this.behaviour.readyAfterPolls ?? 1
    let steps = 0
    let joinedAt = 0
    let joined = false
    let counted = true
    this.state = "activating"
    if (this.behaviour.startLoggedLate === true) this.behind ??= []
    if (role === "server") {
      this.cluster.joiningServers++
      this.cluster.maxJoiningServers = Math.max(this.cluster.maxJoiningServers, this.cluster.joiningServers)
    } else {
      this.cluster.joiningAgents++
      this.cluster.maxJoiningAgents = Math.max(this.cluster.maxJoiningAgents, this.cluster.joiningAgents)
    }
    const uncount = () => {
      if (!counted) return
      counted = false
      if (role === "server") this.cluster.joiningServers--
      else this.cluster.joiningAgents--
    }
    this.log(journal.unitStart())
    this.log(journal.starting(this.tick++))
    for (const line of this.behaviour.logOnStart ?? []) this.log(line)
    this.step = () => {
      // the new run has not logged its start yet
      if (this.behind !== undefined) return
      const i = this.tick++
      steps++
      if (this.behaviour.failWith !== undefined) {
        this.log(this.behaviour.failWith)
        if (this.behaviour.fatal === true) this.state = i % 2 === 0 ? "failed" : "activating"
        return
      }
      const owner = this.cluster.secrets.get(this.hostname)
      if (role === "agent" && owner !== undefined && owner !== this.id) {
        this.log(journal.nodePassword(i))
        return
      }
      const gateOpen = role !== "agent" || this.cluster.maxJoiningAgents >= this.cluster.agentsJoiningTogether
      if (!joined && steps >= joinAt && gateOpen) {
        joined = true
        joinedAt = steps
        this.cluster.secrets.set(this.hostname, this.id)
        this.cluster.nodes.set(this.hostname, {
          name: this.hostname,
          ip: this.behaviour.registerIp ?? this.ip,
          role,
          ready: "False",
          version
        })
        this.state = "active"
        uncount()
        this.log(role === "server" ? journal.upServer(i) : journal.upAgent(i))
      }
      if (joined && this.behaviour.neverReady !== true && steps >= joinedAt + readyAfter) {
        const node = this.cluster.nodes.get(this.hostname)
        if (node !== undefined) this.cluster.nodes.set(this.hostname, { ...node, ready: "True" })
        this.step = undefined
      }
    }
  }

  private state_(): string {
    return `${this.unit}|${this.installCommand ?? ""}`
  }

  /** The locked install (`sudo -n flock … sh -c '<script>'`), line by line, as `set -e` would. */
  private locked(script: string): Reply {
    this.lockedScripts.push(script)
    let stdout = "flock: getting lock took 0.000010 seconds\nflock: executing sh\n"
    let stderr = ""
    for (const line of script.split("\n")) {
      if (line === "set -e" || line.startsWith("mv ") || line.startsWith("install -m ")) continue
      if (line.startsWith("install -D -m 600 /dev/stdin ")) {
        this.configWritten = true
        continue
      }
      if (line.startsWith("cat /run/homelab-k3s-join.last")) {
        if (this.record !== undefined) stdout += `${this.record}\n`
        continue
      }
      const echo = /^echo (.*?)( > \/run\/homelab-k3s-join\.last)?$/.exec(line)
      if (echo !== null) {
        const text = unquote(echo[1] as string)
        if (echo[2] !== undefined) this.record = text
        else stdout += `${text}\n`
        continue
      }
      if (line.startsWith("sha256sum ")) {
        if (line.includes(".pre ")) this.hashes.pre = this.state_()
        else this.hashes.post = this.state_()
        continue
      }
      if (line.startsWith("curl ")) {
        for (const written of this.behaviour.logDuringInstall ?? []) this.log(written)
        const code = this.behaviour.downloadExitCode ?? 0
        if (code !== 0) return { stdout, stderr, exitCode: code }
        continue
      }
      if (line.startsWith("env ")) {
        const r = this.handler(`sudo -n ${line.split(" ").map(unquote).join(" ")}`, "root") as {
          stdout?: string
          stderr?: string
          exitCode: number
        }
        stdout += r.stdout ?? ""
        stderr += r.stderr ?? ""
        if (r.exitCode !== 0) return { stdout, stderr, exitCode: r.exitCode }
        continue
      }
      if (line.startsWith("cmp -s ")) {
        const unchanged = this.hashes.pre === this.hashes.post && !this.restartPending
        if (unchanged) {
          stdout += "k3s-join: unchanged\n"
          if (this.state === "inactive") this.start()
        } else if (/ > \/run\/homelab-k3s-join\.\S+\.restart$/.test(line)) this.restartPending = true
        else this.start()
        continue
      }
      if (/^rm -f \/run\/homelab-k3s-join\.\S+\.restart$/.test(line)) {
        this.restartPending = false
        continue
      }
      if (/^test -e \/run\/homelab-k3s-join\.\S+\.restart && echo /.test(line)) {
        if (this.restartPending) stdout += "k3s-join: restart held\n"
        continue
      }
      return { stdout, stderr: `${stderr}sh: 1: ${line.split(" ")[0]}: not found\n`, exitCode: 127 }
    }
    return { stdout, stderr, exitCode: 0 }
  }

  readonly handler = (command: string, _user = ""): Reply => {
    if (command === "hostname") return ok(`${this.hostname}\n`)
    if (command === "cat /run/homelab-k3s-join.last")
      return this.record === undefined
        ? err("cat: /run/homelab-k3s-join.last: No such file or directory\n")
        : ok(`${this.record}\n`)
    const before = /^cat \/run\/homelab-k3s-join\.last; systemctl is-active (k3s|k3s-agent)$/.exec(command)
    if (before !== null) {
      const state = before[1] === this.unit ? this.state : "inactive"
      return {
        stdout: `${this.record === undefined ? "" : `${this.record}\n`}${state}\n`,
        ...(this.record === undefined
          ? { stderr: "cat: /run/homelab-k3s-join.last: No such file or directory\n" }
          : {}),
        exitCode: state === "active" ? 0 : 3
      }
    }
    const locked =
      /^sudo -n flock -w \d+ -E 75 --verbose \/run\/lock\/homelab-k3s-join\.lock sh -c ('(?:[^']|'\\'')*')$/s.exec(
        command
      )
    if (locked !== null) return this.locked(unquote(locked[1] as string))
    if (command === "sudo -n install -D -m 600 /dev/stdin /etc/rancher/k3s/config.yaml") {
      this.configWritten = true
      return ok()
    }
    if (command.startsWith("curl -sfL https://get.k3s.io -o ")) {
      const code = this.behaviour.downloadExitCode ?? 0
      return code === 0 ? ok() : err("", code)
    }
    if (command.startsWith("sudo -n install -m 755 ") && command.endsWith(" /usr/local/bin/k3s")) return ok()
    if (command.startsWith("rm -f ")) return ok()
    const install = /^sudo -n env (.*?) sh (\S+) (agent|server) /.exec(command)
    if (install !== null) {
      if (this.behaviour.installFails === true) {
        return { stdout: "[INFO]  Using v1.30.5+k3s1 as release\n", stderr: "[ERROR]  Download failed\n", exitCode: 1 }
      }
      this.installCommand = command
      const role = install[3] as "server" | "agent"
      this.unit = role === "server" ? "k3s" : "k3s-agent"
      const env = install[1] as string
      const version = /INSTALL_K3S_VERSION=(\S+)/.exec(env)?.[1] ?? "?"
      const skipDownload = env.includes("INSTALL_K3S_SKIP_DOWNLOAD=true")
      const uninstall = role === "server" ? "k3s-uninstall.sh" : "k3s-agent-uninstall.sh"
      const lines = [
        ...(skipDownload
          ? ["[INFO]  Skipping k3s download and verify"]
          : [
              `[INFO]  Using ${version} as release`,
              `[INFO]  Downloading hash https://github.com/k3s-io/k3s/releases/download/${version}/sha256sum-amd64.txt`,
              `[INFO]  Downloading binary https://github.com/k3s-io/k3s/releases/download/${version}/k3s`,
              "[INFO]  Verifying binary download",
              "[INFO]  Installing k3s to /usr/local/bin/k3s"
            ]),
        "[INFO]  Skipping installation of SELinux RPM",
        "[INFO]  Creating /usr/local/bin/kubectl symlink to k3s",
        "[INFO]  Creating /usr/local/bin/crictl symlink to k3s",
        "[INFO]  Creating /usr/local/bin/ctr symlink to k3s",
        "[INFO]  Creating killall script /usr/local/bin/k3s-killall.sh",
        `[INFO]  Creating uninstall script /usr/local/bin/${uninstall}`,
        `[INFO]  env: Creating environment file /etc/systemd/system/${this.unit}.service.env`,
        `[INFO]  systemd: Creating service file /etc/systemd/system/${this.unit}.service`,
        `[INFO]  systemd: Enabling ${this.unit} unit`
      ]
      return {
        stdout: `${lines.join("\n")}\n`,
        stderr: `Created symlink /etc/systemd/system/multi-user.target.wants/${this.unit}.service → /etc/systemd/system/${this.unit}.service.\n`,
        exitCode: 0
      }
    }
    const both = /^(systemctl is-active (?:k3s|k3s-agent)); (sudo -n journalctl .*)$/.exec(command)
    if (both !== null) {
      // as sh runs `a; b`: both outputs, b's exit code
      const [first, second] = [this.handler(both[1] as string), this.handler(both[2] as string)]
      return {
        stdout: `${first?.stdout ?? ""}${second?.stdout ?? ""}`,
        stderr: `${first?.stderr ?? ""}${second?.stderr ?? ""}`,
        exitCode: second?.exitCode ?? 0
      }
    }
    const active = /^systemctl is-active (k3s|k3s-agent)$/.exec(command)
    if (active !== null) {
      if (active[1] === this.unit) this.step?.()
      const state = active[1] === this.unit ? this.state : "inactive"
      return { stdout: `${state}\n`, exitCode: state === "active" ? 0 : 3 }
    }
    const start = /^sudo -n systemctl (start|restart) --no-block (k3s|k3s-agent)$/.exec(command)
    if (start !== null) {
      if (start[2] !== this.unit) {
        return err(`Failed to ${start[1]} ${start[2]}.service: Unit ${start[2]}.service not found.\n`, 5)
      }
      this.start()
      return ok()
    }
    const logs = /^sudo -n journalctl -u (k3s|k3s-agent) --no-pager -n 200 -o cat$/.exec(command)
    if (logs !== null) {
      const lines = logs[1] === this.unit || this.unit === undefined ? this.journal.slice(-200) : []
      // journald caught up: what was behind is there from the next read on
      if (this.behind !== undefined) this.journal.push(...this.behind)
      this.behind = undefined
      return ok(lines.length === 0 ? "-- No entries --\n" : `${lines.join("\n")}\n`)
    }
    return err(`sh: 1: ${command.split(" ")[0]}: not found\n`, 127)
  }
}
