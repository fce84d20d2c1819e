import { createHash } from "node:crypto"
import { parse as parseYaml } from "yaml"
import { defines } from "./K3sFlags.js"

/**
 * What k3s records about its own configuration on its Node at every start (k3s-io/k3s `pkg/nodeconfig`): the
 * `k3s.io/node-args`, `k3s.io/node-env` and `k3s.io/node-config-hash` annotations.
 */

/** k3s's `OmittedValue`. */
export const OMITTED = "********"

/** k3s's `isSecret`: the flags whose value, and the variables whose value, are masked. */
const SECRET_FLAGS = [
  "--token",
  "-t",
  "--agent-token",
  "--datastore-endpoint",
  "--cluster-secret",
  "--etcd-s3-access-key",
  "--etcd-s3-secret-key",
  "--vpn-auth"
]
const SECRET_ENV = ["K3S_TOKEN", "K3S_DATASTORE_ENDPOINT", "K3S_AGENT_TOKEN", "K3S_CLUSTER_SECRET", "K3S_VPN_AUTH"]

/**
 * configfilearg's `readConfigFile`: each key of the config file as a flag (`--key`, `-k` for one letter), a list as the
 * flag once per item, a scalar as the flag and its value (nothing for an empty one). With `command`, its
 * `stripInvalidFlags`: a key `k3s <command>` does not define is dropped (k3s logs `Unknown flag --key found in
 * config.yaml, skipping` and starts all the same).
 */
const configFileArgs = (text: string | undefined, command?: string): ReadonlyArray<string> =>
  configFileEntries(text)
    .filter((e) => command === undefined || defines(command, e.key))
    .flatMap((e) => e.words)

/** The config file's keys that `k3s <command>` does not define, in file order: configfilearg skips each. */
export const skippedConfigKeys = (text: string | undefined, command: string): ReadonlyArray<string> =>
  configFileEntries(text)
    .filter((e) => !defines(command, e.key))
    .map((e) => e.key)

const configFileEntries = (
  text: string | undefined
): ReadonlyArray<{ readonly key: string; readonly words: ReadonlyArray<string> }> => {
  let parsed: unknown
  try {
    parsed = parseYaml(text ?? "")
  } catch {
    return []
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return []
  const out: Array<{ key: string; words: Array<string> }> = []
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    const flag = `${k.length === 1 ? "-" : "--"}${k}`
    const words: Array<string> = []
    if (Array.isArray(v)) for (const item of v) words.push(flag, String(item))
    else {
      const s = v === null || v === undefined ? "" : String(v)
      words.push(flag)
      if (s !== "") words.push(s)
    }
    out.push({ key: k, words })
  }
  return out
}

/**
 * `k3s.io/node-args`: the process's arguments (command word first) with the config file's flags put right after the
 * command word (`configfilearg.MustParse`: CLI flags come after, so they win; a key the command does not define is
 * skipped), every `--flag=value` split into two words, and the word after a secret flag masked.
 */
export const nodeArgs = (args: ReadonlyArray<string>, configYaml: string | undefined): ReadonlyArray<string> => {
  const [command, ...rest] = args
  const merged = command === undefined ? [] : [command, ...configFileArgs(configYaml, command), ...rest]
  const split = merged.flatMap((a) => {
    const i = a.indexOf("=")
    return a.startsWith("--") && i > 0 ? [a.slice(0, i), a.slice(i + 1)] : [a]
  })
  return split.map((a, i) => (i > 0 && SECRET_FLAGS.includes(split[i - 1] as string) ? OMITTED : a))
}

/** `k3s.io/node-env`: the process's `K3S_*` variables, secrets masked. */
export const nodeEnv = (env: Readonly<Record<string, string>>): Record<string, string> =>
  Object.fromEntries(
    Object.entries(env)
      .filter(([k]) => k.startsWith("K3S_"))
      // Go's json.Marshal writes a map's keys sorted
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => [k, SECRET_ENV.includes(k) ? OMITTED : v] as const)
  )

/** RFC 4648 base32 (Go's `base32.StdEncoding`, padded). */
const base32 = (bytes: Uint8Array): string => {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
  let bits = 0
  let value = 0
  let out = ""
  for (const b of bytes) {
    value = (value << 8) | b
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31]
  return out.padEnd(Math.ceil(out.length / 8) * 8, "=")
}

/** `k3s.io/node-config-hash`: base32 of the SHA-256 of the two annotations' JSON, concatenated. */
export const nodeConfigHash = (argsJson: string, envJson: string): string =>
  base32(
    createHash("sha256")
      .update(argsJson + envJson)
      .digest()
  )
