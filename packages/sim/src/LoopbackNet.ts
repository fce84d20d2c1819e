import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/**
 * A loopback /24 (`127.a.b`) reserved for one simulated lab, unique across every process on this machine that
 * reserves through the same folder.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoopbackNet {
  /** `127.a.b`: give guests `${net}.5`, `${net}.10`… */
  readonly net: string
  /** Gives the /24 back (also done when the process exits). */
  readonly release: () => void
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

const held = new Set<string>()
let exitHook = false

/**
 * Reserves a loopback /24 for a lab whose guests listen on fixed addresses and one fixed SSH port (as homelab.yaml's
 * `vm.sshPort` wants). Two labs on one address and port would answer for each other, so a lab in one process must
 * never pick the /24 of a lab in another (test suites of several checkouts running at once, for example). The
 * reservation is a folder named after the /24, created atomically, holding the owner's PID; a folder whose owner is
 * gone is removed and its /24 free again.
 *
 * @param options.octets the second octets to choose from (default 20–219); `dir` the reservation folder (default
 *   `<tmpdir>/homelab-sim-nets`).
 * @since 0.1.0
 * @category constructors
 */
export const reserveLoopbackNet = (
  options: { readonly octets?: readonly [number, number] | undefined; readonly dir?: string | undefined } = {}
): LoopbackNet => {
  const [lo, hi] = options.octets ?? [20, 219]
  const dir = options.dir ?? path.join(os.tmpdir(), "homelab-sim-nets")
  fs.mkdirSync(dir, { recursive: true })
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const net = `127.${lo + Math.floor(Math.random() * (hi - lo + 1))}.${Math.floor(Math.random() * 250)}`
    const slot = path.join(dir, net)
    try {
      fs.mkdirSync(slot)
    } catch {
      const owner = Number.parseInt(fs.readFileSync(path.join(slot, "pid"), { encoding: "utf8", flag: "a+" }), 10)
      // a folder whose owner is gone is removed; a later attempt may take its /24 (mkdir decides who does)
      if (!Number.isNaN(owner) && !alive(owner)) fs.rmSync(slot, { recursive: true, force: true })
      continue
    }
    fs.writeFileSync(path.join(slot, "pid"), String(process.pid))
    return hold(net, slot)
  }
  throw new Error(`no free loopback /24 in ${dir}`)
}

const hold = (net: string, slot: string): LoopbackNet => {
  held.add(slot)
  if (!exitHook) {
    exitHook = true
    process.once("exit", () => {
      for (const s of held) fs.rmSync(s, { recursive: true, force: true })
    })
  }
  return {
    net,
    release: () => {
      if (held.delete(slot)) fs.rmSync(slot, { recursive: true, force: true })
    }
  }
}
