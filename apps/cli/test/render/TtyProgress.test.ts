import { PassThrough } from "node:stream"
import { assert, describe, it } from "@effect/vitest"
import { ttyProgress } from "../../src/render/TtyProgress.js"
import { started, tick } from "./progressEvents.js"

describe("ttyProgress", () => {
  it("the spinner line of a waiting action says what it waits for, the time so far and the limit", () => {
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 160, rows: 40 })
    let written = ""
    stream.on("data", (d: Buffer) => {
      written += d.toString()
    })
    const sink = ttyProgress(stream as unknown as NodeJS.WriteStream)
    sink.event(started)
    sink.event(tick("VM 1001's guest agent to report an IP", 45))
    sink.done()
    assert.include(written, "n1: start VM 1001 k3s-vm-n1 on n1")
    assert.include(written, "waiting for VM 1001's guest agent to report an IP (45s of 5m00s)")
  })

  it("the run's wait after its actions (Settling) has a spinner line of its own", () => {
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 160, rows: 40 })
    let written = ""
    stream.on("data", (d: Buffer) => {
      written += d.toString()
    })
    const sink = ttyProgress(stream as unknown as NodeJS.WriteStream)
    sink.event({
      _tag: "Settling",
      wait: { what: "the k3s Node of k3s-vm-n1 to be Ready", elapsedMs: 10_000, limitMs: 600_000 }
    })
    sink.done()
    assert.include(written, "k3s: after the actions")
    assert.include(written, "waiting for the k3s Node of k3s-vm-n1 to be Ready (10s of 10m00s)")
  })
})
