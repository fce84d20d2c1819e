#!/usr/bin/env node
// Vendors the part of PVE's API schema this project uses into test/fixtures/pve-api/ (test data, never published).
//
//   node scripts/vendor-pve-api.mjs DIR    # DIR holds pve-8.4.json and pve-9.1.json (one endpoint per key)
//   pnpm exec biome format --write test/fixtures/pve-api
//
// The input is PVE's API schema flattened from pve-docs `api-viewer/apidata.js` (AGPL-3.0-or-later, Proxmox Server
// Solutions GmbH) at the commits that shipped PVE 8.4 and 9.1. The subset is every endpoint the simulator serves
// (`ApiRouter.endpoints()`, from the built dist/) that the schema has, plus the endpoints in EXTRA.
import fs from "node:fs"
import path from "node:path"
import { ApiRouter } from "../dist/index.js"

const EXTRA = []
const dir = process.argv[2]
if (dir === undefined) {
  console.error("usage: node scripts/vendor-pve-api.mjs DIR")
  process.exit(2)
}
const out = path.join(import.meta.dirname, "..", "test", "fixtures", "pve-api")
const endpoints = [...new ApiRouter({ state: {}, auth: {} }).endpoints(), ...EXTRA]
for (const version of ["8.4", "9.1"]) {
  const full = JSON.parse(fs.readFileSync(path.join(dir, `pve-${version}.json`), "utf8"))
  const subset = {}
  for (const e of [...new Set(endpoints)].sort()) if (full[e] !== undefined) subset[e] = full[e]
  fs.writeFileSync(path.join(out, `pve-${version}.json`), `${JSON.stringify(subset, null, 2)}\n`)
  console.log(`pve-${version}.json: ${Object.keys(subset).length} endpoints`)
}
