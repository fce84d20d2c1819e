import { DEFAULT_PVE_VERSION } from "./internal/Version.js"
import type { Scenario, VmSpec } from "./Scenario.js"

/** What `labScenario` lets you change besides the node names; anything else of `Scenario` passes through. */
export interface LabOptions extends Partial<Scenario> {
  /** Logical CPUs per node (default 8). */
  readonly cpus?: number | undefined
  /** Memory per node (default `64G`). */
  readonly memory?: string | undefined
  /** Size of the cloud image the origin serves (default `4M`). */
  readonly imageSize?: string | undefined
  /**
   * The nodes' address (default `127.0.0.1`). A lab of its own on a loopback address no other process uses (one of
   * `reserveLoopbackNet`'s) keeps a port that an `apiDown` fault frees from being taken by another server meanwhile.
   */
  readonly address?: string | undefined
}

/**
 * A uniform lab for tests, benchmarks and trying a config offline: nodes on 127.0.0.1 (or `address`) with ephemeral API and SSH
 * ports, bridge `vmbr0`, `local` (dir: iso, vztmpl, backup, import) and `local-lvm` (lvmthin: rootdir, images), an
 * image origin serving `/noble/noble-server-cloudimg-amd64.img`, PVE 9.1 (`pveVersion` to change it), and no 401 delay. Guests get ephemeral SSH
 * ports unless `guestSshPort` says otherwise.
 */
export const labScenario = (nodes: ReadonlyArray<string>, options: LabOptions = {}): Scenario => {
  const { cpus = 8, memory = "64G", imageSize = "4M", address = "127.0.0.1", ...scenario } = options
  return {
    pveVersion: DEFAULT_PVE_VERSION,
    nodes: nodes.map((name) => ({
      name,
      cpus,
      memory,
      address,
      apiPort: 0,
      sshPort: 0,
      bridges: [{ name: "vmbr0", active: true }],
      storages: [
        { id: "local", type: "dir", content: ["iso", "vztmpl", "backup", "import"], capacity: "200G" },
        { id: "local-lvm", type: "lvmthin", content: ["rootdir", "images"], capacity: "1T" }
      ]
    })),
    vms: [],
    imageOrigin: { files: [{ path: "/noble/noble-server-cloudimg-amd64.img", size: imageSize }] },
    guestSshPort: 0,
    faults: [],
    ...scenario,
    timings: { unauthorizedDelayMs: 0, ...scenario.timings }
  }
}

/**
 * A running k3s server VM that is not homelab's (no ownership tag): VMID 200 on `node`, at `ip`, the first server of
 * its cluster. The cluster a lab's VMs join in tests and benchmarks (`k3s.server` at `ip`). Its cluster is on embedded
 * etcd (started with `--cluster-init`: `clusterInit`), unless `datastore` is `sqlite`: installed the default way,
 * `curl -sfL https://get.k3s.io | sh -`, which no server can join.
 */
export const existingK3sServerVm = (
  node: string,
  ip: string,
  options: {
    readonly datastore?: "etcd" | "sqlite" | undefined
    /** further k3s flags it runs with (`--datastore-endpoint=…`: an external datastore) */
    readonly flags?: ReadonlyArray<string> | undefined
  } = {}
): VmSpec => ({
  vmid: 200,
  node,
  name: "k3s-server",
  status: "running",
  uptime: 86_400,
  ip,
  config: { cores: 2, memory: "4096", agent: "1", net0: "virtio=BC:24:11:2A:00:C8,bridge=vmbr0" },
  guest: {
    hostname: "k3s-server",
    user: "ubuntu",
    k3s: {
      role: "server",
      ...(options.datastore === "sqlite" ? { datastore: "sqlite" } : { clusterInit: true }),
      ...(options.flags === undefined ? {} : { flags: options.flags })
    }
  }
})
