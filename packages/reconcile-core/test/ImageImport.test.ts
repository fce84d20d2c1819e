import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { describeAction } from "../src/Action.js"
import type { DesiredNode } from "../src/Desired.js"
import { imageImportOf } from "../src/ImageImport.js"
import { labScenario, makeLab, mutatingRequests, reconcile, simVms, startLab, untilResourcesCurrent } from "./lab.js"

const node = (over: Partial<DesiredNode["image"]> = {}, rootOverSsh?: boolean): DesiredNode => ({
  name: "pve",
  cpuRatio: 1,
  memoryRatio: 0.5,
  image: {
    url: "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
    storage: "local",
    content: "import",
    filename: "noble-server-cloudimg-amd64.qcow2",
    ...over
  },
  ...(rootOverSsh !== undefined ? { rootOverSsh } : {}),
  vms: []
})

describe("imageImportOf", () => {
  it("content import: by volid; blocked before PVE 8.4 while the .qcow2 is still to be put there (an .ova from 8.3)", () => {
    assert.deepStrictEqual(imageImportOf(node(), "9.1.1", false), { _tag: "Ok", via: "volume" })
    assert.deepStrictEqual(imageImportOf(node(), "8.4.0", false), { _tag: "Ok", via: "volume" })
    // already on the storage: PVE 8.3 imports an import volume by volid
    assert.deepStrictEqual(imageImportOf(node(), "8.3.3", true), { _tag: "Ok", via: "volume" })
    // the version unknown: nothing to say
    assert.deepStrictEqual(imageImportOf(node(), undefined, false), { _tag: "Ok", via: "volume" })
    assert.deepStrictEqual(imageImportOf(node({ filename: "noble.ova" }), "8.3.3", false), {
      _tag: "Ok",
      via: "volume"
    })
    for (const [version, file] of [
      ["8.3.3", "noble-server-cloudimg-amd64.qcow2"],
      ["8.2.4", "noble.ova"]
    ] as const) {
      const blocked = imageImportOf(node({ filename: file }), version, false)
      assert.strictEqual(blocked._tag, "Blocked")
      if (blocked._tag !== "Blocked") return
      assert.strictEqual(blocked.code, "image.import-needs-pve-8.4")
      assert.include(blocked.message, `node pve runs PVE ${version}: download-url stores a .qcow2`)
      assert.include(blocked.message, `local:import/${file}`)
      assert.include(blocked.hint, "upgrade pve to PVE 8.4 or later; or set image.content: iso")
    }
    const upload = imageImportOf(node({ transfer: "upload" }), "8.3.3", false)
    assert.include(upload._tag === "Blocked" ? upload.message : "", "PVE's upload stores a .qcow2")
  })

  it("content iso: from the volume's path over SSH as root on every version; blocked when no SSH is allowed", () => {
    const iso = { content: "iso" as const, filename: "noble-server-cloudimg-amd64.img" }
    for (const version of ["9.1.1", "8.4.1", "8.3.3", "8.2.4", undefined])
      assert.deepStrictEqual(imageImportOf(node(iso), version, false), { _tag: "Ok", via: "path" })
    const blocked = imageImportOf(node(iso, false), "9.1.1", true)
    assert.deepInclude(blocked, { _tag: "Blocked", code: "image.iso-needs-ssh" })
    assert.include(blocked._tag === "Blocked" ? blocked.message : "", "only root@pam may pass")
    assert.include(blocked._tag === "Blocked" ? blocked.hint : "", "set proxmox.fallback: ssh")
    assert.include(blocked._tag === "Blocked" ? blocked.hint : "", "or set image.content: import (PVE 8.4+")
    // on 8.3 content import is no way out for a .qcow2
    const old = imageImportOf(node(iso, false), "8.3.3", true)
    assert.notInclude(old._tag === "Blocked" ? old.hint : "", "set image.content: import")
  })
})

describe("the image import against the simulator", () => {
  for (const pveVersion of ["9.1.1", "8.4.1", "8.3.3"]) {
    it.live(
      `PVE ${pveVersion}, image.content: iso: the image is downloaded as an ISO image and each VM created over SSH as root from its path; a second run changes nothing`,
      () =>
        Effect.gen(function* () {
          const sim = yield* startLab(labScenario(["pve", "still-fawn"], { pveVersion }))
          const lab = yield* makeLab(sim, { image: "  content: iso" })
          const first = yield* reconcile(lab)
          assert.deepStrictEqual(
            first.result.outcomes.map((o) => [o.action._tag, o.status, o.status === "failed" ? o.detail : ""]),
            [
              ["DownloadImage", "done", ""],
              ["CreateVm", "done", ""],
              ["DownloadImage", "done", ""],
              ["CreateVm", "done", ""]
            ]
          )
          assert.isTrue(first.report.convergence.converged)
          const create = first.plan.actions.find((a) => a._tag === "CreateVm")
          assert.match(describeAction(create ?? first.plan.actions[0]!), /; over SSH as root: image\.content iso/)
          // the stored name carries image.checksum's first 12 hex digits
          const path = `/var/lib/vz/template/iso/${lab.config.image.filename}`
          assert.match(path, /\/noble-server-cloudimg-amd64-[0-9a-f]{12}\.img$/)
          assert.isTrue(
            first.events.some(
              (e) =>
                e._tag === "ActionProgress" &&
                e.step.startsWith("creating VM ") &&
                e.step.includes(`over SSH as root (image.content: iso: PVE imports ${path} only for root@pam`)
            )
          )
          // each create went over SSH (pvesh as root), with the image's path; every other request over the API
          const creates = sim.requests().filter((r) => r.method === "POST" && /\/qemu$/.test(r.path ?? ""))
          assert.deepStrictEqual(creates, [])
          const sshCreates = sim
            .requests()
            .filter((r) => /^pvesh create '?\/nodes\/[^/]+\/qemu'? /.test(r.command ?? ""))
          assert.deepStrictEqual(
            sshCreates.map((r) => [r.node, r.exitCode, r.command?.includes(`import-from=${path}`)]).sort(),
            [
              ["pve", 0, true],
              ["still-fawn", 0, true]
            ]
          )
          assert.strictEqual(simVms(sim).filter((v) => v.qmpstatus === "running").length, 2)
          assert.deepStrictEqual(
            first.clientEvents.filter((e) => e._tag === "FallbackToSsh"),
            []
          )

          // PVE's status cache shows both VMs running (not yet, right after their start: the next run would read
          // their details and ping their agents)
          yield* untilResourcesCurrent(lab)
          sim.clearRequests()
          const second = yield* reconcile(lab)
          assert.deepStrictEqual(second.plan.actions, [])
          assert.isTrue(second.report.convergence.converged)
          assert.deepStrictEqual(mutatingRequests(sim), [])
        }),
      120_000
    )
  }

  it.live(
    "PVE 8.3.3 with image.content: import (the default) and a .qcow2: the plan names the node, its PVE version and the ways out, and nothing is downloaded",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(labScenario(["pve"], { pveVersion: "8.3.3" }))
        const lab = yield* makeLab(sim)
        const run = yield* reconcile(lab)
        assert.deepStrictEqual(run.plan.actions, [])
        assert.deepStrictEqual(
          run.plan.findings.map((f) => [f.code, f.effect, f.layer, f.node, f.vm]),
          [["image.import-needs-pve-8.4", "blocked", "image", "pve", undefined]]
        )
        const finding = run.plan.findings[0]
        assert.strictEqual(
          finding?.message,
          `node pve runs PVE 8.3.3: download-url stores a .qcow2, .raw or .vmdk with content import only from PVE 8.4 on (8.3: .ova only), so local:import/${lab.config.image.filename} (image.content: import) cannot be put on pve`
        )
        assert.include(finding?.hint ?? "", "upgrade pve to PVE 8.4 or later; or set image.content: iso")
        assert.isFalse(run.report.convergence.converged)
        assert.deepStrictEqual(mutatingRequests(sim), [])
      }),
    60_000
  )

  it.live(
    "a rolling upgrade (pve on PVE 9.1, still-fawn still on 8.3): each node is judged by its own version; the upgraded node converges, the other names its version",
    () =>
      Effect.gen(function* () {
        const scenario = labScenario(["pve", "still-fawn"])
        const sim = yield* startLab({
          ...scenario,
          nodes: scenario.nodes.map((n) => (n.name === "still-fawn" ? { ...n, pveVersion: "8.3.3" } : n))
        })
        const lab = yield* makeLab(sim)
        const run = yield* reconcile(lab)
        assert.deepStrictEqual(
          run.plan.findings.map((f) => [f.code, f.effect, f.node]),
          [["image.import-needs-pve-8.4", "blocked", "still-fawn"]]
        )
        assert.include(run.plan.findings[0]?.message ?? "", "node still-fawn runs PVE 8.3.3")
        // pve, asked through the same cluster, is not held back by still-fawn's version, nor still-fawn let through by pve's
        assert.deepStrictEqual(
          run.report.outcomes.map((o) => [o.action._tag, o.action.node, o.status]),
          [
            ["DownloadImage", "pve", "done"],
            ["CreateVm", "pve", "done"]
          ]
        )
        assert.deepStrictEqual(run.report.convergence.nodes.find((n) => n.node === "pve")?.converged, true)
        assert.isFalse(run.report.convergence.converged)
        assert.isFalse(sim.requests().some((r) => r.node === "still-fawn" && r.method === "POST"))
      }),
    60_000
  )
})
