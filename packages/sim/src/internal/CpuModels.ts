/**
 * The CPU models a VM's `cpu` may name, as qemu-server's CPUConfig.pm knows them (its built-in x86_64 list, 9.2's,
 * which the simulator uses for every PVE version; the abstract x86-64-vN models; `host`, which exists on a node of
 * the same architecture). A `custom-NAME` model must be defined in /etc/pve/virtual-guest/cpu-models.conf, which the
 * simulator has none of.
 */
export const CPU_MODELS: ReadonlyArray<{ readonly name: string; readonly vendor: string; readonly abstract?: true }> = [
  ...["486", "pentium", "pentium2", "pentium3", "coreduo", "core2duo", "Conroe", "Penryn", "Nehalem"].map(intel),
  ...[
    "Nehalem-IBRS",
    "Westmere",
    "Westmere-IBRS",
    "SandyBridge",
    "SandyBridge-IBRS",
    "IvyBridge",
    "IvyBridge-IBRS",
    "Haswell",
    "Haswell-IBRS",
    "Haswell-noTSX",
    "Haswell-noTSX-IBRS",
    "Broadwell",
    "Broadwell-IBRS",
    "Broadwell-noTSX",
    "Broadwell-noTSX-IBRS",
    "Skylake-Client",
    "Skylake-Client-IBRS",
    "Skylake-Client-noTSX-IBRS",
    "Skylake-Client-v4",
    "Skylake-Server",
    "Skylake-Server-IBRS",
    "Skylake-Server-noTSX-IBRS",
    "Skylake-Server-v4",
    "Skylake-Server-v5",
    "Cascadelake-Server",
    "Cascadelake-Server-v2",
    "Cascadelake-Server-noTSX",
    "Cascadelake-Server-v4",
    "Cascadelake-Server-v5",
    "Cooperlake",
    "Cooperlake-v2",
    "KnightsMill",
    "Icelake-Client",
    "Icelake-Client-noTSX",
    "Icelake-Server",
    "Icelake-Server-noTSX",
    "Icelake-Server-v3",
    "Icelake-Server-v4",
    "Icelake-Server-v5",
    "Icelake-Server-v6",
    "Icelake-Server-v7",
    "SapphireRapids",
    "SapphireRapids-v2",
    "SapphireRapids-v3",
    "SapphireRapids-v4",
    "GraniteRapids",
    "GraniteRapids-v2",
    "GraniteRapids-v3",
    "SierraForest",
    "SierraForest-v2",
    "SierraForest-v3",
    "ClearwaterForest"
  ].map(intel),
  ...[
    "athlon",
    "phenom",
    "Opteron_G1",
    "Opteron_G2",
    "Opteron_G3",
    "Opteron_G4",
    "Opteron_G5",
    "EPYC",
    "EPYC-IBPB",
    "EPYC-v3",
    "EPYC-v4",
    "EPYC-v5",
    "EPYC-Rome",
    "EPYC-Rome-v2",
    "EPYC-Rome-v3",
    "EPYC-Rome-v4",
    "EPYC-Rome-v5",
    "EPYC-Milan",
    "EPYC-Milan-v2",
    "EPYC-Milan-v3",
    "EPYC-Genoa",
    "EPYC-Genoa-v2",
    "EPYC-Turin"
  ].map((name) => ({ name, vendor: "AuthenticAMD" })),
  ...["kvm32", "kvm64", "qemu32", "qemu64", "max", "host"].map((name) => ({ name, vendor: "default" })),
  ...["x86-64-v2", "x86-64-v2-AES", "x86-64-v3", "x86-64-v4"].map((name) => ({
    name,
    vendor: "default",
    abstract: true as const
  }))
]

function intel(name: string) {
  return { name, vendor: "GenuineIntel" }
}

const KNOWN = new Set(CPU_MODELS.map((m) => m.name))

/**
 * qemu-server's `validate_vm_cpu_conf` on the `cputype` of a `cpu` property string (its default key): the error PVE's
 * parameter check reports after `invalid format - `, or undefined when the model exists.
 */
export const cpuTypeError = (value: string): string | undefined => {
  const first = value.split(",")[0] ?? ""
  const named = value.split(",").find((part) => part.startsWith("cputype="))
  const cputype = named !== undefined ? named.slice("cputype=".length) : first.includes("=") ? undefined : first
  if (cputype === undefined || cputype === "") return "CPU is missing cputype\n"
  if (cputype.startsWith("custom-")) return `Custom cputype '${cputype.slice("custom-".length)}' not found\n`
  return KNOWN.has(cputype) ? undefined : `Built-in cputype '${cputype}' is not defined (missing 'custom-' prefix?)\n`
}

/** `GET /nodes/{node}/capabilities/qemu/cpu` of an x86_64 node: each model with its vendor, `custom: 0`. */
export const cpuModelsOf = (): ReadonlyArray<{ name: string; vendor: string; custom: 0; abstract?: 1 }> =>
  CPU_MODELS.map((m) => ({
    name: m.name,
    vendor: m.vendor,
    custom: 0 as const,
    ...(m.abstract ? { abstract: 1 as const } : {})
  }))
