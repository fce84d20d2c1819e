import { posix } from "node:path"
import type { SFTPWrapper } from "ssh2"
import ssh2 from "ssh2"
import type { GuestState } from "../Guest.js"
import {
  bytesToText,
  canRead,
  canWrite,
  fileMeta,
  isDirectory,
  moveGuestFile,
  removeGuestFile,
  setFileMeta,
  writeGuestFile
} from "./GuestFs.js"

const { utils } = ssh2
const OPEN = utils.sftp.OPEN_MODE
const STATUS = utils.sftp.STATUS_CODE

interface OpenFile {
  readonly path: string
  readonly write: boolean
  data: Buffer
  mode: number
}

const S_IFREG = 0o100000
const S_IFDIR = 0o040000

/**
 * An SFTP subsystem over a guest's file map: open/read/write/close, stat, setstat (chmod), rename, remove, realpath,
 * mkdir. Writes are allowed where the shell allows them (root anywhere, others in /tmp and their home).
 */
export const serveGuestSftp = (
  sftp: SFTPWrapper,
  guest: GuestState,
  user: string,
  onWrite?: (op: string) => void
): void => {
  const home = user === "root" ? "/root" : `/home/${user}`
  const abs = (p: string) => posix.normalize(p.startsWith("/") ? p : posix.join(home, p === "." ? "" : p))
  const handles = new Map<number, OpenFile>()
  let next = 1
  const handleBuf = (n: number) => {
    const b = Buffer.alloc(4)
    b.writeUInt32BE(n)
    return b
  }
  const get = (h: Buffer) => (h.length === 4 ? handles.get(h.readUInt32BE(0)) : undefined)
  const attrsOf = (path: string) => {
    const now = Math.floor(Date.now() / 1000)
    const content = guest.files.get(path)
    if (content === undefined)
      return { mode: S_IFDIR | 0o755, uid: 0, gid: 0, size: 4096, atime: now, mtime: now } as const
    const m = fileMeta(guest, path)
    const uid = m.owner === "root" ? 0 : 1000
    return {
      mode: S_IFREG | m.mode,
      uid,
      gid: uid,
      size: Buffer.byteLength(content, "latin1"),
      atime: now,
      mtime: now
    }
  }
  const exists = (p: string) => guest.files.has(p) || isDirectory(guest, p)

  sftp.on("OPEN", (id, filename, flags, attrs) => {
    const path = abs(filename)
    const write = (flags & (OPEN.WRITE | OPEN.APPEND)) !== 0
    const has = guest.files.has(path)
    if (write) {
      if (!canWrite(guest, user, path)) return sftp.status(id, STATUS.PERMISSION_DENIED, "Permission denied")
      if (has && (flags & OPEN.EXCL) !== 0) return sftp.status(id, STATUS.FAILURE, "File exists")
      if (!has && (flags & OPEN.CREAT) === 0) return sftp.status(id, STATUS.NO_SUCH_FILE, "No such file")
    } else {
      if (!has) return sftp.status(id, STATUS.NO_SUCH_FILE, "No such file")
      if (!canRead(guest, user, path)) return sftp.status(id, STATUS.PERMISSION_DENIED, "Permission denied")
    }
    const keep = has && (!write || (flags & OPEN.TRUNC) === 0)
    const data = keep ? Buffer.from(guest.files.get(path) as string, "latin1") : Buffer.alloc(0)
    const mode = has ? fileMeta(guest, path).mode : (attrs.mode ?? 0o644) & 0o7777
    const n = next++
    handles.set(n, { path, write, data, mode })
    if (write && !has) writeGuestFile(guest, path, "", { mode, owner: user })
    sftp.handle(id, handleBuf(n))
  })
  sftp.on("WRITE", (id, handle, offset, data) => {
    const f = get(handle)
    if (f === undefined || !f.write) return sftp.status(id, STATUS.FAILURE, "Bad handle")
    const end = offset + data.length
    if (end > f.data.length) {
      const grown = Buffer.alloc(end)
      f.data.copy(grown)
      f.data = grown
    }
    data.copy(f.data, offset)
    sftp.status(id, STATUS.OK)
  })
  sftp.on("READ", (id, handle, offset, length) => {
    const f = get(handle)
    if (f === undefined) return sftp.status(id, STATUS.FAILURE, "Bad handle")
    if (offset >= f.data.length) return sftp.status(id, STATUS.EOF)
    sftp.data(id, f.data.subarray(offset, Math.min(f.data.length, offset + length)))
  })
  sftp.on("CLOSE", (id, handle) => {
    const f = get(handle)
    if (f === undefined) return sftp.status(id, STATUS.FAILURE, "Bad handle")
    handles.delete(handle.readUInt32BE(0))
    if (f.write) {
      const owner = guest.files.has(f.path) ? fileMeta(guest, f.path).owner : user
      writeGuestFile(guest, f.path, bytesToText(f.data), { mode: f.mode, owner })
      onWrite?.(`sftp write ${f.path} (${f.data.length} bytes)`)
    }
    sftp.status(id, STATUS.OK)
  })
  const stat = (id: number, p: string) => {
    const path = abs(p)
    if (!exists(path)) return sftp.status(id, STATUS.NO_SUCH_FILE, "No such file")
    sftp.attrs(id, attrsOf(path))
  }
  sftp.on("STAT", stat)
  sftp.on("LSTAT", stat)
  sftp.on("FSTAT", (id, handle) => {
    const f = get(handle)
    if (f === undefined) return sftp.status(id, STATUS.FAILURE, "Bad handle")
    sftp.attrs(id, { ...attrsOf(f.path), size: f.data.length })
  })
  const chmod = (id: number, path: string, mode: number | undefined) => {
    if (!guest.files.has(path)) return sftp.status(id, STATUS.NO_SUCH_FILE, "No such file")
    const m = fileMeta(guest, path)
    if (user !== "root" && m.owner !== user) return sftp.status(id, STATUS.PERMISSION_DENIED, "Permission denied")
    if (mode !== undefined) setFileMeta(guest, path, { ...m, mode: mode & 0o7777 })
    sftp.status(id, STATUS.OK)
  }
  sftp.on("SETSTAT", (id, p, attrs) => chmod(id, abs(p), attrs.mode))
  sftp.on("FSETSTAT", (id, handle, attrs) => {
    const f = get(handle)
    if (f === undefined) return sftp.status(id, STATUS.FAILURE, "Bad handle")
    if (attrs.mode !== undefined) f.mode = attrs.mode & 0o7777
    chmod(id, f.path, attrs.mode)
  })
  sftp.on("RENAME", (id, from, to) => {
    const a = abs(from)
    const b = abs(to)
    if (!guest.files.has(a)) return sftp.status(id, STATUS.NO_SUCH_FILE, "No such file")
    if (!canWrite(guest, user, a) || !canWrite(guest, user, b))
      return sftp.status(id, STATUS.PERMISSION_DENIED, "Permission denied")
    moveGuestFile(guest, a, b)
    onWrite?.(`sftp rename ${a} ${b}`)
    sftp.status(id, STATUS.OK)
  })
  sftp.on("REMOVE", (id, p) => {
    const path = abs(p)
    if (!guest.files.has(path)) return sftp.status(id, STATUS.NO_SUCH_FILE, "No such file")
    if (!canWrite(guest, user, path)) return sftp.status(id, STATUS.PERMISSION_DENIED, "Permission denied")
    removeGuestFile(guest, path)
    sftp.status(id, STATUS.OK)
  })
  sftp.on("REALPATH", (id, p) => {
    const path = abs(p)
    sftp.name(id, [{ filename: path, longname: path, attrs: attrsOf(path) }])
  })
  sftp.on("MKDIR", (id, p) => {
    const path = abs(p)
    if (!canWrite(guest, user, `${path}/x`)) return sftp.status(id, STATUS.PERMISSION_DENIED, "Permission denied")
    sftp.status(id, STATUS.OK)
  })
  sftp.on("RMDIR", (id) => sftp.status(id, STATUS.OK))
  sftp.on("OPENDIR", (id) => sftp.status(id, STATUS.OP_UNSUPPORTED, "Directory listing is not simulated"))
  sftp.on("EXTENDED", (id) => sftp.status(id, STATUS.OP_UNSUPPORTED, "Not supported"))
}
