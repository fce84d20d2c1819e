import type { Finding } from "./Action.js"
import { closestName } from "./config/internal/suggest.js"

/**
 * The CPU model homelab.yaml's `vm.cpuType` names, checked against the models a node lists
 * (`GET /nodes/{node}/capabilities/qemu/cpu`: its built-in models, and `custom-NAME` ones) before a VM is made there:
 * PVE refuses any other (`Built-in cputype '…' is not defined`) when the create is sent, after the image is on the
 * node. Blocked, with the close model when there is one. Undefined when the model exists or the list was not read.
 */
export const cpuModelFinding = (
  models: ReadonlyArray<string> | undefined,
  want: { readonly cpuType: string; readonly node: string; readonly vm: string; readonly vmid?: number | undefined }
): Finding | undefined => {
  if (models === undefined || models.includes(want.cpuType)) return undefined
  const meant = closestName(want.cpuType, models)
  const common = ["host", "x86-64-v2-AES", "x86-64-v3"].filter((m) => models.includes(m))
  return {
    code: "vm.cpu-model",
    effect: "blocked",
    layer: "vm",
    node: want.node,
    vm: want.vm,
    ...(want.vmid !== undefined ? { vmid: want.vmid } : {}),
    message: `vm.cpuType ${want.cpuType} is not a CPU model of node ${want.node}${meant === undefined ? "" : ` (did you mean ${meant}?)`}: PVE would refuse ${want.vm}`,
    hint: `set vm.cpuType to a model the node lists (\`pvesh get /nodes/${want.node}/capabilities/qemu/cpu\`${common.length > 0 ? `: ${common.join(", ")}, …` : ""}); a custom model is named custom-NAME and defined in /etc/pve/virtual-guest/cpu-models.conf`
  }
}
