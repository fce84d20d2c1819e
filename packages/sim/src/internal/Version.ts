/** The PVE version a scenario without `pveVersion` simulates: the current release. */
export const DEFAULT_PVE_VERSION = "9.1.1"

/** Compare dotted PVE versions ("8.4.1" vs "8.3"). */
export const compareVersion = (a: string, b: string): number => {
  const pa = a.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0)
  const pb = b.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

export const atLeast = (version: string, min: string): boolean => compareVersion(version, min) >= 0

/** Behaviour switches derived from the PVE version knob (reference §0.1). */
export interface VersionFeatures {
  readonly version: string
  readonly release: string
  /** `memory` in config is a string (8.1+). */
  readonly memoryString: boolean
  /** `message` key in JSON error bodies (http-server 5.2.0, PVE 8.3.x late, here 8.3.3+). */
  readonly errorMessageKey: boolean
  /** dir storages support content `import` (8.3+). */
  readonly importContent: boolean
  /** download-url content=import accepts .qcow2/.raw/.vmdk (8.4+). */
  readonly importQcow2: boolean
  /** `PUT .../resize` returns a UPID (8.0+). */
  readonly resizeTask: boolean
  /** body limit for non-upload requests */
  readonly bodyLimit: number
  /** 9.x */
  readonly nine: boolean
  /** paths outside /api2 give 500 (5.2.0+) instead of 501 */
  readonly noSuchFile500: boolean
}

export const versionFeatures = (version: string): VersionFeatures => ({
  version,
  release: version.split(".").slice(0, 2).join("."),
  memoryString: atLeast(version, "8.1"),
  errorMessageKey: atLeast(version, "8.3.3"),
  importContent: atLeast(version, "8.3"),
  importQcow2: atLeast(version, "8.4"),
  resizeTask: atLeast(version, "8.0"),
  bodyLimit: atLeast(version, "8.4") ? 512 * 1024 : 64 * 1024,
  nine: atLeast(version, "9.0"),
  noSuchFile500: atLeast(version, "8.3.3")
})
