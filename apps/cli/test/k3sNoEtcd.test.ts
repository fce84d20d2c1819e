import * as fs from "node:fs"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { ExitCode } from "../src/ExitCode.js"
import { startLab, stopLabs } from "./simLab.js"

afterAll(stopLabs)

describe.concurrent("k3s.server on SQLite (installed the default way, without --cluster-init)", () => {
  it("plan blocks the server VM's join with k3s.no-etcd naming the way out, exits 1; apply joins the agent and leaves the server VM not converged (exit 7)", async () => {
    const lab = await startLab(["n1", "n2"], { k3s: true, k3sDatastore: "sqlite", imagePresent: true })
    // n1's VM is a server (n2's an agent, the default)
    const config = fs.readFileSync(lab.config, "utf8")
    const sshPortLine = /^ {4}sshPort: \d+$/m.exec(config)?.[0] as string
    fs.writeFileSync(lab.config, config.replace(sshPortLine, `${sshPortLine}\n    vms: [{ role: server }]`))

    const plan = await lab.homelab("plan")
    assert.strictEqual(plan.code, ExitCode.Error, plan.stdout + plan.stderr)
    assert.include(plan.stdout, "[k3s.no-etcd]")
    assert.include(
      plan.stdout,
      `k3s-vm-n1 cannot join k3s as a server: k3s-server (${lab.serverIp}), the cluster's server, runs k3s on SQLite`
    )
    assert.include(plan.stdout, "echo 'cluster-init: true' | sudo tee -a /etc/rancher/k3s/config.yaml")
    assert.match(plan.stderr, /1 node\(s\) cannot converge without you: n1 \(/)
    // no etcd, so no word about an even number of etcd servers
    assert.notInclude(plan.stdout, "[k3s.even-servers]")
    const detailed = await lab.homelab("plan", "--detailed-exitcode")
    assert.strictEqual(detailed.code, ExitCode.Error, detailed.stdout + detailed.stderr)

    const apply = await lab.homelab("apply", "--yes")
    // every VM is in place, only k3s work is left: as for a failed join
    assert.strictEqual(apply.code, ExitCode.Join, apply.stdout + apply.stderr)
    assert.include(apply.stderr, "1 of 2 node(s) did not converge: n1 (k3s-vm-n1 cannot join k3s as a server")
    assert.match(apply.stdout, /✗ n1 +not converged:/)
    assert.deepStrictEqual(
      lab.sim
        .state()
        .k3s.nodes.map((n) => `${n.name} ${n.role}`)
        .sort(),
      ["k3s-server server", "k3s-vm-n2 agent"]
    )
  })
})
