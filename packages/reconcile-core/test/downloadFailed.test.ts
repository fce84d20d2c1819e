import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { parseConfig } from "../src/config/parseConfig.js"
import type { DesiredImage } from "../src/Desired.js"
import { downloadFailed } from "../src/downloadFailed.js"
import { labScenario, makeLab, reconcile, simVms, startLab } from "./lab.js"

const image: DesiredImage = {
  url: "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
  storage: "local",
  content: "import",
  filename: "noble-server-cloudimg-amd64.qcow2"
}

describe("downloadFailed", () => {
  const a = { node: "pve", image }
  it("an HTTP error names image.url and the status; a network failure names the host; anything else is left alone", () => {
    assert.deepStrictEqual(downloadFailed(a, "download failed: ERROR 403: Forbidden."), [
      `pve could not download image.url (${image.url}): the server answered 403 Forbidden`,
      "check image.url: its server refuses the file to the node (PVE downloads without credentials)"
    ])
    assert.strictEqual(
      downloadFailed(a, "download failed: command '/usr/bin/wget -q -O x https://…' failed: exit code 8")?.[0],
      `pve could not download image.url (${image.url}): the server answered an error (wget exit code 8)`
    )
    const [message, hint] = downloadFailed(a, "download failed: command '/usr/bin/wget …' failed: exit code 4") ?? []
    assert.strictEqual(
      message,
      "pve could not reach the server of image.url (cloud-images.ubuntu.com): command '/usr/bin/wget …' failed: exit code 4"
    )
    assert.include(hint, "image.transfer: upload")
    assert.isUndefined(downloadFailed(a, "download failed: write error: No space left on device"))
    assert.isUndefined(downloadFailed(a, "checksum mismatch: got 'ab' != expect 'cd'"))
  })
})

describe("a failed download against the simulator", () => {
  it.live(
    "an image.url the server answers 404 for: the failed download names image.url and the status, with what to check",
    () =>
      Effect.gen(function* () {
        const sim = yield* startLab(labScenario(["pve"]))
        const lab = yield* makeLab(sim)
        const yaml = lab.yaml.replace(/url: (\S+)\.img/, "url: $1-typo.img")
        const config = yield* parseConfig(yaml, { env: {}, source: "homelab.yaml" }).pipe(Effect.orDie)
        const run = yield* reconcile({ ...lab, yaml, config })
        const download = run.result.outcomes.find((o) => o.action._tag === "DownloadImage")
        assert.strictEqual(download?.status, "failed")
        assert.strictEqual(
          download?.detail,
          `pve could not download image.url (${config.image.url}): the server answered 404 Not Found`
        )
        assert.strictEqual(
          download?.hint,
          "check image.url: the file is not at that address (a typo, or a release the server no longer keeps?)"
        )
        assert.isUndefined(simVms(sim).find((v) => v.name === "k3s-vm-pve"))
      }),
    60_000
  )
})
