// Target 2 of "speed at the physical limit": a no-op `homelab apply` on a converged 16-node simulated lab with a k3s
// section (long after creation), 20 ms injected latency on every API request and SSH command. Counted from the
// simulator's request log: API requests (target ≤ 1 + nodes), `kubectl` calls over SSH (target 1), mutating requests
// (target 0), requests repeated within the run (target none); the wall time of the real CLI process against its
// process start (`homelab --version`, measured in the same run): target ≤ process start + 5 × latency.
// Run: `pnpm bench` (after a build). BENCH_DEBUG=1 prints the last run's requests on a timeline; BENCH_CPU_PROF=DIR
// writes a CPU profile of each no-op run there.
import * as fs from "node:fs"
import * as path from "node:path"
import { existingK3sServerVm, labScenario, startSimPromise } from "@homelab/sim"
import type * as Cli from "../src/index.js"
import { bin, cleanUp, dir, median, node, report, sample, verdict } from "./proc.ts"

// The built CLI (dist/index.js is a bench-only entry of the bundle; its types come from the source).
const distEntry: string = "../dist/index.js"
const { isMutating, simConfigYaml } = (await import(distEntry)) as typeof Cli

const latencyMs = Number(process.env.BENCH_LATENCY_MS ?? 20)
const NODES = 16
const RUNS = 5
const net = `127.${60 + Math.floor(Math.random() * 60)}.${Math.floor(Math.random() * 250)}`
const serverIp = `${net}.5`

const scenario = labScenario(
  Array.from({ length: NODES }, (_, i) => `node${i + 1}`),
  {
    ipPool: `${net}.10`,
    guestSshPort: 2222,
    timeScale: 0.02,
    vms: [existingK3sServerVm("node1", serverIp)],
    k3s: { version: "v1.30.5+k3s1" }
  }
)

const sim = await startSimPromise(scenario)
try {
  const config = path.join(dir, "homelab.yaml")
  fs.writeFileSync(config, simConfigYaml(sim, dir, { k3s: { host: serverIp, user: "ubuntu" } }))
  const env = { PROXMOX_TOKEN_SECRET: sim.info.auth.tokenSecret }
  const converge = await node([bin, "apply", "--yes", "--config", config], env)
  if (converge.code !== 0) throw new Error(`homelab apply exited ${converge.code}: ${converge.stderr}`)
  // long after creation: 10 simulated minutes (PVE's status cache, boot and join grace periods all behind)
  await new Promise((r) => setTimeout(r, 600_000 * 0.02))
  const start = await sample(RUNS, [bin, "--version"])
  await sim.addFaults([{ kind: "latency", ms: latencyMs }])
  const walls: Array<number> = []
  const cpus: Array<number> = []
  const phases: Array<number> = []
  const before: Array<number> = []
  const after: Array<number> = []
  let api: ReturnType<typeof sim.requests> = []
  let kubectl = 0
  let ssh = 0
  let mutating = 0
  let code = 0
  for (let i = 0; i < RUNS; i++) {
    sim.clearRequests()
    const prof = process.env.BENCH_CPU_PROF
    const run = await node(
      [
        ...(prof === undefined ? [] : ["--cpu-prof", "--cpu-prof-interval", "100", "--cpu-prof-dir", prof]),
        bin,
        "apply",
        "--config",
        config
      ],
      env
    )
    code = Math.max(code, run.code)
    walls.push(run.wallMs)
    cpus.push(run.cpuMs)
    const log = sim.requests()
    api = log.filter((r) => r.transport === "api")
    kubectl = log.filter((r) => r.transport !== "api" && /\bkubectl\b/.test(r.command ?? "")).length
    ssh = log.filter((r) => r.transport !== "api").length
    mutating = log.filter(isMutating).length
    // The latency-bound part of the run: from the first request reaching the lab to the last response leaving it
    // (the simulator stamps an entry when it answers; the request arrived `durationMs` earlier).
    const starts = log.map((r) => Date.parse(r.time) - r.durationMs)
    const ends = log.map((r) => Date.parse(r.time))
    phases.push(Math.max(...ends) - Math.min(...starts))
    before.push(Math.min(...starts) - run.startedAt)
    after.push(run.endedAt - Math.max(...ends))
    if (process.env.BENCH_DEBUG !== undefined && i === RUNS - 1) {
      const t0 = Math.min(...starts)
      for (const r of log)
        console.log(
          `    ${(Date.parse(r.time) - r.durationMs - t0).toString().padStart(5)} +${r.durationMs} ${r.transport} ${r.method ?? ""} ${r.path ?? r.command}`
        )
    }
  }
  const wall = median(walls)
  const phase = median(phases)
  const counts = new Map<string, number>()
  for (const r of api) counts.set(`${r.method} ${r.path}`, (counts.get(`${r.method} ${r.path}`) ?? 0) + 1)
  const repeated = [...counts].filter(([, n]) => n > 1)
  const kinds = new Map<string, number>()
  for (const r of api) {
    const kind = `${r.method} ${(r.path ?? "").replace(/\/nodes\/[^/]+/, "/nodes/{node}").replace(/\/\d+(\/|$)/, "/{vmid}$1")}`
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
  }
  const beyond = wall - start.wallMs
  report(
    `target 2: no-op apply, ${NODES} nodes + k3s section, ${latencyMs} ms injected latency (exit ${code}; target 0):`
  )
  report(
    `  ${api.length} API requests (target ≤ 1 + nodes = ${1 + NODES}) ${verdict(api.length <= 1 + NODES)}: ` +
      [...kinds].map(([k, n]) => `${n} × ${k}`).join(", ")
  )
  report(
    `  ${kubectl} kubectl call(s) over SSH (target 1) ${verdict(kubectl === 1)}, ${ssh} SSH commands in all; ` +
      `${mutating} mutating (target 0) ${verdict(mutating === 0)}; ${repeated.length} repeated requests ` +
      `(target 0) ${verdict(repeated.length === 0)}${repeated.length === 0 ? "" : `: ${repeated.map(([k, n]) => `${n} × ${k}`).join(", ")}`}`
  )
  report(
    `  median ${wall.toFixed(0)} ms wall; process start (homelab --version, same run) ${start.wallMs.toFixed(0)} ms; ` +
      `wall − start = ${beyond.toFixed(0)} ms = ${(beyond / latencyMs).toFixed(1)} × latency (target ≤ 5 ×) ` +
      `${verdict(beyond <= 5 * latencyMs)}`
  )
  report(
    `  of which requests (first request in → last response out): ${phase.toFixed(0)} ms = ${(phase / latencyMs).toFixed(1)} × latency; ` +
      `before the first request ${median(before).toFixed(0)} ms, after the last response ${median(after).toFixed(0)} ms`
  )
  report(
    `  CPU time (user + system): median ${median(cpus).toFixed(0)} ms against ${start.cpuMs.toFixed(0)} ms for homelab --version`
  )
} finally {
  await sim.stop()
  cleanUp()
}
process.exit(0)
