/**
 * The k3s releases that exist on the simulated GitHub release origin, and the update channels
 * (`https://update.k3s.io/v1-release/channels/<name>`) that resolve to them.
 */

const VERSION = /^v(\d+)\.(\d+)\.(\d+)\+k3s(\d+)$/

/** Releases published by default (the scenario's `version` and `stableVersion` are always added). */
export const DEFAULT_RELEASES: ReadonlyArray<string> = [
  "v1.28.15+k3s1",
  "v1.29.9+k3s1",
  "v1.29.15+k3s1",
  "v1.30.5+k3s1",
  "v1.30.14+k3s1",
  "v1.31.5+k3s1",
  "v1.31.13+k3s1",
  "v1.32.9+k3s1",
  "v1.33.5+k3s1"
]

const parts = (v: string): ReadonlyArray<number> | undefined => {
  const m = VERSION.exec(v)
  return m === null ? undefined : [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])]
}

export const compareReleases = (a: string, b: string): number => {
  const pa = parts(a) ?? []
  const pb = parts(b) ?? []
  for (let i = 0; i < 4; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/** `[major, minor]` of a k3s version, or `undefined`. */
export const minorOf = (v: string): readonly [number, number] | undefined => {
  const p = parts(v)
  return p === undefined ? undefined : [p[0] as number, p[1] as number]
}

export class K3sReleases {
  readonly versions: ReadonlyArray<string>
  private readonly channels: ReadonlyMap<string, string>

  constructor(opts: {
    readonly releases?: ReadonlyArray<string> | undefined
    readonly channels?: Readonly<Record<string, string>> | undefined
    readonly version: string
    readonly stableVersion: string
  }) {
    const all = new Set([...(opts.releases ?? DEFAULT_RELEASES), opts.version, opts.stableVersion])
    this.versions = [...all].filter((v) => VERSION.test(v)).sort(compareReleases)
    const newest = this.versions[this.versions.length - 1] ?? opts.stableVersion
    const channels = new Map<string, string>([
      ["stable", opts.stableVersion],
      ["latest", newest],
      ["testing", newest]
    ])
    // one channel per minor (`v1.30`): its newest patch release
    for (const v of this.versions) {
      const m = minorOf(v)
      if (m !== undefined) channels.set(`v${m[0]}.${m[1]}`, v)
    }
    for (const [k, v] of Object.entries(opts.channels ?? {})) channels.set(k, v)
    this.channels = channels
  }

  has(version: string): boolean {
    return this.versions.includes(version)
  }

  /** The release a channel points at, or `undefined` for an unknown channel (the channel server answers 404). */
  channel(name: string): string | undefined {
    return this.channels.get(name)
  }

  channelList(): ReadonlyArray<{ readonly name: string; readonly latest: string }> {
    return [...this.channels.entries()].map(([name, latest]) => ({ name, latest }))
  }
}
