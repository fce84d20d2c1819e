import { type ClusterNode, evaluateMembership } from "@homelab/k3s-join"
import type { VmPending } from "@homelab/proxmox-client"
import type { Finding, RestartVm, UpdateVm, VmSpec } from "./Action.js"
import { cicustomFindings } from "./CicustomPreflight.js"
import type { Desired, DesiredVm } from "./Desired.js"
import type { ObservedNode } from "./Observed.js"
import { describeChange, driftTargetOf, type FieldChange, needsRestart, vmDrift } from "./VmDrift.js"

/** Action ids of the drift actions of one VM. */
export const driftActionId = {
  update: (node: string, vm: string) => `${node}:update:${vm}`,
  restart: (node: string, vm: string) => `${node}:restart:${vm}`
}

/** What drift planning decided for one VM: an in-place update, a restart (not yet chained), findings. */
export interface DriftStep {
  readonly update?: UpdateVm | undefined
  readonly restart?: RestartVm | undefined
  readonly findings: ReadonlyArray<Finding>
}

export interface DriftInput {
  readonly desired: Desired
  readonly spec: VmSpec
  readonly vm: DesiredVm
  readonly vmid: number
  readonly node: ObservedNode
  /** `GET …/pending` of the VM; undefined when it was not read (then nothing is planned). */
  readonly config: VmPending | undefined
  readonly snippets?: ReadonlySet<string> | undefined
  /** A protected VM's drift is reported, never applied. */
  readonly protected: boolean
  /** The k3s cluster's Nodes, when read, and the VM's IP: a Ready member is drained around a restart. */
  readonly k3sNodes?: ReadonlyArray<ClusterNode> | undefined
  readonly ip?: string | undefined
  /**
   * The VM carries a mark saying a run of ours cordoned its Node (`homelab-restart`, `homelab-upgrade`). Without it a
   * cordoned Node was cordoned by someone else: the restart leaves it cordoned.
   */
  readonly cordonedByUs?: boolean | undefined
}

const list = (changes: ReadonlyArray<FieldChange>) => changes.map(describeChange).join("; ")

/**
 * Drift of one running, healthy VM of ours, pure: the settings that differ from homelab.yaml become one `UpdateVm`
 * (when the VM is not protected); what needs a restart becomes a `RestartVm` with `vm.restart: rolling` (the caller
 * chains the restarts one after another), or — for what PVE already holds pending — a `pending` finding with
 * `never`. A restart drains a Ready member's Node around it; a Node cordoned by someone else stays cordoned. A disk
 * that would have to shrink is refused (`blocked`), as is any change to a protected VM.
 */
export const planDrift = (input: DriftInput): DriftStep => {
  const { desired, spec, vm, vmid, node, config } = input
  if (config === undefined) return { findings: [] }
  const drift = vmDrift(driftTargetOf(spec, vm), config)
  const findings: Array<Finding> = []
  const finding = (effect: Finding["effect"], code: string, message: string, hint?: string) =>
    findings.push({ code, effect, layer: "vm", node: node.name, vm: vm.name, vmid, message, hint })
  for (const r of drift.refused) finding("blocked", "vm.disk-shrink", `VM ${vmid} ${vm.name}: ${r.message}`, r.hint)
  if (input.protected) {
    const all = [...drift.changes, ...drift.pending]
    if (all.length > 0) {
      finding(
        "blocked",
        "vm.protected-drift",
        `VM ${vmid} ${vm.name} is protected, so it is not changed: ${list(all)}`,
        "remove the protection (and its entry in safety.protect) to let homelab change it, or change homelab.yaml"
      )
    }
    return { findings }
  }
  const touchesCicustom = drift.changes.some((c) => c.field === "cloud-init cicustom")
  if (touchesCicustom) {
    const blocked = cicustomFindings(node, input.snippets, vm.cloudInit.cicustom, vm.name)
    if (blocked.length > 0) return { findings: [...findings, ...blocked] }
  }
  const update: UpdateVm | undefined =
    drift.changes.length === 0
      ? undefined
      : {
          _tag: "UpdateVm",
          id: driftActionId.update(node.name, vm.name),
          node: node.name,
          after: [],
          vmid,
          name: vm.name,
          digest: config.digest,
          changes: drift.changes,
          edit: drift.edit,
          reason: `${drift.changes.length} setting(s) differ from homelab.yaml: ${list(drift.changes)}`
        }
  const waiting = [...drift.changes.filter(needsRestart), ...drift.pending]
  if (waiting.length === 0) return { update, findings }
  if (desired.restart === "rolling") {
    const member =
      input.k3sNodes !== undefined && input.ip !== undefined
        ? evaluateMembership(input.k3sNodes, { name: vm.name, role: vm.role, ip: input.ip })
        : undefined
    const keepCordoned = member?._tag === "Member" && member.node.unschedulable === true && input.cordonedByUs !== true
    const restart: RestartVm = {
      _tag: "RestartVm",
      id: driftActionId.restart(node.name, vm.name),
      node: node.name,
      after: update === undefined ? [] : [update.id],
      exclusive: "vm-restart",
      vmid,
      name: vm.name,
      changes: waiting,
      ...(member?._tag === "Member" && input.ip !== undefined
        ? { k3s: { role: vm.role, ip: input.ip, ...(keepCordoned ? { keepCordoned } : {}) } }
        : {}),
      reason: `vm.restart is rolling and ${waiting.length} change(s) wait for a restart: ${list(waiting)}`
    }
    return { update, restart, findings }
  }
  if (drift.pending.length > 0) {
    finding(
      "pending",
      "vm.pending-restart",
      `VM ${vmid} ${vm.name}: ${list(drift.pending)}: PVE holds it until the VM restarts (vm.restart: never)`,
      `restart it (\`qm reboot ${vmid}\` on ${node.name}), or set vm.restart: rolling`
    )
  }
  return { update, findings }
}
