// Throughput of the pure functions, run with `pnpm bench` (after `pnpm build`): node bench/classify.ts
// Types come from src; the code runs from dist (Node strips the types, but cannot resolve src's `.js` imports).
import { performance } from "node:perf_hooks"
import type * as VmHealth from "../src/index.js"

const distEntry: string = "../dist/index.js"
const { classifyVm, HealthPolicy, NodeFacts, PreflightOptions, preflight, VmFacts, VmRequest }: typeof VmHealth =
  await import(distEntry)

const GiB = 1024 ** 3
const statuses = ["running", "stopped"] as const
const qmp = ["running", "paused", "prelaunch", "guest-panicked", "inmigrate", undefined] as const
const locks = [undefined, undefined, undefined, "backup", "suspended"] as const

// 1000 VMs spread over every rule of the classification.
const vms = Array.from(
  { length: 1000 },
  (_, i) =>
    new VmFacts({
      vmid: 100 + i,
      node: `pve${i % 5}`,
      name: `k3s-${i}`,
      status: statuses[i % 2] ?? "running",
      qmpstatus: qmp[i % qmp.length],
      lock: locks[i % locks.length],
      uptimeSeconds: (i * 37) % 900,
      agentConfigured: true,
      agentAnswering: i % 3 !== 0,
      owned: i % 7 !== 0,
      protection: i % 11 === 0,
      template: i % 97 === 0
    })
)
const policy = HealthPolicy.fromPartial({ stopped: "start", paused: "resume" })

const node = new NodeFacts({
  node: "pve",
  pveMajor: 8,
  cpus: 8,
  memoryBytes: 32 * GiB,
  bridges: [{ name: "vmbr0", active: true }],
  storages: [
    { name: "local", enabled: true, active: true, content: ["iso", "import"], availBytes: 80 * GiB },
    { name: "local-lvm", enabled: true, active: true, content: ["images"], availBytes: 200 * GiB }
  ],
  guests: Array.from({ length: 50 }, (_, i) => ({ vmid: 200 + i, maxmemBytes: GiB / 2, template: false }))
})
const request = new VmRequest({
  vmid: 105,
  cores: 4,
  memoryMiB: 8192,
  bridges: ["vmbr0"],
  diskStorage: "local-lvm",
  diskBytes: 32 * GiB,
  imageStorage: "local",
  imageContent: "import",
  downloadImage: true
})
const options = new PreflightOptions({
  access: {
    _tag: "Permissions",
    principal: "homelab@pve!reconciler",
    permissions: { "/": { "VM.Allocate": 1, "VM.Audit": 1, "Sys.Audit": 1, "SDN.Use": 1 } }
  }
})

const measure = (name: string, iterations: number, run: () => void): void => {
  for (let i = 0; i < Math.min(iterations, 200); i++) run() // warm-up
  const start = performance.now()
  for (let i = 0; i < iterations; i++) run()
  const perCallUs = ((performance.now() - start) * 1000) / iterations
  process.stdout.write(`${name}: ${perCallUs.toFixed(2)} µs per call (${iterations} calls)\n`)
}

let next = 0
measure("classifyVm (1000 VMs in mixed states, round robin)", 500_000, () => {
  classifyVm(vms[next++ % vms.length] as VmHealth.VmFacts, policy)
})
const findings = preflight(node, request, options).findings.length
measure(`preflight (50 guests, permission map, ${findings} findings)`, 20_000, () => {
  preflight(node, request, options)
})
