import type { ApiRouter } from "./ApiRouter.js"
import { parseCliArgs, prettyJson } from "./internal/CliOutput.js"
import type { SimContext } from "./internal/Context.js"
import type { Params } from "./internal/Params.js"
import { renderSize } from "./internal/PropertyString.js"
import { getVm } from "./internal/QemuApi.js"
import type { ExecOutcome } from "./internal/SshServer.js"
import { addVolume, nextDiskName, parseVolid, pathToVolume } from "./internal/Volumes.js"
import { PveError } from "./PveError.js"
import { CLI_ROOT, cliError, taskOf, taskOutput } from "./Pvesh.js"
import { DISK_KEY } from "./SimState.js"
import { taskSucceeded } from "./Tasks.js"

const fail = (e: unknown, usage?: string): ExecOutcome => ({ stdout: "", stderr: cliError(e, usage), code: 255 })

export interface QmHost {
  readonly router: ApiRouter
  readonly ctx: SimContext
  readonly node: string
  /** read a file on the node (for `--sshkeys <file>`) */
  readonly readFile: (path: string) => Buffer | undefined
}

const pad = (s: string, n: number, right = false): string => (right ? s.padStart(n) : s.padEnd(n))

/** `qm` as root on a node (qemu-server CLI/qm.pm output formats and exit codes). */
export const runQm = async (h: QmHost, args: ReadonlyArray<string>, stdin: Buffer): Promise<ExecOutcome> => {
  const { ctx, router, node } = h
  const st = ctx.state
  let sub = args[0] ?? ""
  let rest = args.slice(1)
  if ((sub === "disk" || sub === "guest") && rest[0] !== undefined) {
    sub = `${sub} ${rest[0]}`
    rest = rest.slice(1)
  }
  if (sub === "resize") sub = "disk resize"
  if (sub === "move-disk" || sub === "move_disk") sub = "disk move"
  if (sub === "importdisk") sub = "disk import"
  if (sub === "agent") sub = "guest cmd"
  const { positional, options, rest: after } = parseCliArgs(rest)
  const api = async (method: string, path: string, params: Params) =>
    router.handle({ method, path, params, user: CLI_ROOT, localNode: node, cli: true })
  const upidExit = async (method: string, path: string, params: Params): Promise<ExecOutcome> => {
    try {
      const r = await api(method, path, params)
      const t = taskOf(st, r.data)
      if (t === undefined) return { stdout: "", stderr: "", code: 0 }
      await t.done
      const o = taskOutput(t)
      return { stdout: o.stdout, stderr: o.stderr, code: taskSucceeded(t) ? 0 : 255 }
    } catch (e) {
      return fail(e)
    }
  }
  const vmid = positional[0]
  const base = `/nodes/${node}/qemu`
  const needVmid = (): ExecOutcome | undefined =>
    vmid === undefined ? { stdout: "", stderr: `400 not enough arguments\nqm ${sub} <vmid>\n`, code: 255 } : undefined
  switch (sub) {
    case "list": {
      const full = options.full !== undefined
      const vms = [...st.vms.values()]
        .filter((v) => v.node === node && v.type === "qemu")
        .sort((a, b) => a.vmid - b.vmid)
      if (vms.length === 0) return { stdout: "", stderr: "", code: 0 }
      const fmt = (a: string, b: string, c: string, d: string, e: string, f: string) =>
        `${pad(a, 10, true)} ${pad(b, 20)} ${pad(c, 10)} ${pad(d, 10)} ${pad(e, 12, true)} ${pad(f, 10)}\n`
      let out = fmt("VMID", "NAME", "STATUS", "MEM(MB)", "BOOTDISK(GB)", "PID")
      for (const vm of vms)
        out += fmt(
          String(vm.vmid),
          vm.config.get("name") ?? `VM ${vm.vmid}`,
          full ? vm.qmpstatus : vm.status,
          String(st.memoryMiB(vm)),
          (st.maxdisk(vm) / 1024 ** 3).toFixed(2),
          String(vm.pid ?? 0)
        )
      return { stdout: out, stderr: "", code: 0 }
    }
    case "status": {
      const miss = needVmid()
      if (miss) return miss
      try {
        const vm = getVm(ctx, st.getNode(node) as never, Number(vmid))
        if (options.verbose !== undefined) {
          const s = st.statusCurrent(vm)
          delete s.ha
          delete s.agent
          delete s.cpu
          s.status = vm.qmpstatus
          let out = ""
          for (const k of Object.keys(s).sort()) {
            const v = s[k]
            if (v !== null && typeof v === "object") {
              out += `${k}:\n`
              for (const [ck, cv] of Object.entries(v as Record<string, unknown>))
                out += `\t${ck}: ${typeof cv === "object" ? JSON.stringify(cv) : String(cv)}\n`
            } else out += `${k}: ${String(v)}\n`
          }
          return { stdout: out, stderr: "", code: 0 }
        }
        return { stdout: `status: ${vm.qmpstatus}\n`, stderr: "", code: 0 }
      } catch (e) {
        return fail(e)
      }
    }
    case "config": {
      const miss = needVmid()
      if (miss) return miss
      try {
        const r = await api("GET", `${base}/${vmid}/config`, options.current !== undefined ? { current: "1" } : {})
        const cfg = r.data as Record<string, unknown>
        let out = ""
        for (const k of Object.keys(cfg).sort()) if (k !== "digest") out += `${k}: ${String(cfg[k])}\n`
        return { stdout: out, stderr: "", code: 0 }
      } catch (e) {
        return fail(e)
      }
    }
    case "create": {
      const miss = needVmid()
      if (miss) return miss
      const params: Params = { ...options, vmid: vmid as string }
      if (typeof params.sshkeys === "string") {
        const f = h.readFile(params.sshkeys)
        if (f === undefined)
          return { stdout: "", stderr: `can't open '${params.sshkeys}' - No such file or directory\n`, code: 255 }
        params.sshkeys = encodeURIComponent(f.toString("utf8"))
      }
      return upidExit("POST", base, params)
    }
    case "set": {
      const miss = needVmid()
      if (miss) return miss
      const params: Params = { ...options }
      if (typeof params.sshkeys === "string") {
        const f = h.readFile(params.sshkeys)
        if (f === undefined)
          return { stdout: "", stderr: `can't open '${params.sshkeys}' - No such file or directory\n`, code: 255 }
        params.sshkeys = encodeURIComponent(f.toString("utf8"))
      }
      const desc = Object.entries(options)
        .map(([k, v]) => `-${k} ${k === "cipassword" ? "<hidden>" : Array.isArray(v) ? v.join(",") : v}`)
        .join(" ")
      try {
        await api("PUT", `${base}/${vmid}/config`, params)
        return { stdout: `update VM ${vmid}: ${desc}\n`, stderr: "", code: 0 }
      } catch (e) {
        return { stdout: `update VM ${vmid}: ${desc}\n`, stderr: cliError(e), code: 255 }
      }
    }
    case "start":
    case "stop":
    case "shutdown":
    case "reset":
    case "reboot":
    case "suspend":
    case "resume": {
      const miss = needVmid()
      if (miss) return miss
      return upidExit("POST", `${base}/${vmid}/status/${sub}`, options)
    }
    case "destroy": {
      const miss = needVmid()
      if (miss) return miss
      return upidExit("DELETE", `${base}/${vmid}`, options)
    }
    case "unlock": {
      const miss = needVmid()
      if (miss) return miss
      try {
        const vm = getVm(ctx, st.getNode(node) as never, Number(vmid))
        st.touch(vm)
        vm.config.delete("lock")
        return { stdout: "", stderr: "", code: 0 }
      } catch (e) {
        return fail(e)
      }
    }
    case "disk resize": {
      const [id, disk, size] = positional
      if (id === undefined || disk === undefined || size === undefined)
        return {
          stdout: "",
          stderr: "400 not enough arguments\nqm disk resize <vmid> <disk> <size> [OPTIONS]\n",
          code: 255
        }
      try {
        const r = await api("PUT", `${base}/${id}/resize`, { ...options, disk, size })
        const t = taskOf(st, r.data)
        if (t === undefined) return { stdout: "", stderr: "", code: 0 }
        await t.done
        const o = taskOutput(t)
        // no upid_exit: the exit code is 0 even when the task failed
        return { stdout: o.stdout, stderr: o.stderr, code: 0 }
      } catch (e) {
        return fail(e)
      }
    }
    case "disk move": {
      // qm.pm: move_vm_disk with ['vmid', 'disk', 'storage'], $upid_exit
      const [id, disk, storage] = positional
      if (id === undefined || disk === undefined)
        return {
          stdout: "",
          stderr: "400 not enough arguments\nqm disk move <vmid> <disk> [<storage>] [OPTIONS]\n",
          code: 255
        }
      return upidExit("POST", `${base}/${id}/move_disk`, {
        ...options,
        disk,
        ...(storage !== undefined ? { storage } : {})
      })
    }
    case "disk import": {
      const [id, source, storage] = positional
      if (id === undefined || source === undefined || storage === undefined)
        return {
          stdout: "",
          stderr: "400 not enough arguments\nqm disk import <vmid> <source> <storage> [OPTIONS]\n",
          code: 255
        }
      try {
        const n = st.getNode(node)
        if (n === undefined) throw new PveError(500, "no such node")
        const vm = getVm(ctx, n, Number(id))
        const lock = vm.config.get("lock")
        if (lock !== undefined) throw new PveError(500, `VM is locked (${lock})`)
        let srcSize: number | undefined
        if (source.startsWith("/")) {
          const v = pathToVolume(n, source)
          srcSize = v?.storage.volumes.get(v.volname)?.size ?? h.readFile(source)?.length
        } else {
          const vid = parseVolid(source)
          srcSize = vid === undefined ? undefined : n.storages.get(vid.storage)?.volumes.get(vid.volname)?.size
        }
        if (srcSize === undefined) throw new PveError(500, `${source}: non-existent or non-regular file`)
        const s = n.storages.get(storage)
        if (s === undefined) throw new PveError(500, `storage '${storage}' does not exist`)
        if (!s.content.has("images")) throw new PveError(500, `storage ${storage} does not support vm images`)
        const format = (options.format as string | undefined) ?? (s.type === "dir" ? "raw" : "raw")
        const volname = nextDiskName(s, vm.vmid, format)
        const size = Math.ceil(srcSize / 1048576) * 1048576
        addVolume(s, {
          volname,
          content: "images",
          format,
          size,
          ctime: Math.floor(ctx.clock.now() / 1000),
          vmid: vm.vmid
        })
        let out = `importing disk '${source}' to VM ${vm.vmid} ...\n`
        if (s.type === "lvmthin") out += `  Logical volume "${volname}" created.\n`
        out += `transferred 0.0 B of ${renderSize(size)} (0.00%)\ntransferred ${renderSize(size)} of ${renderSize(size)} (100.00%)\n`
        const target = options["target-disk"] as string | undefined
        st.touch(vm)
        if (target !== undefined && DISK_KEY.test(target)) {
          const value = `${storage}:${volname},size=${renderSize(size)}`
          vm.config.set(target, value)
          out += `${target}: successfully imported disk '${value}'\n`
        } else {
          let i = 0
          while (vm.config.has(`unused${i}`)) i++
          vm.config.set(`unused${i}`, `${storage}:${volname}`)
          out += `unused${i}: successfully imported disk '${storage}:${volname}'\n`
        }
        return { stdout: out, stderr: "", code: 0 }
      } catch (e) {
        return fail(e)
      }
    }
    case "guest exec": {
      const miss = needVmid()
      if (miss) return miss
      const cmd = [...positional.slice(1), ...after]
      const sync = options.synchronous !== "0"
      if (!sync && options.timeout !== undefined)
        return {
          stdout: "",
          stderr: "400 Parameter verification failed.\ntimeout: 'timeout' cannot be used with 'synchronous' set to 0\n",
          code: 255
        }
      try {
        const params: Params = { command: cmd }
        if (options["pass-stdin"] !== undefined) params["input-data"] = stdin.toString("utf8")
        const r = await api("POST", `${base}/${vmid}/agent/exec`, params)
        const pid = (r.data as { pid: number }).pid
        if (!sync) return { stdout: `${prettyJson({ pid })}\n`, stderr: "", code: 0 }
        const timeout = Number(options.timeout ?? 30) * 1000
        const started = performance.now()
        for (;;) {
          const s = await api("GET", `${base}/${vmid}/agent/exec-status`, { pid: String(pid) })
          const d = s.data as Record<string, unknown>
          if (d.exited === 1) return { stdout: `${prettyJson(d)}\n`, stderr: "", code: 0 }
          if (performance.now() - started > timeout)
            return { stdout: `${prettyJson({ pid })}\n`, stderr: "timeout reached, returning pid\n", code: 0 }
          await ctx.clock.sleepReal(20)
        }
      } catch (e) {
        return fail(e)
      }
    }
    case "guest cmd": {
      const miss = needVmid()
      if (miss) return miss
      const command = positional[1] ?? ""
      try {
        const method = command === "ping" ? "POST" : "GET"
        const r = await api(method, `${base}/${vmid}/agent/${command}`, {})
        const result = (r.data as { result: unknown }).result
        const empty =
          result !== null && typeof result === "object" && !Array.isArray(result) && Object.keys(result).length === 0
        return { stdout: empty ? "" : `${prettyJson(result)}\n`, stderr: "", code: 0 }
      } catch (e) {
        return fail(e)
      }
    }
    default:
      return {
        stdout: "",
        stderr: `ERROR: unknown command 'qm ${args.join(" ")}'\nUSAGE: qm <COMMAND> [ARGS] [OPTIONS]\n`,
        code: 255
      }
  }
}
