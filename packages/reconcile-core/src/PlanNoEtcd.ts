import type { ClusterNode } from "@homelab/k3s-join"
import type { Action, Finding } from "./Action.js"
import type { Desired } from "./Desired.js"

/** A cluster without embedded etcd, as its Nodes show it: the server a finding names, and where its state is. */
export interface NoEtcd {
  /** The Node of `k3s.server` (by InternalIP), else the first server Node. */
  readonly server: ClusterNode
  /**
   * `sqlite`: no server runs with `--datastore-endpoint` (k3s's default, `curl -sfL https://get.k3s.io | sh -`);
   * `external`: the servers share a database (`--datastore-endpoint`, MySQL, Postgres, an external etcd).
   */
  readonly datastore: "sqlite" | "external"
}

/**
 * Whether the cluster runs without embedded etcd: it has server Nodes and none of its Nodes carries the etcd role
 * (`node-role.kubernetes.io/etcd`, which k3s sets on every server running an etcd member). Where its state is comes
 * from the servers' `k3s.io/node-args` (k3s records `--datastore-endpoint` there, its value masked) and
 * `k3s.io/node-env` (`K3S_DATASTORE_ENDPOINT`, the same setting given as an environment variable).
 */
export const noEtcdOf = (nodes: ReadonlyArray<ClusterNode>, serverHost: string | undefined): NoEtcd | undefined => {
  const servers = nodes.filter((n) => n.role === "server")
  if (servers.length === 0 || nodes.some((n) => n.roleLabels.includes("etcd"))) return undefined
  const server =
    (serverHost === undefined ? undefined : servers.find((n) => n.internalIPs.includes(serverHost))) ??
    (servers[0] as ClusterNode)
  // the flag (or config.yaml's datastore-endpoint, merged into node-args), or K3S_DATASTORE_ENDPOINT (node-env)
  const external = servers.some(
    (n) =>
      n.nodeArgs?.some((a) => a === "--datastore-endpoint") === true || n.nodeEnv?.K3S_DATASTORE_ENDPOINT !== undefined
  )
  return { server, datastore: external ? "external" : "sqlite" }
}

const hasDatastoreEndpoint = (flags: ReadonlyArray<string>): boolean =>
  flags.some((f) => f === "--datastore-endpoint" || f.startsWith("--datastore-endpoint="))

/**
 * Server joins into a cluster without embedded etcd, blocked (`k3s.no-etcd`): a k3s server cannot join a server on
 * SQLite (that server answers the joiner's bootstrap request `400 Bad Request`, and the joiner's k3s exits at every
 * start), so the plan says so once, naming the server, its datastore and both ways out: convert the server to
 * embedded etcd (`cluster-init: true` and a restart; k3s v1.22.2+ moves the SQLite data into etcd), or make the VMs
 * agents, which join it fine. On an external datastore servers join with the same `--datastore-endpoint`: blocked
 * only while `k3s.serverFlags` has none. Agents' joins, and servers that are members already, are left as they are.
 */
export const blockNoEtcdJoins = (
  actions: ReadonlyArray<Action>,
  nodes: ReadonlyArray<ClusterNode>,
  k3s: NonNullable<Desired["k3s"]>
): { readonly actions: Array<Action>; readonly findings: Array<Finding> } => {
  const noEtcd = noEtcdOf(nodes, k3s.server?.host)
  if (noEtcd === undefined) return { actions: [...actions], findings: [] }
  if (noEtcd.datastore === "external" && hasDatastoreEndpoint([...k3s.installFlags, ...(k3s.serverFlags ?? [])]))
    return { actions: [...actions], findings: [] }
  const blocked = actions.flatMap((a) =>
    a._tag === "JoinK3s" && a.role === "server" && (a.rejoin || !nodes.some((n) => n.name === a.vm)) ? [a] : []
  )
  if (blocked.length === 0) return { actions: [...actions], findings: [] }
  const server = noEtcd.server
  const ip = server.internalIPs[0] ?? k3s.server?.host ?? server.name
  const names = blocked.map((a) => a.vm)
  const list = names.length === 1 ? (names[0] as string) : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`
  const findings = blocked.map((a, i): Finding => {
    const first = i === 0
    const message =
      noEtcd.datastore === "sqlite"
        ? first
          ? `${a.vm} cannot join k3s as a server: ${server.name} (${ip}), the cluster's server, runs k3s on SQLite (started without --cluster-init, as \`curl -sfL https://get.k3s.io | sh -\` installs it), and no server can join a server without embedded etcd (its k3s would stop at every start on 'server-bootstrap: 400 Bad Request'); agents join it`
          : `${a.vm} cannot join k3s as a server: ${server.name} runs k3s on SQLite (above)`
        : first
          ? `${a.vm} cannot join k3s as a server: ${server.name} (${ip}), the cluster's server, keeps the cluster in an external datastore (--datastore-endpoint), and a server joins it only with the same --datastore-endpoint, which k3s.serverFlags does not give`
          : `${a.vm} cannot join k3s as a server: the cluster is in an external datastore and k3s.serverFlags has no --datastore-endpoint (above)`
    const hint =
      noEtcd.datastore === "sqlite"
        ? `convert ${server.name} to embedded etcd (k3s v1.22.2 or later moves its SQLite data into etcd; workloads stay): on ${ip} run \`echo 'cluster-init: true' | sudo tee -a /etc/rancher/k3s/config.yaml && sudo systemctl restart k3s\`, wait until \`sudo k3s kubectl get nodes\` shows it Ready with the etcd role, then run \`homelab apply\` again; or set \`role: agent\` for ${list} in homelab.yaml`
        : `add the cluster's --datastore-endpoint to k3s.serverFlags (the value ${server.name} runs with: \`sudo grep -r datastore-endpoint /etc/rancher/k3s /etc/systemd/system/k3s.service*\` on ${ip}), or set \`role: agent\` for ${list} in homelab.yaml`
    return {
      code: "k3s.no-etcd",
      effect: "blocked",
      layer: "k3s",
      node: a.node,
      vm: a.vm,
      vmid: a.vmid,
      message,
      hint
    }
  })
  const ids = new Set(blocked.map((a) => a.id))
  return { actions: actions.filter((a) => !ids.has(a.id)), findings }
}
