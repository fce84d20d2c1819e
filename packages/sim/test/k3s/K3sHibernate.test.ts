import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { pxClient, until, waitTask } from "../helpers.js"
import { closeConnections, haScenario, journal, run } from "./k3sHelpers.js"

const K = "sudo -n /usr/local/bin/k3s kubectl"
const READY = "-o jsonpath={.status.conditions[?(@.type=='Ready')].status}"

/** `qm suspend --todisk` / `qm resume` (or `qm start`) through the API; the task's exitstatus and log. */
const power = async (sim: SimHandle, vmid: number, action: "hibernate" | "resume" | "start") => {
  const px = pxClient(sim)
  const q = px.nodes.$("pve").qemu.$(vmid).status
  const upid = (action === "hibernate"
    ? await q.suspend.$post({ todisk: true })
    : action === "resume"
      ? await q.resume.$post({})
      : await q.start.$post({})) as unknown as string
  const t = await waitTask(px, "pve", upid)
  assert.strictEqual(t.exitstatus, "OK")
  const log = (await px.nodes.$("pve").tasks.$(upid).log.$get({ limit: 500 })) as unknown as Array<{ t: string }>
  return { upid, log: log.map((l) => l.t) }
}

const configOf = (sim: SimHandle, vmid: number) =>
  sim.state().vms.find((v) => v.vmid === vmid)?.config as Record<string, string | number> | undefined

describe("a guest suspended to disk resumes its saved RAM (qemu-server vm_start with -loadstate): nothing in it restarts", () => {
  // The simulator's wall clock, held, and moved by the test (the node-monitor grace period passes when it says so).
  let t = Date.UTC(2026, 0, 5, 10)
  const now = () => t
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(haScenario(), { now })
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("hibernated: stopped with lock suspended, vmstate and runningmachine; resumed: one qmresume task that says so, the state removed, k3s went on where it was (not restarted, a unit started by hand still active), the guest not booted again", async () => {
    // k3s on s3 started by hand after its unit was disabled: a reboot would leave it down, a resume does not
    assert.strictEqual((await run(sim, 202, "sudo -n systemctl disable k3s")).code, 0)
    const hib = await power(sim, 202, "hibernate")
    const vm = sim.state().vms.find((v) => v.vmid === 202)
    assert.strictEqual(vm?.status, "stopped")
    const conf = configOf(sim, 202)
    assert.strictEqual(conf?.lock, "suspended")
    // find_vmstate_storage: s3 has no disk, so its state goes to `local` (a file: `.raw`)
    assert.strictEqual(conf?.vmstate, "local:202/vm-202-state-suspend-2026-01-05.raw")
    assert.isDefined(conf?.runningmachine, JSON.stringify(conf))
    assert.include(hib.log, "State saved, quitting")
    // its heartbeat stopped with its vCPUs: Unknown once the node-monitor grace period passed
    t += 1000
    const ready = async (node: string) => (await run(sim, 200, `${K} get node ${node} ${READY}`)).stdout
    assert.strictEqual(await ready("s3"), "Unknown")

    const mark = sim.mark()
    const tasksBefore = sim.state().tasks.length
    const res = await power(sim, 202, "resume")
    assert.include(res.log, "Resuming suspended VM")
    assert.include(res.log, "Resumed VM, removing state")
    // vm_start runs inside the qmresume worker: no qmstart task of its own
    assert.deepStrictEqual(
      sim
        .state()
        .tasks.slice(tasksBefore)
        .map((x) => x.type),
      ["qmresume"]
    )
    const after = configOf(sim, 202)
    for (const k of ["lock", "vmstate", "runningmachine", "runningcpu"]) assert.notProperty(after, k)

    const waited = await run(sim, 200, `${K} wait --for=condition=Ready node/s3 --timeout=1h`, { timeoutMs: 20_000 })
    assert.deepStrictEqual([waited.code, waited.stdout], [0, "node/s3 condition met\n"], waited.stderr)
    assert.strictEqual((await run(sim, 202, "systemctl is-active k3s")).stdout, "active\n")
    const j = await journal(sim, 202, "k3s")
    assert.strictEqual(j.split("\n").filter((l) => l === "Starting Lightweight Kubernetes...").length, 1, j)
    // no boot (cloud-init, agent coming up), no k3s start: the Node only posted its status again
    assert.deepStrictEqual(
      sim.operations(mark).map((o) => o.operation),
      ["qmresume", "node-ready"]
    )
  })

  it("its vmstate deleted by hand (`qm set --delete vmstate`): the state volume, `lock: suspended` and the running keys go, and the next start boots the guest afresh (k3s started again)", async () => {
    const px = pxClient(sim)
    const vm = px.nodes.$("pve").qemu.$(201)
    await vm.config.$put({ vmstatestorage: "local-lvm" } as never)
    await power(sim, 201, "hibernate")
    const volid = String(configOf(sim, 201)?.vmstate)
    const listed = async () =>
      ((await px.nodes.$("pve").storage.$("local-lvm").content.$get()) as unknown as Array<{ volid: string }>).map(
        (c) => c.volid
      )
    assert.include(await listed(), volid)
    await vm.config.$put({ delete: "vmstate" } as never)
    const conf = configOf(sim, 201)
    for (const k of ["lock", "vmstate", "runningmachine", "runningcpu"]) assert.notProperty(conf, k)
    assert.notInclude(await listed(), volid)
    const started = await power(sim, 201, "start")
    assert.notInclude(started.log, "Resuming suspended VM")
    const j = await until(async () => {
      const text = await journal(sim, 201, "k3s").catch(() => "")
      return text.split("\n").filter((l) => l === "Starting Lightweight Kubernetes...").length === 2 ? text : undefined
    })
    assert.include(j, "Starting Lightweight Kubernetes...")
  })
})
