import type { ClusterNode } from "@homelab/k3s-join"
import type { Action, Finding, K3sVia, RestartVm, UncordonK3s } from "./Action.js"
import type { Desired } from "./Desired.js"
import { DestroyTag, RestartTag, UpgradeKeepCordonTag, UpgradeTag } from "./Marks.js"
import type { Observed } from "./Observed.js"

/**
 * What a VM of ours says about its k3s Node's cordon: the marks a run of ours left on it (`homelab-restart`,
 * `homelab-upgrade`, `homelab-destroy`), and whether the Node is cordoned now (`spec.unschedulable`). A cordoned Node without either
 * mark was cordoned by someone else, and homelab leaves it so — also when an upgrade of ours is under way on it
 * (`homelab-upgrade-keep-cordon`: it was cordoned before that upgrade began).
 */
export interface CordonFacts {
  /** An earlier run's rolling restart drained the Node and did not finish. */
  readonly restart: boolean
  /** An earlier run's upgrade cordoned the Node and did not finish (`planUpgrades` resumes it). */
  readonly upgrade: boolean
  /**
   * An earlier run's upgrade of a Node cordoned before it began did not finish (`homelab-upgrade-keep-cordon`):
   * `planUpgrades` resumes it, and the cordon is not ours.
   */
  readonly upgradeKeepCordon: boolean
  /** An earlier `destroy` (or `--prune`) cordoned the Node and stopped short of destroying the VM. */
  readonly destroy: boolean
  readonly cordoned: boolean
}

/** The cordon facts of the VM named `name` on `node` (none when it is not there once, or not ours). */
export const cordonFacts = (observed: Observed, name: string, node: string, ownershipTag: string): CordonFacts => {
  const found = observed.vms.filter((vm) => vm.name === name)
  const vm = found.length === 1 ? found[0] : undefined
  const tags = vm === undefined || vm.node !== node ? [] : (observed.vmDetails.get(vm.vmid)?.tags ?? vm.tags)
  const ours = tags.includes(ownershipTag)
  const k3sNode = observed.k3s?._tag === "Nodes" ? observed.k3s.nodes.find((n) => n.name === name) : undefined
  return {
    restart: ours && tags.includes(RestartTag),
    upgrade: ours && tags.includes(UpgradeTag),
    upgradeKeepCordon: ours && tags.includes(UpgradeKeepCordonTag),
    destroy: ours && tags.includes(DestroyTag),
    cordoned: k3sNode?.unschedulable === true
  }
}

/** Action id of the end of an unfinished restart. */
export const uncordonId = (node: string, vm: string) => `${node}:uncordon:${vm}`

/**
 * The end of an earlier run's restart of a VM that keeps its Node, or of a teardown that stopped short of destroying a
 * VM homelab.yaml still asks for (`mark`: which of the two marks it carries): an `UncordonK3s`. `join`: the
 * `JoinK3s` of the VM that makes its Node Ready first (after a start, or for a NotReady Node); without one the Node is
 * a Ready member.
 */
export const finishRestart = (input: {
  readonly node: string
  readonly vm: string
  readonly vmid: number
  readonly role: "server" | "agent"
  readonly cordoned: boolean
  readonly join?: string | undefined
  readonly via: K3sVia | undefined
  /** The VM's IP as observed (undefined: not known yet, a VM this run starts). */
  readonly ip?: string | undefined
  readonly mark?: typeof RestartTag | typeof DestroyTag | undefined
}): UncordonK3s => {
  const mark = input.mark ?? RestartTag
  const state = !input.cordoned
    ? "its k3s Node is not cordoned; only the mark is left to clear"
    : input.join === undefined
      ? "its k3s Node is Ready but still cordoned"
      : "its k3s Node is still cordoned: uncordoned once the VM runs and the Node is Ready again"
  return {
    _tag: "UncordonK3s",
    id: uncordonId(input.node, input.vm),
    node: input.node,
    after: input.join === undefined ? [] : [input.join],
    exclusive: "vm-restart",
    vm: input.vm,
    vmid: input.vmid,
    role: input.role,
    cordoned: input.cordoned,
    via: input.via,
    ...(input.ip !== undefined ? { ip: input.ip } : {}),
    ...(mark === DestroyTag ? { mark } : {}),
    reason:
      mark === DestroyTag
        ? `an earlier teardown of ${input.vm} stopped before destroying it (it carries '${DestroyTag}'), and homelab.yaml still asks for it: ${state}`
        : `an earlier run's restart of ${input.vm} did not finish (it carries '${RestartTag}'): ${state}`
  }
}

/** A cordoned Node without a mark of ours: reported (`info`: it does not keep the node from converging), left so. */
export const cordonedFinding = (node: string, vm: string, vmid: number): Finding => ({
  code: "k3s.cordoned",
  effect: "info",
  layer: "k3s",
  node,
  vm,
  vmid,
  message: `k3s Node ${vm} is cordoned (SchedulingDisabled) and no run of homelab marked it so: left cordoned`,
  hint: `\`kubectl uncordon ${vm}\` once whoever cordoned it is done`
})

/**
 * The restart rollout, appended to `actions`: one VM out of service at a time, each after the previous one — and the
 * in-place update of a VM that needs a restart waits for the previous restart too — so that a failure of this run's
 * restarts stops the rollout and leaves the rest untouched. The restarts an earlier run left unfinished come first:
 * their Nodes are out of service already. The rest goes on after them however they end (`afterSettled`): such a VM
 * is out of service whether or not this run brings it back, so waiting for it keeps nothing in service, and a VM whose
 * restart cannot be finished (run after run) then fails alone, named with its reason and fix, instead of holding every
 * other VM's change back on every run. One that waits for its VM's join is not chained (a join may wait for server
 * upgrades, which wait for the server restarts: chaining it would make a cycle); it runs as soon as its join is done.
 */
export const chainRestarts = (
  actions: Array<Action>,
  finishes: ReadonlyArray<UncordonK3s>,
  restarts: ReadonlyArray<RestartVm>
): void => {
  actions.push(...finishes.filter((f) => f.after.length > 0))
  let previous: Action | undefined
  for (const step of [...finishes.filter((f) => f.after.length === 0), ...restarts]) {
    if (previous !== undefined) {
      const before = previous
      /** After `before`: an earlier run's unfinished restart only ordered, one of this run's as a dependency. */
      const chained = <A extends Action>(a: A): A =>
        before._tag === "UncordonK3s"
          ? { ...a, afterSettled: [...(a.afterSettled ?? []), before.id] }
          : { ...a, after: [...a.after, before.id] }
      if (step._tag === "RestartVm") {
        const update = actions.findIndex((a) => a._tag === "UpdateVm" && step.after.includes(a.id))
        const found = actions[update]
        if (found !== undefined) actions[update] = chained(found)
      }
      actions.push(chained(step))
    } else actions.push(step)
    previous = step
  }
}

/**
 * The refusal of a rolling restart homelab cannot make safely (`k3s.restart-unknown`, blocked): with `k3s:`, a VM whose
 * membership cannot be read — the cluster does not answer (`k3s.unavailable`), or its Node is there but the VM's IP is
 * not known — may be a server (its etcd member) or run workloads, and neither a drain nor the quorum guard can be
 * done for it. Its restart (and the change that waits for it) waits for a run that can read the cluster. Undefined:
 * no k3s, or the VM is known not to be a member (a plain restart is safe).
 */
export const blindRestartFinding = (
  desired: Desired,
  observed: Observed,
  k3sNodes: ReadonlyArray<ClusterNode> | undefined,
  vm: {
    readonly node: string
    readonly vm: string
    readonly role: "server" | "agent"
    readonly vmid: number
    readonly ip: string | undefined
    readonly reason: string
  }
): Finding | undefined => {
  if (desired.k3s === undefined) return undefined
  const unread =
    k3sNodes === undefined
      ? `the k3s cluster ${observed.k3s?._tag === "Unavailable" ? "cannot be read (k3s.unavailable)" : "was not read"}`
      : k3sNodes.some((n) => n.name === vm.vm) && vm.ip === undefined
        ? "its k3s Node is in the cluster but the VM's IP is not known, so the Node cannot be told to be this VM"
        : undefined
  if (unread === undefined) return undefined
  const server = vm.role === "server"
  return {
    code: "k3s.restart-unknown",
    effect: "blocked",
    layer: "k3s",
    node: vm.node,
    vm: vm.vm,
    vmid: vm.vmid,
    message: `not restarting VM ${vm.vmid} ${vm.vm} (a k3s ${vm.role} in homelab.yaml): ${unread}, so its Node can be neither drained nor ${server ? "checked against etcd's quorum" : "waited for"}; ${vm.reason}: left as it is`,
    hint: `${k3sNodes === undefined ? "make the cluster readable (see the membership finding)" : "see why the VM has no IP"}, then run apply again: the restart then drains the Node${server ? " behind the quorum guard" : ""}. Restarting it by hand meanwhile (\`qm reboot ${vm.vmid}\` on ${vm.node}) takes it out of the cluster undrained`
  }
}
