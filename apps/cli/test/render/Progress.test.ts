import { PassThrough } from "node:stream"
import { assert, describe, it } from "@effect/vitest"
import type { Action, ApplyEvent } from "@homelab/reconcile-core"
import { plainProgress, ttyProgress } from "../../src/render/Progress.js"

const action = {
  _tag: "StartVm",
  id: "n1:vm:k3s-vm-n1",
  node: "n1",
  reason: "",
  after: [],
  vmid: 1001,
  name: "k3s-vm-n1"
} as Action

const started: ApplyEvent = {
  _tag: "ActionStarted",
  id: action.id,
  action,
  description: "start VM 1001 k3s-vm-n1 on n1"
}

/** What the core reports every 5 s of a wait: `what` for `elapsedS` seconds so far, limit 5 minutes. */
const tick = (what: string, elapsedS: number): ApplyEvent => ({
  _tag: "ActionProgress",
  id: action.id,
  node: "n1",
  step: `waiting for ${what}`,
  wait: { what, elapsedMs: elapsedS * 1000, limitMs: 300_000 }
})

describe("plainProgress", () => {
  it("shows a wait once it is 5 s long, then at least every 15 s; a new wait of the same action is shown anew", () => {
    const lines: Array<string> = []
    const sink = plainProgress((line) => lines.push(line), false)
    sink.event(started)
    for (const s of [0, 5, 10, 15, 20, 25, 30, 35, 40]) sink.event(tick("VM 1001's guest agent to report an IP", s))
    for (const s of [5, 10]) sink.event(tick("the k3s install", s))
    assert.deepStrictEqual(lines, [
      "[n1] start VM 1001 k3s-vm-n1 on n1 …",
      "[n1]   waiting for VM 1001's guest agent to report an IP (5s of 5m00s)",
      "[n1]   waiting for VM 1001's guest agent to report an IP (20s of 5m00s)",
      "[n1]   waiting for VM 1001's guest agent to report an IP (35s of 5m00s)",
      "[n1]   waiting for the k3s install (5s of 5m00s)"
    ])
  })
})

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
