import { assert, describe, it } from "@effect/vitest"
import { k3sDefinedFlags } from "@homelab/sim"
import {
  AGENT_ONLY_FLAGS,
  bareFlagName,
  definesFlag,
  flagListsCover,
  flagsNotDefinedFor,
  K3S_FLAG_NEWEST_RELEASE,
  K3S_FLAG_RELEASES,
  k3sFlagsOf,
  onlyCommandOf,
  REMOVED_FLAGS,
  removedFlag,
  SERVER_ONLY_FLAGS,
  SHARED_FLAGS,
  unknownFlags
} from "../src/RoleFlags.js"

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
    // defined by neither command: not a question of which one
    assert.isUndefined(onlyCommandOf("--no-such-flag"))
    assert.isUndefined(onlyCommandOf("--etcd-s3-bucket-lookup"))
  })

  it("knows every flag each command defines, hidden and deprecated ones included, and none it does not", () => {
    for (const word of [
      "--node-label=a=b",
      "--kubelet-arg",
      "-v",
      "--vmodule=x=2",
      "-l",
      "--alsologtostderr",
      "--prefer-bundled-bin",
      "--airgap-extra-registry=r.lan",
      "--docker",
      "--nonroot-devices",
      "-i",
      "--node-internal-dns=n.lan"
    ]) {
      assert.isTrue(definesFlag("server", word), word)
      assert.isTrue(definesFlag("agent", word), word)
    }
    for (const word of [
      "--kube-controller-arg=x=y",
      "--kube-cloud-controller-arg=x=y",
      "--disable-agent",
      "--kine-tls",
      "--etcd-snapshot-reconcile-interval=10m",
      "--etcd-s3-retention=5",
      "--etcd-s3-session-token=x",
      "--secrets-encryption-provider=secretbox",
      "--supervisor-metrics",
      "-o"
    ]) {
      assert.isTrue(definesFlag("server", word), word)
      assert.isFalse(definesFlag("agent", word), word)
    }
    assert.isTrue(definesFlag("agent", "--disable-apiserver-lb"))
    assert.isFalse(definesFlag("server", "--disable-apiserver-lb"))
    for (const word of [
      "--node-lable=a=b",
      "--no-deploy=traefik",
      "--no-flannel",
      "--cluster-secret=x",
      "-x",
      "--help"
    ]) {
      assert.isFalse(definesFlag("server", word), word)
      assert.isFalse(definesFlag("agent", word), word)
    }
  })

  it("agrees with the simulated k3s on every flag of either command", () => {
    for (const command of ["server", "agent"] as const) {
      const ours = new Set([...SHARED_FLAGS, ...(command === "server" ? SERVER_ONLY_FLAGS : AGENT_ONLY_FLAGS)])
      assert.deepStrictEqual([...ours].sort(), [...k3sDefinedFlags(command)].sort(), command)
    }
  })

  it("lists the flags neither command defines, once each, as written; values are passed over", () => {
    assert.deepStrictEqual(
      unknownFlags(["--node-lable", "tier=gold", "--node-label=a=b", "-disable-traefik", "--node-lable=x", "traefik"]),
      ["--node-lable", "--disable-traefik"]
    )
    assert.deepStrictEqual(unknownFlags(["--disable=traefik", "--disable-apiserver-lb", "-o", "/k.yaml"]), [])
  })

  it("covers the releases up to the newest it names; a newer one may define flags it does not know", () => {
    assert.isTrue(K3S_FLAG_RELEASES.endsWith(K3S_FLAG_NEWEST_RELEASE))
    for (const version of ["v1.28.15+k3s1", "v1.30.5+k3s1", `${K3S_FLAG_NEWEST_RELEASE}.9+k3s2`, "v1.20.0+k3s1"]) {
      assert.isTrue(flagListsCover(version), version)
    }
    for (const version of ["v1.37.0+k3s1", "v1.40.2+k3s1", "v2.0.0+k3s1"])
      assert.isFalse(flagListsCover(version), version)
    // not a version at all: judged by the lists
    assert.isTrue(flagListsCover("latest"))
  })

  it("names the flags k3s v1.26 removed and what replaced them", () => {
    assert.deepStrictEqual(removedFlag("--no-deploy=traefik"), { name: "--no-deploy", instead: "--disable" })
    assert.deepStrictEqual(removedFlag("-no-flannel"), { name: "--no-flannel", instead: "--flannel-backend=none" })
    assert.isUndefined(removedFlag("--disable=traefik"))
    for (const { name } of REMOVED_FLAGS) assert.isFalse(definesFlag("server", name), name)
  })

  it("gives each command's flags dashed, for suggestions", () => {
    assert.include(k3sFlagsOf("agent"), "--node-label")
    assert.include(k3sFlagsOf("agent"), "-i")
    assert.notInclude(k3sFlagsOf("agent"), "--disable")
    assert.include(k3sFlagsOf("server"), "--disable")
    assert.include(k3sFlagsOf("server"), "-o")
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
