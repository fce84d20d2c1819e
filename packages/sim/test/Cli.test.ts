import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type SimHandle, startSimPromise } from "../src/index.js"
import { openssh, testScenario, until } from "./helpers.js"

describe("node SSH with the system OpenSSH client: pvesh and qm", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(testScenario({ ipPool: "127.77.4.10" }))
  })
  afterAll(async () => {
    await sim.stop()
  })

  it("qm list prints nothing at all when there are no VMs", async () => {
    assert.deepStrictEqual(await openssh(sim, 1, "qm list"), { stdout: "", stderr: "", code: 0 })
  })

  it("unknown commands exit 127; hostname and true work; quoting is honoured", async () => {
    assert.deepStrictEqual(await openssh(sim, 0, "frobnicate --now"), {
      stdout: "",
      stderr: "bash: frobnicate: command not found\n",
      code: 127
    })
    assert.deepStrictEqual(await openssh(sim, 0, "hostname && true"), { stdout: "pve\n", stderr: "", code: 0 })
    assert.strictEqual((await openssh(sim, 0, `echo 'a  b' "c\\"d" e\\ f`)).stdout, 'a  b c"d e f\n')
  })

  it("pvesh get prints canonical JSON", async () => {
    const r = await openssh(sim, 0, "pvesh get /version --output-format json")
    assert.deepStrictEqual(r, {
      stdout: '{"release":"8.4","repoid":"faa83925c9641325","version":"8.4.1"}\n',
      stderr: "",
      code: 0
    })
    const pretty = await openssh(sim, 0, "pvesh get /cluster/nextid --output-format json-pretty")
    assert.strictEqual(pretty.stdout, '"100"\n')
    const nohandler = await openssh(sim, 0, "pvesh set /version")
    assert.deepStrictEqual(nohandler, { stdout: "", stderr: "no 'set' handler for '/version'\n", code: 255 })
  })

  it("install into /var/lib/vz updates storage content; root may import-from an absolute path", async () => {
    const img = "x".repeat(3 * 1024 * 1024)
    const put = await openssh(sim, 0, "install -m 0644 /dev/stdin /var/lib/vz/template/iso/jammy.img", img)
    assert.deepStrictEqual(put, { stdout: "", stderr: "", code: 0 })
    const snip = await openssh(sim, 0, "cat > /var/lib/vz/snippets/user-120.yaml", "#cloud-config\n")
    assert.strictEqual(snip.code, 0)
    const content = await openssh(sim, 0, "pvesh get /nodes/pve/storage/local/content --output-format json")
    const vols = (JSON.parse(content.stdout) as Array<{ volid: string; size: number }>).map((v) => [v.volid, v.size])
    assert.deepStrictEqual(vols, [
      ["local:iso/jammy.img", 3 * 1024 * 1024],
      ["local:snippets/user-120.yaml", 14]
    ])
    const create = await openssh(
      sim,
      0,
      "qm create 120 --name cli-vm --memory 1024 --agent 1 --net0 virtio,bridge=vmbr0 --scsi0 local-lvm:0,import-from=/var/lib/vz/template/iso/jammy.img --ide2 local-lvm:cloudinit --cicustom user=local:snippets/user-120.yaml"
    )
    assert.strictEqual(create.code, 0)
    assert.strictEqual(create.stderr, "")
    assert.deepStrictEqual(create.stdout.split("\n"), [
      '  Logical volume "vm-120-disk-0" created.',
      "transferred 0.0 B of 3.0 MiB (0.00%)",
      "transferred 1.5 MiB of 3.0 MiB (50.00%)",
      "transferred 3.0 MiB of 3.0 MiB (100.00%)",
      "scsi0: successfully created disk 'local-lvm:vm-120-disk-0,size=3M'",
      '  Logical volume "vm-120-cloudinit" created.',
      "ide2: successfully created disk 'local-lvm:vm-120-cloudinit,media=cdrom'",
      ""
    ])
    const list = await openssh(sim, 0, "qm list")
    assert.strictEqual(
      list.stdout,
      "      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n" +
        "       120 cli-vm               stopped    1024               0.00 0         \n"
    )
    assert.deepStrictEqual(await openssh(sim, 0, "qm status 120"), { stdout: "status: stopped\n", stderr: "", code: 0 })
    const missing = await openssh(sim, 0, "qm status 999")
    assert.deepStrictEqual(missing, {
      stdout: "",
      stderr: "Configuration file 'nodes/pve/qemu-server/999.conf' does not exist\n",
      code: 255
    })
  })

  it("upid_exit: qm start exits 0, then 255 with the task error; pvesh exits 0 with the UPID anyway", async () => {
    assert.deepStrictEqual(await openssh(sim, 0, "qm start 120"), {
      stdout: "generating cloud-init ISO\n",
      stderr: "",
      code: 0
    })
    assert.deepStrictEqual(await openssh(sim, 0, "qm start 120"), {
      stdout: "",
      stderr: "VM 120 already running\n",
      code: 255
    })
    const p = await openssh(sim, 0, "pvesh create /nodes/pve/qemu/120/status/start --output-format json")
    assert.strictEqual(p.code, 0)
    assert.strictEqual(p.stderr, "VM 120 already running\n")
    const last = p.stdout.trim().split("\n").at(-1) ?? ""
    assert.match(JSON.parse(last) as string, /^UPID:pve:[0-9A-F]{8}:[0-9A-F]{8,9}:[0-9A-F]{8}:qmstart:120:root@pam:$/)
    const st = await openssh(
      sim,
      0,
      `pvesh get /nodes/pve/tasks/${JSON.parse(last) as string}/status --output-format json`
    )
    assert.strictEqual((JSON.parse(st.stdout) as { exitstatus: string }).exitstatus, "VM 120 already running")
    const log = await openssh(
      sim,
      0,
      `pvesh get /nodes/pve/tasks/${JSON.parse(last) as string}/log --output-format json`
    )
    assert.deepStrictEqual(JSON.parse(log.stdout), [
      { n: 1, t: "" },
      { n: 2, t: "TASK ERROR: VM 120 already running" }
    ])
    assert.deepStrictEqual(await openssh(sim, 0, "qm destroy 120"), {
      stdout: "",
      stderr: "VM 120 is running - destroy failed\n",
      code: 255
    })
  })

  it("qm disk resize exits 0 even when the task fails; qm guest exec exits 0 whatever the guest exit code", async () => {
    const shrink = await openssh(sim, 0, "qm disk resize 120 scsi0 1M")
    assert.deepStrictEqual(shrink, { stdout: "", stderr: "shrinking disks is not supported\n", code: 0 })
    const grow = await openssh(sim, 0, "qm resize 120 scsi0 +1M")
    assert.strictEqual(grow.code, 0)
    assert.match((await openssh(sim, 0, "qm config 120")).stdout, /^scsi0: local-lvm:vm-120-disk-0,size=4M$/m)
    const exec = await until(async () => {
      const r = await openssh(sim, 0, "qm guest exec 120 -- cat /etc/nothing")
      return r.code === 0 ? r : undefined
    })
    assert.deepStrictEqual(exec, {
      stdout:
        '{\n   "err-data" : "cat: /etc/nothing: No such file or directory\\n",\n   "exitcode" : 1,\n   "exited" : 1\n}\n',
      stderr: "",
      code: 0
    })
    const hn = await openssh(sim, 0, "qm guest cmd 120 get-host-name")
    assert.deepStrictEqual(hn, { stdout: '{\n   "host-name" : "cli-vm"\n}\n', stderr: "", code: 0 })
    assert.deepStrictEqual(await openssh(sim, 0, "qm guest cmd 120 ping"), { stdout: "", stderr: "", code: 0 })
  })

  it("qm status prints the qmpstatus; suspend/resume", async () => {
    assert.strictEqual((await openssh(sim, 0, "qm suspend 120")).code, 0)
    assert.strictEqual((await openssh(sim, 0, "qm status 120")).stdout, "status: paused\n")
    const list = await openssh(sim, 0, "qm list")
    assert.match(list.stdout, /cli-vm {15}running /)
    assert.deepStrictEqual(await openssh(sim, 0, "qm shutdown 120"), {
      stdout: "",
      stderr: "VM is paused - cannot shutdown\n",
      code: 255
    })
    assert.strictEqual((await openssh(sim, 0, "qm resume 120")).code, 0)
    assert.strictEqual((await openssh(sim, 0, "qm stop 120")).code, 0)
    assert.strictEqual(
      (await openssh(sim, 0, "qm destroy 120 --purge")).stdout,
      "purging VM 120 from related configurations..\n"
    )
  })

  it("sshAuthRefused makes the node refuse the key", async () => {
    await sim.addFaults([{ kind: "sshAuthRefused", node: "pve2" }])
    try {
      const r = await openssh(sim, 1, "true")
      assert.strictEqual(r.code, 255)
      assert.match(r.stderr, /Permission denied \(publickey\)/)
    } finally {
      await sim.clearFaults()
    }
    const log = sim.requests().filter((e) => e.transport === "ssh")
    assert.isTrue(log.some((e) => e.command === "qm start 120" && e.exitCode === 255))
  })
})
