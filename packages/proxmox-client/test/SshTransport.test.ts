import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { SshClient } from "@homelab/ssh"
import { generateKeyPair, TestSshServer } from "@homelab/ssh/testing"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import {
  ProxmoxApi,
  ProxmoxClientConfig,
  type ProxmoxClientConfigShape,
  type ProxmoxError,
  parsePveshOutput,
  pveshCommand
} from "../src/index.js"

const UPID_OK = "UPID:pve1:00001234:00005678:66F1A2B3:qmstart:100:root@pam:"
const UPID_FAIL = "UPID:pve1:00001234:00005678:66F1A2B4:qmstart:101:root@pam:"

describe("pvesh command line", () => {
  it("maps verbs, quotes every value, repeats arrays, sends booleans as 1/0 and passes a crypt-hashed cipassword", () => {
    const cmd = pveshCommand({
      method: "POST",
      path: "/nodes/pve1/qemu",
      params: {
        vmid: 101,
        name: "web1",
        description: "it's $(rm -rf /) `x`",
        start: false,
        cipassword: Redacted.make(
          "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        ),
        sshkeys: "ssh-ed25519%20AAAA%20me%40host",
        skip: undefined
      }
    })
    assert.strictEqual(
      cmd,
      "pvesh create /nodes/pve1/qemu --vmid 101 --name web1 --description 'it'\\''s $(rm -rf /) `x`' --start 0 --cipassword '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1' --sshkeys ssh-ed25519%20AAAA%20me%40host --output-format json"
    )
    assert.strictEqual(
      pveshCommand({ method: "POST", path: "/nodes/pve1/qemu/100/agent/exec", params: { command: ["ls", "-l"] } }),
      "pvesh create /nodes/pve1/qemu/100/agent/exec --command ls --command -l --output-format json"
    )
    assert.strictEqual(
      pveshCommand({ method: "DELETE", path: "/nodes/pve1/qemu/100", params: { purge: true } }),
      "pvesh delete /nodes/pve1/qemu/100 --purge 1 --output-format json"
    )
    assert.strictEqual(pveshCommand({ method: "PUT", path: "/x" }), "pvesh set /x --output-format json")
  })

  it("takes the LAST stdout line as JSON (task log lines come first); no output is null", () => {
    assert.deepStrictEqual(parsePveshOutput(`generating cloud-init ISO\nTASK ERROR: boom\n"${UPID_OK}"\n`), {
      ok: true,
      data: UPID_OK
    })
    assert.deepStrictEqual(parsePveshOutput(""), { ok: true, data: null })
    assert.deepStrictEqual(parsePveshOutput("not json\n"), { ok: false })
  })
})

/** A fake PVE host answering a few pvesh commands. */
const fakePvesh = (command: string) => {
  if (command === "pvesh get /nodes/pve1/qemu/100/status/current --output-format json") {
    return {
      stdout: `${JSON.stringify({ vmid: 100, status: "running", qmpstatus: "running", agent: 1, uptime: 5, name: "web1" })}\n`,
      exitCode: 0
    }
  }
  if (command.startsWith("pvesh create /nodes/pve1/qemu/100/status/start")) {
    return { stdout: `generating cloud-init ISO\n"${UPID_OK}"\n`, exitCode: 0 }
  }
  if (command.startsWith("pvesh create /nodes/pve1/qemu/101/status/start")) {
    // pvesh prints the log and the UPID and exits 0 although the task failed
    return { stdout: `"${UPID_FAIL}"\n`, stderr: "VM 101 already running\n", exitCode: 0 }
  }
  if (command.startsWith(`pvesh get /nodes/pve1/tasks/${UPID_OK}/status`)) {
    return {
      stdout: `${JSON.stringify({ node: "pve1", status: "stopped", exitstatus: "OK", type: "qmstart", user: "root@pam" })}\n`,
      exitCode: 0
    }
  }
  if (command.startsWith(`pvesh get /nodes/pve1/tasks/${UPID_FAIL}/status`)) {
    return {
      stdout: `${JSON.stringify({ node: "pve1", status: "stopped", exitstatus: "VM 101 already running", type: "qmstart", user: "root@pam" })}\n`,
      exitCode: 0
    }
  }
  if (command.startsWith(`pvesh get /nodes/pve1/tasks/${UPID_FAIL}/log`)) {
    return { stdout: `${JSON.stringify([{ n: 1, t: "TASK ERROR: VM 101 already running" }])}\n`, exitCode: 0 }
  }
  if (command.startsWith("pvesh get /nodes/pve1/qemu/999/status/current")) {
    return { stderr: "Configuration file 'nodes/pve1/qemu-server/999.conf' does not exist\n", exitCode: 2 }
  }
  if (command.startsWith("pvesh set /nodes/pve1/qemu/100/config")) {
    return {
      stderr:
        "400 Parameter verification failed.\nmemory: value must have a minimum value of 16\n\npvesh set <api_path> [OPTIONS] [FORMAT_OPTIONS]\n",
      exitCode: 255
    }
  }
  if (command === "pvesh get /access/permissions --path /vms/100 --output-format json") {
    return { stdout: `${JSON.stringify({ "/vms/100": { "VM.Audit": 1 } })}\n`, exitCode: 0 }
  }
  return { stderr: `no handler for ${command}\n`, exitCode: 255 }
}

const sshApi = (server: TestSshServer, key: string) =>
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "pvc-ssh-"))),
      (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
    )
    fs.writeFileSync(path.join(dir, "known_hosts"), `${server.knownHostsLine()}\n`)
    const config: ProxmoxClientConfigShape = {
      nodes: [{ name: "pve1", ssh: { host: "127.0.0.1", port: server.port, user: "root" } }],
      auth: { _tag: "Token", tokenId: "root@pam!t", secret: Redacted.make("unused") },
      retries: 0
    }
    return ProxmoxApi.layerSsh.pipe(
      Layer.provide(ProxmoxClientConfig.layer(config)),
      Layer.provide(
        SshClient.layerWith({
          auth: { privateKey: Redacted.make(key) },
          knownHosts: { mode: "strict", path: path.join(dir, "known_hosts") }
        })
      )
    )
  })

describe("SshTransport over a real SSH server", () => {
  it.live("decodes pvesh JSON, waits on a UPID, reports failed tasks, classifies stderr, uses one connection", () =>
    Effect.gen(function* () {
      const key = generateKeyPair("ed25519")
      const server = yield* TestSshServer.scoped({
        users: [{ name: "root", publicKeys: [key.public] }],
        exec: (command) => fakePvesh(command)
      })
      const layer = yield* sshApi(server, key.private)
      const results = yield* Effect.gen(function* () {
        const pve = yield* ProxmoxApi
        const status = yield* pve.vmStatus("pve1", 100)
        const started = yield* pve.startVm("pve1", 100)
        const failed = yield* Effect.exit(pve.startVm("pve1", 101))
        const missing = yield* Effect.exit(pve.vmStatus("pve1", 999))
        const invalid = yield* Effect.exit(pve.updateVmConfig("pve1", 100, { memory: "1" }))
        const permissions = yield* pve.permissions("/vms/100")
        return { status, started, failed, missing, invalid, permissions, transport: pve.transportOf("pve1") }
      }).pipe(Effect.provide(layer))
      assert.deepStrictEqual(results.status, {
        vmid: 100,
        status: "running",
        qmpstatus: "running",
        agent: true,
        uptime: 5,
        name: "web1",
        tags: [],
        template: false
      })
      assert.deepStrictEqual(results.started, { upid: UPID_OK, node: "pve1", exitstatus: "OK", warnings: 0 })
      const reasonOf = (exit: Exit.Exit<unknown, ProxmoxError>) =>
        Exit.isFailure(exit) ? (exit.cause.reasons[0] as unknown as { error: ProxmoxError }).error : undefined
      assert.deepInclude(reasonOf(results.failed)?.reason, { _tag: "TaskFailed", exitstatus: "VM 101 already running" })
      assert.strictEqual(reasonOf(results.failed)?.operation, "startVm")
      assert.strictEqual(reasonOf(results.missing)?.reason._tag, "NotFound")
      const invalid = reasonOf(results.invalid)?.reason
      assert.deepStrictEqual(invalid?._tag === "InvalidParameter" ? invalid.errors : undefined, {
        memory: "value must have a minimum value of 16"
      })
      assert.deepStrictEqual(results.permissions, { "/vms/100": { "VM.Audit": true } })
      assert.strictEqual(results.transport, "ssh")
      assert.strictEqual(server.connectionCount, 1)
      assert.include(server.commands, "pvesh get /nodes/pve1/qemu/100/status/current --output-format json")
    })
  )
})
