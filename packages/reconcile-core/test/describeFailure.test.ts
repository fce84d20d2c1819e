import { assert, describe, it } from "@effect/vitest"
import { ProxmoxError, TaskFailed, TlsUntrusted } from "@homelab/proxmox-client"
import { describeFailure } from "../src/describeFailure.js"

const endpoints = { api: "https://10.0.0.2:8006", ssh: "root@10.0.0.2:22" }
const taskFailed = new TaskFailed({
  upid: "UPID:still-fawn:0000ABCD:00001234:6700AAAA:qmstart:4432:root@pam:",
  exitstatus: "start failed: QEMU exited with code 1",
  log: []
})

describe("describeFailure", () => {
  it("a reason without a transport of its own is named with the transport the node was driven over", () => {
    const overSsh = describeFailure(
      "still-fawn",
      "start VM 4432",
      new ProxmoxError({ operation: "startVm", node: "still-fawn", reason: taskFailed, transport: "ssh" }),
      endpoints
    )
    assert.strictEqual(
      overSsh.message,
      `cannot start VM 4432 on node still-fawn: SSH root@10.0.0.2:22: task ${taskFailed.upid} failed: start failed: QEMU exited with code 1`
    )
    assert.strictEqual(overSsh.hint, "see the task log on still-fawn")
    const overRest = describeFailure(
      "still-fawn",
      "start VM 4432",
      new ProxmoxError({ operation: "startVm", node: "still-fawn", reason: taskFailed, transport: "rest" }),
      endpoints
    )
    assert.include(overRest.message, "on node still-fawn: API https://10.0.0.2:8006: task ")
  })

  it("a reason that names its transport keeps it; an SSH failure after a REST one names both", () => {
    const both = describeFailure(
      "still-fawn",
      "read the cluster's state",
      new ProxmoxError({
        operation: "nodeStatus",
        node: "still-fawn",
        reason: taskFailed,
        fallbackFrom: new TlsUntrusted({ code: "SELF_SIGNED_CERT_IN_CHAIN", detail: "self-signed" }),
        transport: "ssh"
      }),
      endpoints
    )
    assert.match(
      both.message,
      /: API https:\/\/10\.0\.0\.2:8006: its TLS certificate is not trusted .*; SSH root@10\.0\.0\.2:22: task /
    )
  })
})
