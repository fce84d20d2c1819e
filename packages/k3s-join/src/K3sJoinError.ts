import { SshError } from "@homelab/ssh"
import * as Schema from "effect/Schema"

const Role = Schema.Literals(["server", "agent"])

/**
 * The join token could not be read from the server (not a server, sudo needs a password, file missing).
 *
 * @since 0.1.0
 * @category errors
 */
export class TokenUnavailable extends Schema.TaggedError<TokenUnavailable>()("TokenUnavailable", {
  server: Schema.String,
  path: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `could not read the join token ${this.path} on ${this.server}: ${this.detail}`
  }
}

/**
 * The token does not have a usable form (`K10<64 hex>::<user>:<password>` or a bootstrap token), or it cannot join
 * this role (servers need the server token). The token itself is never part of the error.
 *
 * @since 0.1.0
 * @category errors
 */
export class TokenInvalid extends Schema.TaggedError<TokenInvalid>()("TokenInvalid", {
  detail: Schema.String
}) {
  override get message(): string {
    return `invalid join token: ${this.detail}`
  }
}

/**
 * The joining host cannot reach the server (journal: `connection refused`, `i/o timeout`, `no route to host`), or
 * the cluster API on the server does not answer.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerUnreachable extends Schema.TaggedError<ServerUnreachable>()("ServerUnreachable", {
  server: Schema.String,
  line: Schema.String
}) {
  override get message(): string {
    return `the server ${this.server} is not reachable: ${this.line}`
  }
}

/**
 * The k3s server's etcd does not answer in time (journal: `Failed to get apiserver address from etcd: context deadline
 * exceeded`, `Failed to test data store connection: context deadline exceeded`): etcd has no quorum (fewer than
 * ⌊n/2⌋+1 of its servers run) or is stuck. It comes back once enough servers run again, or after `k3s server
 * --cluster-reset` on the last one.
 *
 * @since 0.11.0
 * @category errors
 */
export class EtcdUnavailable extends Schema.TaggedError<EtcdUnavailable>()("EtcdUnavailable", {
  node: Schema.String,
  line: Schema.String
}) {
  override get message(): string {
    return `k3s on ${this.node} waits for etcd, which does not answer (no quorum: too few of the cluster's servers run; or etcd is stuck): ${this.line}`
  }
}

/**
 * The server refused the token: `401 Unauthorized` (wrong password, expired bootstrap token), a bootstrap/agent
 * token used for a server (`failed to normalize server token`), or a token that differs from the one encrypting the
 * datastore.
 *
 * @since 0.1.0
 * @category errors
 */
export class BadToken extends Schema.TaggedError<BadToken>()("BadToken", {
  kind: Schema.Literals(["Unauthorized", "NotAServerToken", "DatastoreTokenMismatch"]),
  line: Schema.String
}) {
  override get message(): string {
    return `the server rejected the token (${this.kind}): ${this.line}`
  }
}

/**
 * The token's CA hash does not match the server's CA: the token belongs to another cluster.
 *
 * @since 0.1.0
 * @category errors
 */
export class CaHashMismatch extends Schema.TaggedError<CaHashMismatch>()("CaHashMismatch", {
  line: Schema.String
}) {
  override get message(): string {
    return `the token's CA hash does not match the cluster CA (token of another cluster?): ${this.line}`
  }
}

/**
 * The server's certificate does not cover the address used to join (`x509: certificate is valid for …`).
 *
 * @since 0.1.0
 * @category errors
 */
export class SanMismatch extends Schema.TaggedError<SanMismatch>()("SanMismatch", {
  line: Schema.String
}) {
  override get message(): string {
    return `the server certificate does not cover the join address (add it to tls-san or use the node IP): ${this.line}`
  }
}

/**
 * A Node (or its `<name>.node-password.k3s` secret) with this name already exists with another node password:
 * typically a rebuilt host. Pass `rebuilt: true` (or `cleanupStale: true`) to delete the stale Node first.
 *
 * @since 0.1.0
 * @category errors
 */
export class NodePasswordRejected extends Schema.TaggedError<NodePasswordRejected>()("NodePasswordRejected", {
  node: Schema.String,
  line: Schema.String
}) {
  override get message(): string {
    return `node password rejected for ${this.node} (stale Node or duplicate hostname; rejoin with rebuilt: true): ${this.line}`
  }
}

/**
 * A server join failed because an etcd member with this node's name is still registered (rebuilt server whose old
 * Node was not deleted).
 *
 * @since 0.1.0
 * @category errors
 */
export class DuplicateEtcdMember extends Schema.TaggedError<DuplicateEtcdMember>()("DuplicateEtcdMember", {
  node: Schema.String,
  line: Schema.String
}) {
  override get message(): string {
    return `etcd already has a member named after ${this.node} (delete the stale Node, rejoin with rebuilt: true): ${this.line}`
  }
}

/**
 * A server's k3s starts on the etcd data of a member the cluster removed (its Node was deleted, or it was removed with
 * the `etcd.k3s.cattle.io/remove` annotation, while its disk kept the data): etcd refuses a removed member, and k3s
 * exits at every start until that data (`/var/lib/rancher/k3s/server/db`) is deleted; then it joins as a new member.
 * k3s since January 2026 (v1.32.11+k3s3, v1.33.7+k3s3, v1.34.3+k3s3, v1.35.0+k3s3) writes the etcd tombstone instead
 * and runs on until a restart, which moves that data aside and joins as a new member (the install restarts it for
 * that, and so does the wait for Ready when the member is removed during the join); this error is left only when k3s
 * logs it again after that restart (`line`, then, is k3s's own, and `afterRestart` is true).
 *
 * @since 0.7.0
 * @category errors
 */
export class EtcdMemberRemoved extends Schema.TaggedError<EtcdMemberRemoved>()("EtcdMemberRemoved", {
  node: Schema.String,
  line: Schema.String,
  /**
   * The join restarted k3s for an earlier removal of this server's member during the join, and the cluster removed
   * its new member again: something keeps removing it.
   *
   * @since 0.10.0
   */
  afterRestart: Schema.optional(Schema.Boolean)
}) {
  override get message(): string {
    if (this.afterRestart === true)
      return `the cluster removed the etcd member of k3s server ${this.node} again after the join restarted k3s for its removal during the join (k3s waits for a restart once more): something keeps removing it (\`kubectl delete node ${this.node}\`, the etcd.k3s.cattle.io/remove annotation, another run's cleanup): ${this.line}`
    // k3s since January 2026 says so itself, having written the etcd tombstone: it joins again at its next start
    if (this.line.includes("please restart"))
      return `the cluster removed the etcd member of k3s server ${this.node}, and k3s waits for a restart to join again as a new member: ${this.line}`
    return `k3s server ${this.node} starts on the etcd data of a member the cluster removed, and etcd refuses it at every start: ${this.line}`
  }
}

/**
 * Why server `node` is not joined while etcd lists `members` of its name (or its IP) that no Node owns, each with its
 * ID in hex (`memberIdHex`): the words of `StaleEtcdMember` (its `refusal`) and of a plan that holds that join back,
 * so that both say the same.
 *
 * @since 0.7.0
 * @category errors
 */
export const staleMemberRefusal = (
  node: string,
  members: ReadonlyArray<{
    readonly name: string
    readonly id: string
    readonly peerURL?: string | null | undefined
  }>
): string => {
  const one = members.length === 1
  const named = members.map((m) => `${m.name} (ID ${m.id}${m.peerURL == null ? "" : `, peer ${m.peerURL}`})`)
  return `etcd still has ${one ? "the member" : "the members"} ${named.join(", ")} of an earlier ${node}, and no Node owns ${one ? "it" : "them"} (deleted with its finalizers removed, or never registered): k3s removes a member only through its Node, so ${node} would fail to join with 'duplicate node name found' and restart forever`
}

/**
 * A server's join refused before anything was installed: etcd still lists a member of this node (named
 * `<node>-<8 hex>`, or registered with the host's IP as its peer address) that no Node owns. k3s removes an etcd
 * member only through its Node (deleting it, or the `etcd.k3s.cattle.io/remove` annotation), so nothing homelab can do
 * through k3s removes it; the join would fail on `duplicate node name found` (or `Peer URLs already exists`) and k3s
 * would restart forever. `memberId` is etcd's member ID in hex, as `etcdctl member remove` takes it.
 *
 * @since 0.6.3
 * @category errors
 */
export class StaleEtcdMember extends Schema.TaggedError<StaleEtcdMember>()("StaleEtcdMember", {
  node: Schema.String,
  member: Schema.String,
  memberId: Schema.String,
  peerURL: Schema.NullOr(Schema.String),
  /** The server the members were read through. */
  server: Schema.String
}) {
  /**
   * Why the join is refused, without what was done about it (`staleMemberRefusal`): the words a plan says before
   * such a join, and the refusal itself (`message`).
   *
   * @since 0.7.0
   */
  get refusal(): string {
    return staleMemberRefusal(this.node, [{ name: this.member, id: this.memberId, peerURL: this.peerURL }])
  }

  override get message(): string {
    return `${this.refusal}; nothing was installed on ${this.node}`
  }
}

/**
 * The cluster's server token, read from `server`, is not the one the caller was given: its password (after
 * `::server:`) differs from the short token given as `tokenPassword`. Nothing was installed. Neither token is in the
 * message.
 *
 * @since 0.6.3
 * @category errors
 */
export class TokenDiffers extends Schema.TaggedError<TokenDiffers>()("TokenDiffers", {
  server: Schema.String
}) {
  override get message(): string {
    return `the server token of the cluster on ${this.server} has another password than the token given for it: nothing was installed`
  }
}

/**
 * `initCluster` refused to start a new cluster on a host that already holds one: etcd data of an earlier cluster
 * (`member`: its etcd member, from `/var/lib/rancher/k3s/server/db/etcd/name`), where k3s ignores `--cluster-init` and
 * starts that member again (waiting forever for its old peers, or bringing that cluster back), a k3s server that
 * runs (`unitState`) without being the Ready first server of a cluster, or a k3s agent (`agentUnitState`: its
 * `k3s-agent` unit runs, or failed and starts again with the VM), a member of some cluster, which install.sh leaves as
 * it is beside the server it adds. Nothing was installed.
 *
 * @since 0.6.3
 * @category errors
 */
export class ExistingCluster extends Schema.TaggedError<ExistingCluster>()("ExistingCluster", {
  node: Schema.String,
  member: Schema.NullOr(Schema.String),
  unitState: Schema.String,
  detail: Schema.String,
  /** The state of the host's `k3s-agent` unit when that is what holds it (an agent runs there). @since 0.7.0 */
  agentUnitState: Schema.optional(Schema.String)
}) {
  /**
   * Why no cluster is started on the host, without what was done about it: the words `plan` says before an
   * `initCluster` would refuse, and the refusal itself (`message`).
   *
   * @since 0.7.0
   */
  get refusal(): string {
    return this.member !== null
      ? `${this.node} holds the etcd data of an earlier k3s cluster (its member ${this.member}, in /var/lib/rancher/k3s/server/db/etcd; k3s unit ${this.unitState}): k3s ignores --cluster-init there and would start that member again, waiting for that cluster's other servers or bringing that cluster back, instead of a new cluster`
      : this.agentUnitState !== undefined
        ? `k3s runs on ${this.node} as an agent already (unit k3s-agent ${this.agentUnitState}): it is a member of a cluster, and install.sh would add the server beside it (unit k3s) and leave the agent as it is, two k3s on one host (both with a kubelet and containerd): a new cluster is not started over it`
        : `a k3s server runs on ${this.node} already (unit ${this.unitState}) and is not the Ready first server of a cluster (${this.detail}): a new cluster is not started over it`
  }

  override get message(): string {
    return `${this.refusal}; nothing was installed`
  }
}

/**
 * What `initCluster` found on a host before installing anything: the state of its units and its etcd member.
 * `undefined` when nothing keeps a new cluster from starting there; the refusal otherwise (`ExistingCluster`). A
 * server unit that is `inactive`, `failed` or `unknown` (not there) keeps nothing from starting; an agent unit that is
 * anything but `inactive` or `unknown` does (a `failed` one is there, enabled, and starts with the VM again).
 *
 * @since 0.7.0
 * @category errors
 */
export const existingClusterOf = (found: {
  readonly node: string
  readonly member: string | undefined
  readonly unitState: string
  readonly agentUnitState: string
  readonly detail: string
}): ExistingCluster | undefined => {
  const base = { node: found.node, member: found.member ?? null, unitState: found.unitState, detail: found.detail }
  if (found.member !== undefined || !["inactive", "failed", "unknown"].includes(found.unitState))
    return new ExistingCluster(base)
  if (!["inactive", "unknown"].includes(found.agentUnitState))
    return new ExistingCluster({ ...base, agentUnitState: found.agentUnitState })
  return undefined
}

/**
 * Another server is joining etcd at the same time (`too many learner members in cluster`). Servers must join one
 * at a time; retry later.
 *
 * @since 0.1.0
 * @category errors
 */
export class TooManyLearners extends Schema.TaggedError<TooManyLearners>()("TooManyLearners", {
  line: Schema.String
}) {
  override get message(): string {
    return `another server is joining etcd at the same time (join servers one at a time, then retry): ${this.line}`
  }
}

/**
 * The joining server's critical flags differ from the cluster's (`critical configuration value mismatch`).
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigMismatch extends Schema.TaggedError<ConfigMismatch>()("ConfigMismatch", {
  line: Schema.String
}) {
  override get message(): string {
    return `critical server flags differ from the existing servers': ${this.line}`
  }
}

/**
 * The server a joining server goes through runs k3s without embedded etcd: on SQLite (installed without
 * `--cluster-init`, the default) or on an external datastore. It refuses the bootstrap request (`server-bootstrap:
 * 400 Bad Request`), and the joiner exits at every start.
 *
 * @since 0.11.0
 * @category errors
 */
export class NoEmbeddedEtcd extends Schema.TaggedError<NoEmbeddedEtcd>()("NoEmbeddedEtcd", {
  line: Schema.String
}) {
  override get message(): string {
    return `the server it joins through runs k3s without embedded etcd (SQLite, or an external datastore), which no server can join: restart that server with --cluster-init (k3s v1.22.2+ moves SQLite into etcd), or join this node as an agent: ${this.line}`
  }
}

/**
 * Downloading or running the k3s install script failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class InstallFailed extends Schema.TaggedError<InstallFailed>()("InstallFailed", {
  step: Schema.String,
  exitCode: Schema.NullOr(Schema.Number),
  tail: Schema.String
}) {
  override get message(): string {
    const tail = this.tail.trim()
    return `${this.step} failed with exit code ${this.exitCode ?? "none"}${tail === "" ? "" : `: ${tail}`}`
  }
}

/**
 * Something did not finish before its deadline. `lastLines` are the last journal lines of the k3s unit (tokens
 * scrubbed).
 *
 * @since 0.1.0
 * @category errors
 */
export class Timeout extends Schema.TaggedError<Timeout>()("Timeout", {
  what: Schema.String,
  timeoutMs: Schema.Number,
  lastLines: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const last = this.lastLines.slice(-3).join(" | ")
    return `${this.what} did not finish within ${this.timeoutMs} ms${last === "" ? "" : `; last journal lines: ${last}`}`
  }
}

/**
 * The Node is not Ready (its Ready condition is `False`, `Unknown`, or the Node does not exist).
 *
 * @since 0.1.0
 * @category errors
 */
export class NotReady extends Schema.TaggedError<NotReady>()("NotReady", {
  node: Schema.String,
  status: Schema.Literals(["False", "Unknown", "Absent"]),
  detail: Schema.String
}) {
  override get message(): string {
    return `node ${this.node} is not Ready (${this.status})${this.detail === "" ? "" : `: ${this.detail}`}`
  }
}

/**
 * A Node with this name exists with another role (e.g. an agent where a server is wanted).
 *
 * @since 0.1.0
 * @category errors
 */
export class RoleMismatch extends Schema.TaggedError<RoleMismatch>()("RoleMismatch", {
  node: Schema.String,
  expected: Role,
  actual: Role
}) {
  override get message(): string {
    return `node ${this.node} is a ${this.actual}, not a ${this.expected} (rejoin with rebuilt: true to replace it)`
  }
}

/**
 * The Node that joined does not have the expected identity (InternalIP, systemUUID, kubelet version).
 *
 * @since 0.1.0
 * @category errors
 */
export class IdentityMismatch extends Schema.TaggedError<IdentityMismatch>()("IdentityMismatch", {
  node: Schema.String,
  field: Schema.String,
  expected: Schema.String,
  actual: Schema.String
}) {
  override get message(): string {
    return `node ${this.node} has ${this.field} ${this.actual}, expected ${this.expected}`
  }
}

/**
 * The cluster's state could not be read from the server (`kubectl get nodes` failed or returned unexpected JSON).
 *
 * @since 0.1.0
 * @category errors
 */
export class ClusterUnavailable extends Schema.TaggedError<ClusterUnavailable>()("ClusterUnavailable", {
  server: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `could not read the cluster state from ${this.server}: ${this.detail}`
  }
}

/**
 * The options cannot be used for a join (e.g. a forbidden flag such as `--cluster-init` or `--token`).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptions extends Schema.TaggedError<InvalidOptions>()("InvalidOptions", {
  detail: Schema.String
}) {
  override get message(): string {
    return `invalid join options: ${this.detail}`
  }
}

/**
 * Taking this server out of service would leave etcd without quorum (fewer than ⌊n/2⌋+1 healthy members). Nothing was
 * changed. `members` lists every member with its state; `reason` says what to fix first.
 *
 * @since 0.2.0
 * @category errors
 */
export class QuorumAtRisk extends Schema.TaggedError<QuorumAtRisk>()("QuorumAtRisk", {
  node: Schema.String,
  action: Schema.String,
  voters: Schema.Number,
  needed: Schema.Number,
  healthyOthers: Schema.Number,
  members: Schema.Array(
    Schema.Struct({ member: Schema.String, node: Schema.NullOr(Schema.String), state: Schema.String })
  ),
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/**
 * `kubectl drain` did not finish: an eviction blocked by a PodDisruptionBudget until the timeout (`PodDisruptionBudget`),
 * pods drain refuses to evict (`Refused`, e.g. a pod without a controller), or another failure. `pods` are the pods
 * still on the node.
 *
 * @since 0.2.0
 * @category errors
 */
export class DrainFailed extends Schema.TaggedError<DrainFailed>()("DrainFailed", {
  node: Schema.String,
  kind: Schema.Literals(["PodDisruptionBudget", "Timeout", "Refused", "Other"]),
  pods: Schema.Array(Schema.String),
  detail: Schema.String
}) {
  override get message(): string {
    return `draining ${this.node} failed (${this.kind})${this.pods.length > 0 ? ` with ${this.pods.join(", ")} still on it` : ""}: ${this.detail}`
  }
}

/**
 * A version rule refuses the change: a downgrade, a skipped minor, another major, or not a k3s version.
 *
 * @since 0.2.0
 * @category errors
 */
export class VersionRule extends Schema.TaggedError<VersionRule>()("VersionRule", {
  rule: Schema.Literals(["Downgrade", "SkipsMinor", "MajorChange", "Unparseable"]),
  from: Schema.String,
  to: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/**
 * The k3s release to install cannot be downloaded by the host, checked before anything is changed (an upgrade
 * refuses it before its cordon): `status` 404 means no such release exists; anything else (`null`: nothing answered)
 * that the host cannot reach it now, and install.sh would fail the same way.
 *
 * @since 0.3.0
 * @category errors
 */
export class ReleaseUnavailable extends Schema.TaggedError<ReleaseUnavailable>()("ReleaseUnavailable", {
  version: Schema.String,
  url: Schema.String,
  status: Schema.NullOr(Schema.Number),
  detail: Schema.String
}) {
  override get message(): string {
    return this.status === 404
      ? `k3s ${this.version} is not a k3s release (${this.url} answers 404 Not Found)`
      : `the k3s ${this.version} release cannot be downloaded from this host (${this.url}: ${this.detail})`
  }
}

/**
 * A kubeconfig could not be used (the server's, or the one to merge into). The message never quotes its content.
 *
 * @since 0.2.0
 * @category errors
 */
export class KubeconfigInvalid extends Schema.TaggedError<KubeconfigInvalid>()("KubeconfigInvalid", {
  detail: Schema.String
}) {
  override get message(): string {
    return this.detail
  }
}

/**
 * Another run held the host's k3s install lock (`/run/lock/homelab-k3s-join.lock`) longer than the lock wait.
 *
 * @since 0.2.0
 * @category errors
 */
export class LockTimeout extends Schema.TaggedError<LockTimeout>()("LockTimeout", {
  lock: Schema.String,
  timeoutMs: Schema.Number
}) {
  override get message(): string {
    return `another run held the k3s install lock ${this.lock} for more than ${this.timeoutMs} ms`
  }
}

/**
 * An SSH operation failed (the wrapped `SshError` says which host and why).
 *
 * @since 0.1.0
 * @category errors
 */
export class Ssh extends Schema.TaggedError<Ssh>()("Ssh", {
  error: SshError
}) {
  override get message(): string {
    return this.error.message
  }
}

/**
 * All reasons a {@link K3sJoinError} can carry.
 *
 * @since 0.1.0
 * @category errors
 */
export const K3sJoinErrorReason = Schema.Union([
  TokenUnavailable,
  TokenInvalid,
  TokenDiffers,
  ServerUnreachable,
  EtcdUnavailable,
  BadToken,
  CaHashMismatch,
  SanMismatch,
  NodePasswordRejected,
  DuplicateEtcdMember,
  EtcdMemberRemoved,
  StaleEtcdMember,
  TooManyLearners,
  ConfigMismatch,
  NoEmbeddedEtcd,
  InstallFailed,
  Timeout,
  NotReady,
  RoleMismatch,
  IdentityMismatch,
  ClusterUnavailable,
  InvalidOptions,
  QuorumAtRisk,
  DrainFailed,
  ExistingCluster,
  VersionRule,
  ReleaseUnavailable,
  KubeconfigInvalid,
  LockTimeout,
  Ssh
])

/**
 * @since 0.1.0
 * @category errors
 */
export type K3sJoinErrorReason = typeof K3sJoinErrorReason.Type

/**
 * The one error of `@homelab/k3s-join`: which host and why. Handle a specific reason with
 * `Effect.catchReason("K3sJoinError", "NodePasswordRejected", …)`; from the Promise API, `err.reason._tag`.
 * Never contains the join token.
 *
 * @since 0.1.0
 * @category errors
 */
export class K3sJoinError extends Schema.TaggedError<K3sJoinError>()("K3sJoinError", {
  host: Schema.String,
  reason: K3sJoinErrorReason
}) {
  override get message(): string {
    return `k3s-join ${this.host}: ${this.reason.message}`
  }
}
