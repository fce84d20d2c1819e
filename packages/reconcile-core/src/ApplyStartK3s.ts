import type { K3sJoinShape } from "@homelab/k3s-join"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { StartK3s } from "./Action.js"
import type { Desired } from "./Desired.js"

/** What `startK3s` needs from the run that executes it (`apply`). */
export interface StartK3sContext<E> {
  readonly k3sJoin: Option.Option<K3sJoinShape>
  readonly desired: Desired
  readonly progress: (step: string) => Effect.Effect<void>
  readonly fail: (message: string, hint?: string) => Effect.Effect<never, E>
  /** The user to log in as on a VM's guest now (`GuestUser.ts`). */
  readonly guestUser: (vm: string, vmid?: number) => Effect.Effect<string>
}

/**
 * `StartK3s`: the server VM's stopped k3s unit started over SSH, as k3s-join reaches the VM (`K3sJoin.startUnit`), at
 * the IP the plan read. It does not wait: a server comes up only once etcd has its quorum, which may need the other
 * servers this run brings back; the end of the run waits for its Node (`membershipAtEnd`).
 */
export const startK3s = <E>(ctx: StartK3sContext<E>, a: StartK3s) =>
  Effect.gen(function* () {
    const k3s = ctx.desired.k3s
    if (k3s === undefined || Option.isNone(ctx.k3sJoin)) {
      return yield* ctx.fail("no k3s client in this run", "a bug: please report it")
    }
    const user = yield* ctx.guestUser(a.vm, a.vmid)
    yield* ctx.progress(`starting k3s on ${a.vm} (${a.ip})`)
    yield* ctx.k3sJoin.value
      .startUnit({ host: a.ip, port: k3s.vmSshPort, user }, "server")
      .pipe(
        Effect.catch((e) =>
          ctx.fail(
            `starting k3s on ${a.vm} (${a.ip}): ${e.message}`,
            `on ${a.ip}: \`sudo systemctl start k3s\`, then \`journalctl -u k3s\`; check SSH to the VM (vm.user, vm.sshPort)`
          )
        )
      )
    return {
      detail: `k3s on ${a.vm} started (it was ${a.state}); its Node is waited for at the end of the run`,
      ip: a.ip
    }
  })
