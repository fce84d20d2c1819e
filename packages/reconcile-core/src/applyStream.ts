import type { ProxmoxApi } from "@homelab/proxmox-client"
import { Effect, Queue, Stream } from "effect"
import type { VmAction } from "./Action.js"
import { type ApplyEvent, type ApplyOptions, type ApplyResult, apply } from "./Apply.js"
import type { Desired } from "./Desired.js"

/** The last element of `applyStream`: what the whole apply did. */
export interface ApplyFinished {
  readonly _tag: "ApplyFinished"
  readonly result: ApplyResult
}

/**
 * `apply` as a stream of its typed events, ending with `ApplyFinished`: for progress displays and JSON event logs
 * (`Stream.runForEach`, `Stream.map(JSON.stringify)`). Interrupting the stream interrupts the apply; VMs it was
 * provisioning keep their `homelab-pending` mark and are finished by the next run.
 */
export const applyStream = (
  actions: ReadonlyArray<VmAction>,
  desired: Desired,
  options: Omit<ApplyOptions, "onEvent"> = {}
): Stream.Stream<ApplyEvent | ApplyFinished, never, ProxmoxApi> =>
  Stream.callback<ApplyEvent | ApplyFinished, never, ProxmoxApi>((queue) =>
    apply(actions, desired, { ...options, onEvent: (event) => Queue.offer(queue, event).pipe(Effect.asVoid) }).pipe(
      Effect.flatMap((result) => Queue.offer(queue, { _tag: "ApplyFinished", result })),
      Effect.andThen(Queue.end(queue))
    )
  )
