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
  CONFIG_PATH,
  checkFlags,
  configYaml,
  deleteNodeCommand,
  deleteNodePasswordCommand,
  downloadScriptCommand,
  getNodeCommand,
  getNodesCommand,
  INSTALL_SCRIPT_PATH,
  INSTALL_SCRIPT_URL,
  type InstallSpec,
  installBinaryCommand,
  installCommand,
  isActiveCommand,
  journalCommand,
  K3S_BIN,
  kubectlCommand,
  normalizeFlags,
  type Role,
  readTokenCommand,
  serverUrl,
  startCommand,
  tokenPaths,
  unitName,
  versionCommand,
  writeRootFileCommand
} from "./InstallCommand.js"
export { checkTokenForRole, type JoinToken, parseJoinToken, scrubTokens } from "./JoinToken.js"
export {
  classifyJournal,
  classifyLine,
  type JournalClassification,
  type JournalFailure,
  journalLines,
  newJournalLines
} from "./JournalClassifier.js"
export {
  type InstallOptions,
  type InstallResult,
  type JoinOutcome,
  K3sJoin,
  type K3sJoinShape,
  type WaitReadyOptions
} from "./K3sJoin.js"
export {
  BadToken,
  CaHashMismatch,
  ClusterUnavailable,
  ConfigMismatch,
  DuplicateEtcdMember,
  IdentityMismatch,
  InstallFailed,
  InvalidOptions,
  K3sJoinError,
  K3sJoinErrorReason,
  NodePasswordRejected,
  NotReady,
  RoleMismatch,
  SanMismatch,
  ServerUnreachable,
  Ssh,
  Timeout,
  TokenInvalid,
  TokenUnavailable,
  TooManyLearners
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
export {
  type CreateK3sJoinOptions,
  createK3sJoin,
  type HostInput,
  type K3sJoinClient,
  type PromiseEnsureMemberOptions,
  type PromiseJoinOutcome,
  type PromiseSshOptions
} from "./promise.js"
