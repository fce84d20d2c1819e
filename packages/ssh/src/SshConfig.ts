import * as Context from "effect/Context"
import type { SshOptions } from "./SshOptions.js"

/**
 * The global options of {@link SshClient} as a service, for applications that build them from configuration.
 * `SshClient.layerWith(options)` provides it directly.
 *
 * @since 0.1.0
 * @category services
 */
export class SshConfig extends Context.Service<SshConfig, SshOptions>()("@homelab/ssh/SshConfig") {}
