import type { GuestState } from "../Guest.js"

/** Owner and permission bits of a guest file. Files without an entry are `root`-owned and world-readable (0644). */
export interface FileMeta {
  readonly mode: number
  readonly owner: string
}

const metas = new WeakMap<GuestState, Map<string, FileMeta>>()

const table = (guest: GuestState): Map<string, FileMeta> => {
  let m = metas.get(guest)
  if (m === undefined) {
    m = new Map()
    metas.set(guest, m)
  }
  return m
}

export const fileMeta = (guest: GuestState, path: string): FileMeta =>
  table(guest).get(path) ?? { mode: 0o644, owner: path.startsWith(`/home/${guest.user}/`) ? guest.user : "root" }

export const setFileMeta = (guest: GuestState, path: string, meta: FileMeta): void => {
  table(guest).set(path, meta)
}

export const canRead = (guest: GuestState, user: string, path: string): boolean => {
  if (user === "root") return true
  const m = fileMeta(guest, path)
  return m.owner === user ? (m.mode & 0o400) !== 0 : (m.mode & 0o004) !== 0
}

/** Whether `user` may create or replace `path` (root anywhere; others in /tmp, /run/lock (1777) and their home). */
export const canWrite = (guest: GuestState, user: string, path: string): boolean => {
  if (user === "root") return true
  const shared = path.startsWith("/tmp/") || path.startsWith("/run/lock/") || path.startsWith("/var/lock/")
  if (!(shared || path.startsWith(`/home/${user}/`))) return false
  if (!guest.files.has(path)) return true
  const m = fileMeta(guest, path)
  return m.owner === user || (m.mode & 0o002) !== 0
}

export const writeGuestFile = (
  guest: GuestState,
  path: string,
  content: string,
  meta: FileMeta = { mode: 0o644, owner: "root" }
): void => {
  guest.files.set(path, content)
  setFileMeta(guest, path, meta)
}

export const removeGuestFile = (guest: GuestState, path: string): boolean => {
  table(guest).delete(path)
  return guest.files.delete(path)
}

export const moveGuestFile = (guest: GuestState, from: string, to: string): boolean => {
  const c = guest.files.get(from)
  if (c === undefined) return false
  const m = fileMeta(guest, from)
  removeGuestFile(guest, from)
  writeGuestFile(guest, to, c, m)
  return true
}

/** Bytes → the guest's string file map: UTF-8 when it round-trips, Latin-1 (byte-preserving) otherwise. */
export const bytesToText = (b: Buffer): string => {
  const s = b.toString("utf8")
  return Buffer.byteLength(s, "utf8") === b.length && Buffer.from(s, "utf8").equals(b) ? s : b.toString("latin1")
}

/** Whether a path is a directory in the (flat) file map: some file lives below it, or it is a well-known one. */
export const isDirectory = (guest: GuestState, path: string): boolean => {
  const p = path.endsWith("/") ? path : `${path}/`
  if (["/", "/tmp/", "/home/", `/home/${guest.user}/`, "/etc/", "/usr/local/bin/", "/root/"].includes(p)) return true
  for (const k of guest.files.keys()) if (k.startsWith(p)) return true
  return false
}

/** A shell redirection (`>` / `>>`): a new file belongs to the user (umask 022), an existing one keeps its owner and mode. */
export const writeRedirect = (guest: GuestState, user: string, path: string, data: Buffer, append: boolean): void => {
  const existing = guest.files.get(path)
  const text = (append ? (existing ?? "") : "") + data.toString("utf8")
  if (existing === undefined) writeGuestFile(guest, path, text, { mode: 0o644, owner: user })
  else guest.files.set(path, text)
}
