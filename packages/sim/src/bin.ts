#!/usr/bin/env node
import { runBin } from "./internal/BinMain.js"

runBin(process.argv.slice(2))
  .then((r) => {
    if ("help" in r) {
      process.stdout.write(`${r.help}\n`)
      return
    }
    process.stdout.write(`${r.doc}\n`)
    const stop = () => {
      void r.sim.stop().then(() => process.exit(0))
    }
    process.once("SIGINT", stop)
    process.once("SIGTERM", stop)
  })
  .catch((e: unknown) => {
    process.stderr.write(`homelab-sim: ${(e as Error).message ?? String(e)}\n`)
    process.exit(1)
  })
