import { readFileSync } from "node:fs"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type SimHandle, startSimPromise } from "../src/index.js"
import { textOutput } from "../src/internal/CliTable.js"
import { sshExec, testScenario } from "./helpers.js"

describe("pvesh output formats", () => {
  let sim: SimHandle
  let pvesh: (args: string) => Promise<{ stdout: string; stderr: string; code: number }>
  beforeAll(async () => {
    sim = await startSimPromise(testScenario({ ipPool: "127.90.4.10" }))
    const key = readFileSync(sim.info.sshPrivateKeyPath, "utf8")
    const node = sim.info.nodes[0]
    pvesh = (args) => sshExec(node?.ssh.host ?? "", node?.ssh.port ?? 0, "root", key, `pvesh ${args}`)
  })
  afterAll(async () => {
    await sim.stop()
  })

  it("without --output-format pvesh prints CLIFormatter's text table, not JSON", async () => {
    const r = await pvesh("get /version")
    assert.deepStrictEqual(r, {
      stdout: [
        "┌─────────┬──────────────────┐",
        "│ key     │ value            │",
        "╞═════════╪══════════════════╡",
        "│ release │ 8.4              │",
        "├─────────┼──────────────────┤",
        "│ repoid  │ faa83925c9641325 │",
        "├─────────┼──────────────────┤",
        "│ version │ 8.4.1            │",
        "└─────────┴──────────────────┘",
        ""
      ].join("\n"),
      stderr: "",
      code: 0
    })
    assert.strictEqual(
      (await pvesh("get /version --output-format json")).stdout,
      '{"release":"8.4","repoid":"faa83925c9641325","version":"8.4.1"}\n'
    )
    const next = await pvesh("get /cluster/nextid")
    assert.strictEqual(next.stdout, "100\n")
  })

  it("routes its path as given: a volume id's `/` in content/{volume}, a UPID's `%3a` (no unescaping, unlike the HTTP server)", async () => {
    const origin = sim.info.imageOrigin?.files.find((f) => f.path === "/img/noble.img")
    const dl = await pvesh(
      `create /nodes/pve/storage/local/download-url --url ${origin?.url} --content iso --filename pvesh.iso --output-format json`
    )
    assert.strictEqual(dl.code, 0, dl.stderr)
    const del = await pvesh("delete /nodes/pve/storage/local/content/local:iso/pvesh.iso --output-format json")
    assert.strictEqual(del.code, 0, del.stderr)
    const upid = JSON.parse(del.stdout.trim().split("\n").at(-1) ?? "null") as string
    assert.match(upid, /:imgdel:local%3aiso_pvesh\.iso:/)
    const status = await pvesh(`get /nodes/pve/tasks/${upid}/status --output-format json`)
    assert.strictEqual(status.code, 0, status.stderr)
    assert.strictEqual(JSON.parse(status.stdout).exitstatus, "OK")
    const list = await pvesh("get /nodes/pve/storage/local/content --output-format json")
    assert.notInclude(list.stdout, "pvesh.iso")
  })

  it("lists: one column per property, sorted by the first; numbers right-aligned; scalars without a header", () => {
    const list = textOutput(
      [
        { storage: "local-lvm", used: 5, active: 1 },
        { storage: "local", used: 12345, active: 1 }
      ],
      {
        type: "array",
        items: {
          type: "object",
          properties: {
            storage: { type: "string" },
            used: { type: "integer", optional: true },
            active: { type: "boolean", optional: true }
          }
        }
      }
    )
    assert.strictEqual(
      list,
      [
        "┌───────────┬────────┬───────┐",
        "│ storage   │ active │  used │",
        "╞═══════════╪════════╪═══════╡",
        "│ local     │ 1      │ 12345 │",
        "├───────────┼────────┼───────┤",
        "│ local-lvm │ 1      │     5 │",
        "└───────────┴────────┴───────┘",
        ""
      ].join("\n")
    )
    assert.strictEqual(
      textOutput(["a", "bb"], { type: "array", items: { type: "string" } }),
      // the hidden header still sets the width ("value")
      "┌───────┐\n│ a     │\n├───────┤\n│ bb    │\n└───────┘\n"
    )
    assert.strictEqual(textOutput(null, { type: "null" }), "")
    assert.strictEqual(textOutput([], undefined), "")
  })
})
