import { stripVTControlCharacters } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import { noticeLine, plainProgress } from "../../src/render/Progress.js"
import { started, tick } from "./progressEvents.js"

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

  it("the run's wait after its actions (Settling) is shown as an action's is, under [k3s]", () => {
    const lines: Array<string> = []
    const sink = plainProgress((line) => lines.push(line), false)
    const what = "the k3s Nodes of k3s-vm-n1, k3s-vm-n2 to be Ready"
    for (const s of [5, 10, 15, 20])
      sink.event({ _tag: "Settling", wait: { what, elapsedMs: s * 1000, limitMs: 600_000 } })
    assert.deepStrictEqual(lines, [
      "[k3s]   waiting for the k3s Nodes of k3s-vm-n1, k3s-vm-n2 to be Ready (5s of 10m00s)",
      "[k3s]   waiting for the k3s Nodes of k3s-vm-n1, k3s-vm-n2 to be Ready (20s of 10m00s)"
    ])
  })
})

describe("noticeLine", () => {
  it("an API certificate that is not trusted: the SSH fallback is said with how to trust it in proxmox.tls", () => {
    const line = noticeLine({
      _tag: "Proxmox",
      event: {
        _tag: "FallbackToSsh",
        node: "pve2",
        reason: "TlsUntrusted",
        detail: "self-signed",
        fingerprint: "AB:CD"
      }
    })
    assert.strictEqual(
      stripVTControlCharacters(line),
      "! pve2: API certificate not trusted (SHA-256 AB:CD) — using SSH (pvesh/qm) for this node; to use its API, trust it in proxmox.tls (ca: the cluster's /etc/pve/pve-root-ca.pem, which signs each node's pve-ssl.pem)"
    )
  })
})
