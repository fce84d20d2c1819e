import { readFileSync } from "node:fs"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import proxmoxApi from "proxmox-api"
import { reserveLoopbackNet, type SimHandle, startSimPromise } from "../src/index.js"
import { type Px, pxClient, raw, sshExec, testScenario, until, waitTask } from "./helpers.js"

const rootCode = (e: unknown): string | undefined => {
  let cur = e as { code?: string; cause?: unknown } | undefined
  while (cur !== undefined) {
    if (typeof cur.code === "string") return cur.code
    cur = cur.cause as typeof cur
  }
  return undefined
}

/**
 * `testScenario` with the nodes on a loopback address of this file's own: the port an `apiDown` fault frees (and binds
 * again when the fault is cleared) is not another test's server's to take meanwhile.
 */
const onOwnAddress = (over: Parameters<typeof testScenario>[0]) => {
  const base = testScenario(over)
  const address = `${reserveLoopbackNet().net}.1`
  return { ...base, nodes: base.nodes.map((n) => ({ ...n, address })) }
}

describe("faults", () => {
  let sim: SimHandle
  let px: Px
  let key: string
  let pub: string
  beforeAll(async () => {
    sim = await startSimPromise(
      onOwnAddress({
        ipPool: "127.77.5.10",
        vms: [
          {
            vmid: 100,
            node: "pve",
            name: "running",
            status: "running",
            config: {
              agent: "1",
              net0: "virtio=BC:24:11:00:00:01,bridge=vmbr0",
              ide2: "local-lvm:vm-100-cloudinit,media=cdrom"
            }
          }
        ]
      })
    )
    px = pxClient(sim)
    key = readFileSync(sim.info.sshPrivateKeyPath, "utf8")
    pub = readFileSync(`${sim.info.sshPrivateKeyPath}.pub`, "utf8")
  })
  afterAll(async () => {
    await sim.stop()
  })

  const createVm = async (vmid: number, extra: Record<string, unknown> = {}) => {
    const upid = await px.nodes.$("pve").qemu.$post({
      vmid,
      name: `vm${vmid}`,
      scsi0: "local-lvm:1",
      ide2: "local-lvm:cloudinit",
      net0: "virtio,bridge=vmbr0",
      agent: "1",
      ciuser: "ubuntu",
      sshkeys: encodeURIComponent(pub),
      ...extra
    } as never)
    return waitTask(px, "pve", upid)
  }

  it("a client without the CA fails with UNABLE_TO_VERIFY_LEAF_SIGNATURE; untrustedCert also fails a CA-pinned client", async () => {
    const u = new URL(sim.info.nodes[0]?.api ?? "")
    const plain = proxmoxApi({
      host: u.hostname,
      port: Number(u.port),
      tokenID: sim.info.auth.tokenId,
      tokenSecret: sim.info.auth.tokenSecret
    })
    const e1 = await plain.version.$get().catch((e: unknown) => e)
    assert.strictEqual(rootCode(e1), "UNABLE_TO_VERIFY_LEAF_SIGNATURE")
    assert.match((e1 as Error).message, /^FaILED to call GET /)
    await sim.addFaults([{ kind: "untrustedCert", node: "pve" }])
    const e2 = await px.version.$get().catch((e: unknown) => e)
    assert.strictEqual(rootCode(e2), "UNABLE_TO_VERIFY_LEAF_SIGNATURE")
    await sim.clearFaults({ kind: "untrustedCert" })
    assert.strictEqual((await px.version.$get()).version, "8.4.1")
  })

  it("apiDown closes the port (ECONNREFUSED) and a proxied request to it gets 595", async () => {
    await sim.addFaults([{ kind: "apiDown", node: "pve2" }])
    try {
      const direct = pxClient(sim, 1)
      const e = await direct.version.$get().catch((x: unknown) => x)
      assert.strictEqual(rootCode(e), "ECONNREFUSED")
      const viaPve = await px.nodes
        .$("pve2")
        .qemu.$get()
        .catch((x: Error) => x.message)
      assert.match(String(viaPve), /connection failed with 595 Errors during connection establishment/)
    } finally {
      await sim.clearFaults({ kind: "apiDown" })
    }
    assert.deepStrictEqual(await pxClient(sim, 1).nodes.$("pve2").qemu.$get(), [])
  })

  it("responseLost performs the request, then closes the connection unanswered (only the first `times` matches)", async () => {
    const path = "/nodes/pve/qemu"
    const post = () =>
      raw(sim, "POST", `/api2/json${path}`, {
        body: "vmid=120&name=vm120&scsi0=local-lvm%3A1",
        headers: { "Content-Type": "application/x-www-form-urlencoded" }
      })
    await sim.addFaults([{ kind: "responseLost", node: "pve", method: "POST", path, times: 1 }])
    try {
      const from = sim.requests().length
      const lost = await post().then(
        (r) => `answered ${r.status}`,
        (e: Error) => e
      )
      assert.instanceOf(lost, Error)
      assert.strictEqual(rootCode(lost), "ECONNRESET")
      assert.match((lost as Error).message, /socket hang up/)
      // PVE performed it: VM 120 exists and one qmcreate task was started; the log says the answer was lost
      assert.isTrue(sim.state().vms.some((v) => v.vmid === 120))
      const creates = () => sim.state().tasks.filter((t) => t.type === "qmcreate" && t.id === "120")
      assert.lengthOf(creates(), 1)
      const logged = sim
        .requests()
        .slice(from)
        .filter((r) => r.path === path)
      assert.deepStrictEqual(
        logged.map((r) => [r.method, r.status, r.responseLost]),
        [["POST", 200, true]]
      )
      // spent after one: the same request is answered again (and refused, since the first one did create VM 120)
      const again = await post()
      assert.strictEqual(again.status, 500)
      assert.match(again.body, /VM 120 already exists/)
      assert.lengthOf(creates(), 1)
      // other requests (another method, path or node) are answered
      assert.strictEqual((await raw(sim, "GET", `/api2/json${path}`)).status, 200)
      assert.strictEqual((await raw(sim, "GET", "/api2/json/version", { nodeIndex: 1 })).status, 200)
    } finally {
      await sim.clearFaults({ kind: "responseLost" })
    }
  })

  it("requestHold holds a matching request unanswered until the fault is cleared; others are answered meanwhile", async () => {
    const path = "/nodes/pve/storage/local/content"
    const hold = { kind: "requestHold" as const, node: "pve", method: "GET" as const, path }
    await sim.addFaults([hold])
    let cleared = false
    const answered = new Promise<{ status: number; cleared: boolean }>((resolve) => {
      const stop = sim.watch((record) => {
        if (record._tag !== "Request" || record.request.path !== path) return
        stop()
        resolve({ status: record.request.status ?? 0, cleared })
      })
    })
    const held = raw(sim, "GET", `/api2/json${path}`)
    try {
      // another path of the same node is answered while the listing is held
      assert.strictEqual((await raw(sim, "GET", "/api2/json/nodes/pve/qemu")).status, 200)
      cleared = true
      await sim.clearFaults({ kind: "requestHold" })
      assert.deepStrictEqual(await answered, { status: 200, cleared: true })
      assert.strictEqual((await held).status, 200)
    } finally {
      await sim.clearFaults({ kind: "requestHold" })
    }
  })

  it("requestHold records each held request (RequestHeld); a simulator holding one stops, dropping its connection", async () => {
    const own = await startSimPromise(
      onOwnAddress({ faults: [{ kind: "requestHold", node: "pve", path: "/version" }] })
    )
    let stopped = false
    try {
      const held: Array<{ node: string; method: string; path: string }> = []
      const first = new Promise<void>((resolve) => {
        own.watch((record) => {
          if (record._tag !== "RequestHeld") return
          held.push({ node: record.node, method: record.method, path: record.path })
          resolve()
        })
      })
      const answer = raw(own, "GET", "/api2/json/version").then(
        (r) => `answered ${r.status}`,
        (e: NodeJS.ErrnoException) => e.code ?? String(e)
      )
      await first
      assert.deepStrictEqual(held, [{ node: "pve", method: "GET", path: "/version" }])
      assert.isFalse(
        own.requests().some((r) => r.path === "/version"),
        "a held request is not answered (nor logged)"
      )
      await own.stop()
      stopped = true
      // the connection is dropped: the client sees a reset, not an answer
      assert.strictEqual(await answer, "ECONNRESET")
    } finally {
      if (!stopped) await own.stop()
    }
  })

  it("taskFail fails a task type with the given exitstatus; taskHang keeps it running until aborted", async () => {
    await sim.addFaults([
      { kind: "taskFail", taskType: "qmstop", exitstatus: "VM quit/powerdown failed - got timeout" }
    ])
    const stop = await px.nodes.$("pve").qemu.$(100).status.stop.$post()
    assert.strictEqual((await waitTask(px, "pve", stop)).exitstatus, "VM quit/powerdown failed - got timeout")
    await sim.clearFaults()
    await sim.addFaults([{ kind: "taskHang", taskType: "qmreset" }])
    const reset = await px.nodes.$("pve").qemu.$(100).status.reset.$post()
    // a pause started after the reset does the same simulated work; once it has ended, an unhung reset would have too
    const pause = await px.nodes.$("pve").qemu.$(100).status.suspend.$post()
    assert.strictEqual((await waitTask(px, "pve", pause)).exitstatus, "OK")
    const s = (await px.nodes.$("pve").tasks.$(reset).status.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(s.status, "running")
    assert.isUndefined(s.exitstatus)
    await px.nodes.$("pve").tasks.$(reset).$delete()
    assert.strictEqual((await waitTask(px, "pve", reset)).exitstatus, "interrupted by signal")
    await sim.clearFaults()
    const resume = await px.nodes.$("pve").qemu.$(100).status.resume.$post()
    assert.strictEqual((await waitTask(px, "pve", resume)).exitstatus, "OK")
  })

  it("taskHold keeps a task running after its work until the fault is cleared, then it ends OK; a held task that is stopped is interrupted by signal", async () => {
    const create = (vmid: number) =>
      px.nodes.$("pve").qemu.$post({ vmid, name: `vm${vmid}`, scsi0: "local-lvm:1" } as never) as Promise<string>
    const status = async (upid: string) =>
      (await px.nodes.$("pve").tasks.$(upid).status.$get()) as unknown as Record<string, unknown>
    const vm = (vmid: number) => sim.state().vms.find((v) => v.vmid === vmid)
    await sim.addFaults([
      { kind: "taskHold", taskType: "qmcreate", vmid: 130 },
      { kind: "taskHold", taskType: "qmcreate", vmid: 131 }
    ])
    const held = await create(130)
    // a create started after it does the same simulated work: once it has ended, an unheld one would have too
    assert.strictEqual((await waitTask(px, "pve", await create(132))).exitstatus, "OK")
    const during = await status(held)
    assert.deepStrictEqual([during.status, during.exitstatus], ["running", undefined])
    assert.strictEqual(vm(130)?.lock, "create", "the create holds its VM's lock while held")
    // clearing another VM's hold leaves this one held
    await sim.clearFaults({ kind: "taskHold", vmid: 131 })
    assert.strictEqual((await status(held)).status, "running")
    // cleared: the task goes on as it would have, and ends OK
    await sim.clearFaults({ kind: "taskHold", vmid: 130 })
    assert.strictEqual((await waitTask(px, "pve", held)).exitstatus, "OK")
    assert.deepStrictEqual([vm(130)?.name, vm(130)?.lock], ["vm130", null])

    await sim.addFaults([{ kind: "taskHold", taskType: "qmcreate", vmid: 133 }])
    const stopped = await create(133)
    assert.strictEqual((await waitTask(px, "pve", await create(134))).exitstatus, "OK")
    assert.strictEqual((await status(stopped)).status, "running")
    await px.nodes.$("pve").tasks.$(stopped).$delete()
    assert.strictEqual(
      (await waitTask(px, "pve", stopped)).exitstatus,
      "unable to create VM 133 - interrupted by signal"
    )
    assert.isUndefined(vm(133), "a create stopped while held leaves no VM")
    assert.deepStrictEqual(sim.faults(), [{ kind: "taskHold", taskType: "qmcreate", vmid: 133 }])
    await sim.clearFaults()
  })

  it("vmStuck paused: start ends with qmpstatus paused and the agent never answers", async () => {
    assert.strictEqual((await createVm(110)).exitstatus, "OK")
    await sim.addFaults([{ kind: "vmStuck", vmid: 110, state: "paused" }])
    const start = await px.nodes.$("pve").qemu.$(110).status.start.$post()
    assert.strictEqual((await waitTask(px, "pve", start)).exitstatus, "OK")
    const cur = (await px.nodes.$("pve").qemu.$(110).status.current.$get()) as unknown as Record<string, unknown>
    assert.deepStrictEqual([cur.status, cur.qmpstatus], ["running", "paused"])
    const e = await px.nodes
      .$("pve")
      .qemu.$(110)
      .agent.ping.$post()
      .catch((x: Error) => x.message)
    assert.match(String(e), /return Error 500 QEMU guest agent is not running/)
    await sim.clearFaults()
  })

  it("agentNeverStarts, bridgeMissing, storageFull, lockLeft, guestSshRefused", async () => {
    assert.strictEqual((await createVm(111)).exitstatus, "OK")
    await sim.addFaults([{ kind: "agentNeverStarts", vmid: 111 }])
    const start = await px.nodes.$("pve").qemu.$(111).status.start.$post()
    await waitTask(px, "pve", start)
    const e = await px.nodes
      .$("pve")
      .qemu.$(111)
      .agent["network-get-interfaces"].$get()
      .catch((x: Error) => x.message)
    assert.match(String(e), /QEMU guest agent is not running/)

    assert.strictEqual((await createVm(112, { net0: "virtio,bridge=vmbr1" })).exitstatus, "OK")
    await sim.addFaults([{ kind: "bridgeMissing", node: "pve", bridge: "vmbr1" }])
    const s2 = await px.nodes.$("pve").qemu.$(112).status.start.$post()
    assert.strictEqual((await waitTask(px, "pve", s2)).exitstatus, "bridge 'vmbr1' does not exist")
    const nets = await px.nodes.$("pve").network.$get({ type: "bridge" })
    assert.deepStrictEqual(
      nets.map((n) => n.iface),
      ["vmbr0"]
    )

    await sim.addFaults([{ kind: "storageFull", node: "pve", storage: "local-lvm" }])
    const full = await createVm(113)
    assert.match(
      String(full.exitstatus),
      /^unable to create VM 113 - lvcreate 'pve\/vm-113-disk-0' error: {3}Volume group "pve" has insufficient free space/
    )

    await sim.addFaults([{ kind: "lockLeft", vmid: 100, lock: "backup" }])
    const cfgErr = await px.nodes
      .$("pve")
      .qemu.$(100)
      .config.$put({ description: "x" })
      .catch((x: Error) => x.message)
    assert.match(String(cfgErr), /return Error 500 VM is locked \(backup\)/)
    sim.setVmStatus(100, { lock: null })

    await sim.clearFaults()
    assert.strictEqual((await createVm(114)).exitstatus, "OK")
    const s4 = await px.nodes.$("pve").qemu.$(114).status.start.$post()
    await waitTask(px, "pve", s4)
    const port = await until(
      async () => (sim.state().vms.find((v) => v.vmid === 114)?.guestSshPort as number | null) ?? undefined
    )
    const ip = String(sim.state().vms.find((v) => v.vmid === 114)?.ip)
    const ok = await until(() => sshExec(ip, port, "ubuntu", key, "sudo -n true && cat /etc/machine-id && uname -a"))
    assert.strictEqual(ok.code, 0)
    assert.match(ok.stdout, /^[0-9a-f]{32}\nLinux vm114 6\.8\.0-49-generic .* GNU\/Linux\n$/)
    assert.deepStrictEqual(await sshExec(ip, port, "ubuntu", key, "cloud-init status --wait"), {
      stdout: "status: done\n",
      stderr: "",
      code: 0
    })
    assert.deepStrictEqual(await sshExec(ip, port, "ubuntu", key, "sudo -n systemctl is-active k3s"), {
      stdout: "inactive\n",
      stderr: "",
      code: 3
    })
    await sim.addFaults([{ kind: "guestSshRefused", vmid: 114 }])
    const refused = await sshExec(ip, port, "ubuntu", key, "true").then(
      () => "connected",
      (x: Error & { code?: string }) => x.code
    )
    assert.strictEqual(refused, "ECONNREFUSED")
    await sim.clearFaults()
  })

  it("bridgeInactive: the VM boots but its NIC never gets an IPv4 address", async () => {
    assert.strictEqual((await createVm(115)).exitstatus, "OK")
    await sim.addFaults([{ kind: "bridgeInactive", node: "pve", bridge: "vmbr0" }])
    try {
      const start = await px.nodes.$("pve").qemu.$(115).status.start.$post()
      assert.strictEqual((await waitTask(px, "pve", start)).exitstatus, "OK")
      const ifaces = await until(async () => {
        try {
          return (await px.nodes.$("pve").qemu.$(115).agent["network-get-interfaces"].$get()) as unknown as {
            result: Array<{ name: string; "ip-addresses": Array<{ "ip-address-type": string; "ip-address": string }> }>
          }
        } catch {
          return undefined
        }
      })
      const eth0 = ifaces.result.find((n) => n.name === "eth0")
      assert.deepStrictEqual(
        eth0?.["ip-addresses"].map((a) => a["ip-address-type"]),
        ["ipv6"]
      )
      assert.deepStrictEqual(
        ifaces.result.map((n) => n.name),
        ["lo", "eth0", "docker0", "cni0", "flannel.1"]
      )
      const nets = await px.nodes.$("pve").network.$get({ type: "bridge" })
      assert.strictEqual(nets.find((n) => n.iface === "vmbr0")?.active, 0 as never)
    } finally {
      await sim.clearFaults()
    }
  })

  it("latency delays API requests", async () => {
    await sim.addFaults([{ kind: "latency", ms: 120, transport: "api", node: "pve" }])
    // the latency is real time by design: a lower bound on the monotonic clock (a busy machine only adds to it; the
    // simulator sleeps at least that long on it, also when a timer fires a millisecond early: Clock.test.ts)
    const t0 = performance.now()
    await px.version.$get()
    const took = performance.now() - t0
    await sim.clearFaults()
    assert.isAtLeast(took, 120)
    const last = sim
      .requests()
      .filter((r) => r.transport === "api" && r.path === "/version")
      .at(-1)
    assert.isAtLeast(last?.durationMs ?? 0, 120)
  })
})
