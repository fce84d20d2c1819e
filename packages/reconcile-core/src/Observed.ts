/**
 * What one observation of the cluster found. Filled by `observe` from one `/cluster/resources` request plus, per
 * node, the image storage's content; details (bridges, VM config, agent) are fetched only for nodes and VMs the plan
 * may act on, so a converged lab costs 1 + (number of nodes) requests.
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
}

export interface ObservedNode {
  readonly name: string
  readonly online: boolean
  readonly cpus: number
  readonly memoryBytes: number
  readonly storages: ReadonlyArray<ObservedStorage>
  /** Volume ids present on the image storage (content listing), e.g. `local:import/noble.qcow2`. */
  readonly imageVolids: ReadonlySet<string>
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
}

export interface Observed {
  readonly nodes: ReadonlyMap<string, ObservedNode>
  readonly vms: ReadonlyArray<ObservedVm>
  readonly vmDetails: ReadonlyMap<number, VmDetails>
}
