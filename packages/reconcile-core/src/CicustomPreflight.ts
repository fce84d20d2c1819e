import type { Finding } from "./Action.js"
import type { DesiredCicustom } from "./Desired.js"
import type { ObservedNode } from "./Observed.js"

/** The snippet volumes of `vm.cicustom`, by role (`user`, `network`, `vendor`). */
export const cicustomVolumes = (cicustom: DesiredCicustom | undefined): ReadonlyArray<readonly [string, string]> =>
  cicustom === undefined
    ? []
    : (["user", "network", "vendor"] as const).flatMap((role) => {
        const volume = cicustom[role]
        return volume === undefined ? [] : [[role, volume] as const]
      })

/**
 * Before a VM gets `cicustom` (at create, or as drift): each snippet's storage exists on the node, is active and
 * allows the `snippets` content, and the volume is there — PVE only finds out when the VM starts (`can't find file`).
 * `snippets` are the volumes listed on the node (undefined: not listed, only the storage is checked).
 */
export const cicustomFindings = (
  node: ObservedNode,
  snippets: ReadonlySet<string> | undefined,
  cicustom: DesiredCicustom | undefined,
  vm: string
): ReadonlyArray<Finding> => {
  const findings: Array<Finding> = []
  for (const [role, volume] of cicustomVolumes(cicustom)) {
    const storageId = volume.slice(0, volume.indexOf(":"))
    const storage = node.storages.find((s) => s.storage === storageId)
    const finding = (code: string, message: string, hint: string) =>
      findings.push({ code, effect: "blocked", layer: "vm", node: node.name, vm, message, hint })
    if (storage === undefined || !storage.enabled || !storage.active) {
      finding(
        "cicustom.storage",
        `vm.cicustom.${role} ${volume}: storage '${storageId}' is ${storage === undefined ? "not available" : "not active"} on ${node.name}`,
        `add the storage on ${node.name}, or point vm.cicustom.${role} at a storage the node has`
      )
      continue
    }
    if (!storage.content.includes("snippets")) {
      finding(
        "cicustom.content",
        `vm.cicustom.${role} ${volume}: storage '${storageId}' on ${node.name} does not allow snippets (content: ${storage.content.join(", ") || "none"})`,
        `enable it: pvesm set ${storageId} --content ${[...storage.content, "snippets"].join(",")}`
      )
      continue
    }
    if (snippets !== undefined && !snippets.has(volume)) {
      finding(
        "cicustom.missing",
        `vm.cicustom.${role} ${volume} does not exist on ${node.name}`,
        `copy the file to ${node.name} (for a dir storage at /var/lib/vz: /var/lib/vz/snippets/${volume.slice(volume.indexOf("/") + 1)})`
      )
    }
  }
  return findings
}
