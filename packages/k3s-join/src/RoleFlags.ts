/**
 * Which `k3s` command takes a flag. `k3s server` runs an agent as well and takes the agent's flags (all but one) besides
 * its own; `k3s agent` takes only its own. A flag its command does not define stops k3s as it starts (urfave/cli:
 * `Incorrect Usage: flag provided but not defined: -disable`, then `level=fatal`), so systemd restarts the unit every
 * 5 s and the node never comes up (k3s-io/k3s#1523, #6565, #9598).
 *
 * From k3s-io/k3s `pkg/cli/cmds/server.go` (`ServerFlags`) and `pkg/cli/cmds/agent.go` (`NewAgentCommand`), and the
 * CLI help in k3s-io/docs `docs/cli/server.md` and `docs/cli/agent.md` (v1.31+). A flag in neither list (one a newer
 * k3s added, or a typo) is not judged here. Pure.
 *
 * @since 0.5.0
 */
import type { Role } from "./InstallCommand.js"

/**
 * Flags only `k3s server` defines, without their dashes (`-o` is `--write-kubeconfig`): the control plane, the
 * datastore and etcd, the cluster's network, the packaged components, the admin kubeconfig. Every `--etcd-*` flag is
 * one too (`SERVER_ONLY_PREFIXES`).
 *
 * @since 0.5.0
 * @category flags
 */
export const SERVER_ONLY_FLAGS: ReadonlyArray<string> = [
  // listener
  "https-listen-port",
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
  // control-plane components' own flags
  "kube-apiserver-arg",
  "kube-controller-manager-arg",
  "kube-scheduler-arg",
  "kube-cloud-controller-manager-arg",
  "kube-controller-arg",
  "kube-cloud-controller-arg",
  // datastore
  "datastore-endpoint",
  "datastore-cafile",
  "datastore-certfile",
  "datastore-keyfile",
  "kine-tls",
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
 * Name prefixes of flags only `k3s server` defines: `--etcd-arg`, `--etcd-expose-metrics`, `--etcd-snapshot-*`,
 * `--etcd-s3-*` (k3s adds more of them from release to release; none is an agent flag).
 *
 * @since 0.5.0
 * @category flags
 */
export const SERVER_ONLY_PREFIXES: ReadonlyArray<string> = ["etcd-"]

/**
 * Flags only `k3s agent` defines, without their dashes: a server's agent always talks to its own supervisor.
 *
 * @since 0.5.0
 * @category flags
 */
export const AGENT_ONLY_FLAGS: ReadonlyArray<string> = ["disable-apiserver-lb"]

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

/**
 * The only command that takes the flag (`"server"` for `--disable=traefik`, `"agent"` for `--disable-apiserver-lb`),
 * or `undefined` when both take it or it is in neither list.
 *
 * @since 0.5.0
 * @category flags
 */
export const onlyCommandOf = (word: string): Role | undefined => {
  const name = bareFlagName(word)
  if (name === undefined) return undefined
  if (SERVER_ONLY_FLAGS.includes(name) || SERVER_ONLY_PREFIXES.some((p) => name.startsWith(p))) return "server"
  if (AGENT_ONLY_FLAGS.includes(name)) return "agent"
  return undefined
}

/**
 * The flags of `words` that `k3s <command>` does not define (each once, as `--name`, or `-o` for a short one): an agent given `--disable` or
 * `--cluster-cidr`, a server given `--disable-apiserver-lb`. Values (words that are no flag) are passed over.
 *
 * @since 0.5.0
 * @category flags
 */
export const flagsNotDefinedFor = (command: Role, words: ReadonlyArray<string>): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (const word of words) {
    const only = onlyCommandOf(word)
    if (only === undefined || only === command) continue
    const bare = bareFlagName(word) as string
    const name = bare.length === 1 ? `-${bare}` : `--${bare}`
    if (!out.includes(name)) out.push(name)
  }
  return out
}
