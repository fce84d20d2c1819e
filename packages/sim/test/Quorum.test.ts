import { readFileSync } from "node:fs"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type Scenario, type SimHandle, startSimPromise } from "../src/index.js"
import { pxClient, raw, sshExec, testScenario, waitTask } from "./helpers.js"

const token = (sim: SimHandle) => `PVEAPIToken=${sim.info.auth.tokenId}=${sim.info.auth.tokenSecret}`

/** `pve` up, `pve2` and `pve3` as `online` says: three votes expected (one more with a QDevice). */
const threeNodes = (online: boolean, over: Partial<Scenario> = {}): Scenario => {
  const base = testScenario({
    ipPool: "127.91.3.10",
    vms: [
      { vmid: 100, node: "pve", name: "stopped", status: "stopped", config: { memory: 512, cores: 1 } },
      { vmid: 101, node: "pve", name: "other", status: "stopped", config: { memory: 512, cores: 1 } }
    ],
    ...over
  })
  const second = base.nodes[1] as Scenario["nodes"][number]
  return {
    ...base,
    nodes: [base.nodes[0] as Scenario["nodes"][number], { ...second, online }, { ...second, name: "pve3", online }]
  }
}

const form = (sim: SimHandle, method: string, path: string, body: string) =>
  raw(sim, method, path, {
    body,
    headers: { Authorization: token(sim), "Content-Type": "application/x-www-form-urlencoded" }
  })

const clusterEntry = async (sim: SimHandle) => {
  const r = await raw(sim, "GET", "/api2/json/cluster/status")
  assert.strictEqual(r.status, 200)
  return (JSON.parse(r.body).data as Array<Record<string, unknown>>).find((e) => e.type === "cluster")
}

describe("quorum: three nodes, two of them off", () => {
  let sim: SimHandle
  let pvesh: (cmd: string) => Promise<{ stdout: string; stderr: string; code: number }>
  beforeAll(async () => {
    sim = await startSimPromise(threeNodes(false))
    const key = readFileSync(sim.info.sshPrivateKeyPath, "utf8")
    const node = sim.info.nodes[0]
    pvesh = (cmd) => sshExec(node?.ssh.host ?? "", node?.ssh.port ?? 0, "root", key, cmd)
  })
  afterAll(async () => {
    await sim.stop()
  })

  it("GET /cluster/status says quorate 0; reads still work", async () => {
    assert.strictEqual((await clusterEntry(sim))?.quorate, 0)
    const cfg = await raw(sim, "GET", "/api2/json/nodes/pve/qemu/100/config")
    assert.strictEqual(cfg.status, 200)
    assert.strictEqual((await raw(sim, "GET", "/api2/json/cluster/resources")).status, 200)
  })

  it("create and start fail with check_cfs_quorum's 500 `cluster not ready - no quorum?`", async () => {
    const create = await form(sim, "POST", "/api2/json/nodes/pve/qemu", "vmid=200&name=new&memory=512")
    assert.strictEqual(create.status, 500)
    assert.strictEqual(create.statusText, "cluster not ready - no quorum?")
    assert.notInclude(
      sim.state().vms.map((v) => v.vmid),
      200
    )
    const start = await form(sim, "POST", "/api2/json/nodes/pve/qemu/100/status/start", "")
    assert.strictEqual(start.status, 500)
    assert.strictEqual(start.statusText, "cluster not ready - no quorum?")
  })

  it("a config update fails on its write to read-only /etc/pve; the config stays as it was", async () => {
    const set = await form(sim, "PUT", "/api2/json/nodes/pve/qemu/100/config", "cores=2")
    assert.strictEqual(set.status, 500)
    assert.match(
      set.statusText,
      /^unable to open file '\/etc\/pve\/nodes\/pve\/qemu-server\/100\.conf\.tmp\.\d+' - Permission denied$/
    )
    assert.strictEqual(
      (sim.state().vms.find((v) => v.vmid === 100)?.config as Record<string, unknown> | undefined)?.cores,
      "1"
    )
  })

  it("a destroy's task fails on its config write: the VM and its config stay", async () => {
    const del = await raw(sim, "DELETE", "/api2/json/nodes/pve/qemu/101")
    assert.strictEqual(del.status, 200)
    const upid = JSON.parse(del.body).data as string
    const stopped = await waitTask(pxClient(sim), "pve", upid)
    assert.match(String(stopped.exitstatus), /^unable to open file '\/etc\/pve\/nodes\/pve\/qemu-server\/101\.conf/)
    assert.include(
      sim.state().vms.map((v) => v.vmid),
      101
    )
  })

  it("over SSH, pvesh and qm print the same text and exit non-zero", async () => {
    const create = await pvesh("pvesh create /nodes/pve/qemu --vmid 201 --name new --memory 512")
    assert.notStrictEqual(create.code, 0)
    assert.include(create.stderr, "cluster not ready - no quorum?")
    const start = await pvesh("qm start 100")
    assert.notStrictEqual(start.code, 0)
    assert.include(start.stderr, "cluster not ready - no quorum?")
  })
})

describe("quorum: votes", () => {
  const quorateOf = async (scenario: Scenario, change?: (sim: SimHandle) => void) => {
    const sim = await startSimPromise(scenario)
    try {
      change?.(sim)
      return (await clusterEntry(sim))?.quorate
    } finally {
      await sim.stop()
    }
  }

  it("every node online is quorate; a QDevice's vote keeps two of three expected; `pvecm expected 1` lets one node on", async () => {
    assert.strictEqual(await quorateOf(threeNodes(true)), 1)
    const twoNodes = (over: Partial<Scenario>) => {
      const s = testScenario({ ipPool: "127.91.4.10", ...over })
      return {
        ...s,
        nodes: [
          s.nodes[0] as Scenario["nodes"][number],
          { ...(s.nodes[1] as Scenario["nodes"][number]), online: false }
        ]
      }
    }
    assert.strictEqual(await quorateOf(twoNodes({})), 0)
    assert.strictEqual(await quorateOf(twoNodes({ quorum: { qdevice: true } })), 1)
    assert.strictEqual(await quorateOf(threeNodes(false, { quorum: { expected: 1 } })), 1)
  })

  it("a node taken offline while the sim runs takes its vote with it", async () => {
    assert.strictEqual(
      await quorateOf(threeNodes(true), (sim) => {
        sim.setNodeOnline("pve2", false)
        sim.setNodeOnline("pve3", false)
      }),
      0
    )
  })
})
