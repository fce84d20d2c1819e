// Target 3 of "speed at the physical limit": `homelab --version` and `homelab --help` start within 2 × the wall time
// of `node -e 0` (measured in the same run, interleaved with them on the same machine) and under 60 MiB peak RSS.
// The first run of each fills Node's compile cache (as a user's first run does) and is not counted.
// Run: `pnpm bench` (after a build).
import { bin, cleanUp, MiB, median, mib, node, type Proc, report, verdict } from "./proc.ts"

const RUNS = 11
const subjects: Record<string, ReadonlyArray<string>> = {
  "node -e 0": ["-e", "0"],
  "homelab --version": [bin, "--version"],
  "homelab --help": [bin, "--help"]
}
try {
  const runs = new Map<string, Array<Proc>>(Object.keys(subjects).map((k) => [k, []]))
  for (const args of Object.values(subjects)) await node(args) // fills the compile cache
  for (let i = 0; i < RUNS; i++)
    for (const [name, args] of Object.entries(subjects)) {
      const run = await node(args)
      if (run.code !== 0) throw new Error(`${name} exited ${run.code}: ${run.stderr}`)
      runs.get(name)?.push(run)
    }
  const wall = (name: string) => median((runs.get(name) ?? []).map((p) => p.wallMs))
  const rss = (name: string) => median((runs.get(name) ?? []).map((p) => p.peakRss))
  const base = wall("node -e 0")
  report(`baseline \`node -e 0\`: median ${base.toFixed(0)} ms wall, ${mib(rss("node -e 0"))} peak RSS`)
  for (const name of ["homelab --version", "homelab --help"]) {
    const ratio = wall(name) / base
    report(
      `target 3: ${name}: median ${wall(name).toFixed(0)} ms wall = ${ratio.toFixed(2)} × node -e 0 ` +
        `(target ≤ 2 ×) ${verdict(ratio <= 2)}, ${mib(rss(name))} peak RSS (target < 60 MiB) ${verdict(rss(name) < 60 * MiB)}`
    )
  }
} finally {
  cleanUp()
}
process.exit(0)
