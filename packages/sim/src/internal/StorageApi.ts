import { createHash } from "node:crypto"
import type { AuthUser } from "../Auth.js"
import { volumeResource } from "../Operations.js"
import { PveError } from "../PveError.js"
import type { NodeState, StorageState } from "../SimState.js"
import type { Task } from "../Tasks.js"
import { encodeTaskId } from "../Tasks.js"
import type { SimContext } from "./Context.js"
import { one, type Params } from "./Params.js"
import { addVolume, formatOf, isFileStorage, normaliseFilename, volumePath, vtypeOf } from "./Volumes.js"

export const getStorage = (node: NodeState, id: string): StorageState => {
  const s = node.storages.get(id)
  if (s === undefined) throw new PveError(500, `storage '${id}' does not exist`)
  return s
}

export const contentList = (
  ctx: SimContext,
  user: AuthUser,
  node: NodeState,
  s: StorageState,
  params: Params
): Array<Record<string, unknown>> => {
  ctx.auth.check(user, `/storage/${s.id}`, "Datastore.Audit", "Datastore.AllocateSpace")
  // volume_list activates the storage, and PVE::Storage::activate_storage dies on a disabled one
  if (!s.enabled) throw new PveError(500, `storage '${s.id}' is disabled`)
  const content = one(params, "content")
  const vmid = one(params, "vmid")
  if (content !== undefined && !s.content.has(content)) return []
  const out: Array<Record<string, unknown>> = []
  for (const v of s.volumes.values()) {
    if (content !== undefined && v.content !== content) continue
    if (!s.content.has(v.content) && !(v.content === "images" && s.content.has("rootdir"))) continue
    if (vmid !== undefined && String(v.vmid) !== vmid) continue
    const e: Record<string, unknown> = {
      volid: `${s.id}:${v.volname}`,
      content: v.content,
      format: v.format,
      size: v.size,
      ctime: v.ctime
    }
    if (v.vmid !== undefined) e.vmid = v.vmid
    out.push(e)
  }
  void node
  return out.sort((a, b) => String(a.volid).toLowerCase().localeCompare(String(b.volid).toLowerCase()))
}

/**
 * `GET …/content/{volume}` (pve-storage Content.pm `info`): the volume's path, size and format. `check_volume_access`
 * first: root@pam may read any; an iso, vztmpl or import volume needs Datastore.AllocateSpace or Datastore.Audit on
 * the storage, a VM's volume Datastore.Allocate there or VM.Config.Disk on its VM. A volume that is not there fails
 * `file_size_info`.
 */
export const volumeInfo = (
  ctx: SimContext,
  user: AuthUser,
  s: StorageState,
  volume: string
): Record<string, unknown> => {
  const colon = volume.indexOf(":")
  if (colon >= 0 && volume.slice(0, colon) !== s.id)
    throw PveError.param({ volume: `storage ID missmatch (${volume.slice(0, colon)} != ${s.id})` })
  const volname = colon >= 0 ? volume.slice(colon + 1) : volume
  const vol = s.volumes.get(volname)
  if (vtypeOf(s, volname) === "images") {
    if (!ctx.auth.can(user, `/storage/${s.id}`, "Datastore.Allocate"))
      ctx.auth.check(user, `/vms/${vol?.vmid ?? /^vm-(\d+)-/.exec(volname)?.[1] ?? 0}`, "VM.Config.Disk")
  } else {
    ctx.auth.check(user, `/storage/${s.id}`, "Datastore.AllocateSpace", "Datastore.Audit")
  }
  if (vol === undefined) throw new PveError(500, `file_size_info on '${s.id}:${volname}' failed`)
  const path = isFileStorage(s) ? volumePath(s, volname) : `/dev/${s.id === "local-lvm" ? "pve" : s.id}/${volname}`
  return { path, size: vol.size, used: vol.size, format: vol.format }
}

/** Extension rules per content type (reference §4.15). */
const checkFilename = (ctx: SimContext, node: NodeState, content: string, filename: string): void => {
  if (content === "iso") {
    if (!/^[^/]+\.(iso|img)$/i.test(filename)) throw PveError.param({ filename: "wrong file extension" })
  } else if (content === "vztmpl") {
    if (!/^[^/]+\.tar(\.(gz|xz|zst|bz2))?$/.test(filename)) throw PveError.param({ filename: "wrong file extension" })
  } else if (content === "import") {
    const exts = ctx.state.featuresOf(node.name).importQcow2 ? "ova|qcow2|raw|vmdk" : "ova"
    if (!new RegExp(`^[a-zA-Z0-9\\-.+=_]+\\.(${exts})$`).test(filename))
      throw PveError.param({ filename: "invalid filename or wrong extension" })
  }
}

const preflight = (
  ctx: SimContext,
  user: AuthUser,
  node: NodeState,
  s: StorageState,
  content: string,
  rawName: string
): { filename: string; volname: string; dest: string } => {
  ctx.auth.check(user, `/storage/${s.id}`, "Datastore.AllocateTemplate")
  if (!s.enabled) throw new PveError(500, `storage '${s.id}' is disabled`)
  if (!isFileStorage(s)) throw new PveError(500, `can't upload to storage type '${s.type}', not a file based storage!`)
  if (!s.content.has(content))
    throw new PveError(500, `storage '${s.id}' is not configured for content-type '${content}'`)
  const filename = normaliseFilename(rawName)
  checkFilename(ctx, node, content, filename)
  const volname = `${content}/${filename}`
  void node
  return { filename, volname, dest: volumePath(s, volname) }
}

const hashOf = (algo: string, data: Buffer | undefined): string =>
  createHash(algo)
    .update(data ?? Buffer.alloc(0))
    .digest("hex")

export const downloadUrl = (
  ctx: SimContext,
  user: AuthUser,
  node: NodeState,
  s: StorageState,
  params: Params
): Task => {
  const url = one(params, "url") ?? ""
  const content = one(params, "content") ?? ""
  // pve-storage: ['or', ['perm', '/', ['Sys.Audit', 'Sys.Modify']], ['perm', '/nodes/{node}', ['Sys.AccessNetwork']]]
  // (a 'perm' check with several privileges asks for all of them)
  const onRoot = ctx.auth.can(user, "/", "Sys.Audit") && ctx.auth.can(user, "/", "Sys.Modify")
  if (!onRoot && !ctx.auth.can(user, `/nodes/${node.name}`, "Sys.AccessNetwork"))
    throw new PveError(403, `Permission check failed (/nodes/${node.name}, Sys.AccessNetwork)`)
  const { filename, volname, dest } = preflight(ctx, user, node, s, content, one(params, "filename") ?? "")
  const checksum = one(params, "checksum")?.toLowerCase()
  const algo = one(params, "checksum-algorithm")
  return ctx.tasks.start(node, "download", encodeTaskId(filename), user, async (t) => {
    // pve-common Tools.pm download_file_from_url
    t.log(`downloading ${url} to ${dest}`)
    const existing = s.volumes.get(volname)
    if (existing !== undefined) {
      if (checksum === undefined || algo === undefined)
        throw new PveError(500, `refusing to override existing file '${dest}'`)
      const got = algo === "sha256" && existing.sha256 !== undefined ? existing.sha256 : hashOf(algo, existing.data)
      if (got === checksum) {
        t.log("calculating checksum of existing file...OK, got correct file already, no need to download")
        return
      }
      t.log("calculating checksum of existing file...")
      throw new PveError(500, `checksum mismatch: got '${got}' != expect '${checksum}', aborting`)
    }
    // the transfer is part of the download's simulated time (downloadMs): only the rest of it is slept
    const started = performance.now()
    const wanted = algo ?? "sha256"
    const sha = createHash("sha256")
    const other = wanted === "sha256" ? undefined : createHash(wanted)
    let size = 0
    let stated: { readonly sha256?: string | undefined }
    try {
      stated = await ctx.download(url, (b, origin) => {
        // the simulator's own image origin states the SHA-256 of the bytes it sends: they need no hashing here
        if (origin.sha256 === undefined) sha.update(b)
        other?.update(b)
        size += b.length
      })
    } catch (e) {
      throw new PveError(500, `download failed: ${(e as Error).message}`)
    }
    const sha256 = stated.sha256 ?? sha.digest("hex")
    const digest = () => other?.digest("hex") ?? sha256
    await t.work(ctx.timings.downloadMs, performance.now() - started)
    t.log(`--${new Date(ctx.clock.now()).toISOString().replace("T", " ").slice(0, 19)}--  ${url}`)
    t.log(`Length: ${size} (${(size / 1024 / 1024).toFixed(0)}M) [application/octet-stream]`)
    t.log(`Saving to: '${dest}.tmp.${t.task.pid}'`)
    if (checksum !== undefined && algo !== undefined) {
      const got = digest()
      if (got !== checksum) {
        t.log("calculating checksum...")
        throw new PveError(500, `checksum mismatch: got '${got}' != expect '${checksum}'`)
      }
      t.log("calculating checksum...OK, checksum verified")
    }
    if (ctx.faults.storageFull(node.name, s.id))
      throw new PveError(500, `download failed: write error: No space left on device`)
    addVolume(s, {
      volname,
      content,
      format: formatOf(volname, content),
      size,
      ctime: Math.floor(ctx.clock.now() / 1000),
      sha256
    })
    t.produced(volumeResource(node.name, s, volname))
    t.log(`download of '${url}' to '${dest}' finished`)
  })
}

export interface UploadFile {
  readonly field: string
  readonly filename: string
  readonly data: Buffer
}

export const upload = (
  ctx: SimContext,
  user: AuthUser,
  node: NodeState,
  s: StorageState,
  params: Params,
  file: UploadFile | undefined
): Task => {
  if (file === undefined) throw PveError.param({ filename: "property is missing and it is not optional" })
  if (file.field !== "filename")
    throw new PveError(500, `wrong field name '${file.field}' for file upload, expected 'filename'`)
  const content = one(params, "content") ?? ""
  const { volname, dest } = preflight(ctx, user, node, s, content, file.filename)
  const checksum = one(params, "checksum")?.toLowerCase()
  const algo = one(params, "checksum-algorithm")
  const tmp = `/var/tmp/pveupload-${createHash("md5")
    .update(file.filename + String(ctx.clock.now()))
    .digest("hex")}`
  return ctx.tasks.start(node, "imgcopy", "", user, async (t) => {
    if (checksum !== undefined && algo !== undefined) {
      const got = hashOf(algo, file.data)
      if (got !== checksum) throw new PveError(500, `checksum mismatch: got '${got}' != expect '${checksum}'`)
      t.log("calculating checksum...OK, checksum verified")
    }
    t.log(`starting file import from: ${tmp}`)
    t.log(`target node: ${node.name}`)
    t.log(`target file: ${dest}`)
    t.log(`file size is: ${file.data.length}`)
    t.log(`command: cp -- ${tmp} ${dest}`)
    await t.work(ctx.timings.taskMs)
    addVolume(s, {
      volname,
      content,
      format: formatOf(volname, content),
      size: file.data.length,
      ctime: Math.floor(ctx.clock.now() / 1000),
      sha256: hashOf("sha256", file.data),
      ...(file.data.length <= 1024 * 1024 ? { data: file.data } : {})
    })
    t.produced(volumeResource(node.name, s, volname))
    t.log("finished file import successfully")
  })
}

export const deleteVolume = (
  ctx: SimContext,
  user: AuthUser,
  node: NodeState,
  s: StorageState,
  volume: string
): Task => {
  const volname = volume.includes(":") ? volume.slice(volume.indexOf(":") + 1) : volume
  ctx.auth.check(user, `/storage/${s.id}`, "Datastore.Allocate", "Datastore.AllocateSpace")
  const vol = s.volumes.get(volname)
  if (vol === undefined) throw new PveError(500, `volume '${s.id}:${volname}' does not exist`)
  return ctx.tasks.start(node, "imgdel", encodeTaskId(`${s.id}:${volname}`).replace(/\//g, "_"), user, async (t) => {
    await t.work(ctx.timings.taskMs)
    if (vol.vmid !== undefined && ctx.state.vms.has(vol.vmid)) {
      const vm = ctx.state.vms.get(vol.vmid)
      const used = vm !== undefined && [...vm.config.values()].some((v) => v.startsWith(`${s.id}:${volname}`))
      if (used)
        throw new PveError(500, `unable to delete '${s.id}:${volname}' - volume is still in use (VM ${vol.vmid})`)
    }
    s.volumes.delete(volname)
    t.log(`Removed volume '${s.id}:${volname}'`)
  })
}
