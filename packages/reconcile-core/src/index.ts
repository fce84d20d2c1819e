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
