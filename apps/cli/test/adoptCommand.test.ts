import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, assert, describe, it } from "@effect/vitest"
import { labScenario, type Scenario, type SimHandle, startSimPromise } from "@homelab/sim"
import { ExitCode } from "../src/ExitCode.js"
import { homeWithKeys, runHomelab } from "./helpers.js"
import { loopbackNet, mutating, startLab, stopLabs, vmsOf } from "./simLab.js"

const started: Array<SimHandle> = []
afterEach(async () => {
  for (const sim of started.splice(0)) await sim.stop()
  await stopLabs()
})

/** The seed tool's example .env (its variable names, as its README documents them). */
const seedEnv = fs.readFileSync(
  new URL("../../../packages/reconcile-core/test/config/fixtures/seed-tool-example.env", import.meta.url),
  "utf8"
)

const snippet = "local:snippets/install-k3sup-qemu-agent.yaml"

/**
 * The lab the seed tool leaves behind with that .env, simulated: three nodes (bridges per NETWORK_IFACES_n, VM disks
 * on IMG_STORAGE_n, the image as an ISO on STORAGE_n, its user-data snippet there too), one VM per node named from
 * VM_NAME_TEMPLATE, without any tag of ours, sized from the node × CPU_RATIO_n / MEMORY_RATIO_n, a cloud-init drive
 * with CLOUD_USER, the key, CLOUD_IP_CONFIG, the snippet and a password; each a k3s server of the cluster whose first
 * server is K3S_EXISTING_NODE_IP. still-fawn's disk is 100G: it was made before VM_DISK_SIZE became 200G.
 */
const seedLab = (net: string, publicKey: string): Scenario => {
  const base = labScenario(["pve", "still-fawn", "chief-horse"], {
    cpus: 8,
    memory: "32G",
    imageSize: "2M",
    ipPool: `${net}.100`,
    guestSshPort: 2222,
    timeScale: 0.02,
    k3s: { version: "v1.30.5+k3s1", joinDelayMs: 2000, readyDelayMs: 3000 }
  })
  const seed = {
    pve: { vmid: 100, disks: "local-zfs", bridges: ["vmbr0", "vmbr1"], cores: 4, memory: 16384, disk: "200G" },
    "still-fawn": { vmid: 101, disks: "local-lvm", bridges: ["vmbr0"], cores: 6, memory: 26112, disk: "100G" },
    "chief-horse": { vmid: 102, disks: "local-lvm", bridges: ["vmbr0", "vmbr1"], cores: 6, memory: 19456, disk: "200G" }
  } as const
  return {
    ...base,
    authorizedKeys: [publicKey],
    nodes: base.nodes.map((n) => ({
      ...n,
      bridges: [
        { name: "vmbr0", active: true },
        { name: "vmbr1", active: true }
      ],
      storages: [
        {
          id: "local",
          type: "dir" as const,
          content: ["iso", "vztmpl", "backup", "import", "snippets"] as Array<"iso">,
          capacity: "200G",
          files: [
            { volid: "local:iso/noble-server-cloudimg-amd64.img", size: "2M" },
            { volid: snippet, size: "1K" }
          ]
        },
        n.name === "pve"
          ? {
              id: "local-zfs",
              type: "zfspool" as const,
              content: ["images", "rootdir"] as Array<"images">,
              capacity: "1T"
            }
          : {
              id: "local-lvm",
              type: "lvmthin" as const,
              content: ["images", "rootdir"] as Array<"images">,
              capacity: "1T"
            }
      ]
    })),
    vms: [
      {
        vmid: 200,
        node: "pve",
        name: "k3s-existing",
        status: "running",
        uptime: 86_400,
        ip: `${net}.5`,
        config: { cores: 2, memory: "4096", agent: "1", net0: "virtio=BC:24:11:2A:00:C8,bridge=vmbr0" },
        guest: { hostname: "k3s-existing", user: "ubuntu", k3s: { role: "server", clusterInit: true } }
      },
      ...Object.entries(seed).map(([node, s], i) => ({
        vmid: s.vmid,
        node,
        name: `k3s-vm-${node}`,
        status: "running" as const,
        uptime: 86_400,
        ...(node === "chief-horse" ? { tags: "k3s" } : {}),
        ip: `${net}.${11 + i}`,
        config: {
          cores: s.cores,
          memory: String(s.memory),
          cpu: "host",
          agent: "1",
          scsihw: "virtio-scsi-pci",
          scsi0: `${s.disks}:vm-${s.vmid}-disk-0,size=${s.disk}`,
          ide2: `${s.disks}:vm-${s.vmid}-cloudinit,media=cdrom`,
          ...Object.fromEntries(
            s.bridges.map((b, j) => [`net${j}`, `virtio=BC:24:11:5E:0${i}:0${j},bridge=${b}`] as const)
          ),
          ciuser: "ubuntu",
          cipassword: "$5$seed$0123456789abcdef",
          sshkeys: encodeURIComponent(publicKey.trim()),
          ipconfig0: "ip=dhcp",
          cicustom: `user=${snippet}`
        },
        // joined by the seed tool with its k3s flags (what import-env writes into k3s.serverFlags)
        guest: {
          hostname: `k3s-vm-${node}`,
          user: "ubuntu",
          k3s: { role: "server" as const, flags: ["--write-kubeconfig-mode", "644", "--disable=traefik"] }
        }
      }))
    ]
  }
}

/** The seed tool's VMs, by VMID. */
const seedVmids = [100, 101, 102]

describe("homelab adopt: the seed tool's lab taken over, not rebuilt", () => {
  it("the example .env → import-env → config check → plan points at adopt; apply touches none of the VMs; adopt --all --yes; the next plan changes in place only; apply converges", async () => {
    const net = loopbackNet()
    // HOME as the seed tool's user has it: ~/.ssh/id_rsa(.pub), which the .env names (SSH_KEY_PATH, SSH_PUBKEY_PATH);
    // the nodes and the VMs accept that key.
    const home = homeWithKeys({ names: ["id_rsa"] })
    const publicKey = fs.readFileSync(path.join(home, ".ssh", "id_rsa.pub"), "utf8").trim()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "homelab-seed-"))
    const sim = (await startSimPromise(seedLab(net, publicKey))) as SimHandle
    started.push(sim)
    fs.writeFileSync(path.join(dir, ".env"), seedEnv)
    const config = path.join(dir, "homelab.yaml")
    const env = {
      HOME: home,
      PROXMOX_TOKEN_SECRET: sim.info.auth.tokenSecret,
      CLOUD_PASSWORD: "changeme#1",
      CI: "true",
      NO_COLOR: "1"
    }
    const homelab = (...args: Array<string>) =>
      runHomelab(["--config", config, ...args], { env, cwd: dir, timeout: 120_000 })
    const show = (r: { code: number | null; stdout: string; stderr: string }) =>
      `exit ${r.code}\n${r.stdout}\n${r.stderr}`

    const imported = await runHomelab(["config", "import-env", ".env"], { env, cwd: dir })
    assert.strictEqual(imported.code, ExitCode.Ok, show(imported))
    fs.writeFileSync(config, imported.stdout)
    const check = await homelab("config", "check")
    assert.strictEqual(check.code, ExitCode.Ok, show(check))

    // The addresses the seed tool used (<node>.maas, the k3s server's LAN IP) are the simulator's here.
    const byName = new Map(sim.info.nodes.map((n) => [n.name, n]))
    let yaml = imported.stdout
      .replace(/endpoint: https:\/\/pve\.maas:8006/, `endpoint: ${byName.get("pve")?.api}`)
      .replace(/tokenId: \S+/, `tokenId: "${sim.info.auth.tokenId}"`)
      .replace(/url: https:\/\/cloud-images\S+/, `url: ${sim.info.imageOrigin?.files[0]?.url}`)
      .replace("host: 192.168.4.212", `host: ${net}.5\n    port: 2222`)
      .replace("vm:\n", "vm:\n  sshPort: 2222\n")
    for (const [name, n] of byName) {
      yaml = yaml
        .replace(`api: https://${name}.maas:8006`, `api: ${n.api}`)
        .replace(`address: ${name}  #`, `address: ${n.ssh.host}\n    sshPort: ${n.ssh.port}  #`)
    }
    fs.writeFileSync(config, yaml)
    const checked = await homelab("config", "check")
    assert.strictEqual(checked.code, ExitCode.Ok, show(checked))

    const before = vmsOf(sim)
    const plan = await homelab("plan")
    assert.strictEqual(plan.code, ExitCode.Error, show(plan))
    for (const [i, node] of ["pve", "still-fawn", "chief-horse"].entries()) {
      assert.include(
        plan.stdout,
        `VM ${seedVmids[i]} is named k3s-vm-${node} but lacks the tag 'homelab-managed': not ours, not touched`
      )
      assert.include(plan.stdout, `\`homelab adopt k3s-vm-${node}\``)
    }
    assert.notMatch(plan.stdout, /create VM|recreate/)

    sim.clearRequests()
    const apply = await homelab("apply", "--yes")
    assert.strictEqual(apply.code, ExitCode.NotConverged, show(apply))
    const onSeedVms = () =>
      mutating(sim).filter(
        (r) =>
          /\/qemu(\/|$)/.test(r.path ?? "") ||
          (r.transport === "ssh" && seedVmids.some((id) => (r.command ?? "").includes(String(id))))
      )
    assert.deepStrictEqual(onSeedVms(), [], "no request changed a VM, and none was created")
    assert.deepStrictEqual(
      vmsOf(sim).map((v) => [v.vmid, v.name, v.tags]),
      before.map((v) => [v.vmid, v.name, v.tags])
    )

    const unconfirmed = await homelab("adopt", "--all")
    assert.strictEqual(unconfirmed.code, ExitCode.NeedsConfirmation, show(unconfirmed))
    assert.include(unconfirmed.stderr, "re-run with --yes")
    assert.include(unconfirmed.stdout, "VM 100 k3s-vm-pve (running; tags: none; role in homelab.yaml: server)")
    // the seed tool set a password homelab cannot read back: apply marks it as vm.password, without changing it
    assert.include(unconfirmed.stdout, "update VM 100 k3s-vm-pve on pve in place (cloud-init password mark)")
    assert.include(unconfirmed.stdout, "~ k3s-vm-pve  cloud-init password mark none → set (applied now)")
    assert.include(unconfirmed.stdout, "[vm.password-unmarked]")
    assert.include(
      unconfirmed.stdout,
      "update VM 101 k3s-vm-still-fawn on still-fawn in place (scsi0, cloud-init password mark)"
    )
    assert.include(unconfirmed.stdout, "~ k3s-vm-still-fawn  scsi0 100G → 200G (grown online)")
    assert.include(unconfirmed.stdout, "VM 102 k3s-vm-chief-horse (running; tags: k3s; role in homelab.yaml: server)")
    assert.deepStrictEqual(onSeedVms(), [])

    const adopted = await homelab("adopt", "--all", "--yes")
    assert.strictEqual(adopted.code, ExitCode.Ok, show(adopted))
    assert.deepStrictEqual(
      vmsOf(sim)
        .filter((v) => seedVmids.includes(v.vmid))
        .map((v) => [v.vmid, v.tags]),
      [
        [100, "homelab-managed"],
        [101, "homelab-managed"],
        [102, "homelab-managed;k3s"]
      ]
    )
    // One config write per VM: the tag, with the digest it was read with.
    assert.deepStrictEqual(
      onSeedVms().map((r) => [r.method, r.path, Object.keys(r.params ?? {}).sort()]),
      seedVmids.map((id, i) => [
        "PUT",
        `/nodes/${["pve", "still-fawn", "chief-horse"][i]}/qemu/${id}/config`,
        ["digest", "tags"]
      ])
    )

    const next = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(next.code, ExitCode.Changes, show(next))
    assert.include(
      next.stdout,
      "update VM 101 k3s-vm-still-fawn on still-fawn in place (scsi0, cloud-init password mark)"
    )
    assert.notMatch(next.stdout, /create VM|recreate|destroy|join /)
    assert.notInclude(next.stdout, "vm.unowned")

    const converge = await homelab("apply")
    assert.strictEqual(converge.code, ExitCode.Ok, show(converge))
    assert.include(converge.stdout, "Converged: pve, still-fawn, chief-horse.")
    const after = vmsOf(sim).filter((v) => seedVmids.includes(v.vmid))
    assert.deepStrictEqual(
      after.map((v) => [v.vmid, v.name, v.status]),
      seedVmids.map((id, i) => [id, `k3s-vm-${["pve", "still-fawn", "chief-horse"][i]}`, "running"])
    )
    assert.match(after[1]?.config.scsi0 ?? "", /size=200G/)
    assert.strictEqual(vmsOf(sim).length, 4, "nothing duplicated")
    const clean = await homelab("plan", "--detailed-exitcode")
    assert.strictEqual(clean.code, ExitCode.Ok, show(clean))
    assert.include(clean.stdout, "No changes")
  }, 180_000)
})

describe("homelab adopt: what it refuses", () => {
  it("a VM on another node is refused naming both nodes; a protected VM is adopted only when named; usage errors; --json", async () => {
    const lab = await startLab(["pve", "still-fawn"], {
      imagePresent: true,
      scenario: {
        vms: [
          {
            vmid: 501,
            node: "pve",
            name: "k3s-vm-pve",
            status: "running",
            uptime: 86_400,
            protection: true,
            config: {
              cores: 4,
              memory: "16384",
              cpu: "host",
              agent: "1",
              net0: "virtio=BC:24:11:00:05:01,bridge=vmbr0"
            }
          },
          {
            vmid: 502,
            node: "pve",
            name: "k3s-vm-still-fawn",
            status: "running",
            uptime: 86_400,
            config: {
              cores: 4,
              memory: "16384",
              cpu: "host",
              agent: "1",
              net0: "virtio=BC:24:11:00:05:02,bridge=vmbr0"
            }
          }
        ]
      }
    })
    const { homelab, sim } = lab
    const show = (r: { code: number | null; stdout: string; stderr: string }) =>
      `exit ${r.code}\n${r.stdout}\n${r.stderr}`

    const all = await homelab("adopt", "--all", "--yes")
    assert.strictEqual(all.code, ExitCode.Error, show(all))
    assert.include(
      all.stdout,
      "VM 502 k3s-vm-still-fawn is on node pve, but homelab.yaml asks for it on still-fawn: not adopted [adopt.wrong-node]"
    )
    assert.include(all.stdout, "VM 501 k3s-vm-pve is protected: not adopted with --all [adopt.protected]")
    assert.include(all.stdout, "name it to adopt it on purpose: `homelab adopt k3s-vm-pve`")
    assert.include(all.stderr, "2 VM(s) not adopted")

    const wrong = await homelab("adopt", "k3s-vm-still-fawn", "--yes")
    assert.strictEqual(wrong.code, ExitCode.Error, show(wrong))
    assert.deepStrictEqual(mutating(sim), [], "nothing was changed")

    const usage = await homelab("adopt", "k3s-vm-nope")
    assert.strictEqual(usage.code, ExitCode.Usage, show(usage))
    assert.include(usage.stderr, "not a VM of")
    assert.include(usage.stderr, "k3s-vm-pve, k3s-vm-still-fawn")
    assert.notInclude(usage.stderr, "did you mean")
    const typo = await homelab("adopt", "k3s-vm-pve", "k3s-vm-stil-fawn")
    assert.strictEqual(typo.code, ExitCode.Usage, show(typo))
    assert.include(typo.stderr, "did you mean `homelab adopt k3s-vm-pve k3s-vm-still-fawn`?")
    assert.strictEqual((await homelab("adopt")).code, ExitCode.Usage)
    assert.strictEqual((await homelab("adopt", "--all", "k3s-vm-pve")).code, ExitCode.Usage)

    const named = await homelab("adopt", "k3s-vm-pve", "--yes", "--json")
    assert.strictEqual(named.code, ExitCode.Ok, show(named))
    const doc = JSON.parse(named.stdout)
    assert.deepStrictEqual(
      doc.adoptions.map((a: { name: string; vmid: number; protected: boolean }) => [a.name, a.vmid, a.protected]),
      [["k3s-vm-pve", 501, true]]
    )
    assert.deepStrictEqual(
      doc.outcomes.map((o: { name: string; status: string }) => [o.name, o.status]),
      [["k3s-vm-pve", "adopted"]]
    )
    assert.strictEqual(vmsOf(sim).find((v) => v.vmid === 501)?.tags, "homelab-managed")
    assert.strictEqual(vmsOf(sim).find((v) => v.vmid === 502)?.tags, "")

    const again = await homelab("adopt", "k3s-vm-pve")
    assert.strictEqual(again.code, ExitCode.Ok, show(again))
    assert.include(again.stdout, "Already ours: VM 501 k3s-vm-pve on pve.")
  }, 120_000)
})
