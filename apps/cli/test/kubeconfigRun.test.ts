import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, assert, describe, it } from "@effect/vitest"
import type { GuestCommand } from "@homelab/sim"
import { mergeTarget } from "../src/commands/kubeconfigRun.js"
import { ExitCode } from "../src/ExitCode.js"
import { homeWithKeys, runHomelab } from "./helpers.js"
import { startLab, stopLabs } from "./simLab.js"

afterEach(stopLabs)

describe("kubeconfig --merge target", () => {
  it("--out wins; else $KUBECONFIG's first file; else ~/.kube/config", () => {
    assert.strictEqual(mergeTarget("x/config", { KUBECONFIG: "/a" }), path.resolve("x/config"))
    assert.strictEqual(mergeTarget(undefined, { KUBECONFIG: `/a/one${path.delimiter}/b/two`, HOME: "/h" }), "/a/one")
    assert.strictEqual(mergeTarget(undefined, { KUBECONFIG: `${path.delimiter}/b/two`, HOME: "/h" }), "/b/two")
    assert.strictEqual(mergeTarget(undefined, { KUBECONFIG: "", HOME: "/h" }), "/h/.kube/config")
    assert.strictEqual(mergeTarget(undefined, { HOME: "/h" }), "/h/.kube/config")
  })
})

describe("kubeconfig over SSH", () => {
  it("an SSH failure to the server exits 5 with a hint naming the host and what to check", async () => {
    const lab = await startLab(["pve"], { k3s: true })
    const yaml = fs.readFileSync(lab.config, "utf8")
    const server = `server: { host: ${lab.serverIp}, port: 2222, user: ubuntu }`
    assert.include(yaml, server)
    // nothing listens there; and a user the server's sshd refuses our key for
    const down = path.join(lab.dir, "down.yaml")
    fs.writeFileSync(down, yaml.replace(server, `server: { host: ${lab.net}.99, port: 2222, user: ubuntu }`))
    const refused = path.join(lab.dir, "refused.yaml")
    fs.writeFileSync(refused, yaml.replace(/privateKey: .*/u, `privateKey: ${homeWithKeys()}/.ssh/id_ed25519`))
    const homelab = (args: ReadonlyArray<string>) => runHomelab(args, { env: lab.env, timeout: 60_000 })
    const [unreachable, rejected, json] = await Promise.all([
      homelab(["--config", down, "kubeconfig"]),
      homelab(["--config", refused, "kubeconfig"]),
      homelab(["--config", down, "kubeconfig", "--json"])
    ])
    assert.strictEqual(unreachable.code, ExitCode.NotConverged, unreachable.stderr)
    assert.include(unreachable.stderr, `kubeconfig from ubuntu@${lab.net}.99:2222`)
    assert.include(unreachable.stderr, `hint: check that ${lab.net}.99 is up and its sshd listens on port 2222`)
    assert.strictEqual(rejected.code, ExitCode.NotConverged, rejected.stderr)
    assert.include(
      rejected.stderr,
      `hint: check that ubuntu@${lab.serverIp} accepts the key of ssh.privateKey (its ~/.ssh/authorized_keys`
    )
    assert.strictEqual(json.code, ExitCode.NotConverged, json.stderr)
    const error = JSON.parse(json.stdout).error
    assert.strictEqual(error.code, "k3s-ssh")
    assert.include(error.hint, `${lab.net}.99`)
  }, 120_000)

  it("a server whose k3s.yaml cannot be read exits 5 with a hint: no such file (no server there), sudo asking for a password", async () => {
    const lab = await startLab(["pve"], { k3s: true })
    const sudo = lab.sim.guestCommands.get("sudo") as GuestCommand
    const kubeconfigFile = "/etc/rancher/k3s/k3s.yaml"
    let answer: "missing" | "password" = "missing"
    lab.sim.guestCommands.register("sudo", (c) => {
      if (!c.argv.includes(kubeconfigFile)) return sudo(c)
      if (answer === "password") return { stdout: "", stderr: "sudo: a password is required\n", code: 1 }
      c.guest.files.delete(kubeconfigFile)
      return sudo(c)
    })
    const missing = await lab.homelab("kubeconfig")
    assert.strictEqual(missing.code, ExitCode.NotConverged, missing.stderr)
    assert.include(
      missing.stderr,
      `kubeconfig from ubuntu@${lab.serverIp}:2222: reading ${kubeconfigFile}: cat: ${kubeconfigFile}: No such file or directory`
    )
    assert.include(
      missing.stderr,
      `hint: ${lab.serverIp} has no k3s server (an agent has no k3s.yaml): point k3s.server at a k3s server`
    )
    answer = "password"
    const json = await lab.homelab("kubeconfig", "--json")
    assert.strictEqual(json.code, ExitCode.NotConverged, json.stderr)
    const error = JSON.parse(json.stdout).error
    assert.strictEqual(error.code, "k3s-kubeconfig-unreadable")
    assert.include(error.message, "sudo: a password is required")
    assert.include(
      error.hint,
      `ubuntu on ${lab.serverIp} may not read root's ${kubeconfigFile}: allow it sudo without a password`
    )
  }, 120_000)
})
