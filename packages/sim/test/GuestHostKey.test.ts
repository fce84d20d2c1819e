import { readFileSync } from "node:fs"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import ssh2 from "ssh2"
import { type SimHandle, startSimPromise } from "../src/index.js"
import { type Px, pxClient, sshExec, testScenario, until, waitTask } from "./helpers.js"

const { Client } = ssh2

// cloud-init generates a guest's SSH host keys at the instance's first boot: two VMs never share one, and a VM
// destroyed and created again at the same (static) address presents a new key there, which is what makes a
// rebuilt VM's `known_hosts` entry stale.

/** The host key (base64 blob) a guest presents, read from the handshake. */
const presentedKey = (host: string, port: number, privateKey: string): Promise<string> =>
  new Promise((resolve, reject) => {
    let key = ""
    const c = new Client()
    c.on("ready", () => {
      c.end()
      resolve(key)
    })
    c.on("error", reject)
    c.connect({
      host,
      port,
      username: "ubuntu",
      privateKey,
      readyTimeout: 30_000,
      hostVerifier: (k: Buffer) => {
        key = k.toString("base64")
        return true
      }
    })
  })

describe("guest SSH host keys", () => {
  let sim: SimHandle
  let px: Px
  let key: string
  beforeAll(async () => {
    sim = await startSimPromise(testScenario({ ipPool: "127.77.2.10" }))
    px = pxClient(sim)
    key = readFileSync(sim.info.sshPrivateKeyPath, "utf8")
  })
  afterAll(async () => {
    await sim.stop()
  })

  const pub = () => readFileSync(`${sim.info.sshPrivateKeyPath}.pub`, "utf8")

  /** Create VM `vmid` with a static address, start it, and return the host key its guest presents. */
  const boot = async (vmid: number, ip: string): Promise<{ presented: string; file: string }> => {
    const create = await px.nodes.$("pve").qemu.$post({
      vmid,
      name: `vm${vmid}`,
      memory: "512" as never,
      scsi0: "local-lvm:1",
      ide2: "local-lvm:cloudinit",
      net0: "virtio,bridge=vmbr0",
      agent: "1",
      ciuser: "ubuntu",
      ipconfig0: `ip=${ip}/24`,
      sshkeys: encodeURIComponent(pub())
    })
    assert.strictEqual((await waitTask(px, "pve", create)).exitstatus, "OK")
    const start = await px.nodes.$("pve").qemu.$(vmid).status.start.$post()
    assert.strictEqual((await waitTask(px, "pve", start)).exitstatus, "OK")
    const port = await until(async () => {
      const vm = sim.state().vms.find((v) => v.vmid === vmid)
      return (vm?.guestSshPort as number | null) ?? undefined
    })
    const presented = await until(() => presentedKey(ip, port, key).catch(() => undefined))
    const file = await sshExec(ip, port, "ubuntu", key, "cat /etc/ssh/ssh_host_ed25519_key.pub")
    return { presented, file: file.stdout }
  }

  const destroy = async (vmid: number) => {
    const stop = await px.nodes.$("pve").qemu.$(vmid).status.stop.$post()
    assert.strictEqual((await waitTask(px, "pve", stop)).exitstatus, "OK")
    const del = await px.nodes.$("pve").qemu.$(vmid).$delete({ purge: true })
    assert.strictEqual((await waitTask(px, "pve", del)).exitstatus, "OK")
  }

  it("every VM has its own; a VM rebuilt at the same address presents a new one; the key file says which", async () => {
    const a = await boot(301, "127.77.2.31")
    const b = await boot(302, "127.77.2.32")
    assert.notStrictEqual(a.presented, b.presented)
    assert.match(a.file, new RegExp(`^ssh-ed25519 ${a.presented.replace(/[+/]/g, "\\$&")} root@vm301\\n$`))

    await destroy(301)
    const rebuilt = await boot(301, "127.77.2.31")
    assert.notStrictEqual(rebuilt.presented, a.presented, "a rebuilt VM keeps its old host key")
    assert.notStrictEqual(rebuilt.presented, b.presented)
  })
})
