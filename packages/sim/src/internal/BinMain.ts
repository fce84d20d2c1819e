import { readFileSync, writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import * as Effect from "effect/Effect"
import { demoScenario } from "../DemoScenario.js"
import { parseScenario, type Scenario } from "../Scenario.js"
import { type SimHandle, startSimPromise } from "../Sim.js"

export const USAGE = "usage: homelab-sim [--scenario FILE] [--ready-file FILE] [--latency-ms N] [--time-scale X]"

/** Parse argv, start the sim, write the ready file. Returns the handle and the ready JSON document. */
export const runBin = async (
  argv: ReadonlyArray<string>
): Promise<{ sim: SimHandle; doc: string } | { help: string }> => {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      scenario: { type: "string" },
      "ready-file": { type: "string" },
      "latency-ms": { type: "string" },
      "time-scale": { type: "string" },
      help: { type: "boolean", short: "h" }
    },
    allowPositionals: false
  })
  if (values.help === true) return { help: USAGE }
  let scenario: Scenario =
    values.scenario === undefined
      ? demoScenario()
      : await Effect.runPromise(parseScenario(readFileSync(values.scenario, "utf8")))
  if (values["time-scale"] !== undefined) {
    const x = Number(values["time-scale"])
    if (!Number.isFinite(x) || x < 0)
      throw new Error(`--time-scale: expected a number >= 0, got '${values["time-scale"]}'`)
    scenario = { ...scenario, timeScale: x }
  }
  if (values["latency-ms"] !== undefined) {
    const ms = Number(values["latency-ms"])
    if (!Number.isFinite(ms) || ms < 0)
      throw new Error(`--latency-ms: expected a number >= 0, got '${values["latency-ms"]}'`)
    scenario = { ...scenario, faults: [...(scenario.faults ?? []), { kind: "latency", ms }] }
  }
  const sim = await startSimPromise(scenario)
  const doc = JSON.stringify(sim.info)
  if (values["ready-file"] !== undefined) writeFileSync(values["ready-file"], `${doc}\n`, { mode: 0o600 })
  return { sim, doc }
}
