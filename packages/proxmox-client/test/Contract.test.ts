import { createHash } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import { ProxmoxApi, type ProxmoxApiShape, type ProxmoxError } from "../src/index.js"
import { pveSchema, type SentRequest, schemaViolations, sentRequests } from "./pveSchema.js"
import { apiLayer, errorOf, frozenClock, PVE_VERSIONS, scenario, withSim } from "./simulator.js"

const usingApi = <A>(f: (pve: ProxmoxApiShape) => Effect.Effect<A, ProxmoxError>) =>
  Effect.gen(function* () {
    const pve = yield* ProxmoxApi
    return yield* f(pve)
  })

/** Runs `f` over REST and over SSH against the same simulator; returns both results. */
const both = <A>(
  layers: { readonly rest: Layer.Layer<ProxmoxApi>; readonly ssh: Layer.Layer<ProxmoxApi> },
  f: (pve: ProxmoxApiShape) => Effect.Effect<A, ProxmoxError>
) => Effect.all([usingApi(f).pipe(Effect.provide(layers.rest)), usingApi(f).pipe(Effect.provide(layers.ssh))])

for (const version of PVE_VERSIONS) {
  /** Every request the client sent in this version's tests (REST requests, and the API calls of SSH commands). */
  const sent: Array<SentRequest> = []

  const setup = (over?: Parameters<typeof withSim>[0], options?: Parameters<typeof withSim>[1]) =>
    Effect.gen(function* () {
      const sim = yield* withSim({ pveVersion: version, ...over }, options)
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          // a request PVE rejects in parameter verification (the failure tests send one on purpose) is not kept
          for (const r of sentRequests(sim)) if (r.status !== 400) sent.push(r)
        })
      )
      return { sim, rest: yield* apiLayer(sim, "rest"), ssh: yield* apiLayer(sim, "ssh") }
    })

  describe(`PVE ${version}`, () => {
    describe("contract: every read gives identical decoded results over REST and SSH", () => {
      it.live("version, nodes, node status, cluster resources, next id", () =>
        Effect.gen(function* () {
          // uptimes are compared across the two transports: a frozen clock, so no second boundary falls between the reads
          const env = yield* setup({}, frozenClock())
          const [r, s] = yield* both(env, (pve) =>
            Effect.all({
              version: pve.version,
              nodeVersion: pve.nodeVersion("pve2"),
              nodes: pve.nodes,
              nodeStatus: pve.nodeStatus("pve2"),
              vms: pve.clusterVms,
              resources: pve.clusterResources,
              next: pve.nextVmid,
              permissions: pve.permissions(),
              vmPermissions: pve.permissions("/vms/100")
            })
          )
          assert.deepStrictEqual(r, s)
          assert.strictEqual(r.version.version, version)
          assert.deepStrictEqual(r.nodeVersion, r.version)
          // the token (no privilege separation) has root@pam's privileges, as root over SSH
          assert.isTrue(r.permissions["/"]?.["VM.Allocate"])
          assert.strictEqual(
            r.vmPermissions["/vms/100"]?.["VM.GuestAgent.Audit"],
            version.startsWith("9") ? true : undefined
          )
          assert.deepStrictEqual(
            r.nodes.map((n) => [n.node, n.ssl_fingerprint]),
            env.sim.info.nodes.map((n) => [n.name, n.fingerprint])
          )
          assert.strictEqual(r.nodeStatus.cpuinfo.cpus, 4)
          assert.isTrue(r.nodeStatus.memory.total > 0)
          assert.deepStrictEqual(
            r.vms.map((v) => [v.vmid, v.node, v.name, v.status, v.tags, v.lock, v.template]),
            [
              [100, "pve", "web1", "running", ["k8s", "prod"], undefined, false],
              [101, "pve2", "tmpl", "stopped", [], undefined, true],
              [102, "pve", "busy", "stopped", [], "backup", false]
            ]
          )
          assert.strictEqual(r.next, 103)
          assert.deepStrictEqual(r.resources.vms, r.vms)
          assert.deepStrictEqual(
            r.resources.nodes.map((n) => [n.node, n.maxcpu]),
            [
              ["pve", 8],
              ["pve2", 4]
            ]
          )
          assert.isTrue(r.resources.storages.some((st) => st.node === "pve" && st.storage === "local-lvm"))
          const apiCalls = env.sim.requests().filter((q) => q.transport === "api" && q.path === "/cluster/resources")
          assert.strictEqual(apiCalls.length, 2, "one cluster/resources request per listing (VMs; everything)")
        })
      )

      it.live("VM status and config, network, bridges, CPU models, storages, storage content", () =>
        Effect.gen(function* () {
          const env = yield* setup({}, frozenClock())
          const [r, s] = yield* both(env, (pve) =>
            Effect.all({
              status: pve.vmStatus("pve", 100),
              locked: pve.vmStatus("pve", 102),
              config: pve.vmConfig("pve", 100),
              network: pve.network("pve"),
              bridges: pve.bridges("pve"),
              cpuModels: pve.cpuModels("pve"),
              storages: pve.storages("pve"),
              content: pve.storageContent("pve", "local-lvm")
            })
          )
          assert.deepStrictEqual(r, s)
          assert.strictEqual(r.status.status, "running")
          assert.strictEqual(r.status.qmpstatus, "running")
          assert.strictEqual(r.status.agent, true)
          assert.strictEqual(r.locked.lock, "backup")
          assert.includeMembers(
            r.cpuModels.map((m) => m.name),
            ["host", "x86-64-v2-AES", "kvm64", "EPYC-Rome"]
          )
          assert.notInclude(
            r.cpuModels.map((m) => m.name),
            "hosst"
          )
          assert.strictEqual(r.config.memory, 2048)
          assert.strictEqual(r.config.cores, 2)
          assert.strictEqual(r.config.agent, true)
          assert.deepStrictEqual(r.bridges, [
            { name: "vmbr0", active: true, ports: "eno1" },
            { name: "vmbr1", active: false, ports: "" }
          ])
          assert.deepStrictEqual(
            r.storages.map((x) => [x.storage, x.content]),
            [
              ["local", ["backup", "import", "iso", "snippets", "vztmpl"]],
              ["local-lvm", ["images", "rootdir"]]
            ]
          )
        })
      )

      it.live("node tasks: finished ones by default, running ones with source active or all, by VMID and type", () =>
        Effect.gen(function* () {
          const env = yield* setup({ faults: [{ kind: "taskHang", taskType: "qmreboot", vmid: 100 }] })
          yield* usingApi((pve) =>
            Effect.gen(function* () {
              // a finished task (the VM's backup lock fails the start) and one that runs until the sim stops
              yield* Effect.exit(pve.startVm("pve", 102))
              yield* Effect.exit(pve.rebootVm("pve", 100, { wait: { timeout: "1 millis" } }))
            })
          ).pipe(Effect.provide(env.rest))
          const [r, s] = yield* both(env, (pve) =>
            Effect.all({
              archive: pve.nodeTasks("pve"),
              active: pve.nodeTasks("pve", { source: "active" }),
              reboots: pve.nodeTasks("pve", { source: "all", vmid: 100, type: "qmreboot" }),
              starts: pve.nodeTasks("pve", { source: "all", type: "qmstart" })
            })
          )
          assert.deepStrictEqual(r, s)
          const brief = (ts: ReadonlyArray<{ type: string; id?: string | undefined; status?: string | undefined }>) =>
            ts.map((t) => `${t.type} ${t.id} ${t.status}`)
          assert.deepStrictEqual(brief(r.archive), ["qmstart 102 VM is locked (backup)"])
          assert.deepStrictEqual(brief(r.active), ["qmreboot 100 RUNNING"])
          assert.deepStrictEqual(brief(r.reboots), ["qmreboot 100 RUNNING"])
          assert.deepStrictEqual(brief(r.starts), ["qmstart 102 VM is locked (backup)"])
          // a running task's user is the UPID's, token and all (PVE splits the token off archived tasks only)
          assert.strictEqual(r.active[0]?.user, env.sim.info.auth.tokenId)
          assert.isUndefined(r.active[0]?.tokenid)
          assert.deepInclude(r.archive[0], { user: "root@pam", tokenid: env.sim.info.auth.tokenId.split("!")[1] })
        })
      )

      it.live(
        "guest agent: ping, interfaces, IPv4 discovery (loopback address on eth0 accepted), exec + exec-status",
        () =>
          Effect.gen(function* () {
            const env = yield* setup()
            const [r, s] = yield* both(env, (pve) =>
              Effect.gen(function* () {
                // VM 100 runs since the simulator started: its agent answers the first ping
                yield* pve.agentPing("pve", 100)
                const nics = yield* pve.agentInterfaces("pve", 100)
                const ip = yield* pve.vmIpv4("pve", 100)
                const pid = yield* pve.guestExec("pve", 100, ["echo", "hello"])
                const status = yield* pve
                  .guestExecStatus("pve", 100, pid)
                  .pipe(Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (st) => st.exited }))
                return { nics: nics.map((n) => n.name), ip, status }
              })
            )
            assert.deepStrictEqual(r, s)
            assert.strictEqual(r.ip, "127.77.3.50")
            assert.deepStrictEqual(r.nics, ["lo", "eth0", "docker0", "cni0", "flannel.1"])
            assert.deepStrictEqual(r.status, { exited: true, exitcode: 0, "out-data": "hello\n" })
          })
      )
    })

    describe("an iso-type image (content iso): imported only from its path, only as root", () => {
      it.live(
        "import-from its volid is refused; its path (volumeInfo) is refused to the token over REST, and creates the VM as root over SSH (asRoot)",
        () =>
          Effect.gen(function* () {
            const env = yield* setup()
            const origin = env.sim.info.imageOrigin?.files[0]
            const layer = yield* apiLayer(env.sim, "fallback")
            const vm = (vmid: number, importFrom: string, asRoot?: boolean) => ({
              node: "pve",
              vmid,
              name: `vm${vmid}`,
              disks: { scsi0: { storage: "local-lvm", importFrom } },
              ...(asRoot === true ? { asRoot } : {})
            })
            const result = yield* usingApi((pve) =>
              Effect.gen(function* () {
                yield* pve.downloadUrl({
                  node: "pve",
                  storage: "local",
                  url: origin?.url ?? "",
                  content: "iso",
                  filename: "noble.img"
                })
                const info = yield* pve.volumeInfo("pve", "local", "local:iso/noble.img")
                const missing = yield* Effect.exit(pve.volumeInfo("pve", "local", "local:iso/none.img"))
                const byVolid = yield* Effect.exit(pve.createVm(vm(300, "local:iso/noble.img")))
                const byPath = yield* Effect.exit(pve.createVm(vm(301, info.path)))
                const created = yield* pve.createVm(vm(302, info.path, true))
                const config = yield* pve.vmConfig("pve", 302)
                return { info, missing, byVolid, byPath, created, config, transport: pve.transportOf("pve") }
              })
            ).pipe(Effect.provide(layer))
            assert.deepStrictEqual(
              [result.info.path, result.info.size],
              ["/var/lib/vz/template/iso/noble.img", 2 * 1024 ** 2]
            )
            assert.strictEqual(
              errorOf(result.missing).reason.message,
              "500 file_size_info on 'local:iso/none.img' failed"
            )
            assert.deepInclude(errorOf(result.byVolid).reason, {
              _tag: "InvalidParameter",
              errors: { scsi0: "local:iso/noble.img has wrong type 'iso' - needs to be 'images' or 'import'" }
            })
            assert.match(errorOf(result.byPath).reason.message, /Only root can pass arbitrary filesystem paths\./)
            assert.strictEqual(result.created.exitstatus, "OK")
            assert.match(result.config.raw.scsi0 ?? "", /^local-lvm:vm-302-disk-0,/)
            // the create went over SSH as root; the node itself stays on REST
            const creates = env.sim.requests().filter((r) => /^pvesh create .*qemu/.test(r.command ?? ""))
            assert.deepStrictEqual(
              creates.map((r) => [r.transport, r.exitCode]),
              [["ssh", 0]]
            )
            assert.include(creates[0]?.command ?? "", "import-from=/var/lib/vz/template/iso/noble.img")
            assert.strictEqual(result.transport, "rest")
          }),
        60_000
      )
    })

    describe("contract: the VM lifecycle behaves identically over REST and SSH", () => {
      it.live(
        "download-url, create (import-from, cloud-init, sshkeys, …), config, resize, start, shutdown, stop, destroy",
        () =>
          Effect.gen(function* () {
            const env = yield* setup()
            const origin = env.sim.info.imageOrigin?.files[0]
            assert.isDefined(origin)
            const lifecycle = (pve: ProxmoxApiShape, vmid: number, file: string) =>
              Effect.gen(function* () {
                const download = yield* pve.downloadUrl({
                  node: "pve",
                  storage: "local",
                  url: origin?.url ?? "",
                  content: "import",
                  filename: file,
                  checksum: { value: origin?.sha256 ?? "", algorithm: "sha256" }
                })
                const content = yield* pve.storageContent("pve", "local", "import")
                const created = yield* pve.createVm({
                  node: "pve",
                  vmid,
                  name: `vm${vmid}`,
                  cores: 2,
                  memory: 2048,
                  cpu: "host",
                  scsihw: "virtio-scsi-single",
                  disks: {
                    scsi0: { storage: "local-lvm", importFrom: `local:import/${file}`, options: { discard: "on" } }
                  },
                  nets: [{ bridge: "vmbr0" }],
                  cloudInit: {
                    storage: "local-lvm",
                    user: "ubuntu",
                    sshKeys: [
                      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEhAmuBu27BziINWHhHhGuib4xxdWR3d7NpM4kj7tQ8N me@host"
                    ],
                    ipConfig: [{ ip: "dhcp" }]
                  },
                  agent: true,
                  bootOrder: ["scsi0"],
                  serialConsole: true,
                  tags: ["prod", "k8s"],
                  description: "managed"
                })
                const config = yield* pve.vmConfig("pve", vmid)
                yield* pve.updateVmConfig("pve", vmid, { cores: 4 }, { delete: ["description"] })
                const updated = yield* pve.vmConfig("pve", vmid)
                const resized = yield* pve.resizeDisk("pve", vmid, "scsi0", "+1G")
                const started = yield* pve.startVm("pve", vmid)
                const running = yield* pve.vmStatus("pve", vmid)
                const shutdown = yield* pve.shutdownVm("pve", vmid, { timeout: 30 })
                const afterShutdown = yield* pve.vmStatus("pve", vmid)
                yield* pve.startVm("pve", vmid)
                const stopped = yield* pve.stopVm("pve", vmid)
                const status = yield* pve.vmStatus("pve", vmid)
                const task = yield* pve.taskStatus(started.upid)
                const log = yield* pve.taskLogTail(started.upid)
                yield* pve.destroyVm("pve", vmid)
                const after = yield* pve.clusterVms
                return {
                  download: download.exitstatus,
                  content: content.map((c) => c.volid),
                  created: created.exitstatus,
                  config: {
                    ...config,
                    digest: "-",
                    name: "-",
                    net0: config.net0?.replace(/=[0-9A-F:]+,/, "=MAC,"),
                    raw: Object.keys(config.raw).sort()
                  },
                  updated: [updated.cores, updated.description],
                  resized: resized?.exitstatus,
                  started: [started.exitstatus, task.status, task.exitstatus, log.at(-1)],
                  running: [running.status, running.qmpstatus],
                  stopped: [shutdown.exitstatus, afterShutdown.status, stopped.exitstatus, status.status],
                  gone: after.some((v) => v.vmid === vmid)
                }
              })
            const [r, s] = yield* Effect.all([
              usingApi((pve) => lifecycle(pve, 200, "noble.qcow2")).pipe(Effect.provide(env.rest)),
              usingApi((pve) => lifecycle(pve, 201, "noble.qcow2")).pipe(Effect.provide(env.ssh))
            ])
            const normalise = (x: typeof r) =>
              JSON.parse(
                JSON.stringify(x)
                  .replaceAll(/vm-20[01]-/g, "vm-N-")
                  .replaceAll(/vm20[01]/g, "vmN")
              )
            assert.deepStrictEqual(normalise(r), normalise(s))
            assert.strictEqual(r.download, "OK")
            assert.deepStrictEqual(r.content, ["local:import/noble.qcow2"])
            assert.strictEqual(r.created, "OK")
            assert.strictEqual(r.config.memory, 2048)
            assert.deepStrictEqual(r.config.tags, ["k8s", "prod"])
            assert.strictEqual(r.config.vga, "serial0")
            assert.strictEqual(r.config.serial0, "socket")
            assert.strictEqual(r.config.boot, "order=scsi0")
            assert.strictEqual(
              r.config.sshkeys,
              "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIEhAmuBu27BziINWHhHhGuib4xxdWR3d7NpM4kj7tQ8N%20me%40host"
            )
            assert.deepStrictEqual(r.updated, [4, undefined])
            assert.strictEqual(r.resized, "OK")
            assert.deepStrictEqual(r.started, ["OK", "stopped", "OK", "TASK OK"])
            assert.deepStrictEqual(r.running, ["running", "running"])
            assert.deepStrictEqual(r.stopped, ["OK", "stopped", "OK", "stopped"])
            assert.isFalse(r.gone)
            // the form layer encoded the single-encoded keys once more on the wire
            assert.isTrue(
              env.sim
                .requests()
                .some((q) => q.transport === "ssh" && (q.command ?? "").includes("--sshkeys ssh-ed25519%20AAAA"))
            )
          })
      )
    })

    describe("contract: moving a disk", () => {
      it.live("moveDisk moves a running VM's disk to another storage over both transports, the source freed", () =>
        Effect.gen(function* () {
          const base = scenario()
          const env = yield* setup({
            nodes: base.nodes.map((n) =>
              n.name === "pve"
                ? {
                    ...n,
                    storages: [
                      ...(n.storages ?? []),
                      { id: "fast", type: "lvmthin" as const, content: ["images" as const], capacity: "100G" }
                    ]
                  }
                : n
            ),
            vms: [
              ...(base.vms ?? []),
              {
                vmid: 110,
                node: "pve",
                name: "a",
                status: "running",
                config: { scsi0: "local-lvm:vm-110-disk-0,size=4G" }
              },
              {
                vmid: 111,
                node: "pve",
                name: "b",
                status: "running",
                config: { scsi0: "local-lvm:vm-111-disk-0,size=4G" }
              }
            ]
          })
          const move = (pve: ProxmoxApiShape, vmid: number) =>
            Effect.gen(function* () {
              const before = yield* pve.vmConfig("pve", vmid)
              const moved = yield* pve.moveDisk("pve", vmid, "scsi0", "fast", { delete: true, digest: before.digest })
              const after = yield* pve.vmConfig("pve", vmid)
              const stale = yield* Effect.exit(
                pve.moveDisk("pve", vmid, "scsi0", "local-lvm", { delete: true, digest: before.digest })
              )
              return {
                moved: moved.exitstatus,
                scsi0: after.raw.scsi0?.replace(/vm-11[01]-/, "vm-N-"),
                unused: after.raw.unused0,
                stale: Exit.isFailure(stale)
              }
            })
          const [r, s] = yield* Effect.all([
            usingApi((pve) => move(pve, 110)).pipe(Effect.provide(env.rest)),
            usingApi((pve) => move(pve, 111)).pipe(Effect.provide(env.ssh))
          ])
          assert.deepStrictEqual(r, s)
          assert.deepStrictEqual(r, { moved: "OK", scsi0: "fast:vm-N-disk-0,size=4G", unused: undefined, stale: true })
        })
      )
    })

    describe("contract: resume", () => {
      it.live("resumeVm continues a paused VM over both transports", () =>
        Effect.gen(function* () {
          const env = yield* setup()
          const [r, s] = yield* both(env, (pve) =>
            Effect.gen(function* () {
              env.sim.setVmStatus(100, { qmpstatus: "paused" })
              const paused = yield* pve.vmStatus("pve", 100)
              const resumed = yield* pve.resumeVm("pve", 100)
              const after = yield* pve.vmStatus("pve", 100)
              return [paused.qmpstatus, resumed.exitstatus, after.qmpstatus]
            })
          )
          assert.deepStrictEqual(r, s)
          assert.deepStrictEqual(r, ["paused", "OK", "running"])
        })
      )
    })

    describe("contract: changing a running VM in place", () => {
      it.live(
        "vmPending (digest, what waits for a restart), updateVmConfig with a digest (a stale one is refused), cloudInitChanges until regenerateCloudInit, rebootVm applies what waited",
        () =>
          Effect.gen(function* () {
            const env = yield* setup({
              vms: [
                ...(scenario().vms ?? []),
                ...[300, 301].map((vmid) => ({
                  vmid,
                  node: "pve",
                  name: `day2-${vmid}`,
                  status: "running" as const,
                  config: {
                    cores: 2,
                    memory: "2048",
                    ciuser: "ubuntu",
                    ide2: `local-lvm:vm-${vmid}-cloudinit,media=cdrom`,
                    net0: `virtio=BC:24:11:2E:7B:${vmid - 300}0,bridge=vmbr0`
                  }
                }))
              ]
            })
            const day2 = (pve: ProxmoxApiShape, vmid: number) =>
              Effect.gen(function* () {
                const before = yield* pve.vmPending("pve", vmid)
                yield* pve.updateVmConfig(
                  "pve",
                  vmid,
                  { cores: 4, ciuser: "ops", onboot: true },
                  { digest: before.digest }
                )
                const after = yield* pve.vmPending("pve", vmid)
                const stale = yield* Effect.flip(
                  pve.updateVmConfig("pve", vmid, { cores: 6 }, { digest: before.digest })
                ).pipe(Effect.orDie)
                const waiting = yield* pve.cloudInitChanges("pve", vmid)
                yield* pve.regenerateCloudInit("pve", vmid)
                const regenerated = yield* pve.cloudInitChanges("pve", vmid)
                const reboot = yield* pve.rebootVm("pve", vmid, { timeout: 30 })
                const applied = yield* pve.vmPending("pve", vmid).pipe(
                  Effect.repeat({
                    schedule: Schedule.spaced("20 millis"),
                    until: (p) => Object.keys(p.pending).length === 0
                  })
                )
                return {
                  digests: [before.digest === undefined, before.digest === after.digest],
                  before: [before.current.cores, before.pending],
                  after: [after.current.cores, after.pending, after.current.ciuser, after.current.onboot],
                  stale: [stale.operation, stale.reason._tag, stale.reason.message],
                  cloudInit: [waiting, regenerated],
                  reboot: reboot.exitstatus,
                  applied: [applied.current.cores, applied.pending, applied.deletes]
                }
              })
            const [r, s] = yield* Effect.all([
              usingApi((pve) => day2(pve, 300)).pipe(Effect.provide(env.rest)),
              usingApi((pve) => day2(pve, 301)).pipe(Effect.provide(env.ssh))
            ])
            assert.deepStrictEqual(r, s)
            assert.deepStrictEqual(r, {
              digests: [false, false],
              before: ["2", {}],
              after: ["2", { cores: "4" }, "ops", "1"],
              stale: ["updateVmConfig", "ApiError", "500 checksum mismatch (file change by other user?)"],
              // the running VM's drive still has ciuser ubuntu until it is regenerated
              cloudInit: [[{ key: "ciuser", drive: "ubuntu", config: "ops" }], []],
              reboot: "OK",
              applied: ["4", {}, []]
            })
          })
      )
    })

    describe("contract: deleteVolume", () => {
      it.live(
        "deletes a downloaded image (its volume id's `/` in the path) and waits; a missing volume is NotFound",
        () =>
          Effect.gen(function* () {
            const env = yield* setup()
            const origin = env.sim.info.imageOrigin?.files[0]
            const run = (file: string) => (pve: ProxmoxApiShape) =>
              Effect.gen(function* () {
                yield* pve.downloadUrl({
                  node: "pve",
                  storage: "local",
                  url: origin?.url ?? "",
                  content: "import",
                  filename: file,
                  checksum: { value: origin?.sha256 ?? "", algorithm: "sha256" }
                })
                const deleted = yield* pve.deleteVolume("pve", "local", `local:import/${file}`)
                const left = (yield* pve.storageContent("pve", "local", "import")).map((c) => c.volid)
                const again = yield* pve
                  .deleteVolume("pve", "local", `local:import/${file}`)
                  .pipe(Effect.match({ onFailure: (e) => e.reason._tag, onSuccess: () => "deleted twice" }))
                return {
                  deleted: deleted.exitstatus,
                  left: left.includes(`local:import/${file}`),
                  again
                }
              })
            const r = yield* usingApi(run("rest.qcow2")).pipe(Effect.provide(env.rest))
            const s = yield* usingApi(run("ssh.qcow2")).pipe(Effect.provide(env.ssh))
            assert.deepStrictEqual(r, { deleted: "OK", left: false, again: "NotFound" })
            assert.deepStrictEqual(s, r)
          })
      )
    })

    describe("contract: uploadFile", () => {
      it.live(
        "streams a file to the node's storage (Content-Length, no chunks) with progress; PVE checks the checksum; over SSH it is refused",
        () =>
          Effect.gen(function* () {
            const env = yield* setup()
            const bytes = Buffer.alloc(300_000, 7)
            const sha256 = createHash("sha256").update(bytes).digest("hex")
            const progress: Array<number> = []
            const open = async function* () {
              for (let i = 0; i < bytes.length; i += 65_536) yield bytes.subarray(i, i + 65_536)
            }
            const upload = (pve: ProxmoxApiShape, filename: string, value: string) =>
              pve.uploadFile({
                node: "pve",
                storage: "local",
                content: "import",
                filename,
                size: bytes.length,
                open,
                checksum: { algorithm: "sha256", value },
                onProgress: (sent) => progress.push(sent)
              })
            const done = yield* usingApi((pve) => upload(pve, "up.qcow2", sha256)).pipe(Effect.provide(env.rest))
            assert.strictEqual(done.exitstatus, "OK")
            assert.strictEqual(progress.at(-1), bytes.length)
            const content = yield* usingApi((pve) => pve.storageContent("pve", "local", "import")).pipe(
              Effect.provide(env.rest)
            )
            assert.deepInclude(
              content.map((c) => [c.volid, c.size]),
              ["local:import/up.qcow2", bytes.length]
            )
            const mismatch = yield* usingApi((pve) => upload(pve, "bad.qcow2", "0".repeat(64))).pipe(
              Effect.provide(env.rest),
              Effect.flip
            )
            assert.strictEqual(mismatch.reason._tag, "TaskFailed")
            assert.match(mismatch.reason.message, /checksum mismatch/)
            const overSsh = yield* usingApi((pve) => upload(pve, "ssh.qcow2", sha256)).pipe(
              Effect.provide(env.ssh),
              Effect.flip
            )
            assert.strictEqual(overSsh.reason._tag, "UnexpectedResponse")
          })
      )
    })

    describe("contract: failures classify identically over REST and SSH", () => {
      it.live("NotFound, InvalidParameter, TaskFailed (already running), ApiError (destroy running), Locked", () =>
        Effect.gen(function* () {
          const env = yield* setup()
          const flip = <A>(e: Effect.Effect<A, ProxmoxError>) =>
            Effect.flip(e) as Effect.Effect<ProxmoxError, ProxmoxError>
          const [r, s] = yield* both(env, (pve) =>
            Effect.all({
              missing: flip(pve.vmStatus("pve", 999)),
              invalid: flip(pve.createVm({ node: "pve", vmid: 300, name: "x", memory: 1 })),
              running: flip(pve.startVm("pve", 100)),
              destroyRunning: flip(pve.destroyVm("pve", 100)),
              locked: flip(pve.updateVmConfig("pve", 102, { cores: 2 }))
            }).pipe(
              Effect.map((errors) =>
                Object.fromEntries(
                  Object.entries(errors).map(([k, e]) => [
                    k,
                    {
                      operation: e.operation,
                      node: e.node,
                      reason: { ...e.reason, ...("upid" in e.reason ? { upid: "-" } : {}) }
                    }
                  ])
                )
              )
            )
          )
          assert.deepStrictEqual(JSON.parse(JSON.stringify(r)), JSON.parse(JSON.stringify(s)))
          assert.strictEqual(r.missing?.reason._tag, "NotFound")
          assert.strictEqual(r.invalid?.reason._tag, "InvalidParameter")
          assert.deepInclude(r.running?.reason, { _tag: "TaskFailed", exitstatus: "VM 100 already running" })
          assert.deepInclude(r.destroyRunning?.reason, { _tag: "ApiError", status: 500 })
          assert.deepInclude(r.locked?.reason, { _tag: "Locked", lock: "backup" })
          void errorOf
        })
      )
    })

    describe("contract: every request the client sent passes PVE's API schema", () => {
      it("8.4 and 9.1: each operation over REST and over SSH", () => {
        const rest = new Set(
          sent.filter((r) => r.transport === "api").map((r) => `${r.method} ${r.path.replace(/\/\d+(?=\/|$)/g, "/N")}`)
        )
        const ssh = sent.filter((r) => r.transport === "ssh")
        assert.isTrue(rest.size > 20, "the REST requests were recorded")
        assert.isTrue(ssh.length > 20, "the SSH commands' API calls were recorded")
        for (const v of ["8.4", "9.1"] as const)
          assert.deepStrictEqual(schemaViolations(pveSchema(v), sent), {}, `pve-${v}`)
      })
    })
  })
}
