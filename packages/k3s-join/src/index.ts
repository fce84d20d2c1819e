/**
 * `@homelab/k3s-join`: join hosts to a k3s cluster over SSH — token, install, rejoin cleanup, membership and
 * readiness. Effect and Promise APIs.
 *
 * @since 0.1.0
 */
export {
  type ClusterNode,
  clusterVersionOf,
  compareVersions,
  decodeNode,
  decodeNodeList,
  type ExpectedMember,
  evaluateMembership,
  fromNodeJson,
  type Membership,
  NodeJson,
  NodeListJson,
  type NodeRoleLabel,
  type ReadyStatus
} from "./ClusterNode.js"
export {
  CHANNELS_URL,
  CONFIG_PATH,
  channelsCommand,
  checkFlags,
  configYaml,
  cordonCommand,
  dbInfoCommand,
  deleteNodeCommand,
  deleteNodeNoWaitCommand,
  deleteNodePasswordCommand,
  downloadScriptCommand,
  drainCommand,
  formatRecord,
  getNodeCommand,
  getNodesCommand,
  INSTALL_SCRIPT_PATH,
  INSTALL_SCRIPT_URL,
  type InstallRecord,
  type InstallSpec,
  installBinaryCommand,
  installCommand,
  isActiveCommand,
  journalCommand,
  K3S_BIN,
  kubectlCommand,
  LOCK_PATH,
  type LockedInstallOutput,
  type LockedInstallSpec,
  lockedInstallCommand,
  normalizeFlags,
  parseExecStart,
  parseLockedInstallOutput,
  parseRecord,
  parseReleaseCheck,
  RECORD_PATH,
  RELEASES_URL,
  type ReleaseStatus,
  type Role,
  readKubeconfigCommand,
  readTokenCommand,
  readUnitCommand,
  releaseCheckCommand,
  releaseFileUrl,
  restartHeldCommand,
  restartPendingPath,
  serverUrl,
  startCommand,
  tokenPaths,
  unitFileExistsCommand,
  unitName,
  versionCommand,
  waitNodeCommand,
  withoutTrace,
  writeRootFileCommand
} from "./InstallCommand.js"
export { checkTokenForRole, type JoinToken, parseJoinToken, scrubTokens } from "./JoinToken.js"
export {
  classifyJournal,
  classifyLine,
  type JournalClassification,
  type JournalFailure,
  journalLines,
  linesSinceUnitStart,
  newJournalLines
} from "./JournalClassifier.js"
export {
  type DrainOptions,
  type DrainResult,
  type FetchedKubeconfig,
  type FetchKubeconfigOptions,
  type InitClusterOptions,
  type InitClusterResult,
  type InstallOptions,
  type InstallResult,
  type JoinOutcome,
  K3sJoin,
  type K3sJoinShape,
  type RemoveServerOptions,
  type RemoveServerResult,
  type UpgradeOptions,
  type UpgradeResult,
  type WaitReadyOptions
} from "./K3sJoin.js"
export {
  BadToken,
  CaHashMismatch,
  ClusterUnavailable,
  ConfigMismatch,
  DrainFailed,
  DuplicateEtcdMember,
  IdentityMismatch,
  InstallFailed,
  InvalidOptions,
  K3sJoinError,
  K3sJoinErrorReason,
  KubeconfigInvalid,
  LockTimeout,
  NodePasswordRejected,
  NotReady,
  QuorumAtRisk,
  ReleaseUnavailable,
  RoleMismatch,
  SanMismatch,
  ServerUnreachable,
  Ssh,
  Timeout,
  TokenInvalid,
  TokenUnavailable,
  TooManyLearners,
  VersionRule
} from "./K3sJoinError.js"
export type {
  AirgapOptions,
  EnsureMemberOptions,
  JoinTimeouts,
  JoinTimings,
  K3sHost,
  K3sJoinEvent,
  K3sJoinOptions,
  K3sServer,
  MemberResult
} from "./K3sJoinOptions.js"
export { type KubeconfigSummary, mergeKubeconfig, rewriteKubeconfig, summarizeKubeconfig } from "./Kubeconfig.js"
export {
  desiredFlags,
  diffFlags,
  type Flag,
  type FlagsDiff,
  IMMUTABLE_FLAGS,
  immutableChanges,
  OMITTED,
  recordedWords,
  runningFlags,
  sameFlags,
  showFlag,
  withFlags
} from "./NodeFlags.js"
export {
  type CreateK3sJoinOptions,
  createK3sJoin,
  type HostInput,
  type K3sJoinClient,
  type PromiseEnsureMemberOptions,
  type PromiseInitClusterOptions,
  type PromiseInstallOptions,
  type PromiseJoinOutcome,
  type PromiseSshOptions
} from "./promise.js"
export {
  type ClusterFacts,
  decodeDbInfo,
  type EtcdMember,
  type MemberHealth,
  memberHealth,
  membersOfNode,
  nodeOfMember,
  type QuorumAction,
  type QuorumVerdict,
  quorumCheck
} from "./Quorum.js"
export {
  AGENT_ONLY_FLAGS,
  bareFlagName,
  flagsNotDefinedFor,
  onlyCommandOf,
  SERVER_ONLY_FLAGS,
  SERVER_ONLY_PREFIXES
} from "./RoleFlags.js"
export {
  checkUpgradeStep,
  decodeChannels,
  describeViolation,
  type K3sVersion,
  parseK3sVersion,
  planUpgrade,
  type ReleaseChannel,
  resolveChannel,
  skewStepViolation,
  skewViolations,
  type UpgradePlan,
  upgradeOrder,
  type VersionedNode,
  type VersionRuleViolation
} from "./Versions.js"
