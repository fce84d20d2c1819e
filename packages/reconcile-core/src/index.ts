export {
  type Action,
  type AwaitCreate,
  type CreateVm,
  type DeleteImage,
  type DestroyVm,
  type DownloadImage,
  describeAction,
  type Finding,
  type FinishVm,
  type InitK3s,
  isDestructive,
  type JoinK3s,
  type K3sAction,
  type K3sVia,
  type Layer,
  layerOf,
  type RecreateVm,
  type RestartVm,
  type ResumeVm,
  type ReturningMember,
  type StartK3s,
  type StartVm,
  type UncordonK3s,
  type UpdateVm,
  type UpgradeK3s,
  type VmAction,
  type VmSpec,
  vmOf
} from "./Action.js"
export { type Adoption, type AdoptionPlan, type AdoptOutcome, adopt, planAdoption } from "./Adopt.js"
export {
  type AdoptCandidate,
  type AdoptOptions,
  type AdoptRefusal,
  type AdoptSelection,
  selectAdoptions
} from "./AdoptPlan.js"
export { type ApplyEvent, type ApplyOptions, apply, type WaitProgress } from "./Apply.js"
export { cicustomFindings, cicustomVolumes } from "./CicustomPreflight.js"
export {
  type ActionOutcome,
  applyVerdict,
  assess,
  type Convergence,
  type NodeConvergence,
  planVerdict,
  type Reason,
  settle
} from "./Convergence.js"
export {
  ConfigError,
  ConfigInvalid,
  ConfigMissingVariables,
  ConfigYamlError,
  formatConfigIssues
} from "./config/ConfigError.js"
export { ConfigIssue, type ConfigIssueCode } from "./config/ConfigIssue.js"
export { ConfigWarning, formatConfigWarning } from "./config/ConfigWarning.js"
export { configJsonSchema } from "./config/configJsonSchema.js"
export type {
  ChecksumAlgorithm,
  CicustomSettings,
  HealthSettings,
  HomelabConfig,
  ImageSettings,
  K3sRole,
  K3sSettings,
  NodeSettings,
  ProxmoxEndpoint,
  ProxmoxSettings,
  SafetyLimits,
  SshSettings,
  TimeoutSettings,
  TlsSettings,
  VmPlan,
  VmSettings
} from "./config/HomelabConfig.js"
export { type HomelabConfigFile, HomelabConfigSchema } from "./config/HomelabConfigSchema.js"
export { type ImportEnvResult, importEnv } from "./config/importEnv.js"
export { closestName } from "./config/internal/suggest.js"
export {
  type ParseConfigOptions,
  type ParsedConfig,
  parseConfig,
  parseConfigWithWarnings
} from "./config/parseConfig.js"
export { nodeSshTarget, proxmoxClientConfig, type ResolvedConnections, sshOptions } from "./connections.js"
export type {
  Desired,
  DesiredCicustom,
  DesiredCloudInit,
  DesiredImage,
  DesiredK3s,
  DesiredNode,
  DesiredVm,
  NodeEndpoints
} from "./Desired.js"
export { type DestroyRunOptions, destroy, destroyStream } from "./Destroy.js"
export { describeFailure, inWords } from "./describeFailure.js"
export {
  cicustomProperty,
  DefaultVmidRange,
  desiredFromConfig,
  diskSizeGiB,
  healthPolicyFromConfig,
  PendingTag
} from "./desiredFromConfig.js"
export { type GuestRef, guestRefs, guestUserOf, readGuestUser } from "./GuestUser.js"
export {
  CloudInitTag,
  DestroyTag,
  RebuildTag,
  RejoinTag,
  RestartTag,
  tagList,
  UpgradeKeepCordonTag,
  UpgradeTag
} from "./Marks.js"
export {
  type MembershipAtEndOptions,
  type MembershipContext,
  type MembershipNow,
  membershipAtEnd,
  recheckMembership
} from "./MembershipAtEnd.js"
export { type ObserveOptions, observe } from "./Observe.js"
export type {
  CreateTask,
  ExistingK3s,
  K3sFacts,
  NodeDetails,
  NodeProblem,
  Observed,
  ObservedBridge,
  ObservedNode,
  ObservedStorage,
  ObservedVm,
  RemovedMember,
  RunningDownload,
  StoppedK3s,
  VmDetails
} from "./Observed.js"
export { type K3sObservationInputs, observeK3s } from "./ObserveK3s.js"
export { findOrphans, type Orphan, planOrphans } from "./Orphans.js"
export {
  isPasswordMark,
  type PasswordMark,
  PasswordMarkPrefix,
  type PasswordMarkState,
  passwordMark,
  passwordMarkKid,
  passwordMarkState
} from "./PasswordMark.js"
export {
  actionId,
  type DetailsNeeded,
  detailsNeeded,
  imageVolid,
  type Plan,
  type PlanOptions,
  plan,
  vmSpec
} from "./Plan.js"
export { type ClusterContext, type ClusterSummary, clusterContext, describeCluster } from "./PlanCluster.js"
export { type DestroyOptions, planDestroy } from "./PlanDestroy.js"
export { type DriftInput, type DriftStep, driftActionId, planDrift } from "./PlanDrift.js"
export { type K3sCandidate, type K3sStep, planMembership } from "./PlanK3s.js"
export {
  planUpgrades,
  type Rollout,
  targetVersion,
  type UpgradeCandidate,
  type UpgradeInputs,
  upgradeId
} from "./PlanUpgrade.js"
export {
  checkQuorumNow,
  type GuardedServer,
  oneAtATime,
  type QuorumAtEnd,
  quorumAtEnd,
  quorumFinding,
  type RefusalContext,
  recheckQuorum
} from "./QuorumGuard.js"
export {
  type ReconcileEvent,
  type ReconcileOptions,
  type ReconcileReport,
  reconcile,
  reconcileStream
} from "./Reconcile.js"
export {
  actionChanges,
  actionFingerprint,
  checkSavedConfig,
  configSha256,
  factChanges,
  planFacts,
  readSavedPlan,
  type SavedAction,
  SavedPlan,
  SavedPlanError,
  type SavedPlanFacts,
  SavedPlanFormat,
  SavedPlanOtherConfig,
  SavedPlanStale,
  SavedPlanUnreadable,
  SavedPlanVersion,
  savedPlanChanges,
  savePlan
} from "./SavedPlan.js"
export { type StatusReport, status, type VmStatusRow } from "./Status.js"
export { DefaultTimeouts, drainTimeout, type Timeouts } from "./Timeouts.js"
export {
  type ConfigEdit,
  type DriftEffect,
  type DriftRefusal,
  type DriftTarget,
  describeChange,
  driveSizeBytes,
  type FieldChange,
  formatSize,
  needsRestart,
  type VmDrift,
  vmDrift
} from "./VmDrift.js"
export { vmidCandidates } from "./VmidCandidates.js"
