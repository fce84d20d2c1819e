import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { parseConfig } from "../src/config/parseConfig.js"
import type { DesiredImage } from "../src/Desired.js"
import { checksumMismatch, imageLeftovers } from "../src/ImageFiles.js"
import { type Lab, labScenario, makeLab, reconcile, simVms, startLab } from "./lab.js"

const sha = "3f2ec5b6ef4a1d7ce0ab5e96e57d1a9c42a1c0d4b7a0f18c4b2cf5b3e6e2a1d0"
const image: DesiredImage = {
  url: "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
  storage: "local",
  content: "import",
  filename: "noble-server-cloudimg-amd64-3f2ec5b6ef4a.qcow2",
  checksum: { algorithm: "sha256", value: sha }
}
const volids = new Set([
  "local:import/noble-server-cloudimg-amd64-3f2ec5b6ef4a.qcow2",
  "local:import/noble-server-cloudimg-amd64-0123456789ab.qcow2",
  "local:import/noble-server-cloudimg-amd64.qcow2",
  "local:import/noble-server-cloudimg-amd64-mine.qcow2",
  "local:import/debian-12-0123456789ab.qcow2"
])

describe("imageLeftovers", () => {
  it("finds our images of another checksum and the file under the name used before; nothing for a name set by hand", () => {
    assert.deepStrictEqual(imageLeftovers(image, volids), {
      older: ["local:import/noble-server-cloudimg-amd64-0123456789ab.qcow2"],
      unchecked: "local:import/noble-server-cloudimg-amd64.qcow2"
    })
    assert.deepStrictEqual(imageLeftovers({ ...image, fixedName: true }, volids), { older: [], unchecked: undefined })
    const { checksum: _, ...unpinned } = image
    assert.deepStrictEqual(imageLeftovers({ ...unpinned, filename: "noble-server-cloudimg-amd64.qcow2" }, volids), {
      older: [],
      unchecked: undefined
    })
  })
})

describe("checksumMismatch", () => {
  const a = { node: "pve", volid: `local:import/${image.filename}`, image }
  it("a downloaded file that does not match names image.checksum and image.url", () => {
    const [message, hint] = checksumMismatch(a, `checksum mismatch: got '${"ab".repeat(32)}' != expect '${sha}'`)
    assert.strictEqual(
      message,
      `the image downloaded from image.url (${image.url}) to pve does not match image.checksum: PVE computed sha256 ${"ab".repeat(32)}, image.checksum says ${sha}; PVE discarded it`
    )
    assert.match(hint, /image\.checksum .* image\.url/)
  })
  it("a file of that name already there (PVE hashes it and aborts) is named, with how to remove it", () => {
    const [message, hint] = checksumMismatch(a, `checksum mismatch: got 'cd' != expect '${sha}', aborting`)
    assert.match(
      message,
      /^local:import\/noble-server-cloudimg-amd64-3f2ec5b6ef4a\.qcow2 on pve is a file already there/
    )
    assert.include(hint, `pvesm free ${a.volid}`)
    assert.include(hint, "image.checksum")
  })
})

/** The lab's homelab.yaml with another `image.checksum` (the same URL: a rebuilt image pinned by its new checksum). */
const withChecksum = (lab: Lab, checksum: string) =>
  Effect.gen(function* () {
    const yaml = lab.yaml.replace(/checksum: sha256:[0-9a-f]+/, `checksum: sha256:${checksum}`)
    const config = yield* parseConfig(yaml, { env: {}, source: "homelab.yaml" }).pipe(Effect.orDie)
    return { ...lab, yaml, config } satisfies Lab
  })

describe("image.checksum against the simulator", () => {
  it.live(
    "a new image.checksum is a new file: the node holding the old image is not converged, and the download's mismatch names image.checksum",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(labScenario(["pve"]))
        const lab = yield* makeLab(sim)
        const first = yield* reconcile(lab)
        assert.isTrue(first.report.convergence.converged)
        const old = lab.config.image.volid
        assert.match(old, /^local:import\/noble-server-cloudimg-amd64-[0-9a-f]{12}\.qcow2$/)
        const vm = simVms(sim).find((v) => v.name === "k3s-vm-pve")

        // Ubuntu rebuilt .../current/ under the same name; the user pins the new checksum (the origin still serves
        // the old bytes here, so PVE's download fails the check)
        const rebuilt = "c0ffee".padEnd(64, "0")
        const next = yield* withChecksum(lab, rebuilt)
        const run = yield* reconcile(next)
        assert.deepStrictEqual(
          run.plan.actions.map((a) => [a._tag, a.node, "volid" in a ? a.volid : ""]),
          [["DownloadImage", "pve", "local:import/noble-server-cloudimg-amd64-c0ffee000000.qcow2"]]
        )
        const leftover = run.plan.findings.find((f) => f.code === "image.leftover")
        assert.include(leftover?.message ?? "", old)
        assert.include(leftover?.message ?? "", "not rebuilt")
        const download = run.result.outcomes.find((o) => o.action._tag === "DownloadImage")
        assert.strictEqual(download?.status, "failed")
        assert.match(
          download?.detail ?? "",
          /does not match image\.checksum: PVE computed sha256 [0-9a-f]{64}, image\.checksum says c0ffee0{58}; PVE discarded it$/
        )
        assert.include(download?.hint ?? "", "image.checksum")
        assert.include(download?.hint ?? "", "image.url")
        assert.isFalse(run.report.convergence.converged)
        // the VM made from the old image is left as it is
        assert.deepStrictEqual(
          simVms(sim).find((v) => v.name === "k3s-vm-pve"),
          vm
        )
      }),
    60_000
  )

  it.live(
    "upgrading a lab: the file under the URL's name is not taken for the pinned image; --prune deletes only our older image",
    () =>
      Effect.gen(function* () {
        const legacy = "local:import/noble-server-cloudimg-amd64.qcow2"
        const older = "local:import/noble-server-cloudimg-amd64-0123456789ab.qcow2"
        const scenario = labScenario(["pve"])
        const sim = yield* startLab({
          ...scenario,
          nodes: scenario.nodes.map((n) => ({
            ...n,
            storages: n.storages?.map((st) =>
              st.id === "local"
                ? {
                    ...st,
                    files: [
                      { volid: legacy, size: "4M" },
                      { volid: older, size: "4M" }
                    ]
                  }
                : st
            )
          }))
        })
        const lab = yield* makeLab(sim)
        const run = yield* reconcile(lab)
        const current = lab.config.image.volid
        assert.deepStrictEqual(
          run.plan.actions.map((a) => [a._tag, "volid" in a ? a.volid : a.node]),
          [
            ["DownloadImage", current],
            ["CreateVm", "pve"]
          ]
        )
        const create = run.plan.actions.find((a) => a._tag === "CreateVm")
        assert.strictEqual(create?._tag === "CreateVm" ? create.spec.imageVolid : undefined, current)
        assert.deepStrictEqual(
          run.plan.findings.map((f) => [f.code, f.effect]),
          [
            ["image.leftover", "info"],
            ["image.unchecked-leftover", "info"]
          ]
        )
        assert.isTrue(run.report.convergence.converged, "leftovers are reported, not counted")

        const pruned = yield* reconcile(lab, { prune: true })
        assert.deepStrictEqual(
          pruned.result.outcomes.map((o) => [o.action._tag, "volid" in o.action ? o.action.volid : "", o.status]),
          [["DeleteImage", older, "done"]]
        )
        const storages = sim.state().nodes.find((n) => n.name === "pve")?.storages as
          | Array<{ volumes?: Array<{ volid: string }> }>
          | undefined
        const files = (storages ?? [])
          .flatMap((s) => (s.volumes ?? []).map((v) => v.volid))
          .filter((v) => v.startsWith("local:import/"))
          .sort()
        assert.deepStrictEqual(files, [current, legacy].sort())
      }),
    60_000
  )
})
