export { Admin, type AdminOps } from "./Admin.js"
export { type ApiRequest, type ApiResult, ApiRouter } from "./ApiRouter.js"
export { Auth, type AuthUser, ROLES } from "./Auth.js"
export {
  type ClusterCa,
  certFingerprint,
  generateClusterCa,
  generateNodeCert,
  generateSshKey,
  type NodeCert,
  type SshKeyPair
} from "./Certs.js"
export { SimClock } from "./Clock.js"
export { type CriticalPath, type CriticalStep, criticalPath } from "./CriticalPath.js"
export { demoScenario } from "./DemoScenario.js"
export { type Fault, Faults } from "./Faults.js"
export {
  type GuestCommand,
  type GuestCommandContext,
  type GuestCommandResult,
  GuestCommands,
  type GuestState,
  newGuestState
} from "./Guest.js"
export { GuestManager } from "./GuestManager.js"
export { ImageOrigin, syntheticSha256 } from "./ImageOrigin.js"
export type { ApiCall } from "./internal/Trace.js"
export { DEFAULT_PVE_VERSION } from "./internal/Version.js"
export { definedFlags as k3sDefinedFlags } from "./k3s/K3sFlags.js"
export { INSTALL_SCRIPT as K3S_INSTALL_SCRIPT, k3sBinary } from "./k3s/K3sOrigin.js"
export type { K3sEvent, K3sSnapshot } from "./k3s/K3sSim.js"
export { type LoopbackNet, reserveLoopbackNet } from "./LoopbackNet.js"
export { existingK3sServerVm, type LabOptions, labScenario } from "./labScenario.js"
export type { SimOperation } from "./Operations.js"
export { PveError } from "./PveError.js"
export {
  checkParameters,
  checkProp,
  checkReturns,
  keysOfTypetext,
  type PveEndpointSchema,
  type PveErrors,
  type PveSchemaProp,
  parsePropertyString as parsePveProperty,
  propertyFor,
  uncheckedFormats
} from "./PveSchema.js"
export {
  decodeScenario,
  type K3sSpec,
  parseScenario,
  parseSize,
  type Scenario,
  ScenarioSchema
} from "./Scenario.js"
export {
  type RequestLogEntry,
  type SimHandle,
  type SimInfo,
  type SimOptions,
  type SimRecord,
  type SimStateSnapshot,
  startSim,
  startSimPromise
} from "./Sim.js"
export { ScenarioInvalid, SimError, StartFailed } from "./SimError.js"
export { parseUpid, type Task } from "./Tasks.js"
