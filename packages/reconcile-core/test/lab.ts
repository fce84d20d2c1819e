import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { K3sJoin } from "@homelab/k3s-join"
import { ProxmoxApi, ProxmoxClientConfig, type ProxmoxClientEvent } from "@homelab/proxmox-client"
import {
  type Scenario,
  type SimHandle,
  type SimOptions,
  type SimRecord,
  labScenario as simLab,
  startSim
} from "@homelab/sim"
import { SshClient } from "@homelab/ssh"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type { ApplyEvent } from "../src/Apply.js"
import type { ActionOutcome } from "../src/Convergence.js"
import type { HomelabConfig } from "../src/config/HomelabConfig.js"
import { parseConfig } from "../src/config/parseConfig.js"
import { proxmoxClientConfig, sshOptions } from "../src/connections.js"
import { desiredFromConfig, healthPolicyFromConfig } from "../src/desiredFromConfig.js"
import type { Plan, PlanOptions } from "../src/Plan.js"
import { type ReconcileReport, reconcile as reconcileAll } from "../src/Reconcile.js"
import type { Timeouts } from "../src/Timeouts.js"

/** A fast simulated lab: PVE 9.1 (the simulator's default), `local` with `import` content, an image origin, quick (but real) timings. */
export const labScenario = (nodes: Array<string>, over: Partial<Scenario> = {}): Scenario =>
  simLab(nodes, { ipPool: "127.78.0.10", timeScale: 0.02, ...over })

export const startLab = (scenario: Scenario, options?: SimOptions) =>
  startSim(scenario, options).pipe(Effect.retry({ times: 2 }), Effect.orDie)

/**
 * Calls `act` at the first record of the simulator that `match` picks (`SimHandle.watch`), at the moment the
 * simulator records it and before it takes its next step: a fault added there is in place for that step, however
 * late a poll would have seen the record. Watched from now until the test's scope ends. Returns what `act` was
 * called with (undefined while it has not been).
 */
export const atRecord = (sim: SimHandle, match: (record: SimRecord) => boolean, act: (record: SimRecord) => void) =>
  Effect.gen(function* () {
    let seen: SimRecord | undefined
    const stop = sim.watch((record) => {
      if (seen !== undefined || !match(record)) return
      seen = record
      act(record)
    })
    yield* Effect.addFinalizer(() => Effect.sync(stop))
    return () => seen
  })

/**
 * Forks `effect` (a reconcile run) and waits for the first record of the simulator that `match` picks from now on: in a
 * microtask right after the simulator recorded it, before the simulator takes its next step (that waits for a timer or
 * for I/O). Returns the record and the run, still going; dies when the run ends before any record matched.
 */
export const forkUntilRecord = <A, E, R>(
  sim: SimHandle,
  match: (record: SimRecord) => boolean,
  effect: Effect.Effect<A, E, R>
) =>
  Effect.gen(function* () {
    const reached = yield* Deferred.make<SimRecord>()
    yield* atRecord(sim, match, (record) => queueMicrotask(() => Deferred.doneUnsafe(reached, Exit.succeed(record))))
    const run = yield* Effect.forkChild(effect)
    const record = yield* Deferred.await(reached).pipe(
      Effect.raceFirst(
        Fiber.await(run).pipe(
          Effect.andThen((exit) =>
            Effect.die(
              new Error(
                `the run ended before the simulator recorded what was waited for: ${Exit.isSuccess(exit) ? "it succeeded" : Cause.pretty(exit.cause)}`
              )
            )
          )
        )
      )
    )
    return { record, run }
  })

/**
 * Runs `effect` (a reconcile run) and interrupts it at the first record of the simulator that `match` picks, as Ctrl-C
 * there would (`forkUntilRecord`). Returns the record; dies when the run ends before any record matched.
 */
export const interruptAt = <A, E, R>(
  sim: SimHandle,
  match: (record: SimRecord) => boolean,
  effect: Effect.Effect<A, E, R>
) =>
  Effect.gen(function* () {
    const { record, run } = yield* forkUntilRecord(sim, match, effect)
    yield* Fiber.interrupt(run)
    return record
  })

/** A read of task `upid`'s status (for `atRecord`, `forkUntilRecord`): a client follows that task. */
export const taskStatusRead =
  (upid: string) =>
  (record: SimRecord): boolean =>
    record._tag === "Request" &&
    record.request.transport === "api" &&
    record.request.method === "GET" &&
    record.request.path === `/nodes/${upid.split(":")[1]}/tasks/${upid}/status`

/** A simulated operation (for `atRecord`, `interruptAt`): `operation` (`qmcreate`, `download`, …) as it begins. */
export const operationBegins =
  (operation: string) =>
  (record: SimRecord): boolean =>
    record._tag === "Operation" && record.operation.operation === operation

/** A k3s event of the simulator's (for `atRecord`, `interruptAt`): `kind` on the k3s Node of `vm`. */
export const k3sEvent =
  (kind: string, vm: string) =>
  (record: SimRecord): boolean =>
    record._tag === "K3sEvent" && record.event.kind === kind && record.event.node === vm

export interface Lab {
  readonly sim: SimHandle
  readonly config: HomelabConfig
  readonly yaml: string
  readonly dir: string
}

/** A homelab.yaml for the running sim: each node's own API, the sim's CA and token, SSH with pinned host keys. */
export const labConfigYaml = (
  sim: SimHandle,
  dir: string,
  extra: {
    vm?: string | undefined
    safety?: string | undefined
    health?: string | undefined
    nodes?: Record<string, string> | undefined
    top?: string | undefined
    /** more lines of the image section (`  content: iso`) */
    image?: string | undefined
    /** list only these nodes of the sim (default: all) */
    only?: ReadonlyArray<string> | undefined
  } = {}
) => {
  const ca = path.join(dir, "pve-root-ca.pem")
  fs.writeFileSync(ca, sim.info.ca)
  const knownHosts = path.join(dir, "known_hosts")
  fs.writeFileSync(knownHosts, sim.info.nodes.map((n) => `[${n.ssh.host}]:${n.ssh.port} ${n.sshHostKey}\n`).join(""))
  const image = sim.info.imageOrigin?.files[0]
  if (image === undefined) throw new Error("the lab scenario has no image origin")
  return [
    "proxmox:",
    `  endpoint: ${sim.info.nodes[0]?.api}`,
    `  auth: { tokenId: "${sim.info.auth.tokenId}", secret: "${sim.info.auth.tokenSecret}" }`,
    `  tls: { ca: ${ca} }`,
    "ssh:",
    `  user: ${sim.info.sshUser}`,
    `  privateKey: ${sim.info.sshPrivateKeyPath}`,
    `  knownHosts: { mode: strict, file: ${knownHosts} }`,
    "image:",
    `  url: ${image.url}`,
    `  checksum: sha256:${image.sha256}`,
    ...(extra.image ? [extra.image] : []),
    "nodes:",
    ...sim.info.nodes
      .filter((n) => extra.only === undefined || extra.only.includes(n.name))
      .flatMap((n) => [
        `  - name: ${n.name}`,
        `    api: ${n.api}`,
        "    address: 127.0.0.1",
        `    sshPort: ${n.ssh.port}`,
        ...(extra.nodes?.[n.name] ? [extra.nodes[n.name] as string] : [])
      ]),
    "vm:",
    "  diskSize: 16G",
    `  sshKeys: ["${sim.info.sshPublicKey.trim()}"]`,
    ...(extra.vm ? [extra.vm] : []),
    ...(extra.safety ? ["safety:", extra.safety] : []),
    ...(extra.health ? ["health:", extra.health] : []),
    ...(extra.top ? [extra.top] : [])
  ].join("\n")
}

export const makeLab = (sim: SimHandle, extra?: Parameters<typeof labConfigYaml>[2]) =>
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "homelab-lab-"))),
      (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
    )
    const yaml = labConfigYaml(sim, dir, extra)
    const config = yield* parseConfig(yaml, { env: {}, source: "homelab.yaml" }).pipe(Effect.orDie)
    return { sim, config, yaml, dir } satisfies Lab
  })

/** The Proxmox client + SSH layers for a lab config (a fresh client, as a new `homelab` process would have). */
export const clientLayer = (lab: Lab, events: Array<ProxmoxClientEvent> = []) => {
  const resolved = {
    caPem: fs.readFileSync(path.join(lab.dir, "pve-root-ca.pem"), "utf8"),
    privateKeyPath: lab.config.ssh.privateKey,
    knownHostsPath: lab.config.ssh.knownHosts.file,
    onProxmoxEvent: (e: ProxmoxClientEvent) => {
      events.push(e)
    }
  }
  const proxmox = ProxmoxApi.layer.pipe(
    Layer.provide(ProxmoxClientConfig.layer(proxmoxClientConfig(lab.config, resolved))),
    Layer.provide(SshClient.layerWith(sshOptions(lab.config, resolved))),
    Layer.fresh
  )
  // k3s runs over SSH to the server and the VMs: VM host keys are trusted on first use (as the CLI does).
  const vmKnownHosts = path.join(lab.dir, "vm_known_hosts")
  const k3s = K3sJoin.layer.pipe(
    Layer.provide(
      SshClient.layerWith({
        ...sshOptions(lab.config, { privateKeyPath: lab.config.ssh.privateKey, knownHostsPath: vmKnownHosts }),
        knownHosts: { mode: "accept-new", path: vmKnownHosts }
      })
    ),
    Layer.fresh
  )
  return Layer.merge(proxmox, k3s)
}

/** An SSH client as an operator's (homelab.yaml's key; host keys trusted on first use), for any host of the lab. */
export const labSsh = (lab: Lab) =>
  Effect.gen(function* () {
    const knownHostsPath = path.join(lab.dir, "test_known_hosts")
    return Context.get(
      yield* Layer.build(
        SshClient.layerWith({
          ...sshOptions(lab.config, { privateKeyPath: lab.config.ssh.privateKey, knownHostsPath }),
          knownHosts: { mode: "accept-new", path: knownHostsPath }
        })
      ),
      SshClient
    )
  })

/**
 * A shell on the lab's VMs, as an operator would open one (homelab.yaml's SSH key, its k3s VM user and port; VM host
 * keys trusted on first use): `exec(ip, command)` runs one command there.
 */
export const vmShell = (lab: Lab) =>
  Effect.gen(function* () {
    const ssh = yield* labSsh(lab)
    const k3s = desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys }).k3s
    const port = k3s?.vmSshPort ?? 22
    const user = k3s?.vmUser ?? lab.config.vm.user
    return {
      exec: (host: string, command: string, options?: Parameters<typeof ssh.exec>[2]) =>
        ssh.exec({ host, port, user }, command, options)
    }
  })

/**
 * Waits until `GET /cluster/resources` (PVE's status cache, refreshed by pvestatd's broadcast) shows VM `vmid` with
 * `status`: what the next reconcile run observes. An event to wait on, however late the broadcast comes on a loaded
 * machine, instead of a sleep that is usually long enough.
 */
export const untilResourcesShow = (lab: Lab, vmid: number, status: string) =>
  Effect.gen(function* () {
    const api = yield* ProxmoxApi
    yield* api.clusterVms.pipe(
      Effect.repeat({
        schedule: Schedule.spaced("20 millis"),
        until: (vms) => vms.find((v) => v.vmid === vmid)?.status === status
      })
    )
  }).pipe(Effect.provide(clientLayer(lab)), Effect.orDie)

/**
 * Waits until `GET /cluster/resources` (PVE's status cache) shows every VM the simulator holds in the run state it is in
 * now: what a run started after pvestatd's next broadcast observes. Right after a run that started a VM, the cache may
 * still show it stopped for up to one broadcast interval (~10 s, 200 ms at the lab's time scale), and the next run reads
 * that VM's details (its status, its config, a guest agent ping) as it would on a real cluster; a test that counts a
 * second run's requests waits for this first, however late the broadcast comes on a loaded machine.
 */
export const untilResourcesCurrent = (lab: Lab) =>
  Effect.gen(function* () {
    const api = yield* ProxmoxApi
    yield* api.clusterVms.pipe(
      Effect.repeat({
        schedule: Schedule.spaced("20 millis"),
        until: (vms) =>
          simVms(lab.sim).every((vm) => vms.find((v) => v.vmid === vm.vmid)?.status === (vm.qmpstatus ?? vm.status))
      })
    )
  }).pipe(Effect.provide(clientLayer(lab)), Effect.orDie)

export interface RunResult {
  readonly plan: Plan
  readonly result: { readonly outcomes: ReadonlyArray<ActionOutcome> }
  readonly report: ReconcileReport
  readonly events: ReadonlyArray<ApplyEvent>
  readonly clientEvents: ReadonlyArray<ProxmoxClientEvent>
}

/** One `homelab apply --yes`: observe, plan, apply (k3s joins included), with a fresh client. */
export const reconcile = (
  lab: Lab,
  options: Partial<PlanOptions> & { readonly timeouts?: Partial<Timeouts> | undefined } = {}
) =>
  Effect.gen(function* () {
    const desired = desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys })
    const policy = healthPolicyFromConfig(lab.config)
    const events: Array<ApplyEvent> = []
    const clientEvents: Array<ProxmoxClientEvent> = []
    return yield* Effect.gen(function* () {
      const report = yield* reconcileAll(desired, {
        policy,
        ...options,
        apply: true,
        confirm: () => Effect.succeed(true),
        onEvent: (e) =>
          Effect.sync(() => {
            if (e._tag !== "Planned" && e._tag !== "Finished") events.push(e)
          }),
        timeouts: { ip: Duration.seconds(20), task: Duration.seconds(60), ...options.timeouts }
      })
      return {
        plan: report.plan,
        result: { outcomes: report.outcomes },
        report,
        events,
        clientEvents
      } satisfies RunResult
    }).pipe(Effect.provide(clientLayer(lab, clientEvents)))
  })

/** VMs the simulator holds, as `{vmid, node, name, status, qmpstatus, tags}`. */
export const simVms = (sim: SimHandle) =>
  sim.state().vms.map((v) => ({
    vmid: v.vmid as number,
    node: v.node as string,
    name: v.name as string | undefined,
    status: v.status as string,
    qmpstatus: v.qmpstatus as string | undefined,
    tags: String(v.tags ?? ""),
    ip: v.ip as string | undefined
  }))

/** Requests that change state: API POST/PUT/DELETE, and SSH commands that are not reads. */
export const mutatingRequests = (sim: SimHandle) =>
  sim
    .requests()
    .filter((r) =>
      r.transport === "api"
        ? r.method !== "GET"
        : r.transport === "ssh"
          ? !/^(pvesh get|qm (list|status|config|guest cmd))\b/.test(r.command ?? "")
          : false
    )
