// Checks what `pnpm publish` would upload for every public package: the tarball holds dist + manifest (+ README,
// LICENSE), every `exports`/`bin` target is inside it, and no `workspace:` / `catalog:` specifier leaks to npm.
// Then installs the CLI's tarball alone into an empty prefix, as `npm i -g @homelab/cli` does, runs it, and reports
// its installed size and package count (target: under 15 MB on disk).
import { execFileSync } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const out = fs.mkdtempSync(path.join(os.tmpdir(), "homelab-packs-"))
const failures = []
let cliTarball
const dirs = ["packages", "apps"].flatMap((d) => fs.readdirSync(path.join(root, d)).map((n) => path.join(root, d, n)))

for (const dir of dirs) {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"))
  if (manifest.private) continue
  const json = execFileSync("pnpm", ["pack", "--pack-destination", out, "--json"], { cwd: dir, encoding: "utf8" })
  const tarball = JSON.parse(json).filename
  const files = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" })
    .split("\n")
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ""))
  const packed = JSON.parse(execFileSync("tar", ["-xzOf", tarball, "package/package.json"], { encoding: "utf8" }))
  const fail = (msg) => failures.push(`${manifest.name}: ${msg}`)
  for (const f of files) {
    if (!/^(dist\/|package\.json$|README\.md$|LICENSE$|CHANGELOG\.md$)/.test(f))
      fail(`unexpected file in tarball: ${f}`)
  }
  if (!files.includes("package.json")) fail("no package.json in tarball")
  if (!files.some((f) => f.startsWith("dist/"))) fail("no dist/ in tarball")
  if (!files.includes("LICENSE")) fail("no LICENSE in tarball")
  if (!files.includes("README.md")) fail("no README.md in tarball")
  if (files.some((f) => f.endsWith(".map")))
    fail("source maps in tarball (they would embed or point at absent sources)")
  const targets = []
  const walk = (v) =>
    typeof v === "string" ? targets.push(v) : v && typeof v === "object" && Object.values(v).forEach(walk)
  walk(packed.exports)
  walk(packed.bin)
  for (const t of targets) {
    const rel = t.replace(/^\.\//, "")
    if (rel !== "package.json" && !files.includes(rel)) fail(`export/bin target missing from tarball: ${t}`)
  }
  for (const field of ["dependencies", "peerDependencies", "optionalDependencies"]) {
    for (const [dep, spec] of Object.entries(packed[field] ?? {})) {
      if (/^(workspace|catalog):/.test(spec)) fail(`${field}.${dep} still says "${spec}"`)
    }
  }
  // Import every JS entry point from the unpacked tarball, placed inside the package folder so that bare imports
  // resolve only against the package's own declared dependencies (pnpm's strict node_modules).
  const unpacked = path.join(dir, ".pack-check")
  fs.rmSync(unpacked, { recursive: true, force: true })
  fs.mkdirSync(unpacked)
  execFileSync("tar", ["-xzf", tarball, "-C", unpacked])
  const exportTargets = []
  const walkExports = (v) =>
    typeof v === "string" ? exportTargets.push(v) : v && typeof v === "object" && Object.values(v).forEach(walkExports)
  walkExports(packed.exports)
  for (const t of exportTargets.filter((t) => t.endsWith(".js"))) {
    try {
      await import(path.join(unpacked, "package", t))
    } catch (e) {
      fail(`import of ${t} from the tarball failed: ${e.message}`)
    }
  }
  fs.rmSync(unpacked, { recursive: true, force: true })
  console.log(
    `${manifest.name}@${packed.version}: ${files.length} files, ${targets.length} entry points, imports ok; ` +
      `${fs.statSync(tarball).size} B packed`
  )
  if (manifest.name === "@homelab/cli") cliTarball = tarball
}

if (cliTarball !== undefined) {
  const prefix = path.join(out, "global")
  const env = { ...process.env, npm_config_update_notifier: "false", npm_config_fund: "false" }
  delete env.npm_config_nodedir
  execFileSync("npm", ["install", "--global", "--prefix", prefix, "--no-audit", "--prefer-offline", cliTarball], {
    cwd: out,
    env,
    stdio: ["ignore", "ignore", "inherit"]
  })
  const modules = path.join(prefix, "lib", "node_modules")
  const bytes = Number(execFileSync("du", ["-sk", modules], { encoding: "utf8" }).split("\t")[0]) * 1024
  const packages = execFileSync("find", [modules, "-name", "package.json"], { encoding: "utf8" })
    .split("\n")
    .filter((f) => /node_modules\/(@[^/]+\/)?[^/]+\/package\.json$/.test(f)).length
  const version = execFileSync(path.join(prefix, "bin", "homelab"), ["--version"], { encoding: "utf8" }).trim()
  console.log(
    `@homelab/cli installed alone (npm i -g): ${(bytes / 1e6).toFixed(1)} MB on disk, ${packages} package(s); ` +
      `\`homelab --version\`: ${version} (target: under 15 MB)`
  )
  if (bytes >= 15e6) failures.push(`@homelab/cli: installs ${(bytes / 1e6).toFixed(1)} MB (target: under 15 MB)`)
}

fs.rmSync(out, { recursive: true, force: true })
if (failures.length > 0) {
  console.error(failures.join("\n"))
  process.exit(1)
}
