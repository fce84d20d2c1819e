import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { parseToken } from "../../src/k3s/K3sCluster.js"
import { closeConnections, k3sScenario, run, serverToken } from "./k3sHelpers.js"

describe("parseToken (k3s.md §2.2)", () => {
  it("splits full, short and bootstrap tokens and names the format errors", () => {
    const hash = "a".repeat(64)
    assert.deepStrictEqual(parseToken(`K10${hash}::server:pw\n`), {
      _tag: "basic",
      caHash: hash,
      username: "server",
      password: "pw"
    })
    assert.deepStrictEqual(parseToken("plainsecret"), { _tag: "short", password: "plainsecret" })
    assert.deepStrictEqual(parseToken(`K10${hash}::abcdef.0123456789abcdef`), {
      _tag: "bootstrap",
      caHash: hash,
      id: "abcdef",
      secret: "0123456789abcdef"
    })
    assert.deepStrictEqual(parseToken("K10abc::server:pw"), { _tag: "error", message: "invalid token CA hash length" })
    assert.deepStrictEqual(parseToken(`K10${hash}::nocolon`), { _tag: "error", message: "invalid token format" })
  })
})

describe("the install script's interface (k3s.md §1)", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(k3sScenario())
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("curl | sh -s -: env on the sh side, role from the first word, env file root-only, re-run without changes", async () => {
    const line =
      "curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true K3S_NODE_NAME=w1 sudo -n -E sh -s - agent --server https://127.78.0.10:6443 --node-label a=b"
    const r = await run(sim, 301, line)
    assert.strictEqual(r.code, 0)
    assert.include(r.stdout, "[INFO]  systemd: Creating service file /etc/systemd/system/k3s-agent.service\n")
    const unit = await run(sim, 301, "cat /etc/systemd/system/k3s-agent.service")
    assert.include(unit.stdout, "Type=notify\n")
    assert.include(unit.stdout, "TimeoutStartSec=0\n")
    assert.include(
      unit.stdout,
      "ExecStart=/usr/local/bin/k3s \\\n    agent \\\n\t'--server' \\\n\t'https://127.78.0.10:6443' \\\n\t'--node-label' \\\n\t'a=b' \\\n\n"
    )
    const env = await run(sim, 301, "cat /etc/systemd/system/k3s-agent.service.env")
    assert.deepStrictEqual(
      [env.code, env.stderr],
      [1, "cat: /etc/systemd/system/k3s-agent.service.env: Permission denied\n"]
    )
    assert.strictEqual(
      (await run(sim, 301, "sudo -n cat /etc/systemd/system/k3s-agent.service.env")).stdout,
      "K3S_NODE_NAME='w1'\n"
    )
    // the same inputs again, without SKIP_START: nothing changed, so the (stopped) service is not started
    const again = await run(
      sim,
      301,
      "curl -sfL https://get.k3s.io | INSTALL_K3S_VERSION=v1.30.5+k3s1 K3S_NODE_NAME=w1 sudo -n -E sh -s - agent --server https://127.78.0.10:6443 --node-label a=b"
    )
    assert.strictEqual(again.code, 0)
    assert.include(again.stdout, "[INFO]  Skipping binary downloaded, installed k3s matches hash\n")
    assert.match(again.stdout, /\[INFO\] {2}No change detected so skipping service start\n$/)
    assert.strictEqual((await run(sim, 301, "systemctl is-active k3s-agent")).stdout, "inactive\n")
  })

  it("setup_env errors: K3S_URL without a token, a non-https K3S_URL, SKIP_DOWNLOAD without a binary", async () => {
    await run(sim, 302, "curl -sfL https://get.k3s.io -o /tmp/i.sh")
    const noToken = await run(sim, 302, "sudo -n env K3S_URL=https://127.78.0.10:6443 sh /tmp/i.sh")
    assert.deepStrictEqual(
      [noToken.code, noToken.stderr],
      [
        1,
        "[ERROR]  Defaulted k3s exec command to 'agent' because K3S_URL is defined, but K3S_TOKEN or K3S_TOKEN_FILE is not defined.\n"
      ]
    )
    const http = await run(sim, 302, "sudo -n env K3S_URL=http://127.78.0.10:6443 K3S_TOKEN_FILE=/x sh /tmp/i.sh")
    assert.strictEqual(
      http.stderr,
      "[ERROR]  Only https:// URLs are supported for K3S_URL (have http://127.78.0.10:6443)\n"
    )
    // `VAR=x sudo sh` loses VAR (sudo resets the environment): an unpinned, downloading install of a server
    const lost = await run(
      sim,
      302,
      "INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true sudo -n sh /tmp/i.sh"
    )
    assert.strictEqual(lost.code, 0)
    assert.match(
      lost.stdout,
      /^\[INFO\] {2}Finding release for channel stable\n\[INFO\] {2}Using v1\.31\.5\+k3s1 as release\n/
    )
    assert.include(lost.stdout, "[INFO]  systemd: Creating service file /etc/systemd/system/k3s.service\n")
    assert.strictEqual((await run(sim, 302, "sudo -n /usr/local/bin/k3s-uninstall.sh")).code, 0)
    const skip = await run(sim, 302, "sudo -n env INSTALL_K3S_SKIP_DOWNLOAD=true sh /tmp/i.sh agent")
    assert.deepStrictEqual(
      [skip.code, skip.stdout, skip.stderr],
      [
        1,
        "[INFO]  Skipping k3s download and verify\n",
        "[ERROR]  Executable k3s binary not found at /usr/local/bin/k3s\n"
      ]
    )
  })

  it("a failed download: curl -f exits 22, and curl | sh exits 0 having run nothing (the pipeline trap)", async () => {
    await sim.addFaults([{ kind: "k3sDownloadFails", vmid: 303 }])
    const dl = await run(sim, 303, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")
    assert.deepStrictEqual([dl.code, dl.stderr], [22, ""])
    const shown = await run(sim, 303, "curl -sSfL https://get.k3s.io -o /tmp/k3s-install.sh")
    assert.strictEqual(shown.stderr, "curl: (22) The requested URL returned error: 500\n")
    const piped = await run(sim, 303, "curl -sfL https://get.k3s.io | sudo -n sh -s - agent")
    assert.deepStrictEqual([piped.code, piped.stdout, piped.stderr], [0, "", ""])
    assert.strictEqual((await run(sim, 303, "test -e /usr/local/bin/k3s")).code, 1)
    const other = await run(sim, 303, "curl -sSfL https://example.com/x -o /tmp/x")
    assert.deepStrictEqual([other.code, other.stderr], [6, "curl: (6) Could not resolve host: example.com\n"])
    await sim.clearFaults({ kind: "k3sDownloadFails" })
  })

  it("the uninstall script stops the agent and removes its files but keeps /etc/rancher/node and the Node", async () => {
    const token = await serverToken(sim)
    await run(sim, 304, "sudo -n install -D -m 600 /dev/stdin /etc/rancher/k3s/config.yaml", {
      stdin: `token: ${token}\n`
    })
    await run(sim, 304, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")
    const r = await run(
      sim,
      304,
      "sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 sh /tmp/k3s-install.sh agent --server https://127.78.0.10:6443"
    )
    assert.strictEqual(r.code, 0)
    assert.match(r.stdout, /\[INFO\] {2}systemd: Starting k3s-agent\n$/)
    assert.strictEqual((await run(sim, 304, "systemctl is-active k3s-agent")).stdout, "active\n")
    const un = await run(sim, 304, "sudo -n /usr/local/bin/k3s-agent-uninstall.sh")
    assert.strictEqual(un.code, 0)
    assert.strictEqual((await run(sim, 304, "systemctl is-active k3s-agent")).stdout, "inactive\n")
    assert.strictEqual((await run(sim, 304, "test -e /usr/local/bin/k3s")).code, 1)
    assert.strictEqual((await run(sim, 304, "test -e /etc/rancher/node/password")).code, 0)
    assert.ok(sim.state().k3s.nodes.some((n) => n.name === "cp-3"))
  })
})
