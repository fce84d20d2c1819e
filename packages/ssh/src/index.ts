/**
 * `@homelab/ssh`: run commands on remote hosts over SSH as Effects.
 *
 * @since 0.1.0
 */
export { createSshClient, type PromiseSshClient } from "./createSshClient.js"
export type { ExecChunk, ExecOptions, ExecResult, ExecStreamOptions, UploadOptions } from "./ExecOptions.js"
export { fingerprintOf, keyTypeOf } from "./fingerprintOf.js"
export * as KnownHosts from "./KnownHosts.js"
export { SshClient, type SshClientShape } from "./SshClient.js"
export { SshConfig } from "./SshConfig.js"
export {
  AuthRejected,
  ChannelFailed,
  CommandFailed,
  Disconnected,
  HostKeyMismatch,
  HostKeyRevoked,
  HostKeyUnknown,
  LocalFileFailed,
  SftpFailed,
  SshError,
  SshErrorReason,
  Timeout,
  Unreachable
} from "./SshError.js"
export type { HostKeyMode, SshAuth, SshEvent, SshOptions, SshTarget } from "./SshOptions.js"
export { shellCommand, shellQuote } from "./shellQuote.js"
