/** Pure fixtures for phase 3 plans: a lab of one VM per node with k3s roles, observed healthy, and its cluster. */
import type { ClusterNode, EtcdMember } from "@homelab/k3s-join"
import { HealthPolicy } from "@homelab/vm-health"
import * as Duration from "effect/Duration"
import type { Desired, DesiredK3s, DesiredNode } from "../src/Desired.js"
import type { K3sFacts, Observed, ObservedNode, ObservedVm } from "../src/Observed.js"
import { type Plan, plan } from "../src/Plan.js"

const GiB = 1024 ** 3

/** `s1`, `s2`, … are servers; `a1`, … agents. One node per VM, named like it; VMIDs 1001…, IPs 10.0.0.11…. */
export const names = (servers: number, agents: number) => [
  ...Array.from({ length: servers }, (_, i) => `s${i + 1}`),
  ...Array.from({ length: agents }, (_, i) => `a${i + 1}`)
]

const desiredNode = (name: string): DesiredNode => ({
  name: `pve-${name}`,
  cpuRatio: 0.5,
  memoryRatio: 0.5,
  image: { url: "http://images/noble.img", storage: "local", content: "import", filename: "noble.qcow2" },
  vms: [
    {
      name,
      node: `pve-${name}`,
      role: name.startsWith("s") ? "server" : "agent",
      diskGiB: 32,
      storage: "local-lvm",
      bridges: ["vmbr0"],
      tags: ["homelab-managed"],
      cpuType: "host",
      cloudInit: { user: "ubuntu", sshKeys: ["ssh-ed25519 AAAA me@host"], ipConfig: "ip=dhcp" }
    }
  ]
})

export const k3sDesired = (vms: ReadonlyArray<string>, k3s: Partial<DesiredK3s> = {}, limits = 1): Desired => ({
  nodes: vms.map(desiredNode),
  ownershipTag: "homelab-managed",
  pendingTag: "homelab-pending",
  vmidRange: { lower: 1000, upper: 8999 },
  limits: { maxRecreatePerRun: limits },
  protect: [],
  k3s: {
    vmUser: "ubuntu",
    vmSshPort: 22,
    installFlags: [],
    installScriptUrl: "https://get.k3s.io",
    upgrade: { maxUnavailable: 1, drainTimeout: Duration.minutes(5) },
    ...k3s
  }
})

export const observedNode = (name: string): ObservedNode => ({
  name,
  online: true,
  cpus: 8,
  memoryBytes: 32 * GiB,
  storages: [
    {
      storage: "local",
      type: "dir",
      content: ["iso", "import"],
      shared: false,
      active: true,
      enabled: true,
      totalBytes: 100 * GiB,
      availBytes: 80 * GiB
    },
    {
      storage: "local-lvm",
      type: "lvmthin",
      content: ["images"],
      shared: false,
      active: true,
      enabled: true,
      totalBytes: 400 * GiB,
      availBytes: 300 * GiB
    }
  ],
  imageVolids: new Set(["local:import/noble.qcow2"]),
  details: { bridges: [{ name: "vmbr0", active: true }], pveMajor: 9 }
})

export const vmidOf = (vms: ReadonlyArray<string>, name: string) => 1001 + vms.indexOf(name)
export const ipOf = (vms: ReadonlyArray<string>, name: string) => `10.0.0.${11 + vms.indexOf(name)}`

export const observedVm = (vms: ReadonlyArray<string>, name: string, over: Partial<ObservedVm> = {}): ObservedVm => ({
  vmid: vmidOf(vms, name),
  node: `pve-${name}`,
  type: "qemu",
  name,
  status: "running",
  tags: ["homelab-managed"],
  template: false,
  maxmemBytes: 16 * GiB,
  uptimeSeconds: 86_400,
  ...over
})

export const clusterNode = (vms: ReadonlyArray<string>, name: string, over: Partial<ClusterNode> = {}): ClusterNode => {
  const server = name.startsWith("s")
  return {
    name,
    roleLabels: server ? ["control-plane", "etcd", "master"] : [],
    role: server ? "server" : "agent",
    ready: "True",
    readyDetail: "",
    internalIPs: [ipOf(vms, name)],
    kubeletVersion: "v1.30.5+k3s1",
    systemUUID: undefined,
    deleting: false,
    etcdMemberName: server ? `${name}-0000000${vms.indexOf(name)}` : undefined,
    ...over
  }
}

export const members = (vms: ReadonlyArray<string>): ReadonlyArray<EtcdMember> =>
  vms
    .filter((n) => n.startsWith("s"))
    .map((n) => ({
      id: String(1000 + vms.indexOf(n)),
      name: `${n}-0000000${vms.indexOf(n)}`,
      peerURL: undefined,
      clientURL: undefined,
      isLearner: false
    }))

/** Every VM of `vms` exists, runs, has its IP; the cluster as `k3s` says (default: all Ready on v1.30.5, via s1). */
export const k3sObserved = (
  vms: ReadonlyArray<string>,
  k3s: K3sFacts | undefined,
  over: { readonly vms?: ReadonlyArray<ObservedVm> } = {}
): Observed => {
  const observedVms = over.vms ?? vms.map((n) => observedVm(vms, n))
  return {
    nodes: new Map(vms.map((n) => [`pve-${n}`, observedNode(`pve-${n}`)])),
    vms: [...observedVms],
    vmDetails: new Map(),
    ips: new Map(observedVms.map((v) => [v.vmid, ipOf(vms, v.name ?? "")])),
    k3s
  }
}

export const readyCluster = (
  vms: ReadonlyArray<string>,
  over: Partial<Extract<K3sFacts, { _tag: "Nodes" }>> = {},
  node: (name: string) => Partial<ClusterNode> = () => ({})
): K3sFacts => ({
  _tag: "Nodes",
  nodes: vms.map((n) => clusterNode(vms, n, node(n))),
  via: { vm: "s1", ip: ipOf(vms, "s1") },
  members: members(vms),
  ...over
})

export const policy = HealthPolicy.defaults

export const planOf = (
  d: Desired,
  o: Observed,
  options: { reprovision?: ReadonlyArray<string>; only?: ReadonlyArray<string> } = {}
): Plan => plan(d, o, { policy, ...options })

/** `Tag:vm` per action, in plan order. */
export const steps = (p: Plan) =>
  p.actions.map((a) => `${a._tag}:${"vm" in a ? a.vm : "spec" in a ? a.spec.name : a.node}`)
export const byId = (p: Plan, id: string) => p.actions.find((a) => a.id === id)
