/**
 * k3s `CriticalControlArgs` (k3s.md §3.3): the server settings every server of a cluster must share. A joining server
 * compares its own with the ones of the server it bootstraps from (`cluster.compareConfig`) and stops with
 * `failed to validate server configuration: critical configuration value mismatch` when they differ. Values a server
 * does not set count as k3s's defaults, so `--cluster-cidr=10.42.0.0/16` and nothing are the same.
 */
const VALUED: Readonly<Record<string, string>> = {
  "--agent-token": "",
  "--cluster-cidr": "10.42.0.0/16",
  "--cluster-dns": "10.43.0.10",
  "--cluster-domain": "cluster.local",
  "--egress-selector-mode": "agent",
  "--flannel-backend": "vxlan",
  "--secrets-encryption-provider": "aescbc",
  "--service-cidr": "10.43.0.0/16"
}

const BOOLEAN = [
  "--disable-cloud-controller",
  "--disable-helm-controller",
  "--disable-network-policy",
  "--embedded-registry",
  "--flannel-external-ip",
  "--flannel-ipv6-masq",
  "--secrets-encryption"
]

/**
 * The critical values of a server from its `k3s.io/node-args` words (config file merged in, `--flag=value` split; the
 * last occurrence wins, as for k3s's flags). Of `--disable`, only `servicelb` is critical.
 */
export const criticalArgs = (words: ReadonlyArray<string>): Readonly<Record<string, string>> => {
  const out: Record<string, string> = { ...VALUED }
  for (const b of BOOLEAN) out[b] = "false"
  out["--disable=servicelb"] = "false"
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string
    const next = words[i + 1]
    if (w in VALUED && next !== undefined) {
      out[w] = next
      i++
    } else if (BOOLEAN.includes(w)) {
      if (next === "true" || next === "false") {
        out[w] = next
        i++
      } else out[w] = "true"
    } else if (w === "--disable" && next !== undefined) {
      if (next.split(",").includes("servicelb")) out["--disable=servicelb"] = "true"
      i++
    }
  }
  return out
}

/** Whether two servers' critical values differ (`reflect.DeepEqual` of their `CriticalControlArgs` fails). */
export const criticalMismatch = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): boolean => {
  const x = criticalArgs(a)
  const y = criticalArgs(b)
  return Object.keys(x).some((k) => x[k] !== y[k])
}
