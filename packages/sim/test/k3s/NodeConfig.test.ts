/**
 * What k3s records about its configuration on its Node at every start (k3s-io/k3s `pkg/nodeconfig`,
 * `pkg/configfilearg`): `k3s.io/node-args` with config.yaml's flags after the command word, `--flag=value` split and
 * secrets masked; `--node-label` labels set again (merged) by `configureNode`.
 */
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { nodeArgs, nodeConfigHash, nodeEnv } from "../../src/k3s/NodeConfig.js"
import { closeConnections, haScenario, run, serverToken } from "./k3sHelpers.js"

const K = "sudo -n /usr/local/bin/k3s kubectl"

describe("nodeArgs, as k3s's getNodeArgs builds them", () => {
  it("config.yaml's flags right after the command word, --flag=value split, secrets masked", () => {
    assert.deepStrictEqual(
      nodeArgs(
        ["server", "--server", "https://10.0.0.1:6443", "--disable=traefik", "--node-label", "tier=gold"],
        'token: "K10abc::server:secret"\ntls-san:\n  - a.lan\n  - b.lan\n'
      ),
      [
        "server",
        "--token",
        "********",
        "--tls-san",
        "a.lan",
        "--tls-san",
        "b.lan",
        "--server",
        "https://10.0.0.1:6443",
        "--disable",
        "traefik",
        "--node-label",
        "tier=gold"
      ]
    )
    assert.deepStrictEqual(
      nodeArgs(["agent", "-t", "x", "--datastore-endpoint=mysql://u:p@h/db", "--vpn-auth=name=tailscale"], undefined),
      ["agent", "-t", "********", "--datastore-endpoint", "********", "--vpn-auth", "********"]
    )
  })

  it("node-env keeps only K3S_ variables, sorted, secrets masked; the hash is base32 of SHA-256", () => {
    assert.strictEqual(
      JSON.stringify(
        nodeEnv({ K3S_URL: "https://s:6443", PATH: "/bin", K3S_TOKEN: "t", K3S_DATA_DIR: "/d", K3S_VPN_AUTH: "v" })
      ),
      '{"K3S_DATA_DIR":"/d","K3S_TOKEN":"********","K3S_URL":"https://s:6443","K3S_VPN_AUTH":"********"}'
    )
    // the annotations of the agent in k3s.md §4.3 are from a real node: same shape (52 characters, padded)
    assert.match(nodeConfigHash('["agent"]', "{}"), /^[A-Z2-7]{52}====$/)
  })
})

describe("the Node's k3s.io/node-args after install.sh runs again with other flags", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(haScenario())
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  const annotations = async (node: string) =>
    JSON.parse((await run(sim, 200, `${K} get node ${node} -o json`)).stdout).metadata as {
      annotations: Record<string, string>
      labels: Record<string, string>
    }

  it("follows the unit's ExecStart at the restart; the --node-label labels are set again, none removed", async () => {
    const before = await annotations("a1")
    assert.strictEqual(before.annotations["k3s.io/node-args"], '["agent","--server","https://127.78.1.10:6443"]')
    const token = await serverToken(sim)
    await run(sim, 301, "curl -sfL https://get.k3s.io -o /tmp/i.sh")
    const install = (flags: string) =>
      run(
        sim,
        301,
        `sudo -n env K3S_TOKEN=${token} INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true sh /tmp/i.sh agent --server https://127.78.1.10:6443 ${flags}`
      )
    assert.strictEqual((await install("--node-label=tier=gold --node-label zone=a")).code, 0)
    // written into the unit, not running yet: the Node still says what k3s runs with
    assert.strictEqual(
      (await annotations("a1")).annotations["k3s.io/node-args"],
      '["agent","--server","https://127.78.1.10:6443"]'
    )
    await run(sim, 301, "sudo -n systemctl restart k3s-agent")
    const after = await annotations("a1")
    assert.deepStrictEqual(JSON.parse(after.annotations["k3s.io/node-args"] ?? ""), [
      "agent",
      "--server",
      "https://127.78.1.10:6443",
      "--node-label",
      "tier=gold",
      "--node-label",
      "zone=a"
    ])
    assert.notStrictEqual(after.annotations["k3s.io/node-config-hash"], before.annotations["k3s.io/node-config-hash"])
    assert.deepStrictEqual([after.labels.tier, after.labels.zone], ["gold", "a"])
    // a label no longer given stays (updateMutableLabels only adds and sets)
    assert.strictEqual((await install("--node-label=tier=silver")).code, 0)
    await run(sim, 301, "sudo -n systemctl restart k3s-agent")
    const again = await annotations("a1")
    assert.deepStrictEqual([again.labels.tier, again.labels.zone], ["silver", "a"])
    assert.strictEqual(JSON.parse(again.annotations["k3s.io/node-env"] ?? "{}").K3S_TOKEN, "********")
  })
})
