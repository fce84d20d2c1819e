// Scale benchmark: 50 nodes × 20 VMs. Prints start-up time and GET /cluster/resources latency.
// Run: pnpm run build && pnpm bench
import { Agent, request } from "undici"
import type * as Sim from "../src/index.js"

// the built package (run `pnpm run build` first); typed from the sources so type-checking needs no build
const distPath = "../dist/index.js"
const { startSimPromise } = (await import(distPath)) as typeof Sim
type Scenario = Sim.Scenario

const NODES = 50
const VMS_PER_NODE = 20

const scenario: Scenario = {
  pveVersion: "8.4.1",
  nodes: Array.from({ length: NODES }, (_, i) => ({ name: `node${i + 1}`, apiPort: 0, sshPort: 0 })),
  vms: Array.from({ length: NODES * VMS_PER_NODE }, (_, i) => ({
    vmid: 100 + i,
    node: `node${Math.floor(i / VMS_PER_NODE) + 1}`,
    name: `vm-${100 + i}`,
    status: i % 3 === 0 ? ("stopped" as const) : ("running" as const),
    tags: i % 2 === 0 ? "k8s;prod" : "lab",
    config: {
      cores: 2,
      memory: "2048",
      scsi0: `local-lvm:vm-${100 + i}-disk-0,size=32G`,
      net0: "virtio=BC:24:11:00:00:01,bridge=vmbr0"
    }
  })),
  timings: { unauthorizedDelayMs: 0 }
}

const t0 = performance.now()
const sim = await startSimPromise(scenario)
const startMs = performance.now() - t0

const node = sim.info.nodes[0]
if (node === undefined) throw new Error("no node")
const dispatcher = new Agent({ connect: { ca: sim.info.ca } })
const headers = { authorization: `PVEAPIToken=${sim.info.auth.tokenId}=${sim.info.auth.tokenSecret}` }
const once = async (): Promise<{ ms: number; count: number }> => {
  const t = performance.now()
  const r = await request(`${node.api}/api2/json/cluster/resources`, { headers, dispatcher })
  const body = (await r.body.json()) as { data: Array<unknown> }
  return { ms: performance.now() - t, count: body.data.length }
}
for (let i = 0; i < 5; i++) await once() // warm up (TLS session, JIT)
const samples: Array<number> = []
let count = 0
for (let i = 0; i < 30; i++) {
  const r = await once()
  samples.push(r.ms)
  count = r.count
}
samples.sort((a, b) => a - b)
const median = samples[Math.floor(samples.length / 2)] ?? 0
const p90 = samples[Math.floor(samples.length * 0.9)] ?? 0

process.stdout.write(
  `${JSON.stringify({
    nodes: NODES,
    vms: NODES * VMS_PER_NODE,
    startMs: Math.round(startMs),
    clusterResources: { entries: count, medianMs: Number(median.toFixed(2)), p90Ms: Number(p90.toFixed(2)) }
  })}\n`
)
await dispatcher.close()
await sim.stop()
