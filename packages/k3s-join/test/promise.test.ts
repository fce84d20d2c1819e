import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { K3sJoinError } from "../src/K3sJoinError.js"
import { createK3sJoin } from "../src/promise.js"
import { FakeCluster, FakeHost } from "./support/FakeK3s.js"
import { sshHost, tempDir, USER, userKey } from "./support/setup.js"

describe("createK3sJoin (Promise API)", () => {
  it.live("joins, is idempotent, and rejects with the K3sJoinError instance", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const cluster = new FakeCluster()
      cluster.addNode({ name: "k3s-s1", ip: "10.0.10.11", role: "server" })
      cluster.addNode({ name: "k3s-a2", ip: "10.0.10.92", role: "agent", ready: "Unknown" })
      const serverSsh = yield* sshHost(cluster.handler)
      const a1 = new FakeHost(cluster, "k3s-a1", "10.0.10.21")
      const a2 = new FakeHost(cluster, "k3s-a2", "10.0.10.22")
      const a1Ssh = yield* sshHost(a1.handler)
      const a2Ssh = yield* sshHost(a2.handler)

      const outcome = yield* Effect.promise(async () => {
        const k3s = createK3sJoin({
          ssh: { user: USER, privateKey: userKey.private, knownHosts: path.join(dir, "known_hosts") },
          timeouts: { pollInterval: "10 millis", ready: "30 seconds" }
        })
        try {
          const server = { host: "127.0.0.1", port: serverSsh.port, apiAddress: "10.0.10.11" }
          const joined = await k3s.ensureMember({
            server,
            host: { host: "127.0.0.1", port: a1Ssh.port, ip: "10.0.10.21" },
            role: "agent"
          })
          const again = await k3s.ensureMember({
            server,
            host: { host: "127.0.0.1", port: a1Ssh.port, ip: "10.0.10.21" },
            role: "agent"
          })
          const nodes = await k3s.clusterNodes(server)
          const rejected = await k3s
            .ensureMember({ server, host: { host: "127.0.0.1", port: a2Ssh.port, ip: "10.0.10.22" }, role: "agent" })
            .then(
              () => undefined,
              (error: unknown) => error
            )
          return { joined, again, nodes, rejected }
        } finally {
          await k3s.close()
        }
      })
      assert.strictEqual(outcome.joined._tag, "Joined")
      assert.strictEqual(outcome.again._tag, "AlreadyMember")
      assert.deepStrictEqual(
        outcome.nodes.map((n) => n.name),
        ["k3s-s1", "k3s-a2", "k3s-a1"]
      )
      assert.instanceOf(outcome.rejected, K3sJoinError)
      const error = outcome.rejected as K3sJoinError
      assert.strictEqual(error.reason._tag, "NodePasswordRejected")
      assert.strictEqual(error.host, "127.0.0.1")
      assert.match(error.message, /node password rejected for k3s-a2/)
    })
  )

  it("rejects (does not throw) when a host has no user", async () => {
    const k3s = createK3sJoin({ ssh: {} })
    try {
      const error = await k3s.clusterNodes({ host: "10.0.0.1" }).then(
        () => undefined,
        (e: unknown) => e
      )
      assert.instanceOf(error, TypeError)
      assert.match(String(error), /no SSH user for 10.0.0.1/)
    } finally {
      await k3s.close()
    }
  })

  it.live("has every lifecycle operation; install validates its string token before touching the host", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const cluster = new FakeCluster()
      cluster.addNode({ name: "k3s-s1", ip: "10.0.10.11", role: "server" })
      const serverSsh = yield* sshHost(cluster.handler)
      const a1 = new FakeHost(cluster, "k3s-a1", "10.0.10.21")
      const a1Ssh = yield* sshHost(a1.handler)
      const outcome = yield* Effect.promise(async () => {
        const k3s = createK3sJoin({
          ssh: { user: USER, privateKey: userKey.private, knownHosts: path.join(dir, "kh") }
        })
        try {
          const server = { host: serverSsh.host, port: serverSsh.port, apiAddress: "10.0.10.11" }
          const host = { host: a1Ssh.host, port: a1Ssh.port, ip: "10.0.10.21" }
          const rejected = await k3s
            .install({ server, host, role: "agent", token: "not-a-token", version: "v1.30.5+k3s1" })
            .then(
              () => undefined,
              (e: unknown) => e
            )
          return {
            rejected,
            ops: [
              "initCluster",
              "existingCluster",
              "etcdMembers",
              "clusterFacts",
              "removeServer",
              "cordon",
              "uncordon",
              "changeNode",
              "drain",
              "upgrade",
              "fetchKubeconfig",
              "installedRole",
              "releaseChannels",
              "install"
            ].filter((op) => typeof (k3s as unknown as Record<string, unknown>)[op] !== "function")
          }
        } finally {
          await k3s.close()
        }
      })
      assert.deepStrictEqual(outcome.ops, [])
      assert.instanceOf(outcome.rejected, K3sJoinError)
      assert.strictEqual((outcome.rejected as K3sJoinError).reason._tag, "TokenInvalid")
      assert.deepStrictEqual(a1Ssh.commands, [])
    })
  )
})
