import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { testScenario, until } from "../helpers.js"
import { closeConnections, guestVm, journal, nodeOf, run, serverToken, TOKEN, writeToken } from "./k3sHelpers.js"

const SERVER = "https://127.78.3.10:6443"
const install = (role: "server" | "agent") =>
  `sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true sh /tmp/k3s-install.sh ${role} --server ${SERVER}`

const prepare = async (sim: SimHandle, vmid: number, token: string, role: "server" | "agent") => {
  assert.strictEqual((await writeToken(sim, vmid, token)).code, 0)
  assert.strictEqual((await run(sim, vmid, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")).code, 0)
  assert.strictEqual((await run(sim, vmid, install(role))).code, 0)
}

const nodeJson = async (sim: SimHandle, name: string) => {
  const r = await run(sim, 200, `sudo -n /usr/local/bin/k3s kubectl get node ${name} -o json`)
  assert.strictEqual(r.code, 0, r.stderr)
  return JSON.parse(r.stdout) as { metadata: { labels: Record<string, string>; annotations: Record<string, string> } }
}

const roleLabels = (labels: Record<string, string>) =>
  Object.keys(labels)
    .filter((k) => k.startsWith("node-role.kubernetes.io/"))
    .sort()

/** A k3s server installed the default way (`curl -sfL https://get.k3s.io | sh -`): SQLite, no --cluster-init. */
describe("a k3s server on SQLite (installed without --cluster-init)", () => {
  let sim: SimHandle
  let token = ""
  beforeAll(async () => {
    sim = await startSimPromise(
      testScenario({
        vms: [
          guestVm(200, "k3s-server", "127.78.3.10", { k3s: { role: "server", datastore: "sqlite" } }),
          guestVm(301, "worker-1", "127.78.3.31"),
          guestVm(303, "cp-2", "127.78.3.33")
        ],
        k3s: { version: "v1.30.5+k3s1", token: TOKEN, joinDelayMs: 2000, readyDelayMs: 3000 }
      })
    )
    token = await serverToken(sim)
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("its Node has the control-plane and master roles but no etcd; it has no etcd members (/db/info is the apiserver's 401)", async () => {
    const node = await nodeJson(sim, "k3s-server")
    assert.deepStrictEqual(roleLabels(node.metadata.labels), [
      "node-role.kubernetes.io/control-plane",
      "node-role.kubernetes.io/master"
    ])
    assert.strictEqual(node.metadata.annotations["k3s.io/node-args"], '["server"]')
    assert.isUndefined(node.metadata.annotations["etcd.k3s.cattle.io/node-name"])
    const info = await run(sim, 200, "curl -fsSk https://127.0.0.1:6443/db/info")
    assert.strictEqual(info.code, 22)
    assert.include(info.stderr, "401")
    const files = await run(sim, 200, "sudo -n cat /var/lib/rancher/k3s/server/db/state.db")
    assert.strictEqual(files.code, 0)
  })

  it("an agent joins it", async () => {
    await prepare(sim, 301, token, "agent")
    assert.strictEqual((await run(sim, 301, "sudo -n systemctl start k3s-agent")).code, 0)
    assert.strictEqual(nodeOf(sim, "worker-1")?.role, "agent")
  })

  it("a server joining it fails on the bootstrap request k3s without etcd refuses, and systemd restarts it", async () => {
    await prepare(sim, 303, token, "server")
    assert.strictEqual((await run(sim, 303, "sudo -n systemctl start --no-block k3s")).code, 0)
    const line = await until(async () =>
      (await journal(sim, 303, "k3s"))
        .split("\n")
        .find((l) => l.includes("level=fatal") && l.includes("server-bootstrap"))
    )
    assert.include(
      line,
      `msg="starting kubernetes: preparing server: failed to bootstrap cluster data: ${SERVER}/v1-k3s/server-bootstrap: 400 Bad Request"`
    )
    assert.include(await journal(sim, 200, "k3s"), "but embedded etcd is not enabled.")
    assert.strictEqual((await run(sim, 303, "systemctl is-active k3s")).stdout, "activating\n")
    assert.isUndefined(nodeOf(sim, "cp-2"))
    assert.isTrue(sim.k3sEvents().some((e) => e.kind === "server-join-failed" && e.node === "cp-2"))
  })

  it("restarted with cluster-init: true, it moves SQLite into etcd (its own member, the etcd role), and the server joins", async () => {
    const convert = await run(
      sim,
      200,
      "echo 'cluster-init: true' | sudo -n tee -a /etc/rancher/k3s/config.yaml >/dev/null && sudo -n systemctl restart k3s"
    )
    assert.strictEqual(convert.code, 0, convert.stderr)
    assert.include(await journal(sim, 200, "k3s"), "Migrating content from sqlite to etcd")
    const node = await nodeJson(sim, "k3s-server")
    assert.include(roleLabels(node.metadata.labels), "node-role.kubernetes.io/etcd")
    const info = await run(sim, 200, "curl -fsSk https://127.0.0.1:6443/db/info")
    assert.strictEqual(info.code, 0, info.stderr)
    // its own member first (cp-2's systemd may have started it again since, and joined as the second)
    const members = (JSON.parse(info.stdout) as { members: Array<{ name: string }> }).members
    assert.match(members[0]?.name ?? "", /^k3s-server-[0-9a-f]{8}$/)
    // systemd's next start of cp-2 joins it
    await until(async () => (nodeOf(sim, "cp-2")?.ready === "True" ? true : undefined), 20_000)
    assert.strictEqual(nodeOf(sim, "cp-2")?.role, "server")
    assert.include(roleLabels((await nodeJson(sim, "cp-2")).metadata.labels), "node-role.kubernetes.io/etcd")
    // the new etcd had its quorum from its first member on
    assert.isFalse(sim.k3sEvents().some((e) => e.kind === "etcd-quorum-lost"))
  })
})

describe("installing a first server without --cluster-init", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(
      testScenario({
        vms: [guestVm(301, "solo", "127.78.3.41")],
        k3s: { version: "v1.30.5+k3s1", joinDelayMs: 2000, readyDelayMs: 3000 }
      })
    )
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("starts a cluster on SQLite, as `curl -sfL https://get.k3s.io | sh -` does: no etcd role, no member", async () => {
    assert.strictEqual((await run(sim, 301, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")).code, 0)
    const inst = await run(sim, 301, "sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 sh /tmp/k3s-install.sh")
    assert.strictEqual(inst.code, 0, inst.stderr)
    const got = await run(sim, 301, "sudo -n /usr/local/bin/k3s kubectl get node solo -o json")
    assert.strictEqual(got.code, 0, got.stderr)
    const labels = (JSON.parse(got.stdout) as { metadata: { labels: Record<string, string> } }).metadata.labels
    assert.deepStrictEqual(roleLabels(labels), [
      "node-role.kubernetes.io/control-plane",
      "node-role.kubernetes.io/master"
    ])
    assert.include(await journal(sim, 301, "k3s"), "Configuring sqlite3 database connection pooling")
    assert.strictEqual((await run(sim, 301, "sudo -n cat /var/lib/rancher/k3s/server/db/state.db")).code, 0)
    assert.deepStrictEqual(sim.state().k3s.etcdMembers, [])
  })
})

describe("a k3s server on an external datastore (--datastore-endpoint)", () => {
  const endpoint = "postgres://k3s:secret@db.lan:5432/k3s"
  const ext = "https://127.78.3.50:6443"
  let sim: SimHandle
  let token = ""
  beforeAll(async () => {
    sim = await startSimPromise(
      testScenario({
        vms: [
          guestVm(200, "k3s-server", "127.78.3.50", {
            k3s: { role: "server", clusterInit: true, flags: [`--datastore-endpoint=${endpoint}`] }
          }),
          guestVm(303, "cp-2", "127.78.3.53"),
          guestVm(304, "cp-3", "127.78.3.54")
        ],
        k3s: { version: "v1.30.5+k3s1", token: TOKEN, joinDelayMs: 2000, readyDelayMs: 3000 }
      })
    )
    token = await serverToken(sim)
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  const installServer = async (vmid: number, extra: string) => {
    assert.strictEqual((await writeToken(sim, vmid, token)).code, 0)
    assert.strictEqual((await run(sim, vmid, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")).code, 0)
    const inst = await run(
      sim,
      vmid,
      `sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true sh /tmp/k3s-install.sh server --server ${ext}${extra}`
    )
    assert.strictEqual(inst.code, 0, inst.stderr)
  }

  it("its Node has no etcd role, its node-args the endpoint masked; a server without the endpoint stops on the bootstrap request", async () => {
    const node = await nodeJson(sim, "k3s-server")
    assert.notInclude(roleLabels(node.metadata.labels), "node-role.kubernetes.io/etcd")
    assert.strictEqual(node.metadata.annotations["k3s.io/node-args"], '["server","--datastore-endpoint","********"]')
    await installServer(303, "")
    assert.strictEqual((await run(sim, 303, "sudo -n systemctl start --no-block k3s")).code, 0)
    await until(async () =>
      (await journal(sim, 303, "k3s")).includes(`${ext}/v1-k3s/server-bootstrap: 400 Bad Request`) ? true : undefined
    )
    assert.isUndefined(nodeOf(sim, "cp-2"))
  })

  it("a server with the same --datastore-endpoint joins it (no etcd member)", async () => {
    await installServer(304, ` --datastore-endpoint=${endpoint}`)
    assert.strictEqual((await run(sim, 304, "sudo -n systemctl start k3s")).code, 0)
    assert.strictEqual(nodeOf(sim, "cp-3")?.role, "server")
    assert.notInclude(roleLabels((await nodeJson(sim, "cp-3")).metadata.labels), "node-role.kubernetes.io/etcd")
    assert.deepStrictEqual(sim.state().k3s.etcdMembers, [])
  })

  it("its first server, started again without a token, runs on with its data-dir's own", async () => {
    assert.strictEqual((await run(sim, 200, "sudo -n systemctl restart k3s")).code, 0)
    assert.strictEqual((await run(sim, 200, "systemctl is-active k3s")).stdout, "active\n")
    assert.notInclude(await journal(sim, 200, "k3s"), "encrypted with different token")
  })
})
