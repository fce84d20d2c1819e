// The packages as a user gets them: pack every public package, install the tarballs with plain npm into a scratch
// folder outside the workspace (the @homelab packages from the tarballs only, third-party ones from the registry or
// npm's cache), then
//   - run an ES module and a CommonJS script using @homelab/k3s-join's Promise API (a join against @homelab/sim),
//   - type-check a TypeScript file using the Effect APIs of @homelab/k3s-join and @homelab/proxmox-client under
//     `nodenext` and `bundler`, `skipLibCheck: false`, with the consumer's own @types/node,
//   - run the installed `homelab --version` and `homelab demo`,
//   - lint every tarball with publint and `attw` (are the types wrong).
// Run by `./dev check` after the build; `node .ci/consumer-test.mjs` alone needs a build first.
import { execFileSync, spawnSync } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "homelab-consumer-"))
const packs = path.join(scratch, "packs")
const app = path.join(scratch, "app")
const started = performance.now()
const failures = []
const step = (title) => console.log(`== consumer: ${title} (${((performance.now() - started) / 1000).toFixed(1)} s)`)

/** Runs a command; returns its output, records a failure (with the output) when it exits non-zero. */
const run = (title, file, args, options = {}) => {
  const r = spawnSync(file, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: 180_000, ...options })
  const output = `${r.stdout ?? ""}${r.stderr ?? ""}`
  if (r.status !== 0) failures.push(`${title}: exit ${r.status ?? r.signal ?? r.error}\n${output.trimEnd()}`)
  return { ok: r.status === 0, stdout: r.stdout ?? "", output }
}

// npm that never reads the workspace's configuration (pnpm settings in .npmrc, the workspace root) and never prompts.
const npmEnv = { ...process.env, npm_config_update_notifier: "false", npm_config_fund: "false" }
delete npmEnv.npm_config_nodedir
const npm = (title, args, cwd) => run(title, "npm", [...args, "--no-audit", "--prefer-offline"], { cwd, env: npmEnv })

try {
  step("pack")
  fs.mkdirSync(packs)
  const tarballs = {}
  for (const group of ["packages", "apps"]) {
    for (const name of fs.readdirSync(path.join(root, group))) {
      const dir = path.join(root, group, name)
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"))
      if (manifest.private) continue
      const out = execFileSync("pnpm", ["pack", "--pack-destination", packs, "--json"], { cwd: dir, encoding: "utf8" })
      tarballs[manifest.name] = JSON.parse(out).filename
    }
  }
  for (const [name, file] of Object.entries(tarballs)) {
    const unpacked = execFileSync("tar", ["-tzvf", file], { encoding: "utf8" })
      .split("\n")
      .reduce((sum, line) => sum + (Number(line.split(/\s+/)[2]) || 0), 0)
    console.log(`${name}: ${fs.statSync(file).size} B packed, ${unpacked} B unpacked`)
  }

  step("publint + attw")
  const lintBin = (name) => path.join(root, "node_modules", ".bin", name)
  for (const [name, file] of Object.entries(tarballs)) {
    run(`publint ${name}`, lintBin("publint"), ["run", file, "--strict"])
    // ESM packages with a "default" export condition: node16-cjs resolves to ESM, which Node >= 22.12 require()s
    // (and the consumer's CommonJS script below does); the esm-only profile ignores only CommonJS-era resolutions.
    // The CLI has no entry points to type: attw checks only that nothing resolves wrongly.
    run(`attw ${name}`, lintBin("attw"), [file, "--profile", "esm-only", "--format", "table-flipped"])
  }

  step("npm install of the tarballs")
  fs.mkdirSync(app)
  const fileSpec = (name) => `file:${tarballs[name]}`
  fs.writeFileSync(
    path.join(app, "package.json"),
    `${JSON.stringify(
      {
        name: "homelab-consumer",
        private: true,
        type: "commonjs",
        dependencies: {
          "@homelab/cli": fileSpec("@homelab/cli"),
          "@homelab/k3s-join": fileSpec("@homelab/k3s-join"),
          "@homelab/proxmox-client": fileSpec("@homelab/proxmox-client"),
          "@homelab/sim": fileSpec("@homelab/sim"),
          "@homelab/ssh": fileSpec("@homelab/ssh"),
          effect: "^4.1.0"
        },
        devDependencies: { "@types/node": "^24.0.0" },
        // Every @homelab package, also as a dependency of another, comes from its tarball, never from a registry.
        overrides: Object.fromEntries(Object.keys(tarballs).map((n) => [n, fileSpec(n)])),
        // What the READMEs tell npm users: ssh2 runs on Node's crypto; its optional native build is not wanted.
        allowScripts: { ssh2: false, "cpu-features": false }
      },
      null,
      2
    )}\n`
  )
  const install = npm("npm install", ["install", "--omit=optional"], app)
  if (/install-scripts|gyp|Failed to build/i.test(install.output))
    failures.push(`npm install warned:\n${install.output}`)
  const ls = npm("npm ls", ["ls", "--all"], app)
  if (/invalid|UNMET (?!OPTIONAL)|ERESOLVE/.test(ls.output)) failures.push(`npm ls:\n${ls.output}`)

  step("ESM and CommonJS scripts (Promise API)")
  fs.writeFileSync(
    path.join(app, "join.mjs"),
    `import { execFileSync, execFile } from "node:child_process"
import fs from "node:fs"
import path from "node:path"
import { promisify } from "node:util"
import { createK3sJoin } from "@homelab/k3s-join"
import { startSimPromise } from "@homelab/sim"

const dir = fs.mkdtempSync(path.join(process.cwd(), "keys-"))
const key = path.join(dir, "id_ed25519")
execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key])
const publicKey = fs.readFileSync(key + ".pub", "utf8").trim()
const net = "127." + (100 + Math.floor(Math.random() * 150)) + "." + Math.floor(Math.random() * 250)
const guest = (name, ip, vmid, k3s) => ({
  vmid, node: "pve", name, status: "running", ip, config: { cores: 2, memory: "2048", agent: "1" },
  guest: { hostname: name, user: "ubuntu", authorizedKeys: [publicKey], ...(k3s ? { k3s } : {}) }
})
const sim = await startSimPromise({
  nodes: [{ name: "pve", address: "127.0.0.1", apiPort: 0, sshPort: 0 }],
  vms: [guest("k3s-server", net + ".5", 200, { role: "server", clusterInit: true }), guest("worker-1", net + ".21", 201)],
  k3s: { version: "v1.30.5+k3s1" }, ipPool: net + ".50", guestSshPort: 2222, timeScale: 0.05,
  timings: { unauthorizedDelayMs: 0 }
})
const ssh = { user: "ubuntu", privateKeyPath: key, knownHosts: path.join(dir, "known_hosts") }
const k3s = createK3sJoin({ ssh })
let code = 1
try {
  const joined = await k3s.ensureMember({
    server: { host: net + ".5", port: 2222 }, host: { host: net + ".21", port: 2222 }, role: "agent"
  })
  console.log("esm: " + joined._tag + " " + joined.node + " " + joined.version)
  if (joined._tag !== "Joined") throw new Error("expected a join, got " + joined._tag)
  // The CommonJS consumer, against the same cluster (served by this process: never block it): the worker is a member.
  const cjs = await promisify(execFile)(process.execPath, ["member.cjs", net, JSON.stringify(ssh)])
  process.stdout.write(cjs.stdout + cjs.stderr)
  code = 0
} finally {
  await k3s.close()
  await sim.stop()
  fs.rmSync(dir, { recursive: true, force: true })
}
process.exit(code)
`
  )
  fs.writeFileSync(
    path.join(app, "member.cjs"),
    `const { createK3sJoin, K3sJoinError } = require("@homelab/k3s-join")
const [net, ssh] = process.argv.slice(2)
const k3s = createK3sJoin({ ssh: JSON.parse(ssh) })
k3s
  .ensureMember({ server: { host: net + ".5", port: 2222 }, host: { host: net + ".21", port: 2222 }, role: "agent" })
  .then((again) => {
    console.log("cjs: " + again._tag + " " + again.node + " (K3sJoinError is " + typeof K3sJoinError + ")")
    if (again._tag !== "AlreadyMember") process.exitCode = 1
  })
  .finally(() => k3s.close())
`
  )
  const scripts = run("ESM + CommonJS scripts", process.execPath, ["join.mjs"], { cwd: app })
  process.stdout.write(scripts.stdout)

  step("TypeScript (nodenext, bundler; skipLibCheck false)")
  fs.writeFileSync(
    path.join(app, "check.mts"),
    `import { K3sJoin, type K3sJoinError, type MemberResult } from "@homelab/k3s-join"
import { type ProxmoxError, ProxmoxApi, ProxmoxClientConfig } from "@homelab/proxmox-client"
import type { Scenario, SimHandle } from "@homelab/sim"
import { SshClient } from "@homelab/ssh"
import type { TestSshServer } from "@homelab/ssh/testing"
import { Effect, Layer } from "effect"

/** Every VM of the cluster that is not yet a Ready k3s agent joins through the first server. */
export const joinAll = (server: string): Effect.Effect<
  ReadonlyArray<MemberResult>,
  ProxmoxError | K3sJoinError,
  ProxmoxApi | K3sJoin
> =>
  Effect.gen(function* () {
    const api = yield* ProxmoxApi
    const k3s = yield* K3sJoin
    const vms = yield* api.clusterVms
    return yield* Effect.forEach(
      vms.filter((vm) => vm.status === "running"),
      (vm) => k3s.ensureMember({ server: { host: server, user: "ubuntu" }, host: { host: vm.name ?? String(vm.vmid), user: "ubuntu" }, role: "agent" }),
      { concurrency: 4 }
    )
  })

export const k3sLayer: Layer.Layer<K3sJoin, never, SshClient> = K3sJoin.layer
export type Lab = { readonly scenario: Scenario; readonly sim: SimHandle; readonly ssh: TestSshServer }
`
  )
  // A CommonJS TypeScript module require()s the ES module package (TypeScript >= 5.8 under nodenext, Node >= 22.12).
  fs.writeFileSync(
    path.join(app, "member.cts"),
    `import k3s = require("@homelab/k3s-join")
export const client = (): k3s.K3sJoinClient => k3s.createK3sJoin({ ssh: { user: "ubuntu" } })
`
  )
  for (const moduleResolution of ["nodenext", "bundler"]) {
    const tsconfig = {
      compilerOptions: {
        target: "ES2022",
        lib: ["ES2023"],
        module: moduleResolution === "nodenext" ? "nodenext" : "esnext",
        moduleResolution,
        types: ["node"],
        strict: true,
        skipLibCheck: false,
        noEmit: true
      },
      files: moduleResolution === "nodenext" ? ["check.mts", "member.cts"] : ["check.mts"]
    }
    fs.writeFileSync(path.join(app, `tsconfig.${moduleResolution}.json`), JSON.stringify(tsconfig, null, 2))
    run(
      `tsc (${moduleResolution})`,
      path.join(root, "apps", "cli", "node_modules", ".bin", "tsc"),
      ["-p", `tsconfig.${moduleResolution}.json`],
      {
        cwd: app
      }
    )
  }

  step("installed homelab --version and homelab demo")
  const homelab = path.join(app, "node_modules", ".bin", "homelab")
  const version = run("homelab --version", homelab, ["--version"], { cwd: app })
  const cliVersion = JSON.parse(fs.readFileSync(path.join(root, "apps", "cli", "package.json"), "utf8")).version
  if (!version.stdout.includes(cliVersion)) failures.push(`homelab --version printed ${JSON.stringify(version.stdout)}`)
  const demo = run("homelab demo", homelab, ["demo", "--time-scale", "0.05"], {
    cwd: app,
    env: { ...process.env, CI: "true" }
  })
  console.log(demo.stdout.trimEnd().split("\n").slice(-4).join("\n"))
} finally {
  fs.rmSync(scratch, { recursive: true, force: true })
}

step(failures.length === 0 ? "ok" : `${failures.length} failure(s)`)
if (failures.length > 0) {
  console.error(failures.join("\n\n"))
  process.exit(1)
}
