import {
  classifyVm,
  type HealthPolicy,
  NodeFacts,
  PreflightOptions,
  preflight,
  remediationToApply,
  VmFacts,
  VmRequest
} from "@homelab/vm-health"
import type { Finding, VmAction, VmSpec } from "./Action.js"
import type { Desired, DesiredNode, DesiredVm } from "./Desired.js"
import type { Observed, ObservedNode, ObservedVm } from "./Observed.js"
import { vmidCandidates } from "./VmidCandidates.js"

/** The outcome of planning: ordered actions (each with its reason) and what is reported without acting. */
export interface Plan {
  readonly actions: ReadonlyArray<VmAction>
  readonly findings: ReadonlyArray<Finding>
}

/** What `observe` must fetch beyond the cheap observation before the plan can decide. */
export interface DetailsNeeded {
  /** Nodes that may get a VM created: bridges, permissions, image reachability. */
  readonly nodes: ReadonlyArray<string>
  /** Owned VMs that do not look healthy from `/cluster/resources`: status, config, agent. */
  readonly vms: ReadonlyArray<{ readonly node: string; readonly vmid: number }>
}

export interface PlanOptions {
  readonly policy: HealthPolicy
  /** `memoryAdjustment` for preflight (reservable = total × adjustment − Σ maxmem of the other guests). */
  readonly memoryAdjustment?: number | undefined
  /** Plan only these nodes (`homelab apply --only`). */
  readonly only?: ReadonlyArray<string> | undefined
  /** Force a recreate of these VM names (`homelab reprovision`), within the limit, whatever their health. */
  readonly reprovision?: ReadonlyArray<string> | undefined
}

const GiB = 1024 ** 3
const MiB = 1024 ** 2

/** The volume id the image has once downloaded, e.g. `local:import/noble.qcow2`. */
export const imageVolid = (node: DesiredNode): string =>
  `${node.image.storage}:${node.image.content}/${node.image.filename}`

const sameName = (observed: Observed, name: string): ReadonlyArray<ObservedVm> =>
  observed.vms.filter((vm) => vm.name === name)

/** Healthy-looking from `/cluster/resources` alone: no further requests are needed to leave it alone. */
const looksHealthy = (vm: ObservedVm, desired: Desired): boolean =>
  vm.status === "running" && vm.lock === undefined && !vm.tags.includes(desired.pendingTag)

const selectedNodes = (desired: Desired, options: Pick<PlanOptions, "only">): ReadonlyArray<DesiredNode> =>
  options.only === undefined ? desired.nodes : desired.nodes.filter((n) => options.only?.includes(n.name))

/**
 * Which details the plan needs, from the cheap observation: nodes where a VM is missing (preflight before a create)
 * and owned VMs that do not look healthy. A converged lab needs none.
 */
export const detailsNeeded = (
  desired: Desired,
  observed: Observed,
  options: Pick<PlanOptions, "only" | "reprovision"> = {}
): DetailsNeeded => {
  const nodes = new Set<string>()
  const vms: Array<{ node: string; vmid: number }> = []
  for (const node of selectedNodes(desired, options)) {
    if (!observed.nodes.get(node.name)?.online) continue
    for (const vm of node.vms) {
      const matches = sameName(observed, vm.name)
      if (matches.length === 0) {
        nodes.add(node.name)
        continue
      }
      if (matches.length > 1) continue
      const match = matches[0] as ObservedVm
      if (match.node !== node.name || !match.tags.includes(desired.ownershipTag)) continue
      if (!looksHealthy(match, desired) || options.reprovision?.includes(vm.name)) {
        vms.push({ node: match.node, vmid: match.vmid })
        nodes.add(node.name)
      }
    }
  }
  return { nodes: [...nodes], vms }
}

/** Size a VM from the node's capacity × ratios, unless the config pins the size. */
export const vmSpec = (desired: Desired, node: DesiredNode, observedNode: ObservedNode, vm: DesiredVm): VmSpec => {
  const cores = vm.cores ?? Math.max(1, Math.floor(observedNode.cpus * node.cpuRatio + 1e-9))
  const memoryMiB =
    vm.memoryMiB ?? Math.max(512, Math.floor(((observedNode.memoryBytes / MiB) * node.memoryRatio) / 256 + 1e-9) * 256)
  return {
    name: vm.name,
    node: node.name,
    role: vm.role,
    cores,
    memoryMiB,
    diskGiB: vm.diskGiB,
    storage: vm.storage,
    bridges: vm.bridges,
    tags: vm.tags,
    cpuType: vm.cpuType,
    imageVolid: imageVolid(node),
    vmidCandidates: vm.vmid !== undefined ? [vm.vmid] : vmidCandidates(vm.name, desired.vmidRange)
  }
}

const nodeFacts = (observed: Observed, node: ObservedNode): NodeFacts =>
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
      availBytes: s.availBytes
    })),
    guests: observed.vms
      .filter((vm) => vm.node === node.name)
      .map((vm) => ({ vmid: vm.vmid, maxmemBytes: vm.maxmemBytes, template: vm.template }))
  })

/**
 * Plan phases 1–2 (image, VMs): a pure function of what is wanted and what was observed. Nodes in config order; per
 * node the image first, then its VMs. Every action carries its reason; everything left alone is reported as a
 * finding. Recreates are capped by `desired.limits.maxRecreatePerRun` across the cluster.
 */
export const plan = (desired: Desired, observed: Observed, options: PlanOptions): Plan => {
  const actions: Array<VmAction> = []
  const findings: Array<Finding> = []
  let recreates = 0
  const downloadedShared = new Set<string>()

  for (const node of selectedNodes(desired, options)) {
    const observedNode = observed.nodes.get(node.name)
    if (observedNode === undefined) {
      findings.push({
        code: "node.missing",
        severity: "error",
        node: node.name,
        message: `node '${node.name}' is not a member of the Proxmox cluster`,
        hint: "check nodes[].name against `pvecm nodes` (names are case-sensitive and never FQDNs)"
      })
      continue
    }
    if (!observedNode.online) {
      findings.push({
        code: "node.offline",
        severity: "error",
        node: node.name,
        message: `node '${node.name}' is offline`,
        hint: "start the node, or leave it out with --only"
      })
      continue
    }

    // Phase 1: the image.
    const volid = imageVolid(node)
    const imageStorage = observedNode.storages.find((s) => s.storage === node.image.storage)
    const sharedKey = imageStorage?.shared ? volid : undefined
    if (!observedNode.imageVolids.has(volid) && !(sharedKey !== undefined && downloadedShared.has(sharedKey))) {
      if (sharedKey !== undefined) downloadedShared.add(sharedKey)
      actions.push({
        _tag: "DownloadImage",
        node: node.name,
        image: node.image,
        volid,
        reason: `${volid} is not on ${node.name}`
      })
    }

    // Phase 2: the VMs.
    for (const vm of node.vms) {
      const spec = vmSpec(desired, node, observedNode, vm)
      const matches = sameName(observed, vm.name)
      const protectedByConfig = desired.protect.includes(vm.name)

      if (matches.length === 0) {
        const inFlight = observed.vms.find(
          (o) =>
            o.lock === "create" &&
            spec.vmidCandidates.includes(o.vmid) &&
            (o.name === undefined || o.name === `VM ${o.vmid}`)
        )
        if (inFlight !== undefined) {
          findings.push({
            code: "vm.creating",
            severity: "warning",
            node: node.name,
            vm: vm.name,
            vmid: inFlight.vmid,
            message: `VMID ${inFlight.vmid} (${vm.name}'s first choice) is being created right now, probably by another run`,
            hint: "run again once it finishes"
          })
          continue
        }
        const report = preflight(
          nodeFacts(observed, observedNode),
          new VmRequest({
            cores: spec.cores,
            memoryMiB: spec.memoryMiB,
            bridges: spec.bridges,
            diskStorage: spec.storage,
            diskBytes: spec.diskGiB * GiB,
            imageStorage: node.image.storage,
            imageContent: node.image.content,
            downloadImage: !observedNode.imageVolids.has(volid)
          }),
          new PreflightOptions({
            ...(observedNode.details?.imageReachable && !observedNode.imageVolids.has(volid)
              ? {
                  image: {
                    url: node.image.url,
                    reachable: observedNode.details.imageReachable.ok,
                    detail: observedNode.details.imageReachable.detail
                  }
                }
              : {}),
            ...(observedNode.details?.permissions
              ? {
                  access: {
                    _tag: "Permissions" as const,
                    principal: "token",
                    permissions: observedNode.details.permissions
                  }
                }
              : {}),
            ...(options.memoryAdjustment !== undefined ? { memoryAdjustment: options.memoryAdjustment } : {})
          })
        )
        for (const f of report.findings) {
          findings.push({
            code: f.code,
            severity: f.severity,
            node: node.name,
            vm: vm.name,
            message: f.message,
            hint: f.fix
          })
        }
        if (report.ok) {
          actions.push({ _tag: "CreateVm", node: node.name, spec, reason: `no VM named ${vm.name} exists` })
        }
        continue
      }

      if (matches.length > 1) {
        findings.push({
          code: "vm.duplicate",
          severity: "error",
          node: node.name,
          vm: vm.name,
          message: `${matches.length} VMs are named ${vm.name} (VMIDs ${matches.map((m) => m.vmid).join(", ")}); touching none`,
          hint: "delete or rename the extra ones"
        })
        continue
      }

      const match = matches[0] as ObservedVm
      if (match.node !== node.name) {
        findings.push({
          code: "vm.elsewhere",
          severity: "warning",
          node: node.name,
          vm: vm.name,
          vmid: match.vmid,
          message: `VM ${match.vmid} ${vm.name} runs on node ${match.node}, not ${node.name}; leaving it there`,
          hint: `migrate it back to ${node.name}, or list it under nodes[${match.node}]`
        })
        continue
      }
      const owned = match.type === "qemu" && match.tags.includes(desired.ownershipTag)
      if (!owned) {
        findings.push({
          code: "vm.unowned",
          severity: "warning",
          node: node.name,
          vm: vm.name,
          vmid: match.vmid,
          message: `VM ${match.vmid} is named ${vm.name} but lacks the tag '${desired.ownershipTag}': not ours, not touched`,
          hint: `to let homelab manage it, add the tag '${desired.ownershipTag}'; otherwise rename one of them`
        })
        continue
      }

      const details = observed.vmDetails.get(match.vmid)
      const isProtected = protectedByConfig || desired.protect.includes(match.vmid) || details?.protection === true

      if (match.tags.includes(desired.pendingTag) && match.lock === undefined) {
        actions.push({
          _tag: "FinishVm",
          node: node.name,
          vmid: match.vmid,
          spec,
          reason: `VM ${match.vmid} ${vm.name} still carries '${desired.pendingTag}': an earlier run was interrupted`
        })
        continue
      }

      const forced = options.reprovision?.includes(vm.name) === true
      if (!forced && looksHealthy(match, desired)) continue

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
        ...((details?.lock ?? match.lock) !== undefined ? { lock: (details?.lock ?? match.lock) as string } : {}),
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
      /** A recreate within the per-run limit; beyond it, a deferred finding. */
      const recreate = (reason: string) => {
        if (recreates >= desired.limits.maxRecreatePerRun) {
          findings.push(deferred(node.name, vm.name, match.vmid, desired.limits.maxRecreatePerRun))
          return
        }
        recreates++
        actions.push({ _tag: "RecreateVm", node: node.name, vmid: match.vmid, spec, reason, evidence })
      }

      if (forced) {
        if (isProtected) {
          findings.push({
            code: "vm.protected",
            severity: "error",
            node: node.name,
            vm: vm.name,
            vmid: match.vmid,
            message: `VM ${match.vmid} ${vm.name} is protected; not recreating it`,
            hint: "remove the protection (and its entry in safety.protect) first"
          })
        } else {
          recreate(`reprovision of ${vm.name} requested`)
        }
        continue
      }

      const remediation = remediationToApply(report)
      switch (remediation) {
        case "start":
          actions.push({ _tag: "StartVm", node: node.name, vmid: match.vmid, name: vm.name, reason: report.message })
          break
        case "resume":
          actions.push({ _tag: "ResumeVm", node: node.name, vmid: match.vmid, name: vm.name, reason: report.message })
          break
        case "recreate":
          recreate(report.message)
          break
        case undefined:
          if (report._tag === "Unhealthy") {
            findings.push({
              code: report.blockedBy.includes("protected") ? "vm.protected" : `vm.${report.reason}`,
              severity: "warning",
              node: node.name,
              vm: vm.name,
              vmid: match.vmid,
              message: `${report.message}${report.blockedBy.length > 0 ? ` (not remediated: ${report.blockedBy.join(", ")})` : ""}`,
              hint: report.blockedBy.includes("protected")
                ? "remove the protection to let homelab recreate it, or fix it by hand"
                : "see the health policy in homelab.yaml"
            })
          } else if (report._tag === "Unknown") {
            findings.push({
              code: `vm.${report.reason}`,
              severity: "info",
              node: node.name,
              vm: vm.name,
              vmid: match.vmid,
              message: `${report.message}; left as it is`
            })
          }
          break
      }
    }
  }
  return { actions, findings }
}

const deferred = (node: string, vm: string, vmid: number, limit: number): Finding => ({
  code: "vm.recreate-deferred",
  severity: "warning",
  node,
  vm,
  vmid,
  message: `VM ${vmid} ${vm} needs recreating, but this run already recreates ${limit} VM(s) (safety.maxRecreatePerRun)`,
  hint: "run apply again, or raise safety.maxRecreatePerRun"
})
