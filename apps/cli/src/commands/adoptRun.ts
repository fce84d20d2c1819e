// What `adopt` runs, loaded only when it runs.
import {
  type AdoptionPlan,
  type AdoptOutcome,
  adopt as adoptVms,
  desiredFromConfig,
  healthPolicyFromConfig,
  planAdoption
} from "@homelab/reconcile-core"
import * as Console from "effect/Console"
import * as Prompt from "effect/cli/Prompt"
import * as Effect from "effect/Effect"
import { CommandFailed } from "../CommandFailed.js"
import { toCommandFailed } from "../describeError.js"
import { ExitCode } from "../ExitCode.js"
import { isInteractive } from "../isInteractive.js"
import { loadConfig, warnConfig } from "../LoadedConfig.js"
import { meantNames } from "../meantNames.js"
import { root } from "../Root.js"
import { adoptionJson, renderAdoption, renderOutcomes } from "../render/AdoptView.js"
import { noticeLine } from "../render/Progress.js"
import { type Notice, proxmoxLayer } from "../Session.js"

const usage = (userMessage: string) => new CommandFailed({ userMessage, exitCode: ExitCode.Usage })

/** What was asked for and cannot be adopted: each VM with its reason (exit 1). */
const leftOver = (planned: AdoptionPlan, outcomes: ReadonlyArray<AdoptOutcome>): Array<string> => [
  ...planned.refused.map((r) => `${r.name} (${r.message})`),
  ...planned.absent.map((a) => `${a.name} (no VM of that name exists)`),
  ...outcomes.filter((o) => o.status === "failed").map((o) => `${o.name} (${o.detail})`)
]

export const adopt = ({
  vms,
  all,
  yes
}: {
  readonly vms: ReadonlyArray<string>
  readonly all: boolean
  readonly yes: boolean
}) =>
  Effect.gen(function* () {
    const flags = yield* root
    if (all && vms.length > 0) return yield* usage("adopt: name VMs or give --all, not both")
    if (!all && vms.length === 0) {
      return yield* usage("adopt: name the VM(s) to adopt (their names in homelab.yaml), or give --all")
    }
    const loaded = yield* loadConfig(flags.config, process.env)
    yield* warnConfig(loaded)
    const known = loaded.config.nodes.flatMap((n) => n.vms.map((vm) => vm.name))
    const unknown = vms.filter((name) => !known.includes(name))
    if (unknown.length > 0) {
      const meant = meantNames(vms, known)
      return yield* usage(
        `adopt ${unknown.join(" ")}: not a VM of ${loaded.path} (its VMs: ${known.join(", ")})${meant === undefined ? "" : `; did you mean \`homelab adopt ${meant.join(" ")}\`?`}`
      )
    }
    const desired = desiredFromConfig(loaded.config, { sshKeys: loaded.sshKeys })
    const policy = healthPolicyFromConfig(loaded.config)
    const layer = yield* proxmoxLayer(loaded, (n: Notice) => {
      if (!flags.json) process.stdout.write(`${noticeLine(n)}\n`)
    })
    // One Proxmox client for the whole command (its notices are shown once).
    const program = Effect.gen(function* () {
      const planned = yield* planAdoption(desired, { names: vms, all, policy })
      if (!flags.json) yield* Console.log(renderAdoption(planned, desired.ownershipTag))

      const finish = (outcomes: ReadonlyArray<AdoptOutcome> | undefined) =>
        Effect.gen(function* () {
          if (flags.json) yield* Console.log(JSON.stringify(adoptionJson(planned, outcomes)))
          const left = leftOver(planned, outcomes ?? [])
          if (left.length > 0) {
            return yield* new CommandFailed({
              userMessage: `${left.length} VM(s) not adopted: ${left.join("; ")}`,
              exitCode: ExitCode.Error,
              code: "not-adopted"
            })
          }
        })

      if (planned.adoptions.length === 0) return yield* finish(undefined)
      const list = planned.adoptions.map((a) => `${a.vmid} ${a.name}`).join(", ")
      const confirmed = yes
        ? true
        : isInteractive()
          ? yield* Prompt.run(
              Prompt.Confirm({
                message: `Adopt ${planned.adoptions.length} VM(s): ${list}? (adds the tag '${desired.ownershipTag}', keeps their other tags; apply then manages them)`,
                initial: false
              })
            ).pipe(Effect.orElseSucceed(() => false))
          : false
      if (!confirmed) {
        if (flags.json) yield* Console.log(JSON.stringify(adoptionJson(planned, undefined)))
        return yield* new CommandFailed({
          userMessage: `Not adopting ${planned.adoptions.length} VM(s) (${list}) without confirmation${isInteractive() ? "" : " (not interactive)"}: re-run with --yes to adopt them.`,
          exitCode: ExitCode.NeedsConfirmation
        })
      }
      const outcomes = yield* adoptVms(desired, planned.adoptions)
      if (!flags.json) {
        yield* Console.log(["", renderOutcomes(outcomes)].join("\n"))
        if (outcomes.some((o) => o.status === "adopted")) {
          yield* Console.log("Nothing else was changed. `homelab plan` shows what apply now changes on them, in place.")
        }
      }
      return yield* finish(outcomes)
    }).pipe(Effect.provide(layer))
    return yield* toCommandFailed(program, desired)
  })
