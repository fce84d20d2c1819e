import { assert, describe, it } from "@effect/vitest"
import type { TestSshServer } from "@homelab/ssh/testing"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/testing/TestClock"
import { type InstallRecord, lockedInstallCommand, parseRecord } from "../src/InstallCommand.js"
import { K3sJoinError } from "../src/K3sJoinError.js"
import type { JoinTimeouts, K3sJoinEvent } from "../src/K3sJoinOptions.js"
import { FakeCluster, FakeHost, type HostBehaviour } from "./support/FakeK3s.js"
import { CA_HASH, journal, SERVER_PASSWORD, SERVER_TOKEN } from "./support/fixtures.js"
import { harness, hostOf, serverOf, sshHost } from "./support/setup.js"

const S1 = { name: "k3s-s1", ip: "10.0.10.11", role: "server" as const }

/** A cluster with one server (k3s-s1) and its SSH endpoint. */
const clusterSetup = Effect.gen(function* () {
  const cluster = new FakeCluster()
  cluster.addNode(S1)
  const serverSsh = yield* sshHost(cluster.handler)
  return { cluster, serverSsh, server: serverOf(serverSsh) }
})

/** A joining host with its SSH endpoint. */
const joiningHost = (cluster: FakeCluster, name: string, ip: string, behaviour?: HostBehaviour) =>
  Effect.gen(function* () {
    const fake = new FakeHost(cluster, name, ip, behaviour)
    const ssh = yield* sshHost(fake.handler)
    return { fake, ssh, host: hostOf(ssh, ip) }
  })

const noSecretIn = (commands: ReadonlyArray<string>) => {
  for (const command of commands) {
    assert.notInclude(command, SERVER_PASSWORD)
    assert.notInclude(command, CA_HASH)
    assert.notMatch(command, /K3S_TOKEN=|--token/)
  }
}

const MUTATING = /install|curl|systemctl (start|restart)|delete|env /

describe("K3sJoin.fetchToken", () => {
  it.live("reads the server token with sudo -n cat and validates it", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { serverSsh, server } = yield* clusterSetup
      const token = yield* k3s.fetchToken(server, "server")
      assert.strictEqual(token.user, "server")
      assert.strictEqual(Redacted.value(token.value), SERVER_TOKEN)
      assert.deepStrictEqual(serverSsh.commands, ["sudo -n cat /var/lib/rancher/k3s/server/token"])
    })
  )

  it.live("agents read agent-token first", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { serverSsh, server } = yield* clusterSetup
      yield* k3s.fetchToken(server, "agent")
      assert.deepStrictEqual(serverSsh.commands, ["sudo -n cat /var/lib/rancher/k3s/server/agent-token"])
    })
  )

  it.live("a host that is not a server: TokenUnavailable after trying every token file", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, serverSsh, server } = yield* clusterSetup
      cluster.tokenFile = undefined
      const error = yield* Effect.flip(k3s.fetchToken(server, "agent"))
      assert.strictEqual(error.reason._tag, "TokenUnavailable")
      assert.match(error.message, /token: No such file or directory/)
      assert.strictEqual(serverSsh.commands.length, 3)
    })
  )

  it.live("sudo needing a password: TokenUnavailable at once", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, serverSsh, server } = yield* clusterSetup
      cluster.sudoNeedsPassword = true
      const error = yield* Effect.flip(k3s.fetchToken(server, "agent"))
      assert.isTrue(error.reason._tag === "TokenUnavailable" && error.reason.detail === "sudo: a password is required")
      assert.strictEqual(serverSsh.commands.length, 1)
    })
  )

  it.live("a malformed token or an agent token for a server: TokenInvalid, without the token in the message", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, server } = yield* clusterSetup
      cluster.tokenFile = `K10${CA_HASH.slice(2)}::server:${SERVER_PASSWORD}\n`
      const malformed = yield* Effect.flip(k3s.fetchToken(server, "server"))
      assert.strictEqual(malformed.reason._tag, "TokenInvalid")
      assert.notInclude(malformed.message, SERVER_PASSWORD)
      cluster.tokenFile = `K10${CA_HASH}::node:${SERVER_PASSWORD}\n`
      const agentToken = yield* Effect.flip(k3s.fetchToken(server, "server"))
      assert.isTrue(agentToken.reason._tag === "TokenInvalid" && /agent token/.test(agentToken.reason.detail))
    })
  )
})

describe("K3sJoin.clusterNodes / clusterVersion", () => {
  it.live("decodes the nodes and pins the version to the control plane's", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, server } = yield* clusterSetup
      cluster.addNode({ name: "k3s-a1", ip: "10.0.10.21", role: "agent", version: "v1.29.4+k3s1" })
      const nodes = yield* k3s.clusterNodes(server)
      assert.deepStrictEqual(
        nodes.map((n) => [n.name, n.role, n.ready, n.internalIPs[0]]),
        [
          ["k3s-s1", "server", "True", "10.0.10.11"],
          ["k3s-a1", "agent", "True", "10.0.10.21"]
        ]
      )
      assert.strictEqual(yield* k3s.clusterVersion(server), "v1.30.5+k3s1")
    })
  )

  it.live("falls back to k3s --version, and reports an API that is down as ClusterUnavailable", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, serverSsh, server } = yield* clusterSetup
      cluster.nodes.clear()
      cluster.version = "v1.31.2+k3s1"
      assert.strictEqual(yield* k3s.clusterVersion(server), "v1.31.2+k3s1")
      assert.include(serverSsh.commands, "/usr/local/bin/k3s --version")
      cluster.apiDown = true
      const error = yield* Effect.flip(k3s.clusterNodes(server))
      assert.isTrue(error.reason._tag === "ClusterUnavailable" && /6443 was refused/.test(error.reason.detail))
    })
  )
})

describe("K3sJoin.membership / cleanupStaleNode / waitReady", () => {
  it.live("membership checks name, role and IP", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, server } = yield* clusterSetup
      cluster.addNode({ name: "k3s-a1", ip: "10.0.10.21", role: "agent" })
      const a1 = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21")
      const moved = yield* joiningHost(cluster, "k3s-a1", "10.0.10.77")
      const fresh = yield* joiningHost(cluster, "k3s-a5", "10.0.10.25")
      assert.strictEqual((yield* k3s.membership({ server, host: a1.host, role: "agent" }))._tag, "Member")
      const other = yield* k3s.membership({ server, host: moved.host, role: "agent" })
      assert.isTrue(other._tag === "Mismatch" && other.mismatches.map((m) => m.field).join() === "ip")
      const asServer = yield* k3s.membership({ server, host: a1.host, role: "server" })
      assert.isTrue(asServer._tag === "Mismatch" && asServer.mismatches[0]?.field === "role")
      assert.deepStrictEqual(yield* k3s.membership({ server, host: fresh.host, role: "agent" }), {
        _tag: "Absent",
        name: "k3s-a5"
      })
    })
  )

  it.live("cleanupStaleNode waits until a Node held by finalizers is gone, then deletes its secret", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, serverSsh, server } = yield* clusterSetup
      cluster.addNode({ name: "k3s-s2", ip: "10.0.10.12", role: "server", ready: "Unknown" })
      cluster.deleteLingerPolls = 3
      yield* k3s.cleanupStaleNode(server, "k3s-s2")
      assert.deepStrictEqual(serverSsh.commands, [
        "sudo -n /usr/local/bin/k3s kubectl delete node k3s-s2 --ignore-not-found",
        "sudo -n /usr/local/bin/k3s kubectl get node k3s-s2 -o json",
        "sudo -n /usr/local/bin/k3s kubectl get node k3s-s2 -o json",
        "sudo -n /usr/local/bin/k3s kubectl get node k3s-s2 -o json",
        "sudo -n /usr/local/bin/k3s kubectl get node k3s-s2 -o json",
        "sudo -n /usr/local/bin/k3s kubectl -n kube-system delete secret k3s-s2.node-password.k3s --ignore-not-found"
      ])
      assert.isFalse(cluster.nodes.has("k3s-s2"))
      // idempotent: nothing left to delete
      yield* k3s.cleanupStaleNode(server, "k3s-s2")
    })
  )

  it.live("waitReady waits for a Node that does not exist yet", () =>
    Effect.gen(function* () {
      const { k3s, events } = yield* harness()
      const { cluster, server, serverSsh } = yield* clusterSetup
      // the Node registers at the third poll of the unit: the first two see no Node
      const { fake, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21", { joinAfterPolls: 3 })
      fake.unit = "k3s-agent"
      fake.handler("sudo -n systemctl start --no-block k3s-agent", "ubuntu")
      const node = yield* k3s.waitReady({ server, host, role: "agent", nodeName: "k3s-a1" })
      assert.strictEqual(node.ready, "True")
      assert.deepStrictEqual(node.internalIPs, ["10.0.10.21"])
      const readiness = events.flatMap((e) => (e._tag === "NodeState" ? [e.ready] : []))
      assert.strictEqual(readiness[0], "Absent")
      // while it is absent, the server is asked for its Nodes (a listing other waits on this server may share), one
      // listing per poll of the unit; then `kubectl wait`, and the Node itself once that returns
      const listings = serverSsh.commands.filter((c) => c === "sudo -n /usr/local/bin/k3s kubectl get nodes -o json")
      assert.strictEqual(listings.length, 3)
      assert.deepStrictEqual(
        serverSsh.commands.filter((c) => c.includes("get node k3s-a1")),
        ["sudo -n /usr/local/bin/k3s kubectl get node k3s-a1 -o json"]
      )
    })
  )

  it.live("waitReady without a baseline: a failure k3s logged before systemd last started it does not count", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, server } = yield* clusterSetup
      cluster.addNode({ name: "k3s-a1", ip: "10.0.10.21", role: "agent" })
      const { fake, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21")
      // its first token was wrong (401s), it joined with the right one, and its VM was restarted since (vm.restart:
      // rolling): the journal still holds the first run's 401s, from before the last start
      fake.unit = "k3s-agent"
      fake.state = "active"
      fake.journal.push(
        journal.unitStart(),
        journal.starting(0),
        journal.unauthorized(1),
        journal.unauthorized(2),
        journal.unitStart(),
        journal.starting(3),
        journal.upAgent(4)
      )
      const node = yield* k3s.waitReady({ server, host, role: "agent", nodeName: "k3s-a1" })
      assert.strictEqual(node.ready, "True")
    })
  )

  it.live("waitReady without a baseline: a failure of the unit's current run still fails at once", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness({
        timeouts: { pollInterval: "10 millis", ready: "1 hour", command: "30 seconds" }
      })
      const { cluster, server } = yield* clusterSetup
      const { fake, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21")
      fake.unit = "k3s-agent"
      fake.state = "activating"
      fake.journal.push(
        journal.unitStart(),
        journal.starting(0),
        journal.upAgent(1),
        journal.unitStart(),
        journal.starting(2),
        journal.unauthorized(3)
      )
      const error = yield* Effect.flip(k3s.waitReady({ server, host, role: "agent", nodeName: "k3s-a1" }))
      assert.isTrue(error.reason._tag === "BadToken" && error.reason.kind === "Unauthorized")
    })
  )

  /**
   * A host whose agent the install just restarted (`systemctl restart --no-block`): its earlier run was rejected
   * (`Node password rejected`, a stale secret cleaned up since) and wrote one more such line after the journal was read
   * for the baseline; journald has not written systemd's line for the new start yet when the wait first reads the
   * journal (one read later it has).
   */
  const restartedAfterRejection = Effect.gen(function* () {
    const { cluster, server } = yield* clusterSetup
    const { fake, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21", { startLoggedLate: true })
    fake.unit = "k3s-agent"
    fake.state = "activating"
    const baseline = [journal.unitStart(), journal.starting(0), journal.nodePassword(1)]
    fake.journal.push(...baseline, journal.nodePassword(2))
    fake.handler("sudo -n systemctl restart --no-block k3s-agent", "ubuntu")
    return { server, host, baseline }
  })

  it.live("waitReady after the install restarted the unit: a line from before the new start only waits", () =>
    Effect.gen(function* () {
      const { k3s, events } = yield* harness()
      const { server, host, baseline } = yield* restartedAfterRejection
      const node = yield* k3s.waitReady({
        server,
        host,
        role: "agent",
        nodeName: "k3s-a1",
        journalBaseline: baseline,
        restarted: true
      })
      assert.strictEqual(node.ready, "True")
      const waits = events.flatMap((e) => (e._tag === "Waiting" ? [e.failure] : []))
      assert.deepStrictEqual(waits, ["NodePasswordRejected"])
    })
  )

  it.live("waitReady without restarted (the install left the unit as it was): a failure after the baseline fails", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness({
        timeouts: { pollInterval: "10 millis", ready: "1 hour", command: "30 seconds" }
      })
      const { server, host, baseline } = yield* restartedAfterRejection
      const error = yield* Effect.flip(
        k3s.waitReady({ server, host, role: "agent", nodeName: "k3s-a1", journalBaseline: baseline })
      )
      assert.strictEqual(error.reason._tag, "NodePasswordRejected")
    })
  )

  it.live("waitReady after a restart: a failure the new run logs after its start line still fails at once", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness({
        timeouts: { pollInterval: "10 millis", ready: "1 hour", command: "30 seconds" }
      })
      const { cluster, server } = yield* clusterSetup
      const { fake, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21", {
        startLoggedLate: true,
        failWith: journal.unauthorized()
      })
      fake.unit = "k3s-agent"
      fake.state = "active"
      const baseline = [journal.unitStart(), journal.starting(0), journal.upAgent(1)]
      fake.journal.push(...baseline)
      fake.handler("sudo -n systemctl restart --no-block k3s-agent", "ubuntu")
      const error = yield* Effect.flip(
        k3s.waitReady({ server, host, role: "agent", nodeName: "k3s-a1", journalBaseline: baseline, restarted: true })
      )
      assert.isTrue(error.reason._tag === "BadToken" && error.reason.kind === "Unauthorized")
    })
  )

  it.live(
    "waitReady after a restart: once a read showed the new start, the new run's failure fails at once, also when the start has left the excerpt",
    () =>
      Effect.gen(function* () {
        const { k3s, eventWhere } = yield* harness({
          timeouts: { pollInterval: "10 millis", ready: "1 hour", command: "30 seconds" }
        })
        const { cluster, server } = yield* clusterSetup
        const { fake, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21", { joinAfterPolls: 1_000_000 })
        fake.unit = "k3s-agent"
        fake.state = "active"
        const baseline = [journal.unitStart(), journal.starting(0), journal.upAgent(1)]
        fake.journal.push(...baseline)
        fake.handler("sudo -n systemctl restart --no-block k3s-agent", "ubuntu")
        const wait = yield* Effect.forkChild(
          Effect.flip(
            k3s.waitReady({
              server,
              host,
              role: "agent",
              nodeName: "k3s-a1",
              journalBaseline: baseline,
              restarted: true
            })
          )
        )
        yield* eventWhere((e) => e._tag === "JournalLine" && e.line === journal.unitStart())
        // the new run logs more than the 200 lines a read shows (a k3s server does as it starts), then fails
        for (let i = 0; i < 250; i++) fake.journal.push(`time="2024-05-23T11:27:00Z" level=info msg="starting ${i}"`)
        fake.journal.push(journal.unauthorized(9))
        // judged as the new run's (not only waited on)
        const outcome = yield* Effect.raceFirst(
          Fiber.join(wait),
          eventWhere((e) => e._tag === "Waiting" && e.failure === "Unauthorized").pipe(Effect.as("waited" as const))
        )
        assert.isTrue(
          outcome !== "waited" && outcome.reason._tag === "BadToken" && outcome.reason.kind === "Unauthorized"
        )
      })
  )

  it.live("waitReady checks the identity of the Node that joined", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, server } = yield* clusterSetup
      const { fake, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21", { registerIp: "192.168.1.50" })
      fake.unit = "k3s-agent"
      fake.handler("sudo -n systemctl start --no-block k3s-agent", "ubuntu")
      const error = yield* Effect.flip(k3s.waitReady({ server, host, role: "agent", nodeName: "k3s-a1" }))
      assert.isTrue(
        error.reason._tag === "IdentityMismatch" &&
          error.reason.field === "InternalIP" &&
          error.reason.actual === "192.168.1.50"
      )
    })
  )
})

describe("K3sJoin.initCluster", () => {
  it.live("a k3s server that runs already but is not a Ready first server: ExistingCluster, nothing installed", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const cluster = new FakeCluster()
      const { fake, ssh, host } = yield* joiningHost(cluster, "k3s-s1", "10.0.10.11")
      // its k3s unit is there and systemd keeps starting it (it waits for etcd, or stops on an error, again and again)
      fake.unit = "k3s"
      fake.state = "activating"
      const error = yield* Effect.flip(k3s.initCluster({ host, version: "v1.30.5+k3s1" }))
      assert.strictEqual(error.reason._tag, "ExistingCluster", error.message)
      assert.include(error.message, "a k3s server runs on k3s-s1 already (unit activating)")
      assert.include(error.message, "nothing was installed")
      assert.isFalse(ssh.commands.some((c) => MUTATING.test(c)))
    })
  )

  it.live(
    "a k3s agent that runs on the host (install.sh would add the server beside it): ExistingCluster, nothing installed",
    () =>
      Effect.gen(function* () {
        const { k3s } = yield* harness()
        const cluster = new FakeCluster()
        const { fake, ssh, host } = yield* joiningHost(cluster, "k3s-s1", "10.0.10.11")
        // it joined a cluster as an agent: its k3s-agent unit runs, no k3s unit, no etcd data
        fake.unit = "k3s-agent"
        fake.state = "active"
        const error = yield* Effect.flip(k3s.initCluster({ host, version: "v1.30.5+k3s1" }))
        assert.strictEqual(error.reason._tag, "ExistingCluster", error.message)
        assert.strictEqual(error.reason._tag === "ExistingCluster" ? error.reason.agentUnitState : undefined, "active")
        assert.include(error.message, "k3s runs on k3s-s1 as an agent already (unit k3s-agent active)")
        assert.include(error.message, "nothing was installed")
        assert.isFalse(ssh.commands.some((c) => MUTATING.test(c)))
        // the plan's read-only question gets the same answer, without installing either
        const found = yield* k3s.existingCluster(host)
        assert.strictEqual(found?.refusal, error.reason._tag === "ExistingCluster" ? error.reason.refusal : "")
        // an agent unit that is not there (or stopped) keeps nothing from starting
        fake.unit = undefined
        fake.state = "inactive"
        assert.isUndefined(yield* k3s.existingCluster(host))
        assert.isFalse(ssh.commands.some((c) => MUTATING.test(c)))
      })
  )
})

describe("K3sJoin.ensureMember", () => {
  it.live("joins an agent: token on stdin, pinned version, non-blocking start, Ready", () =>
    Effect.gen(function* () {
      const { k3s, events } = yield* harness()
      const { cluster, serverSsh, server } = yield* clusterSetup
      // the Node turns Ready only when kubectl wait asks: the wait must be that event, not a poll
      cluster.readyOnWait = true
      const { fake, ssh, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21", { neverReady: true })
      const result = yield* k3s.ensureMember({ server, host, role: "agent", flags: "--node-label zone=a" })
      assert.strictEqual(result._tag, "Joined")
      assert.strictEqual(result.node, "k3s-a1")
      assert.strictEqual(result.version, "v1.30.5+k3s1")
      assert.isFalse(result.cleanedUp)
      assert.isTrue(result.timings.totalMs >= result.timings.readyMs)
      assert.isTrue(fake.configWritten)
      // before the install, read at once: the journal so far, and the install record and unit state
      assert.deepStrictEqual(
        [ssh.commands[0], [...ssh.commands.slice(1, 3)].sort(), ssh.commands[3]],
        [
          "hostname",
          [
            "cat /run/homelab-k3s-join.last; systemctl is-active k3s-agent",
            "sudo -n journalctl -u k3s-agent --no-pager -n 200 -o cat"
          ],
          lockedInstallCommand({
            role: "agent",
            args: ["agent", "--server", "https://10.0.10.11:6443", "--node-label", "zone=a"],
            version: "v1.30.5+k3s1",
            scriptPath: "/tmp/k3s-install.sh",
            downloadUrl: "https://get.k3s.io",
            writeConfig: true,
            keepEnv: false,
            record: parseRecord(fake.record ?? "") as InstallRecord,
            lockWaitSeconds: 600
          })
        ]
      )
      // one locked session: token on stdin into the config, download, install.sh (unit not started), then start
      const script = fake.lockedScripts[0] ?? ""
      assert.match(script, /^set -e\ninstall -D -m 600 \/dev\/stdin \/etc\/rancher\/k3s\/config\.yaml\.k3s-join\n/)
      assert.include(script, "\ncurl -sfL https://get.k3s.io -o /tmp/k3s-install.sh\n")
      assert.include(
        script,
        "\nenv INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true sh /tmp/k3s-install.sh agent --server https://10.0.10.11:6443 --node-label zone=a\n"
      )
      assert.match(
        script,
        /\ncmp -s \S+ \S+ && ! test -e \/run\/homelab-k3s-join\.k3s-agent\.restart && echo 'k3s-join: unchanged' && systemctl start --no-block k3s-agent \|\| systemctl restart --no-block k3s-agent\nrm -f \/run\/homelab-k3s-join\.k3s-agent\.restart$/
      )
      assert.deepStrictEqual(
        [parseRecord(fake.record ?? "")?.role, parseRecord(fake.record ?? "")?.version],
        ["agent", "v1.30.5+k3s1"]
      )
      // Ready came through kubectl wait on the server
      assert.ok(
        serverSsh.commands.some((c) =>
          /^sudo -n \/usr\/local\/bin\/k3s kubectl wait --for=condition=Ready node\/k3s-a1 --timeout=\d+s$/.test(c)
        ),
        serverSsh.commands.join("\n")
      )
      assert.isFalse(serverSsh.commands.some((c) => c.includes("delete")))
      noSecretIn([...ssh.commands, ...serverSsh.commands])
      assert.strictEqual(cluster.nodes.get("k3s-a1")?.ready, "True")
      const installLines = events.flatMap((e) => (e._tag === "InstallOutput" ? [e.line] : []))
      assert.include(installLines, "[INFO]  systemd: Enabling k3s-agent unit")
      const readiness = events.flatMap((e) => (e._tag === "NodeState" ? [e.ready] : []))
      assert.strictEqual(readiness.at(-1), "True")
      assert.isTrue(events.some((e) => e._tag === "UnitState" && e.state === "active"))
    })
  )

  it.live("a new host: reads the token and connects to the host while the cluster's Nodes are read", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const cluster = new FakeCluster()
      cluster.addNode(S1)
      cluster.readyOnWait = true
      const fake = new FakeHost(cluster, "k3s-a1", "10.0.10.21", { neverReady: true })
      const host: TestSshServer = yield* sshHost(fake.handler)
      let markTokenRead = () => {}
      const tokenRead = new Promise<void>((resolve) => (markTokenRead = resolve))
      let overlapped = false
      // `get nodes` answers only once the token was read and the joining host has a connection: done one after the
      // other, the membership check never gets its answer (and the join fails at the command timeout)
      const serverSsh = yield* sshHost((command, user) => {
        if (command.startsWith("sudo -n cat /var/lib/rancher/k3s/server/")) markTokenRead()
        if (command !== "sudo -n /usr/local/bin/k3s kubectl get nodes -o json") return cluster.handler(command, user)
        return Promise.all([tokenRead, host.connected()]).then(() => {
          overlapped = true
          return cluster.handler(command, user) ?? { exitCode: 1 }
        })
      })
      const result = yield* k3s.ensureMember({
        server: serverOf(serverSsh),
        host: hostOf(host, "10.0.10.21", { nodeName: "k3s-a1" }),
        role: "agent",
        newHostKey: true
      })
      assert.strictEqual(result._tag, "Joined")
      assert.isTrue(overlapped, "the token read and the host's connection waited for the membership check")
      // one token read, one connection to the host
      assert.strictEqual(serverSsh.commands.filter((c) => c.includes("/var/lib/rancher/k3s/server/")).length, 1)
      assert.strictEqual(host.connectionCount, 1)
    })
  )

  it.live("is idempotent: a Ready member with the right role and IP and an active unit changes nothing", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, serverSsh, server } = yield* clusterSetup
      const { ssh, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21")
      yield* k3s.ensureMember({ server, host, role: "agent" })
      const hostBefore = ssh.commands.length
      const serverBefore = serverSsh.commands.length
      const again = yield* k3s.ensureMember({ server, host, role: "agent" })
      assert.strictEqual(again._tag, "AlreadyMember")
      assert.strictEqual(again.node, "k3s-a1")
      assert.deepStrictEqual(ssh.commands.slice(hostBefore), ["hostname", "systemctl is-active k3s-agent"])
      assert.deepStrictEqual(serverSsh.commands.slice(serverBefore), [
        "sudo -n /usr/local/bin/k3s kubectl get nodes -o json"
      ])
      assert.isFalse(
        [...ssh.commands.slice(hostBefore), ...serverSsh.commands.slice(serverBefore)].some((c) => MUTATING.test(c))
      )
    })
  )

  it.live("joins a server to the embedded-etcd control plane without --cluster-init", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, server } = yield* clusterSetup
      const { ssh, fake, host } = yield* joiningHost(cluster, "k3s-s2", "10.0.10.12")
      const result = yield* k3s.ensureMember({
        server,
        host,
        role: "server",
        flags: ["--write-kubeconfig-mode", "644", "--disable=traefik"]
      })
      assert.strictEqual(result._tag, "Joined")
      assert.strictEqual(result.role, "server")
      const script = fake.lockedScripts[0] ?? ""
      assert.include(
        script,
        "\nenv INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true sh /tmp/k3s-install.sh server --server https://10.0.10.11:6443 --write-kubeconfig-mode 644 --disable=traefik\n"
      )
      assert.include(script, "systemctl start --no-block k3s ||")
      assert.isFalse(ssh.commands.some((c) => c.includes("--cluster-init")))
    })
  )

  it.live("reports a rejected node password (stale Node of a rebuilt host) at once, without deleting anything", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness({ timeouts: { pollInterval: "10 millis", ready: "1 hour" } })
      const { cluster, serverSsh, server } = yield* clusterSetup
      cluster.addNode({ name: "k3s-a1", ip: "10.0.10.21", role: "agent", ready: "Unknown" })
      const { host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21")
      const error = yield* Effect.flip(k3s.ensureMember({ server, host, role: "agent" }))
      assert.instanceOf(error, K3sJoinError)
      assert.isTrue(error.reason._tag === "NodePasswordRejected" && error.reason.node === "k3s-a1")
      assert.isFalse(serverSsh.commands.some((c) => c.includes("delete")))
      assert.isTrue(cluster.nodes.has("k3s-a1"))
    })
  )

  it.live("rejoins a rebuilt host: forgets its host key, deletes the stale Node and secret first", () =>
    Effect.gen(function* () {
      const { k3s, sshEvents } = yield* harness()
      const { cluster, serverSsh, server } = yield* clusterSetup
      // the old VM's Node still looks Ready (the grace period has not expired)
      cluster.addNode({ name: "k3s-a1", ip: "10.0.10.21", role: "agent", uuid: "old-uuid" })
      const { ssh, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21")
      yield* k3s.clusterNodes(host).pipe(Effect.ignore) // an earlier connection to the host
      const result = yield* k3s.ensureMember({ server, host, role: "agent", rebuilt: true })
      assert.strictEqual(result._tag, "Joined")
      assert.isTrue(result.cleanedUp)
      assert.strictEqual(ssh.connectionCount, 2)
      assert.strictEqual(sshEvents.filter((e) => e._tag === "HostKeyAdded" && e.port === ssh.port).length, 2)
      const deleteNode = serverSsh.commands.indexOf(
        "sudo -n /usr/local/bin/k3s kubectl delete node k3s-a1 --ignore-not-found"
      )
      const deleteSecret = serverSsh.commands.indexOf(
        "sudo -n /usr/local/bin/k3s kubectl -n kube-system delete secret k3s-a1.node-password.k3s --ignore-not-found"
      )
      const token = serverSsh.commands.indexOf("sudo -n cat /var/lib/rancher/k3s/server/agent-token")
      // the token is read alongside the membership check (it does not depend on the cleanup)
      assert.isTrue(deleteNode >= 0 && deleteNode < deleteSecret && token >= 0)
      assert.strictEqual(cluster.nodes.get("k3s-a1")?.ready, "True")
    })
  )

  it.live("a Node with the same name but another role: RoleMismatch, nothing changed", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, serverSsh, server } = yield* clusterSetup
      cluster.addNode({ name: "k3s-x", ip: "10.0.10.30", role: "agent" })
      const { ssh, host } = yield* joiningHost(cluster, "k3s-x", "10.0.10.30")
      const error = yield* Effect.flip(k3s.ensureMember({ server, host, role: "server" }))
      assert.deepStrictEqual(
        [error.reason._tag, error.reason._tag === "RoleMismatch" ? error.reason.actual : ""],
        ["RoleMismatch", "agent"]
      )
      assert.isFalse([...ssh.commands, ...serverSsh.commands].some((c) => MUTATING.test(c)))
    })
  )

  it.live("refuses --cluster-init and --token flags before touching the host", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, server } = yield* clusterSetup
      const { ssh, host } = yield* joiningHost(cluster, "k3s-s2", "10.0.10.12")
      const init = yield* Effect.flip(k3s.ensureMember({ server, host, role: "server", flags: "--cluster-init" }))
      const token = yield* Effect.flip(k3s.ensureMember({ server, host, role: "agent", flags: ["--token=abc"] }))
      assert.deepStrictEqual([init.reason._tag, token.reason._tag], ["InvalidOptions", "InvalidOptions"])
      assert.deepStrictEqual(ssh.commands, [])
    })
  )

  it.live("refuses to install an agent with a flag only k3s server defines, before touching the host", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, server } = yield* clusterSetup
      const { ssh, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21")
      const error = yield* Effect.flip(
        k3s.ensureMember({ server, host, role: "agent", flags: ["--node-label=tier=gold", "--disable=traefik"] })
      )
      assert.strictEqual(error.reason._tag, "InvalidOptions")
      assert.include(error.message, "k3s agent does not define --disable (a flag of k3s server only)")
      assert.deepStrictEqual(ssh.commands, [])
    })
  )

  it.live("ignores failure lines that were in the journal before this start", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, server } = yield* clusterSetup
      const { fake, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21")
      fake.journal.push(journal.unauthorized(1), journal.nodePassword(2))
      const result = yield* k3s.ensureMember({ server, host, role: "agent" })
      assert.strictEqual(result._tag, "Joined")
    })
  )

  it.live("ignores failure lines the process the install replaces writes while the install runs", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, server } = yield* clusterSetup
      // k3s runs with a wrong token (homelab.yaml's k3s.token, fixed since): it logs a 401 every 5 s, also after the
      // journal was read for the baseline and before the install restarts it with the right token
      const { fake, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21", {
        logDuringInstall: [journal.unauthorized(2)]
      })
      fake.journal.push(journal.unitStart(), journal.starting(0), journal.unauthorized(1))
      const result = yield* k3s.ensureMember({ server, host, role: "agent" })
      assert.strictEqual(result._tag, "Joined")
    })
  )

  it.live(
    "a re-join whose install restarts the agent: the replaced process's last rejection, read before systemd's new start line, does not fail it",
    () =>
      Effect.gen(function* () {
        const { k3s, events } = yield* harness()
        const { cluster, server } = yield* clusterSetup
        // the VM's agent was installed before (not by homelab: no install record), and the Node and password secret of
        // its name are an earlier VM's: it logs `Node password rejected` every few seconds, also after the journal was
        // read for the baseline. The install (new inputs) restarts it; journald writes systemd's line for that start
        // only after the wait's first journal read
        cluster.addNode({ name: "k3s-a1", ip: "10.0.10.21", role: "agent", ready: "Unknown" })
        const { fake, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21", {
          logDuringInstall: [journal.nodePassword(2)],
          startLoggedLate: true
        })
        fake.unit = "k3s-agent"
        fake.state = "activating"
        fake.journal.push(journal.unitStart(), journal.starting(0), journal.nodePassword(1))
        const result = yield* k3s.ensureMember({ server, host, role: "agent", cleanupStale: true })
        assert.deepStrictEqual([result._tag, result.cleanedUp], ["Joined", true])
        assert.isTrue(events.some((e) => e._tag === "Waiting" && e.failure === "NodePasswordRejected"))
      })
  )
})

describe("K3sJoin failure classification (never hangs)", () => {
  /** A host that behaves as `behaviour` after its unit starts, and the join of it (not run yet). */
  const failingJoin = (role: "server" | "agent", behaviour: HostBehaviour, timeouts?: JoinTimeouts) =>
    Effect.gen(function* () {
      const { k3s, events, eventWhere } = yield* harness({ timeouts: { pollInterval: "10 millis", ...timeouts } })
      const { cluster, server } = yield* clusterSetup
      const { host } = yield* joiningHost(cluster, role === "server" ? "k3s-s2" : "k3s-a1", "10.0.10.22", behaviour)
      return { join: k3s.ensureMember({ server, host, role }), events, eventWhere }
    })

  /** Permanent failures must fail fast: the deadline is an hour away. */
  const failing = (role: "server" | "agent", behaviour: HostBehaviour) =>
    Effect.flatMap(failingJoin(role, behaviour, { ready: "1 hour" }), ({ join }) => Effect.flip(join))

  /**
   * A failure that is waited for until the ready deadline, which passes only when the test says so. Run it under
   * `it.effect`: the TestClock stands still unless adjusted, while the SSH I/O is real. Polls do not sleep (poll interval
   * 0), so the join polls the host until the clock moves; `observed` are the events the outcome depends on, and the
   * clock moves to the deadline only once the join has reported all of them. These are waitReady's events, so the
   * deadline (set when waitReady starts) is already there when the clock moves. Command timeouts (1 hour) are longer
   * than the step (1 minute), so no command that is in flight while the clock moves times out.
   */
  const failingAtDeadline = (
    role: "server" | "agent",
    behaviour: HostBehaviour,
    observed: ReadonlyArray<(event: K3sJoinEvent) => boolean>
  ) =>
    Effect.gen(function* () {
      const { join, events, eventWhere } = yield* failingJoin(role, behaviour, {
        pollInterval: "0 millis",
        ready: "1 minute",
        command: "1 hour"
      })
      const fiber = yield* Effect.forkChild(Effect.flip(join))
      for (const matches of observed) yield* eventWhere(matches)
      yield* TestClock.adjust("1 minute")
      return { error: yield* Fiber.join(fiber), events }
    })

  const waitingFor = (failure: string) => (e: K3sJoinEvent) => e._tag === "Waiting" && e.failure === failure

  it.live("401 Unauthorized: BadToken", () =>
    Effect.gen(function* () {
      const error = yield* failing("agent", { failWith: journal.unauthorized() })
      assert.isTrue(error.reason._tag === "BadToken" && error.reason.kind === "Unauthorized")
    })
  )

  it.live("a flag k3s does not define (journal: flag provided but not defined): InvalidOptions, at once", () =>
    Effect.gen(function* () {
      const error = yield* failing("agent", { failWith: journal.undefinedFlag(), fatal: true })
      assert.strictEqual(error.reason._tag, "InvalidOptions")
      assert.include(error.message, "k3s agent on k3s-a1 stops at every start on a flag it does not define")
      assert.include(error.message, "flag provided but not defined: -disable")
    })
  )

  it.live("CA hash mismatch: CaHashMismatch", () =>
    Effect.gen(function* () {
      const error = yield* failing("agent", { failWith: journal.caHash() })
      assert.strictEqual(error.reason._tag, "CaHashMismatch")
    })
  )

  it.live("server: failed to normalize token (bootstrap token): BadToken NotAServerToken", () =>
    Effect.gen(function* () {
      const error = yield* failing("server", { failWith: journal.normalize(), fatal: true })
      assert.isTrue(error.reason._tag === "BadToken" && error.reason.kind === "NotAServerToken")
    })
  )

  it.live("server: duplicate etcd member name: DuplicateEtcdMember", () =>
    Effect.gen(function* () {
      const error = yield* failing("server", { failWith: journal.duplicateEtcd(), fatal: true })
      assert.isTrue(error.reason._tag === "DuplicateEtcdMember" && error.reason.node === "k3s-s2")
    })
  )

  it.live("server: etcd data of a member the cluster removed: EtcdMemberRemoved", () =>
    Effect.gen(function* () {
      const error = yield* failing("server", { failWith: journal.dataDirMustGo(), fatal: true })
      assert.isTrue(error.reason._tag === "EtcdMemberRemoved" && error.reason.node === "k3s-s2", error.message)
      assert.include(error.message, "k3s server k3s-s2 starts on the etcd data of a member the cluster removed")
    })
  )

  it.live("server: critical configuration value mismatch: ConfigMismatch", () =>
    Effect.gen(function* () {
      const error = yield* failing("server", { failWith: journal.critical(), fatal: true })
      assert.strictEqual(error.reason._tag, "ConfigMismatch")
    })
  )

  it.effect("too many learners is waited for (a Waiting event), then reported as TooManyLearners at the deadline", () =>
    Effect.gen(function* () {
      const { error, events } = yield* failingAtDeadline("server", { failWith: journal.learners() }, [
        waitingFor("TooManyLearners")
      ])
      assert.strictEqual(error.reason._tag, "TooManyLearners")
      const waiting = events.filter((e) => e._tag === "Waiting")
      assert.isAbove(waiting.length, 0)
      assert.isTrue(waiting.every((e) => e._tag === "Waiting" && e.failure === "TooManyLearners"))
      const steps = events.flatMap((e) => (e._tag === "Step" ? [e.step] : []))
      assert.deepStrictEqual(steps, ["inspect", "token", "install", "wait-ready"])
    })
  )

  it.effect("an unreachable server is waited for, then reported as ServerUnreachable", () =>
    Effect.gen(function* () {
      const { error } = yield* failingAtDeadline("agent", { failWith: journal.unreachable() }, [
        waitingFor("ServerUnreachable")
      ])
      assert.isTrue(error.reason._tag === "ServerUnreachable" && error.reason.server === "https://10.0.10.11:6443")
    })
  )

  it.effect("a Node that stays NotReady: NotReady with the condition's reason at the deadline", () =>
    Effect.gen(function* () {
      // the deadline passes once the join has seen the unit active and the Node registered NotReady
      const { error } = yield* failingAtDeadline("agent", { neverReady: true }, [
        (e) => e._tag === "UnitState" && e.state === "active",
        (e) => e._tag === "NodeState" && e.ready === "False"
      ])
      assert.isTrue(
        error.reason._tag === "NotReady" &&
          error.reason.node === "k3s-a1" &&
          error.reason.status === "False" &&
          /KubeletNotReady/.test(error.reason.detail)
      )
    })
  )

  it.effect("a unit that never comes up: Timeout with the last journal lines, token scrubbed", () =>
    Effect.gen(function* () {
      const leak = `level=info msg="Waiting for the server; env K3S_TOKEN=${SERVER_TOKEN}"`
      // the deadline passes once the join has read the line from the journal and found no Node
      const { error } = yield* failingAtDeadline("agent", { failWith: leak }, [
        (e) => e._tag === "JournalLine" && e.line.includes("K3S_TOKEN="),
        (e) => e._tag === "NodeState" && e.ready === "Absent"
      ])
      assert.strictEqual(error.reason._tag, "Timeout")
      if (error.reason._tag === "Timeout") {
        assert.match(error.reason.what, /k3s-a1 to become Ready \(unit k3s-agent activating, Ready Absent\)/)
        assert.isTrue(error.reason.lastLines.some((l) => l.includes("K3S_TOKEN=")))
        assert.isFalse(error.reason.lastLines.some((l) => l.includes(SERVER_PASSWORD) || l.includes(CA_HASH)))
      }
      assert.notInclude(error.message, SERVER_PASSWORD)
    })
  )

  it.live("download failure: InstallFailed with curl's exit code, the script is not run", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, server } = yield* clusterSetup
      const { ssh, fake, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21", { downloadExitCode: 22 })
      const error = yield* Effect.flip(k3s.ensureMember({ server, host, role: "agent" }))
      assert.isTrue(
        error.reason._tag === "InstallFailed" &&
          error.reason.exitCode === 22 &&
          error.reason.step === "downloading the install script"
      )
      assert.isUndefined(fake.installCommand)
      assert.isFalse(ssh.commands.some((c) => c.startsWith("sudo -n env ")))
    })
  )

  it.live("install script failure: InstallFailed with the output tail", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const { cluster, server } = yield* clusterSetup
      const { fake, host } = yield* joiningHost(cluster, "k3s-a1", "10.0.10.21", { installFails: true })
      const error = yield* Effect.flip(k3s.ensureMember({ server, host, role: "agent" }))
      assert.isTrue(
        error.reason._tag === "InstallFailed" &&
          error.reason.step === "the k3s install script" &&
          error.reason.exitCode === 1 &&
          /Download failed/.test(error.reason.tail)
      )
      // set -e: nothing after the failing install.sh ran (no record, no start)
      assert.isUndefined(fake.record)
      assert.strictEqual(fake.state, "inactive")
    })
  )
})
