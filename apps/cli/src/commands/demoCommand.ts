import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as Effect from "effect/Effect"

export const demoCommand = Command.make(
  "demo",
  {
    timeScale: Flag.Finite("time-scale").pipe(
      Flag.withDescription("Simulated time factor (1 = real PVE timings; smaller is faster)"),
      Flag.withDefault(0.25)
    )
  },
  (input) => Effect.promise(() => import("./demoRun.js")).pipe(Effect.flatMap((run) => run.demo(input)))
).pipe(
  Command.withDescription(
    "Run the tool against the built-in simulated homelab: apply, apply again (no changes), status (--json: NDJSON, one object per line)"
  )
)
