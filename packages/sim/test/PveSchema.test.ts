import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import {
  ApiRouter,
  checkParameters,
  checkReturns,
  DEFAULT_PVE_VERSION,
  keysOfTypetext,
  type PveSchemaProp,
  type SimHandle,
  startSimPromise
} from "../src/index.js"
import { vmConfigKeySpec } from "../src/internal/QemuApi.js"
import { pxClient, raw, testScenario, until, waitTask } from "./helpers.js"
import { endpointOf, pveSchema } from "./pveApi.js"

const VERSIONS = [
  { schema: "9.1", pve: DEFAULT_PVE_VERSION, pool: "127.90.5.10" },
  { schema: "8.4", pve: "8.4.1", pool: "127.90.6.10" }
] as const

describe("the simulator's endpoints are PVE's", () => {
  it("every endpoint the simulator serves exists in both schemas (the vendored subset is complete)", () => {
    const endpoints = new ApiRouter({ state: {}, auth: {} } as never).endpoints().filter((e) => e !== "GET /")
    for (const v of ["8.4", "9.1"] as const) {
      const schema = pveSchema(v)
      assert.deepStrictEqual(
        endpoints.filter((e) => schema[e] === undefined),
        [],
        `pve-${v}`
      )
      assert.strictEqual(Object.keys(schema).length, new Set(endpoints).size)
    }
  })
})

for (const v of VERSIONS) {
  describe(`the simulator's responses pass PVE ${v.schema}'s returns schema`, () => {
    const schema = pveSchema(v.schema)
    let sim: SimHandle
    beforeAll(async () => {
      sim = await startSimPromise(
        testScenario({
          pveVersion: v.pve,
          ipPool: v.pool,
          nodes: [
            {
              ...testScenario().nodes[0],
              name: "pve",
              storages: [
                ...(testScenario().nodes[0]?.storages ?? []),
                { id: "fast", type: "lvmthin", content: ["images"], capacity: "100G" }
              ]
            },
            ...testScenario().nodes.slice(1)
          ],
          vms: [
            {
              vmid: 100,
              node: "pve",
              name: "web",
              status: "running",
              tags: "k8s;prod",
              config: {
                agent: "1",
                cores: 2,
                memory: "2048",
                net0: "virtio=BC:24:11:90:05:00,bridge=vmbr0",
                scsi0: "local-lvm:vm-100-disk-0,size=4G",
                ide2: "local-lvm:vm-100-cloudinit,media=cdrom",
                ipconfig0: "ip=dhcp",
                ciuser: "ubuntu",
                onboot: "1"
              }
            },
            {
              vmid: 101,
              node: "pve",
              name: "stopped",
              status: "stopped",
              config: {
                scsi0: "local-lvm:vm-101-disk-0,size=4G",
                cores: 1,
                net0: "virtio=BC:24:11:90:05:01,bridge=vmbr0"
              }
            },
            { vmid: 200, node: "pve2", type: "lxc", name: "ct", status: "running" }
          ]
        })
      )
    })
    afterAll(async () => {
      await sim.stop()
    })

    const checked = new Set<string>()
    const call = async (method: string, path: string, params: Record<string, string> = {}) => {
      const body = new URLSearchParams(params).toString()
      const r =
        method === "GET" || method === "DELETE"
          ? await raw(sim, method, `/api2/json${path}${body === "" ? "" : `?${body}`}`)
          : await raw(sim, method, `/api2/json${path}`, {
              headers: { "Content-Type": "application/x-www-form-urlencoded" },
              body
            })
      assert.strictEqual(r.status, 200, `${method} ${path}: ${r.status} ${r.statusText}`)
      const e = endpointOf(schema, method, path)
      assert.isDefined(e, `${method} ${path} is not in the schema`)
      const data = (JSON.parse(r.body) as { data: unknown }).data
      assert.deepStrictEqual(
        checkParameters(schema[e?.key ?? ""] ?? {}, { ...e?.pathParams, ...params }),
        {},
        `request ${method} ${path}`
      )
      assert.deepStrictEqual(checkReturns(schema[e?.key ?? ""] ?? {}, data), {}, `response of ${method} ${path}`)
      checked.add(e?.key ?? "")
      return data
    }

    it("every endpoint, read and write", async () => {
      const px = pxClient(sim)
      for (const p of ["/version", "/cluster", "/cluster/status", "/cluster/resources", "/cluster/nextid", "/nodes"])
        await call("GET", p)
      await call("GET", "/cluster/resources", { type: "vm" })
      await call("GET", "/access")
      await call("GET", "/access/permissions")
      await call("GET", "/access/permissions", { path: "/vms" })
      await call("GET", "/storage")
      for (const p of ["", "/version", "/status", "/network", "/qemu", "/lxc", "/storage", "/tasks"])
        await call("GET", `/nodes/pve${p}`)
      await call("GET", "/nodes/pve/qemu", { full: "1" })
      await call("GET", "/nodes/pve/network", { type: "any_bridge" })
      await call("GET", "/nodes/pve/capabilities/qemu/cpu")
      for (const p of ["", "/status", "/status/current", "/config", "/pending", "/agent"])
        await call("GET", `/nodes/pve/qemu/100${p}`)
      await call("GET", "/nodes/pve/qemu/101/status/current")
      await until(async () => ((await px.nodes.$("pve").qemu.$(100).agent.ping.$post()) as unknown) ?? true)
      await call("POST", "/nodes/pve/qemu/100/agent/ping")
      for (const c of ["network-get-interfaces", "get-host-name", "get-osinfo", "info", "get-time", "get-timezone"])
        await call("GET", `/nodes/pve/qemu/100/agent/${c}`)
      await call("POST", "/nodes/pve/qemu/100/agent", { command: "ping" })
      const exec = (await call("POST", "/nodes/pve/qemu/100/agent/exec", { command: "hostname" })) as { pid: number }
      await until(async () => {
        const s = (await call("GET", "/nodes/pve/qemu/100/agent/exec-status", { pid: String(exec.pid) })) as {
          exited: number
        }
        return s.exited === 1 ? s : undefined
      })
      for (const p of ["", "/status", "/content"]) await call("GET", `/nodes/pve/storage/local${p}`)
      await call("GET", "/nodes/pve/storage/local/content", { content: "iso" })
      // writes
      await call("PUT", "/nodes/pve/qemu/101/config", { cores: "2", description: "x" })
      const cfgTask = (await call("POST", "/nodes/pve/qemu/101/config", { tags: "a;b" })) as string
      await waitTask(px, "pve", cfgTask)
      await call("PUT", "/nodes/pve/qemu/101/cloudinit")
      // a running VM's cloud-init changes wait for its drive: added, changed, deleted
      await call("PUT", "/nodes/pve/qemu/100/config", { searchdomain: "lan", ciuser: "ops", delete: "ipconfig0" })
      const ci = (await call("GET", "/nodes/pve/qemu/100/cloudinit")) as Array<Record<string, unknown>>
      assert.deepStrictEqual(
        [...ci].sort((a, b) => String(a.key).localeCompare(String(b.key))),
        [
          { key: "ciuser", value: "ubuntu", pending: "ops" },
          { key: "ipconfig0", delete: 1 },
          { key: "searchdomain", pending: "lan" }
        ]
      )
      const resize = (await call("PUT", "/nodes/pve/qemu/101/resize", { disk: "scsi0", size: "+1G" })) as string
      await call("GET", `/nodes/pve/tasks/${encodeURIComponent(resize)}`)
      await waitTask(px, "pve", resize)
      await call("GET", `/nodes/pve/tasks/${encodeURIComponent(resize)}/status`)
      await call("GET", `/nodes/pve/tasks/${encodeURIComponent(resize)}/log`)
      await call("GET", "/nodes/pve/tasks", { vmid: "101" })
      const move = (await call("POST", "/nodes/pve/qemu/101/move_disk", {
        disk: "scsi0",
        storage: "fast",
        delete: "1"
      })) as string
      assert.strictEqual((await waitTask(px, "pve", move)).exitstatus, "OK")
      for (const action of ["suspend", "resume", "reset", "reboot", "shutdown", "start", "stop"]) {
        const upid = (await call("POST", `/nodes/pve/qemu/100/status/${action}`)) as string
        await waitTask(px, "pve", upid)
      }
      const origin = sim.info.imageOrigin?.files.find((f) => f.path === "/img/noble.qcow2")
      const dl = (await call("POST", "/nodes/pve/storage/local/download-url", {
        url: origin?.url ?? "",
        content: "import",
        filename: "noble.qcow2",
        checksum: origin?.sha256 ?? "",
        "checksum-algorithm": "sha256"
      })) as string
      assert.strictEqual((await waitTask(px, "pve", dl)).exitstatus, "OK")
      const info = (await call(
        "GET",
        `/nodes/pve/storage/local/content/${encodeURIComponent("local:import/noble.qcow2")}`
      )) as Record<string, unknown>
      assert.strictEqual(info.path, "/var/lib/vz/import/noble.qcow2")
      const create = (await call("POST", "/nodes/pve/qemu", {
        vmid: "102",
        name: "new",
        memory: "1024",
        scsi0: "local-lvm:0,import-from=local:import/noble.qcow2",
        net0: "virtio,bridge=vmbr0",
        ide2: "local-lvm:cloudinit",
        sshkeys: encodeURIComponent(
          "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEhAmuBu27BziINWHhHhGuib4xxdWR3d7NpM4kj7tQ8N me@host"
        )
      })) as string
      assert.strictEqual((await waitTask(px, "pve", create)).exitstatus, "OK")
      const destroy = (await call("DELETE", "/nodes/pve/qemu/102", { purge: "1" })) as string
      assert.strictEqual((await waitTask(px, "pve", destroy)).exitstatus, "OK")
      const del = (await call(
        "DELETE",
        `/nodes/pve/storage/local/content/${encodeURIComponent("local:import/noble.qcow2")}`
      )) as string
      // the imgdel UPID carries `%3a` (encode_text of the volid): only an encoded path reads its status
      await call("GET", `/nodes/pve/tasks/${encodeURIComponent(del)}/status`)
      const hang = (await call("POST", "/nodes/pve/qemu/101/status/start")) as string
      await call("DELETE", `/nodes/pve/tasks/${encodeURIComponent(hang)}`)
    })

    it("… and every endpoint was checked", () => {
      const missing = Object.keys(schema).filter(
        (k) => !checked.has(k) && !["POST /access/ticket", "POST /nodes/{node}/storage/{storage}/upload"].includes(k)
      )
      assert.deepStrictEqual(missing, [])
    })
  })
}

describe("the checker is pve-common's", () => {
  const create = pveSchema("9.1")["POST /nodes/{node}/qemu"] ?? {}
  const errors = (params: Record<string, string>) => checkParameters(create, { node: "pve", vmid: "100", ...params })

  it("property strings: unknown keys, types inside, booleans as parse_boolean; top-level booleans 0/1 only", () => {
    assert.deepStrictEqual(errors({ net0: "virtio,bridge=vmbr0,foo=1" }), {
      net0: "invalid format - invalid key in comma-separated list property: foo\n"
    })
    assert.deepStrictEqual(errors({ agent: "abc" }), {
      agent: "invalid format - format error\nagent.enabled: type check ('boolean') failed - got 'abc'\n"
    })
    assert.deepStrictEqual(errors({ memory: "abc" }), {
      memory: "invalid format - format error\nmemory.current: type check ('integer') failed - got 'abc'\n"
    })
    assert.deepStrictEqual(errors({ ipconfig0: "dhcp" }), {
      ipconfig0: "invalid format - value without key, but schema does not define a default key\n"
    })
    assert.deepStrictEqual(errors({ agent: "enabled=yes,fstrim_cloned_disks=on", scsi0: "local-lvm:1,ssd=true" }), {})
    assert.deepStrictEqual(errors({ onboot: "yes" }), { onboot: "type check ('boolean') failed - got 'yes'" })
    assert.deepStrictEqual(errors({ cores: "abc" }), { cores: "type check ('integer') failed - got 'abc'" })
    assert.deepStrictEqual(errors({ scsi31: "local-lvm:1" }), {
      scsi31: "property is not defined in schema and the schema does not allow additional properties"
    })
  })
})

describe("the simulator's property-string formats are the schema's, key for key", () => {
  /** the parts of a key's spec that must agree (descriptions, defaults and typetexts aside) */
  const slim = (p: PveSchemaProp | undefined) =>
    p === undefined
      ? undefined
      : Object.fromEntries(
          Object.entries(p)
            .filter(
              ([k]) => !["description", "verbose_description", "format_description", "typetext", "default"].includes(k)
            )
            .map(([k, v]) => [k, v === true ? 1 : v])
            .sort(([a], [b]) => String(a).localeCompare(String(b)))
        )
  for (const v of ["8.4", "9.1"] as const) {
    it(`PVE ${v}: net, drives, unused, agent, memory, vga (object formats); ipconfig, cpu, cicustom, boot (named)`, () => {
      const props = pveSchema(v)["POST /nodes/{node}/qemu"]?.parameters?.properties ?? {}
      const nine = v === "9.1"
      for (const [schemaKey, simKey] of [
        ["net[n]", "net0"],
        ["scsi[n]", "scsi0"],
        ["virtio[n]", "virtio0"],
        ["sata[n]", "sata0"],
        ["ide[n]", "ide0"],
        ["efidisk0", "efidisk0"],
        ["tpmstate0", "tpmstate0"],
        ["unused[n]", "unused0"],
        ["agent", "agent"],
        ["memory", "memory"],
        ["vga", "vga"],
        ["ipconfig[n]", "ipconfig0"],
        ["cpu", "cpu"],
        ["cicustom", "cicustom"],
        ["boot", "boot"]
      ] as const) {
        const schema = props[schemaKey]
        const sim = vmConfigKeySpec(simKey, nine)
        assert.isDefined(sim?.propertyString, simKey)
        const fmt = sim?.propertyString ?? {}
        if (typeof schema?.format === "object") {
          assert.deepStrictEqual(
            Object.fromEntries(
              Object.keys(fmt)
                .sort()
                .map((k) => [k, slim(fmt[k])])
            ),
            Object.fromEntries(
              Object.keys(schema.format)
                .sort()
                .map((k) => [k, slim(schema.format?.[k as never])])
            ),
            `${schemaKey} (pve-${v})`
          )
        } else {
          // registered by name: the schema shows the name and a typetext with the keys and their value types
          assert.strictEqual(sim?.formatName, schema?.format, schemaKey)
          const { keys, defaultKey } = keysOfTypetext(schema?.typetext ?? "")
          assert.deepStrictEqual(Object.keys(fmt).sort(), [...keys].sort(), `${schemaKey} keys (pve-${v})`)
          assert.strictEqual(
            Object.keys(fmt).find((k) => fmt[k]?.default_key),
            defaultKey,
            `${schemaKey} default key`
          )
          for (const k of keys) {
            const text = new RegExp(`(?:^|[[, ])${k}=\\]?<([^>]*)>`).exec(schema?.typetext ?? "")?.[1] ?? ""
            const t = fmt[k]?.type
            if (text === "1|0") assert.strictEqual(t, "boolean", `${schemaKey}.${k}`)
            else if (text === "integer") assert.strictEqual(t, "integer", `${schemaKey}.${k}`)
            else assert.strictEqual(t, "string", `${schemaKey}.${k} <${text}>`)
          }
        }
      }
    })
  }
})
