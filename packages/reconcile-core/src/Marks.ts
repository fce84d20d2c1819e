/** A VM's tags as PVE stores them (`a;b`, also `,`/space separated). */
export const tagList = (value: string | undefined): Array<string> =>
  (value ?? "").split(/[;,\s]+/).filter((t) => t !== "")

/**
 * Tags that record what a run is doing to a VM, so that an interrupted run's work is finished by the next one (the
 * durable intent; see docs/architecture.md). `homelab-pending` is `PendingTag` (desiredFromConfig).
 */

/**
 * Set on a VM of ours before a rebuild stops or destroys anything: the VM is to be rebuilt. Whatever state the next
 * run finds it in (running, stopped, paused), it finishes the rebuild instead of judging the VM's health.
 */
export const RebuildTag = "homelab-rebuild"

/**
 * Carried by a rebuilt VM from its create until it has rejoined k3s: its stale Node and node-password secret may be
 * deleted (by name) before it joins.
 */
export const RejoinTag = "homelab-rejoin"

/**
 * Set on a VM from just before its k3s Node is cordoned for an upgrade until it is uncordoned on the new version: a
 * run interrupted in between leaves a cordoned Node that the next run finishes (upgrades and uncordons), where a Node
 * cordoned by hand without the mark is left as it is. Set only when the Node was schedulable when the upgrade began;
 * otherwise the VM carries `UpgradeKeepCordonTag` instead.
 */
export const UpgradeTag = "homelab-upgrade"

/**
 * `UpgradeTag` for a Node that was cordoned already when the upgrade began (by hand, for maintenance): set on the VM
 * from just before its Node is drained until it runs the new version, instead of `UpgradeTag`. The cordon is not
 * ours: the upgrade (and the next run, which resumes an interrupted one) drains and upgrades the Node but never
 * uncordons it, and the plan keeps reporting it (`k3s.cordoned`). A VM that carries `UpgradeTag` (as every run before
 * this mark existed set it) keeps that meaning: the cordon is ours, uncordoned at the end.
 */
export const UpgradeKeepCordonTag = "homelab-upgrade-keep-cordon"

/**
 * Set on a VM from just before its k3s Node is drained for a rolling restart (`RestartVm`) until the Node is
 * uncordoned, Ready again after the restart: a run interrupted in between, or a restart that failed once the VM was
 * down, leaves a cordoned Node that the next run knows to be its own. That run finishes the job (`UncordonK3s`: the
 * VM running, its Node Ready, then uncordoned and the mark cleared). A Node cordoned without the mark (by hand) is
 * never uncordoned; the plan reports it (`k3s.cordoned`, info).
 */
export const RestartTag = "homelab-restart"

/**
 * Set on a running VM of ours in the same config update that changes its cloud-init settings, which the guest reads
 * only from the drive PVE generates when it starts the VM (homelab does not regenerate the drive of a running VM: PVE
 * would then forget the change, and a reboot inside the guest would pick it up unreported). While the mark is on,
 * `plan` reads the VM's `GET …/cloudinit` (only then: a converged lab pays nothing for it): what PVE still holds for
 * the drive is pending (`vm.restart: never`) or restarts the VM (`rolling`, which clears the mark after the
 * restart); once nothing is held (PVE started the VM since), an `UpdateVm` clears the mark.
 */
export const CloudInitTag = "homelab-cloudinit"

/**
 * Set on a running VM of ours just before `destroy` (or `apply --prune`) cordons and drains its k3s Node, and gone
 * with the VM. A teardown that stops short (interrupted, a drain that a PodDisruptionBudget blocks, a quorum refusal
 * after the cordon) leaves a cordoned Node that the next run knows to be its own: `destroy` goes on with it, and an
 * `apply` for which homelab.yaml still asks for the VM undoes the cordon (`UncordonK3s`: the VM running, its Node
 * Ready, then uncordoned and the mark cleared), where a Node cordoned by hand is left as it is. A server VM whose Node
 * and etcd member the teardown had removed already is joined again first where its k3s rejoins after a restart (from
 * the January 2026 releases on; `planRemovedServer`), and the mark cleared once the join is done; on older k3s the
 * plan blocks it (`k3s.member-removed`) and the mark stays.
 */
export const DestroyTag = "homelab-destroy"
