export {
  type Action,
  describeAction,
  type Finding,
  isDestructive,
  type JoinAction,
  type VmAction,
  type VmSpec
} from "./Action.js"
export {
  type ApplyEvent,
  type ApplyOptions,
  type ApplyOutcome,
  type ApplyResult,
  apply
} from "./Apply.js"
export { type ApplyFinished, applyStream } from "./applyStream.js"
export {
  ConfigError,
  ConfigInvalid,
  ConfigMissingVariables,
  ConfigYamlError,
  formatConfigIssues
} from "./config/ConfigError.js"
export { ConfigIssue, type ConfigIssueCode } from "./config/ConfigIssue.js"
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
  TlsSettings,
  VmPlan,
  VmSettings
} from "./config/HomelabConfig.js"
export { type HomelabConfigFile, HomelabConfigSchema } from "./config/HomelabConfigSchema.js"
export { type ImportEnvResult, importEnv } from "./config/importEnv.js"
export { type ParseConfigOptions, parseConfig } from "./config/parseConfig.js"
export { nodeSshTarget, proxmoxClientConfig, type ResolvedConnections, sshOptions } from "./connections.js"
export type {
  Desired,
  DesiredCicustom,
  DesiredCloudInit,
  DesiredImage,
  DesiredK3s,
  DesiredNode,
  DesiredVm
} from "./Desired.js"
export {
  cicustomProperty,
  DefaultVmidRange,
  desiredFromConfig,
  diskSizeGiB,
  healthPolicyFromConfig,
  PendingTag
} from "./desiredFromConfig.js"
export { observe } from "./Observe.js"
export type {
  NodeDetails,
  Observed,
  ObservedBridge,
  ObservedNode,
  ObservedStorage,
  ObservedVm,
  VmDetails
} from "./Observed.js"
export { type DetailsNeeded, detailsNeeded, imageVolid, type Plan, type PlanOptions, plan, vmSpec } from "./Plan.js"
export { type K3sCandidate, type K3sPlan, planK3s, RejoinTag } from "./PlanK3s.js"
export { applyK3s, planK3sPhase } from "./ReconcileK3s.js"
export { vmidCandidates } from "./VmidCandidates.js"
