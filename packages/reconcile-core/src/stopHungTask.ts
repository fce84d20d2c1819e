import type { ProxmoxApiShape, ProxmoxError } from "@homelab/proxmox-client"
import { taskPollSchedule } from "@homelab/proxmox-client"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

/**
 * Stops a hung task of ours (PVE signals its worker, which cleans up after itself: a create removes the half-made VM,
 * a resize releases the VM's config lock), then gives it a minute to end. Fails only when the stop itself is refused;
 * a task still running after that minute is left to the next run.
 */
export const stopHungTask = (api: ProxmoxApiShape, upid: string): Effect.Effect<void, ProxmoxError> =>
  api
    .stopTask(upid)
    .pipe(
      Effect.andThen(
        api
          .taskStatus(upid)
          .pipe(
            Effect.repeat({ schedule: taskPollSchedule, until: (s) => s.status === "stopped" }),
            Effect.timeout(Duration.seconds(60)),
            Effect.ignore
          )
      )
    )
