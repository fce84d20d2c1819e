import { assert, describe, it } from "@effect/vitest"
import { ProxmoxApi } from "@homelab/proxmox-client"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import type { Action } from "../src/Action.js"
import { desiredFromConfig, healthPolicyFromConfig } from "../src/desiredFromConfig.js"
import { reconcile } from "../src/Reconcile.js"
import {
  actionChanges,
  actionFingerprint,
  checkSavedConfig,
  configSha256,
  factChanges,
  readSavedPlan,
  type SavedPlan,
  type SavedPlanFacts,
  savePlan
} from "../src/SavedPlan.js"
import { clientLayer, type Lab, labScenario, makeLab, simVms, startLab } from "./lab.js"

const cloudPassword = "cloud-pass-4d7f1b9e"

/** Plan (or, with `saved`, apply that saved plan) with a fresh client, as a new `homelab` process would. */
const run = (lab: Lab, saved?: SavedPlan) =>
  Effect.gen(function* () {
    const desired = desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys })
    return yield* reconcile(desired, {
      policy: healthPolicyFromConfig(lab.config),
      apply: saved !== undefined,
      confirm: () => Effect.succeed(true),
      saved: saved === undefined ? undefined : { plan: saved, source: "plan.json" },
      timeouts: { ip: Duration.seconds(20), task: Duration.seconds(60) }
    }).pipe(Effect.provide(clientLayer(lab)))
  })

const saveOf = (lab: Lab, report: Effect.Success<ReturnType<typeof run>>): SavedPlan => {
  const desired = desiredFromConfig(lab.config, { sshKeys: lab.config.vm.sshKeys })
  const saved = savePlan({
    desired,
    observed: report.observed,
    plan: report.plan,
    configSha256: configSha256(lab.yaml),
    options: {},
    createdAt: new Date(0),
    generator: "homelab test"
  })
  // through the file format and back
  return Result.getOrThrow(readSavedPlan(JSON.stringify(saved), "plan.json"))
}

const facts = (over: Partial<SavedPlanFacts> = {}): SavedPlanFacts => ({
  vms: [
    {
      vmid: 4242,
      node: "pve",
      name: "k3s-vm-pve",
      type: "qemu",
      status: "running",
      lock: null,
      tags: ["homelab-managed"],
      digest: "0123456789abcdef0123"
    }
  ],
  nodes: [{ node: "pve", problem: null, online: true, image: { volid: "local:import/a.qcow2", present: true } }],
  k3s: null,
  ...over
})

describe("SavedPlan", () => {
  it.live(
    "a saved plan holds no secret, applies exactly as saved, and is refused (nothing changed) once a VM changed or disappeared",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(labScenario(["pve", "still-fawn"], { ipPool: "127.78.43.10" }))
        const lab = yield* makeLab(sim, { vm: `  password: "${cloudPassword}"` })
        const planned = yield* run(lab)
        const saved = saveOf(lab, planned)
        assert.deepStrictEqual(
          saved.actions.map((a) => [a.type, a.node]),
          [
            ["DownloadImage", "pve"],
            ["CreateVm", "pve"],
            ["DownloadImage", "still-fawn"],
            ["CreateVm", "still-fawn"]
          ]
        )
        const text = JSON.stringify(saved)
        assert.notInclude(text, cloudPassword)
        assert.notInclude(text, sim.info.auth.tokenSecret)

        const applied = yield* run(lab, saved)
        assert.deepStrictEqual(
          applied.outcomes.map((o) => [o.id, o.status]),
          saved.actions.map((a) => [a.id, "done"])
        )
        assert.isTrue(applied.convergence.converged)

        // A plan of the converged lab (nothing to do), then someone edits one VM and deletes the other.
        const clean = saveOf(lab, yield* run(lab))
        assert.deepStrictEqual(clean.actions, [])
        const [pve, fawn] = ["k3s-vm-pve", "k3s-vm-still-fawn"].map(
          (name) => simVms(sim).find((v) => v.name === name) as { vmid: number; node: string }
        ) as [{ vmid: number; node: string }, { vmid: number; node: string }]
        yield* Effect.gen(function* () {
          const api = yield* ProxmoxApi
          yield* api.updateVmConfig("pve", pve.vmid, { description: "edited by hand" })
          yield* api.stopVm("still-fawn", fawn.vmid)
          yield* api.destroyVm("still-fawn", fawn.vmid)
        }).pipe(Effect.provide(clientLayer(lab)))
        sim.clearRequests()
        const refused = yield* Effect.flip(run(lab, clean))
        assert.strictEqual(refused.reason._tag, "SavedPlanStale")
        const changes = refused.reason._tag === "SavedPlanStale" ? refused.reason.changes : []
        const edited = new RegExp(`^VM ${pve.vmid} k3s-vm-pve on pve changed: digest \\w{12} → \\w{12}$`)
        assert.isTrue(
          changes.some((c) => edited.test(c)),
          changes.join("\n")
        )
        assert.include(changes, `VM ${fawn.vmid} k3s-vm-still-fawn on still-fawn disappeared`)
        assert.include(
          changes,
          "the plan now also holds: create VM k3s-vm-still-fawn on still-fawn (4 cores, 32768 MiB, 16 GiB) (no VM named k3s-vm-still-fawn exists)"
        )
        assert.match(refused.message, /^plan\.json: the lab changed since the plan was made, so it is not applied/)
        assert.deepStrictEqual(
          sim.requests().filter((r) => r.method !== "GET"),
          [],
          "nothing was changed"
        )
      }),
    120_000
  )

  it("reads only its own format and version; another homelab.yaml is refused by its SHA-256", () => {
    const message = (text: string) => {
      const r = readSavedPlan(text, "p.json")
      return Result.isFailure(r) ? r.failure.message : "read"
    }
    assert.match(message("{"), /^p\.json: not a saved plan homelab can apply: not JSON/)
    assert.strictEqual(
      message('{"format":"terraform"}'),
      'p.json: not a saved plan homelab can apply: its format is "terraform", not "homelab-plan"'
    )
    assert.strictEqual(
      message('{"format":"homelab-plan","version":2}'),
      "p.json: not a saved plan homelab can apply: it is format version 2, written by a newer homelab; this one reads version 1"
    )
    assert.match(message('{"format":"homelab-plan","version":1}'), /does not match format version 1/)

    const saved = { config: { sha256: configSha256("a: 1\n") } } as SavedPlan
    assert.isTrue(Result.isSuccess(checkSavedConfig(saved, configSha256("a: 1\n"), "p.json", "homelab.yaml")))
    const other = checkSavedConfig(saved, configSha256("a: 2\n"), "p.json", "homelab.yaml")
    assert.isTrue(Result.isFailure(other))
    if (Result.isFailure(other)) {
      assert.match(
        other.failure.message,
        /^p\.json: the plan was made from another homelab\.yaml \(SHA-256 \w{12}; homelab\.yaml is \w{12} now\)/
      )
    }
  })

  it("facts: a VM changed (each field named), appeared or disappeared; the image and k3s Nodes", () => {
    const before = facts({
      k3s: { state: "nodes", nodes: [{ name: "a", role: "agent", ready: "True", version: "v1" }] }
    })
    assert.deepStrictEqual(factChanges(before, before), [])
    const vm = before.vms[0] as SavedPlanFacts["vms"][number]
    const now = facts({
      vms: [
        { ...vm, status: "stopped", tags: [], digest: "fedcba9876543210fedc" },
        { ...vm, vmid: 300, name: "nas", tags: ["storage"], digest: null }
      ],
      nodes: [{ node: "pve", problem: null, online: true, image: { volid: "local:import/a.qcow2", present: false } }],
      k3s: { state: "nodes", nodes: [{ name: "b", role: "agent", ready: "True", version: "v1" }] }
    })
    assert.deepStrictEqual(factChanges(before, now), [
      "VM 4242 k3s-vm-pve on pve changed: status running → stopped, tags homelab-managed → none, digest 0123456789ab → fedcba987654",
      "VM 300 nas on pve appeared",
      "node pve: the image local:import/a.qcow2 was there and is gone",
      "k3s Node a disappeared",
      "k3s Node b appeared"
    ])
    assert.deepStrictEqual(factChanges(now, facts({ vms: [] })).slice(0, 2), [
      "VM 4242 k3s-vm-pve on pve disappeared",
      "VM 300 nas on pve disappeared"
    ])
  })

  it("an action's fingerprint ignores its reason and never sees a secret", () => {
    const action = {
      _tag: "StartVm",
      id: "pve:start:k3s-vm-pve",
      node: "pve",
      after: [],
      vmid: 4242,
      name: "k3s-vm-pve",
      reason: "stopped for 10 s",
      secret: Redacted.make("one")
    } as unknown as Action
    const same = { ...action, reason: "stopped for 20 s", secret: Redacted.make("two") } as unknown as Action
    assert.strictEqual(actionFingerprint(action), actionFingerprint(same))
    assert.notStrictEqual(actionFingerprint(action), actionFingerprint({ ...action, vmid: 4243 } as Action))
    const saved = [
      {
        id: action.id,
        type: "StartVm",
        node: "pve",
        after: [],
        description: "start VM 4242 k3s-vm-pve",
        destructive: false,
        reason: "",
        fingerprint: actionFingerprint(action)
      }
    ]
    assert.deepStrictEqual(actionChanges(saved, [same]), [])
    assert.deepStrictEqual(actionChanges(saved, []), ["the plan no longer holds: start VM 4242 k3s-vm-pve"])
  })
})
