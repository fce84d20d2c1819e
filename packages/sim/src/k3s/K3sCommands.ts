import { createHash } from "node:crypto"
import type { GuestCommand, GuestCommandContext, GuestCommandResult, GuestCommands } from "../Guest.js"
import { runLine } from "../internal/Shell.js"
import { registerFlock } from "./Flock.js"
import {
  bytesToText,
  canRead,
  canWrite,
  fileMeta,
  moveGuestFile,
  removeGuestFile,
  setFileMeta,
  writeGuestFile,
  writeRedirect
} from "./GuestFs.js"
import { installScript } from "./InstallScript.js"
import { commitOf, httpGet, isInstallScript } from "./K3sOrigin.js"
import { BIN, ETCD_NAME, envFile, type K3sHost, type K3sSim, TOKEN_DIR, unitFile } from "./K3sSim.js"
import { kubectl, parseDuration } from "./Kubectl.js"

const ok = (stdout = ""): GuestCommandResult => ({ stdout, code: 0 })
const fail = (stderr: string, code = 1, stdout = ""): GuestCommandResult => ({ stdout, stderr, code })

/**
 * Registers the k3s-related guest commands: the install script (`sh`), `k3s` / `kubectl`, `systemctl` for the k3s
 * units, `journalctl`, `curl` (get.k3s.io mapped to the simulator's origin), uninstall scripts, and small file
 * utilities (`env`, `install`, `rm`, `chmod`, `mv`, `mkdir`, a permission-aware `cat`).
 */
export const registerK3sCommands = (commands: GuestCommands, sim: K3sSim): void => {
  registerFlock(commands)
  const runAs = (c: GuestCommandContext, argv: ReadonlyArray<string>, user: string, stdin: Buffer = c.stdin) =>
    commands.run(c.guest, argv, user, stdin, c.env, c.sleep)

  // ------------------------------------------------------------------ file utilities
  commands.register("cat", (c) => {
    const files = c.argv.slice(1).filter((a) => !a.startsWith("-") || a === "-")
    if (files.length === 0) return ok(c.stdin.toString("utf8"))
    let out = ""
    let err = ""
    let code = 0
    for (const f of files) {
      if (f === "-") {
        out += c.stdin.toString("utf8")
        continue
      }
      const content = c.guest.files.get(f)
      if (content === undefined) {
        err += `cat: ${f}: No such file or directory\n`
        code = 1
      } else if (!canRead(c.guest, c.user, f) || (f.startsWith(`${TOKEN_DIR}/`) && c.user !== "root")) {
        err += `cat: ${f}: Permission denied\n`
        code = 1
      } else out += content
    }
    return { stdout: out, stderr: err, code }
  })
  commands.register("env", (c) => {
    const a = [...c.argv.slice(1)]
    while (a[0] === "-i" || a[0] === "-" || a[0] === "--") a.shift()
    if (a.length === 0)
      return ok(
        Object.entries(c.env)
          .map(([k, v]) => `${k}=${v}\n`)
          .join("")
      )
    return runAs(c, a, c.user)
  })
  commands.register("install", (c) => {
    const a = c.argv.slice(1)
    let mode = 0o755
    let owner = c.user
    const paths: Array<string> = []
    for (let i = 0; i < a.length; i++) {
      const x = a[i] as string
      if (x === "-m" || x === "--mode") mode = Number.parseInt(a[++i] ?? "755", 8)
      else if (x.startsWith("--mode=")) mode = Number.parseInt(x.slice(7), 8)
      else if (x === "-o" || x === "--owner") owner = a[++i] ?? owner
      else if (x === "-g" || x === "--group") i++
      else if (x.startsWith("-")) continue
      else paths.push(x)
    }
    if (paths.length !== 2) return fail("install: missing destination file operand\n")
    const [src, dst] = paths as [string, string]
    let content: string | undefined
    if (src === "/dev/stdin" || src === "-") content = bytesToText(c.stdin)
    else {
      content = c.guest.files.get(src)
      if (content === undefined) return fail(`install: cannot stat '${src}': No such file or directory\n`)
      if (!canRead(c.guest, c.user, src)) return fail(`install: cannot open '${src}' for reading: Permission denied\n`)
    }
    if (!canWrite(c.guest, c.user, dst))
      return fail(`install: cannot create regular file '${dst}': Permission denied\n`)
    writeGuestFile(c.guest, dst, content, { mode: Number.isNaN(mode) ? 0o755 : mode, owner })
    return ok()
  })
  commands.register("rm", (c) => {
    const a = c.argv.slice(1)
    const force = a.some((x) => /^-[a-zA-Z]*f/.test(x))
    const recursive = a.some((x) => /^-[a-zA-Z]*r/i.test(x))
    let err = ""
    for (const p of a.filter((x) => !x.startsWith("-"))) {
      const below = recursive ? [...c.guest.files.keys()].filter((k) => k.startsWith(`${p.replace(/\/$/, "")}/`)) : []
      if (!c.guest.files.has(p) && below.length === 0) {
        if (!force) err += `rm: cannot remove '${p}': No such file or directory\n`
        continue
      }
      if (!canWrite(c.guest, c.user, p)) {
        err += `rm: cannot remove '${p}': Permission denied\n`
        continue
      }
      removeGuestFile(c.guest, p)
      for (const k of below) removeGuestFile(c.guest, k)
    }
    return err === "" ? ok() : fail(err)
  })
  commands.register("mv", (c) => {
    const p = c.argv.slice(1).filter((x) => !x.startsWith("-"))
    const [from, to] = p
    if (from === undefined || to === undefined) return fail("mv: missing file operand\n")
    if (!c.guest.files.has(from)) return fail(`mv: cannot stat '${from}': No such file or directory\n`)
    if (!canWrite(c.guest, c.user, from) || !canWrite(c.guest, c.user, to))
      return fail(`mv: cannot move '${from}' to '${to}': Permission denied\n`)
    moveGuestFile(c.guest, from, to)
    return ok()
  })
  commands.register("chmod", (c) => {
    const p = c.argv.slice(1).filter((x) => !x.startsWith("-") || /^-[rwx]+$/.test(x))
    const [modeText, ...files] = p
    if (modeText === undefined || files.length === 0) return fail("chmod: missing operand\n")
    for (const f of files) {
      if (!c.guest.files.has(f)) return fail(`chmod: cannot access '${f}': No such file or directory\n`)
      const m = fileMeta(c.guest, f)
      if (c.user !== "root" && m.owner !== c.user)
        return fail(`chmod: changing permissions of '${f}': Operation not permitted\n`)
      let mode = m.mode
      if (/^[0-7]{3,4}$/.test(modeText)) mode = Number.parseInt(modeText, 8)
      else if (/^[ugoa]*\+x$/.test(modeText)) mode |= 0o111
      else if (/^[ugoa]*-x$/.test(modeText)) mode &= ~0o111
      setFileMeta(c.guest, f, { ...m, mode })
    }
    return ok()
  })
  commands.register("sha256sum", (c) => {
    const files = c.argv.slice(1).filter((x) => !x.startsWith("-") || x === "-")
    if (files.length === 0) files.push("-")
    let out = ""
    let err = ""
    for (const f of files) {
      const content = f === "-" ? bytesToText(c.stdin) : c.guest.files.get(f)
      if (content === undefined) err += `sha256sum: ${f}: No such file or directory\n`
      else if (f !== "-" && !canRead(c.guest, c.user, f)) err += `sha256sum: ${f}: Permission denied\n`
      else out += `${createHash("sha256").update(content, "utf8").digest("hex")}  ${f}\n`
    }
    return { stdout: out, stderr: err, code: err === "" ? 0 : 1 }
  })
  commands.register("cmp", (c) => {
    const a = c.argv.slice(1)
    const silent = a.some((x) => x === "-s" || x === "--silent" || x === "--quiet")
    const [x, y] = a.filter((v) => !v.startsWith("-") || v === "-")
    if (x === undefined || y === undefined) return fail(`cmp: missing operand after '${x ?? "cmp"}'\n`, 2)
    const read = (f: string) => (f === "-" ? bytesToText(c.stdin) : c.guest.files.get(f))
    const bx = read(x)
    const by = read(y)
    for (const [f, v] of [
      [x, bx],
      [y, by]
    ] as const)
      if (v === undefined) return fail(silent ? "" : `cmp: ${f}: No such file or directory\n`, 2)
    if (bx === by) return ok()
    if (silent) return fail("", 1)
    let k = 0
    while (k < (bx as string).length && (bx as string)[k] === (by as string)[k]) k++
    const line = (bx as string).slice(0, k).split("\n").length
    if (k >= Math.min((bx as string).length, (by as string).length))
      return {
        stdout: "",
        stderr: `cmp: EOF on ${(bx as string).length < (by as string).length ? x : y} after byte ${k}\n`,
        code: 1
      }
    return { stdout: `${x} ${y} differ: byte ${k + 1}, line ${line}\n`, code: 1 }
  })
  commands.register("mkdir", (c) => {
    for (const p of c.argv.slice(1).filter((x) => !x.startsWith("-")))
      if (!canWrite(c.guest, c.user, `${p.replace(/\/$/, "")}/.keep`))
        return fail(`mkdir: cannot create directory '${p}': Permission denied\n`)
    return ok()
  })

  // ------------------------------------------------------------------ curl (get.k3s.io → local origin)
  commands.register("curl", async (c) => {
    const a = c.argv.slice(1)
    let out: string | undefined
    let url: string | undefined
    let writeOut: string | undefined
    let failFlag = false
    let silent = false
    let showError = false
    let follow = false
    let insecure = false
    for (let i = 0; i < a.length; i++) {
      const x = a[i] as string
      if (x === "-o" || x === "--output") out = a[++i]
      else if (x === "-w" || x === "--write-out") writeOut = a[++i]
      else if (x.startsWith("--")) {
        if (x === "--fail") failFlag = true
        if (x === "--silent") silent = true
        if (x === "--show-error") showError = true
        if (x === "--location") follow = true
        if (x === "--insecure") insecure = true
      } else if (x.startsWith("-") && x.length > 1) {
        insecure ||= x.includes("k")
        failFlag ||= x.includes("f")
        silent ||= x.includes("s")
        showError ||= x.includes("S")
        follow ||= x.includes("L")
        if (x.endsWith("o")) out = a[++i]
        else if (x.endsWith("w")) writeOut = a[++i]
      } else url = x
    }
    const err = (code: number, msg: string) => fail(silent && !showError ? "" : `curl: (${code}) ${msg}\n`, code)
    if (url === undefined) return fail("curl: try 'curl --help' or 'curl --manual' for more information\n", 2)
    // --write-out: only %{url_effective} and %{http_code} are known
    const written = (effective: string, status: number) =>
      writeOut === undefined
        ? ""
        : writeOut
            .replaceAll("%{url_effective}", effective)
            .replaceAll("%{http_code}", String(status).padStart(3, "0"))
            .replaceAll("\\n", "\n")
    let effective = url
    let res: { status: number; body: Buffer; location?: string | undefined } | undefined
    // the k3s supervisor / apiserver port of a server (self-signed: -k needed)
    const sup = sim.supervisor(c.guest, url)
    if (sup !== undefined) {
      if ("refused" in sup) return err(7, `Failed to connect to ${sup.refused} after 0 ms: Couldn't connect to server`)
      if (!insecure)
        return err(
          60,
          "SSL certificate problem: unable to get local issuer certificate\nMore details here: https://curl.se/docs/sslcerts.html\n\ncurl failed to verify the legitimacy of the server and therefore could not\nestablish a secure connection to it."
        )
      res = { status: sup.status, body: Buffer.from(sup.body) }
    }
    for (let hops = 0; res === undefined; hops++) {
      let target = sim.origin.map(effective)
      if (target === undefined) {
        let host = ""
        try {
          host = new URL(effective).hostname
        } catch {
          return err(3, "URL rejected: Malformed input to a URL function")
        }
        if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== "localhost") return err(6, `Could not resolve host: ${host}`)
        target = effective
      }
      if (sim.downloadFails(c.guest.vmid)) {
        if (failFlag) return err(22, "The requested URL returned error: 500")
        res = { status: 500, body: Buffer.from("Internal Server Error\n") }
        break
      }
      try {
        res = await httpGet(target)
      } catch {
        return err(7, "Failed to connect: Connection refused")
      }
      if (follow && res.status >= 300 && res.status < 400 && res.location !== undefined && hops < 50) {
        effective = new URL(res.location, effective).toString()
        res = undefined
        continue
      }
      break
    }
    if (res.status >= 400 && failFlag) return err(22, `The requested URL returned error: ${res.status}`)
    if (out === undefined) return { stdout: res.body.toString("utf8") + written(effective, res.status), code: 0 }
    if (out !== "/dev/null") {
      if (!canWrite(c.guest, c.user, out)) return err(23, `Failure writing output to destination`)
      writeGuestFile(c.guest, out, bytesToText(res.body), { mode: 0o644, owner: c.user })
    }
    return ok(written(effective, res.status))
  })

  // ------------------------------------------------------------------ sh / bash (scripts, -c, the install script)
  const shell: GuestCommand = async (c) => {
    const a = c.argv.slice(1)
    if (a[0] === "-c" && a[1] !== undefined) {
      const r = await runLine(
        a[1],
        {
          run: async (argv, stdin) => {
            const x = await runAs(c, argv, c.user, stdin)
            return { stdout: x.stdout, stderr: x.stderr ?? "", code: x.code }
          },
          readFile: (p) => {
            const f = c.guest.files.get(p)
            return f === undefined || !canRead(c.guest, c.user, p) ? undefined : Buffer.from(f, "utf8")
          },
          writeFile: (p, data, append) => {
            if (p === "/dev/null") return undefined
            if (!canWrite(c.guest, c.user, p)) return `sh: 1: cannot create ${p}: Permission denied\n`
            writeRedirect(c.guest, c.user, p, data, append)
            return undefined
          }
        },
        c.stdin
      )
      return { stdout: r.stdout.toString(), stderr: r.stderr, code: r.code }
    }
    let fromStdin = false
    let i = 0
    for (; i < a.length; i++) {
      const x = a[i] as string
      if (x === "-") {
        i++
        break
      }
      if (x === "-s") fromStdin = true
      else if (!x.startsWith("-")) break
    }
    let script: string
    let args: Array<string>
    if (fromStdin || i >= a.length) {
      script = c.stdin.toString("utf8")
      args = a.slice(i)
    } else {
      const file = a[i] as string
      const f = c.guest.files.get(file)
      if (f === undefined) return fail(`sh: 0: cannot open ${file}: No such file\n`, 2)
      if (!canRead(c.guest, c.user, file)) return fail(`sh: 0: cannot open ${file}: Permission denied\n`, 2)
      script = f
      args = a.slice(i + 1)
    }
    if (script.trim() === "") return ok()
    if (isInstallScript(script)) return installScript(sim, c, args)
    // a plain script: run it line by line
    let last: GuestCommandResult = ok()
    let stdout = ""
    let stderr = ""
    for (const line of script.split("\n")) {
      const t = line.trim()
      if (t === "" || t.startsWith("#") || t.startsWith("set ")) continue
      last = await shell({ ...c, argv: ["sh", "-c", t], stdin: Buffer.alloc(0) })
      stdout += last.stdout
      stderr += last.stderr ?? ""
    }
    return { stdout, stderr, code: last.code }
  }
  commands.register("sh", shell)
  commands.register("bash", shell)
  commands.register("dash", shell)
  commands.register("install.sh", (c) => {
    const name = "install.sh"
    for (const dir of ["/tmp/", "/root/", `/home/${c.user}/`, "/usr/local/bin/"]) {
      const f = c.guest.files.get(`${dir}${name}`)
      if (f !== undefined && isInstallScript(f)) return installScript(sim, c, c.argv.slice(1))
    }
    return fail(`bash: ./${name}: No such file or directory\n`, 127)
  })

  // ------------------------------------------------------------------ systemctl / journalctl for the k3s units
  const original = commands.get("systemctl")
  commands.register("systemctl", async (c) => {
    const all = c.argv.slice(1)
    const noBlock = all.includes("--no-block")
    // `enable --now` also starts the unit, `disable --now` also stops it (systemctl(1), --now)
    const now = all.includes("--now")
    const args = all.filter((x) => !x.startsWith("-"))
    const verb = args[0]
    const unit = (args[1] ?? "").replace(/\.service$/, "")
    const h = sim.host(c.guest)
    if (verb === "daemon-reload") return c.user === "root" ? ok() : fail("Failed to reload daemon: Access denied\n")
    // units not installed by the simulated install.sh keep the generic behaviour (services map)
    if (h.installed?.unit !== unit || verb === undefined) {
      if (original === undefined) return fail(`Unknown command verb ${verb ?? ""}.\n`)
      return original(c)
    }
    const installed = c.guest.files.has(unitPath(unit))
    const st = installed ? sim.unitState(h) : "inactive"
    switch (verb) {
      case "is-active":
        return { stdout: `${st}\n`, code: st === "active" ? 0 : 3 }
      case "is-enabled":
        if (!installed) return fail(`Failed to get unit file state for ${unit}.service: No such file or directory\n`)
        return { stdout: `${h.enabled ? "enabled" : "disabled"}\n`, code: h.enabled ? 0 : 1 }
      case "status": {
        if (!installed) return fail(`Unit ${unit}.service could not be found.\n`, 4)
        const text = `● ${unit}.service - Lightweight Kubernetes\n     Loaded: loaded (/etc/systemd/system/${unit}.service; ${h.enabled ? "enabled" : "disabled"}; preset: enabled)\n     Active: ${st === "activating" ? "activating (start)" : st === "active" ? "active (running)" : "inactive (dead)"}\n`
        return { stdout: text, code: st === "active" ? 0 : 3 }
      }
      case "start":
      case "restart":
      case "stop":
      case "enable":
      case "disable": {
        if (c.user !== "root")
          return fail(
            `Failed to ${verb} ${unit}.service: Interactive authentication required.\nSee system logs and 'systemctl status ${unit}.service' for details.\n`
          )
        if (!installed) return fail(`Failed to ${verb} ${unit}.service: Unit ${unit}.service not found.\n`, 5)
        if (verb === "enable") {
          h.enabled = true
          if (!now || st === "active" || st === "activating") return ok()
          const attempt = sim.start(h)
          if (noBlock) return ok()
          return jobResult(unit, await sim.wait(attempt))
        }
        if (verb === "disable") {
          h.enabled = false
          if (now) sim.stop(h)
          return ok()
        }
        if (verb === "stop") {
          sim.stop(h)
          return ok()
        }
        if (verb === "start" && (st === "active" || st === "activating")) {
          if (noBlock || st === "active" || h.attempt === undefined) return ok()
          return jobResult(unit, await sim.wait(h.attempt))
        }
        const attempt = sim.start(h)
        if (noBlock) return ok()
        return jobResult(unit, await sim.wait(attempt))
      }
      default:
        return original === undefined ? fail(`Unknown command verb ${verb}.\n`) : original(c)
    }
  })
  commands.register("journalctl", (c) => {
    const a = c.argv.slice(1)
    let unit: string | undefined
    let n: number | undefined
    let cat = false
    for (let i = 0; i < a.length; i++) {
      const x = a[i] as string
      if (x === "-u" || x === "--unit") unit = a[++i]
      else if (x.startsWith("--unit=")) unit = x.slice(7)
      else if (x === "-n" || x === "--lines") n = Number(a[++i])
      else if (x.startsWith("--lines=")) n = Number(x.slice(8))
      else if (x === "-o" || x === "--output") cat = a[++i] === "cat"
      else if (x === "-ocat" || x === "--output=cat") cat = true
    }
    const h = sim.host(c.guest)
    const u = (unit ?? "").replace(/\.service$/, "")
    const journal = sim.readJournal(h)
    const lines = h.installed !== undefined && h.installed.unit === u ? journal : u === "" ? journal : []
    const tail = n === undefined || Number.isNaN(n) ? lines : n <= 0 ? [] : lines.slice(-n)
    if (tail.length === 0) return ok("-- No entries --\n")
    const stamp = (line: string) => {
      const m = /^time="([^"]+)"/.exec(line)
      const d = new Date(m?.[1] ?? sim.now())
      const mon = d.toUTCString().slice(8, 11)
      const ts = `${mon} ${String(d.getUTCDate()).padStart(2, "0")} ${d.toISOString().slice(11, 19)}`
      const tag = line.startsWith("time=") ? `k3s[${1000 + h.guest.vmid}]` : "systemd[1]"
      return `${ts} ${c.guest.hostname} ${tag}: ${line}`
    }
    return ok(`${tail.map((l) => (cat ? l : stamp(l))).join("\n")}\n`)
  })

  // ------------------------------------------------------------------ k3s / kubectl
  commands.register("k3s", async (c) => {
    const bin = c.guest.files.get(BIN)
    if (bin === undefined) return fail(`sh: 1: ${BIN}: not found\n`, 127)
    const a = c.argv.slice(1)
    const version = sim.binaryVersionOf(sim.host(c.guest)) ?? sim.version
    if (a[0] === "--version" || a[0] === "-v" || a[0] === "version")
      return ok(`k3s version ${version} (${commitOf(version)})\ngo version go1.22.8\n`)
    if (a[0] === "kubectl") return kubectl(sim, c, a.slice(1))
    if (a[0] === "token") return token(sim, c, a.slice(1))
    if (a[0] === "server" && a.includes("--cluster-reset")) {
      const reset = sim.clusterReset(sim.host(c.guest))
      if (reset !== undefined) return { stdout: "", stderr: reset.stderr, code: reset.code }
    }
    if (a[0] === "server" || a[0] === "agent")
      return fail(
        `time="${new Date().toISOString()}" level=fatal msg="run ${a[0]} through its systemd unit in the simulator"\n`
      )
    return fail(
      `Incorrect Usage: flag provided but not defined: -${a[0] ?? ""}\nNAME:\n   k3s - Kubernetes, but small and simple\n`
    )
  })
  commands.register("kubectl", (c) => {
    if (!c.guest.files.has("/usr/local/bin/kubectl")) return fail("bash: kubectl: command not found\n", 127)
    return kubectl(sim, c, c.argv.slice(1))
  })

  // ------------------------------------------------------------------ uninstall / killall
  const uninstall =
    (name: string): GuestCommand =>
    (c) => {
      if (!c.guest.files.has(`/usr/local/bin/${name}`)) return fail(`bash: ${name}: command not found\n`, 127)
      const h = sim.host(c.guest)
      const unit = name === "k3s-uninstall.sh" ? "k3s" : name.replace(/-uninstall\.sh$/, "")
      if (h.installed?.unit === unit) {
        // k3s is killed, not asked to leave etcd: a learner it added stays a member
        sim.leaveLearner(h)
        sim.stop(h)
      }
      for (const f of [...c.guest.files.keys()]) {
        if (
          f === unitPath(unit) ||
          f === `${unitPath(unit)}.env` ||
          f === `/etc/systemd/system/multi-user.target.wants/${unit}.service` ||
          f === `/usr/local/bin/${name}`
        )
          removeGuestFile(c.guest, f)
      }
      const others = [...c.guest.files.keys()].some((f) => /^\/etc\/systemd\/system\/k3s[^/]*\.service$/.test(f))
      if (!others)
        for (const f of [...c.guest.files.keys()])
          if (
            f.startsWith("/etc/rancher/k3s/") ||
            f.startsWith("/var/lib/rancher/k3s/") ||
            f.startsWith("/var/lib/kubelet/") ||
            ["/usr/local/bin/kubectl", "/usr/local/bin/crictl", "/usr/local/bin/ctr", BIN].includes(f) ||
            f === "/usr/local/bin/k3s-killall.sh"
          )
            removeGuestFile(c.guest, f)
      if (h.installed?.unit === unit) {
        h.installed = undefined
        h.enabled = false
        if (!others) h.cluster = undefined
      }
      c.guest.services.delete(unit)
      return { stdout: "", stderr: `+ systemctl disable ${unit}\n+ systemctl reset-failed ${unit}\n`, code: 0 }
    }
  // ------------------------------------------------------------------ etcdctl (the user's own: k3s ships none)
  commands.register("etcdctl", (c) => {
    const args = c.argv.slice(1).filter((a) => !a.startsWith("--"))
    if (args[0] !== "member" || args[1] !== "remove" || args[2] === undefined)
      return fail(`Error: unknown command "${args.join(" ")}" for "etcdctl"\n`)
    if (c.user !== "root")
      return fail("Error: open /var/lib/rancher/k3s/server/tls/etcd/client.crt: permission denied\n")
    return sim.etcdctlMemberRemove(sim.host(c.guest), args[2])
  })
  commands.register("k3s-uninstall.sh", uninstall("k3s-uninstall.sh"))
  commands.register("k3s-agent-uninstall.sh", uninstall("k3s-agent-uninstall.sh"))
  commands.register("k3s-killall.sh", (c) => {
    if (!c.guest.files.has("/usr/local/bin/k3s-killall.sh"))
      return fail("bash: k3s-killall.sh: command not found\n", 127)
    const h = sim.host(c.guest)
    if (h.installed !== undefined) sim.stop(h)
    return ok()
  })
}

const unitPath = (unit: string) => `/etc/systemd/system/${unit}.service`

const jobResult = (unit: string, r: "ready" | "failed"): GuestCommandResult =>
  r === "ready"
    ? ok()
    : fail(
        `Job for ${unit}.service failed because the control process exited with error code.\nSee "systemctl status ${unit}.service" and "journalctl -xeu ${unit}.service" for details.\n`
      )

// -------------------------------------------------------------------- k3s token

const token = (sim: K3sSim, c: GuestCommandContext, a: ReadonlyArray<string>): GuestCommandResult => {
  if (c.user !== "root") return fail(`time="${new Date().toISOString()}" level=fatal msg="must be run as root"\n`)
  const h = sim.host(c.guest)
  const cluster = h.cluster
  if (cluster === undefined || h.installed?.role !== "server" || sim.unitState(h) !== "active")
    return fail(
      `time="${new Date().toISOString()}" level=fatal msg="failed to get token: Get \\"https://127.0.0.1:6443/\\": dial tcp 127.0.0.1:6443: connect: connection refused"\n`
    )
  if (a[0] === "create") {
    const ttl = flag(a, "--ttl")
    const ttlMs = ttl === undefined ? 86_400_000 : parseDuration(ttl)
    const desc = flag(a, "--description")
    return ok(`${cluster.createBootstrapToken(ttlMs ?? 86_400_000, desc, sim.now())}\n`)
  }
  if (a[0] === "list") {
    const rows = [...cluster.bootstrapTokens.values()].map(
      (t) =>
        `${t.id}    ${t.expiresAt === undefined ? "<forever>" : new Date(t.expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z")}    authentication,signing   ${t.description ?? "<none>"}`
    )
    return ok(
      `TOKEN     EXPIRES                USAGES                   DESCRIPTION\n${rows.map((r) => `${r}\n`).join("")}`
    )
  }
  return fail("Incorrect Usage: k3s token create|list\n")
}

const flag = (a: ReadonlyArray<string>, name: string): string | undefined => {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as string
    if (x === name) return a[i + 1]
    if (x.startsWith(`${name}=`)) return x.slice(name.length + 1)
  }
  return undefined
}

export type { K3sHost }
// re-exported for tests / the README
export { ETCD_NAME, envFile, unitFile }
