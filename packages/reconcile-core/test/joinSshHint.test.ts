import { assert, describe, it } from "@effect/vitest"
import { K3sJoinError, NotReady, Ssh } from "@homelab/k3s-join"
import { AuthRejected, SshError, Unreachable } from "@homelab/ssh"
import { joinSshHint } from "../src/joinSshHint.js"

const vm = { host: "10.0.0.21", port: 22, user: "ubuntu" }
const server = { host: "10.0.0.5", port: 22, user: "admin", configured: true }

const sshFailed = (host: string, reason: SshError["reason"]) =>
  new K3sJoinError({ host, reason: new Ssh({ error: new SshError({ host, port: 22, reason }) }) })
const rejected = (user: string) => new AuthRejected({ user, methodsTried: ["publickey"], detail: "rejected" })

describe("joinSshHint", () => {
  it("names the VM's or the server's address, user and the keys of homelab.yaml that set them", () => {
    assert.strictEqual(
      joinSshHint(sshFailed(vm.host, rejected("ubuntu")), vm, server),
      "homelab could not log in to the VM as ubuntu@10.0.0.21:22: check vm.user (the user cloud-init creates) and that vm.sshKeys holds the public key of ssh.privateKey"
    )
    assert.strictEqual(
      joinSshHint(sshFailed(server.host, rejected("admin")), vm, server),
      "homelab could not log in to the k3s server it joins through as admin@10.0.0.5:22: check k3s.server (host, port, user), and that the public key of ssh.privateKey is in admin's ~/.ssh/authorized_keys there"
    )
    assert.strictEqual(
      joinSshHint(sshFailed(server.host, new Unreachable({ kind: "Refused", detail: "ECONNREFUSED" })), vm, {
        ...server,
        configured: false
      }),
      "homelab could not reach SSH on the k3s server it joins through at 10.0.0.5:22: check the server VM (vm.sshPort, vm.user), and that sshd runs there"
    )
  })

  it("leaves any other failure to the caller", () => {
    assert.isUndefined(
      joinSshHint(
        new K3sJoinError({ host: vm.host, reason: new NotReady({ node: "k3s-vm-pve", status: "False", detail: "x" }) }),
        vm,
        server
      )
    )
  })
})
