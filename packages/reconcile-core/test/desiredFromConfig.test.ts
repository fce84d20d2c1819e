import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { parseConfig } from "../src/config/parseConfig.js"
import {
  DefaultVmidRange,
  desiredFromConfig,
  diskSizeGiB,
  healthPolicyFromConfig,
  PendingTag
} from "../src/desiredFromConfig.js"

const example = readFileSync(fileURLToPath(new URL("../homelab.example.yaml", import.meta.url)), "utf8")
const env = {
  PROXMOX_TOKEN_SECRET: "0b6c3e2a-1111-2222-3333-444455556666",
  CLOUD_PASSWORD: "s3cret",
  SSH_PASSPHRASE: "pp",
  K3S_TOKEN: "K10abc::server:pw"
}

describe("desiredFromConfig", () => {
  it.effect(
    "maps the example config: one entry per node, VMs expanded, tags carry ownership, secrets stay Redacted",
    () =>
      Effect.gen(function* () {
        const config = yield* parseConfig(example, { env, source: "homelab.example.yaml" })
        const desired = desiredFromConfig(config, { sshKeys: ["ssh-ed25519 AAAA me@host"] })
        assert.deepStrictEqual(
          desired.nodes.map((n) => n.name),
          config.nodes.map((n) => n.name)
        )
        const pve3 = desired.nodes.find((n) => n.name === "pve3")
        assert.deepStrictEqual(
          pve3?.vms.map((v) => [v.name, v.role, v.cores, v.memoryMiB, v.diskGiB]),
          config.nodes
            .find((n) => n.name === "pve3")
            ?.vms.map((v) => [v.name, v.role, v.cores, v.memory, diskSizeGiB(v.diskSize)])
        )
        for (const node of desired.nodes) {
          for (const vm of node.vms) assert.include(vm.tags, config.safety.requireTag)
        }
        assert.strictEqual(desired.ownershipTag, config.safety.requireTag)
        assert.strictEqual(desired.pendingTag, PendingTag)
        assert.deepStrictEqual(desired.vmidRange, config.vm.vmidRange ?? DefaultVmidRange)
        const password = desired.nodes[0]?.vms[0]?.cloudInit.password
        if (password !== undefined) {
          assert.isTrue(Redacted.isRedacted(password))
          assert.notInclude(JSON.stringify(desired), "s3cret")
        }
      })
  )

  it("parses PVE disk sizes into whole GiB", () => {
    assert.strictEqual(diskSizeGiB("64G"), 64)
    assert.strictEqual(diskSizeGiB("1T"), 1024)
    assert.strictEqual(diskSizeGiB("512M"), 1)
    assert.throws(() => diskSizeGiB("lots"), /invalid disk size/)
  })

  it.effect("maps the health section onto the vm-health policy", () =>
    Effect.gen(function* () {
      const config = yield* parseConfig(example, { env })
      const policy = healthPolicyFromConfig(config)
      assert.strictEqual(policy.stopped, config.health.stopped)
      assert.strictEqual(policy.paused, config.health.paused)
      assert.strictEqual(policy.graceSeconds, config.health.graceSeconds)
      assert.strictEqual(policy.agentNotResponding, config.health.agentMissing === "recreate" ? "recreate" : "degraded")
    })
  )
})
