import { type Action, describeAction, type Finding } from "./Action.js"
import type { Observed, PveQuorumLoss } from "./Observed.js"

/**
 * The actions PVE refuses while the cluster has no quorum: each writes (or locks and writes) a guest config in the
 * read-only /etc/pve. Creates and starts fail with `cluster not ready - no quorum?` (`check_cfs_quorum`), updates,
 * resizes and destroys on their config write. Downloads to a storage and image deletes are the node's own: they run.
 */
const writesGuestConfig = (action: Action): boolean => {
  switch (action._tag) {
    case "CreateVm":
    case "RecreateVm":
    case "FinishVm":
    case "AwaitCreate":
    case "StartVm":
    case "ResumeVm":
    case "UpdateVm":
    case "RestartVm":
    case "DestroyVm":
    case "UncordonK3s":
      return true
    default:
      return false
  }
}

/** What the cluster's state is, in one sentence: which nodes are up and which are not. */
export const noQuorumMessage = (loss: PveQuorumLoss): string =>
  `the Proxmox cluster has no quorum: ${loss.online.length} of ${loss.online.length + loss.offline.length} nodes online (${[
    loss.online.length === 0 ? undefined : `online: ${loss.online.join(", ")}`,
    loss.offline.length === 0 ? undefined : `offline: ${loss.offline.join(", ")}`
  ]
    .filter((s) => s !== undefined)
    .join("; ")}); corosync needs a majority of the expected votes (one per node, one for a QDevice), and until it ` +
  "has them /etc/pve is read-only: no VM can be created, changed, started or destroyed"

/** How to get quorum back: the nodes first; `pvecm expected 1` only as the last resort it is. */
export const noQuorumHint = (loss: PveQuorumLoss): string => {
  const survivor = loss.online[0] ?? "the node that is up"
  return (
    `bring ${loss.offline.length === 0 ? "the other nodes" : loss.offline.join(", ")} back (power, network, corosync: \`pvecm status\` on ${survivor}) and run again; ` +
    `only as a last resort, when they cannot come back soon, run \`pvecm expected ${Math.max(1, loss.online.length)}\` on ${survivor}: ` +
    "it makes /etc/pve writable there alone, and a node that comes back with changes of its own can leave the cluster's " +
    "configuration split (never while the other nodes may be running)"
  )
}

/**
 * A plan for a cluster without quorum (`observed.pveQuorum`): its guest config writes are held back (with the actions
 * that wait for them), each node they were for blocked with the reason; the cluster's state and the way back said
 * once, on the first of them. Reads, and what the plan reports, stay as they are. A plan that needs no write says it
 * as information.
 */
export const holdWithoutQuorum = <
  P extends { readonly actions: ReadonlyArray<Action>; readonly findings: ReadonlyArray<Finding> }
>(
  planned: P,
  observed: Observed
): P => {
  const loss = observed.pveQuorum
  if (loss === undefined) return planned
  const held = new Set<string>()
  let grew = true
  while (grew) {
    grew = false
    for (const a of planned.actions)
      if (!held.has(a.id) && (writesGuestConfig(a) || a.after.some((id) => held.has(id)))) {
        held.add(a.id)
        grew = true
      }
  }
  const heldActions = planned.actions.filter((a) => held.has(a.id))
  const nodes = [...new Set(heldActions.map((a) => a.node))]
  const message = noQuorumMessage(loss)
  const hint = noQuorumHint(loss)
  const findings: Array<Finding> =
    nodes.length === 0
      ? [{ code: "pve.no-quorum", effect: "info", layer: "node", node: loss.online[0] ?? "", message, hint }]
      : nodes.map((node, i) => {
          const what = heldActions.filter((a) => a.node === node).map(describeAction)
          return {
            code: "pve.no-quorum",
            effect: "blocked",
            layer: "node",
            node,
            message:
              i === 0
                ? `${message}. Not done until it has: ${what.join("; ")}`
                : `not done until the Proxmox cluster has quorum (see above): ${what.join("; ")}`,
            hint: i === 0 ? hint : undefined
          }
        })
  return {
    ...planned,
    actions: planned.actions.filter((a) => !held.has(a.id)),
    findings: [...findings, ...planned.findings]
  }
}
