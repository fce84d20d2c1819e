import type { GuestCommandContext, GuestCommandResult, GuestCommands, GuestState } from "../Guest.js"
import { canWrite, writeGuestFile } from "./GuestFs.js"

/**
 * util-linux `flock(1)` in guests: `flock [options] FILE COMMAND [ARGS…]` and `flock [options] FILE -c COMMAND`. The
 * lock is a flock(2) lock on the file (created if missing), held while the command runs and dropped when it exits —
 * also by commands of other SSH sessions, as two processes on one machine see each other's locks. Options: `-s`
 * (shared), `-x`/`-e`, `-n`, `-w SECONDS` (real time), `-E CODE`, `-o`, `--verbose` (`flock: getting lock took …
 * seconds` and `flock: executing …` on stdout, like util-linux). The file-descriptor form is not modelled.
 */

interface LockState {
  exclusive: boolean
  holders: number
  readonly queue: Array<{ readonly shared: boolean; readonly grant: () => void }>
}

const tables = new WeakMap<GuestState, Map<string, LockState>>()

const lockOf = (g: GuestState, path: string): LockState => {
  let t = tables.get(g)
  if (t === undefined) {
    t = new Map()
    tables.set(g, t)
  }
  let l = t.get(path)
  if (l === undefined) {
    l = { exclusive: false, holders: 0, queue: [] }
    t.set(path, l)
  }
  return l
}

const free = (l: LockState, shared: boolean) => l.holders === 0 || (shared && !l.exclusive && l.queue.length === 0)

const take = (l: LockState, shared: boolean) => {
  l.holders += 1
  l.exclusive = !shared
}

const release = (l: LockState) => {
  l.holders -= 1
  if (l.holders > 0) return
  l.exclusive = false
  // wake the next waiter, and the shared ones queued right behind a shared one
  while (l.queue.length > 0) {
    const next = l.queue[0] as { shared: boolean; grant: () => void }
    if (l.holders > 0 && (!next.shared || l.exclusive)) break
    l.queue.shift()
    take(l, next.shared)
    next.grant()
    if (!next.shared) break
  }
}

/** Whether a guest file is locked right now (tests). */
export const isLocked = (g: GuestState, path: string): boolean => (tables.get(g)?.get(path)?.holders ?? 0) > 0

const usage = (msg: string): GuestCommandResult => ({
  stdout: "",
  stderr: `flock: ${msg}\nTry 'flock --help' for more information.\n`,
  code: 64
})

export const registerFlock = (commands: GuestCommands): void => {
  commands.register("flock", async (c: GuestCommandContext): Promise<GuestCommandResult> => {
    const a = c.argv.slice(1)
    let shared = false
    let nonblock = false
    let waitS: number | undefined
    let conflict = 1
    let verbose = false
    let i = 0
    for (; i < a.length; i++) {
      const x = a[i] as string
      if (!x.startsWith("-") || x === "-") break
      if (x === "--") {
        i++
        break
      }
      const value = () => {
        const eq = x.indexOf("=")
        return x.startsWith("--") && eq > 0 ? x.slice(eq + 1) : (a[++i] ?? "")
      }
      if (x === "-s" || x === "--shared") shared = true
      else if (x === "-x" || x === "-e" || x === "--exclusive") shared = false
      else if (x === "-n" || x === "--nb" || x === "--nonblock" || x === "--nonblocking") nonblock = true
      else if (x === "-o" || x === "--close" || x === "-F" || x === "--no-fork") continue
      else if (x === "--verbose") verbose = true
      else if (x === "-w" || x.startsWith("--wait") || x.startsWith("--timeout")) {
        const v = value()
        const n = Number(v)
        if (v === "" || Number.isNaN(n) || n < 0) return usage(`invalid timeout value: '${v}'`)
        waitS = n
      } else if (x === "-E" || x.startsWith("--conflict-exit-code")) {
        const v = value()
        const n = Number(v)
        if (!/^\d+$/.test(v)) return usage(`invalid exit code: '${v}'`)
        if (n > 255) return usage("exit code out of range (expected 0 to 255)")
        conflict = n
      } else if (/^-[sxenoF]+$/.test(x)) {
        for (const f of x.slice(1)) {
          if (f === "s") shared = true
          else if (f === "x" || f === "e") shared = false
          else if (f === "n") nonblock = true
        }
      } else return usage(`unrecognized option '${x}'`)
    }
    const rest = a.slice(i)
    const file = rest[0]
    if (file === undefined) return usage("requires file descriptor, file or directory")
    let command = rest.slice(1)
    if (command.length === 0) {
      if (/^\d+$/.test(file)) return { stdout: "", stderr: "flock: the simulator has no file descriptors\n", code: 65 }
      return { stdout: "", stderr: `flock: bad file descriptor: '${file}'\n`, code: 64 }
    }
    if (command[0] === "-c" || command[0] === "--command") {
      if (command.length !== 2) return usage(`${command[0]} requires exactly one command argument`)
      command = ["sh", "-c", command[1] as string]
    }
    if (waitS === 0) nonblock = true
    const g = c.guest
    if (!g.files.has(file)) {
      if (!canWrite(g, c.user, file))
        return { stdout: "", stderr: `flock: cannot open lock file ${file}: Permission denied\n`, code: 66 }
      writeGuestFile(g, file, "", { mode: 0o644, owner: c.user })
    }
    const l = lockOf(g, file)
    const started = Date.now()
    let out = ""
    if (free(l, shared)) take(l, shared)
    else if (nonblock) return { stdout: "", stderr: verbose ? "flock: failed to get lock\n" : "", code: conflict }
    else {
      const granted = await new Promise<boolean>((resolve) => {
        const entry = { shared, grant: () => resolve(true) }
        l.queue.push(entry)
        if (waitS !== undefined) {
          const t = setTimeout(() => {
            const k = l.queue.indexOf(entry)
            if (k < 0) return
            l.queue.splice(k, 1)
            resolve(false)
          }, waitS * 1000)
          t.unref?.()
        }
      })
      if (!granted)
        return { stdout: "", stderr: verbose ? "flock: timeout while waiting to get lock\n" : "", code: conflict }
    }
    if (verbose) {
      const took = (Date.now() - started) / 1000
      out += `flock: getting lock took ${took.toFixed(6)} seconds\nflock: executing ${command[0]}\n`
    }
    try {
      const r = await c.run(command, c.user)
      return { stdout: out + r.stdout, ...(r.stderr === undefined ? {} : { stderr: r.stderr }), code: r.code }
    } finally {
      release(l)
    }
  })
}
