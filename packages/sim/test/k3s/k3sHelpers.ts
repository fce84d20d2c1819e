import ssh2 from "ssh2"
import { generateSshKey, type Scenario, type SimHandle } from "../../src/index.js"
import { testScenario, until } from "../helpers.js"

const { Client } = ssh2

/** The test's own SSH key, authorised for the `ubuntu` user of every guest below. */
export const testKey = generateSshKey("k3s-test")

export const TOKEN = "s3cr3t-sim-token-0123456789abcdef"

export const guestVm = (vmid: number, name: string, ip: string, extra: Record<string, unknown> = {}) => ({
  vmid,
  node: "pve",
  name,
  status: "running" as const,
  ip,
  config: { net0: "virtio=BC:24:11:00:00:01,bridge=vmbr0", cores: 2 },
  guest: { hostname: name, user: "ubuntu", authorizedKeys: [testKey.publicKey], ...extra }
})

/**
 * A small homelab: an existing k3s server (vmid 200, cluster-init), optionally a second existing server (202), and
 * plain Ubuntu guests without k3s (301–304). Joins are fast: time scale 0.01.
 */
export const k3sScenario = (opts: { secondServer?: boolean; faults?: Scenario["faults"] } = {}): Scenario =>
  testScenario({
    vms: [
      guestVm(200, "k3s-server", "127.78.0.10", { k3s: { role: "server", clusterInit: true } }),
      ...(opts.secondServer === true ? [guestVm(202, "k3s-server-2", "127.78.0.12", { k3s: { role: "server" } })] : []),
      guestVm(301, "worker-1", "127.78.0.31"),
      guestVm(302, "worker-2", "127.78.0.32"),
      guestVm(303, "cp-2", "127.78.0.33"),
      guestVm(304, "cp-3", "127.78.0.34"),
      {
        vmid: 305,
        node: "pve",
        name: "worker-1",
        status: "stopped" as const,
        ip: "127.78.0.35",
        config: { net0: "virtio=BC:24:11:00:00:05,bridge=vmbr0", sshkeys: encodeURIComponent(testKey.publicKey) }
      },
      {
        vmid: 306,
        node: "pve",
        name: "k3s-server-2",
        status: "stopped" as const,
        ip: "127.78.0.36",
        config: { net0: "virtio=BC:24:11:00:00:06,bridge=vmbr0", sshkeys: encodeURIComponent(testKey.publicKey) }
      }
    ],
    k3s: {
      version: "v1.30.5+k3s1",
      token: TOKEN,
      joinDelayMs: 2000,
      readyDelayMs: 30_000,
      learnerPromotionDelayMs: 6000
    },
    faults: opts.faults ?? []
  })

/**
 * An HA cluster that exists already: servers s1 (cluster-init, 200), s2 (201), s3 (202), agents a1 (301), a2 (302),
 * plain guests 303 and 304; Deployments `web` (2 replicas, PDB minAvailable 1) and `db` (1 replica, PDB minAvailable 1:
 * never evictable). Time scale 0.01.
 */
export const haScenario = (
  opts: { faults?: Scenario["faults"]; k3s?: Partial<NonNullable<Scenario["k3s"]>> } = {}
): Scenario =>
  testScenario({
    vms: [
      guestVm(200, "s1", "127.78.1.10", { k3s: { role: "server", clusterInit: true } }),
      guestVm(201, "s2", "127.78.1.11", { k3s: { role: "server" } }),
      guestVm(202, "s3", "127.78.1.12", { k3s: { role: "server" } }),
      guestVm(301, "a1", "127.78.1.21", { k3s: { role: "agent" } }),
      guestVm(302, "a2", "127.78.1.22", { k3s: { role: "agent" } }),
      guestVm(303, "a3", "127.78.1.23"),
      guestVm(304, "a4", "127.78.1.24")
    ],
    k3s: {
      version: "v1.30.5+k3s1",
      token: TOKEN,
      joinDelayMs: 2000,
      readyDelayMs: 3000,
      learnerPromotionDelayMs: 3000,
      workloads: [
        { name: "web", replicas: 2, pdb: { minAvailable: 1 } },
        { name: "db", replicas: 1, pdb: { minAvailable: 1 } }
      ],
      ...opts.k3s
    },
    faults: opts.faults ?? []
  })

export interface ExecResult {
  readonly stdout: string
  readonly stderr: string
  readonly code: number
  readonly timedOut: boolean
}

/** Where the guest of `vmid` listens for SSH (waits until it does). */
export const guestAddr = (sim: SimHandle, vmid: number) =>
  until(async () => {
    const vm = sim.state().vms.find((v) => v.vmid === vmid)
    return typeof vm?.guestSshPort === "number" && typeof vm.ip === "string"
      ? { host: vm.ip, port: vm.guestSshPort }
      : undefined
  })

const connect = (host: string, port: number, privateKey: string, user: string) =>
  new Promise<InstanceType<typeof Client>>((resolve, reject) => {
    const c = new Client()
    c.on("ready", () => resolve(c))
    c.on("error", reject)
    c.connect({ host, port, username: user, privateKey, readyTimeout: 30_000 })
  })

const pool = new Map<string, Promise<InstanceType<typeof Client>>>()

/** Close the pooled connections (afterAll). */
export const closeConnections = async () => {
  for (const c of pool.values()) (await c.catch(() => undefined))?.end()
  pool.clear()
}

/**
 * Run one command on a guest over real SSH (one pooled connection per guest); when `timeoutMs` passes the connection
 * is closed (`timedOut`), as an SSH client with a command timeout does.
 */
export const run = async (
  sim: SimHandle,
  vmid: number,
  command: string,
  opts: {
    stdin?: string
    timeoutMs?: number
    privateKey?: string
    user?: string
    /** called right before the command goes out (after the guest's address is known and the connection is up) */
    onSend?: () => void
  } = {}
): Promise<ExecResult> => {
  const { host, port } = await guestAddr(sim, vmid)
  const key = `${host}:${port}:${opts.user ?? "ubuntu"}`
  let conn = pool.get(key)
  if (conn === undefined) {
    conn = connect(host, port, opts.privateKey ?? testKey.privateKey, opts.user ?? "ubuntu")
    pool.set(key, conn)
    const p = conn
    void p.then(
      (c) => c.on("close", () => pool.get(key) === p && pool.delete(key)),
      () => pool.delete(key)
    )
  }
  const c = await conn
  return new Promise((resolve, reject) => {
    opts.onSend?.()
    c.exec(command, (err, stream) => {
      if (err) {
        pool.delete(key)
        c.end()
        reject(err)
        return
      }
      let stdout = ""
      let stderr = ""
      let code = -1
      let timedOut = false
      const timer =
        opts.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true
              pool.delete(key)
              c.end()
              resolve({ stdout, stderr, code, timedOut })
            }, opts.timeoutMs)
      stream.on("data", (d: Buffer) => {
        stdout += d.toString()
      })
      stream.stderr.on("data", (d: Buffer) => {
        stderr += d.toString()
      })
      stream.on("exit", (x: number) => {
        code = x
      })
      stream.on("close", () => {
        if (timer !== undefined) clearTimeout(timer)
        if (!timedOut) resolve({ stdout, stderr, code, timedOut })
      })
      stream.end(opts.stdin ?? "")
    })
  })
}

/** Upload like `@homelab/ssh` does: temporary name in the same directory, chmod, rename over the target. */
export const upload = async (sim: SimHandle, vmid: number, path: string, data: Buffer, mode: number) => {
  await run(sim, vmid, "true")
  const { host, port } = await guestAddr(sim, vmid)
  const c = await (pool.get(`${host}:${port}:ubuntu`) as Promise<InstanceType<typeof Client>>)
  await new Promise<void>((resolve, reject) => {
    c.sftp((err, sftp) => {
      if (err) return reject(err)
      const dir = path.slice(0, path.lastIndexOf("/"))
      const base = path.slice(path.lastIndexOf("/") + 1)
      const temp = `${dir}/.${base}.abc123.tmp`
      sftp.writeFile(temp, data, { mode, flag: "wx" }, (e1) => {
        if (e1) return reject(e1)
        sftp.chmod(temp, mode, (e2) => {
          if (e2) return reject(e2)
          sftp.rename(temp, path, (e3) => {
            if (e3) return reject(e3)
            sftp.end()
            resolve()
          })
        })
      })
    })
  })
}

/** The token as the library ships it: on stdin into a root-only config file — never on a command line. */
export const writeToken = (sim: SimHandle, vmid: number, token: string) =>
  run(sim, vmid, "sudo -n install -D -m 600 /dev/stdin /etc/rancher/k3s/config.yaml", {
    stdin: `token: ${JSON.stringify(token)}\n`
  })

export const serverToken = async (sim: SimHandle) => {
  const r = await run(sim, 200, "sudo -n cat /var/lib/rancher/k3s/server/token")
  return r.stdout.trim()
}

export const journal = async (sim: SimHandle, vmid: number, unit: string) =>
  (await run(sim, vmid, `sudo -n journalctl -u ${unit} --no-pager -n 200 -o cat`)).stdout

export const nodeOf = (sim: SimHandle, name: string) => sim.state().k3s.nodes.find((n) => n.name === name)
