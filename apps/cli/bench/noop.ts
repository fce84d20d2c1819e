// No-op `homelab apply` on a converged 16-node simulated lab with 20 ms injected per-request latency: API requests,
// mutating requests and wall time of the real CLI process, against the process start of `homelab --version`.
// Target: wall ≤ 5 × latency + process start. Run: `pnpm bench` (after a build).
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { labScenario, startSimPromise } from "@homelab/sim"
import type * as Cli from "../src/index.js"

// The built CLI (dist/index.js is a bench-only entry of the bundle; its types come from the source).
const distEntry: string = "../dist/index.js"
const { isMutating, simConfigYaml } = (await import(distEntry)) as typeof Cli

const bin = fileURLToPath(new URL("../dist/bin.js", import.meta.url))
const latencyMs = Number(process.env.BENCH_LATENCY_MS ?? 20)
const nodes = 16

const scenario = labScenario(
  Array.from({ length: nodes }, (_, i) => `node${i + 1}`),
  { ipPool: "127.81.0.10", timeScale: 0.02 }
)

const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0

const sim = await startSimPromise(scenario)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "homelab-bench-"))
try {
  const config = path.join(dir, "homelab.yaml")
  fs.writeFileSync(config, simConfigYaml(sim, dir))
  const env = { ...process.env, PROXMOX_TOKEN_SECRET: sim.info.auth.tokenSecret, CI: "true" }
  // Asynchronous: the simulator answers from this very process.
  const homelab = async (args: Array<string>) => {
    const started = performance.now()
    await promisify(execFile)(process.execPath, [bin, ...args], { env })
    return performance.now() - started
  }
  await homelab(["apply", "--yes", "--config", config]) // converge
  await new Promise((r) => setTimeout(r, 500)) // let PVE's status cache (10 s × time scale) catch up
  const starts: Array<number> = []
  for (let i = 0; i < 5; i++) starts.push(await homelab(["--version"]))
  const start = median(starts)
  await sim.addFaults([{ kind: "latency", ms: latencyMs }])
  const walls: Array<number> = []
  const phases: Array<number> = []
  let requests = 0
  let mutating = 0
  for (let i = 0; i < 5; i++) {
    sim.clearRequests()
    walls.push(await homelab(["apply", "--config", config]))
    const log = sim.requests()
    requests = log.filter((r) => r.transport === "api").length
    mutating = log.filter(isMutating).length
    // The latency-bound part of the run: from the first request reaching a node to the last response leaving one
    // (the simulator stamps an entry when it answers; the request arrived `durationMs` earlier).
    const starts = log.map((r) => Date.parse(r.time) - r.durationMs)
    const ends = log.map((r) => Date.parse(r.time))
    phases.push(Math.max(...ends) - Math.min(...starts))
  }
  const wall = median(walls)
  const phase = median(phases)
  console.log(`process start (homelab --version): median ${start.toFixed(0)} ms`)
  console.log(
    `no-op apply, ${nodes} nodes, ${latencyMs} ms injected latency: median ${wall.toFixed(0)} ms wall (process included), ` +
      `${requests} API requests (1 + nodes + VMs = ${1 + 2 * nodes}), ${mutating} mutating`
  )
  console.log(
    `  requests phase (first request → last response): ${phase.toFixed(0)} ms = ${(phase / latencyMs).toFixed(1)} × latency (target ≤ 5 ×)`
  )
  console.log(
    `  everything beyond \`homelab --version\` (config, client set-up, requests, exit): ${(wall - start).toFixed(0)} ms = ${((wall - start) / latencyMs).toFixed(1)} × latency`
  )
} finally {
  await sim.stop()
  fs.rmSync(dir, { recursive: true, force: true })
}
process.exit(0)
