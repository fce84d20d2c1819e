import { assert, describe, it } from "@effect/vitest"
import { decodeNode } from "../src/ClusterNode.js"
import {
  desiredFlags,
  diffFlags,
  immutableChanges,
  nodeChanges,
  noNodeChanges,
  recordedWords,
  runningFlags,
  sameFlags,
  showFlag,
  withFlags
} from "../src/NodeFlags.js"

/** A server homelab installed: config.yaml's token first, then the unit's words. */
const serverArgs = [
  "server",
  "--token",
  "********",
  "--server",
  "https://10.0.0.11:6443",
  "--node-name",
  "k3s-vm-pve",
  "--write-kubeconfig-mode",
  "644"
]

describe("NodeFlags", () => {
  it("recordedWords splits --flag=value and masks secret values, as k3s.io/node-args does", () => {
    assert.deepStrictEqual(recordedWords(["--disable=traefik", "-t", "x", "--node-label", "a=b"]), [
      "--disable",
      "traefik",
      "-t",
      "********",
      "--node-label",
      "a=b"
    ])
  })

  it("--vpn-auth is masked as k3s masks it: a member running the wanted VPN credentials is no change", () => {
    const wanted = desiredFlags(["--vpn-auth=name=tailscale,joinKey=tskey-abc"])
    assert.deepStrictEqual(wanted.map(showFlag), ["--vpn-auth=********"])
    const running = runningFlags(["agent", "--vpn-auth", "********"]) ?? []
    assert.isTrue(sameFlags(diffFlags(running, wanted)))
  })

  it("the running flags leave out the command word and the join flags", () => {
    assert.deepStrictEqual(runningFlags(serverArgs)?.map(showFlag), ["--write-kubeconfig-mode=644"])
    assert.deepStrictEqual(runningFlags(["server", "--cluster-init", "--disable", "traefik"])?.map(showFlag), [
      "--disable=traefik"
    ])
    assert.strictEqual(runningFlags(undefined), undefined)
  })

  it("the same flags in another spelling or order are no change; added and dropped ones are", () => {
    const running = runningFlags([...serverArgs, "--node-label", "tier=gold", "--disable", "traefik"]) ?? []
    assert.isTrue(
      sameFlags(
        diffFlags(
          running,
          desiredFlags(["--disable=traefik", "--write-kubeconfig-mode", "644", "--node-label=tier=gold"])
        )
      )
    )
    const diff = diffFlags(running, desiredFlags(["--write-kubeconfig-mode=644", "--node-label=tier=silver"]))
    assert.deepStrictEqual(
      { added: diff.added.map(showFlag), removed: diff.removed.map(showFlag) },
      { added: ["--node-label=tier=silver"], removed: ["--node-label=tier=gold", "--disable=traefik"] }
    )
    assert.deepStrictEqual(immutableChanges(diff), [])
  })

  it("flags k3s cannot change on a running cluster: the network, the datastore, --disable servicelb", () => {
    const running = runningFlags(["server", "--cluster-cidr", "10.42.0.0/16", "--disable", "traefik"]) ?? []
    const diff = diffFlags(running, desiredFlags(["--cluster-cidr=10.52.0.0/16", "--disable=traefik,servicelb"]))
    assert.deepStrictEqual(immutableChanges(diff).map(showFlag), ["--cluster-cidr=10.52.0.0/16", "--disable=servicelb"])
  })

  it("a value k3s splits at commas is the flag given once per item; other flags' values are taken whole", () => {
    const same = (recorded: ReadonlyArray<string>, wanted: ReadonlyArray<string>) =>
      sameFlags(diffFlags(runningFlags(["server", ...recorded]) ?? [], desiredFlags(wanted)))
    // k3s.io/node-args records the words as given: `--disable traefik,servicelb` for a `--disable=traefik,servicelb`
    assert.isTrue(same(["--disable", "traefik,servicelb"], ["--disable=traefik", "--disable=servicelb"]))
    assert.isTrue(same(["--disable", "traefik", "--disable", "servicelb"], ["--disable=servicelb,traefik"]))
    assert.isTrue(same(["--disable", "traefik, servicelb,"], ["--disable", "traefik", "--disable", "servicelb"]))
    assert.isTrue(same(["--tls-san", "k3s.lan,10.0.0.100"], ["--tls-san=k3s.lan", "--tls-san=10.0.0.100"]))
    assert.isTrue(
      same(
        ["--cluster-cidr", "10.42.0.0/16,fd00:42::/56"],
        ["--cluster-cidr=10.42.0.0/16", "--cluster-cidr=fd00:42::/56"]
      )
    )
    assert.isTrue(same(["--node-ip", "10.0.0.5,fd00::5"], ["-i", "10.0.0.5", "--node-ip=fd00::5"]))
    assert.isTrue(
      same(["--node-external-dns", "a.lan,b.lan"], ["--node-external-dns=b.lan", "--node-external-dns=a.lan"])
    )
    // not split by k3s: one label `a` of value `b,c=d`, one kubelet flag whose value holds a comma
    assert.isFalse(same(["--node-label", "a=b,c=d"], ["--node-label=a=b", "--node-label=c=d"]))
    assert.isFalse(
      same(
        ["--kubelet-arg", "feature-gates=A=true,B=false"],
        ["--kubelet-arg=feature-gates=A=true", "--kubelet-arg=B=false"]
      )
    )
    // a real difference is still one, item by item
    const diff = diffFlags(
      runningFlags(["server", "--disable", "traefik,servicelb", "--tls-san", "a.lan,b.lan"]) ?? [],
      desiredFlags(["--disable=traefik", "--tls-san=a.lan,c.lan"])
    )
    assert.deepStrictEqual(
      { added: diff.added.map(showFlag), removed: diff.removed.map(showFlag) },
      { added: ["--tls-san=c.lan"], removed: ["--disable=servicelb", "--tls-san=b.lan"] }
    )
  })

  it("what a Node needs by hand: a dropped label whose key no wanted label sets; the taints changed, by key and effect", () => {
    const changes = (recorded: ReadonlyArray<string>, wanted: ReadonlyArray<string>) => {
      const w = desiredFlags(wanted)
      return nodeChanges(diffFlags(runningFlags(["agent", ...recorded]) ?? [], w), w)
    }
    assert.deepStrictEqual(
      changes(
        ["--node-label", "tier=gold", "--node-label", "zone=a", "--node-label", "rack=1", "--disable-apiserver-lb"],
        // zone changes value (k3s sets it again at the restart), rack is set the other way, tier is dropped
        ["--node-label=zone=b", "--node-label", "rack=1"]
      ),
      { removeLabels: ["tier"], removeTaints: [], addTaints: [] }
    )
    assert.deepStrictEqual(
      changes(
        ["--node-taint", "gpu=true:NoSchedule,spot=yes:NoExecute", "--node-taint", "edge:PreferNoSchedule"],
        // spot's value changes (added with --overwrite, not removed), gpu goes, dedicated comes
        [
          "--node-taint=spot=no:NoExecute",
          "--node-taint",
          "edge:PreferNoSchedule",
          "--node-taint=dedicated=x:NoSchedule"
        ]
      ),
      {
        removeLabels: [],
        removeTaints: ["gpu=true:NoSchedule"],
        addTaints: ["spot=no:NoExecute", "dedicated=x:NoSchedule"]
      }
    )
    // the same taints, joined by commas or not: nothing (the kubelet splits --register-with-taints at commas)
    assert.isTrue(
      noNodeChanges(
        changes(
          ["--node-taint", "a=1:NoSchedule,b=2:NoExecute"],
          ["--node-taint=b=2:NoExecute", "--node-taint=a=1:NoSchedule"]
        )
      )
    )
    // other flags: nothing for the Node
    assert.isTrue(noNodeChanges(changes(["--kubelet-arg", "max-pods=110"], ["--kubelet-arg=max-pods=150"])))
  })

  it("withFlags keeps the command word and the join flags of a unit, and replaces the rest", () => {
    assert.deepStrictEqual(
      withFlags(
        ["agent", "--server", "https://10.0.0.11:6443", "--node-name", "a1", "--write-kubeconfig-mode=644"],
        ["--node-label=tier=gold"]
      ),
      ["agent", "--server", "https://10.0.0.11:6443", "--node-name", "a1", "--node-label=tier=gold"]
    )
    assert.deepStrictEqual(withFlags(["server", "--cluster-init", "--disable", "traefik"], []), [
      "server",
      "--cluster-init"
    ])
  })

  it("decodeNode reads k3s.io/node-args; a missing or malformed one is undefined", () => {
    const node = (annotations: Record<string, string>) =>
      decodeNode(JSON.stringify({ metadata: { name: "n", annotations } }))
    const read = node({ "k3s.io/node-args": JSON.stringify(serverArgs) })
    assert.deepStrictEqual(read._tag === "Success" ? read.success.nodeArgs : "failed", serverArgs)
    const bad = node({ "k3s.io/node-args": "{not json" })
    assert.strictEqual(bad._tag === "Success" ? bad.success.nodeArgs : "failed", undefined)
  })
})
