/**
 * `@homelab/vm-health`: classify Proxmox VMs as healthy, unhealthy or unknown from observed facts, preflight a node
 * before creating a VM on it, and size a VM from its node. Everything is pure data in, data out.
 *
 * @since 0.1.0
 */
export { AccessFact, hasPrivilege, PermissionMap } from "./AccessFact.js"
export { classifyVm } from "./classifyVm.js"
export { decodeNodeFacts, decodePreflightOptions, decodeVmFacts, decodeVmRequest } from "./Decoders.js"
export {
  AgentAction,
  CrashedAction,
  decodeHealthPolicy,
  HealthPolicy,
  HibernatedAction,
  PausedAction,
  type PolicyAction,
  StoppedAction
} from "./HealthPolicy.js"
export {
  Blocker,
  Evidence,
  HealthReport,
  Healthy,
  Remediation,
  remediationToApply,
  Unhealthy,
  UnhealthyReason,
  Unknown,
  UnknownReason
} from "./HealthReport.js"
export { BridgeFact, GuestFact, NodeFacts, StorageFact } from "./NodeFacts.js"
export {
  bridgeFindings,
  diskStorageFindings,
  downloadPrivileges,
  ImageSourceFact,
  memoryInsufficientHint,
  PreflightOptions,
  type PrivilegeRequirement,
  preflight,
  privilegeFindings,
  requiredPrivileges,
  reservableMemoryBytes,
  sizeFindings
} from "./Preflight.js"
export { FindingCode, PreflightFinding, PreflightReport, Severity } from "./PreflightFinding.js"
export { MemoryStepMiB, MinMemoryMiB, type NodeCapacity, type SizingRatios, sizeVm, VmSize } from "./Sizing.js"
export { KnownLocks, KnownQmpStatuses, VmFacts } from "./VmFacts.js"
export { InvalidInput, InvalidPolicy, InvalidRatio, VmHealthError } from "./VmHealthError.js"
export { VmRequest } from "./VmRequest.js"
