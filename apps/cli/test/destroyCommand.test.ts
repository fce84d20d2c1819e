import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { labScenario, reserveLoopbackNet, type SimHandle, startSimPromise } from "@homelab/sim"
import { simConfigYaml } from "../src/commands/demoRun.js"
import { ExitCode } from "../src/ExitCode.js"
import { runHomelab } from "./helpers.js"
import { lab as k3sLab, plain, runningCluster, show, stopLabs } from "./k3sLab.js"

const running: Array<{ stop: () => Promise<void> }> = []
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop()
  await stopLabs()
})

/** pve (empty) and still-fawn, which runs a protected VM of ours (k3s-vm-still-fawn) and a NAS that is not ours. */
const lab = async (options: { readonly protect?: boolean } = {}) => {
  const sim = (await startSimPromise(
    labScenario(["pve", "still-fawn"], {
      memory: "32G",
      imageSize: "2M",
      ipPool: "127.81.0.10",
      timeScale: 0.02,
      vms: [
        {
          vmid: 1103,
          node: "still-fawn",
          name: "k3s-vm-still-fawn",
          status: "running",
          tags: "homelab-managed",
          uptime: 86_400,
          // as homelab.yaml asks for it (no drift)
          config: {
            cores: 4,
            memory: "16384",
            cpu: "host",
            agent: "1",
            net0: "virtio=BC:24:11:00:03:01,bridge=vmbr0",
            scsi0: "local-lvm:vm-1103-disk-0,size=64G",
            ...(options.protect === false ? {} : { protection: "1" })
          }
        },
        { vmid: 300, node: "still-fawn", name: "nas", status: "running", tags: "storage", uptime: 86_400 }
      ]
    })
  )) as unknown as SimHandle & { stop: () => Promise<void> }
  running.push(sim)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "homelab-cli-destroy-"))
  const config = path.join(dir, "homelab.yaml")
  fs.writeFileSync(config, simConfigYaml(sim, dir))
  const env = { PROXMOX_TOKEN_SECRET: sim.info.auth.tokenSecret, CI: "true" }
  const homelab = (...args: Array<string>) => runHomelab(["--config", config, ...args], { env, timeout: 60_000 })
  return { sim, homelab, config }
}

const vmids = (sim: SimHandle) =>
  sim
    .state()
    .vms.map((v) => v.vmid as number)
    .sort((a, b) => a - b)

const images = (sim: SimHandle) =>
  sim
    .state()
    .nodes.flatMap((n) =>
      ((n.storages as Array<{ volumes?: Array<{ volid: string }> }> | undefined) ?? []).flatMap((s) =>
        (s.volumes ?? []).filter((v) => v.volid.includes("import/")).map((v) => `${n.name} ${v.volid}`)
      )
    )

describe("homelab destroy", () => {
  it("plans first with reasons, refuses without a TTY unless --yes (exit 6), then destroys only what is ours and not protected; --images removes the image too", async () => {
    const { homelab, sim } = await lab()
    const applied = await homelab("apply")
    assert.strictEqual(applied.code, ExitCode.Ok, applied.stdout + applied.stderr)
    const created = sim.state().vms.find((v) => v.name === "k3s-vm-pve")?.vmid as number
    assert.deepStrictEqual(
      vmids(sim),
      [300, 1103, created].sort((a, b) => a - b)
    )
    assert.strictEqual(images(sim).length, 2)

    const refused = await homelab("destroy")
    assert.strictEqual(refused.code, ExitCode.NeedsConfirmation, refused.stdout + refused.stderr)
    assert.include(refused.stdout, `destroy VM ${created} k3s-vm-pve on pve`)
    assert.include(refused.stdout, "k3s-vm-pve is ours (homelab.yaml asks for it on pve)")
    assert.include(refused.stdout, "Never touched:")
    assert.include(refused.stdout, "VM 300 nas on still-fawn lacks the tag 'homelab-managed': not ours, not touched")
    assert.include(refused.stdout, "VM 1103 k3s-vm-still-fawn is protected: not destroying it")
    assert.include(refused.stdout, "(not interactive): re-run with --yes")
    assert.deepStrictEqual(
      vmids(sim),
      [300, 1103, created].sort((a, b) => a - b)
    )

    const both = await homelab("destroy", "--images", "--keep-image", "--yes")
    assert.strictEqual(both.code, ExitCode.Usage)
    assert.include(both.stderr, "--keep-image is the default")

    const done = await homelab("destroy", "--yes", "--images")
    assert.strictEqual(done.code, ExitCode.Ok, done.stdout + done.stderr)
    assert.include(done.stdout, "Destroyed 1 of 1 VM(s).")
    assert.deepStrictEqual(vmids(sim), [300, 1103])
    assert.deepStrictEqual(images(sim), [])

    const again = await homelab("destroy", "--yes")
    assert.strictEqual(again.code, ExitCode.Ok, again.stdout + again.stderr)
    // the protected VM of ours stays, and the run says why there is nothing to destroy
    assert.include(again.stdout, "Nothing of ours to destroy but protected VMs, which are never touched.")
    assert.include(again.stdout, "VM 1103 k3s-vm-still-fawn is protected: not destroying it")
  }, 120_000)

  it("a VM that cannot go: exit 5, and what is left names only that node, not the node whose VM is gone", async () => {
    const { homelab, sim } = await lab({ protect: false })
    const applied = await homelab("apply")
    assert.strictEqual(applied.code, ExitCode.Ok, applied.stdout + applied.stderr)
    await sim.addFaults([{ kind: "taskFail", taskType: "qmdestroy", vmid: 1103, exitstatus: "storage error" }])
    const run = await homelab("destroy", "--yes")
    assert.strictEqual(run.code, ExitCode.NotConverged, run.stdout + run.stderr)
    assert.include(run.stdout, "Destroyed 1 of 2 VM(s).")
    const left = run.stdout.slice(run.stdout.indexOf("Left:"))
    assert.include(left, "still-fawn  not converged:")
    assert.notInclude(left, "pve", left)
  }, 120_000)

  it("--only takes a node homelab.yaml no longer lists; a name that is no node at all (a typo), or an empty --only, is a usage error and nothing is destroyed on any node", async () => {
    const { homelab, sim, config } = await lab()
    assert.strictEqual((await homelab("apply", "--yes")).code, ExitCode.Ok)
    const before = vmids(sim)
    assert.include(before, 1103)
    assert.strictEqual(before.length, 3, "k3s-vm-pve created")

    const typo = await homelab("destroy", "--only", "nope", "--dry-run")
    assert.strictEqual(typo.code, ExitCode.Usage, typo.stdout + typo.stderr)
    assert.include(typo.stdout, "--only nope: neither a node of homelab.yaml nor a node of the PVE cluster")
    assert.notInclude(typo.stdout, "did you mean")
    const close = await homelab("destroy", "--only", "stil-fawn", "--dry-run")
    assert.strictEqual(close.code, ExitCode.Usage, close.stdout + close.stderr)
    assert.include(close.stdout, "fix: did you mean still-fawn? check the name: nothing was destroyed, on any node")
    // one right name and one typo: refused as a whole, before anything is torn down
    const mixed = await homelab("destroy", "--only", "pve,nope", "--yes")
    assert.strictEqual(mixed.code, ExitCode.Usage, mixed.stdout + mixed.stderr)
    assert.include(mixed.stderr, "Nothing was destroyed: check the names given to --only.")
    assert.deepStrictEqual(vmids(sim), before)
    // an empty variable in a script (`--only "$NODES"`): never read as "every node" nor as "nothing to do"
    for (const args of [
      ["destroy", "--only", "", "--yes"],
      ["apply", "--only", ","],
      ["plan", "--only", "", "--detailed-exitcode"]
    ]) {
      const empty = await homelab(...args)
      assert.strictEqual(empty.code, ExitCode.Usage, `${args.join(" ")}: ${empty.stdout}${empty.stderr}`)
      assert.include(empty.stderr, "--only names no node (it is empty)")
    }
    assert.deepStrictEqual(vmids(sim), before)

    // a PVE node homelab.yaml no longer lists, where no guest runs: nothing to do there, said so (exit 0)
    const yaml = fs.readFileSync(config, "utf8")
    const without = yaml.replace(/ {2}- name: pve\n(?: {4}.*\n)+/, "")
    assert.notInclude(without, "name: pve\n")
    fs.writeFileSync(config, without)
    const gone = await homelab("destroy", "--only", "pve", "--yes")
    assert.strictEqual(gone.code, ExitCode.Ok, gone.stdout + gone.stderr)
    assert.include(gone.stdout, "Destroyed 1 of 1 VM(s).")
    const empty = await homelab("destroy", "--only", "pve", "--yes")
    assert.strictEqual(empty.code, ExitCode.Ok, empty.stdout + empty.stderr)
    assert.include(empty.stdout, "--only pve: not a node of homelab.yaml, and no guest runs there")
  }, 120_000)
})

describe("homelab destroy of k3s servers", () => {
  it("two servers of three: refused as a whole (the second would lose etcd's quorum), nothing destroyed, exit 5; every server: the plan says the k3s cluster goes with them", async () => {
    const subnet = reserveLoopbackNet().net
    const { sim, homelab } = await k3sLab(runningCluster(subnet), subnet)
    const before = vmids(sim)

    const refused = await homelab(["destroy", "--only", "pve,still-fawn", "--yes"])
    assert.strictEqual(refused.code, ExitCode.NotConverged, show(refused))
    const out = plain(refused.stdout)
    assert.include(out, "Nothing is destroyed this run: see what holds it back below.")
    assert.match(
      out,
      /not destroying k3s server k3s-vm-still-fawn: destroy of k3s-vm-still-fawn would leave 1 of 2 etcd members healthy, quorum needs 2 \(.*\) \(this run: after k3s-vm-pve is destroyed first\) \[k3s\.quorum\]/
    )
    assert.match(
      out,
      /not destroying VM 2001 k3s-vm-pve: k3s server k3s-vm-still-fawn of this teardown cannot go this run \(see its finding\), and a teardown that takes k3s servers out is all or nothing: nothing is destroyed this run \[vm\.destroy-held\]/
    )
    assert.deepStrictEqual(vmids(sim), before)
    assert.strictEqual(sim.state().k3s.etcdMembers.length, 3)

    const all = await homelab(["destroy", "--dry-run"])
    assert.include(
      plain(all.stdout),
      "k3s: the k3s cluster itself is torn down: every server of it (k3s-vm-pve, k3s-vm-still-fawn, k3s-vm-chief-horse) is destroyed, and its etcd datastore with them",
      show(all)
    )
    assert.include(plain(all.stdout), "5 VM(s) to destroy (and the k3s cluster with them).")
    assert.deepStrictEqual(vmids(sim), before)
  }, 120_000)
})
