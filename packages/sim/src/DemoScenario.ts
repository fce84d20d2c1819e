import { DEFAULT_PVE_VERSION } from "./internal/Version.js"
import type { Scenario } from "./Scenario.js"

/**
 * The built-in demo homelab: four PVE 9.1 nodes on loopback with ephemeral ports, stock storages and bridges, an image
 * origin with an Ubuntu cloud image, guest SSH on 127.77.0.x:2222, and an existing k3s server VM (`k3s-server`, vmid
 * 200 on `pve`, 127.77.0.5, user `ubuntu` with the simulator's SSH key). Returned fresh on each call so callers can
 * tweak it.
 */
export const demoScenario = (): Scenario => {
  const nineContent = true
  const storages = (lvmGiB: number) => [
    {
      id: "local",
      type: "dir" as const,
      content: nineContent ? (["iso", "vztmpl", "backup", "import"] as const) : (["iso", "vztmpl", "backup"] as const),
      capacity: "100G",
      path: "/var/lib/vz"
    },
    { id: "local-lvm", type: "lvmthin" as const, content: ["rootdir", "images"] as const, capacity: `${lvmGiB}G` }
  ]
  return {
    pveVersion: DEFAULT_PVE_VERSION,
    clusterName: "homelab",
    nodes: [
      {
        name: "pve",
        cpus: 8,
        memory: "32G",
        address: "127.0.0.1",
        apiPort: 0,
        sshPort: 0,
        bridges: [
          { name: "vmbr0", active: true, address: "192.168.1.10/24" },
          { name: "vmbr1", active: true }
        ],
        storages: storages(800)
      },
      {
        name: "still-fawn",
        cpus: 12,
        memory: "64G",
        address: "127.0.0.1",
        apiPort: 0,
        sshPort: 0,
        bridges: [{ name: "vmbr0", active: true, address: "192.168.1.11/24" }],
        storages: storages(1800)
      },
      {
        name: "chief-horse",
        cpus: 4,
        memory: "16G",
        address: "127.0.0.1",
        apiPort: 0,
        sshPort: 0,
        bridges: [
          { name: "vmbr0", active: true, address: "192.168.1.12/24" },
          { name: "vmbr1", active: true }
        ],
        storages: storages(400)
      },
      {
        name: "pumped-piglet",
        cpus: 16,
        memory: "128G",
        address: "127.0.0.1",
        apiPort: 0,
        sshPort: 0,
        bridges: [{ name: "vmbr0", active: true, address: "192.168.1.13/24" }],
        storages: storages(1800)
      }
    ],
    vms: [
      // an existing k3s server (not managed by the reconciler): k3s is running, token files and Node are in place
      {
        vmid: 200,
        node: "pve",
        name: "k3s-server",
        status: "running",
        uptime: 14 * 86_400,
        ip: "127.77.0.5",
        config: {
          cores: 2,
          memory: "4096",
          agent: "1",
          net0: "virtio=BC:24:11:2A:00:C8,bridge=vmbr0",
          scsi0: "local-lvm:vm-200-disk-0,size=32G",
          ipconfig0: "ip=127.77.0.5/8,gw=127.0.0.1"
        },
        guest: { hostname: "k3s-server", user: "ubuntu", k3s: { role: "server", clusterInit: true } }
      }
    ],
    k3s: { version: "v1.30.5+k3s1" },
    imageOrigin: {
      files: [
        { path: "/noble/current/noble-server-cloudimg-amd64.img", size: "64M" },
        { path: "/noble/current/noble-server-cloudimg-amd64.qcow2", size: "64M" }
      ]
    },
    ipPool: "127.77.0.10",
    guestSshPort: 2222,
    timeScale: 1,
    timings: {
      createMs: 1500,
      startMs: 800,
      bootMs: 6000,
      agentMs: 4000,
      rrdIntervalMs: 10_000,
      unauthorizedDelayMs: 3000
    },
    faults: []
  }
}
