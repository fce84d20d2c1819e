import { assert, describe, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import {
  checkFlags,
  configYaml,
  deleteNodeCommand,
  deleteNodePasswordCommand,
  downloadScriptCommand,
  formatRecord,
  getNodeCommand,
  getNodesCommand,
  installBinaryCommand,
  installCommand,
  installedDuringRun,
  installedStateCommand,
  isActiveCommand,
  journalCommand,
  lockedInstallCommand,
  normalizeFlags,
  parseExecStart,
  parseInstalledState,
  parseLockedInstallOutput,
  parseRecord,
  parseReleaseCheck,
  parseUnitJournal,
  readTokenCommand,
  releaseCheckCommand,
  restartHeldCommand,
  restartPendingPath,
  serverUrl,
  startCommand,
  taintNodeCommand,
  tokenPaths,
  unitJournalCommand,
  unlabelNodeCommand,
  withoutTrace,
  writeRootFileCommand
} from "../src/InstallCommand.js"
import { SERVER_PASSWORD, SERVER_TOKEN } from "./support/fixtures.js"

describe("install command (golden strings)", () => {
  it("agent, online, pinned version, extra flags", () => {
    const command = installCommand({
      role: "agent",
      server: "10.0.10.11",
      version: "v1.30.5+k3s1",
      flags: normalizeFlags("--node-label zone=a  --disable=traefik")
    })
    assert.strictEqual(
      command,
      "sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true sh /tmp/k3s-install.sh agent --server https://10.0.10.11:6443 --node-label zone=a --disable=traefik"
    )
  })

  it("server joining the embedded-etcd control plane, airgap, node name", () => {
    const command = installCommand({
      role: "server",
      server: "k3s-s1.lan",
      version: "v1.30.5+k3s1",
      flags: ["--write-kubeconfig-mode", "644", "--disable=traefik"],
      nodeName: "k3s-s2",
      airgap: true
    })
    assert.strictEqual(
      command,
      "sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true INSTALL_K3S_SKIP_DOWNLOAD=true sh /tmp/k3s-install.sh server --server https://k3s-s1.lan:6443 --node-name k3s-s2 --write-kubeconfig-mode 644 --disable=traefik"
    )
    assert.notInclude(command, "--cluster-init")
  })

  it("quotes odd values", () => {
    const command = installCommand({
      role: "agent",
      server: "fd00::11",
      version: "v1.30.5+k3s1",
      flags: ["--node-label", "note=it's here"],
      scriptPath: "/tmp/my dir/k3s-install.sh"
    })
    assert.strictEqual(
      command,
      "sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true sh '/tmp/my dir/k3s-install.sh' agent --server 'https://[fd00::11]:6443' --node-label 'note=it'\\''s here'"
    )
  })

  it("the other commands of k3s.md §8.2", () => {
    assert.strictEqual(downloadScriptCommand(), "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")
    assert.strictEqual(
      readTokenCommand(tokenPaths("server")[0] as string),
      "sudo -n cat /var/lib/rancher/k3s/server/token"
    )
    assert.deepStrictEqual(tokenPaths("agent"), [
      "/var/lib/rancher/k3s/server/agent-token",
      "/var/lib/rancher/k3s/server/node-token",
      "/var/lib/rancher/k3s/server/token"
    ])
    assert.strictEqual(getNodesCommand(), "sudo -n /usr/local/bin/k3s kubectl get nodes -o json")
    assert.strictEqual(getNodeCommand("k3s-a1"), "sudo -n /usr/local/bin/k3s kubectl get node k3s-a1 -o json")
    assert.strictEqual(
      deleteNodeCommand("k3s-a1"),
      "sudo -n /usr/local/bin/k3s kubectl delete node k3s-a1 --ignore-not-found"
    )
    assert.strictEqual(
      deleteNodePasswordCommand("k3s-a1"),
      "sudo -n /usr/local/bin/k3s kubectl -n kube-system delete secret k3s-a1.node-password.k3s --ignore-not-found"
    )
    assert.strictEqual(isActiveCommand("agent"), "systemctl is-active k3s-agent")
    assert.strictEqual(isActiveCommand("server"), "systemctl is-active k3s")
    assert.strictEqual(startCommand("agent"), "sudo -n systemctl enable --now --no-block k3s-agent")
    assert.strictEqual(startCommand("server", true), "sudo -n systemctl restart --no-block k3s")
    assert.strictEqual(journalCommand("agent"), "sudo -n journalctl -u k3s-agent --no-pager -n 200 -o cat")
    assert.strictEqual(
      unitJournalCommand("agent"),
      "systemctl is-active k3s-agent; sudo -n journalctl -u k3s-agent --no-pager -n 200 -o cat"
    )
    assert.strictEqual(
      writeRootFileCommand("/etc/rancher/k3s/config.yaml"),
      "sudo -n install -D -m 600 /dev/stdin /etc/rancher/k3s/config.yaml"
    )
    assert.strictEqual(
      installBinaryCommand("/tmp/k3s-join-k3s.bin"),
      "sudo -n install -m 755 /tmp/k3s-join-k3s.bin /usr/local/bin/k3s"
    )
    assert.strictEqual(serverUrl("10.0.10.11", 7443), "https://10.0.10.11:7443")
    assert.strictEqual(
      unlabelNodeCommand("k3s-a1", ["tier", "example.com/zone"]),
      "sudo -n /usr/local/bin/k3s kubectl label node k3s-a1 tier- example.com/zone-"
    )
    // kubectl removes a taint by key and effect; adds (or changes) with --overwrite
    assert.strictEqual(
      taintNodeCommand("k3s-a1", { remove: "gpu=true:NoSchedule" }),
      "sudo -n /usr/local/bin/k3s kubectl taint node k3s-a1 gpu:NoSchedule-"
    )
    assert.strictEqual(
      taintNodeCommand("k3s-a1", { add: ["spot=yes:NoExecute", "dedicated:NoSchedule"] }),
      "sudo -n /usr/local/bin/k3s kubectl taint node k3s-a1 spot=yes:NoExecute dedicated:NoSchedule --overwrite"
    )
  })

  it("never puts the token into a command; it only goes into the stdin content", () => {
    const commands = [
      installCommand({ role: "server", server: "10.0.10.11", version: "v1.30.5+k3s1" }),
      installCommand({ role: "agent", server: "10.0.10.11", version: "v1.30.5+k3s1", airgap: true }),
      writeRootFileCommand("/etc/rancher/k3s/config.yaml"),
      startCommand("agent"),
      downloadScriptCommand()
    ]
    for (const command of commands) {
      assert.notInclude(command, SERVER_PASSWORD)
      assert.notInclude(command, "K10")
      assert.notMatch(command, /K3S_TOKEN|--token/)
    }
    const yaml = configYaml(Redacted.make(SERVER_TOKEN))
    assert.strictEqual(Redacted.value(yaml), `# written by @homelab/k3s-join\ntoken: "${SERVER_TOKEN}"\n`)
    assert.notInclude(String(yaml), SERVER_PASSWORD)
  })
})

describe("checkFlags", () => {
  it("refuses flags that would re-init a cluster or carry a secret", () => {
    assert.match(checkFlags(["--cluster-init"]) ?? "", /--cluster-init/)
    assert.match(checkFlags(["--token", "x"]) ?? "", /--token/)
    assert.match(checkFlags(["--token=x"]) ?? "", /--token/)
    assert.match(checkFlags(["--agent-token=x"]) ?? "", /--agent-token/)
    assert.match(checkFlags(["--server", "https://x:6443"]) ?? "", /--server/)
    assert.match(checkFlags(["--token-file", "/x"]) ?? "", /managed/)
    assert.match(checkFlags(["--with-node-id"]) ?? "", /not supported/)
    assert.isUndefined(checkFlags(["--write-kubeconfig-mode", "644", "--disable=traefik", "--tls-san", "k3s.lan"]))
  })

  it("with a role, refuses the flags that k3s command does not define (it would stop at every start)", () => {
    const serverFlags = ["--write-kubeconfig-mode", "644", "--disable=traefik", "--tls-san", "k3s.lan"]
    assert.isUndefined(checkFlags(serverFlags, "server"))
    assert.strictEqual(
      checkFlags(serverFlags, "agent"),
      'k3s agent does not define --write-kubeconfig-mode, --disable, --tls-san (flags of k3s server only): it would stop at every start ("flag provided but not defined") and the node would never join; give them to servers only'
    )
    assert.match(
      checkFlags(["--etcd-s3-bucket=backups"], "agent") ?? "",
      /--etcd-s3-bucket \(a flag of k3s server only\)/
    )
    assert.match(
      checkFlags(["--disable-apiserver-lb"], "server") ?? "",
      /k3s server does not define --disable-apiserver-lb/
    )
    // flags both take; a value that looks like nothing k3s knows is not judged
    const both = [
      "--node-label",
      "tier=gold",
      "--kubelet-arg=max-pods=150",
      "--node-ip=10.0.0.5",
      "--data-dir",
      "/srv/k3s"
    ]
    assert.isUndefined(checkFlags(both, "agent"))
    assert.isUndefined(checkFlags(both, "server"))
  })
})

describe("the locked install", () => {
  const spec = {
    role: "agent" as const,
    args: ["agent", "--server", "https://10.0.10.11:6443", "--node-label", "zone=a b"],
    version: "v1.30.5+k3s1",
    scriptPath: "/tmp/k3s-install.sh",
    downloadUrl: "https://get.k3s.io",
    writeConfig: true,
    keepEnv: false,
    record: {
      run: "laptop:4242:ab12cd",
      at: "2026-01-02T03:04:05.000Z",
      role: "agent" as const,
      version: "v1.30.5+k3s1"
    },
    lockWaitSeconds: 600
  }

  it("is one flock'd sh -c script: config from stdin, hashes, install.sh without start, record, start or restart", () => {
    const command = lockedInstallCommand(spec)
    assert.match(command, /^sudo -n flock -w 600 -E 75 --verbose \/run\/lock\/homelab-k3s-join\.lock sh -c '/)
    const script = command.slice(command.indexOf("sh -c '") + 7, -1).replaceAll("'\\''", "'")
    assert.strictEqual(
      script,
      [
        "set -e",
        "install -D -m 600 /dev/stdin /etc/rancher/k3s/config.yaml.k3s-join",
        "echo 'k3s-join: lock acquired'",
        "cat /run/homelab-k3s-join.last 2>/dev/null || true",
        "sha256sum /usr/local/bin/k3s /etc/systemd/system/k3s-agent.service /etc/systemd/system/k3s-agent.service.env /etc/rancher/k3s/config.yaml > /run/homelab-k3s-join.pre 2>&1 || true",
        "mv /etc/rancher/k3s/config.yaml.k3s-join /etc/rancher/k3s/config.yaml",
        "echo 'k3s-join: step download'",
        "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh",
        "echo 'k3s-join: step install'",
        "env INSTALL_K3S_VERSION=v1.30.5+k3s1 INSTALL_K3S_SKIP_START=true sh /tmp/k3s-install.sh agent --server https://10.0.10.11:6443 --node-label 'zone=a b'",
        "echo 'k3s-join-record run=laptop%3A4242%3Aab12cd at=2026-01-02T03%3A04%3A05.000Z role=agent version=v1.30.5%2Bk3s1' > /run/homelab-k3s-join.last",
        "sha256sum /usr/local/bin/k3s /etc/systemd/system/k3s-agent.service /etc/systemd/system/k3s-agent.service.env /etc/rancher/k3s/config.yaml > /run/homelab-k3s-join.post 2>&1 || true",
        "echo 'k3s-join: step start'",
        "cmp -s /run/homelab-k3s-join.pre /run/homelab-k3s-join.post && ! test -e /run/homelab-k3s-join.k3s-agent.restart && echo 'k3s-join: unchanged' && systemctl start --no-block k3s-agent || systemctl restart --no-block k3s-agent",
        "rm -f /run/homelab-k3s-join.k3s-agent.restart"
      ].join("\n")
    )
    // a held restart (a server whose k3s runs: the quorum guard decides first) is marked pending, not done
    const held = lockedInstallCommand({ ...spec, role: "server", holdRestart: true })
    assert.isTrue(
      held.endsWith(
        [
          "cmp -s /run/homelab-k3s-join.pre /run/homelab-k3s-join.post && ! test -e /run/homelab-k3s-join.k3s.restart && echo '\\''k3s-join: unchanged'\\'' && systemctl start --no-block k3s || echo laptop:4242:ab12cd > /run/homelab-k3s-join.k3s.restart",
          "test -e /run/homelab-k3s-join.k3s.restart && echo '\\''k3s-join: restart held'\\'' || true'"
        ].join("\n")
      ),
      held
    )
    // an upgrade keeps the env file (K3S_* variables) and the config; airgap places the uploaded binary
    const upgrade = lockedInstallCommand({
      ...spec,
      writeConfig: false,
      keepEnv: true,
      downloadUrl: undefined,
      uploadedBinary: "/tmp/b"
    })
    assert.include(upgrade, "install -m 600 /etc/systemd/system/k3s-agent.service.env /run/homelab-k3s-join.env")
    assert.include(upgrade, "install -m 600 /run/homelab-k3s-join.env /etc/systemd/system/k3s-agent.service.env")
    assert.include(upgrade, "install -m 755 /tmp/b /usr/local/bin/k3s")
    assert.include(upgrade, "INSTALL_K3S_SKIP_DOWNLOAD=true")
    assert.notInclude(upgrade, "/dev/stdin")
  })

  it("the held restart: under the lock, only while still pending, without blocking", () => {
    const command = restartHeldCommand({ role: "server", lockWaitSeconds: 600 })
    assert.match(command, /^sudo -n flock -w 600 -E 75 --verbose \/run\/lock\/homelab-k3s-join\.lock sh -c '/)
    const script = command.slice(command.indexOf("sh -c '") + 7, -1).replaceAll("'\\''", "'")
    assert.strictEqual(
      script,
      [
        "set -e",
        "echo 'k3s-join: lock acquired'",
        "test -e /run/homelab-k3s-join.k3s.restart || echo 'k3s-join: no restart pending'",
        "test -e /run/homelab-k3s-join.k3s.restart || exit 0",
        "rm -f /run/homelab-k3s-join.k3s.restart",
        "systemctl restart --no-block k3s",
        "echo 'k3s-join: restarted'"
      ].join("\n")
    )
    assert.strictEqual(restartPendingPath("agent"), "/run/homelab-k3s-join.k3s-agent.restart")
  })

  it("reads what happened from the output", () => {
    const record = formatRecord({
      run: "other run",
      at: "2026-01-02T03:04:05.000Z",
      role: "agent",
      version: "v1.30.5+k3s1"
    })
    assert.deepStrictEqual(
      parseLockedInstallOutput(
        `flock: getting lock took 12.345678 seconds\nflock: executing sh\nk3s-join: lock acquired\n${record}\nk3s-join: step download\nk3s-join: step install\n[INFO]  x\nk3s-join: step start\nk3s-join: unchanged\n`
      ),
      {
        lockWaitMs: 12346,
        acquired: true,
        previous: { run: "other run", at: "2026-01-02T03:04:05.000Z", role: "agent", version: "v1.30.5+k3s1" },
        lastStep: "start",
        unchanged: true,
        restartHeld: false
      }
    )
    assert.isTrue(
      parseLockedInstallOutput("k3s-join: lock acquired\nk3s-join: step start\nk3s-join: restart held\n").restartHeld
    )
    assert.deepStrictEqual(parseLockedInstallOutput(""), {
      lockWaitMs: undefined,
      acquired: false,
      previous: undefined,
      lastStep: undefined,
      unchanged: false,
      restartHeld: false
    })
    assert.strictEqual(parseRecord("garbage"), undefined)
  })

  it("leaves the lock's and its own trace lines out of what a user sees", () => {
    const record = formatRecord({ run: "r", at: "2026-01-02T03:04:05.000Z", role: "server", version: "v1.31.5+k3s1" })
    assert.strictEqual(
      withoutTrace(
        `flock: getting lock took 0.000002 seconds\nflock: executing sh\nk3s-join: lock acquired\n${record}\nk3s-join: step download\nk3s-join: step install\n[INFO]  Using v1.33.99+k3s1 as release\n[ERROR]  Download failed\n`
      ),
      "[INFO]  Using v1.33.99+k3s1 as release\n[ERROR]  Download failed\n"
    )
  })

  it("reads the record and the unit's state before asking for the lock", () => {
    assert.strictEqual(installedStateCommand("agent"), "cat /run/homelab-k3s-join.last; systemctl is-active k3s-agent")
    assert.strictEqual(installedStateCommand("server"), "cat /run/homelab-k3s-join.last; systemctl is-active k3s")
    const record = { run: "run-A", at: "2026-01-02T03:04:05.000Z", role: "agent" as const, version: "v1.30.5+k3s1" }
    assert.deepStrictEqual(parseInstalledState({ stdout: `${formatRecord(record)}\ninactive\n`, stderr: "" }), {
      record: { record },
      unitState: "inactive"
    })
    // no record yet: known to be none
    assert.deepStrictEqual(
      parseInstalledState({
        stdout: "inactive\n",
        stderr: "cat: /run/homelab-k3s-join.last: No such file or directory\n"
      }),
      { record: { record: undefined }, unitState: "inactive" }
    )
    // unreadable: not known
    assert.deepStrictEqual(
      parseInstalledState({ stdout: "failed\n", stderr: "cat: /run/homelab-k3s-join.last: Permission denied\n" }),
      { record: undefined, unitState: "failed" }
    )
    assert.deepStrictEqual(parseInstalledState({ stdout: "", stderr: "" }), {
      record: { record: undefined },
      unitState: "unknown"
    })
  })

  it("reads a unit's state and its journal in one command", () => {
    assert.deepStrictEqual(parseUnitJournal("activating\nStarting k3s agent v1.30.5+k3s1\nnode not found\n"), {
      unitState: "activating",
      journal: "Starting k3s agent v1.30.5+k3s1\nnode not found\n"
    })
    assert.deepStrictEqual(parseUnitJournal("inactive\n-- No entries --\n"), {
      unitState: "inactive",
      journal: "-- No entries --\n"
    })
    assert.deepStrictEqual(parseUnitJournal("active\n"), { unitState: "active", journal: "" })
    // systemctl printed nothing (it failed on stderr): every line is the journal's
    assert.deepStrictEqual(parseUnitJournal("Starting k3s agent\n"), {
      unitState: "unknown",
      journal: "Starting k3s agent\n"
    })
    assert.deepStrictEqual(parseUnitJournal(""), { unitState: "unknown", journal: "" })
  })

  it("says another run installed only when it did so during this run", () => {
    const runStartedAt = Date.parse("2026-01-02T10:00:00.000Z")
    const earlier = { run: "run-A", at: "2026-01-02T09:00:00.000Z", role: "agent" as const, version: "v1.30.5+k3s1" }
    const during = { ...earlier, at: "2026-01-02T10:00:01.000Z" }
    const check = (
      previous: typeof earlier | undefined,
      beforeLock: { record: typeof earlier | undefined } | undefined
    ) => installedDuringRun({ previous, beforeLock, runId: "run-B", runStartedAt })
    // an earlier run's install, already there before this run asked for the lock: history
    assert.isFalse(check(earlier, { record: earlier }))
    // ... even when that run's clock is unreadable
    assert.isFalse(check({ ...earlier, at: "garbage" }, { record: { ...earlier, at: "garbage" } }))
    // no record, or this run's own
    assert.isFalse(check(undefined, { record: undefined }))
    assert.isFalse(check({ ...during, run: "run-B" }, { record: undefined }))
    // written while this run waited for the lock (or was on its way to it), whatever the clocks say
    assert.isTrue(check(earlier, { record: undefined }))
    assert.isTrue(check(earlier, { record: { ...earlier, run: "run-Z" } }))
    // an install begun after this run started (both runs at the host at once), already done when this run looked
    assert.isTrue(check(during, { record: during }))
    const atStart = { ...during, at: "2026-01-02T10:00:00.000Z" }
    assert.isTrue(check(atStart, { record: atStart }))
    // the record could not be read before the lock: only the time says
    assert.isFalse(check(earlier, undefined))
    assert.isTrue(check(during, undefined))
  })

  it("parses ExecStart of install.sh's unit (one quoted argument per line)", () => {
    const unit = `[Service]\nType=notify\nExecStartPre=-/sbin/modprobe overlay\nExecStart=/usr/local/bin/k3s \\\n    server \\\n\t'--server' \\\n\t'https://10.0.10.11:6443' \\\n\t'--node-label' \\\n\t'it'\\''s' \\\n\n`
    assert.deepStrictEqual(parseExecStart(unit), [
      "server",
      "--server",
      "https://10.0.10.11:6443",
      "--node-label",
      "it's"
    ])
    assert.deepStrictEqual(parseExecStart("ExecStart=/usr/local/bin/k3s \\\n    agent \\\n\n"), ["agent"])
    assert.strictEqual(parseExecStart("[Unit]\n"), undefined)
  })
})

describe("the release check", () => {
  it("asks GitHub for the release's checksum file, as install.sh downloads it first, and reads the HTTP status", () => {
    assert.strictEqual(
      releaseCheckCommand("v1.33.99+k3s1"),
      "curl -sSL -o /dev/null -w '%{http_code}' https://github.com/k3s-io/k3s/releases/download/v1.33.99+k3s1/sha256sum-amd64.txt"
    )
    const url = "https://github.com/k3s-io/k3s/releases/download/v1.33.99+k3s1/sha256sum-amd64.txt"
    assert.deepStrictEqual(parseReleaseCheck("v1.33.99+k3s1", { exitCode: 0, stdout: "404", stderr: "" }), {
      _tag: "Missing",
      version: "v1.33.99+k3s1",
      url
    })
    assert.strictEqual(parseReleaseCheck("v1.33.5+k3s1", { exitCode: 0, stdout: "200", stderr: "" })._tag, "Published")
    assert.deepStrictEqual(
      parseReleaseCheck("v1.33.99+k3s1", {
        exitCode: 6,
        stdout: "000",
        stderr: "curl: (6) Could not resolve host: github.com\n"
      }),
      {
        _tag: "Unreachable",
        version: "v1.33.99+k3s1",
        url,
        detail: "curl exit code 6: curl: (6) Could not resolve host: github.com"
      }
    )
  })
})
