import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { parseConfig } from "../src/config/parseConfig.js"
import { type Lab, labScenario, makeLab, reconcile, simVms, startLab } from "./lab.js"

/** A pass-through in front of the simulator's image origin that counts the GETs it forwards. */
const countingProxy = (origin: string) =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<{ url: string; gets: () => number; server: http.Server }>((resolve) => {
          let gets = 0
          const server = http.createServer((req, res) => {
            gets++
            http.get(`${origin}${req.url ?? "/"}`, (up) => {
              res.writeHead(up.statusCode ?? 502, up.headers)
              up.pipe(res)
            })
          })
          server.listen(0, "127.0.0.1", () =>
            resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, gets: () => gets, server })
          )
        })
    ),
    (p) => Effect.promise(() => new Promise<void>((resolve) => p.server.close(() => resolve())))
  )

/** The lab's homelab.yaml with `image.transfer: upload`, the image fetched through `url`. */
const uploading = (lab: Lab, url: string, checksum?: string) =>
  Effect.gen(function* () {
    const image = lab.sim.info.imageOrigin?.files[0]
    let yaml = lab.yaml.replace("image:\n", "image:\n  transfer: upload\n")
    if (image !== undefined) yaml = yaml.replace(image.url, `${url}${image.path}`)
    if (checksum !== undefined) yaml = yaml.replace(/ {2}checksum: sha256:[0-9a-f]+/, `  checksum: sha256:${checksum}`)
    const config = yield* parseConfig(yaml, { env: {}, source: "homelab.yaml" }).pipe(Effect.orDie)
    return { ...lab, yaml, config } satisfies Lab
  })

const uploads = (lab: Lab) => lab.sim.requests().filter((r) => r.method === "POST" && r.path?.endsWith("/upload"))

describe("image.transfer: upload", () => {
  it.live(
    "the image is fetched once here, its checksum verified, and streamed to each node's storage through the upload endpoint; the VMs are created from it",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(labScenario(["pve", "still-fawn"], { ipPool: "127.78.50.10" }))
        const proxy = yield* countingProxy(sim.info.imageOrigin?.url ?? "")
        const lab = yield* uploading(yield* makeLab(sim), proxy.url)
        const run = yield* reconcile(lab)
        assert.deepStrictEqual(
          run.result.outcomes.map((o) => [o.action._tag, o.action.node, o.status]),
          [
            ["DownloadImage", "pve", "done"],
            ["CreateVm", "pve", "done"],
            ["DownloadImage", "still-fawn", "done"],
            ["CreateVm", "still-fawn", "done"]
          ],
          JSON.stringify(run.result.outcomes.map((o) => o.detail))
        )
        assert.match(
          run.result.outcomes[0]?.detail ?? "",
          /uploaded \(4\.0 MiB, checksum verified here before the upload and by PVE after it\)/
        )
        assert.strictEqual(proxy.gets(), 1, "fetched once for both nodes")
        assert.deepStrictEqual(
          uploads(lab)
            .map((r) => [r.node, r.status, r.params?.content, r.params?.filename, r.params?.checksum])
            .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
          ["pve", "still-fawn"].map((node) => [
            node,
            200,
            "import",
            `noble-server-cloudimg-amd64-${sim.info.imageOrigin?.files[0]?.sha256.slice(0, 12)}.qcow2`,
            sim.info.imageOrigin?.files[0]?.sha256
          ])
        )
        assert.isFalse(
          sim.requests().some((r) => r.path?.endsWith("/download-url")),
          "the nodes download nothing themselves"
        )
        // progress was reported while it streamed
        assert.isTrue(
          run.events.some((e) => e._tag === "ActionProgress" && /uploading .* MiB of 4\.0 MiB/.test(e.step)),
          "upload progress"
        )
        assert.strictEqual(simVms(sim).length, 2)
      }),
    60_000
  )

  it.live("a checksum mismatch is refused before any upload: nothing reaches a node, no VM is created", () =>
    Effect.gen(function* () {
      const sim = yield* startLab(labScenario(["pve", "still-fawn"], { ipPool: "127.78.51.10" }))
      const proxy = yield* countingProxy(sim.info.imageOrigin?.url ?? "")
      const lab = yield* uploading(yield* makeLab(sim), proxy.url, "0".repeat(64))
      const run = yield* reconcile(lab)
      assert.deepStrictEqual(
        run.result.outcomes.map((o) => [o.action._tag, o.action.node, o.status]),
        [
          ["DownloadImage", "pve", "failed"],
          ["CreateVm", "pve", "skipped"],
          ["DownloadImage", "still-fawn", "failed"],
          ["CreateVm", "still-fawn", "skipped"]
        ]
      )
      for (const o of run.result.outcomes.filter((x) => x.status === "failed")) {
        assert.match(
          o.detail,
          /^checksum mismatch for http:\/\/.*: got sha256:[0-9a-f]{64}, expected sha256:0{64}; nothing was uploaded$/
        )
        assert.include(o.hint ?? "", "image.checksum")
      }
      assert.strictEqual(proxy.gets(), 1, "fetched once, refused once")
      assert.deepStrictEqual(uploads(lab), [])
      assert.deepStrictEqual(simVms(sim), [])
      assert.isFalse(run.report.convergence.converged)
    })
  )
})
