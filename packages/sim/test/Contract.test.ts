import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type Scenario, type SimHandle, startSimPromise } from "../src/index.js"
import { type Px, pxClient, raw, testScenario, waitTask } from "./helpers.js"

const SEP_SECRET = "5e0b7c1a-4a9e-4c1e-9d7f-0a1b2c3d4e5f"
const AUD_SECRET = "6f1c8d2b-5b0f-4d2f-8e80-1b2c3d4e5f60"

const scenario = (): Scenario =>
  testScenario({
    ipPool: "127.77.2.10",
    users: [
      {
        userid: "root@pam",
        password: "secret-root-pw",
        tokens: [
          { id: "homelab", secret: "0b6c3e2a-1111-4222-8333-944455556666", privsep: false },
          { id: "sep", secret: SEP_SECRET, privsep: true }
        ]
      },
      { userid: "auditor@pve", password: "aud-pw", tokens: [{ id: "ro", secret: AUD_SECRET, privsep: false }] }
    ],
    acls: [{ path: "/", ugid: "auditor@pve", role: "PVEAuditor" }],
    vms: [
      {
        vmid: 100,
        node: "pve",
        name: "web",
        status: "running",
        config: {
          agent: "1",
          cores: 2,
          memory: "2048",
          net0: "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0",
          scsi0: "local-lvm:vm-100-disk-0,size=32G"
        }
      },
      { vmid: 102, node: "pve", name: "backupping", status: "stopped", lock: "backup" },
      { vmid: 103, node: "pve", name: "paused", status: "running", qmpstatus: "paused" },
      { vmid: 104, node: "pve", name: "protected", status: "stopped", protection: true },
      { vmid: 200, node: "pve2", type: "lxc", name: "ct", status: "running" }
    ]
  })

const TOKEN = "PVEAPIToken=root@pam!homelab=0b6c3e2a-1111-4222-8333-944455556666"

interface Row {
  readonly name: string
  readonly method: string
  readonly path: string
  readonly headers?: Record<string, string>
  readonly body?: string
  readonly auth?: boolean
  readonly status: number
  readonly statusText: string
  /** exact body, or undefined to skip */
  readonly body_?: string
  readonly contentType?: string | null
}

const rows: ReadonlyArray<Row> = [
  {
    name: "version",
    method: "GET",
    path: "/api2/json/version",
    status: 200,
    statusText: "OK",
    body_: '{"data":{"version":"8.4.1","release":"8.4","repoid":"faa83925c9641325"}}',
    contentType: "application/json;charset=UTF-8"
  },
  {
    name: "nextid is a string",
    method: "GET",
    path: "/api2/json/cluster/nextid",
    status: 200,
    statusText: "OK",
    body_: '{"data":"101"}'
  },
  {
    name: "nextid taken",
    method: "GET",
    path: "/api2/json/cluster/nextid?vmid=200",
    status: 400,
    statusText: "Parameter verification failed.",
    body_: '{"data":null,"errors":{"vmid":"VM 200 already exists"},"message":"Parameter verification failed.\\n"}'
  },
  {
    name: "no credentials: 401 No ticket, empty body, no content type",
    method: "GET",
    path: "/api2/json/version",
    auth: false,
    status: 401,
    statusText: "No ticket",
    body_: "",
    contentType: null
  },
  {
    name: "bad token secret",
    method: "GET",
    path: "/api2/json/version",
    headers: { Authorization: "PVEAPIToken=root@pam!homelab=00000000-0000-0000-0000-000000000000" },
    status: 401,
    statusText: "Authentication failed!",
    body_: "",
    contentType: null
  },
  {
    name: "token with a space separator works",
    method: "GET",
    path: "/api2/json/version",
    headers: { Authorization: TOKEN.replace("PVEAPIToken=", "PVEAPIToken ") },
    status: 200,
    statusText: "OK"
  },
  {
    name: "token on /access/ticket",
    method: "POST",
    path: "/api2/json/access/ticket",
    body: "username=root@pam&password=x",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    status: 403,
    statusText: "Permission check failed (URI '/access/ticket' not available with API token, need proper ticket.)"
  },
  {
    name: "unknown path",
    method: "GET",
    path: "/api2/json/foo/bar",
    status: 501,
    statusText: "Method 'GET /foo/bar' not implemented",
    body_: '{"data":null,"message":"Method \'GET /foo/bar\' not implemented\\n"}'
  },
  {
    name: "PATCH",
    method: "PATCH",
    path: "/api2/json/version",
    status: 501,
    statusText: "method 'PATCH' not available",
    contentType: null
  },
  {
    name: "body on DELETE",
    method: "DELETE",
    path: "/api2/json/nodes/pve/qemu/100",
    body: "purge=1",
    status: 501,
    statusText: "Unexpected content for method 'DELETE'",
    contentType: null
  },
  {
    name: "chunked body",
    method: "POST",
    path: "/api2/json/nodes/pve/qemu/100/status/start",
    headers: { "Transfer-Encoding": "chunked", "Content-Type": "application/x-www-form-urlencoded" },
    body: "skiplock=1",
    status: 501,
    statusText: "chunked transfer encoding not supported"
  },
  {
    name: "unsupported content type",
    method: "POST",
    path: "/api2/json/nodes/pve/qemu/100/status/start",
    headers: { "Content-Type": "text/plain" },
    body: "x",
    status: 506,
    statusText: "upload 'Content-Type 'text/plain' not implemented"
  },
  {
    name: "boolean 'true' rejected",
    method: "GET",
    path: "/api2/json/nodes/pve/qemu?full=true",
    status: 400,
    statusText: "Parameter verification failed.",
    body_:
      '{"data":null,"errors":{"full":"type check (\'boolean\') failed - got \'true\'"},"message":"Parameter verification failed.\\n"}'
  },
  {
    name: "unknown param",
    method: "GET",
    path: "/api2/json/nodes/pve/qemu/100/status/current?foo=1",
    status: 400,
    statusText: "Parameter verification failed.",
    body_:
      '{"data":null,"errors":{"foo":"property is not defined in schema and the schema does not allow additional properties"},"message":"Parameter verification failed.\\n"}'
  },
  {
    name: "bad vmid",
    method: "GET",
    path: "/api2/json/nodes/pve/qemu/abc/status/current",
    status: 400,
    statusText: "Parameter verification failed.",
    body_:
      '{"data":null,"errors":{"vmid":"type check (\'integer\') failed - got \'abc\'"},"message":"Parameter verification failed.\\n"}'
  },
  {
    name: "missing VM (or VM on another node)",
    method: "GET",
    path: "/api2/json/nodes/pve2/qemu/100/status/current",
    status: 500,
    statusText: "Configuration file 'nodes/pve2/qemu-server/100.conf' does not exist"
  },
  {
    name: "delete running VM refused synchronously",
    method: "DELETE",
    path: "/api2/json/nodes/pve/qemu/100",
    status: 500,
    statusText: "VM 100 is running - destroy failed",
    body_: '{"data":null,"message":"VM 100 is running - destroy failed\\n"}'
  },
  {
    name: "protected VM",
    method: "DELETE",
    path: "/api2/json/nodes/pve/qemu/104",
    status: 500,
    statusText: "can't remove VM 104 - protection mode enabled"
  },
  {
    name: "config update on a locked VM",
    method: "PUT",
    path: "/api2/json/nodes/pve/qemu/102/config",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: "cores=4",
    status: 500,
    statusText: "VM is locked (backup)"
  },
  {
    name: "async config update on a locked VM fails before the fork",
    method: "POST",
    path: "/api2/json/nodes/pve/qemu/102/config",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: "cores=4",
    status: 500,
    statusText: "VM is locked (backup)"
  },
  {
    name: "config update with a stale digest",
    method: "PUT",
    path: "/api2/json/nodes/pve/qemu/104/config",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: `cores=4&digest=${"0".repeat(40)}`,
    status: 500,
    statusText: "checksum mismatch (file change by other user?)"
  },
  {
    name: "config update without options",
    method: "PUT",
    path: "/api2/json/nodes/pve/qemu/104/config",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: "",
    status: 500,
    statusText: "no options specified"
  },
  {
    name: "shutdown of a paused VM",
    method: "POST",
    path: "/api2/json/nodes/pve/qemu/103/status/shutdown",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: "",
    status: 500,
    statusText: "VM is paused - cannot shutdown"
  },
  {
    name: "reset of a stopped VM",
    method: "POST",
    path: "/api2/json/nodes/pve/qemu/104/status/reset",
    status: 500,
    statusText: "VM 104 not running"
  },
  {
    name: "create with an existing vmid (container on another node)",
    method: "POST",
    path: "/api2/json/nodes/pve/qemu",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: "vmid=200",
    status: 500,
    statusText: "unable to create VM 200 - CT 200 already exists on node 'pve2'"
  },
  {
    name: "raw sshkeys rejected",
    method: "POST",
    path: "/api2/json/nodes/pve/qemu",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: `vmid=150&sshkeys=${encodeURIComponent("ssh-ed25519 AAAAC3Nza me@host")}`,
    status: 400,
    statusText: "Parameter verification failed.",
    body_:
      '{"data":null,"errors":{"sshkeys":"invalid format - invalid urlencoded string: ssh-ed25519 AAAAC3Nza me@host\\n"},"message":"Parameter verification failed.\\n"}'
  },
  {
    name: "token import-from an absolute path is not root",
    method: "POST",
    path: "/api2/json/nodes/pve/qemu",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: `vmid=151&scsi0=${encodeURIComponent("local-lvm:0,import-from=/var/lib/vz/template/iso/x.img")}`,
    status: 500,
    statusText: "Only root can pass arbitrary filesystem paths. at /usr/share/perl5/PVE/Storage.pm line 585."
  },
  {
    name: "token skiplock is not root",
    method: "POST",
    path: "/api2/json/nodes/pve/qemu/102/status/start",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: "skiplock=1",
    status: 400,
    statusText: "Parameter verification failed.",
    body_:
      '{"data":null,"errors":{"skiplock":"Only root may use this option."},"message":"Parameter verification failed.\\n"}'
  },
  {
    name: "import-from refuses iso volumes",
    method: "POST",
    path: "/api2/json/nodes/pve/qemu",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ vmid: 152, scsi0: "local-lvm:0,import-from=local:iso/noble.img" }),
    status: 400,
    statusText: "Parameter verification failed.",
    body_:
      '{"data":null,"errors":{"scsi0":"local:iso/noble.img has wrong type \'iso\' - needs to be \'images\' or \'import\'"},"message":"Parameter verification failed.\\n"}'
  },
  {
    name: "import-from without STORAGE:0",
    method: "POST",
    path: "/api2/json/nodes/pve/qemu",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ vmid: 152, scsi0: "local-lvm:8,import-from=local:import/x.qcow2" }),
    status: 400,
    statusText: "Parameter verification failed."
  },
  {
    name: "download-url .img into import is refused",
    method: "POST",
    path: "/api2/json/nodes/pve/storage/local/download-url",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: "url=http%3A%2F%2F127.0.0.1%2Fx.img&content=import&filename=x.img",
    status: 400,
    statusText: "Parameter verification failed.",
    body_:
      '{"data":null,"errors":{"filename":"invalid filename or wrong extension"},"message":"Parameter verification failed.\\n"}'
  },
  {
    name: "stock 8.x local lacks import (pve2)",
    method: "POST",
    path: "/api2/json/nodes/pve2/storage/local/download-url",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: "url=http%3A%2F%2F127.0.0.1%2Fx.qcow2&content=import&filename=x.qcow2",
    nodeIndex: 1,
    status: 500,
    statusText: "storage 'local' is not configured for content-type 'import'"
  } as Row,
  {
    name: "download-url to lvmthin",
    method: "POST",
    path: "/api2/json/nodes/pve/storage/local-lvm/download-url",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: "url=http%3A%2F%2F127.0.0.1%2Fx.iso&content=iso&filename=x.iso",
    status: 500,
    statusText: "can't upload to storage type 'lvmthin', not a file based storage!"
  },
  {
    name: "snippets cannot be uploaded through the API",
    method: "POST",
    path: "/api2/json/nodes/pve/storage/local/download-url",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: "url=http%3A%2F%2F127.0.0.1%2Fu.yaml&content=snippets&filename=u.yaml",
    status: 400,
    statusText: "Parameter verification failed.",
    body_:
      '{"data":null,"errors":{"content":"value \'snippets\' does not have a value in the enumeration \'iso, vztmpl, import\'"},"message":"Parameter verification failed.\\n"}'
  },
  {
    name: "checksum requires checksum-algorithm",
    method: "POST",
    path: "/api2/json/nodes/pve/storage/local/download-url",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: "url=http%3A%2F%2F127.0.0.1%2Fx.iso&content=iso&filename=x.iso&checksum=abc",
    status: 400,
    statusText: "Parameter verification failed.",
    body_:
      '{"data":null,"errors":{"checksum-algorithm":"missing property required by \'checksum\'"},"message":"Parameter verification failed.\\n"}'
  },
  {
    name: "bad task upid",
    method: "GET",
    path: "/api2/json/nodes/pve/tasks/nonsense/status",
    status: 400,
    statusText: "Parameter verification failed.",
    body_: '{"data":null,"errors":{"upid":"unable to parse worker upid"},"message":"Parameter verification failed.\\n"}'
  },
  {
    name: "FQDN as node name",
    method: "GET",
    path: "/api2/json/nodes/pve.example.com/qemu",
    status: 400,
    statusText: "Parameter verification failed.",
    body_:
      '{"data":null,"errors":{"node":"invalid format - value does not look like a valid node name\\n"},"message":"Parameter verification failed.\\n"}'
  },
  {
    name: "path parameter conflicting with the query",
    method: "GET",
    path: "/api2/json/nodes/pve/qemu/100/status/current?vmid=101",
    status: 400,
    statusText: "Parameter verification failed.",
    body_:
      '{"data":null,"errors":{"vmid":"duplicate parameter (already defined in URI) with conflicting values!"},"message":"Parameter verification failed.\\n"}'
  },
  {
    name: "no such API format",
    method: "GET",
    path: "/api2/xml/version",
    status: 501,
    statusText: "no such uri",
    body_: "no such uri",
    contentType: null
  },
  {
    name: "path outside /api2",
    method: "GET",
    path: "/foo",
    status: 500,
    statusText: "no such file '/foo'",
    contentType: null
  },
  {
    name: "unknown node",
    method: "GET",
    path: "/api2/json/nodes/nope/qemu",
    status: 500,
    statusText: "hostname lookup 'nope' failed - failed to get address info for: nope: Name or service not known"
  }
]

describe("contract: status lines, bodies and error strings", () => {
  let sim: SimHandle
  let px: Px
  beforeAll(async () => {
    sim = await startSimPromise(scenario())
    px = pxClient(sim)
  })
  afterAll(async () => {
    await sim.stop()
  })

  for (const row of rows)
    it(row.name, async () => {
      const headers: Record<string, string> = {
        ...(row.auth === false ? {} : { Authorization: TOKEN }),
        ...(row.headers ?? {})
      }
      const r = await raw(sim, row.method, row.path, {
        headers,
        ...(row.body !== undefined ? { body: row.body } : {}),
        auth: row.auth !== false,
        nodeIndex: (row as { nodeIndex?: number }).nodeIndex ?? 0
      })
      assert.strictEqual(r.status, row.status)
      assert.strictEqual(r.statusText, row.statusText)
      if (row.body_ !== undefined) assert.strictEqual(r.body, row.body_)
      if (row.contentType === null) assert.isUndefined(r.headers["content-type"])
      else if (row.status < 500 || row.contentType !== undefined)
        assert.strictEqual(
          r.headers["content-type"],
          row.contentType ?? (row.status === 401 ? undefined : "application/json;charset=UTF-8")
        )
      if (row.status >= 400) assert.strictEqual(r.headers.connection, "close")
      assert.strictEqual(r.headers.server, "pve-api-daemon/3.0")
    })

  it("§9.1.3 typing: 0/1 booleans, memory and agent as strings, loadavg strings", async () => {
    const cfg = (await px.nodes.$("pve").qemu.$(100).config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(cfg.memory, "2048")
    assert.strictEqual(cfg.agent, "1")
    assert.strictEqual(cfg.cores, 2)
    assert.match(String(cfg.digest), /^[0-9a-f]{40}$/)
    const prot = (await px.nodes.$("pve").qemu.$(104).config.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(prot.protection, 1)
    const status = (await px.nodes.$("pve").status.$get()) as unknown as { loadavg: Array<unknown> }
    assert.deepStrictEqual(status.loadavg, ["0.12", "0.10", "0.09"])
  })

  it("§9.1.6 status vs qmpstatus: paused VM is running in lists, paused in resources and status/current", async () => {
    const list = await px.nodes.$("pve").qemu.$get()
    assert.strictEqual(list.find((v) => v.vmid === 103)?.status, "running")
    const cur = (await px.nodes.$("pve").qemu.$(103).status.current.$get()) as unknown as Record<string, unknown>
    assert.strictEqual(cur.status, "running")
    assert.strictEqual(cur.qmpstatus, "paused")
    const res = await px.cluster.resources.$get({ type: "vm" })
    assert.strictEqual(res.find((r) => r.vmid === 103)?.status, "paused")
    assert.deepStrictEqual(
      res.map((r) => r.id),
      ["qemu/100", "qemu/102", "qemu/103", "qemu/104", "lxc/200"]
    )
    assert.strictEqual(res.find((r) => r.vmid === 102)?.lock, "backup")
  })

  it("§9.1.2 already running shows as task exitstatus, not as an HTTP error", async () => {
    const upid = await px.nodes.$("pve").qemu.$(100).status.start.$post()
    const s = await waitTask(px, "pve", upid)
    assert.strictEqual(s.exitstatus, "VM 100 already running")
    assert.strictEqual(s.tokenid, "homelab")
    assert.strictEqual(s.user, "root@pam")
    const log = await px.nodes.$("pve").tasks.$(upid).log.$get()
    assert.deepStrictEqual(log.at(-1), { n: log.length, t: "TASK ERROR: VM 100 already running" })
  })

  it("§9.1.2 locked VM start fails inside the task", async () => {
    const upid = await px.nodes.$("pve").qemu.$(102).status.start.$post()
    assert.strictEqual((await waitTask(px, "pve", upid)).exitstatus, "VM is locked (backup)")
  })

  it("§9.1.5 create writes a lock:create stub synchronously; a failed create removes the VM", async () => {
    // The create task is held (taskHang) while the stub is inspected, so the check does not race the task.
    await sim.addFaults([{ kind: "taskHang", taskType: "qmcreate", vmid: 160 }])
    try {
      const upid = await px.nodes.$("pve").qemu.$post({ vmid: 160, name: "doomed", scsi0: "local-lvm:4" })
      const list = await px.nodes.$("pve").qemu.$get()
      const stub = list.find((v) => v.vmid === 160)
      assert.strictEqual(stub?.lock, "create")
      assert.strictEqual(stub?.name, "VM 160")
      const again = await px.nodes
        .$("pve2")
        .qemu.$post({ vmid: 160 })
        .catch((e: Error) => e.message)
      assert.match(String(again), /return Error 500 unable to create VM 160 - VM 160 already exists on node 'pve'/)
      await px.nodes.$("pve").tasks.$(String(upid)).$delete()
      const s = await waitTask(px, "pve", upid)
      assert.match(String(s.exitstatus), /^unable to create VM 160 - /)
      const after = await px.nodes.$("pve").qemu.$get()
      assert.isUndefined(after.find((v) => v.vmid === 160))
    } finally {
      await sim.clearFaults()
    }
    await sim.addFaults([{ kind: "taskFail", taskType: "qmcreate", exitstatus: "simulated failure" }])
    try {
      const upid = await px.nodes.$("pve").qemu.$post({ vmid: 161, name: "doomed", scsi0: "local-lvm:4" })
      const s = await waitTask(px, "pve", upid)
      assert.strictEqual(s.exitstatus, "unable to create VM 161 - simulated failure")
      assert.isUndefined((await px.nodes.$("pve").qemu.$get()).find((v) => v.vmid === 161))
    } finally {
      await sim.clearFaults()
    }
  })

  it("§9.1.8 a privsep token with no ACL gets empty lists and 403 on objects", async () => {
    const sep = pxClient(sim, 0, { tokenID: "root@pam!sep", tokenSecret: SEP_SECRET })
    assert.deepStrictEqual(await sep.nodes.$("pve").qemu.$get(), [])
    assert.deepStrictEqual(await sep.cluster.resources.$get({ type: "vm" }), [])
    assert.deepStrictEqual(await sep.nodes.$("pve").storage.$get(), [])
    const e = await sep.nodes
      .$("pve")
      .qemu.$(100)
      .status.current.$get()
      .catch((x: Error) => x.message)
    assert.match(String(e), /connection failed with 403 Permission check failed \(\/vms\/100, VM\.Audit\)/)
  })

  it("a non-root user's token sees what its ACL allows and gets 403 elsewhere; permissions are checked before existence", async () => {
    const aud = pxClient(sim, 0, { tokenID: "auditor@pve!ro", tokenSecret: AUD_SECRET })
    assert.deepStrictEqual(
      (await aud.nodes.$("pve").qemu.$get()).map((v) => v.vmid),
      [100, 102, 103, 104]
    )
    const e = await aud.nodes
      .$("pve")
      .qemu.$(104)
      .status.start.$post()
      .catch((x: Error) => x.message)
    assert.match(String(e), /connection failed with 403 Permission check failed \(\/vms\/104, VM\.PowerMgmt\)/)
    const sep = pxClient(sim, 0, { tokenID: "root@pam!sep", tokenSecret: SEP_SECRET })
    const missing = await sep.nodes
      .$("pve")
      .qemu.$(999)
      .$delete()
      .catch((x: Error) => x.message)
    assert.match(String(missing), /connection failed with 403 Permission check failed \(\/vms\/999, VM\.Allocate\)/)
  })

  it("§9.1.9 download-url: existing file refused without checksum, accepted with the matching one, mismatch fails", async () => {
    const origin = sim.info.imageOrigin?.files.find((f) => f.path === "/img/noble.img")
    assert.isDefined(origin)
    const url = origin?.url ?? ""
    const dl = async (extra: Record<string, string> = {}) => {
      const upid = await px.nodes
        .$("pve")
        .storage.$("local")
        ["download-url"].$post({ url, content: "iso", filename: "noble.img", ...extra } as never)
      return { upid, s: await waitTask(px, "pve", upid) }
    }
    const first = await dl()
    assert.strictEqual(first.s.exitstatus, "OK")
    assert.match(first.upid, /:download:noble\.img:root@pam!homelab:$/)
    const again = await dl()
    assert.strictEqual(again.s.exitstatus, "refusing to override existing file '/var/lib/vz/template/iso/noble.img'")
    const same = await dl({ checksum: origin?.sha256 ?? "", "checksum-algorithm": "sha256" })
    assert.strictEqual(same.s.exitstatus, "OK")
    const log = await px.nodes.$("pve").tasks.$(same.upid).log.$get()
    assert.deepStrictEqual(
      log.map((l) => l.t),
      [
        `downloading ${url} to /var/lib/vz/template/iso/noble.img`,
        "calculating checksum of existing file...OK, got correct file already, no need to download",
        "TASK OK"
      ]
    )
    const wrong = "0".repeat(64)
    // an existing file with a different checksum: Tools.pm download_file_from_url aborts (no override)
    const differs = await dl({ checksum: wrong, "checksum-algorithm": "sha256" })
    assert.strictEqual(
      differs.s.exitstatus,
      `checksum mismatch: got '${origin?.sha256}' != expect '${wrong}', aborting`
    )
    const upid = await px.nodes
      .$("pve")
      .storage.$("local")
      ["download-url"].$post({
        url,
        content: "iso",
        filename: "other.iso",
        checksum: wrong,
        "checksum-algorithm": "sha256"
      } as never)
    const s = await waitTask(px, "pve", upid)
    assert.strictEqual(s.exitstatus, `checksum mismatch: got '${origin?.sha256}' != expect '${wrong}'`)
    const missing = await px.nodes
      .$("pve")
      .storage.$("local")
      ["download-url"].$post({ url: `${url}.nope`, content: "iso", filename: "gone.iso" } as never)
    assert.strictEqual((await waitTask(px, "pve", missing)).exitstatus, "download failed: ERROR 404: Not Found")
  })

  it("download-url normalises the file name as pve-storage does: the path up to the last / or \\ dropped, characters outside [a-zA-Z0-9_.-] become _", async () => {
    const origin = sim.info.imageOrigin?.files.find((f) => f.path === "/img/noble.img")
    const fetchAs = async (filename: string) => {
      const upid = await px.nodes
        .$("pve")
        .storage.$("local")
        ["download-url"].$post({ url: origin?.url ?? "", content: "iso", filename } as never)
      assert.strictEqual((await waitTask(px, "pve", upid)).exitstatus, "OK")
      return upid
    }
    assert.match(await fetchAs("ubuntu 24.04+1.img"), /:download:ubuntu_24\.04_1\.img:/)
    assert.match(await fetchAs("C:\\images\\noble (2).img"), /:download:noble__2_\.img:/)
    const volids = ((await px.nodes.$("pve").storage.$("local").content.$get()) as Array<{ volid: string }>).map(
      (c) => c.volid
    )
    assert.includeMembers(volids, ["local:iso/ubuntu_24.04_1.img", "local:iso/noble__2_.img"])
  })

  it("DELETE …/content/{volume}: the volume id takes the rest of the path, a raw `/` included (pve-storage's fragmentDelimiter)", async () => {
    const origin = sim.info.imageOrigin?.files.find((f) => f.path === "/img/noble.img")
    const fetchIt = async (filename: string) => {
      const upid = await px.nodes
        .$("pve")
        .storage.$("local")
        ["download-url"].$post({ url: origin?.url ?? "", content: "iso", filename } as never)
      assert.strictEqual((await waitTask(px, "pve", upid)).exitstatus, "OK")
    }
    const volids = async () =>
      ((await px.nodes.$("pve").storage.$("local").content.$get()) as Array<{ volid: string }>).map((c) => c.volid)
    await fetchIt("raw-slash.iso")
    await fetchIt("encoded-slash.iso")
    const del = async (path: string) => {
      const r = await raw(sim, "DELETE", path)
      assert.strictEqual(r.status, 200, r.body)
      return (JSON.parse(r.body) as { data: string }).data
    }
    // `pvesh delete /nodes/pve/storage/local/content/local:iso/x.iso` and the GUI's encoded form reach the same handler
    const rawUpid = await del("/api2/json/nodes/pve/storage/local/content/local:iso/raw-slash.iso")
    assert.match(rawUpid, /:imgdel:/)
    // the imgdel UPID carries `%3a` (encode_text of the volid): its status is read with the UPID encoded
    assert.strictEqual((await waitTask(px, "pve", encodeURIComponent(rawUpid))).exitstatus, "OK")
    const encodedUpid = await del(
      `/api2/json/nodes/pve/storage/local/content/${encodeURIComponent("local:iso/encoded-slash.iso")}`
    )
    assert.strictEqual((await waitTask(px, "pve", encodeURIComponent(encodedUpid))).exitstatus, "OK")
    const left = await volids()
    assert.notInclude(left, "local:iso/raw-slash.iso")
    assert.notInclude(left, "local:iso/encoded-slash.iso")
    const gone = await raw(sim, "DELETE", "/api2/json/nodes/pve/storage/local/content/local:iso/raw-slash.iso")
    assert.strictEqual(gone.status, 500)
    assert.include(gone.body, "volume 'local:iso/raw-slash.iso' does not exist")
  })

  it("proxmox-api in ticket mode (username/password) works against the sim", async () => {
    const proxmoxApi = (await import("proxmox-api")).default
    const { Agent, fetch: undiciFetch } = await import("undici")
    const n = sim.info.nodes[0]
    const u = new URL(n?.api ?? "")
    const agent = new Agent({ connect: { ca: sim.info.ca } })
    const pw = proxmoxApi({
      host: u.hostname,
      port: Number(u.port),
      username: "root@pam",
      password: "secret-root-pw",
      fetch: ((url: string, init: object) => undiciFetch(url, { ...init, dispatcher: agent })) as never
    })
    assert.deepStrictEqual(
      (await pw.nodes.$get()).map((x) => x.node),
      ["pve", "pve2"]
    )
    await pw.nodes.$("pve").qemu.$(104).config.$put({ description: "via ticket" })
    const bad = proxmoxApi({
      host: u.hostname,
      port: Number(u.port),
      username: "root@pam",
      password: "nope",
      fetch: ((url: string, init: object) => undiciFetch(url, { ...init, dispatcher: agent })) as never
    })
    const e = await bad.version.$get().catch((x: Error & { cause?: Error }) => x)
    assert.match((e as Error).message, /^Auth https:\/\/127\.0\.0\.1:\d+\/api2\/json\/access\/ticket Failed!$/)
    assert.match(String((e as { cause?: Error }).cause?.message), /^login failed with 401: authentication failure/)
  })

  it("ticket + CSRF auth; wrong password gives 401 authentication failure", async () => {
    const r = await raw(sim, "POST", "/api2/json/access/ticket", {
      auth: false,
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "username=root@pam&password=secret-root-pw"
    })
    assert.strictEqual(r.status, 200)
    const d = (JSON.parse(r.body) as { data: { ticket: string; CSRFPreventionToken: string; username: string } }).data
    assert.strictEqual(d.username, "root@pam")
    assert.match(d.ticket, /^PVE:root@pam:[0-9A-F]{8}::/)
    assert.match(d.CSRFPreventionToken, /^[0-9A-F]{8}:/)
    const cookie = `PVEAuthCookie=${encodeURIComponent(d.ticket)}`
    const get = await raw(sim, "GET", "/api2/json/version", { auth: false, headers: { Cookie: cookie } })
    assert.strictEqual(get.status, 200)
    const noCsrf = await raw(sim, "POST", "/api2/json/nodes/pve/qemu/104/status/start", {
      auth: false,
      headers: { Cookie: cookie }
    })
    assert.deepStrictEqual(
      [noCsrf.status, noCsrf.statusText, noCsrf.body],
      [401, "Permission denied - invalid csrf token", ""]
    )
    const withCsrf = await raw(sim, "PUT", "/api2/json/nodes/pve/qemu/104/config", {
      auth: false,
      headers: {
        Cookie: cookie,
        CSRFPreventionToken: d.CSRFPreventionToken,
        "Content-Type": "application/x-www-form-urlencoded"
      },
      body: "description=hello"
    })
    assert.deepStrictEqual([withCsrf.status, withCsrf.body], [200, '{"data":null}'])
    const bad = await raw(sim, "POST", "/api2/json/access/ticket", {
      auth: false,
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "username=root@pam&password=wrong"
    })
    assert.deepStrictEqual([bad.status, bad.statusText, bad.body], [401, "authentication failure", ""])
  })

  it("proxmox-api surfaces 400/500 as 'return Error' and others as 'connection failed with'", async () => {
    const e1 = await px.nodes
      .$("pve")
      .qemu.$(100)
      .$delete()
      .catch((x: Error) => x.message)
    assert.match(
      String(e1),
      /^DELETE https:\/\/127\.0\.0\.1:\d+\/api2\/json\/nodes\/pve\/qemu\/100 return Error 500 VM 100 is running - destroy failed: /
    )
    await sim.addFaults([{ kind: "proxy596", node: "pve2" }])
    try {
      const e2 = await px.nodes
        .$("pve2")
        .qemu.$get()
        .catch((x: Error) => x.message)
      assert.match(String(e2), /connection failed with 596 Connection timed out/)
    } finally {
      await sim.clearFaults({ kind: "proxy596" })
    }
    const via = await px.nodes.$("pve2").lxc.$get()
    assert.strictEqual(via.length, 1)
  })

  it("WARNINGS counts as success: destroy with a vanished disk warns", async () => {
    const upid = await px.nodes.$("pve").qemu.$post({ vmid: 170, scsi0: "local-lvm:1" })
    assert.strictEqual((await waitTask(px, "pve", upid)).exitstatus, "OK")
    // attach a volume that does not exist on the storage (an LV removed behind PVE's back)
    await px.nodes
      .$("pve")
      .qemu.$(170)
      .config.$put({ scsi1: "local-lvm:vm-170-disk-5" } as never)
    const del = await px.nodes.$("pve").qemu.$(170).$delete()
    const s = await waitTask(px, "pve", del)
    assert.strictEqual(s.exitstatus, "WARNINGS: 1")
    const log = await px.nodes.$("pve").tasks.$(del).log.$get()
    assert.deepStrictEqual(
      log.map((l) => l.t),
      [
        "WARN: Could not remove disk 'local-lvm:vm-170-disk-5', check manually: no such logical volume pve/vm-170-disk-5",
        "TASK WARNINGS: 1"
      ]
    )
    assert.isUndefined((await px.nodes.$("pve").qemu.$get()).find((v) => v.vmid === 170))
  })
})

describe("contract: /cluster/resources RRD lag", () => {
  let sim: SimHandle
  let px: Px
  beforeAll(async () => {
    sim = await startSimPromise(
      testScenario({
        ipPool: "127.77.3.10",
        timeScale: 1,
        timings: { unauthorizedDelayMs: 0, rrdIntervalMs: 600_000 },
        // the create task is held until the sim stops: its lock is observed, never raced
        faults: [{ kind: "taskHold", taskType: "qmcreate", vmid: 300 }]
      })
    )
    px = pxClient(sim)
  })
  afterAll(async () => {
    await sim.stop()
  })

  it("a fresh VM shows status unknown and no name until the next broadcast; lock is live", async () => {
    await px.nodes.$("pve").qemu.$post({ vmid: 300, name: "fresh" })
    const res = await px.cluster.resources.$get({ type: "vm" })
    const e = res.find((r) => r.vmid === 300) as Record<string, unknown> | undefined
    assert.deepStrictEqual(e, {
      id: "qemu/300",
      type: "qemu",
      vmid: 300,
      node: "pve",
      status: "unknown",
      lock: "create"
    })
  })
})
