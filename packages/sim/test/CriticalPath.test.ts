import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { criticalPath, labScenario, type SimHandle, type SimOperation, startSimPromise } from "../src/index.js"
import { raw, until } from "./helpers.js"
import { closeConnections, k3sScenario, nodeOf, run, serverToken, testKey, writeToken } from "./k3s/k3sHelpers.js"

/** A frozen simulator clock: what the sim records does not depend on when the test runs. */
const T0 = Date.parse("2026-01-05T10:00:00Z")
const frozen = () => T0

/** One API call; a UPID result is waited for (the task must succeed). */
const call = async (sim: SimHandle, method: string, path: string, params: Record<string, string> = {}) => {
  const node = /^\/nodes\/([^/]+)/.exec(path)?.[1] ?? ""
  const r = await raw(sim, method, `/api2/json${path}`, {
    nodeIndex: Math.max(
      0,
      sim.info.nodes.findIndex((n) => n.name === node)
    ),
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(params).toString()
  })
  assert.strictEqual(r.status, 200, `${method} ${path}: ${r.statusText} ${r.body}`)
  const upid = (JSON.parse(r.body) as { data: unknown }).data
  if (typeof upid !== "string" || !upid.startsWith("UPID:")) return
  const status = await until(async () => {
    const s = await raw(sim, "GET", `/api2/json/nodes/${node}/tasks/${encodeURIComponent(upid)}/status`, {
      nodeIndex: sim.info.nodes.findIndex((n) => n.name === node)
    })
    const d = (JSON.parse(s.body) as { data: { status: string; exitstatus?: string } }).data
    return d.status === "stopped" ? d : undefined
  })
  assert.strictEqual(status.exitstatus, "OK", `${method} ${path}`)
}

/** What a client does for one fresh VM, one step at a time: download, create (import), resize, start, wait for the IP. */
const freshVm = async (sim: SimHandle, node: string, vmid: number, download: boolean) => {
  const image = sim.info.imageOrigin?.files[0]
  if (image === undefined) throw new Error("no image origin")
  if (download)
    await call(sim, "POST", `/nodes/${node}/storage/local/download-url`, {
      url: image.url,
      content: "import",
      filename: "noble.qcow2",
      checksum: image.sha256,
      "checksum-algorithm": "sha256"
    })
  await call(sim, "POST", `/nodes/${node}/qemu`, {
    vmid: String(vmid),
    name: `vm-${vmid}`,
    memory: "2048",
    agent: "1",
    ciuser: "ubuntu",
    sshkeys: encodeURIComponent(testKey.publicKey),
    net0: "virtio,bridge=vmbr0",
    scsi0: "local-lvm:0,import-from=local:import/noble.qcow2",
    ide2: "local-lvm:cloudinit"
  })
  await call(sim, "PUT", `/nodes/${node}/qemu/${vmid}/resize`, { disk: "scsi0", size: "+8G" })
  await call(sim, "POST", `/nodes/${node}/qemu/${vmid}/status/start`)
  await until(async () => (sim.state().vms.find((v) => v.vmid === vmid)?.ip ? true : undefined))
}

/** `operation vm` (or node) of each operation, and of the operations it needed. */
const label = (o: SimOperation | { operation: string; vm?: string; node: string }) => `${o.operation} ${o.vm ?? o.node}`
const needsOf = (ops: ReadonlyArray<SimOperation>) => {
  const byId = new Map(ops.map((o) => [o.id, o]))
  return Object.fromEntries(ops.map((o) => [label(o), o.needs.map((id) => label(byId.get(id) as SimOperation)).sort()]))
}

const op = (id: number, simMs: number, needs: Array<number>, status: SimOperation["status"] = "ok"): SimOperation => ({
  id,
  operation: `op${id}`,
  node: "pve",
  simMs,
  startedAt: T0,
  status,
  needs
})

describe("criticalPath (pure)", () => {
  it("takes the longest chain of simulated durations, scaled to real ms by the time scale", () => {
    // 1 → 2 → 4 (100 + 300 + 50) beats 1 → 3 → 4 (100 + 200 + 50) and 5 alone (400)
    const ops = [op(1, 100, []), op(2, 300, [1]), op(3, 200, [1]), op(4, 50, [2, 3]), op(5, 400, [])]
    const p = criticalPath(ops, { since: 0, timeScale: 0.1 })
    assert.deepStrictEqual(
      p.steps.map((s) => [s.operation, s.simMs, s.realMs]),
      [
        ["op1", 100, 10],
        ["op2", 300, 30],
        ["op4", 50, 5]
      ]
    )
    assert.deepStrictEqual([p.simMs, p.realMs, p.operations, p.timeScale], [450, 45, 5, 0.1])
  })

  it("a failed operation takes no time but passes on what it waited for; operations before the mark are done", () => {
    const ops = [op(1, 1000, []), op(2, 100, [1]), op(3, 500, [2], "failed"), op(4, 100, [3])]
    assert.deepStrictEqual(
      criticalPath(ops, { since: 0, timeScale: 1 }).steps.map((s) => s.operation),
      ["op1", "op2", "op4"]
    )
    const later = criticalPath(ops, { since: 1, timeScale: 1 })
    assert.deepStrictEqual([later.simMs, later.steps.map((s) => s.operation)], [200, ["op2", "op4"]])
  })
})

describe("operations and their critical path (PVE 9.1, time scale 0)", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(labScenario(["pve", "pve2"], { timeScale: 0 }), { now: frozen })
  })
  afterAll(() => sim.stop())

  it("a client doing two nodes' work one step at a time still gets one node's chain: download → create → resize → start → boot", async () => {
    // the client serialises everything: pve's download, pve2's download, then each VM to its IP in turn
    const image = sim.info.imageOrigin?.files[0]
    for (const node of ["pve", "pve2"])
      await call(sim, "POST", `/nodes/${node}/storage/local/download-url`, {
        url: image?.url ?? "",
        content: "import",
        filename: "noble.qcow2",
        checksum: image?.sha256 ?? "",
        "checksum-algorithm": "sha256"
      })
    await freshVm(sim, "pve", 101, false)
    await freshVm(sim, "pve2", 102, false)
    await freshVm(sim, "pve", 103, false)

    const ops = sim.operations()
    assert.deepStrictEqual(
      ops.map((o) => [label(o), o.simMs, o.status]),
      [
        ["download pve", 1000, "ok"],
        ["download pve2", 1000, "ok"],
        ["qmcreate vm-101", 1500, "ok"],
        ["resize vm-101", 300, "ok"],
        ["qmstart vm-101", 800, "ok"],
        ["boot vm-101", 5000, "ok"],
        ["qmcreate vm-102", 1500, "ok"],
        ["resize vm-102", 300, "ok"],
        ["qmstart vm-102", 800, "ok"],
        ["boot vm-102", 5000, "ok"],
        ["qmcreate vm-103", 1500, "ok"],
        ["resize vm-103", 300, "ok"],
        ["qmstart vm-103", 800, "ok"],
        ["boot vm-103", 5000, "ok"]
      ]
    )
    // each create waits for its own node's download (103 shares pve's), each step for the previous one on its VM
    assert.deepStrictEqual(needsOf(ops), {
      "download pve": [],
      "download pve2": [],
      "qmcreate vm-101": ["download pve"],
      "resize vm-101": ["qmcreate vm-101"],
      "qmstart vm-101": ["resize vm-101"],
      "boot vm-101": ["qmstart vm-101"],
      "qmcreate vm-102": ["download pve2"],
      "resize vm-102": ["qmcreate vm-102"],
      "qmstart vm-102": ["resize vm-102"],
      "boot vm-102": ["qmstart vm-102"],
      "qmcreate vm-103": ["download pve"],
      "resize vm-103": ["qmcreate vm-103"],
      "qmstart vm-103": ["resize vm-103"],
      "boot vm-103": ["qmstart vm-103"]
    })
    const p = sim.criticalPath()
    assert.deepStrictEqual(
      p.steps.map((s) => [s.operation, s.node, s.vm, s.simMs]),
      [
        ["download", "pve", undefined, 1000],
        ["qmcreate", "pve", "vm-101", 1500],
        ["resize", "pve", "vm-101", 300],
        ["qmstart", "pve", "vm-101", 800],
        ["boot", "pve", "vm-101", 5000]
      ]
    )
    assert.deepStrictEqual([p.simMs, p.realMs, p.timeScale, p.operations], [8600, 0, 0, 14])
    // a PVE task carries its UPID (a client waits for it by polling); the boot is not a task
    assert.deepStrictEqual(
      p.steps.map((s) => s.upid?.split(":")[5]),
      ["download", "qmcreate", "resize", "qmstart", undefined]
    )
    // what the client's order took in simulated time: everything one after the other
    assert.strictEqual(
      ops.reduce((t, o) => t + o.simMs, 0),
      2000 + 3 * 7600
    )
  })

  it("since a mark: only the operations after it, a restart's chain alone (also over the admin API)", async () => {
    const m = sim.mark()
    await call(sim, "POST", "/nodes/pve/qemu/101/status/stop")
    await call(sim, "POST", "/nodes/pve/qemu/101/status/start")
    await until(async () => (sim.state().vms.find((v) => v.vmid === 101)?.ip ? true : undefined))
    const p = sim.criticalPath(m)
    assert.deepStrictEqual(
      p.steps.map((s) => [s.operation, s.vm, s.simMs]),
      [
        ["qmstop", "vm-101", 500],
        ["qmstart", "vm-101", 800],
        ["boot", "vm-101", 5000]
      ]
    )
    assert.deepStrictEqual([p.since, p.simMs, p.operations], [m, 6300, 3])
    const admin = await fetch(`${sim.info.admin}/critical-path?since=${m}`)
    assert.deepStrictEqual(await admin.json(), JSON.parse(JSON.stringify(p)))
    const ops = await (await fetch(`${sim.info.admin}/operations?since=${m}`)).json()
    assert.deepStrictEqual(
      (ops as Array<SimOperation>).map((o) => o.operation),
      ["qmstop", "qmstart", "boot"]
    )
    const mark = (await (await fetch(`${sim.info.admin}/mark`, { method: "POST" })).json()) as { mark: number }
    assert.strictEqual(mark.mark, m + 3)
    assert.strictEqual((await fetch(`${sim.info.admin}/critical-path?since=-1`)).status, 400)
  })
})

describe("k3s operations (time scale 0)", () => {
  let sim: SimHandle
  beforeAll(async () => {
    const base = k3sScenario()
    sim = await startSimPromise(
      {
        ...base,
        timeScale: 0,
        k3s: { ...base.k3s, joinDelayMs: 5000, readyDelayMs: 10_000, learnerPromotionDelayMs: 15_000 }
      },
      { now: frozen }
    )
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("server joins wait for the previous learner's promotion; an agent for its VM's boot and the server it joins", async () => {
    const token = await serverToken(sim)
    const m = sim.mark()
    const install = async (vmid: number, role: "server" | "agent", server: string) => {
      assert.strictEqual((await writeToken(sim, vmid, token)).code, 0)
      assert.strictEqual((await run(sim, vmid, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")).code, 0)
      const r = await run(
        sim,
        vmid,
        `sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 sh /tmp/k3s-install.sh ${role} --server ${server}`
      )
      assert.strictEqual(r.code, 0, r.stderr)
    }
    // one step at a time: two servers through the existing one, then a fresh VM, an agent through the new server
    await install(303, "server", "https://127.78.0.10:6443")
    await install(304, "server", "https://127.78.0.10:6443")
    await freshVm(sim, "pve", 110, true)
    await install(110, "agent", "https://127.78.0.33:6443")
    await until(async () => (nodeOf(sim, "vm-110")?.ready === "True" ? true : undefined))

    const ops = sim.operations(m)
    assert.deepStrictEqual(needsOf(ops), {
      "k3s-server-join cp-2": [],
      "etcd-promotion cp-2": ["k3s-server-join cp-2"],
      "node-ready cp-2": ["etcd-promotion cp-2"],
      "k3s-server-join cp-3": ["etcd-promotion cp-2"],
      "etcd-promotion cp-3": ["k3s-server-join cp-3"],
      "node-ready cp-3": ["etcd-promotion cp-3"],
      "download pve": [],
      "qmcreate vm-110": ["download pve"],
      "resize vm-110": ["qmcreate vm-110"],
      "qmstart vm-110": ["resize vm-110"],
      "boot vm-110": ["qmstart vm-110"],
      "k3s-agent-join vm-110": ["boot vm-110", "etcd-promotion cp-2"],
      "node-ready vm-110": ["k3s-agent-join vm-110"]
    })
    const p = sim.criticalPath(m)
    assert.deepStrictEqual(
      p.steps.map((s) => [s.operation, s.k3sNode, s.simMs]),
      [
        ["k3s-server-join", "cp-2", 5000],
        ["etcd-promotion", "cp-2", 15_000],
        ["k3s-server-join", "cp-3", 5000],
        ["etcd-promotion", "cp-3", 15_000],
        ["node-ready", "cp-3", 10_000]
      ]
    )
    assert.strictEqual(p.simMs, 50_000)
  })
})
