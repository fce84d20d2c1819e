/**
 * The k3s lifecycle end to end through the built `homelab` against the simulator: a cluster from nothing in one
 * `apply --yes`, a server rebuilt behind the quorum guard (refused while another server is down), `kubeconfig --merge`
 * used by the simulator's kubectl, and a rolling upgrade interrupted midway (Ctrl-C) and resumed.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { labScenario, type Scenario, type SimHandle, startSimPromise } from "@homelab/sim"
import ssh2 from "ssh2"
import { parse as parseYaml } from "yaml"
import { simConfigYaml } from "../src/commands/demoRun.js"
import { ExitCode } from "../src/ExitCode.js"
import { type RunResult, runHomelab } from "./helpers.js"

const net = `127.${100 + Math.floor(Math.random() * 120)}.${Math.floor(Math.random() * 250)}`
const servers = ["pve", "still-fawn", "chief-horse"]
const agents = ["fun-goal", "wise-owl"]
const all = [...servers, ...agents]
const v130 = "v1.30.5+k3s1"
const v131 = "v1.31.5+k3s1"
const k3sTimings = { joinDelayMs: 5000, readyDelayMs: 10_000, learnerPromotionDelayMs: 15_000 }

const running: Array<{ stop: () => Promise<void> }> = []
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop()
})

const k3sYaml = (version: string) =>
  [
    "k3s:",
    `  version: ${version}`,
    "  installFlags: [--write-kubeconfig-mode=644]",
    "  upgrade: { drainTimeout: 60 }",
    ""
  ].join("\n")

/** A simulated lab, homelab.yaml for it (servers on the first three nodes, no k3s.server), and `homelab` to run. */
const lab = async (scenario: Scenario, subnet: string) => {
  const sim = (await startSimPromise(scenario)) as unknown as SimHandle & { stop: () => Promise<void> }
  running.push(sim)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "homelab-cli-k3s-"))
  const config = path.join(dir, "homelab.yaml")
  let yaml = simConfigYaml(sim, dir)
  for (const n of servers) yaml = yaml.replace(`  - name: ${n}\n`, `  - name: ${n}\n    vms: [{ role: server }]\n`)
  const write = (version: string) => fs.writeFileSync(config, `${yaml}${k3sYaml(version)}`)
  write(v130)
  const env = { PROXMOX_TOKEN_SECRET: sim.info.auth.tokenSecret, CI: "true" }
  const homelab = (args: ReadonlyArray<string>, extraEnv: Record<string, string> = {}) =>
    runHomelab(["--config", config, ...args], { env: { ...env, ...extraEnv }, timeout: 120_000 })
  return { sim, dir, config, homelab, write, env, subnet }
}

const nodes = (sim: SimHandle) =>
  sim
    .state()
    .k3s.nodes.map((n) => `${String(n.name).replace("k3s-vm-", "")} ${n.role} ${n.ready} ${n.version}`)
    .sort()

const vmidOf = (sim: SimHandle, name: string) =>
  sim.state().vms.find((v) => v.name === `k3s-vm-${name}`)?.vmid as number

/** Waits (polling the simulator's state, bounded) until `check` holds. */
const until = async (check: () => boolean, what: string, limitMs = 60_000) => {
  const started = Date.now()
  while (!check()) {
    if (Date.now() - started > limitMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Runs one command on a guest over SSH as its cloud-init user (the sim's key), `stdin` piped in. */
const onGuest = (sim: SimHandle, ip: string, command: string, stdin?: string) =>
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
const plain = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, "")

const show = (r: RunResult) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`

describe("homelab and the k3s lifecycle", () => {
  it("bare nodes converge to 3 Ready servers and 2 agents in one apply; a rebuilt server keeps quorum, a second one is refused; kubeconfig --merge", async () => {
    const { sim, homelab, dir } = await lab(
      labScenario(all, {
        memory: "32G",
        imageSize: "2M",
        ipPool: `${net}.10`,
        guestSshPort: 2222,
        timeScale: 0.02,
        k3s: { version: v130, ...k3sTimings }
      }),
      net
    )
    const plan = await homelab(["plan"])
    assert.strictEqual(plan.code, ExitCode.Ok, show(plan))
    assert.include(plain(plan.stdout), "k3s cluster: 3 servers (etcd), 2 agents; started on k3s-vm-pve")
    assert.include(
      plain(plan.stdout),
      "start the k3s cluster on k3s-vm-pve (first server, embedded etcd) after it is created"
    )

    const apply = await homelab(["apply", "--yes"])
    assert.strictEqual(apply.code, ExitCode.Ok, show(apply))
    assert.deepStrictEqual(nodes(sim), [
      `chief-horse server True ${v130}`,
      `fun-goal agent True ${v130}`,
      `pve server True ${v130}`,
      `still-fawn server True ${v130}`,
      `wise-owl agent True ${v130}`
    ])
    assert.strictEqual(sim.state().k3s.etcdMembers.filter((m) => !m.isLearner).length, 3)
    const again = await homelab(["plan", "--detailed-exitcode"])
    assert.strictEqual(again.code, ExitCode.Ok, show(again))
    assert.include(again.stdout, "No changes")

    // A server rebuilt on purpose keeps quorum: its member goes before it is destroyed, then it rejoins.
    const since = Date.now()
    const rebuild = await homelab(["reprovision", "still-fawn", "--yes"])
    assert.strictEqual(rebuild.code, ExitCode.Ok, show(rebuild))
    const kinds = sim
      .k3sEvents()
      .filter((e) => e.at >= since && e.node.startsWith("k3s-vm-still-fawn"))
      .map((e) => e.kind)
    assert.isBelow(kinds.indexOf("etcd-member-removed"), kinds.indexOf("server-join-finish"))
    assert.strictEqual(sim.state().k3s.etcdMembers.filter((m) => !m.isLearner).length, 3)

    // With chief-horse down, rebuilding pve would leave one of three members: refused, pve untouched.
    sim.setVmStatus(vmidOf(sim, "chief-horse"), { status: "stopped", qmpstatus: "stopped" })
    await until(
      () => sim.state().k3s.nodes.find((n) => n.name === "k3s-vm-chief-horse")?.ready === "Unknown",
      "chief-horse NotReady"
    )
    const pve = JSON.stringify(sim.state().vms.find((v) => v.name === "k3s-vm-pve"))
    const refused = await homelab(["reprovision", "pve", "--yes"])
    assert.strictEqual(refused.code, ExitCode.Join, show(refused)) // what is left is on the k3s layer only
    assert.match(
      plain(refused.stdout),
      /not rebuilding k3s server k3s-vm-pve: rebuild of k3s-vm-pve would leave 1 of 3 etcd members healthy, quorum needs 2/
    )
    assert.include(plain(refused.stdout), "fix: bring k3s-vm-chief-horse back to Ready first")
    assert.strictEqual(JSON.stringify(sim.state().vms.find((v) => v.name === "k3s-vm-pve")), pve)

    // kubeconfig --merge into $KUBECONFIG's first file, keeping its other context; the sim's kubectl uses it.
    const kube = path.join(dir, "kube", "config")
    fs.mkdirSync(path.dirname(kube))
    fs.writeFileSync(
      kube,
      [
        "apiVersion: v1",
        "kind: Config",
        "current-context: work",
        "clusters:",
        "- name: work",
        "  cluster: { server: 'https://10.9.9.9:6443' }",
        "contexts:",
        "- name: work",
        "  context: { cluster: work, user: work }",
        "users:",
        "- name: work",
        "  user: { token: abc }",
        ""
      ].join("\n"),
      { mode: 0o644 }
    )
    const merged = await homelab(["kubeconfig", "--merge"], {
      KUBECONFIG: `${kube}${path.delimiter}${path.join(dir, "other")}`
    })
    assert.strictEqual(merged.code, ExitCode.Ok, show(merged))
    assert.include(merged.stdout, `Merged context homelab (server https://${net}.`)
    assert.strictEqual(fs.statSync(kube).mode & 0o777, 0o600)
    const text = fs.readFileSync(kube, "utf8")
    const doc = parseYaml(text) as {
      "current-context": string
      contexts: Array<{ name: string }>
      clusters: Array<{ name: string; cluster: { server: string } }>
      users: Array<{ name: string; user: Record<string, string> }>
    }
    assert.deepStrictEqual(
      [doc["current-context"], doc.contexts.map((c) => c.name), doc.clusters.map((c) => c.name)],
      ["work", ["work", "homelab"], ["work", "homelab"]]
    )
    const key = doc.users.find((u) => u.name === "homelab")?.user["client-key-data"] ?? ""
    assert.isAbove(key.length, 20)
    assert.notInclude(merged.stdout + merged.stderr, key, "the client key is never printed")
    // --out FILE --context NAME: a file of its own, mode 600, that one context
    const own = path.join(dir, "lab.yaml")
    const written = await homelab(["kubeconfig", "--context", "lab", "--out", own])
    assert.strictEqual(written.code, ExitCode.Ok, show(written))
    assert.strictEqual(fs.statSync(own).mode & 0o777, 0o600)
    const ownDoc = parseYaml(fs.readFileSync(own, "utf8")) as {
      "current-context": string
      contexts: Array<{ name: string }>
    }
    assert.deepStrictEqual([ownDoc["current-context"], ownDoc.contexts.map((c) => c.name)], ["lab", ["lab"]])
    assert.notInclude(written.stdout + written.stderr, key)

    const agentIp = sim.state().vms.find((v) => v.name === "k3s-vm-fun-goal")?.ip as string
    assert.strictEqual((await onGuest(sim, agentIp, "cat > /home/ubuntu/kubeconfig", text)).code, 0)
    const got = await onGuest(
      sim,
      agentIp,
      "kubectl --kubeconfig /home/ubuntu/kubeconfig --context homelab get nodes -o name"
    )
    assert.deepStrictEqual(
      [
        got.code,
        got.stdout
          .split("\n")
          .filter((l) => l !== "")
          .sort()
      ],
      [0, all.map((n) => `node/k3s-vm-${n}`).sort()],
      got.stderr
    )
  }, 240_000)
})

/** `homelab` as a child process that the test can interrupt (Ctrl-C is SIGINT). */
const startHomelab = (config: string, args: ReadonlyArray<string>, env: Record<string, string>) => {
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
const runningCluster = (subnet: string): Scenario =>
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
      config: {
        cores: 2,
        memory: "4096",
        agent: "1",
        net0: `virtio=BC:24:11:2A:02:${String(11 + i).padStart(2, "0")},bridge=vmbr0`
      },
      guest: {
        hostname: `k3s-vm-${node}`,
        user: "ubuntu",
        k3s: servers.includes(node) ? { role: "server" as const, clusterInit: i === 0 } : { role: "agent" as const }
      }
    })),
    k3s: { version: v130, ...k3sTimings, workloads: [{ name: "web", replicas: 2, pdb: { minAvailable: 1 } }] }
  })

const upgradeEvents = (sim: SimHandle, since: number) =>
  sim
    .k3sEvents()
    .filter(
      (e) =>
        e.at >= since &&
        ["node-cordoned", "drain-start", "drain-finish", "node-upgraded", "node-uncordoned"].includes(e.kind)
    )
    .map((e) => `${(e.node || (e.detail ?? "")).replace("k3s-vm-", "")} ${e.kind}`)

describe("homelab and a rolling k3s upgrade", () => {
  it("plans the upgrade per member (a skipped minor through its intermediate release); interrupted midway, the next apply resumes it; servers then agents, cordon/drain/upgrade/uncordon each", async () => {
    const subnet = `127.${100 + Math.floor(Math.random() * 120)}.${Math.floor(Math.random() * 250)}`
    const { sim, homelab, write, config, env } = await lab(runningCluster(subnet), subnet)
    const steady = await homelab(["apply", "--yes"]) // the image onto each node; the cluster is as configured
    assert.strictEqual(steady.code, ExitCode.Ok, show(steady))

    // Two minors ahead: planned through the newest v1.31 release (from the update channels), or refused without.
    write("v1.32.9+k3s1")
    const skip = await homelab(["plan", "--detailed-exitcode"])
    assert.strictEqual(skip.code, ExitCode.Changes, show(skip))
    assert.include(
      plain(skip.stdout),
      "upgrade k3s on k3s-vm-pve (server) v1.30.5+k3s1 → v1.31.13+k3s1 → v1.32.9+k3s1: cordon, drain, install, wait Ready, uncordon"
    )
    write("v1.29.15+k3s1")
    const down = await homelab(["plan"])
    assert.strictEqual(down.code, ExitCode.Error, show(down))
    assert.include(plain(down.stdout), "v1.29.15+k3s1 is older than v1.30.5+k3s1: k3s cannot be downgraded")

    write(v131)
    const plan = await homelab(["plan"])
    const rows = plain(plan.stdout)
      .split("\n")
      .filter((l) => l.includes("upgrade k3s on"))
      .map((l) => /upgrade k3s on k3s-vm-(\S+) \((\w+)\)/.exec(l)?.slice(1, 3).join(" "))
    assert.deepStrictEqual(rows, [
      "pve server",
      "still-fawn server",
      "chief-horse server",
      "fun-goal agent",
      "wise-owl agent"
    ])

    // Ctrl-C once the second server's upgrade began: the first stays upgraded, the rest on the old version.
    const since = Date.now()
    const run = startHomelab(config, ["apply", "--yes"], env)
    await until(() => upgradeEvents(sim, since).includes("still-fawn node-cordoned"), "still-fawn cordoned", 90_000)
    run.child.kill("SIGINT")
    const interrupted = await run.done
    assert.strictEqual(interrupted.code, ExitCode.Interrupted, show(interrupted))
    assert.include(interrupted.stderr, "upgrade k3s on k3s-vm-still-fawn")
    const versions = () =>
      Object.fromEntries(sim.state().k3s.nodes.map((n) => [String(n.name).replace("k3s-vm-", ""), n.version]))
    assert.strictEqual(versions().pve, v131)
    for (const n of ["chief-horse", "fun-goal", "wise-owl"]) assert.strictEqual(versions()[n], v130, n)

    const resumed = await homelab(["apply", "--yes"])
    assert.strictEqual(resumed.code, ExitCode.Ok, show(resumed))
    assert.deepStrictEqual(
      Object.values(versions()),
      all.map(() => v131)
    )
    // In the event log: one node out at a time, servers before agents, each cordoned, drained, upgraded, uncordoned.
    const events = upgradeEvents(sim, since)
    const order = [...new Set(events.map((e) => e.split(" ")[0]))]
    assert.deepStrictEqual(order, all)
    for (const n of all) {
      const mine = events.filter((e) => e.startsWith(`${n} `)).map((e) => e.split(" ")[1])
      assert.deepStrictEqual(mine.at(-1), "node-uncordoned", n)
      assert.includeMembers(mine, ["drain-start", "drain-finish", "node-upgraded"], n)
      assert.isBelow(mine.indexOf("node-cordoned"), mine.indexOf("node-upgraded"), n)
    }
    let out = 0
    for (const e of events) {
      if (e.endsWith("node-cordoned")) out++
      if (e.endsWith("node-uncordoned")) out--
      assert.isAtMost(out, 1, `two nodes out at once: ${events.join(", ")}`)
    }
    assert.notInclude(JSON.stringify(sim.state().vms.map((v) => v.tags)), "homelab-upgrade")
    const clean = await homelab(["plan", "--detailed-exitcode"])
    assert.strictEqual(clean.code, ExitCode.Ok, show(clean))
  }, 240_000)
})
