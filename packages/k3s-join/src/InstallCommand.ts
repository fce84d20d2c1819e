/**
 * The exact command lines sent to hosts (k3s.md §8.2). Pure string builders: every interpolated value goes through
 * `shellQuote`, and no command ever contains a token (tokens travel on stdin into a root-only file).
 *
 * @since 0.1.0
 */
import { shellCommand } from "@homelab/ssh"
import { Redacted } from "effect"

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
 * `sudo -n systemctl start --no-block <unit>` (or `restart` when the unit is already running with an older
 * configuration). Never blocks on a unit that cannot become ready (`Type=notify`, `TimeoutStartSec=0`).
 *
 * @since 0.1.0
 * @category commands
 */
export const startCommand = (role: Role, restart = false): string =>
  shellCommand(["sudo", "-n", "systemctl", restart ? "restart" : "start", "--no-block", unitName(role)])

/** @since 0.1.0 @category commands */
export const journalCommand = (role: Role, lines = 200): string =>
  shellCommand(["sudo", "-n", "journalctl", "-u", unitName(role), "--no-pager", "-n", String(lines), "-o", "cat"])

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
 * is set by the library.
 *
 * @since 0.1.0
 * @category commands
 */
export const checkFlags = (flags: ReadonlyArray<string>): string | undefined => {
  for (const flag of flags) {
    const name = flag.split("=")[0] as string
    if (FORBIDDEN.includes(name)) return `the flag ${name} is not allowed for a join`
    if (name === "--token-file" || name === "--agent-token-file") return `the flag ${name} is managed by the library`
    if (name === "--with-node-id") return "--with-node-id is not supported: membership is checked by node name"
  }
  return undefined
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
