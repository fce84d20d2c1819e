// What `demo` runs, loaded only when it runs: the only code that loads the simulator.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { demoScenario, reserveLoopbackNet, type Scenario, type SimHandle, startSim } from "@homelab/sim"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import pc from "picocolors"
import { CommandFailed } from "../CommandFailed.js"
import { ExitCode } from "../ExitCode.js"
import { loadConfig } from "../LoadedConfig.js"
import { root } from "../Root.js"
import { withEventStream } from "../render/EventStream.js"
import { line as eventLine } from "../render/Events.js"
import { finishApply, runOnce } from "../Workflow.js"
import { collectStatus, renderStatus } from "./statusRun.js"

/** The node whose API certificate the demo makes untrusted, and the node whose VM it leaves stuck paused. */
export const DemoUntrustedNode = "still-fawn"
export const DemoStuckNode = "chief-horse"

/**
 * The simulator's demo homelab, arranged to show what the tool does: `local` accepts `import` (as on PVE 9, or after
 * enabling it on 8.x), one node serves an API certificate from another CA (so the SSH fallback shows), and one node
 * already has our VM, stuck paused for days.
 */
export const demoLab = (timeScale: number, net = randomLoopbackNet()): Scenario => {
  const base = demoScenario()
  // The demo's guests live on a loopback /24 of their own (not the fixed 127.77.0.x of the built-in scenario), so
  // the demo runs next to another simulator, or another demo, on the same machine.
  const relocate = (ip: string | undefined) => (ip === undefined ? undefined : ip.replace(/^127\.77\.0\./, `${net}.`))
  return {
    ...base,
    timeScale,
    ipPool: relocate(base.ipPool) ?? `${net}.10`,
    nodes: base.nodes.map((n) => ({
      ...n,
      storages: n.storages?.map((s) =>
        s.id === "local" ? { ...s, content: [...new Set([...s.content, "import" as const])] } : s
      )
    })),
    vms: [
      ...(base.vms ?? []).map((vm) => (vm.ip === undefined ? vm : { ...vm, ip: relocate(vm.ip) as string })),
      {
        vmid: 4242,
        node: DemoStuckNode,
        name: `k3s-vm-${DemoStuckNode}`,
        status: "running",
        qmpstatus: "paused",
        tags: "homelab-managed",
        uptime: 3 * 86_400,
        ip: `${net}.6`,
        // It joined k3s days ago (with the demo's k3s.agentFlags): its Node and node-password secret are in the cluster.
        guest: {
          hostname: `k3s-vm-${DemoStuckNode}`,
          user: "ubuntu",
          k3s: { role: "agent", flags: ["--node-label=tier=demo"] }
        },
        config: {
          cores: 2,
          memory: "8192",
          agent: "1",
          net0: "virtio=BC:24:11:5E:11:42,bridge=vmbr0",
          scsi0: "local-lvm:vm-4242-disk-0,size=64G",
          meta: "creation-qemu=8.1.5,ctime=1727111859"
        }
      }
    ],
    faults: [...(base.faults ?? []), { kind: "untrustedCert", node: DemoUntrustedNode }]
  }
}

const readOnlyCommand =
  /^(pvesh get|qm (list|status|config|guest cmd \d+ ping)|(sudo -n )?((\/usr\/local\/bin\/)?k3s (kubectl (get|wait)|--version)|systemctl is-active|journalctl|cat|test -e|hostname)|hostname|true)\b/

/**
 * A request that changes state: API calls other than GET (agent pings are POSTs that change nothing), and SSH commands
 * to nodes or guests other than known reads (pvesh get, qm reads, kubectl get, systemctl is-active, journalctl, cat).
 */
export const isMutating = (r: { transport: string; method?: string; path?: string; command?: string }): boolean =>
  r.transport === "api"
    ? r.method !== "GET" && !(r.path ?? "").endsWith("/agent/ping")
    : !readOnlyCommand.test(r.command ?? "")

/** A random loopback /24 (`127.x.y`) for one demo run. */
/**
 * A loopback /24 no other simulated lab on this machine holds (another demo, a test suite): reserved until the demo
 * process exits.
 */
export const randomLoopbackNet = (): string => reserveLoopbackNet().net

/** The demo's existing k3s server (a VM the reconciler does not manage), on the run's loopback net. */
export const demoK3sServer = (scenario: Scenario) => ({
  host: scenario.vms?.find((vm) => vm.name === "k3s-server")?.ip ?? "127.77.0.5",
  user: "ubuntu"
})

/**
 * homelab.yaml for a running simulator: every node's own API, the cluster CA, the sim's token and SSH key; with
 * `k3s`, phase 3 joins the VMs to the k3s server at that address (guest SSH on the sim's guest port).
 */
export const simConfigYaml = (
  sim: SimHandle,
  dir: string,
  options: { readonly k3s?: { readonly host: string; readonly user: string } | undefined } = {}
): string => {
  const ca = path.join(dir, "pve-root-ca.pem")
  fs.writeFileSync(ca, sim.info.ca)
  const image = sim.info.imageOrigin?.files.find((f) => f.path.endsWith(".img")) ?? sim.info.imageOrigin?.files[0]
  if (image === undefined) throw new Error("the simulator serves no cloud image")
  return [
    "# homelab.yaml for the simulated demo homelab (written by `homelab demo`).",
    "proxmox:",
    `  endpoint: ${sim.info.nodes[0]?.api}`,
    "  auth:",
    `    tokenId: "${sim.info.auth.tokenId}"`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a homelab.yaml ${VAR} reference, resolved by loadConfig
    "    secret: ${PROXMOX_TOKEN_SECRET}",
    `  tls: { ca: ${ca} }`,
    "ssh:",
    `  user: ${sim.info.sshUser}`,
    `  privateKey: ${sim.info.sshPrivateKeyPath}`,
    `  knownHosts: { mode: accept-new, file: ${path.join(dir, "known_hosts")} }`,
    "image:",
    `  url: ${image.url}`,
    `  checksum: sha256:${image.sha256}`,
    "nodes:",
    ...sim.info.nodes.flatMap((n) => [
      `  - name: ${n.name}`,
      `    api: ${n.api}`,
      `    address: ${n.ssh.host}`,
      `    sshPort: ${n.ssh.port}`
    ]),
    "vm:",
    `  sshKeys: ["${sim.info.sshPublicKey.trim()}"]`,
    ...(sim.info.guestSshPort > 0 ? [`  sshPort: ${sim.info.guestSshPort}`] : []),
    ...(options.k3s
      ? [
          "k3s:",
          `  server: { host: ${options.k3s.host}, port: ${sim.info.guestSshPort}, user: ${options.k3s.user} }`,
          "  agentFlags: [--node-label=tier=demo]"
        ]
      : []),
    ""
  ].join("\n")
}

export const demo = ({ timeScale }: { readonly timeScale: number }) =>
  Effect.gen(function* () {
    const flags = yield* root
    return yield* withEventStream(flags.json, (events) =>
      Effect.gen(function* () {
        const scenario = demoLab(timeScale)
        const k3sServer = demoK3sServer(scenario)
        const sim = yield* startSim(scenario).pipe(
          Effect.retry({ times: 2 }),
          Effect.mapError(
            (e) =>
              new CommandFailed({ userMessage: `cannot start the simulator: ${e.message}`, exitCode: ExitCode.Error })
          )
        )
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "homelab-demo-"))),
          (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
        )
        const file = path.join(dir, "homelab.yaml")
        fs.writeFileSync(file, simConfigYaml(sim, dir, { k3s: k3sServer }))
        const env = { ...process.env, PROXMOX_TOKEN_SECRET: sim.info.auth.tokenSecret }
        const loaded = yield* loadConfig(file, env)
        const say = (text: string) => (flags.json ? Effect.void : Console.log(text))
        // --json: NDJSON, one compact object per line: the demo's own lines carry `type: "demo.*"`, and each apply
        // streams exactly the events `homelab apply --json` streams.
        const emit = ({ type, ...fields }: { readonly type: string; readonly [key: string]: unknown }) =>
          Effect.sync(() => events?.emit(eventLine(type, fields)))

        yield* say(
          [
            pc.bold("homelab demo") +
              ` — a simulated Proxmox VE ${sim.info.pveVersion} cluster on this machine (real HTTPS and SSH on 127.0.0.1):`,
            `  nodes ${sim.info.nodes.map((n) => n.name).join(", ")}; ${DemoUntrustedNode}'s API certificate comes from another CA;`,
            `  ${DemoStuckNode} already runs our VM, a k3s agent stuck paused for days; k3s-server (${k3sServer.host}) runs k3s.`,
            `  Config: ${file} (removed with the lab when the demo ends)`,
            "",
            pc.bold("1. homelab apply --yes")
          ].join("\n")
        )
        yield* emit({
          type: "demo.lab",
          nodes: sim.info.nodes.map((n) => n.name),
          untrustedCertificate: DemoUntrustedNode,
          stuckVm: DemoStuckNode,
          k3sServer: k3sServer.host,
          config: file
        })
        yield* emit({ type: "demo.step", step: 1, command: "homelab apply --yes" })
        const options = { yes: true, dryRun: false, json: flags.json, events, verbose: flags.verbose }
        const first = yield* runOnce(loaded, options)
        yield* finishApply(first, options)

        yield* say(`\n${pc.bold("2. homelab apply --yes")} (again: nothing to do)`)
        yield* emit({ type: "demo.step", step: 2, command: "homelab apply --yes" })
        sim.clearRequests()
        const second = yield* runOnce(loaded, options)
        yield* finishApply(second, options)
        const requests = sim.requests()
        const mutating = requests.filter(isMutating)
        yield* say(
          pc.dim(
            `   second run: ${second.report.plan.actions.length} change(s), ${requests.length} request(s) (${mutating.length} mutating)`
          )
        )
        yield* emit({
          type: "demo.second-run",
          changes: second.report.plan.actions.length,
          requests: requests.length,
          mutating: mutating.length
        })

        yield* say(`\n${pc.bold("3. homelab status")}`)
        yield* emit({ type: "demo.step", step: 3, command: "homelab status" })
        const status = yield* collectStatus(loaded, () => {})
        yield* say(renderStatus(status))
        yield* emit({ type: "demo.status", vms: status.rows })
      })
    )
  }).pipe(Effect.scoped)
