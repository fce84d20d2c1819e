/** Realistic k3s data (shapes and strings from k3s.md §2, §4.3, §8.3). */

export const CA_HASH = "caeafdff11dad7691d1806694fd82b13c73667ea8fe25e95e2a26a95af0de7c0"
export const SERVER_PASSWORD = "d3ed21c2fcd1ea570e9209a68039827c"
export const SERVER_TOKEN = `K10${CA_HASH}::server:${SERVER_PASSWORD}`
export const BOOTSTRAP_TOKEN = `K10${CA_HASH}::q4bjus.7k1x6b1fz0d72prp`

export interface NodeSpec {
  readonly name: string
  readonly ip: string
  readonly role: "server" | "agent"
  readonly ready?: "True" | "False" | "Unknown" | undefined
  readonly version?: string | undefined
  readonly uuid?: string | undefined
  readonly master?: boolean | undefined
  readonly deleting?: boolean | undefined
  /** Put the Ready condition first (order must not matter). */
  readonly readyFirst?: boolean | undefined
}

const condition = (type: string, status: string, reason: string, message: string) => ({
  lastHeartbeatTime: "2024-05-23T11:26:46Z",
  lastTransitionTime: "2024-05-14T16:59:08Z",
  message,
  reason,
  status,
  type
})

/** A Node object as `kubectl get node -o json` prints it. */
export const nodeJson = (spec: NodeSpec): Record<string, unknown> => {
  const ready = spec.ready ?? "True"
  const version = spec.version ?? "v1.30.5+k3s1"
  const readyCondition =
    ready === "True"
      ? condition("Ready", "True", "KubeletReady", "kubelet is posting ready status. AppArmor enabled")
      : ready === "False"
        ? condition(
            "Ready",
            "False",
            "KubeletNotReady",
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized"
          )
        : condition("Ready", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
  const pressure = [
    condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available")
  ]
  const serverLabels: Record<string, string> =
    spec.role === "server"
      ? {
          "node-role.kubernetes.io/control-plane": "true",
          "node-role.kubernetes.io/etcd": "true",
          ...(spec.master === false ? {} : { "node-role.kubernetes.io/master": "true" })
        }
      : {}
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      annotations: {
        "alpha.kubernetes.io/provided-node-ip": spec.ip,
        "k3s.io/hostname": spec.name,
        "k3s.io/internal-ip": spec.ip,
        "k3s.io/node-args": spec.role === "server" ? '["server","--token","********"]' : '["agent"]',
        "k3s.io/node-env": '{"K3S_TOKEN":"********","K3S_URL":"https://10.0.10.11:6443"}',
        ...(spec.role === "server"
          ? { "etcd.k3s.cattle.io/node-address": spec.ip, "etcd.k3s.cattle.io/node-name": `${spec.name}-5f3a9c1e` }
          : {})
      },
      creationTimestamp: "2024-05-14T16:59:08Z",
      ...(spec.deleting === true ? { deletionTimestamp: "2024-05-23T11:30:00Z" } : {}),
      finalizers: ["wrangler.cattle.io/node"],
      labels: {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": "k3s",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "k3s",
        ...serverLabels
      },
      name: spec.name,
      resourceVersion: "2418",
      uid: "fe878471-69d3-4797-b1c1-b51d8d62c965"
    },
    spec: { podCIDR: "10.42.2.0/24", podCIDRs: ["10.42.2.0/24"], providerID: `k3s://${spec.name}` },
    status: {
      addresses: [
        { address: spec.ip, type: "InternalIP" },
        { address: spec.name, type: "Hostname" }
      ],
      allocatable: { cpu: "2", memory: "1974468Ki", pods: "110" },
      capacity: { cpu: "2", memory: "1974468Ki", pods: "110" },
      conditions: spec.readyFirst === true ? [readyCondition, ...pressure] : [...pressure, readyCondition],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        architecture: "amd64",
        bootID: "6bbde181-10e0-4c39-9b02-869f9d534218",
        containerRuntimeVersion: "containerd://1.7.15-k3s1",
        kernelVersion: "5.15.0-107-generic",
        kubeProxyVersion: version,
        kubeletVersion: version,
        machineID: "a38f8eb989a4463c8c194d086528363d",
        operatingSystem: "linux",
        osImage: "Ubuntu 22.04.4 LTS",
        systemUUID: spec.uuid ?? "8e744d56-fba0-c071-a9c1-3cdf163ba8d7"
      }
    }
  }
}

/** `kubectl get nodes -o json` output (kind List, 4-space indent). */
export const nodeListJson = (nodes: ReadonlyArray<Record<string, unknown>>): string =>
  `${JSON.stringify({ apiVersion: "v1", items: nodes, kind: "List", metadata: { resourceVersion: "" } }, null, 4)}\n`

const stamp = (i: number) => `time="2024-05-23T11:26:${String(10 + (i % 50)).padStart(2, "0")}Z"`

/** Journal lines (`journalctl -o cat`) for the §8.3 failure loops. */
export const journal = {
  /** systemd's own line when it starts the unit (`Starting k3s-agent.service - Lightweight Kubernetes...` on newer systemd) */
  unitStart: () => "Starting Lightweight Kubernetes...",
  starting: (i = 0) => `${stamp(i)} level=info msg="Starting k3s agent v1.30.5+k3s1 (56ec5dd4)"`,
  upAgent: (i = 0) => `${stamp(i)} level=info msg="k3s agent is up and running"`,
  upServer: (i = 0) => `${stamp(i)} level=info msg="k3s is up and running"`,
  unreachable: (i = 0) =>
    `${stamp(i)} level=error msg="Failed to validate connection to cluster at https://10.0.10.11:6443: failed to get CA certs: Get \\"https://127.0.0.1:6444/cacerts\\": dial tcp 10.0.10.11:6443: connect: connection refused"`,
  caHash: (i = 0) =>
    `${stamp(i)} level=error msg="Failed to validate connection to cluster at https://10.0.10.11:6443: token CA hash does not match the Cluster CA certificate hash: ${CA_HASH} != 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"`,
  unauthorized: (i = 0) =>
    `${stamp(i)} level=info msg="Waiting to retrieve agent configuration; server is not ready: https://127.0.0.1:6444/v1-k3s/client-ca.crt: 401 Unauthorized"`,
  nodePassword: (i = 0) =>
    `${stamp(i)} level=info msg="Waiting to retrieve agent configuration; server is not ready: Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' may not match server node-passwd entry, try enabling a unique node name with the --with-node-id flag"`,
  normalize: (i = 0) =>
    `${stamp(i)} level=fatal msg="failed to normalize server token; must be in format K10<CA-HASH>::<USERNAME>:<PASSWORD> or <PASSWORD>"`,
  duplicateEtcd: (i = 0) =>
    `${stamp(i)} level=fatal msg="ETCD join failed: duplicate node name found, please use a unique name for this node"`,
  /** etcd's own lines (JSON) when a server starts on the data of a member the cluster removed (k3s-io/k3s#13498) */
  memberRemoved: () =>
    `{"level":"warn","ts":"2026-01-29T10:00:00.000Z","caller":"etcdserver/server.go:1095","msg":"server error","error":"the member has been permanently removed from the cluster"}`,
  dataDirMustGo: () =>
    `{"level":"warn","ts":"2026-01-29T10:00:00.000Z","caller":"etcdserver/server.go:1096","msg":"data-dir used by this member must be removed"}`,
  /** k3s's line once it wrote the etcd tombstone (k3s since January 2026: pkg/daemons/executor/embed.go) */
  removedRestart: (i = 0) =>
    `${stamp(i)} level=info msg="This node has been removed from the cluster - please restart k3s to rejoin the cluster"`,
  /** k3s's line at the start that finds the tombstone (pkg/etcd/etcd.go `Register`) */
  tombstoneDetected: (i = 0) =>
    `${stamp(i)} level=info msg="tombstone file has been detected, removing data dir to rejoin the cluster"`,
  learners: (i = 0) =>
    `${stamp(i)} level=error msg="Failed to join etcd cluster: etcdserver: too many learner members in cluster"`,
  critical: (i = 0) =>
    `${stamp(i)} level=fatal msg="failed to validate server configuration: critical configuration value mismatch"`,
  san: (i = 0) =>
    `${stamp(i)} level=fatal msg="CA cert validation failed: Get \\"https://1.2.3.205:6443/cacerts\\": x509: certificate is valid for 10.43.0.1, 127.0.0.1, 1.1.1.170, ::1, not 1.2.3.205"`,
  /** a server joining one on SQLite (k3s #6163, the wording of pkg/daemons/control/server.go since the wrap) */
  noEtcd: (i = 0) =>
    `${stamp(i)} level=fatal msg="starting kubernetes: preparing server: failed to bootstrap cluster data: https://10.0.10.11:6443/v1-k3s/server-bootstrap: 400 Bad Request"`,
  datastore: (i = 0) =>
    `${stamp(i)} level=fatal msg="starting kubernetes: preparing server: bootstrap data already found and encrypted with different token"`,
  /** k3s-io/k3s#1523: an agent given `--disable` (urfave/cli's usage line comes first, then logrus's fatal) */
  undefinedFlagUsage: () => "Incorrect Usage: flag provided but not defined: -disable",
  undefinedFlag: (i = 0) => `${stamp(i)} level=fatal msg="flag provided but not defined: -disable"`
}
