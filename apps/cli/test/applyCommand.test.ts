// biome-ignore-all lint/suspicious/noTemplateCurlyInString: homelab.yaml ${VAR} references

import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { stripVTControlCharacters } from "node:util"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { labScenario, type Scenario, type SimHandle, startSimPromise } from "@homelab/sim"
import { simConfigYaml } from "../src/commands/demoRun.js"
import { ExitCode } from "../src/ExitCode.js"
import { runHomelab } from "./helpers.js"
import { mutating, untilResourcesCurrent } from "./simLab.js"

const scenario = (over: Partial<Scenario> = {}): Scenario =>
  labScenario(["pve", "still-fawn"], {
    memory: "32G",
    imageSize: "2M",
    ipPool: "127.79.0.10",
    timeScale: 0.02,
    ...over
  })

const running: Array<{ stop: () => Promise<void> }> = []
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop()
})

const lab = async (over: Partial<Scenario> = {}) => {
  const sim = (await startSimPromise(scenario(over))) as unknown as SimHandle & { stop: () => Promise<void> }
  running.push(sim)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "homelab-cli-"))
  const config = path.join(dir, "homelab.yaml")
  fs.writeFileSync(config, simConfigYaml(sim, dir))
  const env = { PROXMOX_TOKEN_SECRET: sim.info.auth.tokenSecret, CI: "true" }
  const homelab = (...args: Array<string>) => runHomelab(["--config", config, ...args], { env, timeout: 60_000 })
  return { sim, dir, config, homelab }
}

describe("homelab plan / apply / status against the simulator", () => {
  it("plan exits 0 (planned) and, with --detailed-exitcode, 2 with changes pending; apply converges; then both exit 0", async () => {
    const { homelab, sim } = await lab()
    const plain = await homelab("plan")
    assert.strictEqual(plain.code, ExitCode.Ok, plain.stderr)
    const plan = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(plan.code, ExitCode.Changes, plan.stderr)
    // exit 2 reports changes pending, no error
    assert.strictEqual(plan.stderr, "\nCHANGES PENDING\n  4 change(s).\n")
    assert.include(plan.stdout, "create VM k3s-vm-pve")
    assert.include(plan.stdout, "no VM named k3s-vm-pve exists")

    const apply = await homelab("apply")
    assert.strictEqual(apply.code, ExitCode.Ok, apply.stderr)
    assert.include(apply.stdout, "Applied 4 of 4 change(s)")
    assert.strictEqual(sim.state().vms.length, 2)

    const again = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(again.code, ExitCode.Ok, again.stderr)
    assert.include(again.stdout, "No changes")
  }, 90_000)

  it("every command reading homelab.yaml warns once about a secret written in it and about ssh.user other than root", async () => {
    const { sim, config } = await lab()
    const secret = sim.info.auth.tokenSecret
    const yaml = fs.readFileSync(config, "utf8")
    assert.include(yaml, "ssh:\n  user: root\n")
    // the token secret written in the file, not ${PROXMOX_TOKEN_SECRET}; the API answers, so ssh.user is never used
    fs.writeFileSync(
      config,
      yaml.replace("${PROXMOX_TOKEN_SECRET}", `"${secret}"`).replace("ssh:\n  user: root\n", "ssh:\n  user: admin\n")
    )
    const homelab = (...args: Array<string>) =>
      runHomelab(["--config", config, ...args], { env: { CI: "true" }, timeout: 60_000 })
    const [plan, planJson, apply, applyJson, status, destroy, adopt, kubeconfig] = await Promise.all([
      homelab("plan"),
      homelab("plan", "--json"),
      homelab("apply", "--dry-run"),
      homelab("apply", "--dry-run", "--json"),
      homelab("status"),
      homelab("destroy", "--dry-run"),
      homelab("adopt", "--all"),
      homelab("kubeconfig")
    ])
    const expected = [
      [plan, ExitCode.Ok],
      [planJson, ExitCode.Ok],
      [apply, ExitCode.Ok],
      [applyJson, ExitCode.Ok],
      [status, ExitCode.NotConverged],
      [destroy, ExitCode.Ok],
      [adopt, ExitCode.Ok],
      [kubeconfig, ExitCode.Config]
    ] as const
    for (const [run, code] of expected) {
      assert.strictEqual(run.code, code, run.stderr)
      const warnings = run.stderr.split("\n").filter((line) => line.startsWith("warning: "))
      assert.deepStrictEqual(
        warnings.map((line) => line.split(": ").slice(0, 2).join(": ")),
        ["warning: homelab.yaml:6:13 proxmox.auth.secret", "warning: homelab.yaml:9:9 ssh.user"]
      )
      assert.include(warnings[0], "write ${PROXMOX_TOKEN_SECRET} there and export PROXMOX_TOKEN_SECRET")
      assert.include(warnings[1], '"admin", not root: pvesh/qm over SSH need root')
      assert.notInclude(run.stdout + run.stderr, secret)
    }
    assert.isObject(JSON.parse(planJson.stdout).plan)
    // the NDJSON stream carries them as `warning` events, before the plan
    const events = applyJson.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l))
    const warnings = events.filter((e) => e.type === "warning")
    assert.deepStrictEqual(
      warnings.map(({ source, code, file, line, column, path }) => ({ source, code, file, line, column, path })),
      [
        {
          source: "config",
          code: "literal-secret",
          file: "homelab.yaml",
          line: 6,
          column: 13,
          path: "proxmox.auth.secret"
        },
        { source: "config", code: "ssh-user-not-root", file: "homelab.yaml", line: 9, column: 9, path: "ssh.user" }
      ]
    )
    assert.include(warnings[0].message, "homelab.yaml:6:13 proxmox.auth.secret: a secret written in the file")
    assert.isBelow(
      events.indexOf(warnings[1]),
      events.findIndex((e) => e.type === "plan")
    )
  }, 90_000)

  it("apply --json streams NDJSON (the plan first, the summary last) without the token secret; plan --json stays one document", async () => {
    const { homelab, sim } = await lab()
    const planned = await homelab("plan", "--json")
    assert.strictEqual(JSON.parse(planned.stdout).plan.changes, 4)
    const result = await homelab("apply", "--json")
    assert.strictEqual(result.code, ExitCode.Ok, result.stderr)
    const lines = result.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l))
    assert.strictEqual(lines[0].plan.changes, 4)
    assert.deepStrictEqual(
      lines.at(-1).outcomes.map((o: { status: string }) => o.status),
      ["done", "done", "done", "done"]
    )
    assert.notInclude(result.stdout + result.stderr, sim.info.auth.tokenSecret)
  }, 90_000)

  it("not interactive: a destructive recreate is refused without --yes (exit 6) and done with --yes", async () => {
    const { homelab, sim } = await lab({
      vms: [
        {
          vmid: 4242,
          node: "pve",
          name: "k3s-vm-pve",
          status: "running",
          qmpstatus: "paused",
          tags: "homelab-managed",
          uptime: 86_400,
          config: { cores: 2, memory: "2048", agent: "1" }
        }
      ]
    })
    const refused = await homelab("apply")
    assert.strictEqual(refused.code, ExitCode.NeedsConfirmation, refused.stdout + refused.stderr)
    assert.include(refused.stdout, "re-run with --yes")
    assert.strictEqual(sim.state().vms.find((v) => v.vmid === 4242)?.qmpstatus, "paused")
    assert.isTrue(
      sim.state().vms.some((v) => v.name === "k3s-vm-still-fawn"),
      "the safe actions still ran"
    )

    const done = await homelab("apply", "--yes")
    assert.strictEqual(done.code, ExitCode.Ok, done.stdout + done.stderr)
    assert.strictEqual(sim.state().vms.find((v) => v.vmid === 4242)?.qmpstatus, "running")
  }, 90_000)

  it("a node with a missing bridge: reported with a fix, the other node converges, exit 5", async () => {
    const { homelab, sim } = await lab({ faults: [{ kind: "bridgeMissing", node: "still-fawn", bridge: "vmbr0" }] })
    const result = await homelab("apply")
    assert.strictEqual(result.code, ExitCode.Partial, result.stdout + result.stderr)
    assert.include(result.stdout, "bridge.missing")
    assert.include(result.stdout, "fix:")
    assert.include(result.stderr, "still-fawn")
    assert.deepStrictEqual(
      sim.state().vms.map((v) => v.name),
      ["k3s-vm-pve"].map(String)
    )
  }, 90_000)

  it("plan with one node blocked (a missing bridge): exit 1 naming only that node, with its blocking reason, not the nodes with planned changes", async () => {
    const { homelab } = await lab({ faults: [{ kind: "bridgeMissing", node: "pve", bridge: "vmbr0" }] })
    const result = await homelab("plan")
    assert.strictEqual(result.code, ExitCode.Error, result.stdout + result.stderr)
    assert.match(result.stderr, /^\nERROR\n {2}3 change\(s\), 1 node\(s\) blocked\./)
    assert.match(stripVTControlCharacters(result.stdout), /→ still-fawn +converges with 2 change\(s\)/)
    assert.include(
      result.stderr,
      "1 node(s) cannot converge without you: pve (bridge 'vmbr0' does not exist on node pve)"
    )
    assert.notInclude(result.stderr, "still-fawn")
    assert.notInclude(result.stderr, "download")
  }, 90_000)

  it("a stopped VM whose recreate needs a bridge its node lacks: plan exits 1 and apply exits 5, naming the node and the bridge; the VM is never destroyed", async () => {
    // PVE's status cache without its lag: the next run sees the VM stopped
    const { homelab, sim, config } = await lab({ timings: { rrdIntervalMs: 0 } })
    const converged = await homelab("apply")
    assert.strictEqual(converged.code, ExitCode.Ok, converged.stdout + converged.stderr)
    const vmid = sim.state().vms.find((v) => v.name === "k3s-vm-still-fawn")?.vmid as number
    assert.strictEqual(vmid, 5000)
    // still-fawn's VM gets a second NIC on vmbr9, a bridge that node does not have; a stopped VM is rebuilt at once
    const yaml = fs
      .readFileSync(config, "utf8")
      .replace(/( {2}- name: still-fawn\n)/, "$1    bridges: [vmbr0, vmbr9]\n")
    fs.writeFileSync(config, `${yaml}health:\n  graceSeconds: 0\n`)
    sim.setVmStatus(vmid, { status: "stopped" })
    await untilResourcesCurrent(sim)
    const vm = () => {
      const v = sim.state().vms.find((o) => o.vmid === vmid)
      return JSON.stringify([v?.node, v?.name, v?.status, v?.tags, v?.config])
    }
    const before = vm()
    sim.clearRequests()

    const plan = await homelab("plan", "--only", "still-fawn")
    assert.strictEqual(plan.code, ExitCode.Error, plan.stdout + plan.stderr)
    assert.include(
      plan.stderr,
      "1 node(s) cannot converge without you: still-fawn (bridge 'vmbr9' does not exist on node still-fawn)"
    )
    assert.notInclude(plan.stdout, "recreate")

    const apply = await homelab("apply", "--only", "still-fawn", "--yes")
    assert.strictEqual(apply.code, ExitCode.NotConverged, apply.stdout + apply.stderr)
    // said once (nothing was applied: the plan's finding, with its fix, is all there is to say)
    const applied = stripVTControlCharacters(apply.stdout)
    assert.strictEqual(applied.split("bridge 'vmbr9' does not exist on node still-fawn").length - 1, 1, applied)
    assert.include(applied, "still-fawn  not converged: blocked (see Left alone)")
    assert.include(apply.stderr, "still-fawn (bridge 'vmbr9' does not exist on node still-fawn)")
    assert.deepStrictEqual(mutating(sim), [])
    assert.strictEqual(vm(), before, "VM 5000 is untouched: not destroyed, not started, not changed")
  }, 90_000)

  it("an untrusted certificate on one node: the fallback is shown, and status says which transport each node used", async () => {
    const { homelab } = await lab({ faults: [{ kind: "untrustedCert", node: "still-fawn" }] })
    const apply = await homelab("apply")
    assert.strictEqual(apply.code, ExitCode.Ok, apply.stderr)
    assert.match(apply.stdout, /still-fawn: API certificate not trusted \(SHA-256 [0-9A-F:]{95}\) — using SSH/)
    const status = await homelab("status")
    assert.strictEqual(status.code, ExitCode.Ok, status.stderr)
    const rows = status.stdout.split("\n").filter((l) => l.includes("k3s-vm-"))
    assert.match(rows.find((r) => r.startsWith("still-fawn")) ?? "", /ssh \(fallback\)/)
    assert.match(rows.find((r) => r.startsWith("pve")) ?? "", /\brest\b/)
  }, 90_000)

  it("--only with an unknown node is a usage error naming the known nodes", async () => {
    const { homelab } = await lab()
    const result = await homelab("apply", "--only", "nope")
    assert.strictEqual(result.code, ExitCode.Changes)
    assert.include(result.stderr, "pve, still-fawn")
    assert.notInclude(result.stderr, "did you mean")
    // a typo: the --only that was meant
    const typo = await homelab("plan", "--only", "pve,stil-fawn")
    assert.strictEqual(typo.code, ExitCode.Usage, typo.stdout + typo.stderr)
    assert.include(typo.stderr, "--only stil-fawn: no such node in")
    assert.include(typo.stderr, "did you mean --only pve,still-fawn?")
  }, 60_000)
})

describe("homelab plan / apply with a token that lacks privileges", () => {
  it("an auditor's token: plan names the token and grants to its user, plans no download PVE would refuse (exit 1), and apply changes nothing", async () => {
    const secret = "6f1c8d2b-5b0f-4d2f-8e80-1b2c3d4e5f60"
    const { sim, config } = await lab({
      users: [{ userid: "ops@pve", tokens: [{ id: "ci", secret, privsep: false }] }],
      acls: [{ path: "/", ugid: "ops@pve", role: "PVEAuditor" }]
    })
    fs.writeFileSync(config, fs.readFileSync(config, "utf8").replace(/tokenId: ".*"/, 'tokenId: "ops@pve!ci"'))
    const env = { PROXMOX_TOKEN_SECRET: secret, CI: "true", NO_COLOR: "1" }
    const run = (...args: Array<string>) => runHomelab(["--config", config, ...args], { env, timeout: 60_000 })

    const plan = await run("plan")
    assert.strictEqual(plan.code, ExitCode.Error, plan.stdout + plan.stderr)
    assert.notInclude(plan.stdout, "download noble", plan.stdout)
    assert.include(
      plan.stdout,
      "ops@pve!ci lacks Datastore.AllocateTemplate on /storage/local (needed to download the cloud image on node pve)"
    )
    assert.include(plan.stdout, "`pveum acl modify /vms --users 'ops@pve' --roles <role>`")
    assert.notInclude(plan.stdout, "'token'")

    sim.clearRequests()
    const apply = await run("apply")
    assert.strictEqual(apply.code, ExitCode.NotConverged, apply.stdout + apply.stderr)
    assert.notInclude(apply.stdout, "permission denied", apply.stdout)
    assert.deepStrictEqual(mutating(sim), [])
  }, 60_000)
})

describe("homelab reprovision", () => {
  it("rebuilds a healthy VM of the named node on purpose (with --yes), keeping its VMID; an unknown node is a usage error", async () => {
    const { homelab, sim } = await lab()
    assert.strictEqual((await homelab("apply")).code, ExitCode.Ok)
    const before = sim.state().vms.find((v) => v.name === "k3s-vm-pve")
    const unknown = await homelab("reprovision", "nope", "--yes")
    assert.strictEqual(unknown.code, ExitCode.Changes)
    assert.include(unknown.stderr, "pve, still-fawn")
    assert.notInclude(unknown.stderr, "did you mean")
    for (const [typo, meant] of [
      ["stil-fawn", "still-fawn"],
      ["k3s-vm-pv", "k3s-vm-pve"]
    ]) {
      const mistyped = await homelab("reprovision", typo as string, "--yes")
      assert.strictEqual(mistyped.code, ExitCode.Usage, mistyped.stdout + mistyped.stderr)
      assert.include(mistyped.stderr, `did you mean \`homelab reprovision ${meant}\`?`)
    }
    const refused = await homelab("reprovision", "pve")
    assert.strictEqual(refused.code, ExitCode.NeedsConfirmation, refused.stdout + refused.stderr)
    const done = await homelab("reprovision", "pve", "--yes")
    assert.strictEqual(done.code, ExitCode.Ok, done.stdout + done.stderr)
    assert.include(done.stdout, "reprovision of k3s-vm-pve requested")
    assert.match(done.stdout, /VM \d+ k3s-vm-pve recreated/)
    const after = sim.state().vms.find((v) => v.name === "k3s-vm-pve")
    assert.strictEqual(after?.vmid, before?.vmid)
    assert.strictEqual(sim.state().vms.filter((v) => v.name === "k3s-vm-still-fawn").length, 1)
  }, 90_000)
})

describe("homelab reprovision VM", () => {
  it("on a node that runs two VMs, a VM's name rebuilds that VM alone; the node's name rebuilds the first and names the command that rebuilds the other (not 'run apply again', which would not)", async () => {
    const { homelab, sim, config } = await lab()
    fs.writeFileSync(
      config,
      fs
        .readFileSync(config, "utf8")
        .replace("  - name: pve\n", "  - name: pve\n    vms: [{ name: web-a }, { name: web-b }]\n")
    )
    assert.strictEqual((await homelab("apply")).code, ExitCode.Ok)
    const vm = (name: string) => sim.state().vms.find((v) => v.name === name)

    const node = await homelab("reprovision", "pve", "--yes")
    const nodeOut = stripVTControlCharacters(node.stdout)
    assert.match(nodeOut, /VM \d+ web-a recreated/, nodeOut)
    assert.include(nodeOut, "web-b needs rebuilding (reprovision of web-b requested)")
    assert.include(nodeOut, "fix: run `homelab reprovision web-b` (that VM alone), or raise safety.maxRecreatePerRun")
    assert.notInclude(nodeOut, "run apply again, or raise safety.maxRecreatePerRun")

    const before = { a: vm("web-a"), b: vm("web-b") }
    sim.clearRequests()
    const one = await homelab("reprovision", "web-b", "--yes")
    const oneOut = stripVTControlCharacters(one.stdout)
    assert.strictEqual(one.code, ExitCode.Ok, one.stdout + one.stderr)
    assert.include(oneOut, "reprovision of web-b requested")
    assert.match(oneOut, /VM \d+ web-b recreated/)
    assert.notInclude(oneOut, "web-a")
    assert.strictEqual(vm("web-b")?.vmid, before.b?.vmid)
    assert.deepStrictEqual(vm("web-a"), before.a, "web-a untouched")
    assert.isFalse(
      sim.requests().some((r) => r.method === "DELETE" && r.vmid === before.a?.vmid),
      "web-a not destroyed"
    )

    const unknown = await homelab("reprovision", "nope", "--yes")
    assert.strictEqual(unknown.code, ExitCode.Usage)
    assert.include(unknown.stderr, "no such node or VM")
    assert.include(unknown.stderr, "VMs: web-a, web-b, k3s-vm-still-fawn")
  }, 90_000)
})

describe("homelab plan / apply: drift", () => {
  it("plan shows each setting that differs, Terraform style, with its consequence; apply changes it in place and exits 8 while a change waits for a restart (vm.restart: never); the next plan is clean after the restart", async () => {
    const { homelab, sim, config } = await lab()
    assert.strictEqual((await homelab("apply")).code, ExitCode.Ok)
    const vmid = sim.state().vms.find((v) => v.name === "k3s-vm-pve")?.vmid as number
    const yaml = fs.readFileSync(config, "utf8")
    fs.writeFileSync(
      config,
      yaml
        .replace(/( {2}- name: pve\n(?: {4}.*\n)*)/, "$1    vms: [{ memory: 4096, diskSize: 128G }]\n")
        .replace("vm:\n", "vm:\n  onboot: true\n")
    )
    const raw = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(raw.code, ExitCode.Changes, raw.stdout + raw.stderr)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal colour codes
    const plan = { stdout: raw.stdout.replace(/\u001b\[[0-9;]*m/g, "") }
    assert.include(plan.stdout, `update VM ${vmid} k3s-vm-pve on pve in place (memory, scsi0, onboot)`)
    assert.include(plan.stdout, "~ k3s-vm-pve  memory 16384 → 4096 MiB (takes effect after a restart)")
    assert.include(plan.stdout, "~ k3s-vm-pve  scsi0 64G → 128G (grown online)")
    assert.include(plan.stdout, "~ k3s-vm-still-fawn  onboot false → true (applied now)")

    const apply = await homelab("apply")
    assert.strictEqual(apply.code, ExitCode.PendingRestart, apply.stdout + apply.stderr)
    assert.include(
      apply.stderr,
      "restart those VMs from PVE (`qm reboot`, or a stop and a start; a reboot inside the guest does not read a new cloud-init drive), or set vm.restart: rolling"
    )
    assert.match(apply.stderr, /^\nPENDING RESTART\n {2}1 of 2 node\(s\) did not converge: pve /)
    assert.include(apply.stdout, "[needs a restart]")
    const vm = sim.state().vms.find((v) => v.vmid === vmid)
    assert.deepStrictEqual(vm?.pending, { memory: "4096" })
    assert.match(String((vm?.config as Record<string, string> | undefined)?.scsi0), /size=128G/)

    const pending = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(pending.code, ExitCode.Changes)
    assert.include(
      pending.stdout,
      "memory 16384 → 4096 MiB (takes effect after a restart): PVE holds it until the VM restarts"
    )
    const status = await homelab("status")
    assert.strictEqual(status.code, ExitCode.NotConverged)

    fs.writeFileSync(config, fs.readFileSync(config, "utf8").replace("vm:\n", "vm:\n  restart: rolling\n"))
    const restarted = await homelab("apply")
    assert.strictEqual(restarted.code, ExitCode.Ok, restarted.stdout + restarted.stderr)
    assert.match(restarted.stdout, /restarted, running at [\d.]+; in effect: memory 4096 MiB/)
    const clean = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(clean.code, ExitCode.Ok, clean.stdout)
    assert.include(clean.stdout, "No changes")
  })

  it("a cloud-init change waits for a start from PVE: every apply exits 8 and status is not converged until then (a second apply does not call it converged); vm.restart: rolling restarts the VM and the lab converges", async () => {
    const { homelab, config } = await lab()
    const yaml = fs.readFileSync(config, "utf8")
    fs.writeFileSync(config, yaml.replace("vm:\n", "vm:\n  searchdomain: lan\n"))
    assert.strictEqual((await homelab("apply")).code, ExitCode.Ok)
    fs.writeFileSync(config, fs.readFileSync(config, "utf8").replace("searchdomain: lan", "searchdomain: lan2"))

    const first = await homelab("apply")
    assert.strictEqual(first.code, ExitCode.PendingRestart, first.stdout + first.stderr)
    assert.include(first.stdout, "cloud-init searchdomain lan → lan2 (the guest gets it when PVE next starts the VM)")
    assert.include(first.stderr, "a reboot inside the guest does not read a new cloud-init drive")
    const second = await homelab("apply")
    assert.strictEqual(second.code, ExitCode.PendingRestart, second.stdout + second.stderr)
    assert.notInclude(second.stdout, "every node is converged")
    assert.include(second.stdout, "cloud-init searchdomain lan → lan2")
    // only the restarts are left: each VM's finding once (one per VM, of the two), with what to do
    const times = (text: string, part: string) => stripVTControlCharacters(text).split(part).length - 1
    assert.strictEqual(times(second.stdout, "PVE holds it until the VM restarts"), 2, second.stdout)
    assert.strictEqual(times(second.stdout, "fix: restart it from PVE (`qm reboot"), 2, second.stdout)
    assert.strictEqual(times(second.stderr, "cloud-init searchdomain"), 0, second.stderr)
    assert.include(second.stderr, "2 of 2 node(s) did not converge: pve (k3s-vm-pve waits for a restart)")
    assert.strictEqual((await homelab("status")).code, ExitCode.NotConverged)
    const pendingPlan = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(pendingPlan.code, ExitCode.Changes)
    assert.strictEqual(times(pendingPlan.stdout, "PVE holds it until the VM restarts"), 2, pendingPlan.stdout)
    assert.strictEqual(times(pendingPlan.stdout, "fix: restart it from PVE (`qm reboot"), 2, pendingPlan.stdout)

    fs.writeFileSync(config, fs.readFileSync(config, "utf8").replace("vm:\n", "vm:\n  restart: rolling\n"))
    const plan = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(plan.code, ExitCode.Changes, plan.stdout + plan.stderr)
    assert.match(plan.stdout, /restart VM \d+ k3s-vm-pve on pve/)
    const restarted = await homelab("apply")
    assert.strictEqual(restarted.code, ExitCode.Ok, restarted.stdout + restarted.stderr)
    assert.match(restarted.stdout, /restarted, running at [\d.]+; in effect: cloud-init searchdomain lan2/)
    const clean = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(clean.code, ExitCode.Ok, clean.stdout)
    assert.strictEqual((await homelab("status")).code, ExitCode.Ok)
  }, 240_000)
})

describe("homelab apply --prune", () => {
  it("a node removed from homelab.yaml: its VM is an orphan, shown by plan (exit 2 with --detailed-exitcode), left running by apply (exit 6, naming --prune), removed only by apply --prune --yes", async () => {
    const { homelab, sim, config } = await lab()
    assert.strictEqual((await homelab("apply")).code, ExitCode.Ok)
    const orphan = sim.state().vms.find((v) => v.name === "k3s-vm-still-fawn")?.vmid as number
    // still-fawn is no longer in homelab.yaml
    const yaml = fs.readFileSync(config, "utf8").split("\n")
    const at = yaml.indexOf("  - name: still-fawn")
    fs.writeFileSync(config, [...yaml.slice(0, at), ...yaml.slice(at + 4)].join("\n"))

    const plan = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(plan.code, ExitCode.Changes, plan.stdout + plan.stderr)
    assert.include(
      plan.stdout,
      `VM ${orphan} k3s-vm-still-fawn on still-fawn is ours but homelab.yaml asks for no VM named k3s-vm-still-fawn: an orphan, left running`
    )
    assert.include(plan.stdout, "homelab apply --prune")

    const kept = await homelab("apply")
    assert.strictEqual(kept.code, ExitCode.NeedsConfirmation, kept.stdout + kept.stderr)
    assert.match(kept.stderr, /^\nNEEDS CONFIRMATION\n {2}1 of 2 node\(s\) did not converge: still-fawn /)
    assert.include(
      kept.stderr,
      "1 orphan(s) (VMs of ours homelab.yaml no longer asks for) left in place: `homelab apply --prune` removes them."
    )
    assert.notInclude(kept.stderr, "re-run with --yes")
    assert.isTrue(sim.state().vms.some((v) => v.vmid === orphan))

    const unconfirmed = await homelab("apply", "--prune")
    assert.strictEqual(unconfirmed.code, ExitCode.NeedsConfirmation, unconfirmed.stdout + unconfirmed.stderr)
    assert.include(unconfirmed.stdout, `prune orphan VM ${orphan} k3s-vm-still-fawn on still-fawn`)
    assert.include(unconfirmed.stderr, "re-run with --yes")
    assert.isTrue(sim.state().vms.some((v) => v.vmid === orphan))

    const pruned = await homelab("apply", "--prune", "--yes")
    assert.strictEqual(pruned.code, ExitCode.Ok, pruned.stdout + pruned.stderr)
    assert.isFalse(sim.state().vms.some((v) => v.vmid === orphan))
    // still-fawn is no node of the lab any more: its teardown is reported as such, not as a converged node
    const out = stripVTControlCharacters(pruned.stdout)
    assert.include(out, "Converged: pve.")
    assert.notMatch(out, /Converged: .*still-fawn/)
    assert.include(out, "Torn down: still-fawn (not in homelab.yaml; no VM of ours is left on it).")
    assert.strictEqual((await homelab("plan", "--detailed-exitcode")).code, ExitCode.Ok)
  }, 240_000)

  it("apply --prune --json: the summary's convergence lists a node homelab.yaml no longer names as torn down, not as a converged node", async () => {
    const { homelab, sim, config } = await lab()
    assert.strictEqual((await homelab("apply")).code, ExitCode.Ok)
    const yaml = fs.readFileSync(config, "utf8").split("\n")
    const at = yaml.indexOf("  - name: still-fawn")
    fs.writeFileSync(config, [...yaml.slice(0, at), ...yaml.slice(at + 4)].join("\n"))
    const pruned = await homelab("apply", "--prune", "--yes", "--json")
    assert.strictEqual(pruned.code, ExitCode.Ok, pruned.stdout + pruned.stderr)
    assert.isFalse(sim.state().vms.some((v) => v.name === "k3s-vm-still-fawn"))
    const lines = pruned.stdout.trim().split("\n")
    const summary = JSON.parse(lines[lines.length - 1] ?? "{}")
    assert.strictEqual(summary.type, "summary")
    assert.deepStrictEqual(summary.convergence, {
      converged: true,
      nodes: [{ node: "pve", converged: true, reasons: [] }],
      tornDown: ["still-fawn"]
    })
  }, 240_000)
})
