import type { K3sCluster, NodeRecord, SecretRecord } from "./K3sCluster.js"
import { nodeConfigHash, nodeEnv } from "./NodeConfig.js"

const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z")

/**
 * Ready / NotReady / Unknown of a Node at `now` (k3s.md §4.3): Unknown once the grace period has passed since the
 * kubelet stopped posting status (`lostAt`); before, what it last posted: Ready only if it became Ready before then,
 * and not while its container runtime hangs (`runtimeHungAt`: the kubelet posts Ready=False).
 */
export const nodeReady = (n: NodeRecord, now: number, graceMs: number): "True" | "False" | "Unknown" => {
  if (n.lostAt !== undefined && now - n.lostAt >= graceMs) return "Unknown"
  const at = Math.min(now, n.lostAt ?? now)
  if (n.runtimeHungAt !== undefined && n.runtimeHungAt <= at) return "False"
  return at >= n.readyAt ? "True" : "False"
}

/** The kubelet's Ready=False while the container runtime hangs (kubelet's PLEG health check, 3 min threshold). */
const plegMessage = "PLEG is not healthy: pleg was last seen active 3m0.512345678s ago; threshold is 3m0s"

const minor = (v: string) => /^v(\d+)\.(\d+)/.exec(v)

/** A Node object as `kubectl get node <n> -o json` prints it (k3s.md §4.3). */
export const nodeJson = (c: K3sCluster, n: NodeRecord, now: number, graceMs: number): Record<string, unknown> => {
  const ready = nodeReady(n, now, graceMs)
  const readySince = ready === "Unknown" ? (n.lostAt ?? now) + graceMs : ready === "True" ? n.readyAt : n.createdAt
  const beat = iso(ready === "Unknown" ? (n.lostAt ?? now) : now)
  const cond = (type: string, okReason: string, okMessage: string) =>
    ready === "Unknown"
      ? {
          lastHeartbeatTime: beat,
          lastTransitionTime: iso(readySince),
          message: "Kubelet stopped posting node status.",
          reason: "NodeStatusUnknown",
          status: "Unknown",
          type
        }
      : {
          lastHeartbeatTime: beat,
          lastTransitionTime: iso(n.createdAt),
          message: okMessage,
          reason: okReason,
          status: "False",
          type
        }
  const readyCond =
    ready === "Unknown"
      ? { ...cond("Ready", "", ""), type: "Ready" }
      : ready === "True"
        ? {
            lastHeartbeatTime: beat,
            lastTransitionTime: iso(readySince),
            message: "kubelet is posting ready status",
            reason: "KubeletReady",
            status: "True",
            type: "Ready"
          }
        : n.runtimeHungAt !== undefined
          ? {
              lastHeartbeatTime: beat,
              lastTransitionTime: iso(n.runtimeHungAt),
              message: plegMessage,
              reason: "KubeletNotReady",
              status: "False",
              type: "Ready"
            }
          : {
              lastHeartbeatTime: beat,
              lastTransitionTime: iso(n.createdAt),
              message:
                "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized",
              reason: "KubeletNotReady",
              status: "False",
              type: "Ready"
            }
  const server = n.role === "server"
  const m = minor(n.version)
  const masterLabel = m !== null && (Number(m[1]) === 1 ? Number(m[2]) < 34 : false)
  const labels: Record<string, string> = {
    ...n.labels,
    "beta.kubernetes.io/arch": "amd64",
    "beta.kubernetes.io/instance-type": "k3s",
    "beta.kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    "kubernetes.io/hostname": n.hostname,
    "kubernetes.io/os": "linux",
    "node.kubernetes.io/instance-type": "k3s"
  }
  if (server) {
    labels["node-role.kubernetes.io/control-plane"] = "true"
    if (n.etcdName !== undefined) labels["node-role.kubernetes.io/etcd"] = "true"
    if (masterLabel) labels["node-role.kubernetes.io/master"] = "true"
  }
  const argsJson = JSON.stringify(n.args)
  const envJson = JSON.stringify(nodeEnv(n.env))
  const annotations: Record<string, string> = {
    "alpha.kubernetes.io/provided-node-ip": n.ip,
    "flannel.alpha.coreos.com/backend-data": '{"VNI":1,"VtepMAC":"2e:f7:d3:70:96:48"}',
    "flannel.alpha.coreos.com/backend-type": "vxlan",
    "flannel.alpha.coreos.com/kube-subnet-manager": "true",
    "flannel.alpha.coreos.com/public-ip": n.ip,
    "k3s.io/hostname": n.hostname,
    "k3s.io/internal-ip": n.ip,
    "k3s.io/node-args": argsJson,
    "k3s.io/node-config-hash": nodeConfigHash(argsJson, envJson),
    "k3s.io/node-env": envJson,
    "node.alpha.kubernetes.io/ttl": "0",
    "volumes.kubernetes.io/controller-managed-attach-detach": "true"
  }
  if (n.etcdName !== undefined) {
    annotations["etcd.k3s.cattle.io/node-address"] = n.ip
    annotations["etcd.k3s.cattle.io/node-name"] = n.etcdName
  }
  const idx = [...c.nodes.keys()].indexOf(n.name)
  const cidr = `10.42.${Math.max(idx, 0)}.0/24`
  const taints: Array<Record<string, string>> = n.taints.map((t) => ({
    effect: t.effect,
    key: t.key,
    ...(t.value === undefined ? {} : { value: t.value })
  }))
  if (n.unschedulable)
    taints.push({
      effect: "NoSchedule",
      key: "node.kubernetes.io/unschedulable",
      timeAdded: iso(n.schedulingChangedAt)
    })
  if (ready === "False") taints.push({ effect: "NoSchedule", key: "node.kubernetes.io/not-ready" })
  if (ready === "Unknown") {
    const t = iso((n.lostAt ?? now) + graceMs)
    taints.push({ effect: "NoSchedule", key: "node.kubernetes.io/unreachable", timeAdded: t })
    taints.push({ effect: "NoExecute", key: "node.kubernetes.io/unreachable", timeAdded: t })
  }
  const resources = {
    cpu: "2",
    "ephemeral-storage": "38851017084",
    "hugepages-1Gi": "0",
    "hugepages-2Mi": "0",
    memory: "1974468Ki",
    pods: "110"
  }
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      annotations,
      creationTimestamp: iso(n.createdAt),
      ...(n.deletingAt === undefined ? {} : { deletionGracePeriodSeconds: 0, deletionTimestamp: iso(n.deletingAt) }),
      finalizers:
        n.etcdName === undefined
          ? ["wrangler.cattle.io/node"]
          : ["wrangler.cattle.io/node", "wrangler.cattle.io/managed-etcd-controller"],
      labels,
      name: n.name,
      resourceVersion: String(n.resourceVersion),
      uid: n.uid
    },
    spec: {
      podCIDR: cidr,
      podCIDRs: [cidr],
      providerID: `k3s://${n.name}`,
      ...(taints.length > 0 ? { taints } : {}),
      ...(n.unschedulable ? { unschedulable: true } : {})
    },
    status: {
      addresses: [
        { address: n.ip, type: "InternalIP" },
        { address: n.hostname, type: "Hostname" }
      ],
      allocatable: resources,
      capacity: { ...resources, "ephemeral-storage": "39937312Ki" },
      conditions: [
        cond("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        cond("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        readyCond
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        architecture: "amd64",
        bootID: n.uid.split("").reverse().join(""),
        containerRuntimeVersion: "containerd://1.7.22-k3s1",
        kernelVersion: "6.8.0-49-generic",
        kubeProxyVersion: n.version,
        kubeletVersion: n.version,
        machineID: n.machineId,
        operatingSystem: "linux",
        osImage: "Ubuntu 24.04.1 LTS",
        systemUUID: n.systemUUID
      }
    }
  }
}

export const secretJson = (s: SecretRecord, owner: { name: string; uid: string } | undefined) => ({
  apiVersion: "v1",
  data: { hash: Buffer.from(`$1:${s.hash}`).toString("base64") },
  immutable: true,
  kind: "Secret",
  metadata: {
    creationTimestamp: iso(s.createdAt),
    name: s.name,
    namespace: "kube-system",
    ...(owner === undefined
      ? {}
      : { ownerReferences: [{ apiVersion: "v1", kind: "Node", name: owner.name, uid: owner.uid }] }),
    resourceVersion: "1",
    uid: s.uid
  },
  type: "k3s.cattle.io/node-password"
})

const sortKeys = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v !== null && typeof v === "object")
    return Object.fromEntries(
      Object.keys(v as Record<string, unknown>)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])])
    )
  return v
}

/** kubectl's JSON printer: keys sorted, 4-space indent, trailing newline. */
export const kubectlJson = (v: unknown): string => `${JSON.stringify(sortKeys(v), null, 4)}\n`

export const listJson = (items: ReadonlyArray<unknown>) => ({
  apiVersion: "v1",
  items,
  kind: "List",
  metadata: { resourceVersion: "" }
})

/** Columns of a kubectl table: padded to the widest cell plus 3 spaces, the last column unpadded. */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>, headers = true): string => {
  const all = headers ? rows : rows.slice(1)
  if (all.length === 0) return ""
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)))
  return `${all.map((r) => r.map((x, i) => (i === r.length - 1 ? x : x.padEnd((widths[i] ?? 0) + 3))).join("")).join("\n")}\n`
}

/** kubectl's AGE column (`45s`, `12m`, `5h`, `3d`). */
export const age = (ms: number): string => {
  const s = Math.max(0, Math.floor(ms / 1000))
  return s < 120
    ? `${s}s`
    : s < 7200
      ? `${Math.floor(s / 60)}m`
      : s < 172_800
        ? `${Math.floor(s / 3600)}h`
        : `${Math.floor(s / 86_400)}d`
}

/** The rows of `kubectl get nodes` (k3s.md §4.2), `-o wide` adding addresses, OS, kernel and runtime. */
export const nodeRows = (
  c: K3sCluster,
  nodes: ReadonlyArray<NodeRecord>,
  now: number,
  graceMs: number,
  wide: boolean
): Array<Array<string>> => {
  const head = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
  if (wide) head.push("INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME")
  const rows = nodes.map((n) => {
    const ready = nodeReady(n, now, graceMs) === "True" ? "Ready" : "NotReady"
    const j = nodeJson(c, n, now, graceMs) as { metadata: { labels: Record<string, string> } }
    const roles = Object.keys(j.metadata.labels)
      .filter((k) => k.startsWith("node-role.kubernetes.io/"))
      .map((k) => k.slice("node-role.kubernetes.io/".length))
      .sort()
    const row = [
      n.name,
      n.unschedulable ? `${ready},SchedulingDisabled` : ready,
      roles.length === 0 ? "<none>" : roles.join(","),
      age(now - n.createdAt),
      n.version
    ]
    if (wide) row.push(n.ip, "<none>", "Ubuntu 24.04.1 LTS", "6.8.0-49-generic", "containerd://1.7.22-k3s1")
    return row
  })
  return [head, ...rows]
}

/** `kubectl get nodes` table (k3s.md §4.2). */
export const nodesTable = (c: K3sCluster, now: number, graceMs: number): string =>
  table(nodeRows(c, [...c.nodes.values()], now, graceMs, false))
