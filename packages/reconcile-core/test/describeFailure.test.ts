import { assert, describe, it } from "@effect/vitest"
import {
  ApiError,
  InvalidParameter,
  Locked,
  PermissionDenied,
  ProxmoxError,
  ProxyError,
  TaskFailed,
  TlsUntrusted,
  Unreachable
} from "@homelab/proxmox-client"
import { describeFailure } from "../src/describeFailure.js"

const endpoints = { api: "https://10.0.0.2:8006", ssh: "root@10.0.0.2:22" }
const taskFailed = new TaskFailed({
  upid: "UPID:still-fawn:0000ABCD:00001234:6700AAAA:qmstart:4432:root@pam:",
  exitstatus: "start failed: QEMU exited with code 1",
  log: []
})

describe("describeFailure", () => {
  it("a refusal for a missing privilege grants it to the token's user (and to the token when privilege-separated), not 'create it without privilege separation'", () => {
    const denied = describeFailure(
      "pve",
      "download the image to local",
      new ProxmoxError({
        operation: "downloadUrl",
        node: "pve",
        reason: new PermissionDenied({
          path: "/nodes/pve",
          privilege: "Sys.AccessNetwork",
          detail: "Permission check failed (/nodes/pve, Sys.AccessNetwork)"
        }),
        transport: "rest"
      }),
      { ...endpoints, token: "ops@pve!ci" }
    )
    assert.strictEqual(
      denied.hint,
      "grant ops@pve (the token's user) Sys.AccessNetwork on /nodes/pve (`pveum acl modify /nodes/pve --users 'ops@pve' --roles <role>`), and the token too if it is privilege-separated (`--tokens 'ops@pve!ci'`)"
    )
    assert.notInclude(denied.hint ?? "", "without privilege separation")
  })

  it("a node homelab.yaml does not list (an orphan's, pruned after the node went down) is named as reached through proxmox.endpoint", () => {
    const failed = describeFailure(
      "pve3",
      "prune orphan VM 6955 k3s-vm-pve3 on pve3",
      new ProxmoxError({
        operation: "vmConfig",
        node: "pve3",
        reason: new ProxyError({
          status: 595,
          detail: "Errors during connection establishment, proxy handshake: Connection refused",
          explanation: "pveproxy could not connect to pvedaemon or to the target node (is the daemon running?)"
        }),
        transport: "rest"
      })
    )
    assert.strictEqual(
      failed.message,
      "cannot prune orphan VM 6955 k3s-vm-pve3 on pve3 on node pve3: API proxmox.endpoint: the API proxy answered 595 Errors during connection establishment, proxy handshake: Connection refused: pveproxy could not connect to pvedaemon or to the target node (is the daemon running?)"
    )
    assert.strictEqual(
      failed.hint,
      "pveproxy could not connect to pvedaemon or to the target node (is the daemon running?); pve3 is not in homelab.yaml's nodes, so homelab reaches it only through proxmox.endpoint, with no SSH fallback: check that pve3 is up and in the cluster (`pvecm status`), or list it in nodes[] (with its address) to reach it directly"
    )
  })

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

  it("an IP wait on a VM whose config has no agent, or turns it off: says so, and the hint says what to set", () => {
    for (const detail of [
      "No QEMU guest agent configured",
      "QEMU guest agent is not running (the VM's config disables it: agent 0)"
    ]) {
      const described = describeFailure(
        "pve",
        "read the IP of VM 4432",
        new ProxmoxError({
          operation: "waitForIpv4",
          node: "pve",
          reason: new ApiError({ status: 500, detail }),
          transport: "rest"
        }),
        endpoints
      )
      assert.strictEqual(
        described.message,
        `cannot read the IP of VM 4432 on node pve: API https://10.0.0.2:8006: 500 ${detail}`
      )
      assert.strictEqual(
        described.hint,
        "homelab reads the VM's IP from the QEMU guest agent: enable it on pve (`qm set VMID --agent enabled=1`, then restart the VM) and have qemu-guest-agent installed in the image"
      )
    }
    // any other refusal: no task ran, so there is no task log to see
    const other = describeFailure(
      "pve",
      "destroy VM 4432",
      new ProxmoxError({
        operation: "destroyVm",
        node: "pve",
        reason: new ApiError({ status: 500, detail: "VM 4432 is running - destroy failed" })
      }),
      endpoints
    )
    assert.strictEqual(
      other.hint,
      "PVE refused the request at once (no task ran, so there is no task log): the message is its reason; `journalctl -u pvedaemon -u pveproxy` on pve has more"
    )
  })

  it("a synchronous refusal (400, no task): the hint never says 'see the task log'; download-url's wrong extension names PVE 8.4", () => {
    const refused = (errors: Record<string, string>) =>
      describeFailure(
        "pve",
        "download noble.qcow2",
        new ProxmoxError({
          operation: "downloadUrl",
          node: "pve",
          reason: new InvalidParameter({ errors, detail: "Parameter verification failed." })
        }),
        endpoints
      )
    const extension = refused({ filename: "invalid filename or wrong extension" })
    assert.strictEqual(
      extension.message,
      "cannot download noble.qcow2 on node pve: API https://10.0.0.2:8006: invalid parameter: filename: invalid filename or wrong extension"
    )
    assert.strictEqual(
      extension.hint,
      "PVE before 8.4 stores only .ova files with content import (8.4 also .qcow2, .raw, .vmdk): upgrade pve to PVE 8.4 or later, or set image.content: iso"
    )
    const other = refused({ scsi0: "local:iso/x.img has wrong type 'iso' - needs to be 'images' or 'import'" })
    assert.notInclude(other.hint, "task log on")
    assert.include(other.hint, "no task ran, so there is no task log")
  })

  it("a locked VM: the hint says what holds the lock and how to clear it, not 'see the task log'", () => {
    // after a hung resize, the next run's config write waits 10 s for the file lock and fails
    const flock = describeFailure(
      "pve",
      "update the config of VM 6858",
      new ProxmoxError({
        operation: "updateVmConfig",
        node: "pve",
        reason: new Locked({
          lock: "flock",
          detail: "can't lock file '/var/lock/qemu-server/lock-6858.conf' - got timeout"
        })
      }),
      endpoints
    )
    assert.match(flock.hint, /^a task still running on pve holds VM 6858's config lock/)
    assert.include(flock.hint, "pvesh get /nodes/pve/tasks --source active --vmid 6858")
    const backup = describeFailure(
      "pve",
      "start VM 6858",
      new ProxmoxError({
        operation: "startVm",
        node: "pve",
        reason: new Locked({ lock: "backup", detail: "VM is locked (backup)" })
      }),
      endpoints
    )
    assert.match(backup.hint, /^VM 6858 carries the 'backup' lock: let the backup on pve end/)
    assert.include(backup.hint, "`qm unlock 6858` on pve")
  })

  it("a host name that does not resolve: the hint says to check the name, not whether pveproxy or sshd runs", () => {
    const dns = (transport: "rest" | "ssh") =>
      new Unreachable({ kind: "dns", transport, code: "ENOTFOUND", detail: "getaddrinfo ENOTFOUND pve-1.lan" })
    const failure = describeFailure(
      "pve",
      "read the cluster's state",
      new ProxmoxError({ operation: "nodeStatus", node: "pve", reason: dns("ssh"), fallbackFrom: dns("rest") }),
      { api: "https://pve-1.lan:8006", ssh: "root@pve-1.lan:22" }
    )
    assert.strictEqual(
      failure.hint,
      "the host name of https://pve-1.lan:8006 does not resolve: check nodes[].api (or proxmox.endpoint) for a typo, and this machine's DNS; the host name of pve-1.lan:22 does not resolve: check nodes[].address for a typo, and this machine's DNS"
    )
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
