import { assert, describe, it } from "@effect/vitest"
import { decodeNode } from "../src/ClusterNode.js"
import {
  desiredFlags,
  diffFlags,
  immutableChanges,
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
    assert.deepStrictEqual(immutableChanges(diff).map(showFlag), [
      "--cluster-cidr=10.52.0.0/16",
      "--disable=traefik,servicelb"
    ])
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
