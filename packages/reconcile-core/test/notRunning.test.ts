import { assert, describe, it } from "@effect/vitest"
import { notRunning } from "../src/notRunning.js"

describe("notRunning", () => {
  it("a running VM is none of its business (the guest agent is)", () => {
    assert.isUndefined(notRunning("pve", 101, { status: "running", qmpstatus: "running" }))
    assert.isUndefined(notRunning("pve", 101, { status: "running" }))
  })

  it("names PVE's state for a stopped VM and QEMU's for one whose process runs, with where to look", () => {
    assert.deepStrictEqual(
      ["stopped", "paused", "prelaunch", "suspended", "io-error", "guest-panicked"].map((qmp) => {
        const r = notRunning("pve", 101, { status: qmp === "stopped" ? "stopped" : "running", qmpstatus: qmp })
        return [r?.state, r?.hint.includes("qemu-guest-agent")]
      }),
      [
        ["stopped", false],
        ["paused", false],
        ["prelaunch", false],
        ["suspended", false],
        ["io-error", false],
        ["guest-panicked", false]
      ]
    )
    assert.include(notRunning("pve", 101, { status: "running", qmpstatus: "paused" })?.hint ?? "", "qm resume 101")
    assert.include(notRunning("pve", 101, { status: "stopped" })?.hint ?? "", "qm terminal 101")
    assert.include(notRunning("pve", 101, { status: "running", qmpstatus: "prelaunch" })?.hint ?? "", "freeze")
    assert.include(notRunning("pve", 101, { status: "running", qmpstatus: "io-error" })?.hint ?? "", "storage full")
  })
})
