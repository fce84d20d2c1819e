import { type ClusterVm, ProxmoxApi } from "@homelab/proxmox-client"
import * as Effect from "effect/Effect"

/**
 * PVE's status cache (`/cluster/resources`) refreshes every ~10 s: a VM created moments ago is listed without a
 * name, or as `VM <vmid>` (the placeholder of its create stub) until the next broadcast. A reconciler that trusted
 * those names would not recognise its own new VMs and make duplicates. This reads the real name (and tags) of such
 * VMs from their configs; every other entry is returned as it was.
 */
export const resolveNames = Effect.fn("resolveNames")(function* (vms: ReadonlyArray<ClusterVm>) {
  const api = yield* ProxmoxApi
  return yield* Effect.forEach(
    vms,
    (vm) =>
      vm.type === "qemu" && (vm.name === undefined || vm.name === `VM ${vm.vmid}`) && vm.lock !== "create"
        ? api.vmConfig(vm.node, vm.vmid).pipe(
            Effect.map((config): ClusterVm => {
              const { name: _name, ...rest } = vm
              return config.name === undefined
                ? { ...rest, tags: config.tags }
                : { ...rest, name: config.name, tags: config.tags }
            }),
            Effect.catchReason("ProxmoxError", "NotFound", () => Effect.succeed(vm))
          )
        : Effect.succeed(vm),
    { concurrency: 8 }
  )
})
