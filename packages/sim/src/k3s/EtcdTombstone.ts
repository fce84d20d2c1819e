/**
 * What k3s does with the etcd data of a server whose member the cluster removed (its Node deleted, the
 * `etcd.k3s.cattle.io/remove` annotation), per release.
 *
 * Sources (k3s-io/k3s):
 * - `pkg/daemons/executor/embed.go` (since PR #2592, 2020): when etcd reports `rafthttp.ErrMemberRemoved` while k3s
 *   runs, k3s writes `<data-dir>/server/db/etcd/tombstone`, closes etcd and logs `This node has been removed from the
 *   cluster - please restart k3s to rejoin the cluster`; the process does not exit (it runs on without etcd, degraded).
 * - `pkg/etcd/etcd.go` `Register`: at a start, a tombstone file makes k3s log `tombstone file has been detected,
 *   removing data dir to rejoin the cluster` and move `db/etcd` aside (`backupDirWithRetention`: `db/etcd-old-<unix
 *   seconds>`, the newest 5 kept); the member name file goes with it, so `setName` picks a new `<node>-<8 hex>` and the
 *   server joins through its `--server` as a new member (a learner, then promoted), with a new member ID.
 * - Before the January 2026 releases that path was not reached: a removed member's k3s stopped on etcd's own
 *   `the member has been permanently removed from the cluster` / `data-dir used by this member must be removed` and
 *   systemd started it again, forever, until the data was deleted by hand (k3s-io/k3s #13498, #2527). The "fixes to
 *   etcd reconcile" of the January 2026 `-k3s3` releases (k3s-io/k3s #13533, PR #13535; release notes of
 *   v1.35.0+k3s3) changed that: the tombstone is honoured and the server rejoins at its next start (k3s-io/k3s #13623:
 *   "January 2026 -k3s3 releases ... Server successfully restarts and removes the tombstone file").
 * - k3s-io/k3s #13623 (an issue, not a PR), fixed by PR #13624 (master) and its backports #13630 (release-1.35),
 *   #13631 (release-1.34), #13632 (release-1.33), #13633 (release-1.32), in the February 2026 releases
 *   (v1.35.1+k3s1 lists #13630): a removed server without `--server` (the `--cluster-init` one) started a new,
 *   separate single-node cluster on the moved-aside data; since then k3s refuses to start instead (`tombstone file has
 *   been detected but --server is empty: backup and delete ${datadir}/server/db to create a new cluster, or set
 *   --server to rejoin`), and leaves the data where it is.
 *
 * Version boundaries: the v1.35 ones are from the k3s-io/docs release notes; the v1.34/v1.33/v1.32 ones are the same
 * monthly releases on those branches (their `-k3s3` re-spins of January 2026, and the first patch release after).
 * v1.31 and older had no releases then: they keep the fatal loop.
 */
import { compareReleases, minorOf } from "./K3sReleases.js"

/** The first release of each minor that honours the tombstone at a start (January 2026 `-k3s3`). */
const REJOINS_FROM: Readonly<Record<number, string>> = {
  32: "v1.32.11+k3s3",
  33: "v1.33.7+k3s3",
  34: "v1.34.3+k3s3",
  35: "v1.35.0+k3s3"
}

/** The first release of each minor that refuses a tombstone without `--server` (PR #13624 and its backports). */
const NEEDS_SERVER_FROM: Readonly<Record<number, string>> = {
  32: "v1.32.12+k3s1",
  33: "v1.33.8+k3s1",
  34: "v1.34.4+k3s1",
  35: "v1.35.1+k3s1"
}

const since = (table: Readonly<Record<number, string>>, version: string): boolean => {
  const m = minorOf(version)
  if (m === undefined || m[0] !== 1) return false
  if (m[1] > 35) return true
  const first = table[m[1]]
  return first !== undefined && compareReleases(version, first) >= 0
}

/** A removed member's k3s moves its etcd data aside at its next start (the tombstone) and joins again. */
export const removedMemberRejoins = (version: string): boolean => since(REJOINS_FROM, version)

/** A tombstone without `--server` stops k3s (rather than starting a new cluster on the moved-aside data). */
export const tombstoneNeedsServer = (version: string): boolean => since(NEEDS_SERVER_FROM, version)

export const TOMBSTONE = "/var/lib/rancher/k3s/server/db/etcd/tombstone"
export const ETCD_DIR = "/var/lib/rancher/k3s/server/db/etcd"

/** etcd's own lines when it learns that the cluster removed its member (etcdserver `server.go`). */
export const ETCD_REMOVED = "etcdserver: the member has been permanently removed from the cluster"
export const ETCD_DATA_DIR = "data-dir used by this member must be removed"
/** k3s's line once it wrote the tombstone (`pkg/daemons/executor/embed.go`). */
export const REMOVED_RESTART = "This node has been removed from the cluster - please restart k3s to rejoin the cluster"
/** k3s's line at a start that finds the tombstone (`pkg/etcd/etcd.go` `Register`). */
export const TOMBSTONE_DETECTED = "tombstone file has been detected, removing data dir to rejoin the cluster"
export const TOMBSTONE_NO_SERVER =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: k3s's own words, a literal ${datadir}
  "tombstone file has been detected but --server is empty: backup and delete ${datadir}/server/db to create a new cluster, or set --server to rejoin"
