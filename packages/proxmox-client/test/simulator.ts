import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import {
  DEFAULT_PVE_VERSION,
  reserveLoopbackNet,
  type Scenario,
  type SimHandle,
  type SimOptions,
  startSim
} from "@homelab/sim"
import { SshClient } from "@homelab/ssh"
import { generateKeyPair } from "@homelab/ssh/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import {
  ProxmoxApi,
  ProxmoxClientConfig,
  type ProxmoxClientConfigShape,
  type ProxmoxError,
  type ProxmoxErrorReason
} from "../src/index.js"

/**
 * The client key for the sim's root SSH. Ours rather than the sim's own (`sshPrivateKeyPath`): ssh2's ed25519
 * generator, which the sim uses, now and then writes a key that cannot be parsed back; `generateKeyPair` checks.
 */
export const clientKey = generateKeyPair("ed25519")

/** The PVE versions the contract suite runs against: the current release (the simulator's default) and 8.4. */
export const PVE_VERSIONS = [DEFAULT_PVE_VERSION, "8.4.1"] as const

/**
 * The nodes' own loopback addresses (a /24 no other test process holds): a test that takes a node's API down frees
 * its port, and on 127.0.0.1 any other test's server could bind that port meanwhile and answer in its place.
 */
const nodeNet = reserveLoopbackNet().net

/** Two nodes, fast timings, a few guests. */
export const scenario = (over: Partial<Scenario> = {}): Scenario => ({
  pveVersion: "8.4.1",
  nodes: [
    {
      name: "pve",
      apiPort: 0,
      sshPort: 0,
      address: `${nodeNet}.1`,
      cpus: 8,
      bridges: [{ name: "vmbr0" }, { name: "vmbr1", active: false }],
      storages: [
        { id: "local", type: "dir", content: ["iso", "vztmpl", "backup", "import", "snippets"], capacity: "100G" },
        { id: "local-lvm", type: "lvmthin", content: ["rootdir", "images"], capacity: "200G" }
      ]
    },
    { name: "pve2", apiPort: 0, sshPort: 0, address: `${nodeNet}.2`, cpus: 4 }
  ],
  vms: [
    {
      vmid: 100,
      node: "pve",
      name: "web1",
      status: "running",
      tags: "k8s;prod",
      ip: "127.77.3.50",
      config: { cores: 2, memory: "2048", agent: "1", net0: "virtio=BC:24:11:2E:7A:4C,bridge=vmbr0" }
    },
    { vmid: 101, node: "pve2", name: "tmpl", template: true, config: { cores: 1, memory: "1024" } },
    { vmid: 102, node: "pve", name: "busy", status: "stopped", lock: "backup", config: { cores: 1, memory: "512" } }
  ],
  imageOrigin: { files: [{ path: "/img/noble.qcow2", size: "2M" }] },
  ipPool: "127.77.3.10",
  timeScale: 0.01,
  timings: { unauthorizedDelayMs: 0, rrdIntervalMs: 0 },
  guestSshPort: 0,
  authorizedKeys: [clientKey.public],
  ...over
})

/** The client config for a running sim (CA trust, token, SSH to every node). */
export const simConfig = (sim: SimHandle, over: Partial<ProxmoxClientConfigShape> = {}): ProxmoxClientConfigShape => ({
  nodes: sim.info.nodes.map((n) => ({
    name: n.name,
    apiUrl: n.api,
    ssh: { host: n.ssh.host, port: n.ssh.port, user: sim.info.sshUser }
  })),
  auth: { _tag: "Token", tokenId: sim.info.auth.tokenId, secret: Redacted.make(sim.info.auth.tokenSecret) },
  tls: { ca: sim.info.ca },
  // hang guards, not timing expectations (tests of a timeout set their own)
  timeouts: { request: 30_000, auth: 30_000 },
  ...over
})

/** An SshClient trusting exactly the sim's host keys. */
export const simSsh = (sim: SimHandle): Effect.Effect<Layer.Layer<SshClient>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "pvc-sim-"))),
      (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
    )
    const knownHosts = path.join(dir, "known_hosts")
    fs.writeFileSync(knownHosts, sim.info.nodes.map((n) => `[${n.ssh.host}]:${n.ssh.port} ${n.sshHostKey}\n`).join(""))
    return SshClient.layerWith({
      auth: { privateKey: Redacted.make(clientKey.private) },
      knownHosts: { mode: "strict", path: knownHosts },
      connectTimeout: "30 seconds"
    })
  })

export type Transport = "rest" | "ssh" | "fallback"

/** A `ProxmoxApi` layer over the given transport. */
export const apiLayer = (
  sim: SimHandle,
  transport: Transport,
  over: Partial<ProxmoxClientConfigShape> = {}
): Effect.Effect<Layer.Layer<ProxmoxApi>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const ssh = yield* simSsh(sim)
    const base =
      transport === "rest" ? ProxmoxApi.layerRest : transport === "ssh" ? ProxmoxApi.layerSsh : ProxmoxApi.layer
    return base.pipe(Layer.provide(ProxmoxClientConfig.layer(simConfig(sim, over))), Layer.provide(ssh))
  })

/**
 * A running simulator for the test's scope. Retried twice: the sim's start occasionally fails to parse a key it
 * generated itself ("Malformed OpenSSH private key"), which is not what these tests are about.
 */
export const withSim = (over: Partial<Scenario> = {}, options: SimOptions = {}) =>
  startSim(scenario(over), options).pipe(Effect.retry({ times: 2 }), Effect.orDie)

/**
 * A simulator clock frozen at one instant: two reads of time-derived fields (uptime, ctime, task start times) taken a
 * moment apart, over REST and over SSH, see the same second. For tests that compare such reads and need no simulated
 * time to pass (boots, agent start-up and RRD lag read the same clock).
 */
export const frozenClock = (at = Date.UTC(2026, 0, 1)): SimOptions => ({ now: () => at })

/** The `ProxmoxError` of a failed exit. */
export const errorOf = <A>(exit: Exit.Exit<A, ProxmoxError>): ProxmoxError => {
  if (Exit.isSuccess(exit)) throw new Error(`expected a failure, got ${JSON.stringify(exit.value)}`)
  const reason = exit.cause.reasons.find((r) => r._tag === "Fail") as unknown as { error: ProxmoxError } | undefined
  if (reason === undefined) throw new Error(`expected a typed failure: ${String(exit.cause)}`)
  return reason.error
}

export const reasonOf = <A>(exit: Exit.Exit<A, ProxmoxError>): ProxmoxErrorReason => errorOf(exit).reason
