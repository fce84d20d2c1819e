import { assert, describe, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import {
  bridgeFindings,
  diskStorageFindings,
  downloadPrivileges,
  NodeFacts,
  type PermissionMap,
  PreflightFinding,
  PreflightOptions,
  PreflightReport,
  preflight,
  requiredPrivileges,
  reservableMemoryBytes,
  sizeFindings,
  VmRequest
} from "../src/index.js"

const MiB = 1024 * 1024
const GiB = 1024 * MiB

type NodeInput = ConstructorParameters<typeof NodeFacts>[0]
type RequestInput = ConstructorParameters<typeof VmRequest>[0]

const node = (overrides: Partial<NodeInput> = {}): NodeFacts =>
  new NodeFacts({
    node: "pve",
    pveMajor: 8,
    cpus: 8,
    memoryBytes: 32 * GiB,
    bridges: [
      { name: "vmbr0", active: true },
      { name: "vmbr1", active: false }
    ],
    storages: [
      {
        name: "local",
        enabled: true,
        active: true,
        content: ["iso", "vztmpl", "backup", "import"],
        availBytes: 80 * GiB
      },
      { name: "local-lvm", enabled: true, active: true, content: ["rootdir", "images"], availBytes: 200 * GiB }
    ],
    guests: [{ vmid: 100, maxmemBytes: 8 * GiB, template: false }],
    ...overrides
  })

const request = (overrides: Partial<RequestInput> = {}): VmRequest =>
  new VmRequest({
    vmid: 105,
    cores: 4,
    memoryMiB: 8192,
    bridges: ["vmbr0"],
    diskStorage: "local-lvm",
    diskBytes: 32 * GiB,
    imageStorage: "local",
    imageContent: "import",
    downloadImage: true,
    ...overrides
  })

const codes = (report: PreflightReport): Array<string> => report.findings.map((f) => `${f.code}:${f.object}`)

/** Grants every privilege in `privileges` on `path`, inherited by the paths below. */
const grant = (path: string, privileges: ReadonlyArray<string>, propagate: 0 | 1 = 1): PermissionMap => ({
  [path]: Object.fromEntries(privileges.map((privilege) => [privilege, propagate]))
})

const everything = [
  "VM.Allocate",
  "VM.Config.Disk",
  "VM.Config.CDROM",
  "VM.Config.CPU",
  "VM.Config.Memory",
  "VM.Config.Network",
  "VM.Config.Cloudinit",
  "VM.Config.Options",
  "VM.PowerMgmt",
  "VM.Audit",
  "VM.Monitor",
  "VM.GuestAgent.Audit",
  "Datastore.AllocateSpace",
  "Datastore.AllocateTemplate",
  "Sys.Audit",
  "Sys.AccessNetwork",
  "SDN.Use"
]

const token = (permissions: PermissionMap) =>
  new PreflightOptions({ access: { _tag: "Permissions", principal: "homelab@pve!reconciler", permissions } })

describe("preflight", () => {
  it("a node with everything in place has no findings", () => {
    const report = preflight(node(), request(), token(grant("/", everything)))
    assert.deepStrictEqual(report.findings, [])
    assert.isTrue(report.ok)
    assert.strictEqual(report.node, "pve")
  })

  describe("bridges", () => {
    it("missing bridge", () => {
      const report = preflight(node(), request({ bridges: ["vmbr9"] }))
      assert.deepStrictEqual(report.findings, [
        new PreflightFinding({
          code: "bridge.missing",
          severity: "error",
          node: "pve",
          object: "bridge vmbr9",
          message: "bridge 'vmbr9' does not exist on node pve",
          fix:
            "create bridge 'vmbr9' on node pve (System → Network → Create → Linux Bridge, then Apply Configuration) " +
            "or set nodes[pve].bridges to existing bridges; an API token only sees bridges it holds SDN.Use on " +
            "(/sdn/zones/localnetwork/vmbr9)"
        })
      ])
      assert.isFalse(report.ok)
    })

    it("inactive bridge", () => {
      const report = preflight(node(), request({ bridges: ["vmbr0", "vmbr1"] }))
      assert.deepStrictEqual(codes(report), ["bridge.inactive:bridge vmbr1"])
      assert.strictEqual(report.findings[0]?.message, "bridge 'vmbr1' on node pve is not active")
      assert.include(report.findings[0]?.fix, "ifreload -a")
    })

    it("bridgeFindings: the same check on its own, for a NIC added to an existing VM (from the node's bridges alone)", () => {
      const facts = { node: "pve", bridges: [...node().bridges] }
      assert.deepStrictEqual(bridgeFindings(facts, { bridges: ["vmbr0"] }), [])
      assert.deepStrictEqual(bridgeFindings(facts, { bridges: ["vmbr9", "vmbr1"] }), [
        ...preflight(node(), request({ bridges: ["vmbr9", "vmbr1"] })).findings
      ])
    })

    it("diskStorageFindings: the disk storage checks on their own, for a disk asked on another storage", () => {
      const facts = { node: "pve", storages: [...node().storages] }
      assert.deepStrictEqual(diskStorageFindings(facts, "local-lvm", 32 * GiB), [])
      assert.deepStrictEqual(
        diskStorageFindings(facts, "nvme-pool", 32 * GiB),
        preflight(node(), request({ diskStorage: "nvme-pool" })).findings
      )
      assert.deepStrictEqual(
        diskStorageFindings(facts, "local", 32 * GiB).map((f) => f.code),
        ["storage.content"]
      )
      assert.deepStrictEqual(
        diskStorageFindings(facts, "local-lvm", 300 * GiB).map((f) => f.code),
        ["storage.full"]
      )
      assert.include(diskStorageFindings(facts, "nvme-pool")[0]?.fix, "nodes[pve].storage")
    })

    it("a bridge named twice is reported once, and its privilege checked once", () => {
      assert.deepStrictEqual(codes(preflight(node(), request({ bridges: ["vmbr7", "vmbr7"] }))), [
        "bridge.missing:bridge vmbr7"
      ])
      const sdn = requiredPrivileges(node(), request({ bridges: ["vmbr0", "vmbr0"] })).filter(
        (r) => r.privilege === "SDN.Use"
      )
      assert.deepStrictEqual(
        sdn.map((r) => r.path),
        ["/sdn/zones/localnetwork/vmbr0"]
      )
    })
  })

  describe("storage", () => {
    it("missing disk storage is reported once, without follow-up findings", () => {
      const report = preflight(node(), request({ diskStorage: "ceph" }))
      assert.deepStrictEqual(codes(report), ["storage.missing:storage ceph"])
      assert.strictEqual(report.findings[0]?.message, "storage 'ceph' (for the disk) is not available on node pve")
      assert.include(report.findings[0]?.fix, "nodes[pve].storage")
    })

    it("one missing storage used for disk and image is reported once", () => {
      const report = preflight(node(), request({ diskStorage: "nfs", imageStorage: "nfs" }))
      assert.deepStrictEqual(codes(report), ["storage.missing:storage nfs"])
    })

    it("disabled storage (and no storage.full for it)", () => {
      const storages = [
        { name: "local", enabled: true, active: true, content: ["import"], availBytes: 80 * GiB },
        { name: "local-lvm", enabled: false, active: false, content: ["images"], availBytes: 0 }
      ]
      const report = preflight(node({ storages }), request())
      assert.deepStrictEqual(codes(report), ["storage.disabled:storage local-lvm"])
      assert.strictEqual(
        report.findings[0]?.fix,
        "enable storage 'local-lvm' (Datacenter → Storage → Edit → Enable) or set nodes[pve].storage to an enabled storage"
      )
    })

    it("inactive storage", () => {
      const storages = [
        { name: "local", enabled: true, active: true, content: ["import"], availBytes: 80 * GiB },
        { name: "local-lvm", enabled: true, active: false, content: ["images"], availBytes: 0 }
      ]
      const report = preflight(node({ storages }), request())
      assert.deepStrictEqual(codes(report), ["storage.inactive:storage local-lvm"])
      assert.include(report.findings[0]?.fix, "pvesm status")
    })

    it("disk storage without `images`", () => {
      const storages = [
        { name: "local", enabled: true, active: true, content: ["import"], availBytes: 80 * GiB },
        { name: "local-lvm", enabled: true, active: true, content: ["rootdir"], availBytes: 200 * GiB }
      ]
      const report = preflight(node({ storages }), request())
      assert.deepStrictEqual(report.findings, [
        new PreflightFinding({
          code: "storage.content",
          severity: "error",
          node: "pve",
          object: "storage local-lvm",
          message:
            "storage 'local-lvm' on node pve does not allow content 'images' (needed for the disk; it allows: rootdir)",
          fix:
            "add `images` to the content of storage 'local-lvm' (Datacenter → Storage → Edit) or set nodes[pve].storage " +
            "to a storage that has it"
        })
      ])
    })

    it("a stock PVE 8 `local` lacks `import`", () => {
      const storages = [
        { name: "local", enabled: true, active: true, content: ["iso", "vztmpl", "backup"], availBytes: 80 * GiB },
        { name: "local-lvm", enabled: true, active: true, content: ["rootdir", "images"], availBytes: 200 * GiB }
      ]
      const report = preflight(node({ storages }), request())
      assert.deepStrictEqual(codes(report), ["storage.content:storage local"])
      assert.strictEqual(
        report.findings[0]?.fix,
        "add `import` to the content of storage 'local' (Datacenter → Storage → Edit) (directory storages support it " +
          "from PVE 8.3) or set nodes[pve].imageStorage to a storage that has it"
      )
      // importing through an ISO-typed .img (root over SSH) is fine on the same storage
      assert.deepStrictEqual(codes(preflight(node({ storages }), request({ imageContent: "iso" }))), [])
    })

    it("the image to download must fit too, together with the disk when they share a storage", () => {
      const storages = [
        { name: "local", enabled: true, active: true, content: ["import"], availBytes: 2 * GiB },
        { name: "local-lvm", enabled: true, active: true, content: ["images", "import"], availBytes: 34 * GiB }
      ]
      const image = { imageBytes: 3 * GiB }
      const separate = preflight(node({ storages }), request(image))
      assert.deepStrictEqual(codes(separate), ["storage.full:storage local"])
      assert.strictEqual(
        separate.findings[0]?.message,
        "storage 'local' on node pve has 2.0 GiB free, the image needs 3.0 GiB"
      )
      assert.strictEqual(
        separate.findings[0]?.fix,
        "free space on storage 'local' or set nodes[pve].imageStorage to a storage with at least 3.0 GiB free"
      )
      const shared = preflight(node({ storages }), request({ ...image, imageStorage: "local-lvm" }))
      assert.deepStrictEqual(codes(shared), ["storage.full:storage local-lvm"])
      assert.strictEqual(
        shared.findings[0]?.message,
        "storage 'local-lvm' on node pve has 34.0 GiB free, the disk and the image need 35.0 GiB"
      )
      // no download: the image is already there and needs no room
      assert.deepStrictEqual(codes(preflight(node({ storages }), request({ ...image, downloadImage: false }))), [])
    })

    it("storage.full when avail < disk size; equal is enough", () => {
      const storages = (avail: number) => [
        { name: "local", enabled: true, active: true, content: ["import"], availBytes: 80 * GiB },
        { name: "local-lvm", enabled: true, active: true, content: ["images"], availBytes: avail }
      ]
      const full = preflight(node({ storages: storages(32 * GiB - 1) }), request())
      assert.deepStrictEqual(codes(full), ["storage.full:storage local-lvm"])
      assert.strictEqual(
        full.findings[0]?.message,
        "storage 'local-lvm' on node pve has 32.0 GiB free, the disk needs 32.0 GiB"
      )
      assert.deepStrictEqual(codes(preflight(node({ storages: storages(32 * GiB) }), request())), [])
    })
  })

  describe("memory", () => {
    it("reservable = total × adjustment − Σ maxmem of the other guests", () => {
      const guests = [
        { vmid: 100, maxmemBytes: 8 * GiB, template: false },
        { vmid: 101, maxmemBytes: 4 * GiB, template: false },
        { vmid: 9000, maxmemBytes: 16 * GiB, template: true },
        { vmid: 105, maxmemBytes: 16 * GiB, template: false }
      ]
      assert.strictEqual(reservableMemoryBytes(node({ guests }), 1, 105), 20 * GiB)
      assert.strictEqual(reservableMemoryBytes(node({ guests }), 1), 4 * GiB)
      assert.strictEqual(reservableMemoryBytes(node({ guests }), 1.5, 105), 36 * GiB)
    })

    it("exactly the reservable memory fits; one MiB more does not", () => {
      assert.deepStrictEqual(codes(preflight(node(), request({ memoryMiB: 24 * 1024 }))), [])
      const report = preflight(node(), request({ memoryMiB: 24 * 1024 + 1 }))
      assert.deepStrictEqual(codes(report), ["memory.insufficient:node pve"])
      assert.strictEqual(
        report.findings[0]?.message,
        "node pve can reserve 24576 MiB (32.0 GiB × 1 minus the maxmem of its other guests), the VM needs 24577 MiB"
      )
    })

    it("the VM being replaced does not count against the node", () => {
      const guests = [{ vmid: 105, maxmemBytes: 30 * GiB, template: false }]
      assert.deepStrictEqual(codes(preflight(node({ guests }), request({ memoryMiB: 30 * 1024 }))), [])
      assert.deepStrictEqual(codes(preflight(node({ guests }), request({ vmid: 106, memoryMiB: 30 * 1024 }))), [
        "memory.insufficient:node pve"
      ])
    })

    it("adjustment above 1 allows overcommit, 0 turns the check off", () => {
      const big = request({ memoryMiB: 40 * 1024 })
      assert.deepStrictEqual(codes(preflight(node(), big)), ["memory.insufficient:node pve"])
      assert.deepStrictEqual(codes(preflight(node(), big, new PreflightOptions({ memoryAdjustment: 1.5 }))), [])
      assert.deepStrictEqual(codes(preflight(node(), big, new PreflightOptions({ memoryAdjustment: 0 }))), [])
    })
  })

  it("cpu: cores up to the node's logical CPUs", () => {
    assert.deepStrictEqual(codes(preflight(node(), request({ cores: 8 }))), [])
    const report = preflight(node(), request({ cores: 9 }))
    assert.deepStrictEqual(codes(report), ["cpu.insufficient:node pve"])
    assert.strictEqual(
      report.findings[0]?.message,
      'the VM asks for 9 cores, node pve has 8 logical CPUs (PVE would refuse to start it: "MAX 8 vcpus allowed per VM on this node")'
    )
  })

  it("cpu: sockets × cores up to the node's logical CPUs, as qemu-server checks at start", () => {
    assert.deepStrictEqual(codes(preflight(node(), request({ sockets: 2, cores: 4 }))), [])
    const report = preflight(node(), request({ sockets: 2, cores: 6 }))
    assert.deepStrictEqual(codes(report), ["cpu.insufficient:node pve"])
    assert.strictEqual(
      report.findings[0]?.message,
      'the VM asks for 2 sockets × 6 cores = 12 vCPUs, node pve has 8 logical CPUs (PVE would refuse to start it: "MAX 8 vcpus allowed per VM on this node")'
    )
    assert.strictEqual(
      report.findings[0]?.fix,
      "lower sockets × cores to at most 8: with vm.sockets 2, at most 4 cores (nodes[pve].vms[].cores or nodes[pve].cpuRatio), or fewer vm.sockets"
    )
    assert.strictEqual(
      preflight(node({ cpus: 2 }), request({ sockets: 4, cores: 1 })).findings[0]?.fix,
      "lower sockets × cores to at most 2: lower vm.sockets to at most 2"
    )
  })

  it("balloon: at most the VM's memory (0 turns ballooning off)", () => {
    assert.deepStrictEqual(codes(preflight(node(), request({ memoryMiB: 4096, balloonMiB: 4096 }))), [])
    assert.deepStrictEqual(codes(preflight(node(), request({ memoryMiB: 4096, balloonMiB: 0 }))), [])
    const report = preflight(node(), request({ memoryMiB: 4096, balloonMiB: 6144 }))
    assert.deepStrictEqual(codes(report), ["balloon.too-large:node pve"])
    assert.strictEqual(
      report.findings[0]?.message,
      'the VM\'s balloon minimum (6144 MiB) is above its memory on node pve (4096 MiB); PVE refuses that in a config update ("balloon value too large (must be smaller than assigned memory)")'
    )
    assert.strictEqual(
      report.findings[0]?.fix,
      "lower vm.balloon to at most 4096 MiB (0 turns ballooning off), or give the VM more memory (nodes[pve].vms[].memory or nodes[pve].memoryRatio)"
    )
  })

  it("sizeFindings checks the size alone, for a VM changed in place", () => {
    assert.deepStrictEqual(
      sizeFindings({ node: "pve", cpus: 8 }, { cores: 6, sockets: 2, memoryMiB: 2048, balloonMiB: 4096 }).map(
        (f) => f.code
      ),
      ["cpu.insufficient", "balloon.too-large"]
    )
    assert.deepStrictEqual(sizeFindings({ node: "pve", cpus: 8 }, { cores: 8, memoryMiB: 2048 }), [])
  })

  it("image source unreachable", () => {
    const url = "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img"
    const down = preflight(
      node(),
      request(),
      new PreflightOptions({ image: { url, reachable: false, detail: "HTTP 404" } })
    )
    assert.deepStrictEqual(codes(down), [`image.unreachable:image ${url}`])
    assert.strictEqual(down.findings[0]?.message, `the cloud image ${url} is not reachable from node pve (HTTP 404)`)
    const up = preflight(node(), request(), new PreflightOptions({ image: { url, reachable: true } }))
    assert.deepStrictEqual(codes(up), [])
  })

  describe("privileges", () => {
    it("root needs no privilege check", () => {
      const report = preflight(node(), request(), new PreflightOptions({ access: { _tag: "Root" } }))
      assert.deepStrictEqual(report.findings, [])
    })

    it("no permissions at all: every requirement is reported, the agent one as a warning", () => {
      const report = preflight(node(), request(), token({}))
      assert.deepStrictEqual(
        report.findings.map((f) => `${f.severity} ${f.code} ${f.object}`),
        [
          "error privilege.missing /vms/105",
          "error privilege.missing /vms/105",
          "error privilege.missing /vms/105",
          "error privilege.missing /vms/105",
          "error privilege.missing /vms/105",
          "error privilege.missing /vms/105",
          "error privilege.missing /vms/105",
          "error privilege.missing /vms/105",
          "error privilege.missing /vms/105",
          "error privilege.missing /vms/105",
          "error privilege.missing /storage/local-lvm",
          "error privilege.missing /nodes/pve",
          "error privilege.missing /sdn/zones/localnetwork/vmbr0",
          "error privilege.missing /storage/local",
          "error privilege.missing /nodes/pve",
          "warning privilege.missing /vms/105"
        ]
      )
      assert.strictEqual(
        report.findings[6]?.message,
        "homelab@pve!reconciler lacks VM.Config.Cloudinit on /vms/105 (needed to create, configure and power the VM on node pve)"
      )
      assert.strictEqual(
        report.findings[6]?.fix,
        "grant homelab@pve (the token's user) a role containing VM.Config.Cloudinit on /vms/105 (Datacenter → " +
          "Permissions → Add, or `pveum acl modify /vms/105 --users 'homelab@pve' --roles <role>`), and the token as " +
          "well if it is privilege-separated (`pveum acl modify /vms/105 --tokens 'homelab@pve!reconciler' --roles " +
          "<role>`), or let the reconciler connect as root@pam over SSH"
      )
      assert.strictEqual(
        report.findings[14]?.message,
        "homelab@pve!reconciler lacks Sys.AccessNetwork on /nodes/pve or Sys.Audit + Sys.Modify on / (needed to let the node " +
          "download the cloud image (download-url) on node pve)"
      )
      assert.strictEqual(report.findings[15]?.message.startsWith("homelab@pve!reconciler lacks VM.Monitor"), true)
    })

    it("a user (not a token) gets a --users hint", () => {
      const report = preflight(
        node(),
        request(),
        new PreflightOptions({ access: { _tag: "Permissions", principal: "ops@pve", permissions: {} } })
      )
      assert.include(report.findings[0]?.fix, "--users 'ops@pve'")
      assert.notInclude(report.findings[0]?.fix, "privilege-separated")
    })

    it("privileges on / that do not propagate do not reach /vms/105", () => {
      const report = preflight(node(), request(), token(grant("/", everything, 0)))
      // only the download alternative `Sys.Audit + Sys.Modify on /` is checked at / itself, and Sys.Modify is missing
      assert.strictEqual(report.findings.length, 16)
      const withModify = token({ "/": { ...grant("/", everything, 0)["/"], "Sys.Modify": 0 } })
      assert.strictEqual(preflight(node(), request(), withModify).findings.length, 15)
    })

    it("download-url: Sys.AccessNetwork on the node, or both Sys.Audit and Sys.Modify on /", () => {
      const base = {
        ...grant(
          "/",
          everything.filter((p) => p !== "Sys.AccessNetwork" && p !== "Sys.Audit")
        )
      }
      const downloadFinding = (permissions: PermissionMap) =>
        preflight(node(), request(), token(permissions)).findings.filter((f) => f.message.includes("download-url"))
      const nodeAudit = grant("/nodes/pve", ["Sys.Audit"])
      assert.strictEqual(downloadFinding({ ...base, ...nodeAudit }).length, 1)
      assert.strictEqual(
        downloadFinding({ "/": { ...base["/"], "Sys.Modify": 1 }, ...nodeAudit }).length,
        1,
        "Sys.Modify without Sys.Audit on / is not enough"
      )
      assert.strictEqual(downloadFinding({ "/": { ...base["/"], "Sys.Modify": 1, "Sys.Audit": 1 } }).length, 0)
      assert.strictEqual(
        downloadFinding({ ...base, ...grant("/nodes/pve", ["Sys.Audit", "Sys.AccessNetwork"]) }).length,
        0
      )
    })

    it("upload (image.transfer: upload): Datastore.AllocateTemplate on the image storage, not Sys.AccessNetwork", () => {
      const upload = request({ imageTransfer: "upload" })
      const needed = requiredPrivileges(node(), upload)
      assert.isUndefined(needed.find((r) => r.privilege === "Sys.AccessNetwork"))
      assert.deepStrictEqual(
        needed.filter((r) => r.privilege === "Datastore.AllocateTemplate"),
        downloadPrivileges("pve", "local", "upload")
      )
      assert.deepStrictEqual(downloadPrivileges("pve", "local", "upload"), [
        {
          privilege: "Datastore.AllocateTemplate",
          path: "/storage/local",
          anyOf: [{ privileges: ["Datastore.AllocateTemplate"], path: "/storage/local" }],
          severity: "error",
          purpose: "upload the cloud image"
        }
      ])
      const without = (privilege: string) => {
        const others = everything.filter((p) => p !== privilege)
        return token(grant("/", others))
      }
      // a token without Sys.AccessNetwork (nor Sys.Modify on /) may upload
      assert.deepStrictEqual(preflight(node(), upload, without("Sys.AccessNetwork")).findings, [])
      assert.deepStrictEqual(
        preflight(node(), upload, without("Datastore.AllocateTemplate")).findings.map((f) => f.message),
        [
          "homelab@pve!reconciler lacks Datastore.AllocateTemplate on /storage/local (needed to upload the cloud image on node pve)"
        ]
      )
    })

    it("VM privileges on the pool count", () => {
      const permissions = {
        ...grant("/pool/k3s", everything),
        ...grant("/storage", ["Datastore.AllocateSpace", "Datastore.AllocateTemplate"]),
        ...grant("/nodes/pve", ["Sys.Audit", "Sys.AccessNetwork"]),
        ...grant("/sdn/zones/localnetwork", ["SDN.Use"])
      }
      assert.deepStrictEqual(codes(preflight(node(), request({ pool: "k3s" }), token(permissions))), [])
      assert.strictEqual(preflight(node(), request(), token(permissions)).findings.length, 11)
    })

    it("PVE 9 asks for VM.GuestAgent.Audit, PVE 8 for VM.Monitor", () => {
      const withoutAgent = everything.filter((p) => p !== "VM.Monitor" && p !== "VM.GuestAgent.Audit")
      const pve9 = preflight(node({ pveMajor: 9 }), request(), token(grant("/", withoutAgent)))
      assert.deepStrictEqual(
        pve9.findings.map((f) => [f.severity, f.message]),
        [
          [
            "warning",
            "homelab@pve!reconciler lacks VM.GuestAgent.Audit on /vms/105 (needed to ping the guest agent and read " +
              "the VM's IP addresses on node pve)"
          ]
        ]
      )
      assert.isTrue(pve9.ok)
      const pve8 = preflight(node(), request(), token(grant("/", withoutAgent)))
      assert.include(pve8.findings[0]?.message, "lacks VM.Monitor on /vms/105")
      // a PVE 8 node in a cluster under upgrade: its permissions listed by a PVE 9 node, which names the privilege anew
      const listedBy9 = token(grant("/", [...withoutAgent, "VM.GuestAgent.Audit"]))
      assert.deepStrictEqual(preflight(node(), request(), listedBy9).findings, [])
      assert.deepStrictEqual(
        preflight(node({ pveMajor: 9 }), request(), token(grant("/", [...withoutAgent, "VM.Monitor"]))).findings.map(
          (f) => f.severity
        ),
        ["warning"]
      )
    })

    it("SDN.Use is only needed from PVE 8 on, download privileges only for a download", () => {
      const privileges = (n: NodeFacts, r: VmRequest) => requiredPrivileges(n, r).map((x) => `${x.privilege} ${x.path}`)
      assert.include(privileges(node(), request()), "SDN.Use /sdn/zones/localnetwork/vmbr0")
      assert.notInclude(privileges(node({ pveMajor: 7 }), request()), "SDN.Use /sdn/zones/localnetwork/vmbr0")
      const noDownload = privileges(node(), request({ downloadImage: false }))
      assert.notInclude(noDownload, "Datastore.AllocateTemplate /storage/local")
      assert.notInclude(noDownload, "Sys.AccessNetwork /nodes/pve")
      assert.deepStrictEqual(privileges(node(), request({ vmid: undefined, downloadImage: false, bridges: [] })), [
        "VM.Allocate /vms",
        "VM.Config.Disk /vms",
        "VM.Config.CDROM /vms",
        "VM.Config.CPU /vms",
        "VM.Config.Memory /vms",
        "VM.Config.Network /vms",
        "VM.Config.Cloudinit /vms",
        "VM.Config.Options /vms",
        "VM.PowerMgmt /vms",
        "VM.Audit /vms",
        "Datastore.AllocateSpace /storage/local-lvm",
        "Sys.Audit /nodes/pve",
        "VM.Monitor /vms"
      ])
    })
  })

  it("warnings do not block creation", () => {
    const report = new PreflightReport({
      node: "pve",
      findings: [
        new PreflightFinding({
          code: "privilege.missing",
          severity: "warning",
          node: "pve",
          object: "/vms/105",
          message: "m",
          fix: "f"
        })
      ]
    })
    assert.isTrue(report.ok)
    assert.strictEqual(report.errors.length, 0)
    assert.strictEqual(report.warnings.length, 1)
  })

  it("several problems are all reported, in a stable order", () => {
    const report = preflight(
      node({ cpus: 2, bridges: [], storages: [] }),
      request(),
      new PreflightOptions({ image: { url: "https://x/y.img", reachable: false } })
    )
    assert.deepStrictEqual(codes(report), [
      "bridge.missing:bridge vmbr0",
      "storage.missing:storage local-lvm",
      "storage.missing:storage local",
      "cpu.insufficient:node pve",
      "image.unreachable:image https://x/y.img"
    ])
    assert.strictEqual(report.errors.length, 5)
  })

  it("a report encodes to plain JSON with stable codes", () => {
    const report = preflight(node(), request({ cores: 64 }))
    assert.deepStrictEqual(JSON.parse(JSON.stringify(Schema.encodeSync(PreflightReport)(report))), {
      node: "pve",
      findings: [
        {
          code: "cpu.insufficient",
          severity: "error",
          node: "pve",
          object: "node pve",
          message:
            'the VM asks for 64 cores, node pve has 8 logical CPUs (PVE would refuse to start it: "MAX 8 vcpus allowed per VM on this node")',
          fix: "lower the VM cores (nodes[pve].vms[].cores or nodes[pve].cpuRatio) to at most 8"
        }
      ]
    })
  })
})
