/**
 * k3s version rules as pure functions: upgrades go one minor at a time (through intermediate releases), never down,
 * servers before agents; Kubernetes' version skew policy (k3s does not enforce it).
 *
 * @since 0.2.0
 */
import * as Result from "effect/Result"

/**
 * A parsed k3s version: `v1.30.5+k3s1`.
 *
 * @since 0.2.0
 * @category models
 */
export interface K3sVersion {
  readonly major: number
  readonly minor: number
  readonly patch: number
  readonly k3s: number
  readonly text: string
}

const VERSION = /^v(\d+)\.(\d+)\.(\d+)(?:[-+]k3s(\d+))?$/

/**
 * @since 0.2.0
 * @category constructors
 */
export const parseK3sVersion = (text: string): K3sVersion | undefined => {
  const m = VERSION.exec(text.trim())
  return m === null
    ? undefined
    : { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), k3s: Number(m[4] ?? 0), text: text.trim() }
}

const order = (a: K3sVersion, b: K3sVersion) =>
  a.major - b.major || a.minor - b.minor || a.patch - b.patch || a.k3s - b.k3s

/** `v1.30` */
const minorName = (major: number, minor: number) => `v${major}.${minor}`

/**
 * Why an upgrade is refused.
 *
 * - `Downgrade`: the target is older than what runs (k3s does not support going back).
 * - `SkipsMinor`: more than one minor ahead and no release of the intermediate minors is known: `missing` names them.
 * - `MajorChange`: another major version.
 * - `Unparseable`: not a k3s version (`v1.30.5+k3s1`).
 *
 * @since 0.2.0
 * @category models
 */
export type VersionRuleViolation =
  | { readonly _tag: "Downgrade"; readonly from: string; readonly to: string }
  | { readonly _tag: "SkipsMinor"; readonly from: string; readonly to: string; readonly missing: ReadonlyArray<string> }
  | { readonly _tag: "MajorChange"; readonly from: string; readonly to: string }
  | { readonly _tag: "Unparseable"; readonly version: string }

/**
 * A sentence for a violation (no trailing period).
 *
 * @since 0.2.0
 * @category models
 */
export const describeViolation = (v: VersionRuleViolation): string => {
  switch (v._tag) {
    case "Downgrade":
      return `${v.to} is older than ${v.from}: k3s cannot be downgraded`
    case "SkipsMinor":
      return `${v.from} → ${v.to} skips ${v.missing.join(", ")}: k3s upgrades one minor at a time (give a release of ${v.missing.length === 1 ? "that minor" : "those minors"})`
    case "MajorChange":
      return `${v.from} → ${v.to} changes the major version`
    case "Unparseable":
      return `${JSON.stringify(v.version)} is not a k3s version (like v1.30.5+k3s1)`
  }
}

/**
 * The versions to install one after the other to go from `from` to `to`: `[]` when already there, `[to]` within one
 * minor, otherwise the newest known release of each intermediate minor, then `to`.
 *
 * @since 0.2.0
 * @category models
 */
export interface UpgradePlan {
  readonly from: string
  readonly to: string
  readonly steps: ReadonlyArray<string>
}

/**
 * Plans an upgrade of one node. `releases` are the k3s releases known to exist (for example from the update
 * channels): the newest patch of each skipped minor becomes a step; without one the upgrade is refused.
 *
 * @since 0.2.0
 * @category version rules
 */
export const planUpgrade = (
  from: string,
  to: string,
  releases: ReadonlyArray<string> = []
): Result.Result<UpgradePlan, VersionRuleViolation> => {
  const a = parseK3sVersion(from)
  if (a === undefined) return Result.fail({ _tag: "Unparseable", version: from })
  const b = parseK3sVersion(to)
  if (b === undefined) return Result.fail({ _tag: "Unparseable", version: to })
  if (a.major !== b.major) return Result.fail({ _tag: "MajorChange", from, to })
  const cmp = order(a, b)
  if (cmp > 0) return Result.fail({ _tag: "Downgrade", from, to })
  if (cmp === 0) return Result.succeed({ from, to, steps: [] })
  if (b.minor - a.minor <= 1) return Result.succeed({ from, to, steps: [to] })
  const known = releases.map(parseK3sVersion).filter((v): v is K3sVersion => v !== undefined && v.major === a.major)
  const steps: Array<string> = []
  const missing: Array<string> = []
  for (let m = a.minor + 1; m < b.minor; m++) {
    const newest = known
      .filter((v) => v.minor === m)
      .sort(order)
      .at(-1)
    if (newest === undefined) missing.push(minorName(a.major, m))
    else steps.push(newest.text)
  }
  if (missing.length > 0) return Result.fail({ _tag: "SkipsMinor", from, to, missing })
  return Result.succeed({ from, to, steps: [...steps, to] })
}

/**
 * Whether one install of `to` on a node running `from` is allowed: not older, at most one minor ahead.
 *
 * @since 0.2.0
 * @category version rules
 */
export const checkUpgradeStep = (from: string, to: string): VersionRuleViolation | undefined => {
  const plan = planUpgrade(from, to)
  if (Result.isFailure(plan)) return plan.failure
  return plan.success.steps.length <= 1 ? undefined : { _tag: "SkipsMinor", from, to, missing: [] }
}

/**
 * A node as the version rules see it.
 *
 * @since 0.2.0
 * @category models
 */
export interface VersionedNode {
  readonly name: string
  readonly role: "server" | "agent"
  readonly version: string | undefined
}

/**
 * The nodes that must be upgraded to reach `target`, in rollout order: servers first (by name), then agents. Nodes
 * already on `target` (or newer) are left out.
 *
 * @since 0.2.0
 * @category version rules
 */
export const upgradeOrder = (
  nodes: ReadonlyArray<VersionedNode>,
  target: string
): ReadonlyArray<VersionedNode & { readonly version: string }> => {
  const t = parseK3sVersion(target)
  if (t === undefined) return []
  const behind = nodes.filter((n): n is VersionedNode & { version: string } => {
    const v = n.version === undefined ? undefined : parseK3sVersion(n.version)
    return v !== undefined && order(v, t) < 0
  })
  const byName = (x: VersionedNode, y: VersionedNode) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0)
  return [
    ...behind.filter((n) => n.role === "server").sort(byName),
    ...behind.filter((n) => n.role === "agent").sort(byName)
  ]
}

/** One breach of the skew policy: `key` names it (which rule, which node), `excess` says by how many minors. */
interface Skew {
  readonly key: string
  readonly excess: number
  readonly text: string
}

/**
 * The breaches of the skew policy among `nodes`. With `step` (the node a rollout would move next, and where to), the
 * nodes are as they would be after it and the sentences say so ("would"), naming where the moved node is now: a
 * refused step must not read as if the node already ran the version it was not moved to.
 */
const skewOf = (
  nodes: ReadonlyArray<VersionedNode>,
  step?: { readonly name: string; readonly from: string | undefined }
): ReadonlyArray<Skew> => {
  const parsed = nodes.flatMap((n) => {
    const v = n.version === undefined ? undefined : parseK3sVersion(n.version)
    return v === undefined ? [] : [{ n, v }]
  })
  const servers = parsed.filter((x) => x.n.role === "server")
  if (servers.length === 0) return []
  const key = (v: K3sVersion) => v.major * 1000 + v.minor
  const oldest = Math.min(...servers.map((x) => key(x.v)))
  const newest = Math.max(...servers.map((x) => key(x.v)))
  // the oldest server other than the moved node, if there is one (the one the others are held to)
  const oldestServer =
    servers.find((x) => key(x.v) === oldest && x.n.name !== step?.name) ?? servers.find((x) => key(x.v) === oldest)
  const oldestText = oldestServer === undefined ? "" : ` ${oldestServer.n.name} (${oldestServer.v.text})`
  const now = step === undefined || step.from === undefined ? "" : `; ${step.name} runs ${step.from} now`
  const out: Array<Skew> = []
  if (newest - oldest > 1)
    out.push({
      key: "servers",
      excess: newest - oldest - 1,
      text: `servers ${step === undefined ? "are" : "would be"} more than one minor apart (${servers.map((x) => `${x.n.name} ${x.v.text}`).join(", ")})${now}`
    })
  for (const { n, v } of parsed.filter((x) => x.n.role === "agent")) {
    const moved = step !== undefined && n.name === step.name
    if (key(v) > oldest)
      out.push({
        key: `ahead:${n.name}`,
        excess: key(v) - oldest,
        text: moved
          ? `agent ${n.name} would run ${v.text}, newer than the oldest server${oldestText}${now}`
          : `agent ${n.name} (${v.text}) is newer than the oldest server${oldestText}`
      })
    else if (oldest - key(v) > 3)
      out.push({
        key: `behind:${n.name}`,
        excess: oldest - key(v) - 3,
        text: `agent ${n.name} (${v.text}) ${moved || step !== undefined ? "would be" : "is"} more than three minors behind the oldest server${oldestText}${moved ? "" : now}`
      })
  }
  return out
}

/**
 * Kubernetes' version skew policy over a cluster's nodes: apiservers (servers) at most one minor apart; an agent's
 * kubelet never newer than the oldest apiserver nor more than three minors older. A server's own kubelet runs with its
 * apiserver in k3s and is not checked against the others. Returns one sentence per violation.
 *
 * @since 0.2.0
 * @category version rules
 */
export const skewViolations = (nodes: ReadonlyArray<VersionedNode>): ReadonlyArray<string> =>
  skewOf(nodes).map((s) => s.text)

/**
 * Whether moving the node `name` to `version` keeps the cluster within the skew policy, or at least makes no breach
 * worse (a cluster already outside it may still move towards it): the sentence of the breach it would add or widen,
 * or `undefined`. The next step of a rollout is checked with it before it is taken.
 *
 * @since 0.3.0
 * @category version rules
 */
export const skewStepViolation = (
  nodes: ReadonlyArray<VersionedNode>,
  name: string,
  version: string
): string | undefined => {
  const before = new Map(skewOf(nodes).map((s) => [s.key, s.excess]))
  const after = skewOf(
    nodes.map((n) => (n.name === name ? { ...n, version } : n)),
    { name, from: nodes.find((n) => n.name === name)?.version }
  )
  return after.find((s) => s.excess > (before.get(s.key) ?? 0))?.text
}

/**
 * A k3s update channel (`stable`, `latest`, `testing`, or one per minor such as `v1.31`) and its newest release.
 *
 * @since 0.3.0
 * @category models
 */
export interface ReleaseChannel {
  readonly name: string
  readonly latest: string
}

/**
 * Decodes the channel server's list (`https://update.k3s.io/v1-release/channels`: `{ data: [{ name, latest }] }`).
 *
 * @since 0.3.0
 * @category decoding
 */
export const decodeChannels = (json: string): Result.Result<ReadonlyArray<ReleaseChannel>, string> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(json)
  } catch (e) {
    return Result.fail(`not JSON: ${(e as Error).message}`)
  }
  const data = (parsed as { data?: unknown } | null)?.data
  if (!Array.isArray(data)) return Result.fail("no data list")
  return Result.succeed(
    data.flatMap((c: unknown) => {
      const { name, latest } = (c ?? {}) as { name?: unknown; latest?: unknown }
      return typeof name === "string" && typeof latest === "string" ? [{ name, latest }] : []
    })
  )
}

/**
 * The release a channel names: `stable` → its newest release; a version (`v1.31.5+k3s1`) is itself.
 *
 * @since 0.3.0
 * @category version rules
 */
export const resolveChannel = (channels: ReadonlyArray<ReleaseChannel>, channel: string): string | undefined =>
  parseK3sVersion(channel) !== undefined ? channel : channels.find((c) => c.name === channel)?.latest
