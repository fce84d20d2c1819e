import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type Scenario, type SimHandle, startSimPromise } from "../src/index.js"
import { raw, testScenario } from "./helpers.js"

const SEP = "5e0b7c1a-4a9e-4c1e-9d7f-0a1b2c3d4e5f"
const OPS = "6f1c8d2b-5b0f-4d2f-8e80-1b2c3d4e5f60"
const OPS_SEP = "7a2d9e3c-6c1f-4e3f-9f91-2c3d4e5f6071"

const scenario = (pveVersion: string): Scenario =>
  testScenario({
    pveVersion,
    ipPool: pveVersion.startsWith("9") ? "127.90.2.10" : "127.90.3.10",
    users: [
      {
        userid: "root@pam",
        tokens: [
          { id: "homelab", secret: "0b6c3e2a-1111-4222-8333-944455556666", privsep: false },
          { id: "sep", secret: SEP, privsep: true }
        ]
      },
      {
        userid: "ops@pve",
        tokens: [
          { id: "ci", secret: OPS, privsep: false },
          { id: "narrow", secret: OPS_SEP, privsep: true }
        ]
      }
    ],
    acls: [
      { path: "/", ugid: "ops@pve", role: "PVEAuditor" },
      { path: "/vms", ugid: "ops@pve", role: "PVEVMAdmin" },
      // a deeper ACL replaces what is inherited: NoAccess on one VM
      { path: "/vms/666", ugid: "ops@pve", role: "NoAccess" },
      { path: "/storage/local-lvm", ugid: "ops@pve", role: "PVEDatastoreUser", propagate: false },
      // the privsep token: its own ACL, intersected with its user's privileges
      { path: "/vms/100", ugid: "ops@pve!narrow", role: "PVEVMUser" },
      { path: "/nodes", ugid: "ops@pve!narrow", role: "Administrator" }
    ]
  })

const as = (secret: string, tokenId: string) => ({ Authorization: `PVEAPIToken=${tokenId}=${secret}` })

const get = async (sim: SimHandle, path: string, headers?: Record<string, string>) => {
  const r = await raw(sim, "GET", `/api2/json${path}`, headers === undefined ? {} : { headers })
  return { status: r.status, statusText: r.statusText, data: (JSON.parse(r.body || "null") as { data: unknown })?.data }
}

for (const version of ["9.1.2", "8.4.1"]) {
  const nine = version.startsWith("9")
  describe(`GET /access/permissions (PVE ${version})`, () => {
    let sim: SimHandle
    beforeAll(async () => {
      sim = await startSimPromise(scenario(version))
    })
    afterAll(async () => {
      await sim.stop()
    })

    it("a token without privilege separation has its user's permissions, with ACL propagation and NoAccess", async () => {
      const { data } = await get(sim, "/access/permissions", as(OPS, "ops@pve!ci"))
      const perms = data as Record<string, Record<string, number>>
      assert.deepStrictEqual(Object.keys(perms).sort(), [
        "/",
        "/access",
        "/access/groups",
        "/nodes",
        "/pool",
        "/sdn",
        "/storage",
        "/storage/local-lvm",
        "/vms",
        // every path of the ACL tree is listed, whoever's ACL it is
        "/vms/100"
      ])
      // PVEVMAdmin on /vms replaces the auditor role inherited from /, propagated
      assert.strictEqual(perms["/vms"]?.["VM.Allocate"], 1)
      assert.isUndefined(perms["/vms"]?.["Sys.Audit"])
      // a non-propagating ACL: listed with flag 0, and the auditor privileges are gone there
      assert.deepStrictEqual(perms["/storage/local-lvm"], { "Datastore.AllocateSpace": 0, "Datastore.Audit": 0 })
      // the agent privileges differ between the versions
      assert.strictEqual(perms["/vms"]?.["VM.GuestAgent.Audit"], nine ? 1 : undefined)
      assert.strictEqual(perms["/vms"]?.["VM.Monitor"], nine ? undefined : 1)
      const one = await get(sim, "/access/permissions?path=/vms/666", as(OPS, "ops@pve!ci"))
      assert.deepStrictEqual(one.data, { "/vms/666": {} })
      const vm = await get(sim, "/access/permissions?path=/vms/100", as(OPS, "ops@pve!ci"))
      assert.strictEqual((vm.data as Record<string, Record<string, number>>)["/vms/100"]?.["VM.PowerMgmt"], 1)
    })

    it("a privilege-separated token gets the intersection with its user; another user's permissions need Sys.Audit on /access", async () => {
      const { data } = await get(sim, "/access/permissions", as(OPS_SEP, "ops@pve!narrow"))
      const perms = data as Record<string, Record<string, number>>
      // Administrator on /nodes for the token, but its user only has PVEAuditor there (inherited from /)
      assert.strictEqual(perms["/nodes"]?.["Sys.Audit"], 1)
      assert.isUndefined(perms["/nodes"]?.["Sys.Modify"])
      const vm = await get(sim, "/access/permissions?path=/vms/100", as(OPS_SEP, "ops@pve!narrow"))
      const privs = (vm.data as Record<string, Record<string, number>>)["/vms/100"] ?? {}
      assert.strictEqual(privs["VM.PowerMgmt"], 1)
      assert.isUndefined(privs["VM.Allocate"])
      assert.isUndefined(perms["/vms"])
      // another principal's permissions need Sys.Audit on /access (the user has it through PVEAuditor, this token not)
      const other = await get(sim, "/access/permissions?userid=root@pam", as(OPS_SEP, "ops@pve!narrow"))
      assert.deepStrictEqual([other.status, other.statusText], [403, "Permission check failed (/access, Sys.Audit)"])
      const root = await get(sim, "/access/permissions?path=/", as(SEP, "root@pam!sep"))
      // root@pam's privsep token without any ACL of its own has nothing
      assert.deepStrictEqual(root.data, { "/": {} })
      const rootUser = await get(sim, "/access/permissions?userid=root@pam&path=/")
      const all = (rootUser.data as Record<string, Record<string, number>>)["/"] ?? {}
      assert.strictEqual(all["Permissions.Modify"], 1)
      assert.strictEqual(all["VM.GuestAgent.Unrestricted"], nine ? 1 : undefined)
    })

    it("GET /storage lists the storage configuration the caller may see", async () => {
      const { data } = await get(sim, "/storage")
      assert.deepStrictEqual(
        (data as Array<Record<string, unknown>>).map((s) => [s.storage, s.type, s.content, s.path ?? s.thinpool]),
        [
          ["local", "dir", "backup,import,iso,snippets,vztmpl", "/var/lib/vz"],
          ["local-lvm", "lvmthin", "images,rootdir", "data"]
        ]
      )
      const ops = await get(sim, "/storage?type=lvmthin", as(OPS, "ops@pve!ci"))
      assert.deepStrictEqual(
        (ops.data as Array<Record<string, unknown>>).map((s) => s.storage),
        ["local-lvm"]
      )
    })
  })
}

describe("suspend to disk needs the rights to write the state (API vm_suspend)", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise({
      ...scenario("9.1.2"),
      vms: [{ vmid: 120, node: "pve", name: "box", status: "running", config: { memory: "1024" } }]
    })
  })
  afterAll(async () => {
    await sim.stop()
  })

  it("VM.Config.Disk on the VM and Datastore.AllocateSpace on the state's storage (the one find_vmstate_storage picks, or statestorage), checked before any task", async () => {
    const suspend = (body: string) =>
      raw(sim, "POST", "/api2/json/nodes/pve/qemu/120/status/suspend", {
        headers: { ...as(OPS, "ops@pve!ci"), "Content-Type": "application/x-www-form-urlencoded" },
        body
      })
    // ops@pve may power the VM and change its disks (PVEVMAdmin on /vms), but only audit `local`
    const local = await suspend("todisk=1")
    assert.deepStrictEqual(
      [local.status, local.statusText],
      [403, "Permission check failed (/storage/local, Datastore.AllocateSpace)"]
    )
    assert.strictEqual(sim.state().tasks.length, 0)
    const lvm = await suspend("todisk=1&statestorage=local-lvm")
    assert.strictEqual(lvm.status, 200, lvm.statusText)
  })
})
