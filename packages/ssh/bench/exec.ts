// Round-trip latency of SshClient.exec over one pooled connection on loopback, run with `pnpm bench` (after
// `pnpm build`): node bench/exec.ts
// Types come from src; the code runs from dist (Node strips the types, but cannot resolve src's `.js` imports).
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Ssh from "../src/index.js"
import type * as SshTesting from "../src/testing/index.js"

const distEntry: string = "../dist/index.js"
const testingEntry: string = "../dist/testing/index.js"
const { SshClient }: typeof Ssh = await import(distEntry)
const { TestSshServer, generateKeyPair }: typeof SshTesting = await import(testingEntry)

const RUNS = 200
const WARMUP = 20

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN

const key = generateKeyPair("ed25519")
// "echo ok" is answered inside the server (no process spawn): this measures the SSH channel round trip itself.
// Any other command runs through /bin/sh, like a real server would.
const server = await TestSshServer.start({
  users: [{ name: "bench", publicKeys: [key.public] }],
  exec: (command) => (command === "echo ok" ? { stdout: "ok\n", exitCode: 0 } : undefined)
})
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "homelab-ssh-bench-"))
fs.writeFileSync(path.join(dir, "known_hosts"), `${server.knownHostsLine()}\n`)
const target = { host: "127.0.0.1", port: server.port, user: "bench" }

const measure = (ssh: Ssh.SshClientShape, command: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < WARMUP; i++) yield* ssh.execOrFail(target, command)
    const samples: Array<number> = []
    for (let i = 0; i < RUNS; i++) {
      const start = performance.now()
      yield* ssh.execOrFail(target, command)
      samples.push(performance.now() - start)
    }
    samples.sort((a, b) => a - b)
    return { median: percentile(samples, 50), p95: percentile(samples, 95) }
  })

const program = Effect.gen(function* () {
  const ssh = yield* SshClient
  const inServer = yield* measure(ssh, "echo ok")
  const withShell = yield* measure(ssh, "true")
  return { inServer, withShell }
}).pipe(
  Effect.provide(
    SshClient.layerWith({
      auth: { privateKey: Redacted.make(key.private) },
      knownHosts: { mode: "strict", path: path.join(dir, "known_hosts") }
    })
  )
)

try {
  const { inServer, withShell } = await Effect.runPromise(program)
  const ms = (n: number) => `${n.toFixed(1)} ms`
  console.log(`ssh exec x${RUNS} (one connection): median ${ms(inServer.median)}, p95 ${ms(inServer.p95)}`)
  console.log(
    `ssh exec x${RUNS} (one connection, command run by /bin/sh on the server): median ${ms(withShell.median)}, p95 ${ms(withShell.p95)}`
  )
  console.log(`TCP connections opened: ${server.connectionCount} (target: 1)`)
  console.log(`target median < 5 ms: ${inServer.median < 5 ? "met" : "NOT met"}`)
} finally {
  await server.stop()
  fs.rmSync(dir, { recursive: true, force: true })
}
