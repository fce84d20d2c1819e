// Join benchmark: 2 servers + 8 agents joined with joinAll into a simulated k3s cluster (real SSH into the
// simulator's guests), compared with the critical path (servers one after another, agents alongside).
// Run: pnpm run build && pnpm bench
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type * as Sim from "@homelab/sim"
import type * as Ssh from "@homelab/ssh"
import type * as SshTesting from "@homelab/ssh/testing"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as Result from "effect/Result"
import type * as K3sJoinModule from "../src/index.js"

// the built packages (run `pnpm run build` first); typed from the sources so type-checking needs no build
const distPath = "../dist/index.js"
const { K3sJoin } = (await import(distPath)) as typeof K3sJoinModule
const { SshClient } = (await import("@homelab/ssh")) as typeof Ssh
const { generateKeyPair } = (await import("@homelab/ssh/testing")) as typeof SshTesting
const { startSimPromise } = (await import("@homelab/sim")) as typeof Sim

const SERVERS = 2
const AGENTS = 8
const TIME_SCALE = 0.1
const key = generateKeyPair("ed25519")

const vm = (vmid: number, name: string, k3s?: { role: "server"; clusterInit: true }) => ({
  vmid,
  node: "pve",
  name,
  status: "running" as const,
  ip: `127.79.0.${vmid - 100}`,
  config: { net0: "virtio=BC:24:11:00:00:01,bridge=vmbr0", cores: 2 },
  guest: { hostname: name, user: "ubuntu", authorizedKeys: [key.public], ...(k3s === undefined ? {} : { k3s }) }
})

const scenario: Sim.Scenario = {
  pveVersion: "8.4.1",
  nodes: [{ name: "pve", apiPort: 0, sshPort: 0, address: "127.0.0.1" }],
  timeScale: TIME_SCALE,
  timings: { unauthorizedDelayMs: 0, rrdIntervalMs: 0 },
  guestSshPort: 0,
  vms: [
    vm(110, "k3s-s1", { role: "server", clusterInit: true }),
    ...Array.from({ length: SERVERS }, (_, i) => vm(120 + i, `k3s-s${i + 2}`)),
    ...Array.from({ length: AGENTS }, (_, i) => vm(130 + i, `k3s-a${i + 1}`))
  ],
  k3s: { version: "v1.30.5+k3s1", joinDelayMs: 2000, readyDelayMs: 5000, learnerPromotionDelayMs: 3000 }
}

const sim = await startSimPromise(scenario)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-join-bench-"))
try {
  const target = async (vmid: number) => {
    for (;;) {
      const v = sim.state().vms.find((x) => x.vmid === vmid)
      if (typeof v?.ip === "string" && typeof v.guestSshPort === "number") {
        return { host: v.ip, port: v.guestSshPort, user: "ubuntu" }
      }
      await new Promise((r) => setTimeout(r, 10))
    }
  }
  const server = await target(110)
  const requests: Array<K3sJoinModule.EnsureMemberOptions> = []
  for (let i = 0; i < SERVERS; i++) requests.push({ server, host: await target(120 + i), role: "server" })
  for (let i = 0; i < AGENTS; i++) requests.push({ server, host: await target(130 + i), role: "agent" })

  const layer = K3sJoin.layerWith({ timeouts: { pollInterval: "50 millis" }, agentConcurrency: AGENTS }).pipe(
    Layer.provide(
      SshClient.layerWith({
        auth: { privateKey: Redacted.make(key.private) },
        knownHosts: { mode: "accept-new", path: path.join(dir, "known_hosts") }
      })
    )
  )
  const program = Effect.gen(function* () {
    const k3s = Context.get(yield* Layer.build(layer), K3sJoin)
    const t0 = performance.now()
    const outcomes = yield* k3s.joinAll(requests)
    return { wallMs: performance.now() - t0, outcomes }
  }).pipe(Effect.scoped, Effect.provideService(References.MinimumLogLevel, "Warn"))
  const { wallMs, outcomes } = await Effect.runPromise(program)

  const failed = outcomes.filter((o) => Result.isFailure(o.result))
  if (failed.length > 0) throw new Error(`joins failed: ${failed.map((o) => o.host).join(", ")}`)
  const timings = outcomes.map((o) => ({
    role: o.role,
    ...(Result.isSuccess(o.result) ? o.result.success.timings : undefined)
  }))
  const serverPathMs = timings.filter((t) => t.role === "server").reduce((a, t) => a + (t.totalMs ?? 0), 0)
  const slowestAgentMs = Math.max(...timings.filter((t) => t.role === "agent").map((t) => t.totalMs ?? 0))
  const criticalPathMs = Math.max(serverPathMs, slowestAgentMs)
  // what the simulator itself makes a join wait (scaled): the library's overhead is what is left
  const simServerJoinMs = (2000 + 3000 + 5000) * TIME_SCALE
  process.stdout.write(
    `${JSON.stringify(
      {
        bench: "k3s-join: joinAll 2 servers + 8 agents (simulator, time scale 0.1)",
        wallMs: Math.round(wallMs),
        criticalPathMs: Math.round(criticalPathMs),
        wallOverCriticalPath: Number((wallMs / criticalPathMs).toFixed(3)),
        serverJoinsMs: timings.filter((t) => t.role === "server").map((t) => t.totalMs),
        slowestAgentMs,
        simulatedServerJoinFloorMs: simServerJoinMs * SERVERS,
        overheadOverFloorMs: Math.round(wallMs - simServerJoinMs * SERVERS)
      },
      null,
      2
    )}\n`
  )
} finally {
  await sim.stop()
  fs.rmSync(dir, { recursive: true, force: true })
}
