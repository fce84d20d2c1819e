import { assert, describe, it } from "@effect/vitest"
import {
  classifyCurrentRun,
  classifyJournal,
  classifyLine,
  isUnitStart,
  joiningMemberOf,
  journalLines,
  linesSinceUnitStart,
  namesJoiningMember,
  newJournalLines
} from "../src/JournalClassifier.js"
import { journal } from "./support/fixtures.js"

describe("a removed etcd member's journal", () => {
  it("k3s since January 2026: its tombstone line after etcd's two is what the journal says, and a restart fixes it", () => {
    const got = classifyJournal([journal.memberRemoved(), journal.dataDirMustGo(), journal.removedRestart(1)])
    assert.strictEqual(got?.failure, "EtcdMemberRemovedRestart")
    assert.isFalse(got?.permanent)
  })
  it("older k3s: etcd's lines alone, at every start, are permanent", () => {
    assert.strictEqual(
      classifyJournal([journal.memberRemoved(), journal.dataDirMustGo()])?.failure,
      "EtcdMemberRemoved"
    )
  })
  it("the restart that finds the tombstone is no failure", () => {
    assert.isUndefined(classifyLine(journal.tombstoneDetected()))
  })
})

describe("classifyLine", () => {
  it("classifies every §8.4 failure from real journal lines", () => {
    const cases: ReadonlyArray<readonly [string, string, boolean]> = [
      [journal.nodePassword(), "NodePasswordRejected", true],
      [journal.duplicateEtcd(), "DuplicateEtcdMember", true],
      [journal.memberRemoved(), "EtcdMemberRemoved", true],
      [journal.dataDirMustGo(), "EtcdMemberRemoved", true],
      [journal.removedRestart(), "EtcdMemberRemovedRestart", false],
      [journal.learners(), "TooManyLearners", false],
      [journal.caHash(), "CaHashMismatch", true],
      [journal.unauthorized(), "Unauthorized", true],
      [journal.normalize(), "NotAServerToken", true],
      [journal.critical(), "ConfigMismatch", true],
      [journal.san(), "SanMismatch", true],
      [journal.unreachable(), "ServerUnreachable", false],
      [journal.datastore(), "DatastoreTokenMismatch", true],
      [journal.noEtcd(), "NoEmbeddedEtcd", true],
      // newer k3s, without the "starting kubernetes" wrap (pkg/daemons/control `Prepare`)
      [
        `level=fatal msg="Error: preparing server: failed to bootstrap cluster data: https://10.0.10.11:6443/v1-k3s/server-bootstrap: 400 Bad Request"`,
        "NoEmbeddedEtcd",
        true
      ],
      // k3s v1.24 (k3s #6163), before the "failed to bootstrap cluster data" wrap
      [
        `level=fatal msg="preparing server: https://192.168.64.2:6443/v1-k3s/server-bootstrap: 400 Bad Request"`,
        "NoEmbeddedEtcd",
        true
      ],
      [journal.undefinedFlagUsage(), "UndefinedFlag", true],
      [journal.undefinedFlag(), "UndefinedFlag", true],
      [`level=error msg="... dial tcp 10.0.10.11:6443: i/o timeout"`, "ServerUnreachable", false],
      [`level=error msg="... connect: no route to host"`, "ServerUnreachable", false],
      // a server whose etcd has no quorum: k3s's and etcd's own lines while it waits (transient: servers may come back)
      [`level=info msg="Failed to test data store connection: context deadline exceeded"`, "EtcdUnavailable", false],
      [
        `level=warning msg="Failed to get apiserver address from etcd: context deadline exceeded"`,
        "EtcdUnavailable",
        false
      ],
      [`level=error msg="... etcdserver: request timed out"`, "EtcdUnavailable", false]
    ]
    for (const [line, failure, permanent] of cases) {
      const got = classifyLine(line)
      assert.strictEqual(got?.failure, failure, line)
      assert.strictEqual(got?.permanent, permanent, line)
      assert.strictEqual(got?.line, line)
    }
  })

  it("leaves ordinary lines unclassified", () => {
    assert.isUndefined(classifyLine(journal.starting()))
    assert.isUndefined(classifyLine(journal.upAgent()))
    assert.isUndefined(classifyLine(`level=info msg="Waiting for agent to become ready before joining ETCD cluster"`))
  })
})

describe("classifyJournal", () => {
  it("uses the most recent failure line", () => {
    const lines = [journal.starting(0), journal.unreachable(1), journal.nodePassword(2), journal.starting(3)]
    assert.strictEqual(classifyJournal(lines)?.failure, "NodePasswordRejected")
    assert.strictEqual(classifyJournal([journal.nodePassword(0), journal.unreachable(1)])?.failure, "ServerUnreachable")
    assert.isUndefined(classifyJournal([journal.starting(), journal.upAgent()]))
    assert.isUndefined(classifyJournal([]))
  })
})

describe("journalLines / newJournalLines", () => {
  it("splits output and drops blank lines", () => {
    assert.deepStrictEqual(journalLines("a\r\n\nb\n"), ["a", "b"])
  })

  it("returns only the lines written after a baseline", () => {
    assert.deepStrictEqual(newJournalLines([], ["a", "b"]), ["a", "b"])
    assert.deepStrictEqual(newJournalLines(["a", "b"], ["a", "b", "c"]), ["c"])
    // the window moved: the beginning of the baseline is gone
    assert.deepStrictEqual(newJournalLines(["a", "b", "c"], ["b", "c", "d", "e"]), ["d", "e"])
    // repeated lines align on the longest overlap
    assert.deepStrictEqual(newJournalLines(["x", "l", "l"], ["l", "l", "l", "m"]), ["l", "m"])
    // no overlap: everything is new
    assert.deepStrictEqual(newJournalLines(["a"], ["p", "q"]), ["p", "q"])
  })
})

describe("linesSinceUnitStart", () => {
  it("keeps the lines after systemd's last start of the unit, in either of its formats", () => {
    const before = [journal.unitStart(), journal.starting(0), journal.unauthorized(1)]
    const after = [journal.starting(3), journal.upAgent(4)]
    assert.deepStrictEqual(linesSinceUnitStart([...before, journal.unitStart(), ...after]), after)
    const combined = "Starting k3s-agent.service - Lightweight Kubernetes..."
    assert.deepStrictEqual(linesSinceUnitStart([...before, combined, ...after]), after)
    // a start that has not written anything yet
    assert.deepStrictEqual(linesSinceUnitStart([...before, journal.unitStart()]), [])
  })

  it("keeps every line when the excerpt holds no start (k3s's own Starting line is not one)", () => {
    const lines = [journal.starting(0), journal.unauthorized(1)]
    assert.deepStrictEqual(linesSinceUnitStart(lines), lines)
  })
})

describe("classifyCurrentRun", () => {
  const before = [journal.unitStart(), journal.starting(0), journal.nodePassword(1)]

  it("judges the lines after the baseline and the unit's last start, whichever are fewer", () => {
    // a process the install replaced wrote after the baseline, and the new run's start is in the journal
    const lines = [...before, journal.nodePassword(2), journal.unitStart(), journal.starting(3)]
    assert.isUndefined(classifyCurrentRun(lines, lines.slice(3), false))
    assert.isUndefined(classifyCurrentRun(lines, lines.slice(3), true))
    // no restart: a failure after the baseline is the current run's
    assert.deepStrictEqual(classifyCurrentRun([...before, journal.nodePassword(2)], [journal.nodePassword(2)], false), {
      failure: "NodePasswordRejected",
      line: journal.nodePassword(2),
      permanent: true
    })
  })

  it("after a restart, only waits on a failure until the start line is among the fresh lines", () => {
    const late = [...before, journal.nodePassword(2)]
    assert.deepStrictEqual(classifyCurrentRun(late, [journal.nodePassword(2)], true), {
      failure: "NodePasswordRejected",
      line: journal.nodePassword(2),
      permanent: false
    })
    // the new run's own failure, after its start line, is permanent
    const started = [...late, journal.unitStart(), journal.starting(3), journal.unauthorized(4)]
    const failure = classifyCurrentRun(started, started.slice(3), true)
    assert.deepStrictEqual([failure?.failure, failure?.permanent], ["Unauthorized", true])
    // a transient failure stays transient
    const unreachable = classifyCurrentRun([...before, journal.unreachable(2)], [journal.unreachable(2)], true)
    assert.deepStrictEqual([unreachable?.failure, unreachable?.permanent], ["ServerUnreachable", false])
  })

  it("isUnitStart knows systemd's start line in either format, not k3s's own", () => {
    assert.isTrue(isUnitStart(journal.unitStart()))
    assert.isTrue(isUnitStart("Starting k3s-agent.service - Lightweight Kubernetes..."))
    assert.isFalse(isUnitStart(journal.starting()))
  })
})

describe("joiningMemberOf", () => {
  const added =
    'time="2026-12-07T21:00:01Z" level=info msg="Adding member s3-1a2b3c4d=https://10.0.0.13:2380 to etcd cluster [s1-00000000=https://10.0.0.11:2380 s2-00000001=https://10.0.0.12:2380]"'
  const starting =
    'time="2026-12-07T21:00:01Z" level=info msg="Starting etcd to join cluster with members [s1-00000000=https://10.0.0.11:2380 s3-1a2b3c4d=https://10.0.0.13:2380]"'
  const learner =
    'time="2026-12-07T21:00:02Z" level=info msg="this server has not yet been promoted from learner to voting member"'

  it("the member a server's k3s added for itself (k3s.md §3.5), while it has not come up since", () => {
    assert.deepStrictEqual(joiningMemberOf([added, starting, learner]), {
      member: "s3-1a2b3c4d",
      peerURL: "https://10.0.0.13:2380",
      line: added
    })
  })

  it("none once it is up, after a fatal line, or without such a line (a restart on its own member)", () => {
    assert.isUndefined(joiningMemberOf([added, starting, 'time="x" level=info msg="k3s is up and running"']))
    assert.isUndefined(
      joiningMemberOf([added, 'time="x" level=fatal msg="ETCD join failed: etcdserver: unhealthy cluster"'])
    )
    assert.isUndefined(joiningMemberOf([starting, learner]))
  })

  it("namesJoiningMember: the lines name the member k3s joins as, unless it started etcd as a member they do not name", () => {
    assert.isTrue(namesJoiningMember([added, starting, learner]))
    assert.isTrue(namesJoiningMember([]))
    assert.isTrue(namesJoiningMember(['time="x" level=fatal msg="ETCD join failed: duplicate node name found"']))
    // a restart: the member an earlier start added, found listed and joined as without adding it again
    assert.isFalse(namesJoiningMember([starting, learner]))
    // a restart on the etcd data of the member an earlier start added
    assert.isFalse(namesJoiningMember(['time="x" level=info msg="Starting etcd for existing cluster member"', learner]))
  })
})
