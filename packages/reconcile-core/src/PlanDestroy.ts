import type { Action, DeleteImage, DestroyVm, Finding } from "./Action.js"
import { closestName } from "./config/internal/suggest.js"
import type { Desired } from "./Desired.js"
import type { Observed, ObservedVm } from "./Observed.js"
import { isProtected, type Removal, removals } from "./Orphans.js"
import { imageVolid, type Plan } from "./Plan.js"
import { oneAtATime } from "./QuorumGuard.js"

/** What `homelab destroy` tears down. */
export interface DestroyOptions {
  /** Only these PVE nodes (names from homelab.yaml, or nodes that run VMs of ours); default: every node. */
  readonly only?: ReadonlyArray<string> | undefined
  /** Also delete the cloud image homelab.yaml names from each node's image storage (`--images`). */
  readonly images?: boolean | undefined
}

const label = (vm: ObservedVm) => `${vm.vmid}${vm.name === undefined ? "" : ` ${vm.name}`}`

/**
 * The teardown plan, pure: every VM of ours on the nodes in scope is destroyed (`DestroyVm`: its k3s Node drained
 * and removed first), whether homelab.yaml asks for it or it is an orphan. Protected VMs of ours and VMs without the
 * ownership tag are never touched and are listed (`info`). A VM that cannot go this run says why (locked, its node
 * out of reach, the k3s cluster unreadable, or it is the server homelab reads the cluster through). With `images`,
 * the image homelab.yaml names is deleted from each node in scope that holds it, once that node's VMs are gone. An
 * `only` name that is neither in homelab.yaml nor a node of the PVE cluster plans nothing at all (`node.unknown`).
 */
export const planDestroy = (desired: Desired, observed: Observed, options: DestroyOptions = {}): Plan => {
  const inFile = desired.nodes.map((n) => n.name)
  const ours = (vm: ObservedVm) => vm.type === "qemu" && vm.tags.includes(desired.ownershipTag)
  const scope = (options.only ?? [...inFile, ...observed.vms.filter(ours).map((vm) => vm.node)]).filter(
    (n, i, all) => all.indexOf(n) === i
  )
  const wanted = new Map(desired.nodes.flatMap((n) => n.vms.map((vm) => [vm.name, n.name] as const)))
  const actions: Array<Action> = []
  const findings: Array<Finding> = []
  const k3sServer = desired.k3s?.server?.host
  // Every server of the k3s cluster is a VM of ours that goes: the cluster goes with them (its datastore is on them),
  // so no Node is drained or removed one by one, and no quorum is kept.
  const k3sServers = observed.k3s?._tag === "Nodes" ? observed.k3s.nodes.filter((n) => n.role === "server") : []
  const going = new Set(
    observed.vms
      .filter((vm) => scope.includes(vm.node) && ours(vm) && !vm.template && vm.name !== undefined)
      .filter((vm) => !isProtected(desired, observed, vm))
      .map((vm) => vm.name as string)
  )
  const clusterGoes = k3sServers.length > 0 && k3sServers.every((n) => going.has(n.name))

  // A name that is neither in homelab.yaml nor a node of the PVE cluster is a mistake (a typo): nothing is torn down,
  // on no node, and the plan says why (`node.unknown`, blocked).
  const unknown = (options.only ?? []).filter(
    (name) =>
      !inFile.includes(name) &&
      observed.pveNodes !== undefined &&
      !observed.pveNodes.includes(name) &&
      !observed.vms.some((vm) => vm.node === name)
  )
  if (unknown.length > 0) {
    const known = [...new Set([...inFile, ...(observed.pveNodes ?? [])])]
    const didYouMean = (name: string) => {
      const guess = closestName(name, known)
      return guess === undefined ? "" : `did you mean ${guess}? `
    }
    return {
      nodes: scope,
      actions: [],
      findings: unknown.map((name) => ({
        code: "node.unknown",
        effect: "blocked" as const,
        layer: "node" as const,
        node: name,
        message: `--only ${name}: neither a node of homelab.yaml nor a node of the PVE cluster (nodes: ${known.join(", ")})`,
        hint: `${didYouMean(name)}check the name: nothing was destroyed, on any node`
      }))
    }
  }
  for (const name of options.only ?? []) {
    if (inFile.includes(name) || observed.vms.some((vm) => vm.node === name)) continue
    findings.push({
      code: "node.nothing",
      effect: "info",
      layer: "node",
      node: name,
      message: `--only ${name}: not a node of homelab.yaml, and no guest runs there (is the name right?)`
    })
  }
  const vms = observed.vms.filter((vm) => scope.includes(vm.node))
  /** Per guest in scope, in order: what is said about it (never touched, …), or it is a VM of ours that may go. */
  const slots: Array<{ readonly vmid: number; readonly finding?: Finding | undefined }> = []
  const candidates: Array<Removal> = []
  for (const vm of [...vms].sort((a, b) => scope.indexOf(a.node) - scope.indexOf(b.node) || a.vmid - b.vmid)) {
    const base = { layer: "vm" as const, node: vm.node, vm: vm.name, vmid: vm.vmid }
    const list = (finding: Finding) => slots.push({ vmid: vm.vmid, finding })
    if (!ours(vm)) {
      list({
        ...base,
        code: "vm.not-ours",
        effect: "info",
        message: `${vm.type === "lxc" ? "container" : "VM"} ${label(vm)} on ${vm.node} lacks the tag '${desired.ownershipTag}': not ours, not touched`
      })
      continue
    }
    if (vm.template) {
      list({ ...base, code: "vm.template", effect: "info", message: `template ${label(vm)}: not touched` })
      continue
    }
    if (vm.lock === "create" || vm.name === undefined || vm.name === `VM ${vm.vmid}`) {
      list({
        ...base,
        code: "vm.being-created",
        effect: "deferred",
        message: `VM ${vm.vmid} on ${vm.node} is being created (by another run?); not destroying it this run`,
        hint: "run destroy again once the create is finished"
      })
      continue
    }
    if (k3sServer !== undefined && observed.ips?.get(vm.vmid) === k3sServer && !isProtected(desired, observed, vm)) {
      list({
        ...base,
        code: "vm.k3s-server",
        effect: "blocked",
        message: `VM ${label(vm)} is k3s.server (${k3sServer}), the server homelab reads and changes the cluster through; not destroying it`,
        hint: "point k3s.server at another server first, or remove the k3s section to destroy it without touching k3s"
      })
      continue
    }
    const asked = wanted.get(vm.name)
    const reason =
      asked === undefined
        ? `${vm.name} is ours (an orphan: homelab.yaml asks for it on no node)`
        : `${vm.name} is ours (homelab.yaml asks for it on ${asked})`
    slots.push({ vmid: vm.vmid })
    candidates.push({ vm: { ...vm, name: vm.name }, reason })
  }
  // The k3s servers among them one after another, each judged by the cluster the ones before it leave (as a prune's).
  const removed = removals(desired, observed, candidates, "destroy", { clusterGoes })
  const planned = new Map(removed.map((r) => [r.vm.vmid, r.planned] as const))
  for (const r of removed) if ("action" in r.planned) actions.push(r.planned.action)

  // A teardown that takes k3s servers out is all or nothing: when one of them cannot go this run (the quorum guard
  // refuses it, its VM is locked, …), nothing is destroyed, rather than leaving the cluster with some servers gone.
  const serverNodes = new Set(k3sServers.map((n) => n.name))
  const stuck = [
    ...slots.flatMap((slot) => (slot.finding === undefined ? [] : [slot.finding])),
    ...removed.flatMap((r) => ("finding" in r.planned ? [r.planned.finding] : []))
  ].flatMap((f) => (f.vm !== undefined && serverNodes.has(f.vm) && f.effect !== "info" ? [f.vm] : []))
  const held = stuck.length > 0 && actions.length > 0
  const names = stuck.join(", ")
  const heldFinding = (a: DestroyVm): Finding => ({
    code: "vm.destroy-held",
    effect: "blocked",
    layer: "vm",
    node: a.node,
    vm: a.name,
    vmid: a.vmid,
    message: `not destroying VM ${a.vmid} ${a.name}: ${clusterGoes ? "the k3s cluster goes with its servers, but " : ""}k3s server ${names} of this teardown cannot go this run (see ${stuck.length === 1 ? "its" : "their"} finding), and a teardown that takes k3s servers out is all or nothing: nothing is destroyed this run`,
    hint: clusterGoes
      ? `fix what keeps ${names} from going, then run destroy again`
      : "bring the servers that are down back first, destroy fewer servers at once (--only), or destroy every server of the cluster to tear k3s down with them"
  })
  for (const slot of slots) {
    const p = planned.get(slot.vmid)
    if (slot.finding !== undefined) findings.push(slot.finding)
    else if (p !== undefined && "finding" in p) findings.push(p.finding)
    else if (p !== undefined && held) findings.push(heldFinding(p.action))
  }
  if (held) return { nodes: scope, actions: [], findings }
  // One server out of service at a time: each server's teardown waits for the one before it (its etcd member gone).
  actions.splice(
    0,
    actions.length,
    ...oneAtATime(
      actions,
      actions.flatMap((a) => (a._tag === "DestroyVm" && a.k3sNode?.role === "server" ? [[a.id]] : []))
    )
  )

  if (clusterGoes && actions.length > 0) {
    findings.push({
      code: "k3s.cluster-goes",
      effect: "info",
      layer: "k3s",
      node: actions[0]?.node ?? scope[0] ?? "",
      message: `the k3s cluster itself is torn down: every server of it (${k3sServers.map((n) => n.name).join(", ")}) is destroyed, and its etcd datastore with them (every workload, Secret and volume claim in it is gone for good); no Node is drained or removed one by one`
    })
  }
  if (options.images === true) {
    const deleting = new Set<string>()
    for (const node of desired.nodes.filter((n) => scope.includes(n.name))) {
      const volid = imageVolid(node)
      const observedNode = observed.nodes.get(node.name)
      if (observedNode === undefined || !observedNode.imageVolids.has(volid)) continue
      const shared = observedNode.storages.find((s) => s.storage === node.image.storage)?.shared === true
      if (shared && deleting.has(volid)) continue
      deleting.add(volid)
      const after = actions
        .filter((a): a is DestroyVm => a._tag === "DestroyVm" && (shared || a.node === node.name))
        .map((a) => a.id)
      actions.push({
        _tag: "DeleteImage",
        id: `${node.name}:image:delete`,
        node: node.name,
        after,
        volid,
        reason: `--images: ${volid} is the image homelab.yaml names (homelab downloads it)`
      } satisfies DeleteImage)
    }
  }
  return { nodes: scope, actions, findings }
}
