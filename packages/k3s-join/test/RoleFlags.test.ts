import { assert, describe, it } from "@effect/vitest"
import { bareFlagName, flagsNotDefinedFor, onlyCommandOf } from "../src/RoleFlags.js"

describe("RoleFlags", () => {
  it("reads a flag's name as Go's flag parser does: one or two dashes, `=value` or not", () => {
    assert.strictEqual(bareFlagName("--disable=traefik"), "disable")
    assert.strictEqual(bareFlagName("-disable"), "disable")
    assert.strictEqual(bareFlagName("  --tls-san "), "tls-san")
    assert.strictEqual(bareFlagName("-o"), "o")
    assert.isUndefined(bareFlagName("traefik"))
    assert.isUndefined(bareFlagName("644"))
    assert.isUndefined(bareFlagName("---x"))
  })

  it("knows the flags only k3s server defines (k3s-io/k3s pkg/cli/cmds/server.go against agent.go)", () => {
    for (const flag of [
      "--disable=traefik",
      "--cluster-cidr=10.52.0.0/16",
      "--tls-san",
      "--disable-network-policy",
      "--write-kubeconfig-mode=644",
      "-o",
      "--kube-apiserver-arg=audit-log-path=/x",
      "--etcd-expose-metrics",
      "--etcd-snapshot-schedule-cron=0 */5 * * *",
      "--etcd-s3-bucket-lookup-type=path",
      "--datastore-endpoint=postgres://x",
      "--secrets-encryption",
      "--system-default-registry=registry.lan"
    ])
      assert.strictEqual(onlyCommandOf(flag), "server", flag)
  })

  it("knows the flags both take, and the agent's own", () => {
    for (const flag of [
      "--node-label=a=b",
      "--node-taint=x=y:NoSchedule",
      "--kubelet-arg=max-pods=150",
      "--kube-proxy-arg=metrics-bind-address=0.0.0.0",
      "--node-ip=10.0.0.5",
      "--node-external-ip=1.2.3.4",
      "--flannel-iface=eth1",
      "--data-dir=/srv/k3s",
      "--private-registry=/etc/r.yaml",
      "--disable-default-registry-endpoint",
      "--nonroot-devices",
      "--bind-address=0.0.0.0",
      "--selinux",
      "--debug",
      "-v",
      "--prefer-bundled-bin"
    ])
      assert.isUndefined(onlyCommandOf(flag), flag)
    assert.strictEqual(onlyCommandOf("--disable-apiserver-lb"), "agent")
    // not known to either list (a newer k3s's, or a typo): not judged here
    assert.isUndefined(onlyCommandOf("--no-such-flag"))
  })

  it("lists, once each, the flags a command does not define; values are passed over", () => {
    const words = ["--disable", "traefik", "--disable=servicelb", "--node-label", "disable", "-o", "/tmp/k.yaml"]
    assert.deepStrictEqual(flagsNotDefinedFor("agent", words), ["--disable", "-o"])
    assert.deepStrictEqual(flagsNotDefinedFor("server", words), [])
    assert.deepStrictEqual(flagsNotDefinedFor("server", ["--disable-apiserver-lb", "--node-label=x=y"]), [
      "--disable-apiserver-lb"
    ])
  })
})
