// Sums the Vitest JSON reports of every package (written by each package's `test` script) into one closing line.
import fs from "node:fs"
import path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
let passed = 0
let failed = 0
let skipped = 0
const missing = []
for (const group of ["packages", "apps"]) {
  for (const name of fs.readdirSync(path.join(root, group))) {
    const dir = path.join(root, group, name)
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"))
    if (manifest.scripts?.test === undefined) continue
    const file = path.join(dir, ".vitest-report.json")
    if (!fs.existsSync(file)) {
      missing.push(manifest.name)
      continue
    }
    const report = JSON.parse(fs.readFileSync(file, "utf8"))
    passed += report.numPassedTests
    failed += report.numFailedTests
    skipped += report.numPendingTests + (report.numTodoTests ?? 0)
    console.log(`${manifest.name}: ${report.numPassedTests} passed, ${report.numFailedTests} failed`)
  }
}
if (missing.length > 0) console.log(`no test report from: ${missing.join(", ")}`)
console.log(`Tests: ${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`)
process.exit(failed > 0 || missing.length > 0 ? 1 : 0)
