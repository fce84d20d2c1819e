import { readFileSync } from "node:fs"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import ssh2 from "ssh2"
import { type SimHandle, startSimPromise } from "../src/index.js"
import { type Px, pxClient, raw, sshExec, testScenario, until, waitTask } from "./helpers.js"

const AUD_SECRET = "6f1c8d2b-5b0f-4d2f-8e80-1b2c3d4e5f60"
const CLOUDINIT_VM = {
  agent: "1",
  ciuser: "ubuntu",
  ipconfig0: "ip=dhcp",
  ide2: "local-lvm:vm-VMID-cloudinit,media=cdrom"
}
const ciVm = (vmid: number, mac: string, extra: Record<string, string> = {}) => ({
  vmid,
  node: "pve",
  name: `vm${vmid}`,
  status: "stopped" as const,
  config: {
    ...CLOUDINIT_VM,
    ide2: `local-lvm:vm-${vmid}-cloudinit,media=cdrom`,
    net0: `virtio=${mac},bridge=vmbr0`,
    ...extra
  }
})

/** A key whose private half nobody here has. */
const OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvxKZ0g0Jm3lKk3QyPZt1sVq9bFv9t3k2n0P6cW7uX1 other@box"

/** The body of a failed raw request. */
const errorsOf = (r: { body: string }) => (JSON.parse(r.body) as { errors?: Record<string, string> }).errors

describe("qemu API behaviours", () => {
  let sim: SimHandle
  let px: Px
  let key: string
  let pub: string
  beforeAll(async () => {
    sim = await startSimPromise(
      testScenario({
        ipPool: "127.90.1.10",
        users: [{ userid: "auditor@pve", tokens: [{ id: "ro", secret: AUD_SECRET, privsep: false }] }],
        acls: [{ path: "/", ugid: "auditor@pve", role: "PVEAuditor" }],
        nodes: [
          {
            ...testScenario().nodes[0],
            name: "pve",
            storages: [
              {
                id: "local",
                type: "dir",
                content: ["iso", "vztmpl", "backup", "import", "snippets"],
                capacity: "100G",
                files: [
                  { volid: "local:import/noble.qcow2", size: "2M" },
                  { volid: "local:iso/tools.iso", size: "1M" }
                ]
              },
              { id: "local-lvm", type: "lvmthin", content: ["rootdir", "images"], capacity: "200G" }
            ]
          }
        ],
        vms: [
          ciVm(100, "BC:24:11:90:01:00"),
          {
            vmid: 101,
            node: "pve",
            name: "imported",
            status: "stopped",
            config: { unused0: "local-lvm:vm-101-disk-0" }
          },
          {
            vmid: 102,
            node: "pve",
            name: "no-acpi",
            status: "running",
            config: { net0: "virtio=BC:24:11:90:01:02,bridge=vmbr0" }
          },
          ciVm(103, "BC:24:11:90:01:03", { cicustom: "user=local:snippets/user-103.yaml" }),
          ciVm(104, "BC:24:11:90:01:04", { cicustom: "user=local:snippets/missing.yaml" }),
          ciVm(105, "BC:24:11:90:01:05", { cicustom: "user=local:iso/tools.iso" }),
          {
            vmid: 106,
            node: "pve",
            name: "sized",
            status: "running",
            config: {
              cores: 2,
              memory: "4096",
              balloon: "1024",
              cpu: "host",
              net0: "virtio=BC:24:11:90:01:06,bridge=vmbr0"
            }
          },
          {
            ...ciVm(107, "BC:24:11:90:01:07", { sshkeys: encodeURIComponent(`${OTHER_KEY}\n`) }),
            status: "running" as const
          },
          {
            vmid: 108,
            node: "pve",
            name: "wide",
            status: "stopped",
            config: { sockets: 2, cores: 6, vcpus: 2, net0: "virtio=BC:24:11:90:01:08,bridge=vmbr0" }
          },
          {
            vmid: 109,
            node: "pve",
            name: "ballooned",
            status: "stopped",
            config: { memory: "4096", balloon: "2048", net0: "virtio=BC:24:11:90:01:09,bridge=vmbr0" }
          },
          {
            vmid: 113,
            node: "pve",
            name: "hotmem",
            status: "stopped",
            config: {
              memory: "4864",
              hotplug: "network,disk,memory",
              net0: "virtio=BC:24:11:90:01:13,bridge=vmbr0"
            }
          },
          {
            vmid: 114,
            node: "pve",
            name: "hotmem-running",
            status: "running",
            config: {
              memory: "4608",
              numa: "1",
              hotplug: "network,disk,memory",
              net0: "virtio=BC:24:11:90:01:14,bridge=vmbr0"
            }
          },
          ...[130, 131, 132].map((vmid) => ({
            vmid,
            node: "pve",
            name: `nics${vmid}`,
            status: vmid === 131 ? ("stopped" as const) : ("running" as const),
            config: {
              net0: `virtio=BC:24:11:90:02:${vmid - 100},bridge=vmbr0`,
              ...(vmid === 132 ? { hotplug: "disk,usb" } : {})
            }
          }))
        ]
      })
    )
    px = pxClient(sim)
    key = readFileSync(sim.info.sshPrivateKeyPath, "utf8")
    pub = readFileSync(`${sim.info.sshPrivateKeyPath}.pub`, "utf8").trim()
  })
  afterAll(async () => {
    await sim.stop()
  })

  const guestPort = (vmid: number) =>
    until(async () => {
      const vm = sim.state().vms.find((v) => v.vmid === vmid)
      const port = vm?.guestSshPort as number | null | undefined
      return port === null || port === undefined || vm?.ip === null ? undefined : { ip: vm?.ip as string, port }
    })

  const post = (path: string, body: Record<string, string>) =>
    raw(sim, "POST", `/api2/json${path}`, {
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(body).toString()
    })

  it("POST config writes the settings under the config lock before the UPID returns: a start right after applies them", async () => {
    // the qmconfig task never finishes: whatever it does after writing the config cannot matter
    await sim.addFaults([{ kind: "taskHang", taskType: "qmconfig", vmid: 100 }])
    const r = await post("/nodes/pve/qemu/100/config", { sshkeys: encodeURIComponent(`${pub}\n`) })
    assert.strictEqual(r.status, 200)
    const upid = (JSON.parse(r.body) as { data: string }).data
    // no wait for the qmconfig task: the config already has the keys, and a start sent now boots with them
    const cfg = (await px.nodes.$("pve").qemu.$(100).config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(cfg.sshkeys, encodeURIComponent(`${pub}\n`))
    const start = await px.nodes.$("pve").qemu.$(100).status.start.$post()
    assert.strictEqual((await waitTask(px, "pve", start)).exitstatus, "OK")
    await sim.clearFaults({ kind: "taskHang" })
    await px.nodes.$("pve").tasks.$(upid).$delete()
    const { ip, port } = await guestPort(100)
    const out = await until(() => sshExec(ip, port, "ubuntu", key, "hostname"))
    assert.deepStrictEqual(out, { stdout: "vm100\n", stderr: "", code: 0 })
  })

  it("a paused VM's guest does not answer SSH (no banner) until it is resumed", async () => {
    const { ip, port } = await guestPort(100)
    sim.setVmStatus(100, { qmpstatus: "paused" })
    const connect = (timeout: number) =>
      new Promise<string>((resolve) => {
        const c = new ssh2.Client()
        c.on("ready", () => {
          c.end()
          resolve("ready")
        })
        c.on("error", (e) => resolve(e.message))
        c.connect({ host: ip, port, username: "ubuntu", privateKey: key, readyTimeout: timeout })
      })
    assert.strictEqual(await connect(300), "Timed out while waiting for handshake")
    // a connection made while paused goes on once the vCPUs run again
    const pending = connect(5_000)
    sim.setVmStatus(100, { qmpstatus: "running" })
    assert.strictEqual(await pending, "ready")
  })

  it("a running VM whose NIC's link is set down (link_down=1, applied at once) answers no SSH until it is up again; its guest agent still answers", async () => {
    const { ip, port } = await guestPort(100)
    const config = px.nodes.$("pve").qemu.$(100).config
    const net0 = ((await config.$get()) as unknown as Record<string, string>).net0 as string
    const connect = (timeout: number) =>
      new Promise<string>((resolve) => {
        const c = new ssh2.Client()
        c.on("ready", () => {
          c.end()
          resolve("ready")
        })
        c.on("error", (e) => resolve(e.message))
        c.connect({ host: ip, port, username: "ubuntu", privateKey: key, readyTimeout: timeout })
      })
    await config.$put({ net0: `${net0},link_down=1` } as never)
    const current = (await px.nodes.$("pve").qemu.$(100).pending.$get()) as unknown as Array<Record<string, unknown>>
    assert.deepStrictEqual(
      current.find((e) => e.key === "net0"),
      { key: "net0", value: `${net0},link_down=1` },
      "in effect now, whatever the hotplug features (qemu_set_link_status)"
    )
    assert.strictEqual(await connect(300), "Timed out while waiting for handshake")
    // the guest agent's channel is a virtio serial port, not the NIC
    const ping = await raw(sim, "POST", "/api2/json/nodes/pve/qemu/100/agent/ping")
    assert.strictEqual(ping.status, 200, ping.body)
    // a connection made while the link is down goes on once it is up again
    const pending = connect(5_000)
    await config.$put({ net0 } as never)
    assert.strictEqual(await pending, "ready")
  })

  it("an unusedN entry disappears once its volume is attached; resize reads the volume's real size", async () => {
    await px.nodes
      .$("pve")
      .qemu.$(101)
      .config.$put({ scsi0: "local-lvm:vm-101-disk-0" } as never)
    const cfg = (await px.nodes.$("pve").qemu.$(101).config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(cfg.scsi0, "local-lvm:vm-101-disk-0")
    assert.isUndefined(cfg.unused0)
    // the volume is 4 MiB (no size= in the config): +1G grows it to 1028M, not to 1G
    const upid = await px.nodes.$("pve").qemu.$(101).resize.$put({ disk: "scsi0", size: "+1G" })
    assert.strictEqual((await waitTask(px, "pve", upid)).exitstatus, "OK")
    const log = await px.nodes.$("pve").tasks.$(upid).log.$get()
    assert.strictEqual(
      log[0]?.t,
      "  Size of logical volume pve/vm-101-disk-0 changed from 4.00 MiB (1 extents) to 1.00 GiB (257 extents)."
    )
    const after = (await px.nodes.$("pve").qemu.$(101).config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(after.scsi0, "local-lvm:vm-101-disk-0,size=1028M")
    const notDisk = await raw(sim, "PUT", "/api2/json/nodes/pve/qemu/101/resize", {
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "disk=net0&size=%2B1G"
    })
    assert.strictEqual(notDisk.status, 400)
    assert.match(
      errorsOf(notDisk)?.disk ?? "",
      /^value 'net0' does not have a value in the enumeration 'ide0, ide1, ide2, ide3, scsi0, .*, efidisk0, tpmstate0'$/
    )
  })

  it("create: 0,import-from with storage=; a storage without images is reported under `storage`; the VM.Allocate check names no path", async () => {
    const r = await post("/nodes/pve/qemu", {
      vmid: "110",
      storage: "local-lvm",
      scsi0: "0,import-from=local:import/noble.qcow2"
    })
    assert.strictEqual(r.status, 200)
    assert.strictEqual((await waitTask(px, "pve", (JSON.parse(r.body) as { data: string }).data)).exitstatus, "OK")
    const cfg = (await px.nodes.$("pve").qemu.$(110).config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(cfg.scsi0, "local-lvm:vm-110-disk-0,size=2M")
    const noImages = await post("/nodes/pve/qemu", { vmid: "111", scsi0: "local:1" })
    assert.strictEqual(noImages.status, 400)
    assert.deepStrictEqual(errorsOf(noImages), { storage: "storage 'local' does not support vm images" })
    const denied = await raw(sim, "POST", "/api2/json/nodes/pve/qemu", {
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        Authorization: `PVEAPIToken=auditor@pve!ro=${AUD_SECRET}`
      },
      body: "vmid=112"
    })
    assert.deepStrictEqual([denied.status, denied.statusText], [403, "Permission check failed"])
  })

  it("shutdown of a guest that ignores ACPI times out as _do_vm_stop does; forceStop terminates it", async () => {
    await sim.addFaults([{ kind: "acpiIgnored", vmid: 102 }])
    const vm = px.nodes.$("pve").qemu.$(102)
    const plain = await waitTask(px, "pve", await vm.status.shutdown.$post({ timeout: 1 }))
    assert.strictEqual(plain.exitstatus, "VM quit/powerdown failed - got timeout")
    assert.strictEqual(((await vm.status.current.$get()) as { status: string }).status, "running")
    const forced = await vm.status.shutdown.$post({ timeout: 1, forceStop: true })
    assert.strictEqual((await waitTask(px, "pve", forced)).exitstatus, "OK")
    const log = await px.nodes.$("pve").tasks.$(forced).log.$get()
    assert.deepStrictEqual(
      log.map((l) => l.t),
      ["VM still running - terminating now with SIGTERM", "TASK OK"]
    )
    assert.strictEqual(((await vm.status.current.$get()) as { status: string }).status, "stopped")
  })

  it("cicustom: a user= snippet replaces the generated user-data; a missing or non-snippet volume fails the start", async () => {
    const snippet = `#cloud-config\nusers:\n  - name: ops\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    ssh_authorized_keys:\n      - ${pub}\n`
    const node = sim.info.nodes[0]
    assert.isDefined(node)
    const put = await sshExec(
      node?.ssh.host ?? "",
      node?.ssh.port ?? 0,
      "root",
      key,
      "install -m 0644 /dev/stdin /var/lib/vz/snippets/user-103.yaml",
      snippet
    )
    assert.strictEqual(put.code, 0)
    // ciuser ubuntu + sshkeys would let ubuntu in; the snippet's user is ops
    await px.nodes
      .$("pve")
      .qemu.$(103)
      .config.$put({ sshkeys: encodeURIComponent(`${pub}\n`) } as never)
    assert.strictEqual(
      (await waitTask(px, "pve", await px.nodes.$("pve").qemu.$(103).status.start.$post())).exitstatus,
      "OK"
    )
    const { ip, port } = await guestPort(103)
    assert.deepStrictEqual(await until(() => sshExec(ip, port, "ops", key, "whoami")), {
      stdout: "ops\n",
      stderr: "",
      code: 0
    })
    const asUbuntu = await sshExec(ip, port, "ubuntu", key, "whoami").then(
      () => "accepted",
      (e: Error) => e.message
    )
    assert.strictEqual(asUbuntu, "All configured authentication methods failed")
    const missing = await waitTask(px, "pve", await px.nodes.$("pve").qemu.$(104).status.start.$post())
    assert.strictEqual(missing.exitstatus, "can't find file 'local:snippets/missing.yaml'")
    const iso = await waitTask(px, "pve", await px.nodes.$("pve").qemu.$(105).status.start.$post())
    assert.strictEqual(iso.exitstatus, "local:iso/tools.iso is not in the snippets directory")
  })

  it("rejects what PVE rejects, with pve-common's texts; property-string booleans take yes/on/true, top-level ones 0/1", async () => {
    const bad = await post("/nodes/pve/qemu", {
      vmid: "120",
      net0: "virtio,bridge=vmbr0,foo=1",
      scsi0: "local-lvm:1,bogus=1",
      cpu: "host,bogus=1",
      ipconfig0: "ip=10.0.0.5",
      memory: "abc",
      agent: "abc",
      onboot: "yes"
    })
    assert.deepStrictEqual([bad.status, bad.statusText], [400, "Parameter verification failed."])
    assert.deepStrictEqual(errorsOf(bad), {
      net0: "invalid format - invalid key in comma-separated list property: foo\n",
      scsi0: "invalid format - invalid key in comma-separated list property: bogus\n",
      cpu: "invalid format - invalid key in comma-separated list property: bogus\n",
      // PVE::Exception's stringify adds "\n" after the inner error, which has its own: a blank line, as on PVE
      ipconfig0:
        "invalid format - format error\nipconfig0.ip: invalid format - value does not look like a valid ipv4 network configuration\n\n",
      memory: "invalid format - format error\nmemory.current: type check ('integer') failed - got 'abc'\n",
      agent: "invalid format - format error\nagent.enabled: type check ('boolean') failed - got 'abc'\n",
      onboot: "type check ('boolean') failed - got 'yes'"
    })
    // qemu-server's validate_vm_cpu_conf: the model must exist (a built-in one, or custom-NAME in cpu-models.conf)
    for (const [cpu, error] of [
      ["hosst", "Built-in cputype 'hosst' is not defined (missing 'custom-' prefix?)"],
      [
        "cputype=Skylake-Servr,flags=+aes",
        "Built-in cputype 'Skylake-Servr' is not defined (missing 'custom-' prefix?)"
      ],
      ["custom-fast", "Custom cputype 'fast' not found"],
      ["flags=+aes", "CPU is missing cputype"]
    ] as const) {
      const refused = await post("/nodes/pve/qemu", { vmid: "122", cpu })
      assert.deepStrictEqual([refused.status, errorsOf(refused)], [400, { cpu: `invalid format - ${error}\n` }], cpu)
    }
    const lenient = await post("/nodes/pve/qemu", {
      vmid: "121",
      cpu: "x86-64-v2-AES",
      agent: "enabled=yes,fstrim_cloned_disks=on",
      net0: "virtio,bridge=vmbr0,firewall=true",
      ipconfig0: "ip=10.0.0.5/24,gw=10.0.0.1"
    })
    assert.strictEqual(lenient.status, 200)
    await waitTask(px, "pve", (JSON.parse(lenient.body) as { data: string }).data)
    const content = await raw(sim, "GET", "/api2/json/nodes/pve/storage/local/content?content=isos")
    assert.deepStrictEqual(errorsOf(content), { content: "invalid format - invalid content type 'isos'\n" })
  })

  it("a running VM: cores, memory and cpu wait for a restart (GET pending, with the digest), balloon and onboot apply at once; a stale digest is refused; a reboot applies what waits through a qmstart of root@pam", async () => {
    const vm = px.nodes.$("pve").qemu.$(106)
    const pendingOf = async () =>
      Object.fromEntries(
        ((await vm.pending.$get()) as unknown as Array<Record<string, unknown>>).map(({ key, ...rest }) => [key, rest])
      )
    const before = await pendingOf()
    const config = (await vm.config.$get()) as unknown as Record<string, unknown>
    assert.deepStrictEqual(
      before.digest,
      { value: config.digest },
      "pending carries the config's digest, as PVE's does"
    )
    await vm.config.$put({
      cores: 4,
      memory: "8192",
      cpu: "x86-64-v2-AES",
      balloon: 2048,
      onboot: 1,
      cipassword: "s3cret",
      digest: config.digest
    } as never)
    const after = await pendingOf()
    assert.deepStrictEqual(after.cores, { value: 2, pending: 4 })
    assert.deepStrictEqual(after.memory, { value: "4096", pending: "8192" })
    assert.deepStrictEqual(after.cpu, { value: "host", pending: "x86-64-v2-AES" })
    assert.deepStrictEqual(after.balloon, { value: 2048 }, "a new balloon target is hotplugged")
    assert.deepStrictEqual(after.onboot, { value: 1 })
    assert.deepStrictEqual(after.cipassword, { value: "**********" })
    assert.notStrictEqual((after.digest as { value: string }).value, config.digest)
    // disabling the balloon device is not hotpluggable: it waits too
    await vm.config.$put({ balloon: 0 } as never)
    assert.deepStrictEqual((await pendingOf()).balloon, { value: 2048, pending: 0 })
    // a value set back to the current one is no longer pending (cleanup_pending)
    await vm.config.$put({ cores: 2 } as never)
    assert.deepStrictEqual((await pendingOf()).cores, { value: 2 })
    await vm.config.$put({ cores: 4 } as never)
    const stale = await raw(sim, "PUT", "/api2/json/nodes/pve/qemu/106/config", {
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: `cores=6&digest=${config.digest}`
    })
    assert.deepStrictEqual([stale.status, stale.statusText], [500, "checksum mismatch (file change by other user?)"])

    const reboot = await waitTask(px, "pve", await vm.status.reboot.$post())
    assert.strictEqual(reboot.exitstatus, "OK")
    const start = await until(async () => {
      const tasks = (await px.nodes
        .$("pve")
        .tasks.$get({ vmid: 106, typefilter: "qmstart" } as never)) as unknown as Array<Record<string, unknown>>
      return tasks.find((t) => t.status === "OK")
    })
    assert.strictEqual(start.user, "root@pam")
    const applied = await pendingOf()
    assert.deepStrictEqual(
      [applied.cores, applied.memory, applied.cpu, applied.balloon],
      [{ value: 4 }, { value: "8192" }, { value: "x86-64-v2-AES" }, { value: 0 }]
    )
    assert.strictEqual(((await vm.status.current.$get()) as { status: string }).status, "running")
  })

  it("suspended to disk: the state volume is allocated on the storage (find_vmstate_storage) and freed at the start that resumes it, which leaves what was pending pending (vm_start_nolock applies it only on a fresh start)", async () => {
    const vm = px.nodes.$("pve").qemu.$(106)
    await vm.config.$put({ cores: 3, vmstatestorage: "local-lvm" } as never)
    const hib = await waitTask(px, "pve", await vm.status.suspend.$post({ todisk: true } as never))
    assert.strictEqual(hib.exitstatus, "OK")
    const conf = (await vm.config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(conf.lock, "suspended")
    // vmstatestorage names the storage; the name carries the day of the suspend
    const volid = String(conf.vmstate)
    assert.match(volid, /^local-lvm:vm-106-state-suspend-\d{4}-\d\d-\d\d$/)
    const listed = async () =>
      ((await px.nodes.$("pve").storage.$("local-lvm").content.$get()) as unknown as Array<{ volid: string }>).map(
        (c) => c.volid
      )
    assert.include(await listed(), volid)
    const started = await waitTask(px, "pve", await vm.status.start.$post())
    assert.strictEqual(started.exitstatus, "OK")
    const after = (await vm.config.$get()) as unknown as Record<string, unknown>
    assert.deepStrictEqual([after.lock, after.vmstate, after.runningmachine], [undefined, undefined, undefined])
    assert.notInclude(await listed(), volid)
    const pending = (await vm.pending.$get()) as unknown as Array<Record<string, unknown>>
    const cores = pending.find((p) => p.key === "cores")
    assert.strictEqual(cores?.pending, 3, JSON.stringify(cores))
    await vm.config.$put({ cores: cores?.value, delete: "vmstatestorage" } as never)
  })

  it("a start refuses sockets × cores above the node's logical CPUs, whatever vcpus says (qemu-server's config_to_command); the VM stays stopped", async () => {
    const vm = px.nodes.$("pve").qemu.$(108)
    const refused = await waitTask(px, "pve", await vm.status.start.$post())
    assert.strictEqual(refused.exitstatus, "MAX 8 vcpus allowed per VM on this node")
    assert.strictEqual(((await vm.status.current.$get()) as { status: string }).status, "stopped")
    await vm.config.$put({ sockets: 1 } as never)
    assert.strictEqual((await waitTask(px, "pve", await vm.status.start.$post())).exitstatus, "OK")
    await waitTask(px, "pve", await vm.status.stop.$post())
  })

  it("a start with memory hotplug needs NUMA, at least 1024 MiB and a memory the DIMMs add up to (qemu-server's Memory::config); the VM stays stopped", async () => {
    const vm = px.nodes.$("pve").qemu.$(113)
    const start = async () => (await waitTask(px, "pve", await vm.status.start.$post())).exitstatus
    assert.strictEqual(await start(), "NUMA needs to be enabled for memory hotplug")
    assert.strictEqual(((await vm.status.current.$get()) as { status: string }).status, "stopped")
    await vm.config.$put({ numa: 1 } as never)
    // 1024 MiB static, then DIMMs of 512 MiB (32 of them), then of 1024 MiB, 2048 MiB, …
    assert.strictEqual(await start(), "memory size (4864) must be aligned to 512 for hotplugging")
    await vm.config.$put({ memory: "17920" } as never)
    assert.strictEqual(await start(), "memory size (17920) must be aligned to 1024 for hotplugging")
    await vm.config.$put({ memory: "768" } as never)
    assert.strictEqual(await start(), "minimum memory must be 1024MB")
    await vm.config.$put({ memory: "4608" } as never)
    assert.strictEqual(await start(), "OK")
    await waitTask(px, "pve", await vm.status.stop.$post())
  })

  it("memory of a running VM with memory hotplug is plugged in at once (vmconfig_hotplug_pending): DIMMs added or removed, nothing pending", async () => {
    const vm = px.nodes.$("pve").qemu.$(114)
    const state = () => sim.state().vms.find((v) => v.vmid === 114) as { config: { memory?: string }; pending: object }
    await vm.config.$put({ memory: "6144" } as never)
    assert.deepStrictEqual([state().config.memory, state().pending], ["6144", {}])
    // down again: DIMMs unplugged from the last one until the memory is at most the one asked
    await vm.config.$put({ memory: "5120" } as never)
    assert.deepStrictEqual([state().config.memory, state().pending], ["5120", {}])
  })

  it("nameserver is pve-common's address-list: split at spaces, commas and semicolons, each an IP address or a DNS name", async () => {
    const put = (body: Record<string, string>) =>
      raw(sim, "PUT", "/api2/json/nodes/pve/qemu/109/config", {
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(body).toString()
      })
    // pve_verify_address: pve_verify_ip (IPV4RE, IPV6RE) or pve_verify_dns_name; the die names the address
    for (const [value, bad] of [
      ["1..2", "1..2"],
      ["10.0.0.1 :::1:::", ":::1:::"],
      ["dns_server", "dns_server"]
    ] as const) {
      const refused = await put({ nameserver: value })
      assert.deepStrictEqual(
        [refused.status, errorsOf(refused)],
        [400, { nameserver: `invalid format - value does not look like a valid address: ${bad}\n` }],
        value
      )
    }
    for (const value of ["1.1.1.1,8.8.8.8", "dns.google 9.9.9.9", "fd00::53;10.0.0.1"]) {
      const accepted = await put({ nameserver: value })
      assert.strictEqual(accepted.status, 200, `${value}: ${accepted.body}`)
    }
    // a VM's notes: at most 8192 characters (the schema's maxLength)
    const notes = await put({ description: "x".repeat(8193) })
    assert.deepStrictEqual(
      [notes.status, errorsOf(notes)],
      [400, { description: "value may only be 8192 characters long" }]
    )
  })

  it("balloon above memory: an update setting memory or balloon is refused (the one sent, else the pending or current one), a create is not", async () => {
    const put = (body: string) =>
      raw(sim, "PUT", "/api2/json/nodes/pve/qemu/109/config", {
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body
      })
    const tooLarge = [500, "balloon value too large (must be smaller than assigned memory)"]
    // memory lowered below the balloon the VM has
    const lower = await put("memory=1024")
    assert.deepStrictEqual([lower.status, lower.statusText], tooLarge)
    // both sent: the balloon is checked against the memory sent
    const both = await put("memory=4096&balloon=8192")
    assert.deepStrictEqual([both.status, both.statusText], tooLarge)
    // equal is allowed
    const equal = await put("memory=2048&balloon=2048")
    assert.strictEqual(equal.status, 200, equal.body)
    // an update touching neither is not checked
    const other = await put("onboot=1")
    assert.strictEqual(other.status, 200, other.body)
    // create_vm does not check it
    const upid = await px.nodes.$("pve").qemu.$post({ vmid: 199, memory: "1024", balloon: 2048 } as never)
    assert.strictEqual((await waitTask(px, "pve", upid)).exitstatus, "OK")
    const created = (await px.nodes.$("pve").qemu.$(199).config.$get()) as unknown as Record<string, unknown>
    assert.deepStrictEqual([created.memory, created.balloon], ["1024", 2048])
    await waitTask(px, "pve", await px.nodes.$("pve").qemu.$(199).$delete())
  })

  it("a NIC on a bridge the node lacks: on a running VM the hotplug fails (400, the NIC left pending, the other settings applied), and the VM cannot start again; a stopped VM takes it into its config; without network hotplug it waits", async () => {
    const put = (vmid: number, body: string) =>
      raw(sim, "PUT", `/api2/json/nodes/pve/qemu/${vmid}/config`, {
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body
      })
    const pendingOf = async (vmid: number) =>
      Object.fromEntries(
        ((await px.nodes.$("pve").qemu.$(vmid).pending.$get()) as unknown as Array<Record<string, unknown>>).map(
          ({ key, ...rest }) => [key, rest]
        )
      )
    // update_vm_api: vmconfig_hotplug_pending, then raise_param_exc($errors)
    const added = await put(130, "net1=virtio,bridge=vmbr9&tags=nics")
    assert.deepStrictEqual([added.status, added.statusText], [400, "Parameter verification failed."])
    assert.deepStrictEqual(errorsOf(added), {
      net1: "hotplug problem - VM 130 qmp command 'netdev_add' failed - network script /usr/libexec/qemu-server/pve-bridge-hotplug failed with status 512"
    })
    const moved = await put(130, "net0=virtio=BC:24:11:90:02:30,bridge=vmbr9")
    assert.strictEqual(moved.status, 400)
    assert.deepStrictEqual(errorsOf(moved), { net0: "hotplug problem - interface vmbr9 does not exist\n" })
    const held = await pendingOf(130)
    assert.match(String(held.net1?.pending), /^virtio=[0-9A-F:]{17},bridge=vmbr9$/)
    assert.strictEqual(held.net1?.value, undefined)
    assert.deepStrictEqual(held.net0, {
      value: "virtio=BC:24:11:90:02:30,bridge=vmbr0",
      pending: "virtio=BC:24:11:90:02:30,bridge=vmbr9"
    })
    assert.deepStrictEqual(held.tags, { value: "nics" }, "the rest of the update is applied")
    // an existing bridge (inactive or not) is plugged at once
    const fine = await put(130, "net2=virtio,bridge=vmbr0")
    assert.strictEqual(fine.status, 200)
    assert.strictEqual((await pendingOf(130)).net2?.pending, undefined)

    // vm_start: what is pending goes into the config, then the netdev finds no bridge
    const vm = px.nodes.$("pve").qemu.$(130)
    assert.strictEqual((await waitTask(px, "pve", await vm.status.stop.$post())).exitstatus, "OK")
    const start = await waitTask(px, "pve", await vm.status.start.$post())
    assert.strictEqual(start.exitstatus, "bridge 'vmbr9' does not exist")
    const config = (await vm.config.$get()) as unknown as Record<string, unknown>
    assert.match(String(config.net1), /bridge=vmbr9/)
    assert.strictEqual(((await vm.status.current.$get()) as { status: string }).status, "stopped")

    // a stopped VM: vmconfig_apply_pending writes it (no device to plug); its start fails the same way
    const cold = await put(131, "net1=virtio,bridge=vmbr9")
    assert.strictEqual(cold.status, 200)
    assert.match(String((await pendingOf(131)).net1?.value), /bridge=vmbr9/)
    const coldStart = await waitTask(px, "pve", await px.nodes.$("pve").qemu.$(131).status.start.$post())
    assert.strictEqual(coldStart.exitstatus, "bridge 'vmbr9' does not exist")

    // without network hotplug, a NIC added waits for a restart ("skip"): no error
    const later = await put(132, "net1=virtio,bridge=vmbr9")
    assert.strictEqual(later.status, 200)
    assert.match(String((await pendingOf(132)).net1?.pending), /bridge=vmbr9/)
  })

  it("notes (description) are kept as qemu-server parses them back: without trailing whitespace, inner lines kept", async () => {
    const vm = px.nodes.$("pve").qemu.$(101)
    await vm.config.$put({ description: "k3s node\n  managed by homelab  \n\n" } as never)
    const config = (await vm.config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(config.description, "k3s node\n  managed by homelab")
  })

  it("cloud-init on a running VM: a change is recorded against the drive (GET cloudinit lists it, an ipconfigN changed in place excepted, as qemu-server's does) until PUT cloudinit or a start regenerates the drive; a reset boots the drive it had", async () => {
    const vm = px.nodes.$("pve").qemu.$(107)
    const ci = async (): Promise<Record<string, Record<string, unknown>>> =>
      Object.fromEntries(
        ((await vm.cloudinit.$get()) as unknown as Array<Record<string, unknown>>).map(({ key, ...rest }) => [
          String(key),
          rest
        ])
      )
    const waiting = async () =>
      Object.entries(await ci())
        .filter(([, e]) => e.pending !== undefined || e.delete !== undefined)
        .map(([k]) => k)
        .sort()
    /** Whether the guest lets ubuntu in with our key (once its SSH answers). */
    const login = () =>
      until(async () => {
        const { ip, port } = await guestPort(107)
        const r = await sshExec(ip, port, "ubuntu", key, "whoami").then(
          (x) => x.stdout,
          (e: Error) => e.message
        )
        return r === "ubuntu\n" || r === "All configured authentication methods failed" ? r : undefined
      })
    const reset = async () =>
      assert.strictEqual((await waitTask(px, "pve", await vm.status.reset.$post())).exitstatus, "OK")
    const old = encodeURIComponent(`${OTHER_KEY}\n`)
    assert.deepStrictEqual(await ci(), {
      ciuser: { value: "ubuntu" },
      sshkeys: { value: old }
    })
    assert.strictEqual(await login(), "All configured authentication methods failed")

    const mine = encodeURIComponent(`${pub}\n`)
    await vm.config.$put({ sshkeys: mine, searchdomain: "lan", ipconfig0: "ip=10.0.0.9/24,gw=10.0.0.1" } as never)
    assert.deepStrictEqual(await ci(), {
      searchdomain: { pending: "lan" },
      ciuser: { value: "ubuntu" },
      sshkeys: { value: old, pending: mine }
    })
    // a deleted setting is listed as a delete; set back to what the drive has, it is no longer recorded
    await vm.config.$put({ delete: "ciuser" } as never)
    assert.deepStrictEqual((await ci()).ciuser, { delete: 1 })
    await vm.config.$put({ ciuser: "ubuntu" } as never)
    assert.deepStrictEqual(await waiting(), ["searchdomain", "sshkeys"])
    // the guest reads its drive when it boots: a reset boots the drive it had
    await reset()
    assert.strictEqual(await login(), "All configured authentication methods failed")

    await vm.cloudinit.$put()
    assert.deepStrictEqual(await waiting(), [])
    assert.strictEqual(await login(), "All configured authentication methods failed", "read at the next boot")
    await reset()
    assert.strictEqual(await login(), "ubuntu\n")

    // Only the ipconfig0 change: recorded (the config's digest says so), but not listed; a start regenerates the drive.
    const before = ((await vm.config.$get()) as unknown as { digest: string }).digest
    await vm.config.$put({ ipconfig0: "ip=dhcp" } as never)
    assert.deepStrictEqual(await waiting(), [])
    const recorded = ((await vm.config.$get()) as unknown as { digest: string }).digest
    assert.notStrictEqual(recorded, before)
    await vm.config.$put({ searchdomain: "lan2" } as never)
    assert.deepStrictEqual(await waiting(), ["searchdomain"])
    assert.strictEqual((await waitTask(px, "pve", await vm.status.stop.$post())).exitstatus, "OK")
    assert.deepStrictEqual(await waiting(), ["searchdomain"], "a stopped VM keeps what was recorded")
    const start = await waitTask(px, "pve", await vm.status.start.$post())
    assert.strictEqual(start.exitstatus, "OK")
    assert.deepStrictEqual(await waiting(), [])
  })

  it("the request log records each request's parameters, secrets redacted", async () => {
    await px.nodes
      .$("pve")
      .qemu.$(101)
      .config.$put({ cipassword: "hunter2", description: "x" } as never)
    const entry = sim
      .requests()
      .findLast((q) => q.transport === "api" && q.method === "PUT" && q.path === "/nodes/pve/qemu/101/config")
    assert.deepStrictEqual(entry?.params, { cipassword: "<redacted>", description: "x" })
    assert.isFalse(JSON.stringify(sim.requests()).includes("hunter2"))
    const node = sim.info.nodes[0]
    await sshExec(node?.ssh.host ?? "", node?.ssh.port ?? 0, "root", key, "pvesh get /nodes/pve/qemu --full 1")
    const ssh = sim.requests().findLast((q) => q.transport === "ssh")
    assert.deepStrictEqual(ssh?.calls, [{ method: "GET", path: "/nodes/pve/qemu", params: { full: "1" }, status: 200 }])
  })
})

describe("resize on LVM (pve-storage LVMPlugin::volume_resize: lvextend -L)", () => {
  let sim: SimHandle
  let px: Px
  beforeAll(async () => {
    sim = await startSimPromise(
      testScenario({
        ipPool: "127.90.2.10",
        nodes: [
          {
            ...testScenario().nodes[0],
            name: "pve",
            storages: [
              { id: "local-lvm", type: "lvmthin", content: ["rootdir", "images"], capacity: "10G" },
              { id: "thick", type: "lvm", content: ["rootdir", "images"], capacity: "10G" },
              { id: "files", type: "dir", content: ["images"], capacity: "10G" }
            ]
          }
        ],
        vms: [
          {
            vmid: 200,
            node: "pve",
            name: "thin",
            status: "running",
            config: { scsi0: "local-lvm:vm-200-disk-0,size=4G" }
          },
          {
            vmid: 201,
            node: "pve",
            name: "thick",
            status: "running",
            config: { scsi0: "thick:vm-201-disk-0,size=4G" }
          },
          {
            vmid: 202,
            node: "pve",
            name: "files",
            status: "running",
            config: { scsi0: "files:202/vm-202-disk-0.qcow2,size=4G" }
          }
        ]
      })
    )
    px = pxClient(sim)
  })
  afterAll(async () => {
    await sim.stop()
  })

  const resize = async (vmid: number, size: string) => {
    const upid = await px.nodes.$("pve").qemu.$(vmid).resize.$put({ disk: "scsi0", size })
    const status = await waitTask(px, "pve", upid)
    const log = await px.nodes.$("pve").tasks.$(upid).log.$get()
    return { exitstatus: status.exitstatus, log: log.map((l) => l.t) }
  }

  it("a thin volume grows whatever its pool holds (its size is virtual), with LVM's over-provisioning warning", async () => {
    await sim.addFaults([{ kind: "storageFull", node: "pve", storage: "local-lvm" }])
    const full = await resize(200, "8G")
    assert.strictEqual(full.exitstatus, "OK")
    assert.include(full.log, "  Logical volume pve/vm-200-disk-0 successfully resized.")
    const over = await resize(200, "16G")
    assert.strictEqual(over.exitstatus, "OK")
    assert.include(
      over.log,
      "  WARNING: Sum of all thin volume sizes (16.00 GiB) exceeds the size of thin pool pve/data (10.00 GiB)."
    )
    const cfg = (await px.nodes.$("pve").qemu.$(200).config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(cfg.scsi0, "local-lvm:vm-200-disk-0,size=16G")
    await sim.clearFaults()
  })

  it("a thick volume takes extents from the volume group: too few fail as lvextend does, under PVE's errmsg", async () => {
    const tooBig = await resize(201, "12G")
    assert.strictEqual(
      tooBig.exitstatus,
      "error resizing volume '/dev/pve/vm-201-disk-0':   Insufficient free space: 2048 extents needed, but only 1536 available"
    )
    await sim.addFaults([{ kind: "storageFull", node: "pve", storage: "thick" }])
    const full = await resize(201, "5G")
    assert.strictEqual(
      full.exitstatus,
      "error resizing volume '/dev/pve/vm-201-disk-0':   Insufficient free space: 256 extents needed, but only 0 available"
    )
    await sim.clearFaults()
    assert.strictEqual((await resize(201, "5G")).exitstatus, "OK")
  })

  it("a file volume of a running VM grows sparse (QEMU's block_resize; the plugin's volume_resize returns at once for a running VM): no free space needed", async () => {
    // 4G → 16G on a 10G directory storage: the file's size is its apparent size, nothing is allocated
    assert.strictEqual((await resize(202, "16G")).exitstatus, "OK")
    const cfg = (await px.nodes.$("pve").qemu.$(202).config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(cfg.scsi0, "files:202/vm-202-disk-0.qcow2,size=16G")
  })
})

describe("move_disk to another storage (qemu-server move_vm_disk)", () => {
  let sim: SimHandle
  let px: Px
  beforeAll(async () => {
    sim = await startSimPromise(
      testScenario({
        ipPool: "127.90.3.10",
        nodes: [
          {
            ...testScenario().nodes[0],
            name: "pve",
            storages: [
              { id: "local", type: "dir", content: ["iso", "import"], capacity: "100G" },
              { id: "local-lvm", type: "lvmthin", content: ["rootdir", "images"], capacity: "100G" },
              { id: "fast", type: "lvmthin", content: ["images"], capacity: "100G" },
              { id: "tiny", type: "lvm", content: ["images"], capacity: "1G" }
            ]
          }
        ],
        vms: [
          {
            vmid: 300,
            node: "pve",
            name: "mover",
            status: "running",
            config: { scsi0: "local-lvm:vm-300-disk-0,discard=on,size=4G,ssd=1" }
          },
          {
            vmid: 301,
            node: "pve",
            name: "keeper",
            status: "stopped",
            config: { scsi0: "local-lvm:vm-301-disk-0,size=2G" }
          }
        ]
      })
    )
    px = pxClient(sim)
  })
  afterAll(async () => {
    await sim.stop()
  })

  const move = async (vmid: number, params: Record<string, unknown>) => {
    const upid = await px.nodes
      .$("pve")
      .qemu.$(vmid)
      .move_disk.$post(params as never)
    const status = await waitTask(px, "pve", upid)
    const log = await px.nodes.$("pve").tasks.$(upid).log.$get()
    return { upid: String(upid), exitstatus: status.exitstatus, log: log.map((l) => l.t) }
  }
  const volumes = (storage: string) =>
    px.nodes
      .$("pve")
      .storage.$(storage)
      .content.$get()
      .then((c) => c.map((v) => v.volid).sort())

  it("a running VM's disk moves (drive-mirror), its options and size kept, the source freed with delete=1", async () => {
    const before = (await px.nodes.$("pve").qemu.$(300).config.$get()) as unknown as { digest: string }
    const moved = await move(300, { disk: "scsi0", storage: "fast", delete: 1, digest: before.digest })
    assert.strictEqual(moved.exitstatus, "OK", moved.log.join("\n"))
    assert.match(moved.upid, /:qmmove:300:/)
    assert.strictEqual(
      moved.log[0],
      "copying volume 'local-lvm:vm-300-disk-0' from current storage 'local-lvm' to target storage 'fast'"
    )
    assert.include(moved.log, "drive-scsi0: Completed successfully.")
    assert.include(moved.log, "removing source volume 'local-lvm:vm-300-disk-0' after successful copy")
    const cfg = (await px.nodes.$("pve").qemu.$(300).config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(cfg.scsi0, "fast:vm-300-disk-0,discard=on,size=4G,ssd=1")
    assert.isUndefined(cfg.unused0)
    assert.notStrictEqual(cfg.digest, before.digest)
    assert.deepStrictEqual(await volumes("fast"), ["fast:vm-300-disk-0"])
    assert.notInclude(await volumes("local-lvm"), "local-lvm:vm-300-disk-0")
    assert.strictEqual(sim.state().vms.find((v) => v.vmid === 300)?.status, "running")
  })

  it("without delete the source stays as unusedN; refusals: same storage, unknown storage, no images, a stale digest, too little room", async () => {
    const kept = await move(301, { disk: "scsi0", storage: "fast" })
    assert.strictEqual(kept.exitstatus, "OK")
    assert.include(kept.log, "transferred 2.0 GiB of 2.0 GiB (100.00%)")
    assert.include(kept.log, "adding source volume 'local-lvm:vm-301-disk-0' as 'unused0' to config")
    const cfg = (await px.nodes.$("pve").qemu.$(301).config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(cfg.scsi0, "fast:vm-301-disk-0,size=2G")
    assert.strictEqual(cfg.unused0, "local-lvm:vm-301-disk-0")

    const post = (body: string) =>
      raw(sim, "POST", "/api2/json/nodes/pve/qemu/301/move_disk", {
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body
      })
    const same = await post("disk=scsi0&storage=fast")
    assert.strictEqual(same.status, 500)
    assert.match(same.body, /you can't move to the same storage with same format/)
    const missing = await post("disk=scsi0&storage=nvme-pool")
    assert.match(missing.body, /storage 'nvme-pool' does not exist/)
    const noImages = await post("disk=scsi0&storage=local")
    assert.strictEqual(noImages.status, 400)
    assert.strictEqual(errorsOf(noImages)?.storage, "storage 'local' does not support vm images")
    const stale = await post("disk=scsi0&storage=local-lvm&digest=0123456789abcdef0123456789abcdef01234567")
    assert.match(stale.body, /detected modified configuration - file changed by other user\? Try again\./)
    const neither = await post("disk=scsi0")
    assert.strictEqual(neither.status, 400)
    assert.strictEqual(errorsOf(neither)?.storage, "both 'storage' and 'target-vmid' missing, either needs to be set")

    const full = await move(301, { disk: "scsi0", storage: "tiny" })
    assert.match(String(full.exitstatus), /^storage migration failed: lvcreate 'pve\/vm-301-disk-\d+' error: /)
    assert.deepStrictEqual(await volumes("tiny"), [])
    const after = (await px.nodes.$("pve").qemu.$(301).config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(after.scsi0, "fast:vm-301-disk-0,size=2G")
  })
})
