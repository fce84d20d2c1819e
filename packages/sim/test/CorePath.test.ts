import { readFileSync } from "node:fs"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type SimHandle, startSimPromise } from "../src/index.js"
import { type Px, pxClient, sshExec, testScenario, until, waitTask } from "./helpers.js"

describe("core path: proxmox-api + guest SSH", () => {
  let sim: SimHandle
  let px: Px
  beforeAll(async () => {
    sim = await startSimPromise(testScenario({ ipPool: "127.77.1.10" }))
    px = pxClient(sim)
  })
  afterAll(async () => {
    await sim.stop()
  })

  it("lists nodes with fingerprints and cluster resources", async () => {
    const nodes = await px.nodes.$get()
    assert.deepStrictEqual(
      nodes.map((n) => n.node),
      ["pve", "pve2"]
    )
    assert.strictEqual(nodes[0]?.ssl_fingerprint, sim.info.nodes[0]?.fingerprint)
    assert.match(String(nodes[0]?.ssl_fingerprint), /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
    const res = await px.cluster.resources.$get({ type: "node" })
    assert.strictEqual(res.length, 2)
    assert.strictEqual(await px.cluster.nextid.$get(), "100" as unknown as number)
  })

  it("downloads an image, creates a VM with import-from, boots it, finds its IP and SSHes in, destroys it", async () => {
    const origin = sim.info.imageOrigin?.files.find((f) => f.path.endsWith(".qcow2"))
    assert.isDefined(origin)
    const dl = await px.nodes
      .$("pve")
      .storage.$("local")
      ["download-url"].$post({ url: origin?.url ?? "", content: "import" as never, filename: "noble.qcow2" })
    const dls = await waitTask(px, "pve", dl)
    assert.strictEqual(dls.exitstatus, "OK")
    const content = await px.nodes.$("pve").storage.$("local").content.$get({ content: "import" })
    assert.deepStrictEqual(
      content.map((c) => c.volid),
      ["local:import/noble.qcow2"]
    )

    const pub = readFileSync(`${sim.info.sshPrivateKeyPath}.pub`, "utf8")
    const upid = await px.nodes.$("pve").qemu.$post({
      vmid: 101,
      name: "web1",
      memory: "2048" as never,
      cores: 2,
      scsihw: "virtio-scsi-single",
      scsi0: "local-lvm:0,import-from=local:import/noble.qcow2,discard=on,ssd=1",
      ide2: "local-lvm:cloudinit",
      net0: "virtio,bridge=vmbr0",
      agent: "1",
      ciuser: "ubuntu",
      ipconfig0: "ip=dhcp",
      sshkeys: encodeURIComponent(pub),
      tags: "Prod;k8s,prod"
    })
    assert.match(upid, /^UPID:pve:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:qmcreate:101:root@pam!homelab:$/)
    const cs = await waitTask(px, "pve", upid)
    assert.strictEqual(cs.exitstatus, "OK")
    const cfg = (await px.nodes.$("pve").qemu.$(101).config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(cfg.memory, "2048")
    assert.strictEqual(cfg.cores, 2)
    assert.strictEqual(cfg.agent, "1")
    assert.strictEqual(cfg.tags, "k8s;prod")
    assert.strictEqual(cfg.scsi0, "local-lvm:vm-101-disk-0,discard=on,size=2M,ssd=1")
    assert.strictEqual(cfg.ide2, "local-lvm:vm-101-cloudinit,media=cdrom")
    assert.strictEqual(cfg.boot, "order=scsi0;ide2;net0")
    assert.match(String(cfg.net0), /^virtio=BC:24:11:[0-9A-F]{2}:[0-9A-F]{2}:[0-9A-F]{2},bridge=vmbr0$/)
    assert.strictEqual(cfg.sshkeys, encodeURIComponent(pub))

    const start = await px.nodes.$("pve").qemu.$(101).status.start.$post()
    assert.strictEqual((await waitTask(px, "pve", start)).exitstatus, "OK")
    const mac = String(cfg.net0)
      .slice("virtio=".length, "virtio=".length + 17)
      .toLowerCase()
    const ip = await until(async () => {
      const r = (await px.nodes.$("pve").qemu.$(101).agent["network-get-interfaces"].$get()) as unknown as {
        result: Array<{
          "hardware-address": string
          "ip-addresses"?: Array<{ "ip-address-type": string; "ip-address": string }>
        }>
      }
      const nic = r.result.find((n) => n["hardware-address"] === mac)
      return nic?.["ip-addresses"]?.find((a) => a["ip-address-type"] === "ipv4")?.["ip-address"]
    })
    assert.strictEqual(ip, "127.77.1.10")
    const port = await until(async () => {
      const vm = sim.state().vms.find((v) => v.vmid === 101)
      return (vm?.guestSshPort as number | null) ?? undefined
    })
    const key = readFileSync(sim.info.sshPrivateKeyPath, "utf8")
    const r = await until(async () =>
      sshExec(ip, port, "ubuntu", key, "cloud-init status --wait >/dev/null && hostname")
    )
    assert.deepStrictEqual(r, { stdout: "web1\n", stderr: "", code: 0 })
    sim.guestCommands.register("k3s", (ctx) => {
      ctx.guest.services.set("k3s", "active")
      return { stdout: `k3s ${ctx.argv.slice(1).join(" ")} on ${ctx.guest.hostname} as ${ctx.user}\n`, code: 0 }
    })
    assert.deepStrictEqual(
      await sshExec(ip, port, "ubuntu", key, "sudo -n k3s server --cluster-init && systemctl is-active k3s"),
      {
        stdout: "k3s server --cluster-init on web1 as root\nactive\n",
        stderr: "",
        code: 0
      }
    )
    assert.deepStrictEqual(await sshExec(ip, port, "ubuntu", key, "kubectl get nodes"), {
      stdout: "",
      stderr: "bash: kubectl: command not found\n",
      code: 127
    })
    const guestLog = sim.requests().filter((e) => e.transport === "guest-ssh")
    assert.isTrue(guestLog.some((e) => e.vmid === 101 && e.command === "kubectl get nodes" && e.exitCode === 127))

    const stop = await px.nodes.$("pve").qemu.$(101).status.stop.$post()
    assert.strictEqual((await waitTask(px, "pve", stop)).exitstatus, "OK")
    const del = await px.nodes.$("pve").qemu.$(101).$delete({ purge: true, "destroy-unreferenced-disks": true })
    assert.strictEqual((await waitTask(px, "pve", del)).exitstatus, "OK")
    const list = await px.nodes.$("pve").qemu.$get()
    assert.deepStrictEqual(list, [])
    const err = await sshExec(ip, port, "ubuntu", key, "hostname").then(
      () => "connected",
      (e: Error & { code?: string }) => e.code
    )
    assert.strictEqual(err, "ECONNREFUSED")
  })
})
