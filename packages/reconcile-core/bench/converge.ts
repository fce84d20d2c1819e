// Fresh converge of 4 and 16 simulated nodes with the simulator's default (real PVE-like) timings: wall time of the
// whole apply against the longest single-node chain (the sum of one node's action times). Run: `pnpm bench` (after a
// build). Target: wall ≤ 1.2 × longest chain, i.e. nodes really proceed in parallel.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ProxmoxApi, ProxmoxClientConfig } from "@homelab/proxmox-client"
import { labScenario, startSimPromise } from "@homelab/sim"
import { SshClient } from "@homelab/ssh"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import {
  type ApplyEvent,
  apply,
  desiredFromConfig,
  healthPolicyFromConfig,
  observe,
  parseConfig,
  plan,
  proxmoxClientConfig,
  sshOptions
} from "../dist/index.js"

// Default sim timings (time scale 1): the real PVE-like durations of downloads, creates, boots and agents.
const scenario = (count: number) =>
  labScenario(
    Array.from({ length: count }, (_, i) => `node${i + 1}`),
    { imageSize: "16M", ipPool: "127.80.0.10" }
  )

const run = async (count: number) => {
  const sim = await startSimPromise(scenario(count))
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "homelab-bench-"))
  try {
    const ca = path.join(dir, "ca.pem")
    fs.writeFileSync(ca, sim.info.ca)
    const knownHosts = path.join(dir, "known_hosts")
    fs.writeFileSync(knownHosts, sim.info.nodes.map((n) => `[${n.ssh.host}]:${n.ssh.port} ${n.sshHostKey}\n`).join(""))
    const image = sim.info.imageOrigin?.files[0]
    const yaml = [
      "proxmox:",
      `  endpoint: ${sim.info.nodes[0]?.api}`,
      `  auth: { tokenId: "${sim.info.auth.tokenId}", secret: "${sim.info.auth.tokenSecret}" }`,
      `  tls: { ca: ${ca} }`,
      `ssh: { user: root, privateKey: ${sim.info.sshPrivateKeyPath}, knownHosts: { mode: strict, file: ${knownHosts} } }`,
      `image: { url: ${image?.url}, checksum: "sha256:${image?.sha256}" }`,
      "nodes:",
      ...sim.info.nodes.flatMap((n) => [`  - name: ${n.name}`, `    api: ${n.api}`, `    sshPort: ${n.ssh.port}`]),
      `vm: { sshKeys: ["${sim.info.sshPublicKey.trim()}"] }`
    ].join("\n")
    const program = Effect.gen(function* () {
      const config = yield* parseConfig(yaml, { env: {} })
      const resolved = { caPem: sim.info.ca, privateKeyPath: sim.info.sshPrivateKeyPath, knownHostsPath: knownHosts }
      const layer = ProxmoxApi.layer.pipe(
        Layer.provide(ProxmoxClientConfig.layer(proxmoxClientConfig(config, resolved))),
        Layer.provide(SshClient.layerWith(sshOptions(config, resolved)))
      )
      const desired = desiredFromConfig(config, { sshKeys: config.vm.sshKeys })
      const policy = healthPolicyFromConfig(config)
      const events: Array<ApplyEvent> = []
      const started = performance.now()
      const result = yield* Effect.gen(function* () {
        const observed = yield* observe(desired)
        const p = plan(desired, observed, { policy })
        return yield* apply(p.actions, desired, { onEvent: (e) => Effect.sync(() => events.push(e)) })
      }).pipe(Effect.provide(layer))
      const wall = performance.now() - started
      const chains = new Map<string, number>()
      for (const e of events) if (e._tag === "ActionDone") chains.set(e.node, (chains.get(e.node) ?? 0) + e.ms)
      const longest = Math.max(...chains.values())
      const failed = result.filter((o) => o.status !== "done").length
      return { wall, longest, actions: result.length, failed, vms: sim.state().vms.length }
    })
    return await Effect.runPromise(program)
  } finally {
    await sim.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

for (const count of [4, 16]) {
  const r = await run(count)
  console.log(
    `fresh converge, ${String(count).padStart(2)} nodes (default sim timings): wall ${(r.wall / 1000).toFixed(2)} s, ` +
      `longest single-node chain ${(r.longest / 1000).toFixed(2)} s, ratio ${(r.wall / r.longest).toFixed(3)} (target ≤ 1.2); ` +
      `${r.actions} actions, ${r.failed} not done, ${r.vms} VMs`
  )
}
process.exit(0)
