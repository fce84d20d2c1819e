import { ProxmoxApi, type ProxmoxApiShape, type ProxmoxError } from "@homelab/proxmox-client"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type Action, isDestructive, vmOf } from "./Action.js"
import { type AdoptCandidate, type AdoptOptions, type AdoptSelection, selectAdoptions } from "./AdoptPlan.js"
import type { Desired } from "./Desired.js"
import { tagList } from "./Marks.js"
import { observe } from "./Observe.js"
import { type Plan, type PlanOptions, plan } from "./Plan.js"

/** A VM `adopt` takes over, with what `apply` does to it once it is ours (the plan's actions and findings for it). */
export interface Adoption extends AdoptCandidate {
  /** What the next `apply` does to it: in-place updates (drift), a restart, a k3s join, … (empty: nothing). */
  readonly actions: ReadonlyArray<Action>
  /** What that plan reports about it without acting (a disk it will not shrink, protected drift, …). */
  readonly findings: Plan["findings"]
}

/** `adopt`'s plan: the VMs it takes over and what apply does to them then; what it will not adopt and why. */
export interface AdoptionPlan extends Omit<AdoptSelection, "candidates"> {
  readonly adoptions: ReadonlyArray<Adoption>
}

/** The result of adopting one VM. */
export interface AdoptOutcome {
  readonly node: string
  readonly name: string
  readonly vmid: number
  readonly status: "adopted" | "failed"
  readonly detail: string
  readonly hint?: string | undefined
}

const withTag = (tags: ReadonlyArray<string>, tag: string): Array<string> =>
  tags.includes(tag) ? [...tags] : [...tags, tag]

/**
 * The Proxmox API as it will look once `vmids` carry `tag`: their tags in `/cluster/resources`, the config and the
 * pending config read with the tag added; everything else (and every write) goes to the real API. Observing through
 * it shows what the next `apply` does to an adopted VM, with the same observation and plan as apply.
 */
const asAdopted = (api: ProxmoxApiShape, vmids: ReadonlySet<number>, tag: string): ProxmoxApiShape => ({
  ...api,
  clusterResources: api.clusterResources.pipe(
    Effect.map((r) => ({
      ...r,
      vms: r.vms.map((vm) => (vmids.has(vm.vmid) ? { ...vm, tags: withTag(vm.tags, tag) } : vm))
    }))
  ),
  clusterVms: api.clusterVms.pipe(
    Effect.map((vms) => vms.map((vm) => (vmids.has(vm.vmid) ? { ...vm, tags: withTag(vm.tags, tag) } : vm)))
  ),
  vmConfig: (node, vmid) =>
    api.vmConfig(node, vmid).pipe(
      Effect.map((c) => {
        if (!vmids.has(vmid)) return c
        const tags = withTag(c.tags, tag)
        return { ...c, tags, raw: { ...c.raw, tags: tags.join(";") } }
      })
    ),
  vmPending: (node, vmid) =>
    api.vmPending(node, vmid).pipe(
      Effect.map((p) => {
        if (!vmids.has(vmid)) return p
        const tags = withTag(tagList(p.current.tags), tag)
        return { ...p, current: { ...p.current, tags: tags.join(";") } }
      })
    )
})

/**
 * What `homelab adopt` would do, read-only: observe the lab (with the configuration of the same-named VMs that are
 * not ours), select the VMs to adopt (`selectAdoptions`: right node, not a template, not locked; protected ones only
 * when named), then observe and plan again as if they carried the ownership tag, to show what the next `apply` does
 * to each: drift changed in place, a restart with `vm.restart: rolling`, nothing at all — the same plan apply makes.
 * A VM that plan would rebuild (stopped, with `health.stopped: recreate`) is adopted only when named: with `all` it
 * is refused (`adopt.would-recreate`), so adopting never leads to a rebuild nobody asked for.
 * Fails only when the cluster cannot be observed at all.
 */
export const planAdoption = Effect.fn("planAdoption")(function* (
  desired: Desired,
  options: AdoptOptions & Pick<PlanOptions, "policy" | "memoryAdjustment">
) {
  const observed = yield* observe(desired, { adoption: true })
  const { candidates, ...rest } = selectAdoptions(desired, observed, options)
  if (candidates.length === 0) return { ...rest, adoptions: [] } satisfies AdoptionPlan
  const api = yield* ProxmoxApi
  const view = asAdopted(api, new Set(candidates.map((c) => c.vmid)), desired.ownershipTag)
  const after = yield* observe(desired).pipe(Effect.provide(Layer.succeed(ProxmoxApi, ProxmoxApi.of(view))))
  const then = plan(desired, after, { policy: options.policy, memoryAdjustment: options.memoryAdjustment })
  const adoptions: Array<Adoption> = []
  const refused = [...rest.refused]
  for (const c of candidates) {
    const adoption: Adoption = {
      ...c,
      actions: then.actions.filter((a) => a.node === c.node && vmOf(a) === c.name),
      findings: then.findings.filter((f) => f.node === c.node && f.vm === c.name)
    }
    // A VM the next apply would rebuild (a stopped one, with health.stopped: recreate) is adopted only when named.
    const rebuild =
      adoption.actions.find(isDestructive)?.reason ??
      adoption.findings.find((f) => f.code === "vm.recreate-deferred" || f.code === "vm.recreate-needs-k3s")?.message
    if (rebuild !== undefined && options.names?.includes(c.name) !== true) {
      refused.push({
        code: "adopt.would-recreate",
        node: c.node,
        name: c.name,
        vmid: c.vmid,
        message: `VM ${c.vmid} ${c.name} would be rebuilt by the next apply once adopted (${rebuild}): not adopted with --all`,
        hint: `start it (or fix it) first, or name it to adopt it knowing apply rebuilds it: \`homelab adopt ${c.name}\``
      })
      continue
    }
    adoptions.push(adoption)
  }
  return { ...rest, refused, adoptions } satisfies AdoptionPlan
})

/**
 * Adopt the VMs: add the ownership tag to each, keeping every tag it has, in one `PUT …/config` carrying the digest
 * its configuration was read with, so a VM someone changed since (renamed, protected, locked, retagged) is refused,
 * not overwritten. Nothing else on the VM changes; the next `apply` manages it (drift in place, never a rebuild for
 * being adopted). Each VM on its own: one failure does not stop the others.
 */
export const adopt = Effect.fn("adopt")(function* (desired: Desired, adoptions: ReadonlyArray<AdoptCandidate>) {
  const api = yield* ProxmoxApi
  return yield* Effect.forEach(adoptions, (a) => {
    // sorted, as PVE stores them
    const tags = withTag(a.tags, desired.ownershipTag).sort()
    const base = { node: a.node, name: a.name, vmid: a.vmid }
    return api.updateVmConfig(a.node, a.vmid, { tags: tags.join(";") }, { digest: a.digest }).pipe(
      Effect.as<AdoptOutcome>({
        ...base,
        status: "adopted",
        detail: `VM ${a.vmid} ${a.name} on ${a.node} is ours now (tags: ${tags.join(";")})`
      }),
      Effect.catch((error: ProxmoxError) =>
        Effect.succeed<AdoptOutcome>(
          error.reason._tag === "ApiError" && /checksum mismatch/.test(error.reason.detail)
            ? {
                ...base,
                status: "failed",
                detail: `VM ${a.vmid} ${a.name} was changed by someone else since it was read (its config digest differs): not adopted`,
                hint: `run homelab adopt ${a.name} again: it shows the VM as it is now`
              }
            : {
                ...base,
                status: "failed",
                detail: `VM ${a.vmid} ${a.name} on ${a.node}: ${error.message}`,
                hint: `run homelab adopt ${a.name} again`
              }
        )
      )
    )
  })
})
