/**
 * `K3sJoin` against `@homelab/sim`: real SSH into simulated guests that answer like k3s hosts.
 */
import * as path from "node:path"
import type { Scenario, SimHandle } from "@homelab/sim"
import { startSim } from "@homelab/sim"
import { SshClient } from "@homelab/ssh"
import { generateKeyPair } from "@homelab/ssh/testing"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { K3sJoin } from "../../src/K3sJoin.js"
import type { K3sHost, K3sJoinEvent, K3sJoinOptions } from "../../src/K3sJoinOptions.js"
import { tempDir } from "./setup.js"

export const simKey = generateKeyPair("ed25519")
export const SIM_TOKEN = "s3cr3t-sim-token-0123456789abcdef"

type Role = {
  readonly role: "server" | "agent"
  readonly clusterInit?: boolean
  /** The flags its k3s runs with (after the join flags). */
  readonly flags?: ReadonlyArray<string>
}

export const guestVm = (
  vmid: number,
  name: string,
  ip: string,
  k3s?: Role,
  status: "running" | "stopped" = "running",
  /** Files the guest holds already (path → content), e.g. what an earlier k3s left on its disk. */
  files?: Readonly<Record<string, string>>
) => ({
  vmid,
  node: "pve",
  name,
  status,
  ip,
  config: { net0: `virtio=BC:24:11:00:02:${String(vmid % 100).padStart(2, "0")},bridge=vmbr0`, cores: 2 },
  guest: {
    hostname: name,
    user: "ubuntu",
    authorizedKeys: [simKey.public],
    ...(k3s === undefined ? {} : { k3s }),
    ...(files === undefined ? {} : { files })
  }
})

/** A stopped VM with the name of a running one: started later, it is the rebuilt host (cloud-init key). */
export const rebuiltTwin = (vmid: number, name: string, ip: string) => ({
  vmid,
  node: "pve",
  name,
  status: "stopped" as const,
  ip,
  config: {
    net0: `virtio=BC:24:11:00:03:${String(vmid % 100).padStart(2, "0")},bridge=vmbr0`,
    sshkeys: encodeURIComponent(simKey.public)
  }
})

/** A lab of plain guests and existing k3s guests; time scale 0.01. */
export const simScenario = (
  vms: ReadonlyArray<ReturnType<typeof guestVm> | ReturnType<typeof rebuiltTwin>>,
  k3s: Partial<NonNullable<Scenario["k3s"]>> = {},
  faults: Scenario["faults"] = []
): Scenario => ({
  pveVersion: "8.4.1",
  nodes: [
    {
      name: "pve",
      apiPort: 0,
      sshPort: 0,
      address: "127.0.0.1",
      bridges: [{ name: "vmbr0" }],
      storages: [{ id: "local-lvm", type: "lvmthin", content: ["rootdir", "images"], capacity: "200G" }]
    }
  ],
  timeScale: 0.01,
  timings: { unauthorizedDelayMs: 0, rrdIntervalMs: 0 },
  guestSshPort: 0,
  vms: [...vms],
  k3s: {
    version: "v1.30.5+k3s1",
    token: SIM_TOKEN,
    joinDelayMs: 2000,
    readyDelayMs: 3000,
    learnerPromotionDelayMs: 3000,
    ...k3s
  },
  faults
})

/**
 * A running sim and `K3sJoin` services (one per `runIds` entry, as separate runs would have) over real SSH; `newRun`
 * starts another such run later.
 */
export const simSetup = (scenario: Scenario, options: K3sJoinOptions = {}, runIds: ReadonlyArray<string> = ["run-1"]) =>
  Effect.gen(function* () {
    const dir = yield* tempDir
    const sim = yield* startSim(scenario)
    const events: Array<K3sJoinEvent> = []
    const sshLayer = (name: string) =>
      SshClient.layerWith({
        auth: { privateKey: Redacted.make(simKey.private) },
        knownHosts: { mode: "accept-new", path: path.join(dir, `known_hosts-${name}`) },
        connectTimeout: "30 seconds"
      })
    const ssh = Context.get(yield* Layer.build(sshLayer("test")), SshClient)
    /** A run of its own (`runId`); `wrap` changes its SSH client (to hold a command, say). */
    const newRun = (runId: string, wrap?: (client: SshClient["Service"]) => SshClient["Service"]) =>
      Effect.gen(function* () {
        const ssh =
          wrap === undefined
            ? sshLayer(runId)
            : Layer.effect(
                SshClient,
                Effect.gen(function* () {
                  return wrap(yield* SshClient)
                })
              ).pipe(Layer.provide(sshLayer(runId)))
        const layer = K3sJoin.layerWith({
          timeouts: {
            pollInterval: "20 millis",
            ready: "20 seconds",
            command: "10 seconds",
            progressInterval: "50 millis"
          },
          onEvent: (event) => events.push(event),
          runId,
          ...options
        }).pipe(Layer.provide(ssh))
        return Context.get(yield* Layer.build(layer), K3sJoin)
      })
    const services = yield* Effect.forEach(runIds, (id) => newRun(id))
    const target = (vmid: number) =>
      Effect.gen(function* () {
        for (let i = 0; i < 500; i++) {
          const vm = sim.state().vms.find((v) => v.vmid === vmid)
          if (typeof vm?.ip === "string" && typeof vm.guestSshPort === "number") {
            return { host: vm.ip, port: vm.guestSshPort, user: "ubuntu" } satisfies K3sHost
          }
          yield* Effect.sleep("10 millis")
        }
        return yield* Effect.die(new Error(`vm ${vmid} has no SSH endpoint`))
      })
    return { sim, k3s: services[0] as K3sJoin["Service"], services, newRun, events, target, ssh }
  })

export const simNode = (sim: SimHandle, name: string) => sim.state().k3s.nodes.find((n) => n.name === name)

/** Waits (bounded) until the simulation shows `ok`. */
export const simUntil = (ok: () => boolean, what: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < 1000; i++) {
      if (ok()) return
      yield* Effect.sleep("10 millis")
    }
    return yield* Effect.die(new Error(`timed out waiting for ${what}`))
  })
