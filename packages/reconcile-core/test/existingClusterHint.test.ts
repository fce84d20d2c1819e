import { assert, describe, it } from "@effect/vitest"
import { ExistingCluster } from "@homelab/k3s-join"
import { existingClusterHint } from "../src/existingClusterHint.js"

const refused = (over: Partial<ConstructorParameters<typeof ExistingCluster>[0]>) =>
  new ExistingCluster({ node: "s1", member: null, unitState: "inactive", detail: "", ...over })

describe("existingClusterHint", () => {
  it("etcd data: keep it (k3s.server) or remove it (the uninstall script, or the data dir), or reprovision", () => {
    const hint = existingClusterHint("s1", "10.0.0.11", refused({ member: "s1-0a1b2c3d" }))
    assert.include(hint, "set k3s.server to one of its servers")
    assert.include(hint, "`sudo /usr/local/bin/k3s-uninstall.sh` on 10.0.0.11")
    assert.include(hint, "`sudo rm -rf /var/lib/rancher/k3s`")
    assert.include(hint, "`homelab reprovision s1`")
  })

  it("a k3s server that runs: the uninstall script, no data dir to remove by hand", () => {
    const hint = existingClusterHint("s1", "10.0.0.11", refused({ unitState: "activating" }))
    assert.include(hint, "`sudo /usr/local/bin/k3s-uninstall.sh` on 10.0.0.11")
    assert.notInclude(hint, "rm -rf")
  })

  it("a k3s agent that runs: keep it as an agent of k3s.server, or the agent's own uninstall script", () => {
    const hint = existingClusterHint("s1", "10.0.0.11", refused({ agentUnitState: "active" }))
    assert.include(hint, "set k3s.server to one of its servers and give s1 role: agent in homelab.yaml")
    assert.include(hint, "`sudo /usr/local/bin/k3s-agent-uninstall.sh` on 10.0.0.11")
    assert.notInclude(hint, "k3s-uninstall.sh`")
    assert.include(hint, "`homelab reprovision s1`")
  })
})
