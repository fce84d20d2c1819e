#!/usr/bin/env node
import { readFileSync, writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { Effect } from "effect"
import { demoScenario } from "./DemoScenario.js"
import { parseScenario, type Scenario } from "./Scenario.js"
import { startSimPromise } from "./Sim.js"

const usage = "usage: homelab-sim [--scenario FILE] [--ready-file FILE] [--latency-ms N] [--time-scale X]"

const main = async (): Promise<void> => {
  const { values } = parseArgs({
    options: {
      scenario: { type: "string" },
      "ready-file": { type: "string" },
      "latency-ms": { type: "string" },
      "time-scale": { type: "string" },
      help: { type: "boolean", short: "h" }
    },
    allowPositionals: false
  })
  if (values.help === true) {
    process.stdout.write(`${usage}\n`)
    return
  }
  let scenario: Scenario =
    values.scenario === undefined
      ? demoScenario()
      : await Effect.runPromise(parseScenario(readFileSync(values.scenario, "utf8")))
  if (values["time-scale"] !== undefined) scenario = { ...scenario, timeScale: Number(values["time-scale"]) }
  if (values["latency-ms"] !== undefined)
    scenario = {
      ...scenario,
      faults: [...(scenario.faults ?? []), { kind: "latency", ms: Number(values["latency-ms"]) }]
    }
  const sim = await startSimPromise(scenario)
  const doc = JSON.stringify(sim.info)
  if (values["ready-file"] !== undefined) writeFileSync(values["ready-file"], `${doc}\n`, { mode: 0o600 })
  process.stdout.write(`${doc}\n`)
  const stop = () => {
    void sim.stop().then(() => process.exit(0))
  }
  process.once("SIGINT", stop)
  process.once("SIGTERM", stop)
}

main().catch((e: unknown) => {
  process.stderr.write(`homelab-sim: ${(e as Error).message ?? String(e)}\n`)
  process.exit(1)
})
