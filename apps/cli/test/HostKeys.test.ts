import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { generateKeyPair } from "@homelab/ssh/testing"
import { ExitCode } from "../src/ExitCode.js"
import { notConverged, startLab, stopLabs, vmsOf } from "./simLab.js"

// A VM at a fixed address (a static ipconfig0, as most homelabs give their k3s nodes) that is created anew presents
// new SSH host keys there: cloud-init generates them at the instance's first boot. homelab's own VMs must still join
// and rejoin k3s in accept-new mode, where a changed key is otherwise refused.

afterAll(stopLabs)

/** The known_hosts lines for one address. */
const entriesFor = (file: string, address: string): Array<string> =>
  (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "").split("\n").filter((l) => l.startsWith(`${address} `))

describe.concurrent("SSH host keys of VMs homelab creates", () => {
  it("a new VM at an address known_hosts knows from an earlier machine joins; a reprovisioned one rejoins with its new key", async () => {
    const lab = await startLab(["n1"], { k3s: true, imagePresent: true })
    const ip = `${lab.net}.41`
    // n1's VM gets a fixed address
    const config = fs.readFileSync(lab.config, "utf8")
    const sshPortLine = /^ {4}sshPort: \d+$/m.exec(config)?.[0] as string
    fs.writeFileSync(lab.config, config.replace(sshPortLine, `${sshPortLine}\n    vms: [{ ipConfig: "ip=${ip}/24" }]`))
    // a machine that held that address before (a VM destroyed by hand, an earlier lab) left its key in known_hosts
    const knownHosts = path.join(lab.dir, "known_hosts")
    const address = `[${ip}]:2222`
    const earlier = generateKeyPair("ed25519").public.split(" ").slice(0, 2).join(" ")
    fs.appendFileSync(knownHosts, `${address} ${earlier}\n`)

    const first = await lab.homelab("apply", "--yes")
    assert.strictEqual(first.code, ExitCode.Ok, first.stdout + first.stderr)
    assert.strictEqual(vmsOf(lab.sim).find((v) => v.name === "k3s-vm-n1")?.ip, ip)
    assert.isUndefined(notConverged(lab.sim, "n1", true))
    const joinedWith = entriesFor(knownHosts, address)
    assert.strictEqual(joinedWith.length, 1, joinedWith.join("\n"))
    assert.notInclude(joinedWith[0], earlier)

    const rebuild = await lab.homelab("reprovision", "n1", "--yes")
    assert.strictEqual(rebuild.code, ExitCode.Ok, rebuild.stdout + rebuild.stderr)
    assert.strictEqual(vmsOf(lab.sim).find((v) => v.name === "k3s-vm-n1")?.ip, ip)
    assert.isUndefined(notConverged(lab.sim, "n1", true))
    const rejoinedWith = entriesFor(knownHosts, address)
    assert.strictEqual(rejoinedWith.length, 1, rejoinedWith.join("\n"))
    assert.notStrictEqual(rejoinedWith[0], joinedWith[0], "the rebuilt VM presents a new host key")

    const again = await lab.homelab("apply", "--yes")
    assert.strictEqual(again.code, ExitCode.Ok, again.stdout + again.stderr)
    assert.include(again.stdout, "No changes")
    assert.deepStrictEqual(entriesFor(knownHosts, address), rejoinedWith)
  })
})
