import { Effect } from "effect"
import { Command } from "effect/cli"

export const statusCommand = Command.make("status", {}, () =>
  Effect.promise(() => import("./statusRun.js")).pipe(Effect.flatMap((run) => run.status()))
).pipe(Command.withDescription("Show every VM of homelab.yaml: node, VMID, state, health, IP, and the transport used"))
