import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { until } from "../helpers.js"
import { closeConnections, journal, k3sScenario, nodeOf, run, serverToken, upload, writeToken } from "./k3sHelpers.js"

const SERVER = "https://127.78.0.10:6443"
const installLine = (extraEnv = "") =>
  `sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true ${extraEnv}sh /tmp/k3s-install.sh agent --server ${SERVER}`

describe("agent joins over real SSH", () => {
  let sim: SimHandle
  let token = ""
  beforeAll(async () => {
    sim = await startSimPromise(k3sScenario())
    token = await serverToken(sim)
    assert.match(token, /^K10[0-9a-f]{64}::server:/)
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("online: curl get.k3s.io → script with INSTALL_K3S_SKIP_START → systemctl start --no-block → Node → Ready", async () => {
    assert.strictEqual((await writeToken(sim, 301, token)).code, 0)
    const dl = await run(sim, 301, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")
    assert.deepStrictEqual([dl.code, dl.stderr], [0, ""])
    const inst = await run(sim, 301, installLine())
    assert.strictEqual(inst.code, 0)
    assert.strictEqual(
      inst.stdout,
      [
        "Using v1.30.5+k3s1 as release",
        "Downloading hash https://github.com/k3s-io/k3s/releases/download/v1.30.5+k3s1/sha256sum-amd64.txt",
        "Downloading binary https://github.com/k3s-io/k3s/releases/download/v1.30.5+k3s1/k3s",
        "Verifying binary download",
        "Installing k3s to /usr/local/bin/k3s",
        "Skipping installation of SELinux RPM",
        "Creating /usr/local/bin/kubectl symlink to k3s",
        "Creating /usr/local/bin/crictl symlink to k3s",
        "Creating /usr/local/bin/ctr symlink to k3s",
        "Creating killall script /usr/local/bin/k3s-killall.sh",
        "Creating uninstall script /usr/local/bin/k3s-agent-uninstall.sh",
        "env: Creating environment file /etc/systemd/system/k3s-agent.service.env",
        "systemd: Creating service file /etc/systemd/system/k3s-agent.service",
        "systemd: Enabling k3s-agent unit",
        ""
      ]
        .map((l) => (l === "" ? "" : `[INFO]  ${l}`))
        .join("\n")
    )
    assert.strictEqual(
      inst.stderr,
      "Created symlink /etc/systemd/system/multi-user.target.wants/k3s-agent.service → /etc/systemd/system/k3s-agent.service.\n"
    )
    assert.deepStrictEqual((await run(sim, 301, "systemctl is-active k3s-agent")).stdout, "inactive\n")
    assert.strictEqual(nodeOf(sim, "worker-1"), undefined)

    const start = await run(sim, 301, "sudo -n systemctl start --no-block k3s-agent")
    assert.deepStrictEqual([start.code, start.stdout, start.stderr], [0, "", ""])
    await until(async () => ((await run(sim, 301, "systemctl is-active k3s-agent")).code === 0 ? true : undefined))
    // the unit is ready once the Node exists; Ready=True follows after the CNI delay: the Node was registered
    // NotReady, with its turn to Ready due a scenario's readyMs later (read from the simulator's operations, not
    // from a look at the Node at one moment, which a loaded machine may take after it turned Ready)
    assert.notStrictEqual(nodeOf(sim, "worker-1"), undefined)
    const turn = sim.operations().find((o) => o.operation === "node-ready" && o.k3sNode === "worker-1")
    assert.isDefined(turn)
    assert.isAbove(turn?.simMs ?? 0, 0)
    assert.isAbove((turn?.endedAt ?? 0) - (turn?.startedAt ?? 0), 0)
    await until(async () => (nodeOf(sim, "worker-1")?.ready === "True" ? true : undefined))
    const node = JSON.parse(
      (await run(sim, 200, "sudo -n /usr/local/bin/k3s kubectl get node worker-1 -o json")).stdout
    ) as { metadata: { labels: Record<string, string> }; status: { addresses: Array<{ address: string }> } }
    assert.strictEqual(node.status.addresses[0]?.address, "127.78.0.31")
    assert.isUndefined(node.metadata.labels["node-role.kubernetes.io/control-plane"])
    const j = await journal(sim, 301, "k3s-agent")
    assert.include(j, 'level=info msg="k3s agent is up and running"')
    assert.notInclude(j, token.slice(token.indexOf("server:")))
    // the token never reached the request log (it travelled on stdin)
    const log = JSON.stringify(sim.requests())
    assert.include(log, "sudo -n systemctl start --no-block k3s-agent")
    assert.notInclude(log, token.split("::server:")[1] as string)
    assert.ok(sim.k3sEvents().some((e) => e.kind === "agent-join-finish" && e.node === "worker-1" && e.vmid === 301))
  })

  it("airgap: install.sh and the binary uploaded over SFTP, INSTALL_K3S_SKIP_DOWNLOAD=true; --node-label", async () => {
    const script = Buffer.from(await (await fetch(`${sim.info.k3sOrigin}/`)).arrayBuffer())
    const binary = Buffer.from(
      await (await fetch(`${sim.info.k3sOrigin}/k3s-io/k3s/releases/download/v1.30.5+k3s1/k3s`)).arrayBuffer()
    )
    await upload(sim, 302, "/tmp/k3s-install.sh", script, 0o755)
    await upload(sim, 302, "/tmp/k3s-join-k3s.bin", binary, 0o755)
    let denied: unknown
    await upload(sim, 302, "/usr/local/bin/k3s", binary, 0o755).catch((e: unknown) => {
      denied = e
    })
    assert.match(String(denied), /Permission denied/)
    const ls = await run(sim, 302, "cat /tmp/k3s-install.sh")
    assert.strictEqual(ls.stdout, script.toString("utf8"))
    const placed = await run(
      sim,
      302,
      "sudo -n install -m 755 /tmp/k3s-join-k3s.bin /usr/local/bin/k3s && rm -f /tmp/k3s-join-k3s.bin"
    )
    assert.deepStrictEqual([placed.code, placed.stderr], [0, ""])
    assert.strictEqual((await writeToken(sim, 302, token)).code, 0)
    const inst = await run(
      sim,
      302,
      `${installLine("INSTALL_K3S_SKIP_DOWNLOAD=true ")} --node-label homelab/vmid=302 --node-label=tier=edge`
    )
    assert.strictEqual(inst.code, 0)
    assert.match(
      inst.stdout,
      /^\[INFO\] {2}Skipping k3s download and verify\n\[INFO\] {2}Skipping installation of SELinux RPM\n/
    )
    assert.notInclude(inst.stdout, "Downloading")
    assert.strictEqual((await run(sim, 302, "sudo -n systemctl start --no-block k3s-agent")).code, 0)
    await until(async () => (nodeOf(sim, "worker-2") !== undefined ? true : undefined))
    assert.strictEqual((await run(sim, 302, "/usr/local/bin/k3s --version")).stdout.split(" ")[2], "v1.30.5+k3s1")
    // deleting the Node of an agent that still runs: its kubelet registers it again
    const uid = (await run(sim, 200, "sudo -n /usr/local/bin/k3s kubectl get node worker-2 -o json")).stdout
    assert.strictEqual(
      (await run(sim, 200, "sudo -n /usr/local/bin/k3s kubectl delete node worker-2")).stdout,
      'node "worker-2" deleted\n'
    )
    await until(async () => (nodeOf(sim, "worker-2") !== undefined ? true : undefined))
    const again = (await run(sim, 200, "sudo -n /usr/local/bin/k3s kubectl get node worker-2 -o json")).stdout
    assert.notStrictEqual(
      (JSON.parse(again) as { metadata: { uid: string } }).metadata.uid,
      (JSON.parse(uid) as { metadata: { uid: string } }).metadata.uid
    )
    assert.ok(sim.k3sEvents().some((e) => e.kind === "node-registered" && e.node === "worker-2"))
    // the Node registers (and registers again) with its --node-label labels; a selector finds it by them
    const labels = (JSON.parse(again) as { metadata: { labels: Record<string, string> } }).metadata.labels
    assert.deepStrictEqual([labels["homelab/vmid"], labels.tier], ["302", "edge"])
    const selected = await run(sim, 200, "sudo -n /usr/local/bin/k3s kubectl get nodes -l homelab/vmid=302 -o name")
    assert.strictEqual(selected.stdout, "node/worker-2\n")
  })

  it("a wrong token loops on 401 / CA hash errors and the unit never becomes active", async () => {
    const [, pw] = token.split("::server:") as [string, string]
    await writeToken(sim, 303, token.replace(pw, "wrong-password"))
    await run(sim, 303, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")
    assert.strictEqual((await run(sim, 303, installLine())).code, 0)
    await run(sim, 303, "sudo -n systemctl start --no-block k3s-agent")
    const unauthorized =
      'level=info msg="Waiting to retrieve agent configuration; server is not ready: https://127.0.0.1:6444/v1-k3s/client-ca.crt: 401 Unauthorized"'
    await until(async () => ((await journal(sim, 303, "k3s-agent")).split(unauthorized).length > 3 ? true : undefined))
    assert.strictEqual((await run(sim, 303, "systemctl is-active k3s-agent")).stdout, "activating\n")

    // the right password but the CA hash of another cluster (fault): the CA check fails first
    await writeToken(sim, 303, token)
    await sim.addFaults([{ kind: "k3sBadToken", vmid: 303, part: "caHash" }])
    await until(async () =>
      /Failed to validate connection to cluster at https:\/\/127\.78\.0\.10:6443: token CA hash does not match the Cluster CA certificate hash: [0-9a-f]{64} != [0-9a-f]{64}/.test(
        await journal(sim, 303, "k3s-agent")
      )
        ? true
        : undefined
    )
    assert.strictEqual((await run(sim, 303, "systemctl is-active k3s-agent")).code, 3)
    assert.strictEqual(nodeOf(sim, "cp-2"), undefined)
    // a blocking start waits for the start job in progress (the next command on the same connection is handled
    // after it) …
    let sent: () => void = () => {}
    const sending = new Promise<void>((resolve) => {
      sent = resolve
    })
    const blockingStart = run(sim, 303, "sudo -n systemctl start k3s-agent", { timeoutMs: 30_000, onSend: sent })
    await sending
    assert.strictEqual((await run(sim, 303, "systemctl is-active k3s-agent")).stdout, "activating\n")
    // k3s reads its token at start: with the fault gone, a restart picks up the corrected config.yaml
    await sim.clearFaults({ kind: "k3sBadToken" })
    assert.strictEqual((await run(sim, 303, "sudo -n systemctl restart --no-block k3s-agent")).code, 0)
    await until(async () => ((await run(sim, 303, "systemctl is-active k3s-agent")).code === 0 ? true : undefined))
    assert.ok(nodeOf(sim, "cp-2") !== undefined)
    // … which the restart replaced: it ends with the restart's result, as systemd's merged job does
    const started = await blockingStart
    assert.deepStrictEqual([started.timedOut, started.code], [false, 0])
  })

  it("server unreachable: connection refused lines; an install without SKIP_START blocks until the client gives up", async () => {
    await sim.addFaults([{ kind: "k3sServerUnreachable" }])
    await writeToken(sim, 304, token)
    await run(sim, 304, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")
    const blocked = await run(
      sim,
      304,
      `sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 sh /tmp/k3s-install.sh agent --server ${SERVER}`,
      { timeoutMs: 800 }
    )
    assert.strictEqual(blocked.timedOut, true)
    assert.strictEqual((await run(sim, 304, "systemctl is-active k3s-agent")).stdout, "activating\n")
    // --no-block returns at once, also while the unit cannot become active (a blocking start would hang here)
    const noBlock = await run(sim, 304, "sudo -n systemctl start --no-block k3s-agent", { timeoutMs: 60_000 })
    assert.deepStrictEqual([noBlock.timedOut, noBlock.code], [false, 0])
    assert.include(
      await journal(sim, 304, "k3s-agent"),
      'level=error msg="Failed to validate connection to cluster at https://127.78.0.10:6443: failed to get CA certs: Get \\"https://127.78.0.10:6443/cacerts\\": dial tcp 127.78.0.10:6443: connect: connection refused"'
    )
    // the abandoned command is in the request log (exit code -1) although it had not finished
    const blockedLine = `sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 sh /tmp/k3s-install.sh agent --server ${SERVER}`
    const logged = await until(async () => {
      const l = sim.requests().filter((r) => r.command === blockedLine)
      return l.length > 0 ? l : undefined
    })
    assert.deepStrictEqual(
      logged.map((r) => [r.transport, r.vmid, r.exitCode]),
      [["guest-ssh", 304, -1]]
    )
    await sim.clearFaults({ kind: "k3sServerUnreachable" })
    await until(async () => ((await run(sim, 304, "systemctl is-active k3s-agent")).code === 0 ? true : undefined))
    // the install finished after the client had gone: it is not logged twice
    assert.strictEqual(sim.requests().filter((r) => r.command === blockedLine).length, 1)
  })

  it("install hang: the unit never becomes ready and the install blocks", async () => {
    await sim.addFaults([{ kind: "k3sInstallHang", vmid: 304 }])
    const blocked = await run(
      sim,
      304,
      `sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_FORCE_RESTART=true sh /tmp/k3s-install.sh agent --server ${SERVER}`,
      { timeoutMs: 600 }
    )
    assert.strictEqual(blocked.timedOut, true)
    assert.strictEqual((await run(sim, 304, "systemctl is-active k3s-agent")).stdout, "activating\n")
    assert.include(await journal(sim, 304, "k3s-agent"), "Waiting for containerd startup")
    await sim.clearFaults({ kind: "k3sInstallHang" })
  })

  it("a rebuilt VM with the same hostname is rejected until the stale secret is deleted, then joins", async () => {
    sim.setVmStatus(301, { status: "stopped" })
    // the kubelet stops posting status: Ready turns Unknown after the grace period (40 s simulated), the Node stays
    assert.strictEqual(nodeOf(sim, "worker-1")?.ready, "True")
    await until(async () => (nodeOf(sim, "worker-1")?.ready === "Unknown" ? true : undefined))
    sim.setVmStatus(305, { status: "running" })
    assert.strictEqual((await run(sim, 305, "hostname")).stdout, "worker-1\n")
    assert.strictEqual((await run(sim, 305, "test -e /etc/rancher/node/password")).code, 1)
    await writeToken(sim, 305, token)
    await run(sim, 305, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")
    assert.strictEqual((await run(sim, 305, installLine())).code, 0)
    await run(sim, 305, "sudo -n systemctl start --no-block k3s-agent")
    await until(async () =>
      (await journal(sim, 305, "k3s-agent")).includes(
        "Node password rejected, duplicate hostname or contents of '/etc/rancher/node/password' may not match server node-passwd entry, try enabling a unique node name with the --with-node-id flag"
      )
        ? true
        : undefined
    )
    assert.strictEqual((await run(sim, 305, "systemctl is-active k3s-agent")).stdout, "activating\n")
    assert.strictEqual(nodeOf(sim, "worker-1")?.vmid, 301)
    assert.isTrue(
      sim.k3sEvents().some((e) => e.kind === "node-password-rejected" && e.node === "worker-1" && e.vmid === 305)
    )
    const del = await run(
      sim,
      200,
      "sudo -n /usr/local/bin/k3s kubectl -n kube-system delete secret worker-1.node-password.k3s --ignore-not-found"
    )
    assert.strictEqual(del.stdout, 'secret "worker-1.node-password.k3s" deleted\n')
    await until(async () => ((await run(sim, 305, "systemctl is-active k3s-agent")).code === 0 ? true : undefined))
    assert.strictEqual(nodeOf(sim, "worker-1")?.vmid, 305)
    assert.strictEqual((await run(sim, 305, "test -e /etc/rancher/node/password")).code, 0)
  })
})
