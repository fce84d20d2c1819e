import type { Desired } from "./Desired.js"
import { inSafetyProtect } from "./inSafetyProtect.js"
import {
  CloudInitTag,
  DestroyTag,
  RebuildTag,
  RejoinTag,
  RestartTag,
  tagList,
  UpgradeKeepCordonTag,
  UpgradeTag
} from "./Marks.js"
import type { Observed, ObservedVm } from "./Observed.js"

/** A VM `homelab adopt` may take over: same name and node as homelab.yaml asks, without the ownership tag. */
export interface AdoptCandidate {
  readonly node: string
  readonly name: string
  readonly vmid: number
  /** Its k3s role in homelab.yaml; undefined without a `k3s:` section (no role then). */
  readonly role?: "server" | "agent" | undefined
  /** Its state as `/cluster/resources` reports it (`running`, `stopped`, …). */
  readonly status: string
  /** Its tags now; every one of them is kept, the ownership tag is added. */
  readonly tags: ReadonlyArray<string>
  /** The config digest it was read with: the tag is written only if nobody changed the VM since. */
  readonly digest: string | undefined
  /** PVE's protection flag or `safety.protect`: adopted only when named, and never changed by apply afterwards. */
  readonly protected: boolean
}

/** A VM of homelab.yaml that is not adopted, and why (each one needs the user). */
export interface AdoptRefusal {
  readonly code: string
  readonly node: string
  readonly name: string
  readonly vmid?: number | undefined
  readonly message: string
  readonly hint: string
}

/** What `adopt` found for the VMs it was asked about. */
export interface AdoptSelection {
  readonly candidates: ReadonlyArray<AdoptCandidate>
  readonly refused: ReadonlyArray<AdoptRefusal>
  /** Already ours: nothing to do. */
  readonly owned: ReadonlyArray<{ readonly node: string; readonly name: string; readonly vmid: number }>
  /** Named but no VM of that name exists (apply creates it). With `all`, such VMs are not listed. */
  readonly absent: ReadonlyArray<{ readonly node: string; readonly name: string }>
  /** Named, but not a VM of homelab.yaml. */
  readonly unknown: ReadonlyArray<string>
}

export interface AdoptOptions {
  /** The VMs to adopt, by name (homelab.yaml's names). */
  readonly names?: ReadonlyArray<string> | undefined
  /** Every VM of homelab.yaml that a VM without the ownership tag holds (protected ones excepted: they need a name). */
  readonly all?: boolean | undefined
}

/** The tags a run of homelab leaves on a VM while it works on it (see Marks.ts). */
const runMarks: ReadonlyArray<string> = [
  RebuildTag,
  RejoinTag,
  UpgradeTag,
  UpgradeKeepCordonTag,
  RestartTag,
  CloudInitTag,
  DestroyTag
]

/**
 * Which VMs `adopt` takes over, pure. For each VM of homelab.yaml that was named (or every one, with `all`): a VM of
 * that name without the ownership tag, alone of its name, on the node homelab.yaml puts it, a QEMU VM and not a
 * template, not locked, carrying none of homelab's run marks, whose configuration was read, is a candidate. A
 * protected one is a candidate only when named; with `all` it is refused, asking for its name. A VM on another node
 * is refused naming both nodes. `observed` must come from `observe(…, { adoption: true })` (the configs of same-named
 * VMs that are not ours: digest, protection, lock, tags).
 */
export const selectAdoptions = (desired: Desired, observed: Observed, options: AdoptOptions): AdoptSelection => {
  const all = options.all === true
  const named = new Set(options.names ?? [])
  const wanted = desired.nodes.flatMap((n) => n.vms.map((vm) => ({ node: n.name, name: vm.name, role: vm.role })))
  const unknown = [...named].filter((name) => !wanted.some((w) => w.name === name))
  const candidates: Array<AdoptCandidate> = []
  const refused: Array<AdoptRefusal> = []
  const owned: Array<{ node: string; name: string; vmid: number }> = []
  const absent: Array<{ node: string; name: string }> = []
  for (const want of wanted) {
    const explicit = named.has(want.name)
    if (!all && !explicit) continue
    const refuse = (code: string, message: string, hint: string, vmid?: number) =>
      refused.push({ code, node: want.node, name: want.name, vmid, message, hint })
    const matches = observed.vms.filter((vm) => vm.name === want.name)
    if (matches.length === 0) {
      if (explicit) absent.push({ node: want.node, name: want.name })
      continue
    }
    if (matches.length > 1) {
      refuse(
        "adopt.duplicate",
        `${matches.length} VMs are named ${want.name} (VMIDs ${matches.map((m) => `${m.vmid} on ${m.node}`).join(", ")}): which one is meant is not clear`,
        "delete or rename the extra ones, then adopt the one that stays"
      )
      continue
    }
    const vm = matches[0] as ObservedVm
    if (vm.tags.includes(desired.ownershipTag)) {
      if (vm.node === want.node) owned.push({ node: want.node, name: want.name, vmid: vm.vmid })
      else if (explicit)
        refuse(
          "adopt.elsewhere",
          `VM ${vm.vmid} ${want.name} is already ours, but on node ${vm.node}; homelab.yaml asks for it on ${want.node}`,
          `migrate it to ${want.node}, or list it under nodes[${vm.node}]`,
          vm.vmid
        )
      continue
    }
    if (vm.node !== want.node) {
      refuse(
        "adopt.wrong-node",
        `VM ${vm.vmid} ${want.name} is on node ${vm.node}, but homelab.yaml asks for it on ${want.node}: not adopted`,
        `migrate it to ${want.node} (\`qm migrate ${vm.vmid} ${want.node}\` on ${vm.node}), or list it under nodes[${vm.node}] in homelab.yaml`,
        vm.vmid
      )
      continue
    }
    if (vm.type !== "qemu" || vm.template) {
      refuse(
        "adopt.not-a-vm",
        `${want.name} (${vm.vmid}) is ${vm.template ? "a template" : "a container"}, not a VM homelab can run k3s on`,
        "rename it, or give the VM in homelab.yaml another name",
        vm.vmid
      )
      continue
    }
    const config = observed.configs?.get(vm.vmid)
    if (config === undefined) {
      const problem = observed.nodes.get(vm.node)?.problem
      refuse(
        "adopt.unread",
        `the configuration of VM ${vm.vmid} ${want.name} could not be read${problem === undefined ? "" : `: ${problem.message}`}`,
        problem?.hint ?? "run homelab adopt again",
        vm.vmid
      )
      continue
    }
    const lock = config.current.lock ?? vm.lock
    if (lock !== undefined) {
      refuse(
        "adopt.locked",
        `VM ${vm.vmid} ${want.name} is locked (${lock}): an operation is in progress`,
        `run homelab adopt again once it is done (\`qm unlock ${vm.vmid}\` only if nothing runs)`,
        vm.vmid
      )
      continue
    }
    const tags = tagList(config.current.tags)
    const marks = tags.filter((t) => runMarks.includes(t) || t === desired.pendingTag)
    if (marks.length > 0) {
      refuse(
        "adopt.marked",
        `VM ${vm.vmid} ${want.name} carries homelab's run mark(s) ${marks.join(", ")} but not '${desired.ownershipTag}': what left them is not clear`,
        `look at the VM; remove ${marks.join(", ")} from its tags by hand, then adopt it`,
        vm.vmid
      )
      continue
    }
    const isProtected = config.current.protection === "1" || inSafetyProtect(desired, want.name, vm.vmid)
    if (isProtected && !explicit) {
      refuse(
        "adopt.protected",
        `VM ${vm.vmid} ${want.name} is protected: not adopted with --all`,
        `name it to adopt it on purpose: \`homelab adopt ${want.name}\` (homelab then reports its drift and never changes or deletes it while it is protected)`,
        vm.vmid
      )
      continue
    }
    candidates.push({
      node: want.node,
      name: want.name,
      vmid: vm.vmid,
      ...(desired.k3s === undefined ? {} : { role: want.role }),
      status: vm.status,
      tags,
      digest: config.digest,
      protected: isProtected
    })
  }
  return { candidates, refused, owned, absent, unknown }
}
