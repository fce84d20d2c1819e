import { createHash, randomBytes, randomUUID } from "node:crypto"
import type { Workloads } from "./Workloads.js"

/** A parsed join token (k3s.md §2.2). */
export type ParsedToken =
  | { readonly _tag: "basic"; readonly caHash: string; readonly username: string; readonly password: string }
  | { readonly _tag: "bootstrap"; readonly caHash: string; readonly id: string; readonly secret: string }
  | { readonly _tag: "short"; readonly password: string }

const BOOTSTRAP = /^([a-z0-9]{6})\.([a-z0-9]{16})$/

/** `parseToken` of k3s: the error text is what k3s logs. */
export const parseToken = (raw: string): ParsedToken | { readonly _tag: "error"; readonly message: string } => {
  const token = raw.trim()
  if (!token.startsWith("K10")) {
    const b = BOOTSTRAP.exec(token)
    if (b !== null) return { _tag: "bootstrap", caHash: "", id: b[1] as string, secret: b[2] as string }
    return { _tag: "short", password: token }
  }
  const sep = token.indexOf("::")
  if (sep < 0) return { _tag: "error", message: "invalid token format" }
  const caHash = token.slice(3, sep)
  if (caHash !== "" && caHash.length !== 64) return { _tag: "error", message: "invalid token CA hash length" }
  const creds = token.slice(sep + 2)
  const b = BOOTSTRAP.exec(creds)
  if (b !== null) return { _tag: "bootstrap", caHash, id: b[1] as string, secret: b[2] as string }
  const colon = creds.indexOf(":")
  if (colon < 0) return { _tag: "error", message: "invalid token format" }
  return { _tag: "basic", caHash, username: creds.slice(0, colon), password: creds.slice(colon + 1) }
}

/** A taint as `--node-taint`/`--register-with-taints` and `kubectl taint` write it: `key[=value]:Effect`. */
export interface NodeTaint {
  readonly key: string
  readonly value?: string | undefined
  readonly effect: string
}

export interface NodeRecord {
  readonly name: string
  readonly uid: string
  role: "server" | "agent"
  /** host the Node was registered from (`undefined` for nodes whose VM is gone) */
  hostKey: string
  ip: string
  hostname: string
  version: string
  readonly createdAt: number
  /** when Ready turns True (epoch ms) */
  readyAt: number
  /** when the kubelet stopped posting status (VM stopped/destroyed, unit stopped) */
  lostAt: number | undefined
  /**
   * since when the kubelet posts Ready=False because the container runtime hangs (`PLEG is not healthy`; the
   * `k3sNodeNotReady` fault): k3s itself, and a server's etcd member, run on
   */
  runtimeHungAt?: number | undefined
  machineId: string
  systemUUID: string
  etcdName: string | undefined
  /** `k3s.io/node-args` of its last start (config.yaml merged in, `--flag=value` split, secrets masked) */
  args: ReadonlyArray<string>
  env: Readonly<Record<string, string>>
  /**
   * `--node-label` / config.yaml `node-label`, set again (merged: a label no longer given stays) at every start of its
   * k3s; `kubectl label` changes them
   */
  labels: Readonly<Record<string, string>>
  /**
   * `--node-taint` / config.yaml `node-taint`: the kubelet's `--register-with-taints`, which it applies only when it
   * creates the Node, never at a later start; `kubectl taint` changes them
   */
  taints: ReadonlyArray<NodeTaint>
  resourceVersion: number
  /** `kubectl cordon`: `spec.unschedulable` and the `node.kubernetes.io/unschedulable` taint */
  unschedulable: boolean
  /** when it was cordoned (the taint's timeAdded), or last uncordoned */
  schedulingChangedAt: number
  /** `kubectl delete` was accepted: the Node carries a deletionTimestamp until its finalizers have run */
  deletingAt: number | undefined
}

export interface SecretRecord {
  readonly name: string
  readonly hash: string
  readonly createdAt: number
  readonly uid: string
}

export interface EtcdMember {
  readonly id: string
  readonly name: string
  readonly peerURL: string
  readonly clientURL: string
  /** learner until this epoch ms */
  promoteAt: number
}

export interface BootstrapToken {
  readonly id: string
  readonly secret: string
  readonly expiresAt: number | undefined
  readonly description: string | undefined
}

export const passwordHash = (password: string): string =>
  createHash("sha256").update(`k3s-node-password:${password.trim()}`).digest("hex")

const hex = (n: number) => randomBytes(n).toString("hex")
const alnum = (n: number) => {
  const a = "abcdefghijklmnopqrstuvwxyz0123456789"
  const b = randomBytes(n)
  let s = ""
  for (const x of b) s += a[x % a.length]
  return s
}

/** One simulated k3s cluster: nodes, node-password secrets, etcd members, tokens (k3s.md §8.1). */
export class K3sCluster {
  readonly caHash = hex(32)
  readonly nodes = new Map<string, NodeRecord>()
  readonly secrets = new Map<string, SecretRecord>()
  readonly etcdMembers: Array<EtcdMember> = []
  readonly bootstrapTokens = new Map<string, BootstrapToken>()
  /** pods, Deployments, DaemonSets and PDBs (set by the simulator when the cluster is created) */
  workloads: Workloads | undefined
  /** server args that decide the packaged components (`--disable traefik,…`) */
  disabled: ReadonlySet<string> = new Set()
  /**
   * Where the cluster keeps its state: embedded etcd (`--cluster-init`, members in `etcdMembers`), SQLite (kine: a
   * server started without `--cluster-init`, `--server` or `--datastore-endpoint`, the way `curl -sfL https://get.k3s.io
   * | sh -` installs it; one server only, no etcd members) or an external database (`--datastore-endpoint`: servers
   * share it, no etcd members). A SQLite server restarted with `--cluster-init` moves its data into etcd.
   */
  datastore: "etcd" | "sqlite" | "external" = "etcd"
  /** the `--datastore-endpoint` of a cluster on an external database */
  datastoreEndpoint: string | undefined
  private rv = 1000

  constructor(
    public version: string,
    public serverPassword: string = hex(16)
  ) {}

  /** `K10<caHash>::server:<password>` */
  get serverToken(): string {
    return `K10${this.caHash}::server:${this.serverPassword}`
  }

  nextResourceVersion(): number {
    this.rv += 1
    return this.rv
  }

  createBootstrapToken(ttlMs: number | undefined, description: string | undefined, now: number): string {
    const t: BootstrapToken = {
      id: alnum(6),
      secret: alnum(16),
      expiresAt: ttlMs === undefined || ttlMs === 0 ? undefined : now + ttlMs,
      description
    }
    this.bootstrapTokens.set(t.id, t)
    return `K10${this.caHash}::${t.id}.${t.secret}`
  }

  /** Credentials check of the supervisor (401 when false). Servers accept only the server password. */
  acceptsCredentials(t: ParsedToken, role: "server" | "agent", now: number): boolean {
    if (t._tag === "short") return t.password === this.serverPassword
    if (t._tag === "basic") return t.password === this.serverPassword && (role === "agent" || t.username === "server")
    if (role === "server") return false
    const b = this.bootstrapTokens.get(t.id)
    return b !== undefined && b.secret === t.secret && (b.expiresAt === undefined || now < b.expiresAt)
  }

  isLearner(m: EtcdMember, now: number): boolean {
    return now < m.promoteAt
  }

  addMember(nodeName: string, ip: string, promoteAt: number): EtcdMember {
    const m: EtcdMember = {
      id: BigInt(`0x${hex(8)}`).toString(10),
      name: `${nodeName}-${hex(4)}`,
      peerURL: `https://${ip}:2380`,
      clientURL: `https://${ip}:2379`,
      promoteAt
    }
    this.etcdMembers.push(m)
    return m
  }

  removeMember(name: string): boolean {
    const i = this.etcdMembers.findIndex((m) => m.name === name)
    if (i < 0) return false
    this.etcdMembers.splice(i, 1)
    return true
  }

  newUid(): string {
    return randomUUID()
  }
}
