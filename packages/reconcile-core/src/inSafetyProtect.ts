import type { Desired } from "./Desired.js"

/** Whether homelab.yaml's `safety.protect` names this VM, by its name or its VM id. */
export const inSafetyProtect = (desired: Pick<Desired, "protect">, name: string | undefined, vmid: number): boolean =>
  desired.protect.includes(vmid) || (name !== undefined && desired.protect.includes(name))
