import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { testScenario, until } from "../helpers.js"
import { closeConnections, guestVm, journal, k3sScenario, nodeOf, run, serverToken, writeToken } from "./k3sHelpers.js"

const SERVER = "https://127.78.0.10:6443"
const install = (flags: string, env = "") =>
  `sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 ${env}sh /tmp/k3s-install.sh agent --server ${SERVER} ${flags}`

describe("k3s agent started with a flag only k3s server defines (k3s-io/k3s#1523, #6565)", () => {
  let sim: SimHandle
  let token = ""
  beforeAll(async () => {
    sim = await startSimPromise(k3sScenario())
    token = await serverToken(sim)
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("stops at start like the real one: install.sh fails, systemd restarts it every 5 s, the node never joins", async () => {
    await writeToken(sim, 301, token)
    await run(sim, 301, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")
    // install.sh without INSTALL_K3S_SKIP_START: its `systemctl restart` fails with the unit's start job
    const inst = await run(sim, 301, install("--node-label tier=gold --disable=traefik"))
    assert.strictEqual(inst.code, 1)
    assert.include(inst.stdout, "[INFO]  systemd: Starting k3s-agent")
    assert.include(
      inst.stderr,
      'Job for k3s-agent.service failed because the control process exited with error code.\nSee "systemctl status k3s-agent.service" and "journalctl -xeu k3s-agent.service" for details.\n'
    )
    const lines = (await journal(sim, 301, "k3s-agent")).split("\n")
    const usage = lines.indexOf("Incorrect Usage: flag provided but not defined: -disable")
    assert.isAtLeast(usage, 0)
    assert.deepStrictEqual(lines.slice(usage + 1, usage + 3), ["NAME:", "   k3s agent - Run node agent"])
    assert.isTrue(lines.some((l) => /level=fatal msg="flag provided but not defined: -disable"$/.test(l)))
    assert.include(lines, "k3s-agent.service: Main process exited, code=exited, status=1/FAILURE")
    // k3s stopped before it logged anything of its own
    assert.isFalse(lines.some((l) => l.includes("Starting k3s agent")))
    // Restart=always: it starts again, and stops again, forever
    await until(async () =>
      (await journal(sim, 301, "k3s-agent")).includes("Scheduled restart job, restart counter is at 2")
        ? true
        : undefined
    )
    assert.strictEqual((await run(sim, 301, "systemctl is-active k3s-agent")).stdout, "activating\n")
    assert.strictEqual(nodeOf(sim, "worker-1"), undefined)
    assert.isFalse(sim.k3sEvents().some((e) => e.kind === "agent-join-finish" && e.node === "worker-1"))
  })

  it("a flag only k3s agent defines stops a server the same way", async () => {
    await writeToken(sim, 303, token)
    await run(sim, 303, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")
    const server = await run(
      sim,
      303,
      `sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 sh /tmp/k3s-install.sh server --server ${SERVER} --disable-apiserver-lb`
    )
    assert.strictEqual(server.code, 1)
    assert.include(
      await journal(sim, 303, "k3s"),
      "Incorrect Usage: flag provided but not defined: -disable-apiserver-lb"
    )
    assert.strictEqual(nodeOf(sim, "cp-2"), undefined)
  })

  it("a flag no k3s defines (one k3s v1.26 removed, a typo) stops it the same way; a newer k3s's flag does not", async () => {
    await writeToken(sim, 304, token)
    await run(sim, 304, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")
    const server = await run(
      sim,
      304,
      `sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 sh /tmp/k3s-install.sh server --server ${SERVER} --etcd-s3-retention=3 --no-deploy traefik --node-lable=x`
    )
    assert.strictEqual(server.code, 1)
    const lines = (await journal(sim, 304, "k3s")).split("\n")
    // the first flag it does not define is the one k3s names
    assert.include(lines, "Incorrect Usage: flag provided but not defined: -no-deploy")
    assert.isTrue(lines.some((l) => /level=fatal msg="flag provided but not defined: -no-deploy"$/.test(l)))
    assert.isFalse(lines.some((l) => l.includes("etcd-s3-retention") || l.includes("node-lable")))
    assert.strictEqual(nodeOf(sim, "cp-3"), undefined)
  })

  it("a key of config.yaml the agent does not define is skipped with a warning, and the agent joins", async () => {
    await run(sim, 302, "sudo -n install -D -m 600 /dev/stdin /etc/rancher/k3s/config.yaml", {
      stdin: `token: ${JSON.stringify(token)}\ndisable: traefik\nnode-label:\n  - tier=edge\n`
    })
    await run(sim, 302, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")
    const inst = await run(sim, 302, install("--kubelet-arg=max-pods=150"))
    assert.strictEqual(inst.code, 0)
    await until(async () => (nodeOf(sim, "worker-2")?.ready === "True" ? true : undefined))
    assert.include(
      await journal(sim, 302, "k3s-agent"),
      'level=warning msg="Unknown flag --disable found in config.yaml, skipping\\n"'
    )
    const node = JSON.parse(
      (await run(sim, 200, "sudo -n /usr/local/bin/k3s kubectl get node worker-2 -o json")).stdout
    ) as { metadata: { annotations: Record<string, string> } }
    const args = JSON.parse(node.metadata.annotations["k3s.io/node-args"] as string) as Array<string>
    assert.deepStrictEqual(args, [
      "agent",
      "--token",
      "********",
      "--node-label",
      "tier=edge",
      "--server",
      SERVER,
      "--kubelet-arg",
      "max-pods=150"
    ])
  })
})

describe("a scenario guest running k3s with a flag its role does not define", () => {
  it("is refused: such a unit could not be running", async () => {
    const scenario = testScenario({
      vms: [
        guestVm(200, "s1", "127.78.1.10", { k3s: { role: "server", clusterInit: true, flags: ["--disable=traefik"] } }),
        guestVm(301, "a1", "127.78.1.31", { k3s: { role: "agent", flags: ["--write-kubeconfig-mode=644"] } })
      ],
      k3s: { version: "v1.30.5+k3s1" }
    })
    let error: unknown
    await startSimPromise(scenario).then(
      (sim) => sim.stop(),
      (e: unknown) => {
        error = e
      }
    )
    assert.match(String(error), /VM 301 runs k3s agent with --write-kubeconfig-mode, a flag k3s agent does not define/)
  })
})
