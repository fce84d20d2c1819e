import { assert, describe, it } from "@effect/vitest"
import type { Scenario } from "@homelab/sim"
import * as Effect from "effect/Effect"
import { parseConfig } from "../src/config/parseConfig.js"
import { labScenario, makeLab, reconcile, simVms, startLab } from "./lab.js"

/** `pve` allows snippets on `local` and holds one; `still-fawn`'s `local` does not allow them. */
const scenario = (): Scenario => {
  const base = labScenario(["pve", "still-fawn"], { ipPool: "127.78.60.10" })
  return {
    ...base,
    nodes: base.nodes.map((n) =>
      n.name === "pve"
        ? {
            ...n,
            storages: [
              {
                id: "local",
                type: "dir" as const,
                content: ["iso", "vztmpl", "backup", "import", "snippets"] as Array<"iso">,
                capacity: "200G",
                files: [{ volid: "local:snippets/vendor.yaml", size: "1K" }]
              },
              ...(n.storages ?? []).filter((s) => s.id !== "local")
            ]
          }
        : n
    )
  }
}

describe("vm.cicustom", () => {
  it.live(
    "a create sets cicustom when the snippet is there; a missing snippet, or a storage without snippets, blocks the create with the fix",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(scenario())
        const lab = yield* makeLab(sim, { vm: "  cicustom: { vendor: local:snippets/vendor.yaml }" })
        const run = yield* reconcile(lab)
        assert.deepStrictEqual(
          run.plan.findings.map((f) => [f.node, f.code, f.effect]),
          [["still-fawn", "cicustom.content", "blocked"]]
        )
        assert.include(run.plan.findings[0]?.hint ?? "", "pvesm set local --content")
        assert.deepStrictEqual(
          simVms(sim).map((v) => v.name),
          ["k3s-vm-pve"]
        )
        const config = sim.state().vms.find((v) => v.name === "k3s-vm-pve")?.config as Record<string, string>
        assert.strictEqual(config.cicustom, "vendor=local:snippets/vendor.yaml")

        const missing = yield* parseConfig(
          lab.yaml.replace("vendor: local:snippets/vendor.yaml", "user: local:snippets/user.yaml"),
          { env: {}, source: "homelab.yaml" }
        ).pipe(Effect.orDie)
        const again = yield* reconcile({ ...lab, config: missing })
        assert.deepStrictEqual(
          again.plan.findings.map((f) => [f.node, f.code]),
          [
            ["pve", "cicustom.missing"],
            ["still-fawn", "cicustom.content"]
          ]
        )
        assert.strictEqual(
          again.plan.findings[0]?.message,
          "vm.cicustom.user local:snippets/user.yaml does not exist on pve"
        )
        // the running VM is not changed towards a snippet it cannot read
        assert.deepStrictEqual(again.result.outcomes, [])
      }),
    60_000
  )
})
