import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { stringify } from "yaml"
import type { SimHandle } from "../src/index.js"
import { runBin } from "../src/internal/BinMain.js"
import { pxClient, testScenario, waitTask } from "./helpers.js"

describe("homelab-sim entry point, ready file and admin API", () => {
  let sim: SimHandle
  let ready: Record<string, unknown>
  const dir = mkdtempSync(join(tmpdir(), "sim-bin-"))
  beforeAll(async () => {
    const file = join(dir, "scenario.yaml")
    writeFileSync(file, stringify(testScenario({ ipPool: "127.77.6.10" })))
    const r = await runBin(["--scenario", file, "--ready-file", join(dir, "ready.json"), "--time-scale", "0.01"])
    if ("help" in r) throw new Error("help")
    sim = r.sim
    ready = JSON.parse(readFileSync(join(dir, "ready.json"), "utf8")) as Record<string, unknown>
    assert.strictEqual(r.doc, JSON.stringify(ready))
  })
  afterAll(async () => {
    await sim.stop()
  })

  it("ready file has the documented fields; the key file is 0600", () => {
    const nodes = ready.nodes as Array<Record<string, unknown>>
    assert.deepStrictEqual(
      nodes.map((n) => n.name),
      ["pve", "pve2"]
    )
    assert.match(String(nodes[0]?.api), /^https:\/\/127\.0\.0\.1:\d+$/)
    assert.deepStrictEqual(Object.keys(nodes[0]?.ssh as object), ["host", "port"])
    assert.match(String(nodes[0]?.fingerprint), /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
    assert.match(String(ready.ca), /^-----BEGIN CERTIFICATE-----/)
    assert.match(String(ready.admin), /^http:\/\/127\.0\.0\.1:\d+$/)
    const auth = ready.auth as { tokenId: string; tokenSecret: string }
    assert.strictEqual(auth.tokenId, "root@pam!homelab")
    assert.match(auth.tokenSecret, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    assert.strictEqual(ready.sshUser, "root")
    assert.strictEqual(statSync(String(ready.sshPrivateKeyPath)).mode & 0o777, 0o600)
  })

  it("admin: /state, /requests (no token secret), faults and forced VM status", async () => {
    const admin = String(ready.admin)
    const px = pxClient(sim)
    await px.version.$get()
    const reqs = (await (await fetch(`${admin}/requests`)).json()) as Array<Record<string, unknown>>
    const v = reqs.find((r) => r.path === "/version")
    assert.deepStrictEqual(
      [v?.node, v?.transport, v?.method, v?.status, v?.user],
      ["pve", "api", "GET", 200, "root@pam!homelab"]
    )
    const text = JSON.stringify(reqs)
    assert.notInclude(text, sim.info.auth.tokenSecret)
    assert.strictEqual((await fetch(`${admin}/requests`, { method: "DELETE" })).status, 200)
    assert.deepStrictEqual(await (await fetch(`${admin}/requests`)).json(), [])

    const bad = await fetch(`${admin}/faults`, { method: "POST", body: JSON.stringify({ kind: "apiDown" }) })
    assert.strictEqual(bad.status, 400)
    assert.match(((await bad.json()) as { error: string }).error, /node/)
    const add = await fetch(`${admin}/faults`, {
      method: "POST",
      body: JSON.stringify([{ kind: "proxy596", node: "pve2" }])
    })
    assert.strictEqual(add.status, 200)
    const e = await px.nodes
      .$("pve2")
      .qemu.$get()
      .catch((x: Error) => x.message)
    assert.match(String(e), /596/)
    await fetch(`${admin}/faults?kind=proxy596`, { method: "DELETE" })
    assert.deepStrictEqual(await px.nodes.$("pve2").qemu.$get(), [])

    const created = await px.nodes.$("pve").qemu.$post({ vmid: 130, name: "forced" })
    assert.strictEqual((await waitTask(px, "pve", created)).exitstatus, "OK")
    const f = await fetch(`${admin}/vms/130/status`, {
      method: "POST",
      body: JSON.stringify({ status: "running", qmpstatus: "prelaunch" })
    })
    assert.strictEqual(f.status, 200)
    const state = (await (await fetch(`${admin}/state`)).json()) as { vms: Array<Record<string, unknown>> }
    const vm = state.vms.find((x) => x.vmid === 130)
    assert.deepStrictEqual([vm?.status, vm?.qmpstatus, vm?.name], ["running", "prelaunch", "forced"])
  })
})
