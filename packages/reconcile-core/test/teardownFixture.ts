import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { existingK3sServerVm, type Scenario, type SimHandle, syntheticSha256 } from "@homelab/sim"
import * as Effect from "effect/Effect"
import { parseConfig } from "../src/config/parseConfig.js"
import { type Lab, labConfigYaml, labScenario } from "./lab.js"

type ScenarioVm = NonNullable<Scenario["vms"]>[number]

/** A loopback /24 of its own per test file, so parallel suites never share a fixed address. */
export const teardownNet = () => `127.${84 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 250)}`

/** The cluster's server token password: scanned for in logs. */
export const clusterPassword = "5b7e0c2a9d1f4e3b8a6c2d0e9f1a3b4c"

/** A VM of ours that already runs k3s (as an agent unless `role`), with a fixed IP (its Node's InternalIP). */
export const memberVm = (
  vmid: number,
  node: string,
  name: string,
  ip: string,
  over: { readonly role?: "server" | "agent"; readonly tags?: string; readonly protection?: boolean } = {}
): ScenarioVm => ({
  vmid,
  node,
  name,
  status: "running",
  tags: over.tags ?? "homelab-managed",
  uptime: 86_400,
  ip,
  // sized as the labs' homelab.yaml asks (node capacity × ratios), so only what a test changes differs
  config: {
    cores: 4,
    memory: "32768",
    cpu: "host",
    agent: "1",
    net0: `virtio=BC:24:11:2A:${(vmid % 256).toString(16).padStart(2, "0").toUpperCase()}:01,bridge=vmbr0`,
    scsi0: `local-lvm:vm-${vmid}-disk-0,size=16G`,
    ...(over.protection ? { protection: "1" } : {})
  },
  // installed by homelab with the k3s.serverFlags of the fixture's homelab.yaml (a server; an agent has none)
  guest: {
    hostname: name,
    user: "ubuntu",
    k3s: { role: over.role ?? "agent", flags: over.role === "server" ? ["--write-kubeconfig-mode=644"] : [] }
  }
})

/**
 * A lab with an existing k3s server VM (200, not ours) at `<net>.5` running on the first node, the given VMs, a
 * Deployment `web` (2 replicas, a PodDisruptionBudget of minAvailable 1) whose pods a drain evicts, and fast timings.
 */
export const teardownScenario = (net: string, nodes: Array<string>, vms: ReadonlyArray<ScenarioVm>) => {
  const scenario = labScenario(nodes, {
    ipPool: `${net}.50`,
    guestSshPort: 2222,
    vms: [existingK3sServerVm(nodes[0] as string, `${net}.5`), ...vms],
    k3s: {
      version: "v1.30.5+k3s1",
      token: clusterPassword,
      joinDelayMs: 2000,
      readyDelayMs: 2000,
      learnerPromotionDelayMs: 3000,
      podReadyDelayMs: 1000,
      podTerminateDelayMs: 1000,
      workloads: [{ name: "web", replicas: 2, pdb: { minAvailable: 1 } }]
    }
  })
  // every node holds the image already (as after a first apply)
  return {
    ...scenario,
    nodes: scenario.nodes.map((n) => ({
      ...n,
      storages: n.storages?.map((st) =>
        st.id === "local" ? { ...st, files: [{ volid: `local:import/${ImageFile}`, size: "4M" }] } : st
      )
    }))
  }
}

/**
 * The image file homelab.yaml's image (the sim's origin, 4 MiB) is stored as: the URL's name with the first 12 hex
 * digits of its checksum.
 */
export const ImageFile = `noble-server-cloudimg-amd64-${syntheticSha256("/noble/noble-server-cloudimg-amd64.img", 4 * 1024 ** 2).slice(0, 12)}.qcow2`

/**
 * homelab.yaml listing only `nodes` of the sim (each node's own API, the sim's CA and token, pinned host keys), with
 * the k3s server at `<net>.5`; `nodeVms` gives a node its `vms:` list.
 */
export const teardownLab = (
  sim: SimHandle,
  net: string,
  options: {
    readonly nodes: ReadonlyArray<string>
    readonly nodeVms?: Record<string, string> | undefined
    readonly safety?: string | undefined
    readonly k3s?: boolean | undefined
    /** More of homelab.yaml's `vm:` section (after `sshPort`), e.g. `  restart: rolling`. */
    readonly vm?: string | undefined
  }
) =>
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "homelab-teardown-"))),
      (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
    )
    const yaml = labConfigYaml(sim, dir, {
      only: options.nodes,
      nodes: options.nodeVms,
      vm: ["  sshPort: 2222", ...(options.vm === undefined ? [] : [options.vm])].join("\n"),
      safety: options.safety,
      top:
        options.k3s === false
          ? undefined
          : [
              "k3s:",
              `  server: { host: ${net}.5, port: 2222, user: ubuntu }`,
              "  serverFlags: [--write-kubeconfig-mode=644]"
            ].join("\n")
    })
    const config = yield* parseConfig(yaml, { env: {}, source: "homelab.yaml" }).pipe(Effect.orDie)
    return { sim, config, yaml, dir } satisfies Lab
  })

/** The sim's k3s Nodes and node-password secrets, by name. */
export const k3sState = (sim: SimHandle) => {
  const k3s = sim.state().k3s
  return { nodes: k3s.nodes.map((n) => n.name).sort(), secrets: k3s.secrets.map((s) => s.name).sort() }
}

/**
 * The sim's request log, as the teardown of one VM appears in it: kubectl cordon/drain/delete on the k3s server and
 * the VM's stop and destroy, each with its position in the log.
 */
export const teardownSteps = (sim: SimHandle, vmid: number, name: string) =>
  sim
    .requests()
    .map((r, i) => {
      const command = r.command ?? ""
      const step =
        r.transport === "guest-ssh" && command.includes(`cordon ${name}`)
          ? "cordon"
          : r.transport === "guest-ssh" && command.includes("drain") && command.includes(name)
            ? "drain"
            : r.transport === "guest-ssh" && /delete node/.test(command) && command.includes(name)
              ? "delete-node"
              : r.transport === "guest-ssh" &&
                  /delete secret/.test(command) &&
                  command.includes(`${name}.node-password`)
                ? "delete-secret"
                : r.transport === "api" && r.method === "POST" && r.path?.endsWith(`/qemu/${vmid}/status/stop`)
                  ? "stop"
                  : r.transport === "api" && r.method === "DELETE" && r.path?.endsWith(`/qemu/${vmid}`)
                    ? "destroy"
                    : undefined
      return step === undefined ? undefined : { step, index: i }
    })
    .filter((s): s is { step: string; index: number } => s !== undefined)
