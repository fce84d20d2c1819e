import { assert, describe, it } from "@effect/vitest"
import { BadToken, CaHashMismatch, K3sJoinError, NotReady, TokenInvalid } from "@homelab/k3s-join"
import { tokenRefusedHint } from "../src/tokenRefused.js"

const failed = (reason: K3sJoinError["reason"]) => new K3sJoinError({ host: "10.0.0.12", reason })
const context = { configured: true, server: "10.0.0.11", journal: "`journalctl -u k3s-agent` on 10.0.0.12" }
const fix =
  "set it to the cluster's server token (`sudo cat /var/lib/rancher/k3s/server/token` on 10.0.0.11), or remove k3s.token to have homelab read it from there; then run apply again"
const line = 'level=info msg="… 401 Unauthorized"'

describe("tokenRefusedHint", () => {
  it("names k3s.token, what k3s said about it, and where the cluster's token is", () => {
    assert.deepStrictEqual(
      [
        new BadToken({ kind: "Unauthorized", line }),
        new BadToken({ kind: "NotAServerToken", line }),
        new BadToken({ kind: "DatastoreTokenMismatch", line }),
        new CaHashMismatch({ line }),
        new TokenInvalid({ detail: "expected K10<CA hash>::<user>:<password> or a bootstrap token <id>.<secret>" })
      ].map((reason) => tokenRefusedHint(failed(reason), context)),
      [
        `the server refused k3s.token from homelab.yaml (a wrong password, or a bootstrap token that expired): ${fix}`,
        `k3s.token in homelab.yaml is an agent or bootstrap token, which a server cannot join with: ${fix}`,
        `k3s.token in homelab.yaml is not the token this cluster's datastore was encrypted with: ${fix}`,
        `k3s.token in homelab.yaml is another cluster's token (its CA hash is not this cluster's): ${fix}`,
        `k3s.token in homelab.yaml is not a full k3s token (K10<CA hash>::server:<password>, as the server's token file holds it): ${fix}`
      ]
    )
  })

  it("without k3s.token: the token came from the server, so that server and the VM are to be looked at", () => {
    assert.strictEqual(
      tokenRefusedHint(failed(new CaHashMismatch({ line })), { ...context, configured: false }),
      "homelab read the token from 10.0.0.11 (k3s.token is not set) and k3s refused it: check that 10.0.0.11 is a server of the cluster this VM is to join (`sudo cat /var/lib/rancher/k3s/server/token` on 10.0.0.11), and `journalctl -u k3s-agent` on 10.0.0.12"
    )
    assert.isUndefined(
      tokenRefusedHint(failed(new TokenInvalid({ detail: "the token is empty" })), { ...context, configured: false })
    )
  })

  it("any other failure: none (the caller's hint stands)", () => {
    assert.isUndefined(
      tokenRefusedHint(failed(new NotReady({ node: "k3s-vm-b", status: "False", detail: "" })), context)
    )
  })
})
