// Target 1 of "speed at the physical limit": a fresh converge (image, VMs, k3s joins to 1 existing server) of 4 and 16
// simulated nodes at time scales 1 and 0.1, its wall time against the critical path the simulator computes for the
// same run: the longest chain of simulated durations that the run's operations needed (download → create → resize →
// start → boot to the agent's IP → k3s join → Node Ready, with etcd and k3s ordering), i.e. what Proxmox and k3s
// themselves need. Target: wall / critical path ≤ 1.10 in every case. Runs what `homelab apply --yes` runs (the
// library's `reconcile`), in this process; the simulator runs in a process of its own (`simChild.ts`), as Proxmox and
// k3s run on other machines, so that its server-side work (TLS and SSH handshakes, image downloads and checksums, k3s)
// does not delay the tool's event loop. Run: `pnpm bench` (after a build).
import { type ChildProcess, fork } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { K3sJoin } from "@homelab/k3s-join"
import { POLL_FIRST, ProxmoxApi, ProxmoxClientConfig, taskPollSchedule } from "@homelab/proxmox-client"
import { type CriticalPath, existingK3sServerVm, labScenario, type Scenario, type SimInfo } from "@homelab/sim"
import { SshClient } from "@homelab/ssh"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as References from "effect/References"
import * as Schedule from "effect/Schedule"
import {
  desiredFromConfig,
  healthPolicyFromConfig,
  parseConfig,
  proxmoxClientConfig,
  reconcile,
  sshOptions
} from "../dist/index.js"
import type { FromSim, SimCalls, ToSim } from "./simChild.ts"

const TARGET = 1.1
/** A loopback /24 of this run's own: guests listen for SSH on <ip>:2222. */
const net = `127.${60 + Math.floor(Math.random() * 60)}.${Math.floor(Math.random() * 250)}`
const serverIp = `${net}.5`

/** The simulator's default (PVE-like) timings, an existing k3s server VM (not ours) on the first node. */
const scenario = (count: number, timeScale: number): Scenario =>
  labScenario(
    Array.from({ length: count }, (_, i) => `node${i + 1}`),
    {
      imageSize: "16M",
      ipPool: `${net}.10`,
      guestSshPort: 2222,
      timeScale,
      vms: [existingK3sServerVm("node1", serverIp)],
      k3s: { version: "v1.30.5+k3s1" }
    }
  )

/** The simulator's children still running: killed when this process exits, however it exits. */
const children = new Set<ChildProcess>()
process.on("exit", () => {
  for (const child of children) child.kill("SIGTERM")
})
// Ctrl-C and kill: exit through the handler above (the simulator also stops when its IPC channel closes)
process.once("SIGINT", () => process.exit(130))
process.once("SIGTERM", () => process.exit(143))

/** The simulator in its own process (`simChild.ts`): its info, and its `SimHandle` methods as calls over IPC. */
interface SimProcess {
  readonly info: SimInfo
  readonly call: <M extends keyof SimCalls>(
    method: M,
    ...args: Parameters<SimCalls[M]>
  ) => Promise<ReturnType<SimCalls[M]>>
  /** stop the simulator and wait for its process to exit (killed if it takes more than 15 s) */
  readonly stop: () => Promise<void>
}

const startSimProcess = (scenario: Scenario): Promise<SimProcess> =>
  new Promise((resolve, reject) => {
    const child = fork(new URL("./simChild.ts", import.meta.url), [], {
      serialization: "advanced",
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    children.add(child)
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    let nextId = 1
    const pending = new Map<number, { resolve: (v: never) => void; reject: (e: Error) => void }>()
    let gone: Error | undefined
    const fail = (e: Error) => {
      gone ??= e
      reject(e)
      for (const p of pending.values()) p.reject(e)
      pending.clear()
    }
    child.on("error", fail)
    child.once("exit", (code, signal) => {
      children.delete(child)
      fail(new Error(`the simulator's process exited (${signal ?? `code ${code}`})`))
    })
    const post = (m: ToSim) => child.send(m)
    const call: SimProcess["call"] = (method, ...args) =>
      new Promise((res, rej) => {
        if (gone !== undefined) return rej(gone)
        const id = nextId++
        pending.set(id, { resolve: res as (v: never) => void, reject: rej })
        post({ id, method, args })
      })
    const stop = async () => {
      if (gone === undefined) {
        const timer = setTimeout(() => child.kill("SIGKILL"), 15_000)
        await call("stop").catch(() => undefined)
        await exited
        clearTimeout(timer)
      }
    }
    child.on("message", (m: FromSim) => {
      if ("ready" in m) resolve({ info: m.ready, call, stop })
      else if ("failed" in m) fail(new Error(`the simulator did not start: ${m.failed}`))
      else {
        const p = pending.get(m.id)
        pending.delete(m.id)
        if (m.ok) p?.resolve(m.value as never)
        else p?.reject(new Error(`the simulator: ${m.error}`))
      }
    })
    post({ scenario })
  })

const configYaml = (info: SimInfo, dir: string) => {
  const ca = path.join(dir, "pve-root-ca.pem")
  fs.writeFileSync(ca, info.ca)
  const knownHosts = path.join(dir, "known_hosts")
  fs.writeFileSync(knownHosts, info.nodes.map((n) => `[${n.ssh.host}]:${n.ssh.port} ${n.sshHostKey}\n`).join(""))
  const image = info.imageOrigin?.files[0]
  if (image === undefined) throw new Error("the lab scenario has no image origin")
  return [
    "proxmox:",
    `  endpoint: ${info.nodes[0]?.api}`,
    `  auth: { tokenId: "${info.auth.tokenId}", secret: "${info.auth.tokenSecret}" }`,
    `  tls: { ca: ${ca} }`,
    `ssh: { user: root, privateKey: ${info.sshPrivateKeyPath}, knownHosts: { mode: strict, file: ${knownHosts} } }`,
    `image: { url: ${image.url}, checksum: "sha256:${image.sha256}" }`,
    "nodes:",
    ...info.nodes.flatMap((n) => [`  - name: ${n.name}`, `    api: ${n.api}`, `    sshPort: ${n.ssh.port}`]),
    "vm:",
    `  sshKeys: ["${info.sshPublicKey.trim()}"]`,
    "  sshPort: 2222",
    "k3s:",
    `  server: { host: ${serverIp}, port: 2222, user: ubuntu }`,
    "  serverFlags: [--write-kubeconfig-mode=644]"
  ].join("\n")
}

/**
 * Where the run's time went (BENCH_DEBUG=1): for the critical path's VM and for the VM whose chain ended last, each
 * operation and the gap before it, then the requests and commands of that VM's node and guest; and for every VM the
 * sum of the gaps in its chain. BENCH_DEBUG=all prints every request of the run.
 */
const debugTimeline = async (sim: SimProcess, mark: number, startedAt: number, endedAt: number) => {
  const cp = await sim.call("criticalPath", mark)
  const all = await sim.call("operations", mark)
  const requests = await sim.call("requests")
  const chainOf = (vm: string | undefined) => {
    const node = all.find((o) => o.vm === vm)?.node
    return all
      .filter((o) => o.vm === vm || o.k3sNode === vm || (o.operation === "download" && o.node === node))
      .sort((a, b) => a.startedAt - b.startedAt)
  }
  const gaps = (ops: ReadonlyArray<(typeof all)[number]>) => {
    let previous = startedAt
    const out: Array<{ operation: string; gap: number; start: number; end: number }> = []
    for (const o of ops) {
      const end = o.endedAt ?? o.startedAt
      out.push({
        operation: o.operation,
        gap: o.startedAt - previous,
        start: o.startedAt - startedAt,
        end: end - startedAt
      })
      previous = Math.max(previous, end)
    }
    return { out, last: previous }
  }
  const vms = [...new Set(all.flatMap((o) => (o.vm !== undefined && o.operation === "node-ready" ? [o.vm] : [])))]
  const lastVm = vms.map((vm) => ({ vm, end: gaps(chainOf(vm)).last })).sort((a, b) => b.end - a.end)[0]?.vm
  const cpVm = cp.steps[cp.steps.length - 1]?.vm
  for (const [label, vm] of [
    ["critical path VM", cpVm],
    ["VM that ended last", lastVm]
  ] as const) {
    const ops = chainOf(vm)
    const { out, last } = gaps(ops)
    console.log(`    ${label}: ${vm}`)
    for (const g of out)
      console.log(
        `      ${g.operation.padEnd(16)} +${String(g.start).padStart(5)} → +${String(g.end).padStart(5)} ms (gap before it ${g.gap} ms)`
      )
    console.log(`      run ends +${endedAt - startedAt} ms (${endedAt - last} ms after the last operation)`)
    const node = ops[0]?.node
    const vmid = ops.find((o) => o.vmid !== undefined)?.vmid
    for (const r of requests) {
      const at = Date.parse(r.time) - startedAt
      if (at < 0 || (process.env.BENCH_DEBUG !== "all" && r.node !== node && r.vmid !== vmid)) continue
      if (r.path?.endsWith("/status") === true || r.command?.startsWith("systemctl is-active") === true) continue
      console.log(
        `        ${String(at - r.durationMs).padStart(5)} +${String(r.durationMs).padStart(4)} ${r.transport}${r.vmid ?? ""} ${r.method ?? ""} ${r.path ?? r.command ?? ""}`
          .replace(/\n.*/s, "")
          .slice(0, 140)
      )
    }
  }
  // per kind of step, the gaps summed over every VM's chain (what the client added, wherever it sits)
  const sums = new Map<string, Array<number>>()
  for (const vm of vms)
    for (const g of gaps(chainOf(vm)).out) sums.set(g.operation, [...(sums.get(g.operation) ?? []), g.gap])
  for (const [op, list] of sums)
    console.log(
      `    gap before ${op.padEnd(16)} min ${Math.min(...list)} ms, max ${Math.max(...list)} ms, mean ${Math.round(list.reduce((a, b) => a + b, 0) / list.length)} ms`
    )
}

interface Run {
  readonly wallMs: number
  readonly apiRequests: number
  readonly guestCommands: number
  readonly path: CriticalPath
  readonly vmActions: number
  readonly joins: number
  readonly notDone: number
  readonly converged: boolean
  readonly ready: number
}

const converge = async (count: number, timeScale: number): Promise<Run> => {
  const sim = await startSimProcess(scenario(count, timeScale))
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "homelab-bench-"))
  const removeDir = () => fs.rmSync(dir, { recursive: true, force: true })
  process.on("exit", removeDir)
  try {
    const yaml = configYaml(sim.info, dir)
    const program = Effect.gen(function* () {
      const config = yield* parseConfig(yaml, { env: {} })
      const resolved = {
        caPem: sim.info.ca,
        privateKeyPath: sim.info.sshPrivateKeyPath,
        knownHostsPath: path.join(dir, "known_hosts")
      }
      // as the CLI wires it: the Proxmox client, and k3s over SSH trusting the new VMs' host keys on first use
      const proxmox = ProxmoxApi.layer.pipe(
        Layer.provide(ProxmoxClientConfig.layer(proxmoxClientConfig(config, resolved))),
        Layer.provide(SshClient.layerWith(sshOptions(config, resolved)))
      )
      const k3sSsh = sshOptions(config, { ...resolved, knownHostsPath: path.join(dir, "vm_known_hosts") })
      // (fresh: SshClient.layer is one memoised layer, so without it both would share the first client built)
      const k3s = K3sJoin.layer.pipe(
        Layer.provide(SshClient.layerWith({ ...k3sSsh, knownHosts: { ...k3sSsh.knownHosts, mode: "accept-new" } })),
        Layer.fresh
      )
      const desired = desiredFromConfig(config, { sshKeys: config.vm.sshKeys })
      const policy = healthPolicyFromConfig(config)
      const mark = yield* Effect.promise(() => sim.call("mark"))
      const startedAt = Date.now()
      const started = performance.now()
      const report = yield* reconcile(desired, { policy, apply: true, confirm: () => Effect.succeed(true) }).pipe(
        Effect.provide(Layer.merge(proxmox, k3s))
      )
      const wallMs = performance.now() - started
      if (process.env.BENCH_DEBUG !== undefined)
        yield* Effect.promise(() => debugTimeline(sim, mark, startedAt, Date.now()))
      const criticalPath = yield* Effect.promise(() => sim.call("criticalPath", mark))
      const state = yield* Effect.promise(() => sim.call("state"))
      // what the run asked of the lab: API requests, and commands over SSH to the VMs (k3s)
      const asked = (yield* Effect.promise(() => sim.call("requests"))).filter(
        (r) => Date.parse(r.time) - r.durationMs >= startedAt
      )
      return {
        apiRequests: asked.filter((r) => r.transport === "api").length,
        guestCommands: asked.filter((r) => r.transport === "guest-ssh").length,
        wallMs,
        path: criticalPath,
        vmActions: report.outcomes.filter((o) => o.action._tag !== "JoinK3s").length,
        joins: report.outcomes.filter((o) => o.action._tag === "JoinK3s").length,
        notDone: report.outcomes.filter((o) => o.status !== "done").length,
        converged: report.convergence.converged,
        ready: state.k3s.nodes.filter((n) => n.ready === "True").length
      } satisfies Run
    })
    // as the CLI does without --verbose: library log lines (hosts added to known_hosts) are not printed
    return await Effect.runPromise(program.pipe(Effect.provideService(References.MinimumLogLevel, "Error")))
  } finally {
    await sim.stop()
    removeDir()
    process.off("exit", removeDir)
  }
}

/** When a task wait reads the task's status, in ms after the task began: `POLL_FIRST`, then `taskPollSchedule`. */
const statusReads = Effect.runSync(
  Effect.gen(function* () {
    const step = yield* Schedule.toStep(taskPollSchedule)
    const times = [Duration.toMillis(POLL_FIRST)]
    for (let last = times[0] as number; last < 3_600_000; ) {
      const [, delay] = yield* step(last, undefined)
      last += Duration.toMillis(delay)
      times.push(last)
    }
    return times
  })
)

/**
 * The poll schedule's own share of a run: for each PVE task on the critical path, how long after its end the first
 * status read that can see it stopped comes, even for a client with no other overhead (the schedule's floor).
 */
const pollFloorMs = (p: CriticalPath) =>
  p.steps
    .filter((x) => x.upid !== undefined)
    .reduce((sum, x) => sum + ((statusReads.find((t) => t >= x.realMs) ?? x.realMs) - x.realMs), 0)

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`
const steps = (p: CriticalPath) =>
  p.steps.map((x) => `${x.operation} ${x.vm ?? x.node} ${(x.simMs / 1000).toFixed(1)}`).join(" → ")

/** Print a figure; under `./dev bench` (BENCH_SUMMARY) also collect it for the summary at the end. */
const report = (line: string) => {
  console.log(line)
  if (process.env.BENCH_SUMMARY !== undefined) fs.appendFileSync(process.env.BENCH_SUMMARY, `${line}\n`)
}

report(
  "target 1: fresh converge wall / critical path (k3s: 1 existing server; simulator in its own process; target ≤ 1.10)"
)
const scales = (process.env.BENCH_SCALES ?? "1,0.1").split(",").map(Number)
const counts = (process.env.BENCH_NODES ?? "4,16").split(",").map(Number)
for (const timeScale of scales)
  for (const count of counts) {
    const r = await converge(count, timeScale)
    const ratio = r.wallMs / r.path.realMs
    report(
      `  ${String(count).padStart(2)} nodes, time scale ${timeScale}: wall ${s(r.wallMs)}, critical path ${s(r.path.realMs)} ` +
        `(${s(r.path.simMs)} simulated), ratio ${ratio.toFixed(2)} (target ≤ ${TARGET.toFixed(2)}) ` +
        `${ratio <= TARGET ? "met" : "MISSED"}; ${r.vmActions} VM actions + ${r.joins} joins, ${r.notDone} not done, ` +
        `${r.ready} Ready Nodes${r.converged ? "" : ", NOT converged"}`
    )
    const floor = pollFloorMs(r.path)
    report(
      `    above the critical path: ${s(r.wallMs - r.path.realMs)}, of which ${s(floor)} is the task polls' own floor ` +
        `(status read ${Duration.toMillis(POLL_FIRST)} ms after a task starts, then every 1.25 × longer up to 1 s); ` +
        `critical path + that floor alone: ratio ${((r.path.realMs + floor) / r.path.realMs).toFixed(2)}`
    )
    report(
      `    asked of the lab: ${r.apiRequests} API requests (${(r.apiRequests / count).toFixed(1)} per node), ` +
        `${r.guestCommands} commands over SSH to the VMs (${(r.guestCommands / Math.max(1, r.joins)).toFixed(1)} per join)`
    )
    console.log(`    critical path (simulated s): ${steps(r.path)}`)
  }
process.exit(0)
