/**
 * The flags `k3s server` and `k3s agent` define, as data: which command takes which flag. `k3s server` runs an agent as
 * well and takes the agent's flags (all but one) besides its own; `k3s agent` takes only its own. A flag its command
 * does not define stops k3s as it starts (urfave/cli: `Incorrect Usage: flag provided but not defined: -disable`, then
 * `level=fatal`), so systemd restarts the unit every 5 s and the node never comes up (k3s-io/k3s#1523, #6565, #9598).
 *
 * Where the lists come from: k3s-io/k3s `pkg/cli/cmds/server.go` (`ServerFlags`), `pkg/cli/cmds/agent.go`
 * (`NewAgentCommand`) and the shared flags they include from `log.go` (`-v`, `--vmodule`, `--log`/`-l`,
 * `--alsologtostderr`), `config.go` (`--config`/`-c`), `root.go` (`--debug`, `--prefer-bundled-bin`), read at the
 * v1.29 (urfave/cli v1) and v1.31 states of those files; the flags added since (urfave/cli v2, v1.33 on) from
 * rancher/rke2's map of every k3s server and agent flag (`pkg/cli/cmds/{server,agent}.go`, `mustCmdFromK3S`, which
 * refuses a k3s flag it does not list) and the v1.33.5 CLI help; k3s-io/docs `docs/cli/{server,agent}.md`.
 *
 * Which k3s: **v1.28 to v1.36** (`K3S_FLAG_RELEASES`), the union over them: a flag one of those releases defines is
 * accepted, so a flag newer than the release a cluster runs (`--etcd-s3-retention` on v1.30) is not caught here. Hidden
 * and deprecated flags k3s still parses (`--kube-controller-arg`, `--disable-agent`, `--airgap-extra-registry`,
 * `--kine-tls`, `--docker`, …) are in the lists; the ones k3s v1.26 removed (k3s-io/k3s#6574: `--no-deploy`,
 * `--no-flannel`, `--cluster-secret`, `--disable-selinux`) are not, and `REMOVED_FLAGS` says what replaced them.
 *
 * Names are written without dashes (Go's `flag` reads `-name` and `--name` alike); one-letter aliases are names of
 * their own (`o` is `write-kubeconfig`). Pure.
 *
 * @since 0.5.0
 */
import type { Role } from "./InstallCommand.js"
import { parseK3sVersion } from "./Versions.js"

/**
 * The k3s releases these lists cover.
 *
 * @since 0.6.0
 * @category flags
 */
export const K3S_FLAG_RELEASES = "v1.28 to v1.36"

/**
 * The newest k3s release these lists cover: a newer one may define flags they do not know (`flagListsCover`).
 *
 * @since 0.7.0
 * @category flags
 */
export const K3S_FLAG_NEWEST_RELEASE = "v1.36"

const NEWEST_MINOR = 36

/**
 * Whether these lists cover k3s `version` (`v1.31.5+k3s1`): every release up to v1.36 (older ones define no flag the
 * lists lack; the flags v1.26 removed are `REMOVED_FLAGS`). A newer release may define flags the lists do not know,
 * so a flag they do not know is left to that k3s to judge (it stops at start on one it does not define). A version
 * that is no k3s version is taken as covered.
 *
 * @since 0.7.0
 * @category flags
 */
export const flagListsCover = (version: string): boolean => {
  const parsed = parseK3sVersion(version)
  return parsed === undefined || parsed.major < 1 || (parsed.major === 1 && parsed.minor <= NEWEST_MINOR)
}

/**
 * Flags both commands define, without their dashes: config and logging, the cluster to join, the node, its container
 * runtime and networking, the kubelet's and kube-proxy's own flags.
 *
 * @since 0.6.0
 * @category flags
 */
export const SHARED_FLAGS: ReadonlyArray<string> = [
  // config.go, root.go, log.go
  "config",
  "c",
  "debug",
  "v",
  "vmodule",
  "log",
  "l",
  "alsologtostderr",
  // cluster
  "token",
  "t",
  "token-file",
  "server",
  "s",
  "data-dir",
  "d",
  "bind-address",
  // node
  "node-name",
  "with-node-id",
  "node-label",
  "node-taint",
  "image-credential-provider-bin-dir",
  "image-credential-provider-config",
  "selinux",
  "lb-server-port",
  "protect-kernel-defaults",
  // runtime
  "container-runtime-endpoint",
  "default-runtime",
  "image-service-endpoint",
  "pause-image",
  "snapshotter",
  "private-registry",
  "disable-default-registry-endpoint",
  "nonroot-devices",
  "airgap-extra-registry",
  "docker",
  // networking
  "node-ip",
  "i",
  "node-external-ip",
  "node-internal-dns",
  "node-external-dns",
  "resolv-conf",
  "flannel-iface",
  "flannel-conf",
  "flannel-cni-conf",
  "vpn-auth",
  "vpn-auth-file",
  // the kubelet's and kube-proxy's flags
  "kubelet-arg",
  "kube-proxy-arg",
  // experimental
  "enable-pprof",
  "rootless",
  "prefer-bundled-bin"
]

/**
 * Flags only `k3s server` defines, without their dashes (`-o` is `--write-kubeconfig`): the control plane, the
 * datastore and etcd, the cluster's network, the packaged components, the admin kubeconfig.
 *
 * @since 0.5.0
 * @category flags
 */
export const SERVER_ONLY_FLAGS: ReadonlyArray<string> = [
  // listener
  "https-listen-port",
  "supervisor-port",
  "apiserver-port",
  "apiserver-bind-address",
  "advertise-address",
  "advertise-port",
  "tls-san",
  "tls-san-security",
  // networking (cluster-wide)
  "cluster-cidr",
  "service-cidr",
  "service-node-port-range",
  "cluster-dns",
  "cluster-domain",
  "flannel-backend",
  "flannel-ipv6-masq",
  "flannel-external-ip",
  "egress-selector-mode",
  "servicelb-namespace",
  // admin kubeconfig, helm
  "write-kubeconfig",
  "o",
  "write-kubeconfig-mode",
  "write-kubeconfig-group",
  "helm-job-image",
  // cluster
  "agent-token",
  "agent-token-file",
  "cluster-init",
  "cluster-reset",
  "cluster-reset-restore-path",
  // control-plane components' own flags (the last two: deprecated names, still parsed)
  "kube-apiserver-arg",
  "etcd-arg",
  "kube-controller-manager-arg",
  "kube-scheduler-arg",
  "kube-cloud-controller-manager-arg",
  "helm-controller-arg",
  "kube-controller-arg",
  "kube-cloud-controller-arg",
  // datastore
  "datastore-endpoint",
  "datastore-cafile",
  "datastore-certfile",
  "datastore-keyfile",
  "kine-tls",
  // etcd and its snapshots
  "etcd-expose-metrics",
  "etcd-disable-snapshots",
  "etcd-snapshot-name",
  "etcd-snapshot-schedule-cron",
  "etcd-snapshot-reconcile-interval",
  "etcd-snapshot-retention",
  "etcd-snapshot-dir",
  "etcd-snapshot-compress",
  "etcd-s3",
  "etcd-s3-endpoint",
  "etcd-s3-endpoint-ca",
  "etcd-s3-skip-ssl-verify",
  "etcd-s3-access-key",
  "etcd-s3-secret-key",
  "etcd-s3-session-token",
  "etcd-s3-bucket",
  "etcd-s3-bucket-lookup-type",
  "etcd-s3-region",
  "etcd-s3-folder",
  "etcd-s3-retention",
  "etcd-s3-proxy",
  "etcd-s3-config-secret",
  "etcd-s3-insecure",
  "etcd-s3-timeout",
  // storage, components
  "default-local-storage-path",
  "disable",
  "disable-scheduler",
  "disable-cloud-controller",
  "disable-kube-proxy",
  "disable-network-policy",
  "disable-helm-controller",
  "disable-apiserver",
  "disable-controller-manager",
  "disable-etcd",
  "disable-agent",
  "embedded-registry",
  "supervisor-metrics",
  "system-default-registry",
  "secrets-encryption",
  "secrets-encryption-provider"
]

/**
 * Flags only `k3s agent` defines, without their dashes: a server's agent always talks to its own supervisor.
 *
 * @since 0.5.0
 * @category flags
 */
export const AGENT_ONLY_FLAGS: ReadonlyArray<string> = ["disable-apiserver-lb"]

/**
 * Flags k3s v1.26 removed (k3s-io/k3s#6574; fatal since v1.25, k3s-io/k3s#6069), with what took their place: no k3s
 * these lists cover defines them.
 *
 * @since 0.6.0
 * @category flags
 */
export const REMOVED_FLAGS: ReadonlyArray<{ readonly name: string; readonly instead: string }> = [
  { name: "no-deploy", instead: "--disable" },
  { name: "no-flannel", instead: "--flannel-backend=none" },
  { name: "cluster-secret", instead: "--token" },
  { name: "disable-selinux", instead: "nothing (SELinux support is off unless --selinux is given)" }
]

/**
 * A flag's name without its dashes and value, as k3s's flag parser (Go's `flag`) reads it: `--disable=traefik`,
 * `-disable traefik` and `--disable` are all `disable`. `undefined` for a word that is no flag (a value).
 *
 * @since 0.5.0
 * @category flags
 */
export const bareFlagName = (word: string): string | undefined => {
  const trimmed = word.trim()
  if (!/^-{1,2}[^-=\s]/u.test(trimmed)) return undefined
  const bare = trimmed.replace(/^-{1,2}/u, "")
  const end = bare.search(/[=\s]/u)
  return end < 0 ? bare : bare.slice(0, end)
}

/** `--name`, or `-n` for a one-letter name. */
const dashed = (bare: string): string => (bare.length === 1 ? `-${bare}` : `--${bare}`)

/**
 * Whether `k3s <command>` defines the flag of `word` (`--disable=traefik`, `-o`, `disable`: a bare name is read as
 * one).
 *
 * @since 0.6.0
 * @category flags
 */
export const definesFlag = (command: Role, word: string): boolean => {
  const name = bareFlagName(word) ?? word
  return SHARED_FLAGS.includes(name) || (command === "server" ? SERVER_ONLY_FLAGS : AGENT_ONLY_FLAGS).includes(name)
}

/**
 * Every flag `k3s <command>` defines, dashed (`--disable`, `-o`): the candidates for a misspelt one.
 *
 * @since 0.6.0
 * @category flags
 */
export const k3sFlagsOf = (command: Role): ReadonlyArray<string> =>
  [...SHARED_FLAGS, ...(command === "server" ? SERVER_ONLY_FLAGS : AGENT_ONLY_FLAGS)].map(dashed)

/**
 * The removed flag of `word` and what replaced it, or `undefined`.
 *
 * @since 0.6.0
 * @category flags
 */
export const removedFlag = (word: string): { readonly name: string; readonly instead: string } | undefined => {
  const name = bareFlagName(word)
  const found = REMOVED_FLAGS.find((f) => f.name === name)
  return found === undefined ? undefined : { name: dashed(found.name), instead: found.instead }
}

/**
 * The only command that takes the flag (`"server"` for `--disable=traefik`, `"agent"` for `--disable-apiserver-lb`),
 * or `undefined` when both take it or neither does.
 *
 * @since 0.5.0
 * @category flags
 */
export const onlyCommandOf = (word: string): Role | undefined => {
  const name = bareFlagName(word)
  if (name === undefined) return undefined
  if (SERVER_ONLY_FLAGS.includes(name)) return "server"
  if (AGENT_ONLY_FLAGS.includes(name)) return "agent"
  return undefined
}

/**
 * The flags of `words` that `k3s <command>` does not define but the other command does (each once, as `--name`, or
 * `-o` for a short one): an agent given `--disable` or `--cluster-cidr`, a server given `--disable-apiserver-lb`.
 * Values (words that are no flag) are passed over, and so are flags neither command defines.
 *
 * @since 0.5.0
 * @category flags
 */
export const flagsNotDefinedFor = (command: Role, words: ReadonlyArray<string>): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (const word of words) {
    const only = onlyCommandOf(word)
    if (only === undefined || only === command) continue
    const name = dashed(bareFlagName(word) as string)
    if (!out.includes(name)) out.push(name)
  }
  return out
}

/**
 * The flags of `words` that no k3s command defines (each once, dashed as written: `--node-lable`), a typo or a removed
 * flag: `k3s server` and `k3s agent` alike would stop at every start. Values are passed over.
 *
 * @since 0.6.0
 * @category flags
 */
export const unknownFlags = (words: ReadonlyArray<string>): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (const word of words) {
    const name = bareFlagName(word)
    if (name === undefined || definesFlag("server", name) || definesFlag("agent", name)) continue
    const shown = dashed(name)
    if (!out.includes(shown)) out.push(shown)
  }
  return out
}
