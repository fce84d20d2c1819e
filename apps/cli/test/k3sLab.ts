/** Shared by the k3s end-to-end tests of the CLI: simulated labs, homelab.yaml for them, and ways to watch them. */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { labScenario, reserveLoopbackNet, type Scenario, type SimHandle, startSimPromise } from "@homelab/sim"
import ssh2 from "ssh2"
import { simConfigYaml } from "../src/commands/demoRun.js"
import { type RunResult, runHomelab } from "./helpers.js"

/** This file's loopback /24, unique across the processes on the machine (given back when the process exits). */
export const net = reserveLoopbackNet().net
export const servers = ["pve", "still-fawn", "chief-horse"]
export const agents = ["fun-goal", "wise-owl"]
export const all = [...servers, ...agents]
export const v130 = "v1.30.5+k3s1"
export const v131 = "v1.31.5+k3s1"
export const k3sTimings = { joinDelayMs: 5000, readyDelayMs: 10_000, learnerPromotionDelayMs: 15_000 }
/** k3s's node-monitor grace period (simulated): a Node whose kubelet stopped posting is Unknown after it. */
export const nodeMonitorGraceMs = 40_000

/** Simulators started by `lab`: each test file stops them after each test (`afterEach(stopLabs)`). */
const running: Array<{ stop: () => Promise<void> }> = []
export const stopLabs = async () => {
  for (const s of running.splice(0)) await s.stop()
}

export const k3sYaml = (version: string) =>
  [
    "k3s:",
    `  version: ${version}`,
    "  serverFlags: [--write-kubeconfig-mode=644]",
    "  upgrade: { drainTimeout: 60 }",
    ""
  ].join("\n")

/**
 * A simulated lab, homelab.yaml for it (servers on the first three nodes, no k3s.server), and `homelab` to run.
 * `elapse(simMs)` moves the simulator's clock on by that much simulated time at once: what the simulator derives
 * from its clock (a Node turning Unknown once the node-monitor grace period has passed) is as it would be then.
 */
export const lab = async (scenario: Scenario, subnet: string) => {
  let skew = 0
  const sim = (await startSimPromise(scenario, { now: () => Date.now() + skew })) as unknown as SimHandle & {
    stop: () => Promise<void>
  }
  running.push(sim)
  const elapse = (simMs: number) => {
    skew += simMs * (scenario.timeScale ?? 1)
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "homelab-cli-k3s-"))
  const config = path.join(dir, "homelab.yaml")
  let yaml = simConfigYaml(sim, dir)
  for (const n of servers) yaml = yaml.replace(`  - name: ${n}\n`, `  - name: ${n}\n    vms: [{ role: server }]\n`)
  const write = (version: string) => fs.writeFileSync(config, `${yaml}${k3sYaml(version)}`)
  write(v130)
  const env = { PROXMOX_TOKEN_SECRET: sim.info.auth.tokenSecret, CI: "true" }
  const homelab = (args: ReadonlyArray<string>, extraEnv: Record<string, string> = {}) =>
    runHomelab(["--config", config, ...args], { env: { ...env, ...extraEnv }, timeout: 120_000 })
  return { sim, dir, config, homelab, write, env, subnet, elapse }
}

export const nodes = (sim: SimHandle) =>
  sim
    .state()
    .k3s.nodes.map((n) => `${String(n.name).replace("k3s-vm-", "")} ${n.role} ${n.ready} ${n.version}`)
    .sort()

export const vmidOf = (sim: SimHandle, name: string) =>
  sim.state().vms.find((v) => v.name === `k3s-vm-${name}`)?.vmid as number

/**
 * Waits until `check` holds, looking at the simulator's state every 20 ms; gives up after 3000 looks (at least a
 * minute, longer on a busy machine: a hang guard, not a time limit).
 */
export const until = async (check: () => boolean, what: string) => {
  for (let looks = 0; !check(); looks++) {
    if (looks >= 3000) throw new Error(`gave up waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Runs one command on a guest over SSH as its cloud-init user (the sim's key), `stdin` piped in. */
export const onGuest = (sim: SimHandle, ip: string, command: string, stdin?: string) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const client = new ssh2.Client()
    client
      .on("ready", () => {
        client.exec(command, (err, stream) => {
          if (err) return reject(err)
          let stdout = ""
          let stderr = ""
          stream.on("data", (d: Buffer) => {
            stdout += d.toString()
          })
          stream.stderr.on("data", (d: Buffer) => {
            stderr += d.toString()
          })
          stream.on("close", (code: number) => {
            client.end()
            resolve({ code, stdout, stderr })
          })
          if (stdin !== undefined) stream.end(stdin)
          else stream.end()
        })
      })
      .on("error", reject)
      .connect({
        host: ip,
        port: sim.info.guestSshPort,
        username: "ubuntu",
        privateKey: fs.readFileSync(sim.info.sshPrivateKeyPath)
      })
  })

/** Output without terminal colours (picocolors colours under CI=true). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes
export const plain = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, "")

export const show = (r: RunResult) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`

/** `homelab` as a child process that the test can interrupt (Ctrl-C is SIGINT). */
export const startHomelab = (config: string, args: ReadonlyArray<string>, env: Record<string, string>) => {
  const bin = new URL("../dist/bin.js", import.meta.url).pathname
  const child = spawn(process.execPath, [bin, "--config", config, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
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
  const done = new Promise<RunResult>((resolve) => {
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })
  return { child, done }
}

/** Our VMs already run a cluster on v1.30.5 (3 servers, 2 agents), with a PodDisruptionBudget'd workload. */
export const runningCluster = (subnet: string): Scenario =>
  labScenario(all, {
    memory: "32G",
    imageSize: "2M",
    ipPool: `${subnet}.100`,
    guestSshPort: 2222,
    timeScale: 0.02,
    vms: all.map((node, i) => ({
      vmid: 2001 + i,
      node,
      name: `k3s-vm-${node}`,
      status: "running" as const,
      uptime: 86_400,
      tags: "homelab-managed",
      ip: `${subnet}.${11 + i}`,
      // sized as homelab.yaml asks (the nodes' CPUs and memory × 0.5): no drift to change in place
      config: {
        cores: 4,
        memory: "16384",
        cpu: "host",
        agent: "1",
        net0: `virtio=BC:24:11:2A:02:${String(11 + i).padStart(2, "0")},bridge=vmbr0`
      },
      guest: {
        hostname: `k3s-vm-${node}`,
        user: "ubuntu",
        // installed by homelab with the lab's homelab.yaml: its k3s.serverFlags on the servers, none on the agents
        k3s: servers.includes(node)
          ? { role: "server" as const, clusterInit: i === 0, flags: ["--write-kubeconfig-mode=644"] }
          : { role: "agent" as const }
      }
    })),
    k3s: { version: v130, ...k3sTimings, workloads: [{ name: "web", replicas: 2, pdb: { minAvailable: 1 } }] }
  })

export const upgradeEvents = (sim: SimHandle, since: number) =>
  sim
    .k3sEvents()
    .slice(since)
    .filter((e) =>
      ["node-cordoned", "drain-start", "drain-finish", "node-upgraded", "node-uncordoned"].includes(e.kind)
    )
    .map((e) => `${(e.node || (e.detail ?? "")).replace("k3s-vm-", "")} ${e.kind}`)
