import type { DesiredNode } from "./Desired.js"

/**
 * How a node's VMs get their boot disk from the cloud image:
 * - `volume`: `import-from=<volid>` over the API. PVE imports a volume of type `images` or `import` (qemu-server
 *   8.2.7+, PVE 8.3+) this way, with the API token.
 * - `path`: `import-from=<the volume's absolute path>`, as root@pam over SSH. An iso-type volume (`image.content:
 *   iso`) is never imported by its volid (`has wrong type 'iso'`), and PVE lets only root@pam pass a path (`Only root
 *   can pass arbitrary filesystem paths`), never an API token, not even root's.
 */
export type ImageImport = "volume" | "path"

/** Why a node's VMs cannot get their disk from the image as homelab.yaml has it, before anything is changed. */
export interface ImageImportProblem {
  readonly code: "image.iso-needs-ssh" | "image.import-needs-pve-8.4"
  readonly message: string
  readonly hint: string
}

/** Dotted versions compared numerically (`8.3.3` < `8.4`). */
const atLeast = (version: string, min: string): boolean => {
  const a = version.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0)
  const b = min.split(/[.-]/).map((x) => Number.parseInt(x, 10) || 0)
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0)
    if (d !== 0) return d > 0
  }
  return true
}

/**
 * Whether PVE `version` stores `filename` with content `import` through download-url or upload: `.ova` from 8.3,
 * `.qcow2`, `.raw` and `.vmdk` from 8.4 (pve-storage's import extensions; before 8.3 no directory storage holds
 * `import` content at all).
 */
export const importStorable = (version: string, filename: string): boolean =>
  atLeast(version, "8.4") || (atLeast(version, "8.3") && /\.ova$/.test(filename))

/**
 * How `node`'s VMs import the image (see {@link ImageImport}), or why they cannot, from homelab.yaml and what was
 * observed: the node's PVE version (`GET /version`; undefined when not read) and whether the image volume is already
 * on its storage.
 *
 * - `image.content: iso` → `path`, over SSH as root; refused when `proxmox.fallback: off` allows no SSH
 *   (`node.rootOverSsh === false`).
 * - `image.content: import` → `volume`; refused when the volume has yet to be downloaded (or uploaded) and the node's
 *   PVE does not store that file with content import (before 8.4 only `.ova`), since download-url would refuse it
 *   on every node (`filename: invalid filename or wrong extension`).
 */
export const imageImportOf = (
  node: DesiredNode,
  pveVersion: string | undefined,
  present: boolean
): { readonly _tag: "Ok"; readonly via: ImageImport } | ({ readonly _tag: "Blocked" } & ImageImportProblem) => {
  const image = node.image
  const volid = `${image.storage}:${image.content}/${image.filename}`
  const older = pveVersion !== undefined && !atLeast(pveVersion, "8.4")
  if (image.content === "iso") {
    if (node.rootOverSsh !== false) return { _tag: "Ok", via: "path" }
    return {
      _tag: "Blocked",
      code: "image.iso-needs-ssh",
      message:
        `image.content: iso: PVE imports a VM disk from an iso-type volume (${volid}) only by its absolute path, ` +
        `which only root@pam may pass (no API token may), so homelab creates the VMs on ${node.name} over SSH as ` +
        "root; proxmox.fallback: off allows no SSH",
      hint:
        `set proxmox.fallback: ssh (homelab then runs the create as root over SSH to ${node.name}: ssh.user root, ` +
        `nodes[].address, nodes[].sshPort)` +
        (older
          ? ` (${node.name} runs PVE ${pveVersion}, which stores a .qcow2 with content import only from 8.4 on)`
          : ", or set image.content: import (PVE 8.4+; the storage needs the Import content type)")
    }
  }
  if (present || pveVersion === undefined || importStorable(pveVersion, image.filename)) {
    return { _tag: "Ok", via: "volume" }
  }
  const how = image.transfer === "upload" ? "PVE's upload" : "download-url"
  return {
    _tag: "Blocked",
    code: "image.import-needs-pve-8.4",
    message:
      `node ${node.name} runs PVE ${pveVersion}: ${how} stores a .qcow2, .raw or .vmdk with content import only from ` +
      `PVE 8.4 on (8.3: .ova only), so ${volid} (image.content: import) cannot be put on ${node.name}`,
    hint:
      `upgrade ${node.name} to PVE 8.4 or later; or set image.content: iso (the image is stored as ` +
      `${image.storage}:iso/<file>.img and homelab creates the VMs over SSH as root` +
      `${node.rootOverSsh === false ? ", which needs proxmox.fallback: ssh" : ""}); or put the file on storage ` +
      `'${image.storage}' as ${volid} yourself (homelab then only imports it)`
  }
}
