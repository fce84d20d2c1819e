import type * as Redacted from "effect/Redacted"

/**
 * The resolved `homelab.yaml`: decoded, validated, every default applied and every derived value filled in
 * (endpoint ports, image file name, per-node image storage, expanded VM names, normalised tags). Secrets are
 * `Redacted`, so `JSON.stringify` and logs show `<redacted>`. Paths keep `~` (the CLI expands them).
 */
export interface HomelabConfig {
  readonly proxmox: ProxmoxSettings
  readonly ssh: SshSettings
  readonly image: ImageSettings
  readonly vm: VmSettings
  readonly nodes: ReadonlyArray<NodeSettings>
  readonly health: HealthSettings
  readonly safety: SafetyLimits
  readonly timeouts: TimeoutSettings
  /** At most this many PVE tasks in flight at once across the cluster. */
  readonly parallelism: number
  readonly k3s: K3sSettings | undefined
}

export interface ProxmoxEndpoint {
  /** `https://host:port` (port made explicit, default 8006). */
  readonly url: string
  readonly host: string
  readonly port: number
}

export type TlsSettings =
  | { readonly mode: "system" }
  | { readonly mode: "ca"; readonly ca: string }
  | { readonly mode: "fingerprint"; readonly fingerprint: string }
  | { readonly mode: "insecure" }

export interface ProxmoxSettings {
  /** At least one; the API is cluster-wide, the others are fallbacks tried in order. */
  readonly endpoints: ReadonlyArray<ProxmoxEndpoint>
  readonly auth: {
    /** `user@realm!name` */
    readonly tokenId: string
    readonly user: string
    readonly realm: string
    readonly tokenName: string
    readonly secret: Redacted.Redacted<string>
  }
  /** Fingerprints are uppercase colon hex. */
  readonly tls: TlsSettings
  readonly fallback: "ssh" | "off"
}

export interface SshSettings {
  readonly user: string
  readonly privateKey: string
  readonly passphrase: Redacted.Redacted<string> | undefined
  readonly agent: boolean
  readonly knownHosts: { readonly mode: "strict" | "accept-new" | "off"; readonly file: string }
  readonly port: number
  readonly jump: { readonly host: string; readonly port: number; readonly user: string } | undefined
}

export type ChecksumAlgorithm = "md5" | "sha1" | "sha224" | "sha256" | "sha384" | "sha512"

export interface ImageSettings {
  readonly url: string
  /** Lowercase hex. */
  readonly checksum: { readonly algorithm: ChecksumAlgorithm; readonly value: string } | undefined
  /**
   * Explicit (`image.filename`) or derived from the URL (content import: `.img` → `.qcow2`); a derived name carries
   * the first 12 hex digits of `image.checksum` when one is given (`noble-server-cloudimg-amd64-0123456789ab.qcow2`).
   */
  readonly filename: string
  /** `image.filename` was written in homelab.yaml (the name then carries no checksum). */
  readonly filenameSet: boolean
  readonly storage: string
  readonly content: "import" | "iso"
  /** `<storage>:<content>/<filename>`, e.g. `local:import/noble.qcow2` (for `image.storage`). */
  readonly volid: string
  /** `download-url`: each node downloads the image itself; `upload`: homelab fetches it once and uploads it. */
  readonly transfer: "download-url" | "upload"
}

/** `vm.cicustom`: snippet volumes (`<storage>:snippets/<file>`) replacing the cloud-init files PVE generates. */
export interface CicustomSettings {
  readonly user?: string | undefined
  readonly network?: string | undefined
  readonly vendor?: string | undefined
}

export interface VmSettings {
  readonly nameTemplate: string
  readonly diskSize: string
  readonly user: string
  readonly password: Redacted.Redacted<string> | undefined
  /** Key lines or `*.pub` paths, as written. */
  readonly sshKeys: ReadonlyArray<string>
  readonly ipConfig: string
  readonly nameserver: string | undefined
  readonly searchdomain: string | undefined
  /** Custom cloud-init snippets; undefined when none is set. */
  readonly cicustom: CicustomSettings | undefined
  /** Lowercase, sorted, deduplicated; always contains `safety.requireTag`. */
  readonly tags: ReadonlyArray<string>
  readonly cpuType: string
  /** CPU sockets; undefined: not managed. */
  readonly sockets: number | undefined
  /** Balloon minimum in MiB (0: ballooning off); undefined: not managed. */
  readonly balloon: number | undefined
  /** The factor on a node's memory its guests' maxmem may add up to before a create is refused (1: no overcommit). */
  readonly memoryOvercommit: number
  /** Start at node boot; undefined: not managed. */
  readonly onboot: boolean | undefined
  /** The VM's notes; undefined: not managed (homelab's own note at creation). */
  readonly description: string | undefined
  /** Whether apply restarts VMs for changes PVE applies only at a restart (default `never`: report them). */
  readonly restart: "never" | "rolling"
  /** SSH port of the VMs (default 22). */
  readonly sshPort: number
  readonly vmidRange: { readonly lower: number; readonly upper: number } | undefined
}

export type K3sRole = "agent" | "server"

export interface VmPlan {
  /** Final VM name (template expanded), unique cluster-wide, a valid DNS name. */
  readonly name: string
  /** 1-based position on its node. */
  readonly index: number
  readonly role: K3sRole
  /** Undefined: derive from the node's CPUs × cpuRatio. */
  readonly cores: number | undefined
  /** MiB; undefined: derive from the node's memory × memoryRatio. */
  readonly memory: number | undefined
  readonly diskSize: string
  readonly ipConfig: string
}

export interface NodeSettings {
  readonly name: string
  readonly address: string | undefined
  /** The API URL requests for this node go to (its own, or the cluster endpoint, which proxies). */
  readonly api: ProxmoxEndpoint
  readonly sshPort: number
  readonly storage: string
  readonly imageStorage: string
  readonly bridges: ReadonlyArray<string>
  readonly cpuRatio: number
  readonly memoryRatio: number
  readonly vms: ReadonlyArray<VmPlan>
}

export interface HealthSettings {
  readonly stopped: "recreate" | "start" | "keep"
  readonly paused: "recreate" | "resume" | "keep"
  readonly prelaunch: "recreate" | "keep"
  readonly agentMissing: "keep" | "recreate"
  readonly graceSeconds: number
}

/** `timeouts:`, in seconds. */
export interface TimeoutSettings {
  readonly task: number
  readonly ip: number
  readonly k3sInstall: number
  readonly k3sReady: number
  /** One Proxmox API request's answer. */
  readonly api: number
  /** Opening a connection to a node's API (TCP connect and TLS handshake). */
  readonly connect: number
  /** Opening an SSH connection (TCP connect, handshake and authentication) to a node, the k3s server or a VM. */
  readonly ssh: number
}

export interface SafetyLimits {
  readonly maxRecreatePerRun: number
  readonly protect: { readonly names: ReadonlyArray<string>; readonly vmids: ReadonlyArray<number> }
  /** Lowercase. */
  readonly requireTag: string
}

export interface K3sSettings {
  /**
   * An existing server outside homelab.yaml's VMs; undefined when the cluster runs on the VMs themselves (the first VM
   * with role `server` initialises it).
   */
  readonly server:
    | { readonly host: string; readonly port: number; readonly user: string; readonly apiPort: number }
    | undefined
  /** Host, IP or https URL clients reach the API at (`homelab kubeconfig`); undefined: a Ready server's address. */
  readonly apiEndpoint: string | undefined
  /** Rolling upgrades: agents at once, and each drain's limit in seconds. */
  readonly upgrade: { readonly maxUnavailable: number; readonly drainTimeout: number }
  readonly role: K3sRole
  readonly version: string | undefined
  readonly channel: string | undefined
  readonly installScriptUrl: string
  /** Flags for every VM (both k3s commands define them). */
  readonly installFlags: ReadonlyArray<string>
  /** Flags for the servers, after `installFlags`. */
  readonly serverFlags: ReadonlyArray<string>
  /** Flags for the agents, after `installFlags`. */
  readonly agentFlags: ReadonlyArray<string>
  readonly airgap: string | undefined
  readonly token: Redacted.Redacted<string> | undefined
}
