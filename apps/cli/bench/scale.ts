// Targets 4 and 5 of "speed at the physical limit", measured on the real `homelab` process against simulated labs:
//  - `homelab plan` over 50 nodes and 1,000 VMs (the simulator's scale lab): wall < 1 s and peak RSS < 200 MiB;
//  - `homelab apply --yes` across 50 fresh nodes: requests counted (total, per node, task-status polls, the busiest
//    second), PVE tasks in flight at once (one action at a time per node; a configurable global limit `parallelism`);
//  - `homelab apply --yes` of 16 fresh nodes with a k3s section: peak RSS < 150 MiB.
// Baselines measured in the same run: `node -e 0` (wall and peak RSS). Run: `pnpm bench` (after a build).
import * as fs from "node:fs"
import * as path from "node:path"
import { existingK3sServerVm, labScenario, type Scenario, type SimHandle, startSimPromise } from "@homelab/sim"
import type * as Cli from "../src/index.js"
import { bin, cleanUp, dir, MiB, median, mib, node, type Proc, report, verdict } from "./proc.ts"

// The built CLI (dist/index.js is a bench-only entry of the bundle; its types come from the source).
const distEntry: string = "../dist/index.js"
const { isMutating, simConfigYaml } = (await import(distEntry)) as typeof Cli

/** The most intervals open at once. */
const peakOverlap = (intervals: ReadonlyArray<readonly [number, number]>) => {
  const edges = intervals.flatMap(([a, b]) => [
    [a, 1],
    [b, -1]
  ])
  edges.sort((x, y) => (x[0] as number) - (y[0] as number) || (x[1] as number) - (y[1] as number))
  let open = 0
  let peak = 0
  for (const [, d] of edges) {
    open += d as number
    peak = Math.max(peak, open)
  }
  return peak
}

const homelab = (sim: SimHandle, args: ReadonlyArray<string>) =>
  node([bin, ...args], { PROXMOX_TOKEN_SECRET: sim.info.auth.tokenSecret })

const nodeNames = (count: number) => Array.from({ length: count }, (_, i) => `node${i + 1}`)
const loopbackNet = () => `127.${60 + Math.floor(Math.random() * 60)}.${Math.floor(Math.random() * 250)}`

const withSim = async <A>(scenario: Scenario, f: (sim: SimHandle, config: string) => Promise<A>, k3s?: string) => {
  const sim = await startSimPromise(scenario)
  const sub = fs.mkdtempSync(path.join(dir, "lab-"))
  try {
    const config = path.join(sub, "homelab.yaml")
    fs.writeFileSync(config, simConfigYaml(sim, sub, k3s === undefined ? {} : { k3s: { host: k3s, user: "ubuntu" } }))
    return await f(sim, config)
  } finally {
    await sim.stop()
  }
}

try {
  // ---- baseline: an empty Node process
  const base: Array<Proc> = []
  for (let i = 0; i < 5; i++) base.push(await node(["-e", "0"]))
  const baseWall = median(base.map((p) => p.wallMs))
  const baseRss = median(base.map((p) => p.peakRss))
  report(`baseline \`node -e 0\`: median ${baseWall.toFixed(0)} ms wall, ${mib(baseRss)} peak RSS`)

  // ---- target 4: plan over 50 nodes and 1,000 VMs (not ours: the simulator's scale lab)
  const NODES = 50
  const VMS_PER_NODE = 20
  const scaleLab = labScenario(nodeNames(NODES), {
    // room for our VM (half the node) next to its 20 others
    memory: "128G",
    ipPool: `${loopbackNet()}.10`,
    timeScale: 0.02,
    vms: Array.from({ length: NODES * VMS_PER_NODE }, (_, i) => ({
      vmid: 1000 + i,
      node: `node${Math.floor(i / VMS_PER_NODE) + 1}`,
      name: `vm-${1000 + i}`,
      status: i % 3 === 0 ? ("stopped" as const) : ("running" as const),
      tags: i % 2 === 0 ? "k8s;prod" : "lab",
      config: {
        cores: 2,
        memory: "2048",
        scsi0: `local-lvm:vm-${1000 + i}-disk-0,size=32G`,
        net0: "virtio=BC:24:11:00:00:01,bridge=vmbr0"
      }
    }))
  })
  await withSim(scaleLab, async (sim, config) => {
    const runs: Array<Proc> = []
    for (let i = 0; i < 3; i++) runs.push(await homelab(sim, ["plan", "--config", config]))
    const last = runs[runs.length - 1] as Proc
    if (last.code !== 0 && last.code !== 2)
      throw new Error(`homelab plan exited ${last.code}: ${last.stdout.slice(-3000)} ${last.stderr}`)
    const wall = median(runs.map((p) => p.wallMs))
    const rss = Math.max(...runs.map((p) => p.peakRss))
    report(
      `target 4: plan, ${NODES} nodes, ${NODES * VMS_PER_NODE} VMs: median ${wall.toFixed(0)} ms wall ` +
        `(${(wall / baseWall).toFixed(1)} × node -e 0; target < 1000 ms) ${verdict(wall < 1000)}, ` +
        `${mib(rss)} peak RSS (target < 200 MiB) ${verdict(rss < 200 * MiB)}; exit ${last.code}`
    )
  })

  // ---- target 4: apply across 50 fresh nodes, requests and tasks counted
  await withSim(
    labScenario(nodeNames(NODES), { ipPool: `${loopbackNet()}.10`, timeScale: 0.02 }),
    async (sim, config) => {
      const mark = sim.mark()
      sim.clearRequests()
      const run = await homelab(sim, ["apply", "--yes", "--config", config])
      if (run.code !== 0) throw new Error(`homelab apply exited ${run.code}: ${run.stderr}`)
      const log = sim.requests()
      const api = log.filter((r) => r.transport === "api")
      const perNode = new Map<string, number>()
      for (const r of api) perNode.set(r.node, (perNode.get(r.node) ?? 0) + 1)
      const polls = api.filter((r) => r.method === "GET" && /\/tasks\/[^/]+\/status$/.test(r.path ?? "")).length
      const ends = log.map((r) => Date.parse(r.time))
      const perSecond = new Map<number, number>()
      for (const t of ends) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1)
      const resources = api.filter((r) => r.path?.endsWith("/cluster/resources")).length
      const agent = api.filter((r) => /\/agent\//.test(r.path ?? "")).length
      const tasks = sim.operations(mark).filter((o) => o.upid !== undefined && o.endedAt !== undefined)
      const interval = (o: { startedAt: number; endedAt?: number }) => [o.startedAt, o.endedAt ?? o.startedAt] as const
      const tasksAtOnce = peakOverlap(tasks.map(interval))
      const perNodeTasks = Math.max(
        ...nodeNames(NODES).map((n) => peakOverlap(tasks.filter((o) => o.node === n).map(interval)))
      )
      // the global limit in force: homelab.yaml's `parallelism` (the bench leaves its default), from the config schema
      const schema = JSON.parse((await homelab(sim, ["config", "schema"])).stdout) as {
        properties?: { parallelism?: { default?: number } }
      }
      const parallelism = schema.properties?.parallelism?.default
      report(
        `target 4: apply, ${NODES} fresh nodes (time scale 0.02): ${(run.wallMs / 1000).toFixed(2)} s wall, ` +
          `${api.length} API requests (${(api.length / NODES).toFixed(1)} per node, busiest node ${Math.max(...perNode.values())}), ` +
          `${polls} task-status polls, ${agent} guest-agent calls, ${resources} /cluster/resources, ` +
          `${log.filter(isMutating).length} mutating; busiest second ${Math.max(...perSecond.values())} requests`
      )
      report(
        `  PVE tasks in flight: at most ${perNodeTasks} per node (target 1) ${verdict(perNodeTasks <= 1)}, ` +
          `${tasksAtOnce} across the cluster (target ≤ \`parallelism\`, default ${parallelism ?? "none"}) ` +
          `${verdict(parallelism !== undefined && tasksAtOnce <= parallelism)}; ${mib(run.peakRss)} peak RSS`
      )
    }
  )

  // ---- target 5: peak memory of a 16-node apply with a k3s section (1 existing server)
  const net = loopbackNet()
  const serverIp = `${net}.5`
  const k3sLab = labScenario(nodeNames(16), {
    ipPool: `${net}.10`,
    guestSshPort: 2222,
    timeScale: 0.1,
    vms: [existingK3sServerVm("node1", serverIp)],
    k3s: { version: "v1.30.5+k3s1" }
  })
  await withSim(
    k3sLab,
    async (sim, config) => {
      const run = await homelab(sim, ["apply", "--yes", "--config", config])
      if (run.code !== 0) throw new Error(`homelab apply exited ${run.code}: ${run.stderr}`)
      const ready = sim.state().k3s.nodes.filter((n) => n.ready === "True").length
      report(
        `target 5: apply, 16 fresh nodes with k3s (time scale 0.1): ${mib(run.peakRss)} peak RSS ` +
          `(${(run.peakRss / baseRss).toFixed(1)} × node -e 0; target < 150 MiB) ${verdict(run.peakRss < 150 * MiB)}; ` +
          `${(run.wallMs / 1000).toFixed(2)} s wall, ${ready} Ready Nodes`
      )
    },
    serverIp
  )
} finally {
  cleanUp()
}
process.exit(0)
