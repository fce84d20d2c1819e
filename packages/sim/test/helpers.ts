import { spawn } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import proxmoxApi from "proxmox-api"
import ssh2 from "ssh2"
import { Agent, fetch as undiciFetch } from "undici"
import type { Scenario, SimHandle } from "../src/index.js"

const { Client } = ssh2

/** A small 1–2 node scenario, fast timings, no 401 delay. */
export const testScenario = (over: Partial<Scenario> = {}): Scenario => ({
  pveVersion: "8.4.1",
  nodes: [
    {
      name: "pve",
      apiPort: 0,
      sshPort: 0,
      address: "127.0.0.1",
      bridges: [{ name: "vmbr0" }, { name: "vmbr1", active: false }],
      storages: [
        { id: "local", type: "dir", content: ["iso", "vztmpl", "backup", "import", "snippets"], capacity: "100G" },
        { id: "local-lvm", type: "lvmthin", content: ["rootdir", "images"], capacity: "200G" }
      ]
    },
    {
      name: "pve2",
      apiPort: 0,
      sshPort: 0,
      address: "127.0.0.1",
      storages: [
        { id: "local", type: "dir", content: ["iso", "vztmpl", "backup"], capacity: "100G" },
        { id: "local-lvm", type: "lvmthin", content: ["rootdir", "images"], capacity: "200G" }
      ]
    }
  ],
  imageOrigin: {
    files: [
      { path: "/img/noble.qcow2", size: "2M" },
      { path: "/img/noble.img", size: "2M" }
    ]
  },
  timeScale: 0.01,
  timings: { unauthorizedDelayMs: 0, rrdIntervalMs: 0 },
  guestSshPort: 0,
  ...over
})

export type Px = ReturnType<typeof proxmoxApi>

/** The npm proxmox-api client trusting the sim's CA through an undici Agent. */
export const pxClient = (sim: SimHandle, nodeIndex = 0, auth?: { tokenID: string; tokenSecret: string }): Px => {
  const n = sim.info.nodes[nodeIndex]
  if (n === undefined) throw new Error("no node")
  const u = new URL(n.api)
  const agent = new Agent({ connect: { ca: sim.info.ca } })
  return proxmoxApi({
    host: u.hostname,
    port: Number(u.port),
    tokenID: auth?.tokenID ?? sim.info.auth.tokenId,
    tokenSecret: auth?.tokenSecret ?? sim.info.auth.tokenSecret,
    queryTimeout: 10_000,
    fetch: ((url: string, init: object) => undiciFetch(url, { ...init, dispatcher: agent })) as never
  })
}

/** Raw HTTPS request (status line, headers, body) trusting the CA. */
export const raw = async (
  sim: SimHandle,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer; nodeIndex?: number; auth?: boolean } = {}
): Promise<{
  status: number
  statusText: string
  headers: Record<string, string | Array<string> | undefined>
  body: string
}> => {
  const https = await import("node:https")
  const n = sim.info.nodes[opts.nodeIndex ?? 0]
  if (n === undefined) throw new Error("no node")
  const u = new URL(n.api)
  const headers: Record<string, string> = { ...(opts.headers ?? {}) }
  if (opts.auth !== false && headers.Authorization === undefined)
    headers.Authorization = `PVEAPIToken=${sim.info.auth.tokenId}=${sim.info.auth.tokenSecret}`
  if (opts.body !== undefined && headers["Content-Length"] === undefined && headers["Transfer-Encoding"] === undefined)
    headers["Content-Length"] = String(Buffer.byteLength(opts.body))
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: u.hostname, port: Number(u.port), method, path, headers, ca: sim.info.ca, agent: false },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            statusText: res.statusMessage ?? "",
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8")
          })
        )
      }
    )
    req.on("error", reject)
    if (opts.body !== undefined) req.write(opts.body)
    req.end()
  })
}

/** Poll a task until it stops; returns the status object. */
export const waitTask = async (
  px: Px,
  node: string,
  upid: string,
  /** a hang guard, as `until`'s */
  looks = 10_000
): Promise<Record<string, unknown>> => {
  for (let i = 0; ; i++) {
    const s = (await px.nodes.$(node).tasks.$(upid).status.$get()) as unknown as Record<string, unknown>
    if (s.status === "stopped") return s
    if (i >= looks) throw new Error(`task ${upid} still running`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/**
 * Polls `fn` (every 10 ms) until it returns a value. The limit, a number of looks (at least 100 s, longer on a busy
 * machine), is a guard against a hang that reports the last error, not a timing expectation.
 */
export const until = async <A>(fn: () => Promise<A | undefined>, looks = 10_000): Promise<A> => {
  let lastErr: unknown
  for (let i = 0; ; i++) {
    try {
      const v = await fn()
      if (v !== undefined) return v
    } catch (e) {
      lastErr = e
    }
    if (i >= looks) throw new Error(`gave up: ${String((lastErr as Error)?.message ?? lastErr)}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** Run a command over SSH with the ssh2 client (key auth). */
export const sshExec = (
  host: string,
  port: number,
  user: string,
  privateKey: string,
  command: string,
  stdin?: string
): Promise<{ stdout: string; stderr: string; code: number }> =>
  new Promise((resolve, reject) => {
    const c = new Client()
    c.on("ready", () => {
      c.exec(command, (err, stream) => {
        if (err) {
          c.end()
          reject(err)
          return
        }
        let stdout = ""
        let stderr = ""
        let code = -1
        stream.on("data", (d: Buffer) => {
          stdout += d.toString()
        })
        stream.stderr.on("data", (d: Buffer) => {
          stderr += d.toString()
        })
        stream.on("exit", (c2: number) => {
          code = c2
        })
        stream.on("close", () => {
          c.end()
          resolve({ stdout, stderr, code })
        })
        if (stdin !== undefined) stream.end(stdin)
      })
    })
    c.on("error", reject)
    c.connect({ host, port, username: user, privateKey, readyTimeout: 30_000 })
  })

/** Run /usr/bin/ssh (OpenSSH) against a node. */
export const openssh = (
  sim: SimHandle,
  nodeIndex: number,
  command: string,
  stdin?: string
): Promise<{ stdout: string; stderr: string; code: number }> => {
  const n = sim.info.nodes[nodeIndex]
  if (n === undefined) throw new Error("no node")
  const dir = mkdtempSync(join(tmpdir(), "sim-kh-"))
  const kh = join(dir, "known_hosts")
  writeFileSync(kh, `[${n.ssh.host}]:${n.ssh.port} ${n.sshHostKey}\n`)
  return new Promise((resolve, reject) => {
    const p = spawn(
      "/usr/bin/ssh",
      [
        "-i",
        sim.info.sshPrivateKeyPath,
        "-o",
        `UserKnownHostsFile=${kh}`,
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-F",
        "/dev/null",
        "-p",
        String(n.ssh.port),
        `${sim.info.sshUser}@${n.ssh.host}`,
        command
      ],
      { stdio: ["pipe", "pipe", "pipe"] }
    )
    let stdout = ""
    let stderr = ""
    p.stdout.on("data", (d: Buffer) => {
      stdout += d.toString()
    })
    p.stderr.on("data", (d: Buffer) => {
      stderr += d.toString()
    })
    p.on("error", reject)
    p.on("close", (code) => resolve({ stdout, stderr, code: code ?? -1 }))
    p.stdin.end(stdin ?? "")
  })
}
