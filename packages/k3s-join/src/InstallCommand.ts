/**
 * The exact command lines sent to hosts (k3s.md §8.2). Pure string builders: every interpolated value goes through
 * `shellQuote`, and no command ever contains a token (tokens travel on stdin into a root-only file).
 *
 * @since 0.1.0
 */
import { shellCommand } from "@homelab/ssh"
import * as Redacted from "effect/Redacted"
import { flagsNotDefinedFor } from "./RoleFlags.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Role = "server" | "agent"

/** Absolute path of the k3s binary (sudo's `secure_path` may not contain `/usr/local/bin`). */
export const K3S_BIN = "/usr/local/bin/k3s"
/** Where the join token is written (mode 0600, root), read by k3s at start. */
export const CONFIG_PATH = "/etc/rancher/k3s/config.yaml"
/** Default location of the downloaded (or uploaded) install script. */
export const INSTALL_SCRIPT_PATH = "/tmp/k3s-install.sh"
/** Default install script URL. */
export const INSTALL_SCRIPT_URL = "https://get.k3s.io"

/**
 * The systemd unit of a role: `k3s` for servers, `k3s-agent` for agents.
 *
 * @since 0.1.0
 * @category commands
 */
export const unitName = (role: Role): "k3s" | "k3s-agent" => (role === "server" ? "k3s" : "k3s-agent")

/**
 * `https://<host>:6443` (IPv6 literals in brackets).
 *
 * @since 0.1.0
 * @category commands
 */
export const serverUrl = (host: string, port = 6443): string =>
  `https://${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`

/**
 * Token files on a server, in the order tried for a role: servers need `token` (the server token); agents use
 * `agent-token` (a symlink to `token` unless a separate agent token is configured), then `node-token`, then `token`.
 *
 * @since 0.1.0
 * @category commands
 */
export const tokenPaths = (role: Role): ReadonlyArray<string> =>
  role === "server"
    ? ["/var/lib/rancher/k3s/server/token"]
    : [
        "/var/lib/rancher/k3s/server/agent-token",
        "/var/lib/rancher/k3s/server/node-token",
        "/var/lib/rancher/k3s/server/token"
      ]

/**
 * `sudo -n cat <path>`.
 *
 * @since 0.1.0
 * @category commands
 */
export const readTokenCommand = (path: string): string => shellCommand(["sudo", "-n", "cat", path])

/**
 * `sudo -n /usr/local/bin/k3s kubectl <args…>`.
 *
 * @since 0.1.0
 * @category commands
 */
export const kubectlCommand = (args: ReadonlyArray<string>): string =>
  shellCommand(["sudo", "-n", K3S_BIN, "kubectl", ...args])

/** @since 0.1.0 @category commands */
export const getNodesCommand = (): string => kubectlCommand(["get", "nodes", "-o", "json"])

/** @since 0.1.0 @category commands */
export const getNodeCommand = (name: string): string => kubectlCommand(["get", "node", name, "-o", "json"])

/** @since 0.1.0 @category commands */
export const deleteNodeCommand = (name: string): string =>
  kubectlCommand(["delete", "node", name, "--ignore-not-found"])

/** @since 0.1.0 @category commands */
export const deleteNodePasswordCommand = (name: string): string =>
  kubectlCommand(["-n", "kube-system", "delete", "secret", `${name}.node-password.k3s`, "--ignore-not-found"])

/** @since 0.1.0 @category commands */
export const versionCommand = (): string => shellCommand([K3S_BIN, "--version"])

/** @since 0.1.0 @category commands */
export const hostnameCommand = (): string => "hostname"

/** @since 0.1.0 @category commands */
export const isActiveCommand = (role: Role): string => shellCommand(["systemctl", "is-active", unitName(role)])

/**
 * `sudo -n systemctl enable --now --no-block <unit>`: starts the unit and enables it, so that it starts at the VM's
 * next boot too (a unit found stopped may be one that did not start at boot because it was disabled, as install.sh
 * enables it); or `restart` when the unit is already running with an older configuration. Never blocks on a unit that
 * cannot become ready (`Type=notify`, `TimeoutStartSec=0`).
 *
 * @since 0.1.0
 * @category commands
 */
export const startCommand = (role: Role, restart = false): string =>
  shellCommand(
    restart
      ? ["sudo", "-n", "systemctl", "restart", "--no-block", unitName(role)]
      : ["sudo", "-n", "systemctl", "enable", "--now", "--no-block", unitName(role)]
  )

/** @since 0.1.0 @category commands */
export const journalCommand = (role: Role, lines = 200): string =>
  shellCommand(["sudo", "-n", "journalctl", "-u", unitName(role), "--no-pager", "-n", String(lines), "-o", "cat"])

/**
 * The unit's state and its journal in one command (`systemctl is-active <unit>; sudo -n journalctl …`): what a wait
 * for a joining host reads at each poll, one SSH session instead of two. Its exit code is journalctl's.
 *
 * @since 0.6.1
 * @category commands
 */
export const unitJournalCommand = (role: Role, lines = 200): string =>
  `${isActiveCommand(role)}; ${journalCommand(role, lines)}`

/** What `systemctl is-active` prints (one word per unit). */
const UNIT_STATES = /^(active|inactive|failed|activating|deactivating|reloading|refreshing|maintenance|unknown)$/

/**
 * What `unitJournalCommand` printed: the unit's state (its first line; `unknown` when systemctl printed none of its
 * words) and the journal's output (the rest).
 *
 * @since 0.6.1
 * @category commands
 */
export const parseUnitJournal = (stdout: string): { readonly unitState: string; readonly journal: string } => {
  const end = stdout.indexOf("\n")
  const first = (end < 0 ? stdout : stdout.slice(0, end)).trim()
  return UNIT_STATES.test(first)
    ? { unitState: first, journal: end < 0 ? "" : stdout.slice(end + 1) }
    : { unitState: "unknown", journal: stdout }
}

/**
 * Writes stdin to a root-only file: `sudo -n install -D -m 600 /dev/stdin <path>`. The token is sent as stdin.
 *
 * @since 0.1.0
 * @category commands
 */
export const writeRootFileCommand = (path: string): string =>
  shellCommand(["sudo", "-n", "install", "-D", "-m", "600", "/dev/stdin", path])

/**
 * The content of `/etc/rancher/k3s/config.yaml` carrying the token (k3s reads `token:` from it at start).
 *
 * @since 0.1.0
 * @category commands
 */
export const configYaml = (token: Redacted.Redacted<string>): Redacted.Redacted<string> =>
  Redacted.make(`# written by @homelab/k3s-join\ntoken: ${JSON.stringify(Redacted.value(token))}\n`)

/**
 * `curl -sfL <url> -o <path>`: the script is downloaded to a file first so that a failed download is an exit code,
 * not an empty script run by `sh` with status 0.
 *
 * @since 0.1.0
 * @category commands
 */
export const downloadScriptCommand = (url = INSTALL_SCRIPT_URL, path = INSTALL_SCRIPT_PATH): string =>
  shellCommand(["curl", "-sfL", url, "-o", path])

/**
 * Copies an uploaded binary into place: `sudo -n install -m 755 <uploaded> /usr/local/bin/k3s`.
 *
 * @since 0.1.0
 * @category commands
 */
export const installBinaryCommand = (uploaded: string): string =>
  shellCommand(["sudo", "-n", "install", "-m", "755", uploaded, K3S_BIN])

/** @since 0.1.0 @category commands */
export const removeFileCommand = (path: string): string => shellCommand(["rm", "-f", path])

/**
 * What to install.
 *
 * @since 0.1.0
 * @category models
 */
export interface InstallSpec {
  readonly role: Role
  /** Address (IP or DNS name in the server certificate's SANs) of an existing server. */
  readonly server: string
  readonly serverPort?: number | undefined
  /** Pinned k3s version, e.g. `v1.30.5+k3s1`. */
  readonly version: string
  /** Extra k3s flags, one word per element (e.g. `["--write-kubeconfig-mode", "644", "--disable=traefik"]`). */
  readonly flags?: ReadonlyArray<string> | undefined
  /** Passed as `--node-name` when given. */
  readonly nodeName?: string | undefined
  /** The binary is already in place (`INSTALL_K3S_SKIP_DOWNLOAD=true`). */
  readonly airgap?: boolean | undefined
  readonly scriptPath?: string | undefined
}

/** Flags that must never be passed: they would re-init a cluster or put a secret on the command line. */
const FORBIDDEN = ["--cluster-init", "--token", "-t", "--agent-token", "--cluster-reset", "--server", "-s"]

/**
 * Why a flag list is rejected, or `undefined` when it is fine. `--cluster-init`/`--cluster-reset` would start or
 * reset a cluster instead of joining; `--token`/`--agent-token` would put a secret on a command line; `--server`
 * is set by the library. With `role`, a flag that `k3s <role>` does not define is rejected too (`--disable` for an
 * agent, `--disable-apiserver-lb` for a server: `RoleFlags`): k3s would stop at every start of the unit.
 *
 * @since 0.1.0
 * @category commands
 */
export const checkFlags = (flags: ReadonlyArray<string>, role?: Role): string | undefined => {
  for (const flag of flags) {
    const name = flag.split("=")[0] as string
    if (FORBIDDEN.includes(name)) return `the flag ${name} is not allowed for a join`
    if (name === "--token-file" || name === "--agent-token-file") return `the flag ${name} is managed by the library`
    if (name === "--with-node-id") return "--with-node-id is not supported: membership is checked by node name"
  }
  if (role === undefined) return undefined
  const foreign = flagsNotDefinedFor(role, flags)
  if (foreign.length === 0) return undefined
  const other = role === "agent" ? "server" : "agent"
  const them = foreign.length === 1 ? "it" : "them"
  return `k3s ${role} does not define ${foreign.join(", ")} (${foreign.length === 1 ? "a flag" : "flags"} of k3s ${other} only): it would stop at every start ("flag provided but not defined") and the node would never join; give ${them} to ${other}s only`
}

/**
 * Splits a flag string (`"--write-kubeconfig-mode 644 --disable=traefik"`) into words; arrays are kept as given.
 *
 * @since 0.1.0
 * @category commands
 */
export const normalizeFlags = (flags: string | ReadonlyArray<string> | undefined): ReadonlyArray<string> =>
  flags === undefined ? [] : typeof flags === "string" ? flags.split(/\s+/).filter((w) => w !== "") : flags

/**
 * The install command:
 * `sudo -n env INSTALL_K3S_VERSION=<v> INSTALL_K3S_SKIP_START=true [INSTALL_K3S_SKIP_DOWNLOAD=true] sh <script>
 * <agent|server> --server https://<server>:6443 [--node-name <n>] <flags…>`. The role word is always explicit, the
 * unit is not started (the caller starts it without blocking), and no token is on the line.
 *
 * @since 0.1.0
 * @category commands
 */
export const installCommand = (spec: InstallSpec): string => {
  const env = [
    `INSTALL_K3S_VERSION=${spec.version}`,
    "INSTALL_K3S_SKIP_START=true",
    ...(spec.airgap === true ? ["INSTALL_K3S_SKIP_DOWNLOAD=true"] : [])
  ]
  const args = [
    spec.role,
    "--server",
    serverUrl(spec.server, spec.serverPort),
    ...(spec.nodeName === undefined ? [] : ["--node-name", spec.nodeName]),
    ...(spec.flags ?? [])
  ]
  return shellCommand(["sudo", "-n", "env", ...env, "sh", spec.scriptPath ?? INSTALL_SCRIPT_PATH, ...args])
}

/**
 * The lock that serialises k3s installs on one host across processes (`flock(1)` on a file in `/run/lock`, gone at
 * reboot like the processes that could hold it).
 *
 * @since 0.2.0
 * @category commands
 */
export const LOCK_PATH = "/run/lock/homelab-k3s-join.lock"

/**
 * Where each locked install leaves its record (run, time, role, version): what a run that waited for the lock reports.
 *
 * @since 0.2.0
 * @category commands
 */
export const RECORD_PATH = "/run/homelab-k3s-join.last"

/** Exit status of `flock -w` when the lock stays held (`-E`). */
export const LOCK_CONFLICT_EXIT = 75

/** `lines` run by `sh` as root under the host's install lock (waiting at most `waitSeconds` for it). */
const underInstallLock = (waitSeconds: number, lines: ReadonlyArray<string>): string =>
  shellCommand([
    "sudo",
    "-n",
    "flock",
    "-w",
    String(waitSeconds),
    "-E",
    String(LOCK_CONFLICT_EXIT),
    "--verbose",
    LOCK_PATH,
    "sh",
    "-c",
    lines.join("\n")
  ])

/** Output markers of the locked install script. */
export const MARK = {
  acquired: "k3s-join: lock acquired",
  step: "k3s-join: step ",
  unchanged: "k3s-join: unchanged",
  /** something changed, and the restart is left to `restartHeldCommand` (`holdRestart`) */
  restartHeld: "k3s-join: restart held",
  /** `restartHeldCommand` restarted the unit */
  restarted: "k3s-join: restarted",
  /** `restartHeldCommand` found no restart pending (another run restarted the unit meanwhile) */
  notPending: "k3s-join: no restart pending"
} as const

/**
 * Marks a unit whose files an install changed while its restart was held (`holdRestart`) and not done yet: the next
 * install restarts it even when it changes nothing more. Under `/run` (a tmpfs): a reboot starts k3s with those files.
 *
 * @since 0.4.1
 * @category commands
 */
export const restartPendingPath = (role: Role): string => `/run/homelab-k3s-join.${unitName(role)}.restart`

/**
 * Who installed k3s on a host and with what (never the token).
 *
 * @since 0.2.0
 * @category models
 */
export interface InstallRecord {
  readonly run: string
  readonly at: string
  readonly role: Role
  readonly version: string
}

/** @since 0.2.0 @category commands */
export const formatRecord = (r: InstallRecord): string =>
  `k3s-join-record run=${encodeURIComponent(r.run)} at=${encodeURIComponent(r.at)} role=${r.role} version=${encodeURIComponent(r.version)}`

/** @since 0.2.0 @category commands */
export const parseRecord = (line: string): InstallRecord | undefined => {
  const m = /^k3s-join-record run=(\S+) at=(\S+) role=(server|agent) version=(\S+)$/.exec(line.trim())
  if (m === null) return undefined
  try {
    return {
      run: decodeURIComponent(m[1] as string),
      at: decodeURIComponent(m[2] as string),
      role: m[3] as Role,
      version: decodeURIComponent(m[4] as string)
    }
  } catch {
    return undefined
  }
}

/**
 * Whether the install record found under the host's lock (`previous`) is another run's install made during this run,
 * so that this run, which found exactly those inputs installed, did not do that work: the record changed since this
 * run read it before asking for the lock (`beforeLock`: that run installed while this one waited for the lock or was
 * on its way to it), or that run began its install no earlier than this run started (`runStartedAt`, epoch ms: both
 * runs were at the host at once). Any other record is history (an earlier run's install, this run's own, or none):
 * this run found the host as that install left it. The first test needs no clock; the second compares the other
 * run's clock with this one's. `beforeLock` undefined (the record could not be read then) leaves only the second.
 *
 * @since 0.3.0
 * @category commands
 */
export const installedDuringRun = (found: {
  readonly previous: InstallRecord | undefined
  readonly beforeLock: { readonly record: InstallRecord | undefined } | undefined
  readonly runId: string
  readonly runStartedAt: number
}): boolean => {
  const { previous, beforeLock } = found
  if (previous === undefined || previous.run === found.runId) return false
  const changed =
    beforeLock !== undefined &&
    (beforeLock.record === undefined || formatRecord(beforeLock.record) !== formatRecord(previous))
  const at = Date.parse(previous.at)
  return changed || (Number.isFinite(at) && at >= found.runStartedAt)
}

/**
 * What a host holds before an install asks for its lock: the install record and the state of the role's unit, in one
 * command (`cat /run/homelab-k3s-join.last; systemctl is-active <unit>`; neither needs root).
 *
 * @since 0.3.0
 * @category commands
 */
export const installedStateCommand = (role: Role): string =>
  `${shellCommand(["cat", RECORD_PATH])}; ${isActiveCommand(role)}`

/**
 * What `installedStateCommand` printed: the record (`undefined` when `cat` failed otherwise than on a missing file)
 * and the unit's state (`active`, `inactive`, `failed`, …; `unknown` when systemctl printed nothing).
 *
 * @since 0.3.0
 * @category commands
 */
export const parseInstalledState = (output: {
  readonly stdout: string
  readonly stderr: string
}): {
  readonly record: { readonly record: InstallRecord | undefined } | undefined
  readonly unitState: string
} => {
  const lines = output.stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
  const record = lines.map(parseRecord).find((r) => r !== undefined)
  const state = lines.filter((l) => parseRecord(l) === undefined).at(-1)
  const catFailed = output.stderr
    .split("\n")
    .some((l) => l.startsWith(`cat: ${RECORD_PATH}:`) && !l.includes("No such file or directory"))
  return { record: record === undefined && catFailed ? undefined : { record }, unitState: state ?? "unknown" }
}

/**
 * What one locked install does on the host.
 *
 * @since 0.2.0
 * @category models
 */
export interface LockedInstallSpec {
  readonly role: Role
  /** k3s arguments, the command word (`server`/`agent`) first. */
  readonly args: ReadonlyArray<string>
  readonly version: string
  readonly scriptPath: string
  /** Download the script from here (online); otherwise it was uploaded to `scriptPath` (airgap). */
  readonly downloadUrl?: string | undefined
  /** Airgap: the uploaded binary, put in place before install.sh runs with `INSTALL_K3S_SKIP_DOWNLOAD=true`. */
  readonly uploadedBinary?: string | undefined
  /** The token's config file arrives on stdin (joins); upgrades keep the existing one. */
  readonly writeConfig: boolean
  /** Keep the unit's environment file: install.sh regenerates it and would drop `K3S_*` variables (upgrades). */
  readonly keepEnv: boolean
  readonly record: InstallRecord
  /** How long to wait for another run's lock. */
  readonly lockWaitSeconds: number
  /**
   * When something changed, do not restart the unit: mark the restart pending (`restartPendingPath`) and say so
   * (`restartHeld`), so that the caller can check etcd's quorum first and then run `restartHeldCommand`. Default false.
   *
   * @since 0.4.1
   */
  readonly holdRestart?: boolean | undefined
}

const FILES_HASHED = (unit: string) => [
  K3S_BIN,
  `/etc/systemd/system/${unit}.service`,
  `/etc/systemd/system/${unit}.service.env`,
  CONFIG_PATH
]

/**
 * One SSH command that installs k3s under the host's install lock, so that two runs never install on one host at once:
 *
 * `sudo -n flock -w <s> -E 75 --verbose /run/lock/homelab-k3s-join.lock sh -c '<script>'`
 *
 * The script (`set -e`) writes the token's config file from stdin, prints the previous install's record, hashes the
 * binary, unit, env file and config (as install.sh does), downloads (or places) and runs install.sh with
 * `INSTALL_K3S_SKIP_START=true`, records this install, and then starts the unit without blocking — `restart` only when
 * something changed (or an earlier install's held restart is still pending), so a run that finds another run's
 * identical install leaves its join alone. With `holdRestart` a needed restart is marked pending instead. No token on
 * the line.
 *
 * @since 0.2.0
 * @category commands
 */
export const lockedInstallCommand = (spec: LockedInstallSpec): string => {
  const unit = unitName(spec.role)
  const q = shellCommand
  const envFile = `/etc/systemd/system/${unit}.service.env`
  const staged = `${CONFIG_PATH}.k3s-join`
  const pre = "/run/homelab-k3s-join.pre"
  const post = "/run/homelab-k3s-join.post"
  const savedEnv = "/run/homelab-k3s-join.env"
  const pending = restartPendingPath(spec.role)
  const hash = (to: string) => `${q(["sha256sum", ...FILES_HASHED(unit)])} > ${to} 2>&1 || true`
  const env = [
    `INSTALL_K3S_VERSION=${spec.version}`,
    "INSTALL_K3S_SKIP_START=true",
    ...(spec.downloadUrl === undefined ? ["INSTALL_K3S_SKIP_DOWNLOAD=true"] : [])
  ]
  const lines = [
    "set -e",
    ...(spec.writeConfig ? [q(["install", "-D", "-m", "600", "/dev/stdin", staged])] : []),
    q(["echo", MARK.acquired]),
    `${q(["cat", RECORD_PATH])} 2>/dev/null || true`,
    hash(pre),
    ...(spec.writeConfig ? [q(["mv", staged, CONFIG_PATH])] : []),
    ...(spec.keepEnv ? [q(["install", "-m", "600", envFile, savedEnv])] : []),
    ...(spec.downloadUrl !== undefined
      ? [q(["echo", `${MARK.step}download`]), q(["curl", "-sfL", spec.downloadUrl, "-o", spec.scriptPath])]
      : []),
    ...(spec.uploadedBinary !== undefined
      ? [q(["echo", `${MARK.step}binary`]), q(["install", "-m", "755", spec.uploadedBinary, K3S_BIN])]
      : []),
    q(["echo", `${MARK.step}install`]),
    q(["env", ...env, "sh", spec.scriptPath, ...spec.args]),
    ...(spec.keepEnv ? [q(["install", "-m", "600", savedEnv, envFile])] : []),
    `${q(["echo", formatRecord(spec.record)])} > ${RECORD_PATH}`,
    hash(post),
    q(["echo", `${MARK.step}start`]),
    `${q(["cmp", "-s", pre, post])} && ! ${q(["test", "-e", pending])} && ${q(["echo", MARK.unchanged])} && ${q(["systemctl", "start", "--no-block", unit])} || ${
      spec.holdRestart === true
        ? `${q(["echo", spec.record.run])} > ${pending}`
        : q(["systemctl", "restart", "--no-block", unit])
    }`,
    spec.holdRestart === true
      ? `${q(["test", "-e", pending])} && ${q(["echo", MARK.restartHeld])} || true`
      : q(["rm", "-f", pending])
  ]
  return underInstallLock(spec.lockWaitSeconds, lines)
}

/**
 * What the locked install's output says.
 *
 * @since 0.2.0
 * @category models
 */
export interface LockedInstallOutput {
  /** Seconds flock waited for the lock (`--verbose`). */
  readonly lockWaitMs: number | undefined
  readonly acquired: boolean
  /** The record the previous install on this host left (another run's, or an earlier one). */
  readonly previous: InstallRecord | undefined
  /** The last step the script announced (`download`, `binary`, `install`, `start`). */
  readonly lastStep: string | undefined
  /** Binary, unit, env file and config were already exactly this: the unit was only started if it was stopped. */
  readonly unchanged: boolean
  /**
   * Something changed and the restart was held (`holdRestart`): the unit runs as before, its restart is pending.
   *
   * @since 0.4.1
   */
  readonly restartHeld: boolean
}

/** @since 0.2.0 @category commands */
export const parseLockedInstallOutput = (stdout: string): LockedInstallOutput => {
  const lines = stdout.split("\n")
  const took = /^flock: getting lock took (\d+(?:\.\d+)?) seconds$/.exec(
    lines.find((l) => l.startsWith("flock: getting lock took")) ?? ""
  )
  const at = lines.indexOf(MARK.acquired)
  const firstStep = lines.findIndex((l) => l.startsWith(MARK.step))
  // the previous record is printed between the lock marker and the first step
  const between = at < 0 ? [] : lines.slice(at + 1, firstStep < 0 ? undefined : firstStep)
  const steps = lines.filter((l) => l.startsWith(MARK.step))
  return {
    lockWaitMs: took === null ? undefined : Math.round(Number(took[1]) * 1000),
    acquired: at >= 0,
    previous: between.map(parseRecord).find((r) => r !== undefined),
    lastStep: steps.at(-1)?.slice(MARK.step.length),
    unchanged: lines.includes(MARK.unchanged),
    restartHeld: lines.includes(MARK.restartHeld)
  }
}

/**
 * The restart an install held (`holdRestart`), under the host's install lock: only while it is still pending (another
 * run may have restarted the unit meanwhile: then `notPending`), without blocking, like the install's own restart.
 *
 * @since 0.4.1
 * @category commands
 */
export const restartHeldCommand = (spec: { readonly role: Role; readonly lockWaitSeconds: number }): string => {
  const q = shellCommand
  const pending = restartPendingPath(spec.role)
  const lines = [
    "set -e",
    q(["echo", MARK.acquired]),
    `${q(["test", "-e", pending])} || ${q(["echo", MARK.notPending])}`,
    `${q(["test", "-e", pending])} || exit 0`,
    q(["rm", "-f", pending]),
    q(["systemctl", "restart", "--no-block", unitName(spec.role)]),
    q(["echo", MARK.restarted])
  ]
  return underInstallLock(spec.lockWaitSeconds, lines)
}

/**
 * A restart of the unit under the host's install lock, without blocking, like the install's own restart: for a k3s
 * server that waits for one (it wrote the etcd tombstone: its member was removed, and only its next start joins it
 * again, as a new member).
 *
 * @since 0.9.0
 * @category commands
 */
export const restartUnitCommand = (spec: { readonly role: Role; readonly lockWaitSeconds: number }): string => {
  const q = shellCommand
  const lines = [
    "set -e",
    q(["echo", MARK.acquired]),
    q(["systemctl", "restart", "--no-block", unitName(spec.role)]),
    q(["echo", MARK.restarted])
  ]
  return underInstallLock(spec.lockWaitSeconds, lines)
}

/**
 * The install output a user needs: the lock's and this library's own trace lines (`flock: getting lock took…`, the
 * install record, the `k3s-join: …` step markers) left out, install.sh's and systemd's kept.
 *
 * @since 0.3.0
 * @category commands
 */
export const withoutTrace = (output: string): string =>
  output
    .split("\n")
    .filter((l) => !/^flock: /.test(l) && !l.startsWith("k3s-join: ") && !l.startsWith("k3s-join-record "))
    .join("\n")

/**
 * The unit file of a role: `cat /etc/systemd/system/<unit>.service` (world-readable).
 *
 * @since 0.2.0
 * @category commands
 */
export const readUnitCommand = (role: Role): string =>
  shellCommand(["cat", `/etc/systemd/system/${unitName(role)}.service`])

/**
 * The k3s arguments of a unit file's `ExecStart` (command word first), as install.sh wrote them: one argument per
 * continuation line, single-quoted (`'\''` for a quote).
 *
 * @since 0.2.0
 * @category commands
 */
export const parseExecStart = (unitFile: string): ReadonlyArray<string> | undefined => {
  const lines = unitFile.split("\n")
  const start = lines.findIndex(
    (l) => /^ExecStart=\S*k3s\s*\\?\s*$/.test(l.trim()) || /^ExecStart=\S*k3s\s/.test(l.trim())
  )
  if (start < 0) return undefined
  const args: Array<string> = []
  const first = (lines[start] as string).trim()
  let continued = first.endsWith("\\")
  const inline = first
    .replace(/^ExecStart=\S*k3s/, "")
    .replace(/\\$/, "")
    .trim()
  const word = (w: string) =>
    w.startsWith("'") && w.endsWith("'") && w.length >= 2 ? w.slice(1, -1).replaceAll("'\\''", "'") : w
  if (inline !== "") args.push(...inline.split(/\s+/).map(word))
  for (let i = start + 1; continued && i < lines.length; i++) {
    const raw = (lines[i] as string).trim()
    continued = raw.endsWith("\\")
    const w = raw.replace(/\\$/, "").trim()
    if (w !== "") args.push(word(w))
  }
  return args.length === 0 ? undefined : args
}

/** @since 0.2.0 @category commands */
export const cordonCommand = (name: string, cordon = true): string =>
  kubectlCommand([cordon ? "cordon" : "uncordon", name])

/**
 * `kubectl label node <n> <key>- …`: removes labels (kubectl says `label "<key>" not found.` for one not there, and
 * exits 0).
 *
 * @since 0.6.0
 * @category commands
 */
export const unlabelNodeCommand = (name: string, keys: ReadonlyArray<string>): string =>
  kubectlCommand(["label", "node", name, ...keys.map((k) => `${k}-`)])

/**
 * `kubectl taint node <n> <key>:<Effect>-` (remove: kubectl fails with `taint "…" not found` for one not there), or
 * `kubectl taint node <n> <key>=<value>:<Effect> … --overwrite` (add, or change the value of one with that key and
 * effect).
 *
 * @since 0.6.0
 * @category commands
 */
export const taintNodeCommand = (
  name: string,
  change: { readonly remove: string } | { readonly add: ReadonlyArray<string> }
): string => {
  if ("add" in change) return kubectlCommand(["taint", "node", name, ...change.add, "--overwrite"])
  // kubectl removes by key and effect: `key=value:Effect-` is no spec it takes
  const colon = change.remove.lastIndexOf(":")
  const key = (colon < 0 ? change.remove : change.remove.slice(0, colon)).split("=")[0] as string
  return kubectlCommand(["taint", "node", name, `${key}${colon < 0 ? "" : change.remove.slice(colon)}-`])
}

/**
 * `kubectl drain <n> --ignore-daemonsets --delete-emptydir-data --timeout=<s>s`: evictions go through
 * PodDisruptionBudgets; kubectl retries a blocked eviction every 5 s until the timeout.
 *
 * @since 0.2.0
 * @category commands
 */
export const drainCommand = (
  name: string,
  options: {
    readonly timeoutSeconds: number
    readonly ignoreDaemonsets?: boolean
    readonly deleteEmptyDirData?: boolean
  }
): string =>
  kubectlCommand([
    "drain",
    name,
    ...(options.ignoreDaemonsets === false ? [] : ["--ignore-daemonsets"]),
    ...(options.deleteEmptyDirData === false ? [] : ["--delete-emptydir-data"]),
    `--timeout=${Math.max(1, Math.ceil(options.timeoutSeconds))}s`
  ])

/**
 * `kubectl wait --for=<condition> node/<n> --timeout=<s>s` — one SSH session that returns when the condition holds
 * (`condition=Ready`, `delete`, `jsonpath={…}=value`).
 *
 * @since 0.2.0
 * @category commands
 */
export const waitNodeCommand = (name: string, condition: string, timeoutSeconds: number): string =>
  kubectlCommand(["wait", `--for=${condition}`, `node/${name}`, `--timeout=${Math.max(1, Math.ceil(timeoutSeconds))}s`])

/**
 * `kubectl delete node <n> --ignore-not-found --wait=false`: returns once the API accepted the deletion (the Node
 * may stay while its finalizers run; wait with `kubectl wait --for=delete`).
 *
 * @since 0.2.0
 * @category commands
 */
export const deleteNodeNoWaitCommand = (name: string): string =>
  kubectlCommand(["delete", "node", name, "--ignore-not-found", "--wait=false"])

/**
 * The etcd members from the k3s supervisor on the server itself (anonymous from localhost since
 * v1.27.14/v1.28.10/v1.29.5/v1.30.1): `curl -fsSk https://127.0.0.1:6443/db/info`.
 *
 * @since 0.2.0
 * @category commands
 */
export const dbInfoCommand = (): string => shellCommand(["curl", "-fsSk", "https://127.0.0.1:6443/db/info"])

/**
 * Where k3s keeps the name of the host's own etcd member (`<node>-<8 hex>`), once its etcd was initialised.
 *
 * @since 0.6.3
 * @category commands
 */
export const ETCD_NAME_PATH = "/var/lib/rancher/k3s/server/db/etcd/name"

/**
 * `sudo -n cat /var/lib/rancher/k3s/server/db/etcd/name`: the host's own etcd member, if it has one.
 *
 * @since 0.6.3
 * @category commands
 */
export const etcdNameCommand = (): string => shellCommand(["sudo", "-n", "cat", ETCD_NAME_PATH])

/**
 * `test -f /etc/systemd/system/<unit>.service`: exit 0 when install.sh left the unit of that role on the host.
 *
 * @since 0.3.0
 * @category commands
 */
export const unitFileExistsCommand = (role: Role): string =>
  shellCommand(["test", "-f", `/etc/systemd/system/${unitName(role)}.service`])

/** The channel server install.sh resolves `INSTALL_K3S_CHANNEL` with. @since 0.3.0 @category commands */
export const CHANNELS_URL = "https://update.k3s.io/v1-release/channels"

/**
 * `curl -sfL <channels URL>`: the update channels (`stable`, `latest`, one per minor like `v1.31`) with their newest
 * release, as JSON, fetched by a host of the cluster (the machine running homelab may have no route to it).
 *
 * @since 0.3.0
 * @category commands
 */
export const channelsCommand = (url = CHANNELS_URL): string => shellCommand(["curl", "-sfL", url])

/** @since 0.2.0 @category commands */
export const readKubeconfigCommand = (): string => shellCommand(["sudo", "-n", "cat", "/etc/rancher/k3s/k3s.yaml"])

/** Where install.sh downloads releases from (its default `GITHUB_URL`). @since 0.3.0 @category commands */
export const RELEASES_URL = "https://github.com/k3s-io/k3s/releases"

/**
 * The first file install.sh downloads for a pinned release: `<releases>/download/<version>/sha256sum-<arch>.txt`.
 * Every k3s release publishes it for each architecture, so the `amd64` one tells whether the release exists.
 *
 * @since 0.3.0
 * @category commands
 */
export const releaseFileUrl = (version: string, arch = "amd64"): string =>
  `${RELEASES_URL}/download/${version}/sha256sum-${arch}.txt`

/**
 * `curl -sSL -o /dev/null -w '%{http_code}' <release file>`: fetched by a host of the cluster, as install.sh would
 * (the machine running homelab may have no route to GitHub); prints the final HTTP status (`000` when nothing
 * answered).
 *
 * @since 0.3.0
 * @category commands
 */
export const releaseCheckCommand = (version: string): string =>
  shellCommand(["curl", "-sSL", "-o", "/dev/null", "-w", "%{http_code}", releaseFileUrl(version)])

/**
 * Whether a k3s release can be downloaded: `Published` (its checksum file answers 200), `Missing` (404: no such
 * release), or `Unreachable` (anything else: no route, a proxy, GitHub down) with what was seen.
 *
 * @since 0.3.0
 * @category models
 */
export type ReleaseStatus =
  | { readonly _tag: "Published"; readonly version: string }
  | { readonly _tag: "Missing"; readonly version: string; readonly url: string }
  | { readonly _tag: "Unreachable"; readonly version: string; readonly url: string; readonly detail: string }

/** @since 0.3.0 @category commands */
export const parseReleaseCheck = (
  version: string,
  result: { readonly exitCode: number | null; readonly stdout: string; readonly stderr: string }
): ReleaseStatus => {
  const url = releaseFileUrl(version)
  const status = result.stdout.trim()
  if (result.exitCode === 0 && status === "200") return { _tag: "Published", version }
  if (result.exitCode === 0 && status === "404") return { _tag: "Missing", version, url }
  const error = result.stderr.trim().split("\n").at(-1) ?? ""
  return {
    _tag: "Unreachable",
    version,
    url,
    detail:
      result.exitCode === 0
        ? `HTTP ${status}`
        : `curl exit code ${result.exitCode ?? "none"}${error === "" ? "" : `: ${error}`}`
  }
}
