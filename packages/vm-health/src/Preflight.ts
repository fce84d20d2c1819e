import * as Schema from "effect/Schema"
import { AccessFact, hasPrivilege, type PermissionMap } from "./AccessFact.js"
import type { NodeFacts, StorageFact } from "./NodeFacts.js"
import { type FindingCode, PreflightFinding, PreflightReport, type Severity } from "./PreflightFinding.js"
import type { VmRequest } from "./VmRequest.js"

const MiB = 1024 * 1024

/**
 * Whether the cloud image source could be reached from the node, as the caller observed it (a `HEAD` request, a
 * finished `download-url` task, …). `detail` says what was seen (`HTTP 404`, `DNS lookup failed`, …).
 *
 * @since 0.1.0
 * @category models
 */
export const ImageSourceFact = Schema.Struct({
  url: Schema.String,
  reachable: Schema.Boolean,
  detail: Schema.optional(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ImageSourceFact = typeof ImageSourceFact.Type

/**
 * Optional inputs of `preflight`:
 *
 * - `image`: the observed reachability of the image source (no check when left out);
 * - `access`: who talks to PVE and its `GET /access/permissions` map (no privilege check when left out);
 * - `memoryAdjustment`: factor on the node's total memory before subtracting the other guests' `maxmem`
 *   (default 1.0; above 1 allows overcommit; 0 turns the memory check off).
 *
 * @since 0.1.0
 * @category models
 */
export class PreflightOptions extends Schema.Class<PreflightOptions>("@homelab/vm-health/PreflightOptions")({
  image: Schema.optional(ImageSourceFact),
  access: Schema.optional(AccessFact),
  memoryAdjustment: Schema.optional(Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0)))
}) {}

/**
 * One privilege the reconciler needs for creating and running a VM, and where. `anyOf` lists alternatives (e.g.
 * `/pool/<pool>` besides `/vms/<vmid>`, or `Sys.Audit` + `Sys.Modify` on `/` besides `Sys.AccessNetwork` on the node);
 * one alternative with all of its `privileges` granted on its `path` is enough.
 *
 * @since 0.1.0
 * @category models
 */
export interface PrivilegeRequirement {
  readonly privilege: string
  readonly path: string
  readonly anyOf: ReadonlyArray<{ readonly privileges: ReadonlyArray<string>; readonly path: string }>
  readonly severity: Severity
  readonly purpose: string
}

const vmPrivileges = [
  "VM.Allocate",
  "VM.Config.Disk",
  "VM.Config.CDROM",
  "VM.Config.CPU",
  "VM.Config.Memory",
  "VM.Config.Network",
  "VM.Config.Cloudinit",
  "VM.Config.Options",
  "VM.PowerMgmt",
  "VM.Audit"
] as const

/** A privilege that only itself, on that one path, grants. */
const single = (
  privilege: string,
  path: string,
  purpose: string,
  severity: Severity = "error"
): PrivilegeRequirement => ({ privilege, path, anyOf: [{ privileges: [privilege], path }], severity, purpose })

/**
 * The privileges a non-root principal needs on `node` to create `request` and watch its health (PVE reference §7):
 * the `VM.*` privileges on `/vms/<vmid>` (or the pool), `Datastore.AllocateSpace` on the disk storage,
 * `Sys.Audit` on the node, `SDN.Use` on each bridge (PVE ≥ 8), and for a download `Datastore.AllocateTemplate` on the
 * image storage plus, with `download-url`, `Sys.AccessNetwork` on the node (or `Sys.Audit` + `Sys.Modify` on `/`;
 * an upload needs neither, see `downloadPrivileges`). The guest-agent privilege (`VM.Monitor` on PVE 8,
 * `VM.GuestAgent.Audit` on PVE 9; on PVE 8 the latter is taken too, as a PVE 9 node lists it in a cluster under
 * upgrade) is a warning: creation works without it, agent checks and IP discovery do not.
 *
 * @since 0.1.0
 * @category preflight
 */
export const requiredPrivileges = (node: NodeFacts, request: VmRequest): Array<PrivilegeRequirement> => {
  const pveMajor = node.pveMajor ?? 8
  const vmPath = request.vmid === undefined ? "/vms" : `/vms/${request.vmid}`
  const vmAlternatives = (privilege: string) => [
    ...(request.pool === undefined ? [] : [{ privileges: [privilege], path: `/pool/${request.pool}` }]),
    { privileges: [privilege], path: vmPath }
  ]
  const requirements: Array<PrivilegeRequirement> = vmPrivileges.map((privilege) => ({
    privilege,
    path: vmPath,
    anyOf: vmAlternatives(privilege),
    severity: "error",
    purpose: "create, configure and power the VM"
  }))
  requirements.push(
    single("Datastore.AllocateSpace", `/storage/${request.diskStorage}`, "allocate the VM disk"),
    single("Sys.Audit", `/nodes/${node.node}`, "read the node's capacity")
  )
  if (pveMajor >= 8) {
    for (const bridge of new Set(request.bridges)) {
      requirements.push(single("SDN.Use", `/sdn/zones/localnetwork/${bridge}`, `attach a NIC to bridge ${bridge}`))
    }
  }
  if (request.downloadImage) {
    requirements.push(...downloadPrivileges(node.node, request.imageStorage, request.imageTransfer))
  }
  const agentPrivilege = pveMajor >= 9 ? "VM.GuestAgent.Audit" : "VM.Monitor"
  requirements.push({
    privilege: agentPrivilege,
    path: vmPath,
    // A PVE 8 node's permissions may have been listed by a PVE 9 node (a rolling upgrade), which knows no VM.Monitor
    // and lists the guest-agent privilege under its 9.x name.
    anyOf:
      pveMajor >= 9
        ? vmAlternatives(agentPrivilege)
        : [...vmAlternatives(agentPrivilege), ...vmAlternatives("VM.GuestAgent.Audit")],
    severity: "warning",
    purpose: "ping the guest agent and read the VM's IP addresses"
  })
  return requirements
}

/**
 * The privileges a non-root principal needs to bring the cloud image to a node's image storage, as `transfer` says
 * (PVE's API permissions): with `download-url` (the default: the node downloads it), `Datastore.AllocateTemplate` on
 * the image storage and `Sys.AccessNetwork` on the node (or `Sys.Audit` + `Sys.Modify` on `/`); with `upload` (the
 * caller uploads it, `POST /nodes/{node}/storage/{storage}/upload`), `Datastore.AllocateTemplate` on the image storage
 * only. Part of `requiredPrivileges` when the request downloads the image; on their own for a download that no create
 * follows (the node's VMs exist, only the image is missing).
 *
 * @since 0.2.0
 * @category preflight
 */
export const downloadPrivileges = (
  node: string,
  imageStorage: string,
  transfer: "download-url" | "upload" = "download-url"
): Array<PrivilegeRequirement> =>
  transfer === "upload"
    ? [single("Datastore.AllocateTemplate", `/storage/${imageStorage}`, "upload the cloud image")]
    : [
        single("Datastore.AllocateTemplate", `/storage/${imageStorage}`, "download the cloud image"),
        {
          privilege: "Sys.AccessNetwork",
          path: `/nodes/${node}`,
          anyOf: [
            { privileges: ["Sys.AccessNetwork"], path: `/nodes/${node}` },
            { privileges: ["Sys.Audit", "Sys.Modify"], path: "/" }
          ],
          severity: "error",
          purpose: "let the node download the cloud image (download-url)"
        }
      ]

const finding = (
  code: FindingCode,
  severity: Severity,
  node: string,
  object: string,
  message: string,
  fix: string
): PreflightFinding => new PreflightFinding({ code, severity, node, object, message, fix })

const gib = (bytes: number): string => `${(bytes / (1024 * MiB)).toFixed(1)} GiB`

/**
 * The bridge checks of `preflight` on their own: each of `request.bridges` exists on the node (`bridge.missing`) and
 * is active (`bridge.inactive`), both errors. For anything that attaches a NIC to a bridge, not only a create (a NIC
 * added to, or moved on, an existing VM).
 *
 * @since 0.2.0
 * @category preflight
 */
export const bridgeFindings = (
  node: Pick<NodeFacts, "node" | "bridges">,
  request: Pick<VmRequest, "bridges">
): Array<PreflightFinding> => {
  const out: Array<PreflightFinding> = []
  for (const name of new Set(request.bridges)) {
    const bridge = node.bridges.find((candidate) => candidate.name === name)
    if (bridge === undefined) {
      out.push(
        finding(
          "bridge.missing",
          "error",
          node.node,
          `bridge ${name}`,
          `bridge '${name}' does not exist on node ${node.node}`,
          `create bridge '${name}' on node ${node.node} (System → Network → Create → Linux Bridge, then Apply ` +
            `Configuration) or set nodes[${node.node}].bridges to existing bridges; an API token only sees ` +
            `bridges it holds SDN.Use on (/sdn/zones/localnetwork/${name})`
        )
      )
    } else if (!bridge.active) {
      out.push(
        finding(
          "bridge.inactive",
          "error",
          node.node,
          `bridge ${name}`,
          `bridge '${name}' on node ${node.node} is not active`,
          `apply the pending network configuration on node ${node.node} (System → Network → Apply Configuration, ` +
            `or \`ifreload -a\`) so that '${name}' comes up, or set nodes[${node.node}].bridges to active bridges`
        )
      )
    }
  }
  return out
}

interface StorageNeed {
  readonly name: string
  readonly role: "disk" | "image"
  readonly content: string
  readonly configKey: string
  readonly bytes: number | undefined
}

const storageFindings = (
  node: Pick<NodeFacts, "node" | "storages">,
  needs: ReadonlyArray<StorageNeed>
): Array<PreflightFinding> => {
  const out: Array<PreflightFinding> = []
  const reported = new Set<string>()
  for (const need of needs) {
    const storage: StorageFact | undefined = node.storages.find((candidate) => candidate.name === need.name)
    const object = `storage ${need.name}`
    if (storage === undefined) {
      if (!reported.has(need.name)) {
        reported.add(need.name)
        out.push(
          finding(
            "storage.missing",
            "error",
            node.node,
            object,
            `storage '${need.name}' (for the ${need.role}) is not available on node ${node.node}`,
            `add storage '${need.name}' for node ${node.node} (Datacenter → Storage → Add, or Edit → Nodes) or ` +
              `set ${need.configKey} to a storage the node has; an API token only sees storages it holds ` +
              `Datastore.Audit or Datastore.AllocateSpace on`
          )
        )
      }
      continue
    }
    if (!reported.has(need.name)) {
      reported.add(need.name)
      if (!storage.enabled) {
        out.push(
          finding(
            "storage.disabled",
            "error",
            node.node,
            object,
            `storage '${need.name}' is disabled on node ${node.node}`,
            `enable storage '${need.name}' (Datacenter → Storage → Edit → Enable) or set ${need.configKey} to ` +
              `an enabled storage`
          )
        )
      } else if (!storage.active) {
        out.push(
          finding(
            "storage.inactive",
            "error",
            node.node,
            object,
            `storage '${need.name}' is enabled but not active on node ${node.node}`,
            `bring storage '${need.name}' online on node ${node.node} (check \`pvesm status\` there: unreachable ` +
              `NFS/CIFS server, missing disk, volume group or pool) or set ${need.configKey} to an active storage`
          )
        )
      }
    }
    if (!storage.content.includes(need.content)) {
      out.push(
        finding(
          "storage.content",
          "error",
          node.node,
          object,
          `storage '${need.name}' on node ${node.node} does not allow content '${need.content}' (needed for the ` +
            `${need.role}; it allows: ${storage.content.join(", ") || "nothing"})`,
          `add \`${need.content}\` to the content of storage '${need.name}' (Datacenter → Storage → Edit)` +
            (need.content === "import" ? " (directory storages support it from PVE 8.3)" : "") +
            ` or set ${need.configKey} to a storage that has it`
        )
      )
    }
  }
  // Space: disk and image may share a storage, so add up what each storage has to hold.
  const byStorage = new Map<string, { bytes: number; roles: Array<string>; configKey: string }>()
  for (const need of needs) {
    if (need.bytes === undefined) continue
    const entry = byStorage.get(need.name) ?? { bytes: 0, roles: [], configKey: need.configKey }
    entry.bytes += need.bytes
    entry.roles.push(need.role)
    byStorage.set(need.name, entry)
  }
  for (const [name, { bytes, configKey, roles }] of byStorage) {
    const storage = node.storages.find((candidate) => candidate.name === name)
    if (storage === undefined || !storage.enabled || !storage.active || storage.availBytes >= bytes) continue
    const what = roles.length === 1 ? `the ${roles[0]} needs` : `the ${roles.join(" and the ")} need`
    out.push(
      finding(
        "storage.full",
        "error",
        node.node,
        `storage ${name}`,
        `storage '${name}' on node ${node.node} has ${gib(storage.availBytes)} free, ${what} ${gib(bytes)}`,
        `free space on storage '${name}'${roles.includes("disk") ? ", reduce the disk size," : ""} or set ` +
          `${configKey} to a storage with at least ${gib(bytes)} free`
      )
    )
  }
  return out
}

/**
 * What to do when node `node` cannot reserve a VM's memory (`memory.insufficient`): the hint of a create's preflight,
 * and of a memory grown in place beyond what the node can still reserve.
 *
 * @since 0.2.1
 * @category preflight
 */
export const memoryInsufficientHint = (node: string): string =>
  `lower the VM memory (nodes[${node}].vms[].memory or nodes[${node}].memoryRatio), shrink or remove other guests on ` +
  `node ${node}, or allow overcommit (vm.memoryOvercommit above 1, for VMs whose balloon gives memory back)`

/**
 * The memory that can still be promised to a new VM on the node: total × `adjustment` − Σ `maxmem` of the node's
 * other guests (templates and the guest with `excludeVmid` — the VM being replaced — do not count). Can be negative.
 *
 * @since 0.1.0
 * @category preflight
 */
export const reservableMemoryBytes = (node: NodeFacts, adjustment: number, excludeVmid?: number): number => {
  let assigned = 0
  for (const guest of node.guests) {
    if (guest.template || guest.vmid === excludeVmid) continue
    assigned += guest.maxmemBytes
  }
  return node.memoryBytes * adjustment - assigned
}

const capacityFindings = (node: NodeFacts, request: VmRequest, adjustment: number): Array<PreflightFinding> => {
  const out: Array<PreflightFinding> = []
  if (adjustment > 0) {
    const reservable = reservableMemoryBytes(node, adjustment, request.vmid)
    const requested = request.memoryMiB * MiB
    if (reservable < requested) {
      out.push(
        finding(
          "memory.insufficient",
          "error",
          node.node,
          `node ${node.node}`,
          `node ${node.node} can reserve ${Math.floor(Math.max(0, reservable) / MiB)} MiB ` +
            `(${gib(node.memoryBytes)} × ${adjustment} minus the maxmem of its other guests), ` +
            `the VM needs ${request.memoryMiB} MiB`,
          memoryInsufficientHint(node.node)
        )
      )
    }
  }
  out.push(...sizeFindings(node, request))
  return out
}

/**
 * The VM's own size against its node, as PVE checks it (pure): `cpu.insufficient` when `sockets × cores` (the VM's
 * vCPUs; `sockets` defaults to 1) is above the node's logical CPUs — qemu-server refuses to start such a VM ("MAX N
 * vcpus allowed per VM on this node", whatever `vcpus` says) — and `balloon.too-large` when the balloon minimum
 * (`balloonMiB`, 0 = ballooning off) is above `memoryMiB`, which qemu-server refuses in every config update ("balloon
 * value too large (must be smaller than assigned memory)"). `preflight` runs it for a VM to create; it serves as well
 * before a VM is changed in place.
 *
 * @since 0.1.0
 * @category preflight
 */
export const sizeFindings = (
  node: Pick<NodeFacts, "node" | "cpus">,
  size: Pick<VmRequest, "cores" | "sockets" | "memoryMiB" | "balloonMiB">
): Array<PreflightFinding> => {
  const out: Array<PreflightFinding> = []
  const sockets = size.sockets ?? 1
  const vcpus = sockets * size.cores
  if (vcpus > node.cpus) {
    const asks = sockets === 1 ? `${size.cores} cores` : `${sockets} sockets × ${size.cores} cores = ${vcpus} vCPUs`
    const maxCores = Math.floor(node.cpus / sockets)
    out.push(
      finding(
        "cpu.insufficient",
        "error",
        node.node,
        `node ${node.node}`,
        `the VM asks for ${asks}, node ${node.node} has ${node.cpus} logical CPUs ` +
          `(PVE would refuse to start it: "MAX ${node.cpus} vcpus allowed per VM on this node")`,
        sockets === 1
          ? `lower the VM cores (nodes[${node.node}].vms[].cores or nodes[${node.node}].cpuRatio) to at most ${node.cpus}`
          : `lower sockets × cores to at most ${node.cpus}: ` +
              (maxCores >= 1
                ? `with vm.sockets ${sockets}, at most ${maxCores} cores (nodes[${node.node}].vms[].cores or ` +
                  `nodes[${node.node}].cpuRatio), or fewer vm.sockets`
                : `lower vm.sockets to at most ${node.cpus}`)
      )
    )
  }
  const balloon = size.balloonMiB ?? 0
  if (balloon > size.memoryMiB) {
    out.push(
      finding(
        "balloon.too-large",
        "error",
        node.node,
        `node ${node.node}`,
        `the VM's balloon minimum (${balloon} MiB) is above its memory on node ${node.node} ` +
          `(${size.memoryMiB} MiB); PVE refuses that in a config update ("balloon value too large (must be smaller ` +
          `than assigned memory)")`,
        `lower vm.balloon to at most ${size.memoryMiB} MiB (0 turns ballooning off), or give the VM more memory ` +
          `(nodes[${node.node}].vms[].memory or nodes[${node.node}].memoryRatio)`
      )
    )
  }
  return out
}

/**
 * A `privilege.missing` finding for each of `requirements` that `principal` does not hold in `permissions` (`GET
 * /access/permissions`), with the grant that fixes it (for a token: its user, and the token itself when it is
 * privilege-separated).
 *
 * @since 0.2.0
 * @category preflight
 */
export const privilegeFindings = (
  node: string,
  requirements: ReadonlyArray<PrivilegeRequirement>,
  principal: string,
  permissions: PermissionMap
): Array<PreflightFinding> =>
  requirements
    .filter(
      (req) =>
        !req.anyOf.some((alt) => alt.privileges.every((privilege) => hasPrivilege(permissions, alt.path, privilege)))
    )
    .map((req) => {
      const alternatives = req.anyOf.map((alt) => `${alt.privileges.join(" + ")} on ${alt.path}`).join(" or ")
      // A token (user@realm!name) has its user's privileges, intersected with its own ACLs when it is
      // privilege-separated (PVE's RPCEnvironment::permissions): the user needs the privilege in either case, the
      // token itself only when separated. An ACL on a token without separation changes nothing.
      const bang = principal.indexOf("!")
      const user = bang > 0 ? principal.slice(0, bang) : principal
      const grant =
        `a role containing ${req.privilege} on ${req.path} (Datacenter → Permissions → Add, or ` +
        `\`pveum acl modify ${req.path} --users '${user}' --roles <role>\`)`
      const who =
        bang > 0
          ? `grant ${user} (the token's user) ${grant}, and the token as well if it is privilege-separated ` +
            `(\`pveum acl modify ${req.path} --tokens '${principal}' --roles <role>\`)`
          : `grant ${user} ${grant}`
      return finding(
        "privilege.missing",
        req.severity,
        node,
        req.path,
        `${principal} lacks ${alternatives} (needed to ${req.purpose} on node ${node})`,
        `${who}, or let the reconciler connect as root@pam over SSH`
      )
    })

/**
 * The disk storage checks of `preflight` on their own: `storage` exists on the node (`storage.missing`), is enabled
 * (`storage.disabled`) and active (`storage.inactive`), allows `images` (`storage.content`) and, when `bytes` is
 * given, has that much free (`storage.full`), all errors naming `nodes[<node>].storage`. For anything that puts a
 * VM's disk on a storage, not only a create (a disk homelab.yaml asks on another storage than the one it is on).
 *
 * @since 0.2.0
 * @category preflight
 */
export const diskStorageFindings = (
  node: Pick<NodeFacts, "node" | "storages">,
  storage: string,
  bytes?: number
): Array<PreflightFinding> =>
  storageFindings(node, [
    { name: storage, role: "disk", content: "images", configKey: `nodes[${node.node}].storage`, bytes }
  ])

/**
 * Checks whether `request` can be created on the node described by `node`, from facts the caller observed. Pure and
 * total: it returns every finding (errors block creation on that node, warnings do not) and never performs I/O.
 *
 * Checks: each bridge exists and is active; the disk storage exists, is enabled and active, allows `images` and has
 * `diskBytes` free; the image storage exists, is enabled and active, allows `import` or `iso` (per
 * `request.imageContent`) and has room for `imageBytes` when the image is to be downloaded (a storage holding both
 * must fit their sum); memory is reservable (`reservableMemoryBytes` ≥ requested; skipped when
 * `memoryAdjustment` is 0); sockets × cores ≤ the node's logical CPUs and the balloon ≤ the memory (`sizeFindings`); the image source is reachable (when `options.image` is
 * given); the principal holds `requiredPrivileges` (when `options.access` is a permission map).
 *
 * @since 0.1.0
 * @category preflight
 */
export const preflight = (
  node: NodeFacts,
  request: VmRequest,
  options: PreflightOptions = new PreflightOptions({})
): PreflightReport => {
  const diskKey = `nodes[${node.node}].storage`
  const imageKey = `nodes[${node.node}].imageStorage`
  const findings: Array<PreflightFinding> = [
    ...bridgeFindings(node, request),
    ...storageFindings(node, [
      { name: request.diskStorage, role: "disk", content: "images", configKey: diskKey, bytes: request.diskBytes },
      {
        name: request.imageStorage,
        role: "image",
        content: request.imageContent,
        configKey: imageKey,
        bytes: request.downloadImage ? request.imageBytes : undefined
      }
    ]),
    ...capacityFindings(node, request, options.memoryAdjustment ?? 1)
  ]
  const image = options.image
  if (image !== undefined && !image.reachable) {
    findings.push(
      finding(
        "image.unreachable",
        "error",
        node.node,
        `image ${image.url}`,
        `the cloud image ${image.url} is not reachable from node ${node.node}` +
          (image.detail === undefined ? "" : ` (${image.detail})`),
        `check the URL and that node ${node.node} can reach it (DNS, proxy, firewall), or put the image on ` +
          `storage '${request.imageStorage}' yourself and turn off the download`
      )
    )
  }
  const access = options.access
  if (access !== undefined && access._tag === "Permissions") {
    findings.push(
      ...privilegeFindings(node.node, requiredPrivileges(node, request), access.principal, access.permissions)
    )
  }
  return new PreflightReport({ node: node.node, findings })
}
