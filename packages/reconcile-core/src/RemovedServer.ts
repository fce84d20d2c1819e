import { type ClusterNode, clusterVersionOf, compareVersions, parseK3sVersion } from "@homelab/k3s-join"
import type { Finding } from "./Action.js"
import type { DesiredK3s } from "./Desired.js"
import { DestroyTag } from "./Marks.js"

/**
 * The first release of each minor whose k3s joins again by itself after the cluster removed its etcd member (the
 * January 2026 `-k3s3` releases, k3s-io/k3s #13533 / PR #13535): etcd's `ErrMemberRemoved` — while k3s runs, or at a
 * start on that member's data, when etcd hears it from its peers — makes k3s write `<data-dir>/server/db/etcd/tombstone`
 * and log `This node has been removed from the cluster - please restart k3s to rejoin the cluster`
 * (`pkg/daemons/executor/embed.go`); at its next start `Register` (`pkg/etcd/etcd.go`) moves `db/etcd` aside and it
 * joins through its `--server` as a new member. Older releases loop on etcd's `the member has been permanently removed
 * from the cluster` until the data is deleted by hand. The simulator's `EtcdTombstone.ts` holds the same boundaries.
 */
const REJOINS_FROM: Readonly<Record<number, string>> = {
  32: "v1.32.11+k3s3",
  33: "v1.33.7+k3s3",
  34: "v1.34.3+k3s3",
  35: "v1.35.0+k3s3"
}

/** `REJOINS_FROM`, as the hint names them. */
export const rejoiningReleases = Object.values(REJOINS_FROM).join(", ")

/** Whether k3s `version` joins again after a restart once the cluster removed its etcd member (see `REJOINS_FROM`). */
export const rejoinsAfterRemoval = (version: string): boolean => {
  const v = parseK3sVersion(version)
  if (v === undefined || v.major !== 1) return false
  if (v.minor > 35) return true
  const first = REJOINS_FROM[v.minor]
  return first !== undefined && compareVersions(version, first) >= 0
}

/**
 * The k3s version a server VM runs once apply joined it: what `ensureMember` installs, `k3s.version`, else the oldest
 * server Node's (`clusterVersionOf`). `undefined` when neither is known.
 */
export const joinedVersion = (pinned: string | undefined, nodes: ReadonlyArray<ClusterNode>): string | undefined =>
  pinned ?? clusterVersionOf(nodes)

/** A server VM an earlier teardown took out of the cluster (its Node and etcd member gone, the VM kept). */
export interface RemovedServer {
  readonly node: string
  readonly vm: string
  readonly vmid: number
  /** k3s's restart line in its journal (observe's `removedMembers`): it wrote the tombstone already. */
  readonly line?: string | undefined
  /** What `joinedVersion` says. */
  readonly version: string | undefined
}

/**
 * What the plan does with such a server: a join (its reason) when a restart of k3s joins it again as a new member (its
 * k3s said so in its journal, or the version it runs once joined writes the tombstone), otherwise the blocked finding
 * `k3s.member-removed` with the ways out for that version.
 */
export const planRemovedServer = (
  s: RemovedServer,
  k3s: Pick<DesiredK3s, "version">
): { readonly _tag: "Join"; readonly reason: string } | { readonly _tag: "Blocked"; readonly finding: Finding } => {
  const taken = `${s.vm} was taken out of the cluster by an earlier teardown that stopped before destroying VM ${s.vmid} (it carries '${DestroyTag}'): its Node and etcd member are gone`
  // the version decides (the join installs it); without one, what k3s on the VM said
  if (s.version !== undefined ? rejoinsAfterRemoval(s.version) : s.line !== undefined) {
    const why =
      s.line !== undefined
        ? "k3s there wrote the tombstone and runs on without etcd until it is restarted"
        : `k3s ${s.version} writes a tombstone once etcd tells it the member was removed, and joins again at its next start`
    return {
      _tag: "Join",
      reason: `${taken}; homelab.yaml still asks for it: ${why}; apply restarts k3s on ${s.vm}, which joins again as a new member, and clears '${DestroyTag}'`
    }
  }
  const clear = `remove its tag '${DestroyTag}' (\`qm set ${s.vmid} --tags …\` on ${s.node}), then run apply: it joins as a new server`
  const byHand = `to keep its disk: \`sudo systemctl stop k3s && sudo rm -rf /var/lib/rancher/k3s/server/db\` on the VM, ${clear}`
  const rebuild = `to rebuild it on a new disk: \`homelab reprovision ${s.vm}\``
  const finding = (why: string, hint: string): Finding => ({
    code: "k3s.member-removed",
    effect: "blocked",
    layer: "k3s",
    node: s.node,
    vm: s.vm,
    vmid: s.vmid,
    message: `k3s server ${taken}, and ${why}`,
    hint
  })
  if (s.version === undefined)
    return {
      _tag: "Blocked",
      finding: finding(
        `the k3s version it would run once joined is not known (no k3s.version, and no server Node reports one): k3s before the January 2026 releases (${rejoiningReleases}) cannot start again on the etcd data its disk holds (etcd refuses a removed member), later ones join again at a restart`,
        `set k3s.version, then run apply again; ${rebuild}; ${byHand}`
      )
    }
  return {
    _tag: "Blocked",
    finding: finding(
      `k3s ${s.version} cannot start again on the etcd data its disk holds: etcd refuses a removed member at every start, and k3s before the January 2026 releases does not move that data aside by itself`,
      `${rebuild}; ${byHand}; or upgrade the cluster to a k3s release from January 2026 on (${rejoiningReleases} or later${k3s.version === undefined ? ": set k3s.version" : `, in k3s.version, now ${k3s.version}`}), and apply restarts its k3s, which joins again as a new member`
    )
  }
}
