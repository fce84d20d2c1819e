/**
 * The VMIDs a VM may take, in the order to try them: a sequence derived from the VM's name alone.
 *
 * Proxmox cannot reserve a VMID (`/cluster/nextid` is a hint, not a lease), so two runs that both take "the next free
 * id" create two VMs with the same name. Deriving the candidates from the name makes concurrent runs try the same ids
 * in the same order: exactly one create of a given id succeeds cluster-wide (PVE writes the `lock: create` stub
 * atomically), and the loser finds the winner's VM under that id instead of making a duplicate.
 *
 * The first candidate is `lower + fnv1a(name) mod size`; the rest follow it, wrapping within `[lower, upper]`.
 */
export const vmidCandidates = (
  name: string,
  range: { readonly lower: number; readonly upper: number },
  count = 16
): ReadonlyArray<number> => {
  const size = range.upper - range.lower + 1
  if (!Number.isInteger(range.lower) || !Number.isInteger(range.upper) || size < 1) {
    throw new RangeError(`invalid VMID range ${range.lower}..${range.upper}`)
  }
  const start = fnv1a32(name) % size
  const out: Array<number> = []
  for (let i = 0; i < Math.min(count, size); i++) out.push(range.lower + ((start + i) % size))
  return out
}

const fnv1a32 = (text: string): number => {
  let hash = 0x811c9dc5
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash >>> 0
}
