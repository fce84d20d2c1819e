import type * as Duration from "effect/Duration"
import type * as Redacted from "effect/Redacted"
import type { PasswordMark } from "./PasswordMark.js"
import type { Timeouts } from "./Timeouts.js"

/** The cloud image every node must hold, as `download-url` needs it. */
export interface DesiredImage {
  readonly url: string
  /** Storage the image is downloaded to (file based: `dir`, `nfs`, …). */
  readonly storage: string
  /** `import` (PVE ≥ 8.4: `.qcow2`/`.raw`/`.vmdk`) or `iso` (`.img`/`.iso`). */
  readonly content: "import" | "iso"
  /**
   * File name on the storage, already valid for the content type. Unless `fixedName`, it carries the first 12 hex
   * digits of `checksum` (when there is one): an image of another checksum is another file.
   */
  readonly filename: string
  /** `image.filename` names the file: a file of that name on a node is used as it is, never checked again. */
  readonly fixedName?: boolean | undefined
  readonly checksum?: {
    readonly algorithm: "md5" | "sha1" | "sha224" | "sha256" | "sha384" | "sha512"
    readonly value: string
  }
  /**
   * How the image reaches the node (`image.transfer`): `download-url` (the node downloads `url` itself; PVE verifies
   * `checksum`) or `upload` (homelab fetches `url` once where it runs, verifies `checksum` before anything is
   * uploaded, and streams it to the node's upload endpoint, for nodes that cannot reach the internet). Absent means
   * `download-url`.
   */
  readonly transfer?: "download-url" | "upload" | undefined
}

/**
 * Custom cloud-init files (`vm.cicustom`), each a snippet volume `<storage>:snippets/<file>` that must exist on the
 * VM's node (the storage allows the `snippets` content). Set on the VM as PVE's `cicustom` property string,
 * `user=<vol>,network=<vol>,vendor=<vol>` (see `cicustomProperty`). A custom `user` file replaces the user-data PVE
 * generates: `user`, `password` and `sshKeys` then no longer reach the guest through PVE.
 */
export interface DesiredCicustom {
  readonly user?: string | undefined
  readonly network?: string | undefined
  readonly vendor?: string | undefined
}

/** Cloud-init settings a created VM gets. */
export interface DesiredCloudInit {
  readonly user: string
  readonly password?: Redacted.Redacted<string> | undefined
  /**
   * The mark of `password` on this VM (`PasswordMark.ts`), made with the API token's secret (`desiredFromConfig`):
   * the tag that says the VM's `cipassword` is `password`. Undefined without a password, or when no key was given:
   * a password the VM already has is then not compared (an `info` finding says so).
   */
  readonly passwordMark?: PasswordMark | undefined
  /** Public keys (OpenSSH one-line format). */
  readonly sshKeys: ReadonlyArray<string>
  /** PVE `ipconfig0` value, e.g. `ip=dhcp`. */
  readonly ipConfig: string
  readonly nameserver?: string | undefined
  readonly searchdomain?: string | undefined
  /** Custom cloud-init snippets; absent when the config names none. */
  readonly cicustom?: DesiredCicustom | undefined
}

/** One VM the config asks for. Sizes left out are derived from the node's capacity × the node's ratios. */
export interface DesiredVm {
  readonly name: string
  readonly node: string
  readonly role: "server" | "agent"
  /** A pinned VMID; otherwise candidates derive from the name (see `vmidCandidates`). */
  readonly vmid?: number | undefined
  readonly cores?: number | undefined
  readonly memoryMiB?: number | undefined
  readonly diskGiB: number
  /** Storage for the VM disk and the cloud-init drive. */
  readonly storage: string
  /** One NIC per bridge, in order (`net0` is the first). */
  readonly bridges: ReadonlyArray<string>
  /** Tags the VM carries, ownership tag included, normalised like PVE (lowercase, sorted, unique). */
  readonly tags: ReadonlyArray<string>
  readonly cpuType: string
  /** Settings managed only when homelab.yaml sets them (undefined: the VM's own value is left alone). */
  readonly sockets?: number | undefined
  /** Balloon minimum in MiB; 0 turns ballooning off. */
  readonly balloonMiB?: number | undefined
  readonly onboot?: boolean | undefined
  readonly description?: string | undefined
  readonly cloudInit: DesiredCloudInit
}

/** How a node is reached, for messages: its API URL and the SSH target of the fallback. */
export interface NodeEndpoints {
  /** `https://host:8006` */
  readonly api: string
  /** `user@host:port` */
  readonly ssh: string
  /** The API token's id (`user@realm!name`; never the secret), for messages about a rejected token. */
  readonly token?: string | undefined
}

export interface DesiredNode {
  readonly name: string
  readonly endpoints?: NodeEndpoints | undefined
  readonly cpuRatio: number
  readonly memoryRatio: number
  readonly image: DesiredImage
  /**
   * Whether homelab may run pvesh/qm as root over SSH on this node (`proxmox.fallback: ssh`, the default): what a
   * create that imports an iso-type image needs (`ImageImport`). `false` with `proxmox.fallback: off`; undefined
   * counts as allowed.
   */
  readonly rootOverSsh?: boolean | undefined
  readonly vms: ReadonlyArray<DesiredVm>
}

/** Phase 3: the k3s cluster every VM joins, and how to reach the VMs. */
export interface DesiredK3s {
  /**
   * An existing k3s server outside the VMs (the token and the Node list come from it over SSH), and its API port.
   * Undefined: the cluster runs on the VMs themselves; the first VM with role `server` initialises it when none of
   * them runs k3s yet, and every k3s step goes through a Ready server VM.
   */
  readonly server?:
    | {
        readonly host: string
        readonly port: number
        readonly user: string
        readonly apiPort: number
      }
    | undefined
  /** Host, IP or https URL clients reach the API at (`k3s.apiEndpoint`, e.g. a VIP): the kubeconfig's server. */
  readonly apiEndpoint?: string | undefined
  /** Release channel (`stable`, `v1.31`, …) when no version is pinned: its newest release is the target. */
  readonly channel?: string | undefined
  /** Rolling upgrades: agents upgraded at once (servers go one at a time), and each drain's limit. */
  readonly upgrade?: { readonly maxUnavailable: number; readonly drainTimeout: Duration.Duration } | undefined
  /** SSH user and port of the VMs (the cloud-init user). */
  readonly vmUser: string
  readonly vmSshPort: number
  /** Pin a version; default: the servers' version. */
  readonly version?: string | undefined
  /** k3s flags for every VM (`k3s.installFlags`): flags both `k3s server` and `k3s agent` define. */
  readonly installFlags: ReadonlyArray<string>
  /** k3s flags for the servers only, after `installFlags` (`k3s.serverFlags`); default none. */
  readonly serverFlags?: ReadonlyArray<string> | undefined
  /** k3s flags for the agents only, after `installFlags` (`k3s.agentFlags`); default none. */
  readonly agentFlags?: ReadonlyArray<string> | undefined
  readonly installScriptUrl: string
  /** Local folder with `k3s` and `install.sh` for airgap installs. */
  readonly airgap?: string | undefined
  readonly token?: Redacted.Redacted<string> | undefined
}

/** What the operator wants: the nodes, what each must hold, and the rules for getting there. */
export interface Desired {
  readonly nodes: ReadonlyArray<DesiredNode>
  /** The tag that marks a VM as ours; VMs without it are never touched. */
  readonly ownershipTag: string
  /**
   * Tag present while a VM is being provisioned; a VM still carrying it (a run failed, was interrupted, or is still at
   * it) gets finished.
   */
  readonly pendingTag: string
  readonly vmidRange: { readonly lower: number; readonly upper: number }
  readonly limits: {
    /** Most VMs recreated in one run (default 1). */
    readonly maxRecreatePerRun: number
  }
  /** VM names or VMIDs never to stop, delete or recreate, whatever their state. */
  readonly protect: ReadonlyArray<string | number>
  /**
   * Changes PVE applies only when a VM restarts (`vm.restart`): `never` (the default) applies them to the config and
   * reports them as pending; `rolling` restarts the VMs one at a time (k3s Node drained first, Ready again after).
   */
  readonly restart?: "never" | "rolling" | undefined
  /**
   * `vm.memoryOvercommit`: the factor on a node's memory that the memory preflight of a create allows its guests'
   * maxmem to add up to (vm-health's `memoryAdjustment`; default 1, no overcommit).
   */
  readonly memoryOvercommit?: number | undefined
  /** Phase 3, when homelab.yaml has a `k3s:` section. */
  readonly k3s?: DesiredK3s | undefined
  /** Limits of every wait; default `DefaultTimeouts`. */
  readonly timeouts?: Timeouts | undefined
  /**
   * The PVE users homelab acts as (`user@realm!token` of its API token; `root@pam` for pvesh/qm over SSH): a create
   * task started by one of them is an earlier or concurrent run's, which a run may wait for or stop when it hangs.
   */
  readonly taskUsers?: ReadonlyArray<string> | undefined
  /** The API token's id (`user@realm!name`): the principal a missing privilege is granted to in the preflight's fix. */
  readonly apiTokenId?: string | undefined
}
