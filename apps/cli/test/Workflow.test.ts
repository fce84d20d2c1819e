import { afterAll, assert, describe, it } from "@effect/vitest"
import { DefaultVmidRange, vmidCandidates } from "@homelab/reconcile-core"
import { ExitCode } from "../src/ExitCode.js"
import { type Running, runHomelab } from "./helpers.js"
import {
  before,
  k3sNodesOf,
  mutating,
  notConverged,
  startLab,
  stopLabs,
  vmsOf,
  watchInstalls,
  whenPrinted,
  whenRequest,
  whenState
} from "./simLab.js"

// One end-to-end test per item of "What was seen" in the honest-convergence issue (items 1–7 and 10), through the
// CLI against the simulator: exit code, summary text, and the simulator's state and request log. Every test has a
// lab of its own, so they run concurrently; the labs are stopped at the end.

afterAll(stopLabs)

/** `homelab --config … ARGS` of a lab with other environment variables. */
const runWith = (
  lab: { config: string; env: Record<string, string> },
  env: Record<string, string>,
  ...args: Array<string>
) => runHomelab(["--config", lab.config, ...args], { env: { ...lab.env, ...env }, timeout: 120_000 })

/** The VMID a VM of that name gets first (VMIDs derive from names). */
const firstVmid = (name: string) => vmidCandidates(name, DefaultVmidRange)[0] as number

/** A VM config as the labs' homelab.yaml asks for it (no drift): 4 cores, 16 GiB, CPU host, a 64G disk, one NIC on vmbr0. */
const asAsked = (vmid: number) => ({
  cores: 4,
  memory: "16384",
  cpu: "host",
  agent: "1",
  net0: `virtio=BC:24:11:00:${String(vmid % 100).padStart(2, "0")}:01,bridge=vmbr0`,
  scsi0: `local-lvm:vm-${vmid}-disk-0,size=64G`
})

const ours = (name: string, vmid: number, node: string, over: Record<string, unknown> = {}) => ({
  vmid,
  node,
  name,
  status: "running" as const,
  tags: "homelab-managed",
  uptime: 86_400,
  config: asAsked(vmid),
  ...over
})

describe.concurrent("1. exit 0 only when every selected node is converged", () => {
  it("a stranger holding our VM's name and a protected stopped VM of ours: plan exits 1, apply exits 5 naming both nodes; neither VM is touched", async () => {
    const lab = await startLab(["n1", "n2", "n3", "n4"], {
      scenario: {
        vms: [
          { vmid: 3333, node: "n3", name: "k3s-vm-n3", status: "running", tags: "prod", uptime: 86_400 },
          ours("k3s-vm-n4", 4444, "n4", { status: "stopped", protection: true })
        ]
      }
    })
    const plan = await lab.homelab("plan", "--only", "n3,n4")
    assert.strictEqual(plan.code, ExitCode.Error, plan.stdout + plan.stderr)
    assert.include(plan.stdout, "[vm.unowned]")
    assert.include(plan.stdout, "[vm.protected]")
    assert.match(plan.stderr, /2 node\(s\) cannot converge without you: n3 \(.*\), n4 \(/)

    const only = await lab.homelab("apply", "--yes", "--only", "n3,n4")
    assert.strictEqual(only.code, ExitCode.NotConverged, only.stdout + only.stderr)
    assert.include(only.stderr, "2 of 2 node(s) did not converge: n3 (VM 3333 is named k3s-vm-n3 but lacks the tag")
    assert.include(only.stderr, "n4 (VM 4444 (k3s-vm-n4) on node n4 is stopped")
    assert.notInclude(only.stderr, "converged.")

    const all = await lab.homelab("apply", "--yes")
    assert.strictEqual(all.code, ExitCode.NotConverged, all.stdout + all.stderr)
    assert.match(all.stderr, /2 of 4 node\(s\) did not converge: n3 \(.*\), n4 \(.*\); the other 2 converged\./)
    assert.match(all.stdout, /✗ n3 +not converged:/)
    const vms = vmsOf(lab.sim)
    assert.deepStrictEqual(
      vms.filter((v) => v.vmid === 3333 || v.vmid === 4444).map((v) => [v.vmid, v.status, v.tags]),
      [
        [3333, "running", "prod"],
        [4444, "stopped", "homelab-managed"]
      ]
    )
    assert.isTrue(vms.some((v) => v.name === "k3s-vm-n1") && vms.some((v) => v.name === "k3s-vm-n2"))
    assert.deepStrictEqual(
      mutating(lab.sim).filter((r) => /\/(3333|4444)\b/.test(r.path ?? "")),
      [],
      "nothing was sent to the stranger or the protected VM"
    )
  })

  it("a create that hung and was killed: the next runs say so (plan 2, status 5), wait for it with progress, stop the hung task after timeouts.task and converge once the fault is gone", async () => {
    const lab = await startLab(["n1"], {
      scenario: { faults: [{ kind: "taskHang", taskType: "qmcreate", node: "n1" }] },
      extra: "timeouts:\n  task: 10"
    })
    const first = lab.spawn("apply", "--yes")
    await whenRequest(lab.sim, (r) => r.method === "POST" && r.path === "/nodes/n1/qemu", first.done)
    first.child.kill("SIGKILL")
    await first.done
    const vmid = firstVmid("k3s-vm-n1")
    assert.strictEqual(vmsOf(lab.sim).find((v) => v.vmid === vmid)?.lock, "create", "the hung create holds its VMID")

    const [plan, status] = await Promise.all([lab.homelab("plan", "--detailed-exitcode"), lab.homelab("status")])
    assert.strictEqual(plan.code, ExitCode.Changes, plan.stdout + plan.stderr)
    assert.include(plan.stdout, `wait for the create of VM ${vmid} k3s-vm-n1 on n1, then finish it`)
    assert.notInclude(plan.stdout, "No changes")
    assert.strictEqual(status.code, ExitCode.NotConverged, status.stdout + status.stderr)
    assert.match(status.stdout, /n1 +k3s-vm-n1 +\d+ +missing +being created/)

    const hung = await lab.homelab("apply", "--yes")
    assert.strictEqual(hung.code, ExitCode.NotConverged, hung.stdout + hung.stderr)
    // the earlier run's create is waited for until it has run timeouts.task, stopped, made again, and that one hangs
    // too: its wait is shown (5 s in) with what, elapsed and limit, and it is stopped at the limit
    assert.include(hung.stdout, `[n1] wait for the create of VM ${vmid} k3s-vm-n1 on n1, then finish it …`)
    assert.match(hung.stdout, /waiting for creating VM \d+ k3s-vm-n1 \(task qmcreate .*\) \(5s of 10s\)/, hung.stdout)
    assert.include(hung.stdout, "did not finish within 10s; stopped it (PVE removes the half-made VM)")
    assert.match(hung.stderr, /1 of 1 node\(s\) did not converge: n1 \(/)
    assert.deepStrictEqual(
      lab.sim.state().tasks.filter((t) => t.type === "qmcreate" && t.status === "running"),
      [],
      "every hung create was stopped"
    )

    await lab.sim.clearFaults({ kind: "taskHang" })
    const after = await lab.homelab("apply", "--yes")
    assert.strictEqual(after.code, ExitCode.Ok, after.stdout + after.stderr)
    const vms = vmsOf(lab.sim).filter((v) => v.name === "k3s-vm-n1")
    assert.deepStrictEqual(
      vms.map((v) => [v.qmpstatus, v.tags]),
      [["running", "homelab-managed"]]
    )
  })

  it("a recreate deferred by safety.maxRecreatePerRun is not converged (exit 5, 'next run'); the next run converges", async () => {
    const lab = await startLab(["n1", "n2"], {
      scenario: {
        vms: [
          ours("k3s-vm-n1", 1001, "n1", { status: "stopped" }),
          ours("k3s-vm-n2", 1002, "n2", { status: "stopped" })
        ]
      }
    })
    const first = await lab.homelab("apply", "--yes")
    assert.strictEqual(first.code, ExitCode.NotConverged, first.stdout + first.stderr)
    assert.match(
      first.stderr,
      /1 of 2 node\(s\) did not converge: n2 \(VM 1002 k3s-vm-n2 needs rebuilding .*safety\.maxRecreatePerRun/
    )
    assert.include(first.stdout, "[next run]")
    const second = await lab.homelab("apply", "--yes")
    assert.strictEqual(second.code, ExitCode.Ok, second.stdout + second.stderr)
    assert.deepStrictEqual(
      vmsOf(lab.sim).map((v) => [v.vmid, v.qmpstatus]),
      [
        [1001, "running"],
        [1002, "running"]
      ]
    )
  })

  it("a k3s Node of our VM's name that belongs to another machine: exit 7 (only k3s is missing), that Node untouched", async () => {
    const lab = await startLab(["n1"], {
      k3s: true,
      scenario: (net) => ({
        vms: [
          ours("k3s-vm-n1", 1001, "n1", {
            ip: `${net}.21`,
            config: asAsked(1001)
          }),
          {
            vmid: 1500,
            node: "n1",
            name: "old-box",
            status: "running",
            uptime: 86_400,
            ip: `${net}.22`,
            config: { cores: 2, memory: "2048", agent: "1", net0: "virtio=BC:24:11:00:15:00,bridge=vmbr0" },
            guest: { hostname: "k3s-vm-n1", user: "ubuntu", k3s: { role: "agent" } }
          }
        ]
      })
    })
    const run = await lab.homelab("apply", "--yes")
    assert.strictEqual(run.code, ExitCode.Join, run.stdout + run.stderr)
    assert.include(run.stdout, "[k3s.identity-mismatch]")
    assert.include(run.stdout, "homelab reprovision k3s-vm-n1")
    assert.include(run.stderr, "only k3s work is left")
    assert.deepStrictEqual(
      k3sNodesOf(lab.sim)
        .filter((n) => n.name === "k3s-vm-n1")
        .map((n) => n.ip),
      [`${lab.net}.22`]
    )
    assert.isFalse(lab.sim.k3sEvents().some((e) => e.kind === "node-deleted"))
  })
})

describe.concurrent("2. a recreate interrupted after the old VM is destroyed is finished, and rejoins k3s", () => {
  it("SIGKILL right after DELETE /qemu/<vmid>: the next apply creates the VM and it is a Ready member", async () => {
    const lab = await startLab(["n1"], { k3s: true })
    assert.strictEqual((await lab.homelab("apply", "--yes")).code, ExitCode.Ok)
    const vmid = vmsOf(lab.sim).find((v) => v.name === "k3s-vm-n1")?.vmid as number
    const rebuild = lab.spawn("reprovision", "n1", "--yes")
    await whenRequest(
      lab.sim,
      (r) => r.method === "DELETE" && r.path === `/nodes/n1/qemu/${vmid}` && r.status === 200,
      rebuild.done
    )
    rebuild.child.kill("SIGKILL")
    await rebuild.done
    const after = await lab.homelab("apply", "--yes")
    assert.strictEqual(after.code, ExitCode.Ok, after.stdout + after.stderr)
    assert.notInclude(after.stdout + after.stderr, "identity-mismatch")
    const vm = vmsOf(lab.sim).filter((v) => v.name === "k3s-vm-n1")
    assert.strictEqual(vm.length, 1)
    assert.deepStrictEqual([vm[0]?.qmpstatus, vm[0]?.tags], ["running", "homelab-managed"])
    assert.deepStrictEqual(
      k3sNodesOf(lab.sim)
        .filter((n) => n.name === "k3s-vm-n1")
        .map((n) => [n.ready, n.ip]),
      [["True", vm[0]?.ip as string]]
    )
  })

  it("the new VM's create task fails: that run exits 5 saying so; the next apply (fault cleared) rebuilds and rejoins", async () => {
    const lab = await startLab(["n1"], { k3s: true })
    assert.strictEqual((await lab.homelab("apply", "--yes")).code, ExitCode.Ok)
    const vmid = vmsOf(lab.sim).find((v) => v.name === "k3s-vm-n1")?.vmid as number
    await lab.sim.addFaults([{ kind: "taskFail", taskType: "qmcreate", exitstatus: "storage error", vmid }])
    const failed = await lab.homelab("reprovision", "n1", "--yes")
    assert.strictEqual(failed.code, ExitCode.NotConverged, failed.stdout + failed.stderr)
    assert.include(failed.stdout, "storage error")
    assert.deepStrictEqual(
      vmsOf(lab.sim).filter((v) => v.name === "k3s-vm-n1"),
      []
    )
    await lab.sim.clearFaults({ kind: "taskFail" })
    const after = await lab.homelab("apply", "--yes")
    assert.strictEqual(after.code, ExitCode.Ok, after.stdout + after.stderr)
    const vm = vmsOf(lab.sim).find((v) => v.name === "k3s-vm-n1")
    assert.deepStrictEqual(
      k3sNodesOf(lab.sim)
        .filter((n) => n.name === "k3s-vm-n1")
        .map((n) => [n.ready, n.ip]),
      [["True", vm?.ip as string]]
    )
  })
})

describe.concurrent("3. a pending VM is finished whatever its state; protection first", () => {
  it("a pending VM that is paused is resumed and finished, and what it still lacks of homelab.yaml is named; a pending protected one is not touched (exit 5 naming both)", async () => {
    const lab = await startLab(["n1", "n2"], {
      extra: "timeouts:\n  ip: 10",
      scenario: (net) => ({
        vms: [
          ours("k3s-vm-n1", 1001, "n1", {
            qmpstatus: "paused",
            uptime: 600,
            tags: "homelab-managed;homelab-pending",
            ip: `${net}.31`,
            config: {
              cores: 2,
              memory: "2048",
              agent: "1",
              net0: "virtio=BC:24:11:00:10:01,bridge=vmbr0",
              scsi0: "local-lvm:vm-1001-disk-0,size=16G"
            }
          }),
          ours("k3s-vm-n2", 1002, "n2", {
            status: "stopped",
            protection: true,
            tags: "homelab-managed;homelab-pending"
          })
        ]
      })
    })
    const run = await lab.homelab("apply", "--yes")
    assert.strictEqual(run.code, ExitCode.NotConverged, run.stdout + run.stderr)
    assert.include(run.stdout, "finish provisioning VM 1001 k3s-vm-n1 on n1")
    assert.include(run.stdout, "it is paused: resuming it")
    // the earlier run's VM is finished as it is; what differs from homelab.yaml is named (the next apply changes it)
    assert.match(
      run.stdout,
      /VM 1001 k3s-vm-n1 finished, running at [\d.]+; but 3 setting\(s\) differ from homelab\.yaml: cores 2 → 4;/
    )
    assert.include(
      run.stderr,
      "2 of 2 node(s) did not converge: n1 (VM k3s-vm-n1: 3 setting(s) differ from homelab.yaml once it was provisioned: cores 2 → 4; memory 2048 → 16384 MiB; cpu kvm64 → host), n2 (VM 1002 k3s-vm-n2 is protected; it was never fully provisioned"
    )
    const [n1, n2] = vmsOf(lab.sim)
    assert.deepStrictEqual([n1?.qmpstatus, n1?.tags], ["running", "homelab-managed"])
    assert.deepStrictEqual([n2?.status, n2?.tags], ["stopped", "homelab-managed;homelab-pending"])
    assert.deepStrictEqual(
      mutating(lab.sim).filter((r) => (r.path ?? "").includes("/1002")),
      [],
      "no resize, start or retag of the protected VM"
    )
  })
})

describe.concurrent("4. one node out of reach on both transports fails only that node", () => {
  it("API down and SSH refused on the first node: the others converge (exit 5), the message names the node, the API URL and the SSH host:port with each error", async () => {
    const lab = await startLab(["n1", "n2", "n3"], {
      scenario: {
        faults: [
          { kind: "apiDown", node: "n1" },
          { kind: "sshAuthRefused", node: "n1" }
        ]
      }
    })
    const run = await lab.homelab("apply", "--yes")
    assert.strictEqual(run.code, ExitCode.NotConverged, run.stdout + run.stderr)
    const n1 = lab.sim.info.nodes[0]
    assert.include(
      run.stdout,
      `cannot list local (the image storage) on node n1: API ${n1?.api}: connection refused (nothing listens there); SSH root@${n1?.ssh.host}:${n1?.ssh.port}: our SSH key was refused (authentication failed)`
    )
    assert.include(run.stdout, `authorized_keys on ${n1?.ssh.host}`)
    assert.notInclude(run.stdout + run.stderr, "proxmox.auth.tokenId")
    assert.include(run.stdout, "n1 is out of reach")
    assert.match(run.stderr, /1 of 3 node\(s\) did not converge: n1 \(cannot list local .*; the other 2 converged\./)
    assert.deepStrictEqual(
      vmsOf(lab.sim)
        .map((v) => v.name)
        .sort(),
      ["k3s-vm-n2", "k3s-vm-n3"]
    )
  })

  it("SSH refused on a node whose API certificate is untrusted: that node fails with the SSH key named, the other converges", async () => {
    const lab = await startLab(["n1", "n2"], {
      scenario: {
        faults: [
          { kind: "untrustedCert", node: "n2" },
          { kind: "sshAuthRefused", node: "n2" }
        ]
      }
    })
    const run = await lab.homelab("apply", "--yes")
    assert.strictEqual(run.code, ExitCode.NotConverged, run.stdout + run.stderr)
    assert.match(
      run.stdout,
      new RegExp(
        `on node n2: API https://${lab.net.replaceAll(".", "\\.")}\\.1:\\d+: its TLS certificate is not trusted .*; SSH root@${lab.net.replaceAll(".", "\\.")}\\.1:\\d+: our SSH key was refused`
      )
    )
    assert.include(run.stdout, "add the public key of ssh.privateKey to root's ~/.ssh/authorized_keys")
    assert.notInclude(run.stdout + run.stderr, "proxmox.auth.tokenId")
    assert.deepStrictEqual(
      vmsOf(lab.sim).map((v) => v.name),
      ["k3s-vm-n1"]
    )
  })

  it("a refused API token: exit 4 naming the token and the endpoint, with a hint about the token, never the SSH key", async () => {
    const lab = await startLab(["n1", "n2"])
    const refused = await runWith(lab, { PROXMOX_TOKEN_SECRET: "00000000-0000-0000-0000-000000000000" }, "plan")
    assert.strictEqual(refused.code, ExitCode.Proxmox, refused.stdout + refused.stderr)
    assert.include(refused.stderr, lab.sim.info.auth.tokenId)
    assert.include(refused.stderr, "proxmox.auth")
    assert.notInclude(refused.stderr, "authorized_keys")
    assert.notInclude(refused.stderr + refused.stdout, "00000000-0000-0000-0000-000000000000")
  })
})

describe.concurrent("5. never silent; joins as soon as the VM is ready; Ctrl-C says what was in flight", () => {
  it("a wait longer than 5 s is shown with what it waits for, elapsed and limit; it ends at its timeouts: limit", async () => {
    const vmid = firstVmid("k3s-vm-n1")
    const lab = await startLab(["n1"], {
      scenario: { faults: [{ kind: "agentNeverStarts", vmid }] },
      extra: "timeouts:\n  ip: 6"
    })
    const run = await lab.homelab("apply", "--yes")
    assert.strictEqual(run.code, ExitCode.NotConverged, run.stdout + run.stderr)
    assert.include(run.stdout, `[n1]   waiting for VM ${vmid} k3s-vm-n1's guest agent to report an IP (5s of 6s)`)
    assert.include(run.stdout, `VM ${vmid} k3s-vm-n1 reported no IP within 6s`)
    assert.include(run.stdout, "qemu-guest-agent")
  })

  it("a node's k3s join starts as soon as its own VM has its IP, while another node's VM is still being provisioned", async () => {
    const n2Vmid = firstVmid("k3s-vm-n2")
    // n2's new VM reports no IP until n1 is a Ready member: a run that joined only after every VM was done never gets there
    const lab = await startLab(["n1", "n2"], {
      k3s: true,
      scenario: { faults: [{ kind: "agentNeverStarts", vmid: n2Vmid }] },
      extra: "timeouts:\n  ip: 60"
    })
    const run = lab.spawn("apply", "--yes")
    await before(
      whenState(() => k3sNodesOf(lab.sim).some((n) => n.name === "k3s-vm-n1" && n.ready === "True")),
      run
    )
    assert.include(
      vmsOf(lab.sim).find((v) => v.vmid === n2Vmid)?.tags ?? "",
      "homelab-pending",
      "n2's VM is still being provisioned"
    )
    await lab.sim.clearFaults({ kind: "agentNeverStarts" })
    const result = await run.done
    assert.strictEqual(result.code, ExitCode.Ok, result.stdout + result.stderr)
    assert.isUndefined(notConverged(lab.sim, "n2", true))
  })

  it("SIGINT lists the actions in flight and that the next run resumes them, exits 130; the next apply converges", async () => {
    // the create task is held (taskHold) until the run has exited: it is in flight when the signal lands, however late
    const lab = await startLab(["n1"], {
      scenario: { faults: [{ kind: "taskHold", taskType: "qmcreate", node: "n1" }] }
    })
    const run = lab.spawn("apply", "--yes")
    await whenRequest(lab.sim, (r) => r.method === "POST" && r.path === "/nodes/n1/qemu", run.done)
    run.child.kill("SIGINT")
    const result = await run.done
    await lab.sim.clearFaults({ kind: "taskHold" })
    assert.strictEqual(result.code, ExitCode.Interrupted, result.stdout + result.stderr)
    assert.include(result.stderr, "Interrupted while these were in flight:")
    assert.include(result.stderr, "[n1] create VM k3s-vm-n1 on n1")
    assert.include(result.stderr, "The next `homelab apply` finds what each one left")
    assert.notInclude(result.stderr, "asks about first", "a create leaves nothing to destroy: nothing to ask about")
    const after = await lab.homelab("apply", "--yes")
    assert.strictEqual(after.code, ExitCode.Ok, after.stdout + after.stderr)
    assert.strictEqual(vmsOf(lab.sim).filter((v) => v.name === "k3s-vm-n1").length, 1)
  })
})

describe.concurrent("5c. Ctrl-C during a rebuild says the next run asks again before destroying the VM", () => {
  it("interrupted while the old VM stops: the message says so, a run without a terminal and without --yes exits 6 naming the VM, with --yes it converges", async () => {
    // the stop task is held (taskHold) until the run has exited: the recreate is in flight when the signal lands
    const lab = await startLab(["n1"])
    assert.strictEqual((await lab.homelab("apply", "--yes")).code, ExitCode.Ok)
    const vmid = vmsOf(lab.sim).find((v) => v.name === "k3s-vm-n1")?.vmid as number
    await lab.sim.addFaults([{ kind: "taskHold", taskType: "qmstop", node: "n1" }])
    const rebuild = lab.spawn("reprovision", "n1", "--yes")
    await whenRequest(
      lab.sim,
      (r) => r.method === "POST" && r.path === `/nodes/n1/qemu/${vmid}/status/stop`,
      rebuild.done
    )
    rebuild.child.kill("SIGINT")
    const interrupted = await rebuild.done
    await lab.sim.clearFaults({ kind: "taskHold" })
    assert.strictEqual(interrupted.code, ExitCode.Interrupted, interrupted.stdout + interrupted.stderr)
    assert.include(interrupted.stderr, `[n1] recreate VM ${vmid} k3s-vm-n1`)
    assert.include(
      interrupted.stderr,
      "Whatever it has still to destroy, it asks about first (`--yes` where no one can answer)."
    )
    const unattended = await lab.homelab("apply")
    assert.strictEqual(unattended.code, ExitCode.NeedsConfirmation, unattended.stdout + unattended.stderr)
    assert.include(unattended.stdout + unattended.stderr, "k3s-vm-n1")
    assert.include(unattended.stdout + unattended.stderr, "--yes")
    const after = await lab.homelab("apply", "--yes")
    assert.strictEqual(after.code, ExitCode.Ok, after.stdout + after.stderr)
    assert.strictEqual(vmsOf(lab.sim).filter((v) => v.name === "k3s-vm-n1").length, 1)
  })
})

describe.concurrent("5b. Ctrl-C during a teardown names the command that finishes it", () => {
  it("an interrupted `destroy --only` says the next `homelab destroy --only …` finishes it, an interrupted prune `homelab apply --prune` (a plain apply would not)", async () => {
    // an orphan of ours on n1 from the start; the destroy task is held until the run has exited
    const lab = await startLab(["n1", "n2"], {
      imagePresent: true,
      scenario: (net) => ({
        faults: [{ kind: "taskHold", taskType: "qmdestroy" }],
        vms: [
          {
            vmid: 4321,
            node: "n1",
            name: "k3s-vm-old",
            status: "running",
            tags: "homelab-managed",
            uptime: 86_400,
            ip: `${net}.30`,
            config: asAsked(4321)
          }
        ]
      })
    })
    const interrupted = async (...args: Array<string>) => {
      lab.sim.clearRequests()
      const run = lab.spawn(...args)
      await whenRequest(
        lab.sim,
        (r) => r.method === "DELETE" && /^\/nodes\/n1\/qemu\/\d+$/.test(r.path ?? ""),
        run.done
      )
      run.child.kill("SIGINT")
      const result = await run.done
      assert.strictEqual(result.code, ExitCode.Interrupted, result.stdout + result.stderr)
      assert.include(result.stderr, "Interrupted while these were in flight:")
      return result.stderr
    }
    const prune = await interrupted("apply", "--prune", "--yes")
    assert.include(prune, "[n1] prune orphan VM 4321 k3s-vm-old")
    assert.include(prune, "The next `homelab apply --prune` finds what each one left")
    // the held destroy goes on and removes the orphan
    await lab.sim.clearFaults({ kind: "taskHold" })
    await whenState(() => !vmsOf(lab.sim).some((v) => v.vmid === 4321))
    await lab.sim.addFaults([{ kind: "taskHold", taskType: "qmdestroy" }])
    const created = await lab.homelab("apply", "--yes")
    assert.strictEqual(created.code, ExitCode.Ok, created.stdout + created.stderr)
    const destroy = await interrupted("destroy", "--only", "n1", "--images", "--yes")
    assert.include(destroy, "[n1] destroy VM")
    assert.include(destroy, "The next `homelab destroy --only n1 --images` finds what each one left")
    assert.notInclude(destroy, "`homelab apply")
    await lab.sim.clearFaults({ kind: "taskHold" })
  })
})

describe.concurrent("6. plan shows all three layers", () => {
  it("on a fresh lab, plan shows each join that follows a create, with its reason, and changes nothing", async () => {
    const lab = await startLab(["n1", "n2"], { k3s: true })
    const plan = await lab.homelab("plan")
    assert.strictEqual(plan.code, ExitCode.Ok, plan.stdout + plan.stderr)
    for (const node of ["n1", "n2"]) {
      assert.include(plan.stdout, `join k3s-vm-${node} to k3s as an agent after it is created`)
    }
    assert.notInclude(plan.stdout, "every VM is a Ready member")
    const json = await lab.homelab("plan", "--json")
    const report = JSON.parse(json.stdout) as {
      plan: { actions: ReadonlyArray<{ _tag: string; id: string; after: ReadonlyArray<string>; reason: string }> }
    }
    const joins = report.plan.actions.filter((a) => a._tag === "JoinK3s")
    assert.deepStrictEqual(
      joins.map((a) => a.after),
      [["n1:vm:k3s-vm-n1"], ["n2:vm:k3s-vm-n2"]]
    )
    assert.deepStrictEqual(mutating(lab.sim), [])
  })
})

/** The k3s installs the simulator saw start on each VM (an install that changes nothing starts no agent). */
const agentJoins = (lab: { sim: Parameters<typeof vmsOf>[0] }) =>
  lab.sim
    .operations()
    .filter((o) => o.operation === "k3s-agent-join")
    .map((o) => ({ vm: o.k3sNode ?? o.vm, from: o.startedAt, to: o.endedAt ?? Number.POSITIVE_INFINITY }))

describe.concurrent("7. two applies at once", () => {
  const converged = (lab: { sim: Parameters<typeof vmsOf>[0] }, nodes: ReadonlyArray<string>) => {
    for (const node of nodes) assert.isUndefined(notConverged(lab.sim, node, true), node)
    const joins = agentJoins(lab)
    for (const node of nodes) {
      assert.strictEqual(
        joins.filter((j) => j.vm === `k3s-vm-${node}`).length,
        1,
        `k3s was installed once on k3s-vm-${node}: ${JSON.stringify(joins)}`
      )
    }
  }

  it("the second starts while the first's creates are in flight: both exit 0, one VM and one k3s install per node, neither reports [k3s.no-ip]", async () => {
    // The first run's create tasks are held until the second run meets them on every node: it either plans to wait
    // for them or finds their VMID taken by its own create. Only then do they finish, so the two runs overlap however
    // slowly either process starts.
    const nodes = ["n1", "n2"]
    const lab = await startLab(nodes, { k3s: true, scenario: { faults: [{ kind: "taskHold", taskType: "qmcreate" }] } })
    const installs = watchInstalls(lab.sim)
    const first = lab.spawn("apply", "--yes")
    const createdBy = (node: string, occurrence: number, ...runs: ReadonlyArray<Running>) =>
      before(
        whenRequest(lab.sim, (r) => r.method === "POST" && r.path === `/nodes/${node}/qemu`, first.done, occurrence),
        ...runs
      )
    for (const node of nodes) await createdBy(node, 1, first)
    const second = lab.spawn("apply", "--yes")
    for (const node of nodes) {
      await Promise.any([
        before(whenPrinted(second, new RegExp(`\\[${node}\\] wait for the create of VM \\d+ k3s-vm-${node}`)), first),
        createdBy(node, 2, first, second)
      ])
    }
    await lab.sim.clearFaults({ kind: "taskHold" })
    const [a, b] = await Promise.all([first.done, second.done])
    assert.strictEqual(a.code, ExitCode.Ok, a.stdout + a.stderr)
    assert.strictEqual(b.code, ExitCode.Ok, b.stdout + b.stderr)
    for (const out of [a.stdout, b.stdout]) assert.notInclude(out, "k3s.no-ip")
    for (const node of nodes) {
      assert.match(b.stdout, new RegExp(`k3s-vm-${node} (was created by another run|created by an earlier run)`))
    }
    assert.deepStrictEqual(installs.overlaps(), [], "no two k3s installs on one VM at once")
    converged(lab, nodes)
    // 10: a converged lab's status says so and exits 0
    const status = await lab.homelab("status")
    assert.strictEqual(status.code, ExitCode.Ok, status.stdout + status.stderr)
    assert.match(status.stdout, /^n1 +k3s-vm-n1 +\d+ +running +healthy +\S+ +rest +agent Ready$/m)
    assert.include(status.stdout, "Converged: every node holds the image and a healthy VM")
  })

  it("the second starts while the first provisions the VM: it finishes that VM (never a second one) and reports the work", async () => {
    const vmid = firstVmid("k3s-vm-n1")
    // the new VM's guest agent stays silent until the second run is under way, so the first run is still waiting
    const lab = await startLab(["n1"], { k3s: true, scenario: { faults: [{ kind: "agentNeverStarts", vmid }] } })
    const installs = watchInstalls(lab.sim)
    const first = lab.spawn("apply", "--yes")
    await whenRequest(
      lab.sim,
      (r) => r.method === "POST" && r.path === `/nodes/n1/qemu/${vmid}/status/start`,
      first.done
    )
    const second = lab.spawn("apply", "--yes")
    await before(whenPrinted(second, /\[n1\] finish provisioning VM \d+ k3s-vm-n1 on n1 …/), first)
    await lab.sim.clearFaults({ kind: "agentNeverStarts" })
    const [a, b] = await Promise.all([first.done, second.done])
    assert.strictEqual(a.code, ExitCode.Ok, a.stdout + a.stderr)
    assert.strictEqual(b.code, ExitCode.Ok, b.stdout + b.stderr)
    assert.include(b.stdout, `still carries 'homelab-pending': its provisioning is unfinished`)
    assert.notInclude(b.stdout, "create VM k3s-vm-n1")
    assert.notInclude(b.stdout, "k3s.no-ip")
    assert.match(b.stdout, new RegExp(`VM ${vmid} k3s-vm-n1 finished, running at `))
    assert.match(`${a.stdout}\n${b.stdout}`, /k3s-vm-n1 (was joined as an agent by another run \(|is a Ready agent)/)
    assert.deepStrictEqual(installs.overlaps(), [], "no two k3s installs on one VM at once")
    converged(lab, ["n1"])
  })

  it("the second reaches the VM while the first installs k3s on it: it waits for the install lock and reports the first run's install", async () => {
    const lab = await startLab(["n1"], { k3s: true })
    const installs = watchInstalls(lab.sim)
    // the first run's install holds the VM's install lock until the second run's install has reached the VM
    const release = installs.holdNext()
    const first = lab.spawn("apply", "--yes")
    await before(
      installs.when(() => installs.runs.length === 1),
      first
    )
    const second = lab.spawn("apply", "--yes")
    await before(
      installs.when(() => installs.arrived.length === 2),
      first,
      second
    )
    await new Promise((resolve) => setImmediate(resolve))
    release()
    const [a, b] = await Promise.all([first.done, second.done])
    assert.strictEqual(a.code, ExitCode.Ok, a.stdout + a.stderr)
    assert.strictEqual(b.code, ExitCode.Ok, b.stdout + b.stderr)
    assert.include(b.stdout, "join k3s-vm-n1 (")
    assert.match(
      b.stdout,
      /k3s-vm-n1 was joined as an agent by another run \([^,]+, installed at \S+; this run waited \d+ s\); Ready/
    )
    assert.notInclude(b.stdout, "k3s.no-ip")
    assert.deepStrictEqual(installs.overlaps(), [], "no two k3s installs on one VM at once")
    converged(lab, ["n1"])
  })
})

describe.concurrent("10. status tells the truth and exits 0 only when converged", () => {
  it("blocked create, stopped VM, fresh Ready member, stopped protected VM: exit 5; each row and reason says what it is", async () => {
    const lab = await startLab(["n1", "n2", "n3", "n4"], {
      k3s: true,
      imagePresent: true,
      scenario: (net) => ({
        faults: [{ kind: "bridgeMissing", node: "n1", bridge: "vmbr0" }],
        vms: [
          ours("k3s-vm-n2", 1002, "n2", { status: "stopped" }),
          ours("k3s-vm-n3", 1003, "n3", {
            uptime: 30,
            ip: `${net}.23`,
            config: asAsked(1003),
            // joined by homelab with the lab's k3s.agentFlags
            guest: {
              hostname: "k3s-vm-n3",
              user: "ubuntu",
              k3s: { role: "agent", flags: ["--node-label=tier=demo"] }
            }
          }),
          ours("k3s-vm-n4", 1004, "n4", { status: "stopped", protection: true })
        ]
      })
    })
    const text = await lab.homelab("status")
    assert.strictEqual(text.code, ExitCode.NotConverged, text.stdout + text.stderr)
    const row = (node: string) => text.stdout.split("\n").find((l) => l.startsWith(`${node} `)) ?? ""
    assert.match(row("n1"), /^n1 +k3s-vm-n1 +- +missing +missing +- +rest +absent$/)
    assert.match(row("n2"), /^n2 +k3s-vm-n2 +1002 +stopped +unhealthy: stopped +- +rest +absent$/)
    assert.match(row("n3"), new RegExp(`^n3 +k3s-vm-n3 +1003 +running +healthy +${lab.net}\\.23 +rest +agent Ready$`))
    assert.match(row("n4"), /^n4 +k3s-vm-n4 +1004 +stopped +unhealthy: stopped, protected +- +rest +absent$/)
    assert.notInclude(text.stdout, "apply creates it")
    assert.notInclude(text.stdout, "joining it next run")
    assert.include(text.stdout, "[blocked] bridge 'vmbr0' does not exist on node n1")
    assert.include(text.stdout, "[planned] recreate VM 1002 k3s-vm-n2 on n2")
    assert.include(
      text.stdout,
      "[blocked] VM 1004 (k3s-vm-n4) on node n4 is stopped; remediation recreate not allowed (protected)"
    )
    assert.include(text.stderr, "3 of 4 node(s) not converged: n1, n2, n4")

    const json = await lab.homelab("status", "--json")
    assert.strictEqual(json.code, ExitCode.NotConverged, json.stderr)
    const doc = JSON.parse(json.stdout) as {
      vms: ReadonlyArray<{
        node: string
        health: string
        detail: string
        transport: string
        k3s?: string
        protected?: ReadonlyArray<string>
      }>
      convergence: { converged: boolean; nodes: ReadonlyArray<{ node: string; converged: boolean }> }
    }
    assert.deepStrictEqual(
      doc.vms.map((v) => [v.node, v.health, v.transport, v.k3s, v.protected]),
      [
        ["n1", "missing", "rest", "absent", undefined],
        ["n2", "unhealthy: stopped", "rest", "absent", undefined],
        ["n3", "healthy", "rest", "agent Ready", undefined],
        ["n4", "unhealthy: stopped", "rest", "absent", ["pve"]]
      ]
    )
    assert.strictEqual(doc.vms[0]?.detail, "blocked: bridge 'vmbr0' does not exist on node n1")
    assert.deepStrictEqual(
      doc.convergence.nodes.map((n) => [n.node, n.converged]),
      [
        ["n1", false],
        ["n2", false],
        ["n3", true],
        ["n4", false]
      ]
    )
    assert.deepStrictEqual(mutating(lab.sim), [], "status changes nothing")
  })
})
