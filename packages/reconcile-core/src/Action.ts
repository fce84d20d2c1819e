import type { DesiredImage } from "./Desired.js"

/** A VM fully sized and addressed for one node: what `CreateVm` sends to Proxmox. */
export interface VmSpec {
  readonly name: string
  readonly node: string
  readonly role: "server" | "agent"
  readonly cores: number
  readonly memoryMiB: number
  readonly diskGiB: number
  readonly storage: string
  readonly bridges: ReadonlyArray<string>
  readonly tags: ReadonlyArray<string>
  readonly cpuType: string
  /** Volume to import the boot disk from, e.g. `local:import/noble.qcow2`. */
  readonly imageVolid: string
  /** VMIDs to try, in order (a pinned VMID is the only candidate). */
  readonly vmidCandidates: ReadonlyArray<number>
}

/**
 * One step of a plan. Every action says why (`reason`); the apply step executes them per node, in order.
 * `RecreateVm` is the only destructive action: the CLI asks before running it.
 */
export type Action =
  | {
      readonly _tag: "DownloadImage"
      readonly node: string
      readonly image: DesiredImage
      readonly volid: string
      readonly reason: string
    }
  | { readonly _tag: "CreateVm"; readonly node: string; readonly spec: VmSpec; readonly reason: string }
  | {
      readonly _tag: "RecreateVm"
      readonly node: string
      readonly vmid: number
      readonly spec: VmSpec
      readonly reason: string
      readonly evidence: ReadonlyArray<string>
    }
  | {
      readonly _tag: "FinishVm"
      readonly node: string
      readonly vmid: number
      readonly spec: VmSpec
      readonly reason: string
    }
  | {
      readonly _tag: "StartVm"
      readonly node: string
      readonly vmid: number
      readonly name: string
      readonly reason: string
    }
  | {
      readonly _tag: "ResumeVm"
      readonly node: string
      readonly vmid: number
      readonly name: string
      readonly reason: string
    }
  | JoinAction

/** The actions of phases 1–2 (image and VMs), executed by `apply`. */
export type VmAction = Exclude<Action, JoinAction>

/** Phase 3: make one VM a Ready member of k3s. */
export interface JoinAction {
  readonly _tag: "JoinK3s"
  readonly node: string
  readonly vm: string
  readonly vmid: number
  readonly ip: string
  readonly role: "server" | "agent"
  /** Delete the stale Node and `<name>.node-password.k3s`, and forget the old SSH host key, before joining. */
  readonly rejoin: boolean
  readonly reason: string
}

/** Something the plan reports without acting: why a VM or node is left alone. */
export interface Finding {
  readonly code: string
  readonly severity: "error" | "warning" | "info"
  readonly node: string
  readonly vm?: string | undefined
  readonly vmid?: number | undefined
  readonly message: string
  readonly hint?: string | undefined
}

export const isDestructive = (action: Action): boolean => action._tag === "RecreateVm"

/** A one-line, human description of an action (the CLI's plan rows). */
export const describeAction = (action: Action): string => {
  switch (action._tag) {
    case "DownloadImage":
      return `download ${action.image.filename} to ${action.volid.split(":")[0]} on ${action.node}`
    case "CreateVm":
      return `create VM ${action.spec.name} on ${action.node} (${action.spec.cores} cores, ${action.spec.memoryMiB} MiB, ${action.spec.diskGiB} GiB)`
    case "RecreateVm":
      return `recreate VM ${action.vmid} ${action.spec.name} on ${action.node}`
    case "FinishVm":
      return `finish provisioning VM ${action.vmid} ${action.spec.name} on ${action.node}`
    case "StartVm":
      return `start VM ${action.vmid} ${action.name} on ${action.node}`
    case "ResumeVm":
      return `resume VM ${action.vmid} ${action.name} on ${action.node}`
    case "JoinK3s":
      return `${action.rejoin ? "rejoin" : "join"} ${action.vm} (${action.ip}) to k3s as ${action.role === "server" ? "a server" : "an agent"}`
  }
}
