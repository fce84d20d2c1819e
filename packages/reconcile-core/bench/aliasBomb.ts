// A YAML alias bomb ("billion laughs", 9 levels of 9 aliases: 387 million values if expanded) given to parseConfig:
// time until it is rejected, against a plain homelab.yaml of the same size. Target: rejected in well under a second
// (before the alias budget it ran 147 s and died of a heap OOM). Run: `pnpm bench` (after a build).
import * as Effect from "effect/Effect"
import { parseConfig } from "../dist/index.js"

const levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
for (const [i, name] of [..."bcdefghi"].entries()) {
  levels.push(`${name}: &${name} [${Array.from({ length: 9 }, () => `*${"abcdefgh"[i]}`).join(", ")}]`)
}
const bomb = `${levels.join("\n")}\nproxmox: *i\n`
const plain = `proxmox:
  endpoint: https://pve1.lan
  auth: { tokenId: root@pam!homelab, secret: x }
image: { url: https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img }
nodes: [{ name: pve1 }, { name: pve2 }, { name: pve3 }]
`

const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0
const time = (text: string) => {
  const runs: Array<number> = []
  let outcome = ""
  for (let i = 0; i < 7; i++) {
    const started = performance.now()
    const result = Effect.runSync(Effect.result(parseConfig(text, { env: {} })))
    runs.push(performance.now() - started)
    outcome = result._tag === "Failure" ? `rejected (${result.failure.reason._tag})` : "accepted"
  }
  return { ms: median(runs), outcome }
}

const b = time(bomb)
const p = time(plain)
console.log(`alias bomb (9 x 9): ${b.outcome} in ${b.ms.toFixed(1)} ms (median of 7)`)
console.log(`plain 3-node homelab.yaml: ${p.outcome} in ${p.ms.toFixed(1)} ms (median of 7)`)
