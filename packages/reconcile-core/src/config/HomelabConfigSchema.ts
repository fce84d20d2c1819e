// biome-ignore-all lint/suspicious/noTemplateCurlyInString: this file deals with literal ${VAR} references
/**
 * The Effect Schema of `homelab.yaml` as written by the user (after `${ENV}` interpolation). Decoding applies the
 * plain defaults; `parseConfig` then runs the cross-field checks and derives the resolved `HomelabConfig`.
 * `configJsonSchema()` is generated from this same schema.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import {
  bridgePattern,
  checkEndpointUrl,
  checkHostOrIp,
  checkIpConfig,
  checkNameservers,
  checkSshKey,
  checksumAlgorithms,
  cpuTypePattern,
  diskSizePattern,
  fingerprintPattern,
  isHostOrIp,
  k3sChannelPattern,
  k3sVersionPattern,
  linuxUserPattern,
  nodeNamePattern,
  snippetVolumePattern,
  storageIdPattern,
  tagPattern,
  tokenIdPattern
} from "./internal/formats.js"

// ---------------------------------------------------------------------------------------------- building blocks

const withDefault = <S extends Schema.Top>(schema: S, value: S["Encoded"] & S["Type"], description: string) =>
  schema.annotate({ description, default: value }).pipe(Schema.withDecodingDefaultKey(Effect.succeed(value)))

/** An optional section whose keys all have defaults: a missing section decodes like `{}`. */
const section = <S extends Schema.Top>(schema: S, description: string) => {
  const annotated = schema.annotate({ description })
  return Schema.withDecodingDefaultKey(Effect.succeed({} as (typeof annotated)["Encoded"]))(annotated)
}

const optional = <S extends Schema.Top>(schema: S, description: string) =>
  Schema.optionalKey(schema.annotate({ description }))

const patterned = (regExp: RegExp, expected: string) => Schema.String.check(Schema.isPattern(regExp, { expected }))

// `toJsonSchema: () => ({})` marks the custom rule as "no JSON Schema counterpart" (plain string) so that the
// field keeps its description in the generated JSON Schema.
const checked = (check: (value: string) => string | undefined, expected: string) =>
  Schema.String.check(Schema.makeFilter((value: string) => check(value), { expected, toJsonSchema: () => ({}) }))

const nonEmpty = Schema.String.check(Schema.isMinLength(1, { expected: "a non-empty string" }))

/** A secret: a literal or (better) a `${VAR}` reference; decoded into `Redacted`. */
const secret = (description: string) => Schema.RedactedFromValue(nonEmpty.annotate({ description }))

const port = Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 }, { expected: "a port in 1..65535" }))
const hostOrIp = checked(checkHostOrIp, "an IP address or a DNS host name")
const ratio = Schema.Finite.check(
  Schema.isBetween({ minimum: 0, maximum: 1, exclusiveMinimum: true }, { expected: "a number in (0, 1]" })
)
const storageId = patterned(storageIdPattern, "a PVE storage id like local or local-lvm")
const diskSize = patterned(diskSizePattern, "a disk size like 64G (digits, then K, M, G or T; G = GiB)")
const tag = patterned(tagPattern, "a PVE tag: letters, digits, and _ - + . (not first)")
const path = nonEmpty
const snippetVolume = patterned(snippetVolumePattern, "a snippet volume like local:snippets/user-data.yaml")
const linuxUser = patterned(
  linuxUserPattern,
  "a Linux user name: a lowercase letter or _, then lowercase letters, digits, _ or - (at most 31 characters)"
)
const vmid = Schema.Int.check(
  Schema.isBetween({ minimum: 100, maximum: 999_999_999 }, { expected: "a VM id in 100..999999999" })
)

// ---------------------------------------------------------------------------------------------- proxmox

export const TlsSchema = Schema.Struct({
  ca: optional(path, "Path of a PEM file with the CA that signed the PVE certificates."),
  fingerprint: optional(
    patterned(fingerprintPattern, "a SHA-256 fingerprint of 32 colon-separated hex bytes (AA:BB:...)"),
    "SHA-256 fingerprint of the PVE API certificate (`ssl_fingerprint` of GET /nodes), AA:BB:... (32 bytes)."
  ),
  insecure: optional(Schema.Boolean, "Skip certificate verification entirely (not recommended).")
}).annotate({
  description: "How to trust the PVE API certificate: at most one of ca, fingerprint, insecure; none = system CAs."
})

export const ProxmoxSchema = Schema.Struct({
  endpoint: optional(
    checked(checkEndpointUrl, "an https URL like https://pve1.lan:8006"),
    "The PVE API URL (https, default port 8006). One is enough: the API is cluster-wide."
  ),
  endpoints: optional(
    Schema.Array(checked(checkEndpointUrl, "an https URL like https://pve1.lan:8006")).check(
      Schema.isMinLength(1, { expected: "at least one endpoint" })
    ),
    "Several PVE API URLs, tried in order (alternative to endpoint)."
  ),
  auth: Schema.Struct({
    tokenId: patterned(tokenIdPattern, "an API token id like root@pam!homelab (user@realm!name)").annotate({
      description: "API token id, user@realm!name."
    }),
    secret: secret("API token secret (a UUID). Write ${PROXMOX_TOKEN_SECRET} and pass it in the environment.")
  }).annotate({ description: "API token authentication." }),
  tls: section(TlsSchema, "Certificate trust for the PVE API."),
  fallback: withDefault(
    Schema.Literals(["ssh", "off"]),
    "ssh",
    "When an API call is refused (root-only operations, API down): ssh = run pvesh/qm over SSH, off = fail."
  )
}).annotate({ description: "How to reach the Proxmox VE API." })

// ---------------------------------------------------------------------------------------------- ssh

export const SshSchema = Schema.Struct({
  user: withDefault(nonEmpty, "root", "SSH user on the PVE nodes."),
  privateKey: withDefault(path, "~/.ssh/id_ed25519", "Private key path (`~` is expanded by the CLI)."),
  passphrase: Schema.optionalKey(secret("Passphrase of the private key (use ${VAR}).")),
  agent: withDefault(Schema.Boolean, false, "Use the SSH agent (the CLI passes SSH_AUTH_SOCK)."),
  knownHosts: section(
    Schema.Struct({
      mode: withDefault(
        Schema.Literals(["strict", "accept-new", "off"]),
        "accept-new",
        "strict = host must already be known; accept-new = trust on first use, reject changed keys; off = no check."
      ),
      file: withDefault(path, "~/.ssh/known_hosts", "known_hosts file to read and (accept-new) append to.")
    }),
    "Host key verification."
  ),
  port: withDefault(port, 22, "SSH port of the PVE nodes (per node: nodes[].sshPort)."),
  jump: optional(
    Schema.Struct({
      host: hostOrIp.annotate({ description: "Jump host address." }),
      port: withDefault(port, 22, "Jump host SSH port."),
      user: withDefault(nonEmpty, "root", "Jump host SSH user.")
    }),
    "Reach the nodes through this jump host (like ssh -J)."
  )
}).annotate({ description: "SSH to the PVE nodes (SSH fallback, image import, k3s token fetch)." })

// ---------------------------------------------------------------------------------------------- image

export const ImageSchema = Schema.Struct({
  url: checked((value) => {
    try {
      const url = new URL(value)
      if (url.protocol !== "https:" && url.protocol !== "http:") return "an http(s) URL"
      // PVE writes the URL it downloads into the task log, which anyone with Sys.Audit on the node reads (and Node's
      // fetch, for image.transfer: upload, takes no URL with credentials at all)
      return url.username === "" && url.password === ""
        ? undefined
        : "an http(s) URL without user:password@ (PVE writes the URL into its task log, which anyone with Sys.Audit on the node can read): serve the image where it needs no credentials"
    } catch {
      return "an http(s) URL"
    }
  }, "an http(s) URL").annotate({
    description: "Cloud image URL (fetched as image.transfer says), without credentials in it."
  }),
  checksum: optional(
    nonEmpty,
    "sha256:<hex> (algorithm prefix) or plain hex together with checksumAlgorithm. PVE verifies the download."
  ),
  checksumAlgorithm: optional(Schema.Literals(checksumAlgorithms), "Algorithm of a plain-hex checksum."),
  filename: optional(
    nonEmpty,
    "File name on the storage, the name PVE stores it under: letters, digits, _ . - only (PVE's download-url and upload replace any other character with _, so such a name is refused, with the name PVE would store suggested). Default: from the URL, with the characters PVE replaces replaced the same way; for content import a .img becomes .qcow2; with image.checksum, the checksum's first 12 hex digits before the extension (noble-server-cloudimg-amd64-<12 hex>.qcow2), so a new checksum is a new file, downloaded and verified. A name set here is used as it is: a file of that name already on a node is not checked against image.checksum again."
  ),
  storage: withDefault(storageId, "local", "Storage that holds the image (needs the content type)."),
  content: withDefault(
    Schema.Literals(["import", "iso"]),
    "import",
    "Storage content type: import (.qcow2/.raw/.vmdk: PVE 8.4+; .ova) or iso (.iso/.img, any PVE: the VMs are then created over SSH as root, since PVE imports an ISO image only from its path and only for root@pam; needs proxmox.fallback: ssh)."
  ),
  transfer: withDefault(
    Schema.Literals(["download-url", "upload"]),
    "download-url",
    "How the image reaches each node: download-url = every node downloads it (PVE checks the checksum); upload = homelab fetches it once on this machine, checks the checksum, and uploads it to every node (for nodes without internet access)."
  )
}).annotate({ description: "The cloud image every VM disk is imported from." })

// ---------------------------------------------------------------------------------------------- nodes

export const VmEntrySchema = Schema.Struct({
  name: optional(nonEmpty, "VM name; default from vm.nameTemplate."),
  role: optional(Schema.Literals(["agent", "server"]), "k3s role of this VM; default k3s.role."),
  cores: optional(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 512 }, { expected: "1..512 cores" })),
    "Cores per socket; default the node's logical CPUs x cpuRatio / vm.sockets, rounded down, at least 1 (so sockets x cores is the node's share)."
  ),
  memory: optional(
    Schema.Int.check(Schema.isBetween({ minimum: 256, maximum: 4_194_304 }, { expected: "256..4194304 MiB" })),
    "Memory in MiB; default node memory x memoryRatio."
  ),
  diskSize: optional(diskSize, "Disk size; default vm.diskSize."),
  ipConfig: optional(
    checked(checkIpConfig, "a PVE ipconfig like ip=dhcp or ip=10.0.0.5/24,gw=10.0.0.1"),
    "ipconfig0 of this VM; default vm.ipConfig."
  )
}).annotate({ description: "One VM on this node." })

export const NodeSchema = Schema.Struct({
  name: patterned(nodeNamePattern, "a PVE node name (letters, digits, -; no dots)").annotate({
    description: "PVE node name as in `pvecm nodes` (not an FQDN)."
  }),
  address: optional(hostOrIp, "IP or host name of the node for SSH (and for its API when `api` is not set)."),
  api: optional(
    checked(checkEndpointUrl, "an https URL like https://pve1.lan:8006"),
    "This node's own API URL; default https://<address>:<endpoint port> when address is set, else the cluster endpoint (PVE proxies)."
  ),
  sshPort: optional(port, "SSH port of this node; default ssh.port."),
  storage: withDefault(storageId, "local-lvm", "Storage for VM disks."),
  imageStorage: optional(storageId, "Storage holding the image on this node; default image.storage."),
  bridges: withDefault(
    Schema.Array(patterned(bridgePattern, "a bridge name like vmbr0")).check(
      Schema.isMinLength(1, { expected: "at least one bridge" })
    ),
    ["vmbr0"],
    "Bridges; the VM gets one NIC per bridge (net0, net1, ...)."
  ),
  cpuRatio: withDefault(ratio, 0.5, "Share of the node's CPUs given to its VMs, in (0, 1]."),
  memoryRatio: withDefault(ratio, 0.5, "Share of the node's memory given to its VMs, in (0, 1]."),
  vms: optional(
    Schema.Array(VmEntrySchema).check(Schema.isMinLength(1, { expected: "at least one VM" })),
    "VMs on this node; default: one VM named from vm.nameTemplate."
  )
}).annotate({ description: "A PVE node that runs k3s VMs." })

// ---------------------------------------------------------------------------------------------- vm defaults

export const VmSchema = Schema.Struct({
  nameTemplate: withDefault(
    nonEmpty,
    "k3s-vm-{node}",
    "VM name template; placeholders {node} (node name) and {index} (1-based position of the VM on its node)."
  ),
  diskSize: withDefault(diskSize, "64G", "Disk size of every VM."),
  user: withDefault(
    linuxUser,
    "ubuntu",
    "cloud-init user (ciuser; replaces the image's default user). A Linux user name as useradd and systemd accept it. Changed on a running VM, it reaches the guest when PVE next starts it; homelab logs in (k3s) as the user the guest has until then."
  ),
  password: Schema.optionalKey(secret("cloud-init password (cipassword); use ${VAR}.")),
  sshKeys: withDefault(
    Schema.Array(checked(checkSshKey, "an SSH public key (ssh-ed25519 AAAA...) or a path to a *.pub file")),
    [],
    "Public keys for the cloud-init user: key lines or *.pub paths (read by the CLI)."
  ),
  ipConfig: withDefault(
    checked(checkIpConfig, "a PVE ipconfig like ip=dhcp or ip=10.0.0.5/24,gw=10.0.0.1"),
    "ip=dhcp",
    "cloud-init ipconfig0: ip=<CIDR|dhcp>[,gw=<ip>][,ip6=<CIDR|dhcp|auto>][,gw6=<ip6>]."
  ),
  nameserver: optional(
    nonEmpty.check(
      Schema.makeFilter((value: string) => checkNameservers(value), {
        expected: "IP addresses of DNS servers separated by spaces",
        toJsonSchema: () => ({})
      })
    ),
    "DNS servers for cloud-init: IP addresses separated by spaces (PVE splits the value at spaces only)."
  ),
  searchdomain: optional(nonEmpty, "DNS search domain for cloud-init."),
  tags: withDefault(
    Schema.Array(tag),
    [],
    "Extra PVE tags (normalised: lowercase, sorted, deduplicated); safety.requireTag is always added."
  ),
  cicustom: optional(
    Schema.Struct({
      user: optional(
        snippetVolume,
        "User-data snippet. It replaces the user-data PVE generates, so the VM then gets no vm.user, vm.password or vm.sshKeys from PVE: the snippet must create the user and keys itself."
      ),
      network: optional(snippetVolume, "Network-config snippet (replaces the one built from ipConfig)."),
      vendor: optional(snippetVolume, "Vendor-data snippet (runs next to the user-data).")
    }),
    "Custom cloud-init files (PVE cicustom): snippet volumes like local:snippets/user.yaml on a storage with the snippets content type, present on every node."
  ),
  cpuType: withDefault(patterned(cpuTypePattern, "a QEMU CPU model like host"), "host", "QEMU CPU type."),
  sockets: optional(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 4 }, { expected: "1..4 sockets" })),
    "CPU sockets (PVE's sockets; vCPUs = sockets x cores, at most the node's logical CPUs or PVE cannot start the VM; plan checks it per node). Not set: homelab leaves the VM's sockets alone."
  ),
  balloon: optional(
    Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 4_194_304 }, { expected: "0..4194304 MiB" })),
    "Minimum memory in MiB for the balloon driver (0 disables ballooning); at most the VM's memory, as PVE requires (checked against nodes[].vms[].memory, and per node when the memory comes from memoryRatio). Not set: left alone."
  ),
  memoryOvercommit: withDefault(
    Schema.Finite.check(Schema.isBetween({ minimum: 1, maximum: 4 }, { expected: "a number in [1, 4]" })),
    1,
    "How much memory a node may promise its guests, as a factor of what it has: before a VM is created, the plan refuses it when its memory and the maxmem of the node's other guests come to more than the node's memory × this. 1 (the default): no overcommit; 1.5: half as much again (for VMs whose balloon gives memory back)."
  ),
  onboot: optional(Schema.Boolean, "Start the VM when its node boots. Not set: left alone."),
  description: optional(
    Schema.String.check(
      Schema.isMaxLength(8192, {
        expected: "at most 8192 characters (PVE refuses longer VM notes: `value may only be 8192 characters long`)"
      })
    ),
    "The VM's notes in PVE, at most 8192 characters (PVE's limit). Not set: homelab writes its own note at creation and never changes the notes afterwards."
  ),
  restart: withDefault(
    Schema.Literals(["never", "rolling"]),
    "never",
    "Changes PVE applies only at a restart (cores, sockets, memory, CPU type, cloud-init): never = apply them and report them as pending; rolling = restart the VMs one at a time (drain its k3s Node, restart, wait for its IP and Ready, uncordon), stopping at the first failure."
  ),
  sshPort: withDefault(port, 22, "SSH port of the VMs (k3s installs run over SSH to the VM's guest-agent IP)."),
  vmidRange: optional(
    Schema.Struct({
      lower: vmid.annotate({ description: "Lowest VM id to allocate." }),
      upper: vmid.annotate({ description: "Highest VM id to allocate." })
    }),
    "Allocate VM ids only in this range (default: PVE's next free id)."
  )
}).annotate({ description: "Settings for every VM." })

// ---------------------------------------------------------------------------------------------- health / safety

export const HealthSchema = Schema.Struct({
  stopped: withDefault(Schema.Literals(["recreate", "start", "keep"]), "recreate", "What to do with a stopped VM."),
  paused: withDefault(Schema.Literals(["recreate", "resume", "keep"]), "recreate", "What to do with a paused VM."),
  prelaunch: withDefault(
    Schema.Literals(["recreate", "keep"]),
    "keep",
    "What to do with a VM stuck in prelaunch (QEMU up, guest never started); keep, like @homelab/vm-health."
  ),
  agentMissing: withDefault(
    Schema.Literals(["keep", "recreate"]),
    "keep",
    "What to do with a running VM whose guest agent does not answer."
  ),
  graceSeconds: withDefault(
    Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 86_400 }, { expected: "0..86400 seconds" })),
    180,
    "How long a state must persist before it is remediated."
  )
}).annotate({ description: "Remediation per unhealthy VM state." })

export const SafetySchema = Schema.Struct({
  maxRecreatePerRun: withDefault(
    Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1000 }, { expected: "0..1000" })),
    1,
    "At most this many VMs are destroyed and recreated per run (0 = never)."
  ),
  protect: withDefault(Schema.Array(Schema.Union([vmid, nonEmpty])), [], "VM names or VM ids that are never touched."),
  requireTag: withDefault(tag, "homelab-managed", "Ownership tag: VMs without it are never modified or deleted.")
}).annotate({ description: "Limits on destructive actions." })

const seconds = (maximum: number) =>
  Schema.Int.check(Schema.isBetween({ minimum: 1, maximum }, { expected: `1..${maximum} seconds` }))

export const TimeoutsSchema = Schema.Struct({
  task: withDefault(
    seconds(86_400),
    600,
    "Seconds to wait for one PVE task (download, create, start, stop, destroy); a create of ours still running then is stopped."
  ),
  ip: withDefault(seconds(86_400), 300, "Seconds to wait for a started VM's guest agent to report an IP."),
  k3sInstall: withDefault(seconds(86_400), 600, "Seconds the k3s install script may run on a VM."),
  k3sReady: withDefault(seconds(86_400), 600, "Seconds from starting k3s on a VM until its Node is Ready."),
  api: withDefault(
    seconds(3_600),
    30,
    "Seconds for one Proxmox API request's answer; a node that does not answer in time is driven over SSH (or fails, named)."
  ),
  connect: withDefault(
    seconds(600),
    5,
    "Seconds to open a connection to a node's API (TCP and TLS); a node that is off is given up on after this."
  ),
  ssh: withDefault(
    seconds(600),
    10,
    "Seconds to open an SSH connection (TCP, handshake and authentication) to a node, the k3s server or a VM; a host that does not answer is given up on after this."
  )
}).annotate({ description: "Limits of every wait (each is reported while it runs)." })

// ---------------------------------------------------------------------------------------------- k3s

export const K3sUpgradeSchema = Schema.Struct({
  maxUnavailable: withDefault(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 }, { expected: "1..1000 agents" })),
    1,
    "Agents upgraded at the same time (servers always go one at a time, before the agents)."
  ),
  drainTimeout: withDefault(
    seconds(86_400),
    300,
    "Seconds each `kubectl drain` homelab runs may take per node: before an upgrade, a rolling restart (vm.restart), a destroy or a prune (evictions respect PodDisruptionBudgets); the rollout or teardown stops there when it fails."
  )
}).annotate({ description: "Rolling upgrades when k3s.version (or k3s.channel) differs from what a member runs." })

export const K3sSchema = Schema.Struct({
  server: optional(
    Schema.Struct({
      host: hostOrIp.annotate({ description: "Address of an existing k3s server (SSH and API)." }),
      port: withDefault(port, 22, "SSH port of the server."),
      user: optional(linuxUser, "SSH user on the server (a Linux user name); default vm.user."),
      apiPort: withDefault(port, 6443, "Kubernetes API port of the server.")
    }),
    "An existing k3s server (not one of these VMs) that the VMs join; its token is fetched over SSH. Leave it out to run the cluster on the VMs themselves: the first VM with role server starts it (embedded etcd), the other servers and the agents join it."
  ),
  apiEndpoint: optional(
    checked(
      (value) =>
        isHostOrIp(value) || /^https:\/\/[^/\s]+(:\d+)?\/?$/u.test(value) ? undefined : "a host, an IP or an https URL",
      "a host, an IP or an https URL"
    ),
    "Address clients reach the Kubernetes API at (e.g. a VIP or DNS name in the servers' --tls-san): the server URL of `homelab kubeconfig`. Default: a Ready server's address."
  ),
  upgrade: section(
    K3sUpgradeSchema,
    "Rolling upgrades when k3s.version (or k3s.channel) differs from what a member runs."
  ),
  role: withDefault(Schema.Literals(["agent", "server"]), "agent", "Role of new VMs."),
  version: optional(
    patterned(k3sVersionPattern, "a k3s version like v1.31.5+k3s1"),
    "Pin the k3s version; default: the servers' version."
  ),
  channel: optional(
    patterned(k3sChannelPattern, "a k3s release channel: stable, latest, testing, or a minor like v1.31"),
    "Release channel when nothing is pinned (stable, latest, testing, v1.31)."
  ),
  installScriptUrl: withDefault(
    checked((value) => (value.startsWith("https://") ? undefined : "an https URL"), "an https URL"),
    "https://get.k3s.io",
    "install.sh location."
  ),
  installFlags: withDefault(
    Schema.Array(nonEmpty),
    [],
    'Extra k3s flags for every VM, servers and agents, one word per item: --node-label=tier=gold, or a flag and its value as two items ([--kubelet-arg, "max-pods=150"]). Only flags both k3s server and k3s agent define (a server-only flag such as --disable goes in serverFlags). Not --token/--server (managed) nor --cluster-init/--cluster-reset. In every list, a flag no k3s of v1.28 to v1.36 defines (a typo such as --node-lable, or --no-deploy, which k3s v1.26 removed) is refused, with the closest k3s flag, unless k3s.version pins a newer release (its flags are then left to it).'
  ),
  serverFlags: withDefault(
    Schema.Array(nonEmpty),
    [],
    'Extra k3s flags for the VMs with role server (the one that starts the cluster included), after installFlags: --disable=traefik, --tls-san=k3s.lan, [--write-kubeconfig-mode, "644"], --cluster-cidr=…, --etcd-…. Like k3s-ansible\'s extra_server_args.'
  ),
  agentFlags: withDefault(
    Schema.Array(nonEmpty),
    [],
    "Extra k3s flags for the VMs with role agent, after installFlags: --node-label=role=worker, --node-taint=…. Only flags k3s agent defines: an agent given a server flag stops at every start and never joins. Like k3s-ansible's extra_agent_args."
  ),
  airgap: optional(path, "Directory with the k3s binary, images and install.sh for airgapped installs."),
  token: Schema.optionalKey(
    secret(
      "The cluster's token (use ${VAR}); default: read from the server. A full token (K10<CA hash>::server:<password>, as the server's token file holds it) is used for every join. A short one (a password) is the token a new cluster is started with; the joins then read the full token from the server, so that each VM checks the server's certificate."
    )
  )
}).annotate({ description: "k3s membership of the VMs." })

// ---------------------------------------------------------------------------------------------- document

/** `parallelism`'s default: every node of a 16-node lab busy at once. */
export const DefaultParallelism = 16

export const HomelabConfigSchema = Schema.Struct({
  proxmox: ProxmoxSchema,
  ssh: section(SshSchema, "SSH to the PVE nodes."),
  image: ImageSchema,
  vm: section(VmSchema, "Settings for every VM."),
  nodes: Schema.Array(NodeSchema)
    .check(Schema.isMinLength(1, { expected: "at least one node" }))
    .annotate({ description: "The PVE nodes, each running its k3s VM(s)." }),
  health: section(HealthSchema, "Remediation per unhealthy VM state."),
  safety: section(SafetySchema, "Limits on destructive actions."),
  timeouts: section(TimeoutsSchema, "Limits of every wait (each is reported while it runs)."),
  parallelism: withDefault(
    Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1000 }, { expected: "1..1000" })),
    DefaultParallelism,
    "At most this many PVE tasks (download, create, resize, start, stop, destroy, …) in flight at once across the cluster; each node runs one action at a time whatever this says. Lower it to spare a shared uplink or storage."
  ),
  k3s: optional(K3sSchema, "k3s membership (optional).")
}).annotate({
  title: "homelab.yaml",
  description: "Desired state of a Proxmox VE cluster with one k3s VM per node (homelab apply)."
})

/** The decoded file, with plain defaults applied (before cross-field derivation). */
export type HomelabConfigFile = typeof HomelabConfigSchema.Type
