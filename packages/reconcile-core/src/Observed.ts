import type { ClusterNode, EtcdMember, ReleaseChannel, ReleaseStatus } from "@homelab/k3s-join"
import type { CloudInitChange, VmPending } from "@homelab/proxmox-client"
import type { QuorumLost } from "./QuorumLost.js"

/**
 * What one observation of the cluster found. Filled by `observe` from one `/cluster/resources` request plus, per
 * node, the image storage's content; details (bridges, VM config, agent) are fetched only for nodes and VMs the plan
 * may act on, and each running VM of ours is compared with homelab.yaml through its config (`GET …/pending`): a
 * converged lab costs 1 + (number of nodes) + (number of VMs) requests.
 */
export interface ObservedVm {
  readonly vmid: number
  readonly node: string
  readonly type: "qemu" | "lxc"
  /** Absent while PVE's status cache has not seen a VM created moments ago. */
  readonly name?: string | undefined
  /** `/cluster/resources` status: the QMP status (`running`, `paused`, `prelaunch`, `stopped`, …) or `unknown`. */
  readonly status: string
  readonly lock?: string | undefined
  readonly tags: ReadonlyArray<string>
  readonly template: boolean
  readonly maxmemBytes: number
  readonly uptimeSeconds: number
}

export interface ObservedStorage {
  readonly storage: string
  readonly type: string
  readonly content: ReadonlyArray<string>
  readonly shared: boolean
  readonly active: boolean
  readonly enabled: boolean
  readonly totalBytes: number
  readonly availBytes: number
}

export interface ObservedBridge {
  readonly name: string
  readonly active: boolean
}

/** Facts fetched only when the plan may create a VM on the node. */
export interface NodeDetails {
  readonly bridges: ReadonlyArray<ObservedBridge>
  /** Result of checking the image URL from here; undefined when not checked. */
  readonly imageReachable?: { readonly ok: boolean; readonly detail: string } | undefined
  /** `GET /access/permissions` (path → privilege → 0/1); undefined over SSH (root needs none). */
  readonly permissions?: Readonly<Record<string, Readonly<Record<string, number | boolean>>>> | undefined
  /** The PVE major version (8 or 9), for privilege names. */
  readonly pveMajor: number
  /**
   * The PVE version (`GET /version`: `8.3.3`, `9.1.1`), for what download-url and import-from accept; undefined when
   * it could not be read.
   */
  readonly pveVersion?: string | undefined
  /**
   * The CPU models a VM may use on the node (`GET /nodes/{node}/capabilities/qemu/cpu`), read only when a VM of the
   * node names another than `host`; undefined when not read or not readable.
   */
  readonly cpuModels?: ReadonlyArray<string> | undefined
}

/**
 * Something about one node that could not be observed or done (both transports down, SSH refused, a storage listing
 * that failed): the node is left out of this run, the others go on.
 */
export interface NodeProblem {
  readonly code: string
  /** For a person: the node, what failed, the API URL and the SSH host:port with each transport's error. */
  readonly message: string
  readonly hint: string
}

export interface ObservedNode {
  readonly name: string
  /** Set when the node could not be observed: nothing is planned for it, and it is not converged. */
  readonly problem?: NodeProblem | undefined
  readonly online: boolean
  readonly cpus: number
  readonly memoryBytes: number
  readonly storages: ReadonlyArray<ObservedStorage>
  /** Volume ids present on the image storage (content listing), e.g. `local:import/noble.qcow2`. */
  readonly imageVolids: ReadonlySet<string>
  /**
   * The `download` tasks running on the node (`GET /nodes/{node}/tasks?typefilter=download&source=active`), read only
   * when the node lacks the image and would download it; `undefined` when they were not read (or could not be).
   */
  readonly downloads?: ReadonlyArray<RunningDownload> | undefined
  readonly details?: NodeDetails | undefined
}

/** Facts fetched only for VMs the plan may act on. */
export interface VmDetails {
  readonly protection: boolean
  readonly agentConfigured: boolean
  readonly agentAnswering?: boolean | undefined
  /** `status/current`: `running` | `stopped`. */
  readonly status: "running" | "stopped"
  readonly qmpstatus?: string | undefined
  readonly lock?: string | undefined
  readonly uptimeSeconds: number
  /** Seconds since the VM was created (`meta: ctime=`), when known. */
  readonly secondsSinceCreation?: number | undefined
  /** Disk size in GiB of `scsi0` from the config, when known. */
  readonly diskGiB?: number | undefined
  /** The storage `scsi0` is on (`local-lvm` of `local-lvm:vm-101-disk-0,size=32G`), when known. */
  readonly diskStorage?: string | undefined
  /** Tags from the VM's config (fresher than `/cluster/resources`). */
  readonly tags?: ReadonlyArray<string> | undefined
}

/** A create task running (or hung) on a VMID a desired VM may take. */
/** A `download-url` task running on a node: the file it fetches (the task's id), whose task, since when. */
export interface RunningDownload {
  /** The file name the task downloads (`noble-server-cloudimg-amd64.img`). */
  readonly file: string
  readonly upid: string
  /** Epoch seconds. */
  readonly startedAt: number
  /** `user@realm` or `user@realm!token`. */
  readonly user: string
  /** Started with homelab's own credentials (its API token, or root over SSH): an earlier or concurrent run. */
  readonly ours: boolean
}

export interface CreateTask {
  readonly vmid: number
  readonly node: string
  readonly upid: string
  /** Epoch seconds. */
  readonly startedAt: number
  /** `user@realm` or `user@realm!token`. */
  readonly user: string
  /** Started with homelab's own credentials (its API token, or root over SSH): an earlier or concurrent run. */
  readonly ours: boolean
}

/**
 * The k3s cluster as one `kubectl get nodes` on a server saw it (with its etcd members when a server may be taken out
 * of service, and the update channels when an upgrade needs them), or that there is no cluster yet (no `k3s.server`
 * and none of our server VMs runs k3s), or why it could not be read.
 */
export type K3sFacts =
  | {
      readonly _tag: "Nodes"
      readonly nodes: ReadonlyArray<ClusterNode>
      /** The server VM of ours the cluster was read through; undefined: the configured `k3s.server`. */
      readonly via?: { readonly vm: string; readonly ip: string } | undefined
      /** The etcd members (`/db/info`), read when the plan may take a server out of service. */
      readonly members?: ReadonlyArray<EtcdMember> | undefined
      /** Why the members could not be read, when they were wanted. */
      readonly membersError?: string | undefined
      /** The update channels (newest release per channel and per minor), read when an upgrade needs them. */
      readonly channels?: ReadonlyArray<ReleaseChannel> | undefined
      readonly channelsError?: string | undefined
      /** Whether `k3s.version` can be downloaded, read (by the server) when a member runs another version. */
      readonly release?: ReleaseStatus | undefined
      /**
       * Server VMs of ours that run and have no Node, whose k3s runs on after the cluster removed their etcd member
       * (k3s since January 2026 wrote the tombstone and waits for a restart, then joins again as a new member): the
       * join restarts it. Read (`unitStatus`, one SSH command each) only for running server VMs without a Node: a
       * converged lab reads none.
       */
      readonly removedMembers?: ReadonlyArray<RemovedMember> | undefined
      /**
       * Server VMs of ours that run and have no Node, whose k3s (active or activating) joins etcd right now: its
       * journal since the unit started shows the member it added for itself (`Adding member <name>=<peer URL>`). That
       * member is not stale, learner or not: its Node follows. Read with `removedMembers` (the same command).
       */
      readonly joiningMembers?: ReadonlyArray<JoiningMember> | undefined
      /**
       * The k3s unit of each of those server VMs (running, no Node) as that same command read it, or why it could not
       * be read: whether a learner of its name is a join going on (`staleMemberFinding`).
       */
      readonly serverUnits?: ReadonlyArray<ServerUnit> | undefined
    }
  | {
      readonly _tag: "Absent"
      /** The server VMs that were asked (each runs no k3s). */
      readonly probed: ReadonlyArray<string>
      /**
       * The first server VM, which would start the cluster, when it holds one already where `initCluster` would refuse
       * to start a new one (`K3sJoin.existingCluster`: etcd data of an earlier cluster, say): the plan says so instead
       * of planning an `InitK3s` that apply refuses. Read only when that VM runs without k3s (and so only when there
       * is no cluster to read).
       */
      readonly existing?: ExistingK3s | undefined
    }
  | {
      readonly _tag: "Unavailable"
      readonly message: string
      readonly hint: string
      /**
       * The finding's code for the VMs whose membership is unknown: `k3s.unavailable` when undefined;
       * `k3s.role-mismatch` when no server VM runs a k3s server but one runs k3s as an agent (it joined a cluster as
       * an agent, and homelab.yaml now asks it as a server).
       */
      readonly code?: string | undefined
      /** The VMs the message is about (the server VMs running k3s as agents): their findings say it without more. */
      readonly vms?: ReadonlyArray<string> | undefined
      /**
       * Server VMs of ours that run and answer over SSH, whose k3s unit is stopped (`inactive` or `failed`, its last
       * start not ended by a permanent failure): the plan starts it (`StartK3s`).
       */
      readonly stopped?: ReadonlyArray<StoppedK3s> | undefined
      /**
       * Server VMs of ours that exist but do not run (stopped, paused, locked): their disks hold the cluster. When the
       * plan brings each of them back (and starts each `stopped` unit), the membership it cannot tell now is asked
       * again at the end of the run (`membershipAfterPlan`).
       */
      readonly down?: ReadonlyArray<string> | undefined
      /** Server VMs whose k3s unit would stop again at its start (a cause that stays): for the user to fix. */
      readonly failing?: ReadonlyArray<string> | undefined
      /** etcd lost its quorum for good (code `k3s.quorum-lost`): who is gone, who survives. */
      readonly quorumLost?: QuorumLost | undefined
    }

/** The first server VM holds a cluster already (`K3sFacts` `Absent`): what `initCluster` would refuse it for. */
export interface ExistingK3s {
  readonly vm: string
  readonly vmid: number
  readonly ip: string
  /** `ExistingCluster.refusal`: the words of apply's refusal. */
  readonly refusal: string
  /** Its etcd member (an earlier cluster's data), when that is what holds it. */
  readonly member: string | null
  /** The state of its `k3s-agent` unit, when an agent that runs there is what holds it. */
  readonly agentUnitState?: string | undefined
}

/**
 * A server VM of ours without a Node whose k3s runs on after the cluster removed its etcd member, waiting for a restart
 * (`K3sFacts` `Nodes`).
 */
export interface RemovedMember {
  readonly vm: string
  readonly vmid: number
  /** k3s's journal line: `This node has been removed from the cluster - please restart k3s to rejoin the cluster`. */
  readonly line: string
}

/** A server VM of ours whose k3s joins etcd right now, as its journal shows (`K3sFacts` `joiningMembers`). */
export interface JoiningMember {
  readonly vm: string
  readonly vmid: number
  /** the etcd member its k3s added for itself (`<node>-<8 hex>`) */
  readonly member: string
  /** k3s's journal line: `Adding member <name>=<peer URL> to etcd cluster [...]`. */
  readonly line: string
}

/** The k3s unit of a server VM of ours that runs without a Node, as observe read it (`K3sFacts` `serverUnits`). */
export type ServerUnit =
  | {
      readonly vm: string
      readonly vmid: number
      /** `systemctl is-active k3s` */
      readonly state: string
      /**
       * Its journal since the unit last started is all there and names the member its k3s joins as, if any
       * (`UnitStatus.journalComplete`): a join going on as another member shows in `joiningMembers`, or there is none.
       */
      readonly journalComplete: boolean
      /**
       * Not running: the etcd member its data dir is of (`UnitStatus.member`). A learner of that name is its own join,
       * stopped: the next start of its k3s carries on as it.
       */
      readonly member?: string | undefined
    }
  | {
      readonly vm: string
      readonly vmid: number
      /** Why it could not be read (SSH down, say). */
      readonly error: string
    }

/** A server VM of ours whose k3s unit is stopped while the cluster cannot be read (`K3sFacts` `Unavailable`). */
export interface StoppedK3s {
  readonly vm: string
  readonly vmid: number
  readonly node: string
  readonly ip: string
  /** `systemctl is-active`: `inactive` or `failed`. */
  readonly state: string
}

export interface Observed {
  readonly nodes: ReadonlyMap<string, ObservedNode>
  readonly vms: ReadonlyArray<ObservedVm>
  readonly vmDetails: ReadonlyMap<number, VmDetails>
  /**
   * The guest agent's IPv4 of `net0` per VMID, for running VMs of ours when k3s membership needs it (`undefined`: the
   * agent reported none).
   */
  readonly ips?: ReadonlyMap<number, string | undefined> | undefined
  /** Running create tasks of VMIDs locked `create` that a desired VM may take, by VMID. */
  readonly createTasks?: ReadonlyMap<number, CreateTask> | undefined
  /**
   * The configuration of each running VM of ours that homelab.yaml asks for (and, for `adopt`, of the same-named VMs
   * that are not ours), by VMID: `GET …/pending` — what runs, what waits for a restart, the digest. Drift is judged
   * on it.
   */
  readonly configs?: ReadonlyMap<number, VmPending> | undefined
  /**
   * For each of those VMs that carries `homelab-cloudinit` (an earlier run changed its cloud-init settings while it
   * ran), the cloud-init changes its drive does not have yet (`GET …/cloudinit`; empty: PVE started it since).
   */
  readonly cloudInit?: ReadonlyMap<number, ReadonlyArray<CloudInitChange>> | undefined
  /**
   * With `k3s:`, the user each of those VMs' guests has (the `ciuser` of the drive it booted from, `guestUserOf`), by
   * VMID: the user homelab logs in as for k3s, which differs from `vm.user` while a changed `vm.user` waits for the
   * VM's next start.
   */
  readonly guestUsers?: ReadonlyMap<number, string> | undefined
  /** Snippet volumes present on each node (`<storage>:snippets/<file>`), when `vm.cicustom` names some. */
  readonly snippets?: ReadonlyMap<string, ReadonlySet<string>> | undefined
  /** Phase 3 facts, when the config has a `k3s:` section. */
  readonly k3s?: K3sFacts | undefined
  /** Seconds since the epoch when observed (for task ages). */
  readonly at?: number | undefined
  /** Every node of the PVE cluster, by name (`/cluster/resources`), whether homelab.yaml lists it or not. */
  readonly pveNodes?: ReadonlyArray<string> | undefined
  /**
   * The PVE cluster has no quorum (`GET /cluster/status`, read only when `/cluster/resources` shows a node offline):
   * /etc/pve is read-only, so no guest config can be written.
   */
  readonly pveQuorum?: PveQuorumLoss | undefined
}

/** A PVE cluster without quorum: its members, online or not. */
export interface PveQuorumLoss {
  readonly online: ReadonlyArray<string>
  readonly offline: ReadonlyArray<string>
}
