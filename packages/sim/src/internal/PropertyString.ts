/** Parse a PVE property string (`virtio=BC:..,bridge=vmbr0`, `local-lvm:0,import-from=...`). */
export const parsePropertyString = (
  value: string,
  defaultKey?: string
): { readonly entries: Array<[string, string]>; readonly error?: string } => {
  const entries: Array<[string, string]> = []
  const seen = new Set<string>()
  for (const part of value.split(",")) {
    if (part === "") continue
    const eq = part.indexOf("=")
    let k: string
    let v: string
    if (eq < 0) {
      if (defaultKey === undefined)
        return { entries, error: "value without key, but schema does not define a default key" }
      k = defaultKey
      v = part
    } else {
      k = part.slice(0, eq)
      v = part.slice(eq + 1)
    }
    if (seen.has(k)) return { entries, error: `duplicate key in comma-separated list property: ${k}` }
    seen.add(k)
    entries.push([k, v])
  }
  return { entries }
}

export const toRecord = (entries: ReadonlyArray<[string, string]>): Record<string, string> =>
  Object.fromEntries(entries)

/** Render a size with the largest exact unit (32G, 2252M, 512K, bytes). */
export const renderSize = (bytes: number): string => {
  const units: Array<[string, number]> = [
    ["T", 1024 ** 4],
    ["G", 1024 ** 3],
    ["M", 1024 ** 2],
    ["K", 1024]
  ]
  for (const [u, m] of units) if (bytes % m === 0 && bytes >= m) return `${bytes / m}${u}`
  return `${bytes}`
}

/** Parse `32G`, `+10G`, `2252M`, `1.5T`, `1024` (bytes). */
export const parseDiskSize = (s: string): { readonly relative: boolean; readonly bytes: number } | undefined => {
  const m = /^(\+?)(\d+(?:\.\d+)?)([KMGT]?)$/.exec(s)
  if (!m) return undefined
  const mult: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }
  return { relative: m[1] === "+", bytes: Math.round(Number(m[2]) * (mult[m[3] ?? ""] ?? 1)) }
}

/** `transferred 1.1 GiB of 2.2 GiB (50.00%)` style human sizes (1 decimal). */
export const humanBytes = (n: number): string => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let v = n
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(1)} ${units[i]}`
}

/** Deterministic pseudo-random generator (mulberry32) for MACs and ids. */
export const seededRandom = (seed: number): (() => number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
