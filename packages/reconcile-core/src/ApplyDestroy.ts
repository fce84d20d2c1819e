import {
  K3sJoin,
  type K3sJoinEvent,
  type K3sJoinShape,
  type K3sServer,
  memberIdHex,
  memberWithoutNode,
  orphanMembersOf
} from "@homelab/k3s-join"
import type { ProxmoxApiShape, ProxmoxError, WaitOptions } from "@homelab/proxmox-client"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { DeleteImage, DestroyVm, K3sVia } from "./Action.js"
import type { WaitProgress } from "./Apply.js"
import type { Desired } from "./Desired.js"
import { DestroyTag } from "./Marks.js"
import { checkQuorumNow } from "./QuorumGuard.js"
import { staleMemberTeardownHint } from "./StaleMember.js"
import { drainTimeout } from "./Timeouts.js"

/** What the executor lends a teardown step: the clients, progress reporting, and how a step fails. */
export interface TeardownContext<E> {
  readonly api: ProxmoxApiShape
  readonly k3s: Option.Option<K3sJoinShape>
  readonly desired: Desired
  readonly progress: (step: string, wait?: WaitProgress) => Effect.Effect<void>
  /** Wait options of one PVE task (limit and progress from the run's settings). */
  readonly task: (what: string) => WaitOptions
  readonly k3sProgress: (event: K3sJoinEvent) => void
  /** Fail the step with a message for a person and what to do about it. */
  readonly fail: (message: string, hint?: string) => Effect.Effect<never, E>
  /** The k3s server a step goes through (`via`, else the configured `k3s.server`). */
  readonly serverOf: (via: K3sVia | undefined) => Effect.Effect<K3sServer, E>
}

/**
 * Tear down one VM of ours (`DestroyVm`): re-check it, then with its k3s Node: the quorum guard for a server (with
 * the cluster as it is now; refused too while etcd lists a member of its name that no Node owns), mark the VM
 * (`homelab-destroy`), cordon and drain the Node while the VM runs, stop the VM (a kubelet still running would
 * register the Node again, k3s.md §5.2), delete the Node and its `<name>.node-password.k3s` secret (a server's etcd
 * member with it, guarded again by `removeServer`), and only then destroy the VM with purge. A VM already gone is fine
 * (an earlier run got that far); its Node is still removed.
 */
export const destroyVm = <E>(a: DestroyVm, ctx: TeardownContext<E>) =>
  Effect.gen(function* () {
    const { api, desired, progress, fail } = ctx
    const { node, vmid, name } = a
    const read = yield* Effect.all([api.vmStatus(node, vmid), api.vmConfig(node, vmid)]).pipe(
      Effect.map(Option.some),
      Effect.catchReason("ProxmoxError", "NotFound", () => Effect.succeed(Option.none()))
    )
    if (Option.isSome(read)) {
      const [status, config] = read.value
      if (config.raw.protection === "1")
        return yield* fail(`VM ${vmid} became protected since the plan; not deleting it`)
      if (!config.tags.includes(desired.ownershipTag))
        return yield* fail(`VM ${vmid} no longer carries '${desired.ownershipTag}'; not deleting it`)
      if (config.name !== name) return yield* fail(`VM ${vmid} is now named ${config.name}; not deleting it`)
      if (status.lock !== undefined && status.lock !== "suspended")
        return yield* fail(`VM ${vmid} got a lock (${status.lock}) since the plan; not deleting it`)
    }
    const running = Option.isSome(read) && read.value[0].status === "running"

    const member = a.k3sNode
    const client = Option.getOrUndefined(ctx.k3s)
    const k3s =
      member === undefined
        ? undefined
        : client === undefined
          ? yield* fail("no k3s client in this run", "a bug: please report it")
          : { client, server: yield* ctx.serverOf(a.k3sVia) }
    const k3sFailed = (what: string, hint: string) => (e: { readonly message: string }) =>
      fail(`${what}: ${e.message}`, hint)

    if (member !== undefined && k3s !== undefined) {
      const { client, server } = k3s
      if (member.role === "server" && running) {
        yield* progress(`checking etcd's quorum before taking k3s server ${name} out`)
        const verdict = yield* checkQuorumNow(server, name, a.purpose).pipe(
          Effect.provideService(K3sJoin, client),
          Effect.catch(k3sFailed(`could not check etcd's quorum before removing ${name}`, "nothing was changed"))
        )
        if (!verdict.ok) {
          return yield* fail(
            `not removing k3s server ${name}: ${verdict.reason}`,
            "nothing was changed; bring the other servers back to Ready, then run again (one server goes at a time)"
          )
        }
        // a member of its name that no Node owns since the plan (its Node force-deleted): removeServer would refuse
        // once the Node is cordoned and the VM stopped; refused now, in the plan's words, with nothing changed
        const orphans = orphanMembersOf(verdict.facts, name)
        const orphan = orphans[0]
        if (orphan !== undefined) {
          return yield* fail(
            `not ${a.purpose === "prune" ? "pruning" : "destroying"} k3s server ${name}: ${memberWithoutNode(name, orphans)}; nothing was cordoned or stopped`,
            staleMemberTeardownHint(
              name,
              vmid,
              memberIdHex(orphan.id),
              server.host,
              a.purpose === "prune" ? "homelab apply --prune" : "homelab destroy"
            )
          )
        }
      }
      if (running) {
        // Durable intent: a teardown that stops short leaves a cordon the next run knows to be ours (`DestroyTag`);
        // a Node cordoned before (by hand) is not marked: that cordon is not ours to undo.
        if (Option.isSome(read) && member.cordoned !== true && !read.value[1].tags.includes(DestroyTag)) {
          yield* api.updateVmConfig(node, vmid, { tags: [...read.value[1].tags, DestroyTag].sort().join(";") })
        }
        yield* progress(`cordoning k3s Node ${name}`)
        yield* client
          .cordon(server, name)
          .pipe(
            Effect.catch(k3sFailed(`cordoning k3s Node ${name}`, `VM ${vmid} is untouched; is a k3s server Ready?`))
          )
        yield* progress(`draining k3s Node ${name}`)
        const drained = yield* client
          .drain(server, name, { timeout: drainTimeout(desired.k3s), onEvent: ctx.k3sProgress })
          .pipe(
            Effect.catch(
              k3sFailed(
                `draining k3s Node ${name}`,
                `VM ${vmid} still runs and its Node stays cordoned (\`kubectl uncordon ${name}\` undoes that); fix what blocks the eviction (a PodDisruptionBudget?) and run again`
              )
            )
          )
        if (drained.evicted.length > 0) yield* progress(`evicted ${drained.evicted.length} pod(s) from ${name}`)
      }
    }
    if (running) {
      yield* progress(`stopping VM ${vmid}`)
      yield* api.stopVm(node, vmid, { wait: ctx.task(`stopping VM ${vmid}`) })
    }
    if (member !== undefined && k3s !== undefined) {
      const { client, server } = k3s
      yield* progress(`removing k3s Node ${name} and its password secret`)
      const hint = `VM ${vmid} is stopped, not destroyed: run again to finish (is a k3s server Ready?)`
      yield* member.role === "server"
        ? client
            .removeServer({ server, node: name, onEvent: ctx.k3sProgress })
            .pipe(Effect.catch(k3sFailed(`removing k3s server ${name} (its Node and etcd member)`, hint)))
        : client.cleanupStaleNode(server, name).pipe(Effect.catch(k3sFailed(`removing k3s Node ${name}`, hint)))
    }
    const k3sDone = member === undefined ? "" : `; its k3s ${member.role} Node and password secret removed first`
    if (Option.isNone(read)) return { detail: `VM ${vmid} ${name} was already gone${k3sDone}` }
    yield* progress(`destroying VM ${vmid} (purge)`)
    yield* api.destroyVm(node, vmid, { purge: true, wait: ctx.task(`destroying VM ${vmid}`) })
    return { detail: `VM ${vmid} ${name} destroyed${k3sDone}` }
  })

/** `DeleteImage`: the image homelab.yaml names, removed from the node's storage (already gone is fine). */
export const deleteImage = <E>(a: DeleteImage, ctx: TeardownContext<E>) =>
  Effect.gen(function* () {
    const [storage] = a.volid.split(":")
    yield* ctx.progress(`deleting ${a.volid}`)
    const deleted = yield* ctx.api.deleteVolume(a.node, storage ?? "", a.volid, ctx.task(`deleting ${a.volid}`)).pipe(
      Effect.as(true),
      Effect.catchReason("ProxmoxError", "NotFound", () => Effect.succeed(false))
    )
    return { detail: deleted ? `${a.volid} deleted` : `${a.volid} was already gone` }
  }) as Effect.Effect<{ detail: string }, E | ProxmoxError>
