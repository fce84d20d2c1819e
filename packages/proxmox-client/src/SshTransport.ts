import { SshClient, type SshError, type SshTarget, shellQuote } from "@homelab/ssh"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { classifyPveshStderr } from "./internal/classify.js"
import { isCryptHash, sha512Crypt } from "./internal/sha512Crypt.js"
import { millis, ProxmoxClientConfig, type ProxmoxClientConfigShape } from "./ProxmoxClientConfig.js"
import { AuthRejected, ProxmoxError, type ProxmoxErrorReason, UnexpectedResponse, Unreachable } from "./ProxmoxError.js"
import { nodeOfPath, type PveParam, type PveRequest, PveTransport } from "./PveTransport.js"

const VERB = { GET: "get", POST: "create", PUT: "set", DELETE: "delete" } as const

/**
 * A secret on a pvesh command line would be visible in the PVE host's process list. `cipassword` is sent as a
 * SHA-512-crypt hash instead (PVE stores a hash as it is; it would hash cleartext itself anyway).
 */
const secretArgument = (key: string, value: string): string => {
  if (key === "cipassword") return isCryptHash(value) ? value : sha512Crypt(value)
  throw new Error(`refusing to put the secret parameter '${key}' on a pvesh command line`)
}

/**
 * The `pvesh` command line for a request (every value shell-quoted). `cipassword` goes as a crypt hash; the command
 * is never logged nor put into errors by this transport.
 *
 * @since 0.1.0
 * @category utilities
 */
export const pveshCommand = (request: PveRequest): string => {
  const words = ["pvesh", VERB[request.method], shellQuote(request.path)]
  for (const [k, v] of Object.entries(request.params ?? {}) as Array<[string, PveParam]>) {
    if (v === undefined) continue
    const key = `--${k}`
    if (Redacted.isRedacted(v)) words.push(key, shellQuote(secretArgument(k, Redacted.value(v))))
    else if (typeof v === "boolean") words.push(key, v ? "1" : "0")
    else if (typeof v === "number") words.push(key, String(v))
    else if (typeof v === "string") words.push(key, shellQuote(v))
    else for (const e of v) words.push(key, shellQuote(e))
  }
  words.push("--output-format", "json")
  return words.join(" ")
}

/**
 * Parses pvesh's standard output: the LAST non-empty line is the JSON result (task log lines of synchronous workers
 * come before it); no output means `null`.
 *
 * @since 0.1.0
 * @category utilities
 */
export const parsePveshOutput = (
  stdout: string
): { readonly ok: true; readonly data: unknown } | { readonly ok: false } => {
  const lines = stdout.split("\n").filter((l) => l.trim() !== "")
  const last = lines[lines.length - 1]
  if (last === undefined) return { ok: true, data: null }
  try {
    return { ok: true, data: JSON.parse(last) as unknown }
  } catch {
    return { ok: false }
  }
}

/** Maps an `SshError` to a reason (transport `ssh`). */
export const reasonOfSshError = (error: SshError): ProxmoxErrorReason => {
  const r = error.reason
  switch (r._tag) {
    case "Unreachable": {
      const kind =
        r.kind === "Dns" ? "dns" : r.kind === "Refused" ? "refused" : r.kind === "Timeout" ? "timeout" : "reset"
      return new Unreachable({ kind, transport: "ssh", code: `SSH_${r.kind.toUpperCase()}`, detail: r.detail })
    }
    case "Timeout":
      return new Unreachable({ kind: "timeout", transport: "ssh", code: "SSH_TIMEOUT", detail: r.message })
    case "Disconnected":
      return new Unreachable({ kind: "reset", transport: "ssh", code: "SSH_DISCONNECTED", detail: r.detail })
    case "AuthRejected":
    case "HostKeyMismatch":
    case "HostKeyRevoked":
    case "HostKeyUnknown":
      return new AuthRejected({ detail: `ssh: ${r.message}`, transport: "ssh" })
    default:
      return new UnexpectedResponse({ expected: "a pvesh result", detail: `ssh: ${r.message}` })
  }
}

/**
 * The SSH target used for a node: its own, else the default node's (pvesh there forwards to the node).
 *
 * @internal
 */
export const sshTargetFor = (config: ProxmoxClientConfigShape, node: string | undefined): SshTarget | undefined => {
  const own = node === undefined ? undefined : config.nodes.find((n) => n.name === node)?.ssh
  if (own !== undefined) return own
  const def = config.defaultNode ?? config.nodes[0]?.name
  return config.nodes.find((n) => n.name === def)?.ssh
}

/**
 * A `PveTransport` that runs `pvesh <get|create|set|delete> PATH --k v … --output-format json` as root over SSH
 * (one pooled connection per node, through `@homelab/ssh`). A failed worker still exits 0 and prints its UPID last:
 * callers wait on the UPID's status like over REST.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSshTransport: Effect.Effect<PveTransport["Service"], never, ProxmoxClientConfig | SshClient> =
  Effect.gen(function* () {
    const config = yield* ProxmoxClientConfig
    const ssh = yield* SshClient
    const timeout = millis(config.timeouts?.ssh, 600_000)
    const call = (request: PveRequest): Effect.Effect<unknown, ProxmoxError> => {
      const node = nodeOfPath(request.path) ?? request.via ?? config.defaultNode ?? config.nodes[0]?.name
      const operation = `${request.method} ${request.path}`
      const fail = (reason: ProxmoxErrorReason) =>
        Effect.fail(new ProxmoxError({ operation, ...(node !== undefined ? { node } : {}), reason }))
      const target = sshTargetFor(config, node)
      if (target === undefined) {
        return fail(
          new UnexpectedResponse({ expected: "an SSH target for the node", detail: "no ssh configured for this node" })
        )
      }
      return Effect.logDebug(`proxmox: ssh pvesh ${request.method} ${request.path}`).pipe(
        Effect.andThen(ssh.exec(target, pveshCommand(request), { timeout })),
        Effect.catch((error) => fail(reasonOfSshError(error))),
        Effect.flatMap((result) => {
          if (result.exitCode !== 0) return fail(classifyPveshStderr(result.stderr, Object.keys(request.params ?? {})))
          const parsed = parsePveshOutput(result.stdout)
          if (!parsed.ok) {
            const last = result.stdout.trim().split("\n").pop() ?? ""
            return fail(
              new UnexpectedResponse({ expected: "JSON on the last line of pvesh output", detail: last.slice(0, 300) })
            )
          }
          return Effect.succeed(parsed.data)
        })
      )
    }
    return PveTransport.of({ call })
  })
