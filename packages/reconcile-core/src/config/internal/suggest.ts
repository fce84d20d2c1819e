/** Edit distance with adjacent transpositions (optimal string alignment), so `nodse` → `nodes` costs 1. */
export const editDistance = (a: string, b: string): number => {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: Array<Array<number>> = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0))
  )
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1)
      d[i]![j] = best
    }
  }
  return d[a.length]![b.length]!
}

const squash = (s: string): string => s.toLowerCase().replace(/[-_\s]/gu, "")

/**
 * The closest candidate to `input`, if it is close enough to be a plausible typo: same letters ignoring case and
 * `-`/`_` (cpu_ratio → cpuRatio), or an edit distance of at most max(1, length / 3).
 */
export const closest = (input: string, candidates: ReadonlyArray<string>): string | undefined => {
  const exact = candidates.find((candidate) => squash(candidate) === squash(input))
  if (exact !== undefined) return exact
  let best: string | undefined
  let bestDistance = Number.POSITIVE_INFINITY
  for (const candidate of candidates) {
    const distance = editDistance(input.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return bestDistance <= Math.max(1, Math.floor(input.length / 3)) ? best : undefined
}

/**
 * The name of `names` that `name` is a plausible typo of, for a "did you mean": as `closest` judges, but at most two
 * edits away (names share long prefixes: k3s-vm-nope is no typo of k3s-vm-pve), and only when no other name is as
 * close (pve5 among pve1…pve4 suggests none of them).
 */
export const closestName = (name: string, names: ReadonlyArray<string>): string | undefined => {
  const guess = closest(name, names)
  if (guess === undefined || squash(guess) === squash(name)) return guess
  const distance = (candidate: string) => editDistance(name.toLowerCase(), candidate.toLowerCase())
  const nearest = distance(guess)
  return nearest > 2 || names.some((other) => other !== guess && distance(other) === nearest) ? undefined : guess
}
