import * as fs from "node:fs"
import * as https from "node:https"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { labScenario, type SimHandle } from "@homelab/sim"
import { ExitCode } from "../src/ExitCode.js"
import {
  k3sNodesOf,
  mutating,
  notConverged,
  pveRequest,
  type SimLab,
  startLab,
  stopLabs,
  vmsOf,
  whenOperation,
  whenState
} from "./simLab.js"

afterEach(stopLabs)

const show = (r: { code: number | null; stdout: string; stderr: string }) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`

/** Three nodes with vmbr0 and vmbr1 (32G, 8 CPUs: VMs of 4 cores and 16384 MiB by default). */
const nodes = ["pve", "still-fawn", "chief-horse"]
const twoBridges = labScenario(nodes, { memory: "32G" }).nodes.map((n) => ({
  ...n,
  bridges: [
    { name: "vmbr0", active: true },
    { name: "vmbr1", active: true }
  ]
}))

/** Settings of one node in homelab.yaml (inserted after its `- name:` line). */
const nodeSettings = (yaml: string, node: string, lines: ReadonlyArray<string>) =>
  yaml.replace(`  - name: ${node}\n`, `  - name: ${node}\n${lines.map((l) => `    ${l}\n`).join("")}`)
/** Settings under `vm:`. */
const vmSettings = (yaml: string, lines: ReadonlyArray<string>) =>
  yaml.replace("vm:\n", `vm:\n${lines.map((l) => `  ${l}\n`).join("")}`)

/** A `PUT …/config` as someone editing the VM by hand would send it (PVE's API, the lab's token). */
const editByHand = (sim: SimHandle, node: string, vmid: number, params: Record<string, string>) =>
  new Promise<void>((resolve, reject) => {
    const api = new URL(sim.info.nodes.find((n) => n.name === node)?.api ?? "")
    const body = new URLSearchParams(params).toString()
    const req = https.request(
      {
        host: api.hostname,
        port: api.port,
        method: "PUT",
        path: `/api2/json/nodes/${node}/qemu/${vmid}/config`,
        ca: sim.info.ca,
        headers: {
          Authorization: `PVEAPIToken=${sim.info.auth.tokenId}=${sim.info.auth.tokenSecret}`,
          "Content-Type": "application/x-www-form-urlencoded",
          "Content-Length": Buffer.byteLength(body)
        }
      },
      (res) => {
        res.resume()
        res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`PUT config: ${res.statusCode}`))))
      }
    )
    req.on("error", reject)
    req.end(body)
  })

const vmNamed = (sim: SimHandle, node: string) => {
  const vm = vmsOf(sim).find((v) => v.name === `k3s-vm-${node}`)
  assert.isDefined(vm, `k3s-vm-${node}`)
  return vm as ReturnType<typeof vmsOf>[number]
}
const pendingOf = (sim: SimHandle, vmid: number) =>
  (sim.state().vms.find((v) => v.vmid === vmid)?.pending ?? {}) as Record<string, string>

const secondKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvxKZ0g0Jm3lKk3QyPZt1sVq9bFv9t3k2n0P6cW7uX1 ci@box"

describe("homelab apply: a VM it creates has every drift field of homelab.yaml", () => {
  it("on a fresh lab apply converges and the next plan has nothing to do; again after a VM is destroyed and created anew", async () => {
    const two = ["pve", "still-fawn"]
    const scenario = {
      nodes: labScenario(two, { memory: "32G" }).nodes.map((n) => ({
        ...n,
        bridges: [
          { name: "vmbr0", active: true },
          { name: "vmbr1", active: true }
        ]
      }))
    }
    const { homelab, sim, config } = await startLab(two, { imagePresent: true, scenario })
    let yaml = vmSettings(fs.readFileSync(config, "utf8"), [
      "diskSize: 72G",
      "sockets: 2",
      "balloon: 4096",
      "cpuType: x86-64-v2-AES",
      "tags: [k3s]",
      "onboot: true",
      "description: my k3s node",
      "user: ops",
      "ipConfig: ip=dhcp,ip6=auto",
      "nameserver: 10.0.0.1",
      "searchdomain: lan",
      "password: hunter2-create"
    ]).replace(/ {2}sshKeys: \["(.*)"\]/, `  sshKeys: ["$1", "${secondKey}"]`)
    yaml = nodeSettings(yaml, "pve", ["bridges: [vmbr1, vmbr0]", "vms: [{ cores: 3, memory: 8192 }]"])
    fs.writeFileSync(config, yaml)

    const created = await homelab("apply")
    assert.strictEqual(created.code, ExitCode.Ok, show(created))
    assert.include(created.stdout, "Converged: pve, still-fawn.")
    const vm = vmNamed(sim, "pve").config
    assert.deepStrictEqual(
      [vm.cores, vm.sockets, vm.memory, vm.balloon, vm.cpu, vm.onboot, vm.description, vm.ipconfig0],
      ["3", "2", "8192", "4096", "x86-64-v2-AES", "1", "my k3s node", "ip=dhcp,ip6=auto"]
    )
    const clean = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(clean.code, ExitCode.Ok, show(clean))
    assert.include(clean.stdout, "No changes")

    const destroyed = await homelab("destroy", "--only", "still-fawn", "--yes")
    assert.strictEqual(destroyed.code, ExitCode.Ok, show(destroyed))
    const again = await homelab("apply", "--json")
    assert.strictEqual(again.code, ExitCode.Ok, show(again))
    const summary = JSON.parse(again.stdout.trim().split("\n").at(-1) ?? "{}") as {
      convergence?: { converged?: boolean }
    }
    assert.strictEqual(summary.convergence?.converged, true, again.stdout)
    const next = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(next.code, ExitCode.Ok, show(next))
    assert.notInclude(created.stdout + again.stdout + clean.stdout + next.stdout, "hunter2-create")
  })
})

describe("homelab plan / apply: every drift field, end to end", () => {
  it("each field: plan shows it with its consequence, apply changes it in place (vm.restart: rolling restarts what waits), the next plan is clean; a smaller disk is refused with its reason", async () => {
    const lab: SimLab = await startLab(nodes, { imagePresent: true, scenario: { nodes: twoBridges } })
    const { homelab, sim, config } = lab
    const original = fs.readFileSync(config, "utf8")
    fs.writeFileSync(config, nodeSettings(original, "chief-horse", ["bridges: [vmbr0, vmbr1]"]))
    const created = await homelab("apply")
    assert.strictEqual(created.code, ExitCode.Ok, show(created))
    const vmids = Object.fromEntries(nodes.map((n) => [n, vmNamed(sim, n).vmid]))
    const mac = /virtio=([0-9A-F:]{17})/.exec(vmNamed(sim, "still-fawn").config.net0 ?? "")?.[1]
    assert.isDefined(mac)
    await editByHand(sim, "pve", vmids.pve as number, { tags: "homelab-managed;prod" })

    // What homelab.yaml now asks, and per field: the VM, the line plan prints, the setting apply leaves.
    let yaml = vmSettings(original, [
      "restart: rolling",
      "diskSize: 72G",
      "sockets: 2",
      "balloon: 1024",
      "cpuType: x86-64-v2-AES",
      "tags: [k3s]",
      "onboot: true",
      "description: k3s node, managed by homelab",
      "user: ops",
      "ipConfig: ip=dhcp,ip6=auto",
      "nameserver: 10.0.0.1",
      "searchdomain: lan",
      "password: hunter2-drift"
    ]).replace(/ {2}sshKeys: \["(.*)"\]/, `  sshKeys: ["$1", "${secondKey}"]`)
    yaml = nodeSettings(yaml, "pve", ["bridges: [vmbr0, vmbr1]", "vms: [{ cores: 3, memory: 8192 }]"])
    yaml = nodeSettings(yaml, "still-fawn", ["bridges: [vmbr1]"])
    yaml = nodeSettings(yaml, "chief-horse", ["bridges: [vmbr0]"])
    fs.writeFileSync(config, yaml)

    type Row = readonly [node: string, line: string, key: string, after: (value: string | undefined) => boolean]
    const is = (v: string) => (value: string | undefined) => value === v
    const has = (pattern: RegExp) => (value: string | undefined) => pattern.test(value ?? "")
    /** The tags, besides the mark of the password set with them (`homelab-pw-…`). */
    const tagsAre = (v: string) => (value: string | undefined) =>
      (value ?? "")
        .split(";")
        .filter((t) => !/^homelab-pw-[0-9a-f]{4}-[0-9a-f]{12}$/.test(t))
        .join(";") === v
    const rows: ReadonlyArray<Row> = [
      ["pve", "cores 4 → 3 (takes effect after a restart)", "cores", is("3")],
      ["pve", "memory 16384 → 8192 MiB (takes effect after a restart)", "memory", is("8192")],
      ["still-fawn", "sockets 1 → 2 (takes effect after a restart)", "sockets", is("2")],
      ["still-fawn", "balloon not set → 1024 MiB (applied now)", "balloon", is("1024")],
      ["chief-horse", "cpu host → x86-64-v2-AES (takes effect after a restart)", "cpu", is("x86-64-v2-AES")],
      ["chief-horse", "scsi0 64G → 72G (grown online)", "scsi0", has(/size=72G/)],
      ["pve", "net1 none → vmbr1 (added) (applied now)", "net1", has(/bridge=vmbr1/)],
      ["chief-horse", "net1 vmbr1 → removed (applied now)", "net1", is(undefined as unknown as string)],
      ["still-fawn", `net0 vmbr0 → vmbr1 (MAC ${mac} kept) (applied now)`, "net0", is(`virtio=${mac},bridge=vmbr1`)],
      ["pve", "tags homelab-managed;prod → +k3s (applied now)", "tags", tagsAre("homelab-managed;k3s;prod")],
      ["still-fawn", "tags homelab-managed → +k3s (applied now)", "tags", tagsAre("homelab-managed;k3s")],
      ["pve", "onboot false → true (applied now)", "onboot", is("1")],
      [
        "still-fawn",
        'description "Managed by homelab (role: agent). Rec…" → "k3s node, managed by homelab" (applied now)',
        "description",
        is("k3s node, managed by homelab")
      ],
      [
        "chief-horse",
        "cloud-init user ubuntu → ops (the guest gets it when PVE next starts the VM)",
        "ciuser",
        is("ops")
      ],
      [
        "pve",
        "cloud-init ssh keys homelab-sim-client → homelab-sim-client, ci@box (the guest gets it when PVE next starts the VM)",
        "sshkeys",
        (v) => decodeURIComponent(v ?? "").includes("ci@box")
      ],
      [
        "still-fawn",
        "cloud-init ipconfig0 ip=dhcp → ip=dhcp,ip6=auto (the guest gets it when PVE next starts the VM)",
        "ipconfig0",
        is("ip=dhcp,ip6=auto")
      ],
      [
        "chief-horse",
        "cloud-init nameserver not set → 10.0.0.1 (the guest gets it when PVE next starts the VM)",
        "nameserver",
        is("10.0.0.1")
      ],
      [
        "pve",
        "cloud-init searchdomain not set → lan (the guest gets it when PVE next starts the VM)",
        "searchdomain",
        is("lan")
      ],
      [
        "still-fawn",
        "cloud-init password not set → set (the guest gets it when PVE next starts the VM)",
        "cipassword",
        (v) => v !== undefined
      ]
    ]

    const plan = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(plan.code, ExitCode.Changes, show(plan))
    for (const [node, line] of rows) assert.include(plan.stdout, `~ k3s-vm-${node}  ${line}`, `plan shows ${line}`)
    for (const node of nodes) assert.include(plan.stdout, `restart VM ${vmids[node]} k3s-vm-${node} on ${node}`)
    assert.notMatch(plan.stdout, /recreate|create VM/)

    sim.clearRequests()
    const apply = await homelab("apply")
    assert.strictEqual(apply.code, ExitCode.Ok, show(apply))
    for (const [node, line, key, after] of rows) {
      const vm = vmNamed(sim, node)
      assert.strictEqual(vm.vmid, vmids[node], `${node}: the same VM`)
      assert.isTrue(after(vm.config[key]), `${node} ${line}: ${key} is ${vm.config[key]}`)
      assert.deepStrictEqual(pendingOf(sim, vm.vmid), {}, `${node}: nothing left pending`)
    }
    // Per VM: one config write (with its digest, marking the VM for its cloud-init change), the disk grown, one
    // restart per VM in order (PVE's start regenerates the cloud-init drive: homelab does not), the mark cleared.
    const writes = mutating(sim).map((r) => `${r.method} ${r.path?.replace(/\/qemu\/\d+/, "/qemu/<vmid>")}`)
    for (const node of nodes) {
      assert.deepStrictEqual(
        writes.filter((w) => w.startsWith(`PUT /nodes/${node}/`) || w.startsWith(`POST /nodes/${node}/`)),
        [
          `PUT /nodes/${node}/qemu/<vmid>/config`,
          `PUT /nodes/${node}/qemu/<vmid>/resize`,
          `POST /nodes/${node}/qemu/<vmid>/status/reboot`,
          `PUT /nodes/${node}/qemu/<vmid>/config`
        ],
        writes.join("\n")
      )
      assert.notInclude(vmNamed(sim, node).tags, "homelab-cloudinit")
    }
    assert.deepStrictEqual(
      writes.filter((w) => w.endsWith("/status/reboot")),
      nodes.map((n) => `POST /nodes/${n}/qemu/<vmid>/status/reboot`)
    )
    assert.deepStrictEqual(
      writes.filter((w) => w.endsWith("/resize")),
      nodes.map((n) => `PUT /nodes/${n}/qemu/<vmid>/resize`)
    )
    assert.notInclude(apply.stdout + apply.stderr + plan.stdout, "hunter2-drift")

    const clean = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(clean.code, ExitCode.Ok, show(clean))
    assert.include(clean.stdout, "No changes")

    // A smaller disk: refused with its reason, nothing shrunk.
    fs.writeFileSync(config, yaml.replace("diskSize: 72G", "diskSize: 32G"))
    const shrink = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(shrink.code, ExitCode.Error, show(shrink))
    assert.include(
      shrink.stdout,
      `VM ${vmids.pve} k3s-vm-pve: scsi0 is 72G, homelab.yaml asks 32G: disks are never shrunk [vm.disk-shrink]`
    )
    assert.include(shrink.stdout, "fix: set diskSize to 72G or more")
    sim.clearRequests()
    const refused = await homelab("apply")
    assert.strictEqual(refused.code, ExitCode.NotConverged, show(refused))
    assert.deepStrictEqual(mutating(sim), [])
    for (const node of nodes) assert.match(vmNamed(sim, node).config.scsi0 ?? "", /size=72G/)
  }, 180_000)
})

describe("homelab apply: rolling restart with k3s", () => {
  it("vm.restart: rolling restarts one VM at a time in config order: its Node drained, the VM restarted, Ready again, uncordoned, then the next", async () => {
    const lab = await startLab(nodes, { k3s: true, imagePresent: true })
    const { homelab, sim, config } = lab
    const joined = await homelab("apply")
    assert.strictEqual(joined.code, ExitCode.Ok, show(joined))

    fs.writeFileSync(
      config,
      vmSettings(fs.readFileSync(config, "utf8"), ["restart: rolling", "cpuType: x86-64-v2-AES"])
    )
    const plan = await homelab("plan")
    assert.strictEqual(plan.code, ExitCode.Ok, show(plan))
    for (const node of nodes) {
      assert.include(
        plan.stdout,
        `restart VM ${vmNamed(sim, node).vmid} k3s-vm-${node} on ${node} (its k3s Node drained first, Ready again after)`
      )
    }
    const since = sim.k3sEvents().length
    sim.clearRequests()
    const rolled = await homelab("apply")
    assert.strictEqual(rolled.code, ExitCode.Ok, show(rolled))
    const seen = sim
      .k3sEvents()
      .slice(since)
      .filter((e) => ["drain-start", "drain-finish", "node-uncordoned"].includes(e.kind))
      .map((e) => `${e.kind} ${e.node}`)
    assert.deepStrictEqual(
      seen,
      nodes.flatMap((n) => [`drain-start k3s-vm-${n}`, `drain-finish k3s-vm-${n}`, `node-uncordoned k3s-vm-${n}`])
    )
    assert.deepStrictEqual(
      mutating(sim)
        .filter((r) => r.path?.endsWith("/status/reboot"))
        .map((r) => r.node),
      nodes
    )
    for (const node of nodes) {
      assert.strictEqual(vmNamed(sim, node).config.cpu, "x86-64-v2-AES")
      assert.strictEqual(k3sNodesOf(sim).find((n) => n.name === `k3s-vm-${node}`)?.ready, "True")
    }
    const clean = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(clean.code, ExitCode.Ok, show(clean))
  }, 180_000)
})

describe("homelab apply: an interrupted rolling restart", () => {
  it("Ctrl-C while PVE reboots the VM leaves its Node cordoned and the VM marked: plan and status say so, the next apply uncordons it", async () => {
    const lab = await startLab(["pve"], { k3s: true, imagePresent: true })
    const { homelab, sim, config } = lab
    const joined = await homelab("apply")
    assert.strictEqual(joined.code, ExitCode.Ok, show(joined))
    const { vmid } = vmNamed(sim, "pve")
    const node = () => k3sNodesOf(sim).find((n) => n.name === "k3s-vm-pve")

    // More memory (a restart), restarted by the run: Ctrl-C as soon as PVE's reboot task begins. The reboot task is
    // held (taskHold) until the run has exited, so the run is still waiting for it when it is signalled, however late.
    fs.writeFileSync(
      config,
      nodeSettings(vmSettings(fs.readFileSync(config, "utf8"), ["restart: rolling"]), "pve", ["memoryRatio: 0.75"])
    )
    await sim.addFaults([{ kind: "taskHold", taskType: "qmreboot", vmid }])
    const run = lab.spawn("apply")
    const reboot = await whenOperation(sim, (o) => o.operation === "qmreboot" && o.vmid === vmid, run.done)
    run.child.kill("SIGINT")
    const interrupted = await run.done
    await sim.clearFaults({ kind: "taskHold" })
    assert.strictEqual(interrupted.code, ExitCode.Interrupted, show(interrupted))
    assert.include(interrupted.stderr, `restart VM ${vmid} k3s-vm-pve on pve`)
    assert.include(vmNamed(sim, "pve").tags, "homelab-restart")
    assert.isTrue(node()?.unschedulable, "drained before the reboot")
    // PVE finishes the reboot on its own: the VM runs again with the new memory.
    await whenState(() =>
      sim
        .operations()
        .some((o) => o.operation === "qmstart" && o.vmid === vmid && o.id > reboot.id && o.status === "ok")
    )
    assert.strictEqual(vmNamed(sim, "pve").config.memory, "24576")

    const plan = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(plan.code, ExitCode.Changes, show(plan))
    assert.include(plan.stdout, `finish the restart of VM ${vmid} k3s-vm-pve: uncordon its k3s Node once it is Ready`)
    assert.include(plan.stdout, "an earlier run's restart of k3s-vm-pve did not finish (it carries 'homelab-restart')")
    const status = await homelab("status")
    assert.strictEqual(status.code, ExitCode.NotConverged, show(status))
    assert.include(status.stdout, "agent Ready, cordoned")

    const finished = await homelab("apply")
    assert.strictEqual(finished.code, ExitCode.Ok, show(finished))
    assert.isUndefined(notConverged(sim, "pve", true))
    assert.isFalse(node()?.unschedulable)
    const clean = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(clean.code, ExitCode.Ok, show(clean))
    assert.strictEqual((await homelab("status")).code, ExitCode.Ok)
  }, 180_000)
})

/** A stop or a start of a VM from PVE (its API, the lab's token): the task's exit status once it ended. */
const power = async (sim: SimHandle, node: string, vmid: number, what: "stop" | "start") => {
  const upid = String(await pveRequest(sim, "POST", `/nodes/${node}/qemu/${vmid}/status/${what}`))
  const ended = () => sim.state().tasks.find((t) => t.upid === upid && t.status === "stopped")
  await whenState(() => ended() !== undefined)
  return ended()?.exitstatus
}

describe("homelab plan / apply: a NIC on a bridge the node does not have", () => {
  it("drift adding a NIC on a missing bridge is refused (bridge.missing, naming node and bridge): plan exits 1, apply 5, the VM's config is untouched and it still starts", async () => {
    const { homelab, sim, config } = await startLab(["pve"], { imagePresent: true })
    const created = await homelab("apply")
    assert.strictEqual(created.code, ExitCode.Ok, show(created))
    const vm = vmNamed(sim, "pve")
    fs.writeFileSync(config, nodeSettings(fs.readFileSync(config, "utf8"), "pve", ["bridges: [vmbr0, vmbr1]"]))

    const plan = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(plan.code, ExitCode.Error, show(plan))
    assert.include(
      plan.stdout,
      `VM ${vm.vmid} k3s-vm-pve: bridge 'vmbr1' does not exist on node pve: net1 none → vmbr1 (added) is not made (the VM's NICs are left as they are) [bridge.missing]`
    )
    assert.include(plan.stdout, "fix: create bridge 'vmbr1' on node pve")
    assert.notInclude(plan.stdout, "(applied now)", show(plan))

    const apply = await homelab("apply", "--yes")
    assert.strictEqual(apply.code, ExitCode.NotConverged, show(apply))
    assert.include(apply.stdout + apply.stderr, "bridge 'vmbr1' does not exist on node pve")
    assert.notInclude(apply.stdout, "Converged: pve")
    const after = vmNamed(sim, "pve")
    assert.deepStrictEqual(after.config, vm.config, "the VM's config is untouched")
    assert.deepStrictEqual(pendingOf(sim, vm.vmid), {})

    // A power cut, or a stop and a start from PVE: the VM comes back.
    assert.strictEqual(await power(sim, "pve", vm.vmid, "stop"), "OK")
    assert.strictEqual(await power(sim, "pve", vm.vmid, "start"), "OK")
    assert.strictEqual(vmNamed(sim, "pve").status, "running")
  })
})
