import * as fs from "node:fs"
import * as https from "node:https"
import * as os from "node:os"
import * as path from "node:path"
import {
  existingK3sServerVm,
  type GuestCommand,
  labScenario,
  type RequestLogEntry,
  reserveLoopbackNet,
  type Scenario,
  type SimHandle,
  type SimOperation,
  type SimRecord,
  startSimPromise,
  syntheticSha256
} from "@homelab/sim"
import { simConfigYaml } from "../src/commands/demoRun.js"
import { type Running, type RunResult, spawnHomelab } from "./helpers.js"

/**
 * A loopback /24 of its own (`127.x.y`), so labs never share guest addresses, also with labs of other processes on the
 * machine (another checkout's suite running at once): reserved through the simulator's `reserveLoopbackNet` and
 * given back by `stopLabs` (or when the process exits).
 */
export const loopbackNet = (): string => {
  const reserved = reserveLoopbackNet()
  releases.push(reserved.release)
  return reserved.net
}
const releases: Array<() => void> = []

/**
 * The cloud image as homelab.yaml of a lab names it, on `local`: the URL's name with the first 12 hex digits of its
 * checksum (the lab's image is 2 MiB).
 */
export const imageVolid = `local:import/noble-server-cloudimg-amd64-${syntheticSha256("/noble/noble-server-cloudimg-amd64.img", 2 * 1024 ** 2).slice(0, 12)}.qcow2`

/** The password part of the k3s server token: scanned for in every output. */
export const clusterPassword = "5c1e0b7d9a2f4e6c8b3a1d0f7e9c2b4a"

export type { Running }

export interface SimLab {
  readonly sim: SimHandle
  readonly dir: string
  readonly config: string
  readonly env: Record<string, string>
  /** The k3s server's address, with `k3s: true`. */
  readonly serverIp: string | undefined
  /** Run `homelab --config … ARGS` to its end. */
  readonly homelab: (...args: Array<string>) => Promise<RunResult>
  /** Start `homelab --config … ARGS`; the caller may signal it. */
  readonly spawn: (...args: Array<string>) => Running
  /** Rewrite homelab.yaml with other extra sections. */
  readonly rewrite: (extra: string) => void
}

const labs: Array<{ sim: SimHandle; dir: string }> = []

/** Stop every simulator started by `startLab` (call from `afterEach`). */
export const stopLabs = async (): Promise<void> => {
  for (const lab of labs.splice(0)) {
    await lab.sim.stop()
    fs.rmSync(lab.dir, { recursive: true, force: true })
  }
  for (const release of releases.splice(0)) release()
}

/**
 * A simulated lab and a homelab.yaml for it (each node's API, the CA, the token, SSH). With `k3s`, an existing k3s
 * server VM (not ours) at `<net>.5`, guests answering SSH on port 2222, and a `k3s:` section pointing at it. `extra`
 * is appended to homelab.yaml (top-level sections such as `timeouts:` or `safety:`).
 */
export const startLab = async (
  nodes: ReadonlyArray<string>,
  options: {
    /** Scenario overrides; a function gets the lab's loopback /24 (`127.x.y`) for fixed guest IPs. */
    readonly scenario?: Partial<Scenario> | ((net: string) => Partial<Scenario>)
    readonly k3s?: boolean
    /** With `k3s`: where the existing server keeps the cluster (default etcd; `sqlite`: installed without --cluster-init). */
    readonly k3sDatastore?: "etcd" | "sqlite"
    readonly extra?: string
    /** The cloud image is already on every node's `local` storage (as a previous run left it). */
    readonly imagePresent?: boolean
  } = {}
): Promise<SimLab & { readonly net: string }> => {
  const net = loopbackNet()
  const serverIp = options.k3s ? `${net}.5` : undefined
  const over = typeof options.scenario === "function" ? options.scenario(net) : (options.scenario ?? {})
  const scenario = labScenario(nodes, {
    // the lab's own address: a port an apiDown fault frees is not another test's to take
    address: `${net}.1`,
    memory: "32G",
    imageSize: "2M",
    ipPool: `${net}.10`,
    timeScale: 0.02,
    ...(options.k3s
      ? {
          guestSshPort: 2222,
          k3s: { version: "v1.30.5+k3s1", token: clusterPassword, joinDelayMs: 2000, readyDelayMs: 3000 }
        }
      : {}),
    ...over,
    vms: [
      ...(options.k3s
        ? [existingK3sServerVm(nodes[0] as string, serverIp as string, { datastore: options.k3sDatastore })]
        : []),
      ...(over.vms ?? [])
    ]
  })
  const sim = await startSimPromise(
    options.imagePresent === true
      ? {
          ...scenario,
          nodes: scenario.nodes.map((n) => ({
            ...n,
            storages: (n.storages ?? []).map((st) =>
              st.id === "local" ? { ...st, files: [...(st.files ?? []), { volid: imageVolid, content: "import" }] } : st
            )
          }))
        }
      : scenario
  )
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "homelab-e2e-"))
  labs.push({ sim, dir })
  const config = path.join(dir, "homelab.yaml")
  const write = (extra: string) =>
    fs.writeFileSync(
      config,
      `${simConfigYaml(sim, dir, serverIp ? { k3s: { host: serverIp, user: "ubuntu" } } : {})}${extra}\n`
    )
  write(options.extra ?? "")
  const env = { PROXMOX_TOKEN_SECRET: sim.info.auth.tokenSecret, CI: "true", NO_COLOR: "1" }
  const start = (...args: Array<string>): Running =>
    spawnHomelab(["--config", config, ...args], { env, timeout: 120_000 })
  return {
    net,
    sim,
    dir,
    config,
    env,
    serverIp,
    homelab: (...args) => start(...args).done,
    spawn: start,
    rewrite: write
  }
}

/**
 * Resolves with what `pick` returns for the first record of the simulator (`SimHandle.watch`) it returns something
 * for, from now on; `act` is called with that at the moment the simulator records it, before the simulator takes
 * its next step (a fault added there is in place for that step). A caller that signals a `homelab` in its `await`'s
 * continuation does so before the simulator answers anything more (a microtask later). Rejects when `until` (the
 * run) ends first.
 */
export const whenRecord = <A>(
  sim: SimHandle,
  pick: (record: SimRecord) => A | undefined,
  until?: Promise<unknown>,
  act: (picked: A) => void = () => {}
): Promise<A> =>
  new Promise((resolve, reject) => {
    let settled = false
    const stop = sim.watch((record) => {
      if (settled) return
      const picked = pick(record)
      if (picked === undefined) return
      settled = true
      stop()
      act(picked)
      resolve(picked)
    })
    void until?.then((ended) => {
      if (settled) return
      settled = true
      stop()
      const printed = ended as Partial<RunResult> | undefined
      reject(
        new Error(
          `the run ended before the simulator recorded what was waited for (exit ${printed?.code}):\n${printed?.stdout ?? ""}${printed?.stderr ?? ""}`
        )
      )
    })
  })

/**
 * Resolves once the simulator's request log holds an entry matching `match` (the `occurrence`-th one): at once if it
 * does, else at the moment the simulator records it (`whenRecord`); rejects when the run ends first.
 */
export const whenRequest = (
  sim: SimHandle,
  match: (r: RequestLogEntry) => boolean,
  until: Promise<unknown>,
  occurrence = 1
): Promise<RequestLogEntry> => {
  const seen = sim.requests().filter(match)
  if (seen.length >= occurrence) return Promise.resolve(seen[occurrence - 1] as RequestLogEntry)
  let count = seen.length
  return whenRecord(
    sim,
    (r) => (r._tag === "Request" && match(r.request) && ++count === occurrence ? r.request : undefined),
    until
  )
}

/** The VMs the simulator holds. */
export const vmsOf = (sim: SimHandle) =>
  sim.state().vms.map((v) => ({
    vmid: v.vmid as number,
    node: v.node as string,
    name: v.name as string | undefined,
    status: v.status as string,
    qmpstatus: v.qmpstatus as string | undefined,
    lock: (v.lock ?? undefined) as string | undefined,
    tags: String(v.tags ?? ""),
    ip: v.ip as string | undefined,
    config: v.config as Record<string, string>
  }))

/** The simulated cluster's Nodes. */
export const k3sNodesOf = (sim: SimHandle) =>
  sim.state().k3s.nodes.map((n) => ({
    name: n.name,
    role: n.role,
    ready: n.ready,
    ip: n.ip,
    vmid: n.vmid,
    unschedulable: n.unschedulable
  }))

/** API requests and node SSH commands that change state (reads, agent pings and guest commands excluded). */
export const mutating = (sim: SimHandle) =>
  sim
    .requests()
    .filter((r) =>
      r.transport === "api"
        ? r.method !== "GET" && !(r.path ?? "").endsWith("/agent/ping")
        : r.transport === "ssh"
          ? !/^(pvesh get|qm (list|status|config|guest cmd))\b/.test(r.command ?? "")
          : false
    )

/**
 * Resolves once the simulator has begun an operation matching `match` (a PVE task, a boot, a k3s step): at once if it
 * has, else at the moment it begins (`whenRecord`); rejects when the run ends first.
 */
export const whenOperation = (
  sim: SimHandle,
  match: (o: SimOperation) => boolean,
  until: Promise<unknown>
): Promise<SimOperation> => {
  const seen = sim.operations().find(match)
  if (seen !== undefined) return Promise.resolve(seen)
  return whenRecord(sim, (r) => (r._tag === "Operation" && match(r.operation) ? r.operation : undefined), until)
}

/**
 * Why `node` is not converged, judged from the simulator's state alone (not from what homelab says): exactly one VM
 * named `k3s-vm-<node>`, on that node, ours, running, no lock and none of the run marks left; with k3s, exactly one
 * Node of that name, Ready, not cordoned, at the VM's IP. Undefined when it is converged.
 */
export const notConverged = (sim: SimHandle, node: string, k3s: boolean): string | undefined => {
  const name = `k3s-vm-${node}`
  const vms = vmsOf(sim).filter((v) => v.name === name)
  if (vms.length !== 1) return `${vms.length} VMs named ${name}`
  const vm = vms[0] as ReturnType<typeof vmsOf>[number]
  const tags = vm.tags.split(/[;,]/).filter((t) => t !== "")
  if (vm.node !== node) return `${name} is on ${vm.node}`
  if (!tags.includes("homelab-managed")) return `${name} is not ours (${vm.tags})`
  const marks = tags.filter((t) => t !== "homelab-managed")
  if (marks.length > 0) return `${name} still carries ${marks.join(", ")}`
  if (vm.status !== "running" || (vm.qmpstatus ?? "running") !== "running")
    return `${name} is ${vm.status}/${vm.qmpstatus}`
  if (vm.lock !== undefined) return `${name} is locked (${vm.lock})`
  if (!k3s) return undefined
  const nodes = k3sNodesOf(sim).filter((n) => n.name === name)
  if (nodes.length !== 1) return `${nodes.length} k3s Nodes named ${name}`
  const k = nodes[0] as ReturnType<typeof k3sNodesOf>[number]
  if (k.ready !== "True") return `k3s Node ${name} is Ready=${k.ready}`
  if (k.unschedulable) return `k3s Node ${name} is cordoned`
  if (k.ip !== vm.ip) return `k3s Node ${name} is at ${k.ip}, the VM at ${vm.ip}`
  return undefined
}

/**
 * One run of the k3s install script in a guest (`env INSTALL_K3S_VERSION=… sh install.sh …`): when it started and
 * ended, as places in the order of the starts and ends the watch saw (not clock readings: two runs overlap exactly
 * when one started before the other ended).
 */
export interface InstallRun {
  readonly vmid: number
  readonly from: number
  to: number | undefined
}

/**
 * Watches the k3s installs in the lab's guests through the guest command registry (the handlers stay the
 * simulator's own): each install command as it reaches a guest (`arrived`, before any lock), and each run of the
 * install script itself (`runs`). `holdNext()` keeps the next install script from running until the returned
 * `release` is called, as a slow download would: whoever holds the install lock then holds it until released.
 */
export const watchInstalls = (sim: SimHandle) => {
  const arrived: Array<number> = []
  const runs: Array<InstallRun> = []
  const listeners = new Set<() => void>()
  const changed = () => {
    for (const l of listeners) l()
  }
  // starts and ends of install runs, counted in the order they happen
  let moments = 0
  let gate: Promise<void> | undefined
  const isInstall = (argv: ReadonlyArray<string>) => argv.some((a) => a.includes("INSTALL_K3S_VERSION="))
  const sudo = sim.guestCommands.get("sudo") as GuestCommand
  const env = sim.guestCommands.get("env") as GuestCommand
  sim.guestCommands.register("sudo", (c) => {
    if (isInstall(c.argv)) {
      arrived.push(c.guest.vmid)
      changed()
    }
    return sudo(c)
  })
  sim.guestCommands.register("env", async (c) => {
    if (!isInstall(c.argv)) return env(c)
    const held = gate
    gate = undefined
    const run: InstallRun = { vmid: c.guest.vmid, from: ++moments, to: undefined }
    runs.push(run)
    changed()
    if (held !== undefined) await held
    try {
      return await env(c)
    } finally {
      run.to = ++moments
      changed()
    }
  })
  /** Resolves once `test()` holds, checked whenever an install arrives, starts or ends. */
  const when = (test: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      const check = () => {
        if (!test()) return
        listeners.delete(check)
        resolve()
      }
      listeners.add(check)
      check()
    })
  return {
    arrived,
    runs,
    when,
    holdNext: (): (() => void) => {
      let release: () => void = () => {}
      gate = new Promise<void>((r) => {
        release = r
      })
      return () => release()
    },
    /** Pairs of install runs on one VM that overlapped in time. */
    overlaps: () =>
      runs.flatMap((a, i) =>
        runs
          .slice(i + 1)
          .filter(
            (b) =>
              b.vmid === a.vmid &&
              b.from < (a.to ?? Number.POSITIVE_INFINITY) &&
              a.from < (b.to ?? Number.POSITIVE_INFINITY)
          )
          .map((b) => [a, b])
      )
  }
}

/**
 * Resolves once a running `homelab` has printed something matching `pattern` (checked as its output arrives); rejects
 * if it ends first.
 */
export const whenPrinted = (run: Running, pattern: RegExp): Promise<void> =>
  new Promise((resolve, reject) => {
    const streams = [run.child.stdout, run.child.stderr]
    const check = () => {
      // after `spawnHomelab`'s own listener: the output so far includes this chunk
      if (!pattern.test(run.output())) return
      for (const s of streams) s?.off("data", check)
      resolve()
    }
    for (const s of streams) s?.on("data", check)
    void run.done.then(() => {
      for (const s of streams) s?.off("data", check)
      if (pattern.test(run.output())) resolve()
      else reject(new Error(`it ended without printing ${pattern}:\n${run.output()}`))
    })
    check()
  })

/** `promise`, unless one of the runs ends first (then it rejects with what they printed). */
export const before = <A>(promise: Promise<A>, ...runs: ReadonlyArray<Running>): Promise<A> =>
  Promise.race([
    promise,
    ...runs.map((r) =>
      r.done.then((d) => {
        throw new Error(`a run ended first (exit ${d.code}):\n${d.stdout}${d.stderr}`)
      })
    )
  ])

/** Resolves once `test()` holds (checked every few milliseconds: the simulator's state has no change events). */
export const whenState = (test: () => boolean): Promise<void> =>
  new Promise((resolve) => {
    const check = () => (test() ? resolve() : setTimeout(check, 5))
    check()
  })

/**
 * One request to a simulated node's API as someone else would make it (a person editing a VM by hand), with the lab's
 * token: `GET`, `PUT`, `POST` or `DELETE` under `/api2/json`, form-encoded parameters; resolves with `data`.
 */
export const pveRequest = (
  sim: SimHandle,
  method: "GET" | "PUT" | "POST" | "DELETE",
  apiPath: string,
  params: Record<string, string> = {}
): Promise<unknown> =>
  new Promise((resolve, reject) => {
    const node = apiPath.split("/")[2]
    const base = new URL(sim.info.nodes.find((n) => n.name === node)?.api ?? (sim.info.nodes[0]?.api as string))
    const body = new URLSearchParams(params).toString()
    const request = https.request(
      {
        host: base.hostname,
        port: base.port,
        method,
        path: `/api2/json${apiPath}`,
        ca: sim.info.ca,
        headers: {
          Authorization: `PVEAPIToken=${sim.info.auth.tokenId}=${sim.info.auth.tokenSecret}`,
          ...(body === ""
            ? {}
            : { "Content-Type": "application/x-www-form-urlencoded", "Content-Length": Buffer.byteLength(body) })
        }
      },
      (response) => {
        let text = ""
        response.on("data", (chunk) => {
          text += chunk
        })
        response.on("end", () =>
          (response.statusCode ?? 500) < 300
            ? resolve((JSON.parse(text) as { data: unknown }).data)
            : reject(new Error(`${method} ${apiPath}: ${response.statusCode} ${text}`))
        )
      }
    )
    request.on("error", reject)
    request.end(body)
  })

/**
 * Resolves once `GET /cluster/resources` (PVE's status cache, refreshed by pvestatd's broadcast: ~10 s, a fraction of
 * that at the lab's time scale) shows every VM the simulator holds in the run state it is in now: what a `homelab` run
 * started after the next broadcast observes. A change made by hand to a VM's run state (paused, suspended, crashed,
 * stopped) is seen by a run only from then on, on a real cluster too; a test that expects a run to see it waits for
 * this first, however late the broadcast comes on a loaded machine.
 */
export const untilResourcesCurrent = async (sim: SimHandle): Promise<void> => {
  for (;;) {
    const cached = (await pveRequest(sim, "GET", "/cluster/resources")) as ReadonlyArray<{
      readonly vmid?: number
      readonly status?: string
    }>
    const current = vmsOf(sim).every(
      (vm) => cached.find((e) => e.vmid === vm.vmid)?.status === (vm.qmpstatus ?? vm.status)
    )
    if (current) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
