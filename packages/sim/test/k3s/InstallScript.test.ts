import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { installExecWords } from "../../src/k3s/InstallScript.js"
import { closeConnections, k3sScenario, run } from "./k3sHelpers.js"

describe("installExecWords: install.sh's eval set -- $(escape INSTALL_K3S_EXEC) $(quote ARGS)", () => {
  // every expectation below is what dash prints for the same two functions of install.sh
  it("groups quoted words, keeps punctuation literal, keeps positional arguments as given", () => {
    // one argument — but `=` is in escape's set, and inside double quotes eval keeps that backslash
    assert.deepStrictEqual(installExecWords(`server --node-label "a=b c"   --tls-san 'x y'`, []), {
      words: ["server", "--node-label", "a\\=b c", "--tls-san", "x y"]
    })
    assert.deepStrictEqual(installExecWords(`--data-dir=$HOME;x --node-label "k_v=1" k_v`, []), {
      words: ["--data-dir=$HOME;x", "--node-label", "k\\_v\\=1", "k_v"]
    })
    assert.deepStrictEqual(installExecWords("agent", ["--node-label", "it's a b"]), {
      words: ["agent", "--node-label", "it's a b"]
    })
    assert.deepStrictEqual(installExecWords(`--node-label "a=b`, []), {
      error: "sh: 1: eval: Syntax error: Unterminated quoted string"
    })
  })
})

describe("install.sh releases, channels and INSTALL_K3S_EXEC (k3s-io/k3s install.sh)", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(k3sScenario())
    for (const vmid of [301, 302, 303]) await run(sim, vmid, "curl -sfL https://get.k3s.io -o /tmp/i.sh")
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("INSTALL_K3S_VERSION of a release that does not exist: Download failed, exit 1, nothing installed", async () => {
    const r = await run(
      sim,
      301,
      "sudo -n env INSTALL_K3S_VERSION=v9.9.9+k3s1 INSTALL_K3S_SKIP_START=true sh /tmp/i.sh"
    )
    assert.deepStrictEqual(
      [r.code, r.stdout, r.stderr],
      [
        1,
        "[INFO]  Using v9.9.9+k3s1 as release\n[INFO]  Downloading hash https://github.com/k3s-io/k3s/releases/download/v9.9.9+k3s1/sha256sum-amd64.txt\n",
        "[ERROR]  Download failed\n"
      ]
    )
    assert.strictEqual((await run(sim, 301, "test -e /usr/local/bin/k3s")).code, 1)
    assert.strictEqual((await run(sim, 301, "test -e /etc/systemd/system/k3s.service")).code, 1)
    // the release origin itself answers 404 for it (curl -f: exit 22)
    const dl = await run(
      sim,
      301,
      "curl -sSfL https://github.com/k3s-io/k3s/releases/download/v9.9.9+k3s1/k3s -o /tmp/k3s"
    )
    assert.deepStrictEqual([dl.code, dl.stderr], [22, "curl: (22) The requested URL returned error: 404\n"])
  })

  it("INSTALL_K3S_CHANNEL picks the channel's release; an unknown channel's name becomes the release and fails", async () => {
    const minor = await run(sim, 302, "sudo -n env INSTALL_K3S_CHANNEL=v1.29 INSTALL_K3S_SKIP_START=true sh /tmp/i.sh")
    assert.strictEqual(minor.code, 0)
    assert.match(
      minor.stdout,
      /^\[INFO\] {2}Finding release for channel v1\.29\n\[INFO\] {2}Using v1\.29\.15\+k3s1 as release\n/
    )
    assert.match((await run(sim, 302, "/usr/local/bin/k3s --version")).stdout, /^k3s version v1\.29\.15\+k3s1 /)
    const latest = await run(
      sim,
      302,
      "sudo -n env INSTALL_K3S_CHANNEL=latest INSTALL_K3S_SKIP_START=true sh /tmp/i.sh"
    )
    assert.include(latest.stdout, "[INFO]  Using v1.33.5+k3s1 as release\n")
    const unknown = await run(sim, 302, "sudo -n env INSTALL_K3S_CHANNEL=v1.99 sh /tmp/i.sh")
    assert.deepStrictEqual(
      [unknown.code, unknown.stdout.split("\n").slice(0, 2), unknown.stderr],
      [1, ["[INFO]  Finding release for channel v1.99", "[INFO]  Using v1.99 as release"], "[ERROR]  Download failed\n"]
    )
    // the channel server install.sh asks: a redirect to the release tag (curl -w '%{url_effective}' -L)
    const resolved = await run(
      sim,
      302,
      "curl -w '%{url_effective}' -L -s -S https://update.k3s.io/v1-release/channels/v1.30 -o /dev/null"
    )
    assert.deepStrictEqual(
      [resolved.code, resolved.stdout],
      [0, "https://github.com/k3s-io/k3s/releases/tag/v1.30.14+k3s1"]
    )
    const list = JSON.parse((await run(sim, 302, "curl -sfL https://update.k3s.io/v1-release/channels")).stdout) as {
      data: Array<{ name: string; latest: string }>
    }
    assert.ok(list.data.some((c) => c.name === "stable" && c.latest === "v1.31.5+k3s1"))
    assert.ok(list.data.some((c) => c.name === "v1.31" && c.latest === "v1.31.13+k3s1"))
  })

  it("INSTALL_K3S_EXEC is word-split like eval: a quoted label stays one argument (with eval's backslash)", async () => {
    const r = await run(
      sim,
      303,
      `sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true INSTALL_K3S_EXEC='agent --node-label "zone=rack 1"' K3S_URL=https://127.78.0.10:6443 K3S_TOKEN=x sh /tmp/i.sh --node-taint 'a=b:NoSchedule'`
    )
    assert.strictEqual(r.code, 0)
    const unit = (await run(sim, 303, "cat /etc/systemd/system/k3s-agent.service")).stdout
    assert.include(
      unit,
      "ExecStart=/usr/local/bin/k3s \\\n    agent \\\n\t'--node-label' \\\n\t'zone\\=rack 1' \\\n\t'--node-taint' \\\n\t'a=b:NoSchedule' \\\n\n"
    )
  })

  it("setup_env checks the token before the K3S_URL scheme", async () => {
    const r = await run(sim, 303, "sudo -n env K3S_URL=http://127.78.0.10:6443 sh /tmp/i.sh")
    assert.deepStrictEqual(
      [r.code, r.stderr],
      [
        1,
        "[ERROR]  Defaulted k3s exec command to 'agent' because K3S_URL is defined, but K3S_TOKEN or K3S_TOKEN_FILE is not defined.\n"
      ]
    )
    // with an explicit command word the token is not checked, the scheme is
    const agent = await run(sim, 303, "sudo -n env K3S_URL=http://127.78.0.10:6443 sh /tmp/i.sh agent")
    assert.strictEqual(
      agent.stderr,
      "[ERROR]  Only https:// URLs are supported for K3S_URL (have http://127.78.0.10:6443)\n"
    )
  })
})
