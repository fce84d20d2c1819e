import * as Result from "effect/Result"
import * as Schema from "effect/Schema"

/**
 * The parts of a Kubernetes Node object (`kubectl get nodes -o json`) that joining needs. Unknown fields are ignored.
 *
 * @since 0.1.0
 * @category schemas
 */
export const NodeJson = Schema.Struct({
  metadata: Schema.Struct({
    name: Schema.String,
    labels: Schema.optional(Schema.Record(Schema.String, Schema.String)),
    annotations: Schema.optional(Schema.Record(Schema.String, Schema.String)),
    deletionTimestamp: Schema.optional(Schema.String)
  }),
  spec: Schema.optional(Schema.Struct({ unschedulable: Schema.optional(Schema.Boolean) })),
  status: Schema.optional(
    Schema.Struct({
      conditions: Schema.optional(
        Schema.Array(
          Schema.Struct({
            type: Schema.String,
            status: Schema.String,
            reason: Schema.optional(Schema.String),
            message: Schema.optional(Schema.String)
          })
        )
      ),
      addresses: Schema.optional(Schema.Array(Schema.Struct({ type: Schema.String, address: Schema.String }))),
      nodeInfo: Schema.optional(
        Schema.Struct({
          kubeletVersion: Schema.optional(Schema.String),
          systemUUID: Schema.optional(Schema.String)
        })
      )
    })
  )
})

/**
 * `kubectl get nodes -o json` (`kind: List`) or the raw API's `NodeList`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const NodeListJson = Schema.Struct({
  items: Schema.Array(NodeJson)
})

/**
 * A role label k3s sets on server nodes (`node-role.kubernetes.io/<role>=true`).
 *
 * @since 0.1.0
 * @category models
 */
export type NodeRoleLabel = "control-plane" | "etcd" | "master"

/**
 * Status of the Ready condition, found by type. `Unknown` (the kubelet stopped posting status) is not `False`;
 * `Missing` means the Node has no Ready condition yet.
 *
 * @since 0.1.0
 * @category models
 */
export type ReadyStatus = "True" | "False" | "Unknown" | "Missing"

/**
 * A cluster member as seen from the Kubernetes API.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClusterNode {
  readonly name: string
  /** Role labels present with value `true`. */
  readonly roleLabels: ReadonlyArray<NodeRoleLabel>
  /**
   * What its k3s runs as: the command word of `k3s.io/node-args` (`server` or `agent`, what k3s itself records at
   * every start); without that annotation, `server` when labelled control-plane, etcd or master, otherwise `agent`. A
   * role label set by hand (`kubectl label node … node-role.kubernetes.io/control-plane=true`) does not make an agent
   * a server.
   */
  readonly role: "server" | "agent"
  readonly ready: ReadyStatus
  /** Reason and message of the Ready condition (empty when missing). */
  readonly readyDetail: string
  /** All InternalIP addresses (IPv4 and IPv6 may both appear). */
  readonly internalIPs: ReadonlyArray<string>
  readonly kubeletVersion: string | undefined
  readonly systemUUID: string | undefined
  /** The Node is being deleted (`deletionTimestamp` set). */
  readonly deleting: boolean
  /** `etcd.k3s.cattle.io/node-name` (etcd member name) for servers. */
  readonly etcdMemberName: string | undefined
  /** Cordoned (`spec.unschedulable`): e.g. left so by an interrupted drain or upgrade. */
  readonly unschedulable?: boolean | undefined
  /**
   * Every label of the Node (those set with `--node-label` at registration included).
   *
   * @since 0.2.0
   */
  readonly labels?: Readonly<Record<string, string>> | undefined
  /**
   * The arguments its k3s runs with, as k3s records them at every start in the `k3s.io/node-args` annotation (config
   * file flags merged, `--flag=value` split, secrets masked); `undefined` when the annotation is missing or unreadable.
   *
   * @since 0.4.0
   */
  readonly nodeArgs?: ReadonlyArray<string> | undefined
  /**
   * The `K3S_*` environment its k3s runs with, as k3s records it in the `k3s.io/node-env` annotation (secret values
   * masked: `K3S_TOKEN`, `K3S_DATASTORE_ENDPOINT`, …); `undefined` when the annotation is missing or unreadable.
   *
   * @since 0.11.0
   */
  readonly nodeEnv?: Readonly<Record<string, string>> | undefined
}

const ROLE_LABELS: ReadonlyArray<NodeRoleLabel> = ["control-plane", "etcd", "master"]

/**
 * @since 0.1.0
 * @category constructors
 */
export const fromNodeJson = (node: typeof NodeJson.Type): ClusterNode => {
  const labels = node.metadata.labels ?? {}
  const roleLabels = ROLE_LABELS.filter((role) => labels[`node-role.kubernetes.io/${role}`] === "true")
  const ready = node.status?.conditions?.find((c) => c.type === "Ready")
  const readyStatus: ReadyStatus =
    ready === undefined ? "Missing" : ready.status === "True" || ready.status === "False" ? ready.status : "Unknown"
  const nodeArgs = parseNodeArgs(node.metadata.annotations?.["k3s.io/node-args"])
  const command = nodeArgs?.[0]
  return {
    name: node.metadata.name,
    roleLabels,
    role: command === "server" || command === "agent" ? command : roleLabels.length > 0 ? "server" : "agent",
    ready: readyStatus,
    readyDetail: ready === undefined ? "" : [ready.reason, ready.message].filter((x) => x !== undefined).join(": "),
    internalIPs: (node.status?.addresses ?? []).filter((a) => a.type === "InternalIP").map((a) => a.address),
    kubeletVersion: node.status?.nodeInfo?.kubeletVersion,
    systemUUID: node.status?.nodeInfo?.systemUUID,
    deleting: node.metadata.deletionTimestamp !== undefined,
    etcdMemberName: node.metadata.annotations?.["etcd.k3s.cattle.io/node-name"],
    unschedulable: node.spec?.unschedulable === true,
    labels,
    nodeArgs,
    nodeEnv: parseNodeEnv(node.metadata.annotations?.["k3s.io/node-env"])
  }
}

/** `k3s.io/node-args`: a JSON array of strings. */
const decodeNodeArgs = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Array(Schema.String)))
const parseNodeArgs = (text: string | undefined): ReadonlyArray<string> | undefined => {
  if (text === undefined) return undefined
  const decoded = decodeNodeArgs(text)
  return Result.isSuccess(decoded) ? decoded.success : undefined
}

/** `k3s.io/node-env`: a JSON object of strings. */
const decodeNodeEnv = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Record(Schema.String, Schema.String)))
const parseNodeEnv = (text: string | undefined): Readonly<Record<string, string>> | undefined => {
  if (text === undefined) return undefined
  const decoded = decodeNodeEnv(text)
  return Result.isSuccess(decoded) ? decoded.success : undefined
}

const decodeList = Schema.decodeUnknownResult(Schema.fromJsonString(NodeListJson))
const decodeNodeJson = Schema.decodeUnknownResult(Schema.fromJsonString(NodeJson))

/**
 * Decodes the output of `k3s kubectl get nodes -o json`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeNodeList = (json: string): Result.Result<ReadonlyArray<ClusterNode>, string> =>
  Result.match(decodeList(json), {
    onFailure: (error) => Result.fail(error.message),
    onSuccess: (list) => Result.succeed(list.items.map(fromNodeJson))
  })

/**
 * Decodes the output of `k3s kubectl get node <name> -o json`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeNode = (json: string): Result.Result<ClusterNode, string> =>
  Result.match(decodeNodeJson(json), {
    onFailure: (error) => Result.fail(error.message),
    onSuccess: (node) => Result.succeed(fromNodeJson(node))
  })

/**
 * What a host is expected to be in the cluster.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExpectedMember {
  readonly name: string
  readonly role: "server" | "agent"
  /** Compared with the Node's InternalIP addresses when given. */
  readonly ip?: string | undefined
  /** Compared with `status.nodeInfo.systemUUID` (case-insensitive) when given. */
  readonly systemUUID?: string | undefined
}

/**
 * How a host relates to the cluster:
 *
 * - `Absent`: no Node with that name;
 * - `Member`: the Node exists with the right role and identity and is Ready;
 * - `NotReady`: right role and identity, Ready is `False`, `Unknown` or missing;
 * - `Mismatch`: a Node with that name exists but its role or identity differ (a stale or foreign Node).
 *
 * @since 0.1.0
 * @category models
 */
export type Membership =
  | { readonly _tag: "Absent"; readonly name: string }
  | { readonly _tag: "Member"; readonly node: ClusterNode }
  | { readonly _tag: "NotReady"; readonly node: ClusterNode }
  | {
      readonly _tag: "Mismatch"
      readonly node: ClusterNode
      readonly mismatches: ReadonlyArray<{
        readonly field: "role" | "ip" | "systemUUID"
        readonly expected: string
        readonly actual: string
      }>
    }

/**
 * Evaluates membership by name, role and identity (IP, system UUID), never by name alone.
 *
 * @since 0.1.0
 * @category membership
 */
export const evaluateMembership = (nodes: ReadonlyArray<ClusterNode>, expected: ExpectedMember): Membership => {
  const node = nodes.find((n) => n.name === expected.name)
  if (node === undefined) return { _tag: "Absent", name: expected.name }
  const mismatches: Array<{ field: "role" | "ip" | "systemUUID"; expected: string; actual: string }> = []
  if (node.role !== expected.role) mismatches.push({ field: "role", expected: expected.role, actual: node.role })
  if (expected.ip !== undefined && !node.internalIPs.includes(expected.ip)) {
    mismatches.push({ field: "ip", expected: expected.ip, actual: node.internalIPs.join(",") || "none" })
  }
  if (
    expected.systemUUID !== undefined &&
    node.systemUUID !== undefined &&
    node.systemUUID.toLowerCase() !== expected.systemUUID.toLowerCase()
  ) {
    mismatches.push({ field: "systemUUID", expected: expected.systemUUID, actual: node.systemUUID })
  }
  if (mismatches.length > 0) return { _tag: "Mismatch", node, mismatches }
  if (node.ready === "True" && !node.deleting) return { _tag: "Member", node }
  return { _tag: "NotReady", node }
}

const VERSION = /^v(\d+)\.(\d+)\.(\d+)(?:[-+]k3s(\d+))?/

/**
 * Compares two k3s versions (`v1.30.5+k3s1`): negative when `a` is older.
 *
 * @since 0.1.0
 * @category utilities
 */
export const compareVersions = (a: string, b: string): number => {
  const pa = VERSION.exec(a)
  const pb = VERSION.exec(b)
  if (pa === null || pb === null) return a < b ? -1 : a > b ? 1 : 0
  for (let i = 1; i <= 4; i++) {
    const d = Number(pa[i] ?? 0) - Number(pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/**
 * The cluster version to pin joins to: the oldest kubelet version among the control-plane nodes (a kubelet must
 * not be newer than the oldest apiserver). `undefined` when no server reports one.
 *
 * @since 0.1.0
 * @category membership
 */
export const clusterVersionOf = (nodes: ReadonlyArray<ClusterNode>): string | undefined =>
  nodes
    .filter((n) => n.role === "server" && n.kubeletVersion !== undefined && VERSION.test(n.kubeletVersion))
    .map((n) => n.kubeletVersion as string)
    .sort(compareVersions)[0]
