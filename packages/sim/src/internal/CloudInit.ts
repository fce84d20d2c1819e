import { parse as parseYaml } from "yaml"
import { PveError } from "../PveError.js"
import type { NodeState, VmState } from "../SimState.js"
import { parsePropertyString, toRecord } from "./PropertyString.js"
import { isFileStorage, parseVolid, vtypeOf } from "./Volumes.js"

/** The snippet volumes of `cicustom` (`user`, `network`, `meta`, `vendor`). */
export const cicustomVolumes = (vm: VmState): Record<string, string> => {
  const v = vm.config.get("cicustom")
  return v === undefined ? {} : toRecord(parsePropertyString(v).entries)
}

/**
 * qemu-server Cloudinit.pm `read_cloudinit_snippets_file`, as the start runs it: the volume must parse, be of type
 * `snippets` and exist. Returns the snippet's text.
 */
export const readSnippet = (node: NodeState, volid: string): string => {
  const vid = parseVolid(volid)
  if (vid === undefined) throw new PveError(500, `unable to parse volume ID '${volid}'`)
  const s = node.storages.get(vid.storage)
  if (s === undefined) throw new PveError(500, `storage '${vid.storage}' does not exist`)
  if (!isFileStorage(s)) throw new PveError(500, `unable to parse lvm volume name '${vid.volname}'`)
  if (vtypeOf(s, vid.volname) !== "snippets") throw new PveError(500, `${volid} is not in the snippets directory`)
  const vol = s.volumes.get(vid.volname)
  if (vol === undefined) throw new PveError(500, `can't find file '${volid}'`)
  return (vol.data ?? Buffer.alloc(0)).toString("utf8")
}

/** Who the guest lets in: the cloud-init user, its keys and the hostname. */
export interface CloudInitIdentity {
  readonly user: string
  readonly keys: ReadonlyArray<string>
  readonly hostname: string | undefined
}

const keysOf = (v: unknown): Array<string> =>
  Array.isArray(v) ? v.filter((k): k is string => typeof k === "string") : []

/**
 * What a `cicustom` `user=` snippet (a `#cloud-config` document) makes of the guest's login: it replaces the
 * user-data PVE would generate, so `ciuser` and `sshkeys` no longer apply. `users:` names the user (the first named
 * one; `default` is the image's `ubuntu`), its `ssh_authorized_keys`; top-level `ssh_authorized_keys` go to the
 * default user. Not YAML, or no user: the image's default user `ubuntu` with the top-level keys.
 */
export const identityFromUserData = (text: string): CloudInitIdentity => {
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch {
    doc = undefined
  }
  const d = doc !== null && typeof doc === "object" && !Array.isArray(doc) ? (doc as Record<string, unknown>) : {}
  const hostname = typeof d.hostname === "string" ? d.hostname : undefined
  const topKeys = [...keysOf(d.ssh_authorized_keys), ...keysOf(d["ssh-authorized-keys"])]
  const users = Array.isArray(d.users) ? d.users : []
  for (const u of users)
    if (u !== null && typeof u === "object" && typeof (u as Record<string, unknown>).name === "string") {
      const r = u as Record<string, unknown>
      return {
        user: r.name as string,
        keys: [...keysOf(r.ssh_authorized_keys), ...keysOf(r["ssh-authorized-keys"])],
        hostname
      }
    }
  return { user: "ubuntu", keys: topKeys, hostname }
}
