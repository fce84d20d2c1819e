/**
 * End to end against `@homelab/sim`: real SSH into simulated guests that answer like k3s hosts (k3s.md §8).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import type { K3sEvent, Scenario, SimHandle } from "@homelab/sim"
import { K3S_INSTALL_SCRIPT, k3sBinary, startSim } from "@homelab/sim"
import { SshClient } from "@homelab/ssh"
import { generateKeyPair } from "@homelab/ssh/testing"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as TestClock from "effect/testing/TestClock"
import { K3sJoin } from "../src/K3sJoin.js"
import type { JoinTimeouts, K3sHost } from "../src/K3sJoinOptions.js"
import { memberJoining, memberWithoutNode } from "../src/Quorum.js"
import { eventLog, tempDir } from "./support/setup.js"

const key = generateKeyPair("ed25519")
const SIM_TOKEN = "s3cr3t-sim-token-0123456789abcdef"

const guestVm = (
  vmid: number,
  name: string,
  ip: string,
  status: "running" | "stopped" = "running",
  k3s?: { readonly role: "server" | "agent"; readonly clusterInit?: boolean }
) => ({
  vmid,
  node: "pve",
  name,
  status,
  ip,
  config: { net0: `virtio=BC:24:11:00:00:${String(vmid % 100).padStart(2, "0")},bridge=vmbr0`, cores: 2 },
  guest: { hostname: name, user: "ubuntu", authorizedKeys: [key.public], ...(k3s === undefined ? {} : { k3s }) }
})

/** A stopped VM with the same name as a running one: started later, it is the "rebuilt" host (cloud-init key). */
const rebuiltTwin = (vmid: number, name: string, ip: string) => ({
  vmid,
  node: "pve",
  name,
  status: "stopped" as const,
  ip,
  config: {
    net0: `virtio=BC:24:11:00:01:${String(vmid % 100).padStart(2, "0")},bridge=vmbr0`,
    sshkeys: encodeURIComponent(key.public)
  }
})

/**
 * Three existing servers (vmids 200, 201, 202: a rebuild of one keeps etcd quorum), plain Ubuntu guests, and rebuilt
 * twins (305, 306) stopped.
 */
const scenario = (faults: Scenario["faults"] = [], k3s: Partial<NonNullable<Scenario["k3s"]>> = {}): Scenario => ({
  pveVersion: "8.4.1",
  nodes: [
    {
      name: "pve",
      apiPort: 0,
      sshPort: 0,
      address: "127.0.0.1",
      bridges: [{ name: "vmbr0" }],
      storages: [{ id: "local-lvm", type: "lvmthin", content: ["rootdir", "images"], capacity: "200G" }]
    }
  ],
  timeScale: 0.01,
  timings: { unauthorizedDelayMs: 0, rrdIntervalMs: 0 },
  guestSshPort: 0,
  vms: [
    guestVm(200, "k3s-server", "127.78.1.10", "running", { role: "server", clusterInit: true }),
    guestVm(201, "k3s-server-3", "127.78.1.11", "running", { role: "server" }),
    guestVm(202, "k3s-server-2", "127.78.1.12", "running", { role: "server" }),
    guestVm(301, "worker-1", "127.78.1.31"),
    guestVm(302, "worker-2", "127.78.1.32"),
    guestVm(303, "cp-3", "127.78.1.33"),
    guestVm(304, "cp-4", "127.78.1.34"),
    rebuiltTwin(305, "worker-1", "127.78.1.35"),
    rebuiltTwin(306, "k3s-server-2", "127.78.1.36")
  ],
  k3s: {
    version: "v1.30.5+k3s1",
    token: SIM_TOKEN,
    joinDelayMs: 2000,
    readyDelayMs: 5000,
    learnerPromotionDelayMs: 3000,
    ...k3s
  },
  faults
})

const setup = (
  faults: Scenario["faults"] = [],
  timeouts?: JoinTimeouts,
  k3sSpec: Partial<NonNullable<Scenario["k3s"]>> = {}
) =>
  Effect.gen(function* () {
    const dir = yield* tempDir
    const sim = yield* startSim(scenario(faults, k3sSpec))
    const { events, onEvent, eventWhere } = eventLog()
    const layer = K3sJoin.layerWith({
      timeouts: { pollInterval: "20 millis", ready: "20 seconds", command: "10 seconds", ...timeouts },
      onEvent
    }).pipe(
      Layer.provideMerge(
        SshClient.layerWith({
          auth: { privateKey: Redacted.make(key.private) },
          knownHosts: { mode: "accept-new", path: path.join(dir, "known_hosts") },
          connectTimeout: "30 seconds"
        })
      )
    )
    const built = yield* Layer.build(layer)
    const k3s = Context.get(built, K3sJoin)
    /** The test's own SSH client (as the operator's shell on a server). */
    const ssh = Context.get(built, SshClient)
    /** The guest's SSH endpoint (guests start listening shortly after the VM runs). */
    const target = (vmid: number) =>
      Effect.gen(function* () {
        for (let i = 0; i < 500; i++) {
          const vm = sim.state().vms.find((v) => v.vmid === vmid)
          if (typeof vm?.ip === "string" && typeof vm.guestSshPort === "number") {
            return { host: vm.ip, port: vm.guestSshPort, user: "ubuntu" } satisfies K3sHost
          }
          yield* Effect.sleep("10 millis")
        }
        return yield* Effect.die(new Error(`vm ${vmid} has no SSH endpoint`))
      })
    return { sim, k3s, ssh, events, eventWhere, target, dir, server: yield* target(200) }
  })

const simNode = (sim: SimHandle, name: string) => sim.state().k3s.nodes.find((n) => n.name === name)

/** Waits until the simulator has recorded a k3s event matching `matches` since its `since`-th one. */
const k3sEventSince = (sim: SimHandle, since: number, matches: (event: K3sEvent) => boolean) =>
  Effect.callback<void>((resume) => {
    if (sim.k3sEvents().slice(since).some(matches)) return resume(Effect.void)
    const stop = sim.watch((record) => {
      if (record._tag !== "K3sEvent" || !matches(record.event)) return
      stop()
      resume(Effect.void)
    })
    return Effect.sync(stop)
  })

describe("K3sJoin against @homelab/sim", () => {
  it.live(
    "joinAll: two servers one at a time and two agents; then already members; the token never on a command line",
    () =>
      Effect.gen(function* () {
        const { sim, k3s, target, server } = yield* setup()
        const outcomes = yield* k3s.joinAll([
          { server, host: yield* target(303), role: "server" },
          { server, host: yield* target(304), role: "server" },
          { server, host: yield* target(301), role: "agent" },
          { server, host: yield* target(302), role: "agent" }
        ])
        assert.deepStrictEqual(
          outcomes.map((o) =>
            Result.isSuccess(o.result) ? `${o.result.success._tag} ${o.result.success.node}` : o.result.failure.message
          ),
          ["Joined cp-3", "Joined cp-4", "Joined worker-1", "Joined worker-2"]
        )
        for (const [name, role, ip] of [
          ["cp-3", "server", "127.78.1.33"],
          ["cp-4", "server", "127.78.1.34"],
          ["worker-1", "agent", "127.78.1.31"],
          ["worker-2", "agent", "127.78.1.32"]
        ] as const) {
          const node = simNode(sim, name)
          assert.deepStrictEqual([node?.role, node?.ready, node?.ip, node?.version], [role, "True", ip, "v1.30.5+k3s1"])
        }
        // servers joined strictly one after the other: start, finish, start, finish
        const serverJoins = sim
          .k3sEvents()
          .filter((e) => e.kind === "server-join-start" || e.kind === "server-join-finish")
          .map((e) => `${e.kind} ${e.node}`)
        assert.deepStrictEqual(serverJoins, [
          "server-join-start cp-3",
          "server-join-finish cp-3",
          "server-join-start cp-4",
          "server-join-finish cp-4"
        ])
        assert.deepStrictEqual(sim.state().k3s.strayClusters, [])

        const before = sim.requests().length
        const again = yield* k3s.ensureMember({ server, host: yield* target(301), role: "agent" })
        assert.strictEqual(again._tag, "AlreadyMember")
        const log = JSON.stringify(sim.requests().slice(before))
        assert.notMatch(log, /install|curl|systemctl start|systemctl restart|delete/)

        const everything = JSON.stringify(sim.requests())
        assert.notInclude(everything, SIM_TOKEN)
        // the token went on stdin into a root-only file, under the host's install lock
        assert.include(everything, "sudo -n flock -w 600 -E 75 --verbose /run/lock/homelab-k3s-join.lock sh -c")
        assert.include(everything, "install -D -m 600 /dev/stdin /etc/rancher/k3s/config.yaml.k3s-join")
      }),
    60_000
  )

  it.live(
    "a rebuilt agent: an ordinary join reports NodePasswordRejected; rebuilt: true cleans up and joins",
    () =>
      Effect.gen(function* () {
        const { sim, k3s, target, server } = yield* setup()
        const first = yield* k3s.ensureMember({ server, host: yield* target(301), role: "agent" })
        assert.strictEqual(first._tag, "Joined")
        sim.setVmStatus(301, { status: "stopped" })
        sim.setVmStatus(305, { status: "running" })
        const rebuiltHost = yield* target(305)
        const error = yield* Effect.flip(k3s.ensureMember({ server, host: rebuiltHost, role: "agent" }))
        assert.strictEqual(error.reason._tag, "NodePasswordRejected", error.message)
        assert.strictEqual(simNode(sim, "worker-1")?.ip, "127.78.1.31")
        const rejoined = yield* k3s.ensureMember({ server, host: rebuiltHost, role: "agent", rebuilt: true })
        assert.deepStrictEqual([rejoined._tag, rejoined.cleanedUp], ["Joined", true])
        assert.deepStrictEqual([simNode(sim, "worker-1")?.ip, simNode(sim, "worker-1")?.vmid], ["127.78.1.35", 305])
      }),
    60_000
  )

  it.live(
    "a rebuilt agent re-joined through another server: its replaced agent's last rejection, read before journald has the restart, does not fail the join",
    () =>
      Effect.gen(function* () {
        // journald on the rebuilt VM is behind: each journalctl there shows the journal as it was at the one before
        const { sim, k3s, target, server } = yield* setup([], undefined, { journalLag: [305] })
        assert.strictEqual(
          (yield* k3s.ensureMember({ server, host: yield* target(301), role: "agent" }))._tag,
          "Joined"
        )
        sim.setVmStatus(301, { status: "stopped" })
        sim.setVmStatus(305, { status: "running" })
        const rebuiltHost = yield* target(305)
        const error = yield* Effect.flip(k3s.ensureMember({ server, host: rebuiltHost, role: "agent" }))
        assert.strictEqual(error.reason._tag, "NodePasswordRejected", error.message)
        // its agent goes on being rejected, once more after that join's last look at the journal: a line the next
        // journalctl there does not show yet (the re-join's baseline), the one after it does
        const since = sim.k3sEvents().length
        yield* k3sEventSince(sim, since, (e) => e.kind === "node-password-rejected" && e.vmid === 305)
        // through another server: the install changes the unit, so it restarts the agent, whose start the wait's
        // first journalctl does not show yet
        const rejoined = yield* k3s.ensureMember({
          server: yield* target(201),
          host: rebuiltHost,
          role: "agent",
          rebuilt: true
        })
        assert.deepStrictEqual([rejoined._tag, rejoined.cleanedUp], ["Joined", true])
        assert.deepStrictEqual([simNode(sim, "worker-1")?.ip, simNode(sim, "worker-1")?.vmid], ["127.78.1.35", 305])
      }),
    60_000
  )

  it.live(
    "a rebuilt server: DuplicateEtcdMember until rebuilt: true removes the stale Node (and its etcd member)",
    () =>
      Effect.gen(function* () {
        const { sim, k3s, target, server } = yield* setup()
        sim.setVmStatus(202, { status: "stopped" })
        sim.setVmStatus(306, { status: "running" })
        const error = yield* Effect.flip(k3s.ensureMember({ server, host: yield* target(306), role: "server" }))
        assert.strictEqual(error.reason._tag, "DuplicateEtcdMember", error.message)
        const rejoined = yield* k3s.ensureMember({ server, host: yield* target(306), role: "server", rebuilt: true })
        assert.strictEqual(rejoined._tag, "Joined")
        assert.strictEqual(simNode(sim, "k3s-server-2")?.ip, "127.78.1.36")
        const members = sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("k3s-server-2-"))
        assert.strictEqual(members.length, 1)
      }),
    60_000
  )

  it.live(
    "a rebuilt server whose old Node was force-deleted (finalizers removed): StaleEtcdMember, nothing installed",
    () =>
      Effect.gen(function* () {
        // the member's removal takes long (the old Node hangs in deletion), and someone forces the Node out
        const { sim, k3s, ssh, target, server } = yield* setup([], undefined, { memberRemoveDelayMs: 600_000 })
        sim.setVmStatus(202, { status: "stopped" })
        const kubectl = (args: string) => ssh.exec(server, `sudo -n /usr/local/bin/k3s kubectl ${args}`)
        yield* kubectl("delete node k3s-server-2 --wait=false")
        const patched = yield* kubectl(`patch node k3s-server-2 --type=merge -p '{"metadata":{"finalizers":null}}'`)
        assert.strictEqual(patched.stdout, "node/k3s-server-2 patched\n", patched.stderr)
        // the Node is gone at once, and its etcd member stays, with no Node to remove it through
        assert.isUndefined(simNode(sim, "k3s-server-2"))
        const stale = sim.state().k3s.etcdMembers.find((m) => m.name.startsWith("k3s-server-2-"))
        assert.isDefined(stale)
        sim.setVmStatus(306, { status: "running" })
        const rebuilt = yield* target(306)
        const before = sim.requests().length
        const error = yield* Effect.flip(k3s.ensureMember({ server, host: rebuilt, role: "server", rebuilt: true }))
        assert.strictEqual(error.reason._tag, "StaleEtcdMember", error.message)
        assert.include(error.message, stale?.name ?? "?")
        assert.include(error.message, "no Node owns it")
        // refused before anything was installed on the rebuilt VM: no join was started
        const onRebuilt = sim
          .requests()
          .slice(before)
          .filter((r) => r.vmid === 306)
          .map((r) => r.command ?? "")
        assert.notMatch(onRebuilt.join("\n"), /install|curl -sfL|systemctl (start|restart)/)
        assert.isFalse(sim.k3sEvents().some((e) => e.kind === "server-join-start" && e.node === "k3s-server-2"))
      }),
    60_000
  )

  it.live(
    "v1.34.3+k3s3, a joining server's etcd member removed while the join waits for its Node to be Ready: the join restarts k3s once and it joins again as a new member, not at the ready deadline",
    () =>
      Effect.gen(function* () {
        // its kubelet posts Ready=False until cleared: the join waits for Ready while its Node is deleted; the ready
        // deadline is far off, so the join is done long before it only if it acts on the journal's line at once
        const { sim, k3s, ssh, target, server, events, eventWhere } = yield* setup(
          [{ kind: "k3sNodeNotReady", vmid: 303 }],
          { ready: "10 minutes" },
          { version: "v1.34.3+k3s3" }
        )
        const host = yield* target(303)
        const join = yield* Effect.forkChild(Effect.result(k3s.ensureMember({ server, host, role: "server" })))
        yield* eventWhere((e) => e._tag === "NodeState" && e.host === host.host && e.ready === "False")
        const first = sim.state().k3s.etcdMembers.find((m) => m.name.startsWith("cp-3-"))
        assert.isDefined(first)
        const since = sim.k3sEvents().length
        const deleted = yield* ssh.exec(server, "sudo -n /usr/local/bin/k3s kubectl delete node cp-3")
        assert.strictEqual(deleted.exitCode, 0, deleted.stderr)
        yield* k3sEventSince(sim, since, (e) => e.kind === "etcd-tombstone-written" && e.vmid === 303)
        yield* Effect.promise(() => sim.clearFaults({ kind: "k3sNodeNotReady" }))
        const result = yield* Fiber.join(join)
        assert.isTrue(Result.isSuccess(result), Result.isFailure(result) ? result.failure.message : "")
        assert.strictEqual(Result.isSuccess(result) ? result.success._tag : "", "Joined")
        // restarted once, under the install lock, and k3s moved the removed member's data aside and joined again
        const restarts = events.filter(
          (e) => e._tag === "Step" && e.host === host.host && e.step === "start" && /etcd member/.test(e.detail ?? "")
        )
        assert.strictEqual(restarts.length, 1, JSON.stringify(restarts))
        assert.isTrue(sim.k3sEvents().some((e) => e.kind === "etcd-data-moved-aside" && e.vmid === 303))
        const now = sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("cp-3-"))
        assert.strictEqual(now.length, 1)
        assert.notStrictEqual(now[0]?.name, first?.name)
        assert.strictEqual(simNode(sim, "cp-3")?.ready, "True")
      }),
    60_000
  )

  it.live(
    "v1.34.3+k3s3, a joining server's etcd member removed again after that restart: the join fails at once, naming the host, the line and what to do",
    () =>
      Effect.gen(function* () {
        const { sim, k3s, ssh, target, server, eventWhere } = yield* setup(
          [{ kind: "k3sNodeNotReady", vmid: 303 }],
          { ready: "10 minutes" },
          { version: "v1.34.3+k3s3" }
        )
        const host = yield* target(303)
        const join = yield* Effect.forkChild(Effect.flip(k3s.ensureMember({ server, host, role: "server" })))
        const remove = (step: number) =>
          Effect.gen(function* () {
            const since = sim.k3sEvents().length
            const deleted = yield* ssh.exec(server, "sudo -n /usr/local/bin/k3s kubectl delete node cp-3")
            assert.strictEqual(deleted.exitCode, 0, `${step}: ${deleted.stderr}`)
            yield* k3sEventSince(sim, since, (e) => e.kind === "etcd-tombstone-written" && e.vmid === 303)
            return since
          })
        yield* eventWhere((e) => e._tag === "NodeState" && e.host === host.host && e.ready === "False")
        const since = yield* remove(1)
        // the join restarted k3s, which joined again as a new member: its Node is back, still not Ready
        yield* k3sEventSince(sim, since, (e) => e.kind === "server-join-finish" && e.vmid === 303)
        yield* remove(2)
        const error = yield* Fiber.join(join)
        assert.strictEqual(error.reason._tag, "EtcdMemberRemoved", error.message)
        assert.include(error.message, host.host)
        assert.include(error.message, "This node has been removed from the cluster - please restart k3s")
        assert.include(error.message, "again")
        // one restart only: k3s waits for the next one
        assert.isTrue(sim.state().k3s.etcdMembers.every((m) => !m.name.startsWith("cp-3-")))
      }),
    60_000
  )

  it.live(
    "removeServer of a server whose old Node was force-deleted: refused in memberWithoutNode's words, nothing deleted",
    () =>
      Effect.gen(function* () {
        const { sim, k3s, ssh, server } = yield* setup([], undefined, { memberRemoveDelayMs: 600_000 })
        sim.setVmStatus(202, { status: "stopped" })
        const kubectl = (args: string) => ssh.exec(server, `sudo -n /usr/local/bin/k3s kubectl ${args}`)
        yield* kubectl("delete node k3s-server-2 --wait=false")
        yield* kubectl(`patch node k3s-server-2 --type=merge -p '{"metadata":{"finalizers":null}}'`)
        const stale = sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("k3s-server-2-"))
        assert.strictEqual(stale.length, 1)
        const before = sim.requests().length
        const error = yield* Effect.flip(k3s.removeServer({ server, node: "k3s-server-2" }))
        assert.strictEqual(error.reason._tag, "ClusterUnavailable", error.message)
        assert.include(
          error.message,
          `${memberWithoutNode(
            "k3s-server-2",
            stale.map((m) => ({ ...m, clientURL: undefined }))
          )}: remove it with etcdctl member remove; nothing was deleted`
        )
        assert.notMatch(
          sim
            .requests()
            .slice(before)
            .map((r) => r.command ?? "")
            .join("\n"),
          /kubectl (delete|patch|annotate)/
        )
        assert.strictEqual(sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("k3s-server-2-")).length, 1)
      }),
    60_000
  )

  it.live(
    "removeServer of a server joining right now (its member a learner, its Node not registered yet): refused in memberJoining's words, without etcdctl, nothing deleted",
    () =>
      Effect.gen(function* () {
        const { sim, k3s, server, target } = yield* setup([{ kind: "k3sLearnerSlow", vmid: 303 }])
        const host = yield* target(303)
        // the moment its k3s added its member (a learner) and began to wait for its promotion
        const learner = Effect.callback<void>((resume) => {
          const stop = sim.watch((r) => {
            if (r._tag !== "Operation" || r.operation.operation !== "etcd-promotion" || r.operation.vmid !== 303) return
            stop()
            resume(Effect.void)
          })
          return Effect.sync(stop)
        })
        const join = yield* Effect.forkChild(k3s.ensureMember({ server, host, role: "server" }))
        yield* learner
        const joining = sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("cp-3-"))
        assert.deepStrictEqual(
          joining.map((m) => m.isLearner),
          [true]
        )
        const before = sim.requests().length
        const error = yield* Effect.flip(k3s.removeServer({ server, node: "cp-3" }))
        assert.strictEqual(error.reason._tag, "ClusterUnavailable", error.message)
        assert.include(
          error.message,
          `${memberJoining(
            "cp-3",
            joining.map((m) => ({ ...m, clientURL: undefined }))
          )}: nothing was deleted; run again once cp-3's Node is Ready`
        )
        assert.notInclude(error.message, "etcdctl")
        assert.notMatch(
          sim
            .requests()
            .slice(before)
            .map((r) => r.command ?? "")
            .join("\n"),
          /kubectl (delete|patch|annotate)/
        )
        assert.deepStrictEqual(
          sim.state().k3s.etcdMembers.filter((m) => m.name.startsWith("cp-3-")),
          joining,
          "its member stays"
        )
        yield* Fiber.interrupt(join)
      }),
    60_000
  )

  it.live(
    "a short token given for the cluster (tokenPassword) that is not its password: TokenDiffers, nothing installed",
    () =>
      Effect.gen(function* () {
        const { sim, k3s, target, server } = yield* setup()
        const host = yield* target(301)
        const before = sim.requests().length
        const error = yield* Effect.flip(
          k3s.ensureMember({ server, host, role: "agent", tokenPassword: Redacted.make("not-the-cluster-password") })
        )
        assert.strictEqual(error.reason._tag, "TokenDiffers", error.message)
        assert.notInclude(error.message, SIM_TOKEN)
        assert.notInclude(error.message, "not-the-cluster-password")
        const onHost = sim
          .requests()
          .slice(before)
          .filter((r) => r.vmid === 301)
          .map((r) => r.command ?? "")
        assert.notMatch(onHost.join("\n"), /install|curl -sfL|systemctl (start|restart)/)
        assert.isUndefined(simNode(sim, "worker-1"))
        // the cluster's own password (as homelab.yaml's short k3s.token would hold it): the join goes ahead
        const joined = yield* k3s.ensureMember({ server, host, role: "agent", tokenPassword: Redacted.make(SIM_TOKEN) })
        assert.strictEqual(joined._tag, "Joined")
      }),
    60_000
  )

  it.live(
    "airgap: the install script and binary from a local cache are uploaded over SFTP, nothing is downloaded",
    () =>
      Effect.gen(function* () {
        const cache = yield* tempDir
        fs.writeFileSync(path.join(cache, "install.sh"), K3S_INSTALL_SCRIPT)
        fs.writeFileSync(path.join(cache, "k3s"), k3sBinary("v1.30.5+k3s1"))
        const { sim, k3s, target, server } = yield* setup([{ kind: "k3sDownloadFails" }])
        const result = yield* k3s.ensureMember({
          server,
          host: yield* target(302),
          role: "agent",
          airgap: { dir: cache }
        })
        assert.strictEqual(result._tag, "Joined")
        assert.strictEqual(simNode(sim, "worker-2")?.ready, "True")
        const commands = JSON.stringify(sim.requests())
        assert.include(commands, "INSTALL_K3S_SKIP_DOWNLOAD=true")
        assert.notInclude(commands, "curl -sfL")
      }),
    60_000
  )

  it.live(
    "faults: a wrong token is BadToken, a CA hash mismatch is CaHashMismatch, a download failure is InstallFailed",
    () =>
      Effect.gen(function* () {
        const { k3s, target, server } = yield* setup([
          { kind: "k3sBadToken", vmid: 301, part: "password" },
          { kind: "k3sBadToken", vmid: 302, part: "caHash" },
          { kind: "k3sDownloadFails", vmid: 303 }
        ])
        const bad = yield* Effect.flip(k3s.ensureMember({ server, host: yield* target(301), role: "agent" }))
        assert.isTrue(bad.reason._tag === "BadToken" && bad.reason.kind === "Unauthorized")
        const ca = yield* Effect.flip(k3s.ensureMember({ server, host: yield* target(302), role: "agent" }))
        assert.strictEqual(ca.reason._tag, "CaHashMismatch")
        const download = yield* Effect.flip(k3s.ensureMember({ server, host: yield* target(303), role: "agent" }))
        assert.isTrue(download.reason._tag === "InstallFailed" && download.reason.exitCode === 22)
      }),
    60_000
  )

  it.effect(
    "faults: an unreachable server and a hanging unit end at the deadline (ServerUnreachable, Timeout)",
    () =>
      Effect.gen(function* () {
        // The sim runs on real time, the joins' deadlines on the TestClock: polls do not sleep (poll interval 0), and
        // the clock moves to a join's deadline only once the join has seen what its outcome depends on in the guest's
        // journal. Command timeouts (1 hour) are longer than that step, so no command in flight then times out.
        const { k3s, eventWhere, server, a1, s3, a2 } = yield* TestClock.withLive(
          Effect.gen(function* () {
            const lab = yield* setup(
              [
                { kind: "k3sServerUnreachable", vmid: 200 },
                { kind: "k3sInstallHang", vmid: 302 }
              ],
              { pollInterval: "0 millis", ready: "1 minute", command: "1 hour" }
            )
            return { ...lab, a1: yield* lab.target(301), s3: yield* lab.target(202), a2: yield* lab.target(302) }
          })
        )
        const unreachableJoin = yield* Effect.forkChild(
          Effect.flip(k3s.ensureMember({ server, host: a1, role: "agent" }))
        )
        yield* eventWhere((e) => e._tag === "Waiting" && e.host === a1.host && e.failure === "ServerUnreachable")
        yield* TestClock.adjust("1 minute")
        const unreachable = yield* Fiber.join(unreachableJoin)
        assert.strictEqual(unreachable.reason._tag, "ServerUnreachable")
        const hangJoin = yield* Effect.forkChild(Effect.flip(k3s.ensureMember({ server: s3, host: a2, role: "agent" })))
        yield* eventWhere((e) => e._tag === "JournalLine" && e.host === a2.host && e.line.includes("containerd"))
        yield* eventWhere((e) => e._tag === "NodeState" && e.host === a2.host && e.ready === "Absent")
        yield* TestClock.adjust("1 minute")
        const hang = yield* Fiber.join(hangJoin)
        assert.strictEqual(hang.reason._tag, "Timeout", hang.message)
      }),
    60_000
  )
  it.live(
    "a new machine at an address known_hosts holds another key for: the join is refused; newHostKey: true forgets that key and trusts the new one",
    () =>
      Effect.gen(function* () {
        const { sim, k3s, target, server, dir } = yield* setup()
        const host = yield* target(302)
        const knownHosts = path.join(dir, "known_hosts")
        const previous = generateKeyPair("ed25519").public.split(" ").slice(0, 2).join(" ")
        fs.appendFileSync(knownHosts, `[${host.host}]:${host.port} ${previous}\n`)
        const refused = yield* Effect.flip(k3s.ensureMember({ server, host, role: "agent" }))
        assert.include(refused.message, "host key")
        assert.isUndefined(simNode(sim, "worker-2"))
        const joined = yield* k3s.ensureMember({ server, host, role: "agent", newHostKey: true })
        assert.strictEqual(joined._tag, "Joined")
        const lines = fs
          .readFileSync(knownHosts, "utf8")
          .split("\n")
          .filter((l) => l.startsWith(`[${host.host}]:${host.port} `))
        assert.notInclude(fs.readFileSync(knownHosts, "utf8"), previous)
        assert.strictEqual(lines.length, 1, lines.join("\n"))
      }),
    60_000
  )
})
