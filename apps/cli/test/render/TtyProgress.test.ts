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
})
