// biome-ignore-all lint/suspicious/noTemplateCurlyInString: this file deals with literal ${VAR} references
import { Effect } from "effect"
import type { ConfigError } from "../../src/config/ConfigError.js"
import type { ConfigIssue } from "../../src/config/ConfigIssue.js"
import type { HomelabConfig } from "../../src/config/HomelabConfig.js"
import { parseConfig } from "../../src/config/parseConfig.js"

export const secretValue = "9f1c2e4a-secret-token-value"

export const baseEnv: Record<string, string> = { PROXMOX_TOKEN_SECRET: secretValue }

/** A valid minimal document; tests append or replace sections. */
export const minimal = `proxmox:
  endpoint: https://pve1.lan
  auth:
    tokenId: root@pam!homelab
    secret: \${PROXMOX_TOKEN_SECRET}
image:
  url: https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img
nodes:
  - name: pve1
`

export const parseOk = (text: string, env: Record<string, string | undefined> = baseEnv) => parseConfig(text, { env })

export const parseErr = (
  text: string,
  env: Record<string, string | undefined> = baseEnv
): Effect.Effect<ConfigError, HomelabConfig> => Effect.flip(parseConfig(text, { env }))

export const issueAt = (error: ConfigError, path: string): ConfigIssue | undefined =>
  error.issues.find((issue) => issue.path === path)
