import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type SimHandle, startSimPromise } from "../src/index.js"
import { raw, testScenario } from "./helpers.js"

const get = async (sim: SimHandle, path: string) => {
  const r = await raw(sim, "GET", `/api2/json${path}`)
  return { status: r.status, body: JSON.parse(r.body) as { data: unknown; message?: string } }
}

describe("a storage disabled behind the tool's back (`pvesm set local --disable 1`)", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(
      testScenario({
        ipPool: "127.91.7.10",
        vms: [{ vmid: 100, node: "pve", name: "runs", status: "running", config: { memory: 512, cores: 1 } }]
      })
    )
  })
  afterAll(async () => {
    await sim.stop()
  })

  it("is left out of /cluster/resources on every node (pve-manager skips what storage_check_enabled refuses), its content is refused, a running VM runs on; enabled again, it is back", async () => {
    const storages = async () =>
      ((await get(sim, "/cluster/resources?type=storage")).body.data as Array<Record<string, unknown>>)
        .map((e) => `${e.node}/${e.storage}`)
        .sort()
    const before = await storages()
    assert.include(before, "pve/local")
    sim.setStorageEnabled("local", false)
    assert.deepStrictEqual(
      await storages(),
      before.filter((s) => !s.endsWith("/local"))
    )
    const content = await get(sim, "/nodes/pve/storage/local/content")
    assert.deepStrictEqual([content.status, content.body.message], [500, "storage 'local' is disabled\n"])
    assert.strictEqual(sim.state().vms.find((v) => v.vmid === 100)?.status, "running")
    sim.setStorageEnabled("local", true)
    assert.deepStrictEqual(await storages(), before)
    assert.throws(() => sim.setStorageEnabled("nope", false), "no storage 'nope' in the scenario")
  })

  it("is listed by the node's storage status as pve-storage's storage_info lists it: enabled 0, never activated (active 0, no sizes), and left out under a content filter", async () => {
    sim.setStorageEnabled("local", false)
    const listed = (await get(sim, "/nodes/pve/storage")).body.data as Array<Record<string, unknown>>
    const local = listed.find((s) => s.storage === "local")
    assert.deepStrictEqual(
      { ...local, content: undefined },
      {
        storage: "local",
        type: "dir",
        content: undefined,
        shared: 0,
        enabled: 0,
        active: 0,
        total: 0,
        used: 0,
        avail: 0
      }
    )
    // `next if !$want_ctype || !$storage_enabled` under a content filter
    const images = (await get(sim, "/nodes/pve/storage?content=iso,import")).body.data as Array<Record<string, unknown>>
    assert.notInclude(
      images.map((s) => s.storage),
      "local"
    )
    const filtered = await get(sim, "/nodes/pve/storage?storage=local&content=iso")
    assert.deepStrictEqual(
      [filtered.status, filtered.body],
      [400, { data: null, errors: { storage: "No such storage." }, message: "Parameter verification failed.\n" }]
    )
    assert.strictEqual(
      ((await get(sim, "/nodes/pve/storage?enabled=1")).body.data as Array<Record<string, unknown>>).some(
        (s) => s.storage === "local"
      ),
      false
    )
    const status = await get(sim, "/nodes/pve/storage/local/status")
    assert.deepStrictEqual([status.status, (status.body.data as Record<string, unknown>).active], [200, 0])
    sim.setStorageEnabled("local", true)
    const again = (await get(sim, "/nodes/pve/storage")).body.data as Array<Record<string, unknown>>
    assert.deepInclude(
      again.map((s) => [s.storage, s.enabled, s.active]),
      ["local", 1, 1]
    )
  })
})
