// Shared by the CLI benches: run `node [args]` as a child process with its wall time and peak RSS, medians, verdicts.
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const bin = fileURLToPath(new URL("../dist/bin.js", import.meta.url))
export const MiB = 1024 * 1024

/** A scratch directory of this bench process, removed by `cleanUp`. */
export const dir = fs.mkdtempSync(path.join(os.tmpdir(), "homelab-bench-"))
export const cleanUp = () => fs.rmSync(dir, { recursive: true, force: true })

// A preload that writes the process's peak RSS (bytes) and CPU time (user + system, ms) where BENCH_RSS_FILE says,
// when it exits. The peak is /proc/self/status's VmHWM (the high-water mark of this program's own memory) where there
// is one: getrusage's maxRSS keeps, across the exec, the peak of the forked copy of the bench process that started it
// (Linux saves the old memory's high-water mark at execve), so it reported the bench's own size (its simulator grows
// during a run) for any child bigger or smaller.
const preload = path.join(dir, "peak-rss.mjs")
fs.writeFileSync(
  preload,
  'import { readFileSync, writeFileSync } from "node:fs"\n' +
    'const hwm = () => { try { const m = /VmHWM:\\s+(\\d+) kB/.exec(readFileSync("/proc/self/status", "utf8")); return m === null ? undefined : Number(m[1]) * 1024 } catch { return undefined } }\n' +
    'process.on("exit", () => { const u = process.resourceUsage(); writeFileSync(process.env.BENCH_RSS_FILE, (hwm() ?? u.maxRSS * 1024) + " " + (u.userCPUTime + u.systemCPUTime) / 1000) })\n'
)

export interface Proc {
  readonly code: number
  readonly wallMs: number
  /** When the process was spawned and when it had exited (epoch ms, the clock of the simulator's request log). */
  readonly startedAt: number
  readonly endedAt: number
  readonly peakRss: number
  /** CPU time of the process (user + system), ms: less sensitive than the wall time to a busy machine. */
  readonly cpuMs: number
  readonly stdout: string
  readonly stderr: string
}

/** Run `node [args]` as a child (asynchronously: a simulator may answer from this process), with its peak RSS. */
export const node = (args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<Proc> => {
  const rssFile = path.join(dir, `rss-${Math.random().toString(36).slice(2)}`)
  const started = performance.now()
  const startedAt = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", preload, ...args], {
      env: { ...process.env, ...env, BENCH_RSS_FILE: rssFile, CI: "true" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString()
    })
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString()
    })
    child.on("error", reject)
    child.on("close", (code) => {
      const wallMs = performance.now() - started
      const [peakRss, cpuMs] = fs.readFileSync(rssFile, "utf8").split(" ").map(Number)
      resolve({
        code: code ?? -1,
        wallMs,
        startedAt,
        endedAt: Date.now(),
        peakRss: peakRss ?? 0,
        cpuMs: cpuMs ?? 0,
        stdout,
        stderr
      })
    })
  })
}

/** `count` runs of `node [args]` one after the other: the median wall time and the median peak RSS. */
export const sample = async (count: number, args: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const runs: Array<Proc> = []
  for (let i = 0; i < count; i++) runs.push(await node(args, env))
  const last = runs[runs.length - 1] as Proc
  return {
    wallMs: median(runs.map((p) => p.wallMs)),
    peakRss: median(runs.map((p) => p.peakRss)),
    cpuMs: median(runs.map((p) => p.cpuMs)),
    last
  }
}

export const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
export const mib = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`
export const verdict = (ok: boolean) => (ok ? "met" : "MISSED")

/** Print a figure of the bench; under `./dev bench` (BENCH_SUMMARY) also collect it for the summary at the end. */
export const report = (line: string) => {
  console.log(line)
  if (process.env.BENCH_SUMMARY !== undefined) fs.appendFileSync(process.env.BENCH_SUMMARY, `${line}\n`)
}
