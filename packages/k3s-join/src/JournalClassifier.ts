/**
 * Classification of k3s journal lines (k3s.md §8.4). Pure: give it the output of
 * `journalctl -u k3s|k3s-agent --no-pager -n 200 -o cat`.
 *
 * @since 0.1.0
 */

/**
 * A known join failure recognised in a journal line.
 *
 * @since 0.1.0
 * @category models
 */
export type JournalFailure =
  | "NodePasswordRejected"
  | "DuplicateEtcdMember"
  | "EtcdMemberRemoved"
  | "EtcdMemberRemovedRestart"
  | "TooManyLearners"
  | "CaHashMismatch"
  | "Unauthorized"
  | "NotAServerToken"
  | "ConfigMismatch"
  | "NoEmbeddedEtcd"
  | "SanMismatch"
  | "ServerUnreachable"
  | "EtcdUnavailable"
  | "DatastoreTokenMismatch"
  | "UndefinedFlag"

/**
 * @since 0.1.0
 * @category models
 */
export interface JournalClassification {
  readonly failure: JournalFailure
  /** The line that matched. */
  readonly line: string
  /**
   * Whether waiting cannot help: k3s retries forever but the cause will not go away by itself (bad token, stale
   * node password, …). `ServerUnreachable`, `EtcdUnavailable` and `TooManyLearners` are transient and worth waiting for.
   */
  readonly permanent: boolean
}

/** Most specific first: a line is classified by the first rule whose substring it contains. */
const RULES: ReadonlyArray<readonly [JournalFailure, ReadonlyArray<string>, boolean]> = [
  ["NodePasswordRejected", ["Node password rejected"], true],
  // k3s's command line has a flag its command does not define (urfave/cli; an agent given a server flag): k3s stops
  // at once and systemd starts it again every 5 s, forever
  ["UndefinedFlag", ["flag provided but not defined"], true],
  ["DuplicateEtcdMember", ["duplicate node name found"], true],
  // k3s's own line once etcd told it that the cluster removed its member, in the releases since January 2026
  // (v1.32.11+k3s3, v1.33.7+k3s3, v1.34.3+k3s3, v1.35.0+k3s3): it wrote the etcd tombstone and runs on without etcd;
  // at its next start it moves that member's data aside and joins again as a new member (k3s pkg/etcd `Register`).
  // etcd's two lines below come just before it; the newest line wins, so this is what such a journal says. Not
  // permanent: a restart fixes it (the wait after an install restarts the unit for it), but k3s does not restart itself
  ["EtcdMemberRemovedRestart", ["has been removed from the cluster - please restart"], false],
  // etcd's own lines (JSON) when the cluster removed this server's member and it starts on that member's data: k3s
  // before those releases exits and systemd starts it again, forever, until the data is deleted (k3s-io/k3s#13498,
  // #2527)
  [
    "EtcdMemberRemoved",
    ["the member has been permanently removed from the cluster", "data-dir used by this member must be removed"],
    true
  ],
  ["TooManyLearners", ["too many learner members"], false],
  ["CaHashMismatch", ["token CA hash does not match"], true],
  ["NotAServerToken", ["failed to normalize server token"], true],
  ["DatastoreTokenMismatch", ["bootstrap data already found and encrypted with different token"], true],
  ["ConfigMismatch", ["critical configuration value mismatch"], true],
  ["SanMismatch", ["x509: certificate is valid for"], true],
  // a server joining one without embedded etcd (SQLite, the default of `curl -sfL https://get.k3s.io | sh -`, or an
  // external datastore): that server answers the bootstrap request 400 "etcd disabled" (k3s pkg/server/handlers
  // Bootstrap; k3s #6163), the joiner exits, and systemd starts it again every 5 s, forever
  ["NoEmbeddedEtcd", ["/v1-k3s/server-bootstrap: 400 Bad Request"], true],
  ["Unauthorized", ["401 Unauthorized"], true],
  // a server whose etcd does not answer in time: no quorum (too few of its servers run), or etcd stuck; it comes back
  // once enough servers run again (or after `k3s server --cluster-reset` on the last one)
  [
    "EtcdUnavailable",
    [
      "Failed to get apiserver address from etcd: context deadline exceeded",
      "Failed to test data store connection: context deadline exceeded",
      "etcdserver: request timed out"
    ],
    false
  ],
  ["ServerUnreachable", ["connect: connection refused", "i/o timeout", "no route to host"], false]
]

/**
 * Classifies one journal line, or `undefined` when it is not a known failure.
 *
 * @since 0.1.0
 * @category classification
 */
export const classifyLine = (line: string): JournalClassification | undefined => {
  for (const [failure, needles, permanent] of RULES) {
    if (needles.some((needle) => line.includes(needle))) return { failure, line, permanent }
  }
  return undefined
}

/**
 * Classifies a journal excerpt by its most recent failure line (k3s retries, so the newest line is the current
 * cause). `undefined` when no line is a known failure.
 *
 * @since 0.1.0
 * @category classification
 */
export const classifyJournal = (lines: ReadonlyArray<string>): JournalClassification | undefined => {
  for (let i = lines.length - 1; i >= 0; i--) {
    const found = classifyLine(lines[i] as string)
    if (found !== undefined) return found
  }
  return undefined
}

/**
 * systemd's line for a start of the unit, as `journalctl -u <unit> -o cat` shows it: `Starting Lightweight
 * Kubernetes...` (the unit's Description) or, with newer systemd, `Starting k3s-agent.service - Lightweight
 * Kubernetes...`. k3s's own lines begin with `time="`, urfave/cli's with `Incorrect Usage`.
 */
const UNIT_START = /^Starting .+(?:\.\.\.|…)$/

/**
 * The lines written since systemd last started the unit: those after its last `Starting …` line, or all of them when
 * the excerpt holds none. systemd writes that line for every start (a restart, a reboot, its own restart after a
 * crash) once the previous process is gone, so what comes before it is an earlier run's: a `401 Unauthorized` of the
 * token that run had, fixed since, is history, not the cause of anything now.
 *
 * @since 0.4.2
 * @category classification
 */
export const linesSinceUnitStart = (lines: ReadonlyArray<string>): Array<string> => {
  for (let i = lines.length - 1; i >= 0; i--) if (isUnitStart(lines[i] as string)) return lines.slice(i + 1)
  return [...lines]
}

/**
 * The etcd member a server's k3s added for itself and joins as, from the journal lines since its unit started
 * (`linesSinceUnitStart`): k3s logs `Adding member <name>=<peer URL> to etcd cluster [...]` as it adds its member (a
 * learner) to the cluster, before its Node registers (k3s.md §3.5). Undefined when those lines show no such join, or
 * show it ended (`k3s is up and running`, or a fatal line after it).
 *
 * @since 0.11.0
 * @category classification
 */
export const joiningMemberOf = (
  lines: ReadonlyArray<string>
): { readonly member: string; readonly peerURL: string; readonly line: string } | undefined => {
  let found: { member: string; peerURL: string; line: string } | undefined
  for (const line of lines) {
    const added = /Adding member (\S+?)=(\S+) to etcd cluster/.exec(line)
    if (added !== null) found = { member: added[1] as string, peerURL: added[2] as string, line }
    else if (found !== undefined && (line.includes("k3s is up and running") || line.includes("level=fatal")))
      found = undefined
  }
  return found
}

/**
 * Whether the journal lines since the unit last started (`linesSinceUnitStart`) name the etcd member this run of a
 * server's k3s joins as, if it joins as any: they do unless k3s started etcd as a member they do not name. After a
 * restart k3s starts etcd on the data of the member an earlier start added (`Starting etcd for existing cluster
 * member`), or finds that member listed already and starts etcd to join as it without adding it again (`Starting etcd
 * to join cluster with members [...]` with no `Adding member` before it): a join going on as a member these lines do
 * not name (k3s pkg/etcd `Start`, `join`).
 *
 * @since 0.11.1
 * @category classification
 */
export const namesJoiningMember = (lines: ReadonlyArray<string>): boolean => {
  let added = false
  for (const line of lines) {
    if (/Adding member \S+?=\S+ to etcd cluster/.test(line)) added = true
    else if (line.includes("Starting etcd for existing cluster member")) return false
    else if (!added && line.includes("Starting etcd to join cluster with members")) return false
  }
  return true
}

/**
 * Whether `line` is systemd's line for a start of the unit (`Starting Lightweight Kubernetes...`), as
 * `linesSinceUnitStart` finds it.
 *
 * @since 0.6.2
 * @category classification
 */
export const isUnitStart = (line: string): boolean => UNIT_START.test(line)

/**
 * The failure a wait for the unit's current run goes by, from one journal excerpt: `lines` as read, `fresh` those of
 * them written since the baseline (`newJournalLines`). Only the current run's lines count: those after systemd's last
 * start of the unit (`linesSinceUnitStart`) and those after the baseline, whichever are fewer (both are suffixes of
 * `lines`: the fewer are the lines they agree on). Without a baseline (a VM restarted) the excerpt goes back past the
 * start; and a process a restart replaced may have written after the baseline was read.
 *
 * `startPending`: the unit was (re)started after the baseline was read (an install that changed something restarts
 * it), and no earlier excerpt showed that start's line. Then a permanent verdict needs the start line among the fresh
 * lines: journald writes systemd's line asynchronously, so a read right after `systemctl restart --no-block` may not
 * show it yet, and the fresh lines are then the replaced process's last ones (an agent rejected by a stale node-password
 * secret deleted since logs `Node password rejected` once more). Until the start line is there, a failure is only worth
 * waiting on (`permanent: false`); once it is, the lines after it are the new run's and judged as they are.
 *
 * @since 0.6.2
 * @category classification
 */
export const classifyCurrentRun = (
  lines: ReadonlyArray<string>,
  fresh: ReadonlyArray<string>,
  startPending: boolean
): JournalClassification | undefined => {
  const sinceStart = linesSinceUnitStart(lines)
  const found = classifyJournal(sinceStart.length < fresh.length ? sinceStart : fresh)
  if (found === undefined || !found.permanent || !startPending || fresh.some(isUnitStart)) return found
  return { ...found, permanent: false }
}

/**
 * Splits journal output into non-empty lines.
 *
 * @since 0.1.0
 * @category classification
 */
export const journalLines = (output: string): Array<string> =>
  output
    .split("\n")
    .map((l) => l.replace(/\r$/, ""))
    .filter((l) => l.trim() !== "")

/**
 * The lines of `current` that were not in `baseline` (an earlier excerpt of the same journal, e.g. taken before
 * starting the unit): `current` is aligned on the longest suffix of `baseline` that is a prefix of `current`; with no
 * overlap (the window moved past it), all of `current` is new.
 *
 * @since 0.1.0
 * @category classification
 */
export const newJournalLines = (baseline: ReadonlyArray<string>, current: ReadonlyArray<string>): Array<string> => {
  for (let k = Math.min(baseline.length, current.length); k > 0; k--) {
    let aligned = true
    for (let i = 0; i < k; i++) {
      if (baseline[baseline.length - k + i] !== current[i]) {
        aligned = false
        break
      }
    }
    if (aligned) return current.slice(k)
  }
  return [...current]
}
