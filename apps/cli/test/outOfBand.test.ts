/**
 * Changes made to a converged lab behind homelab's back (the PVE API, a shell on a VM), end to end through the built
 * `homelab`: plan never says "No changes" for a lab that is not as homelab.yaml asks, names the node and why, and
 * leaves the other nodes converged.
 */
import { afterEach, assert, describe, it } from "@effect/vitest"
import { reserveLoopbackNet } from "@homelab/sim"
import { ExitCode } from "../src/ExitCode.js"
import { lab, nodes, onGuest, plain, runningCluster, show, stopLabs, until, v130, vmidOf } from "./k3sLab.js"
import {
  imageVolid,
  mutating,
  pveRequest,
  startLab,
  stopLabs as stopSimLabs,
  untilResourcesCurrent,
  vmsOf,
  whenRecord,
  whenState
} from "./simLab.js"

afterEach(stopLabs)
afterEach(stopSimLabs)

/** A running cluster (3 servers, 2 agents) that homelab converged: the next plan has no changes. */
const converged = async () => {
  const subnet = reserveLoopbackNet().net
  const scenario = runningCluster(subnet)
  // as PVE gives every VM it creates: an SMBIOS UUID, the system UUID its guest (and its k3s Node) reports
  const withUuids = {
    ...scenario,
    vms: scenario.vms?.map((vm, i) => ({
      ...vm,
      config: { ...vm.config, smbios1: `uuid=7d3f2a10-5b6c-4d8e-9f01-0000000020${String(11 + i)}` }
    }))
  }
  const l = await lab(withUuids, subnet)
  const steady = await l.homelab(["apply", "--yes"])
  assert.strictEqual(steady.code, ExitCode.Ok, show(steady))
  const clean = await l.homelab(["plan", "--detailed-exitcode"])
  assert.strictEqual(clean.code, ExitCode.Ok, show(clean))
  return l
}

describe("homelab plan after a change made by hand to a converged lab", () => {
  it("a VM renamed in PVE while its k3s Node runs on: plan is blocked naming the VM, its Node and the fix; apply creates no second VM and removes no Node", async () => {
    const { sim, homelab } = await converged()
    const vmid = vmidOf(sim, "fun-goal")
    await pveRequest(sim, "PUT", `/nodes/fun-goal/qemu/${vmid}/config`, { name: "my-box" })
    const since = sim.k3sEvents().length

    const plan = await homelab(["plan", "--detailed-exitcode"])
    assert.strictEqual(plan.code, ExitCode.Error, show(plan))
    const out = plain(plan.stdout)
    assert.include(
      out,
      `VM ${vmid} my-box on fun-goal is the machine of k3s Node k3s-vm-fun-goal (its SMBIOS UUID is the Node's system UUID): k3s-vm-fun-goal renamed by hand? Not creating a second VM for that Node [vm.renamed]`,
      show(plan)
    )
    assert.include(out, `rename it back (\`qm set ${vmid} --name k3s-vm-fun-goal\` on fun-goal)`, show(plan))
    assert.notInclude(out, "create VM k3s-vm-fun-goal", show(plan))
    for (const other of ["pve", "still-fawn", "chief-horse", "wise-owl"])
      assert.match(out, new RegExp(`✓ ${other} +converged`), show(plan))

    const apply = await homelab(["apply", "--yes"])
    assert.strictEqual(apply.code, ExitCode.NotConverged, show(apply))
    assert.deepStrictEqual(
      sim
        .state()
        .vms.map((v) => v.name)
        .filter((n) => String(n).includes("fun-goal") || n === "my-box"),
      ["my-box"],
      "no second VM for the Node"
    )
    assert.deepStrictEqual(
      sim
        .k3sEvents()
        .slice(since)
        .filter((e) => e.node === "k3s-vm-fun-goal")
        .map((e) => e.kind),
      [],
      "the Node of the running VM was not touched"
    )
    assert.include(nodes(sim), `fun-goal agent True ${v130}`)

    // renamed back, the lab is converged again
    await pveRequest(sim, "PUT", `/nodes/fun-goal/qemu/${vmid}/config`, { name: "k3s-vm-fun-goal" })
    const again = await homelab(["plan", "--detailed-exitcode"])
    assert.strictEqual(again.code, ExitCode.Ok, show(again))
  })
})

describe("homelab apply after a VM was suspended to disk by hand (qm suspend --todisk)", () => {
  it("resumes it: the guest goes on from its saved state, its k3s Node is Ready again without a new join, and the lab is converged", async () => {
    const { sim, homelab } = await converged()
    const vmid = vmidOf(sim, "fun-goal")
    await pveRequest(sim, "POST", `/nodes/fun-goal/qemu/${vmid}/status/suspend`, { todisk: "1" })
    const hibernated = () => {
      const vm = sim.state().vms.find((v) => v.vmid === vmid)
      return vm?.status === "stopped" && (vm.config as Record<string, unknown>).lock === "suspended"
    }
    await whenState(hibernated)
    const since = sim.k3sEvents().length
    const plan = await homelab(["plan", "--detailed-exitcode"])
    assert.strictEqual(plan.code, ExitCode.Changes, show(plan))
    assert.include(plain(plan.stdout), `resume VM ${vmid} k3s-vm-fun-goal on fun-goal`, show(plan))

    const apply = await homelab(["apply", "--yes"])
    assert.strictEqual(apply.code, ExitCode.Ok, show(apply))
    const vm = sim.state().vms.find((v) => v.vmid === vmid)
    assert.strictEqual(vm?.status, "running")
    assert.notProperty(vm?.config, "vmstate")
    assert.deepStrictEqual(
      sim
        .k3sEvents()
        .slice(since)
        .filter((e) => e.node === "k3s-vm-fun-goal")
        .map((e) => e.kind),
      [],
      "its k3s went on: no join, no restart"
    )
    const again = await homelab(["plan", "--detailed-exitcode"])
    assert.strictEqual(again.code, ExitCode.Ok, show(again))
  })
})

/** A change by hand to fun-goal's VM (or its node), and what plan must then say of fun-goal. */
interface Case {
  readonly change: (l: Awaited<ReturnType<typeof converged>>, vmid: number) => Promise<void>
  readonly exit: number
  readonly says: (vmid: number) => string
}
const cases: Record<string, Case> = {
  "migrated to another node (there under the same name)": {
    change: async ({ sim }, vmid) => {
      await pveRequest(sim, "POST", "/nodes/wise-owl/qemu", {
        vmid: "3004",
        name: "k3s-vm-fun-goal",
        tags: "homelab-managed",
        memory: "16384",
        cores: "4"
      })
      sim.setVmStatus(vmid, { status: "stopped", qmpstatus: "stopped" })
      await pveRequest(sim, "DELETE", `/nodes/fun-goal/qemu/${vmid}`)
    },
    exit: ExitCode.Error,
    says: () => "VM 3004 k3s-vm-fun-goal runs on node wise-owl, not fun-goal; leaving it there [vm.elsewhere]"
  },
  "its NIC disconnected (link_down=1): its k3s Node NotReady after the grace period": {
    change: async ({ sim, elapse }, vmid) => {
      const vm = sim.state().vms.find((v) => v.vmid === vmid)
      const net0 = (vm?.config as Record<string, string> | undefined)?.net0
      await pveRequest(sim, "PUT", `/nodes/fun-goal/qemu/${vmid}/config`, { net0: `${net0},link_down=1` })
      elapse(60_000)
    },
    exit: ExitCode.Changes,
    says: () => "k3s-vm-fun-goal  net0 vmbr0, link down → link up (applied now)"
  },
  "made a template": {
    change: async ({ sim }, vmid) => {
      sim.setVmStatus(vmid, { status: "stopped", qmpstatus: "stopped" })
      await pveRequest(sim, "PUT", `/nodes/fun-goal/qemu/${vmid}/config`, { template: "1" })
    },
    exit: ExitCode.Error,
    says: (vmid) => `VM ${vmid} (k3s-vm-fun-goal) on node fun-goal: is a template; keeping it [vm.template]`
  },
  "its guest crashed (io-error)": {
    change: async ({ sim }, vmid) => sim.setVmStatus(vmid, { qmpstatus: "io-error" }),
    exit: ExitCode.Error,
    says: (vmid) => `VM ${vmid} (k3s-vm-fun-goal) on node fun-goal is crashed (qmpstatus=io-error)`
  },
  "its guest suspended to RAM": {
    change: async ({ sim }, vmid) => sim.setVmStatus(vmid, { qmpstatus: "suspended" }),
    exit: ExitCode.Error,
    says: (vmid) => `VM ${vmid} (k3s-vm-fun-goal) on node fun-goal: suspended to RAM (qmpstatus=suspended)`
  },
  hibernated: {
    change: async ({ sim }, vmid) =>
      sim.setVmStatus(vmid, { status: "stopped", qmpstatus: "stopped", lock: "suspended" }),
    exit: ExitCode.Changes,
    says: (vmid) => `resume VM ${vmid} k3s-vm-fun-goal on fun-goal`
  },
  "locked by a backup": {
    change: async ({ sim }, vmid) => sim.setVmStatus(vmid, { lock: "backup" }),
    exit: ExitCode.Changes,
    says: (vmid) =>
      `VM ${vmid} k3s-vm-fun-goal is locked (backup): an operation is in progress; left alone this run [vm.locked]`
  },
  "the image deleted from its node's storage": {
    change: async ({ sim }) => {
      await pveRequest(sim, "DELETE", `/nodes/fun-goal/storage/local/content/${imageVolid}`)
      await whenState(
        () =>
          !JSON.stringify(sim.state().nodes.find((n) => n.name === "fun-goal")).includes(
            imageVolid.split("/")[1] as string
          )
      )
    },
    exit: ExitCode.Changes,
    says: () => `${imageVolid} is not on fun-goal`
  }
}

describe("homelab plan after a change by hand that it already tells (one node named, the others converged)", () => {
  for (const [name, c] of Object.entries(cases))
    it(name, async () => {
      const l = await converged()
      const vmid = vmidOf(l.sim, "fun-goal")
      await c.change(l, vmid)
      await untilResourcesCurrent(l.sim)
      const plan = await l.homelab(["plan", "--detailed-exitcode"])
      assert.strictEqual(plan.code, c.exit, show(plan))
      const out = plain(plan.stdout)
      assert.include(out, c.says(vmid), show(plan))
      assert.match(out, /[✗→] fun-goal +(not converged|converges)/, show(plan))
      for (const other of ["pve", "still-fawn", "chief-horse"])
        assert.match(out, new RegExp(`✓ ${other} +converged`), show(plan))
    })
})

describe("homelab plan after a drive of a VM it created was changed by hand", () => {
  /** Two nodes, their VMs created by homelab (no k3s): converged, then `params` sent to still-fawn's VM's config. */
  const edited = async (params: Record<string, string>) => {
    const l = await startLab(["pve", "still-fawn"], { imagePresent: true })
    const apply = await l.homelab("apply", "--yes")
    assert.strictEqual(apply.code, ExitCode.Ok, show(apply))
    const vm = vmsOf(l.sim).find((v) => v.name === "k3s-vm-still-fawn")
    assert.ok(vm !== undefined)
    await pveRequest(l.sim, "PUT", `/nodes/still-fawn/qemu/${vm.vmid}/config`, params)
    const plan = await l.homelab("plan", "--detailed-exitcode")
    const out = plain(plan.stdout)
    assert.strictEqual(plan.code, ExitCode.Error, show(plan))
    assert.match(out, /✓ pve +converged/, show(plan))
    assert.match(out, /✗ still-fawn +not converged: blocked/, show(plan))
    return { l, vmid: vm.vmid, out }
  }

  it("its boot disk detached (PVE keeps the volume as unused0): blocked, naming the volume and how to attach it again; attached again, converged", async () => {
    const { l, vmid, out } = await edited({ delete: "scsi0" })
    assert.include(
      out,
      `VM ${vmid} k3s-vm-still-fawn has no disk attached: scsi0 was detached (its volume local-lvm:vm-${vmid}-disk-0 is unused0), so the VM cannot boot again [vm.no-boot-disk]`
    )
    assert.include(
      out,
      `fix: attach it again: \`qm set ${vmid} --scsi0 local-lvm:vm-${vmid}-disk-0\` on still-fawn, then restart the VM`
    )
    await pveRequest(l.sim, "PUT", `/nodes/still-fawn/qemu/${vmid}/config`, { scsi0: `local-lvm:vm-${vmid}-disk-0` })
    const again = await l.homelab("plan", "--detailed-exitcode")
    assert.strictEqual(again.code, ExitCode.Ok, show(again))
  })

  it("its boot order set to the network only: blocked, as the VM would not boot from its disk once restarted", async () => {
    const { vmid, out } = await edited({ boot: "order=net0" })
    assert.include(
      out,
      `VM ${vmid} k3s-vm-still-fawn would not boot from its disk: its boot order (order=net0, held by PVE until the VM restarts) lists none of its disks [vm.boot-order]`
    )
    assert.include(out, `fix: \`qm set ${vmid} --boot order=scsi0\` on still-fawn`)
  })

  it("its cloud-init drive removed: blocked, as homelab.yaml's cloud-init settings would never reach the guest; added again, converged", async () => {
    const { l, vmid, out } = await edited({ delete: "ide2" })
    assert.include(
      out,
      `VM ${vmid} k3s-vm-still-fawn has no cloud-init drive: the cloud-init settings of homelab.yaml (user, SSH keys, ipconfig0, …) never reach its guest [vm.no-cloudinit-drive]`
    )
    assert.include(
      out,
      `fix: add it again: \`qm set ${vmid} --ide2 local-lvm:cloudinit\` on still-fawn, then restart the VM from PVE`
    )
    await pveRequest(l.sim, "PUT", `/nodes/still-fawn/qemu/${vmid}/config`, { ide2: "local-lvm:cloudinit" })
    const again = await l.homelab("plan", "--detailed-exitcode")
    assert.strictEqual(again.code, ExitCode.Ok, show(again))
  })
})

describe("homelab apply after a NIC of a VM it created was disconnected by hand (link_down=1, the GUI's Disconnect)", () => {
  it("plans to bring the link up, on its bridge with its MAC kept, and does so in place: converged again", async () => {
    const l = await startLab(["pve", "still-fawn"], { imagePresent: true })
    const first = await l.homelab("apply", "--yes")
    assert.strictEqual(first.code, ExitCode.Ok, show(first))
    const vm = vmsOf(l.sim).find((v) => v.name === "k3s-vm-still-fawn")
    assert.ok(vm !== undefined)
    const net0 = vm.config.net0 as string
    await pveRequest(l.sim, "PUT", `/nodes/still-fawn/qemu/${vm.vmid}/config`, { net0: `${net0},link_down=1` })

    const plan = await l.homelab("plan", "--detailed-exitcode")
    assert.strictEqual(plan.code, ExitCode.Changes, show(plan))
    const out = plain(plan.stdout)
    assert.include(out, "net0 vmbr0, link down → link up (applied now)", show(plan))
    assert.match(out, /✓ pve +converged/, show(plan))

    const apply = await l.homelab("apply", "--yes")
    assert.strictEqual(apply.code, ExitCode.Ok, show(apply))
    const after = vmsOf(l.sim).find((v) => v.vmid === vm.vmid)
    assert.strictEqual(after?.config.net0, net0, "the same NIC, its link up")
    assert.strictEqual(after?.status, "running", "not restarted")
    const again = await l.homelab("plan", "--detailed-exitcode")
    assert.strictEqual(again.code, ExitCode.Ok, show(again))
  })
})

describe("homelab apply after k3s was uninstalled by hand on a server (k3s-uninstall.sh)", () => {
  it("its join fails on the etcd member k3s-uninstall.sh leaves behind, saying how to remove it; done so, the next apply joins it again", async () => {
    const l = await converged()
    const ip = `${l.subnet}.13`
    const removed = await onGuest(l.sim, ip, "sudo /usr/local/bin/k3s-uninstall.sh")
    assert.strictEqual(removed.code, 0, removed.stderr)
    l.elapse(60_000)

    const apply = await l.homelab(["apply", "--yes"])
    assert.strictEqual(apply.code, ExitCode.Join, show(apply))
    const out = plain(apply.stdout)
    assert.include(out, "duplicate node name found", show(apply))
    assert.include(
      out,
      "fix: etcd still has a member named after k3s-vm-chief-horse from an earlier VM or an earlier k3s on it (k3s-uninstall.sh deletes its data, not its member): delete its Node on a Ready server (`sudo k3s kubectl delete node k3s-vm-chief-horse`, which removes the member)",
      show(apply)
    )
    for (const other of ["pve", "still-fawn", "fun-goal", "wise-owl"])
      assert.match(out, new RegExp(`✓ ${other} +converged`), show(apply))

    // the fix it names, then apply: a new member, a Ready server again
    const deleted = await onGuest(l.sim, `${l.subnet}.11`, "sudo k3s kubectl delete node k3s-vm-chief-horse")
    assert.strictEqual(deleted.code, 0, deleted.stderr)
    // k3s there, restarted by systemd every 5 s, joins as a new member once the old one is gone
    await until(
      () => nodes(l.sim).some((n) => n.startsWith("chief-horse server")),
      "k3s-vm-chief-horse registered again"
    )
    const again = await l.homelab(["apply", "--yes"])
    assert.strictEqual(again.code, ExitCode.Ok, show(again))
    assert.include(nodes(l.sim), `chief-horse server True ${v130}`)
  })
})

/**
 * The converged cluster with k3s uninstalled by hand on chief-horse (a server): its etcd member stays, so the next
 * apply's rejoin fails (exit Join) on the duplicate member, and its k3s then restarts every 5 s until that member goes.
 */
const uninstalledServer = async () => {
  const l = await converged()
  const ip = `${l.subnet}.13`
  const vmid = vmidOf(l.sim, "chief-horse")
  const removed = await onGuest(l.sim, ip, "sudo /usr/local/bin/k3s-uninstall.sh")
  assert.strictEqual(removed.code, 0, removed.stderr)
  l.elapse(60_000)
  const failed = await l.homelab(["apply", "--yes"])
  assert.strictEqual(failed.code, ExitCode.Join, show(failed))
  return { l, ip, vmid }
}

describe("homelab plan while a server uninstalled by hand rejoins by itself (its etcd member a learner, no Node yet)", () => {
  it("says it is joining and to run again once its Node is Ready: no stale member, no etcdctl; apply removes nothing; then converged", async () => {
    const { l, ip, vmid } = await uninstalledServer()

    // its member stays a learner (not caught up yet) until the test lets it go: the seconds before its Node registers
    await l.sim.addFaults([{ kind: "k3sLearnerSlow", vmid }])
    const learner = whenRecord(l.sim, (r) =>
      r._tag === "Operation" && r.operation.operation === "etcd-promotion" && r.operation.vmid === vmid
        ? r.operation
        : undefined
    )
    const deleted = await onGuest(l.sim, `${l.subnet}.11`, "sudo k3s kubectl delete node k3s-vm-chief-horse")
    assert.strictEqual(deleted.code, 0, deleted.stderr)
    await learner
    const joining = l.sim.state().k3s.etcdMembers.filter((m) => String(m.name).startsWith("k3s-vm-chief-horse-"))
    assert.deepStrictEqual(
      joining.map((m) => [m.isLearner, m.peerURL]),
      [[true, `https://${ip}:2380`]]
    )
    assert.notInclude(nodes(l.sim).join("\n"), "chief-horse", "no Node yet")

    const plan = await l.homelab(["plan"])
    assert.strictEqual(plan.code, ExitCode.Ok, show(plan))
    const out = plain(plan.stdout)
    assert.include(out, "k3s-vm-chief-horse is joining etcd right now: k3s-vm-chief-horse-", show(plan))
    assert.include(out, "run homelab again once k3s-vm-chief-horse's Node is Ready", show(plan))
    assert.notInclude(out, "k3s.stale-member", show(plan))
    assert.notInclude(out, "member remove", show(plan))
    assert.notInclude(out, "join k3s", show(plan))

    // apply meanwhile: nothing is joined, removed or deleted, and it says the same
    const since = l.sim.k3sEvents().length
    const apply = await l.homelab(["apply", "--yes"])
    assert.notInclude(plain(apply.stdout), "member remove", show(apply))
    assert.include(plain(apply.stdout), "k3s-vm-chief-horse is joining etcd right now", show(apply))
    assert.deepStrictEqual(
      l.sim
        .k3sEvents()
        .slice(since)
        .map((e) => e.kind),
      [],
      "nothing done to k3s"
    )
    assert.deepStrictEqual(
      l.sim
        .state()
        .k3s.etcdMembers.filter((m) => String(m.name).startsWith("k3s-vm-chief-horse-"))
        .map((m) => m.name),
      joining.map((m) => m.name),
      "its member stays"
    )

    // caught up: promoted, its Node registers, and the lab is converged
    await l.sim.clearFaults({ kind: "k3sLearnerSlow" })
    await until(() => nodes(l.sim).some((n) => n.startsWith("chief-horse server True")), "k3s-vm-chief-horse Ready")
    const again = await l.homelab(["plan", "--detailed-exitcode"])
    assert.strictEqual(again.code, ExitCode.Ok, show(again))
  })
})

describe("homelab plan while a server uninstalled by hand rejoins by itself (its member promoted, its Node not registered yet)", () => {
  it("its journal shows the member its k3s added: joining, not stale, no etcdctl; then converged", async () => {
    const { l, ip, vmid } = await uninstalledServer()

    // its k3s start, once its member is promoted, waits (activating) before its Node registers, until the test lets it go
    await l.sim.addFaults([{ kind: "k3sHold", vmid }])
    const deleted = await onGuest(l.sim, `${l.subnet}.11`, "sudo k3s kubectl delete node k3s-vm-chief-horse")
    assert.strictEqual(deleted.code, 0, deleted.stderr)
    const own = () => l.sim.state().k3s.etcdMembers.filter((m) => String(m.name).startsWith("k3s-vm-chief-horse-"))
    await until(() => own().some((m) => !m.isLearner), "its new member promoted")
    assert.deepStrictEqual(
      own().map((m) => [m.isLearner, m.peerURL]),
      [[false, `https://${ip}:2380`]]
    )
    assert.notInclude(nodes(l.sim).join("\n"), "chief-horse", "no Node yet")

    const plan = await l.homelab(["plan"])
    assert.strictEqual(plan.code, ExitCode.Ok, show(plan))
    const out = plain(plan.stdout)
    assert.include(
      out,
      `k3s-vm-chief-horse is joining etcd right now: its k3s added the member ${own()[0]?.name}`,
      show(plan)
    )
    assert.include(out, "run homelab again once k3s-vm-chief-horse's Node is Ready", show(plan))
    assert.notInclude(out, "k3s.stale-member", show(plan))
    assert.notInclude(out, "member remove", show(plan))

    await l.sim.clearFaults({ kind: "k3sHold" })
    await until(() => nodes(l.sim).some((n) => n.startsWith("chief-horse server True")), "k3s-vm-chief-horse Ready")
    const again = await l.homelab(["plan", "--detailed-exitcode"])
    assert.strictEqual(again.code, ExitCode.Ok, show(again))
  })
})

describe("homelab plan after the guest agent of a VM it created was turned off by hand (agent: 0)", () => {
  it("notes it, pending and then in effect, naming the VM, what it costs and the fix; nothing changed", async () => {
    const l = await startLab(["pve", "still-fawn"], { imagePresent: true })
    const first = await l.homelab("apply", "--yes")
    assert.strictEqual(first.code, ExitCode.Ok, show(first))
    const vm = vmsOf(l.sim).find((v) => v.name === "k3s-vm-still-fawn")
    assert.ok(vm !== undefined)
    await pveRequest(l.sim, "PUT", `/nodes/still-fawn/qemu/${vm.vmid}/config`, { agent: "0" })

    const pending = await l.homelab("plan", "--detailed-exitcode")
    assert.strictEqual(pending.code, ExitCode.Ok, show(pending))
    assert.include(
      plain(pending.stdout),
      `VM ${vm.vmid} k3s-vm-still-fawn turns its guest agent off at its next restart (agent: 0, held by PVE until then): homelab reads its IP from the guest agent`,
      show(pending)
    )
    assert.include(plain(pending.stdout), `\`qm set ${vm.vmid} --revert agent\` on still-fawn`, show(pending))

    await pveRequest(l.sim, "POST", `/nodes/still-fawn/qemu/${vm.vmid}/status/reboot`)
    await whenState(() => {
      const now = vmsOf(l.sim).find((v) => v.vmid === vm.vmid)
      return now?.status === "running" && now.config.agent === "0"
    })
    const off = await l.homelab("plan", "--detailed-exitcode")
    assert.strictEqual(off.code, ExitCode.Ok, show(off))
    assert.include(
      plain(off.stdout),
      `VM ${vm.vmid} k3s-vm-still-fawn runs with its guest agent off (agent: 0): homelab reads its IP from the guest agent (\`homelab status\` shows none, and a k3s join needs it) [vm.agent-off]`,
      show(off)
    )
    assert.include(plain(off.stdout), `\`qm set ${vm.vmid} --agent enabled=1\` on still-fawn, then restart the VM`)
  })
})

describe("homelab plan after the image storage was disabled by hand (`pvesm set local --disable 1`)", () => {
  it("is blocked naming the storage and how to enable it, instead of planning a download PVE refuses; enabled again, converged", async () => {
    const l = await startLab(["pve", "still-fawn"], { imagePresent: true })
    const first = await l.homelab("apply", "--yes")
    assert.strictEqual(first.code, ExitCode.Ok, show(first))
    l.sim.setStorageEnabled("local", false)

    const plan = await l.homelab("plan", "--detailed-exitcode")
    assert.strictEqual(plan.code, ExitCode.Error, show(plan))
    const out = plain(plan.stdout)
    for (const node of ["pve", "still-fawn"]) {
      assert.include(
        out,
        `storage 'local' (for the image) is not available on node ${node}: PVE lists no such storage there (disabled, removed, or not visible to the API token), so the image cannot be looked for or downloaded [storage.missing]`,
        show(plan)
      )
      assert.include(out, `\`pvesm set local --disable 0\``, show(plan))
    }
    assert.notInclude(out, "download noble", show(plan))
    const before = mutating(l.sim).length
    const apply = await l.homelab("apply", "--yes")
    assert.strictEqual(apply.code, ExitCode.NotConverged, show(apply))
    assert.lengthOf(mutating(l.sim).slice(before), 0, "nothing sent: no download PVE would refuse")

    l.sim.setStorageEnabled("local", true)
    const again = await l.homelab("plan", "--detailed-exitcode")
    assert.strictEqual(again.code, ExitCode.Ok, show(again))
  })
})

describe("homelab plan after the storage of its VMs' disks was disabled by hand (`pvesm set local-lvm --disable 1`)", () => {
  it("is blocked for each VM on it, which runs but would not start again, naming the storage and how to enable it; enabled again, converged", async () => {
    const l = await startLab(["pve", "still-fawn"], { imagePresent: true })
    const first = await l.homelab("apply", "--yes")
    assert.strictEqual(first.code, ExitCode.Ok, show(first))
    l.sim.setStorageEnabled("local-lvm", false)

    const plan = await l.homelab("plan", "--detailed-exitcode")
    assert.strictEqual(plan.code, ExitCode.Error, show(plan))
    const out = plain(plan.stdout)
    for (const vm of vmsOf(l.sim)) {
      assert.include(
        out,
        `VM ${vm.vmid} ${vm.name} has ide2, scsi0 on storage 'local-lvm', which PVE does not list (disabled, removed, or not visible to the API token) on node ${vm.node}: the VM runs, but would not start again [vm.storage-unavailable]`,
        show(plan)
      )
      assert.match(out, new RegExp(`✗ ${vm.node} +not converged: blocked`), show(plan))
    }
    assert.include(out, "`pvesm set local-lvm --disable 0`", show(plan))
    const before = mutating(l.sim).length
    const apply = await l.homelab("apply", "--yes")
    assert.strictEqual(apply.code, ExitCode.NotConverged, show(apply))
    assert.lengthOf(mutating(l.sim).slice(before), 0, "nothing changed")

    l.sim.setStorageEnabled("local-lvm", true)
    const again = await l.homelab("plan", "--detailed-exitcode")
    assert.strictEqual(again.code, ExitCode.Ok, show(again))
  })
})
