import type { AuthUser } from "./Auth.js"
import type { ReturnsShape } from "./internal/CliTable.js"
import { cloudInitPending } from "./internal/CloudInitDrive.js"
import type { SimContext } from "./internal/Context.js"
import { cpuModelsOf } from "./internal/CpuModels.js"
import {
  bool,
  flag,
  int,
  NODE_RE,
  one,
  type ParamSpec,
  type Params,
  pveNode,
  pveVmid,
  type Schema,
  storageContent,
  storageContentList,
  storageId,
  str,
  taskStatusTypeList,
  validate
} from "./internal/Params.js"
import {
  agentCheck,
  agentSchema,
  CONFIG_SCHEMA,
  CREATE_SCHEMA,
  createVm,
  destroyVm,
  execSchema,
  getVm,
  moveDisk,
  regenerateCloudInit,
  resizeVm,
  simplePower,
  startVm,
  stopVm,
  updateConfig,
  vmConfigKeySpec
} from "./internal/QemuApi.js"
import { redactParams } from "./internal/Redact.js"
import {
  contentList,
  deleteVolume,
  downloadUrl,
  getStorage,
  type UploadFile,
  upload,
  volumeInfo
} from "./internal/StorageApi.js"
import { listNodeTasks } from "./internal/TaskList.js"
import { type ApiCall, apiCallTrace } from "./internal/Trace.js"
import { PveError } from "./PveError.js"
import { DRIVE_NAMES, DRIVE_NAMES_WITH_UNUSED, type NodeState, type StorageState } from "./SimState.js"
import { parseUpid, taskStatusJson, taskSucceeded } from "./Tasks.js"

export type { UploadFile }

export interface ApiRequest {
  readonly method: string
  /** path below /api2/json, e.g. `/nodes/pve/qemu` */
  readonly path: string
  readonly params: Params
  readonly user: AuthUser
  /** the node whose daemon handles the request (for `localhost`) */
  readonly localNode: string
  /** pvesh/qm: boolean params accept yes/no/on/off/true/false */
  readonly cli?: boolean
  readonly upload?: UploadFile
}

export interface ApiResult {
  readonly data: unknown
  readonly total?: number
  readonly changes?: string
}

interface Call {
  readonly ctx: SimContext
  readonly user: AuthUser
  readonly params: Params
  readonly node: NodeState
  readonly cli: boolean
  readonly upload: UploadFile | undefined
  readonly vmid: number
}

interface Route {
  readonly method: "GET" | "POST" | "PUT" | "DELETE"
  readonly segs: ReadonlyArray<string>
  readonly schema: Schema
  /** Parameters the schema does not list, by name (`node`: the request's, whose PVE version knows them) */
  readonly extra?: ((k: string, node?: string) => ParamSpec | undefined) | undefined
  readonly handler: (c: Call) => Promise<ApiResult> | ApiResult
  /** `POST /access/ticket`: no auth, not for tokens */
  readonly noAuth?: boolean | undefined
  /** the shape of the endpoint's `returns` schema that pvesh's text output reads (columns and their types) */
  readonly returns?: ReturnsShape | undefined
  /**
   * The last path parameter takes the rest of the path, `/` included: pve-storage registers `{storage}/content` with
   * `fragmentDelimiter => ''` because volume ids contain a slash (`local:iso/x.iso`), and pve-common's
   * `map_path_to_methods` then joins the remaining fragments into one.
   */
  readonly restOfPath?: boolean | undefined
}

const NODE = { node: pveNode }
const VM = { node: pveNode, vmid: pveVmid }
const ok = (data: unknown): ApiResult => ({ data })

const dirIndex = (names: ReadonlyArray<string>, key = "name"): ApiResult => ok(names.map((n) => ({ [key]: n })))

/** The routing table plus handlers; shared by the HTTPS API and pvesh/qm. */
export class ApiRouter {
  private readonly routes: Array<Route> = []

  constructor(private readonly ctx: SimContext) {
    this.build()
  }

  private add(
    method: Route["method"],
    path: string,
    schema: Schema,
    handler: Route["handler"],
    opts: {
      extra?: (k: string, node?: string) => ParamSpec | undefined
      noAuth?: boolean
      returns?: ReturnsShape
      restOfPath?: boolean
    } = {}
  ): void {
    this.routes.push({ method, segs: path.split("/").filter((s) => s !== ""), schema, handler, ...opts })
  }

  /**
   * The route of a path as PVE's `find_handler` sees it: already unescaped by the HTTP server (pvesh and qm pass theirs
   * as given, so a UPID's `%3a` stays as it is). Undefined when no route matches.
   */
  match(method: string, path: string): { route: Route; pathParams: Record<string, string> } | undefined {
    const all = path.split("/").filter((s) => s !== "")
    for (const r of this.routes) {
      if (r.method !== method) continue
      const segs =
        r.restOfPath === true && all.length > r.segs.length
          ? [...all.slice(0, r.segs.length - 1), all.slice(r.segs.length - 1).join("/")]
          : all
      if (r.segs.length !== segs.length) continue
      const pp: Record<string, string> = {}
      let okm = true
      for (let i = 0; i < segs.length; i++) {
        const rs = r.segs[i] as string
        const s = segs[i] as string
        if (rs.startsWith("{")) pp[rs.slice(1, -1)] = s
        else if (rs !== s) {
          okm = false
          break
        }
      }
      if (okm) return { route: r, pathParams: pp }
    }
    return undefined
  }

  /** Every endpoint as PVE's API schema names it: `METHOD /path/{param}`. */
  endpoints(): Array<string> {
    return this.routes.map((r) => `${r.method} /${r.segs.join("/")}`)
  }

  /** The parameter schema of an endpoint (`METHOD /path/{param}`), and the resolver of its numbered keys. */
  paramsOf(
    endpoint: string
  ): { readonly schema: Schema; readonly extra: ((k: string) => ParamSpec | undefined) | undefined } | undefined {
    const r = this.routes.find((x) => `${x.method} /${x.segs.join("/")}` === endpoint)
    return r === undefined ? undefined : { schema: r.schema, extra: r.extra }
  }

  /** Does a path exist for any method? (for `no 'get' handler` vs `no such resource`) */
  pathExists(path: string): boolean {
    return ["GET", "POST", "PUT", "DELETE"].some((m) => this.match(m, path) !== undefined)
  }

  isNoAuth(method: string, path: string): boolean {
    return this.match(method, path)?.route.noAuth === true
  }

  async handle(req: ApiRequest): Promise<ApiResult> {
    const call: ApiCall = { method: req.method, path: req.path, params: redactParams(req.params) }
    apiCallTrace.getStore()?.push(call)
    try {
      const r = await this.dispatch(req)
      call.status = 200
      return r
    } catch (e) {
      call.status = e instanceof PveError ? e.status : 500
      throw e
    }
  }

  private async dispatch(req: ApiRequest): Promise<ApiResult> {
    const m = this.match(req.method, req.path)
    if (m === undefined) throw new PveError(501, `Method '${req.method} ${req.path}' not implemented`)
    const params: Params = { ...req.params }
    const dup: Record<string, string> = {}
    for (const [k, v] of Object.entries(m.pathParams)) {
      const cur = params[k]
      if (cur !== undefined && cur !== v)
        dup[k] = "duplicate parameter (already defined in URI) with conflicting values!"
      params[k] = v
    }
    if (Object.keys(dup).length > 0) throw PveError.param(dup)
    let nodeName = m.pathParams.node
    if (nodeName === "localhost") nodeName = req.localNode
    const extra = m.route.extra
    const valid = validate(
      params,
      m.route.schema,
      extra === undefined ? undefined : (k) => extra(k, nodeName ?? req.localNode),
      req.cli === true
    )
    const node = this.ctx.state.getNode(nodeName ?? req.localNode)
    if (node === undefined)
      throw new PveError(
        500,
        `hostname lookup '${nodeName}' failed - failed to get address info for: ${nodeName}: Name or service not known`
      )
    if (valid.node !== undefined) valid.node = node.name
    return m.route.handler({
      ctx: this.ctx,
      user: req.user,
      params: valid,
      node,
      cli: req.cli === true,
      upload: req.upload,
      vmid: Number(one(valid, "vmid") ?? 0)
    })
  }

  private build(): void {
    const ctx = this.ctx
    const st = ctx.state
    const auth = ctx.auth
    const configKey = (k: string, node?: string) => vmConfigKeySpec(k, st.featuresOf(node).nine)

    this.add("GET", "/", {}, () => dirIndex(["access", "cluster", "nodes", "pools", "storage", "version"], "subdir"))
    const versionReturns: ReturnsShape = {
      type: "object",
      properties: {
        version: { type: "string" },
        release: { type: "string" },
        repoid: { type: "string" },
        console: { type: "string", optional: true }
      }
    }
    this.add(
      "GET",
      "/version",
      {},
      (c) => {
        const { version, release } = st.featuresOf(c.node.name)
        return ok({ version, release, repoid: "faa83925c9641325" })
      },
      { returns: versionReturns }
    )
    this.add(
      "POST",
      "/access/ticket",
      {
        username: { type: "string" },
        password: { type: "string" },
        realm: str(),
        otp: str(),
        "tfa-challenge": str(),
        "new-format": bool(),
        path: str(),
        privs: str()
      },
      (c) => ok(auth.login(one(c.params, "username") ?? "", one(c.params, "password") ?? "", one(c.params, "realm"))),
      { noAuth: true }
    )

    this.add("GET", "/access", {}, () =>
      dirIndex(["users", "groups", "roles", "acl", "domains", "ticket", "password", "permissions"], "subdir")
    )
    this.add(
      "GET",
      "/access/permissions",
      {
        userid: str({ pattern: /^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+(?:![A-Za-z][A-Za-z0-9.\-_]+)?$/ }),
        path: str()
      },
      (c) => {
        // pve-access-control API2/AccessControl.pm `permissions`: its own (or an owned token's) without privileges
        const authid = c.cli ? "root@pam" : c.user.authuser
        const userid = one(c.params, "userid") ?? authid
        const owner = userid.includes("!") ? userid.slice(0, userid.indexOf("!")) : undefined
        if (userid !== authid && owner !== authid) auth.checkAll(c.user, "/access", "Sys.Audit")
        const path = one(c.params, "path")
        if (path !== undefined && path !== "") return ok({ [path]: auth.permissions(userid, path) })
        return ok(auth.effectivePermissions(userid))
      }
    )

    // ---- storage configuration ---------------------------------------------------------------------------------
    this.add(
      "GET",
      "/storage",
      {
        type: str({
          enum: [
            "btrfs",
            "cephfs",
            "cifs",
            "dir",
            "esxi",
            "iscsi",
            "iscsidirect",
            "lvm",
            "lvmthin",
            "nfs",
            "pbs",
            "rbd",
            "zfs",
            "zfspool"
          ]
        })
      },
      (c) => {
        // storage.cfg is cluster-wide: one entry per storage id (the first node that has it describes it)
        const type = one(c.params, "type")
        const seen = new Map<string, Record<string, unknown>>()
        for (const n of st.nodes.values())
          for (const s of n.storages.values()) {
            if (seen.has(s.id)) continue
            seen.set(s.id, st.storageConfig(s))
          }
        return ok(
          [...seen.values()].filter(
            (e) =>
              (type === undefined || e.type === type) &&
              auth.can(c.user, `/storage/${e.storage}`, "Datastore.Audit", "Datastore.AllocateSpace")
          )
        )
      }
    )

    // ---- cluster -----------------------------------------------------------------------------------------------
    this.add("GET", "/cluster", {}, () => dirIndex(["nextid", "resources", "status", "tasks"]))
    this.add("GET", "/cluster/nextid", { vmid: { ...pveVmid, optional: true } }, (c) => {
      const want = one(c.params, "vmid")
      if (want !== undefined) {
        if (st.vms.has(Number(want))) throw PveError.param({ vmid: `VM ${want} already exists` })
        return ok(want)
      }
      for (let id = 100; id < 1_000_000; id++) if (!st.vms.has(id)) return ok(String(id))
      throw new PveError(500, "unable to get any free VMID in range [100, 999999]")
    })
    this.add("GET", "/cluster/status", {}, (c) => {
      const list: Array<Record<string, unknown>> = [
        {
          id: "cluster",
          type: "cluster",
          name: st.clusterName,
          nodes: st.nodes.size,
          quorate: st.quorum().quorate ? 1 : 0,
          version: 3
        }
      ]
      let i = 1
      for (const n of st.nodes.values())
        list.push({
          id: `node/${n.name}`,
          type: "node",
          name: n.name,
          nodeid: i++,
          ip: n.address,
          online: n.online ? 1 : 0,
          local: n.name === c.node.name ? 1 : 0,
          level: ""
        })
      return ok(list)
    })
    this.add("GET", "/cluster/resources", { type: str({ enum: ["vm", "storage", "node", "sdn"] }) }, (c) => {
      const type = one(c.params, "type")
      const out: Array<Record<string, unknown>> = []
      if (type === undefined || type === "vm")
        for (const e of st.resourceEntries()) if (auth.can(c.user, `/vms/${e.vmid}`, "VM.Audit")) out.push(e)
      if (type === undefined || type === "node")
        for (const n of st.nodes.values()) {
          if (!auth.can(c.user, `/nodes/${n.name}`, "Sys.Audit")) continue
          out.push({
            id: `node/${n.name}`,
            type: "node",
            node: n.name,
            status: n.online ? "online" : "offline",
            level: "",
            cpu: 0.0213,
            maxcpu: n.cpus,
            mem: Math.floor(n.memory * 0.2),
            maxmem: n.memory,
            disk: 9412374528,
            maxdisk: 100861726720,
            uptime: Math.floor((ctx.clock.now() - n.bootTime) / 1000),
            cgroup_mode: 2
          })
        }
      if (type === undefined || type === "storage")
        for (const n of st.nodes.values())
          for (const s of n.storages.values()) {
            if (!auth.can(c.user, `/storage/${s.id}`, "Datastore.Audit", "Datastore.AllocateSpace")) continue
            // pve-manager's Cluster.pm: `next if !PVE::Storage::storage_check_enabled($cfg, $storeid, $node, 1)`
            if (!s.enabled) continue
            const used = st.storageUsed(s)
            out.push({
              id: `storage/${n.name}/${s.id}`,
              type: "storage",
              node: n.name,
              storage: s.id,
              status: "available",
              plugintype: s.type,
              content: [...s.content].sort().join(","),
              shared: s.shared ? 1 : 0,
              disk: used,
              maxdisk: s.capacity
            })
          }
      if (type === undefined || type === "sdn")
        for (const n of st.nodes.values())
          out.push({ id: `sdn/${n.name}/localnetwork`, type: "sdn", sdn: "localnetwork", node: n.name, status: "ok" })
      return ok(out)
    })

    // ---- nodes -------------------------------------------------------------------------------------------------
    this.add("GET", "/nodes", {}, (c) =>
      ok(
        [...st.nodes.values()].map((n) => {
          const e: Record<string, unknown> = {
            id: `node/${n.name}`,
            node: n.name,
            type: "node",
            status: n.online ? "online" : "offline",
            level: "",
            ssl_fingerprint: n.fingerprint
          }
          if (auth.can(c.user, `/nodes/${n.name}`, "Sys.Audit") && n.online)
            Object.assign(e, {
              cpu: 0.0213,
              maxcpu: n.cpus,
              mem: Math.floor(n.memory * 0.2),
              maxmem: n.memory,
              disk: 9412374528,
              maxdisk: 100861726720,
              uptime: Math.floor((ctx.clock.now() - n.bootTime) / 1000)
            })
          return e
        })
      )
    )
    this.add("GET", "/nodes/{node}", NODE, () =>
      dirIndex(["qemu", "lxc", "status", "network", "storage", "tasks", "version"])
    )
    this.add(
      "GET",
      "/nodes/{node}/version",
      NODE,
      (c) => {
        const { version, release } = st.featuresOf(c.node.name)
        return ok({ version, release, repoid: "faa83925c9641325" })
      },
      { returns: versionReturns }
    )
    this.add("GET", "/nodes/{node}/status", NODE, (c) => {
      auth.check(c.user, `/nodes/${c.node.name}`, "Sys.Audit")
      const n = c.node
      const kernel = st.featuresOf(n.name).nine ? "6.14.8-2-pve" : "6.8.12-4-pve"
      return ok({
        uptime: Math.floor((ctx.clock.now() - n.bootTime) / 1000),
        idle: 0,
        loadavg: ["0.12", "0.10", "0.09"],
        cpu: 0.0213,
        wait: 0.0004,
        kversion: `Linux ${kernel} #1 SMP PREEMPT_DYNAMIC PMX ${kernel.replace("-pve", "")} (2024-11-26T10:03Z)`,
        "current-kernel": { sysname: "Linux", release: kernel, version: "#1 SMP PREEMPT_DYNAMIC", machine: "x86_64" },
        "boot-info": { mode: "efi", secureboot: 0 },
        cpuinfo: {
          user_hz: 100,
          model: "Intel(R) Core(TM) i5-8500T CPU @ 2.10GHz",
          vendor: "GenuineIntel",
          mhz: "2100.000",
          cpus: n.cpus,
          sockets: 1,
          cores: n.cpus,
          hvm: "1",
          flags: "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr vmx"
        },
        memory: {
          total: n.memory,
          used: Math.floor(n.memory * 0.2),
          free: Math.floor(n.memory * 0.8),
          available: Math.floor(n.memory * 0.78)
        },
        swap: { total: 8589930496, used: 0, free: 8589930496 },
        ksm: { shared: 0 },
        rootfs: { total: 100861726720, avail: 86000000000, used: 9412374528, free: 91449352192 },
        pveversion: `pve-manager/${st.featuresOf(n.name).version}/faa83925c9641325`
      })
    })
    this.add(
      "GET",
      "/nodes/{node}/network",
      {
        ...NODE,
        type: str({
          enum: [
            "bridge",
            "bond",
            "eth",
            "alias",
            "vlan",
            "OVSBridge",
            "OVSBond",
            "OVSPort",
            "OVSIntPort",
            "vnet",
            "any_bridge",
            "any_local_bridge"
          ]
        })
      },
      (c) => {
        const type = one(c.params, "type")
        const out: Array<Record<string, unknown>> = []
        let prio = 3
        if (type === undefined || type === "eth")
          out.push({
            iface: "eno1",
            type: "eth",
            method: "manual",
            families: ["inet"],
            active: 1,
            exists: 1,
            priority: prio++
          })
        if (type === undefined || type === "bridge" || type === "any_bridge" || type === "any_local_bridge")
          for (const b of c.node.bridges.values()) {
            const fault = ctx.faults.bridgeState(c.node.name, b.name)
            if (fault === "missing") continue
            if (
              !auth.can(c.user, `/sdn/zones/localnetwork/${b.name}`, "SDN.Use", "SDN.Audit") &&
              !auth.can(c.user, `/nodes/${c.node.name}`, "Sys.Audit")
            )
              continue
            const e: Record<string, unknown> = {
              iface: b.name,
              type: "bridge",
              method: b.address === undefined ? "manual" : "static",
              method6: "manual",
              families: ["inet"],
              active: b.active && fault !== "inactive" ? 1 : 0,
              autostart: 1,
              priority: prio++,
              bridge_ports: b.name === "vmbr0" ? "eno1" : "",
              bridge_stp: "off",
              bridge_fd: "0"
            }
            if (b.address !== undefined) {
              e.address = b.address.split("/")[0]
              e.netmask = b.address.split("/")[1] ?? "24"
              e.cidr = b.address
            }
            if (b.comments !== undefined) e.comments = `${b.comments}\n`
            out.push(e)
          }
        return ok(out)
      }
    )

    // the CPU models a VM's cpu may name on an x86_64 node (qemu-server's get_cpu_models; the simulator has no custom
    // models, and no `arch` parameter: PVE 8.4 has none)
    this.add("GET", "/nodes/{node}/capabilities/qemu/cpu", NODE, () => ok(cpuModelsOf()))

    // ---- tasks -------------------------------------------------------------------------------------------------
    this.add(
      "GET",
      "/nodes/{node}/tasks",
      {
        ...NODE,
        start: int({ minimum: 0 }),
        limit: int({ minimum: 0 }),
        vmid: { ...pveVmid, optional: true },
        typefilter: str(),
        userfilter: str(),
        errors: bool(),
        source: str({ enum: ["archive", "active", "all"] }),
        since: int(),
        until: int(),
        statusfilter: str({ format: taskStatusTypeList })
      },
      (c) => listNodeTasks(c.node, c.params, c.user.authuser, auth.can(c.user, `/nodes/${c.node.name}`, "Sys.Audit"))
    )
    const findTask = (c: Call) => {
      const upid = one(c.params, "upid") ?? ""
      const parsed = parseUpid(upid)
      if (parsed === undefined) throw PveError.param({ upid: "unable to parse worker upid" })
      const t = c.node.tasks.get(upid)
      if (t === undefined || parsed.node !== c.node.name) throw PveError.param({ upid: "no such task" })
      if (!c.cli && !auth.isRoot(c.user) && t.user !== c.user.authuser.split("!")[0])
        auth.check(c.user, `/nodes/${c.node.name}`, "Sys.Audit")
      return t
    }
    this.add("GET", "/nodes/{node}/tasks/{upid}", { ...NODE, upid: { type: "string" } }, () =>
      dirIndex(["log", "status"])
    )
    this.add("GET", "/nodes/{node}/tasks/{upid}/status", { ...NODE, upid: { type: "string" } }, (c) =>
      ok(taskStatusJson(findTask(c)))
    )
    this.add(
      "GET",
      "/nodes/{node}/tasks/{upid}/log",
      { ...NODE, upid: { type: "string" }, start: int({ minimum: 0 }), limit: int({ minimum: 0 }), download: bool() },
      (c) => {
        const t = findTask(c)
        const start = Number(one(c.params, "start") ?? 0)
        const limit = Number(one(c.params, "limit") ?? 50)
        const lines = t.log.length === 0 ? ["no content"] : t.log
        const slice = limit === 0 ? lines.slice(start) : lines.slice(start, start + limit)
        return { data: slice.map((l, i) => ({ n: start + i + 1, t: l })), total: lines.length }
      }
    )
    this.add("DELETE", "/nodes/{node}/tasks/{upid}", { ...NODE, upid: { type: "string" } }, (c) => {
      const t = findTask(c)
      t.abort()
      return ok(null)
    })

    // ---- qemu --------------------------------------------------------------------------------------------------
    this.add("GET", "/nodes/{node}/qemu", { ...NODE, full: bool() }, (c) => {
      const full = flag(c.params, "full")
      const out: Array<Record<string, unknown>> = []
      for (const vm of st.vms.values())
        if (vm.node === c.node.name && vm.type === "qemu" && auth.can(c.user, `/vms/${vm.vmid}`, "VM.Audit"))
          out.push(st.listEntry(vm, full))
      return ok(out)
    })
    this.add("GET", "/nodes/{node}/lxc", NODE, (c) => {
      const out: Array<Record<string, unknown>> = []
      for (const vm of st.vms.values())
        if (vm.node === c.node.name && vm.type === "lxc" && auth.can(c.user, `/vms/${vm.vmid}`, "VM.Audit"))
          out.push({ ...st.listEntry(vm, false), type: "lxc" })
      return ok(out)
    })
    this.add("POST", "/nodes/{node}/qemu", CREATE_SCHEMA, (c) => ok(createVm(ctx, c.user, c.node, c.params).upid), {
      extra: configKey
    })
    this.add("GET", "/nodes/{node}/qemu/{vmid}", VM, (c) => {
      getVm(ctx, c.node, c.vmid)
      return dirIndex(["config", "pending", "status", "agent", "resize", "cloudinit"], "subdir")
    })
    this.add("GET", "/nodes/{node}/qemu/{vmid}/status", VM, (c) => {
      getVm(ctx, c.node, c.vmid)
      return dirIndex(["current", "start", "stop", "reset", "shutdown", "suspend", "reboot", "resume"], "subdir")
    })
    this.add("GET", "/nodes/{node}/qemu/{vmid}/status/current", VM, (c) => {
      auth.check(c.user, `/vms/${c.vmid}`, "VM.Audit")
      const vm = getVm(ctx, c.node, c.vmid)
      return ok(st.statusCurrent(vm))
    })
    const power = { ...VM, skiplock: bool(), timeout: int({ minimum: 0 }) }
    this.add(
      "POST",
      "/nodes/{node}/qemu/{vmid}/status/start",
      {
        ...power,
        machine: str(),
        "force-cpu": str(),
        stateuri: str(),
        migratedfrom: str(),
        migration_type: str(),
        migration_network: str(),
        targetstorage: str(),
        "with-conntrack-state": bool(),
        "nets-host-mtu": str()
      },
      (c) => {
        if (c.user.authuser !== "root@pam")
          for (const k of [
            "stateuri",
            "migratedfrom",
            "force-cpu",
            "machine",
            "migration_type",
            "migration_network",
            "targetstorage"
          ])
            if (c.params[k] !== undefined) throw PveError.param({ [k]: "Only root may use this option." })
        auth.check(c.user, `/vms/${c.vmid}`, "VM.PowerMgmt")
        return ok(startVm(ctx, c.user, c.node, getVm(ctx, c.node, c.vmid), c.params).upid)
      }
    )
    this.add(
      "POST",
      "/nodes/{node}/qemu/{vmid}/status/stop",
      { ...power, keepActive: bool(), migratedfrom: str(), "overrule-shutdown": bool() },
      (c) => {
        auth.check(c.user, `/vms/${c.vmid}`, "VM.PowerMgmt")
        return ok(stopVm(ctx, c.user, c.node, getVm(ctx, c.node, c.vmid), c.params, "qmstop").upid)
      }
    )
    this.add(
      "POST",
      "/nodes/{node}/qemu/{vmid}/status/shutdown",
      { ...power, forceStop: bool(), keepActive: bool() },
      (c) => {
        auth.check(c.user, `/vms/${c.vmid}`, "VM.PowerMgmt")
        return ok(stopVm(ctx, c.user, c.node, getVm(ctx, c.node, c.vmid), c.params, "qmshutdown").upid)
      }
    )
    for (const action of ["reset", "suspend", "resume", "reboot"] as const)
      this.add(
        "POST",
        `/nodes/{node}/qemu/{vmid}/status/${action}`,
        action === "suspend"
          ? { ...VM, skiplock: bool(), todisk: bool(), statestorage: str({ requires: "todisk" }) }
          : action === "resume"
            ? { ...VM, skiplock: bool(), nocheck: bool() }
            : action === "reboot"
              ? { ...VM, timeout: int({ minimum: 0 }) }
              : { ...VM, skiplock: bool() },
        (c) => {
          auth.check(c.user, `/vms/${c.vmid}`, "VM.PowerMgmt")
          return ok(simplePower(ctx, c.user, c.node, getVm(ctx, c.node, c.vmid), c.params, action).upid)
        }
      )
    this.add("GET", "/nodes/{node}/qemu/{vmid}/config", { ...VM, current: bool(), snapshot: str() }, (c) => {
      if (c.params.current !== undefined && c.params.snapshot !== undefined)
        throw PveError.param({
          current: "property 'current' is mutually exclusive with 'snapshot'",
          snapshot: "property 'snapshot' is mutually exclusive with 'current'"
        })
      auth.check(c.user, `/vms/${c.vmid}`, "VM.Audit")
      const vm = getVm(ctx, c.node, c.vmid)
      if (c.params.snapshot !== undefined)
        throw new PveError(500, `snapshot '${one(c.params, "snapshot")}' does not exist`)
      return ok(st.configView(vm, flag(c.params, "current")))
    })
    this.add("GET", "/nodes/{node}/qemu/{vmid}/pending", VM, (c) => {
      auth.check(c.user, `/vms/${c.vmid}`, "VM.Audit")
      const vm = getVm(ctx, c.node, c.vmid)
      // GuestHelpers::config_with_pending_array over the loaded config, which carries its `digest` (the SHA-1 of the
      // config file, as GET config returns it); a pending cipassword reads '********** ' (Qemu.pm vm_pending).
      const keys = new Set([...vm.config.keys(), ...vm.pending.keys(), ...vm.pendingDelete, "digest"])
      return ok(
        [...keys].sort().map((k) => {
          const e: Record<string, unknown> = { key: k }
          if (k === "digest") e.value = st.digest(vm)
          if (vm.config.has(k)) e.value = st.typedValue(k, vm.config.get(k) ?? "", vm.node)
          if (vm.pending.has(k))
            e.pending = k === "cipassword" ? "********** " : st.typedValue(k, vm.pending.get(k) ?? "", vm.node)
          if (vm.pendingDelete.has(k)) e.delete = 1
          return e
        })
      )
    })
    this.add(
      "PUT",
      "/nodes/{node}/qemu/{vmid}/config",
      CONFIG_SCHEMA,
      async (c) => {
        await updateConfig(ctx, c.user, c.node, c.vmid, c.params, () => {})
        return ok(null)
      },
      { extra: configKey }
    )
    this.add(
      "POST",
      "/nodes/{node}/qemu/{vmid}/config",
      { ...CONFIG_SCHEMA, background_delay: int({ minimum: 1, maximum: 30 }), "import-working-storage": str() },
      async (c) => {
        getVm(ctx, c.node, c.vmid)
        const params = { ...c.params }
        const delay = one(params, "background_delay")
        delete params.background_delay
        // synchronous parameter checks happen before the fork
        if (Object.keys(params).filter((k) => k !== "node" && k !== "vmid").length === 0)
          throw new PveError(500, "no options specified")
        await updateConfig(ctx, c.user, c.node, c.vmid, params, () => {}, "check")
        // The worker takes the config lock and writes the settings as soon as it runs: when the lock is free, the
        // new settings (pending where they need a restart) are in the config before the UPID is returned, so a
        // start sent right after applies them.
        const vm = getVm(ctx, c.node, c.vmid)
        const lockFree = !vm.flock
        let written: () => void = () => {}
        const wrote = new Promise<void>((resolve) => {
          written = resolve
        })
        const t = ctx.tasks.start(
          c.node,
          "qmconfig",
          String(c.vmid),
          c.user,
          async (tc) => {
            await updateConfig(ctx, c.user, c.node, c.vmid, params, tc.log, "apply", written)
            await tc.work(ctx.timings.taskMs)
          },
          c.vmid
        )
        if (lockFree) await Promise.race([wrote, t.done])
        if (delay !== undefined) {
          await Promise.race([t.done, ctx.clock.sleepReal(Number(delay) * 1000)])
          if (t.status === "stopped") {
            if (taskSucceeded(t)) return ok(null)
            throw new PveError(500, `failed to update VM ${c.vmid}: ${t.exitstatus}`)
          }
        }
        return ok(t.upid)
      },
      { extra: configKey }
    )
    this.add(
      "PUT",
      "/nodes/{node}/qemu/{vmid}/resize",
      {
        ...VM,
        disk: { type: "string", enum: DRIVE_NAMES },
        size: { type: "string", pattern: /^\+?\d+(\.\d+)?[KMGT]?$/ },
        digest: str({ maxLength: 40 }),
        skiplock: bool()
      },
      async (c) => {
        if (c.params.skiplock !== undefined && c.user.authuser !== "root@pam")
          throw PveError.param({ skiplock: "Only root may use this option." })
        auth.check(c.user, `/vms/${c.vmid}`, "VM.Config.Disk")
        getVm(ctx, c.node, c.vmid)
        if (!st.featuresOf(c.node.name).resizeTask) {
          await resizeVm(ctx, c.user, c.node, c.vmid, c.params, undefined)
          return ok(null)
        }
        const t = ctx.tasks.start(
          c.node,
          "resize",
          String(c.vmid),
          c.user,
          (tc) => resizeVm(ctx, c.user, c.node, c.vmid, c.params, tc),
          c.vmid
        )
        return ok(t.upid)
      }
    )
    this.add(
      "POST",
      "/nodes/{node}/qemu/{vmid}/move_disk",
      {
        ...VM,
        disk: { type: "string", enum: DRIVE_NAMES_WITH_UNUSED },
        storage: str({ format: storageId }),
        delete: bool(),
        digest: str({ maxLength: 40 }),
        format: str({ enum: ["raw", "qcow2", "vmdk"] }),
        bwlimit: int({ minimum: 0 }),
        "target-vmid": { ...pveVmid, optional: true },
        "target-disk": str({ enum: DRIVE_NAMES_WITH_UNUSED }),
        "target-digest": str({ maxLength: 40 })
      },
      (c) => {
        auth.check(c.user, `/vms/${c.vmid}`, "VM.Config.Disk")
        return ok(moveDisk(ctx, c.user, c.node, c.vmid, c.params).upid)
      }
    )
    this.add(
      "DELETE",
      "/nodes/{node}/qemu/{vmid}",
      { ...VM, purge: bool(), "destroy-unreferenced-disks": bool(), skiplock: bool() },
      (c) => ok(destroyVm(ctx, c.user, c.node, c.vmid, c.params).upid)
    )
    this.add("GET", "/nodes/{node}/qemu/{vmid}/cloudinit", VM, (c) => {
      auth.check(c.user, `/vms/${c.vmid}`, "VM.Audit")
      return ok(cloudInitPending(getVm(ctx, c.node, c.vmid)))
    })
    this.add("PUT", "/nodes/{node}/qemu/{vmid}/cloudinit", VM, async (c) => {
      await regenerateCloudInit(ctx, c.user, c.node, getVm(ctx, c.node, c.vmid))
      return ok(null)
    })

    // ---- agent -------------------------------------------------------------------------------------------------
    this.add("GET", "/nodes/{node}/qemu/{vmid}/agent", VM, () =>
      dirIndex(["exec", "exec-status", "get-host-name", "get-osinfo", "info", "network-get-interfaces", "ping"])
    )
    this.add("POST", "/nodes/{node}/qemu/{vmid}/agent/ping", agentSchema, async (c) => {
      await agentCheck(ctx, c.user, c.node, c.vmid, "VM.GuestAgent.Audit")
      return ok({ result: {} })
    })
    this.add("POST", "/nodes/{node}/qemu/{vmid}/agent", { ...agentSchema, command: { type: "string" } }, async (c) => {
      const vm = await agentCheck(ctx, c.user, c.node, c.vmid, "VM.GuestAgent.Unrestricted")
      return ok({ result: ctx.guests.agentCommand(vm, one(c.params, "command") ?? "") })
    })
    for (const cmd of ["network-get-interfaces", "get-host-name", "get-osinfo", "info", "get-time", "get-timezone"])
      this.add("GET", `/nodes/{node}/qemu/{vmid}/agent/${cmd}`, agentSchema, async (c) => {
        const vm = await agentCheck(ctx, c.user, c.node, c.vmid, "VM.GuestAgent.Audit")
        return ok({ result: ctx.guests.agentCommand(vm, cmd) })
      })
    this.add("POST", "/nodes/{node}/qemu/{vmid}/agent/exec", execSchema, async (c) => {
      const vm = await agentCheck(ctx, c.user, c.node, c.vmid, "VM.GuestAgent.Unrestricted")
      const command = c.params.command
      const argv = Array.isArray(command) ? command : [command ?? ""]
      return ok({ pid: ctx.guests.exec(vm, argv, one(c.params, "input-data")) })
    })
    this.add(
      "GET",
      "/nodes/{node}/qemu/{vmid}/agent/exec-status",
      { ...agentSchema, pid: { type: "integer" } },
      async (c) => {
        const vm = await agentCheck(ctx, c.user, c.node, c.vmid, "VM.GuestAgent.Unrestricted")
        return ok(ctx.guests.execStatus(vm, Number(one(c.params, "pid"))))
      }
    )

    // ---- storage -----------------------------------------------------------------------------------------------
    this.add(
      "GET",
      "/nodes/{node}/storage",
      {
        ...NODE,
        content: str({ format: storageContentList }),
        storage: str({ format: storageId }),
        enabled: bool(),
        target: str({ format: (v) => (NODE_RE.test(v) ? undefined : "value does not look like a valid node name\n") }),
        format: bool()
      },
      (c) => {
        const filter = one(c.params, "storage")
        const content = one(c.params, "content")
        // storage_info: under a content filter, a storage without that content or disabled is not there at all
        const listed = (s: StorageState): boolean =>
          content === undefined || (s.enabled && content.split(",").some((x) => s.content.has(x)))
        const named = filter === undefined ? undefined : c.node.storages.get(filter)
        if (filter !== undefined && (named === undefined || !listed(named)))
          throw PveError.param({ storage: "No such storage." })
        const out: Array<Record<string, unknown>> = []
        for (const s of c.node.storages.values()) {
          if (filter !== undefined && s.id !== filter) continue
          if (!listed(s)) continue
          if (flag(c.params, "enabled") && !s.enabled) continue
          if (!auth.can(c.user, `/storage/${s.id}`, "Datastore.Audit", "Datastore.AllocateSpace")) continue
          out.push(st.storageStatus(c.node, s))
        }
        return ok(out)
      }
    )
    const SNODE = { ...NODE, storage: { type: "string" as const, format: storageId } }
    this.add("GET", "/nodes/{node}/storage/{storage}", SNODE, () =>
      dirIndex(["content", "download-url", "status", "upload"], "subdir")
    )
    this.add("GET", "/nodes/{node}/storage/{storage}/status", SNODE, (c) => {
      const s = getStorage(c.node, one(c.params, "storage") ?? "")
      auth.check(c.user, `/storage/${s.id}`, "Datastore.Audit", "Datastore.AllocateSpace")
      return ok(st.storageStatus(c.node, s))
    })
    this.add(
      "GET",
      "/nodes/{node}/storage/{storage}/content",
      { ...SNODE, content: str({ format: storageContent }), vmid: { ...pveVmid, optional: true } },
      (c) => ok(contentList(ctx, c.user, c.node, getStorage(c.node, one(c.params, "storage") ?? ""), c.params))
    )
    this.add(
      "GET",
      "/nodes/{node}/storage/{storage}/content/{volume}",
      { ...SNODE, volume: { type: "string" } },
      (c) =>
        ok(volumeInfo(ctx, c.user, getStorage(c.node, one(c.params, "storage") ?? ""), one(c.params, "volume") ?? "")),
      { restOfPath: true }
    )
    this.add(
      "DELETE",
      "/nodes/{node}/storage/{storage}/content/{volume}",
      { ...SNODE, volume: { type: "string" }, delay: int({ minimum: 1, maximum: 30 }) },
      async (c) => {
        const t = deleteVolume(
          ctx,
          c.user,
          c.node,
          getStorage(c.node, one(c.params, "storage") ?? ""),
          one(c.params, "volume") ?? ""
        )
        const delay = one(c.params, "delay")
        if (delay !== undefined) {
          await Promise.race([t.done, ctx.clock.sleepReal(Number(delay) * 1000)])
          if (t.status === "stopped") return ok(null)
        }
        return ok(t.upid)
      },
      { restOfPath: true }
    )
    this.add(
      "POST",
      "/nodes/{node}/storage/{storage}/download-url",
      {
        ...SNODE,
        url: { type: "string", pattern: /^https?:\/\/.*/ },
        content: { type: "string", enum: ["iso", "vztmpl", "import"] },
        filename: { type: "string", maxLength: 255 },
        checksum: str({ requires: "checksum-algorithm" }),
        "checksum-algorithm": str({
          enum: ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"],
          requires: "checksum"
        }),
        compression: str({ enum: ["gz", "lzo", "zst", "bz2"] }),
        "verify-certificates": bool()
      },
      (c) => ok(downloadUrl(ctx, c.user, c.node, getStorage(c.node, one(c.params, "storage") ?? ""), c.params).upid)
    )
    this.add(
      "POST",
      "/nodes/{node}/storage/{storage}/upload",
      {
        ...SNODE,
        content: { type: "string", enum: ["iso", "vztmpl", "import"] },
        filename: str(),
        checksum: str({ requires: "checksum-algorithm" }),
        "checksum-algorithm": str({
          enum: ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"],
          requires: "checksum"
        }),
        tmpfilename: str({ pattern: /^\/var\/tmp\/pveupload-[0-9a-f]+$/ })
      },
      (c) =>
        ok(upload(ctx, c.user, c.node, getStorage(c.node, one(c.params, "storage") ?? ""), c.params, c.upload).upid)
    )
  }
}
