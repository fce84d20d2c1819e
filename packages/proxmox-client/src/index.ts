/**
 * `@homelab/proxmox-client`: typed Proxmox VE operations over REST (proxmox-api) with a per-node SSH (pvesh) fallback.
 *
 * @since 0.1.0
 */

export { ClusterNode, type ClusterResources, ClusterStorage } from "./ClusterResources.js"
export { type ClusterStatus, ClusterStatusCluster, ClusterStatusNode } from "./ClusterStatus.js"
export { CpuModel } from "./CpuModel.js"
export { type FallbackTransport, makeFallbackTransport, type TransportKind } from "./FallbackTransport.js"
export {
  discoverIpv4,
  ExecStatus,
  GuestInterface,
  GuestIpAddress,
  type WaitForIpOptions,
  waitForIpv4With
} from "./GuestAgent.js"
export { type Bridge, bridgesOf, NetworkInterface } from "./Network.js"
export { NodeStatus, NodeSummary, Permissions, PveVersion } from "./Node.js"
export { makeProxmoxApi, type PowerOptions, ProxmoxApi, type ProxmoxApiShape } from "./ProxmoxApi.js"
export {
  type NodeEndpoint,
  type ProxmoxAuth,
  ProxmoxClientConfig,
  type ProxmoxClientConfigShape,
  type ProxmoxClientEvent,
  type ProxmoxTimeouts,
  type TlsOptions
} from "./ProxmoxClientConfig.js"
export {
  AlreadyExists,
  ApiError,
  AuthRejected,
  InvalidParameter,
  isFallbackReason,
  isTransientReason,
  Locked,
  NotFound,
  PermissionDenied,
  ProxmoxError,
  ProxmoxErrorReason,
  ProxyError,
  TaskFailed,
  TlsUntrusted,
  UnexpectedResponse,
  Unreachable
} from "./ProxmoxError.js"
export {
  nodeOfPath,
  type PveParam,
  type PveRequest,
  PveTransport,
  type PveTransportShape,
  type PveUploadRequest
} from "./PveTransport.js"
export { makeRestTransport } from "./RestTransport.js"
export { makeSshTransport, parsePveshOutput, pveshCommand } from "./SshTransport.js"
export {
  type ChecksumAlgorithm,
  type DownloadUrlOptions,
  Storage,
  StorageContent,
  type UploadFileOptions,
  VolumeInfo
} from "./Storage.js"
export {
  makeWaitForTask,
  POLL_FIRST,
  parseUpid,
  type TaskProgress,
  type TaskResult,
  TaskStatus,
  TaskSummary,
  taskPollSchedule,
  taskWarnings,
  Upid,
  type UpidParts,
  type WaitOptions
} from "./Task.js"
export { makeTlsTrust, normalizeFingerprint, probeFingerprint, type TlsTrust } from "./TlsTrust.js"
export {
  type CloudInitChange,
  CloudInitEntry,
  ClusterVm,
  type CreateVmOptions,
  cloudInitChangesOf,
  createVmParams,
  type DiskSpec,
  diskValue,
  encodeSshKeys,
  type IpConfig,
  ipConfigValue,
  macOfNet,
  type NetSpec,
  netValue,
  VmConfig,
  VmId,
  type VmPending,
  VmPendingEntry,
  VmStatus,
  vmPendingOf
} from "./Vm.js"
