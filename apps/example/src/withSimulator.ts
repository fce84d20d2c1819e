// Runs src/main.ts end to end against @homelab/sim: a simulated k3s server and a fresh worker VM on loopback, each
// with an SSH server; joins the worker, then runs again to show that nothing changes. `./dev example` runs this.
import { execFileSync, spawn } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { reserveLoopbackNet, startSimPromise } from "@homelab/sim"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "k3s-join-example-"))
const key = path.join(dir, "id_ed25519")
execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "example", "-f", key])
const publicKey = fs.readFileSync(`${key}.pub`, "utf8").trim()
// a loopback /24 no other simulated lab on this machine holds (guests listen on fixed addresses and port 2222)
const { net } = reserveLoopbackNet()
const guest = (hostname: string, ip: string, vmid: number, k3s?: { role: "server"; clusterInit: true }) => ({
  vmid,
  node: "pve",
  name: hostname,
  status: "running" as const,
  ip,
  config: { cores: 2, memory: "2048", agent: "1" },
  guest: { hostname, user: "ubuntu", authorizedKeys: [publicKey], ...(k3s ? { k3s } : {}) }
})

const sim = await startSimPromise({
  nodes: [{ name: "pve", address: "127.0.0.1", apiPort: 0, sshPort: 0 }],
  vms: [
    guest("k3s-server", `${net}.5`, 200, { role: "server", clusterInit: true }),
    guest("worker-1", `${net}.21`, 201)
  ],
  k3s: { version: "v1.30.5+k3s1" },
  ipPool: `${net}.50`,
  guestSshPort: 2222,
  timeScale: 0.2,
  timings: { unauthorizedDelayMs: 0 }
})

const main = fileURLToPath(new URL("./main.js", import.meta.url))
const args = ["--server", `${net}.5`, "--host", `${net}.21`, "--port", "2222", "--key", key]
const run = (title: string) =>
  new Promise<number>((resolve) => {
    console.log(`\n$ node main.js ${[...args.slice(0, 6), "--key", "<temp key>"].join(" ")}   # ${title}`)
    const child = spawn(process.execPath, [main, ...args, "--known-hosts", path.join(dir, "known_hosts")], {
      stdio: "inherit"
    })
    child.on("exit", (code) => resolve(code ?? 1))
  })

let code = 1
try {
  code = await run("join worker-1")
  if (code === 0) code = await run("again: already a member")
} finally {
  await sim.stop()
  fs.rmSync(dir, { recursive: true, force: true })
}
process.exit(code)
