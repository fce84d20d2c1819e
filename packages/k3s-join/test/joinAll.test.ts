import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import type { EnsureMemberOptions } from "../src/K3sJoinOptions.js"
import { FakeCluster, FakeHost } from "./support/FakeK3s.js"
import { harness, hostOf, serverOf, sshHost, tempDir } from "./support/setup.js"

const hostFor = (cluster: FakeCluster, name: string, ip: string) =>
  Effect.gen(function* () {
    const fake = new FakeHost(cluster, name, ip, { joinAfterPolls: 2 })
    const ssh = yield* sshHost(fake.handler)
    return { fake, ssh, host: hostOf(ssh, ip) }
  })

describe("K3sJoin.joinAll", () => {
  it.live("joins servers one at a time and agents in parallel, reporting in the order given", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const cluster = new FakeCluster()
      cluster.addNode({ name: "k3s-s1", ip: "10.0.10.11", role: "server" })
      // no agent's join completes before two agents are joining at once
      cluster.agentsJoiningTogether = 2
      const server = serverOf(yield* sshHost(cluster.handler))
      const requests: Array<EnsureMemberOptions> = []
      for (const [name, ip, role] of [
        ["k3s-a1", "10.0.10.21", "agent"],
        ["k3s-s2", "10.0.10.12", "server"],
        ["k3s-a2", "10.0.10.22", "agent"],
        ["k3s-s3", "10.0.10.13", "server"],
        ["k3s-a3", "10.0.10.23", "agent"],
        ["k3s-a4", "10.0.10.24", "agent"]
      ] as const) {
        const { host } = yield* hostFor(cluster, name, ip)
        requests.push({ server, host, role })
      }
      const outcomes = yield* k3s.joinAll(requests, { agentConcurrency: 4 })
      assert.deepStrictEqual(
        outcomes.map((o) => [o.role, Result.isSuccess(o.result) ? o.result.success.node : o.result.failure.message]),
        [
          ["agent", "k3s-a1"],
          ["server", "k3s-s2"],
          ["agent", "k3s-a2"],
          ["server", "k3s-s3"],
          ["agent", "k3s-a3"],
          ["agent", "k3s-a4"]
        ]
      )
      assert.strictEqual(cluster.maxJoiningServers, 1)
      assert.isTrue(cluster.maxJoiningAgents >= 2, `agents joined one at a time (${cluster.maxJoiningAgents})`)
      assert.strictEqual(cluster.nodes.size, 7)
    })
  )

  it.live("agents that join together share the server's Node listing and its join token", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const cluster = new FakeCluster()
      cluster.addNode({ name: "k3s-s1", ip: "10.0.10.11", role: "server" })
      let installing = false
      /** The server's listings made before any host's install began: the joins' own membership checks. */
      let inspections = 0
      const serverSsh = yield* sshHost((command, user) => {
        if (command === "sudo -n /usr/local/bin/k3s kubectl get nodes -o json" && !installing) inspections++
        return cluster.handler(command, user)
      })
      const server = serverOf(serverSsh)
      const requests: Array<EnsureMemberOptions> = []
      for (const [name, ip] of [
        ["k3s-a1", "10.0.10.21"],
        ["k3s-a2", "10.0.10.22"],
        ["k3s-a3", "10.0.10.23"],
        ["k3s-a4", "10.0.10.24"]
      ] as const) {
        const fake = new FakeHost(cluster, name, ip, { joinAfterPolls: 2 })
        const ssh = yield* sshHost((command, user) => {
          if (command.includes("flock")) installing = true
          return fake.handler(command, user)
        })
        requests.push({ server, host: hostOf(ssh, ip), role: "agent", newHostKey: true })
      }
      const outcomes = yield* k3s.joinAll(requests, { agentConcurrency: 4 })
      assert.isTrue(outcomes.every((o) => Result.isSuccess(o.result)))
      assert.strictEqual(cluster.nodes.size, 5)
      assert.strictEqual(
        serverSsh.commands.filter((c) => c === "sudo -n cat /var/lib/rancher/k3s/server/agent-token").length,
        1,
        "one token read for the four joins"
      )
      assert.strictEqual(inspections, 1, "one listing for the four membership checks")
    })
  )

  it.live("a join after another one's install lists the Nodes again (the listing before it is out of date)", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const cluster = new FakeCluster()
      cluster.addNode({ name: "k3s-s1", ip: "10.0.10.11", role: "server" })
      const serverSsh = yield* sshHost(cluster.handler)
      const server = serverOf(serverSsh)
      const host = yield* hostFor(cluster, "k3s-a1", "10.0.10.21")
      const first = yield* k3s.ensureMember({ server, host: host.host, role: "agent" })
      assert.strictEqual(first._tag, "Joined")
      // at once (well within the time joins share reads): this one must see the Node the first registered
      const again = yield* k3s.ensureMember({ server, host: host.host, role: "agent" })
      assert.strictEqual(again._tag, "AlreadyMember")
    })
  )

  it.live("keeps going when one host fails, and reports its error", () =>
    Effect.gen(function* () {
      const { k3s } = yield* harness()
      const cluster = new FakeCluster()
      cluster.addNode({ name: "k3s-s1", ip: "10.0.10.11", role: "server" })
      cluster.addNode({ name: "k3s-a1", ip: "10.0.10.99", role: "agent" }) // stale, other IP
      const server = serverOf(yield* sshHost(cluster.handler))
      const a1 = yield* hostFor(cluster, "k3s-a1", "10.0.10.21")
      const a2 = yield* hostFor(cluster, "k3s-a2", "10.0.10.22")
      const outcomes = yield* k3s.joinAll([
        { server, host: a1.host, role: "agent" },
        { server, host: a2.host, role: "agent" }
      ])
      const [first, second] = outcomes
      assert.isTrue(
        first !== undefined &&
          Result.isFailure(first.result) &&
          first.result.failure.reason._tag === "NodePasswordRejected"
      )
      assert.isTrue(second !== undefined && Result.isSuccess(second.result) && second.result.success._tag === "Joined")
    })
  )
})

describe("K3sJoin airgap install", () => {
  it.live("uploads the script and binary over SFTP and installs with INSTALL_K3S_SKIP_DOWNLOAD", () =>
    Effect.gen(function* () {
      const local = yield* tempDir
      const remote = yield* tempDir
      fs.writeFileSync(path.join(local, "install.sh"), "#!/bin/sh\necho install\n")
      fs.writeFileSync(path.join(local, "k3s"), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]))
      const { k3s } = yield* harness({ remoteTmpDir: remote })
      const cluster = new FakeCluster()
      cluster.addNode({ name: "k3s-s1", ip: "10.0.10.11", role: "server" })
      const server = serverOf(yield* sshHost(cluster.handler))
      const { ssh, fake, host } = yield* hostFor(cluster, "k3s-a1", "10.0.10.21")
      const result = yield* k3s.ensureMember({ server, host, role: "agent", airgap: { dir: local } })
      assert.strictEqual(result._tag, "Joined")
      // uploaded under names of this run (two runs may upload at once), placed and run under the host's lock
      const files = fs.readdirSync(remote)
      const script = files.find((f) => /^k3s-join-[0-9a-f]{8}-install\.sh$/.test(f)) as string
      const binary = files.find((f) => /^k3s-join-[0-9a-f]{8}-k3s\.bin$/.test(f)) as string
      assert.strictEqual(fs.readFileSync(path.join(remote, script), "utf8"), "#!/bin/sh\necho install\n")
      assert.strictEqual(fs.statSync(path.join(remote, script)).mode & 0o777, 0o755)
      assert.deepStrictEqual([...fs.readFileSync(path.join(remote, binary))], [0x7f, 0x45, 0x4c, 0x46, 1, 2, 3])
      const locked = fake.lockedScripts[0] ?? ""
      assert.include(locked, `\ninstall -m 755 ${remote}/${binary} /usr/local/bin/k3s\n`)
      assert.include(
        locked,
        `\nenv INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true INSTALL_K3S_SKIP_DOWNLOAD=true sh ${remote}/${script} agent --server https://10.0.10.11:6443\n`
      )
      assert.notInclude(locked, "curl")
      assert.include(ssh.commands, `rm -f ${remote}/${binary}`)
      assert.isFalse(ssh.commands.some((c) => c.startsWith("curl")))
    })
  )

  it.live("a missing local file is an Ssh LocalFileFailed error before anything is installed", () =>
    Effect.gen(function* () {
      const local = yield* tempDir
      const remote = yield* tempDir
      const { k3s } = yield* harness({ remoteTmpDir: remote })
      const cluster = new FakeCluster()
      cluster.addNode({ name: "k3s-s1", ip: "10.0.10.11", role: "server" })
      const server = serverOf(yield* sshHost(cluster.handler))
      const { ssh, host } = yield* hostFor(cluster, "k3s-a1", "10.0.10.21")
      const error = yield* Effect.flip(k3s.ensureMember({ server, host, role: "agent", airgap: { dir: local } }))
      assert.isTrue(error.reason._tag === "Ssh" && error.reason.error.reason._tag === "LocalFileFailed")
      assert.isFalse(ssh.commands.some((c) => c.startsWith("sudo -n env")))
    })
  )
})
