/**
 * The k3s flags a node runs with, as k3s itself records them on its Node (`k3s.io/node-args`, k3s-io/k3s
 * `pkg/nodeconfig`), compared with the flags it should run with. Pure.
 *
 * k3s writes that annotation at every start from its own arguments: the command word, then the flags of
 * `/etc/rancher/k3s/config.yaml`, then the command line's (the unit's `ExecStart`), each `--flag=value` split into two
 * words, and the value of a secret flag (`--token`, `--datastore-endpoint`, …) masked as `********`. So it says what
 * runs, not what a unit file waiting for a restart says, and `kubectl get nodes` shows it for every Node at once.
 *
 * @since 0.4.0
 */

import { bareFlagName } from "./RoleFlags.js"

/**
 * k3s's `OmittedValue`: what a secret flag's value reads as in `k3s.io/node-args`.
 *
 * @since 0.4.0
 * @category models
 */
export const OMITTED = "********"

/** k3s's `isSecret` flags (`pkg/nodeconfig`). */
const SECRET_FLAGS = [
  "--token",
  "-t",
  "--agent-token",
  "--datastore-endpoint",
  "--cluster-secret",
  "--etcd-s3-access-key",
  "--etcd-s3-secret-key",
  "--vpn-auth"
]

/**
 * Flags this library sets itself on a join or cluster start (`--server`, `--node-name`, `--cluster-init`) or writes
 * into config.yaml (`--token`): not part of the caller's flags.
 */
const JOIN_FLAGS: ReadonlyArray<{ readonly names: ReadonlyArray<string>; readonly value: boolean }> = [
  { names: ["--server", "-s"], value: true },
  { names: ["--token", "-t"], value: true },
  { names: ["--token-file"], value: true },
  { names: ["--node-name"], value: true },
  { names: ["--cluster-init"], value: false }
]

/**
 * One flag and its value (the word after it when that is no flag), as k3s parses a command line.
 *
 * @since 0.4.0
 * @category models
 */
export interface Flag {
  readonly name: string
  readonly value: string | undefined
}

/**
 * Words as `k3s.io/node-args` records them: `--flag=value` split in two, a secret flag's value masked.
 *
 * @since 0.4.0
 * @category flags
 */
export const recordedWords = (words: ReadonlyArray<string>): ReadonlyArray<string> => {
  const split = words.flatMap((w) => {
    const i = w.indexOf("=")
    return w.startsWith("--") && i > 0 ? [w.slice(0, i), w.slice(i + 1)] : [w]
  })
  return split.map((w, i) => (i > 0 && SECRET_FLAGS.includes(split[i - 1] as string) ? OMITTED : w))
}

const notJoinFlag = (f: Flag) => !JOIN_FLAGS.some((j) => j.names.includes(f.name))

/** Pairs each flag with the word after it when that word is not a flag. */
const pairs = (words: ReadonlyArray<string>): ReadonlyArray<Flag> => {
  const out: Array<Flag> = []
  for (let i = 0; i < words.length; i++) {
    const name = words[i] as string
    const next = words[i + 1]
    if (next !== undefined && !next.startsWith("-")) {
      out.push({ name, value: next })
      i++
    } else out.push({ name, value: undefined })
  }
  return out
}

/**
 * The flags a caller gave (`k3s.installFlags`, one word per item or `--flag=value`), as k3s would record them; the
 * join flags (set by this library) left out.
 *
 * @since 0.4.0
 * @category flags
 */
export const desiredFlags = (flags: ReadonlyArray<string>): ReadonlyArray<Flag> =>
  pairs(recordedWords(flags)).filter(notJoinFlag)

/**
 * The caller's part of a Node's `k3s.io/node-args`: the command word and the join flags (`--server`, `--node-name`,
 * `--cluster-init`, the token from config.yaml) left out. `undefined` when the annotation is missing or not a JSON
 * array of strings (a Node that k3s did not start, or an older k3s).
 *
 * @since 0.4.0
 * @category flags
 */
export const runningFlags = (nodeArgs: ReadonlyArray<string> | undefined): ReadonlyArray<Flag> | undefined => {
  if (nodeArgs === undefined || nodeArgs.length === 0) return undefined
  // already split by k3s; split again all the same (idempotent) for a Node whose annotation was written otherwise
  return pairs(recordedWords(nodeArgs.slice(1))).filter(notJoinFlag)
}

/** `--flag=value` (or `--flag`) for messages; a masked value stays masked. @since 0.4.0 @category flags */
export const showFlag = (f: Flag): string => (f.value === undefined ? f.name : `${f.name}=${f.value}`)

/**
 * How the flags a node runs with differ from the wanted ones, order aside (`k3s` reads `--disable=a --disable=b` and
 * `--disable=b --disable=a` alike), and the comma-separated values of `COMMA_SEPARATED_FLAGS` taken item by item.
 *
 * @since 0.4.0
 * @category models
 */
export interface FlagsDiff {
  /** Wanted, not running. */
  readonly added: ReadonlyArray<Flag>
  /** Running, not wanted. */
  readonly removed: ReadonlyArray<Flag>
}

const key = (f: Flag) => `${f.name}\u0000${f.value ?? ""}`

/**
 * The flags whose values k3s splits at commas itself, so that `--disable=traefik,servicelb` and `--disable=traefik
 * --disable=servicelb` run alike (k3s-io/k3s `pkg/cli/server/server.go`: `util.SplitStringSlice` of `--tls-san`,
 * `--cluster-cidr`, `--service-cidr`, `--cluster-dns` and `--disable`, whose items are also trimmed;
 * `pkg/agent/config/config.go` and `pkg/util`: `ParseStringSliceToIPs` of `--node-ip` and `--node-external-ip`, a
 * `strings.Split` of `--node-internal-dns` and `--node-external-dns`); and `--node-taint`, which k3s joins with commas
 * into the kubelet's `--register-with-taints` (`pkg/daemons/agent/agent_linux.go`), which the kubelet splits again.
 * Every other repeatable flag takes a value as it is: `--node-label=a=b,c=d` is one label `a` of value `b,c=d` to k3s
 * (`updateMutableLabels` splits at the first `=` only), and a `--kubelet-arg` or `--kube-apiserver-arg`
 * value may hold commas of its own (`feature-gates=A=true,B=false`). k3s's CLI does not split any (urfave/cli v1 never
 * did; k3s sets `DisableSliceFlagSeparator` since it moved to v2).
 *
 * @since 0.6.0
 * @category flags
 */
export const COMMA_SEPARATED_FLAGS: ReadonlyArray<string> = [
  "--disable",
  "--tls-san",
  "--cluster-cidr",
  "--service-cidr",
  "--cluster-dns",
  "--node-ip",
  "--node-external-ip",
  "--node-internal-dns",
  "--node-external-dns",
  "--node-taint"
]

/** k3s's one-letter aliases (`-t` and `-s` are join flags). */
const ALIASES: Readonly<Record<string, string>> = {
  c: "config",
  l: "log",
  d: "data-dir",
  o: "write-kubeconfig",
  i: "node-ip"
}

/**
 * A flag as k3s takes it: its long name with two dashes (`-i`, `-node-ip` and `--node-ip` are one flag to Go's flag
 * parser), and, for a flag of `COMMA_SEPARATED_FLAGS`, one flag per comma-separated item.
 *
 * @since 0.6.0
 * @category flags
 */
export const asK3sTakesIt = (flag: Flag): ReadonlyArray<Flag> => {
  const bare = bareFlagName(flag.name)
  const name = bare === undefined ? flag.name : `--${ALIASES[bare] ?? bare}`
  if (flag.value === undefined || !COMMA_SEPARATED_FLAGS.includes(name)) return [{ name, value: flag.value }]
  const items = flag.value.split(",")
  // k3s trims each --disable item, and an empty one disables nothing
  const values = name === "--disable" ? items.map((v) => v.trim()).filter((v) => v !== "") : items
  return values.map((value) => ({ name, value }))
}

/**
 * The difference between the running flags and the wanted ones, each counted (a flag given twice is two), as k3s takes
 * them (`asK3sTakesIt`): spelling aside, and a comma-separated value of a flag k3s splits the same as the flag given
 * once per item. The flags of the result are in that form (`--disable=servicelb` for a `--disable=traefik,servicelb`
 * that lost `servicelb`).
 *
 * @since 0.4.0
 * @category flags
 */
export const diffFlags = (runs: ReadonlyArray<Flag>, wants: ReadonlyArray<Flag>): FlagsDiff => {
  const running = runs.flatMap(asK3sTakesIt)
  const wanted = wants.flatMap(asK3sTakesIt)
  const left = new Map<string, number>()
  for (const f of running) left.set(key(f), (left.get(key(f)) ?? 0) + 1)
  const added: Array<Flag> = []
  for (const f of wanted) {
    const n = left.get(key(f)) ?? 0
    if (n > 0) left.set(key(f), n - 1)
    else added.push(f)
  }
  const removed: Array<Flag> = []
  for (const f of running) {
    const n = left.get(key(f)) ?? 0
    if (n > 0) {
      left.set(key(f), n - 1)
      removed.push(f)
    }
  }
  return { added, removed }
}

/** Whether the diff is empty. @since 0.4.0 @category flags */
export const sameFlags = (diff: FlagsDiff): boolean => diff.added.length === 0 && diff.removed.length === 0

/**
 * Flags whose value k3s cannot change once the cluster (or the node) has started: the network and datastore of the
 * cluster (the "critical configuration values" every server must share, k3s.md §3.3), where the node keeps its data,
 * and the node's name.
 *
 * @since 0.4.0
 * @category flags
 */
export const IMMUTABLE_FLAGS: ReadonlyArray<string> = [
  "--cluster-cidr",
  "--service-cidr",
  "--cluster-dns",
  "--cluster-domain",
  "--flannel-backend",
  "--flannel-ipv6-masq",
  "--flannel-external-ip",
  "--disable-network-policy",
  "--egress-selector-mode",
  "--secrets-encryption",
  "--secrets-encryption-provider",
  "--embedded-registry",
  "--disable-cloud-controller",
  "--disable-helm-controller",
  "--service-node-port-range",
  "--datastore-endpoint",
  "--data-dir",
  "-d",
  "--with-node-id",
  "--agent-token",
  "--agent-token-file"
]

/** `--disable servicelb` is a critical value too (the other `--disable` components may change). */
const disablesServicelb = (f: Flag) =>
  f.name === "--disable" && (f.value ?? "").split(",").some((c) => c.trim() === "servicelb")

/**
 * The changed flags k3s cannot apply to a running cluster: from `IMMUTABLE_FLAGS`, and `--disable servicelb`.
 *
 * @since 0.4.0
 * @category flags
 */
export const immutableChanges = (diff: FlagsDiff): ReadonlyArray<Flag> => {
  const bad = (f: Flag) => IMMUTABLE_FLAGS.includes(f.name) || disablesServicelb(f)
  const seen = new Set<string>()
  return [...diff.added, ...diff.removed].filter((f) => {
    if (!bad(f) || seen.has(f.name)) return false
    seen.add(f.name)
    return true
  })
}

/**
 * What a changed `--node-label` or `--node-taint` needs done to the Node by hand (`kubectl`), since installing k3s
 * again with the new flags does not do it:
 *
 * - labels: at every start k3s sets the labels of its `--node-label` flags on its Node, merged into those it has
 *   (k3s-io/k3s `pkg/agent/run.go`, `configureNode`/`updateMutableLabels`): a new or changed label is set by the
 *   restart, but the label of a `--node-label` no longer given stays on the Node for good;
 * - taints: k3s hands `--node-taint` only to the kubelet's `--register-with-taints`
 *   (`pkg/daemons/agent/agent_linux.go`), which applies them when it creates the Node and never after: a Node keeps
 *   the taints it registered with, whatever later starts are given.
 *
 * @since 0.6.0
 * @category models
 */
export interface NodeChanges {
  /** Label keys of `--node-label` flags no longer given, that no wanted `--node-label` sets: `kubectl label … key-`. */
  readonly removeLabels: ReadonlyArray<string>
  /**
   * Taints (`key[=value]:Effect`) of `--node-taint` flags no longer given, whose key and effect no wanted
   * `--node-taint` has: `kubectl taint … key:Effect-`.
   */
  readonly removeTaints: ReadonlyArray<string>
  /** Taints of the `--node-taint` flags added: `kubectl taint … key=value:Effect --overwrite`. */
  readonly addTaints: ReadonlyArray<string>
}

/** `key` and `Effect` of a taint `key[=value]:Effect` (no effect: `undefined`). */
const taintKey = (spec: string): { readonly key: string; readonly effect: string | undefined } => {
  const colon = spec.lastIndexOf(":")
  const kv = colon < 0 ? spec : spec.slice(0, colon)
  const eq = kv.indexOf("=")
  return { key: eq < 0 ? kv : kv.slice(0, eq), effect: colon < 0 ? undefined : spec.slice(colon + 1) }
}

/**
 * What the Node needs besides the new flags (`NodeChanges`), from the flags' diff and the wanted flags: nothing for
 * a change of other flags.
 *
 * @since 0.6.0
 * @category flags
 */
export const nodeChanges = (diff: FlagsDiff, wanted: ReadonlyArray<Flag>): NodeChanges => {
  const values = (flags: ReadonlyArray<Flag>, name: string) =>
    flags
      .flatMap(asK3sTakesIt)
      .flatMap((f) => (f.name === name && f.value !== undefined && f.value !== "" ? [f.value] : []))
  const labelKey = (v: string) => v.split("=")[0] as string
  const wantedLabels = new Set(values(wanted, "--node-label").map(labelKey))
  const wantedTaints = values(wanted, "--node-taint").map(taintKey)
  const removeLabels = [
    ...new Set(
      values(diff.removed, "--node-label")
        .map(labelKey)
        .filter((k) => !wantedLabels.has(k))
    )
  ]
  const removeTaints = [
    ...new Set(
      values(diff.removed, "--node-taint").filter((t) => {
        const { key, effect } = taintKey(t)
        return !wantedTaints.some((w) => w.key === key && w.effect === effect)
      })
    )
  ]
  return { removeLabels, removeTaints, addTaints: [...new Set(values(diff.added, "--node-taint"))] }
}

/** Whether `nodeChanges` found nothing to do. @since 0.6.0 @category flags */
export const noNodeChanges = (changes: NodeChanges): boolean =>
  changes.removeLabels.length === 0 && changes.removeTaints.length === 0 && changes.addTaints.length === 0

/**
 * A node's arguments with the caller's flags replaced: the command word and the join flags of `args` (an `ExecStart`)
 * kept in place, every other flag dropped, `flags` appended (as an install puts them: after the join flags).
 *
 * @since 0.4.0
 * @category flags
 */
export const withFlags = (args: ReadonlyArray<string>, flags: ReadonlyArray<string>): ReadonlyArray<string> => {
  const [command, ...rest] = args
  const kept: Array<string> = []
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i] as string
    const name = w.startsWith("--") && w.includes("=") ? w.slice(0, w.indexOf("=")) : w
    const join = JOIN_FLAGS.find((j) => j.names.includes(name))
    if (join === undefined) continue
    kept.push(w)
    if (join.value && name === w && rest[i + 1] !== undefined) kept.push(rest[++i] as string)
  }
  return command === undefined ? [...flags] : [command, ...kept, ...flags]
}
