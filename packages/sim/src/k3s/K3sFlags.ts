/**
 * The flags `k3s agent` and `k3s server` define (k3s-io/k3s `pkg/cli/cmds/agent.go` `NewAgentCommand`,
 * `pkg/cli/cmds/server.go` `ServerFlags`, with the shared ones from `log.go`, `config.go` and `root.go`; the flags
 * added with urfave/cli v2 (v1.33 on) from rancher/rke2's map of every k3s flag, `pkg/cli/cmds/{server,agent}.go`),
 * each name without its dashes, aliases as names of their own. The union over k3s v1.28 to v1.36: the simulated k3s
 * takes a flag any of those releases defines. The flags k3s v1.26 removed (`--no-deploy`, `--no-flannel`,
 * `--cluster-secret`, `--disable-selinux`, k3s-io/k3s#6574) are not defined.
 *
 * What k3s does with a flag its command does not define:
 * - on the command line (the unit's `ExecStart`): urfave/cli prints `Incorrect Usage: flag provided but not defined:
 *   -<name>` and the command's help, k3s exits with `level=fatal msg="flag provided but not defined: -<name>"`, and
 *   systemd restarts it every 5 s, forever (k3s-io/k3s#1523, #6565, #9598);
 * - in `config.yaml`: configfilearg drops it with `Unknown flag --<name> found in config.yaml, skipping` and k3s starts.
 */

/** Shared by both commands: config, logging. */
const COMMON = ["config", "c", "debug", "v", "vmodule", "log", "l", "alsologtostderr"]

/** Defined by both: what a server's own agent takes as well. */
const BOTH = [
  "token",
  "t",
  "token-file",
  "server",
  "s",
  "data-dir",
  "d",
  "bind-address",
  "node-name",
  "with-node-id",
  "node-label",
  "node-taint",
  "image-credential-provider-bin-dir",
  "image-credential-provider-config",
  "selinux",
  "lb-server-port",
  "protect-kernel-defaults",
  "container-runtime-endpoint",
  "default-runtime",
  "image-service-endpoint",
  "pause-image",
  "snapshotter",
  "private-registry",
  "disable-default-registry-endpoint",
  "nonroot-devices",
  "airgap-extra-registry",
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
  "kubelet-arg",
  "kube-proxy-arg",
  "enable-pprof",
  "rootless",
  "prefer-bundled-bin",
  "docker"
]

const AGENT_ONLY = ["disable-apiserver-lb"]

const SERVER_ONLY = [
  "https-listen-port",
  "supervisor-port",
  "apiserver-port",
  "apiserver-bind-address",
  "advertise-address",
  "advertise-port",
  "tls-san",
  "tls-san-security",
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
  "write-kubeconfig",
  "o",
  "write-kubeconfig-mode",
  "write-kubeconfig-group",
  "helm-job-image",
  "agent-token",
  "agent-token-file",
  "cluster-init",
  "cluster-reset",
  "cluster-reset-restore-path",
  "kube-apiserver-arg",
  "etcd-arg",
  "kube-controller-manager-arg",
  "kube-scheduler-arg",
  "kube-cloud-controller-manager-arg",
  "helm-controller-arg",
  "kine-tls",
  "datastore-endpoint",
  "datastore-cafile",
  "datastore-certfile",
  "datastore-keyfile",
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
  "default-local-storage-path",
  "disable",
  "disable-scheduler",
  "disable-cloud-controller",
  "disable-kube-proxy",
  "disable-network-policy",
  "disable-helm-controller",
  "embedded-registry",
  "supervisor-metrics",
  "system-default-registry",
  "secrets-encryption",
  "secrets-encryption-provider",
  // hidden
  "disable-agent",
  "disable-apiserver",
  "disable-controller-manager",
  "disable-etcd",
  "kube-controller-arg",
  "kube-cloud-controller-arg"
]

const DEFINED: Readonly<Record<"server" | "agent", ReadonlySet<string>>> = {
  agent: new Set([...COMMON, ...BOTH, ...AGENT_ONLY]),
  server: new Set([...COMMON, ...BOTH, ...SERVER_ONLY])
}

/** Every flag `k3s <command>` defines, by its bare name (`disable`, `o`). */
export const definedFlags = (command: "server" | "agent"): ReadonlySet<string> => DEFINED[command]

/** `--disable=traefik` / `-disable` → `disable`, as Go's `flag` reads a name; undefined for a word that is no flag. */
export const flagNameOf = (word: string): string | undefined => {
  const m = /^-{1,2}([^-=][^=]*)/.exec(word)
  return m === null ? undefined : (m[1] as string)
}

/** Whether `k3s <command>` defines the flag (by its bare name). */
export const defines = (command: string, name: string): boolean =>
  command === "server" || command === "agent" ? DEFINED[command].has(name) : true

/**
 * The first flag of a command line (`ExecStart` after the command word) that `k3s <command>` does not define, by its
 * bare name: what stops k3s before it logs anything else. Words that are no flag (values) are passed over.
 */
export const firstUndefinedFlag = (command: string, words: ReadonlyArray<string>): string | undefined => {
  for (const word of words) {
    const name = flagNameOf(word)
    if (name !== undefined && !defines(command, name)) return name
  }
  return undefined
}

/**
 * urfave/cli's answer to an undefined flag, before k3s's fatal line: the usage error and the head of the command's
 * help (its OPTIONS list is left out here).
 */
export const incorrectUsage = (command: "server" | "agent", name: string): ReadonlyArray<string> => [
  `Incorrect Usage: flag provided but not defined: -${name}`,
  "NAME:",
  command === "agent" ? "   k3s agent - Run node agent" : "   k3s server - Run management server",
  "USAGE:",
  `   k3s ${command} [OPTIONS]`,
  "OPTIONS:"
]
