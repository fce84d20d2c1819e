import type { CloudInitChange, ProxmoxApiShape } from "@homelab/proxmox-client"
import * as Effect from "effect/Effect"
import { CloudInitTag } from "./Marks.js"
import type { ObservedVm } from "./Observed.js"

/**
 * The user homelab logs in as on a VM's guest (k3s over SSH). It is the `ciuser` of the cloud-init drive the guest
 * booted from, not homelab.yaml's `vm.user`: PVE writes a changed `ciuser` into the config at once but regenerates
 * the drive only when it next starts the VM (`GET …/cloudinit` lists it as waiting meanwhile), and only then does
 * cloud-init make the new user. So a `vm.user` changed on a running lab is rolled out without losing access: the
 * update changes the config (and marks the VM `homelab-cloudinit`), SSH goes on as the old user, and once PVE started
 * the VM again (a rolling restart, `qm reboot`) SSH uses the new one.
 */

/** A VM to ask PVE about. */
export interface GuestRef {
  readonly node: string
  readonly vmid: number
}

/**
 * Pure: the user the guest has, from its config's `ciuser` and what PVE still holds for its drive (`held`, read for a
 * VM marked `homelab-cloudinit`): a held `ciuser` means the drive (and the guest) still has the value it had before.
 * `fallback` (homelab.yaml's `vm.user`) when neither says: no `ciuser` set, or one first set since the drive was made.
 */
export const guestUserOf = (
  ciuser: string | undefined,
  held: ReadonlyArray<CloudInitChange> | undefined,
  fallback: string
): string => {
  const change = held?.find((c) => c.key === "ciuser")
  if (change !== undefined) return change.drive ?? fallback
  return ciuser === undefined || ciuser === "" ? fallback : ciuser
}

/**
 * The user the guest of VM `ref` has now, read from PVE: its config, and for a VM marked `homelab-cloudinit` what PVE
 * still holds for its drive. A failed read gives `fallback`: the SSH that follows says what is wrong.
 */
export const readGuestUser = (api: ProxmoxApiShape, ref: GuestRef, fallback: string): Effect.Effect<string> =>
  Effect.gen(function* () {
    const config = yield* api.vmConfig(ref.node, ref.vmid)
    const held = config.tags.includes(CloudInitTag) ? yield* api.cloudInitChanges(ref.node, ref.vmid) : undefined
    return guestUserOf(config.ciuser ?? config.raw.ciuser, held, fallback)
  }).pipe(Effect.orElseSucceed(() => fallback))

/** `readGuestUser` for each of `names` that `guests` knows, at once: who to log in as on each now. */
export const readGuestUsers = (
  api: ProxmoxApiShape,
  guests: ReadonlyMap<string, GuestRef>,
  names: ReadonlyArray<string>,
  fallback: string
): Effect.Effect<Map<string, string>> =>
  Effect.forEach(
    names.flatMap((name) => {
      const ref = guests.get(name)
      return ref === undefined ? [] : [[name, ref] as const]
    }),
    ([name, ref]) => Effect.map(readGuestUser(api, ref, fallback), (user) => [name, user] as const),
    { concurrency: "unbounded" }
  ).pipe(Effect.map((pairs) => new Map(pairs)))

/** Where each VM of ours is, by name, as observed (a name on several VMs is left out). */
export const guestRefs = (ownershipTag: string, vms: ReadonlyArray<ObservedVm>): Map<string, GuestRef> => {
  const refs = new Map<string, GuestRef>()
  const twice = new Set<string>()
  for (const vm of vms) {
    if (vm.name === undefined || vm.type !== "qemu" || !vm.tags.includes(ownershipTag)) continue
    if (refs.has(vm.name)) twice.add(vm.name)
    refs.set(vm.name, { node: vm.node, vmid: vm.vmid })
  }
  for (const name of twice) refs.delete(name)
  return refs
}
