import type { Finding } from "./Action.js"
import { closestName } from "./config/internal/suggest.js"

/**
 * What is wrong with homelab.yaml's `vm.cpuType` on a node, against the models the node lists
 * (`GET /nodes/{node}/capabilities/qemu/cpu`: its built-in models, and `custom-NAME` ones): PVE refuses any other
 * (`Built-in cputype '…' is not defined`) in a create or a config update. The message names the close model when there
 * is one; the hint where to look. Undefined when the model exists or the list was not read.
 */
export const cpuModelProblem = (
  models: ReadonlyArray<string> | undefined,
  cpuType: string,
  node: string
): { readonly message: string; readonly hint: string } | undefined => {
  if (models === undefined || models.includes(cpuType)) return undefined
  const meant = closestName(cpuType, models)
  const common = ["host", "x86-64-v2-AES", "x86-64-v3"].filter((m) => models.includes(m))
  return {
    message: `vm.cpuType ${cpuType} is not a CPU model of node ${node}${meant === undefined ? "" : ` (did you mean ${meant}?)`}`,
    hint: `set vm.cpuType to a model the node lists (\`pvesh get /nodes/${node}/capabilities/qemu/cpu\`${common.length > 0 ? `: ${common.join(", ")}, …` : ""}); a custom model is named custom-NAME and defined in /etc/pve/virtual-guest/cpu-models.conf`
  }
}

/**
 * The CPU model checked before a VM is made on a node (`cpuModelProblem`): PVE would refuse the create after the image
 * is on the node. Blocked. Undefined when the model exists or the list was not read.
 */
export const cpuModelFinding = (
  models: ReadonlyArray<string> | undefined,
  want: { readonly cpuType: string; readonly node: string; readonly vm: string; readonly vmid?: number | undefined }
): Finding | undefined => {
  const problem = cpuModelProblem(models, want.cpuType, want.node)
  if (problem === undefined) return undefined
  return {
    code: "vm.cpu-model",
    effect: "blocked",
    layer: "vm",
    node: want.node,
    vm: want.vm,
    ...(want.vmid !== undefined ? { vmid: want.vmid } : {}),
    message: `${problem.message}: PVE would refuse ${want.vm}`,
    hint: problem.hint
  }
}
