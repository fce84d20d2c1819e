/**
 * The k3s flags homelab.yaml gives a VM of each role: `k3s.installFlags` (every VM), then `k3s.serverFlags` for a
 * server or `k3s.agentFlags` for an agent. What an install puts on the node's command line, and what its Node's
 * `k3s.io/node-args` are compared with (an agent's record carries only agent flags). Pure.
 */
import type { DesiredK3s } from "./Desired.js"

type Role = "server" | "agent"

/** The flags a VM of `role` is installed with: `installFlags`, then its role's list. */
export const k3sFlagsFor = (k3s: DesiredK3s, role: Role): ReadonlyArray<string> => [
  ...k3s.installFlags,
  ...((role === "server" ? k3s.serverFlags : k3s.agentFlags) ?? [])
]

/**
 * Where a role's flags come from, for messages: the lists of homelab.yaml that give it any (`k3s.installFlags`,
 * `k3s.serverFlags`, `k3s.installFlags + k3s.agentFlags`); `k3s.installFlags` when none does.
 */
export const k3sFlagSource = (k3s: DesiredK3s, role: Role): string => {
  const own = role === "server" ? "serverFlags" : "agentFlags"
  const lists = [
    ...(k3s.installFlags.length > 0 ? ["k3s.installFlags"] : []),
    ...(((role === "server" ? k3s.serverFlags : k3s.agentFlags) ?? []).length > 0 ? [`k3s.${own}`] : [])
  ]
  return lists.length === 0 ? "k3s.installFlags" : lists.join(" + ")
}
