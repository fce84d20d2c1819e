import { assert, describe, it } from "@effect/vitest"
import { runningDownloads } from "../src/runningDownloads.js"

const task = (over: Partial<Parameters<typeof runningDownloads>[0][number]>) => ({
  upid: "UPID:pve:0000A1B2:00C3D4E5:67000000:download:noble.img:root@pam!homelab:",
  node: "pve",
  type: "download",
  id: "noble.img",
  user: "root@pam!homelab",
  starttime: 1_700_000_000,
  ...over
})

describe("runningDownloads", () => {
  it("keeps the running downloads (a running task's user is the UPID's, token included; a finished one's is split)", () => {
    const downloads = runningDownloads(
      [
        task({}),
        task({ id: "other.img", user: "alice@pve", status: "RUNNING" }),
        task({ id: "done.img", user: "root@pam", tokenid: "homelab", status: "OK", endtime: 1_700_000_100 }),
        task({ id: undefined })
      ],
      ["root@pam!homelab"]
    )
    assert.deepStrictEqual(
      downloads.map((d) => [d.file, d.user, d.ours, d.startedAt]),
      [
        ["noble.img", "root@pam!homelab", true, 1_700_000_000],
        ["other.img", "alice@pve", false, 1_700_000_000]
      ]
    )
  })

  it("a task listed as finished is not running, whoever started it", () => {
    assert.deepStrictEqual(
      runningDownloads([task({ status: "job errors", user: "root@pam", tokenid: "homelab" })], ["root@pam!homelab"]),
      []
    )
  })
})
