import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { type SimHandle, startSim, startSimPromise } from "../src/index.js"
import { type Px, pxClient, raw, testScenario, waitTask } from "./helpers.js"

describe("PVE 7.4 behaviours (version knob)", () => {
  let sim: SimHandle
  let px: Px
  beforeAll(async () => {
    sim = await startSimPromise(
      testScenario({
        ipPool: "127.77.7.10",
        pveVersion: "7.4.3",
        vms: [
          {
            vmid: 100,
            node: "pve",
            status: "stopped",
            config: { memory: "1024", scsi0: "local-lvm:vm-100-disk-0,size=4G" }
          }
        ]
      })
    )
    px = pxClient(sim)
  })
  afterAll(async () => {
    await sim.stop()
  })

  it("memory is a number, resize returns null, errors have no message key", async () => {
    const cfg = (await px.nodes.$("pve").qemu.$(100).config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(cfg.memory, 1024)
    const r = await raw(sim, "PUT", "/api2/json/nodes/pve/qemu/100/resize", {
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "disk=scsi0&size=%2B1G"
    })
    assert.deepStrictEqual([r.status, r.body], [200, '{"data":null}'])
    assert.strictEqual(
      ((await px.nodes.$("pve").qemu.$(100).config.$get()) as unknown as Record<string, unknown>).scsi0,
      "local-lvm:vm-100-disk-0,size=5G"
    )
    const e = await raw(sim, "DELETE", "/api2/json/nodes/pve/qemu/999")
    assert.strictEqual(e.body, '{"data":null}')
    const imp = await raw(sim, "POST", "/api2/json/nodes/pve/qemu", {
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ vmid: 101, scsi0: "local-lvm:0,import-from=local:import/x.qcow2" })
    })
    assert.strictEqual(
      imp.body,
      '{"data":null,"errors":{"scsi0":"local:import/x.qcow2 has wrong type \'import\' - not an image"}}'
    )
  })
})

describe("PVE 9 behaviours and the scoped Effect API", () => {
  it.effect("stock local has import content; servers close with the scope", () =>
    Effect.gen(function* () {
      const sc = testScenario({ ipPool: "127.77.8.10", pveVersion: "9.0.5" })
      const nodes = sc.nodes.map((n) => {
        const { storages: _s, ...rest } = n
        return rest
      })
      const info = yield* Effect.scoped(
        Effect.gen(function* () {
          const sim = yield* startSim({ ...sc, nodes })
          const px = pxClient(sim)
          const st = yield* Effect.promise(() => px.nodes.$("pve").storage.$get())
          assert.deepStrictEqual(
            st.map((s) => [s.storage, s.content]),
            [
              ["local", "backup,import,iso,vztmpl"],
              ["local-lvm", "images,rootdir"]
            ]
          )
          const upload = yield* Effect.promise(() => uploadIso(sim))
          assert.match(upload, /^UPID:pve:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:imgcopy::root@pam!homelab:$/)
          const s = yield* Effect.promise(() => waitTask(px, "pve", upload))
          assert.strictEqual(s.exitstatus, "OK")
          // the file part's name is the request's `filename` parameter (pve-http-server's multipart parser)
          assert.deepStrictEqual(sim.requests().findLast((r) => r.path === "/nodes/pve/storage/local/upload")?.params, {
            content: "iso",
            filename: "my disk.iso"
          })
          const log = yield* Effect.promise(() => px.nodes.$("pve").tasks.$(upload).log.$get())
          assert.strictEqual(log.at(-2)?.t, "finished file import successfully")
          const content = yield* Effect.promise(() =>
            px.nodes.$("pve").storage.$("local").content.$get({ content: "iso" })
          )
          assert.deepStrictEqual(
            content.map((c) => [c.volid, c.size]),
            [["local:iso/my_disk.iso", 11]]
          )
          return sim.info
        })
      )
      const u = new URL(info.nodes[0]?.api ?? "")
      const closed = yield* Effect.promise(
        () =>
          new Promise<string>((resolve) => {
            import("node:net").then((net) => {
              const s = net.connect(Number(u.port), u.hostname)
              s.on("connect", () => {
                s.destroy()
                resolve("open")
              })
              s.on("error", (e: Error & { code?: string }) => resolve(e.code ?? "error"))
            })
          })
      )
      assert.strictEqual(closed, "ECONNREFUSED")
    })
  )
})

const uploadIso = async (sim: SimHandle): Promise<string> => {
  const boundary = "----simboundary"
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="content"\r\n\r\niso\r\n`),
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="filename"; filename="my disk.iso"\r\nContent-Type: application/octet-stream\r\n\r\n`
    ),
    Buffer.from("hello world"),
    Buffer.from(`\r\n--${boundary}--\r\n`)
  ])
  const r = await raw(sim, "POST", "/api2/json/nodes/pve/storage/local/upload", {
    headers: { "Content-Type": `multipart/form-data; boundary=${boundary}` },
    body
  })
  if (r.status !== 200) throw new Error(`${r.status} ${r.statusText}`)
  return (JSON.parse(r.body) as { data: string }).data
}

describe("a cluster in the middle of a rolling upgrade (nodes[].pveVersion)", () => {
  let sim: SimHandle
  let px: Px
  beforeAll(async () => {
    const sc = testScenario({ ipPool: "127.77.9.10", pveVersion: "9.1.1" })
    sim = await startSimPromise({
      ...sc,
      nodes: sc.nodes.map((n) =>
        n.name === "pve2"
          ? {
              ...n,
              pveVersion: "8.3.2",
              storages: [{ id: "local", type: "dir", content: ["iso", "import"], capacity: "100G" }]
            }
          : n
      ),
      vms: [{ vmid: 100, node: "pve2", status: "stopped", config: { memory: "1024" } }]
    })
    px = pxClient(sim)
  })
  afterAll(async () => {
    await sim.stop()
  })

  it("each node answers with its own version, through any node's API", async () => {
    const version = async (path: string, nodeIndex: number) =>
      JSON.parse((await raw(sim, "GET", `/api2/json${path}`, { nodeIndex })).body).data.version
    assert.deepStrictEqual(
      [await version("/version", 0), await version("/version", 1)],
      ["9.1.1", "8.3.2"],
      "GET /version: the node whose API answers"
    )
    assert.deepStrictEqual(
      [await version("/nodes/pve2/version", 0), await version("/nodes/pve/version", 1)],
      ["8.3.2", "9.1.1"],
      "GET /nodes/{node}/version: that node's, proxied"
    )
  })

  it("a request proxied to a node gets that node's behaviour", async () => {
    // download-url with content import takes a .qcow2 from PVE 8.4 on only: pve2 (8.3) refuses it through pve's API
    const download = (node: string) =>
      raw(sim, "POST", `/api2/json/nodes/${node}/storage/local/download-url`, {
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          content: "import",
          filename: "noble.qcow2",
          url: `${sim.info.imageOrigin?.url}/img/noble.qcow2`
        })
      })
    const old = await download("pve2")
    assert.strictEqual(old.status, 400)
    assert.match(old.body, /invalid filename or wrong extension/)
    const current = await download("pve")
    assert.strictEqual(current.status, 200)
    // memory is a string from 8.1 on: both nodes answer with a string
    const cfg = (await px.nodes.$("pve2").qemu.$(100).config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(cfg.memory, "1024")
  })
})
