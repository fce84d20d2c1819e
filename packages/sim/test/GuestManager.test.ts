import { readFileSync } from "node:fs"
import * as net from "node:net"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type SimHandle, startSimPromise } from "../src/index.js"
import { type Px, pxClient, testScenario, until, waitTask } from "./helpers.js"

const IP = "127.77.8.31"

describe("guest SSH that cannot listen", () => {
  let sim: SimHandle
  let px: Px
  let blocker: net.Server
  let port: number
  beforeAll(async () => {
    // another process holds the guest's address and SSH port
    blocker = net.createServer()
    port = await new Promise<number>((resolve) =>
      blocker.listen(0, IP, () => resolve((blocker.address() as net.AddressInfo).port))
    )
    sim = await startSimPromise(testScenario({ ipPool: "127.77.8.10", guestSshPort: port }))
    px = pxClient(sim)
  })
  afterAll(async () => {
    await sim.stop()
    await new Promise((resolve) => blocker.close(resolve))
  })

  const vm = () => sim.state().vms.find((v) => v.vmid === 401)
  const power = async (verb: "start" | "stop") => {
    const upid = await px.nodes.$("pve").qemu.$(401).status[verb].$post()
    assert.strictEqual((await waitTask(px, "pve", upid)).exitstatus, "OK")
  }

  it("says why in /state (guestSshError) while the VM runs; a later boot with the address free listens", async () => {
    const create = await px.nodes.$("pve").qemu.$post({
      vmid: 401,
      name: "taken",
      scsi0: "local-lvm:1",
      ide2: "local-lvm:cloudinit",
      net0: "virtio,bridge=vmbr0",
      agent: "1",
      ciuser: "ubuntu",
      ipconfig0: `ip=${IP}/24`,
      sshkeys: encodeURIComponent(readFileSync(`${sim.info.sshPrivateKeyPath}.pub`, "utf8"))
    })
    assert.strictEqual((await waitTask(px, "pve", create)).exitstatus, "OK")
    await power("start")
    const error = await until(async () => (vm()?.guestSshError as string | null) ?? undefined)
    assert.match(error, new RegExp(`^${IP.replace(/\./g, "\\.")}:${port}: listen EADDRINUSE`))
    assert.strictEqual(vm()?.guestSshPort, null)

    await power("stop")
    assert.strictEqual(vm()?.guestSshError, null)
    await new Promise((resolve) => blocker.close(resolve))
    await power("start")
    assert.strictEqual(await until(async () => (vm()?.guestSshPort as number | null) ?? undefined), port)
    assert.strictEqual(vm()?.guestSshError, null)
  })
})
