import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { reserveLoopbackNet } from "../src/LoopbackNet.js"

describe("reserveLoopbackNet", () => {
  const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), "sim-nets-"))

  it("never hands out one /24 twice while it is held; a released one is free again", () => {
    const d = dir()
    // two second octets × 250: 500 nets; hold them all
    const all = Array.from({ length: 500 }, () => reserveLoopbackNet({ octets: [30, 31], dir: d }))
    assert.strictEqual(new Set(all.map((r) => r.net)).size, 500)
    assert.throws(() => reserveLoopbackNet({ octets: [30, 31], dir: d }), /no free loopback \/24/)
    all[7]?.release()
    assert.strictEqual(reserveLoopbackNet({ octets: [30, 31], dir: d }).net, all[7]?.net)
  })

  it("a /24 held by a live process of another run is skipped; one whose owner is gone is taken", () => {
    const d = dir()
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString()
    fs.mkdirSync(path.join(d, "127.40.0"))
    fs.writeFileSync(path.join(d, "127.40.0", "pid"), String(process.ppid))
    fs.mkdirSync(path.join(d, "127.40.1"))
    fs.writeFileSync(path.join(d, "127.40.1", "pid"), dead)
    const nets = new Set<string>()
    for (let i = 0; i < 250 - 1; i++) nets.add(reserveLoopbackNet({ octets: [40, 40], dir: d }).net)
    assert.isFalse(nets.has("127.40.0"), "the live process's /24 was handed out")
    assert.isTrue(nets.has("127.40.1"), "the dead process's /24 was never taken over")
    assert.strictEqual(fs.readFileSync(path.join(d, "127.40.1", "pid"), "utf8"), String(process.pid))
  })
})
