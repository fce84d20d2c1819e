// Request counts and wall-clock times of the Proxmox client against the simulator. Run after `pnpm build`:
//   node bench/client.ts            (or `pnpm bench`)
// Types come from src; the code runs from dist (Node strips the types, but cannot resolve src's `.js` imports).
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import { type Scenario, type SimHandle, startSimPromise } from "@homelab/sim"
import { SshClient } from "@homelab/ssh"
import { generateKeyPair } from "@homelab/ssh/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Client from "../src/index.js"

const distEntry: string = "../dist/index.js"
const { ProxmoxApi, ProxmoxClientConfig }: typeof Client = await import(distEntry)

// our own client key (ssh2's ed25519 generator used by the sim sometimes writes keys it cannot read back)
const clientKey = generateKeyPair("ed25519")

type Api = Client.ProxmoxApiShape
type Config = Client.ProxmoxClientConfigShape

const baseScenario = (vms: number, faults: Scenario["faults"] = []): Scenario => ({
  pveVersion: "8.4.1",
  nodes: ["pve", "pve2", "pve3", "pve4"].map((name) => ({ name, apiPort: 0, sshPort: 0, address: "127.0.0.1" })),
  vms: Array.from({ length: vms }, (_, i) => ({
    vmid: 100 + i,
    node: ["pve", "pve2", "pve3", "pve4"][i % 4] ?? "pve",
    name: `vm${100 + i}`,
    status: "stopped" as const,
    tags: i % 3 === 0 ? "k8s;prod" : "lab",
    config: { cores: 2, memory: "2048" }
  })),
  timeScale: 0.01,
  timings: { unauthorizedDelayMs: 0, rrdIntervalMs: 0 },
  guestSshPort: 0,
  authorizedKeys: [clientKey.public],
  faults
})

const configFor = (sim: SimHandle, over: Partial<Config> = {}): Config => ({
  nodes: sim.info.nodes.map((n) => ({
    name: n.name,
    apiUrl: n.api,
    ssh: { host: n.ssh.host, port: n.ssh.port, user: sim.info.sshUser }
  })),
  auth: { _tag: "Token", tokenId: sim.info.auth.tokenId, secret: Redacted.make(sim.info.auth.tokenSecret) },
  tls: { ca: sim.info.ca },
  timeouts: { request: 5_000 },
  ...over
})

const sshLayer = (sim: SimHandle) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pvc-bench-"))
  const knownHosts = path.join(dir, "known_hosts")
  fs.writeFileSync(knownHosts, sim.info.nodes.map((n) => `[${n.ssh.host}]:${n.ssh.port} ${n.sshHostKey}\n`).join(""))
  return SshClient.layerWith({
    auth: { privateKey: Redacted.make(clientKey.private) },
    knownHosts: { mode: "strict", path: knownHosts }
  })
}

const withApi = <A>(
  sim: SimHandle,
  kind: "rest" | "ssh" | "fallback",
  f: (pve: Api) => Effect.Effect<A, unknown>,
  over: Partial<Config> = {}
): Promise<A> => {
  const base = kind === "rest" ? ProxmoxApi.layerRest : kind === "ssh" ? ProxmoxApi.layerSsh : ProxmoxApi.layer
  const layer = base.pipe(Layer.provide(ProxmoxClientConfig.layer(configFor(sim, over))), Layer.provide(sshLayer(sim)))
  return Effect.runPromise(
    Effect.gen(function* () {
      const pve = yield* ProxmoxApi
      return yield* f(pve)
    }).pipe(Effect.provide(layer)) as Effect.Effect<A>
  )
}

const counts = (sim: SimHandle) => {
  const log = sim.requests()
  return { api: log.filter((q) => q.transport === "api").length, ssh: log.filter((q) => q.transport === "ssh").length }
}

const ms = (t: number) => `${t.toFixed(1)} ms`
const rows: Array<[string, string, string, string]> = []

// 1. listing 1,000 VMs
{
  const sim = await startSimPromise(baseScenario(1_000))
  for (const kind of ["rest", "ssh"] as const) {
    sim.clearRequests()
    const t0 = performance.now()
    const vms = await withApi(sim, kind, (pve) => pve.clusterVms)
    const t = performance.now() - t0
    const c = counts(sim)
    rows.push([`list ${vms.length} VMs (clusterVms) over ${kind}`, ms(t), String(c.api), String(c.ssh)])
  }
  await sim.stop()
}

// 2. 100 VM status calls over REST and over SSH (one client, sequential)
{
  const sim = await startSimPromise(baseScenario(100))
  for (const kind of ["rest", "ssh"] as const) {
    sim.clearRequests()
    const t0 = performance.now()
    await withApi(sim, kind, (pve) =>
      Effect.forEach(
        Array.from({ length: 100 }, (_, i) => 100 + i),
        (vmid) => pve.vmStatus(["pve", "pve2", "pve3", "pve4"][(vmid - 100) % 4] ?? "pve", vmid)
      )
    )
    const t = performance.now() - t0
    const c = counts(sim)
    rows.push([
      `100 × vmStatus over ${kind} (incl. connect)`,
      `${ms(t)} (${(t / 100).toFixed(2)} ms/call)`,
      String(c.api),
      String(c.ssh)
    ])
  }
  await sim.stop()
}

// 3. the fallback switch: first call on a node whose certificate is untrusted, until it answers over SSH
{
  const sim = await startSimPromise(baseScenario(4, [{ kind: "untrustedCert", node: "pve2" }]))
  sim.clearRequests()
  const events: Array<unknown> = []
  const result = await withApi(
    sim,
    "fallback",
    (pve) =>
      Effect.gen(function* () {
        const t0 = performance.now()
        yield* pve.vmStatus("pve2", 101)
        const first = performance.now() - t0
        const firstCounts = counts(sim)
        sim.clearRequests()
        const t1 = performance.now()
        yield* pve.vmStatus("pve2", 101)
        const second = performance.now() - t1
        return { first, firstCounts, second, secondCounts: counts(sim) }
      }),
    { onEvent: (e) => events.push(e) }
  )
  const a = result.firstCounts
  const b = result.secondCounts
  rows.push([
    "fallback: first call on untrusted pve2 (TLS ×2 + probe + SSH connect + pvesh)",
    ms(result.first),
    String(a.api),
    String(a.ssh)
  ])
  rows.push(["fallback: next call on pve2 (already on SSH)", ms(result.second), String(b.api), String(b.ssh)])
  rows.push([`fallback events emitted`, String(events.length), "", ""])
  await sim.stop()
}

const widths = [0, 1, 2, 3].map((i) =>
  Math.max(...rows.map((r) => r[i]?.length ?? 0), ["what", "time", "API requests", "SSH commands"][i]?.length ?? 0)
)
const line = (r: ReadonlyArray<string>) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")
console.log(line(["what", "time", "API requests", "SSH commands"]))
console.log(widths.map((w) => "-".repeat(w)).join("-|-"))
for (const r of rows) console.log(line(r))
// proxmox-api leaves a timer behind after failed requests; do not wait for it
process.exit(0)
