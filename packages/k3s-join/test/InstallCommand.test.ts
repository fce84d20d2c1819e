import { assert, describe, it } from "@effect/vitest"
import { Redacted } from "effect"
import {
  checkFlags,
  configYaml,
  deleteNodeCommand,
  deleteNodePasswordCommand,
  downloadScriptCommand,
  getNodeCommand,
  getNodesCommand,
  installBinaryCommand,
  installCommand,
  isActiveCommand,
  journalCommand,
  normalizeFlags,
  readTokenCommand,
  serverUrl,
  startCommand,
  tokenPaths,
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
    assert.strictEqual(startCommand("agent"), "sudo -n systemctl start --no-block k3s-agent")
    assert.strictEqual(startCommand("server", true), "sudo -n systemctl restart --no-block k3s")
    assert.strictEqual(journalCommand("agent"), "sudo -n journalctl -u k3s-agent --no-pager -n 200 -o cat")
    assert.strictEqual(
      writeRootFileCommand("/etc/rancher/k3s/config.yaml"),
      "sudo -n install -D -m 600 /dev/stdin /etc/rancher/k3s/config.yaml"
    )
    assert.strictEqual(
      installBinaryCommand("/tmp/k3s-join-k3s.bin"),
      "sudo -n install -m 755 /tmp/k3s-join-k3s.bin /usr/local/bin/k3s"
    )
    assert.strictEqual(serverUrl("10.0.10.11", 7443), "https://10.0.10.11:7443")
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
})
