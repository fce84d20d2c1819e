import type { NodeChanges, QuorumAction } from "@homelab/k3s-join"
import type { DesiredImage } from "./Desired.js"
import type { RunningDownload } from "./Observed.js"
import type { ConfigEdit, FieldChange } from "./VmDrift.js"

/**
 * A VM fully sized and addressed for one node: what `CreateVm` sends to Proxmox. Every setting drift compares is set
 * at creation (with the VM's cloud-init settings from homelab.yaml), so a VM homelab creates has no drift.
 */
export interface VmSpec {
  readonly name: string
  readonly node: string
  readonly role: "server" | "agent"
  readonly cores: number
  readonly memoryMiB: number
  /** Settings homelab.yaml manages only when it sets them (`vm.sockets`, `vm.balloon`, `vm.onboot`). */
  readonly sockets?: number | undefined
  readonly balloonMiB?: number | undefined
  readonly onboot?: boolean | undefined
  /** `vm.description`; undefined: the VM gets homelab's own note at creation, and its notes are not managed. */
  readonly description?: string | undefined
  readonly diskGiB: number
  readonly storage: string
  readonly bridges: ReadonlyArray<string>
  readonly tags: ReadonlyArray<string>
  readonly cpuType: string
  /** Volume to import the boot disk from, e.g. `local:import/noble.qcow2`. */
  readonly imageVolid: string
  /**
   * `path`: the volume is iso-type (`image.content: iso`), which PVE imports only from its absolute path, and only
   * for root@pam: the create reads the volume's path and goes over SSH as root. Absent: `import-from` the volid over
   * the API (see `ImageImport`).
   */
  readonly imageImport?: "path" | undefined
  /** VMIDs to try, in order (a pinned VMID is the only candidate). */
  readonly vmidCandidates: ReadonlyArray<number>
}

/** The layer of the lab an action or a reason is about. */
export type Layer = "node" | "image" | "vm" | "k3s"

/**
 * What every action has: a stable `id` (`<node>:image`, `<node>:vm:<name>`, `<node>:k3s:<name>`), the node it runs
 * for, why it is planned, and the actions it waits for (`after`, by id). The executor runs an action as soon as every
 * action in `after` is done (and every one in `afterSettled` ended); when one in `after` failed or was skipped, it is
 * skipped. An action with `exclusive` runs
 * alone among the actions that name the same key (k3s servers join one at a time cluster-wide).
 */
interface ActionBase {
  readonly id: string
  readonly node: string
  readonly reason: string
  readonly after: ReadonlyArray<string>
  /**
   * Actions it runs after whatever their outcome: their failure or skip does not skip it (the rolling restart goes on
   * after an earlier run's unfinished restart, finished first, however that ends: see `chainRestarts`).
   */
  readonly afterSettled?: ReadonlyArray<string> | undefined
  readonly exclusive?: string | undefined
}

/**
 * Phase 1: the cloud image onto the node's image storage: `download-url` (the node fetches it; PVE verifies the
 * checksum), or with `image.transfer: upload` fetched once where homelab runs, checked against the checksum before
 * any upload, and streamed to the node's upload endpoint. A download of the same file that already runs on the node
 * (an interrupted or concurrent run's) is waited for instead of starting a second one; one still running after
 * `timeouts.task` is stopped.
 */
export interface DownloadImage extends ActionBase {
  readonly _tag: "DownloadImage"
  readonly image: DesiredImage
  readonly volid: string
  /**
   * Whether the downloads running on the node were read with the observation (apply lists them again when they were
   * not, or when the observation is more than a few seconds old: a plan confirmed at a prompt).
   */
  readonly listed?: boolean | undefined
  /** The download of the same file that was running on the node then (waited for, never a second one beside it). */
  readonly running?: RunningDownload | undefined
}

/** Phase 2: a new VM (name-derived VMID, cloud-init, ownership and pending tags), resized, started, IP seen. */
export interface CreateVm extends ActionBase {
  readonly _tag: "CreateVm"
  readonly spec: VmSpec
  /**
   * The k3s Node (and a server's etcd member) of a VM of this name that is gone may still be in the cluster (the plan
   * saw it, or could not read the cluster): the VM is created with `homelab-rejoin` too, so that whichever run joins
   * it replaces that Node (a join that does not come this run, or fails, leaves it to the next run, not to the user).
   */
  readonly rejoin?: boolean | undefined
}

/**
 * Phase 2, destructive: rebuild a VM of ours. Durable intent first: the VM gets `homelab-rebuild` before it is
 * stopped; with k3s, its Node (and password secret, and etcd member) are removed while the stopped VM still carries
 * that mark; then it is destroyed and created again at the same VMID with `homelab-pending` (and `homelab-rejoin`).
 * Every point of that sequence is a state the next run recognises and finishes.
 */
export interface RecreateVm extends ActionBase {
  readonly _tag: "RecreateVm"
  readonly vmid: number
  readonly spec: VmSpec
  readonly evidence: ReadonlyArray<string>
  /** The VM already carries `homelab-rebuild`: an earlier run started this rebuild and was interrupted. */
  readonly resumed: boolean
  /** Remove the VM's k3s Node before destroying it (`server`: its etcd member too, behind the quorum guard). */
  readonly k3sCleanup?: "agent" | "server" | undefined
  /** The server the cleanup goes through; undefined: the configured `k3s.server`. */
  readonly k3sVia?: K3sVia | undefined
}

/**
 * Phase 2: a VM of ours still carrying `homelab-pending` (an interrupted create, or another run's): resize, start or
 * resume it as its state needs, wait for its IP, drop the mark.
 */
export interface FinishVm extends ActionBase {
  readonly _tag: "FinishVm"
  readonly vmid: number
  readonly spec: VmSpec
  /** What the VM is found doing: `stopped` → start, `paused`/`prelaunch`/`suspended` → resume, `running` → wait. */
  readonly state: "stopped" | "paused" | "prelaunch" | "suspended" | "running"
}

/**
 * Phase 2: a create of this VM is already running in PVE (a task of our own token: an interrupted or concurrent run).
 * Wait for it, at most until it has run `timeouts.task`; a create still running then is hung: stop the task (PVE
 * removes the half-made VM) and create the VM afresh. Then finish it like `FinishVm`: brought in line with
 * homelab.yaml (that run's create used its own), started, compared. The plan ran the preflight first.
 */
export interface AwaitCreate extends ActionBase {
  readonly _tag: "AwaitCreate"
  readonly vmid: number
  readonly spec: VmSpec
  readonly upid: string
  /** When the task started (epoch seconds, PVE's `starttime`). */
  readonly startedAt: number
}

/** Phase 2: start a stopped VM of ours (policy `stopped: start`), then wait for its IP. */
export interface StartVm extends ActionBase {
  readonly _tag: "StartVm"
  readonly vmid: number
  readonly name: string
  readonly k3s?: ReturningMember | undefined
  /**
   * Back in service once it runs, whether or not its guest agent reports an IP: nothing needs its address (no `k3s:`
   * section) and `health.agentMissing` is `keep`, so the plan judges the running VM by PVE's state alone, and apply
   * does the same. Otherwise its guest agent's IP (or, for a k3s member, its Node Ready again) is waited for.
   */
  readonly ipOptional?: true | undefined
}

/** Phase 2: resume a paused VM of ours (policy `paused: resume`), then wait for its IP. */
export interface ResumeVm extends ActionBase {
  readonly _tag: "ResumeVm"
  readonly vmid: number
  readonly name: string
  readonly k3s?: ReturningMember | undefined
  /**
   * Back in service once it runs, whether or not its guest agent reports an IP: nothing needs its address (no `k3s:`
   * section) and `health.agentMissing` is `keep`, so the plan judges the running VM by PVE's state alone, and apply
   * does the same. Otherwise its guest agent's IP (or, for a k3s member, its Node Ready again) is waited for.
   */
  readonly ipOptional?: true | undefined
}

/**
 * The k3s Node of a VM that is started or resumed, in the cluster when planned: once the VM runs, its Node Ready again
 * at the VM's known IP is the VM back in service, whether or not its guest agent reports an IP (a guest agent that is
 * not installed, or off). The IP known: one this run learned, else the static address of the VM's `ipconfig0`, else
 * `ip`, the Node's InternalIP when planned. Checked through `via` (undefined: the configured `k3s.server`).
 */
export interface ReturningMember {
  readonly role: "server" | "agent"
  readonly ip?: string | undefined
  readonly via?: K3sVia | undefined
}

/**
 * The k3s server a k3s step goes through: a server VM of ours (its IP from the plan, or learned by this run when it
 * was just created); undefined means the configured `k3s.server`.
 */
export interface K3sVia {
  readonly vm: string
  readonly ip?: string | undefined
}

/**
 * Phase 3, a cluster from nothing: no `k3s.server` is configured and none of our server VMs runs k3s, so the first
 * VM with role `server` starts the cluster (`--cluster-init`, embedded etcd). The other servers join through it one
 * at a time, the agents in parallel; the token is read from it over SSH (or `k3s.token`).
 */
export interface InitK3s extends ActionBase {
  readonly _tag: "InitK3s"
  readonly vm: string
  readonly vmid?: number | undefined
  readonly ip?: string | undefined
  readonly follows?: JoinK3s["follows"]
}

/**
 * Phase 3, one hop of a rolling upgrade of one member: check that the VM can download the release (refused before
 * anything changes), cordon, drain (PodDisruptionBudgets respected, `k3s.upgrade.drainTimeout`), install the version
 * of `steps` with the unit's own flags, wait until the Node is Ready on it, uncordon. The VM carries `homelab-upgrade`
 * meanwhile (see `UpgradeTag`). A member more than one minor behind has one per minor, and the cluster goes hop by
 * hop: servers one at a time behind the quorum guard, then the agents (`k3s.upgrade.maxUnavailable` at once), then
 * the next minor (see `planUpgrades`); a failure stops the rollout. A Node cordoned before the upgrade began (by
 * hand) is drained and upgraded but never uncordoned; its VM carries `homelab-upgrade-keep-cordon` instead (see
 * `UpgradeKeepCordonTag`), so that a resumed run leaves it cordoned too. Whether the cordon is someone else's is read
 * again when the upgrade begins: `keepCordoned` is what the plan saw.
 */
export interface UpgradeK3s extends ActionBase {
  readonly _tag: "UpgradeK3s"
  readonly vm: string
  readonly vmid: number
  readonly ip: string
  readonly role: "server" | "agent"
  /** The kubelet version the Node reports now. */
  readonly from: string
  /** The version this hop installs (one; the last hop's is the target); empty: only uncordon. */
  readonly steps: ReadonlyArray<string>
  readonly via?: K3sVia | undefined
  /** The VM carries `homelab-upgrade` (or `-keep-cordon`): an earlier run's upgrade of it was interrupted. */
  readonly resumed: boolean
  /** The Node was cordoned when planned and no mark of ours says by us (by hand, say): it is left cordoned. */
  readonly keepCordoned?: boolean | undefined
  /**
   * Install with the flags homelab.yaml gives its role (`k3s.installFlags`, then `k3s.serverFlags` or
   * `k3s.agentFlags`; the unit's flags after the join flags replaced); unset: the unit's own flags are kept (a flag
   * change that k3s cannot make was refused: `k3s.flags-immutable`).
   */
  readonly applyFlags?: boolean | undefined
  /**
   * How those flags differ from the flags its k3s runs with (its Node's `k3s.io/node-args`), one `+flag`/`-flag` per
   * change; with `steps` on the version it runs, this hop only installs it again with them.
   */
  readonly flagChanges?: ReadonlyArray<string> | undefined
  /** The lists of homelab.yaml its flags come from, for messages (`k3s.installFlags + k3s.agentFlags`). */
  readonly flagSource?: string | undefined
  /**
   * What its Node needs by hand for those flags, done with kubectl before the install (`nodeChanges`): the label of a
   * dropped `--node-label` (k3s sets the labels of its flags again at every start, merged, and never removes one), and
   * the taints of a changed `--node-taint` (the kubelet applies them only when it registers the Node).
   */
  readonly nodeChanges?: NodeChanges | undefined
}

/** `remove label tier; add taint spot=yes:NoExecute`: what `UpgradeK3s.nodeChanges` does to the Node. */
export const describeNodeChanges = (changes: NodeChanges): string =>
  [
    ...(changes.removeLabels.length === 0
      ? []
      : [`remove label${changes.removeLabels.length === 1 ? "" : "s"} ${changes.removeLabels.join(", ")}`]),
    ...(changes.removeTaints.length === 0
      ? []
      : [`remove taint${changes.removeTaints.length === 1 ? "" : "s"} ${changes.removeTaints.join(", ")}`]),
    ...(changes.addTaints.length === 0
      ? []
      : [`add taint${changes.addTaints.length === 1 ? "" : "s"} ${changes.addTaints.join(", ")}`])
  ].join("; ")

/**
 * Phase 3, the end of an interrupted rolling restart: the VM carries `homelab-restart` (see `RestartTag`), so an
 * earlier run drained its Node for a restart and did not get to uncordon it (or `homelab-destroy`: a teardown drained
 * it and stopped short of destroying the VM, which homelab.yaml still asks for). Wait until the VM runs, has its IP and its
 * Node is Ready, uncordon the Node, clear the mark. Part of the restart rollout (`exclusive: "vm-restart"`): ahead of
 * this run's restarts (one VM out of service at a time), or, when its VM must start or join first, after that join.
 */
export interface UncordonK3s extends ActionBase {
  readonly _tag: "UncordonK3s"
  readonly vm: string
  readonly vmid: number
  readonly role: "server" | "agent"
  /** The Node was cordoned when planned; false: only the mark is left to clear (the Node is not touched). */
  readonly cordoned: boolean
  /** The server it goes through; undefined: the configured `k3s.server`. */
  readonly via?: K3sVia | undefined
  /**
   * The VM's IP as the plan knows it (its k3s Node's, or its guest agent's): where the Node is checked, so that a
   * silent guest agent does not keep a Node Ready again from counting (see `restartVm`).
   */
  readonly ip?: string | undefined
  /**
   * `homelab-destroy`: the cordon is a teardown's that stopped short of destroying the VM (see `DestroyTag`), not a
   * restart's. Either way the end clears both marks.
   */
  readonly mark?: "homelab-destroy" | undefined
}

/**
 * Phase 3: make one VM a Ready member of k3s. After a VM action of the same VM (`after`), the VMID and IP come from
 * that action; otherwise they are known from the observation.
 */
export interface JoinK3s extends ActionBase {
  readonly _tag: "JoinK3s"
  readonly vm: string
  readonly vmid?: number | undefined
  readonly ip?: string | undefined
  readonly role: "server" | "agent"
  /** Delete the stale Node and `<name>.node-password.k3s`, and forget the old SSH host key, before joining. */
  readonly rejoin: boolean
  /** The VM action this join follows, for the description (`after it is created`). */
  readonly follows?: "create" | "recreate" | "finish" | "start" | "resume" | undefined
  /** The server it joins through; undefined: the configured `k3s.server`. */
  readonly via?: K3sVia | undefined
}

/**
 * Phase 3, while the cluster cannot be read: a server VM of ours runs and answers over SSH, but its k3s unit is
 * stopped (`inactive` or `failed`, by hand say, its last start not ended by a cause that stays): start the unit
 * (`sudo -n systemctl enable --now --no-block k3s`: enabled too, so that it starts at the VM's next boot). k3s comes back with its own data, its etcd member with it; the end of the
 * run waits for its Node as for a server VM the run started (`MembershipAtEnd`).
 */
export interface StartK3s extends ActionBase {
  readonly _tag: "StartK3s"
  readonly vm: string
  readonly vmid: number
  readonly ip: string
  /** The unit's state when planned (`inactive`, `failed`). */
  readonly state: string
}

/**
 * Phase 2, in place: make a running VM of ours match homelab.yaml without recreating it — one `PUT …/config` with
 * the digest read when the plan was made (a concurrent edit is refused, not overwritten), the boot disk grown with
 * `resize`. Cloud-init changes mark the VM `homelab-cloudinit` in the same write and reach the guest when PVE next
 * starts the VM (the drive is not regenerated); an update may also only clear that mark, once PVE started the VM.
 * What PVE then keeps pending until a restart is reported (and, with `vm.restart: rolling`, a `RestartVm` follows).
 */
export interface UpdateVm extends ActionBase {
  readonly _tag: "UpdateVm"
  readonly vmid: number
  readonly name: string
  /** The config digest the changes were computed from. */
  readonly digest: string | undefined
  readonly changes: ReadonlyArray<FieldChange>
  readonly edit: ConfigEdit
}

/**
 * Phase 2 (`vm.restart: rolling`): restart a VM of ours so that what PVE holds until a restart takes effect. One VM
 * at a time cluster-wide (`exclusive: "vm-restart"`), each after the previous one (a failure stops the rollout):
 * with k3s, its Node is drained first (servers behind the etcd quorum guard), and after the restart the VM must have
 * its IP and the Node be Ready again before it is uncordoned.
 */
export interface RestartVm extends ActionBase {
  readonly _tag: "RestartVm"
  readonly vmid: number
  readonly name: string
  /** What waits for the restart. */
  readonly changes: ReadonlyArray<FieldChange>
  /**
   * The VM's k3s Node, Ready when planned: drained before and waited for after the restart, through `via` (a server
   * VM of ours; undefined: the configured `k3s.server`). The VM carries `homelab-restart` from before the drain until
   * the Node is uncordoned. `keepCordoned`: the Node was cordoned when planned and no mark of ours says by us (by
   * hand, say): it is drained and waited for, but neither marked nor uncordoned.
   */
  readonly k3s?:
    | {
        readonly role: "server" | "agent"
        readonly ip: string
        readonly via?: K3sVia | undefined
        readonly keepCordoned?: boolean | undefined
      }
    | undefined
  /**
   * A k3s server whose Node is not a Ready member when planned (NotReady, say) and so is neither drained nor waited
   * for, but whose etcd member may still vote: the quorum guard asks again through `via` just before the restart.
   */
  readonly etcd?: { readonly via?: K3sVia | undefined } | undefined
}

/**
 * Teardown of one VM of ours (`homelab destroy`, or an orphan under `homelab apply --prune`). With its k3s Node
 * (`k3sNode`): a running VM's Node is cordoned and drained first (evictions respect PodDisruptionBudgets); the VM is
 * stopped, so no kubelet registers the Node again (k3s.md §5.2); then the Node and its `<name>.node-password.k3s`
 * secret are deleted (a server's etcd member with them, behind the quorum guard); only then is the VM destroyed with
 * purge. Before anything it re-reads the VM and refuses if it became protected, lost the ownership tag, was renamed
 * or got a lock since the plan.
 */
export interface DestroyVm extends ActionBase {
  readonly _tag: "DestroyVm"
  readonly vmid: number
  readonly name: string
  /** `destroy`: asked for by `homelab destroy`; `prune`: an orphan (homelab.yaml no longer asks for it). */
  readonly purpose: "destroy" | "prune"
  /** The VM's k3s Node, removed before the VM is destroyed; undefined when there is none to remove. */
  /** `cordoned`: the Node was cordoned already when planned (by hand, say): the teardown does not mark it ours. */
  readonly k3sNode?: { readonly role: "server" | "agent"; readonly cordoned?: boolean | undefined } | undefined
  /** The server the k3s steps go through; undefined: the configured `k3s.server`. */
  readonly k3sVia?: K3sVia | undefined
}

/** `homelab destroy --images`: the cloud image homelab.yaml names, deleted from the node's image storage. */
export interface DeleteImage extends ActionBase {
  readonly _tag: "DeleteImage"
  readonly volid: string
}

/** One step of a plan; see `ActionBase`. */
export type Action =
  | DownloadImage
  | CreateVm
  | RecreateVm
  | FinishVm
  | AwaitCreate
  | StartVm
  | ResumeVm
  | JoinK3s
  | InitK3s
  | UpgradeK3s
  | UncordonK3s
  | StartK3s
  | UpdateVm
  | RestartVm
  | DestroyVm
  | DeleteImage

/** The actions of phase 3 (k3s). */
export type K3sAction = JoinK3s | InitK3s | UpgradeK3s | UncordonK3s | StartK3s

/** The actions of phases 1–2 that bring a VM homelab.yaml asks for into existence or running (a join follows them). */
export type VmAction = Exclude<Action, K3sAction | DownloadImage | UpdateVm | RestartVm | DestroyVm | DeleteImage>

/** Which layer an action changes. */
export const layerOf = (action: Action): Layer =>
  action._tag === "DownloadImage" || action._tag === "DeleteImage"
    ? "image"
    : action._tag === "JoinK3s" ||
        action._tag === "InitK3s" ||
        action._tag === "UpgradeK3s" ||
        action._tag === "UncordonK3s" ||
        action._tag === "StartK3s"
      ? "k3s"
      : "vm"

/** The VM an action is about, if any. */
export const vmOf = (action: Action): string | undefined => {
  switch (action._tag) {
    case "DownloadImage":
    case "DeleteImage":
      return undefined
    case "CreateVm":
    case "RecreateVm":
    case "FinishVm":
    case "AwaitCreate":
      return action.spec.name
    case "StartVm":
    case "ResumeVm":
    case "UpdateVm":
    case "RestartVm":
      return action.name
    case "JoinK3s":
    case "InitK3s":
    case "UpgradeK3s":
    case "UncordonK3s":
    case "StartK3s":
      return action.vm
    case "DestroyVm":
      return action.name
  }
}

/**
 * Something the plan reports without acting, and what it means for convergence (`effect`):
 *
 * - `blocked`: the node cannot converge without the user (a stranger holds the name, protection, a failed preflight,
 *   a node out of reach, a k3s identity conflict);
 * - `deferred`: a later run converges it without the user (a recreate beyond `safety.maxRecreatePerRun`, a VM within
 *   its grace period or under a passing lock);
 * - `pending`: the VM's configuration is as homelab.yaml asks, but PVE holds part of it until the VM restarts (its
 *   pending settings, or cloud-init changes its drive does not have yet) and `vm.restart` is `never` (restart it
 *   from PVE, or set `vm.restart: rolling`);
 * - `unconfirmed`: destructive work the user has not allowed this run (an orphan without `--prune`): the node is not
 *   converged, and the run can converge it once allowed;
 * - `info`: does not keep the node from converging.
 */
export interface Finding {
  readonly code: string
  readonly effect: "blocked" | "deferred" | "pending" | "unconfirmed" | "info"
  readonly layer: Layer
  readonly node: string
  readonly vm?: string | undefined
  readonly vmid?: number | undefined
  readonly message: string
  readonly hint?: string | undefined
  /**
   * A refusal of the etcd quorum guard (`k3s.quorum`, `k3s.quorum-unknown`): what it refused for the VM (`action`)
   * and why that was wanted (`context`), so that the end of the run can ask the guard again (`recheckQuorum`).
   */
  readonly quorum?: { readonly action: QuorumAction; readonly context?: string | undefined } | undefined
  /**
   * `k3s.upgrade-waits`: the member the rollout stops at. When that member waits for a quorum refusal, this finding
   * waits as it does (for the user, or for the next run: `quorumAfterPlan`, `recheckQuorum`).
   */
  readonly waitsFor?: string | undefined
}

export const isDestructive = (action: Action): boolean =>
  action._tag === "RecreateVm" || action._tag === "DestroyVm" || action._tag === "DeleteImage"

/** How the plan says that a create goes over SSH as root (an iso-type image is imported from its path). */
const asRoot = (spec: VmSpec): string =>
  spec.imageImport === "path" ? "; over SSH as root: image.content iso is imported from its path" : ""

const followsText: Record<NonNullable<JoinK3s["follows"]>, string> = {
  create: "after it is created",
  recreate: "after it is rebuilt",
  finish: "once it is provisioned",
  start: "once it runs again",
  resume: "once it runs again"
}

/** A one-line, human description of an action (the CLI's plan rows). */
export const describeAction = (action: Action): string => {
  switch (action._tag) {
    case "DownloadImage":
      return action.image.transfer === "upload"
        ? `upload ${action.image.filename} to ${action.volid.split(":")[0]} on ${action.node} (fetched once here${action.image.checksum ? ", checksum verified before any upload" : ""})`
        : action.running !== undefined
          ? `wait for the download of ${action.image.filename} to ${action.volid.split(":")[0]} on ${action.node} that ${action.running.ours ? "an earlier or concurrent run" : action.running.user} started`
          : `download ${action.image.filename} to ${action.volid.split(":")[0]} on ${action.node}`
    case "CreateVm":
      return `create VM ${action.spec.name} on ${action.node} (${action.spec.sockets !== undefined && action.spec.sockets > 1 ? `${action.spec.sockets} sockets × ` : ""}${action.spec.cores} cores, ${action.spec.memoryMiB} MiB, ${action.spec.diskGiB} GiB${asRoot(action.spec)})`
    case "RecreateVm":
      return `${action.resumed ? "finish rebuilding" : "recreate"} VM ${action.vmid} ${action.spec.name} on ${action.node}${asRoot(action.spec) === "" ? "" : ` (${asRoot(action.spec).slice(2)})`}`
    case "FinishVm":
      return `finish provisioning VM ${action.vmid} ${action.spec.name} on ${action.node}`
    case "AwaitCreate":
      return `wait for the create of VM ${action.vmid} ${action.spec.name} on ${action.node}, then finish it`
    case "StartVm":
      return `start VM ${action.vmid} ${action.name} on ${action.node}`
    case "ResumeVm":
      return `resume VM ${action.vmid} ${action.name} on ${action.node}`
    case "UpdateVm":
      return `update VM ${action.vmid} ${action.name} on ${action.node} in place (${action.changes.map((c) => c.field).join(", ")})`
    case "RestartVm":
      return `restart VM ${action.vmid} ${action.name} on ${action.node}${action.k3s === undefined ? (action.etcd === undefined ? "" : " (a k3s server whose Node is not Ready: etcd's quorum checked first)") : action.k3s.keepCordoned === true ? " (its k3s Node drained first, Ready again after, left cordoned as it was)" : " (its k3s Node drained first, Ready again after)"}`
    case "JoinK3s": {
      const as = action.role === "server" ? "a server" : "an agent"
      const where = action.ip === undefined ? "" : ` (${action.ip})`
      const when = action.follows === undefined ? "" : ` ${followsText[action.follows]}`
      return `${action.rejoin ? "rejoin" : "join"} ${action.vm}${where} to k3s as ${as}${when}`
    }
    case "InitK3s": {
      const where = action.ip === undefined ? "" : ` (${action.ip})`
      const when = action.follows === undefined ? "" : ` ${followsText[action.follows]}`
      return `start the k3s cluster on ${action.vm}${where} (first server, embedded etcd)${when}`
    }
    case "UpgradeK3s": {
      const node =
        action.nodeChanges === undefined ? "" : `; on its Node first: ${describeNodeChanges(action.nodeChanges)}`
      return action.steps.length === 0
        ? action.keepCordoned === true
          ? `finish the k3s upgrade of ${action.vm} (on ${action.from}; its k3s Node left cordoned as it was)`
          : `finish the k3s upgrade of ${action.vm} (uncordon it on ${action.from})`
        : action.steps.length === 1 && action.steps[0] === action.from
          ? `install k3s ${action.from} on ${action.vm} (${action.role}) again with ${action.flagSource ?? "k3s.installFlags"} (${(action.flagChanges ?? []).join(" ")})${node}: ${action.keepCordoned === true ? "drain, install, wait Ready; left cordoned as it was" : "cordon, drain, install, wait Ready, uncordon"}`
          : `upgrade k3s on ${action.vm} (${action.role}) ${[action.from, ...action.steps].join(" → ")}${action.flagChanges === undefined ? "" : ` with ${action.flagSource ?? "k3s.installFlags"} (${action.flagChanges.join(" ")})`}${node}: ${action.keepCordoned === true ? "drain, install, wait Ready; left cordoned as it was" : "cordon, drain, install, wait Ready, uncordon"}`
    }
    case "UncordonK3s": {
      const what = action.mark === "homelab-destroy" ? "undo the stopped teardown" : "finish the restart"
      return action.cordoned
        ? `${what} of VM ${action.vmid} ${action.vm}: uncordon its k3s Node once it is Ready`
        : `${what} of VM ${action.vmid} ${action.vm}: clear its mark (its k3s Node is not cordoned)`
    }
    case "StartK3s":
      return `start k3s on ${action.vm} (${action.ip}): its unit is stopped (${action.state})`
    case "DestroyVm": {
      const k3s = action.k3sNode === undefined ? "" : ` (its k3s ${action.k3sNode.role} Node drained and removed first)`
      return `${action.purpose === "prune" ? "prune orphan" : "destroy"} VM ${action.vmid} ${action.name} on ${action.node}${k3s}`
    }
    case "DeleteImage":
      return `delete the image ${action.volid} on ${action.node}`
  }
}
