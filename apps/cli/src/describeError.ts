import type { ProxmoxError } from "@homelab/proxmox-client"
import { type Desired, describeFailure, type SavedPlanError } from "@homelab/reconcile-core"
import type { SshError } from "@homelab/ssh"
import * as Effect from "effect/Effect"
import { CommandFailed } from "./CommandFailed.js"
import { ExitCode } from "./ExitCode.js"

/**
 * The one mapping from library errors to what a person reads and the exit code a script sees. A Proxmox error names
 * the node, where each transport went (API URL, SSH host:port) and what each said, with a hint about the thing that
 * failed (the endpoint, the SSH key, the token); `desired` supplies the endpoints.
 */
export const describeProxmoxError = (error: ProxmoxError, desired?: Desired): CommandFailed => {
  const node = error.node ?? desired?.nodes[0]?.name ?? "?"
  const endpoints = desired?.nodes.find((n) => n.name === node)?.endpoints
  const what = error.operation === "clusterResources" ? "read the cluster's state" : error.operation
  const described = describeFailure(node, what, error, endpoints)
  const whole =
    error.operation === "clusterResources" && desired !== undefined && desired.nodes.length > 1
      ? " (every configured node was tried)"
      : ""
  return new CommandFailed({
    userMessage: `Proxmox: ${described.message}${whole}`,
    exitCode: ExitCode.Proxmox,
    hint: described.hint,
    ...(error.node !== undefined ? { node: error.node } : {})
  })
}

export const describeSshError = (error: SshError): CommandFailed =>
  new CommandFailed({ userMessage: `SSH: ${error.message}`, exitCode: ExitCode.Proxmox })

/**
 * A saved plan that is not applied: another homelab.yaml or a lab that moved exits 9 (make the plan again); a file
 * that is no saved plan (or of another format version) is a usage error.
 */
export const describeSavedPlanError = (error: SavedPlanError): CommandFailed =>
  error.reason._tag === "SavedPlanUnreadable"
    ? new CommandFailed({
        userMessage: error.message,
        exitCode: ExitCode.Usage,
        code: "plan-unreadable",
        hint: "pass a file written by `homelab plan --out FILE`"
      })
    : new CommandFailed({
        userMessage: error.message,
        exitCode: ExitCode.PlanStale,
        hint: `make the plan again (\`homelab plan --out ${error.source}\`), review it, and apply that`
      })

/** Ends every command: library errors become `CommandFailed`; anything else is a bug (exit 1 with its report). */
export const toCommandFailed = <A, R>(
  effect: Effect.Effect<A, ProxmoxError | SshError | SavedPlanError | CommandFailed, R>,
  desired?: Desired
): Effect.Effect<A, CommandFailed, R> =>
  effect.pipe(
    Effect.catchTags({
      ProxmoxError: (e: ProxmoxError) => Effect.fail(describeProxmoxError(e, desired)),
      SshError: (e: SshError) => Effect.fail(describeSshError(e)),
      SavedPlanError: (e: SavedPlanError) => Effect.fail(describeSavedPlanError(e))
    })
  )
