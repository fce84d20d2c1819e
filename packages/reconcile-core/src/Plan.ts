import { memberIdHex, memberWithoutNode, orphanMembersOf } from "@homelab/k3s-join"
import {
  classifyVm,
  downloadPrivileges,
  type HealthPolicy,
  NodeFacts,
  PreflightOptions,
  preflight,
  privilegeFindings,
  remediationToApply,
  reservableMemoryBytes,
  sizeFindings,
  VmFacts,
  VmRequest
} from "@homelab/vm-health"
import * as Duration from "effect/Duration"
import type { Action, Finding, JoinK3s, RestartVm, ReturningMember, UncordonK3s, VmAction, VmSpec } from "./Action.js"
import { agentOff } from "./agentOff.js"
import { cicustomFindings } from "./CicustomPreflight.js"
import { closestName } from "./config/internal/suggest.js"
import { cpuModelFinding } from "./cpuModelFinding.js"
import type { Desired, DesiredNode, DesiredVm } from "./Desired.js"
import { existingClusterHint } from "./existingClusterHint.js"
import { holdWithoutQuorum } from "./holdWithoutQuorum.js"
import { type ImageLeftovers, imageLeftovers } from "./ImageFiles.js"
import { imageImportOf } from "./ImageImport.js"
import { inSafetyProtect } from "./inSafetyProtect.js"
import { DestroyTag, RebuildTag, RejoinTag, RestartTag, UpgradeKeepCordonTag, UpgradeTag } from "./Marks.js"
import { membershipAfterPlan } from "./MembershipAtEnd.js"
import type { Observed, ObservedNode, ObservedVm, ServerUnit } from "./Observed.js"
import { findOrphans, isProtected as isProtectedVm, planOrphans } from "./Orphans.js"
import { type ClusterContext, type ClusterSummary, clusterContext } from "./PlanCluster.js"
import { planDrift } from "./PlanDrift.js"
import { AgentOffWords, noIp, planMembership } from "./PlanK3s.js"
import { blockNoEtcdJoins } from "./PlanNoEtcd.js"
import { blindRestartFinding, chainRestarts, cordonedFinding, cordonFacts, finishRestart } from "./PlanRestart.js"
import { planUpgrades, type UpgradeCandidate } from "./PlanUpgrade.js"
import { holdsEtcdMember, oneAtATime, quorumAfterPlan, quorumFinding } from "./QuorumGuard.js"
import { notRecreated, notStarted, quorumLostFinding } from "./QuorumLost.js"
import { joinedVersion, planRemovedServer } from "./RemovedServer.js"
import { renamedByVmid, renamedByVmidFinding, renamedVm, renamedVmFinding } from "./renamedVm.js"
import { joiningMemberFinding, staleMemberFinding, staleMemberHint, stalledLearnerFinding } from "./StaleMember.js"
import { smbiosUuid } from "./smbiosUuid.js"
import { DefaultTimeouts } from "./Timeouts.js"
import { derivedCores, vmCores } from "./VmCores.js"
import { vmidCandidates } from "./VmidCandidates.js"

export { RebuildTag } from "./Marks.js"

/**
 * The outcome of planning, across the three layers: the actions (each with its reason and the actions it waits for)
 * and what is reported without acting. `nodes` are the nodes the plan covers (the selected ones, in config order).
 * `Convergence.assess` turns it into the per-node verdict.
 */
export interface Plan {
  readonly nodes: ReadonlyArray<string>
  /**
   * The nodes of `nodes` homelab.yaml does not list: in the plan only for the orphans on them (VMs of ours to tear
   * down). Once nothing of ours is left on one, it is no node of the lab: reported as torn down, never as converged.
   */
  readonly unlisted?: ReadonlyArray<string> | undefined
  readonly actions: ReadonlyArray<Action>
  readonly findings: ReadonlyArray<Finding>
  /** With `k3s:`, the cluster that will exist once the plan ran ("3 servers (etcd), 2 agents"). */
  readonly cluster?: ClusterSummary | undefined
}

/** What `observe` must fetch beyond the cheap observation before the plan can decide. */
export interface DetailsNeeded {
  /** Nodes that may get a VM created, recreated or finished: bridges, permissions, image reachability. */
  readonly nodes: ReadonlyArray<string>
  /** Owned VMs that do not look healthy from `/cluster/resources`: status, config, agent. */
  readonly vms: ReadonlyArray<{ readonly node: string; readonly vmid: number }>
}

export interface PlanOptions {
  readonly policy: HealthPolicy
  /**
   * `memoryAdjustment` for preflight (reservable = total × adjustment − Σ maxmem of the other guests); default
   * `desired.memoryOvercommit` (homelab.yaml's `vm.memoryOvercommit`), else 1.
   */
  readonly memoryAdjustment?: number | undefined
  /** Plan only these nodes (`homelab apply --only`). */
  readonly only?: ReadonlyArray<string> | undefined
  /** Force a recreate of these VM names (`homelab reprovision`), within the limit, whatever their health. */
  readonly reprovision?: ReadonlyArray<string> | undefined
  /** Remove orphans (VMs of ours homelab.yaml no longer asks for), their k3s Node first (`homelab apply --prune`). */
  readonly prune?: boolean | undefined
}

const GiB = 1024 ** 3
const MiB = 1024 ** 2

/** The volume id the image has once downloaded, e.g. `local:import/noble.qcow2`. */
export const imageVolid = (node: DesiredNode): string =>
  `${node.image.storage}:${node.image.content}/${node.image.filename}`

/**
 * The image files beside the one homelab.yaml names: images of ours for an earlier `image.checksum` (reported, or
 * with `--prune` deleted once the new one is there), the file under the name used before the name carried the
 * checksum (reported only), and for a name set in `image.filename`, that its file is never checked again.
 */
const planImageFiles = (
  node: DesiredNode,
  observedNode: ObservedNode,
  volid: string,
  leftovers: ImageLeftovers,
  imageAction: string | undefined,
  options: Pick<PlanOptions, "prune">,
  actions: Array<Action>,
  findings: Array<Finding>,
  deletes: Set<string>,
  shared: boolean
): void => {
  const info = (code: string, message: string, hint: string): void => {
    findings.push({ code, effect: "info", layer: "image", node: node.name, message, hint })
  }
  const notRebuilt = "VMs created from it keep their disks and are not rebuilt for a new image"
  if (leftovers.older.length > 0 && options.prune === true) {
    for (const old of leftovers.older) {
      // a file on a shared storage is one file for every node; one on a node's own storage is that node's
      const key = shared ? old : `${node.name}/${old}`
      if (deletes.has(key)) continue
      deletes.add(key)
      actions.push({
        _tag: "DeleteImage",
        id: `${node.name}:image:delete:${old}`,
        node: node.name,
        after: imageAction === undefined ? [] : [imageAction],
        volid: old,
        reason: `--prune: ${old} is an image of ours for another image.checksum, no longer used (${notRebuilt})`
      })
    }
  } else if (leftovers.older.length > 0) {
    info(
      "image.leftover",
      `${leftovers.older.join(", ")} on ${node.name}: homelab's image for another image.checksum, no longer used (${notRebuilt})`,
      "`homelab apply --prune` deletes it"
    )
  }
  if (leftovers.unchecked !== undefined) {
    info(
      "image.unchecked-leftover",
      `${leftovers.unchecked} on ${node.name}: the image under the name homelab gave it before the name carried image.checksum; never checked against the current image.checksum and no longer used (${notRebuilt})`,
      `delete it when nothing else uses it (\`pvesm free ${leftovers.unchecked}\` on ${node.name}); homelab never deletes it, since another tool may have stored a file of that name`
    )
  }
  if (node.image.fixedName === true && node.image.checksum !== undefined && observedNode.imageVolids.has(volid)) {
    info(
      "image.checksum-unchecked",
      `${volid} on ${node.name} is used as it is: image.filename fixes its name, so image.checksum was checked only when it was downloaded and a changed image.checksum is not noticed`,
      "when image.checksum changes, give image.filename a new name, or leave image.filename out (the default name carries the checksum)"
    )
  }
}

const sameName = (observed: Observed, name: string): ReadonlyArray<ObservedVm> =>
  observed.vms.filter((vm) => vm.name === name)

/** Healthy-looking from `/cluster/resources` alone: no further requests are needed to leave it alone. */
/**
 * k3s's journal line on server VM `vmid` named `name`, when observe found its k3s running on after the cluster removed
 * its etcd member (`K3sFacts` `removedMembers`).
 */
const removedMemberLine = (observed: Observed, vmid: number, name: string): string | undefined =>
  observed.k3s?._tag === "Nodes"
    ? observed.k3s.removedMembers?.find((r) => r.vmid === vmid && r.vm === name)?.line
    : undefined

/** The member server VM `vmid` named `name` joins etcd as right now, when observe read it from its journal. */
const joiningMemberOfVm = (
  observed: Observed,
  vmid: number | undefined,
  name: string
): { readonly member: string; readonly line: string } | undefined =>
  observed.k3s?._tag === "Nodes" && vmid !== undefined
    ? observed.k3s.joiningMembers?.find((r) => r.vmid === vmid && r.vm === name)
    : undefined

/** The k3s unit of server VM `vmid` named `name` as observe read it (running, no Node), or why it could not be read. */
const serverUnitOf = (observed: Observed, vmid: number | undefined, name: string): ServerUnit | undefined =>
  observed.k3s?._tag === "Nodes" && vmid !== undefined
    ? observed.k3s.serverUnits?.find((u) => u.vmid === vmid && u.vm === name)
    : undefined

const looksHealthy = (vm: ObservedVm, desired: Desired): boolean =>
  vm.status === "running" &&
  vm.lock === undefined &&
  !vm.tags.includes(desired.pendingTag) &&
  !vm.tags.includes(RebuildTag)

const selectedNodes = (desired: Desired, options: Pick<PlanOptions, "only">): ReadonlyArray<DesiredNode> =>
  options.only === undefined ? desired.nodes : desired.nodes.filter((n) => options.only?.includes(n.name))

/**
 * The VMs of ours a plan may remove: the orphans on the nodes in scope (`apply --prune`), or with `owned` every VM of
 * ours there (`homelab destroy`).
 */
export const removableVms = (
  desired: Desired,
  observed: Pick<Observed, "vms">,
  options: Pick<PlanOptions, "only"> & { readonly owned?: boolean | undefined } = {}
): ReadonlyArray<ObservedVm> =>
  options.owned === true
    ? observed.vms.filter(
        (vm) =>
          vm.type === "qemu" &&
          vm.tags.includes(desired.ownershipTag) &&
          (options.only === undefined || options.only.includes(vm.node))
      )
    : findOrphans(desired, observed, options)

/**
 * Which details the plan needs, from the cheap observation: nodes where a VM is missing or one of ours may be rebuilt
 * or finished (the preflight before a create, a recreate or a finish) and owned VMs that do not look healthy (or
 * every desired VM with `allDetails`). A converged lab needs none.
 */
export const detailsNeeded = (
  desired: Desired,
  observed: Observed,
  options: Pick<PlanOptions, "only" | "reprovision"> & {
    readonly allDetails?: boolean | undefined
    /** Details of every VM of ours on the nodes in scope (`homelab destroy`). */
    readonly owned?: boolean | undefined
  } = {}
): DetailsNeeded => {
  const nodes = new Set<string>()
  const vms: Array<{ node: string; vmid: number }> = []
  for (const node of selectedNodes(desired, options)) {
    if (!observed.nodes.get(node.name)?.online) continue
    // the image is to be put on the node: whether PVE takes it depends on the node's PVE version (`ImageImport`)
    if (!observed.nodes.get(node.name)?.imageVolids.has(imageVolid(node))) nodes.add(node.name)
    for (const vm of node.vms) {
      const matches = sameName(observed, vm.name)
      if (matches.length === 0) {
        nodes.add(node.name)
        continue
      }
      if (matches.length > 1) continue
      const match = matches[0] as ObservedVm
      if (match.type !== "qemu") continue
      const ours = match.node === node.name && match.tags.includes(desired.ownershipTag)
      const acting = ours && (!looksHealthy(match, desired) || options.reprovision?.includes(vm.name) === true)
      if (options.allDetails === true || acting) vms.push({ node: match.node, vmid: match.vmid })
      // A VM of ours the plan may rebuild or finish: the node's details too, for the preflight that comes first
      // (with every VM's details, any VM of ours may turn out to need a rebuild).
      if (acting || (ours && options.allDetails === true && options.owned !== true)) nodes.add(node.name)
    }
  }
  // Orphans (with `owned`, every VM of ours): their protection and lock decide whether they may go.
  for (const vm of removableVms(desired, observed, options)) {
    if (!vms.some((v) => v.vmid === vm.vmid)) vms.push({ node: vm.node, vmid: vm.vmid })
  }
  return { nodes: [...nodes], vms }
}

/**
 * Size a VM from the node's capacity × ratios, unless the config pins the size: its cores share the node's CPUs ×
 * cpuRatio over its sockets (`vmCores`), its memory is the node's memory × memoryRatio.
 */
export const vmSpec = (desired: Desired, node: DesiredNode, observedNode: ObservedNode, vm: DesiredVm): VmSpec => {
  const cores = vmCores(node, observedNode.cpus, vm)
  const memoryMiB =
    vm.memoryMiB ?? Math.max(512, Math.floor(((observedNode.memoryBytes / MiB) * node.memoryRatio) / 256 + 1e-9) * 256)
  return {
    name: vm.name,
    node: node.name,
    role: vm.role,
    cores,
    memoryMiB,
    ...(vm.sockets !== undefined ? { sockets: vm.sockets } : {}),
    ...(vm.balloonMiB !== undefined ? { balloonMiB: vm.balloonMiB } : {}),
    ...(vm.onboot !== undefined ? { onboot: vm.onboot } : {}),
    ...(vm.description !== undefined ? { description: vm.description } : {}),
    diskGiB: vm.diskGiB,
    storage: vm.storage,
    bridges: vm.bridges,
    tags: vm.tags,
    cpuType: vm.cpuType,
    imageVolid: imageVolid(node),
    ...(node.image.content === "iso" ? { imageImport: "path" as const } : {}),
    vmidCandidates: vm.vmid !== undefined ? [vm.vmid] : vmidCandidates(vm.name, desired.vmidRange)
  }
}

/**
 * The node as preflight sees it. `replacing`: a VM of ours that a recreate replaces (or a finish starts): it is not
 * counted among the node's guests, and its disk's size (`freed`) counts as free on the storage it is on.
 */
const nodeFacts = (
  observed: Observed,
  node: ObservedNode,
  replacing: {
    readonly vmid?: number | undefined
    readonly freed?: { readonly storage: string; readonly bytes: number } | undefined
    /** Guests this plan removes before the VM is made (orphans it prunes): not counted among the node's guests. */
    readonly leaving?: ReadonlySet<number> | undefined
  } = {}
): NodeFacts =>
  new NodeFacts({
    node: node.name,
    ...(node.details ? { pveMajor: node.details.pveMajor } : {}),
    cpus: node.cpus,
    memoryBytes: node.memoryBytes,
    bridges: (node.details?.bridges ?? []).map((b) => ({ name: b.name, active: b.active })),
    storages: node.storages.map((s) => ({
      name: s.storage,
      enabled: s.enabled,
      active: s.active,
      content: s.content,
      availBytes: s.availBytes + (replacing.freed?.storage === s.storage ? replacing.freed.bytes : 0)
    })),
    guests: observed.vms
      .filter((vm) => vm.node === node.name && vm.vmid !== replacing.vmid && replacing.leaving?.has(vm.vmid) !== true)
      .map((vm) => ({ vmid: vm.vmid, maxmemBytes: vm.maxmemBytes, template: vm.template }))
  })

/** Action ids: one image action per node, one VM action and one k3s action per VM. */
export const actionId = {
  image: (node: string) => `${node}:image`,
  vm: (node: string, vm: string) => `${node}:vm:${vm}`,
  k3s: (node: string, vm: string) => `${node}:k3s:${vm}`
}

/** How a VM action leaves the VM for phase 3. */
const followsOf = (action: VmAction): JoinK3s["follows"] => {
  switch (action._tag) {
    case "CreateVm":
    case "AwaitCreate":
      return "create"
    case "RecreateVm":
      return "recreate"
    case "FinishVm":
      return "finish"
    case "StartVm":
      return "start"
    case "ResumeVm":
      return "resume"
  }
}

/**
 * Plan all three layers, a pure function of what is wanted and what was observed. Per node, in config order: the
 * image, then each VM, then (with `k3s:`) its membership. A VM action and the join that follows it form one chain;
 * creates wait for the image download they import from; servers join one at a time cluster-wide (`exclusive`),
 * agents in parallel. Every action carries its reason; everything left alone is a finding that says what it means
 * for convergence. Recreates are capped by `desired.limits.maxRecreatePerRun` across the cluster.
 */
export const plan = (desired: Desired, observed: Observed, options: PlanOptions): Plan => {
  const actions: Array<Action> = []
  const findings: Array<Finding> = []
  let recreates = 0
  /** Every VM name homelab.yaml lists, on any node: a VM of ours under one of them was not renamed away from another. */
  const listedNames = new Set(desired.nodes.flatMap((n) => n.vms.map((v) => v.name)))
  const sharedDownloads = new Map<string, string>()
  /** Leftover image files `--prune` deletes: by volid on a shared storage (once), else by node and volid. */
  const imageDeletes = new Set<string>()
  const k3s = desired.k3s
  const cluster = clusterContext(desired, observed)
  const k3sNodes = cluster?.nodes
  /**
   * Server VMs of homelab.yaml that run k3s as an agent while no server VM runs a k3s server (they joined a cluster
   * homelab.yaml no longer names): their Node is not in a cluster homelab manages, so a rebuild asked for
   * (`homelab reprovision`) goes ahead without removing it, and the next run starts the cluster on the new VM.
   */
  const foreignAgents =
    observed.k3s?._tag === "Unavailable" && observed.k3s.code === "k3s.role-mismatch" ? (observed.k3s.vms ?? []) : []
  /** etcd lost its quorum for good: said once, up front; its lost server VMs are not recreated until it is reset. */
  const quorumLost = observed.k3s?._tag === "Unavailable" ? observed.k3s.quorumLost : undefined
  /** VMIDs a guest holds (any node, any type), and those the creates planned so far take first. */
  const takenVmids = new Set(observed.vms.map((v) => v.vmid))
  const claimedVmids = new Set<number>()
  const upgradeCandidates: Array<UpgradeCandidate> = []
  const taskLimitSeconds = Math.round(Duration.toSeconds((desired.timeouts ?? DefaultTimeouts).task))
  const now = observed.at
  /** `vm.restart: rolling`: the restarts, chained one after another once every node is planned. */
  const restarts: Array<RestartVm> = []
  /** Restarts an earlier run did not finish (`homelab-restart`): chained ahead of this run's restarts. */
  const finishes: Array<UncordonK3s> = []
  /** Memory this plan's in-place updates add to each node's VMs (bytes): what a later VM's growth there cannot use. */
  const memoryGrown = new Map<string, number>()

  const nodes = selectedNodes(desired, options)
  if (quorumLost !== undefined) findings.push(quorumLostFinding(quorumLost))
  // Orphans of ours (VMs homelab.yaml no longer asks for): what a create that has no room would have if they went.
  const orphansOf = (name: string) =>
    findOrphans(desired, observed, options).filter(
      (o) => o.node === name && o.lock === undefined && o.status !== "unknown" && !isProtectedVm(desired, observed, o)
    )
  for (const node of nodes) {
    const observedNode = observed.nodes.get(node.name)
    const nodeFinding = (code: string, message: string, hint: string): void => {
      findings.push({ code, effect: "blocked", layer: "node", node: node.name, message, hint })
    }
    if (observedNode === undefined) {
      // a typo is close to the name of a cluster node homelab.yaml does not name (pve-03 for pve3)
      const guess = closestName(
        node.name,
        (observed.pveNodes ?? [...observed.nodes.keys()]).filter((n) => !desired.nodes.some((d) => d.name === n))
      )
      nodeFinding(
        "node.missing",
        `node '${node.name}' is not a member of the Proxmox cluster`,
        `${guess === undefined ? "" : `did you mean '${guess}'? `}check nodes[].name against \`pvecm nodes\` (names are case-sensitive and never FQDNs)`
      )
      continue
    }
    if (!observedNode.online) {
      nodeFinding("node.offline", `node '${node.name}' is offline`, "start the node, or leave it out with --only")
      continue
    }
    if (observedNode.problem !== undefined) {
      nodeFinding(observedNode.problem.code, observedNode.problem.message, observedNode.problem.hint)
      continue
    }

    // Phase 1: the image. On shared storage, one node downloads it and the others' creates wait for that. An image
    // the node's VMs cannot import as homelab.yaml has it blocks the download and every create on the node.
    const volid = imageVolid(node)
    const imageStorage = observedNode.storages.find((s) => s.storage === node.image.storage)
    const imageImport = imageImportOf(node, observedNode.details?.pveVersion, observedNode.imageVolids.has(volid))
    if (imageImport._tag === "Blocked") {
      findings.push({
        code: imageImport.code,
        effect: "blocked",
        layer: "image",
        node: node.name,
        message: imageImport.message,
        hint: imageImport.hint
      })
    }
    // A download (or upload) the token may not make (its privileges, when they were read) is not started: PVE would
    // refuse it (403), and every create after it. Blocked, with the grant that fixes it.
    const permissions = observedNode.details?.permissions
    const downloadRefused =
      !observedNode.imageVolids.has(volid) && imageImport._tag === "Ok" && permissions !== undefined
        ? privilegeFindings(
            node.name,
            downloadPrivileges(node.name, node.image.storage, node.image.transfer),
            desired.apiTokenId ?? "the API token",
            permissions
          ).filter((f) => f.severity === "error")
        : []
    for (const f of downloadRefused) {
      findings.push({
        code: f.code,
        effect: "blocked",
        layer: "image",
        node: node.name,
        message: f.message,
        hint: f.fix
      })
    }
    // An image storage PVE does not list for the node (disabled: /cluster/resources leaves a disabled storage out;
    // removed; not visible to the token) or lists as not active: its content cannot be read, so the image there is
    // not known to be missing, and a download would be refused. Blocked, naming the storage, not a download.
    const storageUnusable = !observedNode.imageVolids.has(volid) && (imageStorage === undefined || !imageStorage.active)
    if (storageUnusable) {
      const storage = node.image.storage
      findings.push({
        code: imageStorage === undefined ? "storage.missing" : "storage.inactive",
        effect: "blocked",
        layer: "image",
        node: node.name,
        message:
          imageStorage === undefined
            ? `storage '${storage}' (for the image) is not available on node ${node.name}: PVE lists no such storage there (disabled, removed, or not visible to the API token), so the image cannot be looked for or downloaded`
            : `storage '${storage}' (for the image) is not active on node ${node.name}, so the image cannot be looked for or downloaded`,
        hint:
          imageStorage === undefined
            ? `enable it (Datacenter → Storage → Edit → Enable, or \`pvesm set ${storage} --disable 0\`) or add it for node ${node.name}, or set image.storage to a storage the node has`
            : `bring storage '${storage}' online on node ${node.name} (check \`pvesm status\` there), or set image.storage to an active storage`
      })
    }
    let imageAction: string | undefined
    const leftovers = imageLeftovers(node.image, observedNode.imageVolids)
    if (
      !observedNode.imageVolids.has(volid) &&
      !storageUnusable &&
      imageImport._tag === "Ok" &&
      downloadRefused.length === 0
    ) {
      const shared = imageStorage?.shared === true ? sharedDownloads.get(volid) : undefined
      if (shared !== undefined) {
        imageAction = shared
      } else {
        imageAction = actionId.image(node.name)
        if (imageStorage?.shared === true) sharedDownloads.set(volid, imageAction)
        actions.push({
          _tag: "DownloadImage",
          id: imageAction,
          node: node.name,
          after: [],
          image: node.image,
          volid,
          ...(observedNode.downloads === undefined
            ? {}
            : {
                listed: true,
                running: observedNode.downloads.find((d) => d.file === node.image.filename)
              }),
          reason:
            leftovers.older.length > 0
              ? `${volid} is not on ${node.name}, only the image of another image.checksum (the file name carries the checksum)`
              : leftovers.unchecked !== undefined
                ? `${volid} is not on ${node.name}: the file name carries image.checksum, and ${leftovers.unchecked} there was never checked against it`
                : `${volid} is not on ${node.name}`
        })
      }
    }
    planImageFiles(
      node,
      observedNode,
      volid,
      leftovers,
      imageAction,
      options,
      actions,
      findings,
      imageDeletes,
      imageStorage?.shared === true
    )

    // Phase 2: the VMs, then phase 3 for each.
    for (const vm of node.vms) {
      const spec = vmSpec(desired, node, observedNode, vm)
      const id = actionId.vm(node.name, vm.name)
      const vmFinding = (
        effect: Finding["effect"],
        code: string,
        message: string,
        hint?: string,
        vmid?: number
      ): void => {
        findings.push({ code, effect, layer: "vm", node: node.name, vm: vm.name, vmid, message, hint })
      }
      /**
       * A VM that is started or resumed while its k3s Node is in the cluster: the Node, Ready again, says the VM is
       * back in service, its guest agent's IP or not (`ReturningMember`).
       */
      const returning = (): { readonly k3s?: ReturningMember; readonly ipOptional?: true } => {
        // nothing needs the address of a VM outside k3s, and a running VM is judged by PVE's state (`agentMissing: keep`)
        if (k3s === undefined) return options.policy.agentNotResponding === "recreate" ? {} : { ipOptional: true }
        const member = k3sNodes?.find((n) => n.name === vm.name)
        if (member === undefined) return {}
        const ip = member.internalIPs.find((a) => /^\d{1,3}(\.\d{1,3}){3}$/.test(a))
        return { k3s: { role: vm.role, ...(ip === undefined ? {} : { ip }), via: cluster?.viaFor(vm.name) } }
      }
      // One decision table per VM state, in order: missing, duplicate, elsewhere, not ours, create lock, protected,
      // locked, rebuild mark, pending mark, reprovision, health.
      const planVm = (): { action?: VmAction; healthy?: ObservedVm; rebuilt?: boolean } => {
        const matches = sameName(observed, vm.name)
        const imageAfter = imageAction === undefined ? [] : [imageAction]

        /**
         * The preflight before a VM is made (a create, a recreate) or started from an earlier run's leftover (a
         * finish) on this node: its findings go into the plan, and `false` blocks the VM, before anything is changed.
         * `replaces`: the VM of ours a recreate destroys, or the pending VM a finish starts. Its memory (`maxmem`) is
         * not counted against the node, nor its disk against its storage's free space: a recreate frees both before
         * it creates (its disk counted at its full size, as the new disk is), and a finish keeps them, so only growing
         * the disk to homelab.yaml's size needs room, on the storage the disk is on. A finish neither downloads nor
         * imports the image, and needs none of the create's privileges.
         */
        const preflightOk = (replaces?: { readonly vmid: number; readonly finish: boolean }): boolean => {
          const finish = replaces?.finish === true
          const old = replaces === undefined ? undefined : observed.vmDetails.get(replaces.vmid)
          const freed =
            old?.diskStorage !== undefined && old.diskGiB !== undefined
              ? { storage: old.diskStorage, bytes: old.diskGiB * GiB }
              : undefined
          const diskStorage = finish ? (old?.diskStorage ?? spec.storage) : spec.storage
          // a download refused above is said once, by the image
          const download = !finish && !observedNode.imageVolids.has(volid) && downloadRefused.length === 0
          const check = (leaving?: ReadonlySet<number>) =>
            preflight(
              nodeFacts(observed, observedNode, { vmid: replaces?.vmid, freed, leaving }),
              request,
              preflightOptions
            )
          const request = new VmRequest({
            ...(replaces !== undefined ? { vmid: replaces.vmid } : {}),
            cores: spec.cores,
            ...(spec.sockets !== undefined ? { sockets: spec.sockets } : {}),
            memoryMiB: spec.memoryMiB,
            ...(spec.balloonMiB !== undefined ? { balloonMiB: spec.balloonMiB } : {}),
            bridges: spec.bridges,
            diskStorage,
            diskBytes: spec.diskGiB * GiB,
            imageStorage: node.image.storage,
            imageContent: node.image.content,
            downloadImage: download,
            ...(node.image.transfer !== undefined ? { imageTransfer: node.image.transfer } : {})
          })
          const preflightOptions = new PreflightOptions({
            ...(observedNode.details?.imageReachable && download
              ? {
                  image: {
                    url: node.image.url,
                    reachable: observedNode.details.imageReachable.ok,
                    detail: observedNode.details.imageReachable.detail
                  }
                }
              : {}),
            ...(observedNode.details?.permissions && !finish
              ? {
                  access: {
                    _tag: "Permissions" as const,
                    principal: desired.apiTokenId ?? "the API token",
                    permissions: observedNode.details.permissions
                  }
                }
              : {}),
            ...((options.memoryAdjustment ?? desired.memoryOvercommit) !== undefined
              ? { memoryAdjustment: options.memoryAdjustment ?? desired.memoryOvercommit }
              : {})
          })
          const report = check()
          // a finish uses no image: the image storage's state does not matter to it
          const relevant = finish
            ? report.findings.filter(
                (f) => node.image.storage === diskStorage || f.object !== `storage ${node.image.storage}`
              )
            : report.findings
          // A create with no room that the orphans of ours on this node would give it (a VM renamed on a full node):
          // with --prune this run removes them and the next one creates it; without, the fix says so.
          const blocking = relevant.filter((f) => f.severity === "error")
          const orphans = replaces === undefined && blocking.length > 0 ? orphansOf(node.name) : []
          const roomy =
            orphans.length > 0 &&
            !check(new Set(orphans.map((o) => o.vmid))).findings.some((f) => f.severity === "error")
          const held = orphans.map((o) => `${o.name} (VM ${o.vmid}, ${Math.round(o.maxmemBytes / MiB)} MiB)`).join(", ")
          if (roomy && options.prune === true) {
            findings.push({
              code: "vm.create-after-prune",
              effect: "deferred",
              layer: "vm",
              node: node.name,
              vm: vm.name,
              message: `${vm.name} is not created this run: ${blocking.map((f) => f.message).join("; ")}; the orphan${orphans.length === 1 ? "" : "s"} ${held} that this run prunes make${orphans.length === 1 ? "s" : ""} room: the next run creates it`,
              hint: `run apply again once this run has pruned ${orphans.map((o) => o.name).join(", ")}`
            })
            return false
          }
          for (const f of relevant) {
            findings.push({
              code: f.code,
              effect: f.severity === "error" ? "blocked" : "info",
              layer: "vm",
              node: node.name,
              vm: vm.name,
              ...(replaces !== undefined ? { vmid: replaces.vmid } : {}),
              message: f.message,
              hint:
                roomy && f.severity === "error"
                  ? `${f.fix}; or make room with \`homelab apply --prune\`: it removes ${held}, of ours on ${node.name} but no longer in homelab.yaml`
                  : f.fix
            })
          }
          const snippets = cicustomFindings(
            observedNode,
            observed.snippets?.get(node.name),
            vm.cloudInit.cicustom,
            vm.name
          )
          findings.push(...snippets)
          const cpu = finish
            ? undefined
            : cpuModelFinding(observedNode.details?.cpuModels, {
                cpuType: spec.cpuType,
                node: node.name,
                vm: vm.name,
                vmid: replaces?.vmid
              })
          if (cpu !== undefined) findings.push(cpu)
          return (
            !relevant.some((f) => f.severity === "error") &&
            snippets.length === 0 &&
            cpu === undefined &&
            (finish || (imageImport._tag === "Ok" && downloadRefused.length === 0))
          )
        }

        const create = (reason: string, candidates = spec.vmidCandidates): VmAction | undefined => {
          // The VMIDs it may take that no guest holds and no other create of this plan takes first, in the order
          // derived from its name (the whole range is walked, so a range crowded by other guests still has room):
          // else apply would create the VMs before it and fail this one ("no free VMID").
          const explicit = vm.vmid !== undefined || candidates !== spec.vmidCandidates
          const sequence = explicit
            ? candidates
            : vmidCandidates(vm.name, desired.vmidRange, candidates.length + takenVmids.size + claimedVmids.size)
          const usable = sequence.filter((c) => !takenVmids.has(c) && !claimedVmids.has(c))
          const free = usable[0]
          if (free === undefined) {
            const { lower, upper } = desired.vmidRange
            findings.push({
              code: "vm.no-vmid",
              effect: "blocked",
              layer: "vm",
              node: node.name,
              vm: vm.name,
              message: `no free VMID for ${vm.name}: ${explicit ? `${sequence.length === 1 ? `VMID ${sequence[0]} is` : `VMIDs ${sequence.join(", ")} are`}` : `every VMID of vm.vmidRange ${lower}..${upper} is`} used by another guest${sequence.some((c) => claimedVmids.has(c)) ? " or by another VM this plan creates" : ""}`,
              hint: explicit
                ? "free that VMID, or give the VM another one"
                : `widen vm.vmidRange (now ${lower}..${upper}), or free some of its VMIDs`
            })
            return undefined
          }
          if (!preflightOk()) return undefined
          claimedVmids.add(free)
          // a Node of its name may be left by a VM that is gone (seen, or the cluster could not be read)
          const rejoin =
            k3s !== undefined &&
            (k3sNodes === undefined ? observed.k3s?._tag === "Unavailable" : k3sNodes.some((n) => n.name === vm.name))
          return {
            _tag: "CreateVm",
            id,
            node: node.name,
            after: imageAfter,
            // the free ones first, as many as it was given: apply tries them in this order
            spec: { ...spec, vmidCandidates: explicit ? candidates : usable.slice(0, candidates.length) },
            ...(rejoin ? { rejoin } : {}),
            reason
          }
        }

        const awaitOrCreate = (inFlight: ObservedVm): VmAction | undefined => {
          const task = observed.createTasks?.get(inFlight.vmid)
          if (task === undefined) {
            vmFinding(
              "blocked",
              "vm.create-stale",
              `VMID ${inFlight.vmid} (${vm.name}'s candidate) is locked (create) but no create task runs: a create that died half-way`,
              `if nothing else uses it: \`qm unlock ${inFlight.vmid} && qm destroy ${inFlight.vmid}\` on ${inFlight.node}`,
              inFlight.vmid
            )
            return undefined
          }
          if (!task.ours) {
            // Someone else's create holds this VMID: take the next candidate.
            return create(
              `no VM named ${vm.name} exists (VMID ${inFlight.vmid} is being created by ${task.user})`,
              spec.vmidCandidates.filter((c) => c !== inFlight.vmid)
            )
          }
          const age = now === undefined ? 0 : Math.max(0, now - task.startedAt)
          const limit = taskLimitSeconds
          // The preflight first: a hung create is stopped and the VM created again (the create's); otherwise the
          // VM that run creates is brought in line with homelab.yaml and started, as a finish is (its memory and
          // the VMID not counted twice).
          if (!(age >= limit ? preflightOk() : preflightOk({ vmid: inFlight.vmid, finish: true }))) return undefined
          return {
            _tag: "AwaitCreate",
            id,
            node: node.name,
            after: imageAfter,
            vmid: inFlight.vmid,
            spec,
            upid: task.upid,
            startedAt: task.startedAt,
            reason:
              age >= limit
                ? `the create of VM ${inFlight.vmid} has run for ${age} s (limit ${limit} s): it hung; stopping it and creating the VM again`
                : `VM ${inFlight.vmid} is being created by an earlier or concurrent run (task running for ${age} s)`
          }
        }

        if (matches.length === 0) {
          const renamed = renamedVm(vm.name, k3sNodes, observed.vms, observed.configs, desired.ownershipTag)
          if (renamed !== undefined) {
            const { message, hint } = renamedVmFinding(vm.name, renamed)
            vmFinding("blocked", "vm.renamed", message, hint, renamed.vmid)
            return {}
          }
          const renumbered = renamedByVmid(
            { name: vm.name, node: node.name, candidates: spec.vmidCandidates },
            observed.vms,
            listedNames,
            desired.ownershipTag,
            desired.vmidRange
          )
          if (renumbered !== undefined) {
            const { message, hint } = renamedByVmidFinding(vm.name, renumbered)
            vmFinding("blocked", "vm.renamed", message, hint, renumbered.vmid)
            return {}
          }
          const inFlight = observed.vms.find(
            (o) =>
              o.lock === "create" &&
              spec.vmidCandidates.includes(o.vmid) &&
              (o.name === undefined || o.name === `VM ${o.vmid}`)
          )
          const action = inFlight !== undefined ? awaitOrCreate(inFlight) : create(`no VM named ${vm.name} exists`)
          return action === undefined ? {} : { action }
        }

        if (matches.length > 1) {
          vmFinding(
            "blocked",
            "vm.duplicate",
            `${matches.length} VMs are named ${vm.name} (VMIDs ${matches.map((m) => m.vmid).join(", ")}); touching none`,
            "delete or rename the extra ones"
          )
          return {}
        }

        const match = matches[0] as ObservedVm
        if (match.node !== node.name) {
          vmFinding(
            "blocked",
            "vm.elsewhere",
            `VM ${match.vmid} ${vm.name} runs on node ${match.node}, not ${node.name}; leaving it there`,
            `migrate it to ${node.name} (\`qm migrate ${match.vmid} ${node.name} --online --with-local-disks\` on ${match.node}), or list it under nodes[${match.node}] in homelab.yaml`,
            match.vmid
          )
          return {}
        }
        const owned = match.type === "qemu" && match.tags.includes(desired.ownershipTag)
        if (!owned) {
          vmFinding(
            "blocked",
            "vm.unowned",
            `VM ${match.vmid} is named ${vm.name} but lacks the tag '${desired.ownershipTag}': not ours, not touched`,
            match.type === "qemu" && !match.template
              ? `to let homelab manage it: \`homelab adopt ${vm.name}\` (shows what apply would change, then adds the tag '${desired.ownershipTag}'); otherwise rename one of them`
              : "rename it, or give the VM in homelab.yaml another name",
            match.vmid
          )
          return {}
        }

        const details = observed.vmDetails.get(match.vmid)
        const tags = details?.tags ?? match.tags
        const isProtected = inSafetyProtect(desired, vm.name, match.vmid) || details?.protection === true
        const pending = tags.includes(desired.pendingTag)
        const rebuilding = tags.includes(RebuildTag)
        const rejoin = tags.includes(RejoinTag)
        const forced = options.reprovision?.includes(vm.name) === true
        const lock = details?.lock ?? match.lock

        if (lock === "create") {
          const action = awaitOrCreate(match)
          return action === undefined ? {} : { action }
        }
        // Protection and ownership first: a protected VM is never resized, started, retagged or rebuilt.
        if (isProtected && (pending || rebuilding || forced)) {
          vmFinding(
            "blocked",
            "vm.protected",
            `VM ${match.vmid} ${vm.name} is protected; ${forced ? "not recreating it" : pending ? "it was never fully provisioned, and is left as it is" : "its rebuild is not finished, and it is left as it is"}`,
            "remove the protection (and its entry in safety.protect) first",
            match.vmid
          )
          return {}
        }
        if (lock !== undefined && !(lock === "suspended" && (details?.status ?? match.status) === "stopped")) {
          vmFinding(
            "deferred",
            "vm.locked",
            `VM ${match.vmid} ${vm.name} is locked (${lock}): an operation is in progress; left alone this run`,
            `run apply again once it is done (\`qm unlock ${match.vmid}\` only if nothing runs)`,
            match.vmid
          )
          return {}
        }

        const facts = new VmFacts({
          vmid: match.vmid,
          node: match.node,
          name: vm.name,
          status:
            details?.status ??
            (match.status === "unknown" ? "unknown" : match.status === "stopped" ? "stopped" : "running"),
          ...(details?.qmpstatus !== undefined
            ? { qmpstatus: details.qmpstatus }
            : match.status !== "unknown"
              ? { qmpstatus: match.status }
              : {}),
          ...(lock !== undefined ? { lock } : {}),
          uptimeSeconds: details?.uptimeSeconds ?? match.uptimeSeconds,
          agentConfigured: details?.agentConfigured ?? false,
          ...(details?.agentAnswering !== undefined ? { agentAnswering: details.agentAnswering } : {}),
          owned: true,
          protection: isProtected,
          template: match.template,
          ...(details?.secondsSinceCreation !== undefined ? { secondsSinceCreation: details.secondsSinceCreation } : {})
        })
        const report = classifyVm(facts, options.policy)
        const evidence = Object.entries(report.evidence).map(([k, v]) => `${k}=${v}`)

        /** A recreate within the per-run limit (and, with k3s, only while the cluster can be read). */
        const recreate = (reason: string, resumed: boolean): VmAction | undefined => {
          if (k3s !== undefined && k3sNodes === undefined && !foreignAgents.includes(vm.name)) {
            vmFinding(
              "blocked",
              "vm.recreate-needs-k3s",
              `VM ${match.vmid} ${vm.name} needs rebuilding (${reason}), but the k3s cluster cannot be read: its Node must be removed first`,
              observed.k3s?._tag === "Unavailable" ? observed.k3s.hint : "check k3s.server",
              match.vmid
            )
            return undefined
          }
          // The VM it becomes must be one PVE starts and keeps configurable on this node: checked before the old one
          // is destroyed (a rebuild skips the create's preflight, the node held the VM until now).
          const oversized = sizeFindings(
            { node: node.name, cpus: observedNode.cpus },
            {
              cores: spec.cores,
              sockets: spec.sockets,
              memoryMiB: spec.memoryMiB,
              balloonMiB: spec.balloonMiB
            }
          )
          if (oversized.length > 0) {
            for (const f of oversized) {
              vmFinding(
                "blocked",
                f.code,
                `VM ${match.vmid} ${vm.name} needs rebuilding (${reason}), but is not rebuilt: ${f.message}`,
                f.fix,
                match.vmid
              )
            }
            return undefined
          }
          if (recreates >= desired.limits.maxRecreatePerRun) {
            vmFinding(
              "deferred",
              "vm.recreate-deferred",
              `VM ${match.vmid} ${vm.name} needs rebuilding (${reason}), but this run already rebuilds ${desired.limits.maxRecreatePerRun} VM(s) (safety.maxRecreatePerRun)`,
              // a reprovision is asked for by that command, not remembered: apply again would not rebuild it
              forced && looksHealthy(match, desired)
                ? `run \`homelab reprovision ${vm.name}\` (that VM alone), or raise safety.maxRecreatePerRun`
                : "run apply again, or raise safety.maxRecreatePerRun",
              match.vmid
            )
            return undefined
          }
          // The preflight, as for a create: nothing is destroyed for a VM that could not be made again.
          if (!preflightOk({ vmid: match.vmid, finish: false })) return undefined
          // The quorum guard: a server's member goes down with its VM. Whether the VM holds one is the cluster's
          // word (its Node, the etcd members), not homelab.yaml's: a VM it calls an agent may run a server.
          const cleanup =
            k3s === undefined || cluster?.mode === "init" || foreignAgents.includes(vm.name)
              ? undefined
              : vm.role === "server" || holdsEtcdMember(cluster?.facts, k3sNodes, vm.name)
                ? "server"
                : "agent"
          if (cleanup === "server") {
            // A VM that needs rebuilding for its state (stopped, paused, …, or an unfinished rebuild) is left in
            // that state: not in place (the vm layer). A running, healthy one asked to be reprovisioned is in place.
            const inPlace = report._tag === "Healthy" && !pending && !rebuilding
            const refused = quorumFinding(
              cluster?.facts,
              { node: node.name, vm: vm.name, vmid: match.vmid },
              "rebuild",
              cluster?.membersProblem,
              { context: `it needs rebuilding: ${reason}`, layer: inPlace ? "k3s" : "vm" }
            )
            if (refused !== undefined) {
              findings.push(refused)
              return undefined
            }
            // Its Node goes before the VM (`removeServer`), and with it its etcd member: a member of its name that no
            // Node owns (its Node deleted with the finalizers removed) would stay, and removeServer refuses then, the VM
            // stopped already. Said now, before anything is stopped or destroyed, in removeServer's words.
            const ownJoin = joiningMemberOfVm(observed, match.vmid, vm.name)
            const orphans =
              cluster?.facts === undefined
                ? []
                : orphanMembersOf(cluster.facts, vm.name).filter((m) => m.name !== ownJoin?.member)
            const orphan = orphans[0]
            if (orphan !== undefined) {
              findings.push({
                code: "k3s.stale-member",
                effect: "blocked",
                layer: inPlace ? "k3s" : "vm",
                node: node.name,
                vm: vm.name,
                vmid: match.vmid,
                message: `not rebuilding k3s server ${vm.name} (it needs rebuilding: ${reason}): ${memberWithoutNode(vm.name, orphans)}; nothing is stopped or destroyed`,
                hint: staleMemberHint(
                  vm.name,
                  memberIdHex(orphan.id),
                  cluster?.viaFor(vm.name)?.vm ?? k3s?.server?.host ?? "a Ready server"
                )
              })
              return undefined
            }
            // A learner of its name without a Node that no join goes on as (the VM does not run: the join its k3s
            // began was cut short when it went down; or its k3s, as read, is not joining as it): stale, with the ways
            // on (bring k3s back as that member, etcdctl, the leader's eviction).
            const stalled = stalledLearnerFinding(
              cluster?.facts,
              {
                node: node.name,
                vm: vm.name,
                vmid: match.vmid,
                status: observed.vmDetails.get(match.vmid)?.status ?? match.status,
                unit: serverUnitOf(observed, match.vmid, vm.name),
                joining: ownJoin
              },
              "rebuild",
              `not rebuilding it this run (it needs rebuilding: ${reason}); nothing is ${inPlace ? "stopped or " : ""}destroyed`,
              cluster?.viaFor(vm.name)?.vm ?? k3s?.server?.host ?? "a Ready server"
            )
            if (stalled !== undefined) {
              findings.push({ ...stalled, layer: inPlace ? "k3s" : "vm" })
              return undefined
            }
            // A learner of its name without a Node: its k3s is joining right now (not stale); it is rebuilt, through
            // its Node, once that Node is there.
            const joining =
              cluster?.facts === undefined
                ? undefined
                : joiningMemberFinding(
                    cluster.facts,
                    { node: node.name, vm: vm.name, vmid: match.vmid, joining: ownJoin },
                    `not rebuilding it this run (it needs rebuilding: ${reason}); nothing is stopped or destroyed`
                  )
            if (joining !== undefined) {
              findings.push(inPlace ? joining : { ...joining, layer: "vm" })
              return undefined
            }
          }
          recreates++
          return {
            _tag: "RecreateVm",
            id,
            node: node.name,
            after: imageAfter,
            vmid: match.vmid,
            spec,
            reason,
            evidence,
            resumed,
            k3sCleanup: cleanup,
            k3sVia: cleanup === undefined ? undefined : cluster?.viaFor(vm.name)
          }
        }
        const wrap = (action: VmAction | undefined) => (action === undefined ? {} : { action, rebuilt: rejoin })

        if (rebuilding) {
          return wrap(
            recreate(`an earlier run began rebuilding VM ${match.vmid} ${vm.name} (it carries '${RebuildTag}')`, true)
          )
        }
        if (pending) {
          const state = facts.status === "stopped" ? "stopped" : (facts.qmpstatus ?? "running")
          const why = `VM ${match.vmid} ${vm.name} still carries '${desired.pendingTag}': its provisioning is unfinished (an earlier run failed or was interrupted, or another run is still at it)`
          if (
            state === "stopped" ||
            state === "running" ||
            state === "paused" ||
            state === "prelaunch" ||
            state === "suspended"
          ) {
            // A stopped leftover is brought in line with homelab.yaml and started: first the preflight, so that a
            // VM that cannot start here (a missing bridge, no memory) is not started to fail.
            if (state === "stopped" && !preflightOk({ vmid: match.vmid, finish: true })) return {}
            return wrap({
              _tag: "FinishVm",
              id,
              node: node.name,
              after: imageAfter,
              vmid: match.vmid,
              spec,
              state,
              reason: state === "running" || state === "stopped" ? why : `${why}; it is ${state}: resuming it`
            })
          }
          return wrap(
            recreate(`VM ${match.vmid} ${vm.name} was never fully provisioned and is in state ${state}`, false)
          )
        }
        if (forced) return wrap(recreate(`reprovision of ${vm.name} requested`, false))
        // A VM of ours that runs is judged by that alone (and, with k3s, by its Node): when its details were read
        // (`status` reads every VM's; a plan reads them when `/cluster/resources` lags behind a start), they say
        // whether it runs, and its guest agent and uptime are not asked, so that the verdict is the one a plan
        // reaches without them (`status` and `plan` cannot disagree on a converged node).
        // With `health.agentMissing: recreate`, a running VM whose guest agent does not answer (`observe` pinged it:
        // `agentChecks`, and read its details) is judged by its agent too.
        const agentSilent =
          options.policy.agentNotResponding === "recreate" &&
          details?.agentConfigured === true &&
          details.agentAnswering === false
        const runs =
          !agentSilent &&
          (details === undefined
            ? looksHealthy(match, desired)
            : details.status === "running" && (details.qmpstatus ?? "running") === "running")
        if (runs) return { healthy: match, rebuilt: rejoin }
        // A VM a teardown stopped and then stopped short of destroying (Ctrl-C, a failed Node removal: it carries
        // 'homelab-destroy', its disk intact), which homelab.yaml asks for again (the user changed their mind): started
        // with its disk and the teardown undone (its Node uncordoned once Ready, the marks cleared: `finishRestart`),
        // whatever `health.stopped` says; a rebuild would destroy a disk the user may want back.
        if (tags.includes(DestroyTag) && facts.status === "stopped" && facts.lock === undefined) {
          return wrap({
            _tag: "StartVm",
            id,
            node: node.name,
            after: [],
            vmid: match.vmid,
            name: vm.name,
            ...returning(),
            reason: `VM ${match.vmid} ${vm.name} is stopped by an earlier teardown that stopped before destroying it (it carries '${DestroyTag}'), and homelab.yaml asks for it: starting it with its disk (not rebuilding it) and undoing the teardown`
          })
        }

        switch (remediationToApply(report)) {
          case "start":
            return wrap({
              _tag: "StartVm",
              id,
              node: node.name,
              after: [],
              vmid: match.vmid,
              name: vm.name,
              ...returning(),
              reason: report.message
            })
          case "resume":
            return wrap({
              _tag: "ResumeVm",
              id,
              node: node.name,
              after: [],
              vmid: match.vmid,
              name: vm.name,
              ...returning(),
              reason: report.message
            })
          case "recreate":
            // A server of a cluster that cannot be read (its servers down: after a power cut, say) is brought back,
            // not rebuilt: its disk holds the cluster's etcd data, and a rebuild would need the cluster anyway.
            if (k3s !== undefined && k3sNodes === undefined && vm.role === "server" && facts.lock === undefined) {
              const back =
                facts.status === "stopped" ? "StartVm" : facts.qmpstatus === "paused" ? "ResumeVm" : undefined
              if (back !== undefined)
                return wrap({
                  _tag: back,
                  id,
                  node: node.name,
                  after: [],
                  vmid: match.vmid,
                  name: vm.name,
                  reason: `${report.message}; the k3s cluster cannot be read, so this server is ${back === "StartVm" ? "started" : "resumed"}, not rebuilt (its disk holds the cluster's etcd data)`
                })
            }
            return wrap(recreate(report.message, false))
          case undefined:
            break
        }
        if (report._tag === "Healthy") return { healthy: match, rebuilt: rejoin }
        if (report._tag === "Unhealthy") {
          const protectedBlock = report.blockedBy.includes("protected")
          vmFinding(
            "blocked",
            protectedBlock ? "vm.protected" : `vm.${report.reason}`,
            `${report.message}${report.blockedBy.length > 0 ? ` (not remediated: ${report.blockedBy.join(", ")})` : ""}`,
            protectedBlock
              ? "remove the protection to let homelab recreate it, or fix it by hand"
              : "fix it by hand, or choose a remediation in homelab.yaml's health section",
            match.vmid
          )
          return {}
        }
        // Unknown: waiting states resolve by themselves; a template or a state kept by policy needs the user.
        const waiting = ["starting", "transitional", "status-unknown", "locked"].includes(report.reason)
        vmFinding(
          waiting ? "deferred" : "blocked",
          `vm.${report.reason}`,
          waiting ? `${report.message}; run apply again shortly` : report.message,
          waiting ? undefined : "fix it by hand, or choose a remediation in homelab.yaml's health section",
          match.vmid
        )
        return {}
      }
      const decision = planVm()

      if (
        quorumLost !== undefined &&
        decision.action?._tag === "CreateVm" &&
        vm.role === "server" &&
        quorumLost.lost.includes(vm.name)
      ) {
        // Its member went with its disk and etcd cannot add one: a new VM could only hang on its join.
        findings.push(notRecreated(quorumLost, node.name, vm.name))
        continue
      }
      if (
        quorumLost !== undefined &&
        (decision.action?._tag === "StartVm" || decision.action?._tag === "ResumeVm") &&
        vm.name === quorumLost.survivor.vm
      ) {
        // No server VM runs k3s: the recovery (up front) has the user bring this one up and reset etcd on it by hand.
        continue
      }
      if (
        quorumLost !== undefined &&
        (decision.action?._tag === "StartVm" || decision.action?._tag === "ResumeVm") &&
        quorumLost.down.includes(vm.name)
      ) {
        // Back, it would still leave etcd short of its quorum; its old etcd data must not come back after the reset.
        findings.push(notStarted(quorumLost, node.name, vm.name, decision.action.vmid, "vm"))
        continue
      }
      if (decision.action !== undefined) actions.push(decision.action)
      // A VM that needs nothing else is compared with homelab.yaml: drift is changed in place.
      let restartId: string | undefined
      /** The marks a run of ours left on the VM about its Node's cordon, and the cordon. */
      const marks = cordonFacts(observed, vm.name, node.name, desired.ownershipTag)
      /**
       * An earlier run's restart (or a teardown that stopped short) is left to finish: no restart of this run drains
       * the Node (and finishes it).
       */
      let unfinished = marks.restart || marks.destroy
      if (decision.action === undefined && decision.healthy !== undefined) {
        const healthy = decision.healthy
        const config = observed.configs?.get(healthy.vmid)
        // What the node can still promise this VM's memory (its own maxmem freed), less what this plan grows others by
        const adjustment = options.memoryAdjustment ?? desired.memoryOvercommit ?? 1
        const before = observed.vms.find((v) => v.vmid === healthy.vmid)?.maxmemBytes ?? 0
        const reservable =
          adjustment > 0
            ? reservableMemoryBytes(nodeFacts(observed, observedNode, { vmid: healthy.vmid }), adjustment) -
              (memoryGrown.get(node.name) ?? 0)
            : undefined
        // cores derived over the sockets the VM has (or will have after a restart) when homelab.yaml sets none: PVE
        // multiplies them, so 2 sockets of the VM's own × cores derived for 1 would be twice the share cpuRatio gives
        const ownSockets =
          config === undefined || vm.sockets !== undefined || vm.cores !== undefined
            ? undefined
            : Number(
                config.deletes.includes("sockets") ? 1 : (config.pending.sockets ?? config.current.sockets ?? 1)
              ) || 1
        const sized = ownSockets !== undefined && ownSockets > 1 ? { ...vm, sockets: ownSockets } : vm
        const cores = vm.cores === undefined ? derivedCores(node, observedNode.cpus, sized, sized !== vm) : undefined
        const step = planDrift({
          desired,
          spec: cores === undefined ? spec : { ...spec, cores: cores.cores },
          vm,
          vmid: healthy.vmid,
          node: observedNode,
          config,
          snippets: observed.snippets?.get(node.name),
          protected: inSafetyProtect(desired, vm.name, healthy.vmid) || config?.current.protection === "1",
          k3sNodes,
          ip: observed.ips?.get(healthy.vmid),
          cordonedByUs: marks.restart || marks.upgrade || marks.destroy,
          cloudInitHeld: observed.cloudInit?.get(healthy.vmid),
          ...(cores === undefined ? {} : { coresFrom: cores.text }),
          reservableMemoryBytes: reservable
        })
        findings.push(...step.findings)
        if (step.update?.edit.set.memory !== undefined && spec.memoryMiB * MiB > before)
          memoryGrown.set(node.name, (memoryGrown.get(node.name) ?? 0) + spec.memoryMiB * MiB - before)
        const restart = step.restart
        // The quorum guard: restarting a server takes its etcd member out of service for a while, whether its Node is
        // Ready or not (a NotReady Node's k3s may run a voting member on): asked by membership, not readiness.
        const server =
          restart !== undefined &&
          k3s !== undefined &&
          (restart.k3s?.role === "server" || holdsEtcdMember(cluster?.facts, k3sNodes, vm.name))
        const refused =
          restart !== undefined && server
            ? quorumFinding(
                cluster?.facts,
                { node: node.name, vm: vm.name, vmid: healthy.vmid },
                "restart",
                cluster?.membersProblem,
                { context: `it waits for a restart: ${restart?.reason}` }
              )
            : undefined
        if (refused !== undefined) findings.push(refused)
        // Never blind: with k3s, a VM whose membership cannot be read may be a server (its etcd member) or hold
        // workloads; its restart waits until its Node can be drained (and a server's quorum checked).
        const blind =
          restart !== undefined && restart.k3s === undefined && refused === undefined
            ? blindRestartFinding(desired, observed, k3sNodes, {
                node: node.name,
                vm: vm.name,
                role: vm.role,
                vmid: healthy.vmid,
                ip: observed.ips?.get(healthy.vmid),
                reason: restart.reason
              })
            : undefined
        if (blind !== undefined) findings.push(blind)
        const held = refused ?? blind
        // A change that waits for a restart is made only together with that restart (`vm.restart: rolling`).
        if (step.update !== undefined && (held === undefined || restart === undefined)) actions.push(step.update)
        if (restart !== undefined && held === undefined) {
          const via = restart.k3s === undefined ? undefined : cluster?.viaFor(vm.name)
          const resumed = marks.restart
            ? `; an earlier run's restart of it did not finish (it carries '${RestartTag}')`
            : marks.destroy
              ? `; an earlier teardown of it stopped before destroying it (it carries '${DestroyTag}')`
              : ""
          restarts.push(
            restart.k3s === undefined
              ? {
                  ...restart,
                  // not drained (its Node is not a Ready member), but guarded again just before it goes down
                  ...(server ? { etcd: { via: cluster?.viaFor(vm.name) } } : {}),
                  reason: `${restart.reason}${resumed}`
                }
              : { ...restart, k3s: { ...restart.k3s, via }, reason: `${restart.reason}${resumed}` }
          )
          // A restart that drains the Node finishes what the mark says itself.
          if (restart.k3s !== undefined) unfinished = false
          restartId = restart.id
        }
      }
      if (k3s === undefined) continue
      const finish = (vmid: number, join: string | undefined) =>
        finishes.push(
          finishRestart({
            node: node.name,
            vm: vm.name,
            vmid,
            role: vm.role,
            cordoned: marks.cordoned,
            join,
            via: cluster?.viaFor(vm.name),
            ip: observed.ips?.get(vmid),
            mark: marks.restart ? RestartTag : marks.destroy ? DestroyTag : undefined
          })
        )

      /**
       * A server VM an earlier teardown took out of the cluster before it stopped short of destroying the VM (it
       * carries 'homelab-destroy'; its Node, and with it its etcd member, are gone). etcd refuses a removed member: k3s
       * since the January 2026 releases writes a tombstone when it learns so (running, or at its next start) and joins
       * again as a new member at a restart, which the join gives it; older k3s cannot start again on that data, and a
       * join would fail run after run: blocked, with the ways out (`planRemovedServer`). `rejoins` holds the join's
       * reason when it goes ahead.
       */
      let rejoins: string | undefined
      const removedServer = (vmid: number): boolean => {
        if (!marks.destroy || vm.role !== "server" || k3sNodes === undefined) return false
        if (k3sNodes.some((n) => n.name === vm.name)) return false
        const verdict = planRemovedServer(
          {
            node: node.name,
            vm: vm.name,
            vmid,
            line: removedMemberLine(observed, vmid, vm.name),
            version: joinedVersion(k3s.version, k3sNodes)
          },
          k3s
        )
        if (verdict._tag === "Join") {
          rejoins = verdict.reason
          return false
        }
        findings.push(verdict.finding)
        return true
      }

      /** Blocked: the cluster cannot be read, so whether this VM is a member is unknown. */
      const membershipUnknown = (vmid: number | undefined) =>
        quorumLost !== undefined
          ? vm.name === quorumLost.survivor.vm
            ? undefined
            : quorumLost.down.includes(vm.name) && vmid !== undefined
              ? // its VM runs, its k3s does not (stopped, or failing): left so
                findings.push(notStarted(quorumLost, node.name, vm.name, vmid, "k3s"))
              : findings.push({
                  code: "k3s.quorum-lost",
                  effect: "blocked",
                  layer: "k3s",
                  node: node.name,
                  vm: vm.name,
                  vmid,
                  message: `membership of ${vm.name} unknown: etcd has lost quorum (above)`,
                  hint: `after the reset on ${quorumLost.survivor.vm}, \`homelab apply\` goes on`
                })
          : findings.push({
              code: (observed.k3s?._tag === "Unavailable" ? observed.k3s.code : undefined) ?? "k3s.unavailable",
              effect: "blocked",
              layer: "k3s",
              node: node.name,
              vm: vm.name,
              vmid,
              message:
                observed.k3s?._tag === "Unavailable"
                  ? observed.k3s.vms?.includes(vm.name) === true
                    ? observed.k3s.message
                    : `membership of ${vm.name} unknown: ${observed.k3s.message}`
                  : `membership of ${vm.name} unknown: the k3s cluster was not read`,
              hint: observed.k3s?._tag === "Unavailable" ? observed.k3s.hint : "check k3s.server"
            })

      /**
       * A server's join is held back while etcd lists a member of its name (or IP) that no Node owns: it would fail on
       * 'duplicate node name found' and loop (`staleMemberFinding`).
       */
      const staleMemberOf = (vmid: number | undefined, ip: string | undefined, runs = true) =>
        vm.role === "server"
          ? staleMemberFinding(
              cluster?.facts,
              {
                node: node.name,
                vm: vm.name,
                vmid,
                ip,
                joining: joiningMemberOfVm(observed, vmid, vm.name),
                runs,
                unit: runs ? serverUnitOf(observed, vmid, vm.name) : undefined
              },
              cluster?.viaFor(vm.name)?.vm ?? k3s.server?.host ?? "a Ready server"
            )
          : undefined

      // Phase 3 for this VM. Without a cluster yet, the first server VM starts it and the others join through it.
      const exclusive = vm.role === "server" ? "k3s-server" : undefined
      const starts = cluster?.init?.vm === vm.name
      const initAfter = cluster?.init !== undefined && !starts ? [actionId.k3s(cluster.init.node, cluster.init.vm)] : []
      if (decision.action !== undefined) {
        const vmAction = decision.action
        const stale =
          (vmAction._tag === "CreateVm" || vmAction._tag === "AwaitCreate") &&
          k3sNodes?.some((n) => n.name === vm.name) === true
        if (vmAction._tag === "RecreateVm" && foreignAgents.includes(vm.name)) {
          // Rebuilt without k3s (its agent went with the old VM): the next run finds no server VM running k3s and
          // starts the cluster on it.
          findings.push({
            code: "k3s.role-mismatch",
            effect: "deferred",
            layer: "k3s",
            node: node.name,
            vm: vm.name,
            vmid: vmAction.vmid,
            message: `${vm.name} is rebuilt as a new VM without k3s (it ran k3s as an agent); the next run starts the k3s cluster on it`,
            hint: "run apply again once this run is done"
          })
          continue
        }
        if (starts) {
          actions.push({
            _tag: "InitK3s",
            id: actionId.k3s(node.name, vm.name),
            node: node.name,
            after: [vmAction.id],
            exclusive: "k3s-server",
            vm: vm.name,
            vmid: vmAction._tag === "CreateVm" ? undefined : vmAction.vmid,
            follows: followsOf(vmAction),
            reason: `no k3s cluster exists yet (no k3s.server, none of the server VMs runs k3s): ${vm.name} is the first server`
          })
          continue
        }
        if (k3sNodes === undefined && (vmAction._tag === "StartVm" || vmAction._tag === "ResumeVm")) {
          // The VM keeps its disk, and its k3s starts with it; whether its Node is Ready again is for the next run,
          // once the cluster can be read (there is no server to join through now).
          membershipUnknown(vmAction.vmid)
          continue
        }
        if (cluster?.mode === "unknown" || (cluster?.mode === "external" && observed.k3s?._tag === "Unavailable")) {
          // No server to join through (none answers, or k3s.server refuses our SSH: see the finding's hint); the VM
          // action goes ahead, the join waits for a run that can read the cluster. Never a cluster of its own.
          membershipUnknown(vmAction._tag === "CreateVm" ? undefined : vmAction.vmid)
          continue
        }
        // a new disk: its k3s joins etcd afresh (a VM started again keeps its disk, and its own member)
        const fresh = vmAction._tag === "CreateVm" || vmAction._tag === "RecreateVm" || vmAction._tag === "AwaitCreate"
        // a pinned k3s.version that is no release (the server found its checksum file missing): the install on the
        // new disk would fail after the VM is made; the VM goes ahead, the join waits for a k3s.version that exists
        const release = observed.k3s?._tag === "Nodes" ? observed.k3s.release : undefined
        if (fresh && release?._tag === "Missing" && release.version === k3s.version) {
          const said = findings.some((f) => f.code === "k3s.release-missing")
          findings.push({
            code: "k3s.release-missing",
            effect: "blocked",
            layer: "k3s",
            node: node.name,
            vm: vm.name,
            vmid: vmAction._tag === "CreateVm" ? undefined : vmAction.vmid,
            message: said
              ? `k3s.version ${release.version} is not a k3s release: ${vm.name} cannot join with it`
              : `k3s.version ${release.version} is not a k3s release (${release.url} answers 404 Not Found): ${vm.name} cannot join with it`,
            hint: "set k3s.version to a published release (https://github.com/k3s-io/k3s/releases), or use k3s.channel"
          })
          continue
        }
        const staleMember = fresh
          ? // a VM made (or made again) this run: nothing of its name runs, so no learner of its name is its join
            staleMemberOf(vmAction._tag === "CreateVm" ? undefined : vmAction.vmid, undefined, false)
          : undefined
        if (staleMember !== undefined) {
          findings.push(staleMember)
          continue
        }
        if (
          (vmAction._tag === "StartVm" || vmAction._tag === "ResumeVm" || vmAction._tag === "FinishVm") &&
          removedServer(vmAction.vmid)
        )
          continue
        if (
          unfinished &&
          (vmAction._tag === "StartVm" || vmAction._tag === "ResumeVm" || vmAction._tag === "FinishVm")
        ) {
          // The VM keeps its Node: once it runs and the join made the Node Ready, the restart is finished.
          finish(vmAction.vmid, actionId.k3s(node.name, vm.name))
        }
        actions.push({
          _tag: "JoinK3s",
          id: actionId.k3s(node.name, vm.name),
          node: node.name,
          after: [vmAction.id, ...initAfter],
          exclusive,
          vm: vm.name,
          vmid: vmAction._tag === "CreateVm" ? undefined : vmAction.vmid,
          role: vm.role,
          // A VM that is gone while its Node is still in the cluster (a server's etcd member too) rejoins: the stale
          // Node goes first, or the new one meets 'Node password rejected' / 'duplicate node name'.
          rejoin: vmAction._tag === "RecreateVm" || decision.rebuilt === true || stale,
          follows: followsOf(vmAction),
          via: cluster?.viaFor(vm.name),
          reason: stale
            ? `${vm.name} must be a Ready ${vm.role} once its VM runs; the Node its old VM left is removed first`
            : `${vm.name} must be a Ready ${vm.role} once its VM runs${rejoins === undefined ? "" : `: ${rejoins}`}`
        })
        continue
      }
      const healthy = decision.healthy
      if (healthy === undefined) continue
      if (k3sNodes === undefined) {
        // A server VM that runs with its k3s unit stopped: started; its Node is waited for at the end of the run.
        const stopped =
          observed.k3s?._tag === "Unavailable"
            ? observed.k3s.stopped?.find((s) => s.vm === vm.name && s.vmid === healthy.vmid)
            : undefined
        if (stopped !== undefined) {
          actions.push({
            _tag: "StartK3s",
            id: actionId.k3s(node.name, vm.name),
            node: node.name,
            after: [],
            vm: vm.name,
            vmid: stopped.vmid,
            ip: stopped.ip,
            state: stopped.state,
            reason: `k3s on ${vm.name} is stopped (${stopped.state}) and no server answers for the cluster: apply starts it`
          })
        }
        membershipUnknown(healthy.vmid)
        continue
      }
      const ip = observed.ips?.get(healthy.vmid)
      if (ip !== undefined && ip === k3s.server?.host) continue
      if (removedServer(healthy.vmid)) continue
      if (starts) {
        if (ip === undefined) {
          const why = noIp(
            {
              vmid: healthy.vmid,
              name: vm.name,
              node: node.name,
              agentOff: agentOff(observed.configs?.get(healthy.vmid))
            },
            "cannot start the k3s cluster"
          )
          findings.push({
            code: "k3s.no-ip",
            effect: "blocked",
            layer: "k3s",
            node: node.name,
            vm: vm.name,
            vmid: healthy.vmid,
            ...why
          })
          continue
        }
        // It holds a cluster already (etcd data of an earlier one, say): apply's initCluster would refuse it, so the
        // plan says so, in the same words, instead of a cluster start that cannot happen.
        const existing = observed.k3s?._tag === "Absent" ? observed.k3s.existing : undefined
        if (existing !== undefined && existing.vm === vm.name && existing.vmid === healthy.vmid) {
          findings.push({
            code: "k3s.existing-cluster",
            effect: "blocked",
            layer: "k3s",
            node: node.name,
            vm: vm.name,
            vmid: healthy.vmid,
            message: `not starting the k3s cluster on ${vm.name}, the first server VM: ${existing.refusal}`,
            hint: existingClusterHint(vm.name, existing.ip, existing)
          })
          continue
        }
        actions.push({
          _tag: "InitK3s",
          id: actionId.k3s(node.name, vm.name),
          node: node.name,
          after: [],
          exclusive: "k3s-server",
          vm: vm.name,
          vmid: healthy.vmid,
          ip,
          reason: `no k3s cluster exists yet (no k3s.server, none of the server VMs runs k3s): ${vm.name} is the first server`
        })
        continue
      }
      const step = planMembership(
        {
          name: vm.name,
          node: node.name,
          vmid: healthy.vmid,
          role: vm.role,
          ip,
          rebuilt: decision.rebuilt === true,
          systemUUID: smbiosUuid(observed.configs?.get(healthy.vmid)),
          agentOff: agentOff(observed.configs?.get(healthy.vmid)),
          removedMember: removedMemberLine(observed, healthy.vmid, vm.name)
        },
        k3sNodes
      )
      if (step._tag === "Finding") findings.push(step.finding)
      // a join afresh: no Node of its own yet, or the one it has is removed first (a NotReady Node's k3s restarts with
      // its own etcd member)
      const staleMember =
        step._tag === "Join" && (step.rejoin || !k3sNodes.some((n) => n.name === vm.name))
          ? staleMemberOf(healthy.vmid, ip)
          : undefined
      if (staleMember !== undefined) {
        findings.push(staleMember)
        continue
      }
      // A finding (a Node that is not this VM's, no IP) blocks the node already; the mark waits for the next run.
      if (unfinished && step._tag !== "Finding")
        finish(healthy.vmid, step._tag === "Join" ? actionId.k3s(node.name, vm.name) : undefined)
      // Not ours to undo: cordoned by hand (maintenance), an interrupted `kubectl drain`, an older homelab.
      const cordonedByHand = marks.cordoned && !marks.restart && !marks.upgrade && !marks.destroy
      if (cordonedByHand && step._tag !== "Finding") findings.push(cordonedFinding(node.name, vm.name, healthy.vmid))
      if (step._tag === "Member" && ip !== undefined) {
        upgradeCandidates.push({
          vm: vm.name,
          node: node.name,
          vmid: healthy.vmid,
          ip,
          role: vm.role,
          version: step.node.kubeletVersion,
          marked: healthy.tags.includes(UpgradeTag) || healthy.tags.includes(UpgradeKeepCordonTag),
          keepCordoned: cordonedByHand,
          nodeArgs: step.node.nodeArgs
        })
      }
      if (step._tag === "Join") {
        actions.push({
          _tag: "JoinK3s",
          id: actionId.k3s(node.name, vm.name),
          node: node.name,
          after: restartId === undefined ? initAfter : [...initAfter, restartId],
          exclusive,
          vm: vm.name,
          vmid: healthy.vmid,
          ip,
          role: vm.role,
          rejoin: step.rejoin,
          via: cluster?.viaFor(vm.name),
          reason: rejoins ?? step.reason
        })
      }
    }
  }
  chainRestarts(actions, finishes, restarts)
  // Server joins into a cluster without embedded etcd (a server on SQLite): blocked, before anything is ordered after them
  if (k3s !== undefined && k3sNodes !== undefined) {
    const noEtcd = blockNoEtcdJoins(actions, k3sNodes, k3s)
    actions.splice(0, actions.length, ...noEtcd.actions)
    findings.push(...noEtcd.findings)
  }
  // Orphans: reported, or with `prune` removed (a server among them one at a time with the other server disruptions).
  // Server VMs this plan joins as new members: the server orphans it prunes go after them (see `orderK3s`).
  const joining = actions.flatMap((a) =>
    a._tag === "JoinK3s" && a.role === "server" && k3sNodes?.some((n) => n.name === a.vm) !== true ? [a.vm] : []
  )
  const orphans = planOrphans(desired, observed, { ...options, joining })
  const all = [...nodes.map((n) => n.name), ...orphans.nodes]
  const planned = [...actions, ...orphans.actions]
  // a VM whose k3s step already says its guest agent is off (no IP to join with) needs no note of its own saying so
  const agentOffTold = (f: Finding) =>
    f.code === "vm.agent-off" &&
    findings.some((o) => o.vmid === f.vmid && o.layer === "k3s" && o.message.includes(AgentOffWords))
  const reported = [...findings.filter((f) => !agentOffTold(f)), ...orphans.findings]
  const unlisted = orphans.nodes
  if (k3s === undefined)
    return holdWithoutQuorum({ nodes: all, unlisted, actions: planned, findings: reported }, observed)
  // Membership the plan cannot tell because server VMs are down, which it brings back itself: left to the run's end.
  if (cluster === undefined)
    return holdWithoutQuorum(
      { nodes: all, unlisted, actions: planned, findings: membershipAfterPlan(reported, planned, observed.k3s) },
      observed
    )
  // the cluster as it will be: without the k3s Nodes of the orphans this plan prunes
  const leaving = new Set(
    orphans.actions.flatMap((a) => (a._tag === "DestroyVm" && a.k3sNode !== undefined ? [a.name] : []))
  )
  const after = leaving.size === 0 ? cluster : (clusterContext(desired, observed, leaving) ?? cluster)
  const ordered = orderK3s(planned, reported, upgradeCandidates, desired, observed, after, options.only)
  return holdWithoutQuorum(
    {
      nodes: all,
      unlisted,
      actions: ordered.actions,
      findings: membershipAfterPlan(ordered.findings, ordered.actions, observed.k3s),
      cluster: after.summary
    },
    observed
  )
}

/**
 * Phase 3 across the cluster, once every node was planned: the rolling upgrade, then the order that keeps etcd's
 * quorum and the version skew rules: every action that takes a server out of service (a rebuild with its rejoin, a
 * restart, an upgrade) runs one at a time, in plan order, each after the previous one is back; the upgrade goes hop by
 * hop (every server to the next minor, then the agents `k3s.upgrade.maxUnavailable` at a time, then the next minor:
 * see `planUpgrades`), each stage after the one before; agents joining meanwhile wait for the servers' last upgrade.
 * Joins that need a cluster nobody starts this run are findings instead.
 */
const orderK3s = (
  planned: ReadonlyArray<Action>,
  plannedFindings: ReadonlyArray<Finding>,
  candidates: ReadonlyArray<UpgradeCandidate>,
  desired: Desired,
  observed: Observed,
  cluster: ClusterContext,
  only?: ReadonlyArray<string> | undefined
): { actions: Array<Action>; findings: Array<Finding> } => {
  const k3s = desired.k3s
  if (k3s === undefined) return { actions: [...planned], findings: [...plannedFindings] }
  const findings = [...plannedFindings, ...cluster.findings]
  let actions: Array<Action> = [...planned]

  // A cluster from nothing whose first server is not started this run: nobody can join yet.
  if (cluster.init !== undefined) {
    const initId = actionId.k3s(cluster.init.node, cluster.init.vm)
    if (!actions.some((a) => a.id === initId && a._tag === "InitK3s")) {
      const waiting = actions.filter((a) => a._tag === "JoinK3s" && a.after.includes(initId))
      const init = cluster.init
      const outOfScope = only !== undefined && !only.includes(init.node)
      for (const a of waiting) {
        findings.push({
          code: "k3s.no-cluster",
          effect: "blocked",
          layer: "k3s",
          node: a.node,
          vm: vmOfJoin(a),
          message: outOfScope
            ? `${vmOfJoin(a)} cannot join k3s yet: there is no cluster, and ${init.vm}, the first server that starts it, is on ${init.node}, which --only leaves out of this run`
            : `${vmOfJoin(a)} cannot join k3s yet: there is no cluster, and ${init.vm} (on ${init.node}), the first server that starts it, is not ready to this run`,
          hint: outOfScope
            ? `add ${init.node} to --only (or run without --only) so that ${init.vm} starts the cluster first`
            : `make ${init.vm} converge first (see its node's findings), or set k3s.server to an existing server`
        })
      }
      actions = actions.filter((a) => !waiting.includes(a))
    }
  }

  // Steps go through a server that stays up: not one this plan rebuilds, nor one it prunes.
  const pruned = new Set(
    actions.flatMap((a) => (a._tag === "DestroyVm" && a.purpose === "prune" && a.k3sNode !== undefined ? [a.name] : []))
  )
  const rebuilt = new Set([
    ...actions.flatMap((a) => (a._tag === "RecreateVm" && a.k3sCleanup === "server" ? [a.spec.name] : [])),
    ...pruned
  ])
  if (rebuilt.size > 0) {
    actions = actions.map((a) => {
      if (a._tag === "JoinK3s" && a.via !== undefined && rebuilt.has(a.via.vm) && a.vm !== a.via.vm)
        return { ...a, via: cluster.viaFor(a.vm, rebuilt) }
      if (a._tag === "RecreateVm" && a.k3sVia !== undefined && rebuilt.has(a.k3sVia.vm))
        return { ...a, k3sVia: cluster.viaFor(a.spec.name, rebuilt) }
      if (a._tag === "UncordonK3s" && a.via !== undefined && rebuilt.has(a.via.vm))
        return { ...a, via: cluster.viaFor(a.vm, rebuilt) }
      return a
    })
  }

  const facts = observed.k3s?._tag === "Nodes" ? observed.k3s : undefined
  const rollout = planUpgrades(candidates, {
    k3s,
    channels: facts?.channels,
    channelsError: facts?.channelsError,
    facts: cluster.facts,
    membersProblem: cluster.membersProblem,
    viaFor: cluster.viaFor,
    nodes: cluster.nodes?.map((n) => ({ name: n.name, role: n.role, version: n.kubeletVersion })),
    release: facts?.release
  })
  findings.push(...rollout.findings)
  actions.push(...rollout.actions)

  // One server out of service at a time: a rebuild and its rejoin, a rolling restart (with its in-place update).
  const serverGroups: Array<ReadonlyArray<string>> = []
  for (const a of actions) {
    if (a._tag === "RecreateVm" && a.k3sCleanup === "server") {
      const join = actions.find((j) => j._tag === "JoinK3s" && j.after.includes(a.id))
      serverGroups.push(join === undefined ? [a.id] : [a.id, join.id])
    }
    if (a._tag === "DestroyVm" && a.k3sNode?.role === "server") serverGroups.push([a.id])
  }
  for (const a of actions) {
    if (a._tag === "RestartVm" && (a.k3s?.role === "server" || a.etcd !== undefined)) {
      const update = actions.find((u) => u._tag === "UpdateVm" && a.after.includes(u.id))
      serverGroups.push(update === undefined ? [a.id] : [update.id, a.id])
    }
  }
  // Then the rollout, stage after stage (a server alone, a batch of agents), hop after hop: each stage waits for the
  // one before, the first for the last of those server groups.
  const after = new Map<string, ReadonlyArray<string>>()
  const lastGroup = serverGroups.at(-1)?.at(-1)
  let previous: ReadonlyArray<string> = lastGroup === undefined ? [] : [lastGroup]
  for (const stage of rollout.stages) {
    for (const u of stage) after.set(u.id, previous)
    previous = stage.map((u) => u.id)
  }
  const lastServerUpgrade = rollout.stages
    .flat()
    .filter((u) => u.role === "server")
    .at(-1)?.id
  // An upgrade cordons and uncordons the Node itself: it waits until an unfinished restart of its VM is finished.
  const finishing = new Map(actions.flatMap((a) => (a._tag === "UncordonK3s" ? [[a.vm, a.id] as const] : [])))
  actions = pruneLast(oneAtATime(actions, serverGroups), pruned, cluster)
  actions = actions.map((a) => {
    const finish = a._tag === "UpgradeK3s" ? finishing.get(a.vm) : undefined
    const extra =
      a._tag === "UpgradeK3s"
        ? [...(after.get(a.id) ?? []), ...(finish === undefined ? [] : [finish])]
        : a._tag === "JoinK3s" && a.role === "agent" && lastServerUpgrade !== undefined
          ? [lastServerUpgrade]
          : []
    const added = extra.filter((id) => !a.after.includes(id))
    return added.length === 0 ? a : { ...a, after: [...a.after, ...added] }
  })
  // A refusal whose down servers this plan brings back is said as what the run does: left to the next run.
  return { actions, findings: quorumAfterPlan(findings, actions, cluster.facts) }
}

/**
 * The orphans that leave the cluster (`pruned`) go after the VMs that join it (grow first, then shrink): each such
 * `DestroyVm` waits for every `JoinK3s` of this plan (one that fails skips them), the joins that go through an orphan
 * included, and its own k3s steps go through a server that stays: a Ready one, else a server VM this plan joins (after
 * a rename the old servers are the only ones until the new VMs joined). A join that itself waits for a prune (a chain
 * the order above made) is not waited for.
 */
const pruneLast = (actions: Array<Action>, pruned: ReadonlySet<string>, cluster: ClusterContext): Array<Action> => {
  if (pruned.size === 0) return actions
  const byId = new Map(actions.map((a) => [a.id, a]))
  const waitsForPrune = (id: string, seen = new Set<string>()): boolean => {
    if (seen.has(id)) return false
    seen.add(id)
    const a = byId.get(id)
    if (a === undefined) return false
    if (a._tag === "DestroyVm" && a.purpose === "prune") return true
    return a.after.some((d) => waitsForPrune(d, seen))
  }
  const joins = actions.filter(
    (a): a is Extract<Action, { _tag: "JoinK3s" }> => a._tag === "JoinK3s" && !pruned.has(a.vm) && !waitsForPrune(a.id)
  )
  const staying = (vm: string | undefined) => vm !== undefined && !pruned.has(vm)
  return actions.map((a) => {
    if (a._tag !== "DestroyVm" || a.purpose !== "prune" || a.k3sNode === undefined) return a
    const ready = cluster.viaFor(a.name, pruned)
    const joined = joins.find((j) => j.role === "server")
    const k3sVia =
      cluster.mode !== "vms" || staying(ready?.vm)
        ? (ready ?? a.k3sVia)
        : joined !== undefined
          ? { vm: joined.vm, ...(joined.ip === undefined ? {} : { ip: joined.ip }) }
          : a.k3sVia
    const after = [...a.after, ...joins.map((j) => j.id).filter((id) => !a.after.includes(id))]
    return { ...a, after, k3sVia }
  })
}

const vmOfJoin = (a: Action): string => (a._tag === "JoinK3s" ? a.vm : "")
